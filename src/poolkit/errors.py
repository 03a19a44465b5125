"""The exceptions poolkit raises for what a user passed.

Every check of an argument, an array or a file raises one of these. They subclass ValueError
and TypeError, so ``except ValueError`` keeps working; the command line reports them as
``error: ...`` with exit status 2, while any other exception is a bug in poolkit and keeps its
traceback.
"""

from __future__ import annotations

__all__ = ["UserError", "InvalidValue", "InvalidType", "SizeOutOfRange"]


class UserError(Exception):
    """Base of the errors caused by the caller's input (not by a bug in poolkit)."""


class InvalidValue(UserError, ValueError):
    """An argument, array or file has a value poolkit cannot accept; the message names it,
    the value received and the rule it broke."""


class InvalidType(UserError, TypeError):
    """An argument or array has a type poolkit cannot accept."""


class SizeOutOfRange(InvalidValue):
    """A size argument beyond 2**31 - 1 in absolute value, or a dilated window spanning more
    cells: more than any tensor dim a pooling window can meet, and beyond what keeps index
    arithmetic (poolkit's int64, torch's int32 in places) from overflowing."""
