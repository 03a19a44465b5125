"""Targets for saving and loading models: corrupted archives must be refused with a ValueError
naming the file (or FileNotFoundError for a missing one), never unpickled, never crash; saving
to a bad path, or failing mid-write, leaves no half-written file and keeps the old one."""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from unittest import mock

import numpy as np

from poolkit import keras
from poolkit.keras import layers as L
from poolkit.keras import saving

from .. import gen
from ..oracle import fail, note, target


def small_model(rng, compile_it: bool):
    side = int(rng.integers(4, 9))
    model = keras.Sequential([keras.Input(shape=(side, side, 1)),
                              L.MaxPooling2D(2), L.Conv2D(2, 1), L.Flatten(), L.Dense(3)])
    if compile_it:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    return model


def _members(path: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(path: str, members: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for n, data in members.items():
            zf.writestr(n, data)


def _edit_json(rng, value, depth=0):
    """``value`` with one leaf (or subtree) replaced by a hostile value."""
    if isinstance(value, dict) and value and (depth < 6 and not gen.chance(rng, 0.15)):
        k = gen.pick(rng, list(value))
        if gen.chance(rng, 0.1):
            return {kk: vv for kk, vv in value.items() if kk != k}
        return {**value, k: _edit_json(rng, value[k], depth + 1)}
    if isinstance(value, list) and value and (depth < 6 and not gen.chance(rng, 0.15)):
        i = int(rng.integers(len(value)))
        return [*value[:i], _edit_json(rng, value[i], depth + 1), *value[i + 1:]]
    return gen.pick(rng, gen.JSON_BAD)


def _npy(rng) -> bytes:
    """A .npy member that is wrong in one way: shape, dtype, object dtype, huge sizes, a
    header that lies, a truncated payload."""
    r = rng.random()
    buf = io.BytesIO()
    if r < 0.3:
        a = gen.array(rng, gen.shape(rng, int(rng.integers(0, 4)), 0, 5))
        if a.dtype.kind == "O":
            return b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': " \
                   b"(2,), }" + b" " * 60 + b"\n" + bytes(16)
        np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
        return buf.getvalue()
    shape = gen.pick(rng, (f"({10**12},)", f"({2**62}, {2**62})", "(-1,)", "(3, 3)", "()",
                           f"(1, {2**31})", "(0,)", "'x'", "(1.5,)"))
    descr = gen.pick(rng, ("'<f4'", "'>f8'", "'|O'", "'<c8'", "'<i8'", "'V100'", "'<f2'",
                           "[('a', '<f4')]", "'x'"))
    order = gen.pick(rng, ("False", "True", "None"))
    header = f"{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}"
    header = header.ljust(118) + "\n"
    payload = bytes(int(rng.integers(0, 64)))
    version = gen.pick(rng, (b"\x01\x00", b"\x02\x00", b"\x09\x00"))
    size = len(header).to_bytes(2 if version == b"\x01\x00" else 4, "little")
    return b"\x93NUMPY" + version + size + header.encode() + payload


def corrupt(rng, path: str) -> str:
    """Write a corrupted copy of the model file at ``path``; return what was done."""
    data = open(path, "rb").read()
    out = path + ".bad"
    r = rng.random()
    if r < 0.15:
        n = int(rng.integers(0, len(data)))
        open(out, "wb").write(data[:n])
        return f"truncated to {n} of {len(data)} bytes"
    if r < 0.3:
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            i = int(rng.integers(len(b)))
            b[i] = int(rng.integers(256))
        open(out, "wb").write(bytes(b))
        return "bytes flipped"
    members = _members(path)
    what = ""
    if r < 0.6:
        cfg = json.loads(members["config.json"])
        members["config.json"] = json.dumps(_edit_json(rng, cfg)).encode()
        what = "config.json edited"
    elif r < 0.75:
        name = gen.pick(rng, sorted(n for n in members if n.endswith(".npy")) or ["w.npy"])
        members[name] = _npy(rng)
        what = f"{name} replaced"
    elif r < 0.85:
        name = gen.pick(rng, sorted(members))
        if gen.chance(rng, 0.5):
            del members[name]
            what = f"{name} removed"
        else:
            members[f"extra/{name}"] = members[name]
            what = f"extra member {name}"
    else:
        what = gen.pick(rng, ("empty", "text", "random", "dir", "not json", "empty zip"))
        if what == "dir":
            os.mkdir(out)
        else:
            blob = {"empty": b"", "text": b"hello\n", "random": rng.bytes(200)}.get(what)
            if blob is not None:
                open(out, "wb").write(blob)
            else:
                _zip(out, {"config.json": b"\xff\xfe{"} if what == "not json" else {})
        return what
    method = zipfile.ZIP_STORED if gen.chance(rng, 0.3) else zipfile.ZIP_DEFLATED
    _zip(out, members, method)
    return what


@target("saving.load_corrupt", "saving", weight=4, allowed=(FileNotFoundError,),
        covers=("keras.load_model", "keras.models.save_model"))
def _load_corrupt(rng):
    model = small_model(rng, gen.chance(rng, 0.5))
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.poolkit")
        model.save(path)
        x = gen.values(rng, (1, *model.input_shape[1:]), np.dtype(np.float32))
        note("save, load_model, predict", path, x)
        back = keras.load_model(path)
        if not np.array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0),
                              equal_nan=True):
            fail("wrong", "a saved and loaded model predicts differently")
        what = corrupt(rng, path)
        note("load_model", what)
        keras.load_model(path + ".bad", compile=gen.bool_arg(rng))


@target("saving.save_bad_path", "saving", weight=2, allowed=(OSError,),
        covers=("keras.Sequential.save",))
def _save_bad_path(rng):
    model = small_model(rng, gen.chance(rng, 0.5))
    with tempfile.TemporaryDirectory() as d:
        good = os.path.join(d, "old.poolkit")
        model.save(good)
        before = open(good, "rb").read()
        kind = gen.pick(rng, ("missing dir", "is dir", "nul", "long", "old", "bad type",
                              "under a file", "crash"))
        path = {
            "missing dir": os.path.join(d, "no", "such", "m.poolkit"),
            "is dir": d,
            "nul": os.path.join(d, "a\x00b"),
            "long": os.path.join(d, "x" * 300),
            "old": good,
            "bad type": gen.pick(rng, (None, 3, b"\xff", ["a"], 1.5)),
            "under a file": os.path.join(good, "m.poolkit"),
            "crash": good,
        }[kind]
        note("save", kind, path)
        try:
            if kind == "crash":  # a failure mid-write must keep the old file
                with mock.patch.object(saving.np, "save", side_effect=RuntimeError("boom")):
                    model.save(path)
            else:
                model.save(path)
        except RuntimeError as e:
            if str(e) != "boom":
                raise
        finally:
            _check_no_leftovers(d, good, before, kind)


def _check_no_leftovers(d: str, good: str, before: bytes, kind: str) -> None:
    names = sorted(os.listdir(d))
    if any(n.endswith(".tmp") or n.startswith(".") for n in names):
        fail("half-written", f"a temporary file was left behind: {names}")
    if kind != "old" and open(good, "rb").read() != before:
        fail("corrupted", "the existing model file changed")
    if kind == "old":
        keras.load_model(good)
