"""Activation layers."""

from __future__ import annotations

import numbers

from ...errors import InvalidType, InvalidValue
from .. import activations as _act
from .base import Layer

__all__ = ["Activation", "ReLU", "Softmax"]


class Activation(Layer):
    """Applies ``activation`` elementwise ('relu', 'sigmoid', 'tanh', 'linear') or 'softmax'
    over the last axis; shape unchanged. Formulas in :mod:`poolkit.keras.activations`."""

    _config_keys = ("activation",)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _act.check(activation)
        self._y = None

    def _apply(self, z):
        return _act.forward(self.activation, z)

    def _apply_backward(self, y, gy):
        return _act.backward(self.activation, y, gy)

    def softmax_over_last_axis(self, ndim: int) -> bool:
        """True if this layer is a softmax over the last of ``ndim`` axes (then a model may
        fuse it with the cross-entropy)."""
        return self.activation == "softmax"

    def call(self, x, training=False):
        return self._apply(x)

    def call_with_logits(self, x):
        """(output, pre-activation) for ``x``, writing no state (used by ``evaluate``)."""
        return self._apply(x), x

    def _forward(self, x, training=False):
        self.check_input(x)
        self._z = x
        self._y = self._apply(x)
        return self._y

    def backward(self, grad_output):
        g = self._check_grad(grad_output, self._y)
        return self.backward_pre(self._apply_backward(self._y, g))

    def backward_pre(self, gz):
        gz = self._check_grad(gz, self._y)
        return gz if self.need_input_grad else None


class Softmax(Activation):
    """Softmax over ``axis`` (an int, default -1, or a tuple of ints: one distribution over
    all those axes together, as Keras): y = exp(x - max x) / sum(exp(x - max x)), sums and
    maxima over ``axis``. Shape unchanged."""

    _config_keys = ("axis",)

    def __init__(self, axis=-1, **kwargs):
        super().__init__("softmax", **kwargs)
        if isinstance(axis, list | tuple):
            items = tuple(axis)
            if not items:
                raise InvalidValue("Softmax: axis must be an int or a non-empty tuple of ints, "
                                   "got ()")
        else:
            items = (axis,)
        for a in items:
            if not isinstance(a, numbers.Integral) or isinstance(a, bool):
                raise InvalidType(f"Softmax: axis must be an int or a tuple of ints, got "
                                  f"{axis!r}")
        self.axis = int(items[0]) if not isinstance(axis, list | tuple) else \
            tuple(int(a) for a in items)

    def _axes(self, ndim: int) -> tuple[int, ...]:
        items = self.axis if isinstance(self.axis, tuple) else (self.axis,)
        out = []
        for a in items:
            if not -ndim <= a < ndim:
                raise InvalidValue(f"Softmax {self.name!r}: axis {self.axis!r} is out of range "
                                   f"for an input of rank {ndim}")
            out.append(a % ndim)
        if len(set(out)) != len(out):
            raise InvalidValue(f"Softmax {self.name!r}: axis {self.axis!r} repeats an axis")
        return tuple(out)

    def compute_output_shape(self, input_shape):
        self._axes(len(input_shape))
        return tuple(input_shape)

    def softmax_over_last_axis(self, ndim: int) -> bool:
        return self._axes(ndim) == (ndim - 1,)

    def _apply(self, z):
        return _act.softmax(z, self._axes(z.ndim))

    def _apply_backward(self, y, gy):
        return _act.softmax_backward(y, gy, self._axes(y.ndim))


class ReLU(Layer):
    """Keras's ReLU layer: with t = ``threshold`` (default 0), m = ``max_value`` (default None:
    no cap) and a = ``negative_slope`` (default 0)::

        f(x) = min(x, m)      if x > t
        f(x) = a * (x - t)    if x <= t

    so the defaults give max(x, 0). All three must be >= 0, ``negative_slope`` and
    ``threshold`` finite. Shape unchanged. The gradient is
    1 where t < x < m, a where x <= t and 0 where x >= m.
    """

    _config_keys = ("max_value", "negative_slope", "threshold")

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _act.check_number(max_value, "ReLU: max_value", allow_none=True)
        # finite: an infinite slope or threshold turns finite input into inf or NaN
        # (max_value may be inf: no cap)
        self.negative_slope = _act.check_number(negative_slope, "ReLU: negative_slope",
                                                finite=True)
        self.threshold = _act.check_number(threshold, "ReLU: threshold", finite=True)
        self._x = None

    def _args(self):
        return dict(negative_slope=self.negative_slope, max_value=self.max_value,
                    threshold=self.threshold)

    def call(self, x, training=False):
        return _act.relu(x, **self._args())

    def _forward(self, x, training=False):
        self.check_input(x)
        self._x = x
        return _act.relu(x, **self._args())

    def backward(self, grad_output):
        g = self._check_grad(grad_output, self._x)
        if not self.need_input_grad:
            return None
        return _act.relu_backward(self._x, g, **self._args())
