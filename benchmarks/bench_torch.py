"""poolkit.torch against torch 2.13 CPU, side by side in one process, reported as ratios.

    python benchmarks/bench_torch.py [--threads 2] [--rounds 5] [--skip-models]

Each case runs torch and poolkit in interleaved rounds (torch, poolkit, torch, poolkit, ...)
so that load on a shared machine hits both alike; the table gives the median and the minimum
of all calls and the speed-up (torch time / poolkit time) of both. Threads: torch uses
``--threads`` (``torch.set_num_threads``) and poolkit follows torch's count at every call.

Cases: MaxPool2d(2) on (32, 32, 112, 112) float32, forward and forward+backward through
autograd (NCHW, and channels_last where torch has a fast kernel); the per-call cost on a
(1, 1, 4, 4) tensor, split into what the engine (NumPy in, NumPy out) and the torch layer
cost; torchvision's VGG-11 and ResNet-18 (their definitions in tests/test_torch_models.py)
patched with ``poolkit.torch.patch`` against unpatched: inference (batch 4, 224x224) and one
VGG-11 SGD training step. The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as TF

# The models are defined once, beside the tests that check patched equals unpatched.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from _timing import interleaved  # noqa: E402


def _per_call(fn, n: int) -> float:
    """Mean seconds per call over n calls (for calls of a few microseconds)."""
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def interleaved_calls(fa, fb, rounds: int, n: int) -> tuple[list[float], list[float]]:
    fa()
    fb()
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(_per_call(fa, n))
        tb.append(_per_call(fb, n))
    return ta, tb


def row(name: str, tt: list[float], tp: list[float]) -> str:
    """A markdown table row: medians and minimums (in us below 1 ms, else ms), speed-ups."""
    scale, unit = (1e6, "us") if statistics.median(tt) < 1e-3 else (1e3, "ms")
    f = [v * scale for v in (statistics.median(tt), min(tt), statistics.median(tp), min(tp))]
    su_med = statistics.median(tt) / statistics.median(tp)
    su_min = min(tt) / min(tp)
    return (f"| {name} | {f[0]:.2f} / {f[1]:.2f} {unit} | {f[2]:.2f} / {f[3]:.2f} {unit} "
            f"| {su_med:.2f}x / {su_min:.2f}x |")


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case")
    ap.add_argument("--skip-models", action="store_true", help="only the pooling cases")
    args = ap.parse_args(argv)

    import poolkit.functional as PF
    import poolkit.torch as pt
    from poolkit import _threads
    from poolkit.torch import ops

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads (poolkit follows torch: "
          f"{_threads.get_num_threads()} after the first call), load average before: {load()}")
    print("times: median / minimum; speed-up = torch time / poolkit time (median / minimum)\n")
    print("| case | torch | poolkit | speed-up |")
    print("|---|---|---|---|")
    R = args.rounds

    # MaxPool2d(2) on (32, 32, 112, 112) float32.
    x = torch.randn(32, 32, 112, 112)
    g = torch.randn(32, 32, 56, 56)
    tm, pm = torch.nn.MaxPool2d(2), pt.nn.MaxPool2d(2)
    print(row("MaxPool2d(2) forward, (32, 32, 112, 112) f32 NCHW",
              *interleaved(lambda: tm(x), lambda: pm(x), R, 5)), flush=True)
    xg = x.clone().requires_grad_()

    def fwd_bwd(m):
        def run():
            xg.grad = None
            m(xg).backward(g)
        return run

    print(row("MaxPool2d(2) forward+backward (autograd), NCHW",
              *interleaved(fwd_bwd(tm), fwd_bwd(pm), R, 5)), flush=True)
    xc = x.contiguous(memory_format=torch.channels_last)
    print(row("MaxPool2d(2) forward, channels_last",
              *interleaved(lambda: tm(xc), lambda: pm(xc), R, 3)), flush=True)
    print(row("AvgPool2d(2) forward, NCHW",
              *interleaved(lambda: TF.avg_pool2d(x, 2), lambda: pt.functional.avg_pool2d(x, 2),
                           R, 3)), flush=True)

    # Per-call cost on (1, 1, 4, 4).
    t = torch.randn(1, 1, 4, 4)
    a = t.numpy()
    n = 2000
    print(row("per call, (1, 1, 4, 4): F.max_pool2d vs poolkit.torch",
              *interleaved_calls(lambda: TF.max_pool2d(t, 2),
                                 lambda: pt.functional.max_pool2d(t, 2), R, n)), flush=True)
    print(row("per call: nn.MaxPool2d(2) module vs twin",
              *interleaved_calls(lambda: tm(t), lambda: pm(t), R, n)), flush=True)
    tr = t.clone().requires_grad_()
    print(row("per call, input requiring grad (forward only)",
              *interleaved_calls(lambda: TF.max_pool2d(tr, 2),
                                 lambda: pt.functional.max_pool2d(tr, 2), R, n)), flush=True)
    print(row("  of which: the engine alone (poolkit.functional on NumPy)",
              *interleaved_calls(lambda: TF.max_pool2d(t, 2), lambda: PF.max_pool2d(a, 2),
                                 R, n)), flush=True)
    out = np.empty((1, 1, 2, 2), np.float32)
    def no_op(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              return_indices=False):
        # max_pool2d's signature, so that the layer takes the same (positional) path as
        # with the real engine
        return out

    stub = dataclasses.replace(ops.OPS["max_pool2d"], forward=no_op)
    assert stub.positional
    print(row("  of which: the torch layer alone (engine replaced by a no-op)",
              *interleaved_calls(lambda: TF.max_pool2d(t, 2),
                                 lambda: ops.call(stub, t, (2, None, 0, 1, False)), R, n)),
          flush=True)
    fwd = ops.custom_op("max_pool2d")[0]
    print(row("  the custom op called directly (dispatcher path)",
              *interleaved_calls(lambda: TF.max_pool2d(t, 2),
                                 lambda: fwd(t, [2, 2], [], [0, 0], [1, 1], False), R, n)),
          flush=True)

    if not args.skip_models:
        from test_torch_models import resnet18, vgg11

        for label, build in (("VGG-11", vgg11), ("ResNet-18", resnet18)):
            ref = build().eval()
            patched = copy.deepcopy(ref)
            names = pt.patch(patched)
            xb = torch.randn(4, 3, 224, 224)
            with torch.no_grad():  # adaptive average pooling sums in another order
                torch.testing.assert_close(patched(xb), ref(xb), rtol=1e-5, atol=1e-5)

                def infer(m, xb=xb):
                    return lambda: m(xb)

                print(row(f"{label} inference, batch 4, 224x224 (patched: {', '.join(names)})",
                          *interleaved(infer(ref), infer(patched), R, 2)), flush=True)

        ref = vgg11().train()
        patched = copy.deepcopy(ref)
        pt.patch(patched)
        xb, yb = torch.randn(4, 3, 224, 224), torch.randint(0, 1000, (4,))

        def step(m):
            opt = torch.optim.SGD(m.parameters(), lr=1e-4)

            def run():
                opt.zero_grad(set_to_none=True)
                torch.nn.functional.cross_entropy(m(xb), yb).backward()
                opt.step()
            return run

        print(row("VGG-11 training step (SGD), batch 4, 224x224",
                  *interleaved(step(ref), step(patched), max(2, R // 2), 1)), flush=True)
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()
