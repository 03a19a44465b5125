"""Every op of poolkit.torch's table: results against torch (or, for poolkit's own ops, against
their torch implementation), the eager path against the custom ops, opcheck, gradcheck and
gradgradcheck. One sample problem per op (overlapping, padded windows where the op has them),
on contiguous, channels-last and unbatched input.

Adding an op to the table means adding its sample to SAMPLES (and, if torch has it, nothing
else: the oracle is torch's function of the same name).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF

import poolkit.torch.functional as PTF
from poolkit.torch import _reference as R
from poolkit.torch.ops import FALLBACKS, OPS, call, custom_op

LAYOUTS = ("contiguous", "channels_last", "unbatched")


def _samples(rank, n, c, dtype):
    g = torch.Generator().manual_seed(rank)
    return torch.rand(n, c, rank, generator=g, dtype=dtype)


def _unpool_input(rank, dtype):
    """Values and indices of a non-overlapping max pooling (no duplicate indices: torch's
    result with duplicates depends on thread timing)."""
    g = torch.Generator().manual_seed(rank)
    big = torch.randn(2, 3, *(8,) * rank, generator=g, dtype=dtype)
    return getattr(TF, f"max_pool{rank}d")(big, 2, return_indices=True)


# name -> (spatial size, args in op.params order, without the tensor arguments built per input)
SAMPLES = {}
for _r in (1, 2, 3):
    SAMPLES[f"max_pool{_r}d"] = (7, (3, 2, 1, 2 if _r == 1 else 1, True))
    SAMPLES[f"min_pool{_r}d"] = (7, (3, 2, 1, 1, True))
    SAMPLES[f"avg_pool{_r}d"] = (7, (3, 2, 1, True, False) + (() if _r == 1 else (3,)))
    SAMPLES[f"adaptive_max_pool{_r}d"] = (7, ((3, None, 4)[:_r] if _r > 1 else 3,))
    SAMPLES[f"adaptive_avg_pool{_r}d"] = (7, ((5, None, 3)[:_r] if _r > 1 else 5,))
    SAMPLES[f"lp_pool{_r}d"] = (7, (3.0, 3, 2, True))
    SAMPLES[f"max_unpool{_r}d"] = (4, (2, 2, 0, None))
for _r in (2, 3):
    SAMPLES[f"fractional_max_pool{_r}d"] = (7, (2, (4,) * _r, None))
SAMPLES["blur_pool1d"] = (7, (4, 2, "reflect"))
SAMPLES["blur_pool2d"] = (7, (3, 2, "repl"))
SAMPLES["max_blur_pool2d"] = (8, (2, 2, 4, "reflect"))
SAMPLES["aps_pool2d"] = (7, (2, 2))


def test_every_op_has_a_sample():
    assert sorted(SAMPLES) == sorted(OPS)


def sample(name, layout="contiguous", dtype=torch.float64):
    """(x, args) for op ``name``: args complete (tensor arguments included), torch-style."""
    op = OPS[name]
    r = op.rank
    size, args = SAMPLES[name]
    if name.startswith("max_unpool"):
        x, idx = _unpool_input(r, dtype)
        args = (idx, *args)
    else:
        g = torch.Generator().manual_seed(len(name) * 7 + r)
        x = torch.randn(2, 3, *(size,) * r, generator=g, dtype=dtype)
    if name.startswith("fractional"):
        args = (*args, _samples(r, 2, 3, dtype))
    if layout == "channels_last":
        nd = x.dim()
        x = x.permute(0, *range(2, nd), 1).contiguous().permute(0, nd - 1, *range(1, nd - 1))
    elif layout == "unbatched":
        x = x[0]
        args = tuple(a[0] if isinstance(a, torch.Tensor) and a.dim() == x.dim() + 1
                     else a[:1] if isinstance(a, torch.Tensor) else a for a in args)
    return x, args


def _oracle(name):
    """torch's function of the same name (LP: on |x|, where poolkit and torch agree), else the
    op's torch implementation."""
    if name.startswith("lp_pool"):
        fn = getattr(TF, name)
        return lambda x, **kw: fn(x.abs(), **kw)
    return getattr(TF, name, None) or OPS[name].reference


def _kw(name, args, with_indices=False):
    kw = dict(zip(OPS[name].names, args, strict=True))
    if OPS[name].indices:
        kw["return_indices"] = with_indices
    return kw


def _significant(t):
    return tuple(s for s, n in zip(t.stride(), t.shape, strict=True) if n > 1)


def _close(a, b, exact, dtype):
    tol = 0 if exact else (1e-12 if dtype == torch.float64 else 2e-5)
    torch.testing.assert_close(a, b, rtol=tol, atol=tol, equal_nan=True)


EXACT = ("max_pool", "min_pool", "adaptive_max", "fractional", "max_unpool", "aps")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", sorted(OPS))
def test_matches_torch(name, layout, dtype):
    op = OPS[name]
    x, args = sample(name, layout, dtype)
    exact = name.startswith(EXACT)
    oracle = _oracle(name)
    before = sum(FALLBACKS.values())
    for with_indices in (False, True) if op.indices else (False,):
        kw = _kw(name, args, with_indices)
        xo, xr = x.detach().requires_grad_(), x.detach().requires_grad_()
        ours, ref = getattr(PTF, name)(xo, **kw), oracle(xr, **kw)
        if with_indices:
            assert torch.equal(ours[1], ref[1]) and ours[1].dtype == torch.int64
            if hasattr(TF, name):
                assert _significant(ours[1]) == _significant(ref[1]), name
            ours, ref = ours[0], ref[0]
        _close(ours, ref, exact, dtype)
        assert ours.dtype == dtype
        if hasattr(TF, name):
            # torch's layout rule, without grad (torch's max_pool1d takes another path when
            # the input requires grad, and then keeps NLC strides; poolkit's output does not)
            with torch.no_grad():
                plain = oracle(x, **kw)
            plain = plain[0] if with_indices else plain
            assert _significant(ours) == _significant(plain), (ours.stride(), plain.stride())
        g = torch.randn_like(ref)
        (gx,) = torch.autograd.grad(ours, xo, g)
        (gr,) = torch.autograd.grad(ref, xr, g)
        _close(gx, gr, exact, dtype)
    assert sum(FALLBACKS.values()) == before, FALLBACKS


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_lp_pool_of_negative_input_is_poolkits_not_torchs(rank):
    """(sum |x|^p)^(1/p): torch computes x^p and gives NaN for odd p on negative input."""
    x = -torch.rand(1, 2, *(6,) * rank, dtype=torch.float64) - 0.5
    ours = getattr(PTF, f"lp_pool{rank}d")(x, 3, 2)
    assert torch.isnan(getattr(TF, f"lp_pool{rank}d")(x, 3, 2)).all()
    expected = getattr(TF, f"avg_pool{rank}d")(x.abs() ** 3, 2).mul(2**rank) ** (1 / 3)
    torch.testing.assert_close(ours, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(R.lp_pool(rank)(x, 3, 2), expected, rtol=1e-12, atol=0)


def test_fractional_default_samples_are_torchs():
    """Without _random_samples, poolkit draws them as torch does: same seed, same windows."""
    x = torch.randn(2, 3, 9, 9)
    torch.manual_seed(5)
    ours = PTF.fractional_max_pool2d(x, 2, output_ratio=(0.6, 0.6), return_indices=True)
    torch.manual_seed(5)
    ref = TF.fractional_max_pool2d(x, 2, output_ratio=(0.6, 0.6), return_indices=True)
    assert torch.equal(ours[0], ref[0]) and torch.equal(ours[1], ref[1])


# --------------------------------------------------------------------------------------------
# The eager path and the custom ops give identical results.


@pytest.mark.parametrize("name", sorted(OPS))
def test_eager_path_equals_custom_op(name):
    op = OPS[name]
    fwd, fwd_idx, bwd = custom_op(name)
    for layout in LAYOUTS:
        x, args = sample(name, layout)
        kw = op.prepare(x, dict(zip(op.names, args, strict=True)), op.rank) if op.prepare \
            else dict(zip(op.names, args, strict=True))
        nargs = op.normalize(kw).values()
        for with_indices in (False, True) if op.indices else (False,):
            xe, xc = x.detach().requires_grad_(), x.detach().requires_grad_()
            eager = call(op, xe, args, with_indices)
            direct = (fwd_idx if with_indices else fwd)(xc, *nargs)
            if with_indices:
                assert torch.equal(eager[1], direct[1]) and eager[1].stride() == direct[1].stride()
                eager, direct = eager[0], direct[0]
            assert torch.equal(eager, direct) and eager.stride() == direct.stride(), layout
            g = torch.randn_like(eager)
            (ge,) = torch.autograd.grad(eager, xe, g)
            (gc,) = torch.autograd.grad(direct, xc, g)
            assert torch.equal(ge, gc) and ge.stride() == gc.stride(), layout
        with torch.no_grad():  # no grad needed: the direct call
            assert torch.equal(call(op, x, args), fwd(x, *nargs))
        assert torch.equal(bwd(g, x, *nargs), ge)


# --------------------------------------------------------------------------------------------
# opcheck, gradcheck, gradgradcheck.


@pytest.mark.parametrize("name", sorted(OPS))
def test_opcheck(name):
    op = OPS[name]
    fwd, fwd_idx, bwd = custom_op(name)
    for layout in ("channels_last", "unbatched"):
        x, args = sample(name, layout)
        x = x.detach().requires_grad_()
        kw = dict(zip(op.names, args, strict=True))
        nargs = tuple(op.normalize(op.prepare(x, kw, op.rank) if op.prepare else kw).values())
        torch.library.opcheck(fwd, (x, *nargs))
        if fwd_idx is not None:
            torch.library.opcheck(fwd_idx, (x, *nargs))
        g = fwd(x, *nargs).detach().requires_grad_()
        torch.library.opcheck(bwd, (g, x, *nargs))


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(name):
    """First and second derivatives in float64, through the eager path and the custom op, on
    one plane. (Second derivatives for ranks 1 and 2: the machinery does not depend on the
    rank, and finite differences of a backward pass over a 3-D plane cost tens of seconds.)"""
    op = OPS[name]
    x, args = sample(name)
    x = x[:1, :1]
    if op.rank == 2 and not name.startswith("max_unpool"):
        x = x[..., :5, :5]  # still valid for every 2-D sample; 25 cells, not 49
    x = x.detach().requires_grad_()
    args = tuple(a[:1, :1] if isinstance(a, torch.Tensor) else a for a in args)
    kw = dict(zip(op.names, args, strict=True))
    nargs = tuple(op.normalize(op.prepare(x, kw, op.rank) if op.prepare else kw).values())
    fwd = custom_op(name)[0]
    for fn in (lambda t: call(op, t, args), lambda t: fwd(t, *nargs)):
        assert torch.autograd.gradcheck(fn, (x,))
        if op.rank < 3:
            assert torch.autograd.gradgradcheck(fn, (x,))
