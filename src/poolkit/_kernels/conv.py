"""Conv2D kernels, channels_last.

Layouts: x (N, H, W, Cin), kernel w (KH, KW, Cin, F), y (N, OH, OW, F); ``geo`` = (sh, sw, dh,
dw, ph, pw): strides, dilations and the padding before each spatial dim (the padding after is
implied by the output size). Output pixel (oh, ow) reads input rows ``oh*sh - ph + kh*dh`` and
columns ``ow*sw - pw + kw*dw``; taps that fall in the padding are skipped. The inner loops run
over output channels, which are contiguous, so LLVM vectorises them.

For stride 1, dilation 1 and no padding (the common "valid" conv) the kernels work one output
row at a time with the tap loop outside and the row of output pixels inside: no bounds checks,
and the row (OW x F) stays in L1. (Tried and slower with Numba 0.6x: literal F, which LLVM
unrolls to scalar code, and 8-channel scalar accumulators, which SLP does not vectorise.)

Each kernel is ONE serial, GIL-free body over a task range ``[lo, hi)`` (samples, or chunks of
samples for the weight gradient); :func:`poolkit._threads.parallel_for` runs the ranges on
several threads when the work reaches ``PAR_MIN_WORK`` multiply-adds (~0.3 ms serial). Below
it the kernel runs in the calling thread: a parallel_for call costs 40-100 us of dispatch
(measured with empty ranges on the 2-core machine), which smaller kernels do not win back.
Weight and bias gradients are reduced over a FIXED number of chunks (``N_CHUNKS``, not the
thread count) and summed in chunk order, so every result is bitwise the same whatever the
number of threads.

The entry points check every shape against the others before a kernel runs (the kernels do no
bounds checks), so a wrong array raises ValueError instead of reading outside memory.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .._threads import parallel_for
from ._jit import Kernel, sig

__all__ = ["N_CHUNKS", "PAR_MIN_WORK", "conv2d_forward", "conv2d_backward_params",
           "conv2d_backward_input"]

N_CHUNKS = 8
PAR_MIN_WORK = 1 << 22  # multiply-adds below which a kernel runs in the calling thread


@njit(boundscheck=False)
def _conv_is_plain(x, w, y, geo):
    """Stride 1, dilation 1, no padding: every tap of every output pixel is in bounds."""
    return (geo[0] == 1 and geo[1] == 1 and geo[2] == 1 and geo[3] == 1 and geo[4] == 0
            and geo[5] == 0 and y.shape[1] == x.shape[1] - w.shape[0] + 1
            and y.shape[2] == x.shape[2] - w.shape[1] + 1)


def _conv2d_fwd_tasks(x, w, b, y, geo, relu, lo, hi):
    """y[n] = conv(x[n], w) + b (then max(., 0) if ``relu``) for samples lo <= n < hi."""
    N, H, W, C = x.shape
    KH, KW, _, F = w.shape
    OH, OW = y.shape[1], y.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    if _conv_is_plain(x, w, y, geo):
        for n in range(lo, hi):
            for oh in range(OH):
                yr = y[n, oh]
                for ow in range(OW):
                    for f in range(F):
                        yr[ow, f] = b[f]
                for kh in range(KH):
                    xr = x[n, oh + kh]
                    for kw in range(KW):
                        for c in range(C):
                            wr = w[kh, kw, c]
                            if relu and kh == KH - 1 and kw == KW - 1 and c == C - 1:
                                # the last tap applies the ReLU: no separate pass over the row
                                for ow in range(OW):
                                    v = xr[ow + kw, c]
                                    for f in range(F):
                                        s = yr[ow, f] + v * wr[f]
                                        yr[ow, f] = s if s > 0 else 0.0
                            else:
                                for ow in range(OW):
                                    v = xr[ow + kw, c]
                                    for f in range(F):
                                        yr[ow, f] += v * wr[f]
        return
    acc = np.empty(F, y.dtype)
    for n in range(lo, hi):
        for oh in range(OH):
            for ow in range(OW):
                for f in range(F):
                    acc[f] = b[f]
                for kh in range(KH):
                    ih = oh * sh - ph + kh * dh
                    if ih < 0 or ih >= H:
                        continue
                    for kw in range(KW):
                        iw = ow * sw - pw + kw * dw
                        if iw < 0 or iw >= W:
                            continue
                        for c in range(C):
                            v = x[n, ih, iw, c]
                            for f in range(F):
                                acc[f] += v * w[kh, kw, c, f]
                if relu:
                    for f in range(F):
                        y[n, oh, ow, f] = acc[f] if acc[f] > 0 else 0.0
                else:
                    for f in range(F):
                        y[n, oh, ow, f] = acc[f]


def _conv2d_bwd_params_tasks(x, gy, y, gm, gw_parts, gb_parts, geo, relu, keep, lo, hi):
    """Chunk p (lo <= p < hi) of P = len(gw_parts) sums the weight and bias gradients of
    samples p, p + P, p + 2P, ... into gw_parts[p], gb_parts[p]."""
    N, H, W, C = x.shape
    OH, OW, F = gy.shape[1], gy.shape[2], gy.shape[3]
    P, KH, KW = gw_parts.shape[0], gw_parts.shape[1], gw_parts.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    plain = _conv_is_plain(x, gw_parts[0], gy, geo)
    grow = np.empty((OW, F), gy.dtype)
    for part in range(lo, hi):
        gw = gw_parts[part]
        gb = gb_parts[part]
        gw[...] = 0.0
        gb[...] = 0.0
        for n in range(part, N, P):
            for oh in range(OH):
                gr = gy[n, oh]
                if relu:
                    yr = y[n, oh]
                    for ow in range(OW):
                        for f in range(F):
                            grow[ow, f] = gr[ow, f] if yr[ow, f] > 0 else 0.0
                else:
                    for ow in range(OW):
                        for f in range(F):
                            grow[ow, f] = gr[ow, f]
                if keep:
                    gm[n, oh] = grow
                for ow in range(OW):
                    for f in range(F):
                        gb[f] += grow[ow, f]
                if plain:
                    for kh in range(KH):
                        xr = x[n, oh + kh]
                        for kw in range(KW):
                            for c in range(C):
                                gwr = gw[kh, kw, c]
                                for ow in range(OW):
                                    v = xr[ow + kw, c]
                                    for f in range(F):
                                        gwr[f] += v * grow[ow, f]
                else:
                    for ow in range(OW):
                        for kh in range(KH):
                            ih = oh * sh - ph + kh * dh
                            if ih < 0 or ih >= H:
                                continue
                            for kw in range(KW):
                                iw = ow * sw - pw + kw * dw
                                if iw < 0 or iw >= W:
                                    continue
                                for c in range(C):
                                    v = x[n, ih, iw, c]
                                    gwr = gw[kh, kw, c]
                                    for f in range(F):
                                        gwr[f] += v * grow[ow, f]


def _conv2d_bwd_input_tasks(gy, w, gx, geo, lo, hi):
    """gx[n] = transposed conv of the (already activation-masked) gy[n], lo <= n < hi."""
    N, H, W, C = gx.shape
    KH, KW, _, F = w.shape
    OH, OW = gy.shape[1], gy.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    for n in range(lo, hi):
        gx[n] = 0.0
        for oh in range(OH):
            for ow in range(OW):
                g = gy[n, oh, ow]
                for kh in range(KH):
                    ih = oh * sh - ph + kh * dh
                    if ih < 0 or ih >= H:
                        continue
                    for kw in range(KW):
                        iw = ow * sw - pw + kw * dw
                        if iw < 0 or iw >= W:
                            continue
                        for c in range(C):
                            wr = w[kh, kw, c]
                            s = 0.0
                            for f in range(F):
                                s += g[f] * wr[f]
                            gx[n, ih, iw, c] += s


# One compiled kernel per dtype (see _jit.Kernel): its own name in Numba's cache, one signature.
CONV_FWD = Kernel("conv2d_fwd", lambda dt: _conv2d_fwd_tasks,
                  lambda dt: sig(dt, "x4", "x4", "x1", "o4", "i1", "b", "i", "i"), cost=1.0)
CONV_BWD_PARAMS = Kernel("conv2d_bwd_params", lambda dt: _conv2d_bwd_params_tasks,
                         lambda dt: sig(dt, "x4", "x4", "x4", "o4", "o5", "o2", "i1", "b", "b",
                                        "i", "i"), cost=3.6)
CONV_BWD_INPUT = Kernel("conv2d_bwd_input", lambda dt: _conv2d_bwd_input_tasks,
                        lambda dt: sig(dt, "x4", "x4", "o4", "i1", "i", "i"), cost=1.0)


# ------------------------------------------------------------------------------------------
# Entry points: check, then run serially or on the thread pool.


def _fail(what: str, got) -> None:
    raise ValueError(f"conv2d kernel: {what}, got {got}")


def _check_array(name: str, a, ndim: int, dtype) -> None:
    if not isinstance(a, np.ndarray) or a.ndim != ndim:
        _fail(f"{name} must be a {ndim}-D array", getattr(a, "shape", type(a).__name__))
    if a.dtype != dtype:
        _fail(f"{name} must have dtype {dtype}", a.dtype)


def _check_common(x_shape, w, geo, out_shape) -> None:
    # Taps outside the input are skipped by the kernels whatever the strides, dilations and
    # paddings, so memory safety needs only the arrays to agree with each other.
    if not isinstance(geo, np.ndarray) or geo.shape != (6,) or geo.dtype != np.int64:
        _fail("geo must be an int64 array (sh, sw, dh, dw, ph, pw)", geo)
    if x_shape[3] != w.shape[2] or out_shape[3] != w.shape[3] or out_shape[0] != x_shape[0]:
        _fail(f"x {tuple(x_shape)}, kernel {w.shape} and output {tuple(out_shape)} disagree",
              "mismatched shapes")


def conv2d_forward(x, w, b, y, geo, relu: bool) -> np.ndarray:
    """Fill ``y`` (N, OH, OW, F) with conv2d(x, w) + b, then ReLU if ``relu``; returns ``y``.

    All arrays C-contiguous with one float dtype; ``b`` has shape (F,).
    """
    dt = w.dtype
    for name, a, nd in (("x", x, 4), ("w", w, 4), ("b", b, 1), ("y", y, 4)):
        _check_array(name, a, nd, dt)
    _check_common(x.shape, w, geo, y.shape)
    if b.shape != (w.shape[3],):
        _fail(f"bias must have shape ({w.shape[3]},)", b.shape)
    n = x.shape[0]
    if y.size * w.shape[0] * w.shape[1] * w.shape[2] >= PAR_MIN_WORK:
        parallel_for(CONV_FWD[dt], n, x, w, b, y, geo, bool(relu))
    elif n:
        CONV_FWD[dt](x, w, b, y, geo, bool(relu), 0, n)
    return y


def conv2d_backward_params(x, gy, y, gm, gw_parts, gb_parts, geo, relu: bool,
                           keep: bool) -> None:
    """Weight and bias gradients per chunk into ``gw_parts`` (P, KH, KW, Cin, F) and
    ``gb_parts`` (P, F); the caller sums over the P chunks (in order). With ``relu`` the
    incoming gradient ``gy`` is masked by ``y > 0`` on the fly; with ``keep`` the masked
    gradient is written to ``gm`` (shape of ``gy``) for :func:`conv2d_backward_input`, else
    ``gm`` is not touched."""
    dt = gy.dtype
    for name, a, nd in (("x", x, 4), ("gy", gy, 4), ("y", y, 4), ("gm", gm, 4),
                        ("gw_parts", gw_parts, 5), ("gb_parts", gb_parts, 2)):
        _check_array(name, a, nd, dt)
    parts = gw_parts.shape[0]
    if parts < 1 or gb_parts.shape != (parts, gw_parts.shape[4]):
        _fail(f"gb_parts must have shape ({parts}, {gw_parts.shape[4]}) with >= 1 chunk",
              gb_parts.shape)
    _check_common(x.shape, gw_parts[0], geo, gy.shape)
    if y.shape != gy.shape or (keep and gm.shape != gy.shape):
        _fail(f"y and gm must have the shape of gy {gy.shape}", (y.shape, gm.shape))
    work = gy.size * gw_parts.shape[1] * gw_parts.shape[2] * gw_parts.shape[3]
    if work >= PAR_MIN_WORK:
        parallel_for(CONV_BWD_PARAMS[dt], parts, x, gy, y, gm, gw_parts, gb_parts, geo,
                     bool(relu), bool(keep))
    else:
        CONV_BWD_PARAMS[dt](x, gy, y, gm, gw_parts, gb_parts, geo, bool(relu), bool(keep), 0,
                            parts)


def conv2d_backward_input(gy, w, gx, geo) -> np.ndarray:
    """Fill ``gx`` (N, H, W, Cin) with the input gradient of an already activation-masked
    ``gy`` (N, OH, OW, F); returns ``gx``."""
    dt = w.dtype
    for name, a, nd in (("gy", gy, 4), ("w", w, 4), ("gx", gx, 4)):
        _check_array(name, a, nd, dt)
    _check_common(gx.shape, w, geo, gy.shape)
    n = gx.shape[0]
    if gy.size * w.shape[0] * w.shape[1] * w.shape[2] >= PAR_MIN_WORK:
        parallel_for(CONV_BWD_INPUT[dt], n, gy, w, gx, geo)
    elif n:
        CONV_BWD_INPUT[dt](gy, w, gx, geo, 0, n)
    return gx
