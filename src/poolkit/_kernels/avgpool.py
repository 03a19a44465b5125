"""Average pooling kernels, forward beside backward.

Arrays are (N, D, H, W, C), C-contiguous (channels-first arrives as (N*C, D, H, W, 1)). Sums run
in the dtype of ``out`` (float32 for float16/float32 input, float64 for float64), starting at
zero and adding a window's cells in row-major order, as PyTorch does. A window's divisor is
``cnt[0, od] * cnt[1, oh] * cnt[2, ow]``, held in the accumulator dtype (small integers, exact),
so the one division rounds as PyTorch's does.

The kernels that divide are compiled with ``error_model="numpy"``: a divisor is never zero
(the tables hold counts >= 1 or a non-zero divisor_override), and Python's zero-division check
on every element kept LLVM from vectorising the division (measured 2.5x slower).
"""

import numpy as np
from numba import njit, prange

from .rows import (
    V_ANY_C1,
    VARIANTS,
    V_2x2,
    V_2x2_C1,
    V_3x3s1_C1,
    V_3x3s2_C1,
    chunk_bounds,
    next_row,
    num_chunks,
    row_coords,
    window_rows,
)


@njit(cache=True, boundscheck=False, _nrt=False, error_model="numpy")
def _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, K, S, C):
    """Output rows t0..t1 (flat over N, OD, OH): sums in row-major window order, then the
    division. Window rows are added in pairs so one pass over the columns serves two rows."""
    D, H, W = x.shape[1], x.shape[2], x.shape[3]
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    pw, a, b = geo[2, 3], geo[2, 4], geo[2, 5]
    n_in = max(b - a, 0)
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
                    acc = o.dtype.type(0)
                    for j in range(K):
                        acc += x0[(ow * S + j) * C + c]
                    for j in range(K):
                        acc += x1[(ow * S + j) * C + c]
                    o[ow * C + c] = acc / div
            continue
        orow[:] = 0
        for g in range(0, nr, 2):
            x0 = xs[(rows[g] + a * S - pw) * C :]
            if g + 1 < nr:
                x1 = xs[(rows[g + 1] + a * S - pw) * C :]
                for ow in range(n_in):
                    for c in range(C):
                        acc = o[ow * C + c]
                        for j in range(K):
                            acc += x0[(ow * S + j) * C + c]
                        for j in range(K):
                            acc += x1[(ow * S + j) * C + c]
                        o[ow * C + c] = acc
            else:
                for ow in range(n_in):
                    for c in range(C):
                        acc = o[ow * C + c]
                        for j in range(K):
                            acc += x0[(ow * S + j) * C + c]
                        o[ow * C + c] = acc
            for ow in range(OW):
                if a <= ow < b:
                    continue
                start = ow * S - pw
                for r in range(g, min(g + 2, nr)):
                    for j in range(K):
                        if 0 <= start + j < W:
                            for c in range(C):
                                orow[ow * C + c] += xs[(rows[r] + start + j) * C + c]
        for ow in range(OW):
            div = c0 * cnt[2, ow]
            for c in range(C):
                orow[ow * C + c] = orow[ow * C + c] / div


def _avg_fwd_entry(variant):
    # One entry per variant, its branches pruned at compile time (see maxpool.py).
    @njit(cache=True, parallel=True)
    def avg_fwd(x, out, geo, lo, hi, cnt):
        n_rows = out.shape[0] * out.shape[1] * out.shape[2]
        n_chunks = num_chunks(n_rows)
        kw, sw, C = geo[2, 0], geo[2, 1], x.shape[4]
        for ch in prange(n_chunks):
            t0, t1 = chunk_bounds(ch, n_chunks, n_rows)
            rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
            if variant == V_2x2_C1:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, 2, 2, 1)
            elif variant == V_3x3s2_C1:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, 3, 2, 1)
            elif variant == V_2x2:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, 2, 2, C)
            elif variant == V_ANY_C1 or variant == V_3x3s1_C1:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, kw, sw, 1)
            else:
                _avg_chunk(x, out, t0, t1, geo, lo, hi, cnt, rows, kw, sw, C)
        return out

    return avg_fwd


AVG_FWD = {v: _avg_fwd_entry(v) for v in VARIANTS}


@njit(cache=True, parallel=True, boundscheck=False, error_model="numpy")
def avg_bwd(g, gx, geo, lo, hi, cnt):
    """gx = sum over windows of g / divisor on each in-bounds cell. One sample (or plane) per
    task, zeroed just before it is accumulated into: deterministic."""
    N, D, H, W, C = gx.shape
    OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    kw, sw, pw = geo[2, 0], geo[2, 1], geo[2, 3]
    for n in prange(N):
        gs = gx[n].reshape(D * H * W * C)
        gsample = g[n].reshape(OD * OH * OW * C)
        gs[:] = 0
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        gdiv = np.empty(OW * C, gx.dtype)
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
    return gx
