"""Train model variants that differ only in how they downsample, and compare them.

Every variant is the tutorial's model with its pooling layer swapped
(:func:`poolkit.lab.models.downsampling_model`)::

    Conv2D(32, (3, 3), relu, input 28x28x1) -> [downsampling] -> Flatten -> Dense(10, softmax)

where ``[downsampling]`` is nothing (``none``), the pooling layer of a kind of
:data:`poolkit.kinds.POOL_KINDS` (``max k/s``: MaxPooling2D(k, s), ``avg k/s``:
AveragePooling2D(k, s), ...) or ``Conv2D(32, (3, 3), strides=s, relu)`` (``conv 3/s``, the
all-convolutional alternative of Springenberg et al. 2015). Same first convolution, same
classifier, same optimiser (Adam 1e-3), batch size and seed, so differences come from the
downsampling step. :func:`poolkit.lab.figures.sweep_figure` draws the results.

Results go to a CSV that is rewritten atomically after every finished variant (temp file, fsync,
``os.replace``), so an interrupted sweep keeps what it finished, and a rerun skips every variant
already in the CSV with the same settings (``resume=True``, the default).
"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .._io import atomic_write_text
from ..data import DATASETS, load_dataset
from ..errors import InvalidValue
from ..kinds import POOL_KINDS, get_kind
from .invariance import shift_consistency
from .models import DOWNSAMPLING_KINDS, SWEEP_KINDS, downsampling_model, layer_takes
from .threads import pick_threads, using_threads

__all__ = [
    "Variant",
    "SWEEP_COLUMNS",
    "sweep_variants",
    "build_model",
    "train_variant",
    "read_results",
    "typed",
    "run_sweep",
]

# The CSV's columns, in order. The first block identifies a run (used to resume).
KEY_COLUMNS = ("variant", "dataset", "epochs", "limit", "batch_size", "seed")
SWEEP_COLUMNS = KEY_COLUMNS + (
    "kind",
    "pool_size",
    "strides",
    "feature_map",
    "params",
    "macs",
    "train_accuracy",
    "test_accuracy",
    "gap",
    "consistency",
    "consistency_1px",
    "epoch_seconds",
    "threads",
)


@dataclass(frozen=True)
class Variant:
    """One downsampling choice: ``kind`` in :data:`poolkit.lab.models.DOWNSAMPLING_KINDS`;
    ``pool_size`` is the window (the conv kernel for ``conv``; None for a pooling kind that is
    not windowed), ``strides`` the stride; both None for ``none``."""

    kind: str
    pool_size: int | None = None
    strides: int | None = None

    @property
    def name(self) -> str:
        if self.strides is None:
            return self.kind
        size = "" if self.pool_size is None else self.pool_size
        return f"{self.kind} {size}/{self.strides}"


def sweep_variants(pool_sizes: Iterable[int] = (2,), strides: Iterable[int | None] = (None,),
                   kinds: Iterable[str] | None = None, conv_kernel: int = 3) -> list[Variant]:
    """The variants of a sweep: ``none`` once; each pooling kind whose layer takes a window
    for every (pool size, stride) (stride None = pool size; duplicates once); ``conv`` and each
    pooling kind whose layer takes only ``strides``, once per distinct stride > 1 (``conv``
    with a ``conv_kernel`` x ``conv_kernel`` kernel); a pooling kind whose layer takes neither
    (global pooling) once. Order: none, the pooling kinds in :data:`poolkit.kinds.POOL_KINDS`
    order, conv. ``kinds`` None: :data:`poolkit.lab.models.SWEEP_KINDS` (none, max, avg, the
    anti-aliased kinds, conv); any kind of :data:`DOWNSAMPLING_KINDS` may be given."""
    if kinds is None:
        kinds = SWEEP_KINDS
    kinds = list(kinds)
    for k in kinds:
        if k not in DOWNSAMPLING_KINDS:
            raise InvalidValue(f"kinds must be among {DOWNSAMPLING_KINDS}, got {k!r}")
    pairs = []
    for k in pool_sizes:
        for s in strides:
            if not isinstance(k, int) or k < 1 or (s is not None and (not isinstance(s, int)
                                                                     or s < 1)):
                raise InvalidValue(
                    f"pool sizes and strides must be positive ints, got {k!r}/{s!r}")
            pair = (k, k if s is None else s)
            if pair not in pairs:
                pairs.append(pair)
    strided = sorted({s for _, s in pairs if s > 1})
    out = [Variant("none")] if "none" in kinds else []
    for kind in POOL_KINDS:
        if kind not in kinds:
            continue
        if layer_takes(kind, "pool_size") or get_kind(kind).family == "adaptive":
            # an adaptive kind pools to the grid the window and stride would give
            out += [Variant(kind, k, s) for k, s in pairs]
        elif layer_takes(kind, "strides"):
            out += [Variant(kind, None, s) for s in strided]
        else:
            out.append(Variant(kind))
    if "conv" in kinds:
        out += [Variant("conv", conv_kernel, s) for s in strided]
    if not out:
        raise InvalidValue(f"no variant to run: kinds {kinds} with strides "
                           f"{sorted({s for _, s in pairs})} (conv and the stride-only kinds "
                           f"need a stride > 1)")
    return out


def build_model(variant: Variant, input_shape: Sequence[int] = (28, 28, 1), filters: int = 32,
                classes: int = 10):
    """The compiled model of ``variant`` (Adam 1e-3, sparse categorical cross-entropy,
    accuracy; see :func:`poolkit.lab.models.downsampling_model`); weights drawn from
    poolkit's generator, so call ``keras.utils.set_random_seed`` first for a reproducible
    model."""
    model = downsampling_model(variant.kind, variant.pool_size, variant.strides,
                               input_shape=input_shape, filters=filters, classes=classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _feature_map(model) -> str:
    """Shape of the activation that Flatten receives, e.g. '13x13x32'."""
    rows = model.layer_table()
    for prev, row in zip(rows, rows[1:], strict=False):
        if row["type"] == "Flatten":
            return "x".join(str(v) for v in prev["output_shape"][1:])
    return "-"


def train_variant(variant: Variant, data, epochs: int = 1, batch_size: int = 32, seed: int = 0,
                  consistency_images: int = 1000, verbose: int = 0) -> dict:
    """Train ``variant`` on ``data`` = ((x, y), (x_test, y_test)) and measure it.

    Returns the non-key columns of :data:`SWEEP_COLUMNS`: ``train_accuracy`` and
    ``test_accuracy`` (``model.evaluate`` after training, so the gap is not blurred by the
    running average during the epoch), ``gap`` = train - test, ``params``, ``macs``
    (multiply-adds per sample), ``epoch_seconds`` (median wall time of one epoch of ``fit``,
    after a warm-up fit on two examples so JIT compilation is not counted), ``feature_map``
    (the map entering Flatten), ``consistency`` (:func:`shift_consistency` on the first
    ``consistency_images`` test images, seed ``seed``: zero-pad 4, i.e. 28x28 crops of 36x36,
    shifts of up to 4 px) and ``consistency_1px`` (the same with pad 1: shifts of up to 1 px).
    """
    from .. import keras

    (x, y), (xt, yt) = data
    # Warm-up: compile this variant's kernels on two examples so epoch_seconds is training time,
    # not Numba compilation (which happens once per process and kernel signature).
    warm = build_model(variant, x.shape[1:])
    warm.fit(x[:2], y[:2], batch_size=2, epochs=1, verbose=0)
    warm.predict(xt[:2], verbose=0)
    keras.utils.set_random_seed(seed)
    model = build_model(variant, x.shape[1:])
    times = []
    for e in range(epochs):  # one fit call per epoch, to take the median epoch time
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=batch_size, epochs=e + 1, initial_epoch=e, verbose=verbose)
        times.append(time.perf_counter() - t0)
    train_acc = float(model.evaluate(x, y, batch_size=256, verbose=0)[1])
    test_acc = float(model.evaluate(xt, yt, batch_size=256, verbose=0)[1])
    n = min(consistency_images, len(xt))
    def predict(a):
        return model.predict(a, batch_size=256, verbose=0)

    cons = shift_consistency(predict, xt[:n], pad=4, seed=seed)
    cons1 = shift_consistency(predict, xt[:n], pad=1, seed=seed)
    return {
        "kind": variant.kind,
        "pool_size": variant.pool_size,
        "strides": variant.strides,
        "feature_map": _feature_map(model),
        "params": model.count_params(),
        "macs": sum(r["macs"] for r in model.layer_table()),
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "gap": train_acc - test_acc,
        "consistency": cons,
        "consistency_1px": cons1,
        "epoch_seconds": float(np.median(times)),
    }


def read_results(path: str | os.PathLike) -> list[dict]:
    """Rows of a sweep CSV as dicts of strings ([] if the file does not exist). A file whose
    header is not :data:`SWEEP_COLUMNS` raises ValueError rather than being mixed with."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.DictReader(f)  # not UTF-8 (a PNG, say): its header will not match
        if reader.fieldnames is None:
            return []
        if tuple(reader.fieldnames) != SWEEP_COLUMNS:
            raise InvalidValue(
                f"{path!r} is not a poolkit sweep CSV: columns {reader.fieldnames}, expected "
                f"{list(SWEEP_COLUMNS)}; pass another --csv path or --fresh to replace it"
            )
        return [row for row in reader if all(row.get(c) is not None for c in SWEEP_COLUMNS)]


def _write_atomic(path: str, rows: list[dict]) -> None:
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=SWEEP_COLUMNS)
    w.writeheader()
    for row in rows:
        w.writerow({c: _csv_value(row.get(c)) for c in SWEEP_COLUMNS})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, text.getvalue())


_INT_COLUMNS = ("epochs", "limit", "batch_size", "seed", "pool_size", "strides", "params", "macs",
                "threads")
_FLOAT_COLUMNS = ("train_accuracy", "test_accuracy", "gap", "consistency", "consistency_1px",
                  "epoch_seconds")


def typed(row: dict) -> dict:
    """A CSV row (strings) with numbers as int/float and empty cells as None."""
    out = dict(row)
    for c in _INT_COLUMNS + _FLOAT_COLUMNS:
        v = row.get(c)
        if v in (None, ""):
            out[c] = None
        else:
            out[c] = int(v) if c in _INT_COLUMNS else float(v)
    return out


def _csv_value(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


def _key(row: dict) -> tuple[str, ...]:
    return tuple(str(_csv_value(row.get(c))) for c in KEY_COLUMNS)


def run_sweep(
    variants: Sequence[Variant],
    csv_path: str | os.PathLike,
    dataset: str = "mnist-sample",
    epochs: int = 1,
    limit: int | None = None,
    batch_size: int = 32,
    seed: int = 0,
    resume: bool = True,
    consistency_images: int = 1000,
    data=None,
    train_fn: Callable[..., dict] = train_variant,
    log: Callable[[str], None] | None = None,
    verbose: int = 0,
    threads="auto",
) -> list[dict]:
    """Train and measure every variant, writing the CSV after each one; returns this sweep's rows
    (one per variant, in order, as dicts of strings as read back from the CSV).

    ``limit`` trains on the first ``limit`` training examples (None = all); the test set is
    always whole. With ``resume`` a variant whose key (variant, dataset, epochs, limit,
    batch_size, seed) is already in the CSV is not retrained; without it the CSV is replaced.
    ``data`` overrides loading ``dataset`` (same format as :func:`load_dataset`); ``train_fn``
    (same signature as :func:`train_variant`) and ``log`` (default: print to stderr) are hooks.
    ``threads``: threads for the whole sweep (chosen once, so every variant gets the same;
    "auto" = :func:`poolkit.lab.threads.pick_threads`: 1 on a busy machine), kept in the CSV.
    """
    n_threads = pick_threads(threads)
    with using_threads(n_threads):
        return _run(variants, csv_path, dataset, epochs, limit, batch_size, seed, resume,
                    consistency_images, data, train_fn, log, verbose, n_threads)


def _run(variants, csv_path, dataset, epochs, limit, batch_size, seed, resume,
         consistency_images, data, train_fn, log, verbose, n_threads) -> list[dict]:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise InvalidValue(f"epochs must be a positive int, got {epochs!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise InvalidValue(f"limit must be a positive int or None, got {limit!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidValue(f"batch_size must be a positive int, got {batch_size!r}")
    if dataset not in DATASETS:
        raise InvalidValue(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if log is None:
        def log(msg: str) -> None:
            print(msg, file=sys.stderr, flush=True)
    path = os.fspath(csv_path)
    done = read_results(path) if resume else []
    if not resume or not os.path.exists(path):
        _write_atomic(path, done)  # fail early on an unwritable path, not after training
    by_key = {_key(r): r for r in done}
    if data is None:
        data = load_dataset(dataset)
    (x, y), test = data
    if limit is not None:
        x, y = x[:limit], y[:limit]
    results = []
    for i, v in enumerate(variants, start=1):
        base = {"variant": v.name, "dataset": dataset, "epochs": epochs, "limit": limit or "",
                "batch_size": batch_size, "seed": seed}
        key = _key(base)
        if key in by_key:
            log(f"[{i}/{len(variants)}] {v.name}: already in {path}, skipped")
            results.append(by_key[key])
            continue
        log(f"[{i}/{len(variants)}] {v.name}: training {epochs} epoch(s) on {len(x)} examples")
        t0 = time.perf_counter()
        row = {**base, **train_fn(v, ((x, y), test), epochs=epochs, batch_size=batch_size,
                                  seed=seed, consistency_images=consistency_images,
                                  verbose=verbose), "threads": n_threads}
        done.append(row)
        by_key[key] = row
        _write_atomic(path, done)
        stored = {c: str(_csv_value(row.get(c))) for c in SWEEP_COLUMNS}
        results.append(stored)
        log(f"[{i}/{len(variants)}] {v.name}: test {row['test_accuracy']:.4f}, train "
            f"{row['train_accuracy']:.4f}, consistency {row['consistency']:.3f} (4 px), "
            f"{row['consistency_1px']:.3f} (1 px), "
            f"{row['epoch_seconds']:.1f} s/epoch ({time.perf_counter() - t0:.0f} s in all)")
    return results
