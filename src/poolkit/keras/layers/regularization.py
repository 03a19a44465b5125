"""Regularization layers."""

from __future__ import annotations

import numbers

import numpy as np

from ...errors import InvalidType, InvalidValue
from .. import utils as _utils
from .base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """While training, zeroes each input element with probability ``rate`` and scales the rest
    by 1 / (1 - rate); at inference (``training=False``) it passes its input through. Shape
    unchanged. ``seed``: its own generator (default: poolkit's, see ``set_random_seed``)."""

    _config_keys = ("rate", "seed")

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, numbers.Real) or isinstance(rate, bool):
            raise InvalidType(f"Dropout: rate must be a number in [0, 1), got "
                              f"{type(rate).__name__} {rate!r}")
        if not 0 <= rate < 1:
            raise InvalidValue(f"Dropout: rate must be a number in [0, 1), got {rate!r}")
        if seed is not None and (not isinstance(seed, numbers.Integral) or isinstance(seed, bool)
                                 or seed < 0):
            raise InvalidType(f"Dropout: seed must be None or a non-negative int, got {seed!r}")
        if noise_shape is not None:
            raise InvalidValue("Dropout: noise_shape is not supported (use None)")
        self.rate = float(rate)
        self.seed = None if seed is None else int(seed)  # a NumPy int is not JSON
        self._rng = np.random.default_rng(seed) if seed is not None else None
        self._mask = None
        self._shape = None

    def _draw(self, x):
        rng = self._rng or _utils.rng()
        keep = rng.random(x.shape) >= self.rate
        return keep.astype(x.dtype) / (1.0 - self.rate)

    def call(self, x, training=False):
        if not training or self.rate == 0:
            return x
        return x * self._draw(x)

    def _forward(self, x, training=False):
        self.check_input(x)
        self._shape = x.shape
        if not training or self.rate == 0:
            self._mask = None
            return x
        self._mask = self._draw(x)
        return x * self._mask

    def backward(self, grad_output):
        g = self._check_grad(grad_output, self._shape)
        if not self.need_input_grad:
            return None
        return g if self._mask is None else g * self._mask
