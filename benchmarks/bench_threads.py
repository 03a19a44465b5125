"""What one parallel call costs: poolkit's own workers against torch's OpenMP team.

    python benchmarks/bench_threads.py [--calls 3000] [--us 50]

Times ``poolkit._threads.parallel_for`` over a compiled kernel that holds its thread for
``--us`` microseconds per range without the GIL (a cycle-counter wait, no memory traffic), in
one process with torch loaded and its team started, the two ways alternating: two ranges (one
a thread; ideal: ``--us``) and 100 claimed chunks of ``--us``/50 each (ideal: the same). The
excess over ``--us`` is the hand-over: waking the other thread, its GIL, the end. Median and
minimum in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _timing import time_calls
from numba import njit

from poolkit import _threads
from poolkit._kernels.spin import _cycles, _pause


@njit(nogil=True)
def _hold(cycles_per_task, lo, hi):
    t0 = _cycles()
    while _cycles() - t0 < cycles_per_task[0] * (hi - lo):
        _pause()


@njit
def _now():
    return _cycles()


def _cycles_per_us() -> float:
    t, c = time.perf_counter(), _now()
    time.sleep(0.2)
    return (_now() - c) / ((time.perf_counter() - t) * 1e6)


def _time(fn, n: int) -> str:
    ts = time_calls(fn, n)
    return f"{statistics.median(ts) * 1e6:7.1f} {min(ts) * 1e6:7.1f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--us", type=float, default=50.0, help="work per thread and call")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    _threads.set_num_threads(2)
    torch.ones(1 << 20).sum()  # torch's team exists
    per_us = _cycles_per_us()
    two = np.array([int(args.us * per_us)], np.int64)
    chunked = np.array([int(args.us * per_us / 50)], np.int64)
    print(f"torch {torch.__version__}, 2 threads; {args.us:g} us of work per thread and call; "
          f"median and minimum of {args.calls} calls, us")
    print(f"{'threads':22s} {'2 ranges':>15s} {'100 chunks':>15s}")
    for _ in range(args.rounds):
        for team in (False, True):
            _threads.TORCH_TEAM = team
            if team and _threads._torch_team() is None:
                print("torch's team: not available here (torch not on libgomp)")
                continue
            a = _time(lambda: _threads.parallel_for(_hold, 2, two, work=1 << 20), args.calls)
            b = _time(lambda: _threads.parallel_for(_hold, 100, chunked, work=1 << 30),
                      args.calls)
            print(f"{'torch team' if team else 'poolkit workers':22s} {a}  {b}")


if __name__ == "__main__":
    main()
