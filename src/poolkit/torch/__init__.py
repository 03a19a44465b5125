"""poolkit inside PyTorch (``pip install "poolkit[torch]"``): drop-in pooling for torch models
on CPU.

- ``poolkit.torch.patch(model)``: the one-line swap; every torch.nn pooling module poolkit
  computes now runs on poolkit (``unpatch`` undoes it);
- :mod:`poolkit.torch.functional`: torch.nn.functional's pooling functions;
- :mod:`poolkit.torch.nn`: torch.nn's pooling modules;
- :mod:`poolkit.torch.ops`: the op table, the ``torch.ops.poolkit`` custom ops (for
  ``torch.compile``), and :data:`~poolkit.torch.ops.FALLBACKS`, what went to torch and why.
"""

from __future__ import annotations

from . import functional, nn, ops
from .ops import FALLBACKS
from .patch import patch, unpatch

__all__ = ["patch", "unpatch", "functional", "nn", "ops", "FALLBACKS"]
