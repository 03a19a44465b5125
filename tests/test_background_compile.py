"""A kernel missing from Numba's cache compiles in a process of its own while NumPy computes
the calls that need it (``Kernel.ready_entry``, ``engine._numpy_max`` and ``_numpy_avg``): max,
min and average pooling without indices, the first call of a fresh install.

The NumPy results must be the kernel's bit for bit (the sign of zero included, and for max the
NaN payloads), since which one computes a call depends only on the state of the cache; the
calls it computes must not be memoised; and the kernel must take over once its process
has ended, whether that process filled the cache or failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import (
    FLOAT_DTYPES,
    INT_DTYPES,
    keras_args,
    make_values,
    seeds,
    torch_args,
    with_layout,
)
from hypothesis import given
from hypothesis import strategies as st

import poolkit
import poolkit.functional as PF
from poolkit import engine
from poolkit._kernels import avgpool, maxpool

STANDS_IN_FOR = (maxpool.MAX_FWD, avgpool.AVG_FWD)


@pytest.fixture
def numpy_stand_ins(monkeypatch):
    """Make every max and average pooling call that may run in NumPy do so, as while its
    kernel compiles."""
    engine.clear_plans()
    PF._CALLS.clear()
    for k in STANDS_IN_FOR:
        monkeypatch.setattr(k, "ready_entry", lambda key: None)
    yield
    engine.clear_plans()
    PF._CALLS.clear()


def _bits(a: np.ndarray) -> np.ndarray:
    """The array's bytes as unsigned integers: equal bits, not just equal values."""
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


def _both(call):
    """(the kernel's result, NumPy's result) of ``call()``."""
    engine.clear_plans()
    PF._CALLS.clear()
    kernel = call()
    mp = pytest.MonkeyPatch()
    for k in STANDS_IN_FOR:
        mp.setattr(k, "ready_entry", lambda key: None)
    try:
        engine.clear_plans()
        PF._CALLS.clear()
        fallback = call()
    finally:
        mp.undo()
        engine.clear_plans()
        PF._CALLS.clear()
    return kernel, fallback


@given(rank=st.sampled_from([1, 2, 3]), data=st.data(), seed=seeds,
       dtype=st.sampled_from(FLOAT_DTYPES + INT_DTYPES[:2] + INT_DTYPES[-1:]),
       kind=st.sampled_from(["ties", "specials", "neginf", "wide"]),
       layout=st.sampled_from(["contiguous", "channels_last_memory", "fortran"]),
       op=st.sampled_from(["max", "min"]))
def test_numpy_equals_kernel_torch_style(rank, data, seed, dtype, kind, layout, op):
    a = data.draw(torch_args(rank))
    rng = np.random.default_rng(seed)
    x = with_layout(make_values(rng, (2, 3, *a.pop("spatial")), dtype, kind), layout)
    fn = getattr(PF, f"{op}_pool{rank}d")
    kernel, fallback = _both(lambda: fn(x, **a))
    assert kernel.shape == fallback.shape and kernel.dtype == fallback.dtype
    np.testing.assert_array_equal(_bits(fallback), _bits(kernel))


@given(rank=st.sampled_from([1, 2, 3]), data=st.data(), seed=seeds,
       dtype=st.sampled_from([np.float32, np.float16, np.int16]),
       fmt=st.sampled_from(["channels_last", "channels_first"]),
       op=st.sampled_from(["max_pool", "min_pool"]))
def test_numpy_equals_kernel_keras_style(rank, data, seed, dtype, fmt, op):
    a = data.draw(keras_args(rank))
    spatial = a.pop("spatial")
    shape = (2, *spatial, 3) if fmt == "channels_last" else (2, 3, *spatial)
    x = make_values(np.random.default_rng(seed), shape, dtype, "specials")
    kernel, fallback = _both(lambda: getattr(poolkit, op)(x, data_format=fmt, **a))
    np.testing.assert_array_equal(_bits(fallback), _bits(kernel))


def _same_values(a: np.ndarray, b: np.ndarray) -> None:
    """Equal values (NaN where NaN, whatever its payload) and equal signs of zero."""
    assert a.shape == b.shape and a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@given(rank=st.sampled_from([1, 2, 3]), data=st.data(), seed=seeds,
       dtype=st.sampled_from(FLOAT_DTYPES),
       kind=st.sampled_from(["ties", "specials", "wide"]),
       layout=st.sampled_from(["contiguous", "channels_last_memory"]),
       count_include_pad=st.booleans(), divisor=st.sampled_from([None, 1, 3, 7]))
def test_numpy_average_equals_kernel(rank, data, seed, dtype, kind, layout, count_include_pad,
                                     divisor):
    a = data.draw(torch_args(rank, dilation=False, kernel_within_input=rank == 3))
    a.pop("dilation")
    rng = np.random.default_rng(seed)
    x = with_layout(make_values(rng, (2, 3, *a.pop("spatial")), dtype, kind), layout)
    fn = getattr(PF, f"avg_pool{rank}d")
    kernel, fallback = _both(lambda: fn(x, **a, count_include_pad=count_include_pad,
                                        divisor_override=divisor))
    _same_values(fallback, kernel)


@given(rank=st.sampled_from([1, 2]), data=st.data(), seed=seeds,
       fmt=st.sampled_from(["channels_last", "channels_first"]))
def test_numpy_average_equals_kernel_keras_style(rank, data, seed, fmt):
    a = data.draw(keras_args(rank, dilation=False))
    a.pop("dilation")
    spatial = a.pop("spatial")
    shape = (2, *spatial, 3) if fmt == "channels_last" else (2, 3, *spatial)
    x = make_values(np.random.default_rng(seed), shape, np.float32, "wide")
    kernel, fallback = _both(lambda: poolkit.average_pool(x, data_format=fmt, **a))
    _same_values(fallback, kernel)


def test_numpy_keeps_the_kernels_nan_and_zero_bits():
    """The last NaN of a window, with its payload, and the first of tied zeros."""
    q = np.array([[0.0, -0.0, -0.0, 0.0]], np.float32)
    n1 = np.array([0x7FC00001], np.uint32).view(np.float32)[0]
    n2 = np.array([0xFFC00002], np.uint32).view(np.float32)[0]
    x = np.stack([q, np.array([[n1, 1.0, n2, 5.0]], np.float32)])  # (2, 1, 4)
    kernel, fallback = _both(lambda: PF.max_pool1d(x, 4))
    np.testing.assert_array_equal(_bits(fallback), _bits(kernel))
    assert _bits(fallback)[1, 0, 0] == 0xFFC00002 and _bits(fallback)[0, 0, 0] == 0


def test_numpy_calls_are_not_memoised(numpy_stand_ins):
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    first = PF.max_pool2d(x, 2)
    again = PF.max_pool2d(x, 2)
    np.testing.assert_array_equal(first, again)
    assert len(engine.PLANS) == 0 and len(PF._CALLS) == 0
    PF.avg_pool2d(x, 2)
    assert len(engine.PLANS) == 0 and len(PF._CALLS) == 0
    # calls that need other kernels are memoised as ever
    PF.lp_pool2d(x, 2.0, 2)
    assert len(engine.PLANS) == 1


def test_large_windows_and_indices_do_not_run_in_numpy(numpy_stand_ins):
    """Windows of more cells than _NUMPY_MAX_WINDOW (a NumPy pass each) and calls with indices
    take the kernel (it is in the suite's cache: memoised as usual)."""
    x = np.random.default_rng(2).standard_normal((1, 2, 12, 12)).astype(np.float32)
    PF.max_pool2d(x, 9)  # 81 cells
    assert len(engine.PLANS) == 1
    PF.max_pool2d(x, 2, return_indices=True)
    assert len(engine.PLANS) == 2
    PF.max_pool2d(x, 8)  # 64 cells: NumPy
    assert len(engine.PLANS) == 2


# --------------------------------------------------------------------------------------------
# The whole life of a background compilation, in fresh processes with empty caches.

_PROBE = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import poolkit.functional as F
    from poolkit._kernels import _jit, maxpool, precompile
    from poolkit._kernels.rows import V_2x2_C1

    KEY = ("max_fwd", (V_2x2_C1, np.dtype(np.float32)))
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
    x[0, 0, 0, 0] = np.nan
    ref = np.max(x.reshape(2, 3, 8, 2, 8, 2), axis=(3, 5))  # NaN propagates in np.max
    report = {}
    if sys.argv[1] == "fail":  # a worker that compiles nothing and fails
        real = precompile.start_worker
        precompile.start_worker = lambda specs, **kw: real([("no_such_kernel", (0, "x"))], **kw)
    if sys.argv[1] == "nostart":  # no process can be started
        def cannot(specs, **kw):
            raise OSError("no interpreter")
        precompile.start_worker = cannot

    out = F.max_pool2d(x, 2)
    report["first_equal"] = bool(np.array_equal(out, ref, equal_nan=True))
    report["compiled_at_first_call"] = KEY in _jit.compiled_specialisations()
    jobs = list(_jit._jobs.values())
    report["jobs"] = len(jobs)
    if sys.argv[1] == "fork" and jobs:
        pid = os.fork()
        if pid == 0:  # a child does not wait for its parent's job: it loads or compiles
            ok = np.array_equal(F.max_pool2d(x, 2), ref, equal_nan=True)
            os._exit(0 if ok and KEY in _jit.compiled_specialisations() else 3)
        report["child_status"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    for process in jobs:
        report["worker_exit"] = process.wait(timeout=240)
    out = F.max_pool2d(x, 2)
    report["later_equal"] = bool(np.array_equal(out, ref, equal_nan=True))
    report["compiled_later"] = KEY in _jit.compiled_specialisations()
    report["cached"] = maxpool.MAX_FWD.is_cached(KEY[1])
    report["jobs_left"] = len(_jit._jobs)
    print(json.dumps(report))
""")


def _probe(tmp_path, mode: str, background: str = "1") -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               POOLKIT_BACKGROUND_COMPILE=background)
    res = subprocess.run([sys.executable, "-c", _PROBE, mode], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_first_call_runs_while_a_worker_compiles_then_the_kernel_takes_over(tmp_path):
    r = _probe(tmp_path, "fork")
    assert r["first_equal"] and not r["compiled_at_first_call"]
    assert r["jobs"] == 1 and r["worker_exit"] == 0
    assert r["child_status"] == 0
    assert r["later_equal"] and r["compiled_later"] and r["cached"] and r["jobs_left"] == 0


def test_a_failed_worker_leaves_the_compiling_to_the_caller(tmp_path):
    r = _probe(tmp_path, "fail")
    assert r["first_equal"] and not r["compiled_at_first_call"]
    assert r["jobs"] == 1 and r["worker_exit"] != 0
    # the next call compiled the kernel itself (and so filled the cache)
    assert r["later_equal"] and r["compiled_later"] and r["cached"] and r["jobs_left"] == 0


def test_turned_off_the_first_call_compiles(tmp_path):
    r = _probe(tmp_path, "plain", background="0")
    assert r["first_equal"] and r["compiled_at_first_call"] and r["jobs"] == 0


def test_without_a_process_the_first_call_compiles(tmp_path):
    r = _probe(tmp_path, "nostart")
    assert r["first_equal"] and r["compiled_at_first_call"] and r["jobs"] == 0


def test_a_program_that_exits_first_leaves_the_kernel_to_reach_the_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), POOLKIT_BACKGROUND_COMPILE="1")
    one_call = ("import numpy as np, poolkit.functional as F; "
                "F.max_pool2d(np.ones((1, 1, 4, 4), np.float32), 2)")
    subprocess.run([sys.executable, "-c", one_call], env=env, check=True, timeout=120)
    wait = textwrap.dedent("""
        import time, numpy as np
        from poolkit._kernels import maxpool
        from poolkit._kernels.rows import V_2x2_C1
        key = (V_2x2_C1, np.dtype(np.float32))
        t = time.monotonic()
        while not maxpool.MAX_FWD.is_cached(key) and time.monotonic() - t < 240:
            time.sleep(0.5)
        print(maxpool.MAX_FWD.is_cached(key))
    """)
    res = subprocess.run([sys.executable, "-c", wait], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.stdout.strip().splitlines()[-1] == "True", res.stderr[-2000:]


@pytest.mark.parametrize("value, on", [("0", False), ("false", False), (" Off ", False),
                                       ("no", False), ("1", True), ("yes", True), (None, True)])
def test_settings_turn_off_alike(monkeypatch, value, on):
    """POOLKIT_BACKGROUND_COMPILE and POOLKIT_TORCH_TEAM are parsed by one function."""
    from poolkit._env import env_flag

    if value is None:
        monkeypatch.delenv("POOLKIT_X_FLAG", raising=False)
    else:
        monkeypatch.setenv("POOLKIT_X_FLAG", value)
    assert env_flag("POOLKIT_X_FLAG") is on
