"""Data: the IDX reader/writer, the embedded MNIST sample, offline-first dataset loading, and
the datasets poolkit trains on by name (:data:`DATASETS`, :func:`load_dataset`)."""

from .datasets import DATASETS, load_dataset, load_raw
from .idx import read_idx, write_idx
from .remote import (
    FASHION_MNIST,
    MNIST,
    ChecksumMismatchError,
    DatasetUnavailableError,
)
from .sample import load_mnist_sample

__all__ = [
    "DATASETS",
    "load_dataset",
    "load_raw",
    "read_idx",
    "write_idx",
    "load_mnist_sample",
    "MNIST",
    "FASHION_MNIST",
    "DatasetUnavailableError",
    "ChecksumMismatchError",
]
