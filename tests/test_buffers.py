"""Large results reuse the memory of earlier results nothing refers to (poolkit._buffers), and
never the memory of one that is still alive, through any view of it."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

import poolkit.functional as PF
from poolkit import _buffers

BIG = (_buffers.MIN_BYTES // 4 + 1024,)  # float32 elements just over the threshold


@pytest.fixture(autouse=True)
def _fresh_cache():
    _buffers.clear()
    yield
    _buffers.set_cache_bytes(256 << 20)
    _buffers.clear()


def test_freed_result_memory_is_handed_out_again():
    a = _buffers.empty(BIG, np.float32)
    addr = a.ctypes.data
    del a
    b = _buffers.empty(BIG, np.float32)
    assert b.ctypes.data == addr
    assert b.shape == BIG and b.dtype == np.float32 and b.flags.c_contiguous


@pytest.mark.parametrize("keep", [
    lambda a: a,
    lambda a: a[10:],
    lambda a: a.reshape(-1, 4).T,
    lambda a: memoryview(a),
    lambda a: np.frombuffer(a, np.uint8),
    lambda a: [a[::2]],
])
def test_memory_of_a_live_result_or_view_is_not_reused(keep):
    a = _buffers.empty(BIG, np.float32)
    a[:] = 7.0
    alive = keep(a)
    del a
    still = np.asarray(alive[0] if isinstance(alive, list) else alive)
    before = still.copy()
    b = _buffers.empty(BIG, np.float32)
    b[:] = -1.0
    assert not np.shares_memory(b, still)
    np.testing.assert_array_equal(still, before)


def test_other_shape_and_dtype_of_the_same_size_reuse_the_buffer():
    a = _buffers.empty(BIG, np.float32)
    addr = a.ctypes.data
    del a
    b = _buffers.empty((BIG[0] // 2, 2), np.int32)
    assert b.ctypes.data == addr and b.shape == (BIG[0] // 2, 2)


def test_a_much_larger_buffer_is_not_used_for_a_smaller_request():
    a = _buffers.empty((2 * BIG[0],), np.float32)
    addr = a.ctypes.data
    del a
    b = _buffers.empty(BIG, np.float32)
    assert b.ctypes.data != addr


def test_small_arrays_are_plain_numpy_arrays():
    a = _buffers.empty((16, 16), np.float64)
    assert a.base is None and a.flags.owndata


def test_cache_off_and_cap():
    _buffers.set_cache_bytes(0)
    a = _buffers.empty(BIG, np.float32)
    del a
    assert _buffers.idle_bytes() == 0
    cap = 3 * _buffers.MIN_BYTES
    _buffers.set_cache_bytes(cap)
    for k in range(1, 9):  # different sizes, each freed at once
        _buffers.empty((BIG[0] * (1 + k // 2 * 2),), np.float32)
    gc.collect()
    assert 0 < _buffers.idle_bytes() <= cap + 10 * _buffers.MIN_BYTES
    _buffers.clear()
    assert _buffers.idle_bytes() == 0


def test_set_cache_bytes_rejects_bad_values():
    with pytest.raises(TypeError, match="n must be an int"):
        _buffers.set_cache_bytes(1.5)
    with pytest.raises(ValueError, match=">= 0"):
        _buffers.set_cache_bytes(-1)


def test_threads_never_share_a_live_buffer():
    errors = []
    barrier = threading.Barrier(4)

    def work(k):
        try:
            barrier.wait()
            for _ in range(50):
                a = _buffers.empty(BIG, np.float32)
                a[:] = k
                b = _buffers.empty(BIG, np.float32)
                b[:] = -k
                if not (np.all(a == k) and np.all(b == -k)):
                    errors.append(k)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(1, 5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []


def test_reused_output_is_fully_rewritten_by_unpool_and_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 128, 128), dtype=np.float32)  # 4 MiB in, 16 MiB unpooled
    y, i = PF.max_pool2d(x, 2, return_indices=True)
    first = PF.max_unpool2d(y, i, 2)
    expect = first.copy()
    first[:] = np.nan  # poison the memory the next result will reuse
    del first
    again = PF.max_unpool2d(y, i, 2)
    np.testing.assert_array_equal(again, expect)
    g = rng.standard_normal(y.shape, dtype=np.float32)
    gx = PF.max_pool2d_backward(g, x, 2)
    ref = gx.copy()
    gx[:] = np.nan
    del gx
    np.testing.assert_array_equal(PF.max_pool2d_backward(g, x, 2), ref)


def test_forward_results_come_from_the_cache_and_are_rewritten():
    x = np.random.default_rng(1).standard_normal((8, 32, 128, 128), dtype=np.float32)
    y = PF.max_pool2d(x, 2)  # 4 MiB: from the cache
    expect, addr = y.copy(), y.ctypes.data
    y[:] = np.nan
    del y
    again = PF.max_pool2d(x, 2)
    assert again.ctypes.data == addr  # the same memory, every cell written again
    np.testing.assert_array_equal(again, expect)
    keep = again[0]  # a view keeps it: the next result gets other memory
    del again
    other = PF.max_pool2d(x, 2)
    assert not np.shares_memory(other, keep)
    np.testing.assert_array_equal(keep, expect[0])
