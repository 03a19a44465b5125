"""The embedded sample: the real MNIST test set (10,000 digits), shipped inside the package.

MNIST is by Yann LeCun, Corinna Cortes and Christopher J.C. Burges, CC BY-SA 3.0 (see
MNIST-CREDIT.md next to this file).
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

import numpy as np

from ..errors import InvalidValue
from .idx import read_idx

__all__ = ["load_mnist_sample", "SAMPLE_FILES", "split_indices"]

# Published md5 sums of the official MNIST test-set files.
SAMPLE_FILES = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def split_indices(n: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Fixed train/test indices into the MNIST test set: the last 1,000 of each half are test.

    The first 5,000 MNIST test digits (from NIST's SD-3) are cleaner than the last 5,000
    (SD-1); taking the test split from both halves keeps that mix, and contiguous blocks keep
    almost every writer on one side of the split. For n=10,000: train = 0-3999 and 5000-8999
    (8,000 digits), test = 4000-4999 and 9000-9999 (2,000 digits).
    """
    half = n // 2
    k = n // 10  # per half
    idx = np.arange(n)
    is_test = (idx % half >= half - k) & (idx < 2 * half)
    return idx[~is_test], idx[is_test]


@functools.lru_cache(maxsize=1)
def _load_verified() -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for fname, md5 in SAMPLE_FILES.items():
        ref = resources.files(__package__).joinpath(fname)
        with resources.as_file(ref) as path:
            digest = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
            if digest != md5:
                raise InvalidValue(
                    f"{path}: embedded MNIST file is corrupt: md5 {digest}, expected {md5}; "
                    "reinstall poolkit"
                )
            arrays.append(read_idx(path, ndim=3 if "images" in fname else 1))
    x, y = arrays
    x.flags.writeable = y.flags.writeable = False  # the cached copy is shared
    return x, y


def load_mnist_sample() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``((x_train, y_train), (x_test, y_test))``: 8,000 / 2,000 real MNIST digits.

    x: uint8 (n, 28, 28), y: uint8 (n,) in 0-9. The split is fixed (see ``split_indices``).
    The files' md5 sums are checked on the first call in a process; a mismatch raises
    ValueError. Each call returns fresh writable arrays.
    """
    x, y = _load_verified()
    train, test = split_indices(len(y))
    return (x[train], y[train]), (x[test], y[test])
