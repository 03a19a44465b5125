"""Adam and SGD with Keras's update rules and defaults, applied in place by compiled loops.

Adam (Keras): m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2);
p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), with eps = 1e-7.
SGD (Keras): v = momentum*v - lr*g; p += v (p += momentum*v - lr*g with nesterov).

Like Keras's, an optimizer is built on its first :meth:`Optimizer.apply`: its slots (Adam's m
and v, SGD's velocity) are bound to those parameter arrays. Later calls may update any of them
(a subset too, e.g. after freezing a layer), but an array it was not built with raises
ValueError ("Unknown variable: ... recreate a new optimizer instance"), as Keras 3 does when one
optimizer is given a second model; :meth:`Optimizer.reset` unbinds it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._kernels import optim as _ko
from ..errors import InvalidType, InvalidValue

__all__ = ["Optimizer", "Adam", "SGD", "get"]


def _rate(value, name: str, low: float = 0.0, high: float = math.inf, open_low=False) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise InvalidType(f"{name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not (v > low if open_low else v >= low) or v > high or not math.isfinite(v):
        bracket = "(" if open_low else "["
        raise InvalidValue(f"{name} must be in {bracket}{low}, {high}], got {value!r}")
    return v


def _flat(a: np.ndarray) -> np.ndarray:
    """A 1-D view in memory order (C- or Fortran-contiguous arrays; never a copy)."""
    return a.reshape(-1, order="A")


def _check_param(i: int, p) -> None:
    if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
        raise InvalidType(f"optimizer: parameter {i} must be a float NumPy array, got "
                          f"{type(p).__name__} {getattr(p, 'dtype', '')}")
    if not (p.flags.c_contiguous or p.flags.f_contiguous) or not p.flags.writeable:
        raise InvalidValue(f"optimizer: parameter {i} (shape {p.shape}) must be a writable, "
                           f"contiguous array")


class Optimizer:
    """Base class: ``apply(params, grads)`` updates each parameter array in place from the
    gradient array of the same shape at the same position."""

    def __init__(self, learning_rate: float):
        self.learning_rate = _rate(learning_rate, "learning_rate", open_low=True)
        self.iterations = 0
        self._slots: dict[int, tuple[np.ndarray, tuple]] | None = None

    @property
    def built(self) -> bool:
        return self._slots is not None

    def build(self, params) -> None:
        """Create zeroed slots for ``params`` and bind them to these arrays."""
        slots = {}
        for i, p in enumerate(params):
            _check_param(i, p)
            slots[id(p)] = (p, self._new_slots(p))  # holding p keeps its id unique
        self._slots = slots

    def apply(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One update of every parameter array in place."""
        params, grads = list(params), list(grads)
        if len(params) != len(grads):
            raise InvalidValue(f"optimizer: got {len(params)} parameters but {len(grads)} "
                               f"gradients; they must pair up")
        if self._slots is None:
            self.build(params)
        slots = []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            entry = self._slots.get(id(p))
            if entry is None or entry[0] is not p:
                raise InvalidValue(
                    f"Unknown variable: parameter {i} of shape {getattr(p, 'shape', None)}. "
                    f"This optimizer can only be called for the variables it was originally "
                    f"built with. When working with a new set of variables, you should "
                    f"recreate a new optimizer instance (or call its reset())."
                )
            if not isinstance(g, np.ndarray) or g.shape != p.shape or g.dtype != p.dtype or \
                    not (g.flags.c_contiguous or g.flags.f_contiguous) or \
                    (p.ndim > 1 and g.flags.c_contiguous != p.flags.c_contiguous):
                raise InvalidValue(
                    f"optimizer: gradient {i} must be a contiguous {p.dtype} array of shape "
                    f"{p.shape} laid out like its parameter, got "
                    f"{getattr(g, 'dtype', type(g).__name__)} {getattr(g, 'shape', '')}"
                )
            slots.append(entry[1])
        self.iterations += 1
        self._step(params, grads, slots)

    def reset(self) -> None:
        """Forget the slots and the step count: the next :meth:`apply` builds afresh."""
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

    def _step(self, params, grads, slots):
        t = self.iterations
        lr_t = self.learning_rate * math.sqrt(1 - self.beta_2**t) / (1 - self.beta_1**t)
        for p, g, (m, v) in zip(params, grads, slots, strict=True):
            _ko.adam_update(_flat(p), _flat(g), m, v, lr_t, self.beta_1, self.beta_2,
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

    def _step(self, params, grads, slots):
        for p, g, vel in zip(params, grads, slots, strict=True):
            if self.momentum == 0:
                p -= self.learning_rate * g
            else:
                _ko.sgd_momentum_update(_flat(p), _flat(g), vel, self.learning_rate,
                                        self.momentum, self.nesterov)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate, "momentum": self.momentum,
                "nesterov": self.nesterov}


_BY_NAME = {"adam": Adam, "sgd": SGD}


def get(optimizer) -> Optimizer:
    """An optimizer object as is, or a new one by name ('adam' or 'sgd', Keras's defaults)."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        try:
            return _BY_NAME[optimizer.lower()]()
        except KeyError:
            raise InvalidValue(f"optimizer must be one of {sorted(_BY_NAME)} or an optimizer "
                               f"object, got {optimizer!r}") from None
    raise InvalidType(f"optimizer must be a string or a poolkit.keras.optimizers object, "
                      f"got {optimizer!r}")
