"""What the explorer's endpoints compute, without the web framework: check a JSON request, call
the library, return JSON-ready data. Every bad value raises :class:`ApiError` (HTTP 400 unless
said otherwise) naming the field and the rule; the server turns it into ``{"error": ...}``.

Numbers come from poolkit: outputs from the calls in :mod:`.kinds`, window geometry and output
sizes from :mod:`poolkit.shapes`, digits from the embedded MNIST sample, uploads through
:func:`poolkit.lab.figures.load_image`, feature maps and predictions from a poolkit model.
"""

from __future__ import annotations

import io
import math
import numbers

import numpy as np

from ..errors import InvalidValue
from ..shapes import keras_spec, torch_spec
from .kinds import (
    CALLS,
    CONVENTIONS,
    LIMITS,
    Call,
    Geometry,
    Param,
    explorer_kinds,
    kind_family,
    kind_label,
    to_nhwc,
)

__all__ = [
    "ApiError",
    "MAX_BODY",
    "MAX_SHIFT",
    "check_grid",
    "pool",
    "shape_rules",
    "digit",
    "digits",
    "image_to_digit",
    "finite",
]

MAX_BODY = 1 << 20  # bytes, every request
MAX_SHIFT = 4  # pixels, per axis
MAX_IMAGE_SIDE = 4096  # pixels: larger images are refused before they are decoded
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP")
MAX_VALUE = 1e6


class ApiError(InvalidValue):
    """A request the explorer refuses: ``status`` is the HTTP status, ``field`` the JSON field."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.status = status


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def finite(a) -> list:
    """An array as nested lists of floats, with NaN and +-inf as None (JSON has no such
    numbers)."""
    a = np.asarray(a, dtype=np.float64)
    out = a.tolist()
    if np.all(np.isfinite(a)):
        return out

    def fix(v):
        if isinstance(v, list):
            return [fix(u) for u in v]
        return v if math.isfinite(v) else None

    return fix(out)


# --------------------------------------------------------------------------------------------
# Checking requests.


def check_object(body) -> dict:
    if not isinstance(body, dict):
        raise ApiError(f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def check_grid(value, field: str = "x", shape: tuple[int, int] | None = None) -> np.ndarray:
    """A 2-D list of finite numbers, 1 to LIMITS['grid'] rows and columns, |v| <= 1e6, as an
    (H, W) float64 array (or exactly ``shape`` if given)."""
    side = LIMITS["grid"]
    if not isinstance(value, list) or not value:
        raise ApiError(f"must be a non-empty 2-D list of numbers (rows of columns), got "
                       f"{_describe(value)}", field)
    if len(value) > side:
        raise ApiError(f"must have at most {side} rows, got {len(value)}", field)
    width = None
    for i, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise ApiError(f"row {i} must be a non-empty list of numbers, got {_describe(row)}",
                           field)
        if width is None:
            width = len(row)
            if width > side:
                raise ApiError(f"must have at most {side} columns, got {width}", field)
        elif len(row) != width:
            raise ApiError(f"every row must have the same length: row 0 has {width} values, "
                           f"row {i} has {len(row)}", field)
        for j, v in enumerate(row):
            if not _is_number(v):
                raise ApiError(f"x[{i}][{j}] must be a number, got {_describe(v)}", field)
    try:
        x = np.array(value, dtype=np.float64)
    except OverflowError:
        raise ApiError(f"values must be finite numbers with |v| <= {MAX_VALUE:g}", field) from None
    if not np.all(np.isfinite(x)) or np.abs(x).max() > MAX_VALUE:
        raise ApiError(f"values must be finite numbers with |v| <= {MAX_VALUE:g}", field)
    if shape is not None and x.shape != tuple(shape):
        raise ApiError(f"must be {shape[0]} x {shape[1]} (the model's input), got "
                       f"{x.shape[0]} x {x.shape[1]}", field)
    return x


def _describe(v) -> str:
    text = repr(v)
    return f"{type(v).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def _pair(value, name: str, low: int, high: int) -> list[int]:
    """An int or [a, b] of ints, each in [low, high], as [a, b]."""
    items = [value, value] if _is_int(value) else value
    if not isinstance(items, list) or len(items) != 2 or not all(_is_int(v) for v in items):
        raise ApiError(f"must be an int or a list [rows, cols] of two ints, got "
                       f"{_describe(value)}", name)
    if not all(low <= v <= high for v in items):
        raise ApiError(f"must be in [{low}, {high}] on each axis, got {items}", name)
    return [int(v) for v in items]


def _number(value, name: str, rule: str) -> float:
    try:
        number = float(value) if _is_number(value) else math.nan
    except OverflowError:  # a JSON int beyond float's range
        number = math.nan
    if not math.isfinite(number):
        raise ApiError(f"must be {rule}, got {_describe(value)}", name)
    return number


def _check_param(p: Param, value):
    if p.control == "size":
        return tuple(_pair(value, p.name, p.low, p.high))
    if p.control == "stride":
        return None if value is None else tuple(_pair(value, p.name, p.low, p.high))
    if p.control == "torch_padding":
        return tuple(_pair(value, p.name, p.low, p.high))
    if p.control == "size_or_null":
        return None if value is None else tuple(_pair(value, p.name, p.low, p.high))
    if p.control == "bool":
        if not isinstance(value, bool):
            raise ApiError(f"must be true or false, got {_describe(value)}", p.name)
        return value
    if p.control in ("int", "int_or_null"):
        if value is None and p.control == "int_or_null":
            return None
        if not _is_int(value) or not p.low <= value <= p.high:
            null = "null or " if p.control == "int_or_null" else ""
            raise ApiError(f"must be {null}an int in [{p.low}, {p.high}], got "
                           f"{_describe(value)}", p.name)
        return int(value)
    if p.control == "choice":
        accept = p.accept or p.options
        if not isinstance(value, str) or value not in accept:
            raise ApiError(f"must be one of {list(accept)}, got {_describe(value)}", p.name)
        return value
    if p.control == "norm":
        if value == "inf":
            return "inf"
        rule = f"a number in (0, {p.high}] or 'inf'"
        v = _number(value, p.name, rule)
        if not 0 < v <= p.high:
            raise ApiError(f"must be {rule}, got {_describe(value)}", p.name)
        return int(v) if _is_int(value) else v
    if p.control == "ratio":
        if value is None:
            return None
        rule = "null or a number in (0, 1) (exclusive)"
        v = _number(value, p.name, rule)
        if not 0 < v < 1:
            raise ApiError(f"must be {rule}, got {_describe(value)}", p.name)
        return v
    if p.control == "output_size":
        items = [value, value] if _is_int(value) else value
        ok = (isinstance(items, list) and len(items) == 2
              and all(v is None or _is_int(v) for v in items))
        if not ok:
            raise ApiError(f"must be an int or [rows, cols], each an int or null (the input's "
                           f"size), got {_describe(value)}", p.name)
        if not all(v is None or p.low <= v <= p.high for v in items):
            raise ApiError(f"must be in [{p.low}, {p.high}] (or null) on each axis, got "
                           f"{items}", p.name)
        return tuple(None if v is None else int(v) for v in items)
    if p.control == "keras_padding":
        if value in ("valid", "same"):
            return value
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(r, list) and len(r) == 2 and all(_is_int(v) for v in r)
                      for r in value))
        if not ok:
            raise ApiError(f"must be 'valid', 'same' or [[top, bottom], [left, right]] ints, "
                           f"got {_describe(value)}", p.name)
        if not all(p.low <= v <= p.high for r in value for v in r):
            raise ApiError(f"explicit padding must be in [{p.low}, {p.high}] on each side, "
                           f"got {value}", p.name)
        return tuple(tuple(int(v) for v in r) for r in value)
    raise AssertionError(f"unknown control {p.control!r}")  # a bug in the table


def check_call(body, *, need_x: bool = True, prefix: str = ""):
    """(kind, convention, call, x, args) from a ``POST /api/pool`` body (``x`` None when not
    ``need_x``: then a field ``x`` is refused). ``prefix`` names the enclosing field."""
    if prefix and not isinstance(body, dict):
        raise ApiError(f"must be a JSON object, got {_describe(body)}", prefix.rstrip("."))
    body = check_object(body)
    kind = body.get("kind", "max")
    if not isinstance(kind, str) or kind not in CALLS:
        raise ApiError(f"must be one of {list(explorer_kinds())}, got {_describe(kind)}",
                       prefix + "kind")
    convention = body.get("convention", "keras" if "keras" in CALLS[kind] else "torch")
    if convention not in CONVENTIONS:
        raise ApiError(f"must be one of {list(CONVENTIONS)}, got {_describe(convention)}",
                       prefix + "convention")
    if convention not in CALLS[kind]:
        raise ApiError(f"{kind_label(kind)} has no {convention}-convention call in the "
                       f"explorer (it has: {', '.join(CALLS[kind])})", prefix + "convention")
    call = CALLS[kind][convention]
    known = {p.name for p in call.params} | {"kind", "convention"} | ({"x"} if need_x else set())
    for name in body:
        if name not in known:
            raise ApiError(
                f"is not a parameter of {kind} pooling in the {convention} convention "
                f"(its parameters: {', '.join(p.name for p in call.params)})",
                prefix + str(name)[:40])
    x = None
    if need_x:
        if "x" not in body:
            raise ApiError("is required: the input grid, a 2-D list of numbers", "x")
        x = check_grid(body["x"])
    args = {}
    for p in call.params:
        try:
            args[p.name] = _check_param(p, body.get(p.name, p.default))
        except ApiError as e:
            if not prefix:
                raise
            raise ApiError(f"{prefix}{e}", None, e.status) from None
    return kind, convention, call, x, args


def check_pool_request(body) -> tuple[str, str, Call, np.ndarray, dict]:
    """(kind, convention, call, x, args) from a ``POST /api/pool`` body."""
    return check_call(body)


# --------------------------------------------------------------------------------------------
# Pooling, windows and the shape rules.


def _library(fn, *args):
    """Run a library call; its ValueError/TypeError is the user's bad combination of values."""
    try:
        return fn(*args)
    except (ValueError, TypeError) as e:
        raise ApiError(str(e)) from None


def _cells_read(geo: Geometry) -> np.ndarray:
    """Per output cell, how many input cells its window reads (positions with a source)."""
    r = np.array([sum(v is not None for v in w) for w in geo.src_rows], dtype=np.float64)
    c = np.array([sum(v is not None for v in w) for w in geo.src_cols], dtype=np.float64)
    return np.outer(r, c)


def _args_json(args: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in args.items()}


def pool(body) -> dict:
    """``POST /api/pool``: the output of the kind's library call, its shape, each output cell's
    window (``windows``: per output row the positions it reads and the input rows they take,
    the same for columns; a cell's window is their product), how each cell is explained
    (``argmax`` [row, col] for max/min, ``divisor`` for averages, ``lp``, ``blur``, ``stage``
    for max_blur, ``aps``) and the output shape rules."""
    kind, convention, call, x, args = check_pool_request(body)
    x4 = x[None, :, :, None]
    raw = _library(call.run, x4, args)  # first: its errors name the library function
    out = to_nhwc(raw, convention)[0, :, :, 0]
    geo = _library(call.geometry, x, args)
    assert out.shape == tuple(geo.out_size), (out.shape, geo)
    res = {
        "kind": kind,
        "label": kind_label(kind),
        "family": kind_family(kind),
        "convention": convention,
        "function": call.function,
        "args": _args_json(args),
        "input_shape": list(x.shape),
        "shape": list(out.shape),
        "library_shapes": {"input": list(x4.shape if convention == "keras" else
                                         (1, 1, *x.shape)),
                           "output": list(raw.shape)},
        "output": finite(out),
        "windows": geo.json(),
        "padding": {"before": list(geo.pad_before), "after": list(geo.pad_after),
                    "type": geo.pad_type},
        "explain": call.explain,
        "shapes": shape_rules(x, args, kind, convention),
    }
    if call.explain == "argmax" and call.route is not None:
        idx = _library(call.route, x, args)
        w = x.shape[1]
        res["reduce"] = call.reduce
        res["argmax"] = [[[int(i) // w, int(i) % w] if np.isfinite(v) else None
                          for i, v in zip(ir, vr, strict=True)]
                         for ir, vr in zip(idx, out, strict=True)]
    elif call.explain in ("divisor", "lp"):
        # From the library itself, on ones: an average is (cells read) / divisor; an LP
        # output is (scale * cells read)^(1/p), scale being PyTorch's ceil_mode correction.
        ones = to_nhwc(_library(call.run, np.ones_like(x4), args), convention)[0, :, :, 0]
        n_read = _cells_read(geo)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if call.explain == "divisor":
                div = np.where(ones != 0, n_read / ones, np.nan)
                res["divisor"] = [[None if not np.isfinite(v) else int(round(v)) for v in r]
                                  for r in div]
            else:
                p = args["p"]
                res["lp"] = {"p": p, "reads": n_read.astype(int).tolist()}
                if p != "inf":
                    scale = np.where(n_read > 0, ones ** float(p) / n_read, np.nan)
                    res["lp"]["scale"] = [[None if not np.isfinite(v) else round(float(v), 9)
                                           for v in r] for r in scale]
    if call.details is not None:
        res[call.explain] = _library(call.details, x, args, geo)
    return res


def _keras_formula(L: int, k: int, s: int, d: int, padding, out: int, pb: int, pa: int) -> str:
    e = str(k) if d == 1 else f"({d}*({k}-1)+1)"
    if padding == "valid":
        return f"floor(({L} - {e}) / {s}) + 1 = {out}"
    if padding == "same":
        return f"ceil({L} / {s}) = {out}  (padding {pb} before, {pa} after)"
    return f"floor(({L} + {pb} + {pa} - {e}) / {s}) + 1 = {out}"


def _torch_formula(L: int, k: int, s: int, p: int, d: int, ceil_mode: bool, out: int) -> str:
    num = f"{L} + 2*{p} - {d}*({k}-1) - 1"
    if not ceil_mode:
        return f"floor(({num}) / {s}) + 1 = {out}"
    text = f"ceil(({num}) / {s}) + 1"
    raw = -(-(L + 2 * p - d * (k - 1) - 1) // s) + 1
    if raw != out:
        return f"{text} = {raw} -> {out} (the last window would start in the right padding)"
    return f"{text} = {out}"


def _label(convention: str, padding, ceil_mode) -> str:
    if convention == "keras":
        return "Keras " + (f"'{padding}'" if isinstance(padding, str) else
                           str([list(v) for v in padding]))
    p = padding[0] if padding[0] == padding[1] else list(padding)
    return f"PyTorch padding={p}, ceil_mode={'True' if ceil_mode else 'False'}"


def _windowed_rules(in_size, args: dict, convention: str) -> list[dict]:
    """Keras 'valid', 'same' (and the explicit padding if given); PyTorch with the request's
    padding (0 for a Keras request or LP pooling) and ceil_mode False and True."""
    k = args.get("pool_size", (1, 1))
    s = args.get("strides") or k
    d = args.get("dilation", (1, 1))
    pad = args.get("padding")
    keras_pads = ["valid", "same"]
    if isinstance(pad, tuple) and convention == "keras":
        keras_pads.append(pad)
    torch_pad = pad if convention == "torch" and pad is not None else (0, 0)
    rows = []
    for kp in keras_pads:
        row = {"convention": "keras", "padding": kp if isinstance(kp, str) else
               [list(v) for v in kp], "ceil_mode": None, "label": _label("keras", kp, None),
               "active": convention == "keras" and kp == pad}
        try:
            spec = keras_spec(tuple(in_size), k, s, kp, d, op="keras pooling")
        except ValueError as e:
            row.update(shape=None, formula=None, error=str(e))
        else:
            row.update(shape=list(spec.out_size), error=None, formula=[
                _keras_formula(L, kk, ss, dd, kp, o, pb, pa)
                for L, kk, ss, dd, o, pb, pa in zip(in_size, k, s, d, spec.out_size,
                                                    spec.pad_before, spec.pad_after,
                                                    strict=True)])
        rows.append(row)
    for ceil in (False, True):
        row = {"convention": "torch", "padding": list(torch_pad), "ceil_mode": ceil,
               "label": _label("torch", torch_pad, ceil),
               "active": convention == "torch" and args.get("ceil_mode") == ceil}
        try:
            spec = torch_spec(tuple(in_size), k, s, torch_pad, d, ceil, op="torch pooling")
        except ValueError as e:
            row.update(shape=None, formula=None, error=str(e))
        else:
            row.update(shape=list(spec.out_size), error=None, formula=[
                _torch_formula(L, kk, ss, p, dd, ceil, o)
                for L, kk, ss, p, dd, o in zip(in_size, k, s, torch_pad, d, spec.out_size,
                                               strict=True)])
        rows.append(row)
    return rows


def shape_rules(x: np.ndarray, args: dict, kind: str = "max", convention: str = "keras") -> dict:
    """Output shapes and formulas (numbers filled in, per axis). Windowed kinds: both
    conventions for the request's window, stride and dilation (see :func:`_windowed_rules`).
    Other kinds: each convention's call with the request's values (defaults for the rest).
    Each size is computed by :mod:`poolkit.shapes`; invalid settings give ``error``."""
    if kind_family(kind) == "windowed":
        return {"axes": ["rows", "cols"], "rules": _windowed_rules(x.shape, args, convention)}
    rows = []
    for conv, call in CALLS[kind].items():
        full = {p.name: args.get(p.name, p.default) for p in call.params}
        row = {"convention": conv, "padding": None, "ceil_mode": None,
               "label": ("Keras " if conv == "keras" else "PyTorch ") + call.function,
               "active": conv == convention}
        try:
            shape, formula = call.formula(x, full)
        except ValueError as e:
            row.update(shape=None, formula=None, error=str(e))
        else:
            row.update(shape=list(shape), formula=formula, error=None)
        rows.append(row)
    return {"axes": ["rows", "cols"], "rules": rows}


# --------------------------------------------------------------------------------------------
# Digits and images.


def _sample():
    from ..keras.datasets import mnist_sample

    return mnist_sample.load_data()[1]


def digits() -> dict:
    """``GET /api/digits``: how many test digits the embedded sample has, and their labels."""
    _, y = _sample()
    return {"count": int(len(y)), "labels": [int(v) for v in y],
            "source": "MNIST test digits embedded in poolkit (LeCun, Cortes, Burges; "
                      "CC BY-SA 3.0)"}


def digit(index_text: str) -> dict:
    """``GET /api/digit/{index}``: test digit ``index`` of the embedded sample, in [0, 1]."""
    from ..lab.figures import dataset_digit

    _, y = _sample()
    if not (isinstance(index_text, str) and index_text.isascii() and index_text.isdigit()
            and len(index_text) <= 6 and int(index_text) < len(y)):
        raise ApiError(f"must be an int in [0, {len(y) - 1}] (the sample's test digits), got "
                       f"{index_text[:20]!r}", "index")
    x, label = dataset_digit(int(index_text))
    return {"index": int(index_text), "label": label, "x": np.round(x, 4).tolist()}


def image_to_digit(data: bytes) -> dict:
    """``POST /api/upload``: an image file's bytes made MNIST-like by
    :func:`poolkit.lab.figures.load_image` (28x28, light digit on black, in [0, 1]).

    Checked first with Pillow: one of IMAGE_FORMATS, at most MAX_IMAGE_SIDE pixels a side (read
    from the header, before anything is decoded: a small file can claim a huge image), and fully
    decodable."""
    from PIL import Image, UnidentifiedImageError

    from ..lab.figures import load_image

    if not data:
        raise ApiError("the request body is empty: send the image file's bytes", "image")
    Image.init()
    formats = [f for f in IMAGE_FORMATS if f in Image.OPEN]  # as this Pillow was built
    try:
        with Image.open(io.BytesIO(data), formats=formats) as im:
            w, h = im.size
            fmt = im.format
            if w < 1 or h < 1 or w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE:
                raise ApiError(f"is {w} x {h} pixels; at most {MAX_IMAGE_SIDE} x "
                               f"{MAX_IMAGE_SIDE} is accepted", "image")
            im.load()
    except UnidentifiedImageError:
        raise ApiError(f"is not an image Pillow can read as one of {', '.join(IMAGE_FORMATS)}",
                       "image") from None
    except Image.DecompressionBombError as e:
        raise ApiError(f"refused as a decompression bomb ({e})", "image", 413) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        if isinstance(e, ApiError):
            raise
        raise ApiError(f"could not be decoded ({type(e).__name__}: {e})", "image") from None
    try:
        x = load_image(io.BytesIO(data))
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ApiError(f"could not be decoded ({type(e).__name__}: {e})", "image") from None
    return {"x": np.round(x, 4).tolist(), "width": w, "height": h, "format": fmt}
