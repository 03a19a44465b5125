"""Max pooling kernels, forward beside backward.

Arrays are (N, D, H, W, C) and C-contiguous; a channels-first problem arrives as
(N*C, D, H, W, 1), so one kernel serves both layouts.

The rule is PyTorch's: scanning a window in row-major order, ``if v > m or v != v: m = v``, so
ties go to the first maximum and a NaN wins (its index is the last NaN's). The kernels reduce
window rows in pairs, each row left to right, and combine pairs in order; "last NaN, else first
maximum" composes that way, so value and index equal the row-major scan. An odd last row is
paired with itself, which changes neither.

Speed: each parallel task handles a chunk of output rows in one call compiled for literal
window width, stride, dilation and channel count (the entry points at the end), so LLVM unrolls
the window and vectorises the column (C == 1) or channel loop; interior columns need no bounds
checks and their row views start at the first window, so no runtime offset blocks
vectorisation. Row coordinates are stepped, not divided, and flat views are made once per
chunk: for short rows either costs as much as the pooling. What LLVM will not vectorise, found
by measurement: a loop that loads after a store it cannot prove independent, and a column loop
whose body is a one-trip channel loop around a large window (so C == 1 has loops of its own).
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
    chunk_bounds,
    next_row,
    row_coords,
    sizes,
    window_rows,
)


@njit(inline="always")
def _better(v, m):
    return v > m or v != v


@njit(inline="always")
def _group_max(x0, x1, x2, col, K, Dl, C, c, R):
    """Max over R (2 or 3) window rows (views x0, x1, x2) at columns col + j*Dl, channel c."""
    m = x0[col * C + c]
    for j in range(1, K):
        v = x0[(col + j * Dl) * C + c]
        m = v if _better(v, m) else m
    for j in range(K):
        v = x1[(col + j * Dl) * C + c]
        m = v if _better(v, m) else m
    if R == 3:
        for j in range(K):
            v = x2[(col + j * Dl) * C + c]
            m = v if _better(v, m) else m
    return m


@njit(inline="always")
def _group_argmax(x0, x1, x2, s0, s1, s2, col, K, Dl, C, c, R):
    """Max over R (2 or 3) window rows (views x0, x1, x2 starting at flat cells s0, s1, s2)
    and its flat spatial index, by PyTorch's scan in row-major order (a cell wins if greater
    or NaN: the first maximum, or the last NaN) written as selects, not branches (random data
    would mispredict every one). The winner's row and column are int32 (lanes as wide as
    float32's; an int64 division has no vector instruction and kept the loop scalar). A
    missing row may repeat the row before it: its cells are then never greater."""
    m = x0[col * C + c]
    rk = jk = np.int32(0)
    for j in range(1, K):
        v = x0[(col + j * Dl) * C + c]
        t = (v > m) | (v != v)
        m = v if t else m
        jk = np.int32(j) if t else jk
    for j in range(K):
        v = x1[(col + j * Dl) * C + c]
        t = (v > m) | (v != v)
        m = v if t else m
        rk = np.int32(1) if t else rk
        jk = np.int32(j) if t else jk
    if R == 3:
        for j in range(K):
            v = x2[(col + j * Dl) * C + c]
            t = (v > m) | (v != v)
            m = v if t else m
            rk = np.int32(2) if t else rk
            jk = np.int32(j) if t else jk
    s = s0 if rk == 0 else (s1 if rk == 1 else s2)
    return m, s + col + jk * Dl


@njit(inline="always")
def _merge(sv, si, dv, di, q, m, i, fresh):
    """dv[q], di[q] = the later group's (m, i) if it wins under PyTorch's rule (greater, or a
    NaN) or is the first (``fresh``: sv, si are then not yet set), else the earlier groups'
    sv[q], si[q]; into other buffers than it reads and with bitwise index selection (a select
    may make LLVM load the old index under a mask)."""
    p = sv[q]
    j = si[q]
    t = fresh | (m > p) | (m != m)
    dv[q] = m if t else p
    di[q] = j ^ ((j ^ i) & -np.int64(t))


@njit(inline="always")
def _border(mrow, irow, xs, rows, g, nr, ow, W, K, S, Dl, pw, C, with_idx):
    """Border column ow: cell by cell with bounds checks, rows[g:g+nr] in order. Inlined
    although border columns are few: as a called function in the row loop it halved the 2x2
    kernel's speed (commit 1dc2b99)."""
    start = ow * S - pw
    for r in range(g, g + nr):
        for j in range(K):
            pos = start + j * Dl
            if 0 <= pos < W:
                for c in range(C):
                    v = xs[(rows[r] + pos) * C + c]
                    if _better(v, mrow[ow * C + c]):
                        mrow[ow * C + c] = v
                        if with_idx:
                            irow[ow * C + c] = rows[r] + pos


@njit(inline="always")
def _row_3s2(xr, e, pm, o, n, first):
    """One window row of 3-wide, stride-2 windows over a channels-first row ``xr`` (starting
    at the first interior window), merged into output cells o[:n] (``first``: set them).

    Written with scratch rows because LLVM vectorises xr[2i], xr[2i+1] and xr[2i+2] in one
    loop with a gather for xr[2i]: the whole 3x3/2 kernel took 11.4 ms with it and 7.7 ms
    without, single-thread on (32, 32, 112, 112) float32. Here every loop reads
    either a whole stride-2 pair, which becomes wide loads and shuffles, or a contiguous row:
    e[i] = xr[2i], pm[i] = the pair's maximum, then the window's is pm[i] against e[i+1]. The
    order of comparisons is the row-major scan's."""
    for i in range(n):
        u = xr[2 * i]
        v = xr[2 * i + 1]
        e[i] = u
        pm[i] = v if _better(v, u) else u
    e[n] = xr[2 * n]
    if first:
        for i in range(n):
            m = pm[i]
            v = e[i + 1]
            o[i] = v if _better(v, m) else m
    else:
        for i in range(n):
            m = pm[i]
            v = e[i + 1]
            m = v if _better(v, m) else m
            p = o[i]
            o[i] = m if _better(m, p) else p


@njit(boundscheck=False, _nrt=False)
def _max_chunk(x, out, t0, t1, init, geo, lo, hi, rows, dummy, e, pm, K, S, Dl, C, R, T):
    """Output rows t0..t1 (flat over N, OD, OH) of max pooling without indices; window rows
    are taken R (2 or 3) at a time, the last valid row standing in for missing ones.
    ``T`` (literal) 1: windows 3 wide, stride 2, C == 1, by _row_3s2 with ``e`` and ``pm``
    scratch rows of OW + 1 cells (else unused)."""
    D, H, W = x.shape[1], x.shape[2], x.shape[3]
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    pw, a, b = geo[2, 3], geo[2, 4], geo[2, 5]
    n_in = max(b - a, 0)
    # Flat views made once: a reshape per (short) row costs as much as pooling it.
    plane, orl = D * H * W * C, OW * C
    xall = x.reshape(x.size)
    oall = out.reshape(out.size)
    n, od, oh = row_coords(t0, OD, OH)
    for t in range(t0, t1):
        xs = xall[n * plane : (n + 1) * plane]
        orow = oall[t * orl : (t + 1) * orl]
        nr = window_rows(od, oh, geo, lo, hi, H, W, rows)
        n, od, oh = next_row(n, od, oh, OD, OH)
        if nr == 0:
            orow[:] = init
            continue
        orow[: a * C] = init
        orow[b * C :] = init
        o = orow[a * C :]
        for g in range(0, nr, R):
            k = min(R, nr - g)  # the group's window rows
            x0 = xs[(rows[g] + a * S - pw) * C :]
            x1 = xs[(rows[min(g + 1, nr - 1)] + a * S - pw) * C :]
            x2 = xs[(rows[min(g + 2, nr - 1)] + a * S - pw) * C :]
            # C == 1 gets loops without the channel loop: LLVM does not remove a one-trip
            # loop around a large body before vectorising, and then the column loop stays
            # scalar (measured for 3x3/2: 12 -> 7.6 ms). The tests on T, then on C alone come
            # first: with literal T and C, Numba prunes the other loops before compiling them.
            if T == 1:
                if n_in > 0:
                    for r in range(g, g + k):
                        xr = xs[rows[r] + a * S - pw :]
                        _row_3s2(xr, e, pm, o, n_in, r == 0)
            elif C == 1:
                if g == 0:
                    for ow in range(n_in):
                        o[ow] = _group_max(x0, x1, x2, ow * S, K, Dl, 1, 0, R)
                else:
                    for ow in range(n_in):
                        m = _group_max(x0, x1, x2, ow * S, K, Dl, 1, 0, R)
                        p = o[ow]
                        o[ow] = m if _better(m, p) else p
            elif g == 0:
                for ow in range(n_in):
                    for c in range(C):
                        o[ow * C + c] = _group_max(x0, x1, x2, ow * S, K, Dl, C, c, R)
            else:
                for ow in range(n_in):
                    for c in range(C):
                        m = _group_max(x0, x1, x2, ow * S, K, Dl, C, c, R)
                        p = o[ow * C + c]
                        o[ow * C + c] = m if _better(m, p) else p
            for ow in range(a):
                _border(orow, dummy, xs, rows, g, k, ow, W, K, S, Dl, pw, C, False)
            for ow in range(b, OW):
                _border(orow, dummy, xs, rows, g, k, ow, W, K, S, Dl, pw, C, False)


@njit(inline="always")
def _argmax_row(xs, od, oh, mrow, irow, tmrow, tirow, rows, init, geo, lo, hi, first, H, W, K,
                S, Dl, C, R):
    """Max and flat per-plane spatial index of every window of output row (od, oh), into mrow
    and irow (tmrow and tirow: scratch rows of the same sizes).

    Window rows are taken R (2 or 3) at a time, each group's (max, index) found without
    branches and merged into the earlier groups' with PyTorch's rule (a later group wins on a
    greater value or a NaN). The merge writes into the other of two buffers, never back into
    the one it reads (as in windows._rows_reduce, where in place was 2x slower). (3x3/2 pad 1
    with indices took ~30x the time of 3x3/2 without, single-thread, when this was a branchy
    scan with runtime window sizes.)"""
    pw, a, b = geo[2, 3], geo[2, 4], geo[2, 5]
    OW = mrow.shape[0] // C
    n_in = max(b - a, 0)
    nr = window_rows(od, oh, geo, lo, hi, H, W, rows)
    base = first[0, od] * H * W + first[1, oh] * W
    for ow in range(OW):
        f = base + first[2, ow]
        for c in range(C):
            mrow[ow * C + c] = init
            irow[ow * C + c] = f
    m_in = mrow[a * C :]
    i_in = irow[a * C :]
    tm_in = tmrow[a * C :]
    ti_in = tirow[a * C :]
    for g in range(0, nr, R):
        r1 = rows[min(g + 1, nr - 1)]
        r2 = rows[min(g + 2, nr - 1)]
        s0 = rows[g] + a * S - pw
        s1 = r1 + a * S - pw
        s2 = r2 + a * S - pw
        x0 = xs[s0 * C :]
        x1 = xs[s1 * C :]
        x2 = xs[s2 * C :]
        # The first group is a merge that takes the group's values whatever the scratch rows
        # hold: one inlined copy of the group code fewer (each costs seconds of compilation)
        fresh = g == 0
        if (g // R) % 2 == 1:
            sv, si, dv, di = m_in, i_in, tm_in, ti_in
        else:
            sv, si, dv, di = tm_in, ti_in, m_in, i_in
        # C == 1 without the channel loop: LLVM does not remove a one-trip loop around a
        # large body before vectorising (as in _max_chunk).
        if C == 1:
            for ow in range(n_in):
                m, i = _group_argmax(x0, x1, x2, s0, s1, s2, ow * S, K, Dl, 1, 0, R)
                _merge(sv, si, dv, di, ow, m, i, fresh)
        else:
            for ow in range(n_in):
                for c in range(C):
                    m, i = _group_argmax(x0, x1, x2, s0, s1, s2, ow * S, K, Dl, C, c, R)
                    _merge(sv, si, dv, di, ow * C + c, m, i, fresh)
        k = min(R, nr - g)
        for ow in range(a):
            _border(mrow, irow, xs, rows, g, k, ow, W, K, S, Dl, pw, C, True)
        for ow in range(b, OW):
            _border(mrow, irow, xs, rows, g, k, ow, W, K, S, Dl, pw, C, True)
    if nr > 0 and ((nr - 1) // R) % 2 == 1:  # the last group was merged into the scratch rows
        for k in range(n_in * C):
            m_in[k] = tm_in[k]
            i_in[k] = ti_in[k]


@njit(boundscheck=False, _nrt=False)
def _max_idx_chunk(x, out, idx, t0, t1, init, geo, lo, hi, first, rows, tmrow, tirow, K, S, Dl,
                   C, R):
    D, H, W = x.shape[1], x.shape[2], x.shape[3]
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    plane, orl = D * H * W * C, OW * C
    xall = x.reshape(x.size)
    oall = out.reshape(out.size)
    iall = idx.reshape(idx.size)
    n, od, oh = row_coords(t0, OD, OH)
    for t in range(t0, t1):
        _argmax_row(
            xall[n * plane : (n + 1) * plane], od, oh, oall[t * orl : (t + 1) * orl],
            iall[t * orl : (t + 1) * orl], tmrow, tirow, rows, init, geo, lo, hi, first, H, W,
            K, S, Dl, C, R,
        )
        n, od, oh = next_row(n, od, oh, OD, OH)


@njit(inline="always")
def _tiled_bwd_row(xs, gs, grow, rows, nr, mrow, found, OW, K, C):
    """Gradient cells of one output row whose windows tile their nr input rows: each cell is
    written once, g at its window's argmax and 0 elsewhere, without computing indices.

    The argmax under PyTorch's rule is the first cell equal to the window's maximum (the
    maximum only changes on a strictly greater value), or the last NaN if the maximum is NaN;
    both are found with selects, so the loops vectorise (random data mispredicts branches)."""
    zero = grow.dtype.type(0)
    any_nan = False
    if nr <= 2:
        # One pair of rows (the 2-D common case): all in registers, one loop per gradient row.
        # Each loop loads everything it needs before it stores, and stores to one row only:
        # otherwise LLVM cannot rule out that a store feeds a later load, and runs the scalar
        # loop with unpredictable branches (measured 5x slower).
        x0 = xs[rows[0] * C :]
        x1 = xs[rows[nr - 1] * C :]
        g0 = gs[rows[0] * C :]
        g1 = gs[rows[nr - 1] * C :]
        for ow in range(OW):
            for c in range(C):
                m = _group_max(x0, x1, x1, ow * K, K, 1, C, c, 2)
                gv = grow[ow * C + c]
                any_nan |= m != m
                done = False
                for j in range(K):
                    hit = (x0[(ow * K + j) * C + c] == m) & (not done)
                    done |= hit
                    g0[(ow * K + j) * C + c] = gv if hit else zero
        if nr == 2:
            for ow in range(OW):
                for c in range(C):
                    m = _group_max(x0, x1, x1, ow * K, K, 1, C, c, 2)
                    gv = grow[ow * C + c]
                    done = False
                    for j in range(K):
                        done |= x0[(ow * K + j) * C + c] == m
                    for j in range(K):
                        hit = (x1[(ow * K + j) * C + c] == m) & (not done)
                        done |= hit
                        g1[(ow * K + j) * C + c] = gv if hit else zero
    else:
        for i in range(OW * C):
            found[i] = 0
        for g in range(0, nr, 2):
            x0 = xs[rows[g] * C :]
            x1 = xs[rows[min(g + 1, nr - 1)] * C :]
            if g == 0:
                for ow in range(OW):
                    for c in range(C):
                        mrow[ow * C + c] = _group_max(x0, x1, x1, ow * K, K, 1, C, c, 2)
            else:
                for ow in range(OW):
                    for c in range(C):
                        m = _group_max(x0, x1, x1, ow * K, K, 1, C, c, 2)
                        p = mrow[ow * C + c]
                        mrow[ow * C + c] = m if _better(m, p) else p
        for i in range(OW * C):
            any_nan |= mrow[i] != mrow[i]
        for r in range(nr):
            xr = xs[rows[r] * C :]
            gr = gs[rows[r] * C :]
            for ow in range(OW):
                for c in range(C):
                    m = mrow[ow * C + c]
                    gv = grow[ow * C + c]
                    done = found[ow * C + c] != 0
                    for j in range(K):
                        hit = (xr[(ow * K + j) * C + c] == m) & (not done)
                        done |= hit
                        gr[(ow * K + j) * C + c] = gv if hit else zero
                    found[ow * C + c] = done
    if any_nan:
        # A NaN maximum: no cell compared equal, so the window's cells are all 0; the
        # gradient goes to the window's last NaN.
        for ow in range(OW):
            for c in range(C):
                last = -1
                for r in range(nr):
                    for j in range(K):
                        pos = (rows[r] + ow * K + j) * C + c
                        if xs[pos] != xs[pos]:
                            last = pos
                if last >= 0:
                    gs[last] = grow[ow * C + c]


@njit(boundscheck=False, _nrt=False)
def _max_bwd_tiled(x, g, gx, n, geo, lo, hi, rows, mrow, found, K, C):
    """gx[n] from g[n] when the windows tile the input (no overlap, padding or partial
    windows): every gradient cell is written exactly once (_tiled_bwd_row), and the cells no
    window covers are zeroed."""
    D, H, W = x.shape[1], x.shape[2], x.shape[3]
    OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    xs = x[n].reshape(D * H * W * C)
    gs = gx[n].reshape(D * H * W * C)
    gsample = g[n].reshape(OD * OH * OW * C)
    for i_d in range(D):
        for i_h in range(H):
            ro = (i_d * H + i_h) * W
            if i_d >= OD * geo[0, 0] or i_h >= OH * geo[1, 0]:
                gs[ro * C : (ro + W) * C] = 0
            else:
                gs[(ro + OW * K) * C : (ro + W) * C] = 0
    for od in range(OD):
        for oh in range(OH):
            grow = gsample[(od * OH + oh) * OW * C : (od * OH + oh + 1) * OW * C]
            nr = window_rows(od, oh, geo, lo, hi, H, W, rows)
            _tiled_bwd_row(xs, gs, grow, rows, nr, mrow, found, OW, K, C)


@njit(boundscheck=False, _nrt=False)
def _max_bwd_scatter(x, g, gx, n, init, geo, lo, hi, first, valid, rows, mrow, irow, tm, ti, K, S,
                     Dl, C, R):
    """gx[n] from g[n], general case: the sample is zeroed while in cache, then each window's
    gradient is added at its argmax in output row-major order, as PyTorch does, so
    overlapping windows accumulate identically."""
    D, H, W = x.shape[1], x.shape[2], x.shape[3]
    OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    xs = x[n].reshape(D * H * W * C)
    gs = gx[n].reshape(D * H * W * C)
    gsample = g[n].reshape(OD * OH * OW * C)
    gs[:] = 0
    for od in range(OD):
        for oh in range(OH):
            if valid[0, od] == 0 or valid[1, oh] == 0:
                continue
            grow = gsample[(od * OH + oh) * OW * C : (od * OH + oh + 1) * OW * C]
            _argmax_row(xs, od, oh, mrow, irow, tm, ti, rows, init, geo, lo, hi, first, H, W, K, S,
                        Dl, C, R)
            for ow in range(OW):
                if valid[2, ow] == 0:
                    continue
                for c in range(C):
                    gs[irow[ow * C + c] * C + c] += grow[ow * C + c]


# Entry points (see engine.py): one Kernel per entry, one specialisation per (variant, dtype)
# (see _jit.py and rows.variant). The variant is a compile-time constant of each
# specialisation, so Numba prunes the other variants' branches and a specialisation compiles
# only its own code: literal window width, stride and channel count for the common 2-D cases
# (the table is rows.sizes); anything else runs the same code with runtime values. Each entry
# runs a range of tasks (output-row chunks or samples); poolkit._threads runs ranges on
# several threads.


def _max_fwd(variant, dtype):
    mode, K, S, R = sizes(variant)
    T = 1 if (mode, K, S) == (SIZES_LITERAL_C1, 3, 2) else 0  # _row_3s2's windows

    def max_fwd(x, out, init, geo, lo, hi, n_chunks, c0, c1):
        n_rows = out.shape[0] * out.shape[1] * out.shape[2]
        kw, sw, dw, C = geo[2, 0], geo[2, 1], geo[2, 2], x.shape[4]
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        dummy = np.empty(0, np.int64)
        e = np.empty(out.shape[3] + 1 if T == 1 else 0, x.dtype)  # scratch rows of _row_3s2
        pm = np.empty(out.shape[3] + 1 if T == 1 else 0, x.dtype)
        for ch in range(c0, c1):
            t0, t1 = chunk_bounds(ch, n_chunks, n_rows)
            if mode == SIZES_LITERAL_C1:
                _max_chunk(x, out, t0, t1, init, geo, lo, hi, rows, dummy, e, pm, K, S, 1, 1, R,
                           T)
            elif mode == SIZES_LITERAL:
                _max_chunk(x, out, t0, t1, init, geo, lo, hi, rows, dummy, e, pm, K, S, 1, C, R,
                           0)
            elif mode == SIZES_RUNTIME_C1:
                _max_chunk(x, out, t0, t1, init, geo, lo, hi, rows, dummy, e, pm, kw, sw, dw, 1,
                           2, 0)
            else:
                _max_chunk(x, out, t0, t1, init, geo, lo, hi, rows, dummy, e, pm, kw, sw, dw, C,
                           2, 0)

    return max_fwd


def _max_fwd_idx(variant, dtype):
    mode, K, S, R = sizes(variant)

    def max_fwd_idx(x, out, idx, init, geo, lo, hi, first, n_chunks, c0, c1):
        n_rows = out.shape[0] * out.shape[1] * out.shape[2]
        kw, sw, dw, C = geo[2, 0], geo[2, 1], geo[2, 2], x.shape[4]
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        tm = np.empty(out.shape[3] * C, x.dtype)  # scratch rows of _argmax_row
        ti = np.empty(out.shape[3] * C, np.int64)
        for ch in range(c0, c1):
            t0, t1 = chunk_bounds(ch, n_chunks, n_rows)
            if mode == SIZES_LITERAL_C1:
                _max_idx_chunk(x, out, idx, t0, t1, init, geo, lo, hi, first, rows, tm, ti,
                               K, S, 1, 1, R)
            elif mode == SIZES_LITERAL:
                _max_idx_chunk(x, out, idx, t0, t1, init, geo, lo, hi, first, rows, tm, ti,
                               K, S, 1, C, R)
            elif mode == SIZES_RUNTIME_C1:
                _max_idx_chunk(x, out, idx, t0, t1, init, geo, lo, hi, first, rows, tm, ti,
                               kw, sw, dw, 1, 2)
            else:
                _max_idx_chunk(x, out, idx, t0, t1, init, geo, lo, hi, first, rows, tm, ti,
                               kw, sw, dw, C, 2)

    return max_fwd_idx


def _max_bwd(variant, tiled, dtype):
    # Windows that tile the input keep literal sizes for 2x2 only; overlapping, padded or
    # partial windows for every literal variant: with run-time sizes each window's argmax
    # costs ~80 ns (loops of unknown trip count, an integer division), 20x the literal 3x3 code.
    mode, K, S, R = sizes(variant, (V_2x2_C1, V_2x2)) if tiled else sizes(variant)

    def max_bwd(x, g, gx, init, geo, lo, hi, first, valid, n0, n1):
        """Gradient of max pooling for samples (or channels-first planes) n0..n1: each task
        writes only its own samples, so results are race-free and deterministic.
        ``valid[r, o]`` is 0 for a window with no in-bounds cell, whose gradient goes nowhere."""
        kw, sw, dw, C = geo[2, 0], geo[2, 1], geo[2, 2], x.shape[4]
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        mrow = np.empty(g.shape[3] * C, x.dtype)
        irow = np.empty(g.shape[3] * C, np.int64)
        tm = np.empty(0 if tiled else g.shape[3] * C, x.dtype)  # scratch rows of _argmax_row
        ti = np.empty(0 if tiled else g.shape[3] * C, np.int64)
        for n in range(n0, n1):
            if tiled:
                if mode == SIZES_LITERAL_C1:
                    _max_bwd_tiled(x, g, gx, n, geo, lo, hi, rows, mrow, irow, K, 1)
                elif mode == SIZES_LITERAL:
                    _max_bwd_tiled(x, g, gx, n, geo, lo, hi, rows, mrow, irow, K, C)
                elif mode == SIZES_RUNTIME_C1:
                    _max_bwd_tiled(x, g, gx, n, geo, lo, hi, rows, mrow, irow, kw, 1)
                else:
                    _max_bwd_tiled(x, g, gx, n, geo, lo, hi, rows, mrow, irow, kw, C)
            elif mode == SIZES_LITERAL_C1:
                _max_bwd_scatter(x, g, gx, n, init, geo, lo, hi, first, valid, rows, mrow, irow,
                                 tm, ti, K, S, 1, 1, R)
            elif mode == SIZES_LITERAL:
                _max_bwd_scatter(x, g, gx, n, init, geo, lo, hi, first, valid, rows, mrow, irow,
                                 tm, ti, K, S, 1, C, R)
            elif mode == SIZES_RUNTIME_C1:
                _max_bwd_scatter(x, g, gx, n, init, geo, lo, hi, first, valid, rows, mrow, irow,
                                 tm, ti, kw, sw, dw, 1, 2)
            else:
                _max_bwd_scatter(x, g, gx, n, init, geo, lo, hi, first, valid, rows, mrow, irow,
                                 tm, ti, kw, sw, dw, C, 2)

    return max_bwd


MAX_FWD = Kernel("max_fwd", _max_fwd, lambda v, dt: sig(dt, "x5", "o5", "s", "i2", "i2", "i2",
                                                          "i", "i", "i"), cost=3.4)
MAX_FWD_IDX = Kernel("max_fwd_idx", _max_fwd_idx,
                     lambda v, dt: sig(dt, "x5", "o5", "j5", "s", "i2", "i2", "i2", "i2", "i",
                                       "i", "i"), cost=3.5)
MAX_BWD = Kernel("max_bwd", _max_bwd,
                 lambda v, t, dt: sig(dt, "x5", "x5", "o5", "s", "i2", "i2", "i2", "i2", "i2",
                                      "i", "i"), cost=4.3)
