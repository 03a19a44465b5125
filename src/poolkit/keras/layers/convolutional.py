"""Convolution layers."""

from __future__ import annotations

import numpy as np

from ... import shapes as _shapes
from ..._kernels import conv as _kc
from ...errors import InvalidValue
from .. import activations as _act
from .. import initializers as _init
from .base import InputSpec, Layer, positive_int
from .base import data_format as _data_format

__all__ = ["Conv2D"]


class Conv2D(Layer):
    """2-D convolution with Keras's arguments and defaults.

    Shapes: input (N, H, W, Cin) with ``data_format="channels_last"`` (the default) or
    (N, Cin, H, W) with ``"channels_first"``; output (N, OH, OW, filters) or (N, filters, OH,
    OW). Kernel (kh, kw, Cin, filters) and bias (filters,) in either format, as in Keras.

    Output size per spatial dim (input L, kernel k, stride s, dilation d, effective kernel
    e = d*(k-1) + 1), from :func:`poolkit.shapes.keras_output_size`:

    - ``padding="valid"``: OL = floor((L - e) / s) + 1; must be >= 1, else ValueError;
    - ``padding="same"``: OL = ceil(L / s), zero padding total = max((OL-1)*s + e - L, 0), the
      odd cell after (TensorFlow's rule); taps in the padding read nothing.

    Built for ``Cin`` channels, the layer rejects other channel counts (Keras's "expected axis
    -1 of input shape to have value ..."); other spatial sizes are fine, as in Keras. A ReLU
    activation is fused into the kernel; the first layer of a model skips its input gradient.
    """

    _config_keys = ("filters", "kernel_size", "strides", "padding", "data_format",
                    "dilation_rate", "activation", "use_bias", "kernel_initializer",
                    "bias_initializer")

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int(filters, "filters")
        self.kernel_size = _shapes.normalize_tuple(kernel_size, 2, "kernel_size",
                                                   allow_one=False)
        self.strides = _shapes.normalize_tuple(strides, 2, "strides", allow_one=False)
        self.dilation_rate = _shapes.normalize_tuple(dilation_rate, 2, "dilation_rate",
                                                     allow_one=False)
        for nm, v in (("kernel_size", self.kernel_size), ("strides", self.strides),
                      ("dilation_rate", self.dilation_rate)):
            if min(v) <= 0:
                raise InvalidValue(f"Conv2D: {nm} must be positive, got {v}")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise InvalidValue(f"Conv2D: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding.lower()
        self.data_format = _data_format(data_format)
        self.activation = _act.check(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _init.check(kernel_initializer, "kernel_initializer")
        self.bias_initializer = _init.check(bias_initializer, "bias_initializer")
        self.input_spec = InputSpec(min_ndim=4, max_ndim=4)
        self._x = self._y = None

    @property
    def _channels_first(self) -> bool:
        return self.data_format == "channels_first"

    def _geometry(self, input_shape):
        """((OH, OW), geo) for an input shape in this layer's data_format."""
        if len(input_shape) != 4:
            layout = "channels, height, width" if self._channels_first else \
                "height, width, channels"
            raise InvalidValue(
                f"Conv2D {self.name!r} expects input of rank 4 (batch, {layout}), "
                f"got shape {tuple(input_shape)}"
            )
        hw = input_shape[2:4] if self._channels_first else input_shape[1:3]
        dims = []
        for L, k, s, d in zip(hw, self.kernel_size, self.strides, self.dilation_rate,
                              strict=True):
            dims.append(_shapes.keras_output_size(L, d * (k - 1) + 1, s, self.padding))
        out = tuple(o for o, _, _ in dims)
        if min(out) < 1:
            raise InvalidValue(
                f"Conv2D {self.name!r}: computed output size would be zero or negative: input "
                f"{tuple(input_shape)} with kernel_size={self.kernel_size}, strides="
                f"{self.strides}, padding={self.padding!r}, dilation_rate={self.dilation_rate} "
                f"gives {out}"
            )
        geo = np.array([*self.strides, *self.dilation_rate, dims[0][1], dims[1][1]], np.int64)
        return out, geo

    def compute_output_shape(self, input_shape):
        out, _ = self._geometry(input_shape)
        if self._channels_first:
            return (input_shape[0], self.filters, *out)
        return (input_shape[0], *out, self.filters)

    def build(self, input_shape):
        self._geometry(input_shape)
        cin = int(input_shape[1] if self._channels_first else input_shape[-1])
        kh, kw = self.kernel_size
        self.weights, self.weight_names, self.grads = [], [], []
        self._add_weight("kernel", (kh, kw, cin, self.filters), self.kernel_initializer,
                         kh * kw * cin, kh * kw * self.filters)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, cin, self.filters)
        self._zero_bias = np.zeros(self.filters, self.dtype)
        self._parts = None
        self.input_spec = InputSpec(min_ndim=4, max_ndim=4,
                                    axes={1 if self._channels_first else -1: cin})
        super().build(input_shape)

    def _conv(self, x):
        """(x as contiguous NHWC, activated output NHWC) for ``x`` in the layer's format."""
        out, geo = self._geometry(x.shape)
        if self._channels_first:
            x = x.transpose(0, 2, 3, 1)
        x = np.ascontiguousarray(x, dtype=self.dtype)
        y = np.empty((x.shape[0], *out, self.filters), self.dtype)
        b = self.weights[1] if self.use_bias else self._zero_bias
        relu = self.activation == "relu"
        _kc.conv2d_forward(x, self.weights[0], b, y, geo, relu)
        if not relu and self.activation != "linear":
            y = self._activate(y)
        return x, y, geo

    # Keras applies the activation to the output in the layer's format: a softmax runs over its
    # last axis, which is the width for channels_first (axis 2 of the NHWC array held here).
    def _activate(self, y):
        if self.activation == "softmax" and self._channels_first:
            return _act.softmax(y, axis=2)
        return _act.forward(self.activation, y)

    def _activate_backward(self, y, g):
        if self.activation == "softmax" and self._channels_first:
            return _act.softmax_backward(y, g, axis=2)
        return _act.backward(self.activation, y, g)

    def _out(self, y):
        return y.transpose(0, 3, 1, 2) if self._channels_first else y

    def call(self, x, training=False):
        return self._out(self._conv(x)[1])

    def _forward(self, x, training=False):
        self.check_input(x)
        self._x, self._y, self._geo = self._conv(x)
        return self._out(self._y)

    def backward(self, grad_output):
        if self._y is None:
            self._check_grad(grad_output, None)
        g = np.asarray(grad_output)
        if self._channels_first and g.ndim == 4:
            g = g.transpose(0, 2, 3, 1)
        g = self._check_grad(g, self._y)
        relu = self.activation == "relu"
        if relu or self.activation == "linear":
            g = np.ascontiguousarray(g, dtype=self.dtype)
        else:
            g = np.ascontiguousarray(self._activate_backward(self._y, g), dtype=self.dtype)
        parts = min(_kc.N_CHUNKS, max(1, g.shape[0]))
        if self._parts is None or self._parts[0].shape[0] != parts:
            self._parts = (np.empty((parts, *self.weights[0].shape), self.dtype),
                           np.empty((parts, self.filters), self.dtype))
        gw_parts, gb_parts = self._parts
        keep = self.need_input_grad
        gm = np.empty_like(g) if keep else g  # the masked gradient, only if it is needed
        _kc.conv2d_backward_params(self._x, g, self._y, gm, gw_parts, gb_parts, self._geo, relu,
                                   keep)
        np.sum(gw_parts, axis=0, out=self.grads[0])
        if self.use_bias:
            np.sum(gb_parts, axis=0, out=self.grads[1])
        if not keep:
            return None
        gx = np.empty(self._x.shape, self.dtype)
        _kc.conv2d_backward_input(gm, self.weights[0], gx, self._geo)
        return self._out(gx)
