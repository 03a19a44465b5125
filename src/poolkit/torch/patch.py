"""``patch(model)``: swap a model's torch.nn pooling modules for their poolkit twins, in place.

A module is patched by changing its class to the twin (a subclass of its own class that only
replaces ``forward``), so the module object, its attributes, hooks, ``training`` flag and every
reference to it stay as they were; ``unpatch`` changes the class back. Only modules whose class
is exactly a torch.nn class poolkit twins are touched (a user's subclass may have its own
``forward``); everything else stays torch's.
"""

from __future__ import annotations

import torch

from .nn import TWINS

__all__ = ["patch", "unpatch"]

_UNTWIN = {twin: base for base, twin in TWINS.items()}


def _swap(model: torch.nn.Module, table: dict, what: str) -> list[str]:
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{what}: model must be a torch.nn.Module, got {type(model).__name__}")
    names = []
    for name, module in model.named_modules(remove_duplicate=True):
        cls = table.get(type(module))
        if cls is not None:
            module.__class__ = cls
            names.append(name)
    return names


def patch(model: torch.nn.Module) -> list[str]:
    """Make every torch.nn pooling module of ``model`` that poolkit computes run on poolkit,
    in place: MaxPool, AvgPool, AdaptiveMaxPool, AdaptiveAvgPool, LPPool and MaxUnpool 1d/2d/3d,
    FractionalMaxPool2d/3d (:data:`poolkit.torch.nn.TWINS`). Returns their names (as in
    ``model.named_modules()``, ``""`` for ``model`` itself). Outputs, gradients, ``repr`` and
    ``state_dict`` stay the same, except that LPPool follows poolkit's rule on negative input
    (torch gives NaN there). :func:`unpatch` undoes it."""
    return _swap(model, TWINS, "patch")


def unpatch(model: torch.nn.Module) -> list[str]:
    """Undo :func:`patch`: give every poolkit twin in ``model`` its torch.nn class back; return
    their names."""
    return _swap(model, _UNTWIN, "unpatch")
