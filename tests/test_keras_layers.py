"""poolkit.keras layers: forward against torch, backward against finite differences (float64),
argument handling and errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import poolkit
from poolkit import keras
from poolkit.keras import layers as L

torch.set_num_threads(1)


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _same_pad(L_, k, s, d=1):
    # TF's rule, written out independently: out = ceil(L/s), odd cell after.
    e = d * (k - 1) + 1
    out = -(-L_ // s)
    total = max((out - 1) * s + e - L_, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize(
    "shape,filters,k,s,pad,dil,act",
    [
        ((2, 9, 8, 3), 5, (3, 3), (1, 1), "valid", (1, 1), "relu"),
        ((2, 10, 7, 2), 4, (3, 2), (2, 2), "same", (1, 1), None),
        ((1, 11, 9, 1), 3, (2, 3), (2, 1), "valid", (2, 1), "tanh"),
        ((3, 6, 6, 4), 2, (3, 3), (1, 2), "same", (1, 2), "sigmoid"),
    ],
)
def test_conv2d_forward_matches_torch(shape, filters, k, s, pad, dil, act):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    layer = L.Conv2D(filters, k, strides=s, padding=pad, dilation_rate=dil, activation=act,
                     dtype="float64")
    layer.build((None, *shape[1:]))
    layer.weights[1][:] = rng.standard_normal(filters)
    y = layer.forward(x)
    w = torch.from_numpy(layer.weights[0].transpose(3, 2, 0, 1).copy())
    xt = _nchw(x)
    if pad == "same":
        ph = _same_pad(shape[1], k[0], s[0], dil[0])
        pw = _same_pad(shape[2], k[1], s[1], dil[1])
        xt = F.pad(xt, (pw[0], pw[1], ph[0], ph[1]))
    ref = F.conv2d(xt, w, torch.from_numpy(layer.weights[1]), stride=s, dilation=dil)
    ref = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}.get(
        act, lambda t: t)(ref)
    assert y.shape == layer.compute_output_shape(shape) == _nhwc(ref).shape
    np.testing.assert_allclose(y, _nhwc(ref), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls,tfn", [(L.MaxPooling2D, F.max_pool2d), (L.AveragePooling2D,
                                                                       F.avg_pool2d)])
def test_pooling2d_layer_matches_torch_and_engine(cls, tfn):
    x = np.random.default_rng(1).standard_normal((2, 9, 7, 3)).astype(np.float32)
    layer = cls(pool_size=(3, 2), strides=(2, 1))
    y = layer(x)
    ref = _nhwc(tfn(_nchw(x), (3, 2), (2, 1)))
    np.testing.assert_allclose(y, ref, rtol=1e-6)
    assert y.shape[1:] == poolkit.output_shape((None, 9, 7, 3), (3, 2), (2, 1))[1:]
    assert layer.compute_output_shape((None, 9, 7, 3)) == (None, 4, 6, 3)


def test_pooling_defaults_are_keras():
    p = L.MaxPooling2D()
    assert p.pool_size == (2, 2) and p.strides == (2, 2) and p.padding == "valid"
    assert p.data_format == "channels_last"
    assert L.AveragePooling1D(3).strides == (3,)
    assert L.MaxPooling3D((1, 2, 3), strides=1).strides == (1, 1, 1)
    c = L.Conv2D(32, 3)
    assert c.kernel_size == (3, 3) and c.strides == (1, 1) and c.padding == "valid"
    assert c.activation == "linear" and c.use_bias
    assert c.kernel_initializer == "glorot_uniform" and c.bias_initializer == "zeros"


def test_glorot_uniform_range_and_zero_bias():
    keras.utils.set_random_seed(3)
    c = L.Conv2D(32, (3, 3))
    c.build((None, 28, 28, 1))
    lim = np.sqrt(6 / (9 * 1 + 9 * 32))
    w = c.weights[0]
    assert w.dtype == np.float32 and np.abs(w).max() <= lim and np.abs(w).max() > 0.9 * lim
    assert np.all(c.weights[1] == 0)


# ------------------------------------------------------------------------------------------
# Finite differences (float64) for every layer.


def _fd_check(layer, x, training=False, n_checks=25, rng=None, eps=1e-6):
    """Compare backward() with central differences of f = sum(forward(x) * R)."""
    rng = rng or np.random.default_rng(0)
    if not layer.built:
        layer.build((None, *x.shape[1:]))
    layer.need_input_grad = True
    y = layer.forward(x, training)
    R = rng.standard_normal(y.shape)
    gx = layer.backward(R.copy())
    grads = [g.copy() for g in layer.grads]

    def f():
        return float((layer.forward(x, training) * R).sum())

    targets = [(x, gx)] + list(zip(layer.weights, grads, strict=True))
    for arr, g in targets:
        flat_idx = rng.choice(arr.size, size=min(n_checks, arr.size), replace=False)
        for fi in flat_idx:
            idx = np.unravel_index(fi, arr.shape)
            old = arr[idx]
            arr[idx] = old + eps
            fp = f()
            arr[idx] = old - eps
            fm = f()
            arr[idx] = old
            num = (fp - fm) / (2 * eps)
            assert abs(num - g[idx]) <= 1e-6 * max(1.0, abs(num)), (type(layer).__name__, idx,
                                                                    num, g[idx])


@pytest.mark.parametrize("act,pad,s,dil", [
    ("relu", "valid", (1, 1), (1, 1)),
    ("relu", "same", (2, 2), (1, 1)),
    (None, "valid", (1, 2), (2, 1)),
    ("tanh", "same", (1, 1), (1, 2)),
    ("sigmoid", "valid", (2, 1), (1, 1)),
    ("softmax", "same", (2, 2), (1, 1)),
])
def test_conv2d_gradients_fd(act, pad, s, dil):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 7, 6, 3))
    layer = L.Conv2D(4, (3, 2), strides=s, padding=pad, dilation_rate=dil, activation=act,
                     dtype="float64")
    layer.build((None, 7, 6, 3))
    layer.weights[1][:] = rng.standard_normal(4) * 0.1
    _fd_check(layer, x, rng=rng)


@pytest.mark.parametrize("act,pad,s", [("relu", "valid", (1, 1)), ("tanh", "same", (2, 1)),
                                       ("softmax", "same", (1, 2)), (None, "valid", (2, 2))])
def test_conv2d_channels_first_gradients_fd(act, pad, s):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    layer = L.Conv2D(4, (3, 2), strides=s, padding=pad, activation=act, dtype="float64",
                     data_format="channels_first")
    layer.build((None, 3, 7, 6))
    layer.weights[1][:] = rng.standard_normal(4) * 0.1
    _fd_check(layer, x, rng=rng)


@pytest.mark.parametrize("act", ["softmax", "relu", None, "tanh", "sigmoid"])
def test_dense_gradients_fd(act):
    rng = np.random.default_rng(4)
    layer = L.Dense(6, activation=act, dtype="float64")
    layer.build((None, 9))
    layer.weights[1][:] = rng.standard_normal(6) * 0.1
    _fd_check(layer, rng.standard_normal((5, 9)), rng=rng)


def test_dense_on_rank3_input():
    rng = np.random.default_rng(5)
    layer = L.Dense(4, dtype="float64")
    x = rng.standard_normal((3, 5, 7))
    y = layer(x)
    np.testing.assert_allclose(y, x @ layer.weights[0] + layer.weights[1], rtol=1e-12)
    _fd_check(layer, x, rng=rng)


@pytest.mark.parametrize(
    "layer,shape",
    [
        (lambda: L.MaxPooling2D((2, 3), strides=(1, 2), padding="same"), (2, 5, 7, 2)),
        (lambda: L.AveragePooling2D(3, strides=2, padding="same"), (2, 8, 7, 2)),
        (lambda: L.MaxPooling1D(3, strides=2), (2, 9, 3)),
        (lambda: L.AveragePooling1D(2, padding="same"), (2, 7, 3)),
        (lambda: L.MaxPooling3D(2, padding="same"), (1, 3, 5, 4, 2)),
        (lambda: L.AveragePooling3D((2, 1, 2)), (1, 4, 3, 4, 2)),
        (lambda: L.GlobalMaxPooling2D(), (2, 5, 4, 3)),
        (lambda: L.GlobalAveragePooling2D(keepdims=True), (2, 5, 4, 3)),
        (lambda: L.Flatten(), (2, 3, 4, 2)),
        (lambda: L.ReLU(), (3, 8)),
        (lambda: L.ReLU(max_value=0.5), (3, 8)),
        (lambda: L.Softmax(), (3, 8)),
        (lambda: L.Softmax(axis=1), (2, 5, 3)),
        (lambda: L.Softmax(axis=(1, 2)), (2, 3, 4, 2)),
        (lambda: L.ReLU(negative_slope=0.2, threshold=0.3), (3, 8)),
        (lambda: L.ReLU(negative_slope=0.1, threshold=0.2, max_value=0.8), (3, 8)),
        (lambda: L.Flatten(data_format="channels_first"), (2, 3, 4, 2)),
        (lambda: L.Activation("tanh"), (3, 8)),
        (lambda: L.Dropout(0.0), (3, 8)),
    ],
)
def test_parameter_free_layer_gradients_fd(layer, shape):
    rng = np.random.default_rng(6)
    lay = layer()
    lay.dtype = np.dtype(np.float64)
    _fd_check(lay, rng.standard_normal(shape), rng=rng)


def test_dropout_training_mask_and_gradient():
    keras.utils.set_random_seed(0)
    d = L.Dropout(0.5)
    x = np.ones((200, 50))
    y = d.forward(x, training=True)
    kept = y != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(y[kept], 2.0)
    g = d.backward(np.ones_like(x))
    np.testing.assert_array_equal(g, y)  # same mask, same scale
    np.testing.assert_array_equal(d.forward(x, training=False), x)


def test_global_pooling_values():
    x = np.random.default_rng(7).standard_normal((2, 5, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(L.GlobalMaxPooling2D()(x), x.max(axis=(1, 2)))
    np.testing.assert_allclose(L.GlobalAveragePooling2D()(x), x.mean(axis=(1, 2)), rtol=1e-6)


# ------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize(
    "make,exc,words",
    [
        (lambda: L.Conv2D(0, 3), ValueError, "filters"),
        (lambda: L.Conv2D(3.5, 3), TypeError, "filters"),
        (lambda: L.Conv2D(4, 3, padding="full"), ValueError, "padding"),
        (lambda: L.Conv2D(4, 3, activation="gelu"), ValueError, "activation"),
        (lambda: L.Conv2D(4, 3, kernel_initializer="magic"), ValueError, "kernel_initializer"),
        (lambda: L.MaxPooling2D(0), ValueError, "pool_size"),
        (lambda: L.MaxPooling2D((2, 2, 2)), ValueError, "pool_size"),
        (lambda: L.AveragePooling2D(2, strides=-1), ValueError, "strides"),
        (lambda: L.MaxPooling2D(2, padding="full"), ValueError, "padding"),
        (lambda: L.Dense(0), ValueError, "units"),
        (lambda: L.Dense(4, foo=1), TypeError, "foo"),
        (lambda: L.Dropout(1.0), ValueError, "rate"),
        (lambda: L.Conv2D(4, 3, input_shape=(28, -1, 1)), ValueError, "input_shape"),
    ],
)
def test_bad_arguments(make, exc, words):
    with pytest.raises(exc, match=words):
        make()


def test_shape_errors_name_the_layer():
    with pytest.raises(ValueError, match="zero or negative"):
        keras.Sequential([L.Conv2D(2, 5, input_shape=(3, 3, 1))])
    with pytest.raises(ValueError, match="zero or negative"):
        keras.Sequential([L.MaxPooling2D(4, input_shape=(3, 3, 1))])
    with pytest.raises(ValueError, match="rank 4"):
        keras.Sequential([L.Conv2D(2, 3, input_shape=(28, 28))])
