"""Dense-layer kernels: z = x @ kernel + b and its gradients, without BLAS (whose own threads
fight poolkit's on a small machine).

The kernel is held transposed in memory: ``wt`` (units, in) C-contiguous (the layer exposes
``wt.T``, Keras's (in, units) shape), so every inner loop runs over the long, contiguous ``in``
axis. x (N, in), z and the output gradient g (N, units).

Each kernel is ONE serial, GIL-free body over a task range ``[lo, hi)`` (rows of x, or units
for the weight gradient: every task writes its own rows, so results do not depend on the thread
count); :func:`poolkit._threads.parallel_for` runs the ranges on several threads when the work
reaches ``PAR_MIN_WORK`` multiply-adds (1M, as before the engine's own thread pool). On the
tutorial's Dense (32 x 5408 -> 10, 1.7M multiply-adds) a kernel took 70-90 us serial on a quiet
day and 300-380 us on a busy one (2026-12-02); run serially from 8M multiply-adds, a training
step's dense layers also left poolkit's worker idle long enough to fall asleep before the next
pooling call (a 60-80 us wake-up there). In-process A/B over 8 alternating rounds of 125
training steps: 588 ms parallel against 718 ms serial (medians). The entry points check every
shape against the others before a kernel runs (the kernels do no bounds checks).
"""

from __future__ import annotations

import numpy as np

from .._threads import parallel_for
from ._jit import Kernel, sig

__all__ = ["PAR_MIN_WORK", "dense_forward", "dense_backward_params", "dense_backward_input"]

PAR_MIN_WORK = 1 << 20  # multiply-adds below which a kernel runs in the calling thread


def _dense_fwd_tasks(x, wt, b, z, lo, hi):
    """z[n, u] = x[n] . wt[u] + b[u] for rows lo <= n < hi."""
    D = x.shape[1]
    U = wt.shape[0]
    for n in range(lo, hi):
        xr = x[n]
        for u in range(U):
            wr = wt[u]
            s = 0.0
            for k in range(D):
                s += xr[k] * wr[k]
            z[n, u] = s + b[u]


def _dense_bwd_params_tasks(x, g, gwt, gb, lo, hi):
    """gwt[u] = sum_n g[n, u] x[n] and gb[u] = sum_n g[n, u] for units lo <= u < hi."""
    N, D = x.shape
    for u in range(lo, hi):
        row = gwt[u]
        row[:] = 0.0
        s = 0.0
        for n in range(N):
            gv = g[n, u]
            s += gv
            xr = x[n]
            for k in range(D):
                row[k] += gv * xr[k]
        gb[u] = s


def _dense_bwd_input_tasks(g, wt, gx, lo, hi):
    """gx[n] = sum_u g[n, u] wt[u] for rows lo <= n < hi."""
    D = gx.shape[1]
    U = wt.shape[0]
    for n in range(lo, hi):
        r = gx[n]
        r[:] = 0.0
        for u in range(U):
            gv = g[n, u]
            wr = wt[u]
            for k in range(D):
                r[k] += gv * wr[k]


# One compiled kernel per dtype (see _jit.Kernel). The forward dot product may reassociate
# (vectorised); NaN and inf keep their meaning (no 'nnan'/'ninf' fast-math).
DENSE_FWD = Kernel("dense_fwd", lambda dt: _dense_fwd_tasks,
                   lambda dt: sig(dt, "x2", "x2", "x1", "o2", "i", "i"),
                   fastmath={"reassoc", "contract"}, cost=0.15)
DENSE_BWD_PARAMS = Kernel("dense_bwd_params", lambda dt: _dense_bwd_params_tasks,
                          lambda dt: sig(dt, "x2", "x2", "o2", "o1", "i", "i"), cost=0.2)
DENSE_BWD_INPUT = Kernel("dense_bwd_input", lambda dt: _dense_bwd_input_tasks,
                         lambda dt: sig(dt, "x2", "x2", "o2", "i", "i"), cost=0.15)


def _check(arrays, dtype) -> None:
    for name, a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype != dtype:
            raise ValueError(f"dense kernel: {name} must be a {dtype} array, got "
                             f"{getattr(a, 'dtype', type(a).__name__)}")


def _check_shapes(x_shape, wt_shape, z_shape) -> None:
    n, d = x_shape if len(x_shape) == 2 else (-1, -1)
    if len(wt_shape) != 2 or wt_shape[1] != d or tuple(z_shape) != (n, wt_shape[0]):
        raise ValueError(f"dense kernel: x {tuple(x_shape)}, transposed kernel "
                         f"{tuple(wt_shape)} and output {tuple(z_shape)} disagree")


def _run(kernel, n_tasks: int, work: int, *args) -> None:
    if work >= PAR_MIN_WORK:
        parallel_for(kernel, n_tasks, *args)
    elif n_tasks:
        kernel(*args, 0, n_tasks)


def dense_forward(x, wt, b, z) -> np.ndarray:
    """Fill ``z`` (N, units) with ``x @ wt.T + b``; returns ``z``. ``x`` (N, in), ``wt``
    (units, in), ``b`` (units,), one float dtype."""
    _check((("x", x), ("wt", wt), ("b", b), ("z", z)), wt.dtype)
    _check_shapes(x.shape, wt.shape, z.shape)
    if b.shape != (wt.shape[0],):
        raise ValueError(f"dense kernel: bias must have shape ({wt.shape[0]},), got {b.shape}")
    _run(DENSE_FWD[wt.dtype], x.shape[0], x.shape[0] * wt.size, x, wt, b, z)
    return z


def dense_backward_params(x, g, gwt, gb) -> None:
    """Fill ``gwt`` (units, in) with ``g.T @ x`` and ``gb`` (units,) with ``g.sum(0)``."""
    _check((("x", x), ("g", g), ("gwt", gwt), ("gb", gb)), gwt.dtype)
    _check_shapes(x.shape, gwt.shape, g.shape)
    if gb.shape != (gwt.shape[0],):
        raise ValueError(f"dense kernel: gb must have shape ({gwt.shape[0]},), got {gb.shape}")
    _run(DENSE_BWD_PARAMS[gwt.dtype], gwt.shape[0], x.shape[0] * gwt.size, x, g, gwt, gb)


def dense_backward_input(g, wt, gx) -> np.ndarray:
    """Fill ``gx`` (N, in) with ``g @ wt``; returns ``gx``."""
    _check((("g", g), ("wt", wt), ("gx", gx)), wt.dtype)
    _check_shapes(gx.shape, wt.shape, g.shape)
    _run(DENSE_BWD_INPUT[wt.dtype], gx.shape[0], gx.shape[0] * wt.size, g, wt, gx)
    return gx
