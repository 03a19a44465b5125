"""Windowed pooling layers (pool_size, strides, padding): Max/Average/Min/LPPooling1D-3D and
Keras's aliases MaxPool1D-3D, AvgPool1D-3D. :class:`BasePooling` normalises the arguments
once; each class only picks its kind and rank."""

from __future__ import annotations

from .... import shapes as _shapes
from ....errors import InvalidValue
from ....kinds import get_kind as _kind
from .base import SPATIAL, BasePoolingLayer, check_p

__all__ = ["BasePooling", "pool_doc", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
           "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "MinPooling1D",
           "MinPooling2D", "MinPooling3D", "LPPooling1D", "LPPooling2D", "LPPooling3D",
           "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D"]


def pool_doc(pool_mode: str, rank: int) -> str:
    """The docstring of the ``rank``-D windowed pooling layer of kind ``pool_mode``."""
    kind = _kind(pool_mode)
    sp = SPATIAL[rank]
    extra = {
        "avg": " Padded cells are never read: average pooling divides by the in-bounds cells.",
        "max": " Ties go to the first maximum in row-major window order; a NaN wins.",
        "min": " The max rules mirrored: the first minimum wins ties; a NaN wins. poolkit's "
               "own (Keras has no min pooling).",
        "lp": " ``p`` (> 0, or inf): each output is (sum of |x|^p over the window's in-bounds "
              "cells)^(1/p); p = inf is max |x|. poolkit's own layer.",
    }[kind.name]
    return f"""{kind.label.capitalize()} over {rank} spatial dim(s), with Keras's arguments.

    Shapes: input (N, {sp}, C) with ``data_format="channels_last"`` (the default) or
    (N, C, {sp}) with ``"channels_first"``; output the same with pooled spatial sizes.
    Arguments: ``pool_size`` (default 2 per dim), ``strides`` (default None = pool_size),
    ``padding`` 'valid' (default) or 'same', ``data_format``. Computed by
    :func:`poolkit.{kind.op}`. Per spatial dim, with input L, window k and stride s:

    - ``padding="valid"``: out = floor((L - k) / s) + 1, at least 1 (else ValueError);
    - ``padding="same"``: out = ceil(L / s); the padding total max((out-1)*s + k - L, 0) is
      split with the odd cell after (TensorFlow's rule).{extra}
    """


class BasePooling(BasePoolingLayer):
    """Windowed pooling over ``pool_dimensions`` spatial dims with the op of kind
    ``pool_mode`` (max, avg, min or lp); see :func:`pool_doc` for the arithmetic."""

    _config_keys = ("pool_size", "strides", "padding", "data_format")

    def __init__(self, pool_size, strides, pool_dimensions: int, pool_mode: str = "max",
                 padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._setup(pool_mode, pool_dimensions, data_format)
        if self.kind.family != "windowed":
            raise InvalidValue(f"{type(self).__name__}: pool_mode must be a windowed kind "
                               f"(max, avg, min, lp), got {pool_mode!r}")
        r = self.pool_dimensions
        self.pool_size = _shapes.normalize_tuple(pool_size, r, "pool_size", allow_one=False)
        self.strides = (self.pool_size if strides is None
                        else _shapes.normalize_tuple(strides, r, "strides", allow_one=False))
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise InvalidValue(
                f"{type(self).__name__}: padding must be 'valid' or 'same', got {padding!r}"
            )
        self.padding = padding.lower()
        # Validate the numbers now (not at first call), with a shape that is always valid.
        _shapes.keras_spec((max(self.pool_size),) * r, self.pool_size, self.strides, "valid")

    def _args(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)

    def receptive(self, input_shape):
        return list(self.pool_size), list(self.strides)


class MaxPooling1D(BasePooling):
    __doc__ = pool_doc("max", 1)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 **kwargs):
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

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 **kwargs):
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


class MinPooling1D(BasePooling):
    __doc__ = pool_doc("min", 1)

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, 1, "min", padding, data_format, **kwargs)


class MinPooling2D(BasePooling):
    __doc__ = pool_doc("min", 2)

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, 2, "min", padding, data_format, **kwargs)


class MinPooling3D(BasePooling):
    __doc__ = pool_doc("min", 3)

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 **kwargs):
        super().__init__(pool_size, strides, 3, "min", padding, data_format, **kwargs)




class _LPPooling(BasePooling):
    _config_keys = ("p", "pool_size", "strides", "padding", "data_format")
    _norm_key = "p"

    def __init__(self, p, pool_size, strides, rank, padding, data_format, **kwargs):
        super().__init__(pool_size, strides, rank, "lp", padding, data_format, **kwargs)
        self.p = check_p(p, type(self).__name__)

    def _args(self):
        return dict(p=self.p, **super()._args())


class LPPooling1D(_LPPooling):
    __doc__ = pool_doc("lp", 1)

    def __init__(self, p=2.0, pool_size=2, strides=None, padding="valid",
                 data_format=None, **kwargs):
        super().__init__(p, pool_size, strides, 1, padding, data_format, **kwargs)


class LPPooling2D(_LPPooling):
    __doc__ = pool_doc("lp", 2)

    def __init__(self, p=2.0, pool_size=(2, 2), strides=None, padding="valid",
                 data_format=None, **kwargs):
        super().__init__(p, pool_size, strides, 2, padding, data_format, **kwargs)


class LPPooling3D(_LPPooling):
    __doc__ = pool_doc("lp", 3)

    def __init__(self, p=2.0, pool_size=(2, 2, 2), strides=None, padding="valid",
                 data_format=None, **kwargs):
        super().__init__(p, pool_size, strides, 3, padding, data_format, **kwargs)


# Keras's aliases.
MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
