"""Offline-first loading of the full MNIST and Fashion-MNIST IDX files.

For each dataset the four files are looked up, in order:

1. the cache directory ``$POOLKIT_DATA/<name>`` (default ``~/.cache/poolkit/<name>``), or the
   ``path`` given to ``load``;
2. the system directory ``$POOLKIT_SYSTEM_DATA/<system_subdir>`` (default
   ``/usr/share/datasets``) if the dataset has one: Debian's ``dataset-fashion-mnist`` puts
   Fashion-MNIST in /usr/share/datasets/fashion-mnist with the official file names;
3. a download from the official mirrors (``$POOLKIT_DATA_URL`` replaces them with one base
   URL), with a progress bar on stderr, md5 verification and an atomic write into the cache.

Each file may be stored gzip-compressed (official name) or raw (name without ".gz").
Checksums are verified on download; files found locally are validated by the IDX reader
instead (Debian recompresses the .gz files, so their bytes differ from the official ones while
the data is the same).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from .._io import atomic_write
from ..errors import InvalidValue, UserError
from .idx import read_idx

__all__ = [
    "Dataset",
    "DatasetUnavailableError",
    "ChecksumMismatchError",
    "MNIST",
    "FASHION_MNIST",
    "cache_dir",
    "system_dir",
    "fetch",
    "load",
]

TIMEOUT = 10.0  # seconds per connection attempt / read
SYSTEM_DATA = "/usr/share/datasets"
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# What "could not download" means; ChecksumMismatchError (also an OSError) is deliberately not here.
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError)


class DatasetUnavailableError(UserError, OSError):
    """The dataset is neither cached, nor installed, nor downloadable right now (the message
    says what to install or where to put the files; the command line reports it as an error,
    not a crash)."""


class ChecksumMismatchError(UserError, OSError):
    """A downloaded file's md5 is not the published one (nothing was written to the cache)."""


@dataclass(frozen=True)
class Dataset:
    """One IDX dataset: its four files, their published md5 sums and where to find them.

    ``md5`` maps each file name to its published md5 (a dict, so tests can patch entries).
    """

    name: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    system_subdir: str | None = None
    install_hint: str | None = None
    extra_hint: str | None = None
    files: tuple[str, ...] = field(default=FILES)


MNIST = Dataset(
    name="mnist",
    md5={
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    # Keras itself ships MNIST as mnist.npz; these Google/PyTorch mirrors serve the IDX files.
    mirrors=(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ),
    extra_hint=(
        "use the embedded 10,000-digit sample, which needs no network: "
        "poolkit.keras.datasets.mnist_sample.load_data()"
    ),
)

FASHION_MNIST = Dataset(
    name="fashion-mnist",
    md5={
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    # The first is the base URL keras.datasets.fashion_mnist uses; the second is Zalando's.
    mirrors=(
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
    system_subdir="fashion-mnist",
    install_hint="apt-get install dataset-fashion-mnist",
)


def cache_dir(dataset: Dataset) -> str:
    """``$POOLKIT_DATA/<name>``, default ``~/.cache/poolkit/<name>`` (not created here)."""
    root = os.environ.get("POOLKIT_DATA") or os.path.join("~", ".cache", "poolkit")
    return os.path.join(os.path.expanduser(root), dataset.name)


def system_dir(dataset: Dataset) -> str | None:
    """``$POOLKIT_SYSTEM_DATA/<system_subdir>`` (default root /usr/share/datasets), or None."""
    if dataset.system_subdir is None:
        return None
    return os.path.join(os.environ.get("POOLKIT_SYSTEM_DATA") or SYSTEM_DATA, dataset.system_subdir)


def _find(directory: str, fname: str) -> str | None:
    for candidate in (fname, fname.removesuffix(".gz")):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _find_all(directory: str | None, files: tuple[str, ...]) -> list[str] | None:
    if directory is None:
        return None
    paths = [_find(directory, f) for f in files]
    return paths if all(paths) else None  # type: ignore[return-value]


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    return str(getattr(exc, "reason", None) or exc)


def _size(n: float) -> str:
    if n < 1e3:
        return f"{n:.0f} B"
    return f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"


def _progress(label: str, done: int, total: int | None, start: float, final: bool) -> None:
    rate = done / max(time.monotonic() - start, 1e-9)
    pct = f"/{_size(total)} {100 * done / total:5.1f}%" if total else ""
    # Pad so a shorter redraw fully overwrites the previous line.
    line = f"{label}: {_size(done)}{pct}  {_size(rate)}/s"
    sys.stderr.write(f"\r{line:<72}")
    if final:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _download(url: str, dest: str, md5: str) -> None:
    """Download ``url`` to ``dest`` atomically; raise ChecksumMismatchError on a bad md5.

    Network failures propagate as OSError (URLError, TimeoutError, ...); in every failure the
    temporary file is removed and ``dest`` is untouched (:func:`poolkit._io.atomic_write`).
    """

    def write(out) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            done, start, shown = 0, time.monotonic(), 0.0
            label = os.path.basename(dest)
            while block := resp.read(1 << 16):
                out.write(block)
                digest.update(block)
                done += len(block)
                if time.monotonic() - shown > 0.1:  # at most ~10 redraws per second
                    _progress(label, done, total, start, final=False)
                    shown = time.monotonic()
            _progress(label, done, total, start, final=True)
        if digest.hexdigest() != md5:
            raise ChecksumMismatchError(
                f"{url}: md5 {digest.hexdigest()} does not match the published {md5} "
                f"({done} bytes received); nothing was written to {os.path.dirname(dest)}"
            )

    atomic_write(dest, write)


def _unavailable(dataset: Dataset, directory: str, errors: list[str]) -> DatasetUnavailableError:
    steps = []
    if dataset.install_hint:
        steps.append(f"run `{dataset.install_hint}` (installs them in {system_dir(dataset)})")
    steps.append(f"put the four files ({', '.join(dataset.files)}; gzip or not) in {directory}")
    steps.append(f"set POOLKIT_DATA to a directory whose '{dataset.name}' subdirectory has them")
    if dataset.extra_hint:
        steps.append(dataset.extra_hint)
    return DatasetUnavailableError(
        f"{dataset.name} is not in {directory} and could not be downloaded "
        f"({'; '.join(errors)}). To get it: " + ", or ".join(steps) + "."
    )


def fetch(dataset: Dataset, path: str | os.PathLike | None = None) -> list[str]:
    """Return local paths of the dataset's files (in ``dataset.files`` order).

    ``path``: a directory to use instead of the cache directory. Looks there, then in the
    system directory, then downloads the missing files into ``path``/the cache. Raises
    DatasetUnavailableError (with what to install or where to put the files) when offline,
    ChecksumMismatchError when a download is corrupt.
    """
    directory = os.fspath(path) if path is not None else cache_dir(dataset)
    for where in (directory, system_dir(dataset)):
        found = _find_all(where, dataset.files)
        if found:
            return found
    env_url = os.environ.get("POOLKIT_DATA_URL")
    mirrors = (env_url,) if env_url else dataset.mirrors
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:  # a file in its place or on its path: the user's path is wrong
        raise InvalidValue(f"{dataset.name}: cannot use {directory!r} as the data directory "
                           f"({e.strerror or e}); give a directory") from None
    paths, errors = [], []
    for fname in dataset.files:
        local = _find(directory, fname)
        for base in mirrors if local is None else ():
            url = base.rstrip("/") + "/" + fname
            sys.stderr.write(f"Downloading {url}\n")
            try:
                _download(url, os.path.join(directory, fname), dataset.md5[fname])
            except _NETWORK_ERRORS as exc:
                errors.append(f"{url}: {_reason(exc)}")
                continue
            local = os.path.join(directory, fname)
            break
        if local is None:
            raise _unavailable(dataset, directory, errors)
        paths.append(local)
    return paths


def load(
    dataset: Dataset, path: str | os.PathLike | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``((x_train, y_train), (x_test, y_test))`` as uint8 arrays, like Keras.

    x: (n, 28, 28), y: (n,). Finds or downloads the files with ``fetch``; a malformed file
    raises ValueError naming it (an image/label count mismatch too).
    """
    xtr, ytr, xte, yte = (
        read_idx(p, ndim=3 if "images" in os.path.basename(p) else 1) for p in fetch(dataset, path)
    )
    for x, y, which in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise InvalidValue(
                f"{dataset.name} {which}: expected uint8 IDX files, got {x.dtype}/{y.dtype}"
            )
        if len(x) != len(y):
            raise InvalidValue(f"{dataset.name} {which}: {len(x)} images but {len(y)} labels")
    return (xtr, ytr), (xte, yte)
