"""Reshaping layers."""

from __future__ import annotations

import math

import numpy as np

from .base import InputSpec, Layer
from .base import data_format as _data_format

__all__ = ["Flatten"]


class Flatten(Layer):
    """(N, d1, ..., dk) -> (N, d1*...*dk), in channels_last memory order (Keras's).

    With ``data_format="channels_first"`` an input (N, C, d2, ..., dk) is first moved to
    (N, d2, ..., dk, C), as Keras does, so a channels_first model flattens its features in the
    same order as the channels_last one. A 1-D input (N,) gives (N, 1).
    """

    _config_keys = ("data_format",)

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)
        self.input_spec = InputSpec(min_ndim=1)
        self._shape = None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], math.prod(input_shape[1:]))

    def _to_last(self, x):
        if self.data_format == "channels_first" and x.ndim > 2:
            return x.transpose(0, *range(2, x.ndim), 1)
        return x

    def call(self, x, training=False):
        return self._to_last(x).reshape(x.shape[0], -1)

    def _forward(self, x, training=False):
        self.check_input(x)
        moved = self._to_last(x)
        self._shape, self._moved_shape = x.shape, moved.shape
        return moved.reshape(x.shape[0], -1)

    def backward(self, grad_output):
        if self._shape is None:
            self._check_grad(grad_output, None)
        g = self._check_grad(grad_output, (self._shape[0], math.prod(self._shape[1:])))
        if not self.need_input_grad:
            return None
        g = g.reshape(self._moved_shape)
        if self.data_format == "channels_first" and g.ndim > 2:
            g = np.moveaxis(g, -1, 1)
        return g
