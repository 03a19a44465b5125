"""torch.nn.functional's pooling functions, computed by poolkit: same names, argument order,
defaults and results (values, indices, gradients, dtype, memory layout).

Each function takes what its torch twin takes and runs through :func:`poolkit.torch.ops.call`:
poolkit's kernels on CPU tensors of the dtypes it computes, torch's own op for everything else
(other devices, dtypes, ``torch.func`` transforms, forward-mode AD, arguments poolkit's checks
reject), a registered custom op (``torch.ops.poolkit.*``) under ``torch.compile``. Output sizes,
edge rules and the divisor of average pooling are those of :mod:`poolkit.functional`.
"""

from __future__ import annotations

from .ops import OPS, call

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d"]

_MAX1, _MAX2, _MAX3 = OPS["max_pool1d"], OPS["max_pool2d"], OPS["max_pool3d"]
_AVG1, _AVG2, _AVG3 = OPS["avg_pool1d"], OPS["avg_pool2d"], OPS["avg_pool3d"]


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool1d on (N, C, L) or (C, L)."""
    return call(_MAX1, input, (kernel_size, stride, padding, dilation, ceil_mode), return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool2d on (N, C, H, W) or (C, H, W); channels_last in,
    channels_last out. Indices are int64 ``h*W + w`` per (N, C) plane."""
    return call(_MAX2, input, (kernel_size, stride, padding, dilation, ceil_mode), return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """torch.nn.functional.max_pool3d on (N, C, D, H, W) or (C, D, H, W)."""
    return call(_MAX3, input, (kernel_size, stride, padding, dilation, ceil_mode), return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """torch.nn.functional.avg_pool1d on (N, C, L) or (C, L)."""
    return call(_AVG1, input, (kernel_size, stride, padding, ceil_mode, count_include_pad))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool2d on (N, C, H, W) or (C, H, W)."""
    return call(_AVG2, input,
                (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """torch.nn.functional.avg_pool3d on (N, C, D, H, W) or (C, D, H, W)."""
    return call(_AVG3, input,
                (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override))
