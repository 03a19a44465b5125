"""The pooling kinds a user can pick by name, in one place.

The command line (``--pool``, ``--kinds``), the lab (shape tables, figures, sweeps), the
explorer and the Keras layer factory all read this table; none keeps its own list. Each
kind names the Keras-style op that computes it, the 2-D layer class that wraps that op, and
which window arguments it takes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Kind", "KINDS", "POOL_KINDS", "get_kind"]


@dataclass(frozen=True)
class Kind:
    """A pooling kind.

    ``op``: the function in :mod:`poolkit` (Keras conventions) that computes it;
    ``layer2d``: its 2-D layer class in :mod:`poolkit.keras.layers`;
    ``windowed``: takes ``pool_size``/``strides``/``padding`` (else only ``strides``);
    ``integers``: accepts integer arrays.
    """

    name: str
    label: str
    op: str
    layer2d: str
    windowed: bool = True
    integers: bool = False


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("max", "max pooling", "max_pool", "MaxPooling2D", integers=True),
        Kind("avg", "average pooling", "average_pool", "AveragePooling2D"),
    )
}

#: The names, in display order.
POOL_KINDS: tuple[str, ...] = tuple(KINDS)


def get_kind(name) -> Kind:
    """The :class:`Kind` called ``name``, else ValueError listing the known names."""
    if not isinstance(name, str):
        raise TypeError(f"pooling kind must be a string, got {type(name).__name__} {name!r}")
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"pooling kind must be one of {POOL_KINDS}, got {name!r}") from None
