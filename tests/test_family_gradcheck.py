"""Finite-difference checks of every backward function of the pooling family, in float64.

As in test_gradcheck.py: for f(x) = sum(op(x) * g) the backward function must return df/dx;
max-type ops are checked on distinct values 1 apart with a step of 1e-3 (no winner changes),
smooth ones (average, LP away from 0, blur) on normal values.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import seeds
from hypothesis import given, note, settings
from hypothesis import strategies as st
from test_gradcheck import _values, numeric_grad

import poolkit
import poolkit.functional as PF
from poolkit.kinds import get_kind

SMALL = settings(max_examples=max(4, settings().max_examples // 5))


def _check(fwd, bwd, x, rng, rtol=1e-7, atol=1e-8):
    y = fwd(x)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(bwd(g, x), numeric_grad(fwd, x.copy(), g), rtol=rtol, atol=atol)


@SMALL
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "avg", "min"])
@given(data=st.data(), seed=seeds)
def test_adaptive_and_min_backward(rank, mode, data, seed):
    spatial = tuple(data.draw(st.integers(1, 5)) for _ in range(rank))
    rng = np.random.default_rng(seed)
    x = _values(rng, (2, 2, *spatial), "max" if mode != "avg" else "avg")
    if mode == "min":
        k = data.draw(st.integers(1, min(spatial)))
        note(f"spatial={spatial} k={k}")
        f = getattr(PF, f"min_pool{rank}d")
        b = getattr(PF, f"min_pool{rank}d_backward")
        _check(lambda v: f(v, k, 1), lambda g, v: b(g, v, k, 1), x, rng)
        return
    osz = tuple(data.draw(st.integers(1, L + 2)) for L in spatial)
    note(f"spatial={spatial} output_size={osz}")
    f = getattr(PF, f"adaptive_{mode}_pool{rank}d")
    b = getattr(PF, f"adaptive_{mode}_pool{rank}d_backward")
    _check(lambda v: f(v, osz), lambda g, v: b(g, v, osz), x, rng)


@SMALL
@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data(), seed=seeds)
def test_lp_backward(rank, data, seed):
    k = data.draw(st.integers(1, 3))
    ceil = data.draw(st.booleans())
    p = data.draw(st.sampled_from([1, 2, 3, 1.5, 0.7]))
    spatial = tuple(data.draw(st.integers(k, k + 3)) for _ in range(rank))
    note(f"spatial={spatial} k={k} p={p} ceil={ceil}")
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2, (1, 2, *spatial)) * rng.choice([-1, 1], (1, 2, *spatial))
    f, b = getattr(PF, f"lp_pool{rank}d"), getattr(PF, f"lp_pool{rank}d_backward")
    _check(lambda v: f(v, p, k, 1, ceil), lambda g, v: b(g, v, p, k, 1, ceil), x, rng,
           rtol=1e-6, atol=1e-7)


@SMALL
@pytest.mark.parametrize("rank", [2, 3])
@given(data=st.data(), seed=seeds)
def test_fractional_backward(rank, data, seed):
    k = data.draw(st.integers(1, 2))
    L = [data.draw(st.integers(k + 2, k + 4)) for _ in range(rank)]
    osz = tuple(n - k for n in L)
    rng = np.random.default_rng(seed)
    x = _values(rng, (1, 2, *L), "max")
    s = rng.random((1, 2, rank))
    f = getattr(PF, f"fractional_max_pool{rank}d")
    b = getattr(PF, f"fractional_max_pool{rank}d_backward")
    _check(lambda v: f(v, k, osz, _random_samples=s),
           lambda g, v: b(g, v, k, osz, _random_samples=s), x, rng)


@SMALL
@pytest.mark.parametrize("rank", [1, 2, 3])
@given(seed=seeds)
def test_unpool_backward(rank, seed):
    rng = np.random.default_rng(seed)
    x = _values(rng, (1, 2) + (4,) * rank, "max")
    y, idx = getattr(PF, f"max_pool{rank}d")(x, 2, return_indices=True)
    f = getattr(PF, f"max_unpool{rank}d")
    b = getattr(PF, f"max_unpool{rank}d_backward")
    _check(lambda v: f(v, idx, 2), lambda g, v: b(g, v, idx, 2), y.copy(), rng)


@SMALL
@pytest.mark.parametrize("rank", [1, 2])
@given(data=st.data(), seed=seeds)
def test_blur_backward(rank, data, seed):
    filt = data.draw(st.integers(1, 7))
    stride = data.draw(st.integers(1, 3))
    pad = data.draw(st.sampled_from(["reflect", "repl", "zero"]))
    spatial = tuple(data.draw(st.integers(filt // 2 + 1, filt // 2 + 5)) for _ in range(rank))
    note(f"filt={filt} stride={stride} pad={pad} spatial={spatial}")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, *spatial))
    f, b = getattr(PF, f"blur_pool{rank}d"), getattr(PF, f"blur_pool{rank}d_backward")
    _check(lambda v: f(v, filt, stride, pad), lambda g, v: b(g, v, filt, stride, pad), x, rng)


@SMALL
@given(data=st.data(), seed=seeds)
def test_keras_style_family_backward(data, seed):
    """The Keras-style ops' backward functions, channels_last and channels_first."""
    df = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    kind = data.draw(st.sampled_from(["global_max", "global_avg", "adaptive_max",
                                      "adaptive_avg", "min", "lp", "blur", "max_blur", "aps"]))
    rng = np.random.default_rng(seed)
    shape = (2, 5, 6, 3) if df == "channels_last" else (2, 3, 5, 6)
    x = _values(rng, shape, "max")
    if kind in ("lp", "blur", "global_avg", "adaptive_avg"):
        x = rng.uniform(0.5, 2, shape)
    kw = {
        "global_max": dict(keepdims=data.draw(st.booleans())),
        "global_avg": dict(keepdims=data.draw(st.booleans())),
        "adaptive_max": dict(output_size=(2, 4)),
        "adaptive_avg": dict(output_size=(4, 4)),
        "min": dict(pool_size=2, strides=1, padding="same"),
        "lp": dict(p=3, pool_size=2, padding="same"),
        "blur": dict(filt_size=3, strides=2),
        "max_blur": dict(pool_size=2, strides=2, filt_size=3),
        "aps": dict(strides=2),
    }[kind]
    note(f"{kind} {df} {kw}")
    op = get_kind(kind).op
    f, b = getattr(poolkit, op), getattr(poolkit, op + "_backward")
    _check(lambda v: f(v, data_format=df, **kw), lambda g, v: b(g, v, data_format=df, **kw), x,
           rng, rtol=1e-6, atol=1e-7)
    shape_kw = {k: v for k, v in kw.items() if k != "p"}
    assert f(x, data_format=df, **kw).shape == poolkit.output_shape(
        x.shape, data_format=df, kind=kind, **shape_kw)
