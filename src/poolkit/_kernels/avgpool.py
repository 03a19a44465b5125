"""Average pooling kernels, forward beside backward.

Arrays are (N, D, H, W, C), C-contiguous (channels-first arrives as (N*C, D, H, W, 1)). Sums run
in the dtype of ``out`` (float32 for float16/float32 input, float64 for float64), starting at
zero and adding a window's cells in row-major order, as PyTorch does. A window's divisor is
``cnt[0, od] * cnt[1, oh] * cnt[2, ow]``, held in the accumulator dtype (small integers, exact),
so the one division rounds as PyTorch's does.

The kernels that divide are compiled with ``error_model="numpy"``: a divisor is never zero
(the tables hold counts >= 1 or a non-zero divisor_override), and Python's zero-division check
on every element kept LLVM from vectorising the division (measured 2.5x slower).

Power averages (LP pooling) run in the same kernels: a literal ``P`` transforms each value as it
is read (0: x, 1: |x|, 2: x*x, 3: |x|**p) and finishes a window as ``(sum / div * scale) **
(1/p)`` (P = 0: ``sum / div``), so LP pooling is one pass over the input like average pooling.
"""

import numpy as np
from numba import njit

from ._jit import Kernel, sig
from .rows import (
    SIZES_LITERAL,
    SIZES_LITERAL_C1,
    SIZES_RUNTIME_C1,
    V_2x2,
    V_2x2_C1,
    V_3x3s2_C1,
    chunk_bounds,
    fill,
    next_row,
    row_coords,
    sizes,
    window_rows,
)


@njit(inline="always")
def _tv(v, P, p):
    """A value as the reduction reads it: x, |x|, x*x or |x|**p (P = 0..3)."""
    if P == 0:
        return v
    if P == 1:
        return abs(v)
    if P == 2:
        return v * v
    return abs(v) ** p


@njit(inline="always")
def _finish(acc, div, P, scale, inv_p):
    """A window's result from its sum: the mean, or the power mean's root."""
    if P == 0:
        return acc / div
    m = acc / div * scale
    if P == 1:
        return m
    if P == 2:
        return np.sqrt(m)
    return m**inv_p


@njit(boundscheck=False, _nrt=False, error_model="numpy")
def _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, K, S, C, P, p, scale):
    """Output rows t0..t1 (flat over N, OD, OH): sums in row-major window order, then the
    division. Window rows are added in pairs so one pass over the columns serves two rows."""
    D, H, W = x.shape[1], x.shape[2], x.shape[3]
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    pw, a, b = geo[2, 3], geo[2, 4], geo[2, 5]
    n_in = max(b - a, 0)
    zero = out.dtype.type(0)
    inv_p = out.dtype.type(1.0 / p)
    # Flat views made once, coordinates stepped: see maxpool._max_chunk.
    plane, orl = D * H * W * C, OW * C
    xall = x.reshape(x.size)
    oall = out.reshape(out.size)
    n, od, oh = row_coords(t0, OD, OH)
    for t in range(t0, t1):
        xs = xall[n * plane : (n + 1) * plane]
        orow = oall[t * orl : (t + 1) * orl]
        o = orow[a * C :]
        nr = window_rows(od, oh, geo, lo, hi, H, W, rows)
        c0 = cnt[0, od] * cnt[1, oh]
        n, od, oh = next_row(n, od, oh, OD, OH)
        if nr == 2 and n_in == OW:
            # The common case (two window rows, no border): sum and divide in one pass.
            x0 = xs[(rows[0] + a * S - pw) * C :]
            x1 = xs[(rows[1] + a * S - pw) * C :]
            for ow in range(n_in):
                div = c0 * cnt[2, ow]
                for c in range(C):
                    acc = zero
                    for j in range(K):
                        acc += _tv(x0[(ow * S + j) * C + c], P, p)
                    for j in range(K):
                        acc += _tv(x1[(ow * S + j) * C + c], P, p)
                    o[ow * C + c] = _finish(acc, div, P, scale, inv_p)
            continue
        fill(orow, 0)
        for g in range(0, nr, 2):
            x0 = xs[(rows[g] + a * S - pw) * C :]
            if g + 1 < nr:
                x1 = xs[(rows[g + 1] + a * S - pw) * C :]
                for ow in range(n_in):
                    for c in range(C):
                        acc = o[ow * C + c]
                        for j in range(K):
                            acc += _tv(x0[(ow * S + j) * C + c], P, p)
                        for j in range(K):
                            acc += _tv(x1[(ow * S + j) * C + c], P, p)
                        o[ow * C + c] = acc
            else:
                for ow in range(n_in):
                    for c in range(C):
                        acc = o[ow * C + c]
                        for j in range(K):
                            acc += _tv(x0[(ow * S + j) * C + c], P, p)
                        o[ow * C + c] = acc
            for ow in range(OW):
                if a <= ow < b:
                    continue
                start = ow * S - pw
                for r in range(g, min(g + 2, nr)):
                    for j in range(K):
                        if 0 <= start + j < W:
                            for c in range(C):
                                orow[ow * C + c] += _tv(xs[(rows[r] + start + j) * C + c], P, p)
        for ow in range(OW):
            div = c0 * cnt[2, ow]
            for c in range(C):
                orow[ow * C + c] = _finish(orow[ow * C + c], div, P, scale, inv_p)


def _avg_fwd(variant, P, dtype):
    # One specialisation per (variant, P, dtype), its branches pruned at compile time (see
    # rows.sizes); P is the power transform (0 for plain averages). Literal sizes for the
    # 2x2 and channels-first 3x3/2 windows only.
    mode, K, S, _ = sizes(variant, (V_2x2_C1, V_3x3s2_C1, V_2x2))

    def avg_fwd(x, out, geo, lo, hi, cnt, p, scale, n_chunks, c0, c1):
        n_rows = out.shape[0] * out.shape[1] * out.shape[2]
        kw, sw, C = geo[2, 0], geo[2, 1], x.shape[4]
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        for ch in range(c0, c1):
            t0, t1 = chunk_bounds(ch, n_chunks, n_rows)
            if mode == SIZES_LITERAL_C1:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, K, S, 1, P, p, scale)
            elif mode == SIZES_LITERAL:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, K, S, C, P, p, scale)
            elif mode == SIZES_RUNTIME_C1:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, kw, sw, 1, P, p, scale)
            else:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, kw, sw, C, P, p, scale)

    return avg_fwd


AVG_FWD = Kernel("avg_fwd", _avg_fwd,
                 lambda v, P, dt: sig(dt, "x5", "o5", "i2", "i2", "i2", "x2", "s", "s", "i",
                                      "i", "i"), cost=2.4)


def _avg_bwd(dtype):
    def avg_bwd(g, gx, geo, lo, hi, cnt, n0, n1):
        """gx = sum over windows of g / divisor on each in-bounds cell, for samples (or
        planes) n0..n1, each zeroed just before it is accumulated into: deterministic."""
        N, D, H, W, C = gx.shape
        OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
        kw, sw, pw = geo[2, 0], geo[2, 1], geo[2, 3]
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        gdiv = np.empty(OW * C, gx.dtype)
        for n in range(n0, n1):
            gs = gx[n].reshape(D * H * W * C)
            gsample = g[n].reshape(OD * OH * OW * C)
            fill(gs, 0)
            for od in range(OD):
                for oh in range(OH):
                    c0 = cnt[0, od] * cnt[1, oh]
                    grow = gsample[(od * OH + oh) * OW * C : (od * OH + oh + 1) * OW * C]
                    for ow in range(OW):
                        div = c0 * cnt[2, ow]
                        for c in range(C):
                            gdiv[ow * C + c] = grow[ow * C + c] / div
                    nr = window_rows(od, oh, geo, lo, hi, H, W, rows)
                    for r in range(nr):
                        ro = rows[r]
                        for ow in range(OW):
                            start = ow * sw - pw
                            for j in range(kw):
                                pos = start + j
                                if 0 <= pos < W:
                                    for c in range(C):
                                        gs[(ro + pos) * C + c] += gdiv[ow * C + c]

    return avg_bwd


AVG_BWD = Kernel("avg_bwd", _avg_bwd,
                 lambda dt: sig(dt, "x5", "o5", "i2", "i2", "i2", "x2", "i", "i"),
                 error_model="numpy", cost=1.0)
