"""PyTorch-convention pooling on NumPy arrays: a drop-in for ``torch.nn.functional``'s pooling.

Layout (N, C, *spatial) or unbatched (C, *spatial); names, argument order and defaults are
torch's. Per spatial dim, with input ``L``, kernel ``k``, stride ``s`` (default ``k``), padding
``p`` and dilation ``d``::

    out = floor((L + 2p - d*(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1
    if ceil_mode and (out-1)*s >= L + p: out -= 1     # no window may start in the right padding

Accepted as torch 2.13 accepts: kernel, stride, dilation > 0; 0 <= p <= k // 2 (the raw kernel
size, also with dilation); every output dim >= 1; avg_pool3d also needs L >= k in every dim
(padding notwithstanding); N = 0 allowed, a zero-size C or spatial dim rejected. Everything
else raises ValueError or TypeError before any kernel runs.

Max pooling: padding is never read; ties go to the first maximum in row-major window order; a NaN
in the window makes the output NaN and its index the last NaN's. Indices are int64, flattened
per (N, C) plane over the spatial dims (``h*W + w``, ``d*H*W + h*W + w``).

Average pooling: with ``start = o*s - p`` and ``end = min(start + k, L + p)``, the divisor is
``divisor_override``, else ``end - start`` per dim when ``count_include_pad`` (padding counts,
the ceil_mode overhang does not), else the number of in-bounds cells; the product over dims.
A window wholly in the padding gives 0.

For every forward ``F`` there is ``F_backward(grad_output, input, <F's arguments>)`` giving the
gradient with respect to ``input`` that torch autograd gives (max: exactly, same tie rule;
average: to float rounding). Differences from torch: average pooling of integer arrays is
rejected (torch truncates int64 averages); float16 is computed in float32.
"""

from __future__ import annotations

import numpy as np

from . import engine
from .shapes import PoolSpec, torch_spec

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "max_pool1d_backward",
    "max_pool2d_backward",
    "max_pool3d_backward",
    "avg_pool1d_backward",
    "avg_pool2d_backward",
    "avg_pool3d_backward",
]


def _prepare(input, rank: int, mode: str, op: str, **kw) -> tuple[np.ndarray, PoolSpec, bool]:
    """Batched view of ``input`` (adds N for unbatched input) and its spec."""
    x = engine.check_input(input, mode, "input", op=op)
    if x.ndim not in (rank + 1, rank + 2):
        raise ValueError(
            f"{op}: input must be {rank + 1}-D (C, *spatial) or {rank + 2}-D (N, C, *spatial) "
            f"for {rank}-D pooling, got a {x.ndim}-D array of shape {x.shape}"
        )
    batched = x.ndim == rank + 2
    checked = x.shape[1:] if batched else x.shape
    if any(n == 0 for n in checked):
        raise ValueError(
            f"{op}: input of shape {x.shape} has a zero-size channel or spatial dim; "
            f"only the batch dim N of a {rank + 2}-D input may be 0"
        )
    if not batched:
        x = x[None]
    spec = torch_spec(x.shape[2:], op=op, **kw)
    return x, spec, batched


def _max_pool(rank, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    op = f"max_pool{rank}d"
    x, spec, batched = _prepare(
        input, rank, "max", op,
        kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
        ceil_mode=ceil_mode,
    )
    res = engine.pool(x, spec, "max", return_indices=bool(return_indices))
    if batched:
        return res
    if return_indices:
        return res[0][0], res[1][0]
    return res[0]


def _avg_pool(rank, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor):
    op = f"avg_pool{rank}d"
    x, spec, batched = _prepare(
        input, rank, "avg", op,
        kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
        count_include_pad=count_include_pad, divisor_override=divisor,
        kernel_within_input=rank == 3,
    )
    out = engine.pool(x, spec, "avg")
    return out if batched else out[0]


def _backward(rank, mode, grad_output, input, **kw):
    op = f"{mode}_pool{rank}d_backward"
    if mode == "avg" and rank == 3:
        kw["kernel_within_input"] = True
    x, spec, batched = _prepare(input, rank, mode, op, **kw)
    out_shape = engine.output_shape(x.shape, spec, False)
    g = engine.check_grad(grad_output, x, out_shape if batched else out_shape[1:], op=op)
    gx = engine.pool_backward(g if batched else g[None], x, spec, mode)
    return gx if batched else gx[0]


# --------------------------------------------------------------------------------------------
# Max pooling.


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling of (N, C, L) or (C, L); see the module docstring for the rules."""
    return _max_pool(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling of (N, C, H, W) or (C, H, W); see the module docstring for the rules.

    Output (N, C, H_out, W_out); with ``return_indices`` also int64 indices ``h*W + w``.
    """
    return _max_pool(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """3-D max pooling of (N, C, D, H, W) or (C, D, H, W); indices are ``d*H*W + h*W + w``."""
    return _max_pool(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    """Gradient of :func:`max_pool1d` with respect to ``input``."""
    return _backward(1, "max", grad_output, input, kernel_size=kernel_size, stride=stride,
                     padding=padding, dilation=dilation, ceil_mode=ceil_mode)


def max_pool2d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    """Gradient of :func:`max_pool2d` with respect to ``input``."""
    return _backward(2, "max", grad_output, input, kernel_size=kernel_size, stride=stride,
                     padding=padding, dilation=dilation, ceil_mode=ceil_mode)


def max_pool3d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    """Gradient of :func:`max_pool3d` with respect to ``input``."""
    return _backward(3, "max", grad_output, input, kernel_size=kernel_size, stride=stride,
                     padding=padding, dilation=dilation, ceil_mode=ceil_mode)


# --------------------------------------------------------------------------------------------
# Average pooling.


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """1-D average pooling of (N, C, L) or (C, L); see the module docstring for the divisor.

    ``divisor_override`` is an extension: torch's avg_pool1d has no such argument.
    """
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling of (N, C, H, W) or (C, H, W); see the module docstring."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """3-D average pooling of (N, C, D, H, W) or (C, D, H, W); see the module docstring."""
    return _avg_pool(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool1d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool1d` with respect to ``input``."""
    return _backward(1, "avg", grad_output, input, kernel_size=kernel_size, stride=stride,
                     padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                     divisor_override=divisor_override)


def avg_pool2d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool2d` with respect to ``input``."""
    return _backward(2, "avg", grad_output, input, kernel_size=kernel_size, stride=stride,
                     padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                     divisor_override=divisor_override)


def avg_pool3d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`avg_pool3d` with respect to ``input``."""
    return _backward(3, "avg", grad_output, input, kernel_size=kernel_size, stride=stride,
                     padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad,
                     divisor_override=divisor_override)
