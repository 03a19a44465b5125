"""Activation functions by name, each forward beside its backward.

Forward takes the pre-activation ``z``; backward takes the OUTPUT ``y`` (every function here
can be differentiated from its output) and the gradient ``gy`` of the output:

- ``linear``: y = z; dz = gy
- ``relu``: y = max(z, 0); dz = gy * (y > 0)  (0 at z = 0, as Keras/TF)
- ``sigmoid``: y = 1 / (1 + exp(-z)); dz = gy * y * (1 - y)
- ``tanh``: y = tanh(z); dz = gy * (1 - y^2)
- ``softmax`` over ``axis`` (default the last; an int or a tuple of ints):
  y = exp(z - max z) / sum exp(z - max z); dz = y * (gy - sum(gy * y)), sums over ``axis``.

:func:`relu` also takes Keras's ``negative_slope``, ``max_value`` and ``threshold``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InvalidType, InvalidValue

__all__ = ["ACTIVATIONS", "check", "forward", "backward", "relu", "relu_backward", "softmax",
           "softmax_backward"]

ACTIVATIONS = ("linear", "relu", "softmax", "sigmoid", "tanh")


def check(activation, arg: str = "activation") -> str:
    """``activation`` (None or a name, any case) as one of :data:`ACTIVATIONS` (None is
    ``"linear"``); ``arg`` names the argument in the error."""
    if activation is None:
        return "linear"
    if not isinstance(activation, str):
        raise InvalidType(
            f"{arg} must be None or one of the strings {ACTIVATIONS}, got "
            f"{type(activation).__name__} {activation!r}"
        )
    a = activation.lower()
    if a not in ACTIVATIONS:
        raise InvalidValue(f"{arg} must be None or one of {ACTIVATIONS}, got {activation!r}")
    return a


def softmax(z: np.ndarray, axis=-1) -> np.ndarray:
    """exp(z - max z) / sum(exp(z - max z)) over ``axis`` (an int or a tuple of ints)."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def softmax_backward(y: np.ndarray, gy: np.ndarray, axis=-1) -> np.ndarray:
    """Gradient of :func:`softmax` from its output: y * (gy - sum(gy * y, axis))."""
    return y * (gy - (gy * y).sum(axis=axis, keepdims=True))


def relu(x: np.ndarray, negative_slope: float = 0.0, max_value: float | None = None,
         threshold: float = 0.0) -> np.ndarray:
    """Keras's ReLU: with t = ``threshold``, m = ``max_value`` (None: no cap) and
    a = ``negative_slope``::

        f(x) = min(x, m)        if x > t
        f(x) = a * (x - t)      if x <= t   (so f(t) = 0)

    The defaults give max(x, 0). Computed in x's dtype.
    """
    dt = x.dtype
    if threshold == 0:
        y = np.maximum(x, 0, dtype=dt)
    else:
        y = np.where(x > dt.type(threshold), x, dt.type(0))
    if max_value is not None:
        np.minimum(y, dt.type(max_value), out=y)
    if negative_slope != 0:
        y -= dt.type(negative_slope) * np.maximum(dt.type(threshold) - x, 0, dtype=dt)
    return y


def relu_backward(x: np.ndarray, gy: np.ndarray, negative_slope: float = 0.0,
                  max_value: float | None = None, threshold: float = 0.0) -> np.ndarray:
    """Gradient of :func:`relu` from its INPUT: gy where t < x < m, a * gy where x <= t,
    0 where x >= m (one-sided at the kinks, as Keras's backends)."""
    above = x > threshold
    if max_value is not None:
        slope = (above & (x < max_value)).astype(gy.dtype)
    else:
        slope = above.astype(gy.dtype)
    if negative_slope != 0:
        slope += (~above) * gy.dtype.type(negative_slope)
    return gy * slope


def forward(name: str, z: np.ndarray) -> np.ndarray:
    """Activation ``name`` (one of :data:`ACTIVATIONS`, softmax over the last axis) of z."""
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0, dtype=z.dtype)
    if name == "softmax":
        return softmax(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    raise AssertionError(name)


def backward(name: str, y: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """d loss / d z from the output ``y`` of :func:`forward` and d loss / d y."""
    if name == "linear":
        return gy
    if name == "relu":
        return gy * (y > 0)
    if name == "softmax":
        return softmax_backward(y, gy)
    if name == "sigmoid":
        return gy * y * (1.0 - y)
    if name == "tanh":
        return gy * (1.0 - y * y)
    raise AssertionError(name)


def check_number(value, name: str, *, allow_none: bool = False, low: float = 0.0,
                 finite: bool = False):
    """``value`` as a float >= ``low`` (and finite if ``finite``; or None if ``allow_none``),
    for layer arguments."""
    if value is None and allow_none:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise InvalidType(f"{name} must be a number{' or None' if allow_none else ''}, got "
                          f"{type(value).__name__} {value!r}")
    v = float(value)
    if not v >= low:  # also rejects NaN
        raise InvalidValue(f"{name} must be >= {low:g}, got {value!r}")
    if finite and v == math.inf:
        raise InvalidValue(f"{name} must be finite, got {value!r}")
    return v
