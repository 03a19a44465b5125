"""Hidden targets that fail on purpose, one per way a case can fail: the runner's self-test
(tests/test_fuzz.py) checks that each is classified right and that the runner goes on."""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np

from ..oracle import expect_finite, note, target


@target("_selftest_segfault", "selftest", hidden=True)
def _segfault(rng):
    note("ctypes.string_at", 0)
    ctypes.string_at(0)


@target("_selftest_abort", "selftest", hidden=True)
def _abort(rng):
    os.abort()


@target("_selftest_hang", "selftest", hidden=True)
def _hang(rng):
    while True:
        time.sleep(0.05)


@target("_selftest_nan", "selftest", hidden=True)
def _nan(rng):
    x = rng.random((2, 3))
    expect_finite(x / 0.0 * 0.0, x)


@target("_selftest_keyerror", "selftest", hidden=True)
def _keyerror(rng):
    {}["missing"]


@target("_selftest_ok", "selftest", hidden=True)
def _ok(rng):
    if rng.random() < 0.5:
        raise ValueError("a documented refusal")
    np.ones(3).sum()
