"""Torch implementations of poolkit's semantics where torch has no op or a different one.

They are what poolkit.torch falls back to (tensors on another device, dtypes, ``torch.func``
transforms, forward-mode AD) for poolkit's own ops (min, BlurPool, MaxBlurPool, APS) and for LP
pooling, whose torch op gives NaN on negative input; and they give every op its second
derivative (through torch's autograd). The tests check each against poolkit's kernels.
Sizes and filters come from :mod:`poolkit.shapes`; the checks are poolkit's.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as TF

from ..errors import InvalidType, InvalidValue
from ..shapes import batched_rank, binomial_filter, blur_spec, normalize_tuple, torch_spec

__all__ = ["min_pool", "lp_pool", "blur_pool", "max_blur_pool2d", "aps_pool2d"]


def _flip(x: torch.Tensor) -> torch.Tensor:
    # An order-reversing bijection (NaN stays NaN, integers cannot overflow).
    return torch.neg(x) if x.is_floating_point() else torch.bitwise_not(x)


def min_pool(rank: int):
    """min_poolNd: max pooling of order-reversed values."""
    max_pool = getattr(TF, f"max_pool{rank}d")

    def min_poolNd(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   return_indices=False):
        # poolkit's checks (min pooling is poolkit's op): torch's max_pool1d loops for ever on
        # a kernel_size of 10**18, for one.
        op = f"min_pool{rank}d"
        batched_rank(input.shape, rank, op)
        torch_spec(tuple(int(n) for n in input.shape[-rank:]), kernel_size, stride, padding,
                   dilation, ceil_mode, op=op)
        res = max_pool(_flip(input), kernel_size, stride, padding, dilation, ceil_mode=ceil_mode,
                       return_indices=return_indices)
        return (_flip(res[0]), res[1]) if return_indices else _flip(res)

    min_poolNd.__name__ = f"min_pool{rank}d"
    return min_poolNd


def _check_p(norm_type, op: str) -> float:
    if isinstance(norm_type, bool) or not isinstance(norm_type, int | float):
        raise InvalidType(f"{op}: norm_type must be a number > 0, got {norm_type!r}")
    p = float(norm_type)
    if not p > 0:
        raise InvalidValue(f"{op}: norm_type must be > 0 (inf allowed), got {norm_type!r}")
    return p


def lp_pool(rank: int):
    """lp_poolNd as poolkit defines it: (sum |x|^p)^(1/p), max |x| for p = inf."""
    max_pool, avg_pool = getattr(TF, f"max_pool{rank}d"), getattr(TF, f"avg_pool{rank}d")

    def lp_poolNd(input, norm_type, kernel_size, stride=None, ceil_mode=False):
        op = f"lp_pool{rank}d"
        p = _check_p(norm_type, op)
        # poolkit's checks (LP pooling here is poolkit's, not torch's): torch's max_pool1d
        # loops for ever on a kernel_size of 2**62, and torch's errors for the same bad input
        # depend on which of its two ops meets it first
        k = normalize_tuple(kernel_size, rank, "kernel_size")
        batched_rank(input.shape, rank, op)
        # (torch's avg_pool3d, which this runs on, needs the kernel inside the input)
        torch_spec(tuple(int(n) for n in input.shape[-rank:]), k, stride, 0, 1, ceil_mode,
                   kernel_within_input=rank == 3, op=op)
        if input.dtype == torch.bool:  # torch has no bool abs, and no bool max pooling
            if math.isinf(p):  # max |x| of bools: any, a bool as max |x| of ints is an int
                return max_pool(input.to(torch.float32), kernel_size, stride, 0, 1,
                                ceil_mode=ceil_mode).to(torch.bool)
            mag = input
        else:
            mag = input.abs()
        if math.isinf(p):
            return max_pool(mag, kernel_size, stride, 0, 1, ceil_mode=ceil_mode)
        mean = avg_pool(mag.pow(p), kernel_size, stride, 0, ceil_mode)
        return mean.mul(math.prod(k)).pow(1.0 / p)

    lp_poolNd.__name__ = f"lp_pool{rank}d"
    return lp_poolNd


_TORCH_PAD = {0: "reflect", 1: "replicate", 2: "constant"}


def blur_pool(rank: int):
    """blur_poolNd: the binomial filter over padded input, depthwise, with a stride."""
    conv = getattr(TF, f"conv{rank}d")

    def blur_poolNd(input, filt_size=4, stride=2, pad_type="reflect"):
        op = f"blur_pool{rank}d"
        batched = batched_rank(input.shape, rank, op)
        spec = blur_spec(tuple(input.shape[-rank:]), filt_size, stride, pad_type, op=op)
        x = input if batched else input.unsqueeze(0)
        if spec.filt == 1:
            out = x[(..., *(slice(None, None, s) for s in spec.stride))]
        else:
            x = TF.pad(x, [spec.pad_before, spec.pad_after] * rank, mode=_TORCH_PAD[spec.mode])
            taps = torch.as_tensor(binomial_filter(spec.filt), dtype=x.dtype, device=x.device)
            w = taps if rank == 1 else torch.outer(taps, taps)
            c = x.shape[1]
            out = conv(x, w.expand(c, 1, *w.shape), stride=spec.stride, groups=c)
        return out if batched else out[0]

    blur_poolNd.__name__ = f"blur_pool{rank}d"
    return blur_poolNd


_blur2d = blur_pool(2)


def max_blur_pool2d(input, kernel_size=2, stride=2, filt_size=4, pad_type="reflect"):
    """Max pooling with stride 1, then BlurPool."""
    return _blur2d(TF.max_pool2d(input, kernel_size, 1), filt_size, stride, pad_type)


def aps_pool2d(input, stride=2, norm=2):
    """Adaptive polyphase sampling: per sample, the polyphase component of largest norm."""
    op = "aps_pool2d"
    batched = batched_rank(input.shape, 2, op)
    s = normalize_tuple(stride, 2, "stride")
    if min(s) < 1:
        raise InvalidValue(f"{op}: stride must be >= 1, got {stride!r}")
    p = _check_p(norm, op)
    x = input if batched else input.unsqueeze(0)
    pad = [0, (-x.shape[3]) % s[1], 0, (-x.shape[2]) % s[0]]
    if any(pad):
        x = TF.pad(x, pad, mode="circular")
    # Phases with the first spatial offset varying fastest (Chaman & Dokmanic's order).
    comps = [x[:, :, i::s[0], j::s[1]] for j in range(s[1]) for i in range(s[0])]
    a = torch.stack([c.reshape(x.shape[0], -1) for c in comps], 1).double().abs()
    norms = a.amax(2) if math.isinf(p) else a.pow(p).sum(2)
    norms = torch.where(norms.isnan(), math.inf, norms)  # a NaN norm counts as largest
    phase = norms.argmax(1)  # the first maximum
    out = torch.stack(comps, 1)[torch.arange(x.shape[0], device=x.device), phase]
    return out if batched else out[0]
