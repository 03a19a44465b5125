"""The main job: train the tutorial's CNN on real digits and show what its pooling layer does.

``run_demo()`` is what ``poolkit demo`` runs: the embedded MNIST sample (8,000 train / 2,000
test, no network), the tutorial's model, a progress bar, the test accuracy, and into ``out``: a
PNG of one test digit with its 32 feature maps before pooling and after max and average pooling
(``feature_maps.png``), the trained model (``model.poolkit``, a zip of JSON + .npy) and
``metrics.json``. ``run_train()`` is the same with the dataset and pooling layer as arguments
(``poolkit train``). Every file is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import json
import numbers
import os
import sys
import time

import numpy as np

from . import ops as _ops
from . import shapes as _shapes
from ._io import atomic_write

__all__ = ["run_demo", "run_train", "build_model", "load_dataset", "feature_map_figure",
           "pick_threads", "DATASETS"]

DATASETS = ("mnist-sample", "mnist", "fashion-mnist")
FIGURE_NAME = "feature_maps.png"
MODEL_NAME = "model.poolkit"
METRICS_NAME = "metrics.json"


def load_dataset(name: str):
    """((x_train, y_train), (x_test, y_test)) with x as float32 in [0, 1], shape (n, 28, 28, 1)."""
    from .keras import datasets

    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    mod = {"mnist-sample": datasets.mnist_sample, "mnist": datasets.mnist,
           "fashion-mnist": datasets.fashion_mnist}[name]
    (xtr, ytr), (xte, yte) = mod.load_data()

    def prep(x):
        return (x.astype(np.float32) / np.float32(255.0))[..., None]

    return (prep(xtr), ytr.astype(np.int64)), (prep(xte), yte.astype(np.int64))


def build_model(pool: str = "max", pool_size=2, strides=None, padding: str = "valid",
                input_shape=(28, 28, 1), num_classes: int = 10):
    """The tutorial's model, with its pooling layer chosen by the arguments:
    Conv2D(32, 3x3, relu) -> {Max,Average}Pooling2D(pool_size, strides, padding) -> Flatten ->
    Dense(num_classes, softmax)."""
    from . import keras

    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    pool_cls = keras.layers.MaxPooling2D if pool == "max" else keras.layers.AveragePooling2D
    return keras.Sequential([
        keras.layers.Conv2D(32, (3, 3), activation="relu", input_shape=tuple(input_shape)),
        pool_cls(pool_size=pool_size, strides=strides, padding=padding),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


# ------------------------------------------------------------------------------------------
# The figure.


def _first_conv_and_pool(model):
    conv = next((layer for layer in model.layers if type(layer).__name__ == "Conv2D"), None)
    if conv is None:
        raise ValueError("feature_map_figure: the model has no Conv2D layer")
    i = model.layers.index(conv)
    nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
    if nxt is not None and hasattr(nxt, "pool_size") and len(nxt.pool_size) == 2:
        return conv, i, nxt.pool_size, nxt.strides, nxt.padding
    return conv, i, (2, 2), (2, 2), "valid"


def feature_map_figure(model, image, *, label=None, predicted=None, max_maps: int = 32):
    """A matplotlib Figure: ``image`` (H, W) or (H, W, 1) on the left; on the right three
    panels of the first Conv2D's feature maps for it — after the convolution (and its
    activation), after max pooling and after average pooling with the pooling arguments of the
    layer that follows the convolution (2x2, stride 2 if none) — each with its shape in the
    title and one colour scale shared by the panel's maps."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise ValueError(f"feature_map_figure: image must be (H, W) or (H, W, C), got {img.shape}")
    conv, i, pool_size, strides, padding = _first_conv_and_pool(model)
    h = img[None].astype(model._dtype)
    for layer in model.layers[: i + 1]:
        h = layer.forward(h, training=False)
    maps = h.astype(np.float32)
    mx = _ops.max_pool(maps, pool_size, strides, padding)
    av = _ops.average_pool(maps, pool_size, strides, padding)
    n = min(maps.shape[-1], max_maps)
    cols = 8
    rows = -(-n // cols)
    p = "x".join(map(str, pool_size))
    s = "x".join(map(str, strides))
    panels = [
        (maps[0], f"{conv.name} ({conv.activation}) output, shape {maps.shape[1:]}"),
        (mx[0], f"max pooling {p}, strides {s}, {padding}: shape {mx.shape[1:]}"),
        (av[0], f"average pooling {p}, strides {s}, {padding}: shape {av.shape[1:]}"),
    ]
    fig = plt.figure(figsize=(15, 3.2 * 3 + 0.6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 3.2])
    ax = left.add_subplot(1, 1, 1)
    ax.imshow(img[..., 0], cmap="gray")
    title = f"test digit, shape {img.shape}"
    if label is not None:
        title += f"\nlabel {label}"
        if predicted is not None:
            title += f", predicted {predicted}"
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    subs = right.subfigures(3, 1)
    for sub, (arr, text) in zip(subs, panels, strict=True):
        vmax = float(arr[..., :n].max())
        vmin = float(arr[..., :n].min())
        axes = sub.subplots(rows, cols)
        im = None
        for k, a in enumerate(np.atleast_1d(axes).ravel()):
            a.set_xticks([])
            a.set_yticks([])
            if k < n:
                im = a.imshow(arr[..., k], cmap="viridis", vmin=vmin, vmax=vmax)
            else:
                a.axis("off")
        sub.suptitle(text + f" — {n} channels, one colour scale", fontsize=11)
        sub.colorbar(im, ax=axes, shrink=0.9, pad=0.01)
    fig.suptitle(f"What the pooling layer does: {len(model.layers)}-layer CNN, "
                 f"channels 0-{n - 1} left to right, top to bottom", fontsize=12)
    return fig


# ------------------------------------------------------------------------------------------
# metrics.json (written atomically, like the model and the figure).


def _write_json(path: str, obj) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode("utf-8")))


# ------------------------------------------------------------------------------------------
# Train / demo.


def pick_threads(threads="auto") -> int:
    """Numba threads for training. "auto": all of Numba's threads, but 1 when the machine is
    already busy (1-minute load average >= cores - 0.5): with batch-32 steps of ~1 ms, a
    parallel region waits for its slowest thread, and a thread descheduled by another process
    costs a whole time slice (measured here: 16 ms per kernel call instead of 2 ms)."""
    import numba

    if threads == "auto":
        cores = os.cpu_count() or 1
        busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= cores - 0.5
        return 1 if busy else numba.config.NUMBA_NUM_THREADS
    n = _check_int(threads, "threads")
    return min(n, numba.config.NUMBA_NUM_THREADS)


def _check_int(value, name: str, low: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def run_train(dataset: str = "mnist-sample", pool: str = "max", pool_size=2, strides=None,
              padding: str = "valid", epochs: int = 3, batch_size: int = 32,
              out: str = "poolkit-train", *, seed: int = 0, verbose="auto",
              max_train: int | None = None, max_test: int | None = None,
              learning_rate: float = 1e-3, figure: bool = True, threads="auto",
              stream=None) -> dict:
    """Train the tutorial's model (with the chosen pooling layer) and write the outputs.

    ``out`` receives ``feature_maps.png``, ``model.poolkit`` and ``metrics.json``; the returned
    dict is what metrics.json holds. ``max_train``/``max_test`` keep the first n samples (for
    quick runs). Adam(learning_rate), sparse categorical cross-entropy, seeded by ``seed``.
    ``threads``: Numba threads while training ("auto": see :func:`pick_threads`); results do
    not depend on it.
    """
    from . import keras

    stream = stream or sys.stdout
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if pool not in ("max", "avg"):
        raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
    ps = _shapes.normalize_tuple(pool_size, 2, "pool_size", allow_one=False)
    st = ps if strides is None else _shapes.normalize_tuple(strides, 2, "strides",
                                                            allow_one=False)
    epochs = _check_int(epochs, "epochs")
    batch_size = _check_int(batch_size, "batch_size")
    if not isinstance(out, str | os.PathLike):
        raise TypeError(f"out must be a directory path, got {out!r}")
    out = os.fspath(out)
    for name, v in (("max_train", max_train), ("max_test", max_test)):
        if v is not None:
            _check_int(v, name)
    keras.utils.set_random_seed(seed)
    # Built before loading data: bad pooling arguments fail fast, with the layer's message.
    model = build_model(pool, ps, st, padding)
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out must be a directory, but {out!r} is a file")
    os.makedirs(out, exist_ok=True)
    t_load = time.perf_counter()
    (xtr, ytr), (xte, yte) = load_dataset(dataset)
    if max_train:
        xtr, ytr = xtr[:max_train], ytr[:max_train]
    if max_test:
        xte, yte = xte[:max_test], yte[:max_test]
    t_load = time.perf_counter() - t_load
    vb = 1 if verbose == "auto" else verbose
    if vb:
        model.summary(print_fn=lambda s: print(s, file=stream))
        print(f"Training on {dataset}: {len(xtr):,} train / {len(xte):,} test images, "
              f"{epochs} epoch(s), batch {batch_size}", file=stream, flush=True)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    import numba

    n_threads = pick_threads(threads)
    old_threads = numba.get_num_threads()
    t0 = time.perf_counter()
    try:
        numba.set_num_threads(n_threads)
        h = model.fit(xtr, ytr, batch_size=batch_size, epochs=epochs, verbose=vb)
    finally:
        numba.set_num_threads(old_threads)
    history, epoch_times = h.history, h.epoch_seconds
    train_s = time.perf_counter() - t0
    test_loss, test_acc = model.evaluate(xte, yte, batch_size=256, verbose=0)
    if vb:
        print(f"Test accuracy: {test_acc:.4f} (loss {test_loss:.4f}) on {len(xte):,} images; "
              f"training took {train_s:.1f} s", file=stream, flush=True)

    model_path = os.path.join(out, MODEL_NAME)
    model.save(model_path)
    fig_path = os.path.join(out, FIGURE_NAME)
    if figure:
        probs = model.predict(xte[:1], verbose=0)
        fig = feature_map_figure(model, xte[0], label=int(yte[0]),
                                 predicted=int(probs[0].argmax()))
        import matplotlib.pyplot as plt

        atomic_write(fig_path, lambda f: fig.savefig(f, format="png", dpi=100))
        plt.close(fig)
    metrics = {
        "dataset": dataset,
        "n_train": int(len(xtr)),
        "n_test": int(len(xte)),
        "pool": pool,
        "pool_size": list(ps),
        "strides": list(st),
        "padding": padding,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "seed": seed,
        "numba_threads": n_threads,
        "params": model.count_params(),
        "history": history,
        "epoch_seconds": epoch_times,
        "train_seconds": train_s,
        "load_seconds": t_load,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_acc),
        "files": {"model": MODEL_NAME, "figure": FIGURE_NAME if figure else None,
                  "metrics": METRICS_NAME},
    }
    _write_json(os.path.join(out, METRICS_NAME), metrics)
    if vb:
        print(f"Wrote {fig_path if figure else ''} {model_path} "
              f"{os.path.join(out, METRICS_NAME)}".replace("  ", " ").strip(),
              file=stream, flush=True)
    return metrics


def run_demo(out: str = "poolkit-demo", epochs: int = 6, batch_size: int = 32, *,
             learning_rate: float = 2e-3, seed: int = 0, verbose="auto", threads="auto",
             stream=None) -> dict:
    """``poolkit demo``: the tutorial's model (max pooling 2x2, stride 2) on the embedded MNIST
    sample, Adam(2e-3) for 6 epochs (about 0.955-0.96 test accuracy: with 8,000 training images
    the default 1e-3 needs 8 epochs to reach 0.95); see :func:`run_train` for the outputs."""
    return run_train("mnist-sample", "max", 2, 2, "valid", epochs, batch_size, out, seed=seed,
                     verbose=verbose, learning_rate=learning_rate, threads=threads,
                     stream=stream)
