"""The normalised pooling spec and all output-size arithmetic.

Every front-end (PyTorch-style ``poolkit.functional``, Keras-style ``poolkit.max_pool`` and the
layers, the shape explorer, model summaries) turns its own conventions into a :class:`PoolSpec`
here, and nothing else in poolkit computes an output size. The engine and its kernels only ever see
a spec: they know nothing of ``ceil_mode`` or ``padding="same"``.

Rules (see REFERENCE.md):

PyTorch, per spatial dim (input ``L``, kernel ``k``, stride ``s``, padding ``p``, dilation ``d``)::

    out = floor((L + 2p - d*(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1
    if ceil_mode and (out-1)*s >= L + p: out -= 1

Keras / TensorFlow, per spatial dim::

    "valid": out = floor((L - e) / s) + 1              with e = d*(k-1) + 1
    "same":  out = ceil(L / s); total = max((out-1)*s + e - L, 0)
             before = total // 2; after = total - before
    explicit (before, after): out = floor((L + before + after - e) / s) + 1
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PoolSpec",
    "torch_output_size",
    "keras_output_size",
    "torch_spec",
    "keras_spec",
    "keras_output_shape",
    "normalize_tuple",
    "normalize_data_format",
]


@dataclass(frozen=True)
class PoolSpec:
    """A pooling problem with every convention resolved, per spatial dim.

    Output cell ``o`` of a dim reads input positions ``o*stride - pad_before + j*dilation`` for
    ``j in range(window)``; positions outside ``[0, in_size)`` are padding and are never read.
    For average pooling the divisor of a cell is the product over dims of:

    - ``divisor`` if it is non-zero (PyTorch's ``divisor_override``, applies to the whole cell);
    - else, with ``count_pad``: the window clipped to ``[-pad_before, in_size + pad_after)``;
    - else: the number of window positions inside the input.
    """

    in_size: tuple[int, ...]
    window: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_before: tuple[int, ...]
    pad_after: tuple[int, ...]
    out_size: tuple[int, ...]
    count_pad: bool = False
    divisor: int = 0

    @property
    def rank(self) -> int:
        return len(self.in_size)

    @property
    def effective_window(self) -> tuple[int, ...]:
        return tuple(d * (k - 1) + 1 for k, d in zip(self.window, self.dilation, strict=True))

    @property
    def overlapping(self) -> bool:
        """True if some input cell can fall in more than one window."""
        return any(s < e for s, e in zip(self.stride, self.effective_window, strict=True))


# --------------------------------------------------------------------------------------------
# Argument normalisation shared by the front-ends.


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


# Sizes above this are rejected (as torch 2-D/3-D pooling does): it keeps every product of a
# size and an index inside the kernels' int64 arithmetic.
MAX_SIZE = 2**31 - 1


def _check_size(values: tuple[int, ...], name: str, value) -> tuple[int, ...]:
    if any(abs(v) > MAX_SIZE for v in values):
        raise ValueError(f"{name} must be at most 2**31 - 1 in absolute value, got {value!r}")
    return values


def normalize_tuple(value, rank: int, name: str, *, allow_one: bool = True) -> tuple[int, ...]:
    """``value`` as a tuple of ``rank`` ints: an int is repeated, a sequence of length ``rank``
    (or 1 when ``allow_one``, as PyTorch allows) is taken as is. |value| <= 2**31 - 1."""
    if _is_int(value):
        return _check_size((int(value),) * rank, name, value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = tuple(value)
        if not all(_is_int(v) for v in items):
            raise TypeError(f"{name} must be an int or a tuple of ints, got {value!r}")
        if len(items) == rank:
            return _check_size(tuple(int(v) for v in items), name, value)
        if allow_one and len(items) == 1:
            return _check_size((int(items[0]),) * rank, name, value)
        want = f"1 or {rank}" if allow_one and rank != 1 else f"{rank}"
        raise ValueError(
            f"{name} must be a single int or a tuple of {want} ints for {rank}-D pooling, "
            f"got {value!r} ({len(items)} values)"
        )
    raise TypeError(
        f"{name} must be an int or a tuple of ints, got {type(value).__name__} {value!r}"
    )


def _check_positive(values: tuple[int, ...], name: str) -> None:
    if any(v <= 0 for v in values):
        raise ValueError(f"{name} must be greater than zero in every dim, got {values}")


def normalize_data_format(data_format) -> str:
    if not isinstance(data_format, str):
        raise TypeError(f"data_format must be a string, got {data_format!r}")
    df = data_format.lower()
    if df not in ("channels_last", "channels_first"):
        raise ValueError(
            f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}"
        )
    return df


# --------------------------------------------------------------------------------------------
# PyTorch conventions.


def torch_output_size(L: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """PyTorch's ``pooling_output_shape`` for one dim (no validation)."""
    out = (L + 2 * p - d * (k - 1) - 1 + ((s - 1) if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


def torch_spec(
    in_size: Sequence[int],
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    *,
    count_include_pad: bool = False,
    divisor_override: int | None = None,
    kernel_within_input: bool = False,
    op: str = "max_pool",
) -> PoolSpec:
    """Validate PyTorch-style arguments for an input of spatial size ``in_size`` and build the spec.

    Accepts and rejects what torch 2.13 does: kernel, stride and dilation > 0; 0 <= padding <=
    kernel_size // 2 (the raw kernel size, even with dilation); an output of at least 1; with
    ``kernel_within_input`` (torch's avg_pool3d) also input size >= kernel_size in every dim,
    padding notwithstanding.
    """
    rank = len(in_size)
    k = normalize_tuple(kernel_size, rank, "kernel_size")
    # torch treats stride=None and stride=() (an empty list) as "same as kernel_size".
    if stride is None or (isinstance(stride, Sequence) and len(stride) == 0):
        s = k
    else:
        s = normalize_tuple(stride, rank, "stride")
    p = normalize_tuple(padding, rank, "padding")
    d = normalize_tuple(dilation, rank, "dilation")
    if not isinstance(ceil_mode, bool | int):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    _check_positive(k, "kernel_size")
    _check_positive(s, "stride")
    _check_positive(d, "dilation")
    if any(v < 0 for v in p):
        raise ValueError(f"padding must be non-negative, got padding={p}")
    if any(pp > kk // 2 for pp, kk in zip(p, k, strict=True)):
        raise ValueError(
            f"padding must be at most half of kernel_size (padding <= kernel_size // 2), "
            f"got padding={p} with kernel_size={k}"
        )
    if kernel_within_input and any(L < kk for L, kk in zip(in_size, k, strict=True)):
        raise ValueError(
            f"{op}: input spatial size {tuple(in_size)} is smaller than kernel_size={k} in some "
            f"dim; {op} (like torch's) needs input size >= kernel_size even with padding"
        )
    divisor = 0
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(f"divisor_override must be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError("divisor_override must not be zero, got 0")
        divisor = int(divisor_override)
    out = tuple(
        torch_output_size(L, kk, ss, pp, dd, bool(ceil_mode))
        for L, kk, ss, pp, dd in zip(in_size, k, s, p, d, strict=True)
    )
    if any(o < 1 for o in out):
        raise ValueError(
            f"{op}: output size is too small: input spatial size {tuple(in_size)} with "
            f"kernel_size={k}, stride={s}, padding={p}, dilation={d}, ceil_mode={bool(ceil_mode)} "
            f"gives output size {out}; every output dim must be at least 1"
        )
    return PoolSpec(
        in_size=tuple(int(v) for v in in_size),
        window=k,
        stride=s,
        dilation=d,
        pad_before=p,
        pad_after=p,
        out_size=out,
        count_pad=bool(count_include_pad),
        divisor=divisor,
    )


# --------------------------------------------------------------------------------------------
# Keras / TensorFlow conventions.


def _keras_padding(padding, rank: int):
    """'valid' | 'same' | tuple of (before, after) pairs (an int p means (p, p) everywhere)."""
    if isinstance(padding, str):
        word = padding.lower()
        if word not in ("valid", "same"):
            raise ValueError(
                "padding must be 'valid', 'same' or a tuple of (before, after) pairs, "
                f"got {padding!r}"
            )
        return word
    if _is_int(padding):
        _check_size((int(padding),), "padding", padding)
        return ((int(padding), int(padding)),) * rank
    if isinstance(padding, Sequence):
        pairs = tuple(padding)
        if len(pairs) != rank:
            raise ValueError(
                f"padding must have one (before, after) pair per spatial dim ({rank}), "
                f"got {padding!r}"
            )
        out = []
        for pair in pairs:
            if _is_int(pair):
                out.append((int(pair), int(pair)))
                continue
            # A pair of the wrong length is a bad value; a non-int pad is a bad type.
            if isinstance(pair, Sequence) and not isinstance(pair, str | bytes):
                if len(pair) != 2:
                    raise ValueError(
                        f"padding must be a tuple of (before, after) int pairs, got {padding!r} "
                        f"(a pair of {len(pair)} values)"
                    )
                if all(_is_int(v) for v in pair):
                    out.append((int(pair[0]), int(pair[1])))
                    continue
            raise TypeError(
                f"padding must be a tuple of (before, after) int pairs, got {padding!r}"
            )
        return tuple(out)
    raise TypeError(
        f"padding must be 'valid', 'same' or a tuple of (before, after) pairs, got {padding!r}"
    )


def keras_output_size(L: int, e: int, s: int, padding) -> tuple[int, int, int]:
    """(out, before, after) for one dim with effective window ``e``; ``padding`` is 'valid',
    'same' or a (before, after) pair. No validation."""
    if padding == "valid":
        return (L - e) // s + 1, 0, 0
    if padding == "same":
        out = -(-L // s)
        total = max((out - 1) * s + e - L, 0)
        return out, total // 2, total - total // 2
    before, after = padding
    return (L + before + after - e) // s + 1, before, after


def keras_spec(
    in_size: Sequence[int],
    pool_size,
    strides=None,
    padding="valid",
    dilation=1,
    *,
    count_include_pad: bool = False,
    op: str = "pool",
) -> PoolSpec:
    """Validate Keras-style arguments for spatial size ``in_size`` and build the spec."""
    rank = len(in_size)
    k = normalize_tuple(pool_size, rank, "pool_size", allow_one=False)
    s = k if strides is None else normalize_tuple(strides, rank, "strides", allow_one=False)
    d = normalize_tuple(dilation, rank, "dilation", allow_one=False)
    _check_positive(k, "pool_size")
    _check_positive(s, "strides")
    _check_positive(d, "dilation")
    pad = _keras_padding(padding, rank)
    eff = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d, strict=True))
    if not isinstance(pad, str):
        for (b, a), e in zip(pad, eff, strict=True):
            if b < 0 or a < 0 or b >= e or a >= e:
                raise ValueError(
                    f"explicit padding must satisfy 0 <= pad < effective window (so every window "
                    f"touches the input), got padding={padding!r} with effective window {eff}"
                )
    dims = [
        keras_output_size(L, e, ss, pad if isinstance(pad, str) else pad[i])
        for i, (L, e, ss) in enumerate(zip(in_size, eff, s, strict=True))
    ]
    out = tuple(o for o, _, _ in dims)
    if any(o < 1 for o in out):
        raise ValueError(
            f"{op}: computed output size would be zero or negative: input spatial size "
            f"{tuple(in_size)} with pool_size={k}, strides={s}, padding={padding!r}, "
            f"dilation={d} gives {out}; the (padded) input must be at least as large as the window"
        )
    return PoolSpec(
        in_size=tuple(int(v) for v in in_size),
        window=k,
        stride=s,
        dilation=d,
        pad_before=tuple(b for _, b, _ in dims),
        pad_after=tuple(a for _, _, a in dims),
        out_size=out,
        count_pad=bool(count_include_pad),
    )


def keras_output_shape(
    input_shape: Sequence,
    pool_size,
    strides=None,
    padding="valid",
    data_format="channels_last",
    dilation=1,
) -> tuple:
    """Output shape of Keras-style pooling for ``input_shape`` = (N, *spatial, C) or
    (N, C, *spatial); N (and only N) may be None."""
    df = normalize_data_format(data_format)
    shape = tuple(input_shape)
    if len(shape) < 3 or len(shape) > 5:
        raise ValueError(
            f"input_shape must be (batch, *spatial, channels) with 1 to 3 spatial dims, "
            f"got {input_shape!r}"
        )
    spatial = shape[1:-1] if df == "channels_last" else shape[2:]
    if not all(_is_int(v) and v > 0 for v in spatial):
        raise ValueError(f"spatial dims of input_shape must be positive ints, got {input_shape!r}")
    spec = keras_spec(spatial, pool_size, strides, padding, dilation, op="output_shape")
    if df == "channels_last":
        return (shape[0], *spec.out_size, shape[-1])
    return (shape[0], shape[1], *spec.out_size)
