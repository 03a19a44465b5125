"""Parameter counts, output shapes, summary rows and layer outputs equal real Keras 3 (torch
backend)."""

import os
import re

import numpy as np
import pytest

from poolkit import keras as pk

os.environ.setdefault("KERAS_BACKEND", "torch")
rk = pytest.importorskip("keras")


def _models(k):
    """The same architectures, built by either library's API."""
    Lk = k.layers
    return [
        # The tutorial, exactly as written.
        lambda: k.Sequential([
            Lk.Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
            Lk.MaxPooling2D(pool_size=(2, 2), strides=2),
            Lk.Flatten(),
            Lk.Dense(10, activation="softmax"),
        ]),
        lambda: k.Sequential([
            k.Input(shape=(32, 30, 3)),
            Lk.Conv2D(16, 5, strides=2, padding="same", activation="relu"),
            Lk.AveragePooling2D(3, strides=2, padding="same"),
            Lk.Conv2D(8, (3, 2), use_bias=False),
            Lk.ReLU(),
            Lk.MaxPooling2D(2, strides=1),
            Lk.Dropout(0.25),
            Lk.GlobalAveragePooling2D(),
            Lk.Dense(12),
            Lk.Activation("relu"),
            Lk.Dense(4),
            Lk.Softmax(),
        ]),
        lambda: k.Sequential([
            k.Input(shape=(9, 7, 5)),
            Lk.GlobalMaxPooling2D(),
            Lk.Dense(3, activation="softmax"),
        ]),
        lambda: k.Sequential([
            k.Input(shape=(20, 3)),
            Lk.MaxPooling1D(3, strides=2, padding="same"),
            Lk.AveragePooling1D(2),
            Lk.Flatten(),
            Lk.Dense(5),
        ]),
        lambda: k.Sequential([
            k.Input(shape=(7, 6, 5, 2)),
            Lk.MaxPooling3D(2, padding="same"),
            Lk.AveragePooling3D((2, 1, 2), strides=(1, 2, 1)),
            Lk.Flatten(),
            Lk.Dense(6, activation="softmax"),
        ]),
        lambda: k.Sequential([
            k.Input(shape=(3, 17, 12)),
            Lk.Conv2D(6, 3, strides=2, padding="same", data_format="channels_first",
                      activation="relu"),
            Lk.MaxPooling2D(2, data_format="channels_first"),
            Lk.ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5),
            Lk.Flatten(data_format="channels_first"),
            Lk.Dense(4),
            Lk.Softmax(axis=-1),
        ]),
    ]


def _rows(text):
    """(type, output shape, params) per table row; a row's cells may wrap over several lines."""
    rows, cur = [], None
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [c.strip() for c in line.strip("│").split("│")]
            cur = cells if cur is None else [
                (a + " " + b).strip() for a, b in zip(cur, cells, strict=True)]
        elif cur is not None:
            m = re.search(r"\((\w+)\)$", cur[0])
            rows.append((m.group(1) if m else cur[0], cur[1], cur[2]))
            cur = None
    return rows


def _totals(text):
    return [line.strip() for line in text.splitlines() if "params:" in line]


@pytest.mark.parametrize("i", range(6))
def test_summary_rows_params_and_shapes_equal_keras(i):
    theirs = _models(rk)[i]()
    ours = _models(pk)[i]()
    t_lines, o_lines = [], []
    theirs.summary(print_fn=lambda s, *a, **kw: t_lines.append(s))
    ours.summary(print_fn=o_lines.append)
    t_text, o_text = "\n".join(t_lines), "\n".join(o_lines)
    t_rows = _rows(t_text)
    assert t_rows, t_text  # the parser understood Keras's table
    assert [r[:3] for r in _rows(o_text)] == t_rows
    assert _totals(o_text) == _totals(t_text)
    assert ours.count_params() == theirs.count_params()
    for lo, lt in zip(ours.layers, theirs.layers, strict=True):
        assert tuple(lo.output_shape) == tuple(lt.output.shape)
        assert [w.shape for w in lo.weights] == [tuple(w.shape) for w in lt.weights]


def test_tutorial_param_count_is_54410():
    m = _models(pk)[0]()
    assert [r["params"] for r in m.layer_table()] == [320, 0, 0, 54090]
    assert m.count_params() == 54410


def test_layer_table_receptive_fields_and_macs():
    m = _models(pk)[0]()
    t = m.layer_table()
    # conv 3x3/1: rf 3, jump 1; pool 2/2: rf 3 + 1*1 = 4, jump 2; flatten: 4 + 12*2 = 28.
    assert [r["rf_size"] for r in t] == [(3, 3), (4, 4), (28, 28), (28, 28)]
    assert [r["rf_jump"] for r in t] == [(1, 1), (2, 2), None, None]
    assert t[0]["macs"] == 26 * 26 * 32 * 9 and t[3]["macs"] == 5408 * 10
    assert t[1]["macs"] == 0
    assert t[0]["act_bytes"] == 26 * 26 * 32 * 4
    assert t[0]["output_shape"] == (None, 26, 26, 32)
    assert set(t[0]) == {"name", "type", "output_shape", "params", "macs", "rf_size",
                         "rf_jump", "act_bytes"}


# ------------------------------------------------------------------------------------------
# Layer outputs for the Keras arguments poolkit used to reject.


def _keras_out(layer, x):
    return rk.ops.convert_to_numpy(layer(x))


@pytest.mark.parametrize("kw", [
    dict(kernel_size=3),
    dict(kernel_size=(3, 2), strides=2, padding="same", activation="relu"),
    dict(kernel_size=2, dilation_rate=(2, 1), use_bias=True, activation="tanh"),
    dict(kernel_size=(1, 3), strides=(1, 2), padding="same", activation="softmax"),
])
def test_conv2d_channels_first_equals_keras(kw):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    theirs = rk.layers.Conv2D(5, data_format="channels_first", **kw)
    theirs.build((None, 3, 9, 8))
    ours = pk.layers.Conv2D(5, data_format="channels_first", **kw)
    ours.build((None, 3, 9, 8))
    w = [rng.standard_normal(v.shape).astype(np.float32) for v in theirs.weights]
    theirs.set_weights(w)
    ours.set_weights(w)
    ref = _keras_out(theirs, x)
    got = ours(x)
    assert got.shape == ref.shape == ours.compute_output_shape(x.shape)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    if kw.get("activation") == "softmax":
        return  # a softmax runs over the last axis of either format: no transpose relation
    # The same layer in channels_last, on the transposed input, gives the transposed output.
    last = pk.layers.Conv2D(5, **kw)
    last.build((None, 9, 8, 3))
    last.set_weights(w)
    np.testing.assert_allclose(last(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2), got,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (2, 3, 4), (2, 6), (3,)])
@pytest.mark.parametrize("df", ["channels_first", "channels_last"])
def test_flatten_data_format_equals_keras(shape, df):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    ref = _keras_out(rk.layers.Flatten(data_format=df), x)
    got = pk.layers.Flatten(data_format=df)(x)
    np.testing.assert_array_equal(got, ref)


_RELU_X = np.array([[-3.0, -1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0, 5.9, 6.0, 6.5, 100.0]],
                   np.float32)


@pytest.mark.parametrize("kw", [
    {},
    dict(negative_slope=0.1),
    dict(threshold=0.5),
    dict(max_value=6.0),
    dict(max_value=1.0, threshold=0.5),
    dict(negative_slope=0.2, threshold=0.5),
    dict(negative_slope=0.3, max_value=2.0),
    dict(negative_slope=0.5, threshold=1.0, max_value=6.0),
    dict(max_value=0.0),
])
def test_relu_arguments_equal_keras(kw):
    ref = _keras_out(rk.layers.ReLU(**kw), _RELU_X)
    got = pk.layers.ReLU(**kw)(_RELU_X)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kw,words", [
    (dict(max_value=-1.0), "max_value"),
    (dict(negative_slope=-0.1), "negative_slope"),
    (dict(threshold=-0.5), "threshold"),
    (dict(negative_slope=None), "negative_slope"),
])
def test_relu_rejects_what_keras_rejects(kw, words):
    with pytest.raises(ValueError, match=words):
        rk.layers.ReLU(**kw)
    with pytest.raises((ValueError, TypeError), match=words):
        pk.layers.ReLU(**kw)


@pytest.mark.parametrize("axis", [-1, 1, 2, -3, (1, 2), [2, 3], (3,)])
def test_softmax_axis_equals_keras(axis):
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32) * 3
    ref = _keras_out(rk.layers.Softmax(axis=axis), x)
    got = pk.layers.Softmax(axis=axis)(x)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_new_arguments_survive_save_and_load(tmp_path):
    m = _models(pk)[5]()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(2).standard_normal((4, 3, 17, 12)).astype(np.float32)
    path = tmp_path / "cf.poolkit"
    m.save(path)
    m2 = pk.models.load_model(path)
    np.testing.assert_array_equal(m2.predict(x, verbose=0), m.predict(x, verbose=0))
    assert m2.layers[0].data_format == "channels_first" and m2.layers[-1].axis == -1
    assert (m2.layers[2].max_value, m2.layers[2].negative_slope, m2.layers[2].threshold) == \
        (6.0, 0.1, 0.5)
