"""Global pooling layers (Keras 3's GlobalMax/AveragePooling1D-3D and their aliases)."""

from __future__ import annotations

import numpy as np

from ....errors import InvalidType, InvalidValue
from .base import SPATIAL, BasePoolingLayer

__all__ = ["BaseGlobalPooling", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
           "GlobalMaxPooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
           "GlobalAveragePooling3D", "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D"]


class BaseGlobalPooling(BasePoolingLayer):
    """Pooling whose window is the whole spatial extent (Keras 3's GlobalMaxPooling2D, ...).

    Shapes: (N, *spatial, C) -> (N, C) with ``data_format="channels_last"`` (the default), or
    (N, C, *spatial) -> (N, C) with ``"channels_first"``; with ``keepdims=True`` the spatial
    dims stay, each of size 1. Computed by :func:`poolkit.global_max_pool` /
    :func:`poolkit.global_average_pool`.
    """

    _config_keys = ("data_format", "keepdims")

    def __init__(self, pool_dimensions: int, pool_mode: str = "global_max", data_format=None,
                 keepdims=False, **kwargs):
        super().__init__(**kwargs)
        mode = {"max": "global_max", "avg": "global_avg"}.get(pool_mode, pool_mode)
        self._setup(mode, pool_dimensions, data_format)
        if self.kind.family != "global":
            raise InvalidValue(f"{type(self).__name__}: pool_mode must be global_max or "
                               f"global_avg, got {pool_mode!r}")
        if not isinstance(keepdims, bool | np.bool_):
            raise InvalidType(f"{type(self).__name__}: keepdims must be a bool, got "
                              f"{keepdims!r}")
        self.keepdims = bool(keepdims)

    def _args(self):
        return dict(keepdims=self.keepdims)

    def receptive(self, input_shape):
        return None


def _global_doc(what: str, rank: int) -> str:
    sp = SPATIAL[rank]
    return (f"Global {what} over {rank} spatial dim(s): (N, {sp}, C) -> (N, C) (channels_last), "
            f"or (N, C, {sp}) -> (N, C); ``keepdims=True`` keeps size-1 spatial dims. Keras 3's "
            f"arguments (``data_format``, ``keepdims``).")


class GlobalMaxPooling1D(BaseGlobalPooling):
    __doc__ = _global_doc("maximum", 1)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, "global_max", data_format, keepdims, **kwargs)


class GlobalMaxPooling2D(BaseGlobalPooling):
    __doc__ = _global_doc("maximum", 2)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "global_max", data_format, keepdims, **kwargs)


class GlobalMaxPooling3D(BaseGlobalPooling):
    __doc__ = _global_doc("maximum", 3)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(3, "global_max", data_format, keepdims, **kwargs)


class GlobalAveragePooling1D(BaseGlobalPooling):
    __doc__ = _global_doc("mean", 1)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, "global_avg", data_format, keepdims, **kwargs)


class GlobalAveragePooling2D(BaseGlobalPooling):
    __doc__ = _global_doc("mean", 2)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "global_avg", data_format, keepdims, **kwargs)


class GlobalAveragePooling3D(BaseGlobalPooling):
    __doc__ = _global_doc("mean", 3)

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(3, "global_avg", data_format, keepdims, **kwargs)


GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (GlobalMaxPooling1D, GlobalMaxPooling2D,
                                                     GlobalMaxPooling3D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D,
                                                     GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
