"""Targets for ``poolkit.keras``: every layer class (construct with random arguments, call on
random shapes including ones it was not built for, forward/backward, config round trip),
Sequential models (random stacks, compile, fit one epoch on tiny data, predict, evaluate,
summary) and optimizers (shared between models, applied to mismatched variables)."""

from __future__ import annotations

import json

import numpy as np

from poolkit import keras
from poolkit.keras import layers as L
from poolkit.keras import optimizers as O
from poolkit.keras.activations import ACTIVATIONS
from poolkit.keras.initializers import INITIALIZERS

from .. import gen
from ..oracle import MODEST, all_finite, expect_finite, fail, note, target
from .calls import KERAS_PARAMS, Ctx, draw_kwargs, finite_expected

_BASES = {"Layer", "InputSpec", "BasePoolingLayer", "BasePooling", "BaseGlobalPooling",
          "BaseAdaptivePooling"}


def _choice(*values):
    return lambda rng, c: gen.maybe(rng, lambda: gen.pick(rng, values))


def _data_format(rng, c):
    return gen.maybe(rng, lambda: gen.pick(rng, (None, "channels_last", "channels_first")))


LAYER_PARAMS = {
    **KERAS_PARAMS,
    "data_format": _data_format,
    "units": lambda rng, c: gen.int_arg(rng, 1, 6),
    "filters": lambda rng, c: gen.int_arg(rng, 1, 4),
    "kernel_size": lambda rng, c: gen.ints_arg(rng, 2, 1, 3),
    "dilation_rate": lambda rng, c: gen.ints_arg(rng, 2, 1, 2),
    "activation": _choice(None, *ACTIVATIONS),
    "use_bias": lambda rng, c: gen.bool_arg(rng),
    "kernel_initializer": _choice(*INITIALIZERS),
    "bias_initializer": _choice(*INITIALIZERS),
    "rate": _choice(0.0, 0.25, 0.5, 0.9),
    "noise_shape": _choice(None),
    "seed": lambda rng, c: gen.int_arg(rng, 0, 99),
    "max_value": _choice(None, 6.0, 1.0),
    "negative_slope": _choice(0.0, 0.1),
    "threshold": _choice(0.0, 0.5),
    "axis": _choice(-1, 1),
    "shape": lambda rng, c: gen.maybe(rng, lambda: tuple(c.spatial) + (c.batch[1],)),
    "batch_size": _choice(None, 2),
    "name": _choice(None, "layer_x"),
    "dtype": _choice(None, "float32", "float64"),
    "input_shape": _choice(None),
    "strides": lambda rng, c: (None if gen.chance(rng, 0.3) and c.fn_name != "Conv2D"
                               else gen.ints_arg(rng, c.rank, 1, 3)),
}


def layer_classes() -> dict[str, type]:
    """Public layer classes by name, each class once (aliases such as MaxPool2D skipped)."""
    out, seen = {}, set()
    for name in L.__all__:
        cls = getattr(L, name)
        if name in _BASES or not isinstance(cls, type) or cls in seen:
            continue
        seen.add(cls)
        out[name] = cls
    return out


def _rank(name: str) -> int:
    if name[-2:] in ("1D", "2D", "3D"):
        return int(name[-2])
    return 2


def make_layer(rng, cls, ctx: Ctx):
    kw = draw_kwargs(rng, cls, LAYER_PARAMS, ctx, p_default=0.4)
    ctx.extra["finite"] = finite_expected(kw)
    if gen.chance(rng, gen.bad_rate() / 3):
        kw["bogus_argument"] = 1
    note(cls.__name__, **kw)
    return cls(**kw)


def _input(rng, name: str, ctx: Ctx):
    n, c = ctx.batch
    if name == "Dense":
        shp = (n, c)
    else:
        shp = (n, *ctx.spatial, c)
    if gen.chance(rng, 0.1):
        shp = gen.shape(rng, int(rng.integers(1, 6)))
    return gen.array(rng, shp, floats_only=not gen.chance(rng, 0.1))


def _layer_target(name: str, cls: type):
    def run(rng):
        ctx = Ctx(rank=_rank(name), fn_name=name,
                  batch=(int(rng.integers(1, 3)), int(rng.integers(1, 4))))
        ctx.spatial = gen.shape(rng, ctx.rank, 1, 8 if ctx.rank < 3 else 5)
        layer = make_layer(rng, cls, ctx)
        x = _input(rng, name, ctx)
        note("layer", x)
        y = layer(x)
        if ctx.extra["finite"]:
            expect_finite(y, x, what=f"{name} output")
        cfg = layer.get_config()
        try:
            json.dumps(cfg)
        except (TypeError, ValueError) as e:
            fail("wrong", f"{name}.get_config() is not JSON-serialisable: {e}")
        twin = cls.from_config(cfg)
        if layer.count_params() == 0 and name != "Dropout":
            y2 = twin(x)
            if y2.shape != y.shape or not np.array_equal(y, y2, equal_nan=True):
                fail("wrong", f"{name}.from_config(get_config()) computes something else")
        out = layer.forward(x, training=True)
        g = gen.values(rng, out.shape, out.dtype) if not gen.chance(rng, 0.1) else \
            gen.array(rng, gen.shape(rng, out.ndim))
        note("backward", g)
        gx = layer.backward(g)
        if ctx.extra["finite"]:
            expect_finite(gx, x, g, what=f"{name} gradient")
        # Another shape than the one it was built for.
        x2 = _input(rng, name, Ctx(rank=ctx.rank, spatial=gen.shape(rng, ctx.rank, 1, 8),
                                   batch=(1, int(rng.integers(1, 4)))))
        note("layer", x2)
        layer(x2)

    return run


for _name, _cls in layer_classes().items():
    target(f"keras.layers.{_name}", "layers", covers=(f"keras.layers.{_name}",))(
        _layer_target(_name, _cls))


# --------------------------------------------------------------------------------------------
# Models.

_POOLS = [n for n in layer_classes() if n.endswith("2D") and n != "Conv2D"]


def random_model(rng, side: int, channels: int, classes: int):
    """Input(side, side, channels), 0-3 random 2-D layers (pooling of any kind, Conv2D, ReLU,
    Dropout), Flatten, Dense(classes)."""
    ctx = Ctx(rank=2, spatial=(side, side), batch=(1, channels))
    stack = [keras.Input(shape=(side, side, channels))]
    with gen.hostility(0.01):
        for _ in range(int(rng.integers(0, 4))):
            name = gen.pick(rng, [*_POOLS, "Conv2D", "ReLU", "Dropout"])
            ctx.fn_name = name
            stack.append(make_layer(rng, getattr(L, name), ctx))
    stack += [L.Flatten(), L.Dense(classes, activation=gen.pick(rng, ("softmax", None)))]
    return keras.Sequential(stack)


def _optimizer(rng):
    r = rng.random()
    if r < 0.35:
        return gen.maybe(rng, lambda: gen.pick(rng, ("adam", "sgd", "Adam", "SGD")))
    lr = gen.float_arg(rng, (0.001, 0.01, 0.1))
    if r < 0.7:
        return O.Adam(learning_rate=lr, beta_1=gen.float_arg(rng, (0.9, 0.5)),
                      epsilon=gen.float_arg(rng, (1e-7, 1e-3)))
    return O.SGD(learning_rate=lr, momentum=gen.float_arg(rng, (0.0, 0.9)),
                 nesterov=gen.bool_arg(rng))


def _labels(rng, n: int, classes: int, loss):
    y = rng.integers(0, classes, size=n)
    if loss == "categorical_crossentropy":
        y = np.eye(classes, dtype=np.float32)[y]
    if gen.chance(rng, gen.bad_rate()):
        y = gen.pick(rng, (y[:-1], y.astype(np.float64) + 0.5, -y - 1, y + classes,
                           np.full(y.shape, np.nan), y.astype(str), None))
    return y


@target("keras.model", "models", weight=6, covers=("keras.Sequential", "keras.Input"))
def _model(rng):
    side, ch, classes = int(rng.integers(4, 11)), int(rng.integers(1, 3)), int(rng.integers(2, 5))
    model = random_model(rng, side, ch, classes)
    n = int(rng.integers(1, 7))
    x = gen.values(rng, (n, side, side, ch), np.dtype(np.float32))
    if gen.chance(rng, 0.1):
        x = gen.array(rng, gen.pick(rng, ((n, side, side), (n, side + 1, side, ch), (0, side,
                                                                                     side, ch))))
    note("predict", x)
    p = model.predict(x, verbose=0)
    expect_finite(p, x, what="predict before training")
    with gen.hostility(0.03):
        return _train(rng, model, x, classes, n)


def _train(rng, model, x, classes: int, n: int):
    loss = gen.maybe(rng, lambda: gen.pick(rng, ("sparse_categorical_crossentropy",
                                                  "categorical_crossentropy")))
    opt = _optimizer(rng)
    metrics = gen.maybe(rng, lambda: gen.pick(rng, (None, ["accuracy"], [])))
    note("compile", optimizer=opt, loss=loss, metrics=metrics)
    model.compile(optimizer=opt, loss=loss, metrics=metrics)
    y = _labels(rng, n, classes, loss)
    fit_kw = dict(batch_size=gen.maybe(rng, lambda: int(rng.integers(1, 8))),
                  # hostile but never huge: 2**32 epochs is a long run, not an error
                  epochs=gen.pick(rng, (1, 1, 1, 0)) if not gen.chance(rng, gen.bad_rate())
                  else gen.pick(rng, (-1, 1.5, None, "1", True, [], np.int64(1))),
                  verbose=gen.maybe(rng, lambda: 0),
                  validation_split=gen.float_arg(rng, (0.0, 0.0, 0.5)),
                  shuffle=gen.bool_arg(rng))
    note("fit", x, y, **fit_kw)
    model.fit(x, y, **fit_kw)
    note("evaluate", x, y)
    res = model.evaluate(x, y, verbose=0, batch_size=gen.maybe(rng, lambda: 4))
    # Only for a softmax head: raw outputs may sum to 0, and a loss on probabilities divides
    # by their sum (NaN in Keras too).
    if isinstance(opt, O.Optimizer) and opt.learning_rate <= 0.1 and not all_finite(res) \
            and all_finite(x, y, bound=MODEST) and model.layers[-1].activation == "softmax":
        fail("nonfinite", f"evaluate gave {res!r} after one epoch on finite data")
    text = model.summary(print_fn=lambda *a, **k: None)
    if not isinstance(text, str):
        fail("wrong", f"summary returned {type(text).__name__}")


@target("keras.optimizer", "optimizers", weight=3, covers=("keras.optimizers.Adam",
                                                 "keras.optimizers.SGD"))
def _optimizer_target(rng):
    with gen.hostility(0.03):
        _share_optimizer(rng)


def _share_optimizer(rng):
    opt = _optimizer(rng)
    if isinstance(opt, str):
        opt = O.get(opt)
    models = [random_model(rng, int(rng.integers(4, 9)), 1, 3) for _ in range(2)]
    # One optimizer for two models: the second one's variables are unknown to it (Keras
    # raises), whether it trains or gets the optimizer's apply directly.
    shared = gen.chance(rng, 0.3)
    for m in models[:2 if shared else 1]:
        note("compile, fit", opt)
        m.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
        x = gen.values(rng, (2, *m.input_shape[1:]), np.dtype(np.float32))
        m.fit(x, rng.integers(0, 3, size=2), epochs=1, verbose=0)
    params = [w for m in (models if gen.chance(rng, 0.2) else models[:1])
              for w in m.trainable_weights]
    grads = [np.ones_like(w) for w in params]
    r = rng.random()
    if r < 0.1 and grads:
        grads = grads[:-1]
    elif r < 0.2 and grads:
        grads[0] = np.ones(grads[0].shape + (1,), grads[0].dtype)
    elif r < 0.3 and grads:
        grads[0] = grads[0].astype(gen.pick(rng, (np.int64, np.float16, object)))
    elif r < 0.4 and grads:
        grads[0] = np.full_like(grads[0], np.nan)
    note("apply", params, grads)
    opt.apply(params, grads)
