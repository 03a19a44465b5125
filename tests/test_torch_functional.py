"""poolkit.torch.functional against torch.nn.functional: signatures; values, indices, gradients,
dtypes and memory layouts of max and average pooling through the tensor bridge, drawn at random.
(Every op of the table, the family included: test_torch_ops.py.)

The engine's own semantics (ties, NaN, padding, divisors) are tested on NumPy arrays in
test_functional.py; here the oracle is torch 2.13 itself, on tensors of every layout the bridge
handles differently (contiguous, channels-last memory, strided views, permuted memory,
unbatched) and every dtype it converts (float16/bfloat16 computed in float32, integers).
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import make_values, seeds, torch_args
from hypothesis import given, note, settings
from hypothesis import strategies as st

import poolkit.torch.functional as PTF
from poolkit.torch.ops import FALLBACKS, OPS

RANKS = (1, 2, 3)
FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
INTS = (torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)
LAYOUTS = ("contiguous", "channels_last", "strided", "permuted")
# Average pooling: relative tolerance per dtype (float16/bfloat16: one rounding of a float32
# result whose summation order may differ from torch's; float32/64: summation order).
RTOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 2e-6, torch.float64: 1e-12}


def with_layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same logical tensor with another memory layout."""
    nd = x.dim()
    if layout == "contiguous":
        return x.contiguous()
    if layout == "channels_last":  # NLC / NHWC / NDHWC memory
        perm = (0, *range(2, nd), 1)
        back = (0, nd - 1, *range(1, nd - 1))
        return x.permute(perm).contiguous().permute(back)
    if layout == "strided":
        big = torch.zeros(*x.shape[:-1], 2 * x.shape[-1], dtype=x.dtype)
        big[..., ::2] = x
        return big[..., ::2]
    if layout == "permuted":  # last two dims swapped in memory
        return x.transpose(-1, -2).contiguous().transpose(-1, -2) if nd >= 3 else x
    raise AssertionError(layout)


def significant_strides(t: torch.Tensor) -> tuple:
    """Strides of the dims of size > 1 (the others never address memory)."""
    return tuple(s for s, n in zip(t.stride(), t.shape, strict=True) if n > 1)


def assert_same(ours: torch.Tensor, ref: torch.Tensor, rtol: float = 0.0, atol: float = 0.0):
    torch.testing.assert_close(ours, ref, rtol=rtol, atol=atol, equal_nan=True)


def make_tensor(rng, shape, dtype, kind):
    np_dtype = torch.empty((), dtype=torch.float32 if dtype == torch.bfloat16 else dtype).numpy()
    x = make_values(rng, shape, np_dtype.dtype, kind)
    return torch.from_numpy(x).to(dtype)


def _fallbacks() -> int:
    return sum(FALLBACKS.values())


# --------------------------------------------------------------------------------------------
# Signatures.


def _torch_signature(name: str) -> inspect.Signature:
    if hasattr(TF, name + "_with_indices"):  # a boolean_dispatch wrapper: its indices twin
        return inspect.signature(getattr(TF, name + "_with_indices"))
    fn = getattr(TF, name)
    try:
        return inspect.signature(fn)
    except ValueError:  # a builtin: its docstring's first line is the signature
        line = fn.__doc__.strip().splitlines()[0]
        ns: dict = {}
        exec(f"def {line.split(' -> ')[0]}: pass", {}, ns)
        return inspect.signature(ns[name])


def _params(sig: inspect.Signature) -> list:
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


@pytest.mark.parametrize("name", sorted(OPS))
def test_functional_signature_is_torchs(name):
    """torch's names, order, kinds and defaults (annotations aside); poolkit's for its own."""
    ours = _params(inspect.signature(getattr(PTF, name)))
    if hasattr(TF, name):
        assert ours == _params(_torch_signature(name))
    else:
        import poolkit.functional as PF

        assert ours == _params(inspect.signature(getattr(PF, name)))


# --------------------------------------------------------------------------------------------
# Parity with torch.


def _draw_case(data, rank, kind):
    a = data.draw(torch_args(rank, dilation=kind == "max", max_extra=3,
                             kernel_within_input=kind == "avg" and rank == 3))
    kw = dict(kernel_size=a["kernel_size"], stride=a["stride"], padding=a["padding"],
              ceil_mode=a["ceil_mode"])
    if kind == "max":
        kw["dilation"] = a["dilation"]
        dtype = data.draw(st.sampled_from(FLOATS + INTS))
    else:
        kw["count_include_pad"] = data.draw(st.booleans())
        if rank > 1:
            kw["divisor_override"] = data.draw(st.sampled_from([None, None, 3, -2]))
        dtype = data.draw(st.sampled_from(FLOATS))
    batched = data.draw(st.booleans())
    channels = data.draw(st.integers(1, 3))
    shape = ((data.draw(st.integers(1, 2)),) if batched else ()) + (channels,) + a["spatial"]
    layout = data.draw(st.sampled_from(LAYOUTS)) if batched else "contiguous"
    values = data.draw(st.sampled_from(
        ("ties", "distinct", "specials", "neginf", "wide") if kind == "max"
        else ("ties", "distinct", "specials")))
    return kw, dtype, shape, layout, values


# The engine's rules are drawn at length in test_functional.py; here the bridge is under test.
BRIDGE = settings(max_examples=max(10, settings().max_examples // 2))


@BRIDGE
@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_max_pool_matches_torch(rank, data, seed):
    kw, dtype, shape, layout, values = _draw_case(data, rank, "max")
    note(f"{kw} {dtype} {shape} {layout} {values}")
    rng = np.random.default_rng(seed)
    x = with_layout(make_tensor(rng, shape, dtype, values), layout)
    name = f"max_pool{rank}d"
    before = _fallbacks()

    ref, ref_idx = getattr(TF, name)(x, **kw, return_indices=True)
    out, idx = getattr(PTF, name)(x, **kw, return_indices=True)
    assert_same(out, ref)
    assert significant_strides(out) == significant_strides(ref)
    assert significant_strides(idx) == significant_strides(ref_idx)
    # A window wholly in the padding (dilation) has no defined index in torch: leave it out.
    # Independent rule: such a window pools to -inf even on an all-zero input.
    empty = torch.isneginf(getattr(TF, name)(torch.zeros(shape), **kw))
    assert idx.dtype == torch.int64
    assert torch.equal(idx[~empty], ref_idx[~empty])

    plain = getattr(PTF, name)(x, **kw)
    assert_same(plain, ref)
    if not (rank == 1 and dtype in INTS):  # torch's max_pool1d_impl has no integer kernel
        assert significant_strides(plain) == significant_strides(getattr(TF, name)(x, **kw))
    assert _fallbacks() == before, FALLBACKS

    if dtype in FLOATS:
        g = make_tensor(rng, ref.shape, dtype, "ties").masked_fill(empty, 0)
        xr = x.detach().requires_grad_()
        (gx,) = torch.autograd.grad(getattr(PTF, name)(xr, **kw), xr, g)
        xt = x.detach().requires_grad_()
        (gt,) = torch.autograd.grad(getattr(TF, name)(xt, **kw), xt, g)
        # float16/bfloat16 gradients: the sum of a few small integers, exact in either order.
        assert_same(gx, gt)
        assert gx.dtype == dtype


@BRIDGE
@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_avg_pool_matches_torch(rank, data, seed):
    kw, dtype, shape, layout, values = _draw_case(data, rank, "avg")
    note(f"{kw} {dtype} {shape} {layout} {values}")
    rng = np.random.default_rng(seed)
    x = with_layout(make_tensor(rng, shape, dtype, values), layout)
    name = f"avg_pool{rank}d"
    before = _fallbacks()

    # float16/bfloat16: poolkit computes in float32 and rounds once, so the oracle is torch in
    # float32, rounded (torch has no float16/bfloat16 avg_pool3d on the CPU at all).
    low = dtype in (torch.float16, torch.bfloat16)
    xt = x.float() if low else x
    ref = getattr(TF, name)(xt, **kw).to(dtype)
    out = getattr(PTF, name)(x, **kw)
    scale = float(x.float().nan_to_num(0, 0, 0).abs().max()) or 1.0
    rtol = RTOL[dtype]
    assert_same(out, ref, rtol=rtol, atol=rtol * scale)
    assert significant_strides(out) == significant_strides(getattr(TF, name)(xt, **kw))
    assert _fallbacks() == before, FALLBACKS

    g = make_tensor(rng, ref.shape, dtype, "ties")
    xr = x.detach().requires_grad_()
    (gx,) = torch.autograd.grad(getattr(PTF, name)(xr, **kw), xr, g)
    xt = xt.detach().requires_grad_()
    (gt,) = torch.autograd.grad(getattr(TF, name)(xt, **kw), xt, g.to(xt.dtype))
    assert gx.dtype == dtype
    # |g| <= 3, and up to 4**rank windows overlap a cell.
    assert_same(gx, gt.to(dtype), rtol=rtol, atol=rtol * 3 * 4**rank)
