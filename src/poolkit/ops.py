"""Keras/TensorFlow-convention pooling ops (exported at the top level of ``poolkit``).

Layout ``channels_last`` (N, *spatial, C) by default, or ``channels_first`` (N, C, *spatial);
the number of spatial dims is ``x.ndim - 2`` (1 to 3). An int ``pool_size``/``strides``/
``dilation`` applies to every spatial dim; ``strides=None`` means ``pool_size``. Windowed kinds
(max, average, min, LP), per spatial dim, with input ``L``, effective window
``e = dilation*(pool_size-1) + 1`` and stride ``s``::

    padding="valid":  out = floor((L - e) / s) + 1
    padding="same":   out = ceil(L / s); total = max((out-1)*s + e - L, 0)
                      before = total // 2; after = total - before    (the odd cell goes after)
    padding=((b, a), ...): out = floor((L + b + a - e) / s) + 1, with 0 <= b, a < e

Padding is never read. Average pooling divides by the number of in-bounds cells (TF's rule)
unless ``count_include_pad=True``. Every op ``f`` has ``f_backward(grad_output, x, <f's
arguments>)``; :func:`output_shape` gives any kind's output shape without computing it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import engine
from .errors import InvalidType, InvalidValue
from .shapes import (
    adaptive_output_size,
    adaptive_spec,
    blur_spec,
    keras_spec,
    normalize_data_format,
    normalize_tuple,
    polyphase_output_size,
)

__all__ = [
    "max_pool", "average_pool", "min_pool", "lp_pool",
    "global_max_pool", "global_average_pool", "adaptive_max_pool", "adaptive_average_pool",
    "blur_pool", "max_blur_pool", "aps_pool",
]
__all__ += [f"{name}_backward" for name in __all__] + ["output_shape"]


def _array(x, mode, data_format, op, ranks=(1, 2, 3)):
    """(x, spatial dims, channels_last) after checking dtype, rank and zero-size dims."""
    df = normalize_data_format(data_format)
    x = engine.check_input(x, mode, "x", op=op)
    if x.ndim - 2 not in ranks:
        dims = " or ".join(f"{r + 2}-D" for r in ranks)
        raise InvalidValue(
            f"{op}: x must be {dims} (batch, {', '.join(map(str, ranks))} spatial dims, "
            f"channels), got a {x.ndim}-D array of shape {x.shape}"
        )
    cl = df == "channels_last"
    spatial = x.shape[1:-1] if cl else x.shape[2:]
    channels = x.shape[-1] if cl else x.shape[1]
    if channels == 0 or any(n == 0 for n in spatial):
        raise InvalidValue(
            f"{op}: x of shape {x.shape} ({df}) has a zero-size channel or spatial dim; "
            f"only the batch dim may be 0"
        )
    return x, tuple(spatial), cl


def _backward(grad_output, x, spec, mode, cl, op, **kw):
    g = engine.check_grad(grad_output, x, engine.output_shape(x.shape, spec, cl), op=op)
    return engine.pool_backward(g, x, spec, mode, channels_last=cl, **kw)


# --------------------------------------------------------------------------------------------
# Windowed kinds.


def _windowed(mode, x, pool_size, strides, padding, data_format, dilation, count_include_pad,
              op, grad_output=None, **kw):
    x, spatial, cl = _array(x, mode, data_format, op)
    spec = keras_spec(spatial, pool_size, strides, padding, dilation,
                      count_include_pad=count_include_pad, op=op)
    if mode == "lp":  # the plain p-norm of the window: divisor 1, no rescaling
        spec = dataclasses.replace(spec, divisor=1)
    if grad_output is None:
        return engine.pool(x, spec, mode, channels_last=cl, **kw)
    return _backward(grad_output, x, spec, mode, cl, op, **kw)


def max_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last",
             dilation=1) -> np.ndarray:
    """Max pooling with TensorFlow's conventions (see the module docstring for the shapes).
    Ties go to the first maximum in row-major window order; a NaN in a window wins."""
    return _windowed("max", x, pool_size, strides, padding, data_format, dilation, False,
                     "max_pool")


def average_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last",
                 count_include_pad=False) -> np.ndarray:
    """Average pooling with TensorFlow's conventions: padded cells are not counted in the
    divisor (``count_include_pad=True`` counts them, as Flax does)."""
    return _windowed("avg", x, pool_size, strides, padding, data_format, 1, count_include_pad,
                     "average_pool")


def min_pool(x, pool_size, strides=None, padding="valid", data_format="channels_last",
             dilation=1) -> np.ndarray:
    """Min pooling: :func:`max_pool`'s rules mirrored (first minimum wins ties, a NaN wins)."""
    return _windowed("min", x, pool_size, strides, padding, data_format, dilation, False,
                     "min_pool")


def lp_pool(x, p, pool_size, strides=None, padding="valid",
            data_format="channels_last") -> np.ndarray:
    """Power-average pooling: ``(sum over the window's in-bounds cells of |x|^p)^(1/p)`` for
    ``p > 0``, ``max |x|`` for ``p = inf``. Padding is never read (it adds nothing)."""
    return _windowed("lp", x, pool_size, strides, padding, data_format, 1, False, "lp_pool",
                     p=p)


def max_pool_backward(grad_output, x, pool_size, strides=None, padding="valid",
                      data_format="channels_last", dilation=1) -> np.ndarray:
    """Gradient of :func:`max_pool` with respect to ``x`` (to each window's first maximum)."""
    return _windowed("max", x, pool_size, strides, padding, data_format, dilation, False,
                     "max_pool_backward", grad_output)


def average_pool_backward(grad_output, x, pool_size, strides=None, padding="valid",
                          data_format="channels_last", count_include_pad=False) -> np.ndarray:
    """Gradient of :func:`average_pool` with respect to ``x``."""
    return _windowed("avg", x, pool_size, strides, padding, data_format, 1, count_include_pad,
                     "average_pool_backward", grad_output)


def min_pool_backward(grad_output, x, pool_size, strides=None, padding="valid",
                      data_format="channels_last", dilation=1) -> np.ndarray:
    """Gradient of :func:`min_pool` with respect to ``x`` (to each window's first minimum)."""
    return _windowed("min", x, pool_size, strides, padding, data_format, dilation, False,
                     "min_pool_backward", grad_output)


def lp_pool_backward(grad_output, x, p, pool_size, strides=None, padding="valid",
                     data_format="channels_last") -> np.ndarray:
    """Gradient of :func:`lp_pool`: ``g * sign(x) * (|x| / out)^(p-1)`` per window (0 where
    the cell or the window's output is 0)."""
    return _windowed("lp", x, pool_size, strides, padding, data_format, 1, False,
                     "lp_pool_backward", grad_output, p=p)


# --------------------------------------------------------------------------------------------
# Global and adaptive pooling.


def _global(mode, x, data_format, keepdims, op, grad_output=None):
    if not isinstance(keepdims, bool | np.bool_):
        raise InvalidType(f"{op}: keepdims must be a bool, got {keepdims!r}")
    x, spatial, cl = _array(x, mode, data_format, op)
    spec = adaptive_spec(spatial, (1,) * len(spatial))
    pooled = engine.output_shape(x.shape, spec, cl)
    if grad_output is None:
        out = engine.pool(x, spec, mode, channels_last=cl)
        return out if keepdims else out.reshape(x.shape[0], -1)
    want = pooled if keepdims else (x.shape[0], x.shape[-1] if cl else x.shape[1])
    if not isinstance(grad_output, np.ndarray) or grad_output.shape != want:
        raise InvalidValue(f"{op}: grad_output must have shape {want}, got "
                           f"{getattr(grad_output, 'shape', type(grad_output).__name__)}")
    return _backward(grad_output.reshape(pooled), x, spec, mode, cl, op)


def global_max_pool(x, data_format="channels_last", keepdims=False) -> np.ndarray:
    """Maximum over all spatial dims: (N, C), or (N, 1, ..., 1, C) with ``keepdims`` (the
    ones in the spatial dims' places for channels_first). Max rules as :func:`max_pool`."""
    return _global("max", x, data_format, keepdims, "global_max_pool")


def global_average_pool(x, data_format="channels_last", keepdims=False) -> np.ndarray:
    """Mean over all spatial dims: (N, C), or (N, 1, ..., 1, C) with ``keepdims``."""
    return _global("avg", x, data_format, keepdims, "global_average_pool")


def global_max_pool_backward(grad_output, x, data_format="channels_last",
                             keepdims=False) -> np.ndarray:
    """Gradient of :func:`global_max_pool` (to each plane's first maximum)."""
    return _global("max", x, data_format, keepdims, "global_max_pool_backward", grad_output)


def global_average_pool_backward(grad_output, x, data_format="channels_last",
                                 keepdims=False) -> np.ndarray:
    """Gradient of :func:`global_average_pool`: ``g / (number of spatial cells)`` everywhere."""
    return _global("avg", x, data_format, keepdims, "global_average_pool_backward",
                   grad_output)


def _adaptive(mode, x, output_size, data_format, op, grad_output=None):
    x, spatial, cl = _array(x, mode, data_format, op)
    spec = adaptive_spec(spatial, adaptive_output_size(spatial, output_size, op=op))
    if grad_output is None:
        return engine.pool(x, spec, mode, channels_last=cl)
    return _backward(grad_output, x, spec, mode, cl, op)


_ADAPTIVE_DOC = """

    ``output_size``: an int or a tuple (None entries keep the input size). Window ``i`` of a
    dim of length ``L`` with ``O`` outputs spans ``[floor(i*L/O), ceil((i+1)*L/O))`` (PyTorch's
    and Keras 3's rule, in integers)."""


def adaptive_max_pool(x, output_size, data_format="channels_last") -> np.ndarray:
    return _adaptive("max", x, output_size, data_format, "adaptive_max_pool")


def adaptive_average_pool(x, output_size, data_format="channels_last") -> np.ndarray:
    return _adaptive("avg", x, output_size, data_format, "adaptive_average_pool")


def adaptive_max_pool_backward(grad_output, x, output_size,
                               data_format="channels_last") -> np.ndarray:
    """Gradient of :func:`adaptive_max_pool` (to each window's first maximum)."""
    return _adaptive("max", x, output_size, data_format, "adaptive_max_pool_backward",
                     grad_output)


def adaptive_average_pool_backward(grad_output, x, output_size,
                                   data_format="channels_last") -> np.ndarray:
    """Gradient of :func:`adaptive_average_pool`."""
    return _adaptive("avg", x, output_size, data_format, "adaptive_average_pool_backward",
                     grad_output)


adaptive_max_pool.__doc__ = "Adaptive max pooling to ``output_size``." + _ADAPTIVE_DOC
adaptive_average_pool.__doc__ = "Adaptive average pooling to ``output_size``." + _ADAPTIVE_DOC


# --------------------------------------------------------------------------------------------
# Anti-aliased pooling.


def _blur(x, filt_size, strides, pad_type, data_format, op, grad_output=None):
    x, spatial, cl = _array(x, "blur", data_format, op, ranks=(1, 2))
    spec = blur_spec(spatial, filt_size, strides, pad_type, op=op)
    if grad_output is None:
        return engine.pool(x, spec, "blur", channels_last=cl)
    return _backward(grad_output, x, spec, "blur", cl, op)


def blur_pool(x, filt_size=4, strides=2, pad_type="reflect",
              data_format="channels_last") -> np.ndarray:
    """BlurPool (Zhang 2019) over 1 or 2 spatial dims: the normalised binomial filter of size
    ``filt_size`` (1..7) over the input padded by floor((k-1)/2) before and ceil((k-1)/2)
    after (``pad_type`` "reflect", "repl" or "zero"), sampled with ``strides``:
    ``out = ceil(L / strides)``. See :func:`poolkit.functional.blur_pool2d`."""
    return _blur(x, filt_size, strides, pad_type, data_format, "blur_pool")


def blur_pool_backward(grad_output, x, filt_size=4, strides=2, pad_type="reflect",
                       data_format="channels_last") -> np.ndarray:
    """Gradient of :func:`blur_pool`: the transposed filter."""
    return _blur(x, filt_size, strides, pad_type, data_format, "blur_pool_backward",
                 grad_output)


def _max_blur(x, pool_size, strides, filt_size, pad_type, data_format, op, grad_output=None):
    x, spatial, cl = _array(x, "blur", data_format, op, ranks=(2,))
    ms = keras_spec(spatial, pool_size, 1, "valid", op=op)
    bs = blur_spec(ms.out_size, filt_size, strides, pad_type, op=op)
    if grad_output is None:
        return engine.max_blur(x, ms, bs, channels_last=cl)
    g = engine.check_grad(grad_output, x, engine.output_shape(x.shape, bs, cl), op=op)
    return engine.max_blur_backward(g, x, ms, bs, channels_last=cl)


def max_blur_pool(x, pool_size=2, strides=2, filt_size=4, pad_type="reflect",
                  data_format="channels_last") -> np.ndarray:
    """MaxBlurPool (Zhang 2019) over 2 spatial dims: max pooling with ``pool_size`` and
    stride 1 ("valid": ``L - k + 1``), then :func:`blur_pool` with ``strides``:
    ``out = ceil((L - k + 1) / strides)``."""
    return _max_blur(x, pool_size, strides, filt_size, pad_type, data_format, "max_blur_pool")


def max_blur_pool_backward(grad_output, x, pool_size=2, strides=2, filt_size=4,
                           pad_type="reflect", data_format="channels_last") -> np.ndarray:
    """Gradient of :func:`max_blur_pool`."""
    return _max_blur(x, pool_size, strides, filt_size, pad_type, data_format,
                     "max_blur_pool_backward", grad_output)


def _aps(x, strides, norm, data_format, op, grad_output=None):
    x, spatial, cl = _array(x, "max", data_format, op, ranks=(2,))
    s = normalize_tuple(strides, 2, "strides", allow_one=False)
    if min(s) < 1:
        raise InvalidValue(f"{op}: strides must be >= 1, got {strides!r}")
    if isinstance(norm, bool) or not isinstance(norm, int | float | np.integer | np.floating):
        raise InvalidType(f"{op}: norm must be a number > 0 (1, 2, inf, ...), got {norm!r}")
    if not float(norm) > 0:
        raise InvalidValue(f"{op}: norm must be > 0, got {norm!r}")
    if grad_output is None:
        return engine.polyphase(x, s, float(norm), channels_last=cl)[0]
    if x.dtype.kind != "f":
        raise InvalidType(f"{op}: the backward pass needs a floating input, got {x.dtype}")
    want = engine._shape_with(x.shape, polyphase_output_size(spatial, s), cl)
    g = engine.check_grad(grad_output, x, want, op=op)
    return engine.polyphase_backward(g, x, s, float(norm), channels_last=cl)


def aps_pool(x, strides=2, norm=2, data_format="channels_last") -> np.ndarray:
    """Adaptive polyphase sampling (Chaman & Dokmanic 2021) over 2 spatial dims: of the
    ``strides**2`` polyphase components of the (circularly padded) input, each sample keeps
    the one with the largest ``norm`` over all its channels; ``out = ceil(L / strides)``.
    Circularly shift-equivariant. See :func:`poolkit.functional.aps_pool2d`."""
    return _aps(x, strides, norm, data_format, "aps_pool")


def aps_pool_backward(grad_output, x, strides=2, norm=2,
                      data_format="channels_last") -> np.ndarray:
    """Gradient of :func:`aps_pool`: to the cells of each sample's chosen component."""
    return _aps(x, strides, norm, data_format, "aps_pool_backward", grad_output)


# --------------------------------------------------------------------------------------------
# Output shapes of every kind.


def output_shape(input_shape, pool_size=None, strides=None, padding="valid",
                 data_format="channels_last", dilation=1, *, kind="max", output_size=None,
                 keepdims=False, filt_size=4, pad_type="reflect") -> tuple:
    """The output shape of pooling kind ``kind`` (a name of :data:`poolkit.kinds.KINDS`:
    "max", "avg", "min", "lp", "global_max", "global_avg", "adaptive_max", "adaptive_avg",
    "blur", "max_blur", "aps") on ``input_shape`` = (N, *spatial, C) or (N, C, *spatial),
    without computing anything; N may be None. The arguments are the op's: ``pool_size``
    for the windowed kinds (and max_blur, default 2), ``strides`` (default ``pool_size``;
    2 for blur, max_blur and aps), ``output_size`` for adaptive, ``keepdims`` for global.
    """
    from .kinds import get_kind

    k = get_kind(kind)
    df = normalize_data_format(data_format)
    shape = tuple(input_shape)
    if not 3 <= len(shape) <= 5:
        raise InvalidValue(f"output_shape: input_shape must be (batch, *spatial, channels) with "
                           f"1 to 3 spatial dims, got {input_shape!r}")
    cl = df == "channels_last"
    spatial = shape[1:-1] if cl else shape[2:]
    if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) and v > 0
               for v in spatial):
        raise InvalidValue(f"output_shape: spatial dims of input_shape must be positive ints, "
                           f"got {input_shape!r}")
    op = "output_shape"
    if k.family == "windowed":
        if pool_size is None:
            raise InvalidValue(f"output_shape: kind {kind!r} needs pool_size")
        out = keras_spec(spatial, pool_size, strides, padding, dilation, op=op).out_size
    elif k.family == "global":
        if not keepdims:
            return (shape[0], shape[-1] if cl else shape[1])
        out = (1,) * len(spatial)
    elif k.family == "adaptive":
        out = adaptive_output_size(spatial, output_size, op=op)
    elif k.family == "blur":
        if kind == "max_blur":
            spatial = keras_spec(spatial, 2 if pool_size is None else pool_size, 1, "valid",
                                 op=op).out_size
        out = blur_spec(spatial, filt_size, 2 if strides is None else strides, pad_type,
                        op=op).out_size
    else:  # polyphase
        s = normalize_tuple(2 if strides is None else strides, len(spatial), "strides")
        out = polyphase_output_size(spatial, s)
    return engine._shape_with(shape, tuple(out), cl)
