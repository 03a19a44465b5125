"""Datasets as in ``keras.datasets``: each submodule has ``load_data()``."""

from . import fashion_mnist, mnist, mnist_sample

__all__ = ["mnist", "fashion_mnist", "mnist_sample"]
