"""The pooling lab: see and measure what pooling does.

- :mod:`.shapes_table`: output shapes under Keras and PyTorch rules, and per-layer model
  arithmetic (``poolkit shapes``);
- :mod:`.figures`: feature maps before and after pooling (``poolkit show``);
- :mod:`.sweep`: train no/max/avg pooling and strided-conv variants and compare
  (``poolkit sweep``);
- :mod:`.invariance`: shift consistency, shift equivariance error, max-pool gradient fraction.

Each returns data (lists of dicts, arrays, matplotlib Figures); the commands only print or save.
"""

from .invariance import (
    layer_equivariance,
    max_pool_gradient_fraction,
    shift_consistency,
    shift_equivariance_error,
)
from .shapes_table import model_shape_table, pool_shape_table
from .sweep import run_sweep, sweep_variants

__all__ = [
    "pool_shape_table",
    "model_shape_table",
    "shift_consistency",
    "shift_equivariance_error",
    "layer_equivariance",
    "max_pool_gradient_fraction",
    "sweep_variants",
    "run_sweep",
]
