"""The Keras-style global and adaptive ops against Keras 3 (KERAS_BACKEND=torch): values and
gradients, 1-3 spatial dims, both data formats, keepdims; and ``output_shape`` for every kind
against the shapes the ops produce."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import seeds  # noqa: E402
from hypothesis import given, note  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import poolkit  # noqa: E402
from poolkit.kinds import KINDS  # noqa: E402

torch.set_num_threads(1)


def _grad(layer, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    out = layer(t)
    out.backward(torch.from_numpy(g))
    return t.grad.numpy()


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "average"])
@given(data=st.data(), seed=seeds)
def test_global_pool_matches_keras(rank, mode, data, seed):
    df = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    keepdims = data.draw(st.booleans())
    spatial = tuple(data.draw(st.integers(1, 6)) for _ in range(rank))
    c = data.draw(st.integers(1, 4))
    shape = (2, *spatial, c) if df == "channels_last" else (2, c, *spatial)
    note(f"{shape} {df} keepdims={keepdims}")
    rng = np.random.default_rng(seed)
    # distinct values: one argmax; float32, which Keras computes in whatever the layer's dtype
    x = (rng.permutation(int(np.prod(shape))) / 7.0).reshape(shape).astype(np.float32)
    name = f"Global{'Max' if mode == 'max' else 'Average'}Pooling{rank}D"
    layer = getattr(keras.layers, name)(data_format=df, keepdims=keepdims)
    ref = keras.ops.convert_to_numpy(layer(x))
    out = getattr(poolkit, f"global_{mode}_pool")(x, data_format=df, keepdims=keepdims)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    np.testing.assert_allclose(out, ref, rtol=2e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    got = getattr(poolkit, f"global_{mode}_pool_backward")(g, x, data_format=df,
                                                             keepdims=keepdims)
    np.testing.assert_allclose(got, _grad(layer, x, g), rtol=2e-6, atol=1e-7)
    kind = f"global_{'max' if mode == 'max' else 'avg'}"
    assert poolkit.output_shape((None, *shape[1:]), data_format=df, kind=kind,
                                keepdims=keepdims) == (None, *out.shape[1:])


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("mode", ["max", "average"])
@given(data=st.data(), seed=seeds)
def test_adaptive_pool_matches_keras(rank, mode, data, seed):
    df = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    spatial = tuple(data.draw(st.integers(1, 9)) for _ in range(rank))
    osz = tuple(data.draw(st.integers(1, 2 * L)) for L in spatial)
    c = data.draw(st.integers(1, 3))
    shape = (2, *spatial, c) if df == "channels_last" else (2, c, *spatial)
    note(f"{shape} {df} output_size={osz}")
    rng = np.random.default_rng(seed)
    x = (rng.permutation(int(np.prod(shape))) / 7.0).reshape(shape).astype(np.float32)
    name = f"Adaptive{'Max' if mode == 'max' else 'Average'}Pooling{rank}D"
    layer = getattr(keras.layers, name)(osz, data_format=df)
    ref = keras.ops.convert_to_numpy(layer(x))
    out = getattr(poolkit, f"adaptive_{mode}_pool")(x, osz, data_format=df)
    np.testing.assert_allclose(out, ref, rtol=2e-6)
    g = rng.standard_normal(out.shape).astype(np.float32)
    got = getattr(poolkit, f"adaptive_{mode}_pool_backward")(g, x, osz, data_format=df)
    np.testing.assert_allclose(got, _grad(layer, x, g), rtol=2e-6, atol=1e-6)
    kop = getattr(keras.ops, f"adaptive_{mode}_pool")
    np.testing.assert_allclose(out, keras.ops.convert_to_numpy(kop(x, osz, data_format=df)),
                               rtol=2e-6)


@given(data=st.data())
def test_output_shape_knows_every_kind(data):
    kind = data.draw(st.sampled_from(sorted(KINDS)))
    df = data.draw(st.sampled_from(["channels_last", "channels_first"]))
    h, w = data.draw(st.integers(4, 12)), data.draw(st.integers(4, 12))
    shape = (1, h, w, 2) if df == "channels_last" else (1, 2, h, w)
    k = KINDS[kind]
    kw = {
        "windowed": dict(pool_size=data.draw(st.integers(1, 3)),
                         strides=data.draw(st.sampled_from([None, 1, 2])),
                         padding=data.draw(st.sampled_from(["valid", "same"]))),
        "global": dict(keepdims=data.draw(st.booleans())),
        "adaptive": dict(output_size=(data.draw(st.integers(1, 6)), None)),
        "blur": dict(filt_size=data.draw(st.integers(1, 3)),
                     strides=data.draw(st.integers(1, 3))),
        "polyphase": dict(strides=data.draw(st.integers(1, 3))),
    }[k.family]
    call = dict(kw)
    if kind == "lp":
        call["p"] = 2
    if kind == "max_blur":
        kw["pool_size"] = call["pool_size"] = 2
    note(f"{kind} {shape} {kw}")
    x = np.random.default_rng(0).uniform(0.1, 1, shape)
    out = getattr(poolkit, k.op)(x, data_format=df, **call)
    assert poolkit.output_shape(shape, data_format=df, kind=kind, **kw) == out.shape
