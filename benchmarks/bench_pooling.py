"""Pooling speed, side by side with torch 2.13 CPU in one process, reported as ratios.

    python benchmarks/bench_pooling.py [--repeats 15] [--threads 2] [--shape 32 32 112 112]

Each case is timed in interleaved rounds (torch, poolkit, torch, poolkit, ...) so that load on a
shared machine hits both alike; the table gives the median and the minimum of the rounds and the
speed-up (torch time / poolkit time) of both. The floor is one copy of the input into a
preallocated array (np.copyto). The JIT rows time the first call in a fresh process, with a cold
Numba cache (an empty NUMBA_CACHE_DIR; by default its kernel then compiles in a background
process while NumPy computes the call, timed until that process has ended; and with that
turned off) and then with that cache warm.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
from _timing import HEADER, common_parser, fmt, interleaved, ratio_row, set_threads


def jit_cost() -> list[tuple[str, float, float, float]]:
    """(label, import s, first call s, s until its kernel is in the cache) of the first
    max_pool2d in fresh processes: with an empty cache (the kernel compiling in a background
    process while NumPy computes the call, then with that turned off), then with the cache
    the first one filled."""
    rows = []
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as other:
        for label, where, background in (
            ("cold cache", cache, "1"),
            ("cold cache, POOLKIT_BACKGROUND_COMPILE=0", other, "0"),
            ("warm cache", cache, "1"),
        ):
            env = dict(os.environ, NUMBA_CACHE_DIR=where, POOLKIT_BACKGROUND_COMPILE=background)
            res = subprocess.run(
                [sys.executable, os.path.join(os.path.dirname(__file__), "first_call.py"),
                 "--wait"], env=env, capture_output=True, text=True,
                check=True,
            )
            imp, first, ready = (float(v) for v in res.stdout.split())
            rows.append((label, imp, first, ready))
    return rows


def main(argv=None) -> None:
    ap = common_parser(__doc__)
    ap.add_argument("--no-jit", action="store_true", help="skip the first-call timings")
    args = ap.parse_args(argv)

    import numba
    import torch
    import torch.nn.functional as TF

    import poolkit
    import poolkit.functional as F

    set_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.shape, dtype=np.float32)
    tx = torch.from_numpy(x)
    x_nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    tx_cl = tx.contiguous(memory_format=torch.channels_last)
    N, C, H, W = args.shape
    g = rng.standard_normal((N, C, H // 2, W // 2), dtype=np.float32)
    tg = torch.from_numpy(g)
    txg = tx.clone().requires_grad_(True)
    dst = np.empty_like(x)

    def torch_fwd_bwd():
        y = TF.max_pool2d(txg, 2, 2)
        (gx,) = torch.autograd.grad(y, txg, tg)
        return gx

    def pk_fwd_bwd():
        F.max_pool2d(x, 2, 2)
        return F.max_pool2d_backward(g, x, 2, 2)

    # ResNet's stem pooling: overlapping, padded windows (the output is also (H/2, W/2))
    def torch_fwd_bwd3():
        y = TF.max_pool2d(txg, 3, 2, 1)
        (gx,) = torch.autograd.grad(y, txg, tg)
        return gx

    def pk_fwd_bwd3():
        F.max_pool2d(x, 3, 2, 1)
        return F.max_pool2d_backward(g, x, 3, 2, 1)

    cases = [
        ("max_pool2d 2x2/2 NCHW", lambda: TF.max_pool2d(tx, 2, 2), lambda: F.max_pool2d(x, 2, 2)),
        (
            "max_pool2d 3x3/2 pad 1 NCHW",
            lambda: TF.max_pool2d(tx, 3, 2, 1),
            lambda: F.max_pool2d(x, 3, 2, 1),
        ),
        (
            "max_pool2d 3x3/2 pad 1 with indices",
            lambda: TF.max_pool2d(tx, 3, 2, 1, return_indices=True),
            lambda: F.max_pool2d(x, 3, 2, 1, return_indices=True),
        ),
        ("avg_pool2d 2x2/2 NCHW", lambda: TF.avg_pool2d(tx, 2, 2), lambda: F.avg_pool2d(x, 2, 2)),
        ("max 2x2/2 forward+backward NCHW", torch_fwd_bwd, pk_fwd_bwd),
        ("max 3x3/2 pad 1 forward+backward", torch_fwd_bwd3, pk_fwd_bwd3),
        (
            "max 2x2/2 NHWC (torch channels_last)",
            lambda: TF.max_pool2d(tx_cl, 2, 2),
            lambda: poolkit.max_pool(x_nhwc, 2, 2),
        ),
    ]
    print(f"input {tuple(args.shape)} float32, {args.threads} threads, torch {torch.__version__}, "
          f"numba {numba.__version__}; times in ms (median, min over "
          f"{args.repeats * args.per_round} calls, {args.per_round} a round)")
    print(HEADER)
    results = {}
    for name, ft, fp in cases:
        tt, tp = interleaved(ft, fp, args.repeats, args.per_round)
        results[name] = tp
        print(ratio_row(name, tt, tp))

    tc, tn = interleaved(
        lambda: np.copyto(dst, x),
        lambda: x.reshape(N, C, H // 2, 2, W // 2, 2).max(axis=(3, 5)),
        max(2, args.repeats // 2),
    )
    pm = results["max_pool2d 2x2/2 NCHW"]
    print(f"{'copy of the input (np.copyto)':40s} {fmt(tc)}")
    print(f"{'NumPy reshape-and-max 2x2/2':40s} {fmt(tn)}")
    print(
        f"max 2x2/2 forward / one copy: {statistics.median(pm) / statistics.median(tc):.2f} "
        f"(median), {min(pm) / min(tc):.2f} (min)"
    )
    if not args.no_jit:
        for label, imp, first, ready in jit_cost():
            print(f"first call in a fresh process, {label}: import {imp:.2f} s, "
                  f"first max_pool2d {first:.2f} s, its kernel cached after {ready:.2f} s")


if __name__ == "__main__":
    main()
