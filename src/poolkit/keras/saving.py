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
import os
import zipfile

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


def read_archive(filepath) -> tuple[dict, list[np.ndarray]]:
    """(config dict, float arrays in order) from a file written by :func:`write_archive`.

    Every array is checked against its entry in the config (shape, floating dtype); the caller
    checks that the arrays fit its model. Raises FileNotFoundError for a missing file and
    InvalidValue naming the file for anything malformed.
    """
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no model file", path)
    try:
        zf = zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile:
        raise bad_file(path, "not a poolkit model file (not a zip archive, or truncated)") \
            from None
    with zf:
        try:
            raw = zf.read("config.json")
        except KeyError:
            raise bad_file(path, "the archive has no config.json") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise bad_file(path, f"config.json is corrupt ({e})") from None
        try:
            cfg = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
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
            try:
                data = zf.read(name)
            except (KeyError, TypeError):
                raise bad_file(path, f"weight {i}: missing array {name!r}") from None
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise bad_file(path, f"weight {i} ({name}) is corrupt ({e})") from None
            try:
                a = np.load(io.BytesIO(data), allow_pickle=False)
            except (ValueError, OSError, EOFError) as e:
                raise bad_file(path, f"weight {i} ({name}) is not a valid .npy array ({e})") \
                    from None
            listed = entry.get("shape")
            if not isinstance(a, np.ndarray) or not isinstance(listed, list) or \
                    a.shape != tuple(listed):
                raise bad_file(path, f"weight {i} ({name}) has shape "
                                     f"{getattr(a, 'shape', None)}, but the file lists {listed!r}")
            if a.dtype.kind != "f":
                raise bad_file(path, f"weight {i} ({name}) has dtype {a.dtype}; expected floats")
            arrays.append(a)
    return cfg, arrays
