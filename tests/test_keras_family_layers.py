"""The pooling family's Keras-style layers.

Global and adaptive layers against Keras 3 (KERAS_BACKEND=torch): names, constructor
arguments, configs, output shapes, values and gradients, 1-3 spatial dims, both data formats.
Every family layer (Keras's and poolkit's own) in a model: the summary's receptive field,
multiply-adds and memory, a training step, and save/load.
"""

from __future__ import annotations

import inspect
import math
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import poolkit  # noqa: E402
from poolkit import keras as pk  # noqa: E402

torch.set_num_threads(1)

L = pk.layers


def _shape(rank, df, c=3, n=2, size=(7, 6, 5)):
    sp = size[:rank]
    return (n, *sp, c) if df == "channels_last" else (n, c, *sp)


def _torch_grad(layer, x, g):
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    layer(t).backward(torch.from_numpy(g))
    return t.grad.numpy()


KERAS_CASES = [
    (f"{fam}{mode}Pooling{r}D", r, kw)
    for r in (1, 2, 3)
    for fam, mode, kw in (
        ("Global", "Max", {"keepdims": False}), ("Global", "Max", {"keepdims": True}),
        ("Global", "Average", {"keepdims": False}), ("Global", "Average", {"keepdims": True}),
        ("Adaptive", "Max", {"output_size": 3}), ("Adaptive", "Average", {"output_size": 4}),
    )
]


@pytest.mark.parametrize("df", ["channels_last", "channels_first"])
@pytest.mark.parametrize("name,rank,kw", KERAS_CASES)
def test_global_and_adaptive_layers_match_keras(name, rank, kw, df):
    ours_cls, theirs_cls = getattr(L, name), getattr(keras.layers, name)
    # Keras's constructor arguments, same names and defaults
    ours_sig = inspect.signature(ours_cls.__init__).parameters
    theirs_sig = inspect.signature(theirs_cls.__init__).parameters
    for p in theirs_sig:
        if p in ("self", "kwargs"):
            continue
        assert p in ours_sig, (name, p)
        assert ours_sig[p].default == theirs_sig[p].default, (name, p)
    ours, theirs = ours_cls(data_format=df, **kw), theirs_cls(data_format=df, **kw)
    shape = _shape(rank, df)
    rng = np.random.default_rng(rank)
    x = (rng.permutation(int(np.prod(shape))) / 7.0).reshape(shape).astype(np.float32)
    ref = keras.ops.convert_to_numpy(theirs(x))
    out = ours(x)
    assert out.shape == ref.shape == ours.compute_output_shape(x.shape)
    assert tuple(theirs.compute_output_shape((None, *shape[1:]))) == \
        ours.compute_output_shape((None, *shape[1:]))
    np.testing.assert_allclose(out, ref, rtol=2e-6)
    # config: Keras's keys (besides name/trainable/dtype, which differ in form)
    cfg_ours, cfg_theirs = ours.get_config(), theirs.get_config()
    for k in cfg_theirs:
        if k not in ("name", "trainable", "dtype"):
            assert k in cfg_ours and np.all(np.asarray(cfg_ours[k]) == np.asarray(cfg_theirs[k]))
    g = rng.standard_normal(out.shape).astype(np.float32)
    y = ours.forward(x)
    np.testing.assert_array_equal(y, out)
    np.testing.assert_allclose(ours.backward(g), _torch_grad(theirs, x, g), rtol=2e-6,
                               atol=1e-7)


def test_keras_aliases():
    for alias, name in (("MaxPool2D", "MaxPooling2D"), ("AvgPool2D", "AveragePooling2D"),
                        ("GlobalAvgPool2D", "GlobalAveragePooling2D"),
                        ("GlobalMaxPool2D", "GlobalMaxPooling2D"), ("MaxPool1D", "MaxPooling1D"),
                        ("GlobalAvgPool3D", "GlobalAveragePooling3D"),
                        ("GlobalMaxPool1D", "GlobalMaxPooling1D")):
        assert getattr(L, alias) is getattr(L, name)
        assert getattr(keras.layers, alias) is getattr(keras.layers, name)  # Keras has it too


# Every family layer, in the tutorial's model. (layer, (window, stride) per dim of its input
# for the receptive field, multiply-adds per sample of the layer)
FAMILY = [
    (lambda: L.MinPooling2D(2), (2, 2), 0),
    (lambda: L.LPPooling2D(3, 2), (2, 2), 0),
    (lambda: L.LPPooling2D(math.inf, 2), (2, 2), 0),
    (lambda: L.BlurPool2D(), (4, 2), 13 * 13 * 32 * 16),
    (lambda: L.BlurPool2D(3, 1, "zero"), (3, 1), 26 * 26 * 32 * 9),
    (lambda: L.MaxBlurPool2D(), (2 + 4 - 1, 2), 13 * 13 * 32 * 16),
    (lambda: L.APSPool2D(), (2, 2), 0),
    (lambda: L.APSPool2D(2, math.inf), (2, 2), 0),
    (lambda: L.AdaptiveMaxPooling2D(13), (2, 2), 0),
    (lambda: L.AdaptiveAveragePooling2D((5, 7)), "adaptive", 0),
    (lambda: L.GlobalMaxPooling2D(), None, 0),
    (lambda: L.GlobalAveragePooling2D(keepdims=True), None, 0),
]


@pytest.mark.parametrize("make,field,macs", FAMILY)
def test_family_layer_in_a_model_summary_training_and_saving(make, field, macs, tmp_path):
    pk.utils.set_random_seed(0)
    pool = make()
    model = pk.Sequential([L.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)), pool,
                           L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    rows = model.layer_table()
    conv, prow = rows[0], rows[1]
    assert prow["type"] == type(pool).__name__
    assert prow["output_shape"] == pool.output_shape
    assert prow["macs"] == macs
    assert prow["act_bytes"] == int(np.prod(pool.output_shape[1:])) * 4
    if field is None:  # global: the field spans the whole conv grid: 3 + (26 - 1) * 1
        assert prow["rf_size"] == (28, 28) and prow["rf_jump"] is None
    else:
        if isinstance(pool, L.AdaptiveAveragePooling2D):
            # per dim: the longest window, max_i ceil((i+1)L/O) - floor(iL/O), and the step
            # floor(L / O), for L = 26
            longest = [max(-(-(i + 1) * 26 // o) - i * 26 // o for i in range(o))
                       for o in (5, 7)]
            assert longest == [6, 5]
            assert prow["rf_size"] == (3 + 6 - 1, 3 + 5 - 1) and prow["rf_jump"] == (5, 3)
        else:
            w, s = field
            assert prow["rf_size"] == (conv["rf_size"][0] + w - 1,) * 2
            assert prow["rf_jump"] == (s, s)
    text = model.summary(print_fn=lambda s: None)
    assert type(pool).__name__ in text
    rng = np.random.default_rng(0)
    x = rng.random((16, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 16)
    before = model.predict(x, verbose=0)
    hist = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    after = model.predict(x, verbose=0)
    assert not np.array_equal(before, after)  # the step changed the weights through the pool
    path = tmp_path / "m.poolkit"
    model.save(path)
    back = pk.models.load_model(path)
    assert type(back.layers[1]) is type(pool)
    assert back.layers[1].get_config() == {**pool.get_config(), "name": back.layers[1].name}
    np.testing.assert_array_equal(back.predict(x, verbose=0), after)


def test_family_layers_call_their_ops():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
    g = None
    for layer, op, kw in (
        (L.MinPooling2D(3, 2, "same"), poolkit.min_pool, dict(pool_size=3, strides=2,
                                                               padding="same")),
        (L.LPPooling2D(1.5, 2), poolkit.lp_pool, dict(p=1.5, pool_size=2)),
        (L.BlurPool2D(5, 2, "repl"), poolkit.blur_pool, dict(filt_size=5, strides=2,
                                                             pad_type="repl")),
        (L.MaxBlurPool2D(3, 2, 3), poolkit.max_blur_pool, dict(pool_size=3, strides=2,
                                                               filt_size=3)),
        (L.APSPool2D(3, 1), poolkit.aps_pool, dict(strides=3, norm=1)),
        (L.AdaptiveMaxPooling2D((4, None)), poolkit.adaptive_max_pool,
         dict(output_size=(4, None))),
    ):
        y = layer.forward(x)
        np.testing.assert_array_equal(y, op(x, **kw))
        g = rng.standard_normal(y.shape).astype(np.float32)
        back = getattr(poolkit, op.__name__ + "_backward")(g, x, **kw)
        np.testing.assert_array_equal(layer.backward(g), back)


def test_family_layer_arguments_are_checked_at_construction():
    from poolkit.errors import InvalidType, InvalidValue

    for bad, err in ((lambda: L.BlurPool2D(8), InvalidValue),
                     (lambda: L.BlurPool2D(pad_type="circular"), InvalidValue),
                     (lambda: L.LPPooling2D(0), InvalidValue),
                     (lambda: L.LPPooling2D("2"), InvalidType),
                     (lambda: L.APSPool2D(0), InvalidValue),
                     (lambda: L.AdaptiveAveragePooling2D(-1), InvalidValue),
                     (lambda: L.AdaptiveAveragePooling2D((2, 2, 2)), InvalidValue),
                     (lambda: L.GlobalMaxPooling2D(keepdims="yes"), InvalidType),
                     (lambda: L.MaxBlurPool2D(0), InvalidValue)):
        with pytest.raises(err):
            bad()


@pytest.mark.parametrize("output_size", [(np.int64(3),), [np.int32(2)], np.int64(3)])
def test_adaptive_config_is_json_with_numpy_ints(output_size):
    # Found by the fuzz harness: NumPy ints stayed in the config, so json.dumps (and saving a
    # model with the layer) failed with a TypeError.
    import json

    layer = L.AdaptiveMaxPooling1D(output_size)
    text = json.dumps(layer.get_config())
    assert L.AdaptiveMaxPooling1D.from_config(json.loads(text)).output_size == \
        layer.output_size
