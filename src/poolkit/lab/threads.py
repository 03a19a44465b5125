"""How many threads training uses: picked once per run, restored afterwards.

Results do not depend on the choice (the kernels reduce in a fixed order); only the speed
does. poolkit's threads are :mod:`poolkit._threads`' (no Numba threading layer).
"""

from __future__ import annotations

import contextlib
import numbers
import os

from .._threads import get_num_threads, max_threads, set_num_threads
from ..errors import InvalidType, InvalidValue

__all__ = ["pick_threads", "using_threads"]


def pick_threads(threads="auto") -> int:
    """Threads for training. ``"auto"``: poolkit's default (:func:`poolkit._threads.
    get_num_threads`), but 1 when the machine is already busy (1-minute load average >=
    cores - 0.5): with batch-32 steps of ~1 ms, a parallel step waits for its slowest thread,
    and a thread descheduled by another process costs a whole time slice (measured: 16 ms per
    kernel call instead of 2 ms). An int n >= 1 gives min(n, the CPUs this process may use).
    """
    if threads == "auto":
        cores = max_threads()
        busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= cores - 0.5
        return 1 if busy else get_num_threads()
    if not isinstance(threads, numbers.Integral) or isinstance(threads, bool):
        raise InvalidType(f"threads must be 'auto' or an int, got {type(threads).__name__} "
                          f"{threads!r}")
    if threads < 1:
        raise InvalidValue(f"threads must be 'auto' or >= 1, got {threads}")
    return min(int(threads), max_threads())


@contextlib.contextmanager
def using_threads(n: int):
    """Run the block with ``n`` threads for poolkit's kernels, then restore the old count."""
    old = get_num_threads()
    set_num_threads(n)
    try:
        yield n
    finally:
        set_num_threads(old)
