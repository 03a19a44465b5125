"""The pooling engine: ``pool`` and ``pool_backward`` on a :class:`~poolkit.shapes.PoolSpec`.

The engine takes batched arrays, (N, C, *spatial) or (N, *spatial, C), checks dtypes and
shapes, picks the kernel for the array's memory layout (a channels-first array whose memory is
channels-last, e.g. a transposed NHWC array, is pooled by the channels-last kernel without a
copy, and vice versa), lifts 1-D and 2-D problems to 3-D, and builds the per-dim tables the
kernels read. Conventions (ceil_mode, "same", divisor rules) were resolved by the front-end.
"""

from __future__ import annotations

import numpy as np

from ._kernels import avgpool as _avg
from ._kernels import maxpool as _max
from ._kernels.rows import variant as _variant
from .shapes import PoolSpec

__all__ = ["check_input", "check_grad", "pool", "pool_backward", "MODES"]

MODES = ("max", "avg")


# --------------------------------------------------------------------------------------------
# Array checks (shared by every front-end).


def check_input(x, mode: str, name: str = "input", *, op: str = "pool") -> np.ndarray:
    """``x`` as an ndarray of a dtype the op supports, else TypeError naming the rule."""
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__array__") or isinstance(x, list | tuple):
            try:
                x = np.asarray(x)
            except (ValueError, TypeError):
                raise
            except Exception as e:  # e.g. a torch tensor that requires grad
                raise TypeError(
                    f"{op}: {name} of type {type(x).__name__} could not be converted to a NumPy "
                    f"array: {e}"
                ) from e
        else:
            raise TypeError(f"{op}: {name} must be a NumPy array, got {type(x).__name__}")
    kind = x.dtype.kind
    if kind in "fiu" and not x.dtype.isnative:
        # The kernels take native byte order only; a byte-swapped array is a legal input.
        x = x.astype(x.dtype.newbyteorder("="))
    if kind == "f":
        if x.dtype.itemsize not in (2, 4, 8):
            raise TypeError(
                f"{op}: {name} has dtype {x.dtype}; supported floating dtypes are "
                f"float16, float32 and float64"
            )
        return x
    if kind in "iu":
        if mode == "max":
            return x
        raise TypeError(
            f"{op}: {name} has integer dtype {x.dtype}; average pooling needs a floating dtype "
            f"(float16, float32 or float64): cast with x.astype(np.float32)"
        )
    raise TypeError(
        f"{op}: {name} has dtype {x.dtype}; pooling takes floating arrays"
        + (" or integer arrays" if mode == "max" else "")
        + " (bool, complex, object, string and structured arrays are not supported)"
    )


def check_grad(grad, x: np.ndarray, out_shape: tuple, *, op: str) -> np.ndarray:
    if not isinstance(grad, np.ndarray):
        raise TypeError(f"{op}: grad_output must be a NumPy array, got {type(grad).__name__}")
    if grad.dtype.kind == "f" and not grad.dtype.isnative:
        grad = grad.astype(grad.dtype.newbyteorder("="))
    if x.dtype.kind != "f":
        raise TypeError(
            f"{op}: the backward pass needs a floating input, got input dtype {x.dtype}"
        )
    if grad.dtype != x.dtype:
        raise TypeError(
            f"{op}: grad_output dtype {grad.dtype} must equal the input dtype {x.dtype}"
        )
    if tuple(grad.shape) != tuple(out_shape):
        raise ValueError(
            f"{op}: grad_output has shape {tuple(grad.shape)}, but the forward output for this "
            f"input and these arguments has shape {tuple(out_shape)}"
        )
    return grad


# --------------------------------------------------------------------------------------------
# Per-dim tables for the kernels.


def _lift(spec: PoolSpec):
    """Per-dim parameters padded at the front to 3 dims with identity dims."""
    pad = 3 - spec.rank

    def lift(values, fill):
        return (fill,) * pad + tuple(values)

    return (
        lift(spec.in_size, 1),
        lift(spec.window, 1),
        lift(spec.stride, 1),
        lift(spec.dilation, 1),
        lift(spec.pad_before, 0),
        lift(spec.pad_after, 0),
        lift(spec.out_size, 1),
    )


def _live_offsets(k: int, s: int, d: int, pb: int, n_in: int, n_out: int) -> tuple[int, int]:
    """(first, count) of the window offsets j that can land in the input for some output,
    0 <= o*s - pb + j*d < n_in with 0 <= o < n_out (a superset: bounds are still checked)."""
    j_lo = min(max(0, -(-(pb - (n_out - 1) * s) // d)), k - 1)
    j_hi = max(min(k - 1, (pb + n_in - 1) // d), j_lo)
    return j_lo, j_hi - j_lo + 1


def _tables(spec: PoolSpec, acc_dtype=None):
    """Per-dim tables for the kernels. The kernels see only the window offsets that can land
    in the input (``_live_offsets``): the others only ever read padding, so dropping them
    changes no value, index or order, and a huge window over a small input no longer costs a
    loop over every offset. ``first``, ``valid`` and the divisors use the full window."""
    L, K, S, Dl, PB, PA, O = _lift(spec)
    live = [_live_offsets(K[r], S[r], Dl[r], PB[r], L[r], O[r]) for r in range(3)]
    kmax, omax = max(n for _, n in live), max(O)
    geo = np.zeros((3, 6), np.int64)
    lo = np.zeros((3, kmax), np.int64)
    hi = np.zeros((3, kmax), np.int64)
    first = np.zeros((3, omax), np.int64)
    valid = np.zeros((3, omax), np.int64)
    cnt = np.ones((3, omax), acc_dtype or np.float64)
    for r in range(3):
        k, s, d, pb, pa, n_in, n_out = K[r], S[r], Dl[r], PB[r], PA[r], L[r], O[r]
        j_lo, kl = live[r]
        pl = pb - j_lo * d  # the live window: kl offsets from pl before the output's start
        # Interior outputs [a, b): every live offset is in bounds (no per-cell checks). pl
        # can be negative once leading offsets are dropped; the interior still starts at 0.
        a = min(max(-(-pl // s), 0), n_out)
        b = max(min((n_in - 1 + pl - (kl - 1) * d) // s + 1, n_out), a)
        geo[r] = (kl, s, d, pl, a, b)
        for j in range(kl):
            a = pl - j * d  # o*s >= a  and  o*s <= a + n_in - 1
            lo[r, j] = min(max(0, -(-a // s)), n_out)
            hi[r, j] = max(min(n_out, (a + n_in - 1) // s + 1), lo[r, j])
        o = np.arange(n_out, dtype=np.int64)
        start = o * s - pb
        f = np.where(start < 0, start + (-start + d - 1) // d * d, start)
        first[r, :n_out] = f
        valid[r, :n_out] = (f < n_in) & (f <= start + (k - 1) * d)
        if acc_dtype is not None:
            end = start + k
            if spec.divisor:
                cnt[r, :n_out] = spec.divisor if r == 0 else 1
            elif spec.count_pad:
                cnt[r, :n_out] = np.minimum(end, n_in + pa) - start
            else:
                c = np.minimum(end, n_in) - np.maximum(start, 0)
                # A window wholly in the padding sums to 0; any non-zero divisor keeps it 0.
                cnt[r, :n_out] = np.where(c > 0, c, 1)
    return geo, lo, hi, first, valid, cnt


# --------------------------------------------------------------------------------------------
# Layout.


def _perm_to_cl(nd: int) -> tuple[int, ...]:
    return (0, *range(2, nd), 1)


def _perm_to_cf(nd: int) -> tuple[int, ...]:
    return (0, nd - 1, *range(1, nd - 1))


def _kernel_view(x: np.ndarray, channels_last: bool):
    """(view, use_cl_kernel): a C-contiguous view of x in the layout of its memory."""
    nd = x.ndim
    if x.flags.c_contiguous:
        return x, channels_last
    alt = x.transpose(_perm_to_cl(nd) if not channels_last else _perm_to_cf(nd))
    if alt.flags.c_contiguous and x.size > 0:
        return alt, not channels_last
    return np.ascontiguousarray(x), channels_last


def _lift_array(v: np.ndarray, cl: bool) -> np.ndarray:
    """C-contiguous (N, C, *sp) -> (N*C, D, H, W, 1); (N, *sp, C) -> (N, D, H, W, C)."""
    if cl:
        sp = v.shape[1:-1]
        return v.reshape((v.shape[0],) + (1,) * (3 - len(sp)) + sp + (v.shape[-1],))
    sp = v.shape[2:]
    return v.reshape((v.shape[0] * v.shape[1],) + (1,) * (3 - len(sp)) + sp + (1,))


def _out_shape(v_shape: tuple, spec: PoolSpec, cl: bool) -> tuple:
    if cl:
        return (v_shape[0], *spec.out_size, v_shape[-1])
    return (v_shape[0], v_shape[1], *spec.out_size)


def _init_value(dtype: np.dtype):
    if dtype.kind == "f":
        return dtype.type(-np.inf)
    return dtype.type(np.iinfo(dtype).min)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """float16 is computed in float32; integers in int64 (uint64 in uint64), which holds every
    value exactly, so the cast back is exact and the kernels compile for two integer dtypes
    instead of eight."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "iu":
        return np.dtype(np.uint64) if dtype == np.uint64 else np.dtype(np.int64)
    return dtype


def _kernel_variant(geo: np.ndarray, channels: int, dt: np.dtype) -> int:
    """The kernel variant for the last dim's live window (geo row 2), specialised for float32."""
    return _variant(int(geo[2, 0]), int(geo[2, 1]), int(geo[2, 2]), channels, dt == np.float32)


def output_shape(x_shape: tuple, spec: PoolSpec, channels_last: bool) -> tuple:
    return _out_shape(tuple(x_shape), spec, channels_last)


# --------------------------------------------------------------------------------------------
# Forward and backward.


def pool(
    x: np.ndarray,
    spec: PoolSpec,
    mode: str,
    *,
    channels_last: bool = False,
    return_indices: bool = False,
):
    """Pool a batched array whose spatial dims match ``spec.in_size``.

    Returns the output in the same logical layout (and dtype) as ``x``; with ``return_indices``
    (max only) also int64 indices flattened per (sample, channel) plane over the input's spatial
    dims, shaped like the output.
    """
    out_shape = _out_shape(x.shape, spec, channels_last)
    v, cl = _kernel_view(x, channels_last)
    dt = _compute_dtype(x.dtype)
    if v.dtype != dt:
        v = v.astype(dt)
    vshape = v.shape
    vout = _out_shape(vshape, spec, cl)
    out = np.empty(vout, dt)
    idx = np.empty(vout, np.int64) if return_indices else None
    if out.size:
        x3 = _lift_array(v, cl)
        o3 = _lift_array(out, cl)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        geo, lo, hi, first, _, cnt = _tables(spec, dt if mode == "avg" else None)
        variant = _kernel_variant(geo, x3.shape[4], dt)
        if mode == "max":
            init = dt.type(_init_value(x.dtype))  # an empty window: the input dtype's minimum
            if return_indices:
                _max.MAX_FWD_IDX[variant](x3, o3, _lift_array(idx, cl), init, geo, lo, hi, first)
            else:
                _max.MAX_FWD[variant](x3, o3, init, geo, lo, hi)
        else:
            _avg.AVG_FWD[variant](x3, o3, geo, lo, hi, cnt)
    if out.dtype != x.dtype:
        out = out.astype(x.dtype)
    if cl != channels_last:
        perm = _perm_to_cf(out.ndim) if cl else _perm_to_cl(out.ndim)
        out = out.transpose(perm)
        idx = idx.transpose(perm) if idx is not None else None
    assert out.shape == out_shape
    return (out, idx) if return_indices else out


def pool_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    spec: PoolSpec,
    mode: str,
    *,
    channels_last: bool = False,
) -> np.ndarray:
    """Gradient of ``pool(x, spec, mode)`` with respect to ``x``, given ``grad_output``.

    Max: each output's gradient goes to its window's argmax (first maximum, last NaN), added in
    output row-major order, so overlapping windows accumulate exactly as in PyTorch. Average:
    each output's gradient divided by its divisor is spread over its window's in-bounds cells.
    Deterministic: planes (or samples) are independent tasks.
    """
    v, cl = _kernel_view(x, channels_last)
    dt = _compute_dtype(x.dtype)
    if v.dtype != dt:
        v = v.astype(dt)
    g = grad_output.transpose(_perm_to_cl(x.ndim) if cl else _perm_to_cf(x.ndim)) if (
        cl != channels_last
    ) else grad_output
    g = np.ascontiguousarray(g, dtype=dt)
    gx = np.empty(v.shape, dt)
    if gx.size and g.size:
        g3 = _lift_array(g, cl)
        gx3 = _lift_array(gx, cl)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        geo, lo, hi, first, valid, cnt = _tables(spec, dt if mode == "avg" else None)
        variant = _kernel_variant(geo, gx3.shape[4], dt)
        if mode == "max":
            x3 = _lift_array(v, cl)
            tiled = all(
                s == k and d == 1 and p == 0 and o * k <= n
                for k, s, d, p, o, n in zip(
                    spec.window, spec.stride, spec.dilation, spec.pad_before, spec.out_size,
                    spec.in_size, strict=True,
                )
            )
            _max.MAX_BWD[variant, tiled](x3, g3, gx3, _init_value(dt), geo, lo, hi, first, valid)
        else:
            _avg.avg_bwd(g3, gx3, geo, lo, hi, cnt)
    else:
        gx[...] = 0
    if gx.dtype != x.dtype:
        gx = gx.astype(x.dtype)
    if cl != channels_last:
        gx = gx.transpose(_perm_to_cf(gx.ndim) if cl else _perm_to_cl(gx.ndim))
    return gx
