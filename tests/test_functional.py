"""poolkit.functional against torch 2.13 (CPU) on the same inputs.

Max pooling: values and indices bit-identical (ties, NaN, +-inf, -0.0, integers, float16,
non-contiguous inputs, unbatched, N = 0, ceil_mode, dilation). Average pooling: within float
rounding. Backward: equal to torch autograd (max exactly, average to rounding). Rejections: for
random, possibly invalid, arguments poolkit raises ValueError/TypeError exactly when torch raises.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import (
    FLOAT_DTYPES,
    INT_DTYPES,
    LAYOUTS,
    make_values,
    seeds,
    torch_args,
    with_layout,
)
from hypothesis import given, note
from hypothesis import strategies as st

import poolkit.functional as PF

torch.set_num_threads(1)  # the machine is shared; torch is only the oracle here

RANKS = (1, 2, 3)


def assert_bits_equal(ours: np.ndarray, ref: np.ndarray) -> None:
    """Same dtype, shape and bit pattern (NaN payloads and the sign of zero included)."""
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    if ours.dtype.kind == "f":
        u = np.dtype(f"u{ours.dtype.itemsize}")
        bad = ours.view(u) != ref.view(u)
        if bad.any():
            pos = tuple(np.argwhere(bad)[0])
            raise AssertionError(
                f"{bad.sum()} cells differ; first at {pos}: ours {ours[pos]!r}, torch {ref[pos]!r}"
            )
    else:
        np.testing.assert_array_equal(ours, ref)


def _torch_kwargs(a: dict, mode: str) -> dict:
    kw = dict(kernel_size=a["kernel_size"], padding=a["padding"], ceil_mode=a["ceil_mode"])
    if a["stride"] is not None:
        kw["stride"] = a["stride"]
    if mode == "max":
        kw["dilation"] = a["dilation"]
    return kw


@st.composite
def batch_shape(draw, spatial):
    """(N, C, *spatial) with N in 0..2, or unbatched (C, *spatial)."""
    c = draw(st.integers(1, 3))
    n = draw(st.sampled_from([None, 0, 1, 2]))
    return ((c,) if n is None else (n, c)) + tuple(spatial)


# --------------------------------------------------------------------------------------------
# Max pooling forward.


@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_max_pool_matches_torch(rank, data, seed):
    a = data.draw(torch_args(rank))
    shape = data.draw(batch_shape(a["spatial"]))
    dtype = np.dtype(data.draw(st.sampled_from(FLOAT_DTYPES + INT_DTYPES)))
    kind = data.draw(st.sampled_from(["ties", "ties", "specials", "neginf", "distinct", "wide"]))
    layout = data.draw(st.sampled_from(LAYOUTS))
    note(f"shape={shape} dtype={dtype} kind={kind} layout={layout} args={a}")
    x = make_values(np.random.default_rng(seed), shape, dtype, kind)
    xl = with_layout(x, layout)

    kw = _torch_kwargs(a, "max")
    ref, ref_idx = getattr(TF, f"max_pool{rank}d")(torch.from_numpy(x), **kw, return_indices=True)
    out, idx = getattr(PF, f"max_pool{rank}d")(xl, **kw, return_indices=True)
    assert_bits_equal(out, ref.numpy())
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    # Without indices: the same values (a different kernel on our side).
    plain = getattr(PF, f"max_pool{rank}d")(xl, **kw)
    assert_bits_equal(plain, ref.numpy())


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_max_pool_nan_index_is_last_nan(rank, dtype):
    """Hand-made: two NaNs and a larger finite value in one window; NaN wins, last NaN's index."""
    spatial = (4,) * rank
    x = np.zeros((1, 1) + spatial, dtype)
    flat = x.reshape(-1)
    flat[0] = 5
    flat[1] = np.nan
    flat[-1] = np.nan
    flat[-2] = 7
    out, idx = getattr(PF, f"max_pool{rank}d")(x, 4, return_indices=True)
    assert np.isnan(out).all() and out.dtype == x.dtype
    assert idx.reshape(-1)[0] == 4**rank - 1
    ref, ref_idx = getattr(TF, f"max_pool{rank}d")(torch.from_numpy(x), 4, return_indices=True)
    np.testing.assert_array_equal(idx, ref_idx.numpy())


# The float32 2-D windows with kernels of their own (literal sizes; 3x3/2 channels-first has
# its own row code): each over widths that give 0, 1 and several interior windows, with
# padding, ceil_mode and both layouts, forward with and without indices and backward.
LITERAL_WINDOWS = [(2, 2, 0), (2, 1, 0), (3, 2, 0), (3, 2, 1), (3, 1, 1)]


@pytest.mark.parametrize("k, s, p", LITERAL_WINDOWS)
@pytest.mark.parametrize("kind", ["specials", "ties", "distinct"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_pool_literal_window_kernels_match_torch(k, s, p, kind, channels_last):
    rng = np.random.default_rng(k * 100 + s * 10 + p)
    for h, w in [(3, 3), (5, 4), (6, 7), (7, 9), (9, 40), (12, 37)]:
        for ceil in (False, True):
            x = make_values(rng, (2, 3, h, w), np.float32, kind)
            xl = with_layout(x, "channels_last_memory") if channels_last else x
            tx = torch.from_numpy(x).requires_grad_(True)
            ref, ref_idx = TF.max_pool2d(tx, k, s, p, ceil_mode=ceil, return_indices=True)
            out, idx = PF.max_pool2d(xl, k, s, p, ceil_mode=ceil, return_indices=True)
            assert_bits_equal(out, ref.detach().numpy())
            np.testing.assert_array_equal(idx, ref_idx.numpy())
            assert_bits_equal(PF.max_pool2d(xl, k, s, p, ceil_mode=ceil), ref.detach().numpy())
            g = rng.standard_normal(ref.shape).astype(np.float32)
            (ref_gx,) = torch.autograd.grad(ref, tx, torch.from_numpy(g))
            gx = PF.max_pool2d_backward(g, xl, k, s, p, ceil_mode=ceil)
            assert_bits_equal(gx, ref_gx.numpy())


@pytest.mark.parametrize("kind", ["specials", "ties"])
def test_max_pool3d_over_literal_window_rows_matches_torch(kind):
    """3-D windows whose last dim is a literal-window kernel's: up to kd*kh window rows, so
    the row code takes several groups of rows per output row."""
    rng = np.random.default_rng(7)
    for k, s, p in [((3, 3, 3), (1, 2, 2), 1), ((2, 3, 3), 2, (1, 1, 1)), ((2, 2, 2), 2, 0),
                    ((3, 2, 2), (2, 1, 1), 1)]:
        x = make_values(rng, (2, 3, 5, 7, 11), np.float32, kind)
        ref, ref_idx = TF.max_pool3d(torch.from_numpy(x), k, s, p, return_indices=True)
        out, idx = PF.max_pool3d(x, k, s, p, return_indices=True)
        assert_bits_equal(out, ref.numpy())
        np.testing.assert_array_equal(idx, ref_idx.numpy())
        assert_bits_equal(PF.max_pool3d(x, k, s, p), ref.numpy())


def test_max_pool_ties_go_to_first_hand_case():
    x = np.array([[[[1, 3, 3], [3, 0, 3], [2, 3, 1]]]], np.float32)
    out, idx = PF.max_pool2d(x, 3, return_indices=True)
    assert out.item() == 3 and idx.item() == 1  # (0, 1), the first 3 in row-major order
    out, idx = PF.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[1, 1], [3, 5]])


def test_max_pool_indices_are_per_plane():
    x = np.arange(2 * 3 * 4 * 4, dtype=np.float64).reshape(2, 3, 4, 4)
    _, idx = PF.max_pool2d(x, 2, return_indices=True)
    expected = np.array([[5, 7], [13, 15]])
    np.testing.assert_array_equal(idx, np.broadcast_to(expected, idx.shape))


# --------------------------------------------------------------------------------------------
# Average pooling forward.

_RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def _torch_avg(rank, x, a, count_include_pad, divisor_override):
    kw = _torch_kwargs(a, "avg")
    kw["count_include_pad"] = count_include_pad
    # float16: torch CPU has no 3-D half kernel; its 1-/2-D ones compute in float32 and round,
    # which is the rule poolkit follows, so the oracle is torch in float32, rounded once.
    t = torch.from_numpy(x.astype(np.float32) if x.dtype == np.float16 else x)
    if rank == 1 and divisor_override is not None:
        # torch's avg_pool1d has no divisor_override: the same problem as 2-D with a 1-row window.
        def two(v):
            return (1, v[0] if isinstance(v, tuple) else v)

        kw2 = dict(kw, kernel_size=two(kw["kernel_size"]), padding=(0, two(kw["padding"])[1]))
        if "stride" in kw:
            kw2["stride"] = two(kw["stride"])
        return TF.avg_pool2d(t.unsqueeze(-2), **kw2, divisor_override=divisor_override).squeeze(-2)
    if divisor_override is not None:
        kw["divisor_override"] = divisor_override
    return getattr(TF, f"avg_pool{rank}d")(t, **kw)


@pytest.mark.parametrize("rank", RANKS)
@given(data=st.data(), seed=seeds)
def test_avg_pool_matches_torch(rank, data, seed):
    a = data.draw(torch_args(rank, dilation=False, kernel_within_input=rank == 3))
    shape = data.draw(batch_shape(a["spatial"]))
    dtype = np.dtype(data.draw(st.sampled_from(FLOAT_DTYPES)))
    kind = data.draw(st.sampled_from(["ties", "distinct", "wide"]))
    layout = data.draw(st.sampled_from(LAYOUTS))
    cip = data.draw(st.booleans())
    div = data.draw(st.one_of(st.none(), st.integers(-5, 9).filter(bool)))
    note(f"shape={shape} dtype={dtype} kind={kind} layout={layout} args={a} cip={cip} div={div}")
    x = make_values(np.random.default_rng(seed), shape, dtype, kind)
    if kind == "wide" and dtype == np.float16:
        x = np.clip(x, -1000, 1000)  # no float16 overflow in the sum
    ref = _torch_avg(rank, x, a, cip, div).numpy().astype(dtype)
    kw = _torch_kwargs(a, "avg")
    out = getattr(PF, f"avg_pool{rank}d")(
        with_layout(x, layout), **kw, count_include_pad=cip, divisor_override=div
    )
    assert out.dtype == x.dtype and out.shape == ref.shape
    rtol = _RTOL[dtype]
    scale = float(np.abs(x.astype(np.float64)).max()) if x.size else 0.0
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=rtol * scale)


def test_avg_pool_divisor_hand_case():
    """3 cells, window 2, stride 2, padding 1: windows [-1, 0], [1, 2]; then ceil_mode."""
    x = np.array([[[2.0, 4.0, 8.0]]])
    np.testing.assert_array_equal(PF.avg_pool1d(x, 2, 2, 1), [[[1.0, 6.0]]])
    np.testing.assert_array_equal(PF.avg_pool1d(x, 2, 2, 1, count_include_pad=False),
                                  [[[2.0, 6.0]]])
    np.testing.assert_array_equal(PF.avg_pool1d(x, 2, 2, 1, divisor_override=-4),
                                  [[[-0.5, -3.0]]])
    # L=4, k=3, s=2, p=1, ceil: windows [-1..1], [1..3], [3..5]; the last's pool size stops at
    # L + p = 5, so count_include_pad divides by 2, not 3.
    x = np.array([[[3.0, 6.0, 9.0, 12.0]]])
    np.testing.assert_array_equal(PF.avg_pool1d(x, 3, 2, 1, ceil_mode=True), [[[3.0, 9.0, 6.0]]])


# --------------------------------------------------------------------------------------------
# Backward against torch autograd.


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("mode", ["max", "avg"])
@given(data=st.data(), seed=seeds)
def test_backward_matches_torch_autograd(rank, mode, data, seed):
    a = data.draw(torch_args(rank, dilation=mode == "max",
                             kernel_within_input=mode == "avg" and rank == 3))
    shape = data.draw(batch_shape(a["spatial"]))
    dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.float64])))
    kind = data.draw(st.sampled_from(["ties", "ties", "specials", "distinct"]))
    if mode == "avg" and kind == "specials":
        kind = "ties"
    layout = data.draw(st.sampled_from(LAYOUTS))
    g_layout = data.draw(st.sampled_from(LAYOUTS))
    cip = data.draw(st.booleans())
    div = data.draw(st.one_of(st.none(), st.integers(-5, 9).filter(bool)))
    if rank == 1:
        div = None
    note(f"mode={mode} shape={shape} dtype={dtype} kind={kind} layout={layout}/{g_layout} "
         f"args={a} cip={cip} div={div}")
    rng = np.random.default_rng(seed)
    x = make_values(rng, shape, dtype, kind)

    kw = _torch_kwargs(a, mode)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    if mode == "max":
        y = getattr(TF, f"max_pool{rank}d")(xt, **kw)
    else:
        kw = dict(kw, count_include_pad=cip)
        if div is not None:
            kw["divisor_override"] = div
        y = getattr(TF, f"avg_pool{rank}d")(xt, **kw)
    g = rng.standard_normal(tuple(y.shape)).astype(dtype)  # not integer: tests the sum order
    if mode == "max":
        # A dilated window may cover no input cell (its output is -inf even on a zero input);
        # torch then scatters its gradient to the cell its index names, which is not in the
        # window: the next plane or another cell (see test_empty_window_gradient_goes_nowhere).
        zeros = torch.zeros(x.shape, dtype=torch.float64)
        g[np.isneginf(getattr(TF, f"max_pool{rank}d")(zeros, **kw).numpy())] = 0
    y.backward(torch.from_numpy(g))
    ref = xt.grad.numpy()

    fn = getattr(PF, f"{mode}_pool{rank}d_backward")
    ours = fn(with_layout(g, g_layout), with_layout(x, layout), **kw)
    assert ours.dtype == x.dtype and ours.shape == x.shape
    if mode == "max":
        assert_bits_equal(ours, ref)
    else:
        np.testing.assert_allclose(ours, ref, rtol=_RTOL[dtype], atol=_RTOL[dtype])


def test_max_backward_overlapping_ties_hand_case():
    """Overlapping 2x2/1 windows over a constant plane: every window's first cell gets its grad."""
    x = np.ones((1, 1, 3, 3), np.float64)
    g = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    gx = PF.max_pool2d_backward(g, x, 2, 1)
    np.testing.assert_array_equal(gx[0, 0], [[1, 2, 0], [3, 4, 0], [0, 0, 0]])


# --------------------------------------------------------------------------------------------
# Rejections: poolkit raises ValueError/TypeError exactly when torch raises.


@st.composite
def maybe_bad_args(draw, rank: int, mode: str):
    def size_arg(lo, hi, allow_none=False):
        opts = ["int", "tuple", "tuple", "badlen"] + (["none"] if allow_none else [])
        c = draw(st.sampled_from(opts))
        if c == "none":
            return None
        if c == "int":
            return draw(st.integers(lo, hi))
        n = rank if c == "tuple" else draw(st.sampled_from([0, 1, rank + 1]))
        return tuple(draw(st.integers(lo, hi)) for _ in range(n))

    kw = dict(kernel_size=size_arg(-1, 5), padding=size_arg(-1, 3), ceil_mode=draw(st.booleans()))
    stride = size_arg(-1, 4, allow_none=True)
    if stride is not None:
        kw["stride"] = stride
    if mode == "max":
        kw["dilation"] = size_arg(-1, 3)
    else:
        kw["count_include_pad"] = draw(st.booleans())
        if rank > 1:
            kw["divisor_override"] = draw(st.one_of(st.none(), st.integers(-2, 3)))
    ndim = draw(st.sampled_from([rank + 1, rank + 2, rank + 2, rank + 2, rank, rank + 3]))
    ndim = max(ndim, 1)
    shape = tuple(draw(st.integers(0, 6) if i else st.integers(0, 2)) for i in range(ndim))
    if draw(st.booleans()):  # mostly non-empty arrays, so most rejections are about arguments
        shape = tuple(max(v, 1) for v in shape)
    return shape, kw


@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("mode", ["max", "avg"])
@given(data=st.data())
def test_rejects_exactly_what_torch_rejects(rank, mode, data):
    shape, kw = data.draw(maybe_bad_args(rank, mode))
    note(f"shape={shape} kw={kw}")
    x = np.ones(shape, np.float32)
    name = f"{mode}_pool{rank}d"
    try:
        ref = getattr(TF, name)(torch.from_numpy(x), **kw)
        torch_err = None
    except (RuntimeError, ValueError, TypeError, IndexError) as e:
        ref, torch_err = None, e
    try:
        out = getattr(PF, name)(x, **kw)
        ours_err = None
    except (ValueError, TypeError) as e:  # anything else fails the test
        out, ours_err = None, e
    assert (torch_err is None) == (ours_err is None), (
        f"torch: {torch_err!r}; poolkit: {ours_err!r}"
    )
    if out is not None:
        assert out.shape == tuple(ref.shape)
        if mode == "max":
            back = getattr(PF, f"{name}_backward")(np.ones_like(out), x, **kw)
            assert back.shape == x.shape


@pytest.mark.parametrize(
    "name, shape, kw",
    [
        # torch's avg_pool3d (only) needs input >= kernel in every dim, padding notwithstanding
        ("avg_pool3d", (1, 1, 2, 2, 2), dict(kernel_size=3, stride=1, padding=1)),
        ("avg_pool3d", (1, 1, 3, 3, 2), dict(kernel_size=3, stride=1, padding=1)),
        ("avg_pool3d", (1, 1, 3, 3, 3), dict(kernel_size=3, stride=1, padding=1)),
        ("max_pool3d", (1, 1, 2, 2, 2), dict(kernel_size=3, stride=1, padding=1)),
        ("avg_pool2d", (1, 1, 2, 2), dict(kernel_size=3, stride=1, padding=1)),
        ("avg_pool1d", (1, 1, 2), dict(kernel_size=3, stride=1, padding=1)),
        # padding vs the raw kernel size, with dilation
        ("max_pool2d", (1, 1, 9, 9), dict(kernel_size=3, padding=2, dilation=2)),
        ("max_pool2d", (1, 1, 9, 9), dict(kernel_size=2, padding=1, dilation=3)),
        # ceil_mode: a window may not start in the right padding
        ("max_pool1d", (1, 1, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
        ("avg_pool1d", (1, 1, 1), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
        # unbatched with a zero-size channel dim
        ("max_pool2d", (0, 4, 4), dict(kernel_size=2)),
        ("max_pool2d", (0, 1, 4, 4), dict(kernel_size=2)),
    ],
)
def test_rejection_edge_cases_match_torch(name, shape, kw):
    x = np.ones(shape, np.float32)
    try:
        ref = getattr(TF, name)(torch.from_numpy(x), **kw)
    except RuntimeError:
        with pytest.raises(ValueError):
            getattr(PF, name)(x, **kw)
        with pytest.raises(ValueError):
            getattr(PF, f"{name}_backward")(np.ones((1,) * len(shape), np.float32), x, **kw)
    else:
        out = getattr(PF, name)(x, **kw)
        assert out.shape == tuple(ref.shape)
        np.testing.assert_allclose(out, ref.numpy())


def test_empty_window_gradient_goes_nowhere():
    """Kernel 2, dilation 2, padding 1 over a length-1 input: the window reads positions -1 and
    1, both outside, so the output is -inf and its gradient belongs to no input cell. torch 2.13
    reports index 1 (= the plane size) and its backward adds the gradient to the NEXT plane's
    cell (an out-of-plane write); poolkit drops it."""
    x = np.zeros((2, 1, 1), np.float32)
    g = np.array([10.0, 20.0], np.float32).reshape(2, 1, 1)
    out, idx = PF.max_pool1d(x, 2, 1, 1, 2, return_indices=True)
    assert np.isneginf(out).all()
    np.testing.assert_array_equal(PF.max_pool1d_backward(g, x, 2, 1, 1, 2), np.zeros_like(x))
    xt = torch.from_numpy(x).requires_grad_(True)
    yt, it = TF.max_pool1d(xt, 2, 1, 1, 2, return_indices=True)
    np.testing.assert_array_equal(idx, it.numpy())  # forward indices agree
    yt.backward(torch.from_numpy(g))
    assert xt.grad.numpy().ravel().tolist() == [0.0, 10.0], "torch changed: compare directly"
    # The index can also name a real cell of the plane: with D=2, H=1, the windows over H
    # (kernel 2, dilation 2, padding 1) read rows -1 and 1, both outside, yet the index
    # d*H*W + 1 names cell (d+1, 0). poolkit's indices match torch's; its gradient goes nowhere.
    x3 = np.array([[[[1.0]], [[2.0]]]])  # (C=1, D=2, H=1, W=1), unbatched
    kw = dict(kernel_size=(2, 2, 1), stride=1, padding=(0, 1, 0), dilation=(1, 2, 1))
    out, idx = PF.max_pool3d(x3, **kw, return_indices=True)
    _, it = TF.max_pool3d(torch.from_numpy(x3), **kw, return_indices=True)
    np.testing.assert_array_equal(idx, it.numpy())
    assert np.isneginf(out).all()
    g3 = np.ones_like(out)
    np.testing.assert_array_equal(PF.max_pool3d_backward(g3, x3, **kw), np.zeros_like(x3))


# Windows far larger than the input: the kernels see only the offsets that can land in it.
@pytest.mark.parametrize(
    "n_in, k, s, p, d, ceil",
    [
        (1, 2**22, 1, 2**21, 1, False),  # once a loop over 4M offsets per call (13 s)
        (2, 2**20 + 1, 3, 2**19, 1, True),
        (3, 9, 2, 4, 1, True),
        (3, 5, 3, 2, 2, True),
        (2, 8, 3, 4, 1, True),
    ],
)
def test_huge_windows_over_small_inputs_match_torch(n_in, k, s, p, d, ceil):
    rng = np.random.default_rng(n_in * 31 + k % 97)
    x = rng.standard_normal((2, 3, n_in)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_(True)
    to, ti = TF.max_pool1d(tx, k, s, p, d, ceil, True)
    o, i = PF.max_pool1d(x, k, s, p, d, ceil, True)
    # Compare where a window reads input (torch 2.13 mishandles windows that read none).
    live = np.isfinite(to.detach().numpy())
    assert live.any()
    assert_bits_equal(o[live], to.detach().numpy()[live])
    np.testing.assert_array_equal(i[live], ti.numpy()[live])
    if live.all():
        g = rng.standard_normal(o.shape).astype(np.float32)
        (tg,) = torch.autograd.grad(to, tx, torch.from_numpy(g))
        np.testing.assert_array_equal(PF.max_pool1d_backward(g, x, k, s, p, d, ceil), tg.numpy())
    if d == 1:
        for cip in (True, False):
            ta = TF.avg_pool1d(torch.from_numpy(x), k, s, p, ceil, cip).numpy()
            np.testing.assert_allclose(PF.avg_pool1d(x, k, s, p, ceil, cip), ta, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.float32])
def test_empty_dilated_window_gives_the_dtype_minimum(dtype):
    """Positions -1 and 4 of a length-4 input: no cell is read. Integers are pooled in int64
    and cast back, so the empty window must start from the input dtype's minimum."""
    x = np.arange(4, dtype=dtype).reshape(1, 1, 4)
    out, idx = PF.max_pool1d(x, 2, 1, 1, 5, return_indices=True)
    lowest = -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min
    assert out.dtype == dtype and out.ravel().tolist() == [lowest]
    _, it = TF.max_pool1d(torch.from_numpy(x.astype(np.float32)), 2, 1, 1, 5, return_indices=True)
    np.testing.assert_array_equal(idx, it.numpy())
