"""``Sequential``: a stack of layers with Keras's compile / fit / evaluate / predict / summary,
plus :meth:`Sequential.layer_table` (receptive field, multiply-adds and activation memory per
layer), and ``save`` / :func:`load_model` (the model as a config dict and its weight arrays, in
the archive of :mod:`poolkit.keras.saving`).

``predict`` and ``evaluate`` write no state on the model or its layers (layers' ``call``), so
one model can serve several threads at once; ``fit`` is for one thread at a time.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import threading
import time

import numpy as np

from ..errors import InvalidType, InvalidValue
from . import callbacks as _cb
from . import layers as _layers
from . import losses as _losses
from . import optimizers as _optimizers
from . import saving as _saving
from . import utils as _utils
from .layers import Input
from .layers.base import auto_name

__all__ = ["Sequential", "Input", "load_model", "save_model"]


def _verbose(verbose) -> int:
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise InvalidValue(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _batch_size(batch_size) -> int:
    if batch_size is None:
        return 32
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
        raise InvalidType(f"batch_size must be a positive int, got {batch_size!r}")
    if batch_size <= 0:
        raise InvalidValue(f"batch_size must be a positive int, got {batch_size}")
    return int(batch_size)


class Sequential:
    """A linear stack of layers, channels_last, float32 by default.

    ``Sequential([Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)), ...])`` or
    ``Sequential([Input(shape=(28, 28, 1)), ...])``; layers may also be added with :meth:`add`.
    The model is built as soon as the input shape is known (else at the first fit/predict).
    """

    def __init__(self, layers=None, name: str | None = None):
        self.name = name or auto_name("Sequential")
        self.layers: list[_layers.Layer] = []
        self._input_shape: tuple | None = None
        self.built = False
        self.optimizer = None
        self.loss = None
        self.metrics: list[str] = []
        self.compiled = False
        self.stop_training = False
        self._build_lock = threading.Lock()
        for layer in layers or []:
            self.add(layer)

    # -- construction --------------------------------------------------------------------------
    def add(self, layer) -> None:
        if isinstance(layer, _layers.InputLayer):
            if self.layers or self._input_shape is not None:
                raise InvalidValue("Input(...) must be the first element of a Sequential model")
            self._input_shape = (None,) + layer.input_shape_arg
            self._input_dtype = layer.dtype
            return
        if not isinstance(layer, _layers.Layer):
            raise InvalidType(
                f"Sequential.add expects a poolkit.keras layer, got {type(layer).__name__}"
            )
        if any(existing.name == layer.name for existing in self.layers):
            raise InvalidValue(f"a layer named {layer.name!r} is already in model {self.name!r}")
        if not self.layers and self._input_shape is None and layer.input_shape_arg is not None:
            self._input_shape = (None,) + layer.input_shape_arg
        self.layers.append(layer)
        self.built = False
        if self._input_shape is not None:
            self.build(self._input_shape)

    def build(self, input_shape) -> None:
        shape = tuple(input_shape)
        self._input_shape = (None,) + tuple(shape[1:])
        for layer in self.layers:
            if not layer.built or layer.input_shape[1:] != shape[1:]:
                layer.build((None,) + tuple(shape[1:]))
            shape = layer.output_shape
        self.built = True
        # A layer needs its input gradient only if something before it trains.
        trains = False
        for layer in self.layers:
            layer.need_input_grad = trains
            trains = trains or (layer.trainable and bool(layer.weights))
        self._train_lists = (
            [w for layer in self.layers if layer.trainable for w in layer.weights],
            [g for layer in self.layers if layer.trainable for g in layer.grads],
        )

    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        return self.layers[-1].output_shape if self.built and self.layers else None

    def _require_built(self, what: str):
        if not self.layers:
            raise InvalidValue(f"{what}: model {self.name!r} has no layers")
        if not self.built:
            raise InvalidValue(
                f"{what}: model {self.name!r} is not built; give the first layer input_shape=..., "
                f"start with keras.Input(shape=...), or call fit/predict on data first"
            )

    # -- weights -------------------------------------------------------------------------------
    @property
    def weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers for w in layer.weights]

    @property
    def trainable_weights(self) -> list[np.ndarray]:
        return [w for layer in self.layers if layer.trainable for w in layer.weights]

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights) -> None:
        weights = list(weights)
        own = self.weights
        if len(weights) != len(own):
            raise InvalidValue(f"set_weights: model {self.name!r} has {len(own)} weight arrays, "
                             f"got {len(weights)}")
        for i, (w, new) in enumerate(zip(own, weights, strict=True)):
            new = np.asarray(new)
            if new.shape != w.shape:
                raise InvalidValue(f"set_weights: weight {i} has shape {w.shape}, got {new.shape}")
        for w, new in zip(own, weights, strict=True):
            w[...] = new

    def count_params(self) -> int:
        return sum(layer.count_params() for layer in self.layers)

    # -- data ----------------------------------------------------------------------------------
    @property
    def _dtype(self):
        return self.layers[0].dtype if self.layers else np.dtype(np.float32)

    def _check_x(self, x, what: str) -> np.ndarray:
        """x as an array whose sample shape matches the model (adding a trailing channel axis of
        size 1 when it is missing, as Keras does)."""
        if not isinstance(x, np.ndarray):
            try:
                x = np.asarray(x)
            except Exception as e:
                raise InvalidType(f"{what}: x must be a NumPy array, got "
                                  f"{type(x).__name__}") from e
        if x.dtype.kind not in "fiub":
            raise InvalidType(f"{what}: x must be a numeric array, got dtype {x.dtype}")
        if x.ndim < 1 or x.shape[0] == 0:
            raise InvalidValue(f"{what}: x must hold at least one sample, got shape {x.shape}")
        if not self.built:
            with self._build_lock:
                if not self.built:
                    self._require_layers(what)
                    self.build((None,) + x.shape[1:])
        want = self._input_shape[1:]
        if x.shape[1:] != want and x.ndim == len(want) and want[-1] == 1 \
                and x.shape[1:] == want[:-1]:
            x = x[..., None]
        if x.shape[1:] != want:
            raise InvalidValue(
                f"{what}: the model expects inputs of shape (batch, {', '.join(map(str, want))})"
                f", got x of shape {x.shape}"
            )
        return x

    def _require_layers(self, what: str):
        if not self.layers:
            raise InvalidValue(f"{what}: model {self.name!r} has no layers")

    def _forward(self, xb: np.ndarray, training: bool) -> np.ndarray:
        """The output for a batch, keeping what the backward pass needs (training)."""
        h = xb
        for layer in self.layers:
            h = layer.forward(h, training)
        return h

    def _infer(self, xb: np.ndarray, logits: bool = False):
        """(output, the last layer's logits if ``logits`` else None) for a batch, writing no
        state anywhere: what predict and evaluate run, from any number of threads."""
        h = xb
        for layer in self.layers[:-1]:
            h = layer.call(h, training=False)
        last = self.layers[-1]
        if logits:
            return last.call_with_logits(h)
        return last.call(h, training=False), None

    # -- compile / train -----------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None) -> None:
        """``optimizer``: 'adam', 'sgd' or an optimizer object; ``loss``:
        'sparse_categorical_crossentropy', 'categorical_crossentropy' or a Loss;
        ``metrics``: None or ['accuracy']."""
        self.optimizer = _optimizers.get(optimizer)
        if loss is None:
            raise InvalidValue("compile: loss is required, e.g. "
                               "loss='sparse_categorical_crossentropy'")
        self.loss = _losses.get(loss)
        metrics = list(metrics or [])
        for m in metrics:
            if m not in ("accuracy", "acc"):
                raise InvalidValue(f"compile: metrics may only contain 'accuracy', got {m!r}")
        self.metrics = ["accuracy"] if metrics else []
        self.compiled = True

    def _fused(self) -> bool:
        """Whether the model ends in a softmax over the last axis that the cross-entropy
        takes over (computed stably from the logits, with the exact gradient)."""
        last = self.layers[-1]
        if getattr(last, "activation", None) != "softmax" or not hasattr(last, "backward_pre") \
                or self.loss.from_logits:
            return False
        over_last = getattr(last, "softmax_over_last_axis", None)
        return over_last is None or over_last(len(self.output_shape))

    def _loss_and_grad(self, out: np.ndarray, yb):
        if self._fused():
            last = self.layers[-1]
            loss, gz = self.loss.fused(yb, last._z)
            return loss, gz, True
        loss, g = self.loss.value_and_grad(yb, out)
        return loss, g, False

    def _backward(self, g, fused: bool) -> None:
        layers = self.layers
        if fused:
            g = layers[-1].backward_pre(g)
            rest = layers[:-1]
        else:
            rest = layers
        for layer in reversed(rest):
            if g is None:
                break
            g = layer.backward(g)

    def compute_gradients(self, x, y):
        """(loss, [gradient of every weight, aligned with model.weights]) for one batch, in
        training mode: the same computation as one step of ``fit`` without the update."""
        self._require_compiled("compute_gradients")
        x = self._check_x(x, "compute_gradients").astype(self._dtype, copy=False)
        out = self._forward(x, training=True)
        loss, g, fused = self._loss_and_grad(out, y)
        self._backward(g, fused)
        return loss, [gr.copy() for layer in self.layers for gr in layer.grads]

    def _require_compiled(self, what: str):
        if not self.compiled:
            raise InvalidValue(f"{what}: compile the model first, e.g. model.compile("
                               f"optimizer='adam', loss='sparse_categorical_crossentropy', "
                               f"metrics=['accuracy'])")

    def _correct(self, out: np.ndarray, yb) -> int:
        pred = out.argmax(axis=-1)
        yb = np.asarray(yb)
        if self.loss.sparse:
            return int((pred == yb.reshape(-1)).sum())
        return int((pred == yb.argmax(axis=-1)).sum())

    def _check_y(self, x: np.ndarray, y, what: str) -> np.ndarray:
        if y is None:
            raise InvalidValue(f"{what}: y (the labels) is required")
        if len(self.output_shape) != 2:
            raise InvalidValue(f"{what}: the cross-entropy losses need (batch, classes) "
                               f"outputs, but model {self.name!r} outputs shape "
                               f"{self.output_shape}")
        try:
            y = np.asarray(y)
        except (TypeError, ValueError) as e:
            raise InvalidType(f"{what}: y must be an array of labels ({e})") from None
        if y.dtype.kind not in "iuf":
            raise InvalidType(f"{what}: labels must be numbers, got dtype {y.dtype}")
        if y.ndim == 0 or y.shape[0] != x.shape[0]:
            raise InvalidValue(
                f"{what}: x has {x.shape[0]} samples but y has shape {y.shape}; they must match"
            )
        # Full check of label values/shape once, not per batch.
        self.loss.onehot(y[:1] if self.loss.sparse else y[:1], 1, self.output_shape[-1],
                         np.float32)
        if self.loss.sparse:
            yy = y.reshape(y.shape[0], -1)
            if yy.shape[1] != 1:
                raise InvalidValue(f"{what}: sparse labels must have shape (n,) or (n, 1), "
                                   f"got {y.shape}")
            yy = yy[:, 0]
            k = self.output_shape[-1]
            if yy.dtype.kind not in "iu":
                if yy.dtype.kind != "f" or not np.all(yy == np.floor(yy)):
                    raise InvalidType(f"{what}: labels must be integer class indices, got "
                                      f"dtype {y.dtype}")
                yy = yy.astype(np.int64)
            if yy.min() < 0 or yy.max() >= k:
                raise InvalidValue(f"{what}: labels must be in [0, {k}) for a model with {k} "
                                   f"outputs, got values from {yy.min()} to {yy.max()}")
            return yy
        return y

    def train_on_batch(self, x, y) -> float:
        """One optimizer step on one batch; returns the batch loss."""
        self._require_compiled("train_on_batch")
        x = self._check_x(x, "train_on_batch")
        y = self._check_y(x, y, "train_on_batch")
        loss, _ = self._train_step(x.astype(self._dtype, copy=False), y)
        return loss

    def _train_step(self, xb, yb):
        out = self._forward(xb, training=True)
        loss, g, fused = self._loss_and_grad(out, yb)
        self._backward(g, fused)
        params, grads = self._train_lists
        self.optimizer.apply(params, grads)
        return loss, out

    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, verbose="auto",
            validation_split: float = 0.0, validation_data=None, shuffle: bool = True,
            initial_epoch: int = 0) -> _cb.History:
        """Train for ``epochs`` epochs of mini-batches of ``batch_size`` (default 32).

        ``validation_split`` holds out the LAST fraction of x/y (before shuffling), as Keras
        does; ``validation_data=(x_val, y_val)`` takes precedence. Returns a History whose
        ``.history`` has per-epoch 'loss' (mean over the epoch's batches) and 'accuracy' (if
        compiled with metrics=['accuracy']), and 'val_loss'/'val_accuracy' with validation.
        """
        self._require_compiled("fit")
        bs = _batch_size(batch_size)
        vb = _verbose(verbose)
        if not isinstance(epochs, numbers.Integral) or isinstance(epochs, bool) or epochs < 0:
            raise InvalidValue(f"fit: epochs must be a non-negative int, got {epochs!r}")
        if not isinstance(validation_split, numbers.Real) or not 0 <= validation_split < 1:
            raise InvalidValue(f"fit: validation_split must be in [0, 1), got "
                               f"{validation_split!r}")
        x = self._check_x(x, "fit")
        y = self._check_y(x, y, "fit")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, tuple | list) or len(validation_data) != 2:
                raise InvalidValue("fit: validation_data must be a tuple (x_val, y_val)")
            vx = self._check_x(validation_data[0], "fit (validation_data)")
            val = (vx, self._check_y(vx, validation_data[1], "fit (validation_data)"))
        elif validation_split > 0:
            n_val = int(x.shape[0] * validation_split)
            if n_val == 0 or n_val == x.shape[0]:
                raise InvalidValue(f"fit: validation_split={validation_split} leaves "
                                 f"{x.shape[0] - n_val} training and {n_val} validation samples "
                                 f"of {x.shape[0]}; both must be at least 1")
            val = (x[-n_val:], y[-n_val:])
            x, y = x[:-n_val], y[:-n_val]
        n = x.shape[0]
        steps = math.ceil(n / bs)
        self.build(self._input_shape)  # refresh the lists of trainable weights
        history = _cb.History()
        history.params = {"epochs": epochs, "steps": steps, "verbose": vb}
        dt = self._dtype
        rng = _utils.rng()
        self.stop_training = False
        for epoch in range(initial_epoch, epochs):
            if vb:
                print(f"Epoch {epoch + 1}/{epochs}", file=sys.stdout, flush=True)
            bar = _cb.ProgressBar(steps, vb)
            t_epoch = time.perf_counter()
            order = rng.permutation(n) if shuffle else np.arange(n)
            tot_loss = 0.0
            tot_correct = 0
            seen = 0
            logs: dict = {}
            for step in range(steps):
                idx = order[step * bs:(step + 1) * bs]
                xb = np.take(x, idx, axis=0).astype(dt, copy=False)
                yb = y[idx]
                loss, out = self._train_step(xb, yb)
                nb = idx.shape[0]
                tot_loss += loss * nb
                seen += nb
                logs = {}
                if self.metrics:
                    tot_correct += self._correct(out, yb)
                    logs["accuracy"] = tot_correct / seen
                logs["loss"] = tot_loss / seen
                if vb == 1:
                    bar.update(step + 1, logs)
            if not math.isfinite(logs.get("loss", 0.0)):
                print("fit: warning: the loss is not finite (NaN or inf); lower the learning "
                      "rate", file=sys.stderr)
            if val is not None:
                vl = self._evaluate_arrays(val[0], val[1], bs)
                if self.metrics:
                    logs["val_accuracy"] = vl[1]
                logs["val_loss"] = vl[0]
            bar.finish(steps, logs)
            history.append(epoch, logs)
            history.epoch_seconds.append(time.perf_counter() - t_epoch)
            if self.stop_training:
                break
        self.history = history
        return history

    # -- inference -----------------------------------------------------------------------------
    def _evaluate_arrays(self, x, y, bs: int):
        tot_loss, correct = 0.0, 0
        dt = self._dtype
        fused = self._fused()
        for s in range(0, x.shape[0], bs):
            xb = x[s:s + bs].astype(dt, copy=False)
            yb = y[s:s + bs]
            out, z = self._infer(xb, logits=fused)
            if fused or self.loss.from_logits:
                loss = self.loss.fused(yb, z if fused else out)[0]
            else:
                loss = self.loss.value_and_grad(yb, out)[0]
            tot_loss += loss * xb.shape[0]
            correct += self._correct(out, yb)
        n = x.shape[0]
        return tot_loss / n, correct / n

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """Mean loss (and accuracy) over x: ``[loss, accuracy]``, or ``loss`` alone without
        metrics, or a dict with ``return_dict=True``."""
        self._require_compiled("evaluate")
        bs = _batch_size(batch_size)
        vb = _verbose(verbose)
        x = self._check_x(x, "evaluate")
        y = self._check_y(x, y, "evaluate")
        bar = _cb.ProgressBar(math.ceil(x.shape[0] / bs), vb)
        loss, acc = self._evaluate_arrays(x, y, bs)
        logs = {"accuracy": acc, "loss": loss} if self.metrics else {"loss": loss}
        bar.finish(bar.total, logs)
        if return_dict:
            return logs
        return [loss, acc] if self.metrics else loss

    def predict(self, x, batch_size=None, verbose="auto") -> np.ndarray:
        """The model's outputs (probabilities after a softmax layer), batch by batch."""
        bs = _batch_size(batch_size)
        vb = _verbose(verbose)
        x = self._check_x(x, "predict")
        self._require_built("predict")
        t0 = time.perf_counter()
        bar = _cb.ProgressBar(math.ceil(x.shape[0] / bs), vb)
        out = np.empty((x.shape[0], *self.output_shape[1:]), self._dtype)
        dt = self._dtype
        for s in range(0, x.shape[0], bs):
            out[s:s + bs] = self._infer(x[s:s + bs].astype(dt, copy=False))[0]
        bar.start = t0
        bar.finish(bar.total, {})
        return out

    def __call__(self, x, training: bool = False) -> np.ndarray:
        x = self._check_x(x, "call").astype(self._dtype, copy=False)
        h = x
        for layer in self.layers:
            h = layer.call(h, training)
        return h

    # -- summary -------------------------------------------------------------------------------
    def layer_table(self) -> list[dict]:
        """One dict per layer: ``name``, ``type``, ``output_shape`` (batch None), ``params``,
        ``macs`` (multiply-adds per sample), ``rf_size`` and ``rf_jump`` (per spatial dim of the
        input: how many input pixels one output cell sees, and how far apart neighbouring cells'
        fields are; None where the output has no spatial grid, e.g. after Flatten/Dense, where
        ``rf_size`` is the span of the whole field), and ``act_bytes`` (output bytes per sample).

        Receptive field rule per spatial layer with effective window e and stride s:
        ``size += (e - 1) * jump; jump *= s`` (a pooling layer gives its e and s through
        ``receptive()``: the window for windowed kinds, the filter for BlurPool, window +
        filter - 1 for MaxBlurPool, the stride for APS, the longest window for adaptive
        pooling). After Flatten or global pooling a unit sees ``size + (n - 1) * jump`` pixels
        per dim, n being the grid size before it. Multiply-adds: Conv2D, Dense and the
        weighted windows of BlurPool/MaxBlurPool (comparisons and sums are not counted).
        """
        self._require_built("layer_table")
        in_shape = self._input_shape
        rank = len(in_shape) - 2
        rf = [1] * rank if rank >= 1 else None
        jump = [1] * rank if rank >= 1 else None
        grid = _spatial_dims(in_shape, self.layers[0]) if rank >= 1 else None
        itemsize = self._dtype.itemsize
        rows = []
        shape = in_shape
        for layer in self.layers:
            t = type(layer).__name__
            out = layer.output_shape
            macs = 0
            conv = isinstance(layer, _layers.Conv2D)
            if conv:
                kh, kw = layer.kernel_size
                cin = shape[1] if layer.data_format == "channels_first" else shape[-1]
                macs = int(np.prod(out[1:])) * kh * kw * int(cin)
            elif isinstance(layer, _layers.Dense):
                macs = int(np.prod(shape[1:])) * layer.units
            pooling = isinstance(layer, _layers.BasePoolingLayer)
            if pooling:
                macs = layer.macs(shape)
            field = layer.receptive(shape) if pooling else None
            windowed = conv or field is not None
            if rf is not None and jump is not None and windowed and len(out) - 2 == len(rf):
                if conv:
                    win = [d * (k - 1) + 1 for k, d in zip(layer.kernel_size,
                                                          layer.dilation_rate, strict=True)]
                    steps = layer.strides
                else:
                    win, steps = field
                rf = [r + (w - 1) * j for r, w, j in zip(rf, win, jump, strict=True)]
                jump = [j * s for j, s in zip(jump, steps, strict=True)]
                grid = _spatial_dims(out, layer)
            elif jump is not None and (isinstance(layer, _layers.Flatten) or pooling):
                # After this a unit sees the whole grid: the field spans every cell of it.
                rf = [r + (n - 1) * j for r, n, j in zip(rf, grid, jump, strict=True)]
                jump = None
            elif jump is not None and len(out) != len(shape):
                rf, jump = None, None
            rows.append({
                "name": layer.name,
                "type": t,
                "output_shape": tuple(out),
                "params": layer.count_params(),
                "macs": int(macs),
                "rf_size": tuple(rf) if rf is not None else None,
                "rf_jump": tuple(jump) if jump is not None else None,
                "act_bytes": int(np.prod(out[1:])) * itemsize,
            })
            shape = out
        return rows

    def summary(self, print_fn=None, extra: bool = True) -> str:
        """Print (and return) Keras's table: Layer (type), Output Shape, Param #, and the
        total/trainable/non-trainable lines; with ``extra`` also each layer's receptive field
        (size/jump), multiply-adds and activation memory per sample."""
        rows = self.layer_table()
        head = ["Layer (type)", "Output Shape", "Param #"]
        if extra:
            head += ["Receptive field", "Jump", "MACs", "Act. memory"]
        body = []
        for r in rows:
            shp = "(" + ", ".join("None" if v is None else str(v)
                                  for v in r["output_shape"]) + ")"
            if len(r["output_shape"]) == 1:
                shp = shp[:-1] + ",)"
            cells = [f"{r['name']} ({r['type']})", shp, f"{r['params']:,}"]
            if extra:
                rf = "x".join(map(str, r["rf_size"])) if r["rf_size"] else "-"
                jp = "x".join(map(str, r["rf_jump"])) if r["rf_jump"] else "-"
                cells += [rf, jp, f"{r['macs']:,}", _fmt_bytes(r["act_bytes"])]
            body.append(cells)
        widths = [max(len(h), *(len(b[i]) for b in body)) + 2 for i, h in enumerate(head)]
        widths[0] = max(widths[0], 33)
        widths[1] = max(widths[1], 24)
        widths[2] = max(widths[2], 15)
        right = {2, 5, 6}

        def fmt(cells):
            out = []
            for i, c in enumerate(cells):
                w = widths[i] - 2
                out.append(" " + (c.rjust(w) if i in right else c.ljust(w)) + " ")
            return out

        lines = [f'Model: "{self.name}"']
        lines.append("┏" + "┳".join("━" * w for w in widths) + "┓")
        lines.append("┃" + "┃".join(fmt(head)) + "┃")
        lines.append("┡" + "╇".join("━" * w for w in widths) + "┩")
        for i, cells in enumerate(body):
            lines.append("│" + "│".join(fmt(cells)) + "│")
            if i < len(body) - 1:
                lines.append("├" + "┼".join("─" * w for w in widths) + "┤")
        lines.append("└" + "┴".join("─" * w for w in widths) + "┘")
        total = self.count_params()
        trainable = sum(r.count_params() for r in self.layers if r.trainable)
        isz = self._dtype.itemsize
        lines.append(f" Total params: {total:,} ({_fmt_bytes(total * isz)})")
        lines.append(f" Trainable params: {trainable:,} ({_fmt_bytes(trainable * isz)})")
        lines.append(f" Non-trainable params: {total - trainable:,} "
                     f"({_fmt_bytes((total - trainable) * isz)})")
        if extra:
            macs = sum(r["macs"] for r in rows)
            act = sum(r["act_bytes"] for r in rows)
            lines.append(f" Multiply-adds per sample: {macs:,}")
            lines.append(f" Activation memory per sample: {_fmt_bytes(act)}")
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    # -- saving --------------------------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self._input_shape[1:]) if self._input_shape else None,
            "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                       for layer in self.layers],
        }

    def save(self, filepath) -> None:
        """Write the model (config, weights, compile settings) to ONE zip file, atomically
        (format: :mod:`poolkit.keras.saving`)."""
        save_model(self, filepath)

    def __repr__(self) -> str:
        return f"<Sequential name={self.name!r} layers={len(self.layers)}>"


def _spatial_dims(shape, layer) -> list:
    """The spatial sizes of ``shape`` in ``layer``'s data_format (channels_last if it has
    none)."""
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return list(shape[2:])
    return list(shape[1:-1])


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def _compile_config(model: Sequential) -> dict | None:
    if not model.compiled:
        return None
    opt = model.optimizer
    return {
        "optimizer": {"class_name": type(opt).__name__, "config": opt.get_config()},
        "loss": {"class_name": type(model.loss).__name__, "config": model.loss.get_config()},
        "metrics": list(model.metrics),
    }


def save_model(model: Sequential, filepath) -> None:
    """Write ``model`` (its config, weights and compile settings) to ONE zip file at
    ``filepath``, atomically: see :mod:`poolkit.keras.saving` for the format."""
    if not isinstance(model, Sequential):
        raise InvalidType(f"save_model: model must be a Sequential, got {type(model).__name__}")
    if not isinstance(filepath, str | os.PathLike):
        raise InvalidType(f"save_model: filepath must be a path, got {filepath!r}")
    model._require_built("save")
    _saving.write_archive(filepath, {"model": model.get_config(),
                                     "compile": _compile_config(model)}, model.weights)


_OPTIMIZERS = {"Adam": _optimizers.Adam, "SGD": _optimizers.SGD}
_LOSSES = {"SparseCategoricalCrossentropy": _losses.SparseCategoricalCrossentropy,
           "CategoricalCrossentropy": _losses.CategoricalCrossentropy}


def load_model(filepath, compile: bool = True) -> Sequential:
    """Load a model written by ``model.save`` / :func:`save_model`.

    Never unpickles or executes anything: layer classes come from a fixed table
    (:func:`poolkit.keras.layers.get`). A missing file raises FileNotFoundError; a file that
    is not a poolkit model, or whose layers, weights or compile settings do not fit together,
    raises InvalidValue (a ValueError) naming the file.
    """
    if not isinstance(filepath, str | os.PathLike):
        raise InvalidType(f"load_model: filepath must be a path, got {filepath!r}")
    path = os.fspath(filepath)
    cfg, arrays = _saving.read_archive(path)
    mcfg = cfg.get("model")
    if not isinstance(mcfg, dict) or not isinstance(mcfg.get("layers"), list):
        raise _saving.bad_file(path, "config.json has no 'model' with a 'layers' list")
    model = Sequential(name=str(mcfg.get("name") or "sequential"))
    shape = mcfg.get("input_shape")
    try:
        layer_objs = []
        for i, spec in enumerate(mcfg["layers"]):
            if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
                raise InvalidValue(f"layer {i} is not a {{class_name, config}} object")
            cls = _layers.get(spec.get("class_name"))
            layer_objs.append(cls.from_config(dict(spec["config"])))
        if shape is not None:
            if not isinstance(shape, list):
                raise InvalidValue(f"input_shape must be a list, got {shape!r}")
            model.add(_layers.InputLayer(shape=tuple(shape), dtype=layer_objs[0].dtype
                                         if layer_objs else None))
        for layer in layer_objs:
            model.add(layer)
    except (TypeError, ValueError) as e:
        raise _saving.bad_file(path, f"bad layer configuration: {e}") from None
    if not model.built:
        raise _saving.bad_file(path, "the model has no input shape")
    own = model.weights
    if len(arrays) != len(own):
        raise _saving.bad_file(path, f"the model's layers have {len(own)} weight arrays but the "
                                     f"file holds {len(arrays)}")
    for i, (a, w) in enumerate(zip(arrays, own, strict=True)):
        if a.shape != w.shape:
            raise _saving.bad_file(path, f"weight {i} has shape {a.shape}, but the layer "
                                         f"expects {w.shape}")
    model.set_weights(arrays)
    comp = cfg.get("compile")
    if compile and comp:
        try:
            opt, loss = comp["optimizer"], comp["loss"]
            model.compile(optimizer=_OPTIMIZERS[opt["class_name"]](**opt["config"]),
                          loss=_LOSSES[loss["class_name"]](**loss["config"]),
                          metrics=comp.get("metrics") or None)
        except (KeyError, TypeError, ValueError) as e:
            raise _saving.bad_file(path, f"bad compile configuration ({e!r})") from None
    return model
