"""torch.nn's pooling modules, computed by poolkit.

Each class here subclasses its torch.nn twin and only replaces ``forward`` (by the
:mod:`poolkit.torch.functional` call torch's own forward makes), so the class name, constructor
signature, attributes, ``repr``, ``state_dict`` and ``isinstance`` checks are torch's. The
classes are made from :data:`poolkit.torch.ops.OPS`: an op with a ``torch_module`` gets a twin.
"""

from __future__ import annotations

from . import functional as _F
from .ops import OPS

__all__ = ["TWINS"]

#: torch.nn class -> its poolkit twin.
TWINS: dict[type, type] = {}


def _twin(op) -> type:
    base = op.torch_module
    fn = getattr(_F, op.name)
    names = tuple(p.name for p in op.params) + (("return_indices",) if op.indices else ())

    def forward(self, input):
        return fn(input, *[getattr(self, n) for n in names])

    doc = (f"torch.nn.{base.__name__} computed by poolkit (poolkit.torch.functional."
           f"{op.name}); everything else is torch's.")
    return type(base.__name__, (base,), {"forward": forward, "__module__": __name__,
                                         "__qualname__": base.__name__, "__doc__": doc})


for _op in OPS.values():
    if _op.torch_module is not None:
        _cls = _twin(_op)
        TWINS[_op.torch_module] = _cls
        globals()[_cls.__name__] = _cls
        __all__.append(_cls.__name__)
