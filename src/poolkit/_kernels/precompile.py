"""Compile kernel specialisations into Numba's cache ahead of use, in parallel processes.

A fresh install compiles every kernel it uses once (seconds each). A command that knows its
kernels (``poolkit demo``) calls :func:`precompile` first: the specialisations missing from the
cache are shared out between this process and one worker process per other CPU, so the
compiling takes about 1/CPUs of the time, and the user is told once how long it will take.
Safe because every specialisation has its own cache index holding one signature
(see _jit.py): processes compiling at once can only write the same files.

    python -m poolkit._kernels.precompile '[["max_fwd", [2, "float32"]], ...]'

compiles the given specialisations (the worker's entry point).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time

import numpy as np

from . import _jit

# The modules that define kernels (importing them registers their Kernel objects).
MODULES = ("maxpool", "avgpool", "windows", "fractional", "unpool", "blur", "conv", "dense",
           "optim")


def _kernels() -> dict[str, _jit.Kernel]:
    for m in MODULES:
        importlib.import_module(f"{__package__}.{m}")
    return {k.name: k for k in _jit.KERNELS}


def _encode(key: tuple) -> list:
    return [str(v) if isinstance(v, np.dtype) else v for v in key]


def _decode(key: list) -> tuple:
    # the last entry of every key is a dtype name; the others are ints and bools
    return (*key[:-1], np.dtype(key[-1]))


def missing(specs) -> list[tuple[str, tuple]]:
    """The (kernel name, key) pairs of ``specs`` that are neither loaded nor cached."""
    kernels = _kernels()
    return [(name, key) for name, key in specs if not kernels[name].is_cached(key)]


def _compile(specs) -> None:
    kernels = _kernels()
    for name, key in specs:
        kernels[name][key]


def _shares(specs, parts: int):
    """Split specs into ``parts`` groups of about equal compile cost (greedy, costliest first)."""
    kernels = _kernels()
    groups = [[] for _ in range(parts)]
    load = [0.0] * parts
    for spec in sorted(specs, key=lambda s: -kernels[s[0]].cost):
        i = load.index(min(load))
        groups[i].append(spec)
        load[i] += kernels[spec[0]].cost
    return groups, max(load)


def start_worker(specs, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """A process that compiles ``specs`` ((kernel name, key) pairs) into Numba's cache and
    exits; it imports this copy of poolkit."""
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", __name__, json.dumps([[n, _encode(k)] for n, k in specs])],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
    )


def precompile(specs, processes: int | None = None, notify=None) -> float:
    """Compile the specialisations of ``specs`` missing from the cache, over ``processes``
    processes (default: the CPUs this process may use); returns the seconds it took (0.0 if
    everything was cached). ``notify(message)`` hears the estimate first."""
    from .._threads import max_threads

    todo = missing(specs)
    if not todo:
        return 0.0
    parts = max(1, min(processes or max_threads(), len(todo)))
    groups, estimate = _shares(todo, parts)
    estimate += 1.0 if parts > 1 else 0.0  # a worker's start-up (Python, NumPy, Numba)
    if notify is not None:
        notify(f"compiling {len(todo)} kernels, once: ~{estimate:.0f} s "
               f"({parts} process{'es' if parts > 1 else ''}; later runs load them from "
               f"Numba's cache)")
    t0 = time.perf_counter()
    workers = [start_worker(group, stderr=subprocess.PIPE) for group in groups[1:]]
    try:
        _compile(groups[0])
    finally:
        for w, group in zip(workers, groups[1:], strict=True):
            w.communicate()
            if w.returncode != 0:  # a failed worker only costs time: its kernels compile here
                _compile(group)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    specs = json.loads((argv or sys.argv[1:])[0])
    _compile([(name, _decode(key)) for name, key in specs])
    return 0


if __name__ == "__main__":
    sys.exit(main())
