"""Argument checks at poolkit's edges.

:func:`caller_arguments` marks a block that only validates what the caller passed (e.g.
``poolkit.shapes.normalize_tuple(pool_size, ...)``): a plain ValueError or TypeError raised in
it is the caller's error and becomes InvalidValue / InvalidType (message unchanged), so the
command line reports it as bad input instead of a bug. Errors that already are
:class:`poolkit.errors.UserError` pass through untouched. Never wrap computation in it: a
ValueError from a kernel is a bug and must keep its traceback.
"""

from __future__ import annotations

import contextlib

from .errors import InvalidType, InvalidValue, UserError

__all__ = ["caller_arguments"]


@contextlib.contextmanager
def caller_arguments():
    try:
        yield
    except UserError:
        raise
    except TypeError as e:
        raise InvalidType(str(e)) from None
    except ValueError as e:
        raise InvalidValue(str(e)) from None
