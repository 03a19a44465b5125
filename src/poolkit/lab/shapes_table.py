"""Feature-map arithmetic without training: pooling output shapes under both conventions.

Every output size here comes from :mod:`poolkit.shapes` (``keras_spec``/``torch_spec``, which
call ``keras_output_size``/``torch_output_size`` per dim); this module only formats what they
return, so a formula string shows the substituted inputs and the size that ``shapes.py`` computed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ..errors import InvalidType, InvalidValue
from ..shapes import keras_spec, torch_spec

__all__ = [
    "parse_shape",
    "pool_shape_table",
    "kind_shape_table",
    "kinds_model_table",
    "format_kind_table",
    "model_shape_table",
    "format_table",
    "format_pool_table",
    "format_model_table",
    "POOL_TABLE_COLUMNS",
    "MODEL_TABLE_COLUMNS",
]

POOL_TABLE_COLUMNS = (
    "pool_size",
    "strides",
    "dilation",
    "rule",
    "output_shape",
    "discarded",
    "formula",
)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"28x28x32"`` -> ``(28, 28, 32)``: spatial dims then channels (channels last).

    Between 2 and 4 positive ints (1 to 3 spatial dims plus channels), separated by ``x`` or ``,``.
    """
    if not isinstance(text, str):
        raise InvalidType(f"input shape must be a string like '28x28x32', got {text!r}")
    parts = [p for p in text.lower().replace(",", "x").split("x") if p.strip()]
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InvalidValue(
            f"input shape must be positive ints joined by 'x' (H x W x C), got {text!r}"
        ) from None
    if not 2 <= len(dims) <= 4 or any(d <= 0 for d in dims):
        raise InvalidValue(
            f"input shape must be 1 to 3 positive spatial dims plus channels, e.g. 28x28x32, "
            f"got {text!r}"
        )
    return dims


def _same_per_dim(values: Sequence) -> bool:
    return all(v == values[0] for v in values)


def _keras_formula(L: int, k: int, s: int, d: int, padding: str, out: int) -> str:
    e = f"{k}" if d == 1 else f"({d}*({k}-1) + 1)"
    if padding == "valid":
        return f"floor(({L} - {e}) / {s}) + 1 = {out}"
    return f"ceil({L} / {s}) = {out}"


def _torch_formula(L: int, k: int, s: int, p: int, d: int, ceil_mode: bool, out: int) -> str:
    span = f"({k}-1)" if d == 1 else f"{d}*({k}-1)"
    if ceil_mode:
        # torch drops a last window that would start in the right padding.
        return f"ceil(({L} + 2*{p} - {span} - 1) / {s}) + 1, -1 if it starts past L+p = {out}"
    return f"floor(({L} + 2*{p} - {span} - 1) / {s}) + 1 = {out}"


def _formula(parts: list[str]) -> str:
    if _same_per_dim(parts):
        return parts[0]
    return "; ".join(f"{name}: {p}" for name, p in zip("DHW"[-len(parts):], parts, strict=True))


def _keras_row(spatial, channels, k, s, d, padding) -> dict:
    rank = len(spatial)
    spec = keras_spec(spatial, (k,) * rank, (s,) * rank, padding, (d,) * rank, op="pool")
    parts = [
        _keras_formula(L, k, s, d, padding, o)
        for L, o in zip(spatial, spec.out_size, strict=True)
    ]
    pads = [f"{b}+{a}" for b, a in zip(spec.pad_before, spec.pad_after, strict=True)]
    note = ""
    if padding == "same":
        note = f", pad {pads[0] if _same_per_dim(pads) else ' '.join(pads)} (before+after)"
    return {
        "output_shape": (*spec.out_size, channels),
        "formula": _formula(parts) + note,
    }


def _torch_row(spatial, channels, k, s, d, p, ceil_mode) -> dict:
    rank = len(spatial)
    spec = torch_spec(spatial, (k,) * rank, (s,) * rank, (p,) * rank, (d,) * rank, ceil_mode,
                      op="max_pool")
    parts = [
        _torch_formula(L, k, s, p, d, ceil_mode, o)
        for L, o in zip(spatial, spec.out_size, strict=True)
    ]
    return {"output_shape": (*spec.out_size, channels), "formula": _formula(parts)}


def pool_shape_table(
    input_shape: Sequence[int],
    pool_sizes: Iterable[int] = (2,),
    strides: Iterable[int | None] = (None,),
    paddings: Iterable[str] = ("valid", "same"),
    torch_paddings: Iterable[int] = (0,),
    ceil_modes: Iterable[bool] = (False, True),
    dilations: Iterable[int] = (1,),
) -> list[dict]:
    """Output shapes of pooling for every combination, under Keras/TF and PyTorch rules.

    ``input_shape`` is (*spatial, channels) with 1 to 3 spatial dims (no batch). Each pool size,
    stride and dilation applies to every spatial dim; a stride of ``None`` means the pool size.
    For every (pool_size, stride, dilation) there is one ``"keras"`` row per padding word in
    ``paddings`` and one ``"torch"`` row per (padding int, ceil_mode) pair.

    Returns a list of dicts with keys :data:`POOL_TABLE_COLUMNS` (``rule`` is a label such as
    ``"keras same"`` or ``"torch p=1 ceil"``) plus ``convention`` ("keras" | "torch"),
    ``padding`` (a word or an int), ``ceil_mode`` (None for Keras), ``input_shape`` and
    ``error`` (None, or the reason the combination is invalid; then ``output_shape``,
    ``discarded`` and ``formula`` are None).
    ``discarded`` is ``1 - output activations / input activations`` (pooling keeps channels).
    Invalid combinations become rows, never exceptions; a malformed ``input_shape`` raises.
    """
    shape = tuple(input_shape)
    if not 2 <= len(shape) <= 4 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise InvalidValue(
            f"input_shape must be (*spatial, channels) with 1 to 3 positive spatial dims, "
            f"got {input_shape!r}"
        )
    spatial, channels = shape[:-1], shape[-1]
    n_in = math.prod(spatial)
    rows = []
    for k in pool_sizes:
        for s0 in strides:
            s = k if s0 is None else s0
            for d in dilations:
                settings = [("keras", pad, None) for pad in paddings]
                settings += [("torch", p, bool(c)) for p in torch_paddings for c in ceil_modes]
                for convention, pad, ceil_mode in settings:
                    row = {
                        "input_shape": shape,
                        "pool_size": k,
                        "strides": s,
                        "dilation": d,
                        "convention": convention,
                        "padding": pad,
                        "ceil_mode": ceil_mode,
                        "rule": f"keras {pad}" if convention == "keras"
                        else f"torch p={pad}" + (" ceil" if ceil_mode else ""),
                        "output_shape": None,
                        "discarded": None,
                        "formula": None,
                        "error": None,
                    }
                    try:
                        if convention == "keras":
                            row.update(_keras_row(spatial, channels, k, s, d, pad))
                        else:
                            row.update(_torch_row(spatial, channels, k, s, d, pad, ceil_mode))
                    except (ValueError, TypeError) as e:
                        row["error"] = str(e)
                    else:
                        row["discarded"] = 1.0 - math.prod(row["output_shape"][:-1]) / n_in
                    rows.append(row)
    return rows


def _cell(key: str, value) -> str:
    if value is None:
        return "-"
    if key == "discarded":
        return f"{100 * value:.1f}%"
    if isinstance(value, tuple):
        return "x".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1000:
        return f"{value:,}"
    return str(value)


def format_table(rows: list[dict], columns: Sequence[str], headers: Sequence[str] | None = None,
                 group_by: Sequence[str] = (), note_at: int = 1) -> str:
    """A plain-text table of ``rows`` (dicts) over ``columns``; a blank line separates groups of
    consecutive rows whose ``group_by`` values differ. Missing values print as ``-``. A row with
    a ``"note"`` shows its first ``note_at`` columns, then the note, which does not widen the
    columns."""
    headers = list(headers or columns)
    cells = [[_cell(c, r.get(c)) for c in columns] for r in rows]
    widths = [
        max([len(h)] + [len(row[i]) for r, row in zip(rows, cells, strict=True)
                        if not r.get("note") or i < note_at])
        for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    prev = None
    for r, row in zip(rows, cells, strict=True):
        key = tuple(r.get(g) for g in group_by)
        if group_by and prev is not None and key != prev:
            lines.append("")
        prev = key
        if r.get("note"):
            lead = [v.ljust(w) for v, w in zip(row[:note_at], widths, strict=False)]
            lines.append("  ".join([*lead, r["note"]]))
        else:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


KIND_TABLE_COLUMNS = ("kind", "arguments", "output_shape", "rule")

# Each family's output-size rule, per spatial dim L (the numbers come from poolkit.output_shape).
_FAMILY_RULES = {
    "windowed": "valid: floor((L - k) / s) + 1; same: ceil(L / s)",
    "blur": "ceil(L / s) (binomial filter over the padded input, then stride s)",
    "max_blur": "ceil((L - k + 1) / s) (max k stride 1, then blur with stride s)",
    "polyphase": "ceil(L / s) (the input padded circularly to a multiple of s)",
    "adaptive": "O: the grid asked for (here the windowed grid of k and s)",
    "global": "1 (keepdims) or no spatial dims",
}


def kind_shape_table(input_shape: Sequence[int], kinds: Iterable[str],
                     pool_sizes: Iterable[int] = (2,), strides: Iterable[int | None] = (None,),
                     padding: str = "valid") -> list[dict]:
    """Output shapes of each pooling kind of :data:`poolkit.kinds.POOL_KINDS` on a
    channels-last ``input_shape`` (spatial dims then channels), with the window arguments
    ``pool_size``/``strides`` applied as :func:`poolkit.lab.models.pool_maps` applies them
    (BlurPool and APS sample with the stride; adaptive kinds pool to the windowed grid;
    global kinds keep size-1 dims). Each row: ``kind``, ``arguments``, ``output_shape``,
    ``rule`` and ``error`` (the message if the arguments do not fit the input)."""
    import poolkit

    from ..kinds import get_kind

    shape = (None, *tuple(input_shape))
    rows = []
    for kind in kinds:
        k = get_kind(kind)
        family = "max_blur" if kind == "max_blur" else k.family
        for size in pool_sizes:
            for s0 in strides:
                s = size if s0 is None else s0
                args = {"windowed": dict(pool_size=size, strides=s, padding=padding),
                        "blur": dict(strides=s), "max_blur": dict(pool_size=size, strides=s),
                        "polyphase": dict(strides=s), "global": dict(keepdims=True)}.get(
                            family, {})  # adaptive: set below, from the windowed grid
                try:
                    if family == "adaptive":
                        grid = poolkit.output_shape(shape, size, s, padding)[1:-1]
                        args = dict(output_size=tuple(grid))
                    out = poolkit.output_shape(shape, kind=kind, **args)
                    row = {"output_shape": out[1:], "error": None}
                except (ValueError, TypeError) as e:
                    row = {"output_shape": None, "error": str(e)}
                text = ", ".join(f"{a}={v}" for a, v in args.items())
                rows.append({"kind": kind, "arguments": text, "rule": _FAMILY_RULES[family],
                             **row})
    return rows


def format_kind_table(rows: list[dict]) -> str:
    """:func:`format_table` of :func:`kind_shape_table` rows."""
    shown = [r if r["error"] is None else {**r, "note": f"invalid: {r['error']}"} for r in rows]
    return format_table(shown, KIND_TABLE_COLUMNS,
                        headers=("kind", "arguments", "output (H, W, C)", "rule per dim"),
                        group_by=("kind",), note_at=2)


MODEL_TABLE_COLUMNS = ("variant", "layer", "type", "output_shape", "params", "macs", "rf_size",
                       "rf_jump")


def _with_pooling(model, pool_size: int, strides: int | None):
    """A new model with ``model``'s layers, every (non-global) pooling layer given ``pool_size``
    and ``strides`` (None = pool size); weights are fresh, shapes are what matters here."""
    from ..keras import layers, models

    cfg = model.get_config()
    new = models.Sequential(name=cfg["name"])
    new.add(layers.InputLayer(shape=tuple(cfg["input_shape"])))
    for spec in cfg["layers"]:
        c = dict(spec["config"])
        cls = layers.get(spec["class_name"])
        if issubclass(cls, layers.BasePooling):
            c["pool_size"], c["strides"] = pool_size, strides
        new.add(cls.from_config(c))
    return new


def model_shape_table(model, pool_sizes: Iterable[int] = (), strides: Iterable[int | None] = (None,)
                      ) -> list[dict]:
    """Per-layer arithmetic of ``model`` (a built Sequential) and of copies whose pooling layers
    use each (pool size, stride) pair (stride None = pool size).

    One dict per layer and variant with the keys of ``model.layer_table()`` (``name`` as
    ``layer``: output shape, params, multiply-adds per sample, receptive field size and jump, as
    computed by the model from :mod:`poolkit.shapes`) plus ``variant`` ("as built" or
    "pool k/s") and ``error``. A variant that cannot be built (a window larger than its input)
    is one row with ``error`` set and the other values None.
    """
    rows = []
    variants = [("as built", model)]
    for k in pool_sizes:
        for s0 in strides:
            s = k if s0 is None else s0
            try:
                variants.append((f"pool {k}/{s}", _with_pooling(model, k, s)))
            except (ValueError, TypeError) as e:
                variants.append((f"pool {k}/{s}", e))
    for label, m in variants:
        if isinstance(m, Exception):
            rows.append({"variant": label, **{c: None for c in MODEL_TABLE_COLUMNS[1:]},
                         "error": str(m)})
            continue
        for r in m.layer_table():
            rows.append({"variant": label, "layer": r.pop("name"), **r, "error": None})
    return rows


def kinds_model_table(kinds: Iterable[str], pool_sizes: Iterable[int] = (2,),
                      strides: Iterable[int | None] = (None,)) -> list[dict]:
    """:func:`model_shape_table` rows of the tutorial's model with each pooling kind of
    ``kinds`` as its downsampling layer (:func:`poolkit.lab.models.downsampling_model`), for
    each (pool size, stride) pair; the variant column names the kind."""
    from .models import downsampling_model

    rows = []
    for kind in kinds:
        for k in pool_sizes:
            for s0 in strides:
                s = k if s0 is None else s0
                label = f"{kind} {k}/{s}"
                try:
                    model = downsampling_model(kind, k, s)
                except (ValueError, TypeError) as e:
                    rows.append({"variant": label, **{c: None for c in MODEL_TABLE_COLUMNS[1:]},
                                 "error": str(e)})
                    continue
                for r in model_shape_table(model):
                    rows.append({**r, "variant": label})
    return rows


def format_model_table(rows: list[dict]) -> str:
    """:func:`format_table` of :func:`model_shape_table` rows, with a total line per variant."""
    shown = []
    for i, r in enumerate(rows):
        if r["error"] is not None:
            shown.append({**r, "note": "cannot build: " + r["error"]})
            continue
        shown.append({**r, "output_shape": r["output_shape"][1:]})  # drop the None batch
        last = i + 1 == len(rows) or rows[i + 1]["variant"] != r["variant"]
        if last:
            mine = [x for x in rows if x["variant"] == r["variant"]]
            shown.append({"variant": r["variant"], "layer": "total",
                          "params": sum(x["params"] for x in mine),
                          "macs": sum(x["macs"] for x in mine)})
    return format_table(shown, MODEL_TABLE_COLUMNS,
                        headers=("variant", "layer", "type", "output shape", "params",
                                 "multiply-adds", "receptive field", "jump"),
                        group_by=("variant",))


def format_pool_table(rows: list[dict]) -> str:
    """:func:`format_table` of :func:`pool_shape_table` rows; an invalid row shows its error
    where the formula would be."""
    shown = [r if r["error"] is None else {**r, "note": f"invalid: {r['error']}"} for r in rows]
    return format_table(shown, POOL_TABLE_COLUMNS,
                        headers=("pool", "stride", "dilation", "rule", "output", "discarded",
                                 "formula"),
                        group_by=("pool_size", "strides", "dilation"), note_at=4)
