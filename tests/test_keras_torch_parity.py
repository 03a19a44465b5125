"""The whole model's loss and every parameter gradient equal the same model in torch (same
weights), and Adam/SGD steps equal Keras's own optimizers."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from poolkit import keras
from poolkit.keras import layers as L

torch.set_num_threads(1)


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _tutorial(dtype, pool="max"):
    P = L.MaxPooling2D if pool == "max" else L.AveragePooling2D
    return keras.Sequential([
        L.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1), dtype=dtype),
        P(pool_size=(2, 2), strides=2, dtype=dtype),
        L.Flatten(dtype=dtype),
        L.Dense(10, activation="softmax", dtype=dtype),
    ])


def _torch_tutorial(model, x, y, pool="max"):
    w, b, dw, db = (_t(a).requires_grad_() for a in (
        model.layers[0].weights[0].transpose(3, 2, 0, 1), model.layers[0].weights[1],
        model.layers[3].weights[0].T, model.layers[3].weights[1]))
    h = torch.relu(F.conv2d(_t(x.transpose(0, 3, 1, 2)), w, b))
    h = F.max_pool2d(h, 2, 2) if pool == "max" else F.avg_pool2d(h, 2, 2)
    h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)  # Keras flattens channels_last
    loss = F.cross_entropy(h @ dw.T + db, _t(y))
    loss.backward()
    return float(loss.detach()), [w.grad.numpy().transpose(2, 3, 1, 0), b.grad.numpy(),
                         dw.grad.numpy().T, db.grad.numpy()]


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 2e-4)])
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_tutorial_model_loss_and_gradients_equal_torch(dtype, tol, pool):
    keras.utils.set_random_seed(1)
    model = _tutorial(dtype, pool)
    model.layers[0].weights[1][:] = np.random.default_rng(0).standard_normal(32) * 0.05
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(3)
    x = rng.random((16, 28, 28, 1)).astype(dtype)
    y = rng.integers(0, 10, 16)
    loss, grads = model.compute_gradients(x, y)
    ref_loss, ref_grads = _torch_tutorial(model, x, y, pool)
    assert abs(loss - ref_loss) <= tol * abs(ref_loss)
    for g, r in zip(grads, ref_grads, strict=True):
        assert g.shape == r.shape
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol * np.abs(r).max())


def test_deeper_model_with_same_padding_strides_and_global_pool_equals_torch():
    dt = "float64"
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input(shape=(12, 11, 2), dtype=dt),
        L.Conv2D(4, 3, strides=2, padding="same", activation="relu", dtype=dt),
        L.AveragePooling2D(2, strides=1, dtype=dt),
        L.Conv2D(5, (2, 3), dilation_rate=(1, 2), activation="tanh", dtype=dt),
        L.GlobalMaxPooling2D(dtype=dt),
        L.Dense(7, activation="relu", dtype=dt),
        L.Dense(3, dtype=dt),
        L.Activation("softmax", dtype=dt),
    ])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    rng = np.random.default_rng(5)
    for layer in model.layers:
        for w in layer.weights:
            w[...] = rng.standard_normal(w.shape) * 0.5
    x = rng.standard_normal((6, 12, 11, 2))
    y = keras.utils.to_categorical(rng.integers(0, 3, 6), 3)
    loss, grads = model.compute_gradients(x, y)

    ws = [_t(w).requires_grad_() for w in model.weights]
    c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b = ws
    h = _t(x.transpose(0, 3, 1, 2))
    # "same", k=3, s=2: H 12 -> 6, total pad 1 = (0, 1); W 11 -> 6, total pad 2 = (1, 1).
    h = F.pad(h, (1, 1, 0, 1))
    h = torch.relu(F.conv2d(h, c1w.permute(3, 2, 0, 1), c1b, stride=2))
    h = F.avg_pool2d(h, 2, 1)
    h = torch.tanh(F.conv2d(h, c2w.permute(3, 2, 0, 1), c2b, dilation=(1, 2)))
    h = h.amax(dim=(2, 3))
    h = torch.relu(h @ d1w + d1b)
    logits = h @ d2w + d2b
    ref = -(_t(y) * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    ref.backward()
    assert model.layers[0].output_shape == (None, 6, 6, 4)
    assert abs(loss - float(ref.detach())) <= 1e-10 * abs(float(ref.detach()))
    for g, w in zip(grads, ws, strict=True):
        np.testing.assert_allclose(g, w.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_probability_loss_path_equals_torch():
    """Last layer without softmax: loss on probabilities (Keras's clipped formula)."""
    dt = "float64"
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input(shape=(5,), dtype=dt),
                              L.Dense(3, activation="sigmoid", dtype=dt)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5))
    y = np.array([0, 2, 1, 2])
    loss, grads = model.compute_gradients(x, y)
    w, b = (_t(a).requires_grad_() for a in model.weights)
    p = torch.sigmoid(_t(x) @ w + b)
    p = p / p.sum(dim=1, keepdim=True)
    ref = -torch.log(p[torch.arange(4), _t(y)]).mean()
    ref.backward()
    assert abs(loss - float(ref.detach())) < 1e-12
    np.testing.assert_allclose(grads[0], w.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grads[1], b.grad.numpy(), rtol=1e-10)


# ------------------------------------------------------------------------------------------
# Optimizers against Keras's own (torch backend).


@pytest.fixture(scope="module")
def real_keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras as rk

    return rk


@pytest.mark.parametrize("which", ["adam", "sgd", "sgd_momentum", "sgd_nesterov"])
def test_optimizer_steps_equal_keras(real_keras, which):
    from poolkit.keras import optimizers

    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(5)]
    mk = {
        "adam": lambda m: m.Adam(learning_rate=0.01),
        "sgd": lambda m: m.SGD(learning_rate=0.1),
        "sgd_momentum": lambda m: m.SGD(learning_rate=0.1, momentum=0.9),
        "sgd_nesterov": lambda m: m.SGD(learning_rate=0.1, momentum=0.9, nesterov=True),
    }[which]
    ours = mk(optimizers)
    theirs = mk(real_keras.optimizers)
    p = p0.copy()
    v = real_keras.Variable(p0.copy())
    for g in grads:
        ours.apply([p], [g])
        theirs.apply_gradients([(real_keras.ops.convert_to_tensor(g), v)])
    np.testing.assert_allclose(p, real_keras.ops.convert_to_numpy(v), rtol=1e-5, atol=1e-6)
