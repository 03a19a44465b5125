"""Kernels over window tables (adaptive and global pooling), forward beside backward.

Arrays are (N, D, H, W, C), C-contiguous (channels-first arrives as (N*C, D, H, W, 1)). Window
``o`` of dim ``r`` reads input positions ``start[r, o] .. start[r, o] + count[r, o] - 1``, all
in bounds (adaptive windows never pad).

Separable: an output row (n, od, oh) first reduces its window's input rows elementwise into a
row buffer of W*C values (a loop LLVM vectorises), then reduces the buffer across each window's
columns. Per column the buffer keeps the row of its winner, and the column pass compares
candidates so that the result is PyTorch's row-major scan: the first maximum wins ties (lowest
row, then lowest column), a NaN wins and the index is the last NaN's (highest row, then column).
Sums add window rows in order, then columns (not PyTorch's order: the same to float rounding).
"""

import numpy as np
from numba import njit

from ._jit import Kernel, sig
from .rows import next_row, row_coords

RED_MAX = 0
RED_SUM = 1


@njit(inline="always")
def _take(v, m):
    return v > m or v != v


@njit(boundscheck=False)
def _rows_reduce(xs, rowv, rowi, start, count, od, oh, H, WC, RED, IDX):
    """Reduce the window rows of output row (od, oh) into rowv (and their winning row in
    rowi) over all W*C columns."""
    first = True
    for i_d in range(start[0, od], start[0, od] + count[0, od]):
        for i_h in range(start[1, oh], start[1, oh] + count[1, oh]):
            r = i_d * H + i_h
            row = xs[r * WC : (r + 1) * WC]
            if first:
                rowv[:] = row
                if IDX:
                    rowi[:] = r
                first = False
            elif RED == RED_SUM:
                for k in range(WC):
                    rowv[k] += row[k]
            elif IDX:
                for k in range(WC):
                    v = row[k]
                    t = _take(v, rowv[k])
                    rowv[k] = v if t else rowv[k]
                    rowi[k] = r if t else rowi[k]
            else:
                for k in range(WC):
                    v = row[k]
                    rowv[k] = v if _take(v, rowv[k]) else rowv[k]


def _win_fwd(red, with_idx, dtype):
    def win_fwd(x, out, idx, start, count, t0, t1):
        """Output rows t0..t1 (flat over N, OD, OH)."""
        D, H, W, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
        OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
        WC = W * C
        rowv = np.empty(WC, x.dtype)
        rowi = np.empty(WC if with_idx else 0, np.int64)
        n, od, oh = row_coords(t0, OD, OH)
        for _t in range(t0, t1):
            xs = x[n].reshape(D * H * WC)
            _rows_reduce(xs, rowv, rowi, start, count, od, oh, H, WC, red, with_idx)
            for ow in range(OW):
                w0 = start[2, ow]
                w1 = w0 + count[2, ow]
                for c in range(C):
                    m = rowv[w0 * C + c]
                    if red == RED_SUM:
                        for iw in range(w0 + 1, w1):
                            m += rowv[iw * C + c]
                        div = count[0, od] * count[1, oh] * count[2, ow]
                        out[n, od, oh, ow, c] = m / div
                    elif with_idx:
                        R = rowi[w0 * C + c]
                        best = w0
                        for iw in range(w0 + 1, w1):
                            v = rowv[iw * C + c]
                            r = rowi[iw * C + c]
                            if v != v:
                                take = m == m or r >= R
                            elif m != m:
                                take = False
                            else:
                                take = v > m or (v == m and r < R)
                            if take:
                                m, R, best = v, r, iw
                        out[n, od, oh, ow, c] = m
                        idx[n, od, oh, ow, c] = R * W + best
                    else:
                        for iw in range(w0 + 1, w1):
                            v = rowv[iw * C + c]
                            m = v if _take(v, m) else m
                        out[n, od, oh, ow, c] = m
            n, od, oh = next_row(n, od, oh, OD, OH)

    return win_fwd


WIN_FWD = Kernel("win_fwd", _win_fwd,
                 lambda red, i, dt: sig(dt, "x5", "o5", "j5", "i2", "i2", "i", "i"),
                 error_model="numpy")


def _win_avg_bwd(dtype):
    def win_avg_bwd(g, gx, start, count, n0, n1):
        """gx for samples (or planes) n0..n1: each output's gradient divided by its window
        size is spread over its columns into a row buffer, which is added to the window's
        rows. A sample is zeroed just before it is accumulated into: deterministic."""
        D, H, W, C = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
        OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
        WC = W * C
        col = np.empty(WC, gx.dtype)
        for n in range(n0, n1):
            gs = gx[n].reshape(D * H * WC)
            gs[:] = 0
            for od in range(OD):
                for oh in range(OH):
                    col[:] = 0
                    for ow in range(OW):
                        w0 = start[2, ow]
                        div = count[0, od] * count[1, oh] * count[2, ow]
                        for c in range(C):
                            v = g[n, od, oh, ow, c] / div
                            for iw in range(w0, w0 + count[2, ow]):
                                col[iw * C + c] += v
                    for i_d in range(start[0, od], start[0, od] + count[0, od]):
                        for i_h in range(start[1, oh], start[1, oh] + count[1, oh]):
                            r = (i_d * H + i_h) * WC
                            for k in range(WC):
                                gs[r + k] += col[k]

    return win_avg_bwd


WIN_AVG_BWD = Kernel("win_avg_bwd", _win_avg_bwd,
                     lambda dt: sig(dt, "x5", "o5", "i2", "i2", "i", "i"), error_model="numpy")


def _scatter_add(dtype):
    def scatter_add(g, idx, gx, bad, n0, n1):
        """Max-pooling gradient from indices, for samples n0..n1: gx[n] is zeroed, then each
        output's gradient is added at its index (flat per plane over D*H*W), in output
        row-major order as PyTorch adds them. An index outside the plane is counted in
        bad[n] and skipped."""
        D, H, W, C = gx.shape[1], gx.shape[2], gx.shape[3], gx.shape[4]
        plane = D * H * W
        n_out = g.shape[1] * g.shape[2] * g.shape[3]
        for n in range(n0, n1):
            gs = gx[n].reshape(plane * C)
            gs[:] = 0
            gf = g[n].reshape(n_out * C)
            jf = idx[n].reshape(n_out * C)
            nbad = 0
            for o in range(n_out):
                for c in range(C):
                    pos = jf[o * C + c]
                    if 0 <= pos < plane:
                        gs[pos * C + c] += gf[o * C + c]
                    else:
                        nbad += 1
            bad[n] = nbad

    return scatter_add


SCATTER_ADD = Kernel("scatter_add", _scatter_add,
                     lambda dt: sig(dt, "x5", "i5", "o5", "j1", "i", "i"))
