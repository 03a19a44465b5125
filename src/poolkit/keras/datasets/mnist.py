"""MNIST, 60,000 training and 10,000 test digits (downloaded once, then cached)."""

from __future__ import annotations

import os

import numpy as np

from ...data import remote


def load_data(
    path: str | os.PathLike | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``((x_train, y_train), (x_test, y_test))``: uint8 (60000, 28, 28), (60000,),
    (10000, 28, 28), (10000,).

    ``path``: a directory holding (or to receive) the four IDX files; default
    ``$POOLKIT_DATA/mnist`` (``~/.cache/poolkit/mnist``). Unlike Keras's ``path`` (a file
    name for mnist.npz), this is a directory. Offline with nothing cached it raises
    ``poolkit.data.DatasetUnavailableError`` saying where to put the files; the embedded
    ``mnist_sample`` needs no network.
    """
    return remote.load(remote.MNIST, path)
