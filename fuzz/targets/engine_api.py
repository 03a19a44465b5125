"""Targets for ``poolkit.engine``'s public entry points. The engine is public and promises to
re-check what the front-ends check ("a spec it cannot honour is refused: no kernel ever reads
or writes outside an array"), so these build window specs directly, consistent or not: sizes
that disagree with the array or with each other, zero or hostile windows, strides, pads,
divisors, fractional starts outside the input, blur modes that do not exist."""

from __future__ import annotations

import numpy as np

from poolkit import engine
from poolkit.shapes import AdaptiveSpec, BlurSpec, FractionalSpec, PoolSpec, torch_output_size

from .. import gen
from ..oracle import expect_finite, fail, note, target
from .calls import SANE_P, hostile_indices


def _sizes(rng, rank, lo, hi, p=0.08):
    """A tuple of ``rank`` ints in [lo, hi], now and then with a hostile entry or length."""
    vals = [int(rng.integers(lo, hi + 1)) for _ in range(rank)]
    if gen.chance(rng, p):
        vals[int(rng.integers(rank))] = gen.pick(rng, (0, -1, 2**31, 2**40, 1.5, None, True,
                                                       np.int64(2), -2**31))
    if gen.chance(rng, p / 2):
        vals = vals[:-1] if gen.chance(rng, 0.5) else vals + [1]
    return tuple(vals)


def _consistent(rng) -> bool:
    return gen.chance(rng, 0.7)


def pool_spec(rng, in_size: tuple) -> PoolSpec:
    rank = len(in_size)
    k, s = _sizes(rng, rank, 1, 3), _sizes(rng, rank, 1, 3)
    d, pb, pa = _sizes(rng, rank, 1, 2), _sizes(rng, rank, 0, 2), _sizes(rng, rank, 0, 2)
    try:
        out = tuple(max(0, torch_output_size(L + a - b, kk, ss, b, dd))
                    for L, kk, ss, dd, b, a in zip(in_size, k, s, d, pb, pa, strict=True))
    except (TypeError, ValueError, ZeroDivisionError):
        out = _sizes(rng, rank, 0, 6)
    if not _consistent(rng):
        out = _sizes(rng, rank, 0, 9)
    divisor = 0 if gen.chance(rng, 0.8) else gen.pick(rng, (1, 3, -1, 2**40, 0.5))
    return PoolSpec(in_size, k, s, d, pb, pa, out, count_pad=gen.chance(rng, 0.3),
                    divisor=divisor)


def adaptive_spec(rng, in_size: tuple) -> AdaptiveSpec:
    return AdaptiveSpec(in_size, _sizes(rng, len(in_size), 0, 9))


def fractional_spec(rng, in_size: tuple, planes: int) -> FractionalSpec:
    rank = len(in_size)
    window = _sizes(rng, rank, 1, 3)
    out = _sizes(rng, rank, 0, 5)
    try:
        width = max(out) if out else 0
        hi = [max(0, int(L) - int(w)) for L, w in zip(in_size, window, strict=False)]
        starts = np.zeros((planes, 3, int(width)), np.int64)
        for r, h in enumerate(hi[:rank]):
            starts[:, 3 - rank + r, :] = rng.integers(0, h + 1, size=(planes, int(width)))
    except (TypeError, ValueError, OverflowError, MemoryError):
        starts = np.zeros((planes, 3, 2), np.int64)
    if not _consistent(rng) and starts.size:
        starts.flat[int(rng.integers(starts.size))] = gen.pick(rng, (-1, 100, 2**40, -2**63))
    if gen.chance(rng, 0.05):
        starts = gen.pick(rng, (starts.astype(np.int32), starts[:, :2], starts[:1], None))
    return FractionalSpec(in_size, out, window, starts)


def blur_spec(rng, in_size: tuple) -> BlurSpec:
    rank = len(in_size)
    stride = _sizes(rng, rank, 1, 3)
    try:
        out = tuple(-(-int(L) // int(s)) for L, s in zip(in_size, stride, strict=True))
    except (TypeError, ValueError, ZeroDivisionError):
        out = _sizes(rng, rank, 0, 6)
    if not _consistent(rng):
        out = _sizes(rng, rank, 0, 9)
    filt = int(rng.integers(1, 8)) if _consistent(rng) else gen.pick(rng, (0, 8, -1, 2**31))
    mode = int(rng.integers(0, 3)) if _consistent(rng) else gen.pick(rng, (3, -1, 1.0))
    return BlurSpec(in_size, filt, stride, mode, out)


def problem(rng, rank=None, floats=False):
    """(x, spatial size, channels_last): a batched array and its layout."""
    rank = rank or int(rng.integers(1, 4))
    cl = gen.chance(rng, 0.4)
    n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    sp = gen.shape(rng, rank, 1, 7 if rank < 3 else 5, p_zero=0.02)
    x = gen.array(rng, (n, *sp, c) if cl else (n, c, *sp), floats_only=floats)
    return x, sp, cl


def _spec_for(rng, x, sp, cl, mode):
    planes = x.shape[0] * (x.shape[-1] if cl else x.shape[1])
    in_size = sp if _consistent(rng) or _consistent(rng) else _sizes(rng, len(sp), 1, 8)
    kind = {"avg": ("pool", "adaptive"), "lp": ("pool",), "blur": ("blur",)}.get(
        mode, ("pool", "adaptive", "fractional"))
    kind = gen.pick(rng, kind) if _consistent(rng) else gen.pick(
        rng, ("pool", "adaptive", "fractional", "blur"))
    if kind == "pool":
        return pool_spec(rng, in_size)
    if kind == "adaptive":
        return adaptive_spec(rng, in_size)
    if kind == "fractional":
        return fractional_spec(rng, in_size, planes)
    return blur_spec(rng, in_size[:2])


def _mode(rng):
    return gen.maybe(rng, lambda: gen.pick(rng, engine.MODES), 0.05)


def _grad(rng, out, x):
    out = out[0] if isinstance(out, tuple) else out
    shp = out.shape if _consistent(rng) or _consistent(rng) else gen.shape(rng, out.ndim)
    dt = x.dtype if x.dtype.kind == "f" and _consistent(rng) else gen.dtype(rng)
    return gen.layout(rng, gen.values(rng, shp, dt))


@target("engine.pool", "engine", covers=("engine.pool", "engine.pool_backward",
                                         "engine.output_shape", "engine.check_grad"))
def _pool(rng):
    x, sp, cl = problem(rng)
    mode = _mode(rng)
    spec = _spec_for(rng, x, sp, cl, mode)
    p = gen.float_arg(rng, SANE_P) if mode == "lp" else None
    scale = 1.0 if _consistent(rng) else gen.pick(rng, (0.0, -1.0, 4.0, np.nan, 1e300))
    ri = gen.chance(rng, 0.3) and mode in ("max", "min")
    note("pool", x, spec, mode, channels_last=cl, return_indices=ri, p=p, scale=scale)
    out = engine.pool(x, spec, mode, channels_last=cl, return_indices=ri, p=p, scale=scale)
    sane = p in SANE_P + (None,) and scale in (1.0, 4.0)
    if sane:
        expect_finite(out, x)
    if engine.output_shape(x.shape, spec, cl) != (out[0] if ri else out).shape:
        fail("wrong", "engine.output_shape disagrees with the shape pool returns")
    g = _grad(rng, out, x)
    note("pool_backward", g)
    gx = engine.pool_backward(g, x, spec, mode, channels_last=cl, p=p, scale=scale)
    if sane:
        expect_finite(gx, x, g)


@target("engine.max_blur", "engine", covers=("engine.max_blur", "engine.max_blur_backward"))
def _max_blur(rng):
    x, sp, cl = problem(rng, rank=int(rng.integers(1, 3)))
    ms = pool_spec(rng, sp)
    bs = blur_spec(rng, ms.out_size[:2] if _consistent(rng) else sp)
    note("max_blur", x, ms, bs, channels_last=cl)
    out = engine.max_blur(x, ms, bs, channels_last=cl)
    expect_finite(out, x)
    g = _grad(rng, out, x)
    note("max_blur_backward", g)
    expect_finite(engine.max_blur_backward(g, x, ms, bs, channels_last=cl), x, g)


@target("engine.unpool", "engine", covers=("engine.unpool", "engine.unpool_backward"))
def _unpool(rng):
    x, sp, cl = problem(rng)
    out_size = _sizes(rng, len(sp), 1, 9)
    n_out = int(np.prod(out_size)) if all(isinstance(v, int) and v > 0 for v in out_size) else 4
    idx = rng.integers(0, max(n_out, 1), size=x.shape)
    if not _consistent(rng):
        idx = hostile_indices(rng, idx)
    note("unpool", x, idx, out_size, channels_last=cl)
    out = engine.unpool(x, idx, out_size, channels_last=cl)
    expect_finite(out, x)
    g = _grad(rng, out, x)
    note("unpool_backward", g)
    expect_finite(engine.unpool_backward(g, x, idx, channels_last=cl), g)


@target("engine.polyphase", "engine", covers=("engine.polyphase", "engine.polyphase_backward"))
def _polyphase(rng):
    x, sp, cl = problem(rng, rank=2 if _consistent(rng) else None)
    stride = _sizes(rng, 2, 1, 3)
    norm = gen.float_arg(rng, SANE_P)
    note("polyphase", x, stride, norm, channels_last=cl)
    out, _ = engine.polyphase(x, stride, norm, channels_last=cl)
    expect_finite(out, x)
    g = _grad(rng, out, x)
    note("polyphase_backward", g)
    expect_finite(engine.polyphase_backward(g, x, stride, norm, channels_last=cl), x, g)


@target("engine.check_input", "engine", covers=("engine.check_input",))
def _check_input(rng):
    r = rng.random()
    x = gen.array(rng, gen.shape(rng, int(rng.integers(0, 5)))) if r < 0.7 else \
        gen.pick(rng, ([1, 2], [[1], [2, 3]], "abc", None, 3, [[1.0, 2.0]], (np.float32(1),)))
    mode = _mode(rng)
    note("check_input", x, mode)
    out = engine.check_input(x, mode, op="fuzz")
    if not isinstance(out, np.ndarray) or not out.dtype.isnative:
        fail("wrong", f"check_input returned {type(out).__name__} {getattr(out, 'dtype', '')}")
