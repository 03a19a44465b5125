"""The pooling family in poolkit.functional against torch 2.13 (CPU): adaptive max/avg, LP,
fractional max, max-unpool and min pooling — values, indices, gradients (torch autograd),
rejections, NaN/ties, 1-3-D, memory layouts, unbatched input and N = 0.

Where poolkit deliberately differs from torch (LP on negative input and p <= 0, duplicate
unpool indices, fractional samples outside [0, 1)) the expected value comes from an
independent NumPy reference written here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import FLOAT_DTYPES, INT_DTYPES, LAYOUTS, make_values, seeds, with_layout
from hypothesis import assume, given, note
from hypothesis import strategies as st
from test_functional import assert_bits_equal

import poolkit.functional as PF
from poolkit.errors import InvalidType, InvalidValue

torch.set_num_threads(1)

RANKS = (1, 2, 3)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


@st.composite
def shapes(draw, rank, min_size=1, max_size=9, n_choices=(None, 0, 1, 2)):
    spatial = tuple(draw(st.integers(min_size, max_size)) for _ in range(rank))
    n = draw(st.sampled_from(n_choices))
    c = draw(st.integers(1, 3))
    return ((c,) if n is None else (n, c)) + spatial


def _grad_ref(fn, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """torch autograd's input gradient of ``fn`` at ``x`` for output gradient ``g``."""
    t = _t(x).requires_grad_(True)
    out = fn(t)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(_t(g))
    return t.grad.numpy()


# --------------------------------------------------------------------------------------------
# Adaptive pooling.


@st.composite
def output_sizes(draw, spatial):
    sizes = [draw(st.one_of(st.none(), st.integers(0, L + 3))) for L in spatial]
    if all(s is not None for s in sizes) and len(set(sizes)) == 1 and draw(st.booleans()):
        return sizes[0]
    return tuple(sizes)


def _for_torch(osz, spatial):
    """torch's 1-D adaptive pooling takes no None (poolkit's does): resolve it for the oracle."""
    if isinstance(osz, tuple):
        return tuple(L if o is None else o for o, L in zip(osz, spatial, strict=True))
    return osz


@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_adaptive_max_matches_torch(rank, data, seed):
    shape = data.draw(shapes(rank))
    osz = data.draw(output_sizes(shape[-rank:]))
    dtype = np.dtype(data.draw(st.sampled_from(FLOAT_DTYPES)))
    kind = data.draw(st.sampled_from(["ties", "specials", "distinct", "neginf"]))
    layout = data.draw(st.sampled_from(LAYOUTS))
    note(f"shape={shape} output_size={osz} dtype={dtype} kind={kind} layout={layout}")
    x = make_values(np.random.default_rng(seed), shape, dtype, kind)
    f = f"adaptive_max_pool{rank}d"
    tosz = _for_torch(osz, shape[-rank:])
    ref, ref_idx = getattr(TF, f)(_t(x), tosz, return_indices=True)
    out, idx = getattr(PF, f)(with_layout(x, layout), osz, return_indices=True)
    assert_bits_equal(out, ref.numpy())
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    assert_bits_equal(getattr(PF, f)(with_layout(x, layout), osz), ref.numpy())
    if dtype != np.float16 and out.size:
        g = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype)
        want = _grad_ref(lambda t: getattr(TF, f)(t, tosz), x, g)
        got = getattr(PF, f + "_backward")(g, with_layout(x, layout), osz)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_adaptive_avg_matches_torch(rank, data, seed):
    shape = data.draw(shapes(rank))
    osz = data.draw(output_sizes(shape[-rank:]))
    dtype = np.dtype(data.draw(st.sampled_from(FLOAT_DTYPES)))
    layout = data.draw(st.sampled_from(LAYOUTS))
    note(f"shape={shape} output_size={osz} dtype={dtype} layout={layout}")
    x = make_values(np.random.default_rng(seed), shape, dtype, "wide" if dtype != np.float16
                    else "ties")
    f = f"adaptive_avg_pool{rank}d"
    tosz = _for_torch(osz, shape[-rank:])
    ref = getattr(TF, f)(_t(x), tosz).numpy()
    out = getattr(PF, f)(with_layout(x, layout), osz)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    tol = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-14}[dtype.type]
    # another summation order: rounding relative to the window's magnitudes, not its mean
    scale = float(np.abs(x.astype(np.float64)).max()) if x.size else 0.0
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * scale)
    if dtype != np.float16 and out.size:
        g = np.random.default_rng(seed + 1).standard_normal(out.shape).astype(dtype)
        want = _grad_ref(lambda t: getattr(TF, f)(t, tosz), x, g)
        got = getattr(PF, f + "_backward")(g, with_layout(x, layout), osz)
        np.testing.assert_allclose(got, want, rtol=tol * 10, atol=tol * float(np.abs(g).max()))


def test_adaptive_reference_check_and_integers():
    """REFERENCE.md's check: arange(25) 5x5 -> 3x3 gives values = indices
    [6, 8, 9, 16, 18, 19, 21, 23, 24]; integers pool exactly (torch has no integer kernel)."""
    want = [6, 8, 9, 16, 18, 19, 21, 23, 24]
    for dt in (np.float32, np.int64, np.uint8, np.int16):
        x = np.arange(25).astype(dt).reshape(1, 1, 5, 5)
        out, idx = PF.adaptive_max_pool2d(x, 3, return_indices=True)
        assert out.dtype == dt
        np.testing.assert_array_equal(out.ravel(), want)
        np.testing.assert_array_equal(idx.ravel(), want)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_adaptive_max_integers_equal_float_reference(dtype):
    x = make_values(np.random.default_rng(3), (2, 3, 7, 5), dtype, "wide")
    out, idx = PF.adaptive_max_pool2d(x, (3, 4), return_indices=True)
    ref, ref_idx = TF.adaptive_max_pool2d(_t(x.astype(np.float64)), (3, 4), return_indices=True)
    # int64 values beyond 2**53 do not survive float64; compare through the indices instead
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    flat = x.reshape(6, -1)
    np.testing.assert_array_equal(out.reshape(6, -1),
                                  np.take_along_axis(flat, idx.reshape(6, -1), 1))


def test_adaptive_odd_large_size_matches_torch():
    """pytorch#81409's case: integer window arithmetic on 5873x3693 -> 3527x2219."""
    x = np.random.default_rng(0).standard_normal((1, 1, 5873, 3693)).astype(np.float32)
    ref, ref_idx = TF.adaptive_max_pool2d(_t(x), (3527, 2219), return_indices=True)
    out, idx = PF.adaptive_max_pool2d(x, (3527, 2219), return_indices=True)
    assert_bits_equal(out, ref.numpy())
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    # sums in another order: cancellation near 0 needs an absolute tolerance (4 cells ~ N(0, 1))
    np.testing.assert_allclose(PF.adaptive_avg_pool2d(x, (3527, 2219)),
                               TF.adaptive_avg_pool2d(_t(x), (3527, 2219)).numpy(), rtol=2e-6,
                               atol=1e-6)


# --------------------------------------------------------------------------------------------
# LP pooling.


@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_lp_matches_torch_where_torch_is_right(rank, data, seed):
    k = data.draw(st.integers(1, 3))
    s = data.draw(st.one_of(st.none(), st.integers(1, 3)))
    ceil = data.draw(st.booleans())
    shape = data.draw(shapes(rank, min_size=k, max_size=k + 4))
    p = data.draw(st.sampled_from([1, 2, 3, 1.5, 0.5, 4, float("inf")]))
    dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.float64])))
    # torch is right for non-negative input, and for even p on any input
    signed = p in (2, 4) and data.draw(st.booleans())
    note(f"shape={shape} k={k} s={s} ceil={ceil} p={p} dtype={dtype} signed={signed}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2 if signed else 0.1, 2, shape).astype(dtype)
    f = f"lp_pool{rank}d"
    ref = getattr(TF, f)(_t(x), p, k, s, ceil).numpy()
    out = getattr(PF, f)(x, p, k, s, ceil)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, ref, rtol=tol)
    if out.size:
        g = rng.standard_normal(out.shape).astype(dtype)
        want = _grad_ref(lambda t: getattr(TF, f)(t, p, k, s, ceil), x, g)
        got = getattr(PF, f + "_backward")(g, x, p, k, s, ceil)
        np.testing.assert_allclose(got, want, rtol=tol * 20, atol=tol * 10)


def _lp_reference(x: np.ndarray, p: float, k: int) -> np.ndarray:
    """(sum |x|^p)^(1/p) over non-overlapping k x k windows (valid), in float64."""
    n, c, h, w = x.shape
    oh, ow = h // k, w // k
    a = np.abs(x[:, :, : oh * k, : ow * k].astype(np.float64))
    win = a.reshape(n, c, oh, k, ow, k)
    if np.isinf(p):
        return win.max(axis=(3, 5))
    return (win**p).sum(axis=(3, 5)) ** (1 / p)


@pytest.mark.parametrize("p", [1, 3, 1.5, 0.5, float("inf")])
def test_lp_is_the_p_norm_on_negative_input(p):
    """torch's x^p gives NaN (fractional p) or a signed sum (odd p) here: poolkit gives the
    p-norm of the window."""
    x = np.random.default_rng(1).uniform(-2, 2, (2, 3, 6, 6))
    np.testing.assert_allclose(PF.lp_pool2d(x, p, 2), _lp_reference(x, p, 2), rtol=1e-12)
    with torch.no_grad():
        wrong = TF.lp_pool2d(_t(x), p, 2).numpy()
    if p in (1.5, 0.5):
        assert np.isnan(wrong).any()  # the torch bug the docstring names


def test_lp_gradient_at_zero_is_zero():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0] = 2.0
    for p in (0.5, 1, 2, 3):
        gx = PF.lp_pool2d_backward(np.ones((1, 1, 2, 2)), x, p, 2)
        assert np.isfinite(gx).all()
        assert gx[0, 0, 0, 0] == pytest.approx(1.0)
        assert (gx.ravel()[1:] == 0).all()


@pytest.mark.parametrize("p", [0, -1, -np.inf, float("nan")])
def test_lp_rejects_p_not_positive(p):
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(InvalidValue, match="norm_type"):
        PF.lp_pool2d(x, p, 2)
    with pytest.raises(InvalidType, match="norm_type"):
        PF.lp_pool2d(x, "2", 2)


# --------------------------------------------------------------------------------------------
# Fractional max pooling.


@pytest.mark.parametrize("rank", (2, 3))
@given(data=st.data(), seed=seeds)
def test_fractional_matches_torch(rank, data, seed):
    k = data.draw(st.integers(1, 3))
    L = [data.draw(st.integers(k + (rank == 3), k + 8)) for _ in range(rank)]
    limit = [n - k + 1 if rank == 2 else n - k for n in L]  # torch's size rules
    osz = tuple(data.draw(st.integers(1, m)) for m in limit)
    n = data.draw(st.sampled_from([None, 0, 1, 2]))
    c = data.draw(st.integers(1, 3))
    shape = ((c,) if n is None else (n, c)) + tuple(L)
    dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.float64])))
    kind = data.draw(st.sampled_from(["ties", "specials", "distinct"]))
    layout = data.draw(st.sampled_from(LAYOUTS))
    note(f"shape={shape} k={k} out={osz} dtype={dtype} kind={kind} layout={layout}")
    rng = np.random.default_rng(seed)
    x = make_values(rng, shape, dtype, kind)
    samples = rng.random((1 if n is None else n, c, rank)).astype(dtype)
    f = f"fractional_max_pool{rank}d"
    ref, ref_idx = getattr(TF, f)(_t(x), k, output_size=osz, return_indices=True,
                                  _random_samples=_t(samples))
    out, idx = getattr(PF, f)(with_layout(x, layout), k, output_size=osz, return_indices=True,
                              _random_samples=samples)
    assert_bits_equal(out, ref.numpy())
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    if out.size:
        g = rng.standard_normal(out.shape).astype(dtype)
        want = _grad_ref(lambda t: getattr(TF, f)(t, k, output_size=osz,
                                                  _random_samples=_t(samples)), x, g)
        got = getattr(PF, f + "_backward")(g, with_layout(x, layout), k, output_size=osz,
                                           _random_samples=samples)
        np.testing.assert_array_equal(got, want)


def test_fractional_output_ratio_and_rejections():
    x = np.random.default_rng(0).standard_normal((2, 3, 10, 9)).astype(np.float32)
    s = np.random.default_rng(1).random((2, 3, 2)).astype(np.float32)
    ref = TF.fractional_max_pool2d(_t(x), 2, output_ratio=(0.5, 0.7), _random_samples=_t(s))
    out = PF.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.7), _random_samples=s)
    assert_bits_equal(out, ref.numpy())
    # a plain number (torch 2.13 raises TypeError for it, though its docs allow it)
    assert PF.fractional_max_pool2d(x, 2, output_ratio=0.5).shape == (2, 3, 5, 4)
    cases = [
        dict(kernel_size=2),  # neither output_size nor output_ratio
        dict(kernel_size=3, output_size=9),  # 9 + 3 - 1 > 10 (2-D rule)
        dict(kernel_size=2, output_size=3, _random_samples=s[..., :1]),  # wrong sample shape
    ]
    for kw in cases:
        with pytest.raises((ValueError, RuntimeError)):
            TF.fractional_max_pool2d(_t(x), **{k: (_t(v) if isinstance(v, np.ndarray) else v)
                                                for k, v in kw.items()})
    for kw in cases:
        with pytest.raises(InvalidValue):
            PF.fractional_max_pool2d(x, **kw)
    with pytest.raises(InvalidType, match="dtype"):
        PF.fractional_max_pool2d(x, 2, output_size=3, _random_samples=s.astype(np.float64))
    with pytest.raises(InvalidValue, match=r"\[0, 1\)"):
        PF.fractional_max_pool2d(x, 2, output_size=3, _random_samples=s + 1)
    with pytest.raises(InvalidValue, match="_random_samples"):
        PF.fractional_max_pool2d_backward(np.ones((2, 3, 3, 3), np.float32), x, 2,
                                          output_size=3)
    x3 = np.ones((1, 1, 5, 5, 5), np.float32)
    TF.fractional_max_pool3d(_t(x3), 2, output_size=3)
    PF.fractional_max_pool3d(x3, 2, output_size=3)
    with pytest.raises(RuntimeError):  # 3-D rule: 4 + 2 - 1 < 5 is false
        TF.fractional_max_pool3d(_t(x3), 2, output_size=4)
    with pytest.raises(InvalidValue, match="too large"):
        PF.fractional_max_pool3d(x3, 2, output_size=4)


# --------------------------------------------------------------------------------------------
# Max-unpooling.


@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_unpool_inverts_max_pool_like_torch(rank, data, seed):
    k = data.draw(st.integers(1, 3))
    s = data.draw(st.one_of(st.none(), st.integers(k, 3)))  # stride >= k: no duplicates
    p = data.draw(st.integers(0, k // 2))
    shape = data.draw(shapes(rank, min_size=k, max_size=k + 5))
    dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.float64])))
    layout = data.draw(st.sampled_from(LAYOUTS))
    rng = np.random.default_rng(seed)
    x = make_values(rng, shape, dtype, "distinct")
    y, idx = getattr(TF, f"max_pool{rank}d")(_t(x), k, s, p, return_indices=True)
    y, idx = y.numpy(), idx.numpy()
    default = [(n - 1) * (s or k) - 2 * p + k for n in y.shape[-rank:]]
    osz = data.draw(st.one_of(st.none(), st.just(tuple(
        d + data.draw(st.integers(-(s or k) + 1, (s or k) - 1)) for d in default))))
    size = default if osz is None else osz
    # indices (flat in x's plane) are re-read in the output plane: they must fit in it
    assume(np.prod(size) > int(idx.max(initial=-1)) and min(size) >= 0)
    note(f"shape={shape} k={k} s={s} p={p} output_size={osz} layout={layout}")
    f = f"max_unpool{rank}d"
    ref = getattr(TF, f)(_t(y), _t(idx), k, s, p, osz).numpy()
    out = getattr(PF, f)(with_layout(y, layout), idx, k, s, p, osz)
    assert_bits_equal(out, ref)
    g = rng.standard_normal(out.shape).astype(dtype)
    want = _grad_ref(lambda t: getattr(TF, f)(t, _t(idx), k, s, p, osz), y, g)
    got = getattr(PF, f + "_backward")(g, with_layout(y, layout), idx, k, s, p, osz)
    np.testing.assert_array_equal(got, want)


def test_unpool_duplicates_last_wins_and_gather_backward():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    idx = np.array([[[[5, 5], [0, 5]]]])
    out = PF.max_unpool2d(x, idx, 2)
    want = np.zeros((1, 1, 4, 4))
    want.reshape(-1)[0] = 3.0
    want.reshape(-1)[5] = 4.0  # the last of the three cells naming 5, in row-major order
    np.testing.assert_array_equal(out, want)
    g = np.arange(16.0).reshape(1, 1, 4, 4)
    gx = PF.max_unpool2d_backward(g, x, idx, 2)
    np.testing.assert_array_equal(gx, [[[[5.0, 5.0], [0.0, 5.0]]]])  # overwritten still get it
    ref = _grad_ref(lambda t: TF.max_unpool2d(t, _t(idx), 2), x, g)
    np.testing.assert_array_equal(gx, ref)


def test_unpool_rejections_match_torch():
    x = np.ones((1, 1, 2, 2), np.float32)
    good = np.zeros((1, 1, 2, 2), np.int64)
    cases = [
        (np.full((1, 1, 2, 2), 16), dict(), InvalidValue, "invalid max index"),
        (np.full((1, 1, 2, 2), -1), dict(), InvalidValue, "invalid max index"),
        (good, dict(output_size=(6, 6)), InvalidValue, "between 2 and 6"),
        (good, dict(output_size=(1, 5, 5)), InvalidValue, "2 or 4 elements"),
        (np.zeros((1, 1, 2, 3), np.int64), dict(), InvalidValue, "shape"),
    ]
    for idx, kw, err, msg in cases:
        with pytest.raises((RuntimeError, ValueError)):
            TF.max_unpool2d(_t(x), _t(idx), 2, **kw)
        with pytest.raises(err, match=msg):
            PF.max_unpool2d(x, idx, 2, **kw)
    out = PF.max_unpool2d(x, good, 2, output_size=(1, 1, 5, 5))
    assert out.shape == (1, 1, 5, 5)
    with pytest.raises(InvalidType):
        PF.max_unpool2d(x, good.astype(np.float32), 2)
    y = PF.max_unpool2d(x.astype(np.int32), good, 2)  # integers (torch has no kernel)
    assert y.dtype == np.int32 and y.reshape(-1)[0] == 1 and y.sum() == 1


# --------------------------------------------------------------------------------------------
# Min pooling: max pooling mirrored.


@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_min_pool_is_max_pool_mirrored(rank, data, seed):
    from conftest import torch_args

    a = data.draw(torch_args(rank))
    shape = (data.draw(st.integers(0, 2)), data.draw(st.integers(1, 3))) + a["spatial"]
    dtype = np.dtype(data.draw(st.sampled_from(FLOAT_DTYPES + (np.int16, np.uint8))))
    kind = data.draw(st.sampled_from(["ties", "specials", "distinct", "wide"]))
    layout = data.draw(st.sampled_from(LAYOUTS))
    note(f"shape={shape} dtype={dtype} kind={kind} layout={layout} args={a}")
    x = make_values(np.random.default_rng(seed), shape, dtype, kind)
    kw = dict(kernel_size=a["kernel_size"], stride=a["stride"], padding=a["padding"],
              dilation=a["dilation"], ceil_mode=a["ceil_mode"])
    out, idx = getattr(PF, f"min_pool{rank}d")(with_layout(x, layout), **kw,
                                               return_indices=True)
    if dtype.kind == "f":
        neg, ref_idx = getattr(TF, f"max_pool{rank}d")(-_t(x), **kw, return_indices=True)
        assert_bits_equal(out, (-neg).numpy())  # NaN sign bits flip twice on both sides
        live = ~np.isinf(out)  # torch's index for a window that reads nothing is garbage
        np.testing.assert_array_equal(idx[live], ref_idx.numpy()[live])
        if dtype != np.float16 and out.size and live.all():
            g = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
            want = _grad_ref(lambda t: -getattr(TF, f"max_pool{rank}d")(-t, **kw), x, g)
            got = getattr(PF, f"min_pool{rank}d_backward")(g, with_layout(x, layout), **kw)
            np.testing.assert_array_equal(got, want)
    else:
        ref, ref_idx = getattr(PF, f"max_pool{rank}d")(
            np.iinfo(dtype).max - x if dtype.kind == "u" else (-x.astype(np.int64)), **kw,
            return_indices=True)
        want = (np.iinfo(dtype).max - ref) if dtype.kind == "u" else -ref
        full = out != np.iinfo(dtype).max  # windows that read something
        np.testing.assert_array_equal(out[full], want.astype(dtype)[full])
        np.testing.assert_array_equal(idx[full], ref_idx[full])


def test_min_pool_hand_case():
    x = np.array([[[[3, 1, 1], [1, 0, np.nan], [np.nan, 1, 2]]]])
    out, idx = PF.min_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(out[0, 0], [[0, np.nan], [np.nan, np.nan]])
    np.testing.assert_array_equal(idx[0, 0], [[4, 5], [6, 5]])
    out, idx = PF.min_pool1d(np.array([[[2, 1, 1, 5]]]), 4, return_indices=True)
    assert out.item() == 1 and idx.item() == 1  # the first minimum
