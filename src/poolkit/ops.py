"""Keras/TensorFlow-convention pooling ops (exported at the top level of ``poolkit``).

Layout ``channels_last`` (N, *spatial, C) by default, or ``channels_first`` (N, C, *spatial);
the number of spatial dims is ``x.ndim - 2`` (1 to 3). An int ``pool_size``/``strides``/
``dilation`` applies to every spatial dim; ``strides=None`` means ``pool_size``. Per spatial dim,
with input ``L``, effective window ``e = dilation*(pool_size-1) + 1`` and stride ``s``::

    padding="valid":  out = floor((L - e) / s) + 1
    padding="same":   out = ceil(L / s); total = max((out-1)*s + e - L, 0)
                      before = total // 2; after = total - before    (the odd cell goes after)
    padding=((b, a), ...): out = floor((L + b + a - e) / s) + 1, with 0 <= b, a < e

Max pooling never reads padding. Average pooling divides by the number of in-bounds cells (TF's
rule) unless ``count_include_pad=True``, which counts the padded cells too (Flax's default).
"""

from __future__ import annotations

import numpy as np

from . import engine
from .shapes import PoolSpec, keras_output_shape, keras_spec, normalize_data_format

__all__ = [
    "max_pool",
    "average_pool",
    "max_pool_backward",
    "average_pool_backward",
    "output_shape",
]


def _prepare(x, mode, pool_size, strides, padding, data_format, dilation, count_include_pad, op):
    df = normalize_data_format(data_format)
    x = engine.check_input(x, mode, "x", op=op)
    if not 3 <= x.ndim <= 5:
        raise ValueError(
            f"{op}: x must be 3-D, 4-D or 5-D (batch, 1 to 3 spatial dims, channels), "
            f"got a {x.ndim}-D array of shape {x.shape}"
        )
    spatial = x.shape[1:-1] if df == "channels_last" else x.shape[2:]
    channels = x.shape[-1] if df == "channels_last" else x.shape[1]
    if channels == 0 or any(n == 0 for n in spatial):
        raise ValueError(
            f"{op}: x of shape {x.shape} ({df}) has a zero-size channel or spatial dim; "
            f"only the batch dim may be 0"
        )
    spec: PoolSpec = keras_spec(
        spatial, pool_size, strides, padding, dilation,
        count_include_pad=count_include_pad, op=op,
    )
    return x, spec, df == "channels_last"


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last",
             dilation=1) -> np.ndarray:
    """Max pooling with TensorFlow's conventions; see the module docstring for the shape rules."""
    x, spec, cl = _prepare(x, "max", pool_size, strides, padding, data_format, dilation,
                           False, "max_pool")
    return engine.pool(x, spec, "max", channels_last=cl)


def average_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last",
                 count_include_pad=False) -> np.ndarray:
    """Average pooling with TensorFlow's conventions (padded cells not counted by default)."""
    x, spec, cl = _prepare(x, "avg", pool_size, strides, padding, data_format, 1,
                           count_include_pad, "average_pool")
    return engine.pool(x, spec, "avg", channels_last=cl)


def _backward(mode, grad_output, x, pool_size, strides, padding, data_format, dilation,
              count_include_pad, op):
    x, spec, cl = _prepare(x, mode, pool_size, strides, padding, data_format, dilation,
                           count_include_pad, op)
    g = engine.check_grad(grad_output, x, engine.output_shape(x.shape, spec, cl), op=op)
    return engine.pool_backward(g, x, spec, mode, channels_last=cl)


def max_pool_backward(grad_output, x, pool_size, strides=None, padding="valid",
                      data_format="channels_last", dilation=1) -> np.ndarray:
    """Gradient of :func:`max_pool` with respect to ``x`` (to each window's first maximum)."""
    return _backward("max", grad_output, x, pool_size, strides, padding, data_format, dilation,
                     False, "max_pool_backward")


def average_pool_backward(grad_output, x, pool_size, strides=None, padding="valid",
                          data_format="channels_last", count_include_pad=False) -> np.ndarray:
    """Gradient of :func:`average_pool` with respect to ``x``."""
    return _backward("avg", grad_output, x, pool_size, strides, padding, data_format, 1,
                     count_include_pad, "average_pool_backward")


def output_shape(input_shape, pool_size, strides=None, padding="valid",
                 data_format="channels_last", dilation=1) -> tuple:
    """The output shape of :func:`max_pool`/:func:`average_pool` without computing anything.

    ``input_shape`` is (N, *spatial, C) or (N, C, *spatial); N may be None.
    """
    return keras_output_shape(input_shape, pool_size, strides, padding, data_format, dilation)
