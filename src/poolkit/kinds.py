"""The pooling kinds a user can pick by name, in one place.

The command line (``--pool``, ``--kinds``), the lab (shape tables, figures, sweeps), the
explorer, :func:`poolkit.output_shape` and the Keras layer factory all read this table; none
keeps its own list. Each kind names the Keras-style op that computes it, the 2-D layer class
that wraps that op, its family (which arguments it takes) and its engine reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Kind", "KINDS", "POOL_KINDS", "FAMILIES", "get_kind"]

#: What a kind's op takes besides ``x`` and ``data_format``:
#: windowed: pool_size, strides, padding (and dilation for max/min, p for lp);
#: global: keepdims; adaptive: output_size; blur: filt_size, strides, pad_type (and
#: pool_size for max_blur); polyphase: strides, norm.
FAMILIES = ("windowed", "global", "adaptive", "blur", "polyphase")


@dataclass(frozen=True)
class Kind:
    """A pooling kind.

    ``op``: the function in :mod:`poolkit` (Keras conventions) that computes it, with
    ``op + "_backward"`` its gradient; ``layer2d``: its 2-D layer class in
    :mod:`poolkit.keras.layers`; ``family``: one of :data:`FAMILIES`; ``reduction``: the
    engine reduction (:data:`poolkit.engine.REDUCTIONS`) doing the work; ``integers``:
    accepts integer arrays; ``indices``: has a winner per window (whose gradient routing
    can be shown).
    """

    name: str
    label: str
    op: str
    layer2d: str
    family: str
    reduction: str
    integers: bool = False
    indices: bool = False


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("max", "max pooling", "max_pool", "MaxPooling2D", "windowed", "max", True, True),
        Kind("avg", "average pooling", "average_pool", "AveragePooling2D", "windowed", "avg"),
        Kind("min", "min pooling", "min_pool", "MinPooling2D", "windowed", "min", True, True),
        Kind("lp", "LP (power-average) pooling", "lp_pool", "LPPooling2D", "windowed", "lp"),
        Kind("blur", "BlurPool (anti-aliased)", "blur_pool", "BlurPool2D", "blur", "blur"),
        Kind("max_blur", "MaxBlurPool (anti-aliased max)", "max_blur_pool", "MaxBlurPool2D",
             "blur", "blur"),
        Kind("aps", "adaptive polyphase sampling", "aps_pool", "APSPool2D", "polyphase", "max"),
        Kind("adaptive_max", "adaptive max pooling", "adaptive_max_pool",
             "AdaptiveMaxPooling2D", "adaptive", "max", True, True),
        Kind("adaptive_avg", "adaptive average pooling", "adaptive_average_pool",
             "AdaptiveAveragePooling2D", "adaptive", "avg"),
        Kind("global_max", "global max pooling", "global_max_pool", "GlobalMaxPooling2D",
             "global", "max", True, True),
        Kind("global_avg", "global average pooling", "global_average_pool",
             "GlobalAveragePooling2D", "global", "avg"),
    )
}

#: The names, in display order.
POOL_KINDS: tuple[str, ...] = tuple(KINDS)


def get_kind(name) -> Kind:
    """The :class:`Kind` called ``name``, else an error listing the known names."""
    from .errors import InvalidType, InvalidValue

    if not isinstance(name, str):
        raise InvalidType(f"pooling kind must be a string, got {type(name).__name__} {name!r}")
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidValue(f"pooling kind must be one of {POOL_KINDS}, got {name!r}") from None
