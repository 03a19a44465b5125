"""Atomic file writes: the one helper every module that writes a file uses (models, figures,
metrics, sweep CSVs, IDX files, downloads).

A file is written to a temporary name in its own directory, flushed and fsync'ed, given the
permissions ``open()`` would give it, renamed over the destination with ``os.replace`` (atomic on
POSIX and Windows), and the directory is fsync'ed so the rename itself survives a crash. On any
error, including KeyboardInterrupt, the temporary file is removed and the destination is left as
it was: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text"]


def _umask() -> int:
    # os.umask() can only be read by setting it, which would race with other threads creating
    # files; Linux publishes it in /proc instead.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(directory, flags)
    except OSError:  # e.g. Windows, where directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a binary file that becomes ``path`` only if ``write`` returns.

    The temporary file is ``.<name, up to 64 characters>.<random>.tmp`` next to ``path`` (so
    the rename never crosses file systems); the directory must exist. Errors from ``write``
    (or from the disk) propagate after the temporary file is removed; ``path`` is then
    untouched.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    # The name cut short: a name near the file system's limit must still get a temporary.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path)[:64] + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write_bytes(path, text.encode(encoding))
