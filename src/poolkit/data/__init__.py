"""Data: the IDX reader/writer, the embedded MNIST sample and offline-first dataset loading."""

from .idx import read_idx, write_idx
from .remote import (
    FASHION_MNIST,
    MNIST,
    ChecksumMismatchError,
    DatasetUnavailableError,
)
from .sample import load_mnist_sample

__all__ = [
    "read_idx",
    "write_idx",
    "load_mnist_sample",
    "MNIST",
    "FASHION_MNIST",
    "DatasetUnavailableError",
    "ChecksumMismatchError",
]
