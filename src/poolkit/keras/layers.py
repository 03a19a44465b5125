"""Keras-style layers on NumPy arrays, channels_last, each with its backward pass beside its
forward pass.

Every layer follows one small protocol:

- ``build(input_shape)`` creates the weights (float32 unless ``dtype="float64"``);
- ``compute_output_shape(input_shape)`` gives the output shape (batch may be None);
- ``forward(x, training)`` computes the output and keeps what the backward pass needs;
- ``backward(grad_output)`` sets ``self.grads`` (aligned with ``self.weights``) and returns the
  gradient with respect to the input (None if ``self.need_input_grad`` is False);
- ``get_config()`` returns the JSON-able constructor arguments.

Pooling layers are thin: they hold their arguments and call :func:`poolkit.max_pool`,
:func:`poolkit.average_pool` and their backward passes; shapes come from
:func:`poolkit.output_shape`. Conv2D's output size comes from :mod:`poolkit.shapes` too.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import ops as _ops
from .. import shapes as _shapes
from . import _conv_kernels as _ck
from . import utils as _utils

__all__ = [
    "Layer",
    "InputLayer",
    "Input",
    "Conv2D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling2D",
    "Flatten",
    "Dense",
    "Dropout",
    "Activation",
    "ReLU",
    "Softmax",
    "get",
]

_NAME_COUNTS: dict[str, int] = {}


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or
                                   (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("2_d", "2d").replace("1_d", "1d").replace("3_d", "3d")


def _auto_name(cls_name: str) -> str:
    base = _snake(cls_name)
    n = _NAME_COUNTS.get(base, 0)
    _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


# ------------------------------------------------------------------------------------------
# Activations: forward from the pre-activation, backward from the OUTPUT (all of these can).


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def _act_forward(name: str, z: np.ndarray) -> np.ndarray:
    if name == "linear":
        return z
    if name == "relu":
        return np.maximum(z, 0, dtype=z.dtype)
    if name == "softmax":
        return _softmax(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    raise AssertionError(name)


def _act_backward(name: str, y: np.ndarray, gy: np.ndarray) -> np.ndarray:
    if name == "linear":
        return gy
    if name == "relu":
        return gy * (y > 0)
    if name == "softmax":
        return y * (gy - (gy * y).sum(axis=-1, keepdims=True))
    if name == "sigmoid":
        return gy * y * (1.0 - y)
    if name == "tanh":
        return gy * (1.0 - y * y)
    raise AssertionError(name)


ACTIVATIONS = ("linear", "relu", "softmax", "sigmoid", "tanh")


def _check_activation(activation, arg: str = "activation") -> str:
    if activation is None:
        return "linear"
    if not isinstance(activation, str):
        raise TypeError(
            f"{arg} must be None or one of the strings {ACTIVATIONS}, got "
            f"{type(activation).__name__} {activation!r}"
        )
    a = activation.lower()
    if a not in ACTIVATIONS:
        raise ValueError(f"{arg} must be None or one of {ACTIVATIONS}, got {activation!r}")
    return a


def _check_dtype(dtype) -> np.dtype:
    if dtype is None:
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"dtype must be 'float32' or 'float64', got {dtype!r}") from e
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def _positive_int(value, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------
# Initializers (Keras's formulas: glorot_uniform limit sqrt(6 / (fan_in + fan_out)), etc.).

INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "zeros", "ones")


def _check_initializer(value, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of the strings {INITIALIZERS}, got {value!r}")
    v = value.lower()
    if v not in INITIALIZERS:
        raise ValueError(f"{name} must be one of {INITIALIZERS}, got {value!r}")
    return v


def _initialize(kind: str, shape: tuple, fan_in: int, fan_out: int, dtype) -> np.ndarray:
    rng = _utils.rng()
    if kind == "zeros":
        return np.zeros(shape, dtype)
    if kind == "ones":
        return np.ones(shape, dtype)
    if kind == "glorot_uniform":
        lim = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-lim, lim, shape).astype(dtype)
    if kind == "he_uniform":
        lim = math.sqrt(6.0 / fan_in)
        return rng.uniform(-lim, lim, shape).astype(dtype)
    # Keras's normal initialisers are truncated at 2 standard deviations.
    n = (fan_in + fan_out) / 2.0 if kind == "glorot_normal" else fan_in / 2.0
    std = math.sqrt(1.0 / n) / 0.87962566103423978
    w = rng.standard_normal(shape)
    bad = np.abs(w) > 2
    while bad.any():
        w[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(w) > 2
    return (w * std).astype(dtype)


# ------------------------------------------------------------------------------------------
# Base class.


class Layer:
    """Base layer. ``input_shape`` (without the batch dim) is accepted by every layer, as in
    Keras, and only matters on a model's first layer."""

    _config_keys: tuple[str, ...] = ()

    def __init__(self, name: str | None = None, input_shape=None, trainable: bool = True,
                 dtype=None, **kwargs):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}"
            )
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}")
        self.name = name or _auto_name(type(self).__name__)
        self.input_shape_arg = None
        if input_shape is not None:
            if isinstance(input_shape, numbers.Integral):
                input_shape = (input_shape,)
            input_shape = tuple(input_shape)
            if not all(isinstance(v, numbers.Integral) and v > 0 for v in input_shape):
                raise ValueError(
                    f"input_shape must be a tuple of positive ints (without the batch dim), "
                    f"got {input_shape!r}"
                )
            self.input_shape_arg = tuple(int(v) for v in input_shape)
        self.trainable = bool(trainable)
        self.dtype = _check_dtype(dtype)
        self.built = False
        self.weights: list[np.ndarray] = []
        self.weight_names: list[str] = []
        self.grads: list[np.ndarray] = []
        self.need_input_grad = True
        self.input_shape: tuple | None = None
        self.output_shape: tuple | None = None

    # -- protocol --------------------------------------------------------------------------
    def build(self, input_shape: tuple) -> None:
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad_output: np.ndarray):
        raise NotImplementedError

    def get_config(self) -> dict:
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self.dtype.name}
        for k in self._config_keys:
            v = getattr(self, k)
            cfg[k] = list(v) if isinstance(v, tuple) else v
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> Layer:
        return cls(**config)

    # -- conveniences ----------------------------------------------------------------------
    def __call__(self, x, training: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if not self.built:
            self.build((None,) + x.shape[1:])
        return self.forward(x, training)

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        if len(weights) != len(self.weights):
            raise ValueError(
                f"layer {self.name!r} has {len(self.weights)} weight arrays, got {len(weights)}"
            )
        for i, (w, new) in enumerate(zip(self.weights, weights, strict=True)):
            new = np.asarray(new)
            if new.shape != w.shape:
                raise ValueError(
                    f"layer {self.name!r} weight {i} ({self.weight_names[i]}) has shape "
                    f"{w.shape}, got an array of shape {new.shape}"
                )
            w[...] = new

    def _add_weight(self, name: str, shape: tuple, init: str, fan_in: int, fan_out: int):
        w = _initialize(init, shape, fan_in, fan_out, self.dtype)
        self.weights.append(np.ascontiguousarray(w))
        self.weight_names.append(name)
        self.grads.append(np.zeros(shape, self.dtype))
        return self.weights[-1]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"


class InputLayer(Layer):
    """What :func:`poolkit.keras.Input` returns: only a shape (without the batch dim)."""

    def __init__(self, shape=None, batch_size=None, dtype=None, name=None, **kwargs):
        if shape is None:
            raise ValueError("Input: shape is required, e.g. Input(shape=(28, 28, 1))")
        if isinstance(shape, numbers.Integral):
            shape = (shape,)
        super().__init__(name=name or _auto_name("InputLayer"), input_shape=shape,
                         dtype=dtype, **kwargs)
        self.shape = (batch_size,) + self.input_shape_arg

    def forward(self, x, training=False):
        return x


def Input(shape=None, batch_size=None, dtype=None, name=None) -> InputLayer:
    """The input of a model: ``Sequential([Input(shape=(28, 28, 1)), ...])``. ``shape`` excludes
    the batch dim."""
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, name=name)


# ------------------------------------------------------------------------------------------
# Convolution.


class Conv2D(Layer):
    """2-D convolution, channels_last: (N, H, W, Cin) -> (N, OH, OW, filters).

    Kernel shape (kh, kw, Cin, filters) and bias (filters,), as in Keras. Output size per dim
    from :func:`poolkit.shapes.keras_output_size` with the effective kernel
    ``dilation*(k-1)+1``: "valid" floor((L-e)/s)+1, "same" ceil(L/s) (the odd padding cell after).
    A ReLU activation is fused into the kernel; the first layer of a model skips its input
    gradient.
    """

    _config_keys = ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation",
                    "use_bias", "kernel_initializer", "bias_initializer")

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.filters = _positive_int(filters, "filters")
        self.kernel_size = _shapes.normalize_tuple(kernel_size, 2, "kernel_size", allow_one=False)
        self.strides = _shapes.normalize_tuple(strides, 2, "strides", allow_one=False)
        self.dilation_rate = _shapes.normalize_tuple(dilation_rate, 2, "dilation_rate",
                                                     allow_one=False)
        for nm, v in (("kernel_size", self.kernel_size), ("strides", self.strides),
                      ("dilation_rate", self.dilation_rate)):
            if min(v) <= 0:
                raise ValueError(f"Conv2D: {nm} must be positive, got {v}")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"Conv2D: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = padding.lower()
        if data_format not in (None, "channels_last"):
            raise ValueError(
                f"Conv2D: only data_format='channels_last' is supported, got {data_format!r}"
            )
        self.activation = _check_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _check_initializer(kernel_initializer, "kernel_initializer")
        self.bias_initializer = _check_initializer(bias_initializer, "bias_initializer")

    def _geometry(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"Conv2D {self.name!r} expects input of rank 4 (batch, height, width, channels), "
                f"got shape {tuple(input_shape)}"
            )
        dims = []
        for L, k, s, d in zip(input_shape[1:3], self.kernel_size, self.strides,
                              self.dilation_rate, strict=True):
            e = d * (k - 1) + 1
            dims.append(_shapes.keras_output_size(L, e, s, self.padding))
        out = tuple(o for o, _, _ in dims)
        if min(out) < 1:
            raise ValueError(
                f"Conv2D {self.name!r}: computed output size would be zero or negative: input "
                f"{tuple(input_shape)} with kernel_size={self.kernel_size}, strides="
                f"{self.strides}, padding={self.padding!r}, dilation_rate={self.dilation_rate} "
                f"gives {out}"
            )
        return out, (dims[0][1], dims[1][1])

    def compute_output_shape(self, input_shape):
        out, _ = self._geometry(input_shape)
        return (input_shape[0], *out, self.filters)

    def build(self, input_shape):
        out, pads = self._geometry(input_shape)
        cin = int(input_shape[-1])
        kh, kw = self.kernel_size
        self.weights, self.weight_names, self.grads = [], [], []
        self._add_weight("kernel", (kh, kw, cin, self.filters), self.kernel_initializer,
                         kh * kw * cin, kh * kw * self.filters)
        if self.use_bias:
            self._add_weight("bias", (self.filters,), self.bias_initializer, cin, self.filters)
        self._geo = np.array([*self.strides, *self.dilation_rate, *pads], np.int64)
        self._zero_bias = np.zeros(self.filters, self.dtype)
        self._parts = None
        super().build(input_shape)

    def forward(self, x, training=False):
        x = np.ascontiguousarray(x, dtype=self.dtype)
        n = x.shape[0]
        y = np.empty((n, *self.output_shape[1:]), self.dtype)
        b = self.weights[1] if self.use_bias else self._zero_bias
        relu = self.activation == "relu"
        _ck.conv2d_fwd(x, self.weights[0], b, y, self._geo, relu)
        if not relu and self.activation != "linear":
            y = _act_forward(self.activation, y)
        self._x, self._y = x, y
        return y

    def backward(self, grad_output):
        relu = self.activation == "relu"
        if relu or self.activation == "linear":
            g = np.ascontiguousarray(grad_output, dtype=self.dtype)
        else:
            g = np.ascontiguousarray(_act_backward(self.activation, self._y, grad_output),
                                     dtype=self.dtype)
        parts = min(_ck.N_CHUNKS, max(1, g.shape[0]))
        if self._parts is None or self._parts[0].shape[0] != parts:
            self._parts = (np.empty((parts, *self.weights[0].shape), self.dtype),
                           np.empty((parts, self.filters), self.dtype))
        gw_parts, gb_parts = self._parts
        keep = self.need_input_grad
        gm = np.empty_like(g) if keep else g  # the masked gradient, only if it is needed
        _ck.conv2d_bwd_params(self._x, g, self._y, gm, gw_parts, gb_parts, self._geo, relu,
                              keep)
        np.sum(gw_parts, axis=0, out=self.grads[0])
        if self.use_bias:
            np.sum(gb_parts, axis=0, out=self.grads[1])
        if not keep:
            return None
        gx = np.empty(self._x.shape, self.dtype)
        _ck.conv2d_bwd_input(gm, self.weights[0], gx, self._geo)
        return gx


# ------------------------------------------------------------------------------------------
# Pooling: thin wrappers over poolkit.max_pool / poolkit.average_pool.


class _Pooling(Layer):
    _rank = 2
    _mode = "max"
    _config_keys = ("pool_size", "strides", "padding", "data_format")

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        r = self._rank
        self.pool_size = _shapes.normalize_tuple(pool_size, r, "pool_size", allow_one=False)
        self.strides = (self.pool_size if strides is None
                        else _shapes.normalize_tuple(strides, r, "strides", allow_one=False))
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(
                f"{type(self).__name__}: padding must be 'valid' or 'same', got {padding!r}"
            )
        self.padding = padding.lower()
        self.data_format = _shapes.normalize_data_format(
            "channels_last" if data_format is None else data_format)
        # Validate the numbers now (not at first call), with a shape that is always valid.
        _shapes.keras_spec((max(self.pool_size),) * r, self.pool_size, self.strides, "valid")

    def _args(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                    data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != self._rank + 2:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects input of rank {self._rank + 2} "
                f"(batch, {self._rank} spatial dims, channels), got shape {tuple(input_shape)}"
            )
        return _ops.output_shape(input_shape, **self._args())

    def forward(self, x, training=False):
        self._x = x
        f = _ops.max_pool if self._mode == "max" else _ops.average_pool
        return f(x, **self._args())

    def backward(self, grad_output):
        if not self.need_input_grad:
            return None
        f = _ops.max_pool_backward if self._mode == "max" else _ops.average_pool_backward
        return f(np.ascontiguousarray(grad_output, dtype=self._x.dtype), self._x, **self._args())


def _pool_class(name: str, rank: int, mode: str, doc: str):
    cls = type(name, (_Pooling,), {"_rank": rank, "_mode": mode, "__doc__": doc})
    cls.__module__ = __name__
    return cls


_POOL_DOC = (
    "{kind} pooling over {r} spatial dim(s), channels_last by default: input (N, {sp}, C).\n\n"
    "Keras's arguments and defaults: pool_size=2, strides=None (= pool_size), padding='valid' "
    "or 'same', data_format=None (= 'channels_last'). Calls poolkit.{fn}; per dim\n"
    "'valid' gives floor((L - k)/s) + 1 and 'same' ceil(L/s) (the odd padding cell after)."
)
MaxPooling1D = _pool_class("MaxPooling1D", 1, "max", _POOL_DOC.format(
    kind="Max", r=1, sp="L", fn="max_pool"))
MaxPooling2D = _pool_class("MaxPooling2D", 2, "max", _POOL_DOC.format(
    kind="Max", r=2, sp="H, W", fn="max_pool"))
MaxPooling3D = _pool_class("MaxPooling3D", 3, "max", _POOL_DOC.format(
    kind="Max", r=3, sp="D, H, W", fn="max_pool"))
AveragePooling1D = _pool_class("AveragePooling1D", 1, "avg", _POOL_DOC.format(
    kind="Average", r=1, sp="L", fn="average_pool (padded cells not counted)"))
AveragePooling2D = _pool_class("AveragePooling2D", 2, "avg", _POOL_DOC.format(
    kind="Average", r=2, sp="H, W", fn="average_pool (padded cells not counted)"))
AveragePooling3D = _pool_class("AveragePooling3D", 3, "avg", _POOL_DOC.format(
    kind="Average", r=3, sp="D, H, W", fn="average_pool (padded cells not counted)"))
MaxPool2D, AvgPool2D = MaxPooling2D, AveragePooling2D


class _GlobalPooling2D(Layer):
    """Pooling with the window = the whole spatial extent: (N, H, W, C) -> (N, C)
    (or (N, 1, 1, C) with keepdims=True). Calls the same engine ops as the pooling layers."""

    _mode = "max"
    _config_keys = ("data_format", "keepdims")

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _shapes.normalize_data_format(
            "channels_last" if data_format is None else data_format)
        self.keepdims = bool(keepdims)

    def _spatial(self, shape):
        return tuple(shape[1:3]) if self.data_format == "channels_last" else tuple(shape[2:4])

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} expects input of rank 4, got shape "
                f"{tuple(input_shape)}"
            )
        sp = self._spatial(input_shape)
        out = _ops.output_shape(input_shape, sp, data_format=self.data_format)
        return out if self.keepdims else (
            (input_shape[0], input_shape[-1]) if self.data_format == "channels_last"
            else (input_shape[0], input_shape[1]))

    def forward(self, x, training=False):
        self._x = x
        f = _ops.max_pool if self._mode == "max" else _ops.average_pool
        y = f(x, self._spatial(x.shape), data_format=self.data_format)
        self._pooled_shape = y.shape
        return y if self.keepdims else y.reshape(self.compute_output_shape(x.shape))

    def backward(self, grad_output):
        if not self.need_input_grad:
            return None
        g = np.ascontiguousarray(grad_output, dtype=self._x.dtype).reshape(self._pooled_shape)
        f = _ops.max_pool_backward if self._mode == "max" else _ops.average_pool_backward
        return f(g, self._x, self._spatial(self._x.shape), data_format=self.data_format)


class GlobalMaxPooling2D(_GlobalPooling2D):
    __doc__ = _GlobalPooling2D.__doc__
    _mode = "max"


class GlobalAveragePooling2D(_GlobalPooling2D):
    __doc__ = _GlobalPooling2D.__doc__
    _mode = "avg"


# ------------------------------------------------------------------------------------------
# Dense and shape/activation layers.


class Flatten(Layer):
    """(N, *dims) -> (N, prod(dims)), in the channels_last memory order (Keras's)."""

    def compute_output_shape(self, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:])))

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_output):
        return grad_output.reshape(self._shape) if self.need_input_grad else None


class Dense(Layer):
    """y = activation(x @ kernel + bias) on the last axis; kernel (in, units), bias (units,)."""

    _config_keys = ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer")

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int(units, "units")
        self.activation = _check_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _check_initializer(kernel_initializer, "kernel_initializer")
        self.bias_initializer = _check_initializer(bias_initializer, "bias_initializer")

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Dense {self.name!r} needs input of rank >= 2, got {input_shape}")
        return (*input_shape[:-1], self.units)

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.weights, self.weight_names, self.grads = [], [], []
        w = _initialize(self.kernel_initializer, (fan_in, self.units), fan_in, self.units,
                        self.dtype)
        # Held as a transposed view of a C-contiguous (units, in) array: see _conv_kernels.
        self.weights.append(np.ascontiguousarray(w.T).T)
        self.weight_names.append("kernel")
        self.grads.append(np.zeros((self.units, fan_in), self.dtype).T)
        if self.use_bias:
            self._add_weight("bias", (self.units,), self.bias_initializer, fan_in, self.units)
        self._zero_bias = np.zeros(self.units, self.dtype)
        super().build(input_shape)

    def forward(self, x, training=False):
        self._x = x
        x2 = np.ascontiguousarray(x.reshape(-1, x.shape[-1]), dtype=self.dtype)
        z = np.empty((x2.shape[0], self.units), self.dtype)
        b = self.weights[1] if self.use_bias else self._zero_bias
        _ck.dense_fwd(x2, self.weights[0].T, b, z)
        self._x2 = x2
        z = z.reshape(*x.shape[:-1], self.units)
        self._z = z
        y = _act_forward(self.activation, z)
        self._y = y
        return y

    def backward(self, grad_output):
        return self.backward_pre(_act_backward(self.activation, self._y, grad_output))

    def backward_pre(self, gz):
        """Backward from the gradient of the PRE-activation (used by the fused softmax + CE)."""
        g2 = np.ascontiguousarray(gz.reshape(-1, self.units), dtype=self.dtype)
        gb = self.grads[1] if self.use_bias else np.empty(self.units, self.dtype)
        _ck.dense_bwd_params(self._x2, g2, self.grads[0].T, gb)
        if not self.need_input_grad:
            return None
        gx = np.empty(self._x2.shape, self.dtype)
        _ck.dense_bwd_input(g2, self.weights[0].T, gx)
        return gx.reshape(self._x.shape)


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of inputs while training and scales the rest by 1/(1-rate)."""

    _config_keys = ("rate", "seed")

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
            raise ValueError(f"Dropout: rate must be a number in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise ValueError("Dropout: noise_shape is not supported (use None)")
        self.rate = float(rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed) if seed is not None else None

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            self._mask = None
            return x
        rng = self._rng or _utils.rng()
        keep = rng.random(x.shape) >= self.rate
        self._mask = keep.astype(x.dtype) / (1.0 - self.rate)
        return x * self._mask

    def backward(self, grad_output):
        if not self.need_input_grad:
            return None
        return grad_output if self._mask is None else grad_output * self._mask


class Activation(Layer):
    """Applies ``activation`` ('relu', 'softmax' on the last axis, 'sigmoid', 'tanh', 'linear')."""

    _config_keys = ("activation",)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _check_activation(activation)

    def forward(self, x, training=False):
        self._z = x
        self._y = _act_forward(self.activation, x)
        return self._y

    def backward(self, grad_output):
        return self.backward_pre(_act_backward(self.activation, self._y, grad_output))

    def backward_pre(self, gz):
        return gz if self.need_input_grad else None


class ReLU(Layer):
    """max(x, 0) (Keras's ReLU layer with its default arguments; max_value caps it)."""

    _config_keys = ("max_value",)

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        if negative_slope != 0.0 or threshold != 0.0:
            raise ValueError("ReLU: only negative_slope=0 and threshold=0 are supported")
        if max_value is not None and (not isinstance(max_value, numbers.Real) or max_value < 0):
            raise ValueError(f"ReLU: max_value must be None or >= 0, got {max_value!r}")
        self.max_value = None if max_value is None else float(max_value)

    def forward(self, x, training=False):
        self._x = x
        y = np.maximum(x, 0, dtype=x.dtype)
        if self.max_value is not None:
            np.minimum(y, self.max_value, out=y)
        return y

    def backward(self, grad_output):
        if not self.need_input_grad:
            return None
        m = self._x > 0
        if self.max_value is not None:
            m &= self._x < self.max_value
        return grad_output * m


class Softmax(Activation):
    """Softmax over the last axis (``axis=-1`` only)."""

    _config_keys = ()

    def __init__(self, axis=-1, **kwargs):
        if axis != -1:
            raise ValueError(f"Softmax: only axis=-1 is supported, got {axis!r}")
        super().__init__("softmax", **kwargs)


LAYER_CLASSES = {c.__name__: c for c in (
    Conv2D, MaxPooling1D, MaxPooling2D, MaxPooling3D, AveragePooling1D, AveragePooling2D,
    AveragePooling3D, GlobalMaxPooling2D, GlobalAveragePooling2D, Flatten, Dense, Dropout,
    Activation, ReLU, Softmax)}


def get(class_name: str):
    """The layer class called ``class_name`` (for loading saved models)."""
    try:
        return LAYER_CLASSES[class_name]
    except KeyError:
        raise ValueError(
            f"unknown layer type {class_name!r}; known types: {sorted(LAYER_CLASSES)}"
        ) from None
