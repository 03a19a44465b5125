"""poolkit: pooling layers for convolutional networks, exact and fast, on NumPy arrays.

Top level: Keras/TensorFlow-convention ops (``max_pool``, ``average_pool``, ``output_shape`` and
their backward passes). ``poolkit.functional``: PyTorch conventions. ``poolkit.keras``: the
layers and models of the tutorial's CNN. ``poolkit.lab``: shape tables, figures, sweeps and
invariance metrics.
"""

from .ops import average_pool, average_pool_backward, max_pool, max_pool_backward, output_shape

__version__ = "0.1.0"

__all__ = [
    "max_pool",
    "average_pool",
    "max_pool_backward",
    "average_pool_backward",
    "output_shape",
    "__version__",
]
