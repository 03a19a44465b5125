"""poolkit's pooling ops inside torch: one table, custom ops, autograd and the eager path.

Every op is an entry of :data:`OPS` (a :class:`PoolOp`): its torch.nn.functional name, poolkit's
NumPy forward and backward (``poolkit.functional.F`` and ``F_backward``), torch's own op (the
fallback), its arguments (schema type, default), its output size (``poolkit.shapes``), the
dtypes it computes, torch's output-layout rule, the torch.nn class it twins and, optionally, its
double backward. From an entry, :func:`register` makes:

- torch custom ops ``poolkit::F`` (and ``poolkit::F_with_indices`` when F can return indices)
  and ``poolkit::F_backward``, with fake kernels (output shapes from ``poolkit.shapes``, strides
  from torch's layout rule) and autograd registered through ``torch.library``, so
  ``torch.compile``/``torch.export`` see one opaque, differentiable node;
- an eager path (:func:`call`) that skips the dispatcher when nothing needs it: a custom-op
  call costs ~10 us of dispatch and wrapping before the kernel runs, while most of that work
  (boxing the arguments, the Python kernel wrapper, the autograd node) is only needed under
  tracing. Eagerly, a call needing no gradient runs the NumPy kernel directly and a call needing
  one goes through a small ``torch.autograd.Function`` with the same forward and backward.
  Both paths run the same functions, so their results are identical (tested).

Routing (:func:`call`), in order:

1. torch-function overrides (tensor subclasses, TorchFunctionModes, FX proxies): handled as
   torch.nn.functional does, through ``handle_torch_function``;
2. what poolkit does not compute falls back to torch's own op (:data:`FALLBACKS` counts why):
   a tensor not on the CPU, not strided, of a dtype the op does not compute, a tensor inside a
   ``torch.func`` transform or forward-mode AD, arguments poolkit's checks reject (torch then
   runs them, or raises its own error as it would have unpatched);
3. under ``torch.compile``, ``torch.jit.trace`` or a dispatch mode (FakeTensorMode, make_fx):
   the custom op;
4. otherwise the eager path.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as _fwAD

from .. import functional as _pf
from ..shapes import normalize_tuple, torch_output_size
from . import _bridge as B

__all__ = ["PoolOp", "Param", "OPS", "FALLBACKS", "call", "register", "custom_op"]

#: (op name, reason) -> number of calls that fell back to torch's own op.
FALLBACKS: collections.Counter = collections.Counter()

REQUIRED = object()


# --------------------------------------------------------------------------------------------
# Argument normalisation: torch.nn.functional's flexible arguments -> the custom-op schema.


def _ints(value, rank: int, name: str) -> list[int]:
    return list(normalize_tuple(value, rank, name))


def _stride(value, rank: int, name: str) -> list[int]:
    # None and [] both mean "kernel_size" in torch; [] is the schema's way to say it.
    if value is None or (isinstance(value, Sequence) and len(value) == 0):
        return []
    return _ints(value, rank, name)


def _bool(value, rank: int, name: str) -> bool:
    return bool(value)


def _opt_int(value, rank: int, name: str) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Param:
    """One argument after ``input``: its name (torch's), custom-op schema type, default and how
    a torch-style value becomes a schema value (``normalize(value, rank, name)``)."""

    name: str
    schema: str
    default: object = REQUIRED
    normalize: Callable = _ints


# --------------------------------------------------------------------------------------------
# Output sizes (fake kernels). Plain arithmetic from poolkit.shapes, so it also works on the
# symbolic sizes of torch.compile's dynamic shapes.


def _window_out(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    stride = stride or kernel_size
    return [
        torch_output_size(L, k, s, p, d, ceil_mode)
        for L, k, s, p, d in zip(spatial, kernel_size, stride, padding, dilation, strict=True)
    ]


def _max_out(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    return _window_out(spatial, kernel_size, stride, padding, dilation, ceil_mode)


def _avg_out(spatial, kernel_size, stride, padding, ceil_mode, *divisor_args):
    return _window_out(spatial, kernel_size, stride, padding, [1] * len(spatial), ceil_mode)


# --------------------------------------------------------------------------------------------
# Double backward. Pooling backward is linear in grad_output; its derivative with respect to
# grad_output, applied to ggx (shaped like the input), is the forward's directional derivative
# along ggx. ``run(x, args, with_indices)`` is the op's forward in the caller's mode (custom op
# or eager). Max and average pooling are piecewise linear in the input, so the input's second
# derivative is zero (None).


def _max_double_backward(run, ggx, x, args, rank):
    _, idx = run(x.detach(), args, True)
    flat = ggx.flatten(-rank).gather(-1, idx.flatten(-rank))
    return flat.view(idx.shape), None


def _avg_double_backward(run, ggx, x, args, rank):
    return run(ggx, args, False), None


# --------------------------------------------------------------------------------------------
# The table.


@dataclass(frozen=True, eq=False)
class PoolOp:
    """A poolkit pooling op as torch sees it (see the module docstring)."""

    name: str
    rank: int
    forward: Callable
    backward: Callable
    torch_forward: Callable
    params: tuple[Param, ...]
    out_size: Callable
    dtypes: frozenset
    layout: str
    double_backward: Callable
    torch_module: type | None = None
    indices: bool = False

    def normalize(self, args: tuple) -> tuple:
        return tuple(p.normalize(v, self.rank, p.name) for p, v in zip(self.params, args,
                                                                          strict=True))


_MAX_PARAMS = (
    Param("kernel_size", "int[]"),
    Param("stride", "int[]", None, _stride),
    Param("padding", "int[]", 0),
    Param("dilation", "int[]", 1),
    Param("ceil_mode", "bool", False, _bool),
)
_AVG1D_PARAMS = (
    Param("kernel_size", "int[]"),
    Param("stride", "int[]", None, _stride),
    Param("padding", "int[]", 0),
    Param("ceil_mode", "bool", False, _bool),
    Param("count_include_pad", "bool", True, _bool),
)
_AVG_PARAMS = (*_AVG1D_PARAMS, Param("divisor_override", "int?", None, _opt_int))


def _max(rank: int, layout: str, module) -> PoolOp:
    name = f"max_pool{rank}d"
    return PoolOp(
        name, rank, getattr(_pf, name), getattr(_pf, name + "_backward"),
        getattr(torch.nn.functional, name), _MAX_PARAMS, _max_out, B.MAX_DTYPES, layout,
        _max_double_backward, module, indices=True,
    )


def _avg(rank: int, layout: str, module) -> PoolOp:
    name = f"avg_pool{rank}d"
    return PoolOp(
        name, rank, getattr(_pf, name), getattr(_pf, name + "_backward"),
        getattr(torch.nn.functional, name), _AVG1D_PARAMS if rank == 1 else _AVG_PARAMS,
        _avg_out, B.FLOAT_DTYPES, layout, _avg_double_backward, module,
    )


# max_pool1d's output layout depends on return_indices (see _bridge); ``layout`` is the rule
# for the output without indices, ``_INDICES_LAYOUT`` overrides it for the indices variant.
OPS: dict[str, PoolOp] = {
    op.name: op
    for op in (
        _max(1, B.CONTIGUOUS, torch.nn.MaxPool1d),
        _max(2, B.FOLLOW, torch.nn.MaxPool2d),
        _max(3, B.FOLLOW, torch.nn.MaxPool3d),
        _avg(1, B.FOLLOW_2D, torch.nn.AvgPool1d),
        _avg(2, B.FOLLOW, torch.nn.AvgPool2d),
        _avg(3, B.CONTIGUOUS, torch.nn.AvgPool3d),
    )
}
_INDICES_LAYOUT = {"max_pool1d": B.FOLLOW_2D}


def _layout(op: PoolOp, with_indices: bool) -> str:
    return _INDICES_LAYOUT.get(op.name, op.layout) if with_indices else op.layout


# --------------------------------------------------------------------------------------------
# The computation on real CPU tensors (shared by the custom ops and the eager path).


def _forward(op: PoolOp, x: torch.Tensor, args: tuple, with_indices: bool):
    B.sync_threads()
    xn = B.as_numpy(x)
    layout = _layout(op, with_indices)
    if with_indices:
        out, idx = op.forward(xn, *args, return_indices=True)
        return (B.restride(layout, x, B.from_numpy(out, x.dtype)),
                B.restride(layout, x, torch.from_numpy(idx)))
    return B.restride(layout, x, B.from_numpy(op.forward(xn, *args), x.dtype))


def _backward(op: PoolOp, grad: torch.Tensor, x: torch.Tensor, args: tuple) -> torch.Tensor:
    B.sync_threads()
    gx = op.backward(B.as_numpy(grad), B.as_numpy(x), *args)
    return B.restride(op.layout, x, B.from_numpy(gx, x.dtype))


# --------------------------------------------------------------------------------------------
# Custom ops.

#: name -> (forward, forward with indices or None, backward) OpOverloads.
_CUSTOM: dict[str, tuple] = {}


def custom_op(name: str):
    """The ``torch.ops.poolkit`` OpOverloads of op ``name``: (forward, with_indices, backward)."""
    return _CUSTOM[name]


def _fake_out(op: PoolOp, x: torch.Tensor, args: tuple, with_indices: bool):
    rank = op.rank
    torch._check(
        x.dim() in (rank + 1, rank + 2),
        lambda: f"{op.name}: input must be {rank + 1}-D or {rank + 2}-D, got {x.dim()}-D",
    )
    out = op.out_size(x.shape[-rank:], *args)
    for o in out:
        torch._check(o >= 1, lambda: f"{op.name}: output size {out} is too small "
                                     f"for input {tuple(x.shape)} and arguments {args}")
    shape = (*x.shape[:-rank], *out)
    layout = _layout(op, with_indices)
    y = B.empty_like_torch(layout, x, shape)
    if with_indices:
        return y, B.empty_like_torch(layout, x, shape, torch.int64)
    return y


def _custom_run(name: str):
    def run(x, args, with_indices):
        fwd, fwd_idx, _ = _CUSTOM[name]
        return fwd_idx(x, *args) if with_indices else fwd(x, *args)
    return run


def register(op: PoolOp) -> None:
    """Define ``poolkit::<name>`` (and ``_with_indices``, ``_backward``) for ``op``."""
    lib = torch.library
    sig = ", ".join(f"{p.schema} {p.name}" for p in op.params)
    n = len(op.params)
    run = _custom_run(op.name)

    bwd = lib.custom_op(
        f"poolkit::{op.name}_backward",
        lambda grad_output, input, *args: _backward(op, grad_output, input, args),
        mutates_args=(), device_types="cpu",
        schema=f"(Tensor grad_output, Tensor input, {sig}) -> Tensor",
    )
    bwd.register_fake(lambda grad_output, input, *args: B.empty_like_torch(
        op.layout, input, input.shape))

    def fwd_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.args = tuple(inputs[1:])

    def fwd_backward(ctx, grad, *_):
        (x,) = ctx.saved_tensors
        gx = bwd._opoverload(grad, x, *ctx.args) if ctx.needs_input_grad[0] else None
        return (gx, *([None] * n))

    defs = []
    for with_indices in (False, True) if op.indices else (False,):
        suffix, ret = ("_with_indices", "(Tensor, Tensor)") if with_indices else ("", "Tensor")
        fwd = lib.custom_op(
            f"poolkit::{op.name}{suffix}",
            lambda input, *args, _wi=with_indices: _forward(op, input, args, _wi),
            mutates_args=(), device_types="cpu", schema=f"(Tensor input, {sig}) -> {ret}",
        )
        fwd.register_fake(lambda input, *args, _wi=with_indices: _fake_out(op, input, args, _wi))
        fwd.register_autograd(fwd_backward, setup_context=fwd_setup)
        defs.append(fwd)

    def bwd_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[1])
        ctx.args = tuple(inputs[2:])

    def bwd_backward(ctx, ggx):
        (x,) = ctx.saved_tensors
        gg, gx = op.double_backward(run, ggx, x, ctx.args, op.rank)
        return (gg, gx, *([None] * n))

    bwd.register_autograd(bwd_backward, setup_context=bwd_setup)

    _CUSTOM[op.name] = (
        defs[0]._opoverload, defs[1]._opoverload if op.indices else None, bwd._opoverload
    )


# --------------------------------------------------------------------------------------------
# The eager path.


class _Pool(torch.autograd.Function):
    """Eager forward/backward of an op whose input needs a gradient: the custom op's autograd
    without the dispatcher."""

    @staticmethod
    def forward(ctx, x, op, args, with_indices):
        res = _forward(op, x, args, with_indices)
        ctx.save_for_backward(x)
        ctx.op, ctx.args = op, args
        if with_indices:
            ctx.mark_non_differentiable(res[1])
        return res

    @staticmethod
    def backward(ctx, grad, *_):
        (x,) = ctx.saved_tensors
        return _PoolBackward.apply(grad, x, ctx.op, ctx.args), None, None, None


class _PoolBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, grad, x, op, args):
        ctx.save_for_backward(x)
        ctx.op, ctx.args = op, args
        return _backward(op, grad, x, args)

    @staticmethod
    def backward(ctx, ggx):
        (x,) = ctx.saved_tensors
        op = ctx.op
        gg, gx = op.double_backward(_eager_run(op), ggx, x, ctx.args, op.rank)
        return gg, gx, None, None


def _eager_run(op: PoolOp):
    def run(x, args, with_indices):
        return call(op, x, args, with_indices)
    return run


def _fallback_reason(op: PoolOp, x) -> str | None:
    """Why poolkit does not compute ``op`` on ``x`` (None: it does)."""
    if not isinstance(x, torch.Tensor):
        return "not a tensor"
    if not x.is_cpu:
        return "device"
    if x.layout is not torch.strided:
        return "layout"
    if x.dtype not in op.dtypes:
        return "dtype"
    if not torch.compiler.is_compiling():
        if _fwAD._current_level >= 0:
            return "forward-mode AD"
        if torch._C._functorch.is_functorch_wrapped_tensor(x):
            return "torch.func transform"
    return None


def _fallback(op: PoolOp, x, args: tuple, with_indices: bool, reason: str):
    if not torch.compiler.is_compiling():
        FALLBACKS[op.name, reason] += 1
    if op.indices:
        return op.torch_forward(x, *args, return_indices=with_indices)
    return op.torch_forward(x, *args)


def _public(op: PoolOp):
    from . import functional

    return getattr(functional, op.name)


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def call(op: PoolOp, x, args: tuple, with_indices: bool = False):
    """Run ``op`` on tensor ``x`` with torch-style arguments ``args`` (torch's positional order,
    without ``return_indices``), routed as the module docstring says."""
    if torch._C._has_torch_function_unary(x):
        kw = {"return_indices": with_indices} if op.indices else {}
        return torch.overrides.handle_torch_function(_public(op), (x,), x, *args, **kw)
    reason = _fallback_reason(op, x)
    if reason is not None:
        return _fallback(op, x, args, with_indices, reason)
    if (
        type(x) in _PLAIN
        and not torch.compiler.is_compiling()
        and torch._C._get_tracing_state() is None
        and not torch._C._len_torch_dispatch_stack()
    ):
        try:
            if x.requires_grad and torch.is_grad_enabled():
                return _Pool.apply(x, op, args, with_indices)
            return _forward(op, x, args, with_indices)
        except (ValueError, TypeError):
            # poolkit's checks reject these arguments (or this input): torch decides.
            return _fallback(op, x, args, with_indices, "arguments")
    try:
        nargs = op.normalize(args)
    except (ValueError, TypeError):
        return _fallback(op, x, args, with_indices, "arguments")
    fwd, fwd_idx, _ = _CUSTOM[op.name]
    return fwd_idx(x, *nargs) if with_indices else fwd(x, *nargs)


for _op in OPS.values():
    register(_op)
