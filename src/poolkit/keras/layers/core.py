"""Core layers: the model input (:func:`Input`) and :class:`Dense`."""

from __future__ import annotations

import numbers

import numpy as np

from ..._kernels import dense as _kd
from ...errors import InvalidValue
from .. import activations as _act
from .. import initializers as _init
from .base import InputSpec, Layer, auto_name, positive_int

__all__ = ["InputLayer", "Input", "Dense"]


class InputLayer(Layer):
    """What :func:`poolkit.keras.Input` returns: only a shape (without the batch dim)."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, **kwargs):
        if shape is None:
            raise InvalidValue("Input: shape is required, e.g. Input(shape=(28, 28, 1))")
        if isinstance(shape, numbers.Integral):
            shape = (shape,)
        super().__init__(name=name or auto_name("InputLayer"), input_shape=shape,
                         dtype=dtype, **kwargs)
        self.shape = (batch_size,) + self.input_shape_arg

    def call(self, x, training=False):
        return x


def Input(shape=None, batch_size=None, dtype=None, name=None) -> InputLayer:
    """The input of a model: ``Sequential([Input(shape=(28, 28, 1)), ...])``. ``shape`` excludes
    the batch dim."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name)


class Dense(Layer):
    """``y = activation(x @ kernel + bias)`` on the last axis.

    Shapes: input (N, ..., in) -> output (N, ..., units); kernel (in, units), bias (units,).
    Built for ``in`` features, the layer rejects inputs whose last axis differs (Keras's
    "expected axis -1 of input shape to have value ..."). ``activation``: None/'linear',
    'relu', 'sigmoid', 'tanh' or 'softmax' (over the last axis).
    """

    _config_keys = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer")

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int(units, "units")
        self.activation = _act.check(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _init.check(kernel_initializer, "kernel_initializer")
        self.bias_initializer = _init.check(bias_initializer, "bias_initializer")
        self.input_spec = InputSpec(min_ndim=2)
        self._x_shape = self._x2 = self._z = self._y = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise InvalidValue(f"Dense {self.name!r} needs input of rank >= 2, got "
                               f"{tuple(input_shape)}")
        return (*input_shape[:-1], self.units)

    def build(self, input_shape):
        self.compute_output_shape(input_shape)
        fan_in = int(input_shape[-1])
        self.weights, self.weight_names, self.grads = [], [], []
        w = _init.initialize(self.kernel_initializer, (fan_in, self.units), fan_in, self.units,
                             self.dtype)
        # Held as a transposed view of a C-contiguous (units, in) array: see _kernels/dense.
        self.weights.append(np.ascontiguousarray(w.T).T)
        self.weight_names.append("kernel")
        self.grads.append(np.zeros((self.units, fan_in), self.dtype).T)
        if self.use_bias:
            self._add_weight("bias", (self.units,), self.bias_initializer, fan_in, self.units)
        self._zero_bias = np.zeros(self.units, self.dtype)
        self.input_spec = InputSpec(min_ndim=2, axes={-1: fan_in})
        super().build(input_shape)

    def _linear(self, x):
        x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=self.dtype)
        z = np.empty((x2.shape[0], self.units), self.dtype)
        b = self.weights[1] if self.use_bias else self._zero_bias
        _kd.dense_forward(x2, self.weights[0].T, b, z)
        return x2, z.reshape(*x.shape[:-1], self.units)

    def call(self, x, training=False):
        return _act.forward(self.activation, self._linear(x)[1])

    def call_with_logits(self, x):
        """(output, pre-activation) for ``x``, writing no state (used by ``evaluate``)."""
        z = self._linear(x)[1]
        return _act.forward(self.activation, z), z

    def _forward(self, x, training=False):
        self.check_input(x)
        x2, z = self._linear(x)
        y = _act.forward(self.activation, z)
        self._x_shape, self._x2, self._z, self._y = x.shape, x2, z, y
        return y

    def backward(self, grad_output):
        g = self._check_grad(grad_output, self._y)
        return self.backward_pre(_act.backward(self.activation, self._y, g))

    def backward_pre(self, gz):
        """Backward from the gradient of the PRE-activation (used by the fused softmax + CE)."""
        gz = self._check_grad(gz, self._z)
        g2 = np.ascontiguousarray(gz.reshape(-1, self.units), dtype=self.dtype)
        gb = self.grads[1] if self.use_bias else np.empty(self.units, self.dtype)
        _kd.dense_backward_params(self._x2, g2, self.grads[0].T, gb)
        if not self.need_input_grad:
            return None
        gx = np.empty(self._x2.shape, self.dtype)
        _kd.dense_backward_input(g2, self.weights[0].T, gx)
        return gx.reshape(self._x_shape)
