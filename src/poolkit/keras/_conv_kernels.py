"""Numba kernels for Conv2D (channels_last) and the Adam/SGD updates.

Layouts: x (N, H, W, Cin), kernel (KH, KW, Cin, Cout), y (N, OH, OW, Cout), all C-contiguous.
``geo`` = (sh, sw, dh, dw, ph, pw): strides, dilations and the padding before each spatial dim
(the padding after is implied by the output size). Taps that fall in the padding are skipped.
The inner loops run over output channels, which are contiguous, so LLVM vectorises them.

For stride 1, dilation 1 and no padding (the common "valid" conv) the kernels work one output
row at a time with the tap loop outside and the row of output pixels inside: no bounds checks,
and the row (OW x Cout) stays in L1. (Tried and slower with Numba 0.6x: literal Cout, which
LLVM unrolls to scalar code, and 8-channel scalar accumulators, which SLP does not vectorise.)

Threads: a prange region costs tens of microseconds and, on a busy 2-core machine, waits for a
time slice for every worker. Each kernel therefore runs serially unless its work exceeds
``PAR_MIN_WORK`` multiply-adds, and then over samples (or fixed chunks) in parallel, with
identical results. The threshold (2^20, ~0.2 ms serial) is set for a quiet machine: there the
tutorial's model trains a Fashion-MNIST epoch in 5.5 s with it and 7.2 s with 2^25 (all serial).

Reductions over the batch (weight and bias gradients) are split into a FIXED number of chunks
(not the thread count), so results are bitwise reproducible whatever the number of threads.
"""

import numpy as np
from numba import njit, prange

N_CHUNKS = 8
PAR_MIN_WORK = 1 << 20  # multiply-adds (~0.2 ms serial) below which a kernel runs serially


@njit(cache=True, boundscheck=False)
def _is_plain(x, w, y, geo):
    """Stride 1, dilation 1, no padding: every tap of every output pixel is in bounds."""
    return (geo[0] == 1 and geo[1] == 1 and geo[2] == 1 and geo[3] == 1 and geo[4] == 0
            and geo[5] == 0 and y.shape[1] == x.shape[1] - w.shape[0] + 1
            and y.shape[2] == x.shape[2] - w.shape[1] + 1)


@njit(cache=True, boundscheck=False)
def _fwd_samples(x, w, b, y, geo, relu, n0, n1, acc):
    N, H, W, C = x.shape
    KH, KW, _, F = w.shape
    OH, OW = y.shape[1], y.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    if _is_plain(x, w, y, geo):
        for n in range(n0, n1):
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
    for n in range(n0, n1):
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


@njit(cache=True, boundscheck=False)
def _conv2d_fwd_serial(x, w, b, y, geo, relu):
    _fwd_samples(x, w, b, y, geo, relu, 0, x.shape[0], np.empty(w.shape[3], y.dtype))
    return y


@njit(cache=True, parallel=True, boundscheck=False)
def _conv2d_fwd_parallel(x, w, b, y, geo, relu):
    for n in prange(x.shape[0]):
        _fwd_samples(x, w, b, y, geo, relu, n, n + 1, np.empty(w.shape[3], y.dtype))
    return y


def _work(y, w):
    return y.size * w.shape[0] * w.shape[1] * w.shape[2]


def conv2d_fwd(x, w, b, y, geo, relu):
    if _work(y, w) >= PAR_MIN_WORK:
        return _conv2d_fwd_parallel(x, w, b, y, geo, relu)
    return _conv2d_fwd_serial(x, w, b, y, geo, relu)


@njit(cache=True, boundscheck=False)
def _bwd_params_part(x, gy, y, gm, gw, gb, geo, relu, keep, part, P, grow):
    N, H, W, C = x.shape
    OH, OW, F = gy.shape[1], gy.shape[2], gy.shape[3]
    KH, KW = gw.shape[0], gw.shape[1]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    plain = (sh == 1 and sw == 1 and dh == 1 and dw == 1 and ph == 0 and pw == 0
             and OH == H - KH + 1 and OW == W - KW + 1)
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


@njit(cache=True, boundscheck=False)
def _conv2d_bwd_params_serial(x, gy, y, gm, gw_parts, gb_parts, geo, relu, keep):
    P = gw_parts.shape[0]
    grow = np.empty((gy.shape[2], gy.shape[3]), gy.dtype)
    for part in range(P):
        _bwd_params_part(x, gy, y, gm, gw_parts[part], gb_parts[part], geo, relu, keep, part, P,
                         grow)
    return gw_parts, gb_parts


@njit(cache=True, parallel=True, boundscheck=False)
def _conv2d_bwd_params_parallel(x, gy, y, gm, gw_parts, gb_parts, geo, relu, keep):
    P = gw_parts.shape[0]
    for part in prange(P):
        grow = np.empty((gy.shape[2], gy.shape[3]), gy.dtype)
        _bwd_params_part(x, gy, y, gm, gw_parts[part], gb_parts[part], geo, relu, keep, part, P,
                         grow)
    return gw_parts, gb_parts


def conv2d_bwd_params(x, gy, y, gm, gw_parts, gb_parts, geo, relu, keep):
    """Weight and bias gradients (per chunk; the caller sums over chunks). With ``relu`` the
    incoming gradient ``gy`` is masked by ``y > 0`` on the fly; with ``keep`` the masked
    gradient is written to ``gm`` for the input-gradient kernel (else ``gm`` is not touched)."""
    if _work(gy, gw_parts[0]) >= PAR_MIN_WORK:
        return _conv2d_bwd_params_parallel(x, gy, y, gm, gw_parts, gb_parts, geo, relu, keep)
    return _conv2d_bwd_params_serial(x, gy, y, gm, gw_parts, gb_parts, geo, relu, keep)


@njit(cache=True, boundscheck=False)
def _bwd_input_samples(gy, w, gx, geo, n0, n1):
    N, H, W, C = gx.shape
    KH, KW, _, F = w.shape
    OH, OW = gy.shape[1], gy.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    for n in range(n0, n1):
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


@njit(cache=True, boundscheck=False)
def _conv2d_bwd_input_serial(gy, w, gx, geo):
    _bwd_input_samples(gy, w, gx, geo, 0, gx.shape[0])
    return gx


@njit(cache=True, parallel=True, boundscheck=False)
def _conv2d_bwd_input_parallel(gy, w, gx, geo):
    for n in prange(gx.shape[0]):
        _bwd_input_samples(gy, w, gx, geo, n, n + 1)
    return gx


def conv2d_bwd_input(gy, w, gx, geo):
    """Input gradient from an already activation-masked ``gy``."""
    if _work(gy, w) >= PAR_MIN_WORK:
        return _conv2d_bwd_input_parallel(gy, w, gx, geo)
    return _conv2d_bwd_input_serial(gy, w, gx, geo)


@njit(cache=True, boundscheck=False)
def adam_update(p, g, m, v, lr_t, b1, b2, eps):
    """Keras's Adam step on flat arrays: m, v moving averages; p -= lr_t * m / (sqrt(v) + eps)."""
    for i in range(p.size):
        gi = g[i]
        mi = m[i] + (gi - m[i]) * (1.0 - b1)
        vi = v[i] + (gi * gi - v[i]) * (1.0 - b2)
        m[i] = mi
        v[i] = vi
        p[i] -= lr_t * mi / (np.sqrt(vi) + eps)


@njit(cache=True, boundscheck=False)
def sgd_momentum_update(p, g, vel, lr, momentum, nesterov):
    """Keras's SGD with momentum: v = momentum*v - lr*g; p += v (or the Nesterov form)."""
    for i in range(p.size):
        vi = momentum * vel[i] - lr * g[i]
        vel[i] = vi
        if nesterov:
            p[i] += momentum * vi - lr * g[i]
        else:
            p[i] += vi


# ------------------------------------------------------------------------------------------
# Dense. The kernel is held transposed in memory, wt (units, in) C-contiguous (the layer
# exposes wt.T, Keras's (in, units) shape), so every inner loop below runs over the long,
# contiguous ``in`` axis. This avoids BLAS, whose threads fight Numba's on a small machine.


@njit(cache=True, boundscheck=False, fastmath=True)
def _dense_fwd_rows(x, wt, b, z, n0, n1):
    D = x.shape[1]
    U = wt.shape[0]
    for n in range(n0, n1):
        xr = x[n]
        for u in range(U):
            wr = wt[u]
            s = 0.0
            for k in range(D):
                s += xr[k] * wr[k]
            z[n, u] = s + b[u]


@njit(cache=True, boundscheck=False)
def _dense_bwd_params_units(x, g, gwt, gb, u0, u1):
    N, D = x.shape
    for u in range(u0, u1):
        row = gwt[u]
        row[:] = 0.0
        s = 0.0
        for n in range(N):
            gv = g[n, u]
            s += gv
            xr = x[n]
            for k in range(D):
                row[k] += gv * xr[k]
        gb[u] = s


@njit(cache=True, boundscheck=False)
def _dense_bwd_input_rows(g, wt, gx, n0, n1):
    D = gx.shape[1]
    U = wt.shape[0]
    for n in range(n0, n1):
        r = gx[n]
        r[:] = 0.0
        for u in range(U):
            gv = g[n, u]
            wr = wt[u]
            for k in range(D):
                r[k] += gv * wr[k]


@njit(cache=True, boundscheck=False)
def _dense_fwd_serial(x, wt, b, z):
    _dense_fwd_rows(x, wt, b, z, 0, x.shape[0])
    return z


@njit(cache=True, parallel=True, boundscheck=False)
def _dense_fwd_parallel(x, wt, b, z):
    for n in prange(x.shape[0]):
        _dense_fwd_rows(x, wt, b, z, n, n + 1)
    return z


@njit(cache=True, boundscheck=False)
def _dense_bwd_params_serial(x, g, gwt, gb):
    _dense_bwd_params_units(x, g, gwt, gb, 0, gwt.shape[0])
    return gwt, gb


@njit(cache=True, parallel=True, boundscheck=False)
def _dense_bwd_params_parallel(x, g, gwt, gb):
    for u in prange(gwt.shape[0]):
        _dense_bwd_params_units(x, g, gwt, gb, u, u + 1)
    return gwt, gb


@njit(cache=True, boundscheck=False)
def _dense_bwd_input_serial(g, wt, gx):
    _dense_bwd_input_rows(g, wt, gx, 0, gx.shape[0])
    return gx


@njit(cache=True, parallel=True, boundscheck=False)
def _dense_bwd_input_parallel(g, wt, gx):
    for n in prange(gx.shape[0]):
        _dense_bwd_input_rows(g, wt, gx, n, n + 1)
    return gx


def dense_fwd(x, wt, b, z):
    if x.shape[0] * wt.size >= PAR_MIN_WORK:
        return _dense_fwd_parallel(x, wt, b, z)
    return _dense_fwd_serial(x, wt, b, z)


def dense_bwd_params(x, g, gwt, gb):
    if x.shape[0] * gwt.size >= PAR_MIN_WORK:
        return _dense_bwd_params_parallel(x, g, gwt, gb)
    return _dense_bwd_params_serial(x, g, gwt, gb)


def dense_bwd_input(g, wt, gx):
    if gx.shape[0] * wt.size >= PAR_MIN_WORK:
        return _dense_bwd_input_parallel(g, wt, gx)
    return _dense_bwd_input_serial(g, wt, gx)
