"""The fuzz targets, one module per part of the API; importing a module registers its targets.
:func:`load_all` imports them all (a worker imports only the module of the case it runs)."""

from __future__ import annotations

import importlib

MODULES = ("numpy_ops", "engine_api", "keras_api", "saving", "data", "cli", "torch_api",
           "explore", "selftest")


def load_all() -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
