"""Memory safety of poolkit.keras: layers check their input against what they were built for
(Keras's rule and message), backward checks its gradient, an optimizer refuses arrays it was not
built with (as Keras 3 does), and the compiled kernels are never reached with arrays that do not
fit together. Each case here used to return garbage or crash the interpreter."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from poolkit import keras
from poolkit._kernels import conv as kconv
from poolkit._kernels import dense as kdense
from poolkit._kernels import optim as koptim
from poolkit.errors import InvalidValue
from poolkit.keras import layers as L

os.environ.setdefault("KERAS_BACKEND", "torch")
SRC = os.path.join(os.path.dirname(__file__), os.pardir, "src")


def _keras_tail(make_layer, build_shape, x):
    """The part of real Keras's error after 'is incompatible with the layer: '."""
    rk = pytest.importorskip("keras")
    layer = make_layer(rk)
    layer.build(build_shape)
    with pytest.raises(ValueError, match="is incompatible with the layer") as e:
        layer(x)
    return str(e.value).split("is incompatible with the layer: ", 1)[1]


def _ours(layer, x):
    with pytest.raises(InvalidValue, match="is incompatible with the layer") as e:
        layer(x)
    msg = str(e.value)
    assert msg.startswith(f'Input 0 of layer "{layer.name}" is incompatible')
    return msg.split("is incompatible with the layer: ", 1)[1]


def test_dense_built_for_3_features_rejects_5000_like_keras():
    x = np.ones((1, 5000), np.float32)
    d = L.Dense(2)
    d.build((None, 3))
    ours = _ours(d, x)  # used to return [[nan nan]] (reading past the kernel)
    assert ours == "expected axis -1 of input shape to have value 3, but received input with " \
                   "shape (1, 5000)"
    assert ours == _keras_tail(lambda k: k.layers.Dense(2), (None, 3), x)
    with pytest.raises(InvalidValue, match="expected axis -1"):
        d.forward(x)  # the training path checks too


def test_conv2d_built_for_1_channel_rejects_64_like_keras():
    x = np.ones((1, 28, 28, 64), np.float32)
    c = L.Conv2D(4, 3)
    c.build((None, 28, 28, 1))
    ours = _ours(c, x)  # used to return values near 1e32 (reading outside its weights)
    assert ours == _keras_tail(lambda k: k.layers.Conv2D(4, 3), (None, 28, 28, 1), x)
    with pytest.raises(InvalidValue, match="expected axis -1 of input shape to have value 1"):
        c.forward(x)
    # Other spatial sizes are fine, as in Keras: the geometry follows the input.
    assert c(np.ones((2, 10, 7, 1), np.float32)).shape == (2, 8, 5, 4)


def test_rank_checks_use_keras_messages():
    x3 = np.ones((2, 28, 28), np.float32)
    c = L.Conv2D(4, 3)
    assert _ours(c, x3) == _keras_tail(lambda k: k.layers.Conv2D(4, 3), (None, 28, 28, 1), x3)
    p = L.MaxPooling2D(2)
    assert _ours(p, x3) == _keras_tail(lambda k: k.layers.MaxPooling2D(2), (None, 28, 28, 1), x3)
    x1 = np.ones((4,), np.float32)
    d = L.Dense(2)
    assert _ours(d, x1) == _keras_tail(lambda k: k.layers.Dense(2), (None, 3), x1)


@pytest.mark.parametrize("make,shape", [
    (lambda: L.Conv2D(3, 2, activation="relu"), (2, 5, 5, 2)),
    (lambda: L.Dense(3, activation="softmax"), (4, 6)),
    (lambda: L.MaxPooling2D(2), (2, 4, 4, 3)),
    (lambda: L.GlobalAveragePooling2D(), (2, 4, 4, 3)),
    (lambda: L.Flatten(), (2, 3, 4)),
    (lambda: L.ReLU(), (2, 5)),
    (lambda: L.Softmax(), (2, 5)),
    (lambda: L.Dropout(0.5), (2, 5)),
])
def test_backward_rejects_a_gradient_of_another_shape(make, shape):
    layer = make()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with pytest.raises(InvalidValue, match="forward"):
        layer.backward(np.ones(shape, np.float32))  # no forward yet
    y = layer(x)
    layer.forward(x, training=True)
    layer.backward(np.ones_like(y))
    bad = np.ones((y.shape[0] + 3, *y.shape[1:]), np.float32)
    with pytest.raises(InvalidValue, match="grad_output must have the shape"):
        layer.backward(bad)


def test_kernel_entry_points_refuse_arrays_that_do_not_fit():
    f32 = np.float32
    x = np.ones((2, 5, 5, 3), f32)
    w = np.ones((3, 3, 3, 4), f32)
    b = np.zeros(4, f32)
    geo = np.array([1, 1, 1, 1, 0, 0], np.int64)
    kconv.conv2d_forward(x, w, b, np.empty((2, 3, 3, 4), f32), geo, True)  # fits
    with pytest.raises(ValueError, match="disagree"):
        kconv.conv2d_forward(np.ones((2, 5, 5, 64), f32), w, b, np.empty((2, 3, 3, 4), f32),
                             geo, True)
    with pytest.raises(ValueError, match="bias"):
        kconv.conv2d_forward(x, w, np.zeros(2, f32), np.empty((2, 3, 3, 4), f32), geo, True)
    with pytest.raises(ValueError, match="dtype"):
        kconv.conv2d_forward(x.astype(np.float64), w, b, np.empty((2, 3, 3, 4), f32), geo, True)
    with pytest.raises(ValueError, match="geo"):
        kconv.conv2d_forward(x, w, b, np.empty((2, 3, 3, 4), f32), geo[:4], True)
    gy = np.ones((2, 3, 3, 4), f32)
    with pytest.raises(ValueError, match="shape of gy"):
        kconv.conv2d_backward_params(x, gy, np.ones((2, 3, 3, 5), f32), gy.copy(),
                                     np.empty((2, 3, 3, 3, 4), f32), np.empty((2, 4), f32),
                                     geo, True, True)
    with pytest.raises(ValueError, match="disagree"):
        kconv.conv2d_backward_input(gy, w, np.empty((2, 5, 5, 7), f32), geo)
    with pytest.raises(ValueError, match="disagree"):
        kdense.dense_forward(np.ones((1, 5000), f32), np.ones((2, 3), f32), np.zeros(2, f32),
                             np.empty((1, 2), f32))
    with pytest.raises(ValueError, match="disagree"):
        kdense.dense_backward_input(np.ones((4, 2), f32), np.ones((2, 3), f32),
                                    np.empty((4, 9), f32))
    with pytest.raises(ValueError, match="one size"):
        koptim.adam_update(np.ones(10, f32), np.ones(10, f32), np.zeros(4, f32),
                           np.zeros(10, f32), 1e-3, 0.9, 0.999, 1e-7)


def _two_models():
    keras.utils.set_random_seed(0)
    small = keras.Sequential([keras.Input(shape=(3,)), L.Dense(2, activation="softmax")])
    big = keras.Sequential([keras.Input(shape=(50,)), L.Dense(40, activation="relu"),
                            L.Dense(5, activation="softmax")])
    return small, big


def test_one_adam_for_two_models_raises_like_keras():
    opt = keras.optimizers.Adam()
    small, big = _two_models()
    small.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    big.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    small.fit(np.ones((8, 3)), np.zeros(8, int), verbose=0)
    before = big.get_weights()
    with pytest.raises(InvalidValue, match="Unknown variable.*originally built with.*recreate"):
        big.fit(np.ones((8, 50)), np.zeros(8, int), verbose=0)
    for a, b in zip(before, big.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # nothing was written
    small.fit(np.ones((8, 3)), np.zeros(8, int), verbose=0)  # the first model still trains
    opt.reset()
    big.fit(np.ones((8, 50)), np.zeros(8, int), verbose=0)  # after reset it binds afresh


def test_keras_also_refuses_one_optimizer_for_two_models():
    rk = pytest.importorskip("keras")
    opt = rk.optimizers.Adam()
    m1 = rk.Sequential([rk.Input((3,)), rk.layers.Dense(2)])
    m2 = rk.Sequential([rk.Input((50,)), rk.layers.Dense(5)])
    m1.compile(optimizer=opt, loss="mse")
    m2.compile(optimizer=opt, loss="mse")
    m1.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0)
    with pytest.raises(ValueError, match="(?s)Unknown variable.*originally built with.*recreate"):
        m2.fit(np.zeros((4, 50)), np.zeros((4, 5)), verbose=0)


def test_one_adam_for_two_models_does_not_kill_the_interpreter():
    # The landed code segfaulted here (Adam's slots matched by count, the update kernel writing
    # past them), so the case runs in a child process.
    code = textwrap.dedent("""
        import numpy as np
        from poolkit import keras
        from poolkit.keras import layers as L
        opt = keras.optimizers.Adam()
        small = keras.Sequential([keras.Input(shape=(3,)), L.Dense(2, activation="softmax")])
        # Same number of weight arrays, 10^6 times larger: the landed code reused the slots.
        big = keras.Sequential([keras.Input(shape=(3000,)), L.Dense(2000, activation="softmax")])
        small.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        big.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        small.fit(np.ones((8, 3)), np.zeros(8, int), verbose=0)
        try:
            big.fit(np.ones((8, 3000)), np.zeros(8, int), verbose=0)
        except ValueError as e:
            print("refused:", str(e)[:40])
    """)
    env = {**os.environ, "PYTHONPATH": os.path.abspath(SRC)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "refused: Unknown variable" in r.stdout


def test_adding_a_layer_after_training_needs_a_new_optimizer():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input(shape=(4,)), L.Dense(3, activation="relu")])
    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    m.fit(np.ones((4, 4)), np.zeros(4, int), verbose=0)
    m.add(L.Dense(2, activation="softmax"))
    with pytest.raises(InvalidValue, match="Unknown variable"):
        m.fit(np.ones((4, 4)), np.zeros(4, int), verbose=0)


def test_optimizer_checks_gradients_against_parameters():
    opt = keras.optimizers.Adam()
    p = [np.ones((3, 4), np.float32)]
    opt.apply(p, [np.ones((3, 4), np.float32)])
    with pytest.raises(InvalidValue, match="gradient 0"):
        opt.apply(p, [np.ones(5, np.float32)])
    with pytest.raises(InvalidValue, match="gradient 0"):
        opt.apply(p, [np.ones((3, 4), np.float64)])
    with pytest.raises(InvalidValue, match="pair up"):
        opt.apply(p, [])
    assert opt.iterations == 1  # refused calls change nothing


def test_set_weights_checks_every_shape_before_writing():
    d = L.Dense(2)
    d.build((None, 3))
    w0 = d.get_weights()
    with pytest.raises(InvalidValue, match="shape"):
        d.set_weights([np.full((3, 2), 7.0), np.zeros(5)])
    for a, b in zip(w0, d.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [lambda: keras.layers.Dense(2**31),
                                  lambda: keras.layers.Conv2D(2**31, 3)])
def test_weights_larger_than_memory_are_refused(make):
    # Found by the fuzz harness: Dense(2**31) on a 3-feature input tried to draw a 48 GiB
    # weight (MemoryError); now a ValueError naming the weight and its size.
    layer = make()
    with pytest.raises(ValueError, match="GiB"):
        layer(np.zeros((1, 3, 3, 3), np.float32))


@pytest.mark.parametrize("init", ["he_uniform", "he_normal", "glorot_uniform", "glorot_normal"])
def test_a_dense_layer_for_zero_features_builds(init):
    # Found by the fuzz harness: he_* divided by fan_in = 0 (ZeroDivisionError); Keras divides
    # by at least 1, and the weight is simply empty.
    layer = keras.layers.Dense(3, kernel_initializer=init)
    layer.build((None, 0))
    assert layer.weights[0].shape == (0, 3)


@pytest.mark.parametrize("make", [lambda: keras.layers.Softmax(), lambda: keras.layers.ReLU(),
                                  lambda: keras.layers.Dense(2, activation="softmax"),
                                  lambda: keras.layers.MaxPooling1D(2)])
def test_forward_takes_integer_input_as_call_does(make):
    # Found by the fuzz harness: Softmax.forward on uint64 input computed z - max(z) in uint64
    # (wrapping round) and gave NaN; forward now converts to the layer's dtype as __call__ does.
    layer = make()
    x = np.arange(12, dtype=np.uint64).reshape(1, 6, 2)
    want = layer(x.astype(np.float32))
    np.testing.assert_allclose(layer.forward(x, training=True), want, rtol=1e-6)
    assert np.isfinite(layer.backward(np.ones(want.shape, np.float32))).all()


def test_dropout_config_is_json_with_a_numpy_seed():
    # Found by the fuzz harness: Dropout(seed=np.uint64(...)) kept the NumPy int in its config.
    import json

    layer = keras.layers.Dropout(0.5, seed=np.uint64(2**63))
    assert json.loads(json.dumps(layer.get_config()))["seed"] == 2**63


@pytest.mark.parametrize("kw", [dict(negative_slope=math.inf), dict(threshold=math.inf),
                                dict(negative_slope=math.nan), dict(threshold=-1.0)])
def test_relu_refuses_arguments_that_make_finite_input_infinite(kw):
    """Found by the fuzz harness: ReLU(negative_slope=inf) gave -inf for every negative input.
    An infinite max_value stays allowed (no cap), and gives finite output."""
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"ReLU: {name}"):
        keras.layers.ReLU(**kw)
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(2, 6)
    assert np.isfinite(keras.layers.ReLU(max_value=math.inf, negative_slope=0.5)(x)).all()
