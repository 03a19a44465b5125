"""Argument generators: mostly valid-looking values, often adversarial ones.

Every generator takes the case's ``rng``. Arrays stay small (a few thousand elements at most);
adversarial *parameters* may be huge and must be refused, not attempted.
"""

from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["pick", "chance", "adversarial", "int_arg", "ints_arg", "float_arg", "bool_arg",
           "shape", "dtype", "values", "layout", "array", "maybe", "P_BAD", "JSON_BAD",
           "bad_rate", "hostility"]

P_BAD = 0.08  # how often a parameter is adversarial (see :func:`hostility`)
_rate = [P_BAD]


def bad_rate() -> float:
    return _rate[-1]


@contextlib.contextmanager
def hostility(p: float):
    """Draw parameters with adversarial probability ``p`` inside the block (a model's layers
    are mostly valid, so that the model gets to train)."""
    _rate.append(p)
    try:
        yield
    finally:
        _rate.pop()

HUGE = (2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63 - 1, 2**64, 10**18, -2**31, -2**63)
BAD = (
    0, -1, -2, *HUGE, 1.5, 2.0, 0.0, -0.5, 1e300, float("nan"), float("inf"), float("-inf"),
    True, False, None, "2", "", "same", b"\x00", [], (), [2], (2,), ((2,),), (2, 2, 2, 2),
    (None, 2), (2, "2"), (2, 1.5), (-1, 2), {"a": 1}, {2}, object(), 1 + 2j, Ellipsis,
    np.int64(2), np.int8(-3), np.uint64(2**63), np.float32(2.0), np.float64("nan"),
    np.bool_(True), np.array(2), np.array([2, 2]), np.array([[2]]), np.array(2.5),
)

# Hostile JSON values (for configs and request bodies).
JSON_BAD = (None, True, 0, -1, 2**31, 2**63, 10**30, 10**400, 1.5, 1e308, -1e308, "",
            "x" * 300, "inf", "NaN", "../../etc/passwd", [], [None], [[[]]], {},
            {"class_name": "Dense"}, {"__class__": "os.system"}, [2**40] * 3, [0, 0], [-1, 28])


def pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def chance(rng, p: float) -> bool:
    return bool(rng.random() < p)


def adversarial(rng):
    """One hostile value of any type (ints that overflow, floats, NaN, bools, None, strings,
    containers, NumPy scalars and arrays, objects)."""
    return pick(rng, BAD)


def maybe(rng, make, p: float | None = None):
    """``make()``, or an adversarial value with probability ``p`` (default: the current
    rate)."""
    return adversarial(rng) if chance(rng, bad_rate() if p is None else p) else make()


def int_arg(rng, lo: int, hi: int, p: float | None = None):
    return maybe(rng, lambda: int(rng.integers(lo, hi + 1)), p)


def ints_arg(rng, rank: int, lo: int, hi: int, p: float | None = None):
    """An int or a per-dim tuple of ``rank`` ints in [lo, hi]; sometimes a list, a wrong
    length, NumPy ints, or one hostile element."""
    if chance(rng, bad_rate() if p is None else p):
        r = rng.random()
        if r < 0.4:
            return adversarial(rng)
        vals = [int(rng.integers(lo, hi + 1)) for _ in range(rank)]
        if r < 0.6:
            vals[int(rng.integers(rank))] = adversarial(rng)
            return tuple(vals)
        if r < 0.8:
            return tuple(vals + [1] * int(rng.integers(1, 3))) if chance(rng, 0.5) \
                else tuple(vals[:-1])
        return pick(rng, (list, np.array, lambda v: tuple(np.int64(x) for x in v)))(vals)
    if chance(rng, 0.4):
        return int(rng.integers(lo, hi + 1))
    return tuple(int(rng.integers(lo, hi + 1)) for _ in range(rank))


def float_arg(rng, choices, p: float | None = None):
    return maybe(rng, lambda: pick(rng, choices), p)


def bool_arg(rng, p: float | None = None):
    return maybe(rng, lambda: chance(rng, 0.5), p)


def shape(rng, rank: int, lo: int = 1, hi: int = 7, p_zero: float = 0.03) -> tuple:
    return tuple(0 if chance(rng, p_zero) else int(rng.integers(lo, hi + 1))
                 for _ in range(rank))


_DTYPES = (
    (np.float32, 0.38), (np.float64, 0.2), (np.float16, 0.08), (np.int64, 0.06),
    (np.int32, 0.04), (np.int8, 0.03), (np.uint8, 0.04), (np.uint64, 0.03), (np.int16, 0.02),
    (np.bool_, 0.02), (np.complex64, 0.02), (np.longdouble, 0.015), (object, 0.015),
    (">f4", 0.015), (">i8", 0.01), ("U3", 0.005), ([("a", "f4")], 0.005), ("M8[s]", 0.005),
)


def dtype(rng, floats_only: bool = False) -> np.dtype:
    if floats_only:
        return np.dtype(pick(rng, (np.float32, np.float32, np.float64, np.float16)))
    w = np.array([p for _, p in _DTYPES])
    return np.dtype(_DTYPES[int(rng.choice(len(_DTYPES), p=w / w.sum()))][0])


def values(rng, shp: tuple, dt: np.dtype) -> np.ndarray:
    """Values of ``shp``/``dt``: modest numbers (finite, |v| <= 8), ties, or hostile ones
    (NaN, +-inf, the dtype's extremes)."""
    n = int(np.prod(shp, dtype=np.int64))
    kind = pick(rng, ("modest", "modest", "modest", "ties", "special", "extreme"))
    if kind == "ties":
        v = rng.integers(-2, 3, size=n).astype(np.float64)
    else:
        v = rng.uniform(-8, 8, size=n)
    if dt.kind == "f" and kind == "special":
        mask = rng.random(n) < 0.3
        v[mask] = rng.choice([np.nan, np.inf, -np.inf, -0.0], size=int(mask.sum()))
    if kind == "extreme":
        if dt.kind in "iu":
            info = np.iinfo(dt)
            return rng.choice([info.min, info.max, 0], size=n).astype(dt).reshape(shp)
        if dt.kind == "f":
            big = float(np.finfo(dt).max)
            v = rng.choice([big, -big, float(np.finfo(dt).tiny), 0.0], size=n)
    if dt.kind == "u":
        v = np.abs(v)
    if dt.kind == "O":
        return np.array(list(v) + [None], dtype=object)[:n].reshape(shp)
    if dt.kind == "V":
        return np.zeros(shp, dt)
    if dt.kind == "M":
        return v.astype(np.int64).astype(dt).reshape(shp)
    with np.errstate(all="ignore"):
        return v.astype(dt).reshape(shp)


LAYOUTS = ("c", "c", "c", "fortran", "reversed", "strided", "broadcast", "readonly",
           "channels_last")


def layout(rng, a: np.ndarray, kind: str | None = None) -> np.ndarray:
    """The same values with another memory layout (or a read-only / stride-0 view)."""
    kind = kind or pick(rng, LAYOUTS)
    if a.ndim == 0 or a.size == 0 or kind == "c":
        return a
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "reversed":
        return np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    if kind == "strided":
        big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
        big[tuple(slice(None, None, 2) for _ in a.shape)] = a
        return big[tuple(slice(None, None, 2) for _ in a.shape)]
    if kind == "broadcast":  # stride 0 along the first axis: every row is row 0
        return np.broadcast_to(a[:1], a.shape)
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    perm = (0, *range(2, a.ndim), 1)  # channels-first view of channels-last memory
    back = (0, a.ndim - 1, *range(1, a.ndim - 1))
    return np.ascontiguousarray(a.transpose(perm)).transpose(back)


def array(rng, shp: tuple, dt=None, *, floats_only: bool = False) -> np.ndarray:
    dt = np.dtype(dt) if dt is not None else dtype(rng, floats_only)
    return layout(rng, values(rng, shp, dt))
