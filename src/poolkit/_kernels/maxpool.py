"""Max pooling kernels, forward beside backward.

The update rule is PyTorch's: ``if v > m or v != v: m = v`` scanning each window in row-major
order, so ties go to the first maximum and a NaN wins (the index points at the last NaN).
Loops run window offset outside and output column inside: the inner loop walks one input row
with a fixed stride, which LLVM vectorises, and each window offset's valid output range is
precomputed so the inner loop has no bounds checks.
"""

import numpy as np
from numba import njit, prange

from .rows import window_rows


@njit(cache=True, inline="always")
def _better(v, m):
    return v > m or v != v


@njit(cache=True, inline="always")
def _hmax(xp, base, K, Dl):
    m = xp[base]
    for j in range(1, K):
        v = xp[base + j * Dl]
        m = v if _better(v, m) else m
    return m


@njit(cache=True, inline="always")
def _hargmax(xp, base, K, Dl):
    m = xp[base]
    i = base
    for j in range(1, K):
        v = xp[base + j * Dl]
        if _better(v, m):
            m = v
            i = base + j * Dl
    return m, i


@njit(cache=True, inline="always")
def _max_group(orow, xp, rows, g, nr, a, b, K, S, Dl, off, first):
    """Interior columns [a, b) of an output row: max over rows[g:g+nr] (1 to 3 rows), each
    row reduced horizontally first. Row by row, "last NaN else first maximum" composes, so
    this equals the row-major scan. K, S, Dl are constants at the specialised call sites."""
    o0 = rows[g] + off
    if nr == 1:
        if first:
            for ow in range(a, b):
                orow[ow] = _hmax(xp, o0 + ow * S, K, Dl)
        else:
            for ow in range(a, b):
                v = _hmax(xp, o0 + ow * S, K, Dl)
                orow[ow] = v if _better(v, orow[ow]) else orow[ow]
    elif nr == 2:
        o1 = rows[g + 1] + off
        for ow in range(a, b):
            m = _hmax(xp, o0 + ow * S, K, Dl)
            v = _hmax(xp, o1 + ow * S, K, Dl)
            m = v if _better(v, m) else m
            if not first:
                m = m if _better(m, orow[ow]) else orow[ow]
            orow[ow] = m
    else:
        o1 = rows[g + 1] + off
        o2 = rows[g + 2] + off
        for ow in range(a, b):
            m = _hmax(xp, o0 + ow * S, K, Dl)
            v = _hmax(xp, o1 + ow * S, K, Dl)
            m = v if _better(v, m) else m
            v = _hmax(xp, o2 + ow * S, K, Dl)
            m = v if _better(v, m) else m
            if not first:
                m = m if _better(m, orow[ow]) else orow[ow]
            orow[ow] = m


@njit(cache=True, boundscheck=False)
def _max_rows(orow, xp, rows, g, nr, a, b, kw, sw, dw, pw, first):
    # Constant window and stride let LLVM unroll the window and vectorise the column loop.
    if dw == 1:
        if kw == 2 and sw == 2:
            return _max_group(orow, xp, rows, g, nr, a, b, 2, 2, 1, -pw, first)
        if kw == 3 and sw == 2:
            return _max_group(orow, xp, rows, g, nr, a, b, 3, 2, 1, -pw, first)
        if kw == 3 and sw == 1:
            return _max_group(orow, xp, rows, g, nr, a, b, 3, 1, 1, -pw, first)
    return _max_group(orow, xp, rows, g, nr, a, b, kw, sw, dw, -pw, first)


@njit(cache=True, inline="always")
def _max_border(orow, xp, rows, g, nr, ow, W, kw, sw, dw, pw):
    start = ow * sw - pw
    for r in range(g, g + nr):
        for j in range(kw):
            pos = start + j * dw
            if 0 <= pos < W:
                v = xp[rows[r] + pos]
                if _better(v, orow[ow]):
                    orow[ow] = v


@njit(cache=True, parallel=True, boundscheck=False)
def max_fwd_cf(x, out, init, geo, lo, hi):
    P, D, H, W = x.shape
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    kw, sw, dw, pw, a, b = geo[2, 0], geo[2, 1], geo[2, 2], geo[2, 3], geo[2, 4], geo[2, 5]
    for p in prange(P):
        xp = x[p].reshape(D * H * W)
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        for od in range(OD):
            for oh in range(OH):
                orow = out[p, od, oh]
                n = window_rows(od, oh, geo, lo, hi, H, W, rows)
                if n == 0:
                    orow[:] = init
                    continue
                orow[:a] = init
                orow[b:] = init
                for g in range(0, n, 3):
                    nr = min(3, n - g)
                    _max_rows(orow, xp, rows, g, nr, a, b, kw, sw, dw, pw, g == 0)
                    for ow in range(a):
                        _max_border(orow, xp, rows, g, nr, ow, W, kw, sw, dw, pw)
                    for ow in range(b, OW):
                        _max_border(orow, xp, rows, g, nr, ow, W, kw, sw, dw, pw)
    return out


@njit(cache=True, boundscheck=False)
def _argmax_row_cf(xp, od, oh, mrow, irow, rows, init, geo, lo, hi, first, H, W):
    """Max and flat per-plane index of every window in output row (od, oh), torch's rule."""
    kw, sw, dw, pw, a, b = geo[2, 0], geo[2, 1], geo[2, 2], geo[2, 3], geo[2, 4], geo[2, 5]
    OW = mrow.shape[0]
    n = window_rows(od, oh, geo, lo, hi, H, W, rows)
    base = first[0, od] * H * W + first[1, oh] * W
    for ow in range(OW):
        mrow[ow] = init
        irow[ow] = base + first[2, ow]
    if n == 0:
        return
    off = -pw
    for r in range(n):
        ro = rows[r] + off
        for ow in range(a, b):
            v, i = _hargmax(xp, ro + ow * sw, kw, dw)
            if _better(v, mrow[ow]):
                mrow[ow] = v
                irow[ow] = i
        for ow in range(OW):
            if a <= ow < b:
                continue
            start = ow * sw - pw
            for j in range(kw):
                pos = start + j * dw
                if 0 <= pos < W:
                    v = xp[rows[r] + pos]
                    if _better(v, mrow[ow]):
                        mrow[ow] = v
                        irow[ow] = rows[r] + pos


@njit(cache=True, parallel=True, boundscheck=False)
def max_fwd_idx_cf(x, out, idx, init, geo, lo, hi, first):
    P, D, H, W = x.shape
    OD, OH = out.shape[1], out.shape[2]
    for p in prange(P):
        xp = x[p].reshape(D * H * W)
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        for od in range(OD):
            for oh in range(OH):
                _argmax_row_cf(
                    xp, od, oh, out[p, od, oh], idx[p, od, oh], rows, init, geo, lo, hi, first,
                    H, W,
                )
    return out, idx


@njit(cache=True, parallel=True, boundscheck=False)
def max_bwd_cf(x, g, gx, init, geo, lo, hi, first, valid):
    """gx[p] = scatter-add of g[p] at each window's argmax, in output row-major order (as torch).
    Each plane is zeroed just before it is scattered into, while it sits in cache, so it goes
    to memory once. ``valid[r, o]`` is 0 for a window with no in-bounds cell, whose gradient
    goes nowhere."""
    P, D, H, W = x.shape
    OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    for p in prange(P):
        xp = x[p].reshape(D * H * W)
        rows = np.empty(geo[0, 0] * geo[1, 0], np.int64)
        mrow = np.empty(OW, x.dtype)
        irow = np.empty(OW, np.int64)
        plane = gx[p].reshape(D * H * W)
        plane[:] = 0
        for od in range(OD):
            for oh in range(OH):
                if valid[0, od] == 0 or valid[1, oh] == 0:
                    continue
                _argmax_row_cf(xp, od, oh, mrow, irow, rows, init, geo, lo, hi, first, H, W)
                grow = g[p, od, oh]
                for ow in range(OW):
                    if valid[2, ow] != 0:
                        plane[irow[ow]] += grow[ow]
    return gx


@njit(cache=True, parallel=True, boundscheck=False)
def max_fwd_cl(x, out, init, geo, lo, hi):
    N, D, H, W, C = x.shape
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    kd, sd, dd, pd = geo[0, 0], geo[0, 1], geo[0, 2], geo[0, 3]
    kh, sh, dh, ph = geo[1, 0], geo[1, 1], geo[1, 2], geo[1, 3]
    kw, sw, dw, pw = geo[2, 0], geo[2, 1], geo[2, 2], geo[2, 3]
    for t in prange(N * OD * OH):
        n = t // (OD * OH)
        od = (t // OH) % OD
        oh = t % OH
        for ow in range(OW):
            o = out[n, od, oh, ow]
            for c in range(C):
                o[c] = init
        for jd in range(kd):
            if od < lo[0, jd] or od >= hi[0, jd]:
                continue
            i_d = od * sd - pd + jd * dd
            for jh in range(kh):
                if oh < lo[1, jh] or oh >= hi[1, jh]:
                    continue
                i_h = oh * sh - ph + jh * dh
                for jw in range(kw):
                    off = jw * dw - pw
                    for ow in range(lo[2, jw], hi[2, jw]):
                        xv = x[n, i_d, i_h, ow * sw + off]
                        o = out[n, od, oh, ow]
                        for c in range(C):
                            v = xv[c]
                            m = o[c]
                            o[c] = v if (v > m or v != v) else m
    return out


@njit(cache=True, boundscheck=False)
def _argmax_row_cl(x, n, od, oh, mrow, irow, init, geo, lo, hi, first):
    D, H, W, C = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    kd, sd, dd, pd = geo[0, 0], geo[0, 1], geo[0, 2], geo[0, 3]
    kh, sh, dh, ph = geo[1, 0], geo[1, 1], geo[1, 2], geo[1, 3]
    kw, sw, dw, pw = geo[2, 0], geo[2, 1], geo[2, 2], geo[2, 3]
    OW = mrow.shape[0]
    base = first[0, od] * H * W + first[1, oh] * W
    for ow in range(OW):
        f = base + first[2, ow]
        for c in range(C):
            mrow[ow, c] = init
            irow[ow, c] = f
    for jd in range(kd):
        if od < lo[0, jd] or od >= hi[0, jd]:
            continue
        i_d = od * sd - pd + jd * dd
        for jh in range(kh):
            if oh < lo[1, jh] or oh >= hi[1, jh]:
                continue
            i_h = oh * sh - ph + jh * dh
            rbase = (i_d * H + i_h) * W
            for jw in range(kw):
                off = jw * dw - pw
                for ow in range(lo[2, jw], hi[2, jw]):
                    iw = ow * sw + off
                    xv = x[n, i_d, i_h, iw]
                    for c in range(C):
                        v = xv[c]
                        if v > mrow[ow, c] or v != v:
                            mrow[ow, c] = v
                            irow[ow, c] = rbase + iw


@njit(cache=True, parallel=True, boundscheck=False)
def max_fwd_idx_cl(x, out, idx, init, geo, lo, hi, first):
    N = x.shape[0]
    OD, OH = out.shape[1], out.shape[2]
    for t in prange(N * OD * OH):
        n = t // (OD * OH)
        od = (t // OH) % OD
        oh = t % OH
        _argmax_row_cl(x, n, od, oh, out[n, od, oh], idx[n, od, oh], init, geo, lo, hi, first)
    return out, idx


@njit(cache=True, parallel=True, boundscheck=False)
def max_bwd_cl(x, g, gx, init, geo, lo, hi, first, valid):
    """Channels-last twin of max_bwd_cf; one sample per task, scattered in output order."""
    N, D, H, W, C = x.shape
    OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    for n in prange(N):
        mrow = np.empty((OW, C), x.dtype)
        irow = np.empty((OW, C), np.int64)
        sample = gx[n].reshape((D * H * W, C))
        sample[:, :] = 0
        for od in range(OD):
            for oh in range(OH):
                if valid[0, od] == 0 or valid[1, oh] == 0:
                    continue
                _argmax_row_cl(x, n, od, oh, mrow, irow, init, geo, lo, hi, first)
                for ow in range(OW):
                    if valid[2, ow] == 0:
                        continue
                    gv = g[n, od, oh, ow]
                    for c in range(C):
                        sample[irow[ow, c], c] += gv[c]
    return gx
