"""Large output arrays, reused once nothing refers to them.

A fresh array of tens of megabytes is new memory to the operating system: the first write to
each page faults, and the kernel zeroes the page before poolkit writes it. On the 2-core VM
poolkit is measured on, writing a fresh 51 MB array costs 4.5 ms against 1.9 ms for one that
was written before (with NumPy's transparent huge pages; 15 ms with 4 KiB pages), and glibc
returns every allocation over 32 MB to the OS when it is freed. So an op that writes a large
output (max-unpooling, every input gradient) spent most of its time in page faults.

:func:`empty` therefore keeps the large arrays it hands out (from ``MIN_BYTES``) and hands one
out again when nothing refers to it any more: the caller's array is a view of a buffer held
here, so while the caller, or any view, slice, memoryview or torch tensor made from it, is
alive, the buffer's reference count says so (NumPy's views refer to the array that owns the
memory) and the buffer is not reused. The check and the claim happen under one lock. Idle
buffers are kept up to ``POOLKIT_BUFFER_CACHE_MB`` megabytes in all (default 256; 0 turns the
cache off), the least recently used dropped first; :func:`clear` drops every idle buffer.
"""

from __future__ import annotations

import math
import os
import sys
import threading

import numpy as np

__all__ = ["empty", "clear", "idle_bytes", "set_cache_bytes"]

MIN_BYTES = 1 << 22  # below this, malloc reuses freed memory itself
MAX_BUFFERS = 32  # buffers tracked at once (busy ones beyond it are forgotten, not freed)


def _cap_from_env() -> int:
    env = os.environ.get("POOLKIT_BUFFER_CACHE_MB")
    if env is None:
        return 256 << 20
    try:
        mb = float(env)
    except ValueError:
        return 256 << 20
    return max(0, int(mb * (1 << 20)))


_cap = _cap_from_env()
_lock = threading.Lock()
_pool: list[np.ndarray] = []  # uint8 buffers, most recently handed out last


def _idle(i: int) -> bool:
    """Whether nothing but the pool refers to buffer ``i``: its references are then the
    pool's list and getrefcount's argument."""
    return sys.getrefcount(_pool[i]) == 2


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def empty(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, like ``np.empty(shape, dtype)``; from
    ``MIN_BYTES`` on, its memory may be a buffer an earlier, now unreferenced, result used."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or _cap == 0:
        return np.empty(shape, dtype)
    with _lock:
        found = None
        idle = []  # idle buffers other than the one handed out, oldest first
        for i in range(len(_pool)):
            if _idle(i):
                if found is None and nbytes <= _pool[i].nbytes <= nbytes + (nbytes >> 3):
                    found = i
                else:
                    idle.append(_pool[i])
        buf = _pool.pop(found) if found is not None else np.empty(nbytes, np.uint8)
        _pool.append(buf)
        out = buf[:nbytes].view(dtype).reshape(shape)
        _trim(idle)
    return out


def _trim(idle: list) -> None:
    """Under the lock: forget the oldest ``idle`` buffers beyond the byte cap (which frees
    them), then the oldest entries beyond ``MAX_BUFFERS`` (a busy one stays with its arrays
    and is freed with them)."""
    held = sum(b.nbytes for b in idle)
    drop = set()
    for b in idle:
        if held <= _cap:
            break
        held -= b.nbytes
        drop.add(id(b))
    keep = [b for b in _pool if id(b) not in drop]
    del idle[:]
    _pool[:] = keep[-MAX_BUFFERS:]


def idle_bytes() -> int:
    """Bytes held in buffers nothing else refers to."""
    with _lock:
        return sum(_pool[i].nbytes for i in range(len(_pool)) if _idle(i))


def clear() -> None:
    """Drop every idle buffer (busy ones stay with their arrays)."""
    with _lock:
        _drop_idle()


def _drop_idle() -> None:
    _pool[:] = [_pool[i] for i in range(len(_pool)) if not _idle(i)]


def set_cache_bytes(n: int) -> None:
    """Keep at most ``n`` bytes of idle buffers (0: no cache)."""
    global _cap
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"set_cache_bytes: n must be an int, got {type(n).__name__} {n!r}")
    if n < 0:
        raise ValueError(f"set_cache_bytes: n must be >= 0, got {n}")
    with _lock:
        _cap = n
        if n == 0:
            _drop_idle()
