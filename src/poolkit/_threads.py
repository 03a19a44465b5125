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

A large call (``work`` of ``DYNAMIC_MIN_WORK`` elements or more) is cut into chunks that the
threads claim in turn, the first ones large, the last ones smaller: when another thread (torch's
OpenMP threads spin for milliseconds after each torch call) or process takes a core from one
thread, the others do more of the work, instead of the whole call waiting for a fixed half.
Smaller calls keep one fixed range per thread (a claim costs a kernel entry, ~1-3 us).

A caller done with its own part takes back the task of a worker that has not begun it yet
(:meth:`_Worker.withdraw`): it runs that worker's range itself, or, with claimed chunks, knows
none is left. A worker woken while another thread holds its core (torch's OpenMP thread spins
~8 ms after each torch call; measured here) began its task up to 3 ms after its caller had
done all the work alone, and the caller waited for it.

An idle worker first watches for its next task for ~0.8 ms without the GIL, then sleeps
(:mod:`poolkit._kernels.spin`): a run of short calls, as in a training step, then finds it
awake instead of paying a wake-up of 60-80 us per call on a virtual machine. A caller done
with its own range watches for its workers' end the same way before it sleeps on their lock.

When torch is loaded and runs its CPU ops on OpenMP (libgomp, as its Linux wheels do),
poolkit's calls run on torch's own OpenMP team instead (:class:`_OmpTeam`): the caller starts
the team (libgomp's ``GOMP_parallel_start``) with a callback that the other team threads run,
and every thread, the caller's among them, claims ranges as above. After
each of its calls a torch thread spins for milliseconds waiting for torch's next parallel
region; with poolkit's own workers beside it, two threads fought over each core (poolkit's
medians 1.8-2.3x its minimums, measured), while the spinning thread now takes poolkit's ranges
itself. ``POOLKIT_TORCH_TEAM=0`` (read at import) or ``TORCH_TEAM = False`` keeps poolkit's
own workers. A child forked from a process with torch loaded never enters the parent's team
(libgomp's threads do not survive a fork): it uses poolkit's own workers.

The number of threads is :func:`get_num_threads` (default: the CPUs this process may run on,
or ``POOLKIT_NUM_THREADS``); :func:`set_num_threads` changes it for the whole process.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import numbers
import os
import platform
import sys
import threading

import numpy as np

from ._env import env_flag

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
# A caller that sees its worker's task end waits this much longer (~4 us) before it asks for
# the GIL, which the worker holds for the few bytecodes until its own idle wait.
DONE_SETTLE_CYCLES = 10_000


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
_wait = None  # poolkit._kernels.spin.wait_for_task once a worker has loaded it


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
        # The posted task's ticket: whichever of the worker and the caller acquires it first
        # runs the task (see withdraw). Replaced only by the next start(), which waits until
        # the worker is done with this one.
        self.ticket = threading.Lock()
        self.owed = False  # a withdrawn task this worker has yet to pass over
        self.posted = np.zeros(1, np.int64)  # tasks handed over so far, watched while idle
        self.finished = np.zeros(1, np.int64)  # tasks ended so far, watched by the caller
        threading.Thread(target=self._loop, name="poolkit-worker", daemon=True).start()

    def _loop(self) -> None:
        global _wait
        wait, seen = None, 0
        while True:
            if wait is not None:
                wait(self.posted, seen, SPIN_CYCLES, SETTLE_CYCLES)
            self.go.acquire()
            seen = int(self.posted[0])
            task = self.task
            try:
                if task is not None and self.ticket.acquire(blocking=False):
                    task[0](*task[1])
            except BaseException as e:  # handed to the caller
                self.error = e
            finally:
                # Drop every reference to the task's arrays before the caller goes on: kept
                # until the next task, they held the caller's input and output alive (and
                # kept the output's memory from the buffer cache).
                self.task = task = None
                self.done.release()
                self.finished[0] += 1
            if wait is None and SPIN_CYCLES:
                # after the first task, off the caller's path: compiling it costs ~0.1 s
                # once (then it loads from Numba's cache in ~3 ms)
                wait = _wait = _task_waiter()

    def settle(self) -> None:
        """Wait until the worker has passed over a task withdrawn from it (it has not
        yet woken up to see it go), so that a new one can be posted."""
        if self.owed:
            self.owed = False
            err = self.wait()  # the task did not run: only an interrupt can come back
            if err is not None:
                raise err

    def start(self, kernel, args) -> None:
        self.ticket = threading.Lock()
        self.task = (kernel, args)
        self.posted[0] += 1
        self.go.release()

    def withdraw(self) -> bool:
        """Take the posted task back if the worker has not begun it (True: the caller
        runs it, or knows nothing is left of it, and does not wait for this worker). A worker
        woken late, on a core another thread holds, then costs its caller nothing."""
        if not self.ticket.acquire(blocking=False):
            return False
        self.task = None  # the worker, when it wakes, drops the task and its arrays
        self.owed = True
        return True

    def wait(self) -> BaseException | None:
        """Wait for the task (also through a KeyboardInterrupt: it writes the caller's
        arrays); its exception, or the interrupt, is returned."""
        if _wait is not None:
            # Watch for the end without the GIL first: a caller asleep on the lock is woken
            # only after the worker has taken the GIL to release it and handed the GIL back,
            # each a wake-up of a sleeping thread (~87 us a call in a training step).
            _wait(self.finished, int(self.posted[0]) - 1, SPIN_CYCLES, DONE_SETTLE_CYCLES)
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
    # by one of them: start over. The threads of torch's OpenMP team, if torch was loaded,
    # do not exist either, and libgomp may hang entering it: the child keeps to poolkit's
    # own workers.
    global _busy, _workers, _team, _forked
    _busy = threading.Lock()
    _workers = []
    _team, _forked = None, _forked or "torch" in sys.modules


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def runs_serially(n_tasks: int, work: int | None) -> bool:
    """Whether :func:`parallel_for` runs these tasks in the calling thread whatever the thread
    count (one task at most, or less work than a hand-over costs)."""
    return n_tasks <= 1 or (work is not None and work < MIN_PARALLEL_WORK)


# Calls touching this many elements or more (~1 ms of pooling) are split into claimed chunks
# (see the module's docstring); False: always one fixed range per thread.
DYNAMIC = True
DYNAMIC_MIN_WORK = 1 << 22


@functools.lru_cache(maxsize=512)
def _chunks(n_tasks: int, parts: int) -> tuple[int, ...]:
    """Bounds of the chunks a call's threads claim in turn: guided sizes, each a 1/(2 parts)
    share of what is left and at least 1/(4 parts) of the whole, so a thread that loses its core
    to another process for a while leaves its later chunks to the others."""
    smallest = max(1, n_tasks // (4 * parts))
    bounds, lo = [0], 0
    while lo < n_tasks:
        lo = min(n_tasks, lo + max(smallest, (n_tasks - lo) // (2 * parts)))
        bounds.append(lo)
    return tuple(bounds)


def _run_claimed(kernel, args, bounds, claims) -> None:
    """Run the chunks this thread claims from ``claims`` (a shared ``itertools.count``, whose
    every step is atomic under the GIL) until none is left."""
    last = len(bounds) - 1
    for i in claims:
        if i >= last:
            return
        kernel(*args, bounds[i], bounds[i + 1])


# Run on torch's OpenMP team when torch is loaded on libgomp (see the module's docstring).
TORCH_TEAM = env_flag("POOLKIT_TORCH_TEAM")
_team = None  # (torch module, _OmpTeam or None) once looked up
_forked = False  # this process is a fork of one that had torch (and maybe its team) loaded

# A team thread other than the caller's waits this many cycles (~3 us) before it asks for the
# GIL (see poolkit._kernels.team).
TEAM_SETTLE_CYCLES = 8_000
# void (*)(void *): the body libgomp runs on every thread of the team but the caller's
_BODY = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_keep_thread_state = ctypes.pythonapi.PyGILState_Ensure  # called with the GIL held


class _OmpTeam:
    """An OpenMP runtime's thread team, entered through libgomp's ``GOMP_parallel_start(fn,
    data, num_threads)`` and ``GOMP_parallel_end()`` (GCC's OpenMP ABI, what GCC emits for a
    parallel region's master before 4.9). The team's other threads run a ctypes callback that
    takes the GIL and claims ranges; the caller claims ranges in its own Python frame, between
    the two calls, so its first range starts without a callback's thread-state juggling
    (``GOMP_parallel(fn, ...)`` would run ``fn`` on the caller too). ``GOMP_parallel_end``
    returns once every thread has left the callback, so no range outlives the call."""

    def __init__(self, path: str):
        lib = ctypes.CDLL(path)  # the already loaded library: dlopen returns its handle
        self._start = lib.GOMP_parallel_start
        self._start.argtypes = [_BODY, ctypes.c_void_p, ctypes.c_uint]
        self._start.restype = None
        self._end = lib.GOMP_parallel_end
        self._end.argtypes = []
        self._end.restype = None
        self._callback = _BODY(self._run_body)  # kept alive as long as the team object
        self._job = None
        self._local = threading.local()  # one per Python thread state
        # What the team's threads run, with its data: the callback itself, then (x86-64) a compiled
        # body that lets the caller's first range start before the other threads ask for the
        # GIL. That body is loaded, or compiled once (~0.5 s), off the caller's path.
        self._entry = (self._callback, None)
        self._loader = None
        if SPIN_CYCLES:
            self._loader = threading.Thread(target=self._load_body, args=(lib,),
                                            name="poolkit-team-body", daemon=True)
            self._loader.start()

    def _load_body(self, lib) -> None:
        try:
            from ._kernels.team import team_body

            addr = ctypes.cast(self._callback, ctypes.c_void_p).value
            tnum = ctypes.cast(lib.omp_get_thread_num, ctypes.c_void_p).value
            data = (ctypes.c_int64 * 3)(addr, tnum, TEAM_SETTLE_CYCLES)
            self._entry = (ctypes.cast(team_body.address, _BODY), data)  # one assignment
        except Exception:  # noqa: BLE001 - an LLVM without the intrinsics: no settling
            pass

    def _run_body(self, _data) -> None:
        if not getattr(self._local, "kept", False):
            # ctypes gives a team thread a new Python thread state for each callback and
            # deletes it after (~20 us of a call's 25, measured). One more PyGILState_Ensure,
            # never released, keeps this thread's state for its later callbacks.
            _keep_thread_state()
            self._local.kept = True
        job = self._job
        if job is None:
            return
        kernel, args, bounds, claims, errors = job
        try:
            _run_claimed(kernel, args, bounds, claims)
        except BaseException as e:  # noqa: BLE001 - handed to the caller, never into C
            errors.append(e)

    def run(self, kernel, args, bounds, threads: int) -> BaseException | None:
        """Run ``kernel(*args, lo, hi)`` on the ranges ``bounds`` on up to ``threads``
        threads of the team; the first exception a range raised, if any."""
        errors: list[BaseException] = []
        claims = itertools.count()
        self._job = (kernel, args, bounds, claims, errors)
        body, data = self._entry
        try:
            # Inside the try: CPython raises a pending signal's exception (KeyboardInterrupt)
            # only once a call has returned, and the team must be ended all the same. (The
            # call's arguments are ours and always convert, so it never fails to start.)
            self._start(body, data, threads)
            _run_claimed(kernel, args, bounds, claims)
        except BaseException as e:  # noqa: BLE001 - raised once the team has ended
            errors.append(e)
        finally:
            self._end()
            self._job = None
        return errors[0] if errors else None


def _libgomp_of(torch) -> str | None:
    """The path of the libgomp torch runs its parallel regions on, or None (another backend,
    another OpenMP runtime, not Linux)."""
    if "ATen parallel backend: OpenMP" not in torch.__config__.parallel_info():
        return None
    paths = set()
    try:
        with open("/proc/self/maps") as f:  # Linux: the files mapped into this process
            for line in f:
                fields = line.split(None, 5)
                if len(fields) == 6 and os.path.basename(fields[5]).startswith("libgomp"):
                    paths.add(fields[5].rstrip("\n"))
    except OSError:
        return None
    torch_dir = os.path.dirname(os.path.abspath(torch.__file__))
    own = {p for p in paths if p.startswith(torch_dir + os.sep)}
    chosen = own or paths
    return next(iter(chosen)) if len(chosen) == 1 else None


def _torch_team() -> _OmpTeam | None:
    """torch's OpenMP team when torch is loaded on libgomp and poolkit may use it."""
    global _team
    if not TORCH_TEAM or _forked:
        return None
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if _team is None or _team[0] is not torch:
        try:
            path = _libgomp_of(torch)
            team = _OmpTeam(path) if path else None
        except AttributeError:  # torch still being imported (no __config__ yet): ask later
            return None
        except Exception:  # noqa: BLE001 - the library cannot be opened again, lacks
            team = None  # GOMP_parallel_start, or torch cannot say: poolkit's own workers
        _team = (torch, team)
    return _team[1]


def _run_on_workers(kernel, args, bounds, parts: int, dynamic: bool):
    """:func:`parallel_for`'s ranges on the caller and ``parts - 1`` of poolkit's workers
    (claimed chunks if ``dynamic``, else one range a thread); the first exception a range
    raised, if any."""
    while len(_workers) < parts - 1:
        _workers.append(_Worker())
    helpers = _workers[: parts - 1]
    for w in helpers:
        w.settle()
    err = None
    if dynamic:
        claims = itertools.count()
        for w in helpers:
            w.start(_run_claimed, (kernel, args, bounds, claims))
        try:
            _run_claimed(kernel, args, bounds, claims)
        except BaseException as e:  # wait for the other ranges first: they use our arrays
            err = e
        # every chunk is claimed now: a helper that has not begun has nothing left to do
        waiting = [w for w in helpers if err is not None or not w.withdraw()]
    else:
        for i, w in enumerate(helpers, start=1):
            w.start(kernel, (*args, bounds[i], bounds[i + 1]))
        try:
            kernel(*args, bounds[0], bounds[1])
        except BaseException as e:  # wait for the other ranges first: they use our arrays
            err = e
        waiting = []
        for i, w in enumerate(helpers, start=1):
            if err is None and w.withdraw():  # not begun yet: its range runs here
                try:
                    kernel(*args, bounds[i], bounds[i + 1])
                except BaseException as e:
                    err = e
            else:
                waiting.append(w)
    for w in waiting:
        err = w.wait() or err
    return err


def parallel_for(kernel, n_tasks: int, *args, work: int | None = None) -> None:
    """Call ``kernel(*args, lo, hi)`` on consecutive ranges covering ``range(n_tasks)``.

    The ranges run on up to :func:`get_num_threads` threads, the caller's among them (large
    calls as chunks each thread claims in turn, smaller ones one range a thread); with one
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
        dynamic = (DYNAMIC and n_tasks >= 4 * parts and work is not None
                   and work >= DYNAMIC_MIN_WORK)
        bounds = (_chunks(n_tasks, parts) if dynamic
                  else tuple(n_tasks * i // parts for i in range(parts + 1)))
        team = _torch_team()
        if team is not None:
            err = team.run(kernel, args, bounds, parts)
        else:
            err = _run_on_workers(kernel, args, bounds, parts, dynamic)
    finally:
        _busy.release()
    if err is not None:
        raise err
