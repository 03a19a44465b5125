"""The model archive: ONE zip file holding ``config.json`` and one ``.npy`` per weight array.

Format (version 1)::

    config.json         {"format": "poolkit.keras", "version": 1, "model": {...},
                         "compile": {...} | null, "weights": [{"file", "shape", "dtype"}, ...]}
    weights/0000.npy    np.save(..., allow_pickle=False), one per array, in order

This module knows the archive, not the models: :func:`write_archive` and :func:`read_archive`
move a config dict and a list of arrays in and out of a file, and
:mod:`poolkit.keras.models` (``model.save``, ``load_model``) turns models into configs and
back. Reading never unpickles or executes anything: JSON is parsed and arrays are read with
``np.load(allow_pickle=False)``; a file that is not a zip, is truncated, has bad JSON, another
format or version, a missing or malformed array, or an array whose shape or dtype differs from
its entry raises InvalidValue (a ValueError) naming the file. Writing is atomic
(:func:`poolkit._io.atomic_write`): a crash mid-write leaves any previous file untouched.
"""

from __future__ import annotations

import errno
import io
import json
import math
import os
import zipfile
import zlib

import numpy as np

from .._io import atomic_write
from ..errors import InvalidValue

__all__ = ["write_archive", "read_archive", "FORMAT", "VERSION"]

FORMAT = "poolkit.keras"
VERSION = 1


def write_archive(filepath, config: dict, arrays: list[np.ndarray]) -> None:
    """Write ``config`` (a JSON-able dict; its keys "format", "version" and "weights" are set
    here) and ``arrays`` to ONE zip file at ``filepath``, atomically."""
    entries = [{"file": f"weights/{i:04d}.npy", "shape": list(a.shape), "dtype": a.dtype.name}
               for i, a in enumerate(arrays)]
    doc = {"format": FORMAT, "version": VERSION, **config, "weights": entries}
    text = json.dumps(doc, indent=1)

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("config.json", text)
            for entry, a in zip(entries, arrays, strict=True):
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
                zf.writestr(entry["file"], buf.getvalue())

    atomic_write(filepath, write)


def bad_file(path: str, what: str) -> InvalidValue:
    """The error for a model file poolkit cannot load: names the file and the reason."""
    return InvalidValue(f"cannot load model from {path!r}: {what}")


# Archive members are read whole: a zip entry may declare (and a deflate stream expand to) any
# size, so a member larger than these is refused before it is read.
MAX_CONFIG_BYTES = 1 << 26
MAX_ARRAY_BYTES = 1 << 32

# What reading a damaged member raises: zipfile's errors, zlib's, an unsupported compression
# method or feature (NotImplementedError), an encrypted member (RuntimeError).
_MEMBER_ERRORS = (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError,
                  RuntimeError)


def _member(zf: zipfile.ZipFile, name, limit: int, path: str, what: str, missing: str) -> bytes:
    """The bytes of member ``name`` (``what`` in messages; ``missing``: the message if absent)."""
    try:
        info = zf.getinfo(name)
    except (KeyError, TypeError):
        raise bad_file(path, missing) from None
    if info.file_size > limit:
        raise bad_file(path, f"{what} ({name}) declares {info.file_size} bytes, more than the "
                             f"{limit} a poolkit model member may have")
    try:
        return zf.read(info)
    except _MEMBER_ERRORS as e:
        raise bad_file(path, f"{what} ({name}) is corrupt ({type(e).__name__}: {e})") from None


def _npy(data: bytes) -> np.ndarray:
    """The float array of a .npy file's bytes; the header is checked against the payload's
    length before anything is allocated (a header may claim any shape). ValueError for an
    unknown format version, a non-float or object dtype, or a size that does not match."""
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    if dtype.kind != "f" or dtype.hasobject:
        raise ValueError(f"dtype {dtype}; expected floats")
    count = math.prod(shape)
    if count * dtype.itemsize != len(data) - f.tell():
        raise ValueError(f"its header says {shape} {dtype} ({count * dtype.itemsize} bytes) but "
                         f"{len(data) - f.tell()} bytes follow it")
    a = np.frombuffer(data, dtype, count=count, offset=f.tell())
    return a.reshape(shape, order="F" if fortran else "C").astype(dtype.newbyteorder("="))


def read_archive(filepath) -> tuple[dict, list[np.ndarray]]:
    """(config dict, float arrays in order) from a file written by :func:`write_archive`.

    Every array is checked against its entry in the config (shape, floating dtype); the caller
    checks that the arrays fit its model. Raises FileNotFoundError for a missing file and
    InvalidValue naming the file for anything malformed (a directory, a damaged or oversized
    member included).
    """
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no model file", path)
    if os.path.isdir(path):
        raise bad_file(path, "it is a directory")
    try:
        zf = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError):
        # NotImplementedError: a damaged header claiming a zip version zipfile cannot read
        raise bad_file(path, "not a poolkit model file (not a zip archive, or truncated)") \
            from None
    with zf:
        raw = _member(zf, "config.json", MAX_CONFIG_BYTES, path, "config.json",
                      "the archive has no config.json")
        try:
            cfg = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
            raise bad_file(path, f"config.json is not valid JSON ({e})") from None
        if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
            raise bad_file(path, f"config.json does not describe a {FORMAT!r} model")
        if cfg.get("version") != VERSION:
            raise bad_file(path, f"unsupported format version {cfg.get('version')!r} "
                                 f"(this poolkit reads version {VERSION})")
        entries = cfg.get("weights")
        if not isinstance(entries, list):
            raise bad_file(path, f"config.json has no 'weights' list (got {entries!r})")
        arrays = []
        for i, entry in enumerate(entries):
            name = entry.get("file") if isinstance(entry, dict) else None
            data = _member(zf, name, MAX_ARRAY_BYTES, path, f"weight {i}",
                           f"weight {i}: missing array {name!r}")
            try:
                a = _npy(data)
            except ValueError as e:
                raise bad_file(path, f"weight {i} ({name}) is not a valid .npy array ({e})") \
                    from None
            listed = entry.get("shape")
            if not isinstance(listed, list) or a.shape != tuple(listed):
                raise bad_file(path, f"weight {i} ({name}) has shape {a.shape}, but the file "
                                     f"lists {listed!r}")
            arrays.append(a)
    return cfg, arrays
