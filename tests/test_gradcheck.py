"""Finite-difference checks of every backward function, in float64.

For f(x) = sum(pool(x) * g) the backward functions must return df/dx. Pooling is piecewise
linear, so central differences are exact up to rounding as long as no perturbation changes a
window's argmax: max pooling is checked on distinct values spaced 1 apart with a step of 1e-3.
Windows wholly in the padding (possible with dilation) give -inf and are left out of f.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import keras_args, seeds, torch_args, with_layout
from hypothesis import given, note, settings
from hypothesis import strategies as st

import poolkit
import poolkit.functional as PF

STEP = 1e-3


def numeric_grad(forward, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    def f(v):
        y = forward(v)
        return float(np.where(np.isfinite(y), y * g, 0.0).sum())

    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)  # x is a contiguous copy: views
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + STEP
        up = f(x)
        flat[i] = old - STEP
        down = f(x)
        flat[i] = old
        gflat[i] = (up - down) / (2 * STEP)
    return grad


def _values(rng, shape, mode):
    n = int(np.prod(shape))
    if mode == "max":  # distinct and 1 apart: a step of 1e-3 never changes an argmax
        return (rng.permutation(n).astype(np.float64) - n / 2).reshape(shape)
    return rng.standard_normal(shape)


# Small problems: the check costs two forward calls per input cell.
SMALL = settings(max_examples=max(5, settings().max_examples // 4))


@SMALL
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "avg"])
@given(data=st.data(), seed=seeds)
def test_functional_backward_is_the_gradient(rank, mode, data, seed):
    a = data.draw(torch_args(rank, dilation=mode == "max", max_extra=2,
                             kernel_within_input=mode == "avg" and rank == 3))
    kw = dict(kernel_size=a["kernel_size"], stride=a["stride"], padding=a["padding"],
              ceil_mode=a["ceil_mode"])
    if mode == "max":
        kw["dilation"] = a["dilation"]
    else:
        kw["count_include_pad"] = data.draw(st.booleans())
        kw["divisor_override"] = data.draw(st.sampled_from([None, None, 3, -2]))
    batched = data.draw(st.booleans())
    shape = ((1,) if batched else ()) + (2,) + a["spatial"]
    layout = data.draw(st.sampled_from(["contiguous", "channels_last_memory"]))
    note(f"shape={shape} kw={kw} layout={layout}")
    rng = np.random.default_rng(seed)
    x = _values(rng, shape, mode)
    fwd = getattr(PF, f"{mode}_pool{rank}d")
    bwd = getattr(PF, f"{mode}_pool{rank}d_backward")
    y = fwd(x, **kw)
    g = rng.standard_normal(y.shape)
    xl = with_layout(x, layout) if batched else x
    analytic = bwd(g, xl, **kw)
    numeric = numeric_grad(lambda v: fwd(v, **kw), x.copy(), g)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)


@SMALL
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "avg"])
@given(data=st.data(), seed=seeds)
def test_ops_backward_is_the_gradient(rank, mode, data, seed):
    a = data.draw(keras_args(rank, dilation=mode == "max", max_extra=2))
    df = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    kw = dict(pool_size=a["pool_size"], strides=a["strides"], padding=a["padding"],
              data_format=df)
    if mode == "max":
        kw["dilation"] = a["dilation"]
        fwd, bwd = poolkit.max_pool, poolkit.max_pool_backward
    else:
        kw["count_include_pad"] = data.draw(st.booleans())
        fwd, bwd = poolkit.average_pool, poolkit.average_pool_backward
    shape = (1, *a["spatial"], 2) if df == "channels_last" else (1, 2, *a["spatial"])
    note(f"shape={shape} kw={kw}")
    rng = np.random.default_rng(seed)
    x = _values(rng, shape, mode)
    g = rng.standard_normal(fwd(x, **kw).shape)
    analytic = bwd(g, x, **kw)
    numeric = numeric_grad(lambda v: fwd(v, **kw), x.copy(), g)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)


def test_max_gradient_hand_case():
    """1-D, window 3, stride 2, padding 1 on [4, 1, 5, 2, 0]: windows {-1,0,1}, {1,2,3}, {3,4,5}
    have maxima at 0, 2, 3."""
    x = np.array([[[4.0, 1.0, 5.0, 2.0, 0.0]]])
    g = np.array([[[10.0, 20.0, 30.0]]])
    np.testing.assert_array_equal(PF.max_pool1d_backward(g, x, 3, 2, 1),
                                  [[[10.0, 0.0, 20.0, 30.0, 0.0]]])
