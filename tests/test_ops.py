"""Keras-style ops (poolkit.max_pool / average_pool / *_backward / output_shape) against
jax.lax.reduce_window and jax.grad, and against Keras 3 on the torch backend.

Oracles:
- max: reduce_window(x, -inf (or the int minimum), lax.max, ...), with jax's own "VALID"/"SAME"
  words (jax "SAME" puts the odd cell after, as TF does) or explicit (before, after) pairs, and
  window_dilation for dilation;
- average (TF rule): reduce_window sum over x / reduce_window sum over ones (the number of
  in-bounds cells); with count_include_pad=True: sum / the full window size (every Keras-style
  window lies inside the padded input, so no window is clipped);
- backward: jax.grad of sum(pool(x) * g);
- Keras 3 (torch backend) ops for max pooling and "valid" average pooling; not for "same"
  average pooling, which Keras-on-torch gets wrong with uneven padding (REFERENCE.md section 7).
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from conftest import (  # noqa: E402
    FLOAT_DTYPES,
    INT_DTYPES,
    LAYOUTS,
    keras_args,
    make_values,
    seeds,
    with_layout,
)
from hypothesis import given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from jax import lax  # noqa: E402

import poolkit  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_platforms", "cpu")

RANKS = (1, 2, 3)
_RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-12}


def _per_dim(v, rank):
    return (v,) * rank if isinstance(v, int) else tuple(v)


def _jax_window(a, rank, data_format):
    """window, strides, dilation and padding for reduce_window over the full (N, ..., C) array."""
    k = _per_dim(a["pool_size"], rank)
    s = k if a["strides"] is None else tuple(a["strides"])
    d = _per_dim(a.get("dilation", 1), rank)
    pad = a["padding"]
    if isinstance(pad, str):
        jpad = pad.upper()
    else:
        jpad = list(pad)
    def wrap(t, one):
        return (one, *t, one) if data_format == "channels_last" else (one, one, *t)

    if not isinstance(jpad, str):
        jpad = wrap(jpad, (0, 0))
    return wrap(k, 1), wrap(s, 1), wrap(d, 1), jpad


def jax_max(x, a, data_format):
    w, s, d, p = _jax_window(a, x.ndim - 2, data_format)
    init = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    y = lax.reduce_window(x, x.dtype.type(init), lax.max, w, s, p, window_dilation=d)
    return np.asarray(y)


def jax_avg(x, a, data_format, count_include_pad):
    w, s, d, p = _jax_window(a, x.ndim - 2, data_format)
    x64 = x.astype(np.float64)
    total = lax.reduce_window(x64, 0.0, lax.add, w, s, p)
    if count_include_pad:
        count = float(np.prod(w))
    else:
        count = lax.reduce_window(np.ones_like(x64), 0.0, lax.add, w, s, p)
    return np.asarray(total / count)


@st.composite
def keras_problem(draw, rank, dtypes, kinds, dilation=True):
    a = draw(keras_args(rank, dilation=dilation))
    df = draw(st.sampled_from(["channels_last", "channels_first"]))
    n, c = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    shape = (n, *a["spatial"], c) if df == "channels_last" else (n, c, *a["spatial"])
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    kind = draw(st.sampled_from(kinds))
    layout = draw(st.sampled_from(LAYOUTS))
    seed = draw(seeds)
    x = make_values(np.random.default_rng(seed), shape, dtype, kind)
    return a, df, x, layout


def _call_kw(a, df, with_dilation=True):
    kw = dict(pool_size=a["pool_size"], strides=a["strides"], padding=a["padding"],
              data_format=df)
    if with_dilation:
        kw["dilation"] = a["dilation"]
    return kw


# --------------------------------------------------------------------------------------------
# Forward against jax.lax.reduce_window.


@pytest.mark.parametrize("rank", RANKS)
@given(p=st.data())
def test_max_pool_matches_jax(rank, p):
    a, df, x, layout = p.draw(keras_problem(
        rank, FLOAT_DTYPES + INT_DTYPES, ["ties", "specials", "neginf", "distinct", "wide"]))
    note(f"args={a} df={df} shape={x.shape} dtype={x.dtype} layout={layout}")
    ref = jax_max(x, a, df)
    kw = _call_kw(a, df)
    out = poolkit.max_pool(with_layout(x, layout), **kw)
    assert out.dtype == x.dtype
    assert out.shape == ref.shape == poolkit.output_shape(x.shape, **kw)
    np.testing.assert_array_equal(out, ref)  # NaN == NaN here; exact values otherwise


@pytest.mark.parametrize("rank", RANKS)
@given(p=st.data(), cip=st.booleans())
def test_average_pool_matches_jax(rank, p, cip):
    a, df, x, layout = p.draw(keras_problem(rank, FLOAT_DTYPES, ["ties", "distinct", "wide"],
                                            dilation=False))
    if x.dtype == np.float16:
        x = np.clip(x, -1000, 1000)
    note(f"args={a} df={df} shape={x.shape} dtype={x.dtype} layout={layout} cip={cip}")
    ref = jax_avg(x, a, df, cip)
    kw = _call_kw(a, df, with_dilation=False)
    out = poolkit.average_pool(with_layout(x, layout), **kw, count_include_pad=cip)
    assert out.dtype == x.dtype
    assert out.shape == ref.shape == poolkit.output_shape(x.shape, **kw)
    rtol = _RTOL[x.dtype]
    scale = float(np.abs(x.astype(np.float64)).max()) if x.size else 0.0
    np.testing.assert_allclose(out.astype(np.float64), ref, rtol=rtol, atol=rtol * scale)


def test_same_padding_puts_the_odd_cell_after():
    """Hand case: L=4, pool 2, stride 3 -> out 2, total pad 1, all of it after."""
    x = np.array([1.0, 5.0, 3.0, 7.0]).reshape(1, 4, 1)
    np.testing.assert_array_equal(poolkit.max_pool(x, 2, 3, "same")[0, :, 0], [5.0, 7.0])
    np.testing.assert_array_equal(poolkit.average_pool(x, 2, 3, "same")[0, :, 0], [3.0, 7.0])
    np.testing.assert_array_equal(
        poolkit.average_pool(x, 2, 3, "same", count_include_pad=True)[0, :, 0], [3.0, 3.5])


def test_explicit_asymmetric_padding_hand_case():
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 3)
    out = poolkit.average_pool(x, 3, 1, ((2, 0),), data_format="channels_first")
    np.testing.assert_array_equal(out[0, 0], [1.0, 1.5, 2.0])
    out = poolkit.max_pool(-x, 3, 1, ((2, 0),), data_format="channels_first")
    np.testing.assert_array_equal(out[0, 0], [-1.0, -1.0, -1.0])


@pytest.mark.parametrize("rank", RANKS)
@given(a=st.data())
def test_output_shape_with_none_batch(rank, a):
    args = a.draw(keras_args(rank))
    df = a.draw(st.sampled_from(["channels_last", "channels_first"]))
    shape = (None, *args["spatial"], 3) if df == "channels_last" else (None, 3, *args["spatial"])
    got = poolkit.output_shape(shape, **_call_kw(args, df))
    x = np.zeros((1,) + shape[1:], np.float32)
    ref = jax_max(x, args, df)
    assert got == (None,) + ref.shape[1:]


# --------------------------------------------------------------------------------------------
# Backward against jax.grad.


def _jax_grad(x, g, a, df, mode, cip=False):
    def f(v):
        if mode == "max":
            w, s, d, p = _jax_window(a, v.ndim - 2, df)
            y = lax.reduce_window(v, -np.inf, lax.max, w, s, p, window_dilation=d)
        else:
            w, s, d, p = _jax_window(a, v.ndim - 2, df)
            total = lax.reduce_window(v, 0.0, lax.add, w, s, p)
            if cip:
                y = total / float(np.prod(w))
            else:
                y = total / lax.reduce_window(jax.numpy.ones_like(v), 0.0, lax.add, w, s, p)
        return (y * g).sum()

    return np.asarray(jax.grad(f)(x))


def _torch_padded_max_grad(x, g, a, df):
    """jax has no max-pool gradient with window dilation: torch autograd on the same problem,
    padded explicitly with -inf (pads from jax's own padtype_to_pads for the padding words)."""
    import torch
    import torch.nn.functional as TF

    rank = x.ndim - 2
    k = _per_dim(a["pool_size"], rank)
    s = k if a["strides"] is None else tuple(a["strides"])
    d = _per_dim(a["dilation"], rank)
    cl = df == "channels_last"
    xc = np.moveaxis(x, -1, 1) if cl else x
    gc = np.moveaxis(g, -1, 1) if cl else g
    if isinstance(a["padding"], str):
        eff = [dd * (kk - 1) + 1 for kk, dd in zip(k, d, strict=True)]
        pads = lax.padtype_to_pads(xc.shape[2:], eff, s, a["padding"].upper())
    else:
        pads = a["padding"]
    flat = [v for b, aa in reversed(list(pads)) for v in (b, aa)]  # F.pad: last dim first
    t = torch.from_numpy(np.ascontiguousarray(xc)).requires_grad_(True)
    y = getattr(TF, f"max_pool{rank}d")(TF.pad(t, flat, value=-np.inf), k, s, 0, d)
    y.backward(torch.from_numpy(np.ascontiguousarray(gc)))
    grad = t.grad.numpy()
    return np.moveaxis(grad, 1, -1) if cl else grad


# jax compiles its gradient afresh for every shape: half the examples keep this test ~1 minute.
@settings(max_examples=max(10, settings().max_examples // 2))
@pytest.mark.parametrize("rank", RANKS)
@pytest.mark.parametrize("mode", ["max", "avg"])
@given(p=st.data(), cip=st.booleans())
def test_backward_matches_jax_grad(rank, mode, p, cip):
    # Finite values only: jax's max gradient may send a tie with -inf padding into the padding.
    a, df, x, layout = p.draw(keras_problem(rank, [np.float64], ["ties", "distinct"],
                                            dilation=mode == "max"))
    note(f"mode={mode} args={a} df={df} shape={x.shape} layout={layout} cip={cip}")
    kw = _call_kw(a, df, with_dilation=mode == "max")
    out_shape = poolkit.output_shape(x.shape, **kw)
    rng = np.random.default_rng(x.size)
    # Integer-valued gradients: every sum is exact, so the max gradient must match exactly.
    g = rng.integers(-4, 5, size=out_shape).astype(np.float64)
    dilated = mode == "max" and any(v > 1 for v in _per_dim(a["dilation"], rank))
    ref = _torch_padded_max_grad(x, g, a, df) if dilated else _jax_grad(x, g, a, df, mode, cip)
    if mode == "max":
        ours = poolkit.max_pool_backward(with_layout(g, layout), with_layout(x, layout), **kw)
        np.testing.assert_array_equal(ours, ref)
    else:
        ours = poolkit.average_pool_backward(with_layout(g, layout), with_layout(x, layout), **kw,
                                             count_include_pad=cip)
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert ours.shape == x.shape and ours.dtype == x.dtype


# --------------------------------------------------------------------------------------------
# Keras 3 (torch backend).


@pytest.fixture(scope="module")
def keras():
    keras = pytest.importorskip("keras")
    assert keras.backend.backend() == "torch"
    return keras


def _keras_np(y):
    return y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)


@pytest.mark.parametrize("rank", RANKS)
@given(p=st.data())
def test_max_and_valid_average_match_keras(keras, rank, p):
    a, df, x, layout = p.draw(keras_problem(rank, [np.float32], ["ties", "distinct", "wide"],
                                            dilation=False))
    if not isinstance(a["padding"], str):
        a["padding"] = "valid"
        a["spatial"] = x.shape[1:-1] if df == "channels_last" else x.shape[2:]
    note(f"args={a} df={df} shape={x.shape} layout={layout}")
    kw = _call_kw(a, df, with_dilation=False)
    kw["padding"] = kw["padding"].lower()
    try:
        ref = _keras_np(keras.ops.max_pool(x, **kw))
    except (ValueError, RuntimeError):  # Keras-on-torch lets torch's RuntimeError through
        # explicit pads turned into "valid" may leave the window larger than the input
        assert kw["padding"] == "valid"
        with pytest.raises(ValueError, match="pool_size"):
            poolkit.max_pool(x, **kw)
        return
    np.testing.assert_array_equal(poolkit.max_pool(with_layout(x, layout), **kw), ref)
    if kw["padding"] == "valid" and x.size:
        ref = _keras_np(keras.ops.average_pool(x, **kw))
        out = poolkit.average_pool(with_layout(x, layout), **kw)
        np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6 * float(np.abs(x).max()))


@pytest.mark.parametrize("layer", ["MaxPooling2D", "AveragePooling2D"])
def test_keras_layer_hand_case(keras, layer):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 7, 3)).astype(np.float32)
    ref = _keras_np(getattr(keras.layers, layer)(pool_size=(3, 2), strides=(2, 1))(x))
    fn = poolkit.max_pool if layer.startswith("Max") else poolkit.average_pool
    np.testing.assert_allclose(fn(x, (3, 2), (2, 1)), ref, rtol=1e-6)


def test_same_average_differs_from_keras_torch_and_agrees_with_jax(keras):
    """REFERENCE.md section 7: AveragePooling2D(3, strides=2, padding="same") on 8x7 pads
    unevenly; Keras-on-torch counts replicated cells, TF/jax (and poolkit) do not."""
    x = np.arange(56, dtype=np.float32).reshape(1, 8, 7, 1) ** 1.5
    a = dict(pool_size=3, strides=2, padding="same")
    ours = poolkit.average_pool(x, **a)
    jx = jax_avg(x, dict(a, strides=(2, 2)), "channels_last", False)
    np.testing.assert_allclose(ours, jx, rtol=1e-6)
    kt = _keras_np(keras.layers.AveragePooling2D(**a)(x))
    assert ours.shape == kt.shape
    assert not np.allclose(ours, kt, rtol=1e-4), "Keras-on-torch was fixed: use it as oracle too"
