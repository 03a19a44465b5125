"""One model used from several Python threads at once, and from forked worker processes, gives
exactly what it gives serially."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from poolkit import _threads, keras
from poolkit.keras import layers as L

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, "src"))


def _model():
    keras.utils.set_random_seed(3)
    m = keras.Sequential([
        L.Conv2D(16, (3, 3), activation="relu", input_shape=(20, 20, 1)),
        L.MaxPooling2D(2),
        L.Conv2D(8, (3, 3), padding="same", activation="tanh"),
        L.AveragePooling2D(2, padding="same"),
        L.Flatten(),
        L.Dense(10, activation="softmax"),
    ])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def _data(seed, n=96):
    rng = np.random.default_rng(seed)
    return rng.random((n, 20, 20, 1)).astype(np.float32), rng.integers(0, 10, n)


def _run_in_threads(fn, n_threads):
    results, errors = [None] * n_threads, []
    barrier = threading.Barrier(n_threads)

    def work(i):
        try:
            barrier.wait()
            results[i] = [fn(i) for _ in range(3)]
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("pool_threads", [1, 2])
def test_predict_and_evaluate_from_threads_equal_serial(pool_threads):
    m = _model()
    data = [_data(seed) for seed in range(4)]
    old = _threads.get_num_threads()
    _threads.set_num_threads(pool_threads)
    try:
        # Batches of 48: the convolutions are big enough to run on the thread pool too.
        serial = [(m.predict(x, batch_size=48, verbose=0),
                   m.evaluate(x, y, batch_size=48, verbose=0)) for x, y in data]

        def job(i):
            x, y = data[i]
            return (m.predict(x, batch_size=48, verbose=0),
                    m.evaluate(x, y, batch_size=48, verbose=0))

        results = _run_in_threads(job, len(data))
    finally:
        _threads.set_num_threads(old)
    for i, runs in enumerate(results):
        for pred, ev in runs:
            np.testing.assert_array_equal(pred, serial[i][0])
            assert ev == serial[i][1]  # evaluate read another thread's logits before


def test_training_is_bitwise_the_same_on_any_number_of_threads():
    # Weight gradients are reduced over a fixed number of chunks, not per thread (batches of 96:
    # both convolutions run on the thread pool).
    x, y = _data(2, n=192)
    weights = []
    old = _threads.get_num_threads()
    try:
        for n in (1, 2, 3):
            _threads.set_num_threads(n)
            m = _model()
            m.fit(x, y, batch_size=96, epochs=2, shuffle=False, verbose=0)
            weights.append(m.get_weights())
    finally:
        _threads.set_num_threads(old)
    for other in weights[1:]:
        for a, b in zip(weights[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_inference_writes_no_state_on_the_model():
    # What makes concurrent predict/evaluate safe: they write nothing shared. (The landed
    # layers kept each call's input and output on themselves, and evaluate read the last
    # layer's logits back from there, where another thread could have replaced them.)
    m = _model()
    x, y = _data(1)
    m.fit(x, y, batch_size=48, epochs=1, verbose=0)

    def snapshot():
        return [{k: id(v) for k, v in vars(obj).items()} for obj in (m, *m.layers)]

    before = snapshot()
    m.predict(x, batch_size=48, verbose=0)
    m.evaluate(x, y, batch_size=48, verbose=0)
    m(x[:3])
    assert snapshot() == before


# A child process's setup: a Conv2D/Dense model (the kernels of poolkit.keras; the pooling
# engine has its own tests) trained and run once on the thread pool, so the kernels are loaded.
_CHILD_SETUP = """
import numpy as np
from poolkit import keras, _threads
from poolkit.keras import layers as L
keras.utils.set_random_seed(0)
m = keras.Sequential([L.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)),
                      L.Conv2D(8, 3, strides=2), L.Flatten(),
                      L.Dense(10, activation="softmax")])
m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
_threads.set_num_threads(2)
x = np.random.default_rng(0).random((64, 28, 28, 1)).astype(np.float32)
m.fit(x, np.zeros(64, int), batch_size=64, epochs=1, verbose=0)
ref = m.predict(x, batch_size=64, verbose=0)
"""


def _run_child(body: str, **env) -> str:
    code = _CHILD_SETUP + textwrap.dedent(body)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": SRC, **env}, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_threads_never_enter_a_numba_parallel_region():
    # Under Numba's workqueue threading layer (what a machine without TBB or OpenMP gets) two
    # threads entering parallel regions at once abort the process; poolkit.keras's kernels use
    # no threading layer at all.
    out = _run_child("""
        import threading
        import numba
        out = []
        def run():
            out.append(m.predict(x, batch_size=64, verbose=0))
        ts = [threading.Thread(target=run) for _ in range(4)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert len(out) == 4 and all(np.array_equal(o, ref) for o in out)
        try:
            numba.threading_layer()
        except ValueError:
            print("no threading layer")
        else:
            print("threading layer used:", numba.threading_layer())
    """, NUMBA_THREADING_LAYER="workqueue")
    assert "no threading layer" in out, out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_workers_predict_after_the_parent_used_the_kernels():
    # In a fresh process: pytest's own has run torch, whose OpenMP runtime refuses to fork.
    out = _run_child("""
        import multiprocessing

        def child(queue):
            queue.put(m.predict(x, batch_size=64, verbose=0))

        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        procs = [ctx.Process(target=child, args=(queue,)) for _ in range(2)]
        [p.start() for p in procs]
        got = [queue.get(timeout=300) for _ in procs]
        [p.join(timeout=60) for p in procs]
        assert [p.exitcode for p in procs] == [0, 0]
        assert all(np.array_equal(g, ref) for g in got)
        print("children agree")
    """)
    assert "children agree" in out
