"""The pooling family's speed, side by side with torch 2.13 CPU in one process, as ratios.

    python benchmarks/bench_family.py [--repeats 7] [--per-round 3] [--threads 2]
                                      [--shape 32 32 112 112]

Each case is timed in interleaved rounds (torch, poolkit, torch, poolkit, ...) so that load on
a shared machine hits both alike. With the default 3 calls a round, poolkit's calls run while
torch's OpenMP threads still spin after torch's last call (libgomp's default wait, milliseconds)
and take a core; ``--per-round 10`` times each side mostly in its own steady state. The table
gives medians and minimums (ms) and the speed-up (torch time / poolkit time) with the issue's
target. Torch's BlurPool is what antialiased-cnns runs: a reflection pad, then a depthwise conv
with the 4x4 binomial filter and stride 2.
"""

from __future__ import annotations

import numpy as np
from _timing import HEADER, common_parser, interleaved, ratio_row, set_threads


def main(argv=None) -> None:
    ap = common_parser(__doc__)
    ap.add_argument("--only", nargs="*", default=None, help="substrings of case names to run")
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as TF

    import poolkit.functional as F

    set_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(args.shape, dtype=np.float32)
    tx = torch.from_numpy(x)
    N, C, H, W = args.shape

    # adaptive average 7x7 forward + backward through autograd
    txg = tx.clone().requires_grad_(True)
    g7 = rng.standard_normal((N, C, 7, 7), dtype=np.float32)
    tg7 = torch.from_numpy(g7)

    def torch_adaptive_fb():
        y = TF.adaptive_avg_pool2d(txg, 7)
        return torch.autograd.grad(y, txg, tg7)[0]

    def pk_adaptive_fb():
        F.adaptive_avg_pool2d(x, 7)
        return F.adaptive_avg_pool2d_backward(g7, x, 7)

    # fractional max pooling 2x2 to 79x79 with the same samples on both sides
    samples = rng.random((N, C, 2), dtype=np.float32)
    tsamples = torch.from_numpy(samples)
    out_frac = (H * 79 // 112, W * 79 // 112)

    # max-unpooling of max_pool2d(x, 2) with its indices
    y2, i2 = TF.max_pool2d(tx, 2, return_indices=True)
    y2n, i2n = y2.numpy(), i2.numpy()

    # BlurPool as antialiased-cnns computes it
    a = torch.tensor([1.0, 3.0, 3.0, 1.0])
    filt = (a[:, None] * a[None, :] / 64.0)[None, None].repeat(C, 1, 1, 1)

    def torch_blur(t):
        return TF.conv2d(TF.pad(t, (1, 2, 1, 2), mode="reflect"), filt, stride=2, groups=C)

    cases = [
        ("adaptive_avg_pool2d to 7x7", lambda: TF.adaptive_avg_pool2d(tx, 7),
         lambda: F.adaptive_avg_pool2d(x, 7), 2.5),
        ("adaptive_avg_pool2d to 1x1 (global)", lambda: TF.adaptive_avg_pool2d(tx, 1),
         lambda: F.adaptive_avg_pool2d(x, 1), 1.0),
        ("adaptive_max_pool2d to 7x7", lambda: TF.adaptive_max_pool2d(tx, 7),
         lambda: F.adaptive_max_pool2d(x, 7), 4.0),
        ("lp_pool2d p=2 2x2", lambda: TF.lp_pool2d(tx, 2, 2),
         lambda: F.lp_pool2d(x, 2, 2), 10.0),
        (f"fractional_max_pool2d 2x2 to {out_frac[0]}x{out_frac[1]}",
         lambda: TF.fractional_max_pool2d(tx, 2, out_frac, _random_samples=tsamples),
         lambda: F.fractional_max_pool2d(x, 2, out_frac, _random_samples=samples), 10.0),
        ("max_unpool2d 2x2", lambda: TF.max_unpool2d(y2, i2, 2),
         lambda: F.max_unpool2d(y2n, i2n, 2), 3.0),
        ("BlurPool filt 4 stride 2 reflect", lambda: torch_blur(tx),
         lambda: F.blur_pool2d(x, 4, 2), 10.0),
        ("MaxBlurPool 2x2 then BlurPool", lambda: torch_blur(TF.max_pool2d(tx, 2, 1)),
         lambda: F.max_blur_pool2d(x, 2, 2), 10.0),
        ("adaptive avg 7x7 forward+backward", torch_adaptive_fb, pk_adaptive_fb, 5.0),
    ]
    print(f"input {tuple(args.shape)} float32 NCHW, {args.threads} threads, torch "
          f"{torch.__version__}; times in ms (median, min over {args.repeats * args.per_round} "
          f"calls, {args.per_round} a round)")
    print(HEADER)
    for name, ft, fp, target in cases:
        if args.only and not any(s in name for s in args.only):
            continue
        tt, tp = interleaved(ft, fp, args.repeats, args.per_round)
        print(ratio_row(name, tt, tp, target), flush=True)


if __name__ == "__main__":
    main()
