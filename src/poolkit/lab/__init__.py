"""The pooling lab: see and measure what pooling does.

- :mod:`.shapes_table`: output shapes under Keras and PyTorch rules, and per-layer model
  arithmetic (``poolkit shapes``);
- :mod:`.figures`: feature maps before and after pooling (``poolkit show``, the demo's figure)
  and sweep charts;
- :mod:`.sweep`: train no/pooling/strided-conv variants and compare (``poolkit sweep``);
- :mod:`.invariance`: shift consistency, shift equivariance error, max-pool gradient fraction;
- :mod:`.models`: the tutorial's model and its variants, pooling layers by kind name;
- :mod:`.threads`: how many threads training uses.

Each returns data (lists of dicts, arrays, matplotlib Figures); the commands only print or save.
Submodules load on first use, so ``import poolkit.lab.models`` stays light.
"""

import importlib

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

_HOMES = {
    "pool_shape_table": "shapes_table",
    "model_shape_table": "shapes_table",
    "shift_consistency": "invariance",
    "shift_equivariance_error": "invariance",
    "layer_equivariance": "invariance",
    "max_pool_gradient_fraction": "invariance",
    "sweep_variants": "sweep",
    "run_sweep": "sweep",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(__all__))
