"""poolkit: pooling layers for convolutional networks, exact and fast, on NumPy arrays.

Top level: Keras/TensorFlow-convention ops (``max_pool``, ``average_pool``, ``min_pool``,
``lp_pool``, ``global_*_pool``, ``adaptive_*_pool``, ``blur_pool``, ``max_blur_pool``,
``aps_pool``, each with ``*_backward``, and ``output_shape``). ``poolkit.functional``: PyTorch
conventions. ``poolkit.keras``: the layers and models of the tutorial's CNN. ``poolkit.lab``:
shape tables, figures, sweeps and invariance metrics.

Importing poolkit is light: the ops (and NumPy, Numba) load on first use.
"""

__version__ = "0.1.0"

_OPS = (
    "max_pool", "average_pool", "min_pool", "lp_pool",
    "global_max_pool", "global_average_pool", "adaptive_max_pool", "adaptive_average_pool",
    "blur_pool", "max_blur_pool", "aps_pool",
)
__all__ = [*_OPS, *(f"{name}_backward" for name in _OPS), "output_shape", "__version__"]


def __getattr__(name: str):
    if name in __all__:
        from . import ops

        value = getattr(ops, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'poolkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
