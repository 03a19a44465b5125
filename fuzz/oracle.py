"""Targets, the case oracle and the call notes: what one fuzz case is and how it is judged.

A target is a function ``(rng) -> None`` registered with :func:`target`: it draws its arguments
from ``rng`` (a NumPy Generator seeded from the target's name and the case's seed, so a case is
replayable), notes them with :func:`note` and calls the API. It judges its own results with
:func:`expect_finite` / :func:`fail`; :func:`run_case` judges how it ended:

- returned normally: ``returned``;
- raised ValueError or TypeError (poolkit's InvalidValue / InvalidType are subclasses), or an
  exception the target documents (``allowed``): ``raised``;
- anything else (another exception, MemoryError included, a :class:`Finding` raised by the
  target): a finding. Signals and hangs are judged by the runner, which sees the worker die.
"""

from __future__ import annotations

import os
import traceback
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Target", "TARGETS", "target", "note", "notes", "Finding", "Refused", "fail",
           "expect_finite", "all_finite", "case_rng", "run_case", "select"]


@dataclass(frozen=True)
class Target:
    name: str
    group: str
    fn: Callable[[np.random.Generator], None]
    allowed: tuple[type[BaseException], ...] = (ValueError, TypeError)
    hidden: bool = False  # only run when named explicitly (the runner's self-test targets)
    covers: tuple[str, ...] = ()  # public API names this target calls (the coverage test)
    weight: int = 1  # cases per round (a whole group behind one target gets more)


TARGETS: dict[str, Target] = {}


def target(name: str, group: str, *, allowed=(), strict=False, hidden=False, covers=(),
           weight: int = 1):
    """Register ``fn`` as the target ``name`` of ``group``; ``allowed``: exception types the
    API documents for it besides ValueError and TypeError (``strict``: instead of them)."""

    def register(fn):
        if name in TARGETS:
            raise RuntimeError(f"fuzz target {name!r} registered twice")
        ok = tuple(allowed) if strict else (ValueError, TypeError, *allowed)
        TARGETS[name] = Target(name, group, fn, ok, hidden, tuple(covers), weight)
        return fn

    return register


def select(names: str | None = None) -> list[Target]:
    """Targets by comma-separated names or group names or name prefixes ending in '*'; all
    visible ones by default."""
    from .targets import load_all

    load_all()

    if not names:
        return [t for t in TARGETS.values() if not t.hidden]
    out: dict[str, Target] = {}
    for word in (w.strip() for w in names.split(",")):
        if not word:
            continue
        hits = [t for t in TARGETS.values()
                if t.name == word or t.group == word
                or (word.endswith("*") and t.name.startswith(word[:-1]))]
        if word != "_selftest*":
            hits = [t for t in hits if not t.hidden or t.name == word]
        if not hits:
            raise SystemExit(f"fuzz: no target or group named {word!r}")
        out.update((t.name, t) for t in hits)
    return list(out.values())


# --------------------------------------------------------------------------------------------
# Notes: a readable account of the case's call.

_NOTES: list[str] = []


def short(value, depth: int = 0) -> str:
    """A short repr: arrays and tensors by dtype, shape and layout, long things cut."""
    if isinstance(value, np.ndarray):
        flags = []
        if not value.flags.c_contiguous:
            flags.append("F" if value.flags.f_contiguous else
                         "strides=" + ",".join(map(str, value.strides)))
        if not value.flags.writeable:
            flags.append("ro")
        if value.size and value.dtype.kind in "fc":
            with np.errstate(all="ignore"):
                if not np.isfinite(value).all():
                    flags.append("nonfinite")
        return f"array({value.dtype.str}, {value.shape}{''.join(', ' + f for f in flags)})"
    if type(value).__module__ == "torch" and hasattr(value, "stride"):
        return (f"tensor({str(value.dtype)[6:]}, {tuple(value.shape)}, "
                f"strides={value.stride()}{', grad' if value.requires_grad else ''})")
    if isinstance(value, tuple | list) and depth < 2:
        inner = ", ".join(short(v, depth + 1) for v in value[:8])
        more = ", ..." if len(value) > 8 else ""
        if isinstance(value, list):
            return f"[{inner}{more}]"
        return f"({inner}{more}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict) and depth < 2:
        return "{" + ", ".join(f"{k!r}: {short(v, depth + 1)}" for k, v in
                               list(value.items())[:12]) + "}"
    if callable(getattr(value, "get_config", None)) and not isinstance(value, type):
        try:
            return f"{type(value).__name__}({short(value.get_config(), depth + 1)})"
        except Exception:  # noqa: BLE001 - a note must never fail the case
            pass
    text = repr(value)
    return text if len(text) <= 160 else text[:150] + f"...<{len(text)} chars>"


def note(what: str, *args, **kwargs) -> None:
    """Record one call (or fact) of the case: ``note("max_pool2d", x, k=2)``."""
    parts = [short(a) for a in args] + [f"{k}={short(v)}" for k, v in kwargs.items()]
    _NOTES.append(f"{what}({', '.join(parts)})")


def notes() -> list[str]:
    return list(_NOTES)


# --------------------------------------------------------------------------------------------
# Judgements a target makes itself.


class Finding(Exception):
    """Raised by a target for a wrong result (kind: 'nonfinite', 'wrong', ...)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Refused(Exception):
    """Raised by a target for a documented refusal that its ``allowed`` types cannot tell
    apart from a bug by type alone (e.g. an IndexError raised inside torch's own code)."""


def fail(kind: str, message: str):
    raise Finding(kind, message)


def _float_arrays(value):
    """The numeric arrays in ``value`` (arrays, tensors, nested tuples/lists/dicts)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "fciu":  # integers too: their size counts for "modest"
            yield value
    elif type(value).__module__ == "torch" and hasattr(value, "is_floating_point"):
        if value.is_complex():  # |z| is finite exactly when both parts are
            yield value.detach().abs().float().numpy()
        else:
            yield value.detach().double().numpy()
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _float_arrays(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _float_arrays(v)
    elif isinstance(value, float):
        yield np.array([value])


# Inputs within this bound must give finite results: sums, means and norms of a few thousand
# such values stay far from every float type's range (float16's is 65504); values near a
# type's maximum may overflow legitimately (the mean of two float32 maxima is inf).
MODEST = 1e4


def all_finite(*values, bound: float = np.inf) -> bool:
    with np.errstate(all="ignore"):
        return all(bool((np.abs(a) <= bound).all()) for v in values for a in _float_arrays(v))


def expect_finite(result, *inputs, what: str = "result") -> None:
    """A finding if every float in ``inputs`` is finite and modest (|v| <= MODEST) but one
    in ``result`` is not finite. Empty inputs are exempt: torch's mean of nothing is NaN."""
    empty = any(a.size == 0 for v in inputs for a in _float_arrays(v))  # a mean of nothing
    if not empty and all_finite(*inputs, bound=MODEST) and not all_finite(result):
        fail("nonfinite", f"{what} has non-finite values for finite input")


# --------------------------------------------------------------------------------------------
# Running one case.


def case_rng(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(name.encode()), int(seed)])


_HERE = os.path.dirname(os.path.abspath(__file__))


def _frames(tb, n: int = 4) -> list[str]:
    frames = traceback.extract_tb(tb)
    return [f"{_relative(f.filename)}:{f.lineno} in {f.name}" for f in frames[-n:]]


def _relative(path: str) -> str:
    for marker in (os.sep + "site-packages" + os.sep, os.sep + "src" + os.sep):
        if marker in path:
            return path.split(marker, 1)[1]
    return os.path.relpath(path, os.path.dirname(_HERE)) if path.startswith("/") else path


def _where(frames: list[str]) -> str:
    """The innermost frame in poolkit (else the innermost): what groups equal findings."""
    for f in reversed(frames):
        if f.startswith("poolkit"):
            return f
    own = [f for f in frames if not f.startswith("fuzz/oracle.py")]
    return (own or frames or ["?"])[-1]


def run_case(t: Target, seed: int, *, with_traceback: bool = False) -> dict:
    """Run one case in this process and judge it: {"status", and for findings "kind",
    "error", "message", "frames", "where"; "notes" always}."""
    _NOTES.clear()
    rng = case_rng(t.name, seed)
    out: dict = {"status": "returned"}
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            t.fn(rng)
    except Finding as e:
        out = {"status": "finding", "kind": e.kind, "error": "Finding", "message": str(e)}
        tb = e.__traceback__
    except (Refused, *t.allowed):
        out = {"status": "raised"}
        tb = None
    except BaseException as e:  # noqa: BLE001 - every other exception is what we look for
        if isinstance(e, KeyboardInterrupt) and with_traceback:
            raise
        out = {"status": "finding", "kind": "exception", "error": type(e).__qualname__,
               "message": _cut(str(e))}
        tb = e.__traceback__
    else:
        tb = None
    if out["status"] == "finding":
        out["frames"] = _frames(tb)
        out["where"] = _where(out["frames"])
        if with_traceback:
            out["traceback"] = "".join(traceback.format_tb(tb))
    out["notes"] = notes()[-12:]
    return out


def _cut(text: str, n: int = 400) -> str:
    return text if len(text) <= n else text[:n] + "..."
