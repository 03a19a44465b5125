"""Targets for the data readers: IDX files with hostile headers, sizes and payloads (raw and
gzip), the IDX writer's round trip, and the dataset loaders pointed at junk (always offline:
the runner points $POOLKIT_DATA_URL at a closed port)."""

from __future__ import annotations

import gzip
import os
import tempfile

import numpy as np

from poolkit import data
from poolkit.data import remote
from poolkit.keras import datasets

from .. import gen
from ..oracle import fail, note, target

_LOADER_ERRORS = (FileNotFoundError, data.DatasetUnavailableError, data.ChecksumMismatchError)


def idx_bytes(rng) -> bytes:
    """An IDX file that is right or wrong in one way."""
    code = gen.pick(rng, (0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x08, 0x0A, 0x00, 0xFF))
    rank = int(gen.pick(rng, (1, 2, 3, 3, 0, 4, 255)))
    dims = [int(rng.integers(0, 5)) for _ in range(rank)]
    if gen.chance(rng, 0.2) and dims:
        dims[int(rng.integers(rank))] = gen.pick(rng, (2**32 - 1, 2**31, 2**16, 10**6))
    itemsize = {0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1)
    n = int(np.prod(dims, dtype=object)) * itemsize if dims else 0
    payload = rng.bytes(min(n, 4096))
    r = rng.random()
    if r < 0.15:
        payload = payload[: int(rng.integers(0, len(payload) + 1))]
    elif r < 0.25:
        payload += rng.bytes(int(rng.integers(1, 9)))
    head = bytes([0, 0, code, rank % 256]) + b"".join(d.to_bytes(4, "big") for d in dims)
    if gen.chance(rng, 0.1):
        head = head[: int(rng.integers(0, len(head) + 1))]
    if gen.chance(rng, 0.05):
        head = gen.pick(rng, (b"<html>", b"\x1f\x8b\x08\x00", b"\x00\x00", b""))
    return head + payload


@target("data.read_idx", "data", weight=2, allowed=(FileNotFoundError,), covers=("data.read_idx",))
def _read_idx(rng):
    with tempfile.TemporaryDirectory() as d:
        body = idx_bytes(rng)
        gz = gen.chance(rng, 0.4)
        if gz:
            body = gzip.compress(body, mtime=0)
            if gen.chance(rng, 0.3):
                body = body[: int(rng.integers(0, len(body)))]
        path = os.path.join(d, "f.idx" + (".gz" if gz or gen.chance(rng, 0.1) else ""))
        with open(path, "wb") as f:
            f.write(body)
        if gen.chance(rng, 0.05):
            path = gen.pick(rng, (d, os.path.join(d, "missing"), None, 3))
        ndim = gen.pick(rng, (None, None, 1, 3, 0, -1, 2**40, 1.5, "3"))
        note("read_idx", path, body[:16], ndim=ndim)
        a = data.read_idx(path, ndim=ndim)
        if not isinstance(a, np.ndarray) or not a.flags.writeable:
            fail("wrong", f"read_idx returned {type(a).__name__} (writable array promised)")


@target("data.write_idx", "data", allowed=(OSError,), covers=("data.write_idx",))
def _write_idx(rng):
    with tempfile.TemporaryDirectory() as d:
        a = gen.array(rng, gen.shape(rng, int(rng.integers(0, 4)), 0, 6))
        path = os.path.join(d, gen.pick(rng, ("a.idx", "a.idx.gz", "sub/a.idx")))
        note("write_idx", path, a)
        data.write_idx(path, a)
        back = data.read_idx(path)
        if back.shape != a.shape or not np.array_equal(back, a, equal_nan=True):
            fail("wrong", "read_idx(write_idx(a)) differs from a")


def _junk_dir(rng, d: str) -> None:
    """The dataset's four files, each absent, junk, an HTML page, or a tiny valid IDX."""
    for name in remote.MNIST.files:
        r = rng.random()
        path = os.path.join(d, name if gen.chance(rng, 0.7) else name.removesuffix(".gz"))
        if r < 0.25:
            continue
        if r < 0.5:
            body = idx_bytes(rng)
        elif r < 0.6:
            body = b"<html>404</html>"
        elif r < 0.7:
            os.makedirs(path, exist_ok=True)
            continue
        else:
            rank = 3 if "images" in name else 1
            shape = (2, 28, 28) if rank == 3 else (int(gen.pick(rng, (2, 3))),)
            body = (bytes([0, 0, 8, rank]) + np.asarray(shape, ">u4").tobytes()
                    + rng.integers(0, 256, size=shape, dtype=np.uint8).tobytes())
        with open(path, "wb") as f:
            f.write(gzip.compress(body, mtime=0) if path.endswith(".gz") else body)


@target("data.load_dataset", "data", weight=2, allowed=_LOADER_ERRORS,
        covers=("data.load_dataset", "data.load_raw", "keras.datasets"))
def _load_dataset(rng):
    with tempfile.TemporaryDirectory() as d:
        for sub in ("mnist", "fashion-mnist"):
            os.makedirs(os.path.join(d, sub))
            _junk_dir(rng, os.path.join(d, sub))
        os.environ["POOLKIT_DATA"] = d
        which = gen.pick(rng, ("load_dataset", "load_raw", "mnist", "fashion_mnist"))
        if which in ("load_dataset", "load_raw"):
            name = gen.maybe(rng, lambda: gen.pick(rng, ("mnist", "fashion-mnist",
                                                         "mnist-sample")))
            if name == "mnist-sample" and gen.chance(rng, 0.8):
                name = "mnist"  # the sample is slow to prepare; mostly fuzz the others
            note(which, name)
            getattr(data, which)(name)
        else:
            path = gen.pick(rng, (None, os.path.join(d, "mnist"), os.path.join(d, "nowhere"),
                                  os.path.join(d, "mnist", remote.MNIST.files[0])))
            note(f"keras.datasets.{which}.load_data", path)
            getattr(datasets, which).load_data(path)
