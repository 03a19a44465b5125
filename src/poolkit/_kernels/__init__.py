"""Numba kernels. They see only validated, contiguous arrays and per-dim tables built by
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
