"""Shift-invariance metrics: measure the tutorial's claim that pooling gives invariance to small
translations, instead of repeating it.

- :func:`shift_consistency`: does the *classifier* give the same answer for two shifted copies?
- :func:`shift_equivariance_error`: does a *pooling layer* commute with shifts?
  :func:`layer_equivariance` measures it for every pooling layer of a model.
- :func:`max_pool_gradient_fraction`: how much of the input a max-pooling layer lets learn.

All arrays are channels_last, (N, H, W, C) unless stated; pooling goes through poolkit's own ops.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InvalidType, InvalidValue
from ..kinds import POOL_KINDS
from ..ops import max_pool, max_pool_backward
from ..shapes import keras_spec
from .models import is_windowed, pool_op

__all__ = [
    "random_shift_pairs",
    "shift_consistency",
    "shift_equivariance_error",
    "layer_equivariance",
    "max_pool_gradient_fraction",
]


def _as_images(x, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":
        raise InvalidType(f"{name} must be a numeric array, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or 0 in x.shape[1:]:
        raise InvalidValue(f"{name} must be (N, H, W) or (N, H, W, C) images, got shape {x.shape}")
    return x


def random_shift_pairs(x, pad: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two randomly shifted copies of every image in ``x`` (N, H, W[, C]).

    Each image is zero-padded by ``pad`` cells on every side ((H+2*pad) x (W+2*pad); 36x36 for
    MNIST with the default 4) and two H x W crops are taken at offsets drawn independently and
    uniformly from {0, ..., 2*pad} per axis with ``np.random.default_rng(seed)``. The centre crop
    (offset pad, pad) is the original image. Returns two arrays shaped like ``x`` (with C).
    """
    x = _as_images(x)
    if not isinstance(pad, int) or pad < 0:
        raise InvalidValue(f"pad must be a non-negative int, got {pad!r}")
    n, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, 2 * pad + 1, size=(2, n, 2))
    copies = []
    for off in offsets:
        copies.append(np.stack([padded[i, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(off)])
                      if n else np.zeros_like(x))
    return copies[0], copies[1]


def shift_consistency(predict: Callable[[np.ndarray], np.ndarray], x, pad: int = 4,
                      seed: int = 0) -> float:
    """Classification consistency under random shifts (Zhang, 2019, "Making Convolutional
    Networks Shift-Invariant Again", section 4): the probability that two randomly shifted copies
    of an image get the same predicted class,

        consistency = mean over images of [argmax f(shift_a(x)) == argmax f(shift_b(x))]

    with the two shifts made by :func:`random_shift_pairs` (zero-pad by ``pad``, two random crops
    of the original size; seeded, so the number is reproducible). ``predict`` maps (N, H, W, C)
    float32 images to (N, classes) scores — e.g. ``model.predict`` — and ``x`` is (N, H, W[, C]),
    already scaled as the model expects. 1.0 means shifts never change the answer.
    """
    a, b = random_shift_pairs(x, pad, seed)
    if len(a) == 0:
        raise InvalidValue("x must hold at least one image to measure consistency, got 0")
    pa = np.asarray(predict(a.astype(np.float32)))
    pb = np.asarray(predict(b.astype(np.float32)))
    if pa.ndim != 2 or pa.shape != pb.shape or pa.shape[0] != len(a):
        raise InvalidValue(
            f"predict must return (N, classes) scores for N={len(a)} images, got shape {pa.shape}"
        )
    return float(np.mean(pa.argmax(axis=1) == pb.argmax(axis=1)))


def _check_mode(mode) -> str:
    """``mode`` as a windowed pooling kind of :mod:`poolkit.kinds` ("average" is "avg")."""
    windowed = [k for k in POOL_KINDS if is_windowed(k)]
    m = "avg" if mode == "average" else mode
    if m not in windowed:
        raise InvalidValue(f"mode must be one of {windowed}, got {mode!r}")
    return m


def _pool(mode: str, x, pool_size, strides, padding):
    return pool_op(_check_mode(mode))(x, pool_size, strides, padding)


def _comparable(L: int, out: int, s: int, e: int, pb: int, t: int, q: int) -> np.ndarray:
    """Output cells o (1-D mask) where both pool(roll(x, t))[o] and pool(x)[o - q] read only real,
    unwrapped input: the window [o*s - pb, o*s - pb + e) lies in [max(t, 0), L + min(t, 0)) and
    the window of o - q lies in [0, L)."""
    o = np.arange(out)
    start = o * s - pb
    ok = (start >= max(t, 0)) & (start + e <= L + min(t, 0))
    src = o - q
    return ok & (src >= 0) & (src < out) & (src * s - pb >= 0) & (src * s - pb + e <= L)


def shift_equivariance_error(x, shift: Sequence[int], mode: str = "max", pool_size=2,
                             strides=None, padding: str = "valid") -> dict:
    """Shift equivariance error of one pooling layer on feature maps ``x`` (N, H, W, C):

        error = ||pool(shift_t(x)) - shift_q(pool(x))|| / ||shift_q(pool(x))||

    over the compared cells, with Frobenius norms. ``shift_t`` is a circular shift (``np.roll``)
    by ``t = shift`` = (dy, dx) input cells and ``shift_q`` one by ``q`` output cells. Only output
    cells whose windows lie wholly inside the input for both terms and never read a wrapped-around
    cell are compared, so neither the roll's wrap nor the padding affects the number.

    - If ``t`` is a multiple of the stride on every axis, ``q = t / stride``: the exact
      counterpart. Non-overlapping max or average pooling then has error 0 (up to float rounding).
    - Otherwise there is no exact counterpart; ``q`` is the best of ``floor(t/s)`` and
      ``ceil(t/s)`` per axis (the one with the smallest error), so the number is a lower bound on
      how far the pooled map is from any integer shift of itself.

    Returns ``{"error", "q", "cells"}``: the error, the chosen output shift and the number of
    compared output positions per (N, C) plane. Raises ValueError if no cell can be compared
    (shift too large for the map).
    """
    x = _as_images(x)
    mode = _check_mode(mode)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    t = tuple(int(v) for v in shift)
    if len(t) != 2:
        raise InvalidValue(f"shift must be (dy, dx), got {shift!r}")
    spec = keras_spec(x.shape[1:3], pool_size, strides, padding,
                      op="shift_equivariance_error")
    y = _pool(mode, x, pool_size, strides, padding)
    z = _pool(mode, np.roll(x, t, axis=(1, 2)), pool_size, strides, padding)
    choices = [
        sorted({ti // s, -(-ti // s)})
        for ti, s in zip(t, spec.stride, strict=True)
    ]
    best = None
    for q in itertools.product(*choices):
        masks = [
            _comparable(L, o, s, e, pb, ti, qi)
            for L, o, s, e, pb, ti, qi in zip(spec.in_size, spec.out_size, spec.stride,
                                              spec.effective_window, spec.pad_before, t, q,
                                              strict=True)
        ]
        rows, cols = np.nonzero(masks[0])[0], np.nonzero(masks[1])[0]
        if len(rows) == 0 or len(cols) == 0:
            continue
        a = z[:, rows][:, :, cols]
        b = y[:, rows - q[0]][:, :, cols - q[1]]
        den = np.linalg.norm(b)
        num = np.linalg.norm(a - b)
        err = float(num / den) if den > 0 else (0.0 if num == 0 else float("inf"))
        if best is None or err < best["error"]:
            best = {"error": err, "q": tuple(q), "cells": int(len(rows) * len(cols))}
    if best is None:
        raise InvalidValue(
            f"shift {t} is too large for pooled maps of input size {spec.in_size}: no output cell "
            f"has an unwrapped window in both the shifted and the unshifted map"
        )
    return best


def layer_equivariance(model, x, shifts: Sequence[Sequence[int]] = ((1, 0), (2, 0), (1, 1),
                                                                  (2, 2))) -> list[dict]:
    """:func:`shift_equivariance_error` of every 2-D pooling layer of ``model`` (a built
    Sequential), on the feature maps that reach it when ``x`` (N, H, W[, C]) is fed in.

    One dict per (layer, shift): ``layer``, ``type``, ``pool_size``, ``strides``, ``shift``,
    ``multiple`` (the shift is a multiple of the stride on both axes) and the keys returned by
    :func:`shift_equivariance_error`. Layers before the pooling layer run as in inference.
    """
    h = _as_images(x).astype(np.float32)
    rows = []
    from ..keras.layers import BasePooling

    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, BasePooling) and layer.pool_dimensions == 2:
            for t in shifts:
                res = shift_equivariance_error(h, t, layer.pool_mode, layer.pool_size,
                                               layer.strides, layer.padding)
                rows.append({
                    "layer": layer.name, "type": kind, "pool_size": tuple(layer.pool_size),
                    "strides": tuple(layer.strides), "shift": tuple(t),
                    "multiple": all(ti % s == 0 for ti, s in zip(t, layer.strides, strict=True)),
                    **res,
                })
        h = layer(h)
    return rows


def max_pool_gradient_fraction(x, pool_size=2, strides=None, padding: str = "valid") -> float:
    """Fraction of the input cells of ``x`` (N, H, W, C) that receive a nonzero gradient through
    max pooling: ``mean(max_pool_backward(ones, x) != 0)``.

    With non-overlapping windows that tile the input and distinct values, each window passes its
    gradient to exactly one of its ``k*k`` cells, so the fraction is ``1/(k*k)`` (1/4 for 2x2/2);
    overlapping windows can pick the same cell twice, cells outside every window get none.
    """
    x = _as_images(x)
    y = max_pool(x, pool_size, strides, padding)
    g = max_pool_backward(np.ones_like(y), x, pool_size, strides, padding)
    return float(np.count_nonzero(g) / g.size)
