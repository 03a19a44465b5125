"""The explorer's pooling table: for each kind of :data:`poolkit.kinds.KINDS` (and the explorer's
extra :data:`EXTRA_KINDS`) and each convention, the parameters the page shows (and the server
checks), the library call that computes it and the windows it reads.

Adding a kind to the explorer is one entry in :data:`CALLS`::

    "min": {
        "keras": Call("poolkit.min_pool", (POOL_SIZE, STRIDES, KERAS_PADDING, DILATION),
                      _keras(lambda x, a: ops.min_pool(x, a["pool_size"], a["strides"],
                                                       a["padding"], dilation=a["dilation"])),
                      _keras_windows, "argmax", route=..., reduce="min"),
        "torch": ...,
    },

A :class:`Call` names the function shown on the page, its parameters (each a :class:`Param`:
JSON field, control type, default, bounds), ``run(x, args)`` calling the library on an
(N, H, W, C) float array and returning what it returns, ``geometry(x, args)`` the windows of an
(H, W) grid (a :class:`Geometry`, from :mod:`poolkit.shapes`), and how the page explains one
output cell (``explain``):

- ``"argmax"``: the winner, where the gradient goes; ``route(x, args)`` gives each output cell's
  flat input index (from the library's indices or its backward pass);
- ``"divisor"``: sum / divisor (the divisor comes from running the call on ones);
- ``"lp"``: the p-norm of the window (and PyTorch's ceil_mode scale, again from ones);
- ``"blur"``: a weighted window (the binomial taps; reflected or replicated padding);
- ``"max_blur"``: max pooling with stride 1, then a blur of its output (``stage``);
- ``"aps"``: the polyphase component kept and every component's norm (``details``);
- ``"window"``: just the window.

The page builds its controls from ``GET /api/kinds``, which is this table as JSON, so a new kind
needs no JavaScript unless it brings a new control type or a new way to explain a cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .. import engine, functional, ops
from ..kinds import KINDS, POOL_KINDS
from ..shapes import (
    PAD_TYPES,
    PoolSpec,
    adaptive_output_size,
    adaptive_windows,
    binomial_filter,
    blur_spec,
    fractional_spec,
    fractional_starts,
    keras_spec,
    polyphase_output_size,
    torch_spec,
)

__all__ = ["Param", "Call", "Geometry", "CALLS", "CONVENTIONS", "LIMITS", "EXTRA_KINDS",
           "explorer_kinds", "kinds_json", "kind_label", "kind_family", "to_nhwc",
           "random_samples"]

CONVENTIONS = ("keras", "torch")

# Bounds of what the server computes (the page is for learning, not for big arrays).
LIMITS = {
    "grid": 64,  # input rows and columns
    "window": 32,  # pool size and stride per axis
    "dilation": 8,
    "padding": 32,  # per side
    "divisor": 4096,
    "p": 64,  # LP's p and APS's norm (or "inf")
    "phase_stride": 8,  # APS: at most 8 x 8 = 64 polyphase components
    "output": 64,  # adaptive and fractional output size per axis
    "seed": 2**31 - 1,
}

#: Kinds the explorer shows that :data:`poolkit.kinds.KINDS` does not list (the library has
#: them in :mod:`poolkit.functional` only): name -> (label, family).
EXTRA_KINDS = {"fractional_max": ("fractional max pooling (Graham 2014)", "fractional")}


@dataclass(frozen=True)
class Param:
    """One argument of a library call, as the page shows it and the server checks it.

    ``control``: ``"size"`` ([rows, cols] ints in [low, high]; the page's select sets both),
    ``"stride"`` (like size, or null = the pool size), ``"keras_padding"`` ("valid" | "same" |
    [[top, bottom], [left, right]]), ``"torch_padding"`` ([rows, cols] ints in [low, high]),
    ``"bool"``, ``"int"`` (an int in [low, high]), ``"int_or_null"``, ``"choice"`` (one of
    ``options``), ``"norm"`` (a number in (0, high] or "inf"; ``options`` are the page's
    presets), ``"output_size"`` ([rows, cols], each an int in [low, high] or null = the input's
    size), ``"size_or_null"`` (null or a size), ``"ratio"`` (null or a number in (0, 1)).
    ``template``: how the page writes the value in the call (``{}`` is the value).
    """

    name: str
    control: str
    default: object
    label: str
    low: int = 0
    high: int = 0
    help: str = ""
    testid: str = ""
    options: tuple = ()
    template: str = ""
    accept: tuple = ()  # "choice": the values accepted (default: ``options``)

    def json(self) -> dict:
        return {"name": self.name, "control": self.control, "default": self.default,
                "label": self.label, "min": self.low, "max": self.high, "help": self.help,
                "testid": self.testid or self.name.replace("_", "-"),
                "options": list(self.options), "template": self.template}


W = LIMITS["window"]
POOL_SIZE = Param("pool_size", "size", [2, 2], "pool size", 1, W, "window rows x columns")
STRIDES = Param("strides", "stride", None, "stride", 1, W,
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
NORM_PRESETS = (0.5, 1, 1.5, 2, 3, 4, 8, 16, "inf")
P = Param("p", "norm", 2, "p", 0, LIMITS["p"],
          "(sum of |x|^p)^(1/p) over the window: p = 1 sums |x|, p = inf is max |x|",
          options=NORM_PRESETS)
STEP2 = Param("strides", "size", [2, 2], "stride", 1, W, "sampling step (2 halves each axis)",
              testid="stride")
PHASE_STRIDE = Param("strides", "size", [2, 2], "stride", 1, LIMITS["phase_stride"],
                     "sampling step; stride x stride polyphase components", testid="stride")
MAX_BLUR_SIZE = Param("pool_size", "size", [2, 2], "pool size", 1, W,
                      "the max window, slid with stride 1 before the blur")
FILT_SIZE = Param("filt_size", "int", 4, "filt_size", 1, 7,
                  "binomial filter taps per axis: 1 [1], 2 [1 1], 3 [1 2 1], 4 [1 3 3 1], ...")
PAD_TYPE = Param("pad_type", "choice", "reflect", "pad_type", help="how the blur pads: mirror "
                 "without repeating the edge, repeat the edge, or zeros",
                 options=("reflect", "repl", "zero"), accept=tuple(PAD_TYPES))
APS_NORM = Param("norm", "norm", 2, "norm", 0, LIMITS["p"], "the component with the largest "
                 "p-norm (over all channels) is kept", options=NORM_PRESETS)
OUTPUT_SIZE = Param("output_size", "output_size", [5, 5], "output size", 1, LIMITS["output"],
                    "output rows x columns; window i spans floor(i*L/O) .. ceil((i+1)*L/O) - 1; "
                    "null keeps the input's size")
KEEPDIMS = Param("keepdims", "bool", False, "keepdims",
                 help="keep the pooled spatial axes as size 1: (N, 1, 1, C) instead of (N, C)")
FRACTIONAL_SIZE = Param("output_size", "size_or_null", None, "output size", 1, LIMITS["output"],
                        "output rows x columns (needs output + kernel - 1 <= input); "
                        "null: from output_ratio")
FRACTIONAL_RATIO = Param("output_ratio", "ratio", 0.7, "output_ratio",
                         help="output = int(input * ratio) per axis, used when output_size is "
                              "null", options=(0.5, 0.6, 0.7, 0.8, 0.9))
SEED = Param("seed", "int", 0, "seed", 0, LIMITS["seed"],
             "_random_samples = np.random.default_rng(seed).random((1, 1, 2)) for this grid (on "
             "the model's maps one pair per channel, the same for every sample): where the "
             "pseudo-random windows start",
             template="np.random.default_rng({}).random((1, 1, 2))")


# --------------------------------------------------------------------------------------------
# Window geometry of one (H, W) grid.


@dataclass(frozen=True)
class Geometry:
    """What each output cell reads, per axis: output row ``i`` reads the positions
    ``rows[i]`` (input coordinates; outside [0, H) is padding) and those positions take the
    input rows ``src_rows[i]`` (None: nothing, the padding is never read or reads 0); the same
    for columns. A cell's window is the product of its row's and its column's.

    ``pad_type``: what a position outside the input reads ("none": never read; "zero";
    "reflect"; "replicate"; "circular"). ``taps``: per axis, the weight of each window position
    (a blur). ``stage``: for a composition (max then blur), the blur's geometry over the
    intermediate map whose cell ``m`` reads input rows ``m .. m + stage_window - 1``.
    """

    out_size: tuple[int, int]
    rows: list
    cols: list
    src_rows: list
    src_cols: list
    pad_before: tuple[int, int] = (0, 0)
    pad_after: tuple[int, int] = (0, 0)
    pad_type: str = "none"
    taps: tuple | None = None
    stage: Geometry | None = None
    stage_window: tuple[int, int] | None = None

    def json(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "src_rows": self.src_rows,
                "src_cols": self.src_cols}


def _inside(positions: list[int], L: int) -> list:
    return [p if 0 <= p < L else None for p in positions]


def uniform_geometry(spec: PoolSpec) -> Geometry:
    """The spec's rule: output ``o`` reads ``o*stride - pad_before + j*dilation``."""
    axes = [[[o * s - pb + j * d for j in range(k)] for o in range(n)]
            for k, s, d, pb, n in zip(spec.window, spec.stride, spec.dilation, spec.pad_before,
                                      spec.out_size, strict=True)]
    src = [[_inside(w, L) for w in ax] for ax, L in zip(axes, spec.in_size, strict=True)]
    return Geometry(tuple(spec.out_size), axes[0], axes[1], src[0], src[1],
                    tuple(spec.pad_before), tuple(spec.pad_after))


def _ranges(starts, counts) -> list[list[int]]:
    return [list(range(int(s), int(s) + int(c))) for s, c in zip(starts, counts, strict=True)]


def adaptive_geometry(in_size, out_size) -> Geometry:
    """:func:`poolkit.shapes.adaptive_windows` per axis."""
    axes = [_ranges(*adaptive_windows(L, O)) for L, O in zip(in_size, out_size, strict=True)]
    return Geometry(tuple(out_size), axes[0], axes[1], axes[0], axes[1])


def _pad_source(p: int, L: int, mode: str):
    if 0 <= p < L:
        return p
    if mode == "reflect":  # mirror about the edge cell, which is not repeated
        return -p if p < 0 else 2 * (L - 1) - p
    if mode == "replicate":
        return min(max(p, 0), L - 1)
    if mode == "circular":
        return p % L
    return None


_BLUR_MODES = {0: "reflect", 1: "replicate", 2: "zero"}


def blur_geometry(spec) -> Geometry:
    """A :class:`poolkit.shapes.BlurSpec`: output ``o`` reads the padded positions
    ``o*stride - pad_before + j`` with the binomial taps of :func:`binomial_filter`."""
    mode = _BLUR_MODES[spec.mode]
    k, pb = spec.filt, spec.pad_before
    axes = [[[o * s - pb + j for j in range(k)] for o in range(n)]
            for s, n in zip(spec.stride, spec.out_size, strict=True)]
    src = [[[_pad_source(p, L, mode) for p in w] for w in ax]
           for ax, L in zip(axes, spec.in_size, strict=True)]
    taps = tuple(float(t) for t in binomial_filter(k))
    return Geometry(tuple(spec.out_size), axes[0], axes[1], src[0], src[1], (pb, pb),
                    (spec.pad_after, spec.pad_after), mode, (taps, taps))


def max_blur_geometry(in_size, window, blur) -> Geometry:
    """Max pooling ``window`` with stride 1 (no padding), then the blur ``blur`` over its output
    M: an output reads every input cell of the max windows of the M cells its blur reads."""
    stage = blur_geometry(blur)
    axes = []
    for src, k in zip((stage.src_rows, stage.src_cols), window, strict=True):
        axes.append([sorted({m + j for m in w if m is not None for j in range(k)})
                     for w in src])
    return Geometry(stage.out_size, axes[0], axes[1], axes[0], axes[1],
                    stage=stage, stage_window=tuple(window))


def phase_offsets(stride) -> list[tuple[int, int]]:
    """The polyphase components in :func:`poolkit.engine.polyphase`'s order (documented in
    :func:`poolkit.functional.aps_pool2d`: (0, 0), (1, 0), (0, 1), (1, 1) for stride 2): the
    row offset varies fastest. Component ``(a, b)`` is ``x[a::s, b::s]`` of the input padded
    circularly to multiples of the stride."""
    sr, sc = stride
    return [(k % sr, k // sr) for k in range(sr * sc)]


def polyphase_geometry(in_size, stride, phase: tuple[int, int]) -> Geometry:
    out = polyphase_output_size(in_size, stride)
    axes = [[[ph + o * s] for o in range(n)]
            for ph, s, n in zip(phase, stride, out, strict=True)]
    src = [[[_pad_source(w[0], L, "circular")] for w in ax]
           for ax, L in zip(axes, in_size, strict=True)]
    after = tuple((-L) % s for L, s in zip(in_size, stride, strict=True))
    return Geometry(tuple(out), axes[0], axes[1], src[0], src[1], (0, 0), after, "circular")


def random_samples(seed: int, n: int, c: int, dtype) -> np.ndarray:
    """torch's ``_random_samples`` for fractional max pooling, (N, C, 2) in [0, 1): one pair
    per channel from ``np.random.default_rng(seed)``, the same for every sample of the batch
    (so shifted copies of an input get the same windows); ``[..., 0]`` drives the width."""
    u = np.random.default_rng(seed).random((c, 2)).astype(dtype)
    return np.ascontiguousarray(np.broadcast_to(u, (n, c, 2)))


def fractional_geometry(x: np.ndarray, a: dict) -> Geometry:
    in_size = x.shape
    u = random_samples(a["seed"], 1, 1, x.dtype)[0, 0]
    spec = fractional_spec(in_size, 1, a["pool_size"], a["output_size"], a["output_ratio"],
                           u[::-1].reshape(1, 2), dtype=x.dtype, op="fractional_max_pool2d")
    axes = [_ranges(fractional_starts(L, O, k, np.array(ur), x.dtype), [k] * O)
            for L, O, k, ur in zip(in_size, spec.out_size, spec.window, u[::-1], strict=True)]
    return Geometry(tuple(spec.out_size), axes[0], axes[1], axes[0], axes[1])


# --------------------------------------------------------------------------------------------
# Adapters: an (N, H, W, C) array in, the library's own output out, through its front-ends.


def _keras(fn):
    """A Keras-style op on (N, H, W, C), channels_last."""
    return lambda x, a: fn(x, a)


def _torch(fn):
    """A PyTorch-style op: (N, C, H, W) in."""
    return lambda x, a: fn(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), a)


def to_nhwc(out: np.ndarray, convention: str) -> np.ndarray:
    """A library output as (N, OH, OW, C): NCHW is transposed; a global pool's (N, C) is
    (N, 1, 1, C)."""
    if out.ndim == 2:
        return out[:, None, None, :]
    return out.transpose(0, 2, 3, 1) if convention == "torch" else out


def _keras_spec(in_size, a) -> PoolSpec:
    return keras_spec(in_size, a["pool_size"], a["strides"], a["padding"],
                      a.get("dilation", 1), count_include_pad=a.get("count_include_pad", False),
                      op="explore")


def _torch_spec(in_size, a) -> PoolSpec:
    return torch_spec(in_size, a["pool_size"], a["strides"], a.get("padding", 0),
                      a.get("dilation", 1), a["ceil_mode"],
                      count_include_pad=a.get("count_include_pad", False),
                      divisor_override=a.get("divisor_override"), op="explore")


def _keras_windows(x, a) -> Geometry:
    return uniform_geometry(_keras_spec(x.shape, a))


def _torch_windows(x, a) -> Geometry:
    return uniform_geometry(_torch_spec(x.shape, a))


def _keras_route(mode):
    def route(x, a):
        # The engine under poolkit.max_pool / min_pool, with the same spec, asked for indices.
        spec = _keras_spec(x.shape, a)
        return engine.pool(x[None, None], spec, mode, return_indices=True)[1][0, 0]
    return route


def _torch_route(fn):
    def route(x, a):
        return fn(x[None, None], a["pool_size"], a["strides"], a["padding"], a["dilation"],
                  a["ceil_mode"], return_indices=True)[1][0, 0]
    return route


def _adaptive_route(x, a):
    return functional.adaptive_max_pool2d(x[None, None], a["output_size"],
                                          return_indices=True)[1][0, 0]


def _global_route(x, a):
    # The backward pass routes the one output's gradient to the winner.
    g = ops.global_max_pool_backward(np.ones((1, 1)), x[None, :, :, None])[0, :, :, 0]
    return np.array([[int(np.flatnonzero(g)[0])]])


def _fractional_run(x, a):
    return functional.fractional_max_pool2d(
        x, a["pool_size"], a["output_size"], a["output_ratio"],
        _random_samples=random_samples(a["seed"], x.shape[0], x.shape[1], x.dtype))


def _fractional_route(x, a):
    return functional.fractional_max_pool2d(
        x[None, None], a["pool_size"], a["output_size"], a["output_ratio"], return_indices=True,
        _random_samples=random_samples(a["seed"], 1, 1, x.dtype))[1][0, 0]


def _norm(v) -> float:
    return math.inf if v == "inf" else float(v)


def _adaptive_windows(op: str):
    def windows(x, a) -> Geometry:
        return adaptive_geometry(x.shape, adaptive_output_size(x.shape, a["output_size"], op=op))
    return windows


def _blur_windows(x, a) -> Geometry:
    return blur_geometry(blur_spec(x.shape, a["filt_size"], a["strides"], a["pad_type"],
                                   op="blur_pool"))


def _max_blur_windows(x, a) -> Geometry:
    m = keras_spec(x.shape, a["pool_size"], 1, "valid", op="max_blur_pool")
    b = blur_spec(m.out_size, a["filt_size"], a["strides"], a["pad_type"], op="max_blur_pool")
    return max_blur_geometry(x.shape, m.window, b)


def _max_blur_stage(x, a) -> tuple[np.ndarray, np.ndarray]:
    """The intermediate map M (max pooling, stride 1) and its winners, from the library."""
    m, idx = functional.max_pool2d(x[None, None], a["pool_size"], 1, return_indices=True)
    return m[0, 0], idx[0, 0]


def _aps_phase(x, a) -> tuple[int, int]:
    _, phase = engine.polyphase(x[None, None], tuple(a["strides"]), _norm(a["norm"]))
    return phase_offsets(a["strides"])[int(phase[0])]


def _aps_windows(x, a) -> Geometry:
    return polyphase_geometry(x.shape, tuple(a["strides"]), _aps_phase(x, a))


def _aps_details(x, a, geo) -> dict:
    """Each polyphase component's norm, computed by poolkit's LP pooling over the component
    (one window covering it: the p-norm), and the one the library kept."""
    s = tuple(a["strides"])
    pad = [(0, (-L) % ss) for L, ss in zip(x.shape, s, strict=True)]
    xp = np.pad(x, pad, mode="wrap")
    offsets = phase_offsets(s)
    comps = np.stack([xp[r::s[0], c::s[1]] for r, c in offsets])[..., None]
    norms = ops.lp_pool(comps, _norm(a["norm"]), comps.shape[1:3])[:, 0, 0, 0]
    kept = _aps_phase(x, a)
    return {"components": [{"phase": list(o), "norm": float(v) if math.isfinite(v) else None}
                           for o, v in zip(offsets, norms, strict=True)],
            "phase": list(kept), "chosen": offsets.index(kept), "norm": a["norm"],
            "stride": list(s)}


def _weights_text(taps) -> list[list[str]]:
    return [[str(Fraction(a * b).limit_denominator(1 << 16)) for b in taps[1]] for a in taps[0]]


def _blur_details(x, a, geo) -> dict:
    return {"weights": np.outer(*geo.taps).tolist(), "weights_text": _weights_text(geo.taps),
            "pad_type": geo.pad_type}


def _max_blur_details(x, a, geo) -> dict:
    m, idx = _max_blur_stage(x, a)
    st = geo.stage
    w = x.shape[1]
    return {"stage": {"function": "poolkit.functional.max_pool2d(x, kernel_size="
                                  f"{tuple(a['pool_size'])}, stride=1)",
                      "shape": list(m.shape), "output": m.tolist(),
                      "argmax": [[[int(i) // w, int(i) % w] for i in r] for r in idx],
                      "window": list(geo.stage_window),
                      "rows": st.rows, "cols": st.cols, "src_rows": st.src_rows,
                      "src_cols": st.src_cols, "pad_type": st.pad_type},
            "weights": np.outer(*st.taps).tolist(), "weights_text": _weights_text(st.taps),
            "pad_type": st.pad_type}


# --------------------------------------------------------------------------------------------
# Output sizes with the numbers filled in (the windowed kinds use both conventions' table).


def _adaptive_formula(x, a):
    out = adaptive_output_size(x.shape, a["output_size"], op="adaptive pooling")
    req = a["output_size"]
    req = req if isinstance(req, tuple | list) else (req, req)
    return out, [f"{O}: window i spans floor(i*{L}/{O}) .. ceil((i+1)*{L}/{O}) - 1"
                 if r is not None else f"{O}: None keeps the input's {L}"
                 for L, O, r in zip(x.shape, out, req, strict=True)]


def _global_formula(x, a):
    return (1, 1), [f"1: one window over all {L}" for L in x.shape]


def _blur_formula(x, a):
    out = blur_spec(x.shape, a["filt_size"], a["strides"], a["pad_type"],
                    op="blur_pool").out_size
    return out, [f"ceil({L} / {s}) = {o}"
                 for L, s, o in zip(x.shape, a["strides"], out, strict=True)]


def _max_blur_formula(x, a):
    m = keras_spec(x.shape, a["pool_size"], 1, "valid", op="max_blur_pool")
    out = blur_spec(m.out_size, a["filt_size"], a["strides"], a["pad_type"],
                    op="max_blur_pool").out_size
    return out, [f"ceil(({L} - {k} + 1) / {s}) = {o}"
                 for L, k, s, o in zip(x.shape, a["pool_size"], a["strides"], out, strict=True)]


def _aps_formula(x, a):
    out = polyphase_output_size(x.shape, tuple(a["strides"]))
    return out, [f"ceil({L} / {s}) = {o}"
                 for L, s, o in zip(x.shape, a["strides"], out, strict=True)]


def _fractional_formula(x, a):
    out = fractional_geometry(x, a).out_size
    if a["output_size"] is not None:
        return out, [f"{o}: output_size (it needs {o} + {k} - 1 <= {L})"
                     for L, k, o in zip(x.shape, a["pool_size"], out, strict=True)]
    return out, [f"floor({L} * {a['output_ratio']!r}) = {o}"
                 for L, o in zip(x.shape, out, strict=True)]


# --------------------------------------------------------------------------------------------
# The table.


@dataclass(frozen=True)
class Call:
    """A kind in one convention: see the module docstring. ``formula(x, args)`` gives the
    output size and a formula per axis for kinds outside the windowed family; ``details(x,
    args, geometry)`` extra JSON for the explanation; ``reduce``: "max" or "min" (argmax)."""

    function: str
    params: tuple[Param, ...]
    run: Callable[[np.ndarray, dict], np.ndarray]
    geometry: Callable[[np.ndarray, dict], Geometry]
    explain: str = "window"
    route: Callable[[np.ndarray, dict], np.ndarray] | None = None
    names: tuple[tuple[str, str], ...] = ()  # (JSON field, the library's argument name)
    formula: Callable | None = None
    details: Callable | None = None
    reduce: str = "max"

    def json(self) -> dict:
        names = dict(self.names)
        return {"function": self.function, "explain": self.explain,
                "params": [{**p.json(), "arg": names.get(p.name, p.name)} for p in self.params]}


TORCH_NAMES = (("pool_size", "kernel_size"), ("strides", "stride"))


def _max_min(mode: str, keras_op, torch_op) -> dict[str, Call]:
    return {
        "keras": Call(
            f"poolkit.{keras_op.__name__}", (POOL_SIZE, STRIDES, KERAS_PADDING, DILATION),
            _keras(lambda x, a: keras_op(x, a["pool_size"], a["strides"], a["padding"],
                                         dilation=a["dilation"])),
            _keras_windows, "argmax", _keras_route(mode), reduce=mode),
        "torch": Call(
            f"poolkit.functional.{torch_op.__name__}",
            (POOL_SIZE, STRIDES, TORCH_PADDING, DILATION, CEIL_MODE),
            _torch(lambda x, a: torch_op(x, a["pool_size"], a["strides"], a["padding"],
                                         a["dilation"], a["ceil_mode"])),
            _torch_windows, "argmax", _torch_route(torch_op), TORCH_NAMES, reduce=mode),
    }


CALLS: dict[str, dict[str, Call]] = {
    "max": _max_min("max", ops.max_pool, functional.max_pool2d),
    "avg": {
        "keras": Call(
            "poolkit.average_pool", (POOL_SIZE, STRIDES, KERAS_PADDING, COUNT_PAD_KERAS),
            _keras(lambda x, a: ops.average_pool(x, a["pool_size"], a["strides"], a["padding"],
                                                 count_include_pad=a["count_include_pad"])),
            _keras_windows, "divisor"),
        "torch": Call(
            "poolkit.functional.avg_pool2d",
            (POOL_SIZE, STRIDES, TORCH_PADDING, CEIL_MODE, COUNT_PAD_TORCH, DIVISOR),
            _torch(lambda x, a: functional.avg_pool2d(x, a["pool_size"], a["strides"],
                                                      a["padding"], a["ceil_mode"],
                                                      a["count_include_pad"],
                                                      a["divisor_override"])),
            _torch_windows, "divisor", names=TORCH_NAMES),
    },
    "min": _max_min("min", ops.min_pool, functional.min_pool2d),
    "lp": {
        "keras": Call(
            "poolkit.lp_pool", (P, POOL_SIZE, STRIDES, KERAS_PADDING),
            _keras(lambda x, a: ops.lp_pool(x, _norm(a["p"]), a["pool_size"], a["strides"],
                                            a["padding"])),
            _keras_windows, "lp"),
        "torch": Call(
            "poolkit.functional.lp_pool2d", (P, POOL_SIZE, STRIDES, CEIL_MODE),
            _torch(lambda x, a: functional.lp_pool2d(x, _norm(a["p"]), a["pool_size"],
                                                     a["strides"], a["ceil_mode"])),
            _torch_windows, "lp", names=(("p", "norm_type"), *TORCH_NAMES)),
    },
    "blur": {
        "keras": Call(
            "poolkit.blur_pool", (FILT_SIZE, STEP2, PAD_TYPE),
            _keras(lambda x, a: ops.blur_pool(x, a["filt_size"], a["strides"], a["pad_type"])),
            _blur_windows, "blur", formula=_blur_formula, details=_blur_details),
        "torch": Call(
            "poolkit.functional.blur_pool2d", (FILT_SIZE, STEP2, PAD_TYPE),
            _torch(lambda x, a: functional.blur_pool2d(x, a["filt_size"], a["strides"],
                                                       a["pad_type"])),
            _blur_windows, "blur", names=TORCH_NAMES, formula=_blur_formula,
            details=_blur_details),
    },
    "max_blur": {
        "keras": Call(
            "poolkit.max_blur_pool", (MAX_BLUR_SIZE, STEP2, FILT_SIZE, PAD_TYPE),
            _keras(lambda x, a: ops.max_blur_pool(x, a["pool_size"], a["strides"],
                                                  a["filt_size"], a["pad_type"])),
            _max_blur_windows, "max_blur", formula=_max_blur_formula,
            details=_max_blur_details),
        "torch": Call(
            "poolkit.functional.max_blur_pool2d", (MAX_BLUR_SIZE, STEP2, FILT_SIZE, PAD_TYPE),
            _torch(lambda x, a: functional.max_blur_pool2d(x, a["pool_size"], a["strides"],
                                                           a["filt_size"], a["pad_type"])),
            _max_blur_windows, "max_blur", names=TORCH_NAMES, formula=_max_blur_formula,
            details=_max_blur_details),
    },
    "aps": {
        "keras": Call(
            "poolkit.aps_pool", (PHASE_STRIDE, APS_NORM),
            _keras(lambda x, a: ops.aps_pool(x, a["strides"], _norm(a["norm"]))),
            _aps_windows, "aps", formula=_aps_formula, details=_aps_details),
        "torch": Call(
            "poolkit.functional.aps_pool2d", (PHASE_STRIDE, APS_NORM),
            _torch(lambda x, a: functional.aps_pool2d(x, a["strides"], _norm(a["norm"]))),
            _aps_windows, "aps", names=(("strides", "stride"),), formula=_aps_formula,
            details=_aps_details),
    },
    "adaptive_max": {
        "keras": Call(
            "poolkit.adaptive_max_pool", (OUTPUT_SIZE,),
            _keras(lambda x, a: ops.adaptive_max_pool(x, a["output_size"])),
            _adaptive_windows("adaptive_max_pool"),
            "argmax", _adaptive_route, formula=_adaptive_formula),
        "torch": Call(
            "poolkit.functional.adaptive_max_pool2d", (OUTPUT_SIZE,),
            _torch(lambda x, a: functional.adaptive_max_pool2d(x, a["output_size"])),
            _adaptive_windows("adaptive_max_pool2d"),
            "argmax", _adaptive_route, formula=_adaptive_formula),
    },
    "adaptive_avg": {
        "keras": Call(
            "poolkit.adaptive_average_pool", (OUTPUT_SIZE,),
            _keras(lambda x, a: ops.adaptive_average_pool(x, a["output_size"])),
            _adaptive_windows("adaptive_average_pool"),
            "divisor", formula=_adaptive_formula),
        "torch": Call(
            "poolkit.functional.adaptive_avg_pool2d", (OUTPUT_SIZE,),
            _torch(lambda x, a: functional.adaptive_avg_pool2d(x, a["output_size"])),
            _adaptive_windows("adaptive_avg_pool2d"),
            "divisor", formula=_adaptive_formula),
    },
    # PyTorch has no global pooling function (adaptive pooling to 1 is its idiom).
    "global_max": {
        "keras": Call(
            "poolkit.global_max_pool", (KEEPDIMS,),
            _keras(lambda x, a: ops.global_max_pool(x, keepdims=a["keepdims"])),
            lambda x, a: adaptive_geometry(x.shape, (1, 1)), "argmax", _global_route,
            formula=_global_formula),
    },
    "global_avg": {
        "keras": Call(
            "poolkit.global_average_pool", (KEEPDIMS,),
            _keras(lambda x, a: ops.global_average_pool(x, keepdims=a["keepdims"])),
            lambda x, a: adaptive_geometry(x.shape, (1, 1)), "divisor",
            formula=_global_formula),
    },
    "fractional_max": {
        "torch": Call(
            "poolkit.functional.fractional_max_pool2d",
            (POOL_SIZE, FRACTIONAL_SIZE, FRACTIONAL_RATIO, SEED),
            _torch(_fractional_run), fractional_geometry, "argmax", _fractional_route,
            (("pool_size", "kernel_size"), ("seed", "_random_samples")),
            formula=_fractional_formula),
    },
}


def kind_label(name: str) -> str:
    return KINDS[name].label if name in KINDS else EXTRA_KINDS[name][0]


def kind_family(name: str) -> str:
    return KINDS[name].family if name in KINDS else EXTRA_KINDS[name][1]


def _all_kinds() -> tuple[str, ...]:
    return (*POOL_KINDS, *(k for k in EXTRA_KINDS if k not in POOL_KINDS))


def explorer_kinds() -> tuple[str, ...]:
    """The kinds that have an explorer entry, in display order."""
    return tuple(k for k in _all_kinds() if k in CALLS)


def kinds_json() -> dict:
    """``GET /api/kinds``: every kind poolkit has, with its family and its parameters per
    convention; kinds without an entry in :data:`CALLS` are listed with ``"explorer": false``."""
    return {
        "kinds": [
            {"name": name, "label": kind_label(name), "family": kind_family(name),
             "explorer": name in CALLS, "library_kind": name in KINDS,
             "conventions": {c: call.json() for c, call in CALLS.get(name, {}).items()}}
            for name in _all_kinds()
        ],
        "conventions": list(CONVENTIONS),
        "limits": dict(LIMITS),
    }
