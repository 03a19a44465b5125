"""Adam and SGD with Keras's update rules and defaults, applied in place by compiled loops.

Adam (Keras): m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), with eps = 1e-7.
SGD (Keras): v = momentum*v - lr*g; p += v (p += momentum*v - lr*g with nesterov).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _conv_kernels as _ck

__all__ = ["Optimizer", "Adam", "SGD", "get"]


def _rate(value, name: str, low: float = 0.0, high: float = math.inf, open_low=False) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (v > low if open_low else v >= low) or v > high or not math.isfinite(v):
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")
    return v


def _flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view in memory order (C- or Fortran-contiguous arrays; never a copy)."""
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        raise ValueError("optimizer: parameters and gradients must be contiguous arrays")
    return a.reshape(-1, order="A")


class Optimizer:
    def __init__(self, learning_rate: float):
        self.learning_rate = _rate(learning_rate, "learning_rate", open_low=True)
        self.iterations = 0
        self._slots: list | None = None

    def apply(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One update of every (C-contiguous) parameter array in place."""
        if self._slots is None or len(self._slots) != len(params):
            self._slots = [self._new_slots(p) for p in params]
        self.iterations += 1
        self._step(params, grads)

    def reset(self) -> None:
        self._slots = None
        self.iterations = 0


class Adam(Optimizer):
    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7):
        super().__init__(learning_rate)
        self.beta_1 = _rate(beta_1, "beta_1", 0.0, 1.0)
        self.beta_2 = _rate(beta_2, "beta_2", 0.0, 1.0)
        self.epsilon = _rate(epsilon, "epsilon", open_low=True)

    def _new_slots(self, p):
        return np.zeros(p.size, p.dtype), np.zeros(p.size, p.dtype)

    def _step(self, params, grads):
        t = self.iterations
        lr_t = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        for p, g, (m, v) in zip(params, grads, self._slots, strict=True):
            _ck.adam_update(_flat(p), _flat(g), m, v, lr_t, self.beta_1, self.beta_2,
                            self.epsilon)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon}


class SGD(Optimizer):
    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.0,
                 nesterov: bool = False):
        super().__init__(learning_rate)
        self.momentum = _rate(momentum, "momentum", 0.0, 1.0)
        self.nesterov = bool(nesterov)

    def _new_slots(self, p):
        return np.zeros(p.size, p.dtype)

    def _step(self, params, grads):
        for p, g, vel in zip(params, grads, self._slots, strict=True):
            if self.momentum == 0:
                p -= self.learning_rate * g
            else:
                _ck.sgd_momentum_update(_flat(p), _flat(g), vel, self.learning_rate,
                                        self.momentum, self.nesterov)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov}


_BY_NAME = {"adam": Adam, "sgd": SGD}


def get(optimizer) -> Optimizer:
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        try:
            return _BY_NAME[optimizer.lower()]()
        except KeyError:
            raise ValueError(f"optimizer must be one of {sorted(_BY_NAME)} or an optimizer "
                             f"object, got {optimizer!r}") from None
    raise TypeError(f"optimizer must be a string or a poolkit.keras.optimizers object, "
                    f"got {optimizer!r}")
