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
A literal ``C1`` compiles the channels-first case (C == 1) without the channel loops, which
LLVM would not remove before vectorising.
"""

import numpy as np
from numba import njit

from ._jit import Kernel, sig
from .rows import fill, next_row, row_coords

RED_MAX = 0
RED_SUM = 1


@njit(inline="always")
def _take(v, m):
    return v > m or v != v


@njit(boundscheck=False)
def _rows_reduce(xr, n, rowv, rowi, tmpv, tmpi, start, count, od, oh, H, WC, RED, IDX):
    """Reduce the window rows of output row (od, oh) of sample ``n`` over all W*C columns into
    rowv (and their winning row into rowi), or, for a maximum, into tmpv/tmpi when it returns
    True; ``xr`` is the input as (N, D*H, W*C) rows. Rows are read as ``xr[n, r, k]``: the
    sample and row are loop-invariant, so the inner loop vectorises without a view made per
    row (a view costs as much as summing a short row).

    A maximum is written from one buffer into the other, row after row, never back into the
    buffer it reads: with ``m[k] = v if v > m[k] else m[k]`` in place the whole adaptive max
    kernel was 2x slower on this project's EPYC machine (measured). The likely cause, LLVM
    storing only the changed lanes with a masked store (microcoded on AMD CPUs), was not
    confirmed: a fresh compile's assembly of the in-place loop shows none."""
    first = True
    swapped = False
    av, ai, bv, bi = rowv, rowi, tmpv, tmpi
    for i_d in range(start[0, od], start[0, od] + count[0, od]):
        for i_h in range(start[1, oh], start[1, oh] + count[1, oh]):
            r = i_d * H + i_h
            if first:
                for k in range(WC):
                    rowv[k] = xr[n, r, k]
                if IDX:
                    fill(rowi, r)
                first = False
            elif RED == RED_SUM:
                for k in range(WC):
                    rowv[k] += xr[n, r, k]
            else:
                if IDX:
                    for k in range(WC):
                        v = xr[n, r, k]
                        m = av[k]
                        t = _take(v, m)
                        bv[k] = v if t else m
                        # bitwise, not a select: LLVM would load ai[k] only where t is false,
                        # a masked load (vpmaskmovq); nor a multiply (no int64 one in AVX2)
                        j = ai[k]
                        bi[k] = j ^ ((j ^ r) & -np.int64(t))
                else:
                    for k in range(WC):
                        v = xr[n, r, k]
                        m = av[k]
                        bv[k] = v if _take(v, m) else m
                av, bv = bv, av
                ai, bi = bi, ai
                swapped = not swapped
    return swapped


@njit(boundscheck=False)
def _cols_reduce(rowv, rowi, w0, w1, c, C, W, RED, IDX):
    """(value, flat index) of columns w0..w1-1 of channel c (index: row*W + column). Never
    indexed by a signed value LLVM cannot prove non-negative, which keeps Numba's
    negative-index wraparound in the loop (measured 3-4x slower in the row pass): the sum
    indexes the buffer unsigned (no view made per window), the max paths through a slice by
    loop counters."""
    if RED == RED_SUM:  # indexed unsigned: no view made per window, no wraparound check
        base = w0 * C + c
        m = rowv[np.uint64(base)]
        for j in range(1, w1 - w0):
            m += rowv[np.uint64(base + j * C)]
        return m, 0
    vs = rowv[w0 * C + c : w1 * C]
    m = vs[0]
    if not IDX:
        for j in range(1, w1 - w0):
            v = vs[j * C]
            m = v if v > m or v != v else m
        return m, 0
    rs = rowi[w0 * C + c : w1 * C]
    R = rs[0]
    best = w0
    for j in range(1, w1 - w0):
        v = vs[j * C]
        r = rs[j * C]
        iw = w0 + j
        if v != v:
            take = m == m or r >= R
        elif m != m:
            take = False
        else:
            take = v > m or (v == m and r < R)
        if take:
            m, R, best = v, r, iw
    return m, R * W + best


def _win_fwd(red, with_idx, c1, dtype):
    def win_fwd(x, out, idx, start, count, t0, t1):
        """Output rows t0..t1 (flat over N, OD, OH)."""
        D, H, W = x.shape[1], x.shape[2], x.shape[3]
        C = 1 if c1 else x.shape[4]
        OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
        WC = W * C
        xr = x.reshape(x.shape[0], D * H, WC)
        oall = out.reshape(out.size)
        iall = idx.reshape(idx.size)
        rowv = np.empty(WC, x.dtype)
        rowi = np.empty(WC if with_idx else 0, np.int64)
        tmpv = np.empty(0 if red == RED_SUM else WC, x.dtype)
        tmpi = np.empty(WC if with_idx else 0, np.int64)
        n, od, oh = row_coords(t0, OD, OH)
        for t in range(t0, t1):
            if _rows_reduce(xr, n, rowv, rowi, tmpv, tmpi, start, count, od, oh, H, WC, red,
                            with_idx):
                vv, vi = tmpv, tmpi
            else:
                vv, vi = rowv, rowi
            o0 = t * OW * C
            for ow in range(OW):
                w0 = start[2, ow]
                w1 = w0 + count[2, ow]
                for c in range(C):
                    m, j = _cols_reduce(vv, vi, w0, w1, c, C, W, red, with_idx)
                    if red == RED_SUM:
                        m = m / (count[0, od] * count[1, oh] * count[2, ow])
                    oall[o0 + ow * C + c] = m
                    if with_idx:
                        iall[o0 + ow * C + c] = j
            n, od, oh = next_row(n, od, oh, OD, OH)

    return win_fwd


WIN_FWD = Kernel("win_fwd", _win_fwd,
                 lambda red, i, c1, dt: sig(dt, "x5", "o5", "j5", "i2", "i2", "i", "i"),
                 error_model="numpy", cost=2.0)


def _plane_mean(c1, dtype):
    def plane_mean(x, out, n0, n1):
        """Global average of samples (or planes) n0..n1: out[n, c] = mean over D*H*W. Summed
        with reassociation allowed, so LLVM vectorises the reduction (another order than
        PyTorch's mean, the same to float rounding); a plane is read once, at memory speed."""
        C = 1 if c1 else x.shape[4]
        cells = x.shape[1] * x.shape[2] * x.shape[3]
        xall = x.reshape(x.size)
        acc = np.empty(C, x.dtype)
        for n in range(n0, n1):
            xs = xall[n * cells * C : (n + 1) * cells * C]
            if c1:
                s = x.dtype.type(0)
                for k in range(cells):
                    s += xs[k]
                out[n, 0, 0, 0, 0] = s / cells
            else:
                for c in range(C):
                    acc[c] = 0
                for k in range(cells):
                    for c in range(C):
                        acc[c] += xs[k * C + c]
                for c in range(C):
                    out[n, 0, 0, 0, c] = acc[c] / cells

    return plane_mean


PLANE_MEAN = Kernel("plane_mean", _plane_mean, lambda c1, dt: sig(dt, "x5", "o5", "i", "i"),
                    error_model="numpy", fastmath={"reassoc"}, cost=0.5)


def _win_avg_bwd(tiled, c1, dtype):
    def win_avg_bwd(g, gx, start, count, n0, n1):
        """gx for samples (or planes) n0..n1: each output's gradient divided by its window
        size is spread over its columns into a row buffer, which goes to the window's rows:
        added (the sample zeroed first) where windows overlap, or written once when they
        ``tiled`` the input (no overlap, every cell covered)."""
        D, H, W = gx.shape[1], gx.shape[2], gx.shape[3]
        C = 1 if c1 else gx.shape[4]
        OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
        WC = W * C
        col = np.empty(WC, gx.dtype)
        gxall = gx.reshape(gx.size)
        gall = g.reshape(g.size)
        for n in range(n0, n1):
            gs = gxall[n * D * H * WC : (n + 1) * D * H * WC]
            if not tiled:
                fill(gs, 0)
            for od in range(OD):
                for oh in range(OH):
                    if not tiled:
                        fill(col, 0)
                    g0 = ((n * OD + od) * OH + oh) * OW * C
                    grow = gall[g0 : g0 + OW * C]
                    for ow in range(OW):
                        w0 = start[2, ow]
                        cw = count[2, ow]
                        div = count[0, od] * count[1, oh] * cw
                        cs = col[w0 * C : (w0 + cw) * C]
                        for c in range(C):
                            v = grow[ow * C + c] / div
                            for j in range(cw):
                                if tiled:
                                    cs[j * C + c] = v
                                else:
                                    cs[j * C + c] += v
                    for i_d in range(start[0, od], start[0, od] + count[0, od]):
                        for i_h in range(start[1, oh], start[1, oh] + count[1, oh]):
                            r = (i_d * H + i_h) * WC
                            dst = gs[r : r + WC]
                            if tiled:
                                for k in range(WC):
                                    dst[k] = col[k]
                            else:
                                for k in range(WC):
                                    dst[k] += col[k]

    return win_avg_bwd


WIN_AVG_BWD = Kernel("win_avg_bwd", _win_avg_bwd,
                     lambda tiled, c1, dt: sig(dt, "x5", "o5", "i2", "i2", "i", "i"),
                     error_model="numpy", cost=1.0)


def _scatter_add(c1, dtype):
    def scatter_add(g, idx, gx, bad, n0, n1):
        """Max-pooling gradient from indices, for samples n0..n1: gx[n] is zeroed, then each
        output's gradient is added at its index (flat per plane over D*H*W), in output
        row-major order as PyTorch adds them. An index outside the plane is counted in
        bad[n] and skipped."""
        C = 1 if c1 else gx.shape[4]
        plane = gx.shape[1] * gx.shape[2] * gx.shape[3]
        n_out = g.shape[1] * g.shape[2] * g.shape[3]
        gxall = gx.reshape(gx.size)
        gall = g.reshape(g.size)
        iall = idx.reshape(idx.size)
        for n in range(n0, n1):
            gs = gxall[n * plane * C : (n + 1) * plane * C]
            for k in range(plane * C):
                gs[k] = 0
            gf = gall[n * n_out * C : (n + 1) * n_out * C]
            jf = iall[n * n_out * C : (n + 1) * n_out * C]
            nbad = 0
            for o in range(n_out):
                for c in range(C):
                    pos = jf[o * C + c]
                    if 0 <= pos < plane:  # then unsigned: no wraparound check
                        gs[np.uint64(pos * C + c)] += gf[o * C + c]
                    else:
                        nbad += 1
            bad[n] = nbad

    return scatter_add


SCATTER_ADD = Kernel("scatter_add", _scatter_add,
                     lambda c1, dt: sig(dt, "x5", "i5", "o5", "j1", "i", "i"), cost=0.5)
