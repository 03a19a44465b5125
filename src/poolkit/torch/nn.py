"""torch.nn's pooling modules computed by poolkit, and poolkit's own pooling modules.

A twin (``MaxPool2d``, ``AdaptiveAvgPool2d``, ``LPPool2d``, ``FractionalMaxPool2d``,
``MaxUnpool2d``, ...) subclasses its torch.nn class and only replaces ``forward`` by the
:mod:`poolkit.torch.functional` call torch's own forward makes, so the class name, constructor
signature, attributes, ``repr``, ``state_dict`` and ``isinstance`` checks are torch's.
poolkit's own modules (``BlurPool1d/2d``, ``MaxBlurPool2d``, ``MinPool1d/2d/3d``,
``APSPool2d``) take the arguments of their functional op, with its defaults.

Both kinds are made from :data:`poolkit.torch.ops.OPS`.
"""

from __future__ import annotations

import inspect

import torch

from . import functional as _F
from .ops import OPS

__all__ = ["TWINS"]

#: torch.nn class -> its poolkit twin.
TWINS: dict[type, type] = {}


def _attribute_forward(fn, names):
    def forward(self, input):
        return fn(input, *[getattr(self, n) for n in names])
    return forward


def _twin(op, fn) -> type:
    base = op.module
    names = op.names + (("return_indices",) if op.indices else ())
    if op.name.startswith("fractional"):  # torch's order: return_indices before the samples
        names = ("kernel_size", "output_size", "output_ratio", "return_indices",
                 "_random_samples")
    forward = op.module_forward(fn) if op.module_forward else _attribute_forward(fn, names)
    doc = (f"torch.nn.{base.__name__} computed by poolkit (poolkit.torch.functional."
           f"{op.name}); everything else is torch's.")
    return type(base.__name__, (base,), {"forward": forward, "__module__": __name__,
                                         "__qualname__": base.__name__, "__doc__": doc})


def _own(op, fn) -> type:
    params = list(inspect.signature(fn).parameters.values())[1:]  # after input
    names = tuple(p.name for p in params)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    init_sig = inspect.Signature([self_param, *params])

    def __init__(self, *args, **kwargs):
        torch.nn.Module.__init__(self)
        bound = init_sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for n in names:
            setattr(self, n, bound.arguments[n])

    __init__.__signature__ = init_sig

    def extra_repr(self):
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in names)

    doc = (f"poolkit's {op.name} as a module: ``{op.module_name}({', '.join(map(str, params))})``"
           f"; ``forward(input)`` is ``poolkit.torch.functional.{op.name}(input, ...)``.")
    return type(op.module_name, (torch.nn.Module,), {
        "__init__": __init__, "forward": _attribute_forward(fn, names),
        "extra_repr": extra_repr, "__module__": __name__, "__qualname__": op.module_name,
        "__doc__": doc,
    })


for _op in OPS.values():
    _fn = getattr(_F, _op.name)
    if _op.module is not None:
        _cls = _twin(_op, _fn)
        TWINS[_op.module] = _cls
    elif _op.module_name is not None:
        _cls = _own(_op, _fn)
    else:
        continue
    globals()[_cls.__name__] = _cls
    __all__.append(_cls.__name__)
