"""BlurPool kernels (a separable weighted window with padding and a stride), forward beside
backward.

Arrays are (N, 1, H, W, C), C-contiguous (channels-first arrives as (N*C, 1, H, W, 1)); 1-D
problems have H = 1 and a one-tap vertical filter. Output row ``oh`` reads padded rows
``oh*sh - ph + j`` for ``j < len(fh)``, output column ``ow`` padded columns ``ow*sw - pw + j``;
a padded position maps to an input position by ``mode``: 0 reflect (``-q``, ``2L-2-q``),
1 replicate (clamped), 2 zero (dropped). The taps ``fh``/``fw`` are Zhang's normalised
binomial coefficients, so the 2-D window's weights are ``fh[i]*fw[j]``. Rows are combined
first (vectorised over W*C), then columns: the forward copies the pad columns into a padded
row buffer so that every output column is a plain window; the backward spreads interior
columns without any padding logic and the few border columns through the mapping. One task
is one sample (or channels-first plane).

The horizontal filter length ``K`` and channels-first ``C1`` are literal in each
specialisation, so the taps unroll and the C == 1 loops have no channel loop.
"""

import numpy as np
from numba import njit

from ._jit import Kernel, sig
from .rows import fill


@njit(inline="always")
def _src(q, L, mode):
    """Input position of padded position q (-1: a zero pad)."""
    if 0 <= q < L:
        return q
    if mode == 0:
        return -q if q < 0 else 2 * L - 2 - q
    if mode == 1:
        return 0 if q < 0 else L - 1
    return -1


@njit(inline="always")
def _interior(OW, W, K, s, p):
    """Output columns [a, b) whose K taps all fall inside [0, W)."""
    a = min((p + s - 1) // s, OW)
    b = max(min(OW, (W - K + p) // s + 1), a)
    return a, b


@njit
def _pad_columns(OW, W, K, s, p, mode):
    """The padded row's pad columns that the output windows read (``pads``, positions in the
    padded row) and the input column each copies (``srcs``; -1 for a zero pad, which stays
    zero). Made once per call: per row, the pads are then a few copies, and every output
    column a plain window (mapping each border tap per row cost 0.3 of 3.2 ms on
    (1024, 112, 112))."""
    n = (OW - 1) * s + K
    pads = np.empty(n, np.int64)
    srcs = np.empty(n, np.int64)
    m = 0
    for q in range(n):
        if q < p or q >= p + W:
            pads[m] = q
            srcs[m] = _src(q - p, W, mode)
            m += 1
    return pads[:m], srcs[:m]


@njit(inline="always")
def _vertical4(xs, row, fh, q0, H, WC, mode):
    """row = sum_j fh[j] * (input row of padded row q0 + j) for the default 4-tap filter, in
    one pass; only for reflect and replicate padding, whose taps all map into the input (the
    engine checks reflect's pad < H). Unguarded on purpose: a test on the mapped rows here
    kept LLVM from vectorising the loop (measured: 6.3 against 2.2 ms on the rows of
    (1024, 112, 112))."""
    r0, r1 = _src(q0, H, mode), _src(q0 + 1, H, mode)
    r2, r3 = _src(q0 + 2, H, mode), _src(q0 + 3, H, mode)
    s0, s1 = xs[r0 * WC : (r0 + 1) * WC], xs[r1 * WC : (r1 + 1) * WC]
    s2, s3 = xs[r2 * WC : (r2 + 1) * WC], xs[r3 * WC : (r3 + 1) * WC]
    w0, w1, w2, w3 = fh[0], fh[1], fh[2], fh[3]
    for k in range(WC):
        row[k] = w0 * s0[k] + w1 * s1[k] + w2 * s2[k] + w3 * s3[k]


@njit(boundscheck=False)
def _vertical_any(xs, row, fh, q0, H, WC, mode):
    """row = sum_j fh[j] * (input row of padded row q0 + j), tap by tap (zero pads skipped)."""
    fill(row, 0)
    for j in range(fh.shape[0]):
        r = _src(q0 + j, H, mode)
        if r >= 0:
            wgt = fh[j]
            src = xs[r * WC : (r + 1) * WC]
            for k in range(WC):
                row[k] += wgt * src[k]


def _blur_fwd(K, S, c1, dtype):
    def blur_fwd(x, out, fh, fw, geo, n0, n1):
        """Samples (or planes) n0..n1; geo = (sh, ph, sw, pw, mode); S: a literal horizontal
        stride (0: geo's)."""
        H, W = x.shape[2], x.shape[3]
        C = 1 if c1 else x.shape[4]
        OH, OW = out.shape[2], out.shape[3]
        sh, ph, pw, mode = geo[0], geo[1], geo[3], geo[4]
        sw = S if S else geo[2]
        WC = W * C
        KH = fh.shape[0]
        # The row buffer holds the padded row: the input columns at pw.., the pad columns
        # copied in per row; then every output column is a plain K-tap window of it.
        pads, srcs = _pad_columns(OW, W, K, sw, pw, mode)
        rp = np.zeros((max(W + pw, (OW - 1) * sw + K)) * C, x.dtype)
        row = rp[pw * C : (pw + W) * C]
        fused = KH == 4 and mode != 2
        xall = x.reshape(x.size)
        oall = out.reshape(out.size)
        for n in range(n0, n1):
            xs = xall[n * H * WC : (n + 1) * H * WC]
            os_ = oall[n * OH * OW * C : (n + 1) * OH * OW * C]
            for oh in range(OH):
                if fused:
                    _vertical4(xs, row, fh, oh * sh - ph, H, WC, mode)
                else:
                    _vertical_any(xs, row, fh, oh * sh - ph, H, WC, mode)
                for i in range(pads.shape[0]):
                    d = np.uint64(pads[i] * C)
                    q = srcs[i]
                    if q >= 0:  # then unsigned: no wraparound check
                        for c in range(C):
                            rp[d + c] = row[np.uint64(q * C + c)]
                orow = os_[oh * OW * C : (oh + 1) * OW * C]
                if c1:  # no one-trip channel loop around the taps: LLVM keeps it scalar
                    for i in range(OW):
                        acc = fw[0] * rp[i * sw]
                        for j in range(1, K):
                            acc += fw[j] * rp[i * sw + j]
                        orow[i] = acc
                else:
                    for i in range(OW):
                        for c in range(C):
                            acc = fw[0] * rp[i * sw * C + c]
                            for j in range(1, K):
                                acc += fw[j] * rp[(i * sw + j) * C + c]
                            orow[i * C + c] = acc

    return blur_fwd


BLUR_FWD = Kernel("blur_fwd", _blur_fwd,
                  lambda K, S, c1, dt: sig(dt, "x5", "o5", "x1", "x1", "i1", "i", "i"), cost=1.0)


def _blur_bwd(K, c1, dtype):
    def blur_bwd(g, gx, fh, fw, geo, n0, n1):
        """gx for samples (or planes) n0..n1: the transpose of blur_fwd. Each output row's
        gradient is spread over its columns (padding folded back onto the input columns it
        copied) into a row buffer, which is added, weighted, to its input rows. A sample is
        zeroed just before it is accumulated into: deterministic."""
        H, W = gx.shape[2], gx.shape[3]
        C = 1 if c1 else gx.shape[4]
        OH, OW = g.shape[2], g.shape[3]
        sh, ph, sw, pw, mode = geo[0], geo[1], geo[2], geo[3], geo[4]
        WC = W * C
        KH = fh.shape[0]
        row = np.empty(WC, gx.dtype)
        a, b = _interior(OW, W, K, sw, pw)
        gall = g.reshape(g.size)
        gxall = gx.reshape(gx.size)
        for n in range(n0, n1):
            gs = gxall[n * H * WC : (n + 1) * H * WC]
            fill(gs, 0)
            for oh in range(OH):
                fill(row, 0)
                go = gall[(n * OH + oh) * OW * C : (n * OH + oh + 1) * OW * C]
                r = row[(a * sw - pw) * C :]  # from the first interior column (see forward)
                g0 = go[a * C :]
                if c1:
                    for i in range(b - a):
                        v = g0[i]
                        for j in range(K):
                            r[i * sw + j] += fw[j] * v
                else:
                    for i in range(b - a):
                        for c in range(C):
                            v = g0[i * C + c]
                            for j in range(K):
                                r[(i * sw + j) * C + c] += fw[j] * v
                for i in range(OW - (b - a)):  # border columns: before a, from b on
                    ow = i if i < a else i + b - a
                    for j in range(K):
                        q = _src(ow * sw - pw + j, W, mode)
                        if q >= 0:
                            for c in range(C):
                                row[q * C + c] += fw[j] * go[ow * C + c]
                for j in range(KH):
                    r = _src(oh * sh - ph + j, H, mode)
                    if r >= 0:
                        wgt = fh[j]
                        dst = gs[r * WC : (r + 1) * WC]
                        for k in range(WC):
                            dst[k] += wgt * row[k]

    return blur_bwd


BLUR_BWD = Kernel("blur_bwd", _blur_bwd,
                  lambda K, c1, dt: sig(dt, "x5", "o5", "x1", "x1", "i1", "i", "i"), cost=1.0)
