"""Data layer: IDX reader/writer, the embedded MNIST sample, offline-first dataset loading.

No test touches the internet: every test runs with POOLKIT_DATA_URL pointing at a closed local
port unless it starts its own local HTTP server, and with POOLKIT_DATA / POOLKIT_SYSTEM_DATA in
tmp dirs (so neither ~/.cache nor /usr/share/datasets is read unless a test asks for it).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import re
import socket
import struct
import threading

import numpy as np
import pytest

from poolkit.data import idx, remote, sample
from poolkit.data.idx import read_idx, write_idx
from poolkit.keras.datasets import fashion_mnist, mnist, mnist_sample

# ---------------------------------------------------------------------------- helpers


def _dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (port taken from the OS, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _md5(path) -> str:
    return hashlib.md5(open(path, "rb").read(), usedforsecurity=False).hexdigest()


def _idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """Hand-built IDX bytes (independent of write_idx)."""
    return struct.pack(f">I{len(dims)}I", magic, *dims) + payload


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("POOLKIT_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("POOLKIT_SYSTEM_DATA", str(tmp_path / "system"))
    monkeypatch.setenv("POOLKIT_DATA_URL", _dead_url())
    monkeypatch.setattr(remote, "TIMEOUT", 5.0)


def _small_set(directory, rng, n_train=20, n_test=5, gz=True):
    """Write a tiny MNIST-like dataset (the four official file names) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(directory / (name + (".gz" if gz else "")), arr)
    return arrays


def _check_same(loaded, arrays):
    (xtr, ytr), (xte, yte) = loaded
    for got, key in (
        (xtr, "train-images-idx3-ubyte"),
        (ytr, "train-labels-idx1-ubyte"),
        (xte, "t10k-images-idx3-ubyte"),
        (yte, "t10k-labels-idx1-ubyte"),
    ):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])


class _Server:
    """A threaded HTTP server on 127.0.0.1 (port 0) serving one directory; counts GETs."""

    def __init__(self, directory):
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.requests: list[str] = []
        handler = functools.partial(Handler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        if self.thread.is_alive():
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A local server with a tiny dataset (20 train, 5 test) and MNIST/Fashion md5s patched."""
    arrays = _small_set(tmp_path / "www", np.random.default_rng(0))
    for ds in (remote.MNIST, remote.FASHION_MNIST):
        for fname in ds.files:
            monkeypatch.setitem(ds.md5, fname, _md5(tmp_path / "www" / fname))
    server = _Server(tmp_path / "www")
    monkeypatch.setenv("POOLKIT_DATA_URL", server.url)
    yield server, arrays
    server.stop()


# ---------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("compress", [False, True])
def test_read_hand_built_idx(tmp_path, compress):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    data = _idx_bytes(2051, (2, 3, 4), x.tobytes())
    path = tmp_path / ("x.idx" + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(data) if compress else data)
    got = read_idx(path, ndim=3)
    np.testing.assert_array_equal(got, x)
    assert got.dtype == np.uint8 and got.flags.writeable
    labels = tmp_path / "y"
    labels.write_bytes(_idx_bytes(2049, (3,), bytes([7, 0, 9])))
    np.testing.assert_array_equal(read_idx(labels, ndim=1), [7, 0, 9])


def test_read_big_endian_types(tmp_path):
    # magic 0x00000D02: float32, 2-D; data stored big-endian.
    x = np.array([[1.5, -2.0, 3.25]], dtype=np.float32)
    path = tmp_path / "f.idx"
    path.write_bytes(_idx_bytes(0x0D02, (1, 3), x.astype(">f4").tobytes()))
    got = read_idx(path)
    np.testing.assert_array_equal(got, x)
    assert got.dtype == np.float32  # native order


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_write_idx_round_trip(tmp_path, dtype, suffix):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 5, 2)) * 100).astype(dtype)
    path = tmp_path / f"a{suffix}"
    write_idx(path, x)
    raw = path.read_bytes()
    if suffix:
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    # Header checked by hand against the IDX spec.
    code = {"uint8": 8, "int8": 9, "int16": 11, "int32": 12, "float32": 13, "float64": 14}[dtype]
    assert raw[:4] == bytes([0, 0, code, 3])
    assert struct.unpack(">3I", raw[4:16]) == (3, 5, 2)
    assert raw[16:] == x.astype(np.dtype(dtype).newbyteorder(">")).tobytes()
    np.testing.assert_array_equal(read_idx(path), x)
    assert os.listdir(tmp_path) == [path.name]  # no temp file left behind


def test_write_idx_rejects_bad_dtype(tmp_path):
    with pytest.raises(TypeError, match="bool"):
        write_idx(tmp_path / "b", np.zeros(3, bool))
    with pytest.raises(ValueError, match="shape"):
        write_idx(tmp_path / "s", np.uint8(3))
    assert os.listdir(tmp_path) == []


_HEADER_28 = struct.pack(">IIII", 2051, 10000, 28, 28)

BAD_FILES = {
    "empty": ("t.idx", b"", "empty file"),
    "not idx": ("t.idx", b"PK\x03\x04 zip", "not an IDX file"),
    "bad type byte": ("t.idx", _idx_bytes(0x0703, (1, 1, 1), b"\x00"), "bad magic number 1795"),
    "rank zero": ("t.idx", b"\x00\x00\x08\x00", "rank byte is 0"),
    "truncated": (
        "t10k-images-idx3-ubyte",
        _HEADER_28 + b"\x00" * 123,
        "truncated: header says 10000x28x28 uint8 = 7840000 bytes, file has 123",
    ),
    "truncated header": ("t.idx", b"\x00\x00\x08\x03" + b"\x00" * 5, "truncated header"),
    "extra bytes": ("t.idx", _idx_bytes(2051, (1, 2, 2), bytes(5)), "extra bytes"),
    "wrong dims": ("labels", _idx_bytes(2049, (3,), b"\x01\x02\x03"), "wrong dims: expected a 3-D"),
    "html named .gz": ("t10k.gz", b"<html>404 Not Found</html>", "not gzip"),
    "corrupt gzip": ("t.gz", gzip.compress(_idx_bytes(2051, (2, 5, 5), bytes(50)))[:-12], "gzip"),
}


@pytest.mark.parametrize("case", BAD_FILES, ids=list(BAD_FILES))
def test_bad_idx_files(tmp_path, case):
    fname, content, message = BAD_FILES[case]
    path = tmp_path / fname
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        read_idx(path, ndim=3)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_truncated_inside_gzip_names_file(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_HEADER_28 + b"\x00" * 123))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: truncated.*file has 123"):
        read_idx(path)


def test_raw_idx_named_gz_is_read(tmp_path):
    # gzip is detected by its magic bytes, so an already-decompressed file keeps working.
    path = tmp_path / "y.gz"
    path.write_bytes(_idx_bytes(2049, (2,), b"\x05\x06"))
    np.testing.assert_array_equal(read_idx(path), [5, 6])


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")


def test_a_directory_is_not_an_idx_file(tmp_path):
    # Found by the fuzz harness: open() raised IsADirectoryError.
    with pytest.raises(ValueError, match="is a directory"):
        read_idx(tmp_path)


@pytest.mark.parametrize("where", ["file", "under a file"])
def test_a_data_path_that_is_a_file_is_a_value_error(tmp_path, where):
    # Found by the fuzz harness: os.makedirs raised FileExistsError / NotADirectoryError.
    f = tmp_path / "train-images-idx3-ubyte.gz"
    f.write_bytes(b"x")
    path = f if where == "file" else f / "sub"
    with pytest.raises(ValueError, match="cannot use .* as the data directory"):
        mnist.load_data(path=path)


# ---------------------------------------------------------------------------- embedded sample

README_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _embedded_raw():
    """The embedded files decoded with plain gzip + numpy (not via read_idx)."""
    root = os.path.dirname(sample.__file__)
    with gzip.open(os.path.join(root, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(root, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y


def test_mnist_sample_shapes_counts_and_split():
    (xtr, ytr), (xte, yte) = mnist_sample.load_data()
    assert xtr.shape == (8000, 28, 28) and ytr.shape == (8000,)
    assert xte.shape == (2000, 28, 28) and yte.shape == (2000,)
    assert {a.dtype for a in (xtr, ytr, xte, yte)} == {np.dtype(np.uint8)}
    counts = np.bincount(np.concatenate([ytr, yte]), minlength=10)
    assert counts.tolist() == README_COUNTS
    assert np.bincount(yte, minlength=10).min() >= 150  # every class well represented in test

    # Map every returned digit back to its position in the raw file: the two splits must be
    # disjoint, cover all 10,000 digits, keep their labels, and put 4000-4999/9000-9999 in test.
    x, y = _embedded_raw()
    where = {img.tobytes(): i for i, img in enumerate(x)}
    assert len(where) == 10_000  # no exact duplicate images, so the mapping is unique
    itr = np.array([where[img.tobytes()] for img in xtr])
    ite = np.array([where[img.tobytes()] for img in xte])
    assert not set(itr) & set(ite)
    assert sorted(np.concatenate([itr, ite])) == list(range(10_000))
    np.testing.assert_array_equal(y[itr], ytr)
    np.testing.assert_array_equal(y[ite], yte)
    assert sorted(ite) == list(range(4000, 5000)) + list(range(9000, 10_000))


def test_mnist_sample_is_fixed_and_fresh():
    (a, b), (c, d) = mnist_sample.load_data()
    a[:] = 0  # callers get their own arrays
    (a2, b2), (c2, d2) = mnist_sample.load_data()
    assert a2.any()
    np.testing.assert_array_equal(b, b2)
    np.testing.assert_array_equal(c, c2)


def test_mnist_sample_corrupt_file_is_reported(monkeypatch):
    monkeypatch.setitem(sample.SAMPLE_FILES, "t10k-labels-idx1-ubyte.gz", "0" * 32)
    sample._load_verified.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz.*corrupt.*md5"):
            mnist_sample.load_data()
    finally:
        sample._load_verified.cache_clear()


# ---------------------------------------------------------------------------- downloads


def test_download_then_cache(served, tmp_path, capsys):
    server, arrays = served
    _check_same(mnist.load_data(), arrays)
    assert sorted(server.requests) == sorted("/" + f for f in remote.MNIST.files)
    cache = tmp_path / "cache" / "mnist"
    assert sorted(os.listdir(cache)) == sorted(remote.MNIST.files)  # no temp files left
    for fname in remote.MNIST.files:
        assert _md5(cache / fname) == _md5(tmp_path / "www" / fname)
    err = capsys.readouterr().err
    assert re.search(r"train-images-idx3-ubyte.gz: 15\.7 kB/15\.7 kB 100\.0%  [\d.]+ [kM]?B/s", err)
    assert server.url in err

    server.stop()  # the second call must not need the server
    _check_same(mnist.load_data(), arrays)
    assert len(server.requests) == 4


def test_path_argument_and_raw_files(tmp_path):
    arrays = _small_set(tmp_path / "mine", np.random.default_rng(2), gz=False)
    _check_same(mnist.load_data(path=tmp_path / "mine"), arrays)


def test_checksum_mismatch_leaves_nothing(served, tmp_path, monkeypatch):
    server, _ = served
    monkeypatch.setitem(remote.MNIST.md5, "train-images-idx3-ubyte.gz", "0" * 32)
    with pytest.raises(remote.ChecksumMismatchError, match="train-images-idx3-ubyte.gz.*md5"):
        mnist.load_data()
    cache = tmp_path / "cache" / "mnist"
    assert not cache.exists() or os.listdir(cache) == []


@pytest.mark.parametrize(
    "loader, must_say",
    [
        (mnist.load_data, ["mnist_sample", "train-images-idx3-ubyte.gz", "POOLKIT_DATA"]),
        (
            fashion_mnist.load_data,
            ["apt-get install dataset-fashion-mnist", "t10k-labels-idx1-ubyte.gz", "POOLKIT_DATA"],
        ),
    ],
)
def test_offline_message(tmp_path, loader, must_say):
    # POOLKIT_DATA_URL points at a closed port (autouse fixture): the server is down.
    with pytest.raises(remote.DatasetUnavailableError) as err:
        loader()
    msg = str(err.value)
    name = "mnist" if loader is mnist.load_data else "fashion-mnist"
    for text in [*must_say, str(tmp_path / "cache" / name), "refused"]:
        assert text in msg
    assert isinstance(err.value, OSError)


def test_missing_on_server_is_unavailable(served, tmp_path):
    server, arrays = served
    (tmp_path / "www" / "t10k-labels-idx1-ubyte.gz").unlink()  # 404 for that one
    with pytest.raises(remote.DatasetUnavailableError, match="HTTP 404"):
        mnist.load_data()
    # The files that did download were verified and kept; only the missing one is absent.
    assert "t10k-labels-idx1-ubyte.gz" not in os.listdir(tmp_path / "cache" / "mnist")
    # Once the server has it, only that file is fetched.
    write_idx(tmp_path / "www" / "t10k-labels-idx1-ubyte.gz", arrays["t10k-labels-idx1-ubyte"])
    server.requests.clear()
    _check_same(mnist.load_data(), arrays)
    assert server.requests == ["/t10k-labels-idx1-ubyte.gz"]


def test_fashion_from_system_dir(tmp_path):
    # Debian's names: the official ones, gzip; raw (unzipped) copies must work as well.
    sysdir = tmp_path / "system" / "fashion-mnist"
    arrays = _small_set(sysdir, np.random.default_rng(3))
    os.replace(sysdir / "t10k-labels-idx1-ubyte.gz", sysdir / "t10k-labels-idx1-ubyte.tmp")
    (sysdir / "t10k-labels-idx1-ubyte").write_bytes(
        gzip.decompress((sysdir / "t10k-labels-idx1-ubyte.tmp").read_bytes())
    )
    _check_same(fashion_mnist.load_data(), arrays)
    assert not (tmp_path / "cache").exists()  # nothing downloaded or copied


def test_fashion_download(served):
    _, arrays = served
    _check_same(fashion_mnist.load_data(), arrays)


def test_corrupt_cached_file_is_named(tmp_path):
    cache = tmp_path / "cache" / "mnist"
    _small_set(cache, np.random.default_rng(4))
    bad = cache / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(gzip.compress(_idx_bytes(2049, (20,), bytes(7))))
    with pytest.raises(ValueError, match=rf"{bad}: truncated"):
        mnist.load_data()


def test_count_mismatch(tmp_path):
    cache = tmp_path / "cache" / "mnist"
    _small_set(cache, np.random.default_rng(5))
    write_idx(cache / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        mnist.load_data()


DEBIAN = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(DEBIAN), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist(monkeypatch):
    monkeypatch.delenv("POOLKIT_SYSTEM_DATA")
    (xtr, ytr), (xte, yte) = fashion_mnist.load_data()
    assert xtr.shape == (60000, 28, 28) and ytr.shape == (60000,)
    assert xte.shape == (10000, 28, 28) and yte.shape == (10000,)
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert np.bincount(ytr).tolist() == [6000] * 10
    assert np.bincount(yte).tolist() == [1000] * 10


def test_idx_module_never_unpickles():
    src = open(idx.__file__).read() + open(remote.__file__).read() + open(sample.__file__).read()
    assert "pickle" not in src.replace("unpickles", "") and "allow_pickle" not in src
