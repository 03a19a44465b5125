"""Average pooling kernels, forward beside backward.

Sums run in the accumulator dtype of ``out`` (float32 for float16/float32 input, float64 for
float64), starting at zero and adding a window's cells in row-major order as PyTorch does; a
window's divisor is ``cnt[0, od] * cnt[1, oh] * cnt[2, ow]``, held in the accumulator dtype (small
integers, so exact) so that the division rounds once, as PyTorch's does. Loops run
window offset outside and output column (or channel) inside, like the max kernels.
"""

from numba import njit, prange


@njit(cache=True, parallel=True, boundscheck=False)
def avg_fwd_cf(x, out, geo, lo, hi, cnt):
    P, D, H, W = x.shape
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    kd, sd, pd = geo[0, 0], geo[0, 1], geo[0, 3]
    kh, sh, ph = geo[1, 0], geo[1, 1], geo[1, 3]
    kw, sw, pw = geo[2, 0], geo[2, 1], geo[2, 3]
    for p in prange(P):
        for od in range(OD):
            for oh in range(OH):
                orow = out[p, od, oh]
                for ow in range(OW):
                    orow[ow] = 0
                for jd in range(kd):
                    if od < lo[0, jd] or od >= hi[0, jd]:
                        continue
                    i_d = od * sd - pd + jd
                    for jh in range(kh):
                        if oh < lo[1, jh] or oh >= hi[1, jh]:
                            continue
                        xrow = x[p, i_d, oh * sh - ph + jh]
                        for jw in range(kw):
                            off = jw - pw
                            for ow in range(lo[2, jw], hi[2, jw]):
                                orow[ow] += xrow[ow * sw + off]
                c = cnt[0, od] * cnt[1, oh]
                for ow in range(OW):
                    orow[ow] = orow[ow] / (c * cnt[2, ow])
    return out


@njit(cache=True, parallel=True, boundscheck=False)
def avg_bwd_cf(g, gx, geo, lo, hi, cnt):
    """gx = sum over windows of g / divisor on each in-bounds cell; planes are independent."""
    P, D, H, W = gx.shape
    OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    kd, sd, pd = geo[0, 0], geo[0, 1], geo[0, 3]
    kh, sh, ph = geo[1, 0], geo[1, 1], geo[1, 3]
    kw, sw, pw = geo[2, 0], geo[2, 1], geo[2, 3]
    for p in prange(P):
        plane = gx[p].reshape(D * H * W)
        plane[:] = 0
        for od in range(OD):
            for oh in range(OH):
                grow = g[p, od, oh]
                c = cnt[0, od] * cnt[1, oh]
                for jd in range(kd):
                    if od < lo[0, jd] or od >= hi[0, jd]:
                        continue
                    i_d = od * sd - pd + jd
                    for jh in range(kh):
                        if oh < lo[1, jh] or oh >= hi[1, jh]:
                            continue
                        gxrow = gx[p, i_d, oh * sh - ph + jh]
                        for jw in range(kw):
                            off = jw - pw
                            for ow in range(lo[2, jw], hi[2, jw]):
                                gxrow[ow * sw + off] += grow[ow] / (c * cnt[2, ow])
    return gx


@njit(cache=True, parallel=True, boundscheck=False)
def avg_fwd_cl(x, out, geo, lo, hi, cnt):
    N, D, H, W, C = x.shape
    OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
    kd, sd, pd = geo[0, 0], geo[0, 1], geo[0, 3]
    kh, sh, ph = geo[1, 0], geo[1, 1], geo[1, 3]
    kw, sw, pw = geo[2, 0], geo[2, 1], geo[2, 3]
    for t in prange(N * OD * OH):
        n = t // (OD * OH)
        od = (t // OH) % OD
        oh = t % OH
        for ow in range(OW):
            o = out[n, od, oh, ow]
            for c in range(C):
                o[c] = 0
        for jd in range(kd):
            if od < lo[0, jd] or od >= hi[0, jd]:
                continue
            i_d = od * sd - pd + jd
            for jh in range(kh):
                if oh < lo[1, jh] or oh >= hi[1, jh]:
                    continue
                i_h = oh * sh - ph + jh
                for jw in range(kw):
                    off = jw - pw
                    for ow in range(lo[2, jw], hi[2, jw]):
                        xv = x[n, i_d, i_h, ow * sw + off]
                        o = out[n, od, oh, ow]
                        for c in range(C):
                            o[c] += xv[c]
        cdh = cnt[0, od] * cnt[1, oh]
        for ow in range(OW):
            div = cdh * cnt[2, ow]
            o = out[n, od, oh, ow]
            for c in range(C):
                o[c] = o[c] / div
    return out


@njit(cache=True, parallel=True, boundscheck=False)
def avg_bwd_cl(g, gx, geo, lo, hi, cnt):
    N, D, H, W, C = gx.shape
    OD, OH, OW = g.shape[1], g.shape[2], g.shape[3]
    kd, sd, pd = geo[0, 0], geo[0, 1], geo[0, 3]
    kh, sh, ph = geo[1, 0], geo[1, 1], geo[1, 3]
    kw, sw, pw = geo[2, 0], geo[2, 1], geo[2, 3]
    for n in prange(N):
        sample = gx[n].reshape(D * H * W * C)
        sample[:] = 0
        for od in range(OD):
            for oh in range(OH):
                cdh = cnt[0, od] * cnt[1, oh]
                for jd in range(kd):
                    if od < lo[0, jd] or od >= hi[0, jd]:
                        continue
                    i_d = od * sd - pd + jd
                    for jh in range(kh):
                        if oh < lo[1, jh] or oh >= hi[1, jh]:
                            continue
                        i_h = oh * sh - ph + jh
                        for jw in range(kw):
                            off = jw - pw
                            for ow in range(lo[2, jw], hi[2, jw]):
                                div = cdh * cnt[2, ow]
                                gv = g[n, od, oh, ow]
                                gxv = gx[n, i_d, i_h, ow * sw + off]
                                for c in range(C):
                                    gxv[c] += gv[c] / div
    return gx
