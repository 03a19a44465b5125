"""Anti-aliased pooling against its references.

BlurPool and MaxBlurPool against the antialiased-cnns package (0.3; a test oracle only, its
licence is non-commercial and none of its code is in poolkit): every filter size 1..7, every
pad type, strides 1..3, 1-D and 2-D, values and gradients (torch autograd through the oracle).
Adaptive polyphase sampling against a brute-force NumPy reference written here, and its
defining property: a circular shift of the input circularly shifts the output.
"""

from __future__ import annotations

import antialiased_cnns
import numpy as np
import pytest
import torch
from conftest import LAYOUTS, seeds, with_layout
from hypothesis import given, note
from hypothesis import strategies as st

import poolkit
import poolkit.functional as PF
from poolkit.errors import InvalidValue

torch.set_num_threads(1)

PAD_TYPES = ("reflect", "repl", "zero")


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _oracle(channels, filt, stride, pad, rank, dtype):
    cls = antialiased_cnns.BlurPool if rank == 2 else antialiased_cnns.BlurPool1D
    m = cls(channels, pad_type=pad, filt_size=filt, stride=stride)
    return m.double() if dtype == np.float64 else m


@pytest.mark.parametrize("rank", (1, 2))
@given(data=st.data(), seed=seeds)
def test_blur_pool_matches_antialiased_cnns(rank, data, seed):
    filt = data.draw(st.integers(1, 7))
    stride = data.draw(st.integers(1, 3))
    pad = data.draw(st.sampled_from(PAD_TYPES))
    least = filt // 2 + 1 if pad == "reflect" else 1
    spatial = tuple(data.draw(st.integers(least, least + 8)) for _ in range(rank))
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    dtype = np.dtype(data.draw(st.sampled_from([np.float32, np.float64])))
    layout = data.draw(st.sampled_from(LAYOUTS))
    note(f"rank={rank} filt={filt} stride={stride} pad={pad} spatial={spatial} {dtype} {layout}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *spatial)).astype(dtype)
    oracle = _oracle(c, filt, stride, pad, rank, dtype)
    t = _t(x).requires_grad_(True)
    ref = oracle(t)
    f = getattr(PF, f"blur_pool{rank}d")
    out = f(with_layout(x, layout), filt, stride, pad)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert out.shape == tuple(ref.shape) and out.dtype == dtype
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=tol, atol=tol)
    g = rng.standard_normal(out.shape).astype(dtype)
    ref.backward(_t(g))
    got = getattr(PF, f"blur_pool{rank}d_backward")(g, with_layout(x, layout), filt, stride, pad)
    np.testing.assert_allclose(got, t.grad.numpy(), rtol=tol, atol=tol)


@given(data=st.data(), seed=seeds)
def test_max_blur_pool_matches_antialiased_cnns(data, seed):
    k = data.draw(st.integers(1, 3))
    filt = data.draw(st.integers(1, 5))
    stride = data.draw(st.integers(1, 3))
    pad = data.draw(st.sampled_from(PAD_TYPES))
    least = k - 1 + (filt // 2 + 1 if pad == "reflect" else 1)
    h, w = (data.draw(st.integers(least, least + 6)) for _ in range(2))
    c = data.draw(st.integers(1, 3))
    note(f"k={k} filt={filt} stride={stride} pad={pad} hw={(h, w)} c={c}")
    rng = np.random.default_rng(seed)
    x = rng.permutation(2 * c * h * w).reshape(2, c, h, w).astype(np.float64)  # distinct: the
    # max routing of the gradient is unambiguous
    oracle = torch.nn.Sequential(torch.nn.MaxPool2d(k, stride=1),
                                 _oracle(c, filt, stride, pad, 2, np.float64))
    t = _t(x).requires_grad_(True)
    ref = oracle(t)
    out = PF.max_blur_pool2d(x, k, stride, filt, pad)
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-13, atol=1e-12)
    g = rng.standard_normal(out.shape)
    ref.backward(_t(g))
    np.testing.assert_allclose(PF.max_blur_pool2d_backward(g, x, k, stride, filt, pad),
                               t.grad.numpy(), rtol=1e-12, atol=1e-12)
    # the Keras-style op, channels_last
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    np.testing.assert_allclose(poolkit.max_blur_pool(xl, k, stride, filt, pad),
                               out.transpose(0, 2, 3, 1), rtol=1e-13, atol=1e-12)


def test_blur_rejections():
    x = np.zeros((1, 1, 2, 5), np.float32)
    with pytest.raises(InvalidValue, match="reflection"):
        PF.blur_pool2d(x, 4)  # pads 2 after: needs H > 2
    assert PF.blur_pool2d(x, 4, pad_type="zero").shape == (1, 1, 1, 3)
    with pytest.raises(InvalidValue, match="filt_size"):
        PF.blur_pool2d(x, 8)
    with pytest.raises(InvalidValue, match="pad_type"):
        PF.blur_pool2d(x, 3, pad_type="circular")
    with pytest.raises(TypeError):
        PF.blur_pool2d(x.astype(np.int32), 3)


# --------------------------------------------------------------------------------------------
# Adaptive polyphase sampling.


def _aps_reference(x: np.ndarray, s: int, norm: float) -> np.ndarray:
    """Brute force: pad circularly, list the s*s components in Chaman & Dokmanic's order
    (row offset fastest), pick per sample the first with the largest norm."""
    n, c, h, w = x.shape
    hp, wp = -(-h // s) * s, -(-w // s) * s
    xp = x[:, :, np.arange(hp) % h][:, :, :, np.arange(wp) % w]
    out = []
    for b in range(n):
        best, best_norm = None, -1.0
        for j in range(s):
            for i in range(s):
                comp = xp[b, :, i::s, j::s]
                a = np.abs(comp.astype(np.float64))
                v = a.max() if np.isinf(norm) else (a**norm).sum()
                if v > best_norm:
                    best, best_norm = comp, v
        out.append(best)
    return np.stack(out)


@given(data=st.data(), seed=seeds)
def test_aps_matches_reference_and_is_shift_equivariant(data, seed):
    s = data.draw(st.integers(1, 3))
    h, w = (data.draw(st.integers(1, 9)) for _ in range(2))
    norm = data.draw(st.sampled_from([2, 1, float("inf"), 3]))
    layout = data.draw(st.sampled_from(LAYOUTS))
    note(f"s={s} hw={(h, w)} norm={norm} {layout}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 2, h, w))
    out = PF.aps_pool2d(with_layout(x, layout), s, norm)
    np.testing.assert_array_equal(out, _aps_reference(x, s, norm))
    # Circular shift equivariance on stride-divisible sizes.
    if h % s == 0 and w % s == 0:
        dy, dx = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
        shifted = PF.aps_pool2d(np.roll(x, (dy, dx), axis=(2, 3)), s, norm)
        # the output of the shifted input is a circular shift of the output
        found = any(
            np.array_equal(shifted, np.roll(out, (a, b), axis=(2, 3)))
            for a in range(out.shape[2]) for b in range(out.shape[3])
        )
        assert found
    # Keras-style op on channels_last
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(poolkit.aps_pool(xl, s, norm), out.transpose(0, 2, 3, 1))


def test_aps_ties_nan_and_gradient():
    x = np.ones((1, 1, 4, 4))
    out = PF.aps_pool2d(x)
    np.testing.assert_array_equal(out, np.ones((1, 1, 2, 2)))
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 0] = np.nan  # component (1, 0) has a NaN norm: it counts as largest
    np.testing.assert_array_equal(PF.aps_pool2d(x), x[:, :, 1::2, 0::2])
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))  # odd: circular padding
    g = np.random.default_rng(1).standard_normal((2, 3, 3, 3))
    gx = PF.aps_pool2d_backward(g, x)

    def f(v):
        return float((PF.aps_pool2d(v) * g).sum())

    eps = 1e-6
    num = np.zeros_like(x)
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up.reshape(-1)[i] += eps
        down.reshape(-1)[i] -= eps
        num.reshape(-1)[i] = (f(up) - f(down)) / (2 * eps)
    np.testing.assert_allclose(gx, num, rtol=1e-6, atol=1e-6)


def _aps_by_hand(x: np.ndarray, stride: tuple[int, int]):
    """APS as its definition reads, padding to the stride (small strides only)."""
    s0, s1 = stride
    H, W = x.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), (0, (-H) % s0), (0, (-W) % s1)], mode="wrap")
    phases = [(i, j) for j in range(s1) for i in range(s0)]
    comps = [xp[:, :, i::s0, j::s1] for i, j in phases]
    norms = np.stack([np.sqrt((c.astype(np.float64) ** 2).sum(axis=(1, 2, 3))) for c in comps])
    k = norms.argmax(axis=0)
    return np.stack([comps[k[n]][n] for n in range(x.shape[0])]), k


@pytest.mark.parametrize("stride", [(4, 4), (5, 2), (2, 9)])
def test_aps_stride_above_the_size_is_exact_and_cheap(stride):
    # Found by the fuzz harness: a stride of 2**31 - 1 padded the input to that size
    # (MemoryError); a stride past a dim's size only adds phases that copy earlier ones.
    from poolkit import engine

    x = np.random.default_rng(0).standard_normal((3, 2, 3, 4)).astype(np.float32)
    want, phase = _aps_by_hand(x, stride)
    got, got_phase = engine.polyphase(x, stride, 2.0)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_phase, phase)
    huge = engine.polyphase(x, (2**31 - 1, 2**31 - 1), 2.0)[0]
    np.testing.assert_array_equal(huge, PF.aps_pool2d(x, (3, 4)))
    g = np.ones_like(huge)
    np.testing.assert_array_equal(PF.aps_pool2d_backward(g, x, 2**31 - 1),
                                  PF.aps_pool2d_backward(g, x, (3, 4)))


@pytest.mark.parametrize("stride", [(1, 1, 1), (0, 2), (2,), [2, 2], (2.0, 2), (True, 2)])
def test_engine_polyphase_checks_its_stride(stride):
    # Found by the fuzz harness: IndexError / ZeroDivisionError from the public engine entry.
    from poolkit import engine

    x = np.zeros((1, 1, 4, 4), np.float32)
    for fn, args in ((engine.polyphase, (x, stride, 2.0)),
                     (engine.polyphase_backward, (x, x, stride, 2.0))):
        with pytest.raises(ValueError, match="stride must be a tuple"):
            fn(*args)
