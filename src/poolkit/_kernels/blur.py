"""BlurPool kernels (a separable weighted window with padding and a stride), forward beside
backward.

Arrays are (N, 1, H, W, C), C-contiguous (channels-first arrives as (N*C, 1, H, W, 1)); 1-D
problems have H = 1 and a one-tap vertical filter. Output row ``oh`` reads padded rows
``oh*sh - ph + j`` for ``j < len(fh)``, output column ``ow`` padded columns ``ow*sw - pw + j``;
a padded position maps to an input position by ``mode``: 0 reflect (``-q``, ``2L-2-q``),
1 replicate (clamped), 2 zero (dropped). The filter taps ``fh``/``fw`` are Zhang's normalised
binomial coefficients, so the 2-D window's weights are ``fh[i]*fw[j]``. Rows are combined
first (vectorised over W*C), then columns.
"""

import numpy as np
from numba import njit

from ._jit import Kernel, sig


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


def _blur_fwd(dtype):
    def blur_fwd(x, out, fh, fw, geo, t0, t1):
        """Output rows t0..t1 (flat over N, OH); geo = (sh, ph, sw, pw, mode)."""
        H, W, C = x.shape[2], x.shape[3], x.shape[4]
        OH, OW = out.shape[2], out.shape[3]
        sh, ph, sw, pw, mode = geo[0], geo[1], geo[2], geo[3], geo[4]
        WC = W * C
        row = np.empty(WC, x.dtype)
        for t in range(t0, t1):
            n = t // OH
            oh = t - n * OH
            xs = x[n, 0].reshape(H * WC)
            row[:] = 0
            for j in range(fh.shape[0]):
                r = _src(oh * sh - ph + j, H, mode)
                if r >= 0:
                    wgt = fh[j]
                    src = xs[r * WC : (r + 1) * WC]
                    for k in range(WC):
                        row[k] += wgt * src[k]
            o = out[n, 0, oh]
            for ow in range(OW):
                for c in range(C):
                    o[ow, c] = 0
                for j in range(fw.shape[0]):
                    q = _src(ow * sw - pw + j, W, mode)
                    if q >= 0:
                        wgt = fw[j]
                        for c in range(C):
                            o[ow, c] += wgt * row[q * C + c]

    return blur_fwd


BLUR_FWD = Kernel("blur_fwd", _blur_fwd,
                  lambda dt: sig(dt, "x5", "o5", "x1", "x1", "i1", "i", "i"))


def _blur_bwd(dtype):
    def blur_bwd(g, gx, fh, fw, geo, n0, n1):
        """gx for samples (or planes) n0..n1: the transpose of blur_fwd. Each output row's
        gradient is spread over its columns (padding folded back onto the input columns it
        copied) into a row buffer, which is added, weighted, to its input rows. A sample is
        zeroed just before it is accumulated into: deterministic."""
        H, W, C = gx.shape[2], gx.shape[3], gx.shape[4]
        OH, OW = g.shape[2], g.shape[3]
        sh, ph, sw, pw, mode = geo[0], geo[1], geo[2], geo[3], geo[4]
        WC = W * C
        row = np.empty(WC, gx.dtype)
        for n in range(n0, n1):
            gs = gx[n, 0].reshape(H * WC)
            gs[:] = 0
            for oh in range(OH):
                row[:] = 0
                go = g[n, 0, oh]
                for ow in range(OW):
                    for j in range(fw.shape[0]):
                        q = _src(ow * sw - pw + j, W, mode)
                        if q >= 0:
                            wgt = fw[j]
                            for c in range(C):
                                row[q * C + c] += wgt * go[ow, c]
                for j in range(fh.shape[0]):
                    r = _src(oh * sh - ph + j, H, mode)
                    if r >= 0:
                        wgt = fh[j]
                        dst = gs[r * WC : (r + 1) * WC]
                        for k in range(WC):
                            dst[k] += wgt * row[k]

    return blur_bwd


BLUR_BWD = Kernel("blur_bwd", _blur_bwd,
                  lambda dt: sig(dt, "x5", "o5", "x1", "x1", "i1", "i", "i"))
