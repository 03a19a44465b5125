"""poolkit's kernel threads inside torch programs: they follow torch.get_num_threads() at every
call, survive torch.set_num_threads changes, forked DataLoader workers and concurrent Python
threads, and never change a result."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as TF

import poolkit.torch.functional as PTF
from poolkit import _threads

# Large enough that poolkit splits the work between threads (poolkit._threads.MIN_PARALLEL_WORK).
SHAPE = (4, 8, 64, 64)


def _big(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def test_poolkit_follows_torch_set_num_threads():
    x = _big()
    ref = TF.max_pool2d(x, 3, 2, 1)
    before = torch.get_num_threads()
    try:
        for n in (1, 2, 3, 1):
            torch.set_num_threads(n)
            out = PTF.max_pool2d(x, 3, 2, 1)
            assert _threads.get_num_threads() == n
            assert torch.equal(out, ref)
            torch.testing.assert_close(PTF.adaptive_avg_pool2d(x, 5),
                                       TF.adaptive_avg_pool2d(x, 5))
    finally:
        torch.set_num_threads(before)
    PTF.max_pool2d(x, 2)
    assert _threads.get_num_threads() == before


class _Pooled(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        x = _big(i)
        y = PTF.max_pool2d(x, 3, 2, 1)
        z = PTF.avg_pool2d(x.contiguous(memory_format=torch.channels_last), 2)
        return y, z, _threads.get_num_threads(), torch.get_num_threads()


def test_forked_dataloader_workers():
    """The parent has used poolkit's thread pool before forking, as a training loop would."""
    PTF.max_pool2d(_big(), 2)
    assert _threads.get_num_threads() == torch.get_num_threads()
    loader = torch.utils.data.DataLoader(_Pooled(), batch_size=None, num_workers=2,
                                         multiprocessing_context="fork")
    seen = 0
    for i, (y, z, pk_threads, torch_threads) in enumerate(loader):
        x = _big(i)
        assert torch.equal(y, TF.max_pool2d(x, 3, 2, 1))
        torch.testing.assert_close(z, TF.avg_pool2d(x, 2))
        # torch gives each worker one thread; poolkit follows it there.
        assert torch_threads == 1 and pk_threads == 1
        seen += 1
    assert seen == 6
    assert torch.equal(PTF.max_pool2d(_big(), 2), TF.max_pool2d(_big(), 2))  # parent still fine


def test_concurrent_python_threads():
    xs = [_big(i) for i in range(6)]

    def work(x):
        return PTF.max_pool2d(x, 3, 2, 1, return_indices=True), PTF.lp_pool2d(x.abs(), 2, 2)

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, xs))
    for x, ((y, idx), lp) in zip(xs, results, strict=True):
        ry, ridx = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
        assert torch.equal(y, ry) and torch.equal(idx, ridx)
        torch.testing.assert_close(lp, TF.lp_pool2d(x.abs(), 2, 2))
