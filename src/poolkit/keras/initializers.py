"""Weight initialisers by name, with Keras's formulas (fan_in/fan_out as Keras computes them:
for a conv kernel (kh, kw, cin, f), fan_in = kh*kw*cin and fan_out = kh*kw*f).

- ``glorot_uniform``: U(-l, l), l = sqrt(6 / (fan_in + fan_out)) (Keras's default kernel init);
- ``glorot_normal``: N(0, s) truncated at 2 s, s = sqrt(2 / (fan_in + fan_out)) / 0.8796...;
- ``he_uniform``: U(-l, l), l = sqrt(6 / fan_in);
- ``he_normal``: N(0, s) truncated at 2 s, s = sqrt(2 / fan_in) / 0.8796...;
- ``zeros``, ``ones``.

(0.87962566103423978 is the standard deviation of a unit normal truncated at +-2: Keras divides
by it so the truncated draw has the intended variance.) Random numbers come from
:func:`poolkit.keras.utils.rng`, so ``set_random_seed`` makes weights reproducible.
"""

from __future__ import annotations

import math

import numpy as np

from ..engine import check_memory
from ..errors import InvalidType, InvalidValue
from . import utils as _utils

__all__ = ["INITIALIZERS", "check", "initialize"]

INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros", "ones")


def check(value, name: str) -> str:
    """``value`` (a name, any case) as one of :data:`INITIALIZERS`; ``name`` is the argument."""
    if not isinstance(value, str):
        raise InvalidType(f"{name} must be one of the strings {INITIALIZERS}, got {value!r}")
    v = value.lower()
    if v not in INITIALIZERS:
        raise InvalidValue(f"{name} must be one of {INITIALIZERS}, got {value!r}")
    return v


def initialize(kind: str, shape: tuple, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    """A new C-contiguous array of ``shape`` and ``dtype`` drawn by initialiser ``kind``."""
    # the weight, its gradient and the float64 draw: refused, not attempted, if they cannot fit
    check_memory(3 * math.prod(shape) * 8, f"a weight of shape {tuple(shape)}", "layer")
    rng = _utils.rng()
    if kind == "zeros":
        return np.zeros(shape, dtype)
    if kind == "ones":
        return np.ones(shape, dtype)
    if kind == "glorot_uniform":
        lim = math.sqrt(6.0 / max(1, fan_in + fan_out))
        return rng.uniform(-lim, lim, shape).astype(dtype)
    if kind == "he_uniform":
        lim = math.sqrt(6.0 / max(1, fan_in))
        return rng.uniform(-lim, lim, shape).astype(dtype)
    # Keras divides by at least 1 (a layer on zero features has an empty weight, not an error)
    n = max(1.0, (fan_in + fan_out) / 2.0 if kind == "glorot_normal" else fan_in / 2.0)
    std = math.sqrt(1.0 / n) / 0.87962566103423978
    w = rng.standard_normal(shape)
    bad = np.abs(w) > 2
    while bad.any():
        w[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(w) > 2
    return (w * std).astype(dtype)
