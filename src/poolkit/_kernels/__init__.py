"""Numba kernels: pooling (maxpool, avgpool, rows), convolution (conv), dense layers (dense) and
optimizer updates (optim); the idle worker threads' wait for their next task (spin) and the
body torch's OpenMP threads run for poolkit (team).

The rule every part of poolkit keeps: NO PUBLIC CALL READS OR WRITES OUTSIDE AN ARRAY, WHATEVER
ITS ARGUMENTS. The kernels are compiled without bounds checks, so they are only ever reached
through an entry point that has checked every array against every other (shapes, dtypes,
tables): a public function, layer, model or optimizer validates what the caller passed and
raises InvalidValue / InvalidType (:mod:`poolkit.errors`) before any kernel runs, and the entry
points of conv, dense and optim check the arrays they are handed once more (plain ValueError:
reaching it is a bug), so a wrong array built inside poolkit cannot reach memory either. Every
kernel is a serial, module-level ``@njit(cache=True, nogil=True)`` function with its own
name, run on task ranges by :func:`poolkit._threads.parallel_for` (no ``prange``).

Pooling kernels see only validated, contiguous arrays and per-dim tables built by
``poolkit.engine`` from a :class:`poolkit.shapes.PoolSpec`; every spatial problem is lifted to 3-D
(leading dims of size 1), so one kernel per reduction and layout serves 1-D, 2-D and 3-D.

Layouts: ``cf`` is channels-first, x viewed as (planes, D, H, W); ``cl`` is channels-last,
x viewed as (N, D, H, W, C) with the inner loop over contiguous channels.

Tables (int64 unless said), one row per dim (d, h, w):
- ``geo[r] = (window, stride, dilation, pad_before, a, b)``: outputs ``a <= o < b`` have
  every window offset in bounds.
- ``lo[r, j], hi[r, j]``: outputs ``o`` with ``lo <= o < hi`` read an in-bounds position at window
  offset ``j`` (position ``o*stride - pad_before + j*dilation``).
- ``first[r, o]``: first in-bounds position of window ``o`` (PyTorch's initial max index).
- ``cnt[r, o]`` (float64): divisor factor of window ``o`` for average pooling.
"""
