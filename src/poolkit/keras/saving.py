"""Saving and loading models: ONE zip file holding ``config.json`` and one ``.npy`` per weight.

Format (version 1)::

    config.json         {"format": "poolkit.keras", "version": 1, "model": {...Sequential config},
                         "compile": {...} | null, "weights": [{"file", "shape", "dtype"}, ...]}
    weights/0000.npy    np.save(..., allow_pickle=False), in model.weights order

Loading never unpickles or executes anything: JSON is parsed, layer classes are looked up in a
fixed table, arrays are read with ``np.load(allow_pickle=False)``, and every mismatch (not a zip,
truncated, bad JSON, unknown layer, wrong weight shape) raises ValueError naming the file.
Writing goes to a temporary file in the same directory, then ``os.replace``: a crash mid-write
leaves any previous file untouched.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile

import numpy as np

from . import layers as _layers
from . import losses as _losses
from . import optimizers as _optimizers

__all__ = ["save_model", "load_model", "atomic_write", "FORMAT", "VERSION"]

FORMAT = "poolkit.keras"
VERSION = 1


def _compile_config(model) -> dict | None:
    if not model.compiled:
        return None
    opt = model.optimizer
    return {
        "optimizer": {"class_name": type(opt).__name__, "config": opt.get_config()},
        "loss": {"class_name": type(model.loss).__name__, "config": model.loss.get_config()},
        "metrics": list(model.metrics),
    }


def save_model(model, filepath) -> None:
    path = os.fspath(filepath)
    model._require_built("save")
    weights = model.weights
    entries = []
    for i, w in enumerate(weights):
        entries.append({"file": f"weights/{i:04d}.npy", "shape": list(w.shape),
                        "dtype": w.dtype.name})
    config = {"format": FORMAT, "version": VERSION, "model": model.get_config(),
              "compile": _compile_config(model), "weights": entries}
    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("config.json", json.dumps(config, indent=1))
            for entry, w in zip(entries, weights, strict=True):
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(w), allow_pickle=False)
                zf.writestr(entry["file"], buf.getvalue())

    atomic_write(path, write)


def atomic_write(path: str, write) -> None:
    """Call ``write(binary_file)`` on a temporary file in ``path``'s directory, fsync it and
    rename it over ``path``; on any error the temporary file is removed and ``path`` is left as
    it was. The file gets the permissions ``open()`` would give (mkstemp's are 0600)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _bad(path: str, what: str) -> ValueError:
    return ValueError(f"cannot load model from {path!r}: {what}")


def load_model(filepath, compile: bool = True):
    from .models import Sequential

    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    try:
        zf = zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile:
        raise _bad(path, "not a poolkit model file (not a zip archive, or truncated)") from None
    with zf:
        try:
            raw = zf.read("config.json")
        except KeyError:
            raise _bad(path, "the archive has no config.json") from None
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise _bad(path, f"config.json is corrupt ({e})") from None
        try:
            cfg = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise _bad(path, f"config.json is not valid JSON ({e})") from None
        if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
            raise _bad(path, f"config.json does not describe a {FORMAT!r} model")
        if cfg.get("version") != VERSION:
            raise _bad(path, f"unsupported format version {cfg.get('version')!r} "
                             f"(this poolkit reads version {VERSION})")
        mcfg = cfg.get("model")
        if not isinstance(mcfg, dict) or not isinstance(mcfg.get("layers"), list):
            raise _bad(path, "config.json has no 'model' with a 'layers' list")
        model = Sequential(name=str(mcfg.get("name") or "sequential"))
        shape = mcfg.get("input_shape")
        try:
            layer_objs = []
            for i, spec in enumerate(mcfg["layers"]):
                if not isinstance(spec, dict) or not isinstance(spec.get("config"), dict):
                    raise ValueError(f"layer {i} is not a {{class_name, config}} object")
                cls = _layers.get(spec.get("class_name"))
                layer_objs.append(cls.from_config(dict(spec["config"])))
            if shape is not None:
                model.add(_layers.InputLayer(shape=tuple(shape), dtype=layer_objs[0].dtype
                                             if layer_objs else None))
            for layer in layer_objs:
                model.add(layer)
        except (TypeError, ValueError) as e:
            raise _bad(path, f"bad layer configuration: {e}") from None
        if not model.built:
            raise _bad(path, "the model has no input shape")
        entries = cfg.get("weights")
        own = model.weights
        if not isinstance(entries, list) or len(entries) != len(own):
            raise _bad(path, f"the model's layers have {len(own)} weight arrays but the file "
                             f"lists {len(entries) if isinstance(entries, list) else entries!r}")
        arrays = []
        for i, (entry, w) in enumerate(zip(entries, own, strict=True)):
            name = entry.get("file") if isinstance(entry, dict) else None
            try:
                data = zf.read(name)
            except (KeyError, TypeError):
                raise _bad(path, f"weight {i}: missing array {name!r}") from None
            except (zipfile.BadZipFile, OSError, EOFError) as e:
                raise _bad(path, f"weight {i} ({name}) is corrupt ({e})") from None
            try:
                a = np.load(io.BytesIO(data), allow_pickle=False)
            except (ValueError, OSError, EOFError) as e:
                raise _bad(path, f"weight {i} ({name}) is not a valid .npy array ({e})") from None
            if not isinstance(a, np.ndarray) or a.shape != w.shape:
                raise _bad(path, f"weight {i} ({name}) has shape "
                                 f"{getattr(a, 'shape', None)}, but the layer expects {w.shape}")
            if a.dtype.kind != "f":
                raise _bad(path, f"weight {i} ({name}) has dtype {a.dtype}; expected floats")
            arrays.append(a)
        model.set_weights(arrays)
        comp = cfg.get("compile")
        if compile and comp:
            try:
                opt = comp["optimizer"]
                opt_cls = {"Adam": _optimizers.Adam, "SGD": _optimizers.SGD}[opt["class_name"]]
                loss = comp["loss"]
                loss_cls = {"SparseCategoricalCrossentropy": _losses.SparseCategoricalCrossentropy,
                            "CategoricalCrossentropy": _losses.CategoricalCrossentropy
                            }[loss["class_name"]]
                model.compile(optimizer=opt_cls(**opt["config"]), loss=loss_cls(**loss["config"]),
                              metrics=comp.get("metrics") or None)
            except (KeyError, TypeError, ValueError) as e:
                raise _bad(path, f"bad compile configuration ({e!r})") from None
    return model
