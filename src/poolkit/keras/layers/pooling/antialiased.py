"""Anti-aliased pooling layers, poolkit's own: BlurPool1D/2D and MaxBlurPool2D (Zhang 2019,
"Making Convolutional Networks Shift-Invariant Again") and APSPool2D (adaptive polyphase
sampling, Chaman & Dokmanic 2021)."""

from __future__ import annotations

import numpy as np

from .... import shapes as _shapes
from ....errors import InvalidValue
from .base import BasePoolingLayer, check_p

__all__ = ["BlurPool1D", "BlurPool2D", "MaxBlurPool2D", "APSPool2D"]


class _BlurBase(BasePoolingLayer):
    def _blur_args(self, filt_size, strides, pad_type):
        r = self.pool_dimensions
        self.strides = _shapes.normalize_tuple(strides, r, "strides", allow_one=False)
        # validated against a stand-in input large enough for any padding
        _shapes.blur_spec((16,) * r, filt_size, self.strides, pad_type,
                          op=type(self).__name__)
        self.filt_size = int(filt_size)
        self.pad_type = pad_type

    def macs(self, input_shape):
        out = self.compute_output_shape(input_shape)
        return int(np.prod(out[1:])) * self.filt_size ** self.pool_dimensions


class BlurPool1D(_BlurBase):
    """BlurPool (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again") over 1
    spatial dim: the normalised binomial filter of ``filt_size`` (1..7, default 4) over the
    input padded by floor((k-1)/2) before and ceil((k-1)/2) after with ``pad_type``
    ('reflect', 'repl' or 'zero'), sampled with ``strides`` (default 2): out = ceil(L / s).
    Computed by :func:`poolkit.blur_pool`. No weights."""

    _config_keys = ("filt_size", "strides", "pad_type", "data_format")
    _rank = 1

    def __init__(self, filt_size=4, strides=2, pad_type="reflect", data_format=None,
                 **kwargs):
        super().__init__(**kwargs)
        self._setup("blur", self._rank, data_format)
        self._blur_args(filt_size, strides, pad_type)

    def _args(self):
        return dict(filt_size=self.filt_size, strides=self.strides, pad_type=self.pad_type)

    def receptive(self, input_shape):
        return [self.filt_size] * self.pool_dimensions, list(self.strides)


class BlurPool2D(BlurPool1D):
    __doc__ = (BlurPool1D.__doc__.replace("over 1\n    spatial dim", "over 2\n    spatial dims")
               .replace("binomial filter", "2-D binomial filter (the outer product of the "
                        "1-D one)"))
    _rank = 2


class MaxBlurPool2D(_BlurBase):
    """MaxBlurPool (Zhang 2019): max pooling with ``pool_size`` (default 2) and stride 1
    ("valid": L - k + 1), then :class:`BlurPool2D` with ``filt_size``, ``strides`` (default 2)
    and ``pad_type``: out = ceil((L - k + 1) / s). What antialiased-cnns puts in place of
    ``MaxPool2d(k, stride)``. Computed by :func:`poolkit.max_blur_pool`. No weights."""

    _config_keys = ("pool_size", "strides", "filt_size", "pad_type", "data_format")

    def __init__(self, pool_size=2, strides=2, filt_size=4, pad_type="reflect",
                 data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._setup("max_blur", 2, data_format)
        self.pool_size = _shapes.normalize_tuple(pool_size, 2, "pool_size", allow_one=False)
        _shapes.keras_spec((max(self.pool_size),) * 2, self.pool_size, 1, "valid")
        self._blur_args(filt_size, strides, pad_type)

    def _args(self):
        return dict(pool_size=self.pool_size, strides=self.strides, filt_size=self.filt_size,
                    pad_type=self.pad_type)

    def receptive(self, input_shape):
        return ([k + self.filt_size - 1 for k in self.pool_size], list(self.strides))


class APSPool2D(BasePoolingLayer):
    """Adaptive polyphase sampling (Chaman & Dokmanic, CVPR 2021): of the ``strides**2``
    polyphase components of the (circularly padded) input, each sample keeps the one with the
    largest ``norm`` (default 2) over all its channels: out = ceil(L / s). Exactly equivariant
    to circular shifts. Computed by :func:`poolkit.aps_pool`. No weights."""

    _config_keys = ("strides", "norm", "data_format")
    _norm_key = "norm"

    def __init__(self, strides=2, norm=2, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self._setup("aps", 2, data_format)
        self.strides = _shapes.normalize_tuple(strides, 2, "strides", allow_one=False)
        if min(self.strides) < 1:
            raise InvalidValue(f"APSPool2D: strides must be >= 1, got {strides!r}")
        self.norm = check_p(norm, "APSPool2D")

    def _args(self):
        return dict(strides=self.strides, norm=self.norm)

    def receptive(self, input_shape):
        return list(self.strides), list(self.strides)
