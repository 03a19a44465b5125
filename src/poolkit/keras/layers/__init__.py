"""Keras-style layers on NumPy arrays, laid out as Keras lays them out:

- :mod:`.base`: :class:`Layer` (the protocol: build, call, forward/backward, config) and
  :class:`InputSpec` (the input checks, with Keras's messages);
- :mod:`.core`: :func:`Input`, :class:`Dense`;
- :mod:`.convolutional`: :class:`Conv2D`;
- :mod:`.pooling`: the pooling family: windowed (Max/Average/Min/LPPooling1D-3D), global
  (GlobalMax/AveragePooling1D-3D), adaptive (AdaptiveMax/AveragePooling1D-3D), anti-aliased
  (BlurPool1D/2D, MaxBlurPool2D, APSPool2D), and Keras's aliases (MaxPool2D, ...);
- :mod:`.reshaping`: :class:`Flatten`;
- :mod:`.activations`: :class:`Activation`, :class:`ReLU`, :class:`Softmax`;
- :mod:`.regularization`: :class:`Dropout`.

Each layer's backward pass sits beside its forward pass; pooling layers call the engine's ops
(:func:`poolkit.max_pool`, ...), Conv2D and Dense the kernels in :mod:`poolkit._kernels`.
"""

from .activations import Activation, ReLU, Softmax
from .base import InputSpec, Layer
from .convolutional import Conv2D
from .core import Dense, Input, InputLayer
from .pooling import (
    AdaptiveAveragePooling1D,
    AdaptiveAveragePooling2D,
    AdaptiveAveragePooling3D,
    AdaptiveMaxPooling1D,
    AdaptiveMaxPooling2D,
    AdaptiveMaxPooling3D,
    APSPool2D,
    AveragePooling1D,
    AveragePooling2D,
    AveragePooling3D,
    AvgPool1D,
    AvgPool2D,
    AvgPool3D,
    BaseAdaptivePooling,
    BaseGlobalPooling,
    BasePooling,
    BasePoolingLayer,
    BlurPool1D,
    BlurPool2D,
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
    LPPooling1D,
    LPPooling2D,
    LPPooling3D,
    MaxBlurPool2D,
    MaxPool1D,
    MaxPool2D,
    MaxPool3D,
    MaxPooling1D,
    MaxPooling2D,
    MaxPooling3D,
    MinPooling1D,
    MinPooling2D,
    MinPooling3D,
)
from .regularization import Dropout
from .reshaping import Flatten

__all__ = [
    "Layer",
    "InputSpec",
    "InputLayer",
    "Input",
    "Dense",
    "Conv2D",
    "BasePoolingLayer",
    "BasePooling",
    "BaseGlobalPooling",
    "BaseAdaptivePooling",
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
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
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
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "Flatten",
    "Activation",
    "ReLU",
    "Softmax",
    "Dropout",
    "get",
]


def _concrete_layers() -> dict[str, type]:
    # Every layer class imported above under its own name, so a class added to a submodule
    # and imported here is loadable by name (e.g. from a saved model) with nothing else to do.
    return {name: obj for name, obj in globals().items()
            if isinstance(obj, type) and issubclass(obj, Layer) and obj.__name__ == name
            and not name.startswith("Base") and obj not in (Layer, InputLayer)}


LAYER_CLASSES: dict[str, type] = _concrete_layers()


def get(class_name: str) -> type:
    """The layer class called ``class_name`` (for loading saved models and building pooling
    layers from :mod:`poolkit.kinds`)."""
    from ...errors import InvalidValue

    cls = LAYER_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise InvalidValue(
            f"unknown layer type {class_name!r}; known types: {sorted(LAYER_CLASSES)}"
        )
    return cls
