"""Targets for ``poolkit.torch``: every function of ``poolkit.torch.functional`` and every
module of ``poolkit.torch.nn`` on random tensors (float32/64, float16, bfloat16, integers,
bool; contiguous, channels_last, transposed, sliced, expanded; with and without
requires_grad), and ``patch``/``unpatch`` of a torch model. poolkit falls back to torch for
what it does not compute and for arguments it rejects (docs/torch.md), so torch's own error
is a documented outcome here, besides ValueError and TypeError: an exception that torch's own
function raises too for the same call (poolkit's own ops: a RuntimeError of their torch
reference, and of autograd)."""

from __future__ import annotations

import contextlib
import inspect

import numpy as np
import torch

import poolkit.torch as ptorch
from poolkit.torch import functional as TF
from poolkit.torch import nn as TN

from .. import gen
from ..oracle import Refused, expect_finite, fail, note, target
from .calls import TORCH_PARAMS, Ctx, draw_kwargs, finite_expected, rank_of

torch.set_num_threads(1)

_DTYPES = (torch.float32, torch.float32, torch.float32, torch.float64, torch.float16,
           torch.bfloat16, torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64)


def tensor(rng, shape: tuple, ctx_grad: bool = True) -> torch.Tensor:
    dt = gen.pick(rng, _DTYPES)
    a = gen.values(rng, shape, np.dtype(np.float64))
    t = torch.from_numpy(a).to(dt)
    layout = gen.pick(rng, ("c", "c", "channels_last", "transposed", "sliced", "expanded"))
    if layout == "channels_last" and t.dim() in (4, 5):
        fmt = torch.channels_last if t.dim() == 4 else torch.channels_last_3d
        t = t.contiguous(memory_format=fmt)
    elif layout == "transposed" and t.dim() >= 2:
        t = t.transpose(-1, -2).contiguous().transpose(-1, -2)
    elif layout == "sliced" and t.dim() >= 1:
        big = torch.zeros(*t.shape[:-1], t.shape[-1] * 2, dtype=t.dtype)
        big[..., ::2] = t
        t = big[..., ::2]
    elif layout == "expanded" and t.dim() >= 1 and t.shape[0] > 0:
        t = t[:1].expand(t.shape)
    if ctx_grad and t.is_floating_point() and gen.chance(rng, 0.4):
        t = t.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
    return t


def _input(rng, ctx: Ctx) -> torch.Tensor:
    r = rng.random()
    shape = (*ctx.batch, *ctx.spatial) if r < 0.8 else (ctx.batch[1], *ctx.spatial) \
        if r < 0.95 else gen.shape(rng, int(rng.integers(0, 6)))
    return tensor(rng, shape)


def _indices(rng, x, kw, ctx):
    """For max_unpool: torch-style max pooling indices of a larger input, usually."""
    pkw = {k: kw[k] for k in ("kernel_size", "stride", "padding") if k in kw}
    try:
        pool = getattr(torch.nn.functional, f"max_pool{ctx.rank}d")
        vals, idx = pool(x.detach().float(), **pkw, return_indices=True)
        return vals.to(x.dtype).requires_grad_(x.requires_grad), idx
    except (RuntimeError, ValueError, TypeError):
        n = int(np.prod(x.shape[-ctx.rank:])) if x.dim() >= ctx.rank else 4
        return x, torch.from_numpy(rng.integers(-1, 4 * n + 2, size=tuple(x.shape)))


@contextlib.contextmanager
def torch_errors(twin=None):
    """torch's own errors where poolkit falls back to torch (docs/torch.md): an exception is
    documented when ``twin()`` (the same call unpatched, for the ops torch has) raises the same
    type; for poolkit's own ops (no twin) a RuntimeError of the torch reference is."""
    try:
        yield
    except (ValueError, TypeError):
        raise
    except Exception as e:  # noqa: BLE001 - judged against torch below
        if twin is None:
            if isinstance(e, RuntimeError):
                raise Refused(f"torch: {e}") from e
            raise
        try:
            twin()
        except type(e):
            raise Refused(f"torch raises it too: {e}") from e
        except Exception:  # noqa: BLE001 - torch fails differently: poolkit's error is a finding
            raise e from None
        raise


def _backward(rng, out, x, kw):
    """Gradient of a float output back to ``x``; finite for finite input and gradient."""
    y = out[0] if isinstance(out, tuple) else out
    if not (isinstance(x, torch.Tensor) and x.requires_grad and y.requires_grad):
        return
    g = torch.from_numpy(gen.values(rng, tuple(y.shape), np.dtype(np.float64))).to(y.dtype)
    note("backward", g)
    (gx,) = torch.autograd.grad(y, x, g)
    if finite_expected(kw):
        expect_finite(gx, x.detach(), g, what="gradient")


def _functional(name: str):
    fn = getattr(TF, name)

    def run(rng):
        ctx = Ctx(rank=rank_of(name), fn_name=name,
                  batch=(int(rng.integers(1, 3)), int(rng.integers(1, 4))))
        ctx.spatial = gen.shape(rng, ctx.rank, 1, 8 if ctx.rank < 3 else 5)
        kw = draw_kwargs(rng, fn, TORCH_PARAMS, ctx)
        x = _input(rng, ctx)
        args = {}
        if "indices" in inspect.signature(fn).parameters:
            x, args["indices"] = _indices(rng, x, kw, ctx)
        note(name, x, **args, **kw)
        torch_fn = getattr(torch.nn.functional, name, None)
        twin = None if torch_fn is None else (lambda: torch_fn(x, **args, **kw))
        with torch_errors(twin):
            out = fn(x, **args, **kw)
        if finite_expected(kw):
            expect_finite(out, x.detach())
        with torch_errors():
            _backward(rng, out, x, kw)

    return run


for _name in TF.__all__:
    target(f"torch.{_name}", "torch",
           covers=(f"torch.functional.{_name}",))(_functional(_name))


def modules() -> dict[str, type]:
    return {n: getattr(TN, n) for n in TN.__all__ if isinstance(getattr(TN, n), type)}


@target("torch.nn", "torch", weight=4, covers=("torch.nn",))
def _module(rng):
    name, cls = gen.pick(rng, sorted(modules().items()))
    ctx = Ctx(rank=rank_of(name.lower()), fn_name=name.lower(),
              batch=(int(rng.integers(1, 3)), int(rng.integers(1, 4))))
    ctx.spatial = gen.shape(rng, ctx.rank, 1, 7)
    kw = draw_kwargs(rng, cls, TORCH_PARAMS, ctx)
    note(name, **kw)
    base = cls.__bases__[0]
    # a twin constructed with arguments torch's own constructor refuses raises as torch does
    with torch_errors(None if base is torch.nn.Module else (lambda: base(**kw))):
        m = cls(**kw)
    x = _input(rng, ctx)
    note("forward", x)
    twin = None if base is torch.nn.Module else (lambda: base(**kw)(*inputs))
    inputs = ()
    with torch_errors(twin):
        if name.startswith("MaxUnpool"):
            x, idx = _indices(rng, x, kw, ctx)
            inputs = (x, idx)
        else:
            inputs = (x,)
        out = m(*inputs)
    with torch_errors():
        _backward(rng, out, x, kw)


@target("torch.patch", "torch", weight=1, allowed=(RuntimeError,),
        covers=("torch.patch", "torch.unpatch"))
def _patch(rng):
    rank = int(rng.integers(1, 4))
    pools = {1: torch.nn.MaxPool1d(2), 2: torch.nn.AvgPool2d(2, ceil_mode=True),
             3: torch.nn.AdaptiveMaxPool3d(1)}
    model = torch.nn.Sequential(pools[rank], torch.nn.Flatten())
    x = tensor(rng, (2, 2, *gen.shape(rng, rank, 1, 6)))
    note("model", x, rank=rank)
    with torch.no_grad():
        want = model(x.float())
        names = ptorch.patch(model)
        got = model(x.float())
        ptorch.unpatch(model)
    note("patched", names)
    if not torch.equal(torch.nan_to_num(want), torch.nan_to_num(got)):
        fail("wrong", "a patched torch model gives another output than the unpatched one")
