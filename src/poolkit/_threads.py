"""poolkit's worker threads.

Every compiled kernel is serial and releases the GIL (``nogil=True``); parallelism comes from
calling it on disjoint task ranges from several Python threads (:func:`parallel_for`). poolkit
therefore uses no Numba threading layer at all, which makes it:

- safe to call from many Python threads at once under every Numba threading layer (Numba's
  ``workqueue`` layer aborts the process when two threads enter parallel regions together);
- safe after ``fork`` (DataLoader-style workers): the pool is rebuilt lazily in the child;
- cheaper to compile: a ``parallel=True`` kernel costs a second compilation of its body as a
  gufunc (measured: 4.8 s against 3.8 s for the 2x2 max kernel; 16 s for max backward);
- deterministic: tasks write disjoint outputs, so results do not depend on the thread count.

An idle worker first watches for its next task for ~0.8 ms without the GIL, then sleeps
(:mod:`poolkit._kernels.spin`): a run of short calls, as in a training step, then finds it
awake instead of paying a wake-up of 60-80 us per call on a virtual machine.

The number of threads is :func:`get_num_threads` (default: the CPUs this process may run on,
or ``POOLKIT_NUM_THREADS``); :func:`set_num_threads` changes it for the whole process.
"""

from __future__ import annotations

import numbers
import os
import platform
import threading

import numpy as np

__all__ = ["get_num_threads", "set_num_threads", "parallel_for", "runs_serially",
           "max_threads"]

# Below this much work (in elements touched, ~0.1 ms of pooling) a call runs in the calling
# thread: handing a range to another thread costs 15-100 us (more on a busy machine).
MIN_PARALLEL_WORK = 1 << 18

# An idle worker watches for its next task this many CPU cycles (~0.8 ms at 2.6 GHz) before it
# sleeps, and once one is posted waits ~12 us more before taking the GIL (see
# poolkit._kernels.spin). 0: it sleeps at once (and on CPUs other than x86-64, always).
SPIN_CYCLES = 2_000_000 if platform.machine().lower() in ("x86_64", "amd64") else 0
SETTLE_CYCLES = 30_000


def max_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _default_threads() -> int:
    env = os.environ.get("POOLKIT_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n >= 1:
            return n
    return max_threads()


_num_threads = _default_threads()
_busy = threading.Lock()  # held by the call that is using the workers
_workers: list[_Worker] = []


class _Worker:
    """A thread that runs one task at a time, handed over through two locks used as
    semaphores: cheaper than a ThreadPoolExecutor (measured: 15 against 23 us a call for
    two threads), because no Future or queue is made per task."""

    def __init__(self):
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.task = None
        self.error: BaseException | None = None
        self.posted = np.zeros(1, np.int64)  # tasks handed over so far, watched while idle
        threading.Thread(target=self._loop, name="poolkit-worker", daemon=True).start()

    def _loop(self) -> None:
        wait, seen = None, 0
        while True:
            if wait is not None:
                wait(self.posted, seen, SPIN_CYCLES, SETTLE_CYCLES)
            self.go.acquire()
            seen = int(self.posted[0])
            kernel, args = self.task
            try:
                kernel(*args)
            except BaseException as e:  # handed to the caller
                self.error = e
            finally:
                # Drop every reference to the task's arrays before the caller goes on: kept
                # until the next task, they held the caller's input and output alive (and
                # kept the output's memory from the buffer cache).
                self.task = kernel = args = None
                self.done.release()
            if wait is None and SPIN_CYCLES:
                # after the first task, off the caller's path: compiling it costs ~0.1 s
                # once (then it loads from Numba's cache in ~3 ms)
                wait = _task_waiter()

    def start(self, kernel, args) -> None:
        self.task = (kernel, args)
        self.posted[0] += 1
        self.go.release()

    def wait(self) -> BaseException | None:
        """Wait for the task (also through a KeyboardInterrupt: it writes the caller's
        arrays); its exception, or the interrupt, is returned."""
        interrupt = None
        while True:
            try:
                self.done.acquire()
                break
            except KeyboardInterrupt as e:
                interrupt = e
        err, self.error = self.error, None
        return err or interrupt


def _task_waiter():
    """``poolkit._kernels.spin.wait_for_task``, or a no-op if it cannot be built here."""
    try:
        from ._kernels.spin import wait_for_task

        wait_for_task(np.zeros(1, np.int64), 1, 0, 0)
        return wait_for_task
    except Exception:  # noqa: BLE001 - an LLVM without the intrinsics: sleep at once
        return lambda counter, seen, max_cycles, settle_cycles: 0


def get_num_threads() -> int:
    """Threads poolkit's kernels use (including the calling thread)."""
    return _num_threads


def set_num_threads(n) -> None:
    """Use ``n`` threads (>= 1) for poolkit's kernels from now on, in every thread."""
    global _num_threads
    if not isinstance(n, numbers.Integral) or isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__} {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _num_threads = int(n)


def _after_fork_in_child() -> None:
    # The parent's worker threads do not exist in the child, and a lock may have been held
    # by one of them: start over.
    global _busy, _workers
    _busy = threading.Lock()
    _workers = []


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def runs_serially(n_tasks: int, work: int | None) -> bool:
    """Whether :func:`parallel_for` runs these tasks in the calling thread whatever the thread
    count (one task at most, or less work than a hand-over costs)."""
    return n_tasks <= 1 or (work is not None and work < MIN_PARALLEL_WORK)


def parallel_for(kernel, n_tasks: int, *args, work: int | None = None) -> None:
    """Call ``kernel(*args, lo, hi)`` on consecutive ranges covering ``range(n_tasks)``.

    The ranges run on up to :func:`get_num_threads` threads, the caller's among them; with one
    thread, one task, ``work`` (elements touched) below ``MIN_PARALLEL_WORK``, or the workers
    busy with another thread's call, the whole range runs in the caller. ``kernel`` must
    release the GIL and its tasks must write disjoint memory. An exception raised by any range
    is re-raised after every range has finished.
    """
    parts = 1 if runs_serially(n_tasks, work) else min(_num_threads, n_tasks)
    if parts > 1 and not _busy.acquire(blocking=False):
        parts = 1  # another thread's call has the workers: no oversubscription
    if parts <= 1:
        if n_tasks > 0:
            kernel(*args, 0, n_tasks)
        return
    try:
        while len(_workers) < parts - 1:
            _workers.append(_Worker())
        bounds = [n_tasks * i // parts for i in range(parts + 1)]
        helpers = _workers[: parts - 1]
        for i, w in enumerate(helpers, start=1):
            w.start(kernel, (*args, bounds[i], bounds[i + 1]))
        err = None
        try:
            kernel(*args, bounds[0], bounds[1])
        except BaseException as e:  # wait for the other ranges first: they use our arrays
            err = e
        for w in helpers:
            err = w.wait() or err
    finally:
        _busy.release()
    if err is not None:
        raise err
