"""Read and write IDX files, the format MNIST and Fashion-MNIST ship in.

Layout (big-endian): two zero bytes, a type byte, a rank byte ``ndim``, then ``ndim`` uint32
dims, then ``prod(dims)`` items. MNIST images are magic 0x00000803 (2051: uint8, 3-D) and
labels 0x00000801 (2049: uint8, 1-D).

Files may be raw or gzip-compressed; gzip is detected by its magic bytes (1f 8b), not by the
file name. Every malformed file raises ValueError naming the file and what is wrong. Nothing
here unpickles or executes anything.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from typing import BinaryIO

import numpy as np

from .._io import atomic_write_bytes
from ..errors import InvalidType, InvalidValue

__all__ = ["read_idx", "write_idx", "IDX_TYPES"]

# IDX type byte -> big-endian dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_OF_KIND = {(dt.kind, dt.itemsize): code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def _read_upto(f: BinaryIO, limit: int) -> bytes:
    """Read at most ``limit`` bytes in chunks (never pre-allocates ``limit``)."""
    parts, got = [], 0
    while got < limit:
        block = f.read(min(_CHUNK, limit - got))
        if not block:
            break
        parts.append(block)
        got += len(block)
    return b"".join(parts)


def _parse(name: str, f: BinaryIO, ndim: int | None) -> np.ndarray:
    head = _read_upto(f, 4)
    if len(head) == 0:
        raise InvalidValue(f"{name}: empty file (expected an IDX header)")
    if len(head) < 4 or head[:2] != b"\x00\x00":
        raise InvalidValue(
            f"{name}: not an IDX file: first bytes are {head.hex(' ')}, an IDX magic number "
            "starts with 00 00, then a type byte and a rank byte (e.g. 00 00 08 03 = 2051)"
        )
    code, rank = head[2], head[3]
    magic = int.from_bytes(head, "big")
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise InvalidValue(
            f"{name}: bad magic number {magic} (0x{magic:08x}): type byte 0x{code:02x} is not "
            f"an IDX type (known: {known})"
        )
    if rank == 0:
        raise InvalidValue(f"{name}: bad magic number {magic} (0x{magic:08x}): rank byte is 0")
    if ndim is not None and rank != ndim:
        raise InvalidValue(
            f"{name}: wrong dims: expected a {ndim}-D IDX file, header says {rank}-D "
            f"(magic {magic} = 0x{magic:08x})"
        )
    raw_dims = _read_upto(f, 4 * rank)
    if len(raw_dims) < 4 * rank:
        raise InvalidValue(
            f"{name}: truncated header: rank {rank} needs {4 * rank} bytes of dims, "
            f"file has {len(raw_dims)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, ">u4"))
    dtype = IDX_TYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    # Read one byte more than promised to detect trailing data without reading it all.
    payload = _read_upto(f, expected + 1)
    shape = "x".join(map(str, dims))
    if len(payload) < expected:
        raise InvalidValue(
            f"{name}: truncated: header says {shape} {dtype.name} = {expected} bytes, "
            f"file has {len(payload)} after the {4 + 4 * rank}-byte header"
        )
    if len(payload) > expected:
        raise InvalidValue(
            f"{name}: extra bytes: header says {shape} {dtype.name} = {expected} bytes, "
            f"but more data follows them"
        )
    return np.frombuffer(payload, dtype).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike, ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or gzip) into a writable native-endian array of shape ``dims``.

    ``ndim``: if given, the rank the header must declare (3 for images, 1 for labels).
    Raises ValueError naming the file for a directory, an empty file, a bad magic number or
    type byte, a wrong rank, a truncated header or payload, trailing bytes, or a corrupt gzip
    stream; and FileNotFoundError if it does not exist.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise InvalidValue(f"{name}: is a directory, not an IDX file")
    with open(name, "rb") as raw:
        gzipped = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if not gzipped:
            if name.endswith(".gz") and os.path.getsize(name) >= 2:
                # A ".gz" that is neither gzip nor IDX is usually an HTML error page.
                head = raw.read(4)
                raw.seek(0)
                if head[:2] != b"\x00\x00":
                    raise InvalidValue(
                        f"{name}: not gzip (no 1f 8b magic; first bytes {head.hex(' ')}) "
                        "and not a raw IDX file either"
                    )
            return _parse(name, raw, ndim)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                return _parse(name, gz, ndim)
        except (EOFError, OSError, zlib.error) as exc:
            raise InvalidValue(f"{name}: corrupt gzip stream: {exc}") from exc


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed if ``path`` ends with ".gz".

    Supported dtypes: uint8, int8, int16, int32, float32, float64 (stored big-endian); rank
    1-255, each dim < 2**32. Written atomically (:func:`poolkit._io.atomic_write`), so ``path``
    is never left half-written.
    """
    arr = np.asarray(array)
    code = _TYPE_OF_KIND.get((arr.dtype.kind, arr.dtype.itemsize))
    if code is None or arr.dtype.kind not in "uif":
        raise InvalidType(
            f"array: dtype {arr.dtype} has no IDX type; use uint8, int8, int16, int32, "
            "float32 or float64"
        )
    if not 1 <= arr.ndim <= 255 or any(d >= 2**32 for d in arr.shape):
        raise InvalidValue(
            f"array: shape {arr.shape} is not writable as IDX (rank 1-255, dims < 2**32)"
        )
    name = os.fspath(path)
    body = (
        bytes([0, 0, code, arr.ndim])
        + np.asarray(arr.shape, ">u4").tobytes()
        + np.ascontiguousarray(arr, IDX_TYPES[code]).tobytes()
    )
    if name.endswith(".gz"):
        body = gzip.compress(body, mtime=0)
    atomic_write_bytes(name, body)
