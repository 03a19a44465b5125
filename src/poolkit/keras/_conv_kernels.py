"""Numba kernels for Conv2D (channels_last) and the Adam/SGD updates.

Layouts: x (N, H, W, Cin), kernel (KH, KW, Cin, Cout), y (N, OH, OW, Cout), all C-contiguous.
``geo`` = (sh, sw, dh, dw, ph, pw): strides, dilations and the padding before each spatial dim
(the padding after is implied by the output size). Taps that fall in the padding are skipped.
The inner loops run over output channels, which are contiguous, so LLVM vectorises them.

Reductions over the batch (weight and bias gradients) are split into a FIXED number of chunks
(not the thread count), so results are bitwise reproducible whatever the number of threads.
"""

import numpy as np
from numba import njit, prange

N_CHUNKS = 8


@njit(cache=True, parallel=True, boundscheck=False, fastmath=False)
def conv2d_fwd(x, w, b, y, geo, relu):
    N, H, W, C = x.shape
    KH, KW, _, F = w.shape
    OH, OW = y.shape[1], y.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    for n in prange(N):
        acc = np.empty(F, y.dtype)
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
    return y


@njit(cache=True, parallel=True, boundscheck=False)
def conv2d_bwd_params(x, gy, y, gm, gw_parts, gb_parts, geo, relu, keep):
    """Weight and bias gradients (per chunk; the caller sums over chunks). With ``relu`` the
    incoming gradient ``gy`` is masked by ``y > 0`` on the fly; with ``keep`` the masked
    gradient is written to ``gm`` for the input-gradient kernel (else ``gm`` is not touched)."""
    N, H, W, C = x.shape
    OH, OW, F = gy.shape[1], gy.shape[2], gy.shape[3]
    KH, KW = gw_parts.shape[1], gw_parts.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    P = gw_parts.shape[0]
    for part in prange(P):
        gw = gw_parts[part]
        gb = gb_parts[part]
        gw[...] = 0.0
        gb[...] = 0.0
        g = np.empty(F, gy.dtype)
        for n in range(part, N, P):
            for oh in range(OH):
                for ow in range(OW):
                    gr = gy[n, oh, ow]
                    if relu:
                        yr = y[n, oh, ow]
                        for f in range(F):
                            g[f] = gr[f] if yr[f] > 0 else 0.0
                    else:
                        for f in range(F):
                            g[f] = gr[f]
                    if keep:
                        gm[n, oh, ow] = g
                    for f in range(F):
                        gb[f] += g[f]
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
                                    gwr[f] += v * g[f]
    return gw_parts, gb_parts


@njit(cache=True, parallel=True, boundscheck=False)
def conv2d_bwd_input(gy, w, gx, geo):
    """Input gradient from an already activation-masked ``gy``."""
    N, H, W, C = gx.shape
    KH, KW, _, F = w.shape
    OH, OW = gy.shape[1], gy.shape[2]
    sh, sw, dh, dw, ph, pw = geo[0], geo[1], geo[2], geo[3], geo[4], geo[5]
    for n in prange(N):
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
    return gx


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


@njit(cache=True, parallel=True, boundscheck=False, fastmath=True)
def dense_fwd(x, wt, b, z):
    N, D = x.shape
    U = wt.shape[0]
    for n in prange(N):
        xr = x[n]
        for u in range(U):
            wr = wt[u]
            s = 0.0
            for k in range(D):
                s += xr[k] * wr[k]
            z[n, u] = s + b[u]
    return z


@njit(cache=True, parallel=True, boundscheck=False)
def dense_bwd_params(x, g, gwt, gb):
    N, D = x.shape
    U = g.shape[1]
    for u in prange(U):
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
    return gwt, gb


@njit(cache=True, parallel=True, boundscheck=False)
def dense_bwd_input(g, wt, gx):
    N, D = gx.shape
    U = wt.shape[0]
    for n in prange(N):
        r = gx[n]
        r[:] = 0.0
        for u in range(U):
            gv = g[n, u]
            wr = wt[u]
            for k in range(D):
                r[k] += gv * wr[k]
    return gx
