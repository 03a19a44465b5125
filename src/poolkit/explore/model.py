"""The explorer's trained model: the demo's CNN (trained once, quickly, and cached) or a saved
poolkit model (``--model FILE``; loading never unpickles), its feature maps before and after its
pooling layer, its prediction, and what a shift of the input does to them.

The default model is ``poolkit.lab.models.tutorial_model()`` (Conv2D 32 3x3 relu, MaxPooling2D 2x2,
Flatten, Dense 10 softmax) trained for DEFAULT_EPOCHS epochs on the embedded sample's 8,000
training digits (a few seconds once compiled; about 0.95 test accuracy) and cached at
``$POOLKIT_DATA/explore/`` (default ``~/.cache/poolkit/explore/``). It is trained in a child
process, ``python -m poolkit.explore.model``, so the server answers while it trains.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import threading

import numpy as np

from ..errors import InvalidValue
from ..kinds import KINDS
from .api import MAX_SHIFT, ApiError, check_call, check_grid, check_object, finite
from .kinds import CALLS, kind_label, to_nhwc

__all__ = ["DEFAULT_TRAIN", "DEFAULT_EPOCHS", "cache_path", "train_demo_model", "ModelState",
           "model_parts", "feature_maps", "shift_report", "shift_change", "call_text",
           "SHIFT_KINDS"]

DEFAULT_TRAIN = 8000
DEFAULT_EPOCHS = 3
SEED = 0
LEARNING_RATE = 2e-3
_VERSION = 1  # bump when the default model's recipe changes: the cache file name follows
_POOL_LAYERS = {k.layer2d for k in KINDS.values()}


def cache_path(train_examples: int = DEFAULT_TRAIN, epochs: int = DEFAULT_EPOCHS,
               directory: str | None = None) -> str:
    """Where the default model is cached (the directory is created if it can be, else the
    system's temporary directory is used)."""
    if directory is None:
        root = os.environ.get("POOLKIT_DATA") or os.path.join("~", ".cache", "poolkit")
        directory = os.path.join(os.path.expanduser(root), "explore")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError:
        directory = tempfile.gettempdir()
    name = f"demo-model-v{_VERSION}-seed{SEED}-n{train_examples}-e{epochs}.poolkit"
    return os.path.join(directory, name)


def train_demo_model(train_examples: int = DEFAULT_TRAIN, epochs: int = DEFAULT_EPOCHS,
                     seed: int = SEED):
    """The demo's model (``poolkit.lab.models.tutorial_model()``) trained with Adam(2e-3),
    batch 32, on the first ``train_examples`` training digits of the embedded sample."""
    from .. import keras
    from ..data import load_dataset
    from ..lab.models import tutorial_model

    keras.utils.set_random_seed(seed)
    model = tutorial_model()
    (x, y), _ = load_dataset("mnist-sample")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:train_examples], y[:train_examples], batch_size=32, epochs=epochs, verbose=0)
    return model


def model_parts(model) -> tuple[int, int | None]:
    """(index of the first Conv2D, index of the first pooling layer after it or None); checks
    that the model takes 28x28x1 digits and outputs class scores."""
    shape = tuple(model.input_shape or ())
    if shape[1:] != (28, 28, 1):
        raise InvalidValue(f"the explorer feeds 28x28x1 digits, but the model takes inputs of "
                           f"shape {shape[1:]}")
    out = tuple(model.output_shape or ())
    if len(out) != 2 or not 1 <= out[1] <= 1000:
        raise InvalidValue(f"the model must output (batch, classes) scores, got shape {out}")
    names = [type(layer).__name__ for layer in model.layers]
    if "Conv2D" not in names:
        raise InvalidValue("the model has no Conv2D layer whose feature maps could be shown")
    conv = names.index("Conv2D")
    pool = next((i for i in range(conv + 1, len(names)) if names[i] in _POOL_LAYERS), None)
    return conv, pool


def _layer_info(layer) -> dict:
    info = {"name": layer.name, "type": type(layer).__name__}
    for key in ("pool_size", "strides", "padding"):
        if hasattr(layer, key):
            v = getattr(layer, key)
            info[key] = list(v) if isinstance(v, tuple) else v
    return info


def _run(model, x: np.ndarray, conv: int, pool: int | None):
    """Feature maps after the conv layer and after the pooling layer, and the scores, for a
    batch (N, 28, 28) of digits."""
    h = x[..., None].astype(np.float32)
    maps = pooled = None
    for i, layer in enumerate(model.layers):
        h = layer(h)
        if i == conv:
            maps = h
        if i == pool:
            # A global pooling layer without keepdims gives (N, C): shown as 1 x 1 maps.
            pooled = np.asarray(h)
            pooled = pooled[:, None, None, :] if pooled.ndim == 2 else pooled
    return maps, pooled, h


def feature_maps(model, parts, body) -> dict:
    """``POST /api/model`` {"x": 28x28}: the conv feature maps (channels first), the maps after
    the pooling layer, the scores and the predicted class."""
    body = check_object(body)
    x = check_grid(body.get("x"), "x", (28, 28))
    conv, pool = parts
    maps, pooled, scores = _run(model, x[None], conv, pool)
    return {
        "conv": {"layer": _layer_info(model.layers[conv]), "shape": list(maps.shape[1:]),
                 "maps": finite(np.round(maps[0].transpose(2, 0, 1), 4))},
        "pooled": None if pooled is None else {
            "layer": _layer_info(model.layers[pool]), "shape": list(pooled.shape[1:]),
            "maps": finite(np.round(pooled[0].transpose(2, 0, 1), 4))},
        "scores": finite(np.round(scores[0], 5)),
        "prediction": int(np.argmax(scores[0])),
    }


def _shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``x`` moved ``dy`` cells down and ``dx`` right; cells moved in are 0, cells moved out are
    lost (as :func:`poolkit.lab.invariance.random_shift_pairs` crops a zero-padded image)."""
    h, w = x.shape
    pad = np.pad(x, ((dy, 0), (dx, 0)))
    return pad[:h, :w]


#: The kinds the shift panel always compares, with the model's pooling window and stride:
#: max pooling and its anti-aliased replacements (Zhang 2019; Chaman & Dokmanic 2021).
SHIFT_KINDS = ("max", "blur", "max_blur", "aps")


def call_text(call, args: dict, x: str = "x") -> str:
    """The library call as Python, e.g. ``poolkit.blur_pool(maps, filt_size=4, ...)``."""
    names = dict(call.names)

    def show(v):
        if v == "inf":
            return "float('inf')"
        if isinstance(v, tuple | list):
            return "(" + ", ".join(show(u) for u in v) + ")"
        return repr(v)

    parts = [f"{names.get(p.name, p.name)}="
             + (p.template.format(args[p.name]) if p.template else show(args[p.name]))
             for p in call.params]
    return f"{call.function}({', '.join([x, *parts])})"


def shift_change(base: np.ndarray, moved: np.ndarray, shift, in_size) -> tuple:
    """How much a pooled map changes when its input moves by ``shift`` = (dy, dx) cells:

        min over q of ||moved[q:] - base[:O - q]|| / ||base[:O - q]||

    over all channels, ``base`` and ``moved`` being (O0, O1, C) pooled maps of an input of
    spatial size ``in_size`` and of that input shifted, and ``q`` per axis the whole number of
    output cells nearest the shift (``floor`` or ``ceil`` of ``t * O / L``). 0 means the pooled
    map just moved along (shift-equivariance); a change is what aliasing does. Returns (change
    or None if no cell is comparable or the base is 0 where moved is not, q)."""
    best = (None, (0, 0))
    choices = [sorted({(t * o) // L, -(-(t * o) // L)})
               for t, o, L in zip(shift, base.shape[:2], in_size, strict=True)]
    for q in ((a, b) for a in choices[0] for b in choices[1]):
        if q[0] >= base.shape[0] or q[1] >= base.shape[1]:
            continue
        a = moved[q[0]:, q[1]:].astype(np.float64)
        b = base[:base.shape[0] - q[0], :base.shape[1] - q[1]].astype(np.float64)
        num, den = float(np.linalg.norm(a - b)), float(np.linalg.norm(b))
        err = num / den if den > 0 else (0.0 if num == 0 else None)
        if err is not None and not math.isfinite(err):  # inf or NaN in a map: not a number
            err = None
        if err is not None and (best[0] is None or err < best[0]):
            best = (err, q)
    return best


def _shift_calls(layer, selected) -> list[tuple[str, str, object, dict, bool]]:
    """(kind, convention, call, args, selected) for the shift panel's rows."""
    k = tuple(getattr(layer, "pool_size", None) or (2, 2))
    s = tuple(getattr(layer, "strides", None) or k)
    pad = getattr(layer, "padding", "valid")
    fixed = {
        "max": {"pool_size": k, "strides": s, "padding": pad if pad in ("valid", "same")
                else "valid", "dilation": (1, 1)},
        "blur": {"filt_size": 4, "strides": s, "pad_type": "reflect"},
        "max_blur": {"pool_size": k, "strides": s, "filt_size": 4, "pad_type": "reflect"},
        "aps": {"strides": s, "norm": 2},
    }
    rows = [(name, "keras", CALLS[name]["keras"], fixed[name], False) for name in SHIFT_KINDS]
    if selected is not None:
        kind, conv, call, args = selected
        # strides=None means the pool size: the same call as the row that says so.
        text = call_text(call, {**args, **{p.name: args["pool_size"] for p in call.params
                                           if p.control == "stride" and args[p.name] is None}})
        same = [i for i, r in enumerate(rows) if call_text(r[2], r[3]) == text]
        if same:
            rows[same[0]] = (*rows[same[0]][:4], True)
        else:
            rows.append((kind, conv, call, args, True))
    return rows


def _shift_rows(maps: np.ndarray, k: int, channel: int, shift, layer, selected) -> list[dict]:
    """Each row's pooled maps (channel ``channel``) unshifted and for shift index ``k``, and
    the change for every shift in [0, MAX_SHIFT]^2 (``maps`` holds the conv maps of the
    shifted inputs, shift (i, j) at i * (MAX_SHIFT + 1) + j)."""
    n = MAX_SHIFT + 1
    rows = []
    for kind, conv, call, args, sel in _shift_calls(layer, selected):
        row = {"kind": kind, "label": kind_label(kind), "convention": conv,
               "call": call_text(call, args, "maps"), "selected": sel}
        try:
            pooled = to_nhwc(call.run(maps, args), conv)
        except (ValueError, TypeError) as e:
            rows.append({**row, "error": str(e)})
            continue
        changes = [[shift_change(pooled[0], pooled[i * n + j], (i, j), maps.shape[1:3])
                    for j in range(n)] for i in range(n)]
        err, q = changes[shift[0]][shift[1]]
        rows.append({
            **row, "error": None, "shape": list(pooled.shape[1:3]),
            "base": finite(np.round(pooled[0, :, :, channel], 4)),
            "maps": finite(np.round(pooled[k, :, :, channel], 4)),
            "change": None if err is None else round(err, 6), "q": list(q),
            "changes": [[None if c[0] is None else round(c[0], 6) for c in r] for r in changes],
        })
    return rows


def shift_report(model, parts, body) -> dict:
    """``POST /api/shift`` {"x": 28x28, "shift": [dy, dx] (each 0..MAX_SHIFT), "channel": c,
    "pool": {kind, convention, parameters} (optional)}: the shifted input, its pooled maps and
    prediction, the unshifted prediction, the prediction for every shift in [0, MAX_SHIFT]^2
    (``grid``), the pooling layer's shift equivariance error
    (:func:`poolkit.lab.invariance.shift_equivariance_error`) for this shift, and ``kinds``:
    the model's conv maps pooled by max pooling, its anti-aliased replacements and the page's
    selection, unshifted and shifted (channel ``c``), with :func:`shift_change` per shift."""
    from ..lab.invariance import shift_equivariance_error

    body = check_object(body)
    for name in body:
        if name not in ("x", "shift", "channel", "pool"):
            raise ApiError("is not a field of a shift request (x, shift, channel, pool)",
                           str(name)[:40])
    x = check_grid(body.get("x"), "x", (28, 28))
    shift = body.get("shift", [0, 0])
    if (not isinstance(shift, list) or len(shift) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in shift)
            or not all(0 <= v <= MAX_SHIFT for v in shift)):
        raise ApiError(f"must be [down, right], two ints in [0, {MAX_SHIFT}] (pixels), got "
                       f"{str(shift)[:40]}", "shift")
    selected = None
    if body.get("pool") is not None:
        kind, conv, call, _, args = check_call(body["pool"], need_x=False, prefix="pool.")
        selected = (kind, conv, call, args)
    dy, dx = shift
    conv, pool = parts
    n = MAX_SHIFT + 1
    batch = np.stack([_shifted(x, i, j) for i in range(n) for j in range(n)])
    maps, pooled, scores = _run(model, batch, conv, pool)
    channels = maps.shape[-1]
    channel = body.get("channel", 0)
    if not isinstance(channel, int) or isinstance(channel, bool) or not 0 <= channel < channels:
        raise ApiError(f"must be an int in [0, {channels - 1}] (the conv layer's channels), "
                       f"got {str(channel)[:40]}", "channel")
    preds = scores.argmax(axis=1).reshape(n, n)
    k = dy * n + dx
    maps = np.asarray(maps)
    res = {
        "shift": [dy, dx],
        "x": np.round(batch[k], 4).tolist(),
        "prediction": int(preds[dy, dx]),
        "scores": finite(np.round(scores[k], 5)),
        "base": {"prediction": int(preds[0, 0]), "scores": finite(np.round(scores[0], 5))},
        "grid": preds.tolist(),
        "consistent": int((preds == preds[0, 0]).sum()),
        "pooled": None,
        "equivariance": None,
        "channel": channel,
        "kinds": _shift_rows(maps, k, channel, (dy, dx),
                             model.layers[pool] if pool is not None else None, selected),
    }
    if pool is not None:
        layer = model.layers[pool]
        res["pooled"] = {"layer": _layer_info(layer), "shape": list(pooled.shape[1:]),
                         "maps": finite(np.round(pooled[k].transpose(2, 0, 1), 4)),
                         "base": finite(np.round(pooled[0].transpose(2, 0, 1), 4))}
        mode = "max" if type(layer).__name__ == "MaxPooling2D" else (
            "avg" if type(layer).__name__ == "AveragePooling2D" else None)
        if mode is not None and (dy, dx) != (0, 0):
            try:
                eq = shift_equivariance_error(maps[:1], (dy, dx), mode, layer.pool_size,
                                              layer.strides, layer.padding)
            except ValueError:  # the shift leaves no comparable cell
                eq = None
            if eq is not None and np.isfinite(eq["error"]):
                res["equivariance"] = {**eq, "q": list(eq["q"])}
    return res


class ModelState:
    """The explorer's model, loaded once: a model object, a saved file, or the cached default
    (trained by a child process when missing). Thread-safe; never blocks for long."""

    def __init__(self, model=None, path: str | None = None, cache_dir: str | None = None,
                 train_examples: int = DEFAULT_TRAIN, epochs: int = DEFAULT_EPOCHS):
        self._lock = threading.Lock()
        self.model = None
        self.parts = None
        self.error = None
        self._proc = None
        self._log = None
        self.train_examples, self.epochs = train_examples, epochs
        if model is not None:
            self._set(model, f"a model object ({getattr(model, 'name', 'model')})")
        elif path is not None:
            self._load(os.fspath(path), f"{os.path.basename(path)} (--model)")
        else:
            self.cache = cache_path(train_examples, epochs, cache_dir)
            self.source = (f"the demo's model, trained {epochs} epoch(s) on {train_examples:,} "
                           f"digits, cached at {self.cache}")

    def _set(self, model, source: str) -> None:
        self.parts = model_parts(model)
        self.model, self.source = model, source

    def _load(self, path: str, source: str) -> None:
        from ..keras.models import load_model

        try:
            model = load_model(path, compile=False)
        except FileNotFoundError:
            raise InvalidValue(f"--model: no model file at {path!r}") from None
        except (ValueError, TypeError) as e:
            raise InvalidValue(f"--model: {e}") from None
        try:
            self._set(model, source)
        except InvalidValue as e:
            raise InvalidValue(f"--model {path!r}: {e}") from None

    def start(self) -> None:
        """Load the cached default model, or start training it in a child process."""
        with self._lock:
            if self.model is not None or self._proc is not None or self.error:
                return
            if os.path.exists(self.cache):
                try:
                    self._load(self.cache, self.source)
                    return
                except InvalidValue:
                    pass  # a stale or damaged cache: train again
            import poolkit

            env = dict(os.environ)
            src = os.path.dirname(os.path.dirname(os.path.abspath(poolkit.__file__)))
            env["PYTHONPATH"] = os.pathsep.join(
                [src] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
            self._log = tempfile.TemporaryFile()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "poolkit.explore.model", "--out", self.cache,
                 "--train", str(self.train_examples), "--epochs", str(self.epochs)],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)  # Ctrl-C reaches the server, which stops the child

    def _poll(self) -> None:
        if self._proc is None or self._proc.poll() is None:
            return
        code = self._proc.returncode
        self._proc = None
        if code == 0 and os.path.exists(self.cache):
            try:
                self._load(self.cache, self.source)
            except InvalidValue as e:
                self.error = str(e)
        else:
            self._log.seek(0)
            tail = self._log.read()[-2000:].decode("utf-8", "replace").strip()
            self.error = f"training the default model failed (exit {code}): {tail}"
        self._log.close()

    def status(self) -> dict:
        with self._lock:
            self._poll()
            state = ("ready" if self.model is not None else "failed" if self.error
                     else "training" if self._proc is not None else "idle")
            res = {"status": state, "source": self.source, "error": self.error}
            if self.model is not None:
                conv, pool = self.parts
                res["layers"] = [_layer_info(layer) for layer in self.model.layers]
                res["conv"] = conv
                res["pool"] = pool
            return res

    def get(self):
        """(model, parts), or ApiError 503 while the default model trains."""
        st = self.status()
        if st["status"] != "ready":
            msg = st["error"] or "the model is still training; GET /api/model tells when ready"
            raise ApiError(msg, "model", 503)
        return self.model, self.parts

    def stop(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            if self._log is not None and not self._log.closed:
                self._log.close()
            self._proc = None


def main(argv=None) -> int:
    """``python -m poolkit.explore.model --out FILE``: train and save the default model."""
    p = argparse.ArgumentParser(prog="python -m poolkit.explore.model")
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=DEFAULT_TRAIN)
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    a = p.parse_args(argv)
    train_demo_model(a.train, a.epochs).save(a.out)  # written atomically
    return 0


if __name__ == "__main__":
    sys.exit(main())
