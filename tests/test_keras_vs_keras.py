"""Parameter counts, output shapes and summary rows equal real Keras 3 (torch backend)."""

import os
import re

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


@pytest.mark.parametrize("i", range(5))
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
