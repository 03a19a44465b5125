"""Optimizer update kernels (Keras's Adam and SGD-with-momentum rules), in place on flat arrays.

Each kernel is ONE serial, GIL-free body over an element range ``[lo, hi)``;
:func:`poolkit._threads.parallel_for` splits large parameters over threads (every element is
updated by exactly one task, so results do not depend on the thread count). The entry points
check that the parameter, its gradient and its slots are 1-D arrays of one size and dtype
before a kernel runs (the kernels do no bounds checks).
"""

from __future__ import annotations

import numpy as np

from .._threads import parallel_for
from ._jit import Kernel, sig

__all__ = ["adam_update", "sgd_momentum_update"]


def _adam_tasks(p, g, m, v, lr_t, b1, b2, eps, lo, hi):
    for i in range(lo, hi):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * (1.0 - b1)
        vi = v[i] + (gi * gi - v[i]) * (1.0 - b2)
        m[i] = mi
        v[i] = vi
        p[i] -= lr_t * mi / (np.sqrt(vi) + eps)


def _sgd_momentum_tasks(p, g, vel, lr, momentum, nesterov, lo, hi):
    for i in range(lo, hi):
        vi = momentum * vel[i] - lr * g[i]
        vel[i] = vi
        if nesterov:
            p[i] += momentum * vi - lr * g[i]
        else:
            p[i] += vi


# An Adam element (a square root and a division in float64) costs about as much as eight
# elements of pooling, parallel_for's unit of work: the tutorial's Dense kernel (54,080 values,
# 0.1-0.4 ms serial) is then split over the threads, which also keeps poolkit's worker awake
# for the next step's first convolution.
ADAM_COST = 8

# One compiled kernel per dtype (see _jit.Kernel).
ADAM = Kernel("adam_update", lambda dt: _adam_tasks,
              lambda dt: sig(dt, "o1", "x1", "o1", "o1", "d", "d", "d", "d", "i", "i"), cost=0.45)
SGD_MOMENTUM = Kernel("sgd_momentum_update", lambda dt: _sgd_momentum_tasks,
                      lambda dt: sig(dt, "o1", "x1", "o1", "d", "d", "b", "i", "i"), cost=0.35)


def _check(p, *others) -> None:
    arrays = (p, *others)
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.ndim != 1 or a.size != p.size \
                or a.dtype != p.dtype:
            got = [(getattr(b, "shape", None), getattr(b, "dtype", None)) for b in arrays]
            raise ValueError(f"optimizer kernel: parameter, gradient and slots must be 1-D "
                             f"arrays of one size and dtype; got {got}")


def adam_update(p, g, m, v, lr_t: float, b1: float, b2: float, eps: float) -> None:
    """One Adam step on flat arrays, in place: ``m += (g - m)(1 - b1)``,
    ``v += (g^2 - v)(1 - b2)``, ``p -= lr_t * m / (sqrt(v) + eps)`` (``lr_t`` already holds
    Keras's bias correction ``lr * sqrt(1 - b2^t) / (1 - b1^t)``)."""
    _check(p, g, m, v)
    parallel_for(ADAM[p.dtype], p.size, p, g, m, v, float(lr_t), float(b1), float(b2),
                 float(eps), work=p.size * ADAM_COST)


def sgd_momentum_update(p, g, vel, lr: float, momentum: float, nesterov: bool) -> None:
    """One SGD-with-momentum step on flat arrays, in place: ``vel = momentum*vel - lr*g``, then
    ``p += vel`` (or ``p += momentum*vel - lr*g`` with ``nesterov``)."""
    _check(p, g, vel)
    parallel_for(SGD_MOMENTUM[p.dtype], p.size, p, g, vel, float(lr), float(momentum),
                 bool(nesterov), work=p.size)
