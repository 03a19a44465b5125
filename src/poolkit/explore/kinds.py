"""The explorer's pooling table: for each kind of :data:`poolkit.kinds.KINDS` and each convention,
the parameters the page shows (and the server checks) and the library call that computes it.

Adding a kind to the explorer is one entry in :data:`CALLS`::

    "min": {
        "keras": Call("poolkit.min_pool", (POOL_SIZE, STRIDES, KERAS_PADDING, DILATION),
                      _keras(lambda x, a: poolkit.min_pool(x, a["pool_size"], a["strides"],
                                                           a["padding"], dilation=a["dilation"])),
                      explain="argmax"),
        "torch": ...,
    },

A :class:`Call` names the function shown on the page, its parameters (each a :class:`Param`:
JSON field, control type, default, bounds), ``run(x, args)`` returning the (OH, OW) output for an
(H, W) float64 input, and how the page explains one output cell (``explain``): ``"argmax"`` (the
winning cell, where the gradient goes: needs ``route``, which returns per output cell the flat
index of that cell), ``"divisor"`` (sum / divisor: the divisor comes from running the call on
ones), or ``"window"`` (just the window). The page builds its controls from ``GET /api/kinds``,
which is this table as JSON, so a new kind needs no JavaScript unless it brings a new control type
or a new way to explain a cell. Window geometry and output sizes come from :mod:`poolkit.shapes`
through ``spec(in_size, args)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import engine, functional, ops
from ..kinds import KINDS, POOL_KINDS
from ..shapes import PoolSpec, keras_spec, torch_spec

__all__ = ["Param", "Call", "CALLS", "CONVENTIONS", "LIMITS", "explorer_kinds", "kinds_json"]

CONVENTIONS = ("keras", "torch")

# Bounds of what the server computes (the page is for learning, not for big arrays).
LIMITS = {
    "grid": 64,  # input rows and columns
    "window": 32,  # pool size and stride per axis
    "dilation": 8,
    "padding": 32,  # per side
    "divisor": 4096,
}


@dataclass(frozen=True)
class Param:
    """One argument of a library call, as the page shows it and the server checks it.

    ``control``: ``"size"`` ([rows, cols] ints in [low, high]; the page's select sets both),
    ``"stride"`` (like size, or null = the pool size), ``"keras_padding"`` ("valid" | "same" |
    [[top, bottom], [left, right]]), ``"torch_padding"`` ([rows, cols] ints in [low, high]),
    ``"bool"``, ``"int_or_null"`` (an int in [low, high] or null).
    """

    name: str
    control: str
    default: object
    label: str
    low: int = 0
    high: int = 0
    help: str = ""
    testid: str = ""

    def json(self) -> dict:
        return {"name": self.name, "control": self.control, "default": self.default,
                "label": self.label, "min": self.low, "max": self.high, "help": self.help,
                "testid": self.testid or self.name.replace("_", "-")}


POOL_SIZE = Param("pool_size", "size", [2, 2], "pool size", 1, LIMITS["window"],
                  "window rows x columns")
STRIDES = Param("strides", "stride", None, "stride", 1, LIMITS["window"],
                "step between windows; default: the pool size", testid="stride")
DILATION = Param("dilation", "size", [1, 1], "dilation", 1, LIMITS["dilation"],
                 "gap between the cells a window reads (1: adjacent)")
KERAS_PADDING = Param("padding", "keras_padding", "valid", "padding", 0, LIMITS["padding"],
                      "'valid': no padding; 'same': out = ceil(in / stride), the odd cell after; "
                      "or explicit [[top, bottom], [left, right]]")
TORCH_PADDING = Param("padding", "torch_padding", [0, 0], "padding", 0, LIMITS["padding"],
                      "implicit padding on both sides of each axis, at most kernel_size // 2")
CEIL_MODE = Param("ceil_mode", "bool", False, "ceil_mode", help="round the output size up; "
                  "a window may not start in the right padding")
COUNT_PAD_KERAS = Param("count_include_pad", "bool", False, "count_include_pad",
                        help="count padded cells in the divisor (TensorFlow: no)")
COUNT_PAD_TORCH = Param("count_include_pad", "bool", True, "count_include_pad",
                        help="count padded cells in the divisor (PyTorch's default: yes)")
DIVISOR = Param("divisor_override", "int_or_null", None, "divisor_override", 1,
                LIMITS["divisor"], "divide every window sum by this instead")


@dataclass(frozen=True)
class Call:
    """A kind in one convention: see the module docstring."""

    function: str
    params: tuple[Param, ...]
    run: Callable[[np.ndarray, dict], np.ndarray]
    spec: Callable[[tuple[int, int], dict], PoolSpec]
    explain: str = "window"
    route: Callable[[np.ndarray, dict], np.ndarray] | None = None
    names: tuple[tuple[str, str], ...] = ()  # (JSON field, the library's argument name)

    def json(self) -> dict:
        names = dict(self.names)
        return {"function": self.function, "explain": self.explain,
                "params": [{**p.json(), "arg": names.get(p.name, p.name)} for p in self.params]}


# --------------------------------------------------------------------------------------------
# Adapters: an (H, W) grid in, an (OH, OW) grid out, through the library's own front-ends.


def _nhwc(fn):
    """A Keras-style op on one (H, W) grid: (1, H, W, 1) channels_last in and out."""
    return lambda x, a: fn(x[None, :, :, None], a)[0, :, :, 0]


def _nchw(fn):
    """A PyTorch-style op on one (H, W) grid: (1, 1, H, W) in and out."""
    return lambda x, a: fn(x[None, None], a)[0, 0]


def _keras_spec(in_size, a) -> PoolSpec:
    return keras_spec(in_size, a["pool_size"], a["strides"], a["padding"],
                      a.get("dilation", 1), count_include_pad=a.get("count_include_pad", False),
                      op="explore")


def _torch_spec(in_size, a) -> PoolSpec:
    return torch_spec(in_size, a["pool_size"], a["strides"], a["padding"], a.get("dilation", 1),
                      a["ceil_mode"], count_include_pad=a.get("count_include_pad", False),
                      divisor_override=a.get("divisor_override"), op="explore")


def _keras_max_route(x, a):
    # The engine under poolkit.max_pool, with the same spec, asked for its indices.
    spec = _keras_spec(x.shape, a)
    return engine.pool(x[None, None], spec, "max", return_indices=True)[1][0, 0]


def _torch_max_route(x, a):
    return functional.max_pool2d(x[None, None], a["pool_size"], a["strides"], a["padding"],
                                 a["dilation"], a["ceil_mode"], return_indices=True)[1][0, 0]


TORCH_NAMES = (("pool_size", "kernel_size"), ("strides", "stride"))

CALLS: dict[str, dict[str, Call]] = {
    "max": {
        "keras": Call(
            "poolkit.max_pool", (POOL_SIZE, STRIDES, KERAS_PADDING, DILATION),
            _nhwc(lambda x, a: ops.max_pool(x, a["pool_size"], a["strides"], a["padding"],
                                            dilation=a["dilation"])),
            _keras_spec, "argmax", _keras_max_route),
        "torch": Call(
            "poolkit.functional.max_pool2d",
            (POOL_SIZE, STRIDES, TORCH_PADDING, DILATION, CEIL_MODE),
            _nchw(lambda x, a: functional.max_pool2d(x, a["pool_size"], a["strides"],
                                                     a["padding"], a["dilation"],
                                                     a["ceil_mode"])),
            _torch_spec, "argmax", _torch_max_route, TORCH_NAMES),
    },
    "avg": {
        "keras": Call(
            "poolkit.average_pool", (POOL_SIZE, STRIDES, KERAS_PADDING, COUNT_PAD_KERAS),
            _nhwc(lambda x, a: ops.average_pool(x, a["pool_size"], a["strides"], a["padding"],
                                                count_include_pad=a["count_include_pad"])),
            _keras_spec, "divisor"),
        "torch": Call(
            "poolkit.functional.avg_pool2d",
            (POOL_SIZE, STRIDES, TORCH_PADDING, CEIL_MODE, COUNT_PAD_TORCH, DIVISOR),
            _nchw(lambda x, a: functional.avg_pool2d(x, a["pool_size"], a["strides"],
                                                     a["padding"], a["ceil_mode"],
                                                     a["count_include_pad"],
                                                     a["divisor_override"])),
            _torch_spec, "divisor", names=TORCH_NAMES),
    },
}


def explorer_kinds() -> tuple[str, ...]:
    """The kinds of :data:`poolkit.kinds.POOL_KINDS` that have an explorer entry, in order."""
    return tuple(k for k in POOL_KINDS if k in CALLS)


def kinds_json() -> dict:
    """``GET /api/kinds``: every kind poolkit has, with its parameters per convention; kinds
    without an entry in :data:`CALLS` are listed with ``"explorer": false``."""
    return {
        "kinds": [
            {"name": name, "label": KINDS[name].label, "explorer": name in CALLS,
             "conventions": {c: call.json() for c, call in CALLS.get(name, {}).items()}}
            for name in POOL_KINDS
        ],
        "conventions": list(CONVENTIONS),
        "limits": dict(LIMITS),
    }
