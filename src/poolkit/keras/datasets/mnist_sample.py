"""A fixed 8,000/2,000 split of the real MNIST test set, shipped inside poolkit (no network)."""

from __future__ import annotations

import numpy as np

from ...data.sample import load_mnist_sample


def load_data() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``((x_train, y_train), (x_test, y_test))``: uint8 (8000, 28, 28), (8000,),
    (2000, 28, 28), (2000,).

    Test = MNIST test digits 4000-4999 and 9000-9999, train = the other 8,000 (the same
    every time; see ``poolkit.data.sample.split_indices``). MNIST: Yann LeCun, Corinna Cortes
    and Christopher J.C. Burges, CC BY-SA 3.0.
    """
    return load_mnist_sample()
