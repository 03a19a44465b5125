"""Numba's kernel cache is correct whatever filled it (issue 9).

Kernel variants used to be closures of one ``def`` sharing a qualified name: compiled in
different processes and loaded side by side they collided (``SystemError ... 'descr' is
NULL``, or silently the wrong variant). Here an empty cache is filled by separate processes,
in several orders and concurrently, then one process loads every variant and compares each
result with torch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Each case: (function, shape, dtype, layout, kwargs). Max pooling with indices in several
# layouts, ranks and dilations (the crash of the issue), plus other kernels of the family.
CASES = [
    ("max_pool1d", (2, 10, 4), "float32", "c", dict(kernel_size=4, stride=4)),
    ("adaptive_max_pool2d", (2, 3, 9, 8), "float32", "c", dict(output_size=(4, 3))),
    # the second half starts with another variant of the same kernel and dtype: a process
    # compiling it first numbered it as the first half's process numbered its own
    ("max_pool2d", (4, 8, 10, 10), "float32", "cl", dict(kernel_size=2, stride=1, padding=1,
                                                        dilation=2)),
    ("max_pool3d", (1, 2, 5, 6, 7), "float64", "f", dict(kernel_size=2, dilation=(1, 2, 1))),
]

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import torch
    import torch.nn.functional as TF
    import poolkit.functional as PF

    cases = json.loads(sys.argv[1])
    bad = []
    for i, (name, shape, dtype, layout, kw) in enumerate(cases):
        rng = np.random.default_rng(i)
        x = rng.standard_normal(shape).astype(dtype)
        if layout == "cl":
            perm = (0, *range(2, len(shape)), 1)
            back = (0, len(shape) - 1, *range(1, len(shape) - 1))
            xl = np.ascontiguousarray(x.transpose(perm)).transpose(back)
        elif layout == "f":
            xl = np.asfortranarray(x)
        else:
            xl = x
        kw = dict(kw)
        if name.startswith("fractional"):
            s = rng.random((shape[0], shape[1], 2)).astype(dtype)
            kw["_random_samples"] = s
            tkw = dict(kw, _random_samples=torch.from_numpy(s))
        else:
            tkw = kw
        if name.startswith("avg"):
            ours, ref = getattr(PF, name)(xl, **kw), getattr(TF, name)(torch.from_numpy(x), **tkw)
            ok = np.allclose(ours, ref.numpy(), rtol=1e-6)
        else:
            ours, idx = getattr(PF, name)(xl, **kw, return_indices=True)
            ref, ridx = getattr(TF, name)(torch.from_numpy(x), **tkw, return_indices=True)
            ok = np.array_equal(ours, ref.numpy()) and np.array_equal(idx, ridx.numpy())
        if not ok:
            bad.append(i)
    from poolkit._kernels import _jit
    print(json.dumps({"bad": bad, "symbols": _jit.loaded_symbols()}))
    """
)


def _run(cache: str, cases, *, wait: bool = True):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    proc = subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(cases)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return _finish(proc) if wait else proc


def _finish(proc) -> list[int]:
    """The cases that disagreed with torch; also checks that every loaded kernel has its own
    machine-code name."""
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err[-3000:]}"
    res = json.loads(out.strip().splitlines()[-1])
    symbols = res["symbols"]
    assert symbols and len(symbols) == len(set(symbols)), sorted(symbols)
    return res["bad"]


def _one_signature_per_index(cache: str) -> None:
    """Numba names a cache entry's data file <index>.<n>.nbc; with one signature per index
    (per dispatcher) n is always 1, so no two variants or signatures share an index file."""
    files = [f for _, _, fs in os.walk(cache) for f in fs if f.endswith(".nbc")]
    assert files
    assert all(f.endswith(".1.nbc") for f in files), sorted(files)


@pytest.mark.slow
def test_cache_filled_by_separate_processes_serves_every_variant(tmp_path):
    """The issue's reproduction: half of the calls in one process, the other half in a
    second, then all of them in a third (which loads everything from the cache)."""
    cache = str(tmp_path / "cache")
    half = len(CASES) // 2
    assert _run(cache, CASES[:half]) == []
    assert _run(cache, CASES[half:]) == []
    assert _run(cache, CASES) == []
    assert _run(cache, CASES[::-1]) == []
    _one_signature_per_index(cache)


@pytest.mark.slow
def test_concurrent_processes_compiling_into_one_cache(tmp_path):
    """Two processes compile the same kernels at once, in opposite orders, into one empty
    cache (Numba updates its index files by read-modify-write); a third then loads them."""
    cache = str(tmp_path / "cache")
    procs = [_run(cache, CASES, wait=False), _run(cache, CASES[::-1], wait=False)]
    for p in procs:
        assert _finish(p) == []
    assert _run(cache, CASES) == []
    _one_signature_per_index(cache)


def test_the_suites_kernel_list_names_real_specialisations(tmp_path):
    """kernel_specs.json (compiled ahead by conftest.py) names real kernels, once each, with
    keys their factories and signatures accept (not that the engine still uses each key: an
    unused one only costs compile time); and its generator reads a cache directory's index
    names back into keys."""
    sys.path.insert(0, os.path.dirname(__file__))
    import kernel_specs

    from poolkit._kernels.precompile import _kernels

    kernels = _kernels()
    specs = kernel_specs.load()
    assert len(specs) == len(set(specs)) > 100
    for name, key in specs:
        kernel = kernels[name]
        kernel._function(key)  # the factory accepts the key ...
        kernel._signature(*key)  # ... and so does the signature (nothing compiles)

    for f in ("maxpool.max_bwd__5__True__float32-400.py311.nbi", "spin.wait_for_task-59.py311.nbi",
              "maxpool.max_bwd__5__True__float32-400.py311.1.nbc",
              "blur.blur_fwd__1__0__False__float64-9.py311.nbi"):
        (tmp_path / f).write_bytes(b"")
    assert kernel_specs._parse(str(tmp_path)) == [
        ["blur_fwd", [1, 0, False, "float64"]], ["max_bwd", [5, True, "float32"]]]
