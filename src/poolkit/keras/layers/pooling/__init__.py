"""Pooling layers, laid out as Keras 3 lays them out: one base class per family of
:mod:`poolkit.kinds` normalises every argument once and calls the kind's op
(``poolkit.<kind.op>`` forward, ``..._backward`` backward); ``MaxPooling2D`` and friends are
small subclasses that only pick the kind and the rank.

- :class:`BasePooling` (windowed: pool_size, strides, padding): MaxPooling1D-3D,
  AveragePooling1D-3D, MinPooling1D-3D, LPPooling1D-3D;
- :class:`BaseGlobalPooling` (the whole spatial extent; keepdims): GlobalMaxPooling1D-3D,
  GlobalAveragePooling1D-3D;
- :class:`BaseAdaptivePooling` (output_size): AdaptiveMaxPooling1D-3D,
  AdaptiveAveragePooling1D-3D;
- the anti-aliased layers (poolkit's own): BlurPool1D/2D, MaxBlurPool2D, APSPool2D;
- Keras's aliases: MaxPool2D, AvgPool2D, GlobalMaxPool2D, GlobalAvgPool2D, ...

Every layer also tells the model summary its receptive window and stride
(:meth:`BasePoolingLayer.receptive`) and its multiply-adds (:meth:`BasePoolingLayer.macs`).

A new kind is a subclass naming its kind and rank, plus its import in
``poolkit.keras.layers``.
"""

from .adaptive import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
    BaseAdaptivePooling,
)
from .antialiased import (
    APSPool2D,
    BlurPool1D,
    BlurPool2D,
    MaxBlurPool2D,
)
from .base import (
    SPATIAL,
    BasePoolingLayer,
    check_p,
)
from .global_pooling import (
    BaseGlobalPooling,
    GlobalAveragePooling1D,
    GlobalAveragePooling2D,
    GlobalAveragePooling3D,
    GlobalAvgPool1D,
    GlobalAvgPool2D,
    GlobalAvgPool3D,
    GlobalMaxPool1D,
    GlobalMaxPool2D,
    GlobalMaxPool3D,
    GlobalMaxPooling1D,
    GlobalMaxPooling2D,
    GlobalMaxPooling3D,
)
from .windowed import (
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BasePooling,
    LPPooling1D,
    LPPooling2D,
    LPPooling3D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    MinPooling1D,
    MinPooling2D,
    MinPooling3D,
    pool_doc,
)

__all__ = [
    "BasePoolingLayer",
    "check_p",
    "SPATIAL",
    "BasePooling",
    "pool_doc",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "MinPooling1D",
    "MinPooling2D",
    "MinPooling3D",
    "LPPooling1D",
    "LPPooling2D",
    "LPPooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "BaseGlobalPooling",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "BaseAdaptivePooling",
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
    "BlurPool1D",
    "BlurPool2D",
    "MaxBlurPool2D",
    "APSPool2D",
]
