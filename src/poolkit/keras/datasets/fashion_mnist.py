"""Fashion-MNIST (Zalando), 60,000 training and 10,000 test images of 10 clothing classes."""

from __future__ import annotations

import numpy as np

from ...data import remote


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``((x_train, y_train), (x_test, y_test))``: uint8 (60000, 28, 28), (60000,),
    (10000, 28, 28), (10000,).

    Looks in ``$POOLKIT_DATA/fashion-mnist`` (``~/.cache/poolkit/fashion-mnist``), then in
    /usr/share/datasets/fashion-mnist (``apt-get install dataset-fashion-mnist``), then
    downloads the official files. Offline with neither, it raises
    ``poolkit.data.DatasetUnavailableError`` saying what to install or where to put the files.
    """
    return remote.load(remote.FASHION_MNIST)
