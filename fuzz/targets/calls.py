"""Signature-driven calls: arguments drawn by parameter name, so every public op is fuzzed
from its signature (a new op is covered as soon as it exists; a new parameter name needs a
generator here, which the coverage test asks for).

Two conventions share the generators: PyTorch's (``poolkit.functional``, ``poolkit.torch``:
``input`` (N, C, *spatial) or unbatched, ``kernel_size``, ``stride``, ``padding`` ints) and
Keras's (the top-level ops: ``x`` (N, *spatial, C) or channels-first, ``pool_size``,
``strides``, ``padding`` 'valid'/'same'/pairs). A backward op gets a ``grad_output`` shaped like
its forward op's output (sometimes not).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np

from .. import gen
from ..oracle import expect_finite, note

__all__ = ["Ctx", "TORCH_PARAMS", "KERAS_PARAMS", "draw_kwargs", "rank_of", "forward_of",
           "unknown_params", "SANE_P", "finite_expected", "call_numpy"]

# Norms for which a pooled finite input has a finite result (a huge or tiny p overflows
# |x|^p or its root legitimately).
SANE_P = (1, 2, 3, 4, 1.5, 0.5, 2.0, math.inf)


@dataclass
class Ctx:
    """What the generators of one call may look at."""

    rank: int
    spatial: tuple = ()
    batch: tuple = (1, 1)  # (N, C)
    channels_last: bool = False
    fn_name: str = ""
    extra: dict = field(default_factory=dict)


def _ks(rng, c):
    return gen.ints_arg(rng, c.rank, 1, 3)


def _stride(rng, c):
    return None if gen.chance(rng, 0.3) else gen.ints_arg(rng, c.rank, 1, 3)


def _norm(rng, c):
    return gen.float_arg(rng, SANE_P)


def _bool(rng, c):
    return gen.bool_arg(rng)


def _output_size(rng, c):
    if c.fn_name.startswith(("fractional", "max_unpool")) and gen.chance(rng, 0.5):
        return None
    if c.fn_name.startswith("max_unpool"):  # near the default: (in-1)*stride - 2p + k
        return tuple(int(s * 2 + rng.integers(-1, 2)) for s in c.spatial) \
            if not gen.chance(rng, gen.bad_rate()) else gen.adversarial(rng)
    if c.fn_name.startswith("adaptive") and gen.chance(rng, 0.1):
        return tuple(None if gen.chance(rng, 0.5) else int(rng.integers(1, 5))
                     for _ in range(c.rank))
    return gen.ints_arg(rng, c.rank, 1, 4)


def _output_ratio(rng, c):
    if gen.chance(rng, 0.5):
        return None
    return gen.float_arg(rng, (0.5, 0.7, 0.9, (0.5,) * c.rank, (0.6, 0.8, 0.5)[:c.rank], 1.0))


def _samples(rng, c):
    if gen.chance(rng, 0.6):
        return None
    n, ch = c.batch
    shp = (n, ch, c.rank)
    if gen.chance(rng, gen.bad_rate()):
        shp = gen.pick(rng, ((n, ch, c.rank + 1), (ch, c.rank), (n + 1, ch, c.rank), (0,)))
    s = rng.random(shp)
    if gen.chance(rng, gen.bad_rate()):
        s = s * gen.pick(rng, (2.0, -1.0, np.nan, np.inf))
    return s.astype(gen.pick(rng, (np.float32, np.float64, np.float16)))


def _pad_type(rng, c):
    return gen.maybe(rng, lambda: gen.pick(rng, ("reflect", "refl", "repl", "replicate",
                                                  "zero", "circular", "REFLECT")))


def _divisor(rng, c):
    return None if gen.chance(rng, 0.6) else gen.int_arg(rng, 1, 5)


def _keras_padding(rng, c):
    r = rng.random()
    if r < 0.75:
        return gen.pick(rng, ("valid", "same", "VALID", "Same"))
    if r < 0.9:
        return tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(c.rank))
    return gen.adversarial(rng)


def _data_format(rng, c):
    return "channels_last" if c.channels_last else "channels_first"


def _input_shape(rng, c):
    shp = (c.batch[0], *c.spatial, c.batch[1]) if c.channels_last else (*c.batch, *c.spatial)
    if gen.chance(rng, 0.1):
        return tuple(None if gen.chance(rng, 0.3) else s for s in shp)
    return gen.maybe(rng, lambda: shp)


def _kind(rng, c):
    from poolkit.kinds import POOL_KINDS

    return gen.maybe(rng, lambda: gen.pick(rng, POOL_KINDS))


TORCH_PARAMS = {
    "kernel_size": _ks,
    "stride": _stride,
    "padding": lambda rng, c: gen.ints_arg(rng, c.rank, 0, 1),
    "dilation": lambda rng, c: gen.ints_arg(rng, c.rank, 1, 2),
    "ceil_mode": _bool,
    "return_indices": _bool,
    "count_include_pad": _bool,
    "divisor_override": _divisor,
    "output_size": _output_size,
    "output_ratio": _output_ratio,
    "_random_samples": _samples,
    "norm_type": _norm,
    "norm": _norm,
    "filt_size": lambda rng, c: gen.int_arg(rng, 1, 7),
    "pad_type": _pad_type,
}

KERAS_PARAMS = {
    **TORCH_PARAMS,
    "pool_size": _ks,
    "strides": _stride,
    "padding": _keras_padding,
    "data_format": _data_format,
    "p": _norm,
    "keepdims": _bool,
    "input_shape": _input_shape,
    "kind": _kind,
}

# Filled by the caller, not drawn: the arrays.
ARRAYS = ("input", "x", "grad_output", "indices")


def _params(fn) -> dict:
    """``fn``'s named parameters (not ``*args``/``**kwargs``) but the arrays."""
    return {n: p for n, p in inspect.signature(fn).parameters.items()
            if n not in ARRAYS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def unknown_params(fn, table: dict) -> list[str]:
    """Parameters of ``fn`` no generator draws (the coverage test wants none)."""
    return [n for n in _params(fn) if n not in table]


def draw_kwargs(rng, fn, table: dict, ctx: Ctx, p_default: float = 0.25) -> dict:
    """Keyword arguments for every parameter of ``fn`` but the arrays; an optional one is
    left at its default with probability ``p_default``."""
    kw = {}
    for name, prm in _params(fn).items():
        if prm.default is not inspect.Parameter.empty and gen.chance(rng, p_default):
            continue
        kw[name] = table[name](rng, ctx)
    return kw


def rank_of(name: str) -> int:
    """The spatial rank a PyTorch-style op's name says (max_pool2d_backward -> 2)."""
    base = name.removesuffix("_backward")
    return int(base[-2]) if base[-1] == "d" and base[-2].isdigit() else 2


def forward_of(module, name: str):
    return getattr(module, name.removesuffix("_backward"))


def finite_expected(kw: dict) -> bool:
    """Whether a finite input must give a finite result with these arguments: a sane norm,
    and no huge float (a ReLU slope of 1e300 overflows legitimately)."""
    return all(kw.get(k, 2) in SANE_P for k in ("norm_type", "p", "norm")) and not any(
        isinstance(v, float | np.floating) and not abs(v) <= 1e4 and v not in SANE_P
        for v in kw.values())


def grad_for(rng, out, like: np.ndarray):
    """A grad_output for forward output ``out`` (an array, or a tuple whose first item is the
    output): usually its shape and ``like``'s float dtype, sometimes not."""
    out = out[0] if isinstance(out, tuple) else out
    shp = tuple(getattr(out, "shape", ()))
    dt = like.dtype if like.dtype.kind == "f" else np.dtype(np.float32)
    if gen.chance(rng, gen.bad_rate()):
        r = rng.random()
        if r < 0.4 and shp:
            shp = shp[:-1] + (shp[-1] + 1,)
        elif r < 0.6:
            shp = shp[1:]
        else:
            dt = gen.dtype(rng)
    return gen.layout(rng, gen.values(rng, shp, dt))


def call_numpy(rng, module, name: str, fn, make_input, table: dict, ctx: Ctx):
    """Draw ``fn``'s arguments, call it (a backward op: with a grad_output for what its
    forward op returns for the same arguments) and check a finite result of finite input."""
    kw = draw_kwargs(rng, fn, table, ctx)
    params = inspect.signature(fn).parameters
    x = make_input()
    arrays = {}
    if "indices" in params:
        x, arrays["indices"] = unpool_inputs(rng, module, name, x, kw, ctx)
    if name.endswith("_backward"):
        forward = forward_of(module, name)
        fkw = {k: v for k, v in kw.items() if k in inspect.signature(forward).parameters}
        try:
            out = forward(x, **arrays, **fkw)
        except (ValueError, TypeError):
            out = x
        note(forward.__name__, x, **arrays, **fkw)
        g = grad_for(rng, out, x)
        note(name, g, x, **arrays, **kw)
        res = fn(g, x, **arrays, **kw)
        ins = (g, x)
    else:
        note(name, x, **arrays, **kw)
        res = fn(x, **arrays, **kw)
        ins = (x,)
    if finite_expected(kw):
        expect_finite(res, *ins)
    return res


def unpool_inputs(rng, module, name, x, kw, ctx):
    """(input, indices) for max_unpool: a max pooling's output and indices with the same
    window, usually; else random (or hostile) indices."""
    rank = ctx.rank
    pool = getattr(module, f"max_pool{rank}d")
    pkw = {k: kw[k] for k in ("kernel_size", "stride", "padding") if k in kw}
    if not gen.chance(rng, 0.25):
        try:
            vals, idx = pool(x, **pkw, return_indices=True)
            note(pool.__name__, x, **pkw, return_indices=True)
            if not gen.chance(rng, gen.bad_rate()):
                return vals, idx
            return vals, hostile_indices(rng, idx)
        except (ValueError, TypeError):
            pass
    n_in = int(np.prod(x.shape[-rank:])) if x.ndim >= rank else 4
    idx = rng.integers(-1, n_in * 4 + 2, size=x.shape)
    return x, hostile_indices(rng, idx) if gen.chance(rng, 0.3) else idx


def hostile_indices(rng, idx):
    r = rng.random()
    if r < 0.25:
        return idx.astype(gen.pick(rng, (np.int32, np.float64, np.uint64, np.int8)))
    if r < 0.5:
        bad = idx.copy()
        if bad.size:
            bad.flat[int(rng.integers(bad.size))] = gen.pick(rng, (-1, 2**31, 2**62, -2**63))
        return bad
    if r < 0.75:
        return idx[..., :-1] if idx.ndim else idx
    return gen.layout(rng, idx)
