"""compile / fit / evaluate / predict / History / set_random_seed, input handling."""

import re

import numpy as np
import pytest

from poolkit import keras
from poolkit.keras import layers as L


def _tutorial(filters=8):
    return keras.Sequential([
        L.Conv2D(filters, (3, 3), activation="relu", input_shape=(12, 12, 1)),
        L.MaxPooling2D(pool_size=(2, 2), strides=2),
        L.Flatten(),
        L.Dense(3, activation="softmax"),
    ])


def _task(n=240, seed=0):
    """A learnable task: the class is which third of the image holds a bright bar."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.random((n, 12, 12)) * 0.3
    for i, c in enumerate(y):
        x[i, :, 4 * c:4 * c + 3] += 0.7
    return (x * 255).astype(np.uint8), y


def _compiled(seed=0, **kw):
    keras.utils.set_random_seed(seed)
    m = _tutorial()
    m.compile(optimizer=kw.get("optimizer", "adam"),
              loss=kw.get("loss", "sparse_categorical_crossentropy"), metrics=["accuracy"])
    return m


def test_fit_learns_and_history_has_keras_keys():
    m = _compiled()
    x, y = _task()
    h = m.fit(x / 255.0, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0)
    assert list(h.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(v) == 3 for v in h.history.values())
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["val_accuracy"][-1] > 0.9
    loss, acc = m.evaluate(x / 255.0, y, verbose=0)
    p = m.predict(x / 255.0, verbose=0)
    assert p.shape == (240, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    # evaluate == the mean cross-entropy and accuracy of predict's probabilities.
    assert acc == pytest.approx(np.mean(p.argmax(1) == y))
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(240), y])), rel=1e-4)


def test_validation_split_takes_the_last_samples():
    m = _compiled()
    x, y = _task(100)
    x = x / 255.0
    h = m.fit(x, y, epochs=1, validation_split=0.2, shuffle=False, verbose=0)
    vloss, vacc = m.evaluate(x[80:], y[80:], verbose=0)
    assert h.history["val_loss"][0] == pytest.approx(vloss)
    assert h.history["val_accuracy"][0] == pytest.approx(vacc)


def test_validation_data_and_categorical_loss():
    keras.utils.set_random_seed(0)
    m = _tutorial()
    m.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
              loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = _task()
    yc = keras.utils.to_categorical(y, 3)
    h = m.fit(x / 255.0, yc, epochs=2, validation_data=(x[:40] / 255.0, yc[:40]), verbose=0)
    assert "val_loss" in h.history
    assert m.evaluate(x / 255.0, yc, verbose=0)[1] > 0.8


def test_set_random_seed_makes_runs_identical():
    x, y = _task()
    runs = []
    for _ in range(2):
        m = _compiled(seed=7)
        h = m.fit(x / 255.0, y, epochs=2, batch_size=32, verbose=0)
        runs.append((h.history, m.get_weights()))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        np.testing.assert_array_equal(a, b)
    m3 = _compiled(seed=8)
    assert not np.array_equal(m3.get_weights()[0], runs[0][1][0])


def test_inputs_uint8_and_missing_channel_axis_accepted_like_keras():
    m = _compiled()
    x, y = _task(64)
    a = m.predict(x, verbose=0)  # uint8 (n, 12, 12): cast and channel axis added, as Keras does
    b = m.predict(x.astype(np.float32)[..., None], verbose=0)
    np.testing.assert_array_equal(a, b)
    m.fit(x, y, epochs=1, verbose=0)


def test_bad_inputs_raise_clear_errors():
    m = _compiled()
    x, y = _task(32)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(batch, 12, 12, 1\)"):
        m.predict(np.zeros((4, 10, 10, 1)), verbose=0)
    with pytest.raises(ValueError, match="32 samples"):
        m.fit(x, y[:10], verbose=0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        m.fit(x, y + 5, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        m.fit(x, y, verbose=5)
    with pytest.raises(ValueError, match="optimizer"):
        m.compile(optimizer="adagrad", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="loss"):
        m.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="compile"):
        _tutorial().fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="learning_rate"):
        keras.optimizers.Adam(learning_rate=-1)


def test_progress_bar_and_silence(capsys):
    m = _compiled()
    x, y = _task(64)
    m.fit(x, y, epochs=2, batch_size=16, verbose="auto")
    out = capsys.readouterr().out
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    bar = r"4/4 ━+ \d+s \d+(?:s|ms|us)/step - accuracy: \d\.\d{4} - loss: \d+\.\d{4}"
    assert re.search(bar, out), out
    m.fit(x, y, epochs=1, verbose=0)
    m.evaluate(x, y, verbose=0)
    m.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_input_object_and_add():
    m = keras.Sequential()
    m.add(keras.Input(shape=(12, 12, 1)))
    m.add(L.Conv2D(2, 3))
    m.add(L.GlobalAveragePooling2D())
    assert m.built and m.output_shape == (None, 2)
    m2 = keras.Sequential([L.Flatten(), L.Dense(2)])  # built at first use, like Keras
    assert not m2.built
    assert m2.predict(np.zeros((3, 4, 5)), verbose=0).shape == (3, 2)
    assert m2.layers[1].weights[0].shape == (20, 2)


def test_softmax_layer_over_the_last_axis_trains_like_a_softmax_activation():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((16, 6)), rng.integers(0, 3, 16)
    grads = []
    for last in ([L.Dense(3, activation="softmax")], [L.Dense(3), L.Softmax(axis=1)],
                 [L.Dense(3), L.Activation("softmax")]):
        keras.utils.set_random_seed(5)
        m = keras.Sequential([keras.Input(shape=(6,)), *last])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        grads.append(m.compute_gradients(x, y))
    for loss, g in grads[1:]:
        assert loss == pytest.approx(grads[0][0], rel=1e-6)
        for a, b in zip(g, grads[0][1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_softmax_over_another_axis_is_not_fused_with_the_loss():
    # Softmax(axis=0) normalises over the batch: the loss must see its real output.
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    keras.utils.set_random_seed(2)
    m = keras.Sequential([keras.Input(shape=(4,)), L.Dense(3), L.Softmax(axis=0)])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    p = m.predict(x, verbose=0)
    np.testing.assert_allclose(p.sum(axis=0), 1, rtol=1e-5)
    loss = m.evaluate(x, y, verbose=0)
    q = p / p.sum(axis=1, keepdims=True)  # Keras's CE renormalises each row
    assert loss == pytest.approx(-np.mean(np.log(np.clip(q[np.arange(5), y], 1e-7, 1))),
                                 rel=1e-5)
