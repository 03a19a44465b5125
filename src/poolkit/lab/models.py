"""The tutorial's CNN and the variants the lab compares, built by name.

Every model here is the tutorial's with its downsampling step chosen by a kind::

    Conv2D(32, (3, 3), relu, input 28x28x1) -> [downsampling] -> Flatten -> Dense(10, softmax)

where ``[downsampling]`` is nothing (``"none"``), the pooling layer of a kind in
:data:`poolkit.kinds.POOL_KINDS` (``"max"``: MaxPooling2D, ``"avg"``: AveragePooling2D, and
any kind added to that table), or ``Conv2D(32, (k, k), strides=s, relu)`` (``"conv"``, the
all-convolutional alternative of Springenberg et al. 2015).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from ..errors import InvalidValue
from ..kinds import POOL_KINDS
from ..kinds import get_kind as _kind

__all__ = ["DOWNSAMPLING_KINDS", "SWEEP_KINDS", "pool_op", "pool_maps", "is_windowed",
           "layer_class", "has_layer", "layer_takes", "pooling_layer", "downsampling_model",
           "tutorial_model", "seed_model"]

#: What can follow the first convolution: nothing, a pooling kind, or a strided convolution.
DOWNSAMPLING_KINDS: tuple[str, ...] = ("none", *POOL_KINDS, "conv")

#: The sweep's default variants: the tutorial's question (does pooling help?) and its measured
#: answer, anti-aliasing (Zhang 2019: BlurPool, MaxBlurPool; Chaman & Dokmanic 2021: APS).
SWEEP_KINDS: tuple[str, ...] = ("none", "max", "avg", "max_blur", "blur", "aps", "conv")


def pool_op(kind: str):
    """The Keras-convention op of pooling ``kind`` (e.g. :func:`poolkit.max_pool` for "max"),
    called as ``op(x, pool_size, strides, padding)``."""
    import poolkit

    return getattr(poolkit, _kind(kind).op)


def pool_maps(kind: str, x, pool_size=2, strides=None, padding: str = "valid"):
    """2-D pooling of kind ``kind`` applied to feature maps ``x`` (N, H, W, C), with the
    window arguments a windowed pooling would take, adapted to the kind's family: windowed
    kinds take them as given; BlurPool and APS sample with ``strides`` (default: the pool
    size); MaxBlurPool takes both; adaptive kinds pool to the grid the windowed pooling would
    give; global kinds keep their 1 x 1 grid (keepdims)."""
    import poolkit

    k = _kind(kind)
    op = getattr(poolkit, k.op)
    step = pool_size if strides is None else strides
    if k.family == "windowed":
        return op(x, pool_size, strides, padding) if kind != "lp" else op(
            x, 2, pool_size, strides, padding)
    if k.family == "blur":
        if kind == "max_blur":
            return op(x, pool_size=pool_size, strides=step)
        return op(x, strides=step)
    if k.family == "polyphase":
        return op(x, strides=step)
    if k.family == "adaptive":
        grid = poolkit.output_shape(x.shape, pool_size, strides, padding)
        return op(x, output_size=tuple(grid[1:-1]))
    return op(x, keepdims=True)


def is_windowed(kind: str) -> bool:
    """Whether pooling ``kind`` slides a window: takes ``pool_size``, ``strides`` and
    ``padding`` (the kind's family is "windowed")."""
    k = _kind(kind)
    family = getattr(k, "family", None)
    return family == "windowed" if family is not None else bool(getattr(k, "windowed", True))


def layer_class(kind: str) -> type:
    """The 2-D layer class of pooling ``kind``: the class named by the kind's ``layer2d`` in
    :mod:`poolkit.keras.layers`."""
    from ..keras import layers

    return layers.get(_kind(kind).layer2d)


def has_layer(kind: str) -> bool:
    """Whether pooling ``kind`` has its 2-D layer in :mod:`poolkit.keras.layers` (a kind can
    reach the ops before its layer is written)."""
    from ..keras import layers

    return _kind(kind).layer2d in layers.LAYER_CLASSES


def layer_takes(kind: str, argument: str) -> bool:
    """Whether the 2-D layer of ``kind`` takes constructor argument ``argument``."""
    return argument in inspect.signature(layer_class(kind).__init__).parameters


def pooling_layer(kind: str, pool_size=2, strides=None, padding: str = "valid", **kwargs):
    """The 2-D pooling layer of ``kind`` (a name in :data:`poolkit.kinds.POOL_KINDS`, class
    :func:`layer_class`), given those of ``pool_size``, ``strides`` and ``padding`` (Keras's
    meanings) that its class takes (a global pooling layer takes none of them), and any other
    layer arguments in ``kwargs``."""
    cls = layer_class(kind)
    params = inspect.signature(cls.__init__).parameters
    given = {"pool_size": pool_size, "strides": strides, "padding": padding}
    # None is "the layer's default" (a windowed layer's strides default to its pool size,
    # BlurPool's to 2)
    return cls(**{k: v for k, v in given.items() if k in params and v is not None}, **kwargs)


def downsampling_model(kind: str = "max", pool_size=2, strides=None, padding: str = "valid",
                       input_shape: Sequence[int] = (28, 28, 1), filters: int = 32,
                       classes: int = 10):
    """The (uncompiled) model with downsampling ``kind`` (one of :data:`DOWNSAMPLING_KINDS`,
    see the module docstring); ``pool_size`` is the conv kernel for ``"conv"``; both are
    ignored for ``"none"``; an adaptive kind pools to the grid the windowed pooling with
    ``pool_size``/``strides``/``padding`` would give. Weights are drawn from poolkit's
    generator: call ``keras.utils.set_random_seed`` first for a reproducible model."""
    from .. import keras

    L = keras.layers
    layers = [L.Conv2D(filters, (3, 3), activation="relu", input_shape=tuple(input_shape))]
    if kind == "conv":
        layers.append(L.Conv2D(filters, pool_size, strides=strides, activation="relu"))
    elif kind != "none":
        if kind not in POOL_KINDS:
            raise InvalidValue(f"kind must be one of {DOWNSAMPLING_KINDS}, got {kind!r}")
        extra = {}
        if _kind(kind).family == "adaptive":
            # the grid a windowed pooling with these arguments would give the conv's output
            import poolkit

            conv_out = layers[0].compute_output_shape((None, *input_shape))
            grid = poolkit.output_shape(conv_out, pool_size, strides, padding)
            extra["output_size"] = tuple(grid[1:-1])
        layers.append(pooling_layer(kind, pool_size, strides, padding, **extra))
    layers += [L.Flatten(), L.Dense(classes, activation="softmax")]
    return keras.Sequential(layers)


def tutorial_model(pool: str = "max", pool_size=2, strides=None, padding: str = "valid",
                   input_shape: Sequence[int] = (28, 28, 1), num_classes: int = 10):
    """The tutorial's model, uncompiled, with its pooling layer chosen by the arguments:
    Conv2D(32, 3x3, relu) -> pooling layer of kind ``pool`` (pool_size, strides, padding) ->
    Flatten -> Dense(num_classes, softmax)."""
    if pool not in POOL_KINDS:
        raise InvalidValue(f"pool must be one of {POOL_KINDS}, got {pool!r}")
    return downsampling_model(pool, pool_size, strides, padding, input_shape,
                              classes=num_classes)


def seed_model(pool: str = "max", pool_size: int = 2, strides: int | None = 2):
    """The tutorial's model (Conv2D(32, 3x3, relu) -> MaxPooling2D(2, 2) -> Flatten ->
    Dense(10)), compiled with Adam, sparse categorical cross-entropy and accuracy."""
    model = tutorial_model(pool, pool_size, strides)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
