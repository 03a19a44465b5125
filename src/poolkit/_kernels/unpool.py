"""Max-unpooling kernels: a scatter forward, a gather backward.

Arrays are (N, D, H, W, C), C-contiguous (channels-first arrives as (N*C, D, H, W, 1)); the
indices have the input's shape and are flat per plane over the OUTPUT's spatial dims. An index
outside the plane is never followed: it is counted in ``bad[n]`` and the engine raises.
Duplicate indices: the input cells are written in row-major order, so the last one wins.
"""

import numpy as np
from numba import njit

from ._jit import Kernel, sig
from .rows import fill


@njit(inline="always")
def _planes(a, n):
    return a[n].reshape(a.shape[1] * a.shape[2] * a.shape[3] * a.shape[4])


def _unpool_fwd(c1, dtype):
    def unpool_fwd(x, idx, out, bad, n0, n1):
        C = 1 if c1 else x.shape[4]
        n_in = x.shape[1] * x.shape[2] * x.shape[3]
        plane = out.shape[1] * out.shape[2] * out.shape[3]
        for n in range(n0, n1):
            xs = _planes(x, n)
            js = _planes(idx, n)
            os_ = _planes(out, n)
            fill(os_, 0)
            nbad = 0
            for i in range(n_in):
                for c in range(C):
                    pos = js[i * C + c]
                    if 0 <= pos < plane:  # then unsigned: no wraparound check
                        os_[np.uint64(pos * C + c)] = xs[i * C + c]
                    else:
                        nbad += 1
            bad[n] = nbad

    return unpool_fwd


UNPOOL_FWD = Kernel("unpool_fwd", _unpool_fwd,
                    lambda c1, dt: sig(dt, "x5", "i5", "o5", "j1", "i", "i"), cost=0.5)


def _unpool_bwd(c1, dtype):
    def unpool_bwd(g, idx, gx, bad, n0, n1):
        """gx[i] = g[idx[i]]: every input cell gets the gradient of the output cell it was
        written to (also a duplicate whose value was overwritten, as in PyTorch)."""
        C = 1 if c1 else gx.shape[4]
        n_in = gx.shape[1] * gx.shape[2] * gx.shape[3]
        plane = g.shape[1] * g.shape[2] * g.shape[3]
        for n in range(n0, n1):
            gs = _planes(g, n)
            js = _planes(idx, n)
            xs = _planes(gx, n)
            nbad = 0
            for i in range(n_in):
                for c in range(C):
                    pos = js[i * C + c]
                    if 0 <= pos < plane:
                        xs[i * C + c] = gs[np.uint64(pos * C + c)]
                    else:
                        xs[i * C + c] = 0
                        nbad += 1
            bad[n] = nbad

    return unpool_bwd


UNPOOL_BWD = Kernel("unpool_bwd", _unpool_bwd,
                    lambda c1, dt: sig(dt, "x5", "i5", "o5", "j1", "i", "i"), cost=0.5)
