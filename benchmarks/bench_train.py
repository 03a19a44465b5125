"""Train the tutorial's CNN side by side in ONE process: torch 2.x CPU and poolkit.keras.

Same data (Fashion-MNIST by default, via poolkit.keras.datasets), same initial weights (poolkit's
glorot init copied into torch), batch 32, Adam(1e-3), the same shuffled batches each epoch.
Epochs alternate
(torch, poolkit, torch, ...) so a change in machine load hits both. Prints per-epoch seconds, the
ratio poolkit/torch, test accuracy after each epoch, peak memory and the load average.

    python benchmarks/bench_train.py                            # fashion-mnist, 5 epochs
    python benchmarks/bench_train.py --dataset mnist-sample --epochs 2
    python benchmarks/bench_train.py --only poolkit             # peak RSS of one framework

Peak memory: ``tracemalloc`` sees NumPy's buffers (poolkit) but not torch's allocator, so the
script also prints the process's peak RSS (ru_maxrss); run with --only to get each alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc

import numpy as np

from poolkit.data import DATASETS

os.environ.setdefault("POOLKIT_BACKGROUND_COMPILE", "0")  # time the kernels (see _timing.py)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist",
                    choices=DATASETS)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--poolkit-threads", type=int, default=None,
                    help="poolkit's threads (default: poolkit's default, all CPUs)")
    ap.add_argument("--only", choices=["both", "torch", "poolkit"], default="both")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from poolkit import _threads, keras
    from poolkit.data import load_dataset
    from poolkit.lab.models import tutorial_model

    torch.set_num_threads(args.threads)
    if args.poolkit_threads:
        _threads.set_num_threads(args.poolkit_threads)
    print(f"load average at start: {os.getloadavg()}; cores: {os.cpu_count()}; torch "
          f"{torch.__version__} threads {torch.get_num_threads()}; poolkit threads "
          f"{_threads.get_num_threads()}")
    (xtr, ytr), (xte, yte) = load_dataset(args.dataset)
    print(f"{args.dataset}: {len(xtr):,} train / {len(xte):,} test; batch {args.batch_size}, "
          f"Adam(1e-3), {args.epochs} epoch(s); RSS after loading {_rss_mb():.0f} MB")
    bs = args.batch_size
    keras.utils.set_random_seed(args.seed)
    model = tutorial_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    # torch: the same model, NCHW, the same initial weights.
    conv = torch.nn.Conv2d(1, 32, 3)
    dense = torch.nn.Linear(5408, 10)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(model.layers[0].weights[0].transpose(3, 2, 0, 1)
                                           .copy()))
        conv.bias.zero_()
        # Keras flattens (13, 13, 32) channels_last; torch flattens (32, 13, 13).
        w = model.layers[3].weights[0].reshape(13, 13, 32, 10).transpose(3, 2, 0, 1)
        dense.weight.copy_(torch.from_numpy(w.reshape(10, -1).copy()))
        dense.bias.zero_()
    params = list(conv.parameters()) + list(dense.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    xtr_t = torch.from_numpy(np.ascontiguousarray(xtr.transpose(0, 3, 1, 2)))
    ytr_t = torch.from_numpy(ytr)
    xte_t = torch.from_numpy(np.ascontiguousarray(xte.transpose(0, 3, 1, 2)))

    def torch_forward(xb):
        h = F.max_pool2d(torch.relu(conv(xb)), 2, 2)
        return dense(h.flatten(1))

    def torch_epoch(order):
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(torch_forward(xtr_t[idx]), ytr_t[idx])
            loss.backward()
            opt.step()

    def torch_acc():
        with torch.no_grad():
            pred = torch.cat([torch_forward(xte_t[s:s + 1000]).argmax(1)
                              for s in range(0, len(xte_t), 1000)])
        return float((pred.numpy() == yte).mean())

    rng = np.random.default_rng(args.seed)
    t_times, p_times, t_accs, p_accs = [], [], [], []
    # Warm-up: compile or load the cached Numba kernels (not timed), then restore the weights.
    w0 = model.get_weights()
    t0 = time.perf_counter()
    model.fit(xtr[:64], ytr[:64], batch_size=bs, epochs=1, verbose=0)
    model.evaluate(xte[:64], yte[:64], batch_size=1000, verbose=0)
    print(f"poolkit warm-up (Numba compile or cache load): {time.perf_counter() - t0:.1f} s")
    model.set_weights(w0)
    model.optimizer.reset()
    for epoch in range(args.epochs):
        order = rng.permutation(len(xtr))
        if args.only in ("both", "torch"):
            t = time.perf_counter()
            torch_epoch(torch.from_numpy(order))
            t_times.append(time.perf_counter() - t)
            t_accs.append(torch_acc())
        if args.only in ("both", "poolkit"):
            xo, yo = xtr[order], ytr[order]  # the batches torch sees, in its order
            t = time.perf_counter()
            model.fit(xo, yo, batch_size=bs, epochs=1, shuffle=False, verbose=0)
            p_times.append(time.perf_counter() - t)
            p_accs.append(model.evaluate(xte, yte, batch_size=1000, verbose=0)[1])
        line = f"epoch {epoch + 1}:"
        if t_times:
            line += f" torch {t_times[-1]:6.2f} s (test acc {t_accs[-1]:.4f})"
        if p_times:
            line += f" | poolkit {p_times[-1]:6.2f} s (test acc {p_accs[-1]:.4f})"
        if t_times and p_times:
            line += f" | ratio poolkit/torch {p_times[-1] / t_times[-1]:.2f}"
        print(line, flush=True)
    print(f"load average at end: {os.getloadavg()}")
    if t_times and p_times:
        rt = statistics.median(t_times)
        rp = statistics.median(p_times)
        print(f"median epoch: torch {rt:.2f} s, poolkit {rp:.2f} s, ratio {rp / rt:.2f} "
              f"(target <= 0.5); final test accuracy torch {t_accs[-1]:.4f}, poolkit "
              f"{p_accs[-1]:.4f} (difference {100 * (p_accs[-1] - t_accs[-1]):+.2f} points)")
    if p_times:
        # Traced separately: tracemalloc slows every allocation, so it stays off while timing.
        # The working set of a step does not grow with the epoch, so 200 steps show its peak.
        tracemalloc.start()
        model.fit(xtr[: 200 * bs], ytr[: 200 * bs], batch_size=bs, epochs=1, verbose=0)
        p_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"poolkit peak traced NumPy memory while training (200 steps, not timed): "
              f"{p_peak / 2**20:.1f} MB")
    print(f"process peak RSS: {_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
