"""The first max_pool2d in a fresh process: prints the seconds of ``import poolkit.functional``
and of one max_pool2d of a (2, 3, 16, 16) float32 array, then (``--wait``) the seconds from
that call until its kernel is in Numba's cache (a background compilation ended; the call's
own time if it compiled in-process or loaded it). bench_pooling.py runs it with a fresh
NUMBA_CACHE_DIR; as a whole process under farm-bench it times what a user waits for:

    farm-bench -n 5 --warmup 0 -- sh -c \
        'rm -rf /tmp/c; NUMBA_CACHE_DIR=/tmp/c exec python benchmarks/first_call.py'
"""

import sys
import time

import numpy as np

t = time.perf_counter()
import poolkit.functional as F  # noqa: E402

t_import = time.perf_counter() - t
x = np.random.default_rng(0).standard_normal((2, 3, 16, 16)).astype(np.float32)
t = time.perf_counter()
F.max_pool2d(x, 2, 2)
first = time.perf_counter() - t
if "--wait" in sys.argv:
    from poolkit._kernels import _jit

    for process in list(_jit._jobs.values()):  # the kernel compiling in the background
        process.wait()
print(f"{t_import:.3f} {first:.3f} {time.perf_counter() - t:.3f}")
