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

import functools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidType, InvalidValue, SizeOutOfRange

__all__ = [
    "PoolSpec",
    "torch_output_size",
    "keras_output_size",
    "torch_spec",
    "plain_torch_args",
    "keras_spec",
    "keras_output_shape",
    "normalize_tuple",
    "normalize_data_format",
    "batched_rank",
    "AdaptiveSpec",
    "adaptive_spec",
    "adaptive_windows",
    "adaptive_output_size",
    "FractionalSpec",
    "fractional_starts",
    "fractional_spec",
    "BlurSpec",
    "blur_spec",
    "binomial_filter",
    "unpool_output_size",
    "polyphase_output_size",
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
        raise SizeOutOfRange(f"{name} must be at most 2**31 - 1 in absolute value, got "
                             f"{value!r}")
    return values


def normalize_tuple(value, rank: int, name: str, *, allow_one: bool = True) -> tuple[int, ...]:
    """``value`` as a tuple of ``rank`` ints: an int is repeated, a sequence of length ``rank``
    (or 1 when ``allow_one``, as PyTorch allows) is taken as is. |value| <= 2**31 - 1."""
    if _is_int(value):
        return _check_size((int(value),) * rank, name, value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = tuple(value)
        if not all(_is_int(v) for v in items):
            raise InvalidType(f"{name} must be an int or a tuple of ints, got {value!r}")
        if len(items) == rank:
            return _check_size(tuple(int(v) for v in items), name, value)
        if allow_one and len(items) == 1:
            return _check_size((int(items[0]),) * rank, name, value)
        want = f"1 or {rank}" if allow_one and rank != 1 else f"{rank}"
        raise InvalidValue(
            f"{name} must be a single int or a tuple of {want} ints for {rank}-D pooling, "
            f"got {value!r} ({len(items)} values)"
        )
    raise InvalidType(
        f"{name} must be an int or a tuple of ints, got {type(value).__name__} {value!r}"
    )


def batched_rank(shape: Sequence[int], rank: int, op: str) -> bool:
    """Whether an input of ``shape`` for ``rank``-D PyTorch-style pooling is batched
    ((N, C, *spatial), else (C, *spatial)); InvalidValue for another rank or a zero-size
    channel or spatial dim (only N may be 0)."""
    if len(shape) not in (rank + 1, rank + 2):
        raise InvalidValue(
            f"{op}: input must be {rank + 1}-D (C, *spatial) or {rank + 2}-D (N, C, *spatial) "
            f"for {rank}-D pooling, got a {len(shape)}-D array of shape {tuple(shape)}"
        )
    batched = len(shape) == rank + 2
    if 0 in (shape[1:] if batched else shape):
        raise InvalidValue(
            f"{op}: input of shape {tuple(shape)} has a zero-size channel or spatial dim; "
            f"only the batch dim N of a {rank + 2}-D input may be 0"
        )
    return batched


def _check_positive(values: tuple[int, ...], name: str) -> None:
    if any(v <= 0 for v in values):
        raise InvalidValue(f"{name} must be greater than zero in every dim, got {values}")


def normalize_data_format(data_format) -> str:
    if not isinstance(data_format, str):
        raise InvalidType(f"data_format must be a string, got {data_format!r}")
    df = data_format.lower()
    if df not in ("channels_last", "channels_first"):
        raise InvalidValue(
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


def _plain(v) -> bool:
    """An int, None or a tuple of ints: arguments whose spec can be memoised (types checked
    exactly, so True is never taken for 1, nor 2.0 for 2)."""
    t = type(v)
    if t is int or v is None:
        return True
    if t is not tuple:
        return False
    for e in v:
        if type(e) is not int:
            return False
    return True


def plain_output_size(output_size) -> bool:
    """Whether an adaptive ``output_size`` is of the exact types a memo may key on (an int or
    a tuple of ints; see :func:`plain_torch_args`)."""
    return type(output_size) is int or (output_size is not None and _plain(output_size))


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
    padding notwithstanding. Specs of plain int arguments are memoised (validating costs
    microseconds, as much as pooling a small input); errors are not.
    """
    if type(in_size) is not tuple:
        in_size = tuple(in_size)
    args = (in_size, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
            divisor_override, kernel_within_input, op)
    if _plain(in_size) and plain_torch_args(kernel_size, stride, padding, dilation, ceil_mode,
                                            count_include_pad, divisor_override):
        return _torch_spec_memo(*args)
    return _torch_spec(*args)


def plain_torch_args(kernel_size, stride, padding, dilation, ceil_mode,
                     count_include_pad=False, divisor_override=None) -> bool:
    """Whether PyTorch-style arguments are of the exact types a memo may key on: ints, None
    or tuples of ints for sizes, bools for flags. An equal value of another type (True for 1,
    2.0 for 2) must meet the checks, so it never shares a memo entry."""
    # (the int tests first: this gate costs more than the memo lookup it guards)
    return ((type(kernel_size) is int or _plain(kernel_size))
            and (stride is None or _plain(stride)) and (type(padding) is int or _plain(padding))
            and (type(dilation) is int or _plain(dilation)) and type(ceil_mode) is bool
            and type(count_include_pad) is bool
            and (divisor_override is None or _plain(divisor_override)))


def _torch_spec(in_size, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                divisor_override, kernel_within_input, op) -> PoolSpec:
    rank = len(in_size)
    k = normalize_tuple(kernel_size, rank, "kernel_size")
    # torch treats stride=None and stride=() (an empty list) as "same as kernel_size".
    if stride is None or (isinstance(stride, Sequence) and len(stride) == 0):
        s = k
    else:
        s = normalize_tuple(stride, rank, "stride")
    p = normalize_tuple(padding, rank, "padding")
    d = normalize_tuple(dilation, rank, "dilation")
    if not isinstance(ceil_mode, bool):  # torch 2.13 rejects ints and numpy bools too
        raise InvalidType(f"ceil_mode must be a bool, got {type(ceil_mode).__name__} "
                          f"{ceil_mode!r}")
    _check_positive(k, "kernel_size")
    _check_positive(s, "stride")
    _check_positive(d, "dilation")
    extent = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d, strict=True))
    if any(e > MAX_SIZE for e in extent):
        # (torch 2.13's max_pool3d computes such a window in int32: it returns a wrong shape,
        # and its backward then corrupts the heap)
        raise SizeOutOfRange(
            f"kernel_size={k} with dilation={d} spans {extent} cells; a window may span at "
            f"most 2**31 - 1"
        )
    if any(v < 0 for v in p):
        raise InvalidValue(f"padding must be non-negative, got padding={p}")
    if any(pp > kk // 2 for pp, kk in zip(p, k, strict=True)):
        raise InvalidValue(
            f"padding must be at most half of kernel_size (padding <= kernel_size // 2), "
            f"got padding={p} with kernel_size={k}"
        )
    if kernel_within_input and any(L < kk for L, kk in zip(in_size, k, strict=True)):
        raise InvalidValue(
            f"{op}: input spatial size {tuple(in_size)} is smaller than kernel_size={k} in some "
            f"dim; {op} (like torch's) needs input size >= kernel_size even with padding"
        )
    divisor = 0
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise InvalidType(f"divisor_override must be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise InvalidValue("divisor_override must not be zero, got 0")
        divisor = int(divisor_override)
    out = tuple(
        torch_output_size(L, kk, ss, pp, dd, bool(ceil_mode))
        for L, kk, ss, pp, dd in zip(in_size, k, s, p, d, strict=True)
    )
    if any(o < 1 for o in out):
        raise InvalidValue(
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


_torch_spec_memo = functools.lru_cache(maxsize=512)(_torch_spec)


# --------------------------------------------------------------------------------------------
# Keras / TensorFlow conventions.


def _keras_padding(padding, rank: int):
    """'valid' | 'same' | tuple of (before, after) pairs (an int p means (p, p) everywhere)."""
    if isinstance(padding, str):
        word = padding.lower()
        if word not in ("valid", "same"):
            raise InvalidValue(
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
            raise InvalidValue(
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
                    raise InvalidValue(
                        f"padding must be a tuple of (before, after) int pairs, got {padding!r} "
                        f"(a pair of {len(pair)} values)"
                    )
                if all(_is_int(v) for v in pair):
                    out.append((int(pair[0]), int(pair[1])))
                    continue
            raise InvalidType(
                f"padding must be a tuple of (before, after) int pairs, got {padding!r}"
            )
        return tuple(out)
    raise InvalidType(
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
                raise InvalidValue(
                    f"explicit padding must satisfy 0 <= pad < effective window (so every window "
                    f"touches the input), got padding={padding!r} with effective window {eff}"
                )
    dims = [
        keras_output_size(L, e, ss, pad if isinstance(pad, str) else pad[i])
        for i, (L, e, ss) in enumerate(zip(in_size, eff, s, strict=True))
    ]
    out = tuple(o for o, _, _ in dims)
    if any(o < 1 for o in out):
        raise InvalidValue(
            f"{op}: computed output size would be zero or negative: input spatial size "
            f"{tuple(in_size)} with pool_size={k}, strides={s}, padding={padding!r}, "
            f"dilation={d} gives {out}; the (padded) input must be at least as large as the window"
        )
    return _interned(in_size, PoolSpec(
        in_size=tuple(int(v) for v in in_size),
        window=k,
        stride=s,
        dilation=d,
        pad_before=tuple(b for _, b, _ in dims),
        pad_after=tuple(a for _, _, a in dims),
        out_size=out,
        count_pad=bool(count_include_pad),
    ))


#: spec -> the one object of its value that the builders return (see _interned).
_SPECS: dict = {}


def _interned(in_size, spec):
    """The first-built spec equal to ``spec`` (a builder's checked result), when ``in_size``
    is ints: every field is then an exact int or bool, so equal specs are interchangeable.
    The engine memoises its plans per spec object; a builder called per call (the Keras
    front-end's, adaptive and blur specs) would otherwise give each call a plan of its own."""
    if not _plain(tuple(in_size)):
        return spec
    found = _SPECS.get(spec)
    if found is None:
        if len(_SPECS) >= 1024:
            _SPECS.clear()
        _SPECS[spec] = found = spec
    return found


def adaptive_spec(in_size: Sequence[int], out_size: tuple[int, ...]) -> AdaptiveSpec:
    """The AdaptiveSpec of ints ``in_size`` and ``out_size`` (from :func:`adaptive_output_size`),
    one object per value."""
    return _interned(in_size, AdaptiveSpec(tuple(int(v) for v in in_size), tuple(out_size)))


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
        raise InvalidValue(
            f"input_shape must be (batch, *spatial, channels) with 1 to 3 spatial dims, "
            f"got {input_shape!r}"
        )
    spatial = shape[1:-1] if df == "channels_last" else shape[2:]
    if not all(_is_int(v) and v > 0 for v in spatial):
        raise InvalidValue(
            f"spatial dims of input_shape must be positive ints, got {input_shape!r}"
        )
    spec = keras_spec(spatial, pool_size, strides, padding, dilation, op="output_shape")
    if df == "channels_last":
        return (shape[0], *spec.out_size, shape[-1])
    return (shape[0], shape[1], *spec.out_size)


# --------------------------------------------------------------------------------------------
# Adaptive windows (PyTorch's AdaptivePooling.h, in integers).


def adaptive_windows(L: int, O: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, count) of the ``O`` adaptive windows over a dim of length ``L``::

        start(i) = floor(i * L / O)        end(i) = ceil((i + 1) * L / O)

    computed in integers (float versions are wrong for large sizes, pytorch#81409). Windows
    cover the dim, overlap by one cell where ``L % O != 0``, and repeat cells when ``O > L``.
    """
    i = np.arange(O, dtype=np.int64)
    start = (i * L) // O
    end = ((i + 1) * L + O - 1) // O
    return start, end - start


@dataclass(frozen=True)
class AdaptiveSpec:
    """Adaptive pooling: output size ``out_size`` for input ``in_size``; window ``i`` of a dim
    is :func:`adaptive_windows`'s. Global pooling is ``out_size = (1, ...)``."""

    in_size: tuple[int, ...]
    out_size: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.in_size)

    def windows(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        return adaptive_windows(self.in_size[r], self.out_size[r])

    def uniform(self) -> PoolSpec | None:
        """The same windows as a uniform spec when every dim divides evenly, else None."""
        if any(o == 0 or L % o for L, o in zip(self.in_size, self.out_size, strict=True)):
            return None
        k = tuple(L // o for L, o in zip(self.in_size, self.out_size, strict=True))
        zero = (0,) * self.rank
        return PoolSpec(self.in_size, k, k, (1,) * self.rank, zero, zero, self.out_size)


def adaptive_output_size(in_size: Sequence[int], output_size, *, op: str) -> tuple[int, ...]:
    """``output_size`` (an int, or a tuple whose None entries keep the input size) resolved for
    spatial size ``in_size``, as PyTorch resolves it: sizes >= 0 (0 gives an empty output)."""
    rank = len(in_size)
    if output_size is None:
        raise InvalidType(f"{op}: output_size must be an int or a tuple of {rank} ints or "
                          f"None, got None")
    if _is_int(output_size):
        sizes = (int(output_size),) * rank
    elif isinstance(output_size, Sequence) and not isinstance(output_size, str | bytes):
        items = tuple(output_size)
        if len(items) != rank:
            raise InvalidValue(f"{op}: output_size must be an int or a tuple of {rank} ints "
                               f"or None, got {output_size!r} ({len(items)} values)")
        if not all(v is None or _is_int(v) for v in items):
            raise InvalidType(f"{op}: output_size entries must be ints or None, got "
                              f"{output_size!r}")
        sizes = tuple(int(L) if v is None else int(v)
                      for L, v in zip(in_size, items, strict=True))
    else:
        raise InvalidType(f"{op}: output_size must be an int or a tuple of {rank} ints or "
                          f"None, got {type(output_size).__name__} {output_size!r}")
    if any(o < 0 for o in sizes):
        raise InvalidValue(f"{op}: elements of output_size must be >= 0, got {output_size!r}")
    _check_size(sizes, "output_size", output_size)
    return sizes


# --------------------------------------------------------------------------------------------
# Fractional max pooling (PyTorch's FractionalMaxPooling.h).


def fractional_starts(L: int, O: int, k: int, u: np.ndarray, dtype) -> np.ndarray:
    """Window starts of fractional max pooling for samples ``u`` (any shape, values in [0, 1)):
    ``alpha = (L - k) / (O - 1)`` in ``dtype`` (the input's), ``start[i] = int((i + u) *
    alpha) - int(u * alpha)`` for ``i < O - 1`` and ``start[O - 1] = L - k``; result shape
    ``u.shape + (O,)``, int64. Every window lies inside ``[0, L)`` when ``O + k - 1 <= L``."""
    dt = np.dtype(dtype)
    u = np.asarray(u, dt)
    out = np.empty(u.shape + (O,), np.int64)
    if O == 0:
        return out
    out[..., O - 1] = L - k
    if O > 1:
        alpha = dt.type(L - k) / dt.type(O - 1)
        i = np.arange(O - 1, dtype=dt)
        seq = ((i + u[..., None]) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)[
            ..., None
        ]
        out[..., : O - 1] = seq
    return out


@dataclass(frozen=True)
class FractionalSpec:
    """Fractional max pooling: windows of size ``window`` starting at ``starts[p, r, o]`` for
    plane ``p`` (n*C + c), dim ``r`` and output ``o`` (padded to the longest dim)."""

    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    window: tuple[int, ...]
    starts: np.ndarray = field(compare=False, repr=False)

    @property
    def rank(self) -> int:
        return len(self.in_size)


def _ratio(value, rank: int, op: str) -> tuple[float, ...]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        items = (float(value),) * rank
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes) and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value
    ):
        items = tuple(float(v) for v in value)
        if len(items) != rank:
            raise InvalidValue(f"{op}: output_ratio must be a number or a tuple of {rank} "
                               f"numbers, got {value!r}")
    else:
        raise InvalidType(f"{op}: output_ratio must be a number or a tuple of {rank} numbers, "
                          f"got {value!r}")
    if not all(0.0 < r < 1.0 for r in items):
        raise InvalidValue(f"{op}: output_ratio must be in (0, 1) in every dim, got {value!r}")
    return items


def fractional_spec(in_size: Sequence[int], planes: int, kernel_size, output_size=None,
                    output_ratio=None, samples: np.ndarray | None = None, *, dtype,
                    op: str) -> FractionalSpec:
    """Validate PyTorch's fractional_max_pool arguments for spatial size ``in_size`` and
    ``planes`` = N*C planes; ``samples`` is (planes, rank) in [0, 1), column ``r`` driving dim
    ``r`` (the front-end reorders torch's ``_random_samples``). Accepts what torch 2.13 accepts
    except a window of size 0 and samples outside [0, 1) (torch reads outside the input with
    them), and also a plain number as ``output_ratio`` (documented by torch, rejected by 2.13).
    Size rule (torch's): 2-D needs ``O + k - 1 <= L``, 3-D ``O + k - 1 < L``."""
    rank = len(in_size)
    k = normalize_tuple(kernel_size, rank, "kernel_size")
    _check_positive(k, "kernel_size")
    if output_size is None and output_ratio is None:
        raise InvalidValue(f"{op} requires specifying either an output_size or an "
                           f"output_ratio")
    if output_size is not None:
        out = normalize_tuple(output_size, rank, "output_size")
        if any(o < 0 for o in out):
            raise InvalidValue(f"{op}: output_size must be >= 0, got {output_size!r}")
    else:
        out = tuple(int(L * r) for L, r in zip(in_size, _ratio(output_ratio, rank, op),
                                                strict=True))
    for L, o, kk, name in zip(in_size, out, k, ("time", "height", "width")[-rank:],
                              strict=True):
        too_large = (o + kk - 1 > L) if rank == 2 else (o + kk - 1 >= L)
        if too_large:
            rule = "<=" if rank == 2 else "<"
            raise InvalidValue(
                f"{op}: pool {name} {kk} too large relative to input {name} {L}: with output "
                f"size {o} it needs output_size + kernel_size - 1 {rule} input size"
            )
    if samples is None:
        samples = np.random.default_rng().random((planes, rank))
    else:
        samples = np.asarray(samples)
        if samples.shape != (planes, rank):
            raise InvalidValue(f"{op}: _random_samples must have shape (N, C, {rank}), got "
                               f"{samples.shape[:-1] if samples.ndim else ()} planes")
        if not np.all((samples >= 0) & (samples < 1)):
            raise InvalidValue(f"{op}: _random_samples must lie in [0, 1) (other values put "
                               f"windows outside the input)")
    omax = max(out) if out else 0
    starts = np.zeros((planes, 3, max(omax, 1)), np.int64)
    lift = 3 - rank
    for r in range(rank):
        starts[:, lift + r, : out[r]] = fractional_starts(in_size[r], out[r], k[r],
                                                          samples[:, r], dtype)
    return FractionalSpec(tuple(int(v) for v in in_size), out, k, starts)


# --------------------------------------------------------------------------------------------
# BlurPool (Zhang 2019): a binomial filter with padding, then a stride.

BINOMIAL = {1: (1,), 2: (1, 1), 3: (1, 2, 1), 4: (1, 3, 3, 1), 5: (1, 4, 6, 4, 1),
            6: (1, 5, 10, 10, 5, 1), 7: (1, 6, 15, 20, 15, 6, 1)}
PAD_TYPES = {"reflect": 0, "refl": 0, "repl": 1, "replicate": 1, "zero": 2}


def binomial_filter(filt_size: int) -> np.ndarray:
    """The 1-D taps ``a / sum(a)`` of Zhang's filter of size 1..7 (float64, exact: the sum is
    a power of two); the 2-D filter is their outer product."""
    a = np.array(BINOMIAL[filt_size], np.float64)
    return a / a.sum()


@dataclass(frozen=True)
class BlurSpec:
    """BlurPool per spatial dim: filter size ``filt``, ``stride``, padding ``pad_before`` =
    floor((filt-1)/2) and ``pad_after`` = ceil((filt-1)/2) of type ``mode`` (0 reflect,
    1 replicate, 2 zero); ``out = ceil(in / stride)``. ``filt = 1`` is plain subsampling."""

    in_size: tuple[int, ...]
    filt: int
    stride: tuple[int, ...]
    mode: int
    out_size: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.in_size)

    @property
    def pad_before(self) -> int:
        return 0 if self.filt == 1 else (self.filt - 1) // 2

    @property
    def pad_after(self) -> int:
        return 0 if self.filt == 1 else self.filt // 2


def blur_spec(in_size: Sequence[int], filt_size=4, stride=2, pad_type="reflect", *,
              op: str) -> BlurSpec:
    """Validate BlurPool arguments for spatial size ``in_size`` (1 or 2 dims). Reflection
    padding needs every input dim larger than the padding (as PyTorch's ReflectionPad)."""
    rank = len(in_size)
    if not _is_int(filt_size):
        raise InvalidType(f"{op}: filt_size must be an int from 1 to 7, got {filt_size!r}")
    if filt_size not in BINOMIAL:
        raise InvalidValue(f"{op}: filt_size must be an int from 1 to 7, got {filt_size!r}")
    s = normalize_tuple(stride, rank, "stride")
    _check_positive(s, "stride")
    if not isinstance(pad_type, str):
        raise InvalidType(f"{op}: pad_type must be 'reflect', 'repl' or 'zero', got "
                          f"{pad_type!r}")
    if pad_type not in PAD_TYPES:
        raise InvalidValue(f"{op}: pad_type must be 'reflect' (or 'refl'), 'repl' (or "
                           f"'replicate') or 'zero', got {pad_type!r}")
    mode = PAD_TYPES[pad_type]
    pad_after = 0 if filt_size == 1 else filt_size // 2
    if mode == 0 and any(L <= pad_after for L in in_size):
        raise InvalidValue(
            f"{op}: reflection padding of {pad_after} needs every spatial dim larger than "
            f"{pad_after}, got input spatial size {tuple(in_size)} (use pad_type='repl' or "
            f"'zero', or a smaller filt_size)"
        )
    out = tuple(-(-L // ss) for L, ss in zip(in_size, s, strict=True))
    return _interned(in_size, BlurSpec(tuple(int(v) for v in in_size), int(filt_size), s, mode,
                                       out))


# --------------------------------------------------------------------------------------------
# Max-unpooling (torch.nn.functional._unpool_output_size).


def unpool_output_size(in_size: Sequence[int], kernel_size, stride=None, padding=0,
                       output_size=None, *, op: str) -> tuple[int, ...]:
    """PyTorch's output size of max_unpool: ``(in - 1) * stride - 2 * padding + kernel_size``
    per dim, or ``output_size`` (spatial, or with N and C in front) if every dim lies strictly
    between that default minus and plus the stride."""
    rank = len(in_size)
    k = normalize_tuple(kernel_size, rank, "kernel_size")
    s = k if stride is None else normalize_tuple(stride, rank, "stride")
    p = normalize_tuple(padding, rank, "padding")
    _check_positive(k, "kernel_size")
    _check_positive(s, "stride")
    if any(v < 0 for v in p):
        raise InvalidValue(f"{op}: padding must be non-negative, got padding={p}")
    default = tuple((L - 1) * ss - 2 * pp + kk
                    for L, ss, pp, kk in zip(in_size, s, p, k, strict=True))
    if output_size is None:
        sizes = default
    else:
        if _is_int(output_size) or not isinstance(output_size, Sequence) or isinstance(
            output_size, str | bytes
        ):
            raise InvalidType(f"{op}: output_size must be a sequence of {rank} or {rank + 2} "
                              f"ints, got {output_size!r}")
        items = tuple(output_size)
        if len(items) == rank + 2:
            items = items[2:]
        if len(items) != rank:
            raise InvalidValue(f"{op}: output_size should be a sequence containing {rank} or "
                               f"{rank + 2} elements, but it has a length of {len(output_size)}")
        if not all(_is_int(v) for v in items):
            raise InvalidType(f"{op}: output_size must hold ints, got {output_size!r}")
        sizes = tuple(int(v) for v in items)
        for d, (o, dd, ss) in enumerate(zip(sizes, default, s, strict=True)):
            if not dd - ss < o < dd + ss:
                raise InvalidValue(f"{op}: invalid output_size {tuple(output_size)!r} (dim {d} "
                                   f"must be between {dd - ss} and {dd + ss}, exclusive)")
    if any(o < 0 for o in sizes):
        raise InvalidValue(f"{op}: output_size must contain non-negative spatial dimensions, "
                           f"got {sizes} (input {tuple(in_size)}, kernel_size={k}, stride={s}, "
                           f"padding={p})")
    _check_size(sizes, "output_size", output_size)
    return sizes


def polyphase_output_size(in_size: Sequence[int], stride: Sequence[int]) -> tuple[int, ...]:
    """Output size of adaptive polyphase sampling: ``ceil(L / s)`` (the input is first padded
    circularly to a multiple of the stride)."""
    return tuple(-(-L // s) for L, s in zip(in_size, stride, strict=True))

