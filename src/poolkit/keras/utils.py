"""Keras-style utilities: ``set_random_seed`` and ``to_categorical``.

poolkit draws every random number (initial weights, shuffling, dropout) from one NumPy
Generator held here, so ``set_random_seed(s)`` before building and fitting a model makes the
whole run reproducible (the compiled kernels reduce in a fixed order).
"""

from __future__ import annotations

import numbers
import random

import numpy as np

from ..errors import InvalidType, InvalidValue

__all__ = ["set_random_seed", "to_categorical", "rng"]

_RNG = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed poolkit's generator, NumPy's legacy global one and Python's ``random``."""
    global _RNG
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise InvalidType(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    if seed < 0:
        raise InvalidValue(f"seed must be >= 0, got {seed}")
    _RNG = np.random.default_rng(int(seed))
    np.random.seed(int(seed) % 2**32)
    random.seed(int(seed))


def rng() -> np.random.Generator:
    """The generator poolkit's layers and ``fit`` draw from."""
    return _RNG


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> np.ndarray:
    """Class indices (n,) -> one-hot (n, num_classes)."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        if y.dtype.kind == "f" and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise InvalidType(f"to_categorical: y must hold integer class indices, got {y.dtype}")
    y = y.reshape(-1)
    if y.size and y.min() < 0:
        raise InvalidValue(f"to_categorical: class indices must be >= 0, got {y.min()}")
    n = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if y.size and y.max() >= n:
        raise InvalidValue(
            f"to_categorical: class index {int(y.max())} is out of range for num_classes={n}"
        )
    out = np.zeros((y.size, n), dtype)
    out[np.arange(y.size), y] = 1
    return out
