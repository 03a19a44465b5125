"""Memoised plans (engine.pool's and poolkit.functional's): a repeated call skips the checks,
so these tests hold it to the same results and the same errors as a first call.

Every "cold" result below is computed right after ``engine.clear_plans()``; every "warm" one
by the same call again (a memo hit, checked through the memo's size where it matters).
"""

from __future__ import annotations

import numpy as np
import pytest

import poolkit.functional as PF
from poolkit import _threads, engine
from poolkit.errors import InvalidType, InvalidValue
from poolkit.shapes import AdaptiveSpec, PoolSpec, blur_spec, torch_spec


@pytest.fixture(autouse=True)
def _fresh_plans():
    engine.clear_plans()
    yield
    engine.clear_plans()


def _arrays(seed=0):
    """(name, array) of one logical (2, 3, 8, 6) input in several memory layouts and dtypes."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((2, 3, 8, 6)).astype(np.float32)
    base[0, 1, 2, 3] = np.nan
    return [
        ("contiguous", base),
        ("channels-last memory", np.ascontiguousarray(base.transpose(0, 2, 3, 1))
         .transpose(0, 3, 1, 2)),
        ("strided", np.repeat(base, 2, axis=3)[..., ::2]),
        ("float64", base.astype(np.float64)),
        ("float16", base.astype(np.float16)),
        ("int8", np.nan_to_num(base * 20).clip(-100, 100).astype(np.int8)),
        ("unbatched", base[0]),
    ]


# (call name, function): forward calls over several kinds of spec, indices among them.
CALLS = [
    ("max 2", lambda a: PF.max_pool2d(a, 2)),
    ("max indices, padding, dilation", lambda a: PF.max_pool2d(a, 3, 1, 1, 2, False, True)),
    ("min ceil_mode indices", lambda a: PF.min_pool2d(a, (2, 3), 2, ceil_mode=True,
                                                      return_indices=True)),
    ("avg count_include_pad", lambda a: PF.avg_pool2d(a, 3, 2, 1)),
    ("avg divisor", lambda a: PF.avg_pool2d(a, 2, divisor_override=3)),
    ("lp", lambda a: PF.lp_pool2d(a, 2.0, 2)),
    ("adaptive max", lambda a: PF.adaptive_max_pool2d(a, (3, 4), True)),
    ("adaptive avg global", lambda a: PF.adaptive_avg_pool2d(a, 1)),
    ("blur", lambda a: PF.blur_pool2d(a, 3, 2, "zero")),
]


def _same(a, b):
    """Exactly equal results: values (NaN where NaN), dtypes, shapes and strides."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _same(u, v)
        return
    assert a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
    np.testing.assert_array_equal(a, b)


def _runs(fn, a):
    try:
        return fn(a)
    except (InvalidType, InvalidValue):  # an input this call rejects (int8 averages)
        return None


@pytest.mark.parametrize("call", CALLS, ids=[c[0] for c in CALLS])
def test_a_warm_call_equals_a_cold_one(call):
    _, fn = call
    for _, a in _arrays():
        engine.clear_plans()
        cold = _runs(fn, a)
        if cold is None:
            with pytest.raises((InvalidType, InvalidValue)):
                fn(a)  # rejected again: nothing was memoised for it
            continue
        plans = len(engine.PLANS)
        assert plans >= 1
        warm = fn(a)
        assert len(engine.PLANS) == plans  # the same plans, no new ones
        _same(cold, warm)
        # another array of the same shape, strides and dtype through the warm plan
        b = a.copy() if a.flags.c_contiguous else a
        _same(fn(b + 0 if b.dtype.kind == "f" else b), fn(b))


def test_the_memo_result_is_right_not_only_repeatable():
    # an independent reference: 2x2 max pooling is a reshape and a max
    a = np.random.default_rng(1).standard_normal((2, 3, 8, 6)).astype(np.float32)
    want = a.reshape(2, 3, 4, 2, 3, 2).max(axis=(3, 5))
    for _ in range(3):
        np.testing.assert_array_equal(PF.max_pool2d(a, 2), want)
    cl = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for _ in range(3):
        np.testing.assert_array_equal(PF.max_pool2d(cl, 2), want)


def test_a_change_of_shape_strides_dtype_or_argument_is_another_plan():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((1, 2, 8, 8)).astype(np.float32)
    variants = [
        a,
        rng.standard_normal((3, 2, 8, 8)).astype(np.float32),  # shape (same spatial size)
        np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),  # strides
        a.astype(np.float64),  # dtype
        a.astype(np.float16),
    ]
    args = [(2,), (2, 1), (3, 2, 1), (2, 2, 0, 2), (2, None, 0, 1, True), (2, (2, 1))]
    for v in variants:
        for arg in args:
            engine.clear_plans()
            cold = PF.max_pool2d(v, *arg)
            for u in variants:  # warm plans of every other variant are around
                for other in args:
                    PF.max_pool2d(u, *other)
            _same(PF.max_pool2d(v, *arg), cold)
            ref = PF.max_pool2d(np.ascontiguousarray(v), *arg)  # a cold layout of its own
            np.testing.assert_array_equal(PF.max_pool2d(v, *arg), ref)
    # return_indices, the reduction and the engine's own arguments
    spec = torch_spec((8, 8), 2, op="t")
    out_max = engine.pool(a, spec, "max")
    out_min = engine.pool(a, spec, "min")
    np.testing.assert_array_equal(out_min, -engine.pool(-a, spec, "max"))
    assert not np.array_equal(out_max, out_min)
    assert isinstance(engine.pool(a, spec, "max", return_indices=True), tuple)
    assert isinstance(engine.pool(a, spec, "max"), np.ndarray)
    np.testing.assert_allclose(engine.pool(np.abs(a), spec, "lp", p=1),
                               engine.pool(np.abs(a), spec, "avg"), rtol=1e-6)
    np.testing.assert_allclose(engine.pool(np.abs(a), spec, "lp", p=1, scale=4.0),
                               4 * engine.pool(np.abs(a), spec, "avg"), rtol=1e-6)
    cl = np.ascontiguousarray(a.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(engine.pool(cl, spec, "max", channels_last=True),
                                  out_max.transpose(0, 2, 3, 1))


def test_a_changed_thread_count_is_used_by_a_warm_plan(monkeypatch):
    # enough work to be split between threads (more than _threads.MIN_PARALLEL_WORK)
    a = np.random.default_rng(3).standard_normal((2, 8, 128, 128)).astype(np.float32)
    assert a.size >= _threads.MIN_PARALLEL_WORK
    ranges = []
    real = _threads.parallel_for

    def spy(kernel, n_tasks, *args, work=None):
        def recorded(*a):
            ranges.append(a[-2:])
            return kernel(*a)
        return real(recorded, n_tasks, *args, work=work)

    monkeypatch.setattr(_threads, "parallel_for", spy)
    old = _threads.get_num_threads()
    try:
        results = {}
        for n in (1, 2, 1, 2):
            _threads.set_num_threads(n)
            ranges.clear()
            results.setdefault(n, []).append(PF.max_pool2d(a, 2))
            assert len(ranges) == n  # the count of now, through the same plan
        assert len(engine.PLANS) == 1
    finally:
        _threads.set_num_threads(old)
    for outs in results.values():
        for out in outs:
            _same(out, results[1][0])


def _error(fn, *args, **kwargs):
    with pytest.raises((InvalidType, InvalidValue)) as e:
        fn(*args, **kwargs)
    return type(e.value), str(e.value)


BAD_CALLS = [
    ("kernel_size True", lambda a: PF.max_pool2d(a, True)),
    ("kernel_size 2.0", lambda a: PF.max_pool2d(a, 2.0)),
    ("stride (True, 1)", lambda a: PF.max_pool2d(a, 2, (True, 1))),
    ("ceil_mode 1", lambda a: PF.max_pool2d(a, 2, ceil_mode=1)),
    ("padding too large", lambda a: PF.max_pool2d(a, 2, padding=2)),
    ("kernel too large", lambda a: PF.max_pool2d(a, 9)),
    ("bool input", lambda a: PF.max_pool2d(a > 0, 2)),
    ("int avg", lambda a: PF.avg_pool2d(a.astype(np.int32), 2)),
    ("avg divisor 0", lambda a: PF.avg_pool2d(a, 2, divisor_override=0)),
    ("5-D input", lambda a: PF.max_pool2d(a[None], 2)),
    ("zero channels", lambda a: PF.max_pool2d(a[:, :0], 2)),
    ("adaptive output_size True", lambda a: PF.adaptive_avg_pool2d(a, True)),
    ("adaptive output_size (1.0, 1)", lambda a: PF.adaptive_avg_pool2d(a, (1.0, 1))),
    ("adaptive output_size -1", lambda a: PF.adaptive_max_pool2d(a, -1)),
    ("adaptive output_size None", lambda a: PF.adaptive_max_pool2d(a, None)),
    ("adaptive output_size of 3 dims", lambda a: PF.adaptive_max_pool2d(a, (1, 1, 1))),
]


@pytest.mark.parametrize("bad", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_arguments_raise_the_same_error_on_a_warm_memo(bad):
    _, fn = bad
    a = np.random.default_rng(4).standard_normal((2, 3, 8, 8)).astype(np.float32)
    cold = _error(fn, a)
    # warm every plan of good calls that equal the bad one, or nearly
    PF.max_pool2d(a, 1)
    PF.max_pool2d(a, 2)
    PF.max_pool2d(a, 2, (1, 1))
    PF.max_pool2d(a, 2, ceil_mode=True)
    PF.avg_pool2d(a, 2)
    PF.avg_pool2d(a, 2, 2, 1, False, True)
    PF.avg_pool2d(a, 2, divisor_override=1)
    PF.adaptive_avg_pool2d(a, 1)
    PF.adaptive_avg_pool2d(a, (1, 1))
    PF.adaptive_max_pool2d(a, 1)
    PF.adaptive_max_pool2d(a, 1, True)
    assert len(engine.PLANS) > 0
    assert _error(fn, a) == cold


def test_adaptive_calls_are_memoised_per_argument():
    """poolkit.functional's adaptive calls take the memo (a warm call is a lookup and the
    plan), each output size and flag its own entry."""
    a = np.random.default_rng(5).standard_normal((2, 3, 9, 7)).astype(np.float32)
    calls = [lambda: PF.adaptive_avg_pool2d(a, 1), lambda: PF.adaptive_avg_pool2d(a, (3, 2)),
             lambda: PF.adaptive_max_pool2d(a, (3, 2)),
             lambda: PF.adaptive_max_pool2d(a, (3, 2), True)]
    cold = [c() for c in calls]
    assert len(PF._CALLS) == 4
    for c, want in zip(calls, cold, strict=True):
        _same(c(), want)
    assert len(PF._CALLS) == 4
    np.testing.assert_allclose(cold[0][..., 0, 0], a.mean(axis=(2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(cold[3][0], cold[2])


def test_the_engine_keys_a_spec_by_identity_and_checks_its_other_arguments():
    a = np.random.default_rng(5).standard_normal((1, 2, 4, 4)).astype(np.float32)
    good = PoolSpec((4, 4), (2, 2), (2, 2), (1, 1), (0, 0), (0, 0), (2, 2))
    again = PoolSpec((4, 4), (2, 2), (2, 2), (1, 1), (0, 0), (0, 0), (2, 2))
    _same(engine.pool(a, good), engine.pool(a, good))
    assert len(engine.PLANS) == 1
    _same(engine.pool(a, again), engine.pool(a, good))  # equal, but its own plan
    assert len(engine.PLANS) == 2
    # the engine's other arguments, on warm plans of the good ones
    engine.pool(a, good, "avg")
    engine.pool(np.abs(a), good, "lp", p=1)
    with pytest.raises(InvalidValue, match="reduction"):
        engine.pool(a, good, "maxx")
    with pytest.raises(InvalidValue, match="reduction"):
        engine.pool(a, good, ["max"])
    with pytest.raises(InvalidValue, match="return_indices"):
        engine.pool(a, good, "avg", return_indices=True)
    with pytest.raises(InvalidType, match="norm_type"):
        engine.pool(np.abs(a), good, "lp", p=True)
    with pytest.raises(InvalidValue, match="spatial dims"):
        engine.pool(a[..., :3], good)
    with pytest.raises(InvalidType, match="dtype"):
        engine.pool(a > 0, good)


def test_the_memory_limit_is_checked_again_for_large_outputs(monkeypatch):
    a = np.zeros((1, 1, 8, 8), np.float32)
    spec = torch_spec((8, 8), 2, op="t")
    PF.max_pool2d(a, 2)
    engine.pool(a, spec)
    monkeypatch.setattr(engine, "_RECHECK_BYTES", 0)  # every output counts as large
    monkeypatch.setattr(engine, "memory_limit", lambda: 10)
    with pytest.raises(InvalidValue, match="memory"):
        engine.pool(a, spec)
    with pytest.raises(InvalidValue, match="memory"):
        PF.max_pool2d(a, 2)


def test_the_memos_are_bounded(monkeypatch):
    monkeypatch.setattr(engine.PLANS, "maxsize", 4)
    monkeypatch.setattr(PF._CALLS, "maxsize", 4)
    rng = np.random.default_rng(6)
    inputs = [rng.standard_normal((1, 1, 4 + i, 4)).astype(np.float32) for i in range(10)]
    for a in inputs:
        PF.max_pool2d(a, 2)
        assert len(engine.PLANS) <= 4 and len(PF._CALLS) <= 4
    assert len(engine.PLANS) == 4 and len(PF._CALLS) == 4
    # the oldest went first; every result is still right, evicted or not
    newest = ("max_pool2d", inputs[-1].shape, inputs[-1].strides, inputs[-1].dtype, 2, None,
              0, 1, False, False)
    oldest = ("max_pool2d", inputs[0].shape, inputs[0].strides, inputs[0].dtype, 2, None, 0,
              1, False, False)
    assert newest in PF._CALLS and oldest not in PF._CALLS
    for a in inputs:
        h = a.shape[2] // 2
        want = a[..., : 2 * h, :].reshape(1, 1, h, 2, 2, 2).max(axis=(3, 5))
        np.testing.assert_array_equal(PF.max_pool2d(a, 2), want)


def test_unplanned_calls_still_compute():
    # byte-swapped input (converted, so not planned) and fractional specs (never planned)
    a = np.random.default_rng(7).standard_normal((1, 2, 8, 8))
    swapped = a.astype(a.dtype.newbyteorder())
    for _ in range(2):
        out = PF.max_pool2d(swapped, 2)
        assert out.dtype.isnative
        np.testing.assert_array_equal(out, PF.max_pool2d(a, 2))
    samples = np.full((1, 2, 2), 0.5)
    first = PF.fractional_max_pool2d(a, 2, (4, 4), _random_samples=samples)
    assert len(engine.PLANS) == 1  # the max pooling's; none for the fractional spec
    _same(PF.fractional_max_pool2d(a, 2, (4, 4), _random_samples=samples), first)
    # engine specs made anew each call (equal values, another object) are right too
    for _ in range(2):
        np.testing.assert_array_equal(engine.pool(a, AdaptiveSpec((8, 8), (4, 4))),
                                      PF.max_pool2d(a, 2))
        blur = blur_spec((8, 8), 2, 2, "zero", op="t")
        np.testing.assert_allclose(engine.pool(a, blur, "blur"), PF.avg_pool2d(a, 2))


def test_poolkit_torch_warm_calls_equal_cold_ones_and_torch():
    torch = pytest.importorskip("torch")
    import poolkit.torch as pt

    g = torch.Generator().manual_seed(8)
    x = torch.randn(2, 3, 8, 6, generator=g)
    inputs = [x, x.contiguous(memory_format=torch.channels_last), x[..., ::2], x.double()]
    for t in inputs:
        engine.clear_plans()
        cold = pt.functional.max_pool2d(t, 2, return_indices=True)
        warm = pt.functional.max_pool2d(t, 2, return_indices=True)
        want = torch.nn.functional.max_pool2d(t, 2, return_indices=True)
        for c, w, r in zip(cold, warm, want, strict=True):
            assert torch.equal(c, w) and torch.equal(w, r)
            assert c.stride() == w.stride() == r.stride() and w.dtype == r.dtype


@pytest.mark.parametrize("field, value", [("window", (2.0, 2)), ("stride", (2, 2.0)),
                                          ("pad_before", (0.0, 0)), ("out_size", (2, 2.0))])
def test_a_spec_equal_to_a_checked_one_but_of_other_types_is_still_checked(field, value):
    import dataclasses

    x = np.ones((1, 1, 4, 4), np.float32)
    ok = PoolSpec((4, 4), (2, 2), (2, 2), (1, 1), (0, 0), (0, 0), (2, 2))
    engine.pool(x, ok, "avg")  # checked and remembered
    twin = dataclasses.replace(ok, **{field: value})
    assert twin == ok and hash(twin) == hash(ok)  # what a dataclass-keyed memo would confuse
    with pytest.raises(InvalidValue, match="must be ints"):
        engine.pool(x, twin, "avg")
