"""Tensors in and out of poolkit's NumPy engine: views, dtypes, memory layouts, threads.

- In: a CPU strided tensor becomes a NumPy view of the same memory (``Tensor.numpy``), whatever
  its strides; the engine pools channels-first and channels-last memory in place and copies only
  other layouts. bfloat16 (which NumPy lacks) is computed in float32; float16 is passed as is
  (the engine computes it in float32).
- Out: ``torch.from_numpy`` on the engine's fresh array (no copy), cast back to bfloat16 where
  needed, then given the memory layout torch's own op gives for that input (:func:`restride`),
  which is a copy only where torch's rule and the engine's layout differ.
- Threads: poolkit's kernel threads follow ``torch.get_num_threads()`` at every call
  (:func:`sync_threads`), so torch's intra-op pool and poolkit's never run at once with more
  threads than torch was told to use, also in DataLoader workers (torch sets 1 there).
"""

from __future__ import annotations

import numpy as np
import torch
from torch._prims_common import suggest_memory_format

from .. import _threads

__all__ = ["as_numpy", "from_numpy", "restride", "empty_like_torch", "sync_threads",
           "FOLLOW", "FOLLOW_2D", "CONTIGUOUS", "MAX_DTYPES", "FLOAT_DTYPES"]

#: NumPy has no bfloat16: it is computed in float32.
_BF16 = torch.bfloat16

#: Float dtypes poolkit computes (float16/bfloat16 in float32, returned in their dtype).
FLOAT_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
#: Max (and min) pooling also takes the integer dtypes torch's CPU max pooling takes.
MAX_DTYPES = FLOAT_DTYPES | {torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64}


def as_numpy(t: torch.Tensor) -> np.ndarray:
    """A NumPy array of ``t``'s values: a view of its memory unless ``t`` is bfloat16."""
    if t.dtype is _BF16:
        t = t.detach().to(torch.float32)
    elif t.requires_grad:
        t = t.detach()
    return t.numpy()


def cast(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` in ``dtype`` (itself when it is already: dtypes are singletons)."""
    return t if t.dtype is dtype else t.to(dtype)


def from_numpy(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``a``'s memory (no copy), cast to ``dtype`` if ``a`` was computed wider."""
    return cast(torch.from_numpy(a), dtype)


_torch_threads = torch.get_num_threads


def sync_threads() -> None:
    """Make poolkit's kernel threads what torch's are now."""
    n = _torch_threads()  # ~50 ns: cheap enough to ask at every call
    if n != _threads._num_threads:
        _threads.set_num_threads(n)


# --------------------------------------------------------------------------------------------
# Output memory layouts. torch 2.13 CPU, checked per op in tests/test_torch_tensors.py:
# max_pool2d, avg_pool2d and max_pool3d give their output (and indices) the input's suggested
# memory format (channels_last for NHWC-strided 4-D input, channels_last_3d for NDHWC 5-D);
# avg_pool3d always gives a contiguous output; max_pool1d with indices and avg_pool1d run as the
# 2-D op on input.unsqueeze(-2), so an (N, C, L) input with NLC strides gives NLC strides;
# max_pool1d without indices is always contiguous.

FOLLOW = "follow"  # the input's suggested memory format
FOLLOW_2D = "follow_2d"  # as the 2-D op on input.unsqueeze(-2), squeezed back
CONTIGUOUS = "contiguous"


def _suggest(x: torch.Tensor) -> torch.memory_format:
    # torch's suggest_memory_format (its Python form, which torch's own meta kernels use and
    # which matched the eager CPU outputs on every 4-D stride permutation we tried); a
    # contiguous tensor is decided without it, as it costs ~3 us.
    if x.is_contiguous():
        return torch.contiguous_format
    return suggest_memory_format(x)


def _format(rule: str, x: torch.Tensor) -> torch.memory_format:
    if rule == FOLLOW:
        return _suggest(x)
    if rule == FOLLOW_2D:
        return _suggest(x.unsqueeze(-2))
    return torch.contiguous_format


def restride(rule: str, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``t``, an output computed from input ``x``, in the memory layout torch's op gives
    (no copy when it already is)."""
    if rule != FOLLOW_2D and (rule == CONTIGUOUS or x.is_contiguous()):
        return t.contiguous()  # the common case first (no memory_format to parse)
    fmt = _format(rule, x)
    if fmt is torch.contiguous_format:
        return t.contiguous()
    if rule == FOLLOW_2D:
        return t.unsqueeze(-2).contiguous(memory_format=fmt).squeeze(-2)
    return t.contiguous(memory_format=fmt)


def empty_like_torch(rule: str, x: torch.Tensor, shape, dtype=None) -> torch.Tensor:
    """An uninitialised output of ``shape`` laid out as torch's op lays out its output for
    input ``x`` (for fake kernels: the strides must equal the real kernel's)."""
    fmt = _format(rule, x)
    dtype = dtype or x.dtype
    if rule == FOLLOW_2D and fmt != torch.contiguous_format:
        shape4 = (*shape[:-1], 1, shape[-1])
        return torch.empty(shape4, dtype=dtype, device=x.device, memory_format=fmt).squeeze(-2)
    return torch.empty(shape, dtype=dtype, device=x.device, memory_format=fmt)
