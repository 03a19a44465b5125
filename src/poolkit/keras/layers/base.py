"""The base :class:`Layer` and :class:`InputSpec`: what every layer shares.

Protocol (channels_last unless a layer takes ``data_format``):

- ``build(input_shape)`` creates the weights (float32 unless ``dtype="float64"``) and fixes
  the input spec (e.g. Dense's last axis, Conv2D's channels);
- ``compute_output_shape(input_shape)`` gives the output shape (batch may be None);
- ``layer(x)`` (Keras's ``__call__``) builds on first use, checks ``x`` against the input spec
  with Keras's rule and message, and returns ``call(x)``;
- ``call(x, training)`` computes the output and writes NO state on the layer, so one model can
  run inference from several threads at once;
- ``forward(x, training)`` checks ``x`` like ``layer(x)``, computes the same output and keeps
  what the backward pass needs; ``backward(grad_output)`` then sets ``self.grads`` (aligned
  with ``self.weights``) and returns the gradient with respect to the input (None if
  ``self.need_input_grad`` is False);
- ``get_config()`` returns the JSON-able constructor arguments.

The compiled kernels behind the layers check the arrays they are given against each other
too (see :mod:`poolkit._kernels`), so no call reads or writes outside an array.
"""

from __future__ import annotations

import numbers
import threading

import numpy as np

from ... import shapes as _shapes
from ...errors import InvalidType, InvalidValue

__all__ = ["Layer", "InputSpec", "assert_input_compatibility", "auto_name", "check_dtype",
           "positive_int", "as_float_array", "data_format"]

_NAME_COUNTS: dict[str, int] = {}
_NAME_LOCK = threading.Lock()


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper() or
                                   (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("2_d", "2d").replace("1_d", "1d").replace("3_d", "3d")


def auto_name(cls_name: str) -> str:
    """Keras's default layer names: ``conv2d``, ``conv2d_1``, ... per class, per process."""
    base = _snake(cls_name)
    with _NAME_LOCK:
        n = _NAME_COUNTS.get(base, 0)
        _NAME_COUNTS[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def check_dtype(dtype) -> np.dtype:
    """A layer's ``dtype`` argument: None (float32), 'float32' or 'float64'."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise InvalidType(f"dtype must be 'float32' or 'float64', got {dtype!r}") from e
    if dt not in (np.float32, np.float64):
        raise InvalidValue(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def data_format(value) -> str:
    """A layer's ``data_format``: None (Keras's default, 'channels_last'), 'channels_last' or
    'channels_first'."""
    return _shapes.normalize_data_format("channels_last" if value is None else value)


def positive_int(value, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise InvalidType(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise InvalidValue(f"{name} must be a positive int, got {value!r}")
    return int(value)


def as_float_array(x, dtype, what: str) -> np.ndarray:
    """``x`` as an array of ``dtype``; InvalidType if it is not numeric."""
    a = x if isinstance(x, np.ndarray) else None
    if a is None:
        try:
            a = np.asarray(x)
        except (TypeError, ValueError) as e:
            raise InvalidType(f"{what}: input must be a numeric array, got "
                              f"{type(x).__name__} ({e})") from None
    if a.dtype.kind not in "fiub":
        raise InvalidType(f"{what}: input must be a numeric array, got dtype {a.dtype}")
    return a.astype(dtype, copy=False)


class InputSpec:
    """What a layer accepts (Keras's ``InputSpec``): a rank (``ndim``, or bounds ``min_ndim``
    / ``max_ndim``) and fixed sizes of some axes (``axes``: axis -> size)."""

    def __init__(self, ndim: int | None = None, min_ndim: int | None = None,
                 max_ndim: int | None = None, axes: dict[int, int] | None = None):
        self.ndim = ndim
        self.min_ndim = min_ndim
        self.max_ndim = max_ndim
        self.axes = dict(axes or {})

    def __repr__(self) -> str:
        parts = [f"{k}={v}" for k, v in (("ndim", self.ndim), ("min_ndim", self.min_ndim),
                                          ("max_ndim", self.max_ndim)) if v is not None]
        if self.axes:
            parts.append(f"axes={self.axes}")
        return f"InputSpec({', '.join(parts)})"


def assert_input_compatibility(spec: InputSpec | None, shape: tuple, layer_name: str) -> None:
    """Keras's check of an input of ``shape`` against ``spec``, with Keras's messages (e.g.
    ``Input 0 of layer "dense" is incompatible with the layer: expected axis -1 of input shape
    to have value 3, but received input with shape (1, 5000)``); raises InvalidValue."""
    if spec is None:
        return
    shape = tuple(None if d is None else int(d) for d in shape)
    ndim = len(shape)
    head = f'Input 0 of layer "{layer_name}" is incompatible with the layer: '
    if spec.ndim is not None and ndim != spec.ndim:
        raise InvalidValue(head + f"expected ndim={spec.ndim}, found ndim={ndim}. "
                                  f"Full shape received: {shape}")
    if spec.max_ndim is not None and ndim > spec.max_ndim:
        raise InvalidValue(head + f"expected max_ndim={spec.max_ndim}, found ndim={ndim}")
    if spec.min_ndim is not None and ndim < spec.min_ndim:
        raise InvalidValue(head + f"expected min_ndim={spec.min_ndim}, found ndim={ndim}. "
                                  f"Full shape received: {shape}")
    for axis, value in spec.axes.items():
        if value is not None and -ndim <= axis < ndim and shape[axis] not in (value, None):
            raise InvalidValue(head + f"expected axis {axis} of input shape to have value "
                                      f"{value}, but received input with shape {shape}")


class Layer:
    """Base layer. ``input_shape`` (without the batch dim) is accepted by every layer, as in
    Keras, and only matters on a model's first layer."""

    _config_keys: tuple[str, ...] = ()

    def __init__(self, name: str | None = None, input_shape=None, trainable: bool = True,
                 dtype=None, **kwargs):
        if kwargs:
            raise InvalidType(
                f"{type(self).__name__}: unexpected keyword argument(s) {sorted(kwargs)}"
            )
        if name is not None and not isinstance(name, str):
            raise InvalidType(f"name must be a string, got {name!r}")
        self.name = name or auto_name(type(self).__name__)
        self.input_shape_arg = None
        if input_shape is not None:
            if isinstance(input_shape, numbers.Integral):
                input_shape = (input_shape,)
            try:
                input_shape = tuple(input_shape)
            except TypeError:
                raise InvalidType(f"input_shape must be a tuple of positive ints (without the "
                                  f"batch dim), got {input_shape!r}") from None
            if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
                       for v in input_shape):
                raise InvalidValue(
                    f"input_shape must be a tuple of positive ints (without the batch dim), "
                    f"got {input_shape!r}"
                )
            self.input_shape_arg = tuple(int(v) for v in input_shape)
        self.trainable = bool(trainable)
        self.dtype = check_dtype(dtype)
        self.built = False
        self.input_spec: InputSpec | None = None
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

    def call(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The output for ``x``, writing no state on the layer (subclasses implement it)."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The output for ``x`` (as an array of the layer's dtype, as :meth:`__call__` takes
        it), keeping what :meth:`backward` needs; subclasses implement :meth:`_forward`."""
        return self._forward(as_float_array(x, self.dtype, f"{type(self).__name__} "
                                                           f"{self.name!r}"), training)

    def _forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """:meth:`forward` on an array of the layer's dtype. The default suits layers whose
        backward needs nothing."""
        self.check_input(x)
        return self.call(x, training)

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

    # -- checks ----------------------------------------------------------------------------
    def check_input(self, x) -> None:
        """Raise InvalidValue (Keras's message) unless ``x`` fits this layer's input spec."""
        assert_input_compatibility(self.input_spec, np.shape(x), self.name)

    def _check_grad(self, grad_output, expected) -> np.ndarray:
        """``grad_output`` as an array of the shape of the last forward output (``expected``:
        that output or its shape; None before any forward), else InvalidValue: a wrong shape
        must never reach a kernel."""
        if expected is None:
            raise InvalidValue(f"{type(self).__name__} {self.name!r}: backward needs a "
                               f"forward(x) call first")
        shape = expected if isinstance(expected, tuple) else expected.shape
        g = np.asarray(grad_output)
        if g.shape != shape:
            raise InvalidValue(
                f"{type(self).__name__} {self.name!r}: grad_output must have the shape of the "
                f"last forward output {shape}, got {g.shape}"
            )
        return g

    # -- conveniences ----------------------------------------------------------------------
    def __call__(self, x, training: bool = False) -> np.ndarray:
        x = as_float_array(x, self.dtype, f"{type(self).__name__} {self.name!r}")
        if not self.built:
            self.check_input(x)  # the rank, before build relies on it
            self.build((None,) + x.shape[1:])
        self.check_input(x)
        return self.call(x, training)

    def count_params(self) -> int:
        return int(sum(w.size for w in self.weights))

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        if len(weights) != len(self.weights):
            raise InvalidValue(
                f"layer {self.name!r} has {len(self.weights)} weight arrays, got {len(weights)}"
            )
        for i, (w, new) in enumerate(zip(self.weights, weights, strict=True)):
            new = np.asarray(new)
            if new.shape != w.shape:
                raise InvalidValue(
                    f"layer {self.name!r} weight {i} ({self.weight_names[i]}) has shape "
                    f"{w.shape}, got an array of shape {new.shape}"
                )
        for w, new in zip(self.weights, weights, strict=True):
            w[...] = new

    def _add_weight(self, name: str, shape: tuple, init: str, fan_in: int, fan_out: int):
        from ..initializers import initialize

        w = initialize(init, shape, fan_in, fan_out, self.dtype)
        self.weights.append(np.ascontiguousarray(w))
        self.weight_names.append(name)
        self.grads.append(np.zeros(shape, self.dtype))
        return self.weights[-1]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
