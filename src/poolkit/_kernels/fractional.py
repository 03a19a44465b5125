"""Fractional max pooling kernels: windows of a fixed size whose starts differ per plane.

Arrays are (N, D, H, W, C), C-contiguous (channels-first arrives as (N*C, D, H, W, 1)). Plane
``p = n*C + c`` has its own starts ``start[p, r, o]`` per dim ``r`` and output ``o``; its window
is ``start .. start + k - 1`` in every dim, always inside the input (checked by the engine).
The scan is PyTorch's: row-major over the window, ``if v > m or v != v`` (first maximum, last
NaN). Its gradient is windows.scatter_add over the indices.
"""

import numpy as np
from numba import njit

from ._jit import Kernel, sig


@njit(boundscheck=False)
def _frac_plane(xs, ms, js, st, W, H, OD, OH, OW, C, c, KD, KH, KW, with_idx):
    """All outputs of one plane: xs/ms/js are the sample's flat input, output and index
    arrays, c the channel (stride C), st the plane's starts (3, O). Positions from the tables
    index as unsigned integers: Numba then skips its negative-index wraparound (they are
    validated non-negative by the engine)."""
    for od in range(OD):
        d0 = st[0, od]
        for oh in range(OH):
            h0 = st[1, oh]
            o0 = (od * OH + oh) * OW * C
            mrow = ms[o0 : o0 + OW * C]
            jrow = js[o0 : o0 + OW * C] if with_idx else js
            for ow in range(OW):
                w0 = st[2, ow]
                best = (d0 * H + h0) * W + w0
                m = xs[np.uint64(best * C + c)]
                for jd in range(KD):
                    for jh in range(KH):
                        base = ((d0 + jd) * H + h0 + jh) * W + w0
                        for jw in range(KW):
                            v = xs[np.uint64((base + jw) * C + c)]
                            t = v > m or v != v
                            m = v if t else m
                            best = base + jw if t else best
                mrow[ow * C + c] = m
                if with_idx:
                    jrow[ow * C + c] = best


def _frac_fwd(kd, kh, kw, with_idx, c1, dtype):
    # kd/kh/kw are literal window sizes (0: take them from k at run time).
    def frac_fwd(x, out, idx, start, k, n0, n1):
        D, H, W = x.shape[1], x.shape[2], x.shape[3]
        C = 1 if c1 else x.shape[4]
        OD, OH, OW = out.shape[1], out.shape[2], out.shape[3]
        xall = x.reshape(x.size)
        oall = out.reshape(out.size)
        iall = idx.reshape(idx.size)
        for n in range(n0, n1):
            xs = xall[n * D * H * W * C : (n + 1) * D * H * W * C]
            ms = oall[n * OD * OH * OW * C : (n + 1) * OD * OH * OW * C]
            js = iall[n * OD * OH * OW * C : (n + 1) * OD * OH * OW * C] if with_idx else iall
            for c in range(C):
                st = start[n * C + c]
                if kd and kh and kw:
                    _frac_plane(xs, ms, js, st, W, H, OD, OH, OW, C, c, kd, kh, kw, with_idx)
                else:
                    _frac_plane(xs, ms, js, st, W, H, OD, OH, OW, C, c, k[0], k[1], k[2],
                                with_idx)

    return frac_fwd


FRAC_FWD = Kernel("frac_fwd", _frac_fwd,
                  lambda kd, kh, kw, i, c1, dt: sig(dt, "x5", "o5", "j5", "i3", "i1", "i", "i"),
                  cost=1.5)


def literal_window(k: tuple[int, int, int]) -> tuple[int, int, int]:
    """The literal window sizes to compile for window ``k`` (D, H, W): 2x2 and 3x3 (2-D), or
    0s for a run-time window."""
    return k if k in ((1, 2, 2), (1, 3, 3)) else (0, 0, 0)
