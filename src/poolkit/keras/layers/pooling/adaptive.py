"""Adaptive pooling layers (Keras 3's AdaptiveMax/AveragePooling1D-3D)."""

from __future__ import annotations

from .... import shapes as _shapes
from ....errors import InvalidValue
from .base import SPATIAL, BasePoolingLayer

__all__ = ["BaseAdaptivePooling", "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D",
           "AdaptiveMaxPooling3D", "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D",
           "AdaptiveAveragePooling3D"]


class BaseAdaptivePooling(BasePoolingLayer):
    """Adaptive pooling to a fixed ``output_size`` (Keras 3's AdaptiveAveragePooling2D, ...):
    window ``i`` of a dim of length L with O outputs spans ``[floor(i*L/O), ceil((i+1)*L/O))``
    (PyTorch's rule, in integers). ``output_size``: an int or a tuple (None entries keep the
    input size)."""

    _config_keys = ("output_size", "data_format")

    def __init__(self, output_size, pool_dimensions: int, pool_mode: str = "adaptive_max",
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._setup(pool_mode, pool_dimensions, data_format)
        if self.kind.family != "adaptive":
            raise InvalidValue(f"{type(self).__name__}: pool_mode must be adaptive_max or "
                               f"adaptive_avg, got {pool_mode!r}")
        r = self.pool_dimensions
        # validated with a stand-in input size; None entries stay None
        _shapes.adaptive_output_size((1,) * r, output_size, op=type(self).__name__)
        # Plain ints (a NumPy int would make the config unsaveable as JSON), None kept.
        self.output_size = (tuple(None if v is None else int(v) for v in output_size)
                            if isinstance(output_size, list | tuple)
                            else (int(output_size),) * r)

    def _args(self):
        return dict(output_size=self.output_size)

    def receptive(self, input_shape):
        """Exact when the windows tile the input (L % O == 0); else the longest window and
        the mean step floor(L / O)."""
        spatial = self._spatial(input_shape)
        win, step = [], []
        for L, o in zip(spatial, self.output_size, strict=True):
            o = L if o is None else o
            if L is None or o == 0:
                return None
            _, count = _shapes.adaptive_windows(L, o)
            win.append(int(count.max()))
            step.append(max(L // o, 1))
        return win, step


def _adaptive_doc(what: str, rank: int) -> str:
    sp = SPATIAL[rank]
    return (f"Adaptive {what} pooling over {rank} spatial dim(s) to ``output_size``: "
            f"(N, {sp}, C) -> (N, *output_size, C) (channels_last) or the channels_first twin; "
            f"Keras 3's arguments (``output_size``, ``data_format``). Window i of a dim of "
            f"length L with O outputs spans [floor(i*L/O), ceil((i+1)*L/O)).")


class AdaptiveMaxPooling1D(BaseAdaptivePooling):
    __doc__ = _adaptive_doc("maximum", 1)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(output_size, 1, "adaptive_max", data_format, **kwargs)


class AdaptiveMaxPooling2D(BaseAdaptivePooling):
    __doc__ = _adaptive_doc("maximum", 2)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(output_size, 2, "adaptive_max", data_format, **kwargs)


class AdaptiveMaxPooling3D(BaseAdaptivePooling):
    __doc__ = _adaptive_doc("maximum", 3)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(output_size, 3, "adaptive_max", data_format, **kwargs)


class AdaptiveAveragePooling1D(BaseAdaptivePooling):
    __doc__ = _adaptive_doc("mean", 1)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(output_size, 1, "adaptive_avg", data_format, **kwargs)


class AdaptiveAveragePooling2D(BaseAdaptivePooling):
    __doc__ = _adaptive_doc("mean", 2)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(output_size, 2, "adaptive_avg", data_format, **kwargs)


class AdaptiveAveragePooling3D(BaseAdaptivePooling):
    __doc__ = _adaptive_doc("mean", 3)

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(output_size, 3, "adaptive_avg", data_format, **kwargs)
