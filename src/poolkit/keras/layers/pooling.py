"""Pooling layers, laid out as Keras 3 lays them out: :class:`BasePooling` normalises every
argument once and calls the engine's op; ``MaxPooling2D`` and friends are small subclasses that
only pick the mode (a kind of :mod:`poolkit.kinds`) and the rank. :class:`BaseGlobalPooling` does
the same for pooling over the whole spatial extent.

A new kind of pooling is a new subclass naming its kind, e.g.::

    class MinPooling2D(BasePooling):
        __doc__ = pool_doc("min", 2)

        def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                     **kwargs):
            super().__init__(pool_size, strides, 2, "min", padding, data_format, **kwargs)

(the op named by the kind, e.g. ``poolkit.min_pool`` and ``poolkit.min_pool_backward``, does the
work), plus its import in ``poolkit.keras.layers``.
"""

from __future__ import annotations

import numpy as np

from ... import shapes as _shapes
from ...errors import InvalidValue
from ...kinds import get_kind as _kind
from .base import InputSpec, Layer
from .base import data_format as _data_format

__all__ = [
    "BasePooling",
    "BaseGlobalPooling",
    "pool_doc",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling2D",
]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def _ops(kind):
    """(forward op, backward op) of a kind: ``poolkit.<kind.op>`` and ``..._backward``."""
    import poolkit

    return getattr(poolkit, kind.op), getattr(poolkit, kind.op + "_backward")


def pool_doc(pool_mode: str, rank: int) -> str:
    """The docstring of the ``rank``-D pooling layer of kind ``pool_mode``."""
    kind = _kind(pool_mode)
    sp = _SPATIAL[rank]
    return f"""{kind.label.capitalize()} over {rank} spatial dim(s), with Keras's arguments.

    Shapes: input (N, {sp}, C) with ``data_format="channels_last"`` (the default) or
    (N, C, {sp}) with ``"channels_first"``; output the same with pooled spatial sizes.
    Arguments: ``pool_size`` (default 2 per dim), ``strides`` (default None = pool_size),
    ``padding`` 'valid' (default) or 'same', ``data_format``. Computed by
    :func:`poolkit.{kind.op}`. Per spatial dim, with input L, window k and stride s:

    - ``padding="valid"``: out = floor((L - k) / s) + 1, at least 1 (else ValueError);
    - ``padding="same"``: out = ceil(L / s); the padding total max((out-1)*s + k - L, 0) is
      split with the odd cell after (TensorFlow's rule). Padded cells are never read: max
      pooling ignores them and average pooling divides by the in-bounds cells only.
    """


class BasePooling(Layer):
    """Pooling over ``pool_dimensions`` spatial dims with the op of kind ``pool_mode`` (a name
    in :data:`poolkit.kinds.POOL_KINDS`); see :func:`pool_doc` for the arithmetic."""

    _config_keys = ("pool_size", "strides", "padding", "data_format")

    def __init__(self, pool_size, strides, pool_dimensions: int, pool_mode: str = "max",
                 padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        kind = _kind(pool_mode)
        r = int(pool_dimensions)
        self.pool_mode = kind.name
        self.pool_dimensions = r
        self.pool_size = _shapes.normalize_tuple(pool_size, r, "pool_size",
                                                 allow_one=False)
        self.strides = (self.pool_size if strides is None
                        else _shapes.normalize_tuple(strides, r, "strides", allow_one=False))
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise InvalidValue(
                f"{type(self).__name__}: padding must be 'valid' or 'same', got {padding!r}"
            )
        self.padding = padding.lower()
        self.data_format = _data_format(data_format)
        # Validate the numbers now (not at first call), with a shape that is always valid.
        _shapes.keras_spec((max(self.pool_size),) * r, self.pool_size, self.strides, "valid")
        self.input_spec = InputSpec(ndim=r + 2)
        self._op, self._op_backward = _ops(kind)
        self._x = self._y_shape = None

    def _args(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                    data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        r = self.pool_dimensions
        if len(input_shape) != r + 2:
            raise InvalidValue(
                f"{type(self).__name__} {self.name!r} expects input of rank {r + 2} "
                f"(batch, {r} spatial dims, channels), got shape {tuple(input_shape)}"
            )
        import poolkit

        return poolkit.output_shape(input_shape, **self._args())

    def call(self, x, training=False):
        return self._op(x, **self._args())

    def forward(self, x, training=False):
        self.check_input(x)
        y = self._op(x, **self._args())
        self._x, self._y_shape = x, y.shape
        return y

    def backward(self, grad_output):
        g = self._check_grad(grad_output, self._y_shape)
        if not self.need_input_grad:
            return None
        return self._op_backward(np.ascontiguousarray(g, dtype=self._x.dtype), self._x,
                                 **self._args())


class MaxPooling1D(BasePooling):
    __doc__ = pool_doc("max", 1)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, 1, "max", padding, data_format, **kwargs)


class MaxPooling2D(BasePooling):
    __doc__ = pool_doc("max", 2)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, 2, "max", padding, data_format, **kwargs)


class MaxPooling3D(BasePooling):
    __doc__ = pool_doc("max", 3)

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, 3, "max", padding, data_format, **kwargs)


class AveragePooling1D(BasePooling):
    __doc__ = pool_doc("avg", 1)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, 1, "avg", padding, data_format, **kwargs)


class AveragePooling2D(BasePooling):
    __doc__ = pool_doc("avg", 2)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, 2, "avg", padding, data_format, **kwargs)


class AveragePooling3D(BasePooling):
    __doc__ = pool_doc("avg", 3)

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, 3, "avg", padding, data_format, **kwargs)


# Keras's aliases.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D


class BaseGlobalPooling(Layer):
    """Pooling whose window is the whole spatial extent, with the op of kind ``pool_mode``.

    Shapes: (N, *spatial, C) -> (N, C) with ``data_format="channels_last"`` (the default), or
    (N, C, *spatial) -> (N, C) with ``"channels_first"``; with ``keepdims=True`` the spatial
    dims stay, each of size 1. Same values as the windowed op with ``pool_size`` = the input's
    spatial size.
    """

    _config_keys = ("data_format", "keepdims")

    def __init__(self, pool_dimensions: int, pool_mode: str = "max", data_format=None,
                 keepdims=False, **kwargs):
        super().__init__(**kwargs)
        kind = _kind(pool_mode)
        self.pool_mode = kind.name
        self.pool_dimensions = int(pool_dimensions)
        self.data_format = _data_format(data_format)
        self.keepdims = bool(keepdims)
        self.input_spec = InputSpec(ndim=self.pool_dimensions + 2)
        self._op, self._op_backward = _ops(kind)
        self._x = self._pooled_shape = self._y_shape = None

    def _spatial(self, shape):
        r = self.pool_dimensions
        return tuple(shape[1:1 + r]) if self.data_format == "channels_last" \
            else tuple(shape[2:2 + r])

    def compute_output_shape(self, input_shape):
        r = self.pool_dimensions
        if len(input_shape) != r + 2:
            raise InvalidValue(
                f"{type(self).__name__} {self.name!r} expects input of rank {r + 2}, got shape "
                f"{tuple(input_shape)}"
            )
        if self.keepdims:
            if self.data_format == "channels_last":
                return (input_shape[0], *(1,) * r, input_shape[-1])
            return (input_shape[0], input_shape[1], *(1,) * r)
        c = input_shape[-1] if self.data_format == "channels_last" else input_shape[1]
        return (input_shape[0], c)

    def _pool(self, x):
        y = self._op(x, self._spatial(x.shape), data_format=self.data_format)
        return y, (y if self.keepdims else y.reshape(self.compute_output_shape(x.shape)))

    def call(self, x, training=False):
        return self._pool(x)[1]

    def forward(self, x, training=False):
        self.check_input(x)
        pooled, y = self._pool(x)
        self._x, self._pooled_shape, self._y_shape = x, pooled.shape, y.shape
        return y

    def backward(self, grad_output):
        g = self._check_grad(grad_output, self._y_shape)
        if not self.need_input_grad:
            return None
        g = np.ascontiguousarray(g, dtype=self._x.dtype).reshape(self._pooled_shape)
        return self._op_backward(g, self._x, self._spatial(self._x.shape),
                                 data_format=self.data_format)


class GlobalMaxPooling2D(BaseGlobalPooling):
    __doc__ = BaseGlobalPooling.__doc__.replace("the op of kind ``pool_mode``", "the maximum")

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "max", data_format, keepdims, **kwargs)


class GlobalAveragePooling2D(BaseGlobalPooling):
    __doc__ = BaseGlobalPooling.__doc__.replace("the op of kind ``pool_mode``", "the mean")

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "avg", data_format, keepdims, **kwargs)
