"""The base of every pooling layer: :class:`BasePoolingLayer` holds a kind of
:mod:`poolkit.kinds`, calls its op (``poolkit.<kind.op>`` forward, ``..._backward`` backward),
takes its output shapes from :func:`poolkit.output_shape`, and tells the model summary its
receptive window and multiply-adds."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ....errors import InvalidType, InvalidValue
from ....kinds import get_kind as _kind
from ..base import InputSpec, Layer
from ..base import data_format as _data_format

__all__ = ["BasePoolingLayer", "check_p", "SPATIAL"]

SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _ops(kind):
    """(forward op, backward op) of a kind: ``poolkit.<kind.op>`` and ``..._backward``."""
    import poolkit

    return getattr(poolkit, kind.op), getattr(poolkit, kind.op + "_backward")


class BasePoolingLayer(Layer):
    """A layer that calls the op of one pooling kind over ``pool_dimensions`` spatial dims.

    Subclasses set ``self.kind`` (a :class:`poolkit.kinds.Kind`) and implement
    :meth:`_args` (the op's keyword arguments besides ``x`` and ``data_format``); shapes come
    from :func:`poolkit.output_shape`, so the layer and the op never disagree.
    """

    def _setup(self, pool_mode: str, pool_dimensions: int, data_format) -> None:
        self.kind = _kind(pool_mode)
        self.pool_mode = self.kind.name
        self.pool_dimensions = int(pool_dimensions)
        self.data_format = _data_format(data_format)
        self.input_spec = InputSpec(ndim=self.pool_dimensions + 2)
        self._op, self._op_backward = _ops(self.kind)
        self._x = self._y_shape = None

    # The argument holding a norm p > 0 that may be inf (LP pooling's p, APS's norm), if any:
    # not a shape argument, and saved as "inf" (JSON has no infinity).
    _norm_key: str | None = None

    def _args(self) -> dict:
        raise NotImplementedError

    def _shape_args(self) -> dict:
        """The arguments :func:`poolkit.output_shape` takes for this kind."""
        return {k: v for k, v in self._args().items() if k != self._norm_key}

    def get_config(self):
        cfg = super().get_config()
        if self._norm_key and math.isinf(cfg[self._norm_key]):
            cfg[self._norm_key] = "inf"
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if cls._norm_key and config.get(cls._norm_key) == "inf":
            config[cls._norm_key] = math.inf
        return cls(**config)

    def compute_output_shape(self, input_shape):
        r = self.pool_dimensions
        if len(input_shape) != r + 2:
            raise InvalidValue(
                f"{type(self).__name__} {self.name!r} expects input of rank {r + 2} "
                f"(batch, {r} spatial dims, channels), got shape {tuple(input_shape)}"
            )
        import poolkit

        return poolkit.output_shape(input_shape, data_format=self.data_format,
                                    kind=self.kind.name, **self._shape_args())

    def call(self, x, training=False):
        return self._op(x, data_format=self.data_format, **self._args())

    def _forward(self, x, training=False):
        self.check_input(x)
        y = self.call(x, training)
        self._x, self._y_shape = x, y.shape
        return y

    def backward(self, grad_output):
        g = self._check_grad(grad_output, self._y_shape)
        if not self.need_input_grad:
            return None
        return self._op_backward(np.ascontiguousarray(g, dtype=self._x.dtype), self._x,
                                 data_format=self.data_format, **self._args())

    def _spatial(self, shape) -> tuple:
        r = self.pool_dimensions
        return (tuple(shape[1:1 + r]) if self.data_format == "channels_last"
                else tuple(shape[2:2 + r]))

    def receptive(self, input_shape) -> tuple[list, list] | None:
        """(window, stride) per spatial dim, in input cells, for the model summary's receptive
        field (``size += (window - 1) * jump; jump *= stride``); None: the layer sees its whole
        input (global pooling)."""
        raise NotImplementedError

    def macs(self, input_shape) -> int:
        """Multiply-adds per sample (weighted windows only; comparisons and sums are not
        multiply-adds)."""
        return 0




def check_p(p, what: str) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise InvalidType(f"{what}: p must be a number > 0 (or inf), got {p!r}")
    if not float(p) > 0:
        raise InvalidValue(f"{what}: p must be > 0 (or inf), got {p!r}")
    return float(p)
