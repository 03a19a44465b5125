"""The datasets poolkit trains on, by name: the one list the command line, the demo and the lab
read (``--dataset`` choices, sweeps, benchmarks)."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidType, InvalidValue

__all__ = ["DATASETS", "load_dataset", "load_raw"]

#: Names accepted by :func:`load_dataset`, the embedded (offline) sample first.
DATASETS: tuple[str, ...] = ("mnist-sample", "mnist", "fashion-mnist")


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise InvalidType(f"dataset must be a string, one of {DATASETS}, got "
                          f"{type(name).__name__} {name!r}")
    if name not in DATASETS:
        raise InvalidValue(f"dataset must be one of {DATASETS}, got {name!r}")
    return name


def load_raw(name: str):
    """``((x_train, y_train), (x_test, y_test))`` of dataset ``name`` as stored: uint8 images
    (n, 28, 28) and uint8 labels (n,).

    ``"mnist-sample"``: the embedded 8,000/2,000 split of the MNIST test set (no network);
    ``"mnist"`` and ``"fashion-mnist"``: 60,000/10,000, from the cache, the system directory or
    a download (:func:`poolkit.data.remote.load`; offline with neither, it raises
    :class:`poolkit.data.DatasetUnavailableError` saying what to do).
    """
    from . import remote, sample

    name = _check_name(name)
    if name == "mnist-sample":
        return sample.load_mnist_sample()
    return remote.load(remote.MNIST if name == "mnist" else remote.FASHION_MNIST)


def load_dataset(name: str = "mnist-sample"):
    """``((x_train, y_train), (x_test, y_test))`` ready for the tutorial's model: x float32
    (n, 28, 28, 1) scaled to [0, 1] (pixel / 255), y int64 (n,) class indices 0-9.

    ``name`` is one of :data:`DATASETS` (see :func:`load_raw` for where each comes from).
    """
    (xtr, ytr), (xte, yte) = load_raw(name)

    def prep(x):
        return (x.astype(np.float32) / np.float32(255.0))[..., None]

    return (prep(xtr), ytr.astype(np.int64)), (prep(xte), yte.astype(np.int64))
