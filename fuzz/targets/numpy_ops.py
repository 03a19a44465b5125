"""Targets for the NumPy ops: every function of ``poolkit.functional`` (PyTorch conventions)
and every op the ``poolkit`` package exports (Keras conventions), one target each, arguments
drawn from the signature (:mod:`fuzz.targets.calls`)."""

from __future__ import annotations

import poolkit
from poolkit import functional as F
from poolkit import ops

from .. import gen
from ..oracle import note, target
from .calls import KERAS_PARAMS, TORCH_PARAMS, Ctx, call_numpy, rank_of


def torch_style_input(rng, ctx: Ctx):
    """(N, C, *spatial) usually; unbatched (C, *spatial) or a wrong rank sometimes."""
    r = rng.random()
    if r < 0.8:
        shp = (*ctx.batch, *ctx.spatial)
    elif r < 0.95:
        shp = (ctx.batch[1], *ctx.spatial)
    else:
        shp = gen.shape(rng, int(rng.integers(0, 6)))
    return gen.array(rng, shp)


def keras_style_input(rng, ctx: Ctx):
    n, c = ctx.batch
    shp = (n, *ctx.spatial, c) if ctx.channels_last else (n, c, *ctx.spatial)
    if gen.chance(rng, 0.05):
        shp = gen.shape(rng, int(rng.integers(0, 6)))
    return gen.array(rng, shp)


def _functional(name):
    fn = getattr(F, name)

    def run(rng):
        ctx = Ctx(rank=rank_of(name), fn_name=name,
                  batch=(int(rng.integers(1, 3)), int(rng.integers(1, 4))))
        ctx.spatial = gen.shape(rng, ctx.rank, 1, 8 if ctx.rank < 3 else 6)
        call_numpy(rng, F, name, fn, lambda: torch_style_input(rng, ctx), TORCH_PARAMS, ctx)

    return run


def _keras_rank(rng, name: str) -> int:
    if name.startswith(("max_blur", "aps")):
        return 2
    if name.startswith("blur"):
        return int(rng.integers(1, 3))
    return int(rng.integers(1, 4))


def _keras_op(name):
    fn = getattr(ops, name)

    def run(rng):
        ctx = Ctx(rank=_keras_rank(rng, name), fn_name=name, channels_last=gen.chance(rng, 0.6),
                  batch=(int(rng.integers(1, 3)), int(rng.integers(1, 4))))
        ctx.spatial = gen.shape(rng, ctx.rank, 1, 8 if ctx.rank < 3 else 6)
        call_numpy(rng, ops, name, fn, lambda: keras_style_input(rng, ctx), KERAS_PARAMS, ctx)

    return run


def _output_shape(rng):
    ctx = Ctx(rank=int(rng.integers(1, 4)), channels_last=gen.chance(rng, 0.6),
              batch=(int(rng.integers(1, 3)), int(rng.integers(1, 4))))
    ctx.spatial = gen.shape(rng, ctx.rank, 1, 40)
    from .calls import draw_kwargs

    kw = draw_kwargs(rng, ops.output_shape, KERAS_PARAMS, ctx)
    shape = KERAS_PARAMS["input_shape"](rng, ctx)
    note("output_shape", shape, **kw)
    out = ops.output_shape(shape, **kw)
    if not isinstance(out, tuple):
        raise AssertionError(f"output_shape returned {type(out).__name__}")


for _name in F.__all__:
    target(f"functional.{_name}", "functional", covers=(f"functional.{_name}",))(
        _functional(_name))

for _name in poolkit.__all__:
    if _name == "__version__":
        continue
    if _name == "output_shape":
        target("ops.output_shape", "ops", covers=("poolkit.output_shape",))(_output_shape)
    else:
        target(f"ops.{_name}", "ops", covers=(f"poolkit.{_name}",))(_keras_op(_name))
