"""torch.nn.functional's pooling functions, and poolkit's own, on torch tensors, computed by
poolkit: same names, argument order, defaults and results (values, indices, gradients, dtype,
memory layout) as torch's, poolkit's semantics where poolkit and torch differ (LP pooling of
negative input, duplicate max-unpool indices: see :mod:`poolkit.functional`).

Every function runs through :func:`poolkit.torch.ops.call`: poolkit's kernels on CPU tensors
of the dtypes it computes; a torch implementation of the same semantics for everything else
(other devices and dtypes, ``torch.func`` transforms, forward-mode AD, arguments poolkit's
checks reject); a registered custom op (``torch.ops.poolkit.*``) under ``torch.compile``.

The functions are made from :data:`poolkit.torch.ops.OPS`, each with the signature of its
:mod:`poolkit.functional` namesake (which is torch's for torch's functions).
"""

from __future__ import annotations

import inspect

from .. import functional as _pf
from .ops import OPS, call

__all__: list[str] = []

_TEMPLATE = """
def {name}({signature}):
    return _call(_op, input, ({args},){indices})
"""


def _make(op):
    """A function with the signature of ``poolkit.functional.<name>`` (less its extensions
    beyond torch's arguments, e.g. avg_pool1d's divisor_override) calling ``call``."""
    keep = {"input", *op.names} | ({"return_indices"} if op.indices else set())
    params = [p for p in inspect.signature(getattr(_pf, op.name)).parameters.values()
              if p.name in keep]
    assert len(params) == len(keep), op.name
    defaults = {f"_d{i}": p.default for i, p in enumerate(params)
                if p.default is not inspect.Parameter.empty}
    text = ", ".join(p.name if p.default is inspect.Parameter.empty else f"{p.name}=_d{i}"
                     for i, p in enumerate(params))
    ns = {"_call": call, "_op": op, **defaults}
    exec(_TEMPLATE.format(name=op.name, signature=text, args=", ".join(op.names),
                          indices=", return_indices" if op.indices else ""), ns)
    fn = ns[op.name]
    fn.__module__ = __name__
    fn.__doc__ = (f"``{op.name}`` on torch tensors, computed by poolkit (see the module "
                  f"docstring).\n\n    " + (getattr(_pf, op.name).__doc__ or "").strip())
    return fn


for _op in OPS.values():
    globals()[_op.name] = _make(_op)
    __all__.append(_op.name)
