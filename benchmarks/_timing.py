"""Timing helpers shared by the benchmarks: interleaved rounds, medians and minimums."""

from __future__ import annotations

import argparse
import os
import statistics
import time

# Timed calls must run poolkit's kernels: with an empty Numba cache, a first call would
# otherwise hand its kernel to a background compile and the timed calls run NumPy's stand-in
# until it ends (measured: avg_pool2d 23.7 ms and NHWC max 105 ms a call instead of ~2-3 ms).
os.environ.setdefault("POOLKIT_BACKGROUND_COMPILE", "0")


def time_calls(fn, repeats: int) -> list[float]:
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def interleaved(fa, fb, rounds: int, per_round: int = 3) -> tuple[list[float], list[float]]:
    """Times of ``fa`` and ``fb`` in alternating rounds, so load on a shared machine hits both
    alike."""
    fa()
    fb()
    ta, tb = [], []
    for _ in range(rounds):
        ta += time_calls(fa, per_round)
        tb += time_calls(fb, per_round)
    return ta, tb


def common_parser(doc: str, repeats: int = 5) -> argparse.ArgumentParser:
    """The arguments every pooling benchmark takes: rounds, threads, the input shape."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=repeats, help="rounds of calls per side")
    ap.add_argument("--per-round", type=int, default=3,
                    help="calls per side in a round (default 3: each side's calls follow the "
                         "other's closely; 10: mostly each side's steady state)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", type=int, nargs=4, default=[32, 32, 112, 112])
    return ap


def set_threads(n: int) -> None:
    """``n`` threads for torch and for poolkit, so neither oversubscribes the cores."""
    import torch

    from poolkit import _threads

    torch.set_num_threads(n)
    _threads.set_num_threads(n)


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts) * 1e3:8.2f} {min(ts) * 1e3:8.2f}"


def ratio_row(name: str, tt: list[float], tp: list[float], target: float | None = None) -> str:
    su_med = statistics.median(tt) / statistics.median(tp)
    su_min = min(tt) / min(tp)
    goal = "" if target is None else f"  (target >= {target:g}x: " + (
        "met" if su_med >= target else "NOT met") + ")"
    return f"{name:40s} {fmt(tt)}    {fmt(tp)}   {su_med:10.2f}x {su_min:5.2f}x{goal}"


HEADER = (f"{'case':40s} {'torch med':>9s} {'min':>8s} {'poolkit med':>11s} {'min':>8s} "
          f"{'speed-up med':>12s} {'min':>6s}")
