"""poolkit's pooling ops inside torch: one table, custom ops, autograd and the eager path.

Every op is an entry of :data:`OPS` (a :class:`PoolOp`): its name (torch.nn.functional's, or
poolkit's own), poolkit's NumPy forward and backward (``poolkit.functional.F`` and
``F_backward``), a torch implementation of the same semantics (torch's own op where it agrees,
else one in ``_reference``), its arguments (schema type, normalisation), its output size
(``poolkit.shapes``), the dtypes it computes, torch's output-layout rule and the torch.nn class
it twins. From an entry, :func:`register` makes:

- torch custom ops ``poolkit::F`` (and ``poolkit::F_with_indices`` when F can return indices)
  and ``poolkit::F_backward``, with fake kernels (shapes from ``poolkit.shapes``, strides from
  torch's layout rule) and autograd registered through ``torch.library``, so
  ``torch.compile``/``torch.export`` see one opaque, differentiable node;
- an eager path (:func:`call`) that skips the dispatcher when nothing needs it: a custom-op
  call costs ~10 us of dispatch and wrapping before the kernel runs (boxing the arguments, the
  Python kernel wrapper, the autograd node), all only needed under tracing. Eagerly, a call
  needing no gradient runs the NumPy kernel directly and a call needing one goes through a
  small ``torch.autograd.Function`` with the same forward and backward; both paths run the same
  functions, so their results are identical (tested).

Second derivatives (the backward of the backward; pooling backward is linear in grad_output):
for the ops with indices, grad_output's is a gather at the op's own indices and the input's is
zero; for the others they come from torch's autograd through the torch implementation (which
has the same first derivative as poolkit's kernels); third derivatives of those treat the
input as a constant.

Routing (:func:`call`), in order:

1. torch-function overrides (tensor subclasses, TorchFunctionModes, FX proxies) are handled as
   torch.nn.functional handles them, through ``handle_torch_function``;
2. what poolkit does not compute goes to the torch implementation (:data:`FALLBACKS` counts
   why): a tensor not on the CPU, not strided, of a dtype the op does not compute, a tensor in
   a ``torch.func`` transform or under forward-mode AD, arguments poolkit's checks reject (the
   torch implementation then runs them, or raises the error torch raises);
3. under ``torch.compile``, ``torch.jit.trace`` or a dispatch mode (FakeTensorMode, make_fx):
   the custom op;
4. otherwise the eager path.
"""

from __future__ import annotations

import collections
import inspect
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.autograd.forward_ad as _fwAD
import torch.nn.functional as TF

from .. import _threads
from .. import functional as _pf
from ..errors import InvalidType, SizeOutOfRange
from ..shapes import normalize_tuple, polyphase_output_size, torch_output_size, unpool_output_size
from . import _bridge as B
from . import _reference as R

__all__ = ["PoolOp", "Param", "OPS", "FALLBACKS", "call", "register", "custom_op"]

#: (op name, reason) -> number of calls that went to the torch implementation.
FALLBACKS: collections.Counter = collections.Counter()

REQUIRED = object()


# --------------------------------------------------------------------------------------------
# Argument normalisation: torch.nn.functional's flexible arguments -> custom-op schema values.
# Each takes (value, rank, name) and raises poolkit's InvalidType/InvalidValue (a TypeError /
# ValueError) for what it cannot express; the call then goes to the torch implementation.


def _ints(value, rank, name):
    return list(normalize_tuple(value, rank, name))


def _stride(value, rank, name):
    # None and [] both mean "kernel_size" in torch; [] is the schema's way to say it.
    if value is None or (isinstance(value, Sequence) and len(value) == 0):
        return []
    return _ints(value, rank, name)


def _bool(value, rank, name):
    return bool(value)


def _int(value, rank, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidType(f"{name} must be an int, got {value!r}")
    return int(value)


def _opt_int(value, rank, name):
    return None if value is None else _int(value, rank, name)


def _float(value, rank, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidType(f"{name} must be a number, got {value!r}")
    return float(value)


def _str(value, rank, name):
    if not isinstance(value, str):
        raise InvalidType(f"{name} must be a string, got {value!r}")
    return value


def _sizes(value, rank, name):
    """An output size already resolved by ``prepare`` (ints, or SymInts under tracing)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value] * rank


def _opt_ints(value, rank, name):
    if value is None:
        return None
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidType(f"{name} must be None or a sequence of ints, got {value!r}")
    return [_int(v, rank, name) for v in value]


def _opt_floats(value, rank, name):
    if value is None:
        return None
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_float(v, rank, name) for v in value]
    return [_float(value, rank, name)] * rank


def _tensor(value, rank, name):
    if not isinstance(value, torch.Tensor):
        raise InvalidType(f"{name} must be a tensor, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Param:
    """One argument after ``input``: its name (torch's), custom-op schema type and how a
    torch-style value becomes a schema value (``normalize(value, rank, name)``)."""

    name: str
    schema: str
    normalize: Callable = _ints

    @property
    def tensor(self) -> bool:
        return self.schema.startswith("Tensor")


# --------------------------------------------------------------------------------------------
# Output sizes (fake kernels), from poolkit.shapes; plain arithmetic, so they also work on the
# symbolic sizes of torch.compile's dynamic shapes. Arguments arrive normalised.


def _window_out(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    stride = stride or kernel_size
    return [torch_output_size(L, k, s, p, d, ceil_mode)
            for L, k, s, p, d in zip(spatial, kernel_size, stride, padding, dilation, strict=True)]


def _max_out(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    return _window_out(spatial, kernel_size, stride, padding, dilation, ceil_mode)


def _avg_out(spatial, kernel_size, stride, padding, ceil_mode, count_include_pad,
             divisor_override=None):
    return _window_out(spatial, kernel_size, stride, padding, [1] * len(spatial), ceil_mode)


def _lp_out(spatial, norm_type, kernel_size, stride, ceil_mode):
    rank = len(spatial)
    return _window_out(spatial, kernel_size, stride, [0] * rank, [1] * rank, ceil_mode)


def _adaptive_out(spatial, output_size):
    return output_size


def _fractional_out(spatial, kernel_size, output_size, output_ratio, _random_samples):
    if output_size is not None:
        return output_size
    return [int(L * r) for L, r in zip(spatial, output_ratio, strict=True)]  # torch's rule


def _unpool_out(spatial, indices, kernel_size, stride, padding, output_size):
    return unpool_output_size(spatial, kernel_size, stride or None, padding, output_size,
                              op="max_unpool")


def _blur_out(spatial, filt_size, stride, pad_type):
    return polyphase_output_size(spatial, stride)  # BlurPool's size is APS's: ceil(L / s)


def _max_blur_out(spatial, kernel_size, stride, filt_size, pad_type):
    rank = len(spatial)
    maxed = _window_out(spatial, kernel_size, [1] * rank, [0] * rank, [1] * rank, False)
    return polyphase_output_size(maxed, stride)


def _aps_out(spatial, stride, norm):
    return polyphase_output_size(spatial, stride)


# --------------------------------------------------------------------------------------------
# Preparation of arguments that depend on the input (as torch.nn.functional does them).


def _resolve_output_size(x, kw, rank):
    """Adaptive pooling: None entries of output_size keep the input's size."""
    o = kw["output_size"]
    if isinstance(o, Sequence) and not isinstance(o, str) and len(o) == rank:
        kw["output_size"] = [L if v is None else v for v, L in zip(o, x.shape[-rank:],
                                                                  strict=True)]
    return kw


def _draw_samples(x, kw, rank):
    """Fractional max pooling: torch's default samples, drawn as torch draws them (so a seeded
    run gives torch's windows) and kept for the backward pass. (Only where poolkit computes:
    a call handed to torch is handed its caller's arguments, and torch draws for itself.)"""
    if kw["_random_samples"] is None and x.dim() in (rank + 1, rank + 2) and (
            kw["output_size"] is not None or kw["output_ratio"] is not None):
        n = 1 if x.dim() == rank + 1 else x.size(0)
        kw["_random_samples"] = torch.rand(n, x.size(-rank - 1), rank, dtype=x.dtype,
                                           device=x.device)
    return kw


# --------------------------------------------------------------------------------------------
# The table.


@dataclass(frozen=True, eq=False)
class PoolOp:
    """A poolkit pooling op as torch sees it (see the module docstring).

    ``forward(x, **kw)`` / ``backward(grad, x, **kw)``: poolkit.functional's NumPy functions;
    ``reference(x, **kw)``: the same semantics in torch; ``params``: the arguments after
    ``input`` in torch's order (``return_indices`` aside); ``out_size(spatial, **kw)``: the
    output's spatial size from normalised arguments; ``layout``: torch's output-layout rule
    (``indices_layout`` where the indices variant differs); ``prepare(x, kw, rank)``: argument
    resolution that needs the input (where poolkit computes; torch resolves for itself);
    ``module``: the torch.nn class it twins (None: a poolkit module, named ``module_name``);
    ``module_forward``: the module's forward if it is not ``F(input, *attributes)``.
    """

    name: str
    rank: int
    forward: Callable
    backward: Callable
    reference: Callable
    params: tuple[Param, ...]
    out_size: Callable
    dtypes: frozenset
    layout: str
    indices: bool = False
    indices_layout: str | None = None
    prepare: Callable | None = None
    module: type | None = None
    module_name: str | None = None
    module_forward: Callable | None = None
    names: tuple[str, ...] = field(init=False)
    tensor_params: bool = field(init=False)
    positional: bool = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "names", tuple(p.name for p in self.params))
        object.__setattr__(self, "tensor_params", any(p.tensor for p in self.params))
        # Whether forward takes the arguments positionally in params order (fractional max
        # pooling's torch order puts return_indices first; max_blur_pool2d's differs).
        fwd = list(inspect.signature(self.forward).parameters)[1:1 + len(self.params)]
        object.__setattr__(self, "positional", fwd == list(self.names))

    def normalize(self, kw: dict) -> dict:
        return {p.name: p.normalize(kw[p.name], self.rank, p.name) for p in self.params}

    def kwargs(self, args: tuple) -> dict:
        """``args`` (in ``params`` order) by name."""
        return dict(zip(self.names, args, strict=True))

    def numpy_forward(self, xn, args: tuple, with_indices: bool):
        """poolkit's NumPy forward on ``args`` (NumPy arrays for tensor arguments)."""
        if not self.positional:
            kw = self.kwargs(args)
            return self.forward(xn, **kw, return_indices=True) if with_indices else \
                self.forward(xn, **kw)
        return self.forward(xn, *args, return_indices=True) if with_indices else \
            self.forward(xn, *args)


def _pf_pair(name):
    return getattr(_pf, name), getattr(_pf, name + "_backward")


_WINDOW = (Param("kernel_size", "int[]"), Param("stride", "int[]", _stride),
           Param("padding", "int[]"))
_MAX_PARAMS = (*_WINDOW, Param("dilation", "int[]"), Param("ceil_mode", "bool", _bool))
_AVG1D_PARAMS = (*_WINDOW, Param("ceil_mode", "bool", _bool),
                 Param("count_include_pad", "bool", _bool))
_AVG_PARAMS = (*_AVG1D_PARAMS, Param("divisor_override", "int?", _opt_int))
_LP_PARAMS = (Param("norm_type", "float", _float), Param("kernel_size", "int[]"),
              Param("stride", "int[]", _stride), Param("ceil_mode", "bool", _bool))
_ADAPTIVE_PARAMS = (Param("output_size", "SymInt[]", _sizes),)
_FRACTIONAL_PARAMS = (Param("kernel_size", "int[]"), Param("output_size", "int[]?", _opt_ints),
                      Param("output_ratio", "float[]?", _opt_floats),
                      Param("_random_samples", "Tensor", _tensor))
_UNPOOL_PARAMS = (Param("indices", "Tensor", _tensor), *_WINDOW,
                  Param("output_size", "int[]?", _opt_ints))
_BLUR_PARAMS = (Param("filt_size", "int", _int), Param("stride", "int[]"),
                Param("pad_type", "str", _str))
_MAX_BLUR_PARAMS = (Param("kernel_size", "int[]"), *_BLUR_PARAMS)
_APS_PARAMS = (Param("stride", "int[]"), Param("norm", "float", _float))

_NN = torch.nn
# torch 2.13's output layouts (checked in tests/test_torch_functional.py): 2-D ops follow the
# input's memory format; most 3-D ops give contiguous output (max_pool3d follows it); 1-D ops
# built on the 2-D kernel follow it through input.unsqueeze(-2).
_FOLLOW, _F2D, _CONTIG = B.FOLLOW, B.FOLLOW_2D, B.CONTIGUOUS


def _ops():
    ops = []
    for r in (1, 2, 3):
        def mod(prefix, r=r):
            return getattr(_NN, f"{prefix}{r}d")
        layout = (_CONTIG, _FOLLOW, _FOLLOW)[r - 1]
        three = (_F2D, _FOLLOW, _CONTIG)[r - 1]
        ops += [
            PoolOp(f"max_pool{r}d", r, *_pf_pair(f"max_pool{r}d"), getattr(TF, f"max_pool{r}d"),
                   _MAX_PARAMS, _max_out, B.MAX_DTYPES, layout, indices=True,
                   indices_layout=_F2D if r == 1 else None, module=mod("MaxPool")),
            PoolOp(f"min_pool{r}d", r, *_pf_pair(f"min_pool{r}d"), R.min_pool(r), _MAX_PARAMS,
                   _max_out, B.MAX_DTYPES, layout, indices=True,
                   indices_layout=_F2D if r == 1 else None, module_name=f"MinPool{r}d"),
            PoolOp(f"avg_pool{r}d", r, *_pf_pair(f"avg_pool{r}d"), getattr(TF, f"avg_pool{r}d"),
                   _AVG1D_PARAMS if r == 1 else _AVG_PARAMS, _avg_out, B.FLOAT_DTYPES, three,
                   module=mod("AvgPool")),
            PoolOp(f"adaptive_max_pool{r}d", r, *_pf_pair(f"adaptive_max_pool{r}d"),
                   getattr(TF, f"adaptive_max_pool{r}d"), _ADAPTIVE_PARAMS, _adaptive_out,
                   B.MAX_DTYPES, three, indices=True, prepare=_resolve_output_size,
                   module=mod("AdaptiveMaxPool")),
            PoolOp(f"adaptive_avg_pool{r}d", r, *_pf_pair(f"adaptive_avg_pool{r}d"),
                   getattr(TF, f"adaptive_avg_pool{r}d"), _ADAPTIVE_PARAMS, _adaptive_out,
                   B.FLOAT_DTYPES, three, prepare=_resolve_output_size,
                   module=mod("AdaptiveAvgPool")),
            PoolOp(f"lp_pool{r}d", r, *_pf_pair(f"lp_pool{r}d"), R.lp_pool(r), _LP_PARAMS,
                   _lp_out, B.FLOAT_DTYPES, three, module=mod("LPPool")),
            PoolOp(f"max_unpool{r}d", r, *_pf_pair(f"max_unpool{r}d"),
                   getattr(TF, f"max_unpool{r}d"), _UNPOOL_PARAMS, _unpool_out, B.MAX_DTYPES,
                   (_CONTIG, _FOLLOW, _CONTIG)[r - 1], module=mod("MaxUnpool"),
                   module_forward=_unpool_forward),
        ]
    for r in (2, 3):
        ops.append(PoolOp(
            f"fractional_max_pool{r}d", r, *_pf_pair(f"fractional_max_pool{r}d"),
            getattr(TF, f"fractional_max_pool{r}d"), _FRACTIONAL_PARAMS, _fractional_out,
            B.FLOAT_DTYPES, _CONTIG, indices=True, prepare=_draw_samples,
            module=getattr(_NN, f"FractionalMaxPool{r}d")))
    for r in (1, 2):
        ops.append(PoolOp(f"blur_pool{r}d", r, *_pf_pair(f"blur_pool{r}d"), R.blur_pool(r),
                          _BLUR_PARAMS, _blur_out, B.FLOAT_DTYPES, (_F2D, _FOLLOW)[r - 1],
                          module_name=f"BlurPool{r}d"))
    ops += [
        PoolOp("max_blur_pool2d", 2, *_pf_pair("max_blur_pool2d"), R.max_blur_pool2d,
               _MAX_BLUR_PARAMS, _max_blur_out, B.FLOAT_DTYPES, _FOLLOW,
               module_name="MaxBlurPool2d"),
        PoolOp("aps_pool2d", 2, *_pf_pair("aps_pool2d"), R.aps_pool2d, _APS_PARAMS, _aps_out,
               B.FLOAT_DTYPES, _FOLLOW, module_name="APSPool2d"),
    ]
    return {op.name: op for op in ops}


def _unpool_forward(fn):
    def forward(self, input, indices, output_size=None):
        return fn(input, indices, self.kernel_size, self.stride, self.padding, output_size)
    return forward


OPS: dict[str, PoolOp] = _ops()


def _layout(op: PoolOp, with_indices: bool) -> str:
    return (op.indices_layout or op.layout) if with_indices else op.layout


# --------------------------------------------------------------------------------------------
# The computation on real CPU tensors (shared by the custom ops and the eager path).


_from_numpy = torch.from_numpy
_torch_threads = torch.get_num_threads


def _numpy_args(op: PoolOp, args: tuple) -> tuple:
    return tuple(B.as_numpy(v) if isinstance(v, torch.Tensor) else v for v in args)


def _forward(op: PoolOp, x: torch.Tensor, args: tuple, with_indices: bool):
    """``op`` by poolkit on CPU tensor ``x``, ``args`` in ``op.params`` order."""
    if _torch_threads() != _threads._num_threads:
        B.sync_threads()
    if op.tensor_params:
        args = _numpy_args(op, args)
    try:
        xn = x.numpy()  # the common case first: no grad, a dtype NumPy has
    except (RuntimeError, TypeError):
        xn = B.as_numpy(x)
    if not with_indices and op.positional:  # the common call: a contiguous result as is
        res = _from_numpy(op.forward(xn, *args))
        if res.dtype is x.dtype and op.layout is not B.FOLLOW_2D and x.is_contiguous():
            return res.contiguous()
        return B.restride(op.layout, x, B.cast(res, x.dtype))
    res = op.numpy_forward(xn, args, with_indices)
    layout = _layout(op, with_indices)
    if with_indices:
        out, idx = res
        return (B.restride(layout, x, B.from_numpy(out, x.dtype)),
                B.restride(layout, x, _from_numpy(idx)))
    return B.restride(layout, x, B.from_numpy(res, x.dtype))


def _backward(op: PoolOp, grad: torch.Tensor, x: torch.Tensor, args: tuple) -> torch.Tensor:
    B.sync_threads()
    if op.tensor_params:
        args = _numpy_args(op, args)
    gx = op.backward(B.as_numpy(grad), B.as_numpy(x), **op.kwargs(args))
    return B.restride(op.layout, x, B.from_numpy(gx, x.dtype))


def _double_backward(op: PoolOp, ggx, grad, x, kw, indices: Callable):
    """(d/d grad_output, d/d input) of the backward pass along ggx.

    Ops with indices (max, min, adaptive and fractional max) are piecewise linear: the first
    is ggx gathered at the argmax cells (``indices(x)``, the op's own indices), the second is
    zero. Others: torch's autograd through the torch implementation (which has poolkit's first
    derivative)."""
    if op.indices:
        idx = indices(x.detach())
        r = op.rank
        return ggx.flatten(-r).gather(-1, idx.flatten(-r)).view(idx.shape), None
    create = torch.is_grad_enabled()
    # The schema's [] for "stride = kernel_size" is None to torch.nn.functional.
    kw = {k: None if k == "stride" and isinstance(v, list) and not v else v
          for k, v in kw.items()}
    with torch.enable_grad():
        xr = x.detach().requires_grad_()
        gr = grad.detach().requires_grad_()
        y = op.reference(xr, **kw)
        (gx,) = torch.autograd.grad(y, xr, gr, create_graph=True)
        gg, gxx = torch.autograd.grad(gx, (gr, xr), ggx, allow_unused=True, create_graph=create)
    return gg, gxx


# --------------------------------------------------------------------------------------------
# Custom ops.

#: name -> (forward, forward with indices or None, backward) OpOverloads.
_CUSTOM: dict[str, tuple] = {}


def custom_op(name: str):
    """The ``torch.ops.poolkit`` OpOverloads of op ``name``: (forward, with_indices, backward)."""
    return _CUSTOM[name]


def _fake_out(op: PoolOp, x: torch.Tensor, kw: dict, with_indices: bool):
    rank = op.rank
    torch._check(x.dim() in (rank + 1, rank + 2),
                 lambda: f"{op.name}: input must be {rank + 1}-D or {rank + 2}-D, got {x.dim()}-D")
    out = op.out_size(tuple(x.shape[-rank:]), **kw)
    for o in out:
        torch._check(o >= 0, lambda: f"{op.name}: output size {out} is negative for input "
                                     f"{tuple(x.shape)} and arguments {kw}")
    shape = (*x.shape[:-rank], *out)
    layout = _layout(op, with_indices)
    y = B.empty_like_torch(layout, x, shape)
    if with_indices:
        return y, B.empty_like_torch(layout, x, shape, torch.int64)
    return y


def register(op: PoolOp) -> None:
    """Define ``poolkit::<name>`` (and ``_with_indices``, ``_backward``) for ``op``."""
    lib = torch.library
    sig = ", ".join(f"{p.schema} {p.name}" for p in op.params)
    names, n = op.names, len(op.params)

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

    def bwd_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1])
        ctx.args = tuple(inputs[2:])

    def bwd_backward(ctx, ggx):
        grad, x = ctx.saved_tensors
        kw = dict(zip(names, ctx.args, strict=True))
        gg, gx = _double_backward(op, ggx, grad, x, kw,
                                  lambda t: _CUSTOM[op.name][1](t, *ctx.args)[1])
        return (gg, gx, *([None] * n))

    bwd.register_autograd(bwd_backward, setup_context=bwd_setup)

    defs = []
    for with_indices in (False, True) if op.indices else (False,):
        suffix, ret = ("_with_indices", "(Tensor, Tensor)") if with_indices else ("", "Tensor")

        def impl(input, *args, _wi=with_indices):
            return _forward(op, input, args, _wi)

        def fake(input, *args, _wi=with_indices):
            return _fake_out(op, input, dict(zip(names, args, strict=True)), _wi)

        fwd = lib.custom_op(f"poolkit::{op.name}{suffix}", impl, mutates_args=(),
                            device_types="cpu", schema=f"(Tensor input, {sig}) -> {ret}")
        fwd.register_fake(fake)
        fwd.register_autograd(fwd_backward, setup_context=fwd_setup)
        defs.append(fwd._opoverload)
    _CUSTOM[op.name] = (defs[0], defs[1] if op.indices else None, bwd._opoverload)


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
        ctx.save_for_backward(grad, x)
        ctx.op, ctx.args = op, args
        return _backward(op, grad, x, args)

    @staticmethod
    def backward(ctx, ggx):
        grad, x = ctx.saved_tensors
        op, args = ctx.op, ctx.args
        gg, gx = _double_backward(op, ggx, grad, x, op.kwargs(args),
                                  lambda t: call(op, t, args, True)[1])
        return gg, gx, None, None


# torch's routing queries, bound once: every eager call asks them all, and the attribute
# chains (torch._C._functorch...) cost about as much as the calls.
_has_torch_function = torch._C._has_torch_function_unary
_is_compiling = torch.compiler.is_compiling
_tracing_state = torch._C._get_tracing_state
_dispatch_stack_len = torch._C._len_torch_dispatch_stack
_grad_enabled = torch.is_grad_enabled
_functorch_wrapped = torch._C._functorch.is_functorch_wrapped_tensor
_STRIDED = torch.strided


def _fallback_reason(op: PoolOp, x, compiling: bool) -> str | None:
    """Why poolkit does not compute ``op`` on ``x`` (None: it does)."""
    if not isinstance(x, torch.Tensor):
        return "not a tensor"
    if not x.is_cpu:
        return "device"
    if x.layout is not _STRIDED:
        return "layout"
    if x.dtype not in op.dtypes:
        return "dtype"
    if not compiling:
        if _fwAD._current_level >= 0:
            return "forward-mode AD"
        if _functorch_wrapped(x):
            return "torch.func transform"
    return None


def _fallback(op: PoolOp, x, kw: dict, with_indices: bool, reason: str):
    try:  # torch never meets a size beyond 2**31 - 1 (see call): poolkit's error stands
        op.normalize(kw)
    except SizeOutOfRange:
        raise
    except (ValueError, TypeError):
        pass  # anything else poolkit refuses, torch judges
    if not torch.compiler.is_compiling():
        FALLBACKS[op.name, reason] += 1
    return _torch(op, x, kw, with_indices)


def _torch(op: PoolOp, x, kw: dict, with_indices: bool):
    """``op``'s torch implementation on ``x``."""
    if op.indices:
        return op.reference(x, **kw, return_indices=with_indices)
    return op.reference(x, **kw)


def _public(op: PoolOp):
    from . import functional

    return getattr(functional, op.name)


_PLAIN = (torch.Tensor, torch.nn.Parameter)


def call(op: PoolOp, x, args: tuple, with_indices: bool = False):
    """Run ``op`` on tensor ``x`` with torch-style arguments ``args`` (in ``op.params`` order),
    routed as the module docstring says."""
    if len(args) != len(op.names):
        raise TypeError(f"{op.name}: expected {len(op.names)} arguments after input, got "
                        f"{len(args)}")
    if _has_torch_function(x):
        kw = op.kwargs(args)
        if op.indices:
            kw["return_indices"] = with_indices
        return torch.overrides.handle_torch_function(_public(op), (x,), x, **kw)
    run = args  # what poolkit computes with: args after op.prepare, where it has one
    # Every routing question in one expression, answered yes for the common call: a plain
    # CPU tensor of a dtype the op computes, no transform, tracing or dispatch mode, no
    # argument to prepare.
    if not (type(x) in _PLAIN and x.is_cpu and x.layout is _STRIDED and x.dtype in op.dtypes
            and op.prepare is None and not _is_compiling() and _fwAD._current_level < 0
            and not _functorch_wrapped(x) and _tracing_state() is None
            and not _dispatch_stack_len()):
        # The same questions one by one: what goes to torch (and why), what to the custom op.
        # torch is always handed the caller's own arguments (it resolves and draws them itself).
        compiling = _is_compiling()
        reason = _fallback_reason(op, x, compiling)
        if reason is not None:
            return _fallback(op, x, op.kwargs(args), with_indices, reason)
        if op.prepare is not None:
            run = tuple(op.prepare(x, op.kwargs(args), op.rank).values())
        if (type(x) not in _PLAIN or compiling or _tracing_state() is not None
                or _dispatch_stack_len()):
            try:
                nkw = op.normalize(op.kwargs(run))
            except (ValueError, TypeError):  # (a SizeOutOfRange: _fallback raises it again)
                if op.module is None:
                    raise
                return _fallback(op, x, op.kwargs(args), with_indices, "arguments")
            fwd, fwd_idx, _ = _CUSTOM[op.name]
            return (fwd_idx if with_indices else fwd)(x, *nkw.values())
    try:
        if x.requires_grad and _grad_enabled():
            return _Pool.apply(x, op, run, with_indices)
        return _forward(op, x, run, with_indices)
    except SizeOutOfRange:
        # A size, or a dilated window, beyond 2**31 - 1: torch 2.13's CPU pooling crashes
        # (max_pool1d with kernel_size 2**63 - 1: a segfault; max_pool3d with 2**31 - 1 and
        # dilation 2: heap corruption in its backward) or hangs (fractional_max_pool3d with
        # -2**63) on such sizes where it does not refuse them, so poolkit's error stands.
        raise
    except (ValueError, TypeError):
        # poolkit's checks reject these arguments (or this input): torch decides, for the
        # ops torch has; poolkit's own ops keep poolkit's error.
        if op.module is None:
            raise
        return _fallback(op, x, op.kwargs(args), with_indices, "arguments")


for _op in OPS.values():
    register(_op)
