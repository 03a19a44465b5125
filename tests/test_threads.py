"""poolkit is safe to call from several Python threads under every Numba threading layer, and
in forked workers (issue 9 item 3).

poolkit runs its kernels on its own threads (poolkit._threads), or on torch's OpenMP team when
torch is loaded, and never enters a Numba parallel region, so Numba's threading layer (whose
``workqueue`` layer aborts the process when two threads enter parallel regions at once) is
never even initialised. Tests of what every call must do run on both (the ``backend``
fixture); tests of poolkit's own workers force them (``own_workers``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import poolkit
import poolkit.functional as PF
from poolkit import _threads


@pytest.fixture
def own_workers(monkeypatch):
    """poolkit's own worker threads, even if torch is loaded in this process."""
    monkeypatch.setattr(_threads, "TORCH_TEAM", False)


@pytest.fixture(params=["workers", "torch team"])
def backend(request, monkeypatch):
    """Each of the two ways parallel_for runs its ranges."""
    if request.param == "workers":
        monkeypatch.setattr(_threads, "TORCH_TEAM", False)
        yield request.param
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.ones(1 << 20).sum()  # torch's team exists
        monkeypatch.setattr(_threads, "TORCH_TEAM", True)
        assert _threads._torch_team() is not None, torch.__config__.parallel_info()
        yield request.param
    finally:
        torch.set_num_threads(old)


# One call per kernel family, on data big enough to be split across threads.
CALLS = [
    ("max_pool2d", lambda x: PF.max_pool2d(x, 2, return_indices=True)[1]),
    ("max_pool2d 3x3", lambda x: PF.max_pool2d(x, 3, 2, 1)),
    ("max backward", lambda x: PF.max_pool2d_backward(np.ones((8, 16, 32, 32), x.dtype), x, 2)),
    ("avg_pool2d", lambda x: PF.avg_pool2d(x, 3, 1, 1)),
    ("adaptive", lambda x: PF.adaptive_max_pool2d(x, (5, 7), return_indices=True)[1]),
    ("global", lambda x: poolkit.global_average_pool(x, data_format="channels_first")),
    ("lp", lambda x: PF.lp_pool2d(x, 3, 2)),
    ("blur", lambda x: PF.blur_pool2d(x)),
    ("min", lambda x: PF.min_pool2d(x, 2)),
]

WORKER = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    sys.path.insert(0, {tests!r})
    from test_threads import CALLS
    x = np.random.default_rng(0).standard_normal((8, 16, 64, 64)).astype(np.float32)
    want = [f(x) for _, f in CALLS]
    errors = []

    def run(k):
        try:
            for _ in range(3):
                for i, (name, f) in enumerate(CALLS):
                    if not np.array_equal(f(x), want[i]):
                        errors.append(name)
        except BaseException as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    import numba
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "never initialised"
    print(layer, "|", errors)
    """
)


@pytest.mark.parametrize("layer", ["workqueue", "omp", "default"])
def test_four_threads_at_once_under_each_numba_layer(layer):
    """Four Python threads call every kernel family at once: the same results as serially,
    no abort, and Numba's threading layer never starts."""
    env = dict(os.environ, POOLKIT_NUM_THREADS="2")
    if layer != "default":
        env["NUMBA_THREADING_LAYER"] = layer
    code = WORKER.format(tests=os.path.dirname(__file__))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "never initialised | []"


def _child(q):
    x = np.random.default_rng(1).standard_normal((8, 16, 64, 64)).astype(np.float32)
    q.put(([f(x).sum().item() for _, f in CALLS], _threads._torch_team() is None))


def test_forked_workers_after_the_parent_used_the_threads(backend):
    """DataLoader-style workers forked after the parent ran poolkit's threads (or torch's
    team, whose threads do not exist in a child: a child that entered it hung in libgomp,
    seen with the guard removed): the children rebuild the pool and compute what the parent
    computes."""
    x = np.random.default_rng(1).standard_normal((8, 16, 64, 64)).astype(np.float32)
    _threads.set_num_threads(2)
    want = [f(x).sum().item() for _, f in CALLS]  # the pool has run in this process
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(q,)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        got = [q.get(timeout=300) for _ in procs]  # a child hung in libgomp: queue.Empty
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [sums for sums, _ in got] == [want, want]
    if backend == "torch team":  # the parent had torch loaded: the children never enter it
        assert [no_team for _, no_team in got] == [True, True]


def test_results_do_not_depend_on_the_thread_count(backend):
    x = np.random.default_rng(2).standard_normal((8, 16, 64, 64)).astype(np.float32)
    old = _threads.get_num_threads()
    try:
        _threads.set_num_threads(1)
        one = [f(x) for _, f in CALLS]
        _threads.set_num_threads(3)
        three = [f(x) for _, f in CALLS]
    finally:
        _threads.set_num_threads(old)
    for (name, _), a, b in zip(CALLS, one, three, strict=True):
        assert np.array_equal(a, b), name


def test_set_num_threads_validates():
    with pytest.raises(TypeError):
        _threads.set_num_threads(2.0)
    with pytest.raises(ValueError):
        _threads.set_num_threads(0)


def test_workers_keep_no_reference_to_a_finished_calls_arrays(backend):
    import gc
    import weakref

    old = _threads.get_num_threads()
    _threads.set_num_threads(2)
    try:
        x = np.random.default_rng(0).standard_normal((8, 16, 64, 64), dtype=np.float32)
        y = PF.max_pool2d(x, 2)  # large enough to be split over both threads
        gx = PF.max_pool2d_backward(np.ones_like(y), x, 2)
        refs = [weakref.ref(a) for a in (x, y, gx)]
        del x, y, gx
        gc.collect()
        assert [r() is None for r in refs] == [True, True, True]
    finally:
        _threads.set_num_threads(old)


@pytest.mark.skipif(not _threads.SPIN_CYCLES, reason="idle workers spin on x86-64 only")
def test_an_idle_workers_wait_sees_a_task_posted_by_another_thread():
    """The wait an idle worker does before it sleeps (poolkit._kernels.spin) must see another
    thread's write: a plain load could be hoisted out of its loop, and then it would return
    the old value only once its (here ~seconds-long) bound ran out."""
    import threading

    from poolkit._kernels.spin import wait_for_task

    counter = np.zeros(1, np.int64)
    timer = threading.Timer(0.05, lambda: counter.__setitem__(0, 7))
    timer.start()
    try:
        assert wait_for_task(counter, 0, 10**10, 1000) == 7
    finally:
        timer.join()
    # nothing posted: the bound ends the wait, with the value seen
    assert wait_for_task(np.full(1, 3, np.int64), 3, 100_000, 1000) == 3


def test_each_worker_counts_every_task_it_ends_once(own_workers):
    """The caller watches a worker's count of ended tasks to see its task end: counted twice,
    it would stop watching before the end; never, it would watch ~0.8 ms on every call."""
    import time

    old = _threads.get_num_threads()
    x = np.random.default_rng(4).standard_normal((8, 16, 64, 64), dtype=np.float32)
    try:
        _threads.set_num_threads(2)
        for _ in range(30):
            PF.max_pool2d(x, 2)
        (w,) = _threads._workers[:1]
        deadline = time.monotonic() + 5
        while w.finished[0] != w.posted[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert w.posted[0] >= 30
        assert w.finished[0] == w.posted[0]
    finally:
        _threads.set_num_threads(old)


def test_back_to_back_calls_with_and_without_the_idle_wait_agree(monkeypatch, backend):
    """Many short parallel calls in a row (the workers then often still waiting for their
    next task), with the wait on and off: every result equals the single-thread one."""
    old = _threads.get_num_threads()
    rng = np.random.default_rng(1)
    # (8, 16, 64, 64): enough work to be split over both threads
    xs = [rng.standard_normal((8, 16, 64, 64), dtype=np.float32) for _ in range(3)]
    try:
        _threads.set_num_threads(1)
        want = [(PF.max_pool2d(x, 2), PF.avg_pool2d(x, 3, 2, 1)) for x in xs]
        _threads.set_num_threads(2)
        for spin in (_threads.SPIN_CYCLES, 0):
            monkeypatch.setattr(_threads, "SPIN_CYCLES", spin)
            for _ in range(20):
                for x, (m, a) in zip(xs, want, strict=True):
                    assert np.array_equal(PF.max_pool2d(x, 2), m)
                    assert np.array_equal(PF.avg_pool2d(x, 3, 2, 1), a)
    finally:
        _threads.set_num_threads(old)


@pytest.mark.parametrize("parts", [2, 3, 4, 8])
def test_claimed_chunks_cover_the_tasks_once_in_order(parts):
    for n in [*range(4 * parts, 4 * parts + 40), 1000, 1024, 12_544, 2**20 + 7]:
        b = _threads._chunks(n, parts)
        assert b[0] == 0 and b[-1] == n
        sizes = np.diff(b)
        assert (sizes > 0).all(), (n, b)
        smallest = max(1, n // (4 * parts))
        assert (sizes[:-1] >= smallest).all(), (n, b)
        # guided: no chunk larger than a 1/(2 parts) share of what was left before it
        left = n - np.asarray(b[:-1])
        assert (sizes <= np.maximum(smallest, left // (2 * parts))).all(), (n, b)


def test_claimed_chunks_give_the_single_thread_results(monkeypatch, backend):
    """Large calls split into chunks the threads claim in turn (here forced onto small
    calls): every result equals the one computed in a single thread."""
    x = np.random.default_rng(3).standard_normal((8, 16, 64, 64)).astype(np.float32)
    old = _threads.get_num_threads()
    try:
        _threads.set_num_threads(1)
        want = [f(x) for _, f in CALLS]
        monkeypatch.setattr(_threads, "DYNAMIC_MIN_WORK", 0)
        for n in (2, 3):
            _threads.set_num_threads(n)
            for _ in range(5):
                for (name, f), w in zip(CALLS, want, strict=True):
                    assert np.array_equal(f(x), w), (name, n)
    finally:
        _threads.set_num_threads(old)


def test_a_failing_chunk_is_raised_after_every_other_chunk_ran(monkeypatch, backend):
    """A chunk that raises stops only its own thread: the other threads claim the rest, and
    the caller gets the exception after all of them have finished (they write its arrays)."""
    import threading

    monkeypatch.setattr(_threads, "DYNAMIC_MIN_WORK", 0)
    old = _threads.get_num_threads()
    n = 64
    bounds = _threads._chunks(n, 2)
    bad = len(bounds) // 2  # a chunk in the middle
    ran, lock = [], threading.Lock()

    def kernel(lo, hi):
        if lo == bounds[bad]:
            raise ArithmeticError("chunk failed")
        with lock:
            ran.append((lo, hi))

    try:
        _threads.set_num_threads(2)
        with pytest.raises(ArithmeticError, match="chunk failed"):
            _threads.parallel_for(kernel, n, work=1 << 30)
    finally:
        _threads.set_num_threads(old)
    expected = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
                if lo != bounds[bad]]
    assert sorted(ran) == expected


@pytest.mark.parametrize("dynamic_min_work", [0, 1 << 62])  # claimed chunks; fixed ranges
def test_a_caller_done_first_takes_back_a_task_its_worker_has_not_begun(monkeypatch,
                                                                         dynamic_min_work,
                                                                         own_workers):
    """A worker that cannot start (here: the caller keeps the GIL, as when the worker's core
    is taken by another thread) costs its caller nothing: the caller runs the whole range
    itself and does not wait; the next call still covers every task once."""
    import threading

    monkeypatch.setattr(_threads, "DYNAMIC_MIN_WORK", dynamic_min_work)
    old = _threads.get_num_threads()
    old_interval = sys.getswitchinterval()
    ran, lock = [], threading.Lock()

    def kernel(lo, hi):  # pure Python: holds the GIL, which the worker needs to begin
        with lock:
            ran.append((threading.current_thread().name, lo, hi))

    try:
        _threads.set_num_threads(2)
        _threads.parallel_for(kernel, 64, work=1 << 30)  # the worker exists and is idle
        sys.setswitchinterval(10.0)
        ran.clear()
        _threads.parallel_for(kernel, 64, work=1 << 30)
        assert {name for name, _, _ in ran} == {threading.current_thread().name}
        assert _threads._workers[0].owed  # taken back, not waited for
        assert sorted((lo, hi) for _, lo, hi in ran) == sorted(
            zip(_chunks_or_halves(dynamic_min_work, 64)[:-1],
                _chunks_or_halves(dynamic_min_work, 64)[1:], strict=True))
        sys.setswitchinterval(old_interval)
        for _ in range(20):  # the withdrawn task is passed over before the next is posted
            ran.clear()
            _threads.parallel_for(kernel, 64, work=1 << 30)
            covered = sorted(t for _, lo, hi in ran for t in range(lo, hi))
            assert covered == list(range(64))
    finally:
        sys.setswitchinterval(old_interval)
        _threads.set_num_threads(old)


def _chunks_or_halves(dynamic_min_work, n):
    return _threads._chunks(n, 2) if dynamic_min_work == 0 else (0, n // 2, n)


TEAM_PROBE = textwrap.dedent(
    """
    import os, sys, threading, time
    import numpy as np
    import torch
    sys.path.insert(0, {tests!r})
    from test_threads import CALLS
    from poolkit import _threads

    torch.set_num_threads(2)
    torch.ones(1 << 20).sum()  # torch's OpenMP team exists now
    x = np.random.default_rng(5).standard_normal((8, 16, 64, 64)).astype(np.float32)
    _threads.set_num_threads(1)
    want = [f(x) for _, f in CALLS]  # loads every kernel (Numba's JIT starts a thread)
    import poolkit._kernels.team  # compiles or loads the team threads' body
    _threads.set_num_threads(2)
    team = _threads._torch_team()
    if team is not None and team._loader is not None:
        team._loader.join(300)  # the thread that loads the body off the caller's path
        # join returns before the OS thread is gone: wait for it to leave the task list (on
        # a loaded machine it was still listed here and gone after the calls)
        gone = str(team._loader.native_id)
        for _ in range(3000):
            if gone not in os.listdir("/proc/self/task"):
                break
            time.sleep(0.01)
    before = set(os.listdir("/proc/self/task"))

    seen, lock = [], threading.Lock()
    both = threading.Barrier(2, timeout=60)

    def kernel(lo, hi):  # each of the two ranges waits for the other: two threads at once
        both.wait()
        with lock:
            seen.append((threading.get_native_id(), lo, hi))

    _threads.parallel_for(kernel, 2, work=1 << 20)
    same = all(np.array_equal(f(x), w) for _ in range(50) for (_, f), w in zip(CALLS, want))
    after = set(os.listdir("/proc/self/task"))
    print(repr((sorted((lo, hi) for _, lo, hi in seen),
                len({{t for t, _, _ in seen}}),
                {{str(t) for t, _, _ in seen}} <= before,
                after == before,
                [t.name for t in threading.enumerate() if t.name == "poolkit-worker"],
                same,
                team is not None and team._entry[0] is not team._callback)))
    """
)


def test_calls_run_on_torchs_openmp_team_when_torch_is_loaded():
    """With torch loaded, poolkit's ranges run on torch's own OpenMP threads: two ranges that
    wait for each other run on two threads that existed before the call, no thread starts
    (none in 50 rounds of every kernel family), and the results equal the single-thread
    ones. With POOLKIT_TORCH_TEAM=0 poolkit's own worker runs them."""
    code = TEAM_PROBE.format(tests=os.path.dirname(__file__))
    for env_team, want in (("1", ([(0, 1), (1, 2)], 2, True, True, [], True, True)),
                           ("0", ([(0, 1), (1, 2)], 2, False, False, ["poolkit-worker"],
                                  True))):
        env = dict(os.environ, POOLKIT_TORCH_TEAM=env_team)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=900)
        assert res.returncode == 0, res.stderr[-3000:]
        got = eval(res.stdout.strip().splitlines()[-1])  # noqa: S307 - our own repr
        if env_team == "0":
            got = got[:-1]  # no team is looked up: nothing to say about its body
        assert got == want, (env_team, got)


INTERRUPT_PROBE = textwrap.dedent(
    """
    import threading
    import torch
    from poolkit import _threads

    torch.set_num_threads(2)
    torch.ones(1 << 20).sum()  # torch's OpenMP team exists now
    _threads.set_num_threads(2)
    assert _threads._torch_team() is not None

    def interrupted(lo, hi):
        raise KeyboardInterrupt

    try:
        _threads.parallel_for(interrupted, 2, work=1 << 20)
    except KeyboardInterrupt:
        pass
    else:
        raise SystemExit("the interrupt was lost")
    seen, lock = set(), threading.Lock()
    both = threading.Barrier(2, timeout=30)

    def kernel(lo, hi):  # each of the two ranges waits for the other: two threads at once
        both.wait()
        with lock:
            seen.add(threading.get_native_id())

    for _ in range(3):
        _threads.parallel_for(kernel, 2, work=1 << 20)
    print(len(seen))
    """
)


def test_an_interrupt_in_a_range_ends_the_team_and_the_next_call_uses_it():
    """A KeyboardInterrupt raised in the caller's range (and the worker's) reaches the
    caller once the team has ended; the next calls run on two threads of the team again
    (a team left started would leave them one thread, and the barrier would break)."""
    res = subprocess.run([sys.executable, "-c", INTERRUPT_PROBE], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "2"


def test_torchs_libgomp_is_the_one_found():
    import torch

    path = _threads._libgomp_of(torch)
    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        assert path is None
    else:
        torch_dir = os.path.dirname(os.path.abspath(torch.__file__))
        assert path is not None and path.startswith(torch_dir + os.sep), path
        assert os.path.basename(path).startswith("libgomp")


def test_a_call_from_another_thread_while_the_team_is_busy(backend):
    """Two Python threads call at once (one of them gets the team or the workers, the other
    runs alone), many times: every result equals the single-thread one."""
    import threading

    x = np.random.default_rng(6).standard_normal((8, 16, 64, 64), dtype=np.float32)
    old = _threads.get_num_threads()
    try:
        _threads.set_num_threads(1)
        want = [f(x) for _, f in CALLS]
        _threads.set_num_threads(2)
        bad = []

        def run():
            for _ in range(5):
                for (name, f), w in zip(CALLS, want, strict=True):
                    if not np.array_equal(f(x), w):
                        bad.append(name)

        ts = [threading.Thread(target=run) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(timeout=600)
        assert not any(t.is_alive() for t in ts)
        assert bad == []
    finally:
        _threads.set_num_threads(old)


@pytest.mark.parametrize("info", ["ATen parallel backend: native thread pool", RuntimeError])
def test_a_torch_not_on_openmp_leaves_the_calls_on_poolkits_workers(monkeypatch, info):
    """A torch on another backend, or one that cannot say (its parallel_info raises): no
    team, and parallel_for runs every range on poolkit's own threads."""
    import threading
    import types

    def parallel_info():
        if info is RuntimeError:
            raise RuntimeError("cannot say")
        return info

    fake = types.ModuleType("torch")
    fake.__file__ = os.path.join(os.sep, "nowhere", "torch", "__init__.py")
    fake.__config__ = types.SimpleNamespace(parallel_info=parallel_info)
    monkeypatch.setitem(sys.modules, "torch", fake)
    monkeypatch.setattr(_threads, "TORCH_TEAM", True)
    monkeypatch.setattr(_threads, "_team", None)
    assert _threads._torch_team() is None
    old = _threads.get_num_threads()
    ran, lock = [], threading.Lock()

    def kernel(lo, hi):
        with lock:
            ran.append((lo, hi))

    try:
        _threads.set_num_threads(2)
        _threads.parallel_for(kernel, 64, work=1 << 30)
    finally:
        _threads.set_num_threads(old)
    assert sorted(t for lo, hi in ran for t in range(lo, hi)) == list(range(64))
