"""The main job, as an app: train the tutorial's CNN on real digits and show what its pooling
layer does. The pieces are library functions (:mod:`poolkit.lab.models`, :mod:`poolkit.data`,
:mod:`poolkit.lab.figures`, :mod:`poolkit.lab.threads`); this module only runs them in order
and writes the files.

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

from . import shapes as _shapes
from ._io import atomic_write, atomic_write_text
from .data import DATASETS, load_dataset
from .errors import InvalidType, InvalidValue
from .kinds import POOL_KINDS

__all__ = ["run_demo", "run_train"]

FIGURE_NAME = "feature_maps.png"
MODEL_NAME = "model.poolkit"
METRICS_NAME = "metrics.json"


def _check_int(value, name: str, low: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise InvalidType(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < low:
        raise InvalidValue(f"{name} must be >= {low}, got {value}")
    return int(value)


def tutorial_kernels(pool: str = "max", pool_size=(2, 2), strides=(2, 2),
                     padding: str = "valid") -> list[tuple[str, tuple]]:
    """The kernel specialisations (kernel name, key) that training and showing the tutorial's
    model in float32 uses: the convolution, dense and Adam kernels whatever the pooling layer,
    and, for the demo's layer (max pooling 2x2, stride 2, 'valid'), the max-pooling forward
    and backward and the average pooling of the feature-map figure. A test runs the demo and
    checks that it compiles exactly these."""
    import numpy as np

    from ._kernels.rows import V_2x2

    f32 = np.dtype(np.float32)
    specs = [("conv2d_fwd", (f32,)), ("conv2d_bwd_params", (f32,)), ("dense_fwd", (f32,)),
             ("dense_bwd_params", (f32,)), ("dense_bwd_input", (f32,)),
             ("adam_update", (f32,))]
    if (pool, tuple(pool_size), tuple(strides), padding) == ("max", (2, 2), (2, 2), "valid"):
        specs += [("max_fwd", (V_2x2, f32)), ("max_bwd", (V_2x2, True, f32)),
                  ("avg_fwd", (V_2x2, 0, f32))]
    return specs


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
    ``threads``: threads while training ("auto": see :func:`poolkit.lab.threads.pick_threads`);
    results do not depend on it.
    """
    from . import keras
    from .lab.figures import model_feature_maps_figure
    from .lab.models import tutorial_model
    from .lab.threads import pick_threads, using_threads

    stream = stream or sys.stdout
    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise InvalidValue(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if pool not in POOL_KINDS:
        raise InvalidValue(f"pool must be one of {POOL_KINDS}, got {pool!r}")
    ps = _shapes.normalize_tuple(pool_size, 2, "pool_size", allow_one=False)
    st = ps if strides is None else _shapes.normalize_tuple(strides, 2, "strides",
                                                            allow_one=False)
    epochs = _check_int(epochs, "epochs")
    batch_size = _check_int(batch_size, "batch_size")
    if not isinstance(out, str | os.PathLike):
        raise InvalidType(f"out must be a directory path, got {out!r}")
    out = os.fspath(out)
    for name, v in (("max_train", max_train), ("max_test", max_test)):
        if v is not None:
            _check_int(v, name)
    keras.utils.set_random_seed(seed)
    # Built before loading data: bad pooling arguments fail fast, with the layer's message.
    model = tutorial_model(pool, ps, st, padding)
    n_threads = pick_threads(threads)
    if os.path.exists(out) and not os.path.isdir(out):
        raise InvalidValue(f"out must be a directory, but {out!r} is a file")
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
    # A fresh install compiles the kernels once (seconds each): in parallel processes, and
    # said before it starts, so the first epoch is training, not compiling.
    from ._kernels.precompile import precompile

    compile_s = precompile(
        tutorial_kernels(pool, ps, st, padding),
        notify=(lambda m: print(f"poolkit: {m}", file=stream, flush=True)) if vb else None)
    if vb and compile_s:
        print(f"poolkit: compiled in {compile_s:.1f} s", file=stream, flush=True)
    t0 = time.perf_counter()
    with using_threads(n_threads):
        h = model.fit(xtr, ytr, batch_size=batch_size, epochs=epochs, verbose=vb)
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
        fig = model_feature_maps_figure(model, xte[0], label=int(yte[0]),
                                        predicted=int(probs[0].argmax()))
        import matplotlib.pyplot as plt

        try:
            atomic_write(fig_path, lambda f: fig.savefig(f, format="png", dpi=100))
        finally:
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
        "threads": n_threads,
        "params": model.count_params(),
        "history": history,
        "epoch_seconds": epoch_times,
        "train_seconds": train_s,
        "load_seconds": t_load,
        "compile_seconds": compile_s,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_acc),
        "files": {"model": MODEL_NAME, "figure": FIGURE_NAME if figure else None,
                  "metrics": METRICS_NAME},
    }
    atomic_write_text(os.path.join(out, METRICS_NAME), json.dumps(metrics, indent=2))
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
