"""PyTorch-convention pooling on NumPy arrays: a drop-in for ``torch.nn.functional``'s pooling,
plus the anti-aliased and min pooling PyTorch lacks.

Layout (N, C, *spatial) or unbatched (C, *spatial); names, argument order and defaults are
torch's. N may be 0; a zero-size C or spatial dim is rejected. Bad arguments raise
:class:`~poolkit.errors.InvalidValue` (a ValueError) or :class:`~poolkit.errors.InvalidType`
(a TypeError) naming the argument, the value and the rule, before any kernel runs.

For every forward ``F`` there is ``F_backward(grad_output, input, <F's arguments>)`` giving the
gradient with respect to ``input`` (for max_unpool: ``max_unpoolNd_backward(grad_output,
input, indices, ...)``). Max-type gradients equal torch autograd's exactly (same tie rule);
averages agree to float rounding. float16 is computed in float32 and returned as float16;
integer arrays are accepted by the max and min kinds (and unpooling).

Where PyTorch 2.13 is wrong, poolkit is right and says so in the function's docstring: LP
pooling of negative inputs and p <= 0, max-unpooling with duplicate indices.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import engine
from .errors import InvalidType, InvalidValue
from .shapes import (
    adaptive_output_size,
    adaptive_spec,
    batched_rank,
    blur_spec,
    fractional_spec,
    normalize_tuple,
    plain_output_size,
    plain_torch_args,
    torch_spec,
    unpool_output_size,
)

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "min_pool1d", "min_pool2d", "min_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "lp_pool1d", "lp_pool2d", "lp_pool3d",
    "fractional_max_pool2d", "fractional_max_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "blur_pool1d", "blur_pool2d", "max_blur_pool2d", "aps_pool2d",
]
__all__ += [f"{name}_backward" for name in __all__]


def _batched(input, rank: int, mode: str, op: str) -> tuple[np.ndarray, bool]:
    """``input`` checked and batched (N added for unbatched input), and whether it was."""
    x = engine.check_input(input, mode, "input", op=op)
    batched = batched_rank(x.shape, rank, op)
    return (x if batched else x[None]), batched


def _unbatch(res, batched: bool):
    if batched:
        return res
    if isinstance(res, tuple):
        return tuple(r[0] for r in res)
    return res[0]


#: (op, input shape, strides and dtype, arguments) -> (engine plan, batched) of forward calls
#: whose checks passed, for arguments of exact types (shapes.plain_torch_args): a repeated
#: call skips the checks, the spec and the engine's own lookup (~1.5 of ~3 us on a small
#: input) and runs the plan. Emptied by engine.clear_plans().
_CALLS = engine.PlanMemo()


def _planned(key, input):
    """The memoised call ``key``'s result for ``input``, or None on a miss."""
    hit = _CALLS.get(key)
    if hit is None:
        return None
    plan, batched = hit
    if batched:  # the common call: no unbatching frame
        return plan.run(input)
    return _unbatch(plan.run(input[None]), False)


def _pool(key, input, x: np.ndarray, batched: bool, spec, mode: str, return_indices: bool):
    """``engine.pool`` of checked, batched ``x``, its plan memoised under ``key`` (None: not
    memoised) when ``x`` is ``input``'s own memory (not a converted copy)."""
    if key is not None and x.dtype == input.dtype:
        plan = engine.plan_pool(x, spec, mode, return_indices=return_indices)
        if plan is not None:
            _CALLS.put(key, (plan, batched))
            return _unbatch(plan.run(x), batched)
    return _unbatch(engine.pool(x, spec, mode, return_indices=return_indices), batched)


def _grad(grad_output, x: np.ndarray, spec, batched: bool, op: str) -> np.ndarray:
    shape = engine.output_shape(x.shape, spec, False)
    g = engine.check_grad(grad_output, x, shape if batched else shape[1:], op=op)
    return g if batched else g[None]


# --------------------------------------------------------------------------------------------
# Max, min and average pooling over uniform windows.

_UNIFORM_RULES = """
    Per spatial dim, with input ``L``, kernel ``k``, stride ``s`` (default ``k``), padding
    ``p`` and dilation ``d``::

        out = floor((L + 2p - d*(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1
        if ceil_mode and (out-1)*s >= L + p: out -= 1    # no window starts in the right pad

    Accepted as torch 2.13 accepts: k, s, d > 0; 0 <= p <= k // 2 (the raw kernel size, also
    with dilation); every output dim >= 1."""

_MAX_RULES = """
    Padding is never read. Scanning a window in row-major order, ``v`` replaces the running
    {best} ``m`` if ``v {cmp} m or v is NaN``: ties go to the first {best}, a NaN in the window
    makes the output NaN and its index the last NaN's. A window that reads no input cell
    (possible with dilation and padding) gives {empty} and passes no gradient (torch 2.13 gives
    an out-of-range index there). Indices are int64, flat per (N, C) plane over the spatial
    dims (``h*W + w``, ``d*H*W + h*W + w``)."""


def _uniform(rank, mode, input, kernel_size, stride, padding, dilation, ceil_mode,
             return_indices, op):
    key = None
    if (type(input) is np.ndarray and type(return_indices) is bool
            and plain_torch_args(kernel_size, stride, padding, dilation, ceil_mode)):
        key = (op, input.shape, input.strides, input.dtype, kernel_size, stride, padding,
               dilation, ceil_mode, return_indices)
        res = _planned(key, input)
        if res is not None:
            return res
    x, batched = _batched(input, rank, mode, op)
    spec = torch_spec(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode, op=op)
    return _pool(key, input, x, batched, spec, mode, bool(return_indices))


def _uniform_backward(rank, mode, grad_output, input, kernel_size, stride, padding, dilation,
                      ceil_mode, op):
    x, batched = _batched(input, rank, mode, op)
    spec = torch_spec(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode, op=op)
    g = _grad(grad_output, x, spec, batched, op)
    return _unbatch(engine.pool_backward(g, x, spec, mode), batched)


def _doc(text: str, **parts) -> str:
    return text.format(uniform=_UNIFORM_RULES, **parts)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _uniform(1, "max", input, kernel_size, stride, padding, dilation, ceil_mode,
                    return_indices, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _uniform(2, "max", input, kernel_size, stride, padding, dilation, ceil_mode,
                    return_indices, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _uniform(3, "max", input, kernel_size, stride, padding, dilation, ceil_mode,
                    return_indices, "max_pool3d")


def min_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _uniform(1, "min", input, kernel_size, stride, padding, dilation, ceil_mode,
                    return_indices, "min_pool1d")


def min_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _uniform(2, "min", input, kernel_size, stride, padding, dilation, ceil_mode,
                    return_indices, "min_pool2d")


def min_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _uniform(3, "min", input, kernel_size, stride, padding, dilation, ceil_mode,
                    return_indices, "min_pool3d")


def max_pool1d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    return _uniform_backward(1, "max", grad_output, input, kernel_size, stride, padding,
                             dilation, ceil_mode, "max_pool1d_backward")


def max_pool2d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    return _uniform_backward(2, "max", grad_output, input, kernel_size, stride, padding,
                             dilation, ceil_mode, "max_pool2d_backward")


def max_pool3d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    return _uniform_backward(3, "max", grad_output, input, kernel_size, stride, padding,
                             dilation, ceil_mode, "max_pool3d_backward")


def min_pool1d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    return _uniform_backward(1, "min", grad_output, input, kernel_size, stride, padding,
                             dilation, ceil_mode, "min_pool1d_backward")


def min_pool2d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    return _uniform_backward(2, "min", grad_output, input, kernel_size, stride, padding,
                             dilation, ceil_mode, "min_pool2d_backward")


def min_pool3d_backward(grad_output, input, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False):
    return _uniform_backward(3, "min", grad_output, input, kernel_size, stride, padding,
                             dilation, ceil_mode, "min_pool3d_backward")


for _r, _sp in ((1, "L"), (2, "H, W"), (3, "D, H, W")):
    for _kind, _best, _cmp, _empty in (("max", "maximum", ">", "-inf (the dtype's minimum)"),
                                       ("min", "minimum", "<", "+inf (the dtype's maximum)")):
        _f = globals()[f"{_kind}_pool{_r}d"]
        _f.__doc__ = (
            f"{_r}-D {_kind} pooling of (N, C, {_sp}) or (C, {_sp}); returns the pooled array "
            f"(and int64 indices with ``return_indices``)."
            + ("\n\n    poolkit's own (torch has no min pooling): the max rules mirrored, equal "
               "to ``-max_pool(-x)`` for floats." if _kind == "min" else "")
            + "\n" + _UNIFORM_RULES + "\n" + _MAX_RULES.format(best=_best, cmp=_cmp,
                                                              empty=_empty)
        )
        globals()[f"{_kind}_pool{_r}d_backward"].__doc__ = (
            f"Gradient of :func:`{_kind}_pool{_r}d` with respect to ``input``: each output's "
            f"gradient is added at its window's {_best} (the index the forward returns), in "
            f"output row-major order, as torch autograd does."
        )


def _avg(rank, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor,
         op, grad_output=None):
    key = None
    if (grad_output is None and type(input) is np.ndarray
            and plain_torch_args(kernel_size, stride, padding, 1, ceil_mode, count_include_pad,
                                 divisor)):
        key = (op, input.shape, input.strides, input.dtype, kernel_size, stride, padding,
               ceil_mode, count_include_pad, divisor)
        res = _planned(key, input)
        if res is not None:
            return res
    x, batched = _batched(input, rank, "avg", op)
    spec = torch_spec(x.shape[2:], kernel_size, stride, padding, 1, ceil_mode,
                      count_include_pad=count_include_pad, divisor_override=divisor,
                      kernel_within_input=rank == 3, op=op)
    if grad_output is None:
        return _pool(key, input, x, batched, spec, "avg", False)
    g = _grad(grad_output, x, spec, batched, op)
    return _unbatch(engine.pool_backward(g, x, spec, "avg"), batched)


_AVG_RULES = """
    Divisor of a window (PyTorch's): with ``start = o*s - p`` and ``end = min(start + k,
    L + p)`` per dim, ``divisor_override`` if given, else the product over dims of ``end -
    start`` when ``count_include_pad`` (padding counts, the ceil_mode overhang does not), else
    the number of in-bounds cells. A window wholly in the padding gives 0. Integer arrays are
    rejected (torch truncates int64 averages)."""


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, "avg_pool3d")


def avg_pool1d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    return _avg(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, "avg_pool1d_backward", grad_output)


def avg_pool2d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    return _avg(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, "avg_pool2d_backward", grad_output)


def avg_pool3d_backward(grad_output, input, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True, divisor_override=None):
    return _avg(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, "avg_pool3d_backward", grad_output)


for _r, _sp in ((1, "L"), (2, "H, W"), (3, "D, H, W")):
    globals()[f"avg_pool{_r}d"].__doc__ = (
        f"{_r}-D average pooling of (N, C, {_sp}) or (C, {_sp}).\n" + _UNIFORM_RULES
        + "\n    No dilation." + ("" if _r != 3 else " avg_pool3d (like torch's) also needs "
                                  "L >= k in every dim, padding notwithstanding.")
        + "\n" + _AVG_RULES
        + ("\n\n    ``divisor_override`` is an extension: torch's avg_pool1d has none."
           if _r == 1 else "")
    )
    globals()[f"avg_pool{_r}d_backward"].__doc__ = (
        f"Gradient of :func:`avg_pool{_r}d`: each output's gradient divided by its divisor, "
        f"spread over its window's in-bounds cells."
    )


# --------------------------------------------------------------------------------------------
# Adaptive pooling.


def _adaptive(rank, mode, input, output_size, return_indices, op, grad_output=None):
    key = None
    if (grad_output is None and type(input) is np.ndarray and type(return_indices) is bool
            and plain_output_size(output_size)):
        # memoised as _uniform's calls: a warm global average of (1, 8, 7, 7) took 1.9
        # against 9.6 us a call, an adaptive max to 3x3 4.1 against 14.4 us
        key = (op, input.shape, input.strides, input.dtype, output_size, return_indices)
        res = _planned(key, input)
        if res is not None:
            return res
    x, batched = _batched(input, rank, mode, op)
    spec = adaptive_spec(x.shape[2:], adaptive_output_size(x.shape[2:], output_size, op=op))
    if grad_output is None:
        return _pool(key, input, x, batched, spec, mode, bool(return_indices))
    g = _grad(grad_output, x, spec, batched, op)
    return _unbatch(engine.pool_backward(g, x, spec, mode), batched)


_ADAPTIVE_RULES = """
    ``output_size``: an int, or a tuple whose None entries keep the input size; sizes >= 0
    (0 gives an empty output). Window ``i`` of a dim of length ``L`` with ``O`` outputs spans
    ``[floor(i*L/O), ceil((i+1)*L/O))``, computed in integers (exact for any size, unlike the
    float versions of pytorch#81409): windows overlap by one cell when ``L % O != 0``, and
    ``O > L`` repeats cells."""


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive(1, "max", input, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive(2, "max", input, output_size, return_indices, "adaptive_max_pool2d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _adaptive(3, "max", input, output_size, return_indices, "adaptive_max_pool3d")


def adaptive_avg_pool1d(input, output_size):
    return _adaptive(1, "avg", input, output_size, False, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    return _adaptive(2, "avg", input, output_size, False, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    return _adaptive(3, "avg", input, output_size, False, "adaptive_avg_pool3d")


def adaptive_max_pool1d_backward(grad_output, input, output_size):
    return _adaptive(1, "max", input, output_size, False, "adaptive_max_pool1d_backward",
                     grad_output)


def adaptive_max_pool2d_backward(grad_output, input, output_size):
    return _adaptive(2, "max", input, output_size, False, "adaptive_max_pool2d_backward",
                     grad_output)


def adaptive_max_pool3d_backward(grad_output, input, output_size):
    return _adaptive(3, "max", input, output_size, False, "adaptive_max_pool3d_backward",
                     grad_output)


def adaptive_avg_pool1d_backward(grad_output, input, output_size):
    return _adaptive(1, "avg", input, output_size, False, "adaptive_avg_pool1d_backward",
                     grad_output)


def adaptive_avg_pool2d_backward(grad_output, input, output_size):
    return _adaptive(2, "avg", input, output_size, False, "adaptive_avg_pool2d_backward",
                     grad_output)


def adaptive_avg_pool3d_backward(grad_output, input, output_size):
    return _adaptive(3, "avg", input, output_size, False, "adaptive_avg_pool3d_backward",
                     grad_output)


for _r, _sp in ((1, "L"), (2, "H, W"), (3, "D, H, W")):
    globals()[f"adaptive_max_pool{_r}d"].__doc__ = (
        f"{_r}-D adaptive max pooling of (N, C, {_sp}) or (C, {_sp}) to ``output_size``.\n"
        + _ADAPTIVE_RULES + "\n\n    Max rule: first maximum wins ties, a NaN wins with the "
        "last NaN's index; indices are int64, flat per (N, C) plane."
    )
    globals()[f"adaptive_avg_pool{_r}d"].__doc__ = (
        f"{_r}-D adaptive average pooling of (N, C, {_sp}) or (C, {_sp}) to ``output_size``: "
        f"each output is the mean of its window.\n" + _ADAPTIVE_RULES
    )
    globals()[f"adaptive_max_pool{_r}d_backward"].__doc__ = (
        f"Gradient of :func:`adaptive_max_pool{_r}d`: each output's gradient added at its "
        f"window's maximum, in output order."
    )
    globals()[f"adaptive_avg_pool{_r}d_backward"].__doc__ = (
        f"Gradient of :func:`adaptive_avg_pool{_r}d`: each output's gradient divided by its "
        f"window size, added to every cell of the window."
    )


# --------------------------------------------------------------------------------------------
# LP (power-average) pooling.


def _lp(rank, input, norm_type, kernel_size, stride, ceil_mode, op, grad_output=None):
    x, batched = _batched(input, rank, "lp", op)
    if rank == 1 and not isinstance(kernel_size, numbers.Integral):
        kernel_size = normalize_tuple(kernel_size, 1, "kernel_size")
    spec = torch_spec(x.shape[2:], kernel_size, stride, 0, 1, ceil_mode,
                      count_include_pad=True, op=op)
    scale = float(np.prod(spec.window))
    if grad_output is None:
        return _unbatch(engine.pool(x, spec, "lp", p=norm_type, scale=scale), batched)
    g = _grad(grad_output, x, spec, batched, op)
    return _unbatch(engine.pool_backward(g, x, spec, "lp", p=norm_type, scale=scale), batched)


_LP_RULES = """
    ``out = (sum over the window of |x|^p)^(1/p)`` for every ``p = norm_type > 0``, and
    ``max |x|`` for ``p = inf``; output sizes as avg pooling with padding 0 (no padding
    argument). With ``ceil_mode`` a window hanging over the end is scaled as PyTorch scales it
    (its mean over the cells it reads, times the window size).

    Where PyTorch 2.13 is wrong: it computes ``x^p`` without ``|x|``, so odd or fractional p
    on negative input gives NaN or a signed result (pytorch#184037); p <= 0 is an
    InvalidValue here (torch divides by zero, #187743). Equal to torch for non-negative input
    and for even p on any input. Integer arrays are rejected. The gradient at a cell (or
    window) that is 0 is 0, as torch documents."""


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp(1, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool1d")


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp(2, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool2d")


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp(3, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool3d")


def lp_pool1d_backward(grad_output, input, norm_type, kernel_size, stride=None,
                       ceil_mode=False):
    return _lp(1, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool1d_backward",
               grad_output)


def lp_pool2d_backward(grad_output, input, norm_type, kernel_size, stride=None,
                       ceil_mode=False):
    return _lp(2, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool2d_backward",
               grad_output)


def lp_pool3d_backward(grad_output, input, norm_type, kernel_size, stride=None,
                       ceil_mode=False):
    return _lp(3, input, norm_type, kernel_size, stride, ceil_mode, "lp_pool3d_backward",
               grad_output)


for _r, _sp in ((1, "L"), (2, "H, W"), (3, "D, H, W")):
    globals()[f"lp_pool{_r}d"].__doc__ = (
        f"{_r}-D power-average (LP) pooling of (N, C, {_sp}) or (C, {_sp}).\n" + _LP_RULES
    )
    globals()[f"lp_pool{_r}d_backward"].__doc__ = (
        f"Gradient of :func:`lp_pool{_r}d`: ``g * sign(x) * (|x| / out)^(p-1)`` (times the "
        f"ceil_mode scale) summed over the windows holding the cell."
    )


# --------------------------------------------------------------------------------------------
# Fractional max pooling.


def _samples(samples, x: np.ndarray, rank: int, op: str):
    """torch's ``_random_samples`` (N, C, rank) -> (N*C, rank) in dim order (torch's 2-D
    samples are (w, h), its 3-D ones (t, h, w))."""
    if samples is None:
        return None
    if not isinstance(samples, np.ndarray):
        try:
            samples = np.asarray(samples)
        except Exception as e:
            raise InvalidType(f"{op}: _random_samples must be an array, got "
                              f"{type(samples).__name__}") from e
    n, c = x.shape[:2]
    if samples.shape != (n, c, rank):
        raise InvalidValue(f"{op}: _random_samples must have shape (N, C, {rank}) = "
                           f"{(n, c, rank)}, got {samples.shape}")
    if samples.dtype != x.dtype:
        raise InvalidType(f"{op}: _random_samples must have the input's dtype {x.dtype}, got "
                          f"{samples.dtype} (as torch requires)")
    s = samples.reshape(n * c, rank)
    return s[:, ::-1] if rank == 2 else s


def _fractional(rank, input, kernel_size, output_size, output_ratio, return_indices, samples,
                op, grad_output=None):
    x, batched = _batched(input, rank, "max", op)
    if x.dtype.kind != "f":
        raise InvalidType(f"{op}: input must be a floating array (as in torch), got {x.dtype}")
    if grad_output is not None and samples is None:
        raise InvalidValue(f"{op}: the backward pass needs the _random_samples the forward "
                           f"used (pass the same array to both)")
    s = _samples(samples, x, rank, op)
    planes = x.shape[0] * x.shape[1]
    spec = fractional_spec(x.shape[2:], planes, kernel_size, output_size, output_ratio, s,
                           dtype=x.dtype, op=op)
    if grad_output is None:
        return _unbatch(engine.pool(x, spec, "max", return_indices=bool(return_indices)),
                        batched)
    g = _grad(grad_output, x, spec, batched, op)
    return _unbatch(engine.pool_backward(g, x, spec, "max"), batched)


_FRACTIONAL_RULES = """
    Output size: ``output_size``, or ``int(L * output_ratio)`` per dim (a ratio in (0, 1),
    a number or a tuple; torch 2.13 rejects a plain number its documentation allows). Window
    ``i`` of a dim starts at ``int((i + u) * alpha) - int(u * alpha)`` with ``alpha = (L - k) /
    (O - 1)`` computed in the input's dtype and ``u`` the plane's sample; the last window ends
    at the input's end. ``_random_samples`` (N, C, {rank}) in [0, 1), the input's dtype
    ({order}); None draws them. Size rule (torch's): {rule}. Rejected beyond torch: a kernel
    of 0 and samples outside [0, 1) (torch then reads outside the input). Max rule and indices
    as max pooling; the backward pass needs the forward's ``_random_samples``."""


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    return _fractional(2, input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, "fractional_max_pool2d")


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    return _fractional(3, input, kernel_size, output_size, output_ratio, return_indices,
                       _random_samples, "fractional_max_pool3d")


def fractional_max_pool2d_backward(grad_output, input, kernel_size, output_size=None,
                                   output_ratio=None, _random_samples=None):
    return _fractional(2, input, kernel_size, output_size, output_ratio, False,
                       _random_samples, "fractional_max_pool2d_backward", grad_output)


def fractional_max_pool3d_backward(grad_output, input, kernel_size, output_size=None,
                                   output_ratio=None, _random_samples=None):
    return _fractional(3, input, kernel_size, output_size, output_ratio, False,
                       _random_samples, "fractional_max_pool3d_backward", grad_output)


fractional_max_pool2d.__doc__ = (
    "Fractional max pooling (Graham 2014) of (N, C, H, W) or (C, H, W).\n"
    + _FRACTIONAL_RULES.format(rank=2, order="[..., 0] drives the width, [..., 1] the height",
                               rule="O + k - 1 <= L")
)
fractional_max_pool3d.__doc__ = (
    "Fractional max pooling of (N, C, D, H, W) or (C, D, H, W).\n"
    + _FRACTIONAL_RULES.format(rank=3, order="[..., 0] drives D, [..., 1] H, [..., 2] W",
                               rule="O + k - 1 < L")
)
fractional_max_pool2d_backward.__doc__ = (
    "Gradient of :func:`fractional_max_pool2d` (same ``_random_samples``, required)."
)
fractional_max_pool3d_backward.__doc__ = (
    "Gradient of :func:`fractional_max_pool3d` (same ``_random_samples``, required)."
)


# --------------------------------------------------------------------------------------------
# Max-unpooling.


def _unpool_args(rank, input, indices, kernel_size, stride, padding, output_size, op):
    x, batched = _batched(input, rank, "max", op)
    if not isinstance(indices, np.ndarray):
        raise InvalidType(f"{op}: indices must be a NumPy array, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise InvalidType(f"{op}: indices must be an integer array, got {indices.dtype}")
    idx = indices if batched else indices[None]
    if idx.shape != x.shape:
        raise InvalidValue(f"{op}: expected indices of the input's shape "
                           f"{x.shape if batched else x.shape[1:]}, got {indices.shape}")
    out = unpool_output_size(x.shape[2:], kernel_size, stride, padding, output_size, op=op)
    return x, idx, out, batched


def _unpool(rank, input, indices, kernel_size, stride, padding, output_size):
    op = f"max_unpool{rank}d"
    x, idx, out, batched = _unpool_args(rank, input, indices, kernel_size, stride, padding,
                                        output_size, op)
    return _unbatch(engine.unpool(x, idx, out), batched)


def _unpool_backward(rank, grad_output, input, indices, kernel_size, stride, padding,
                     output_size):
    op = f"max_unpool{rank}d_backward"
    x, idx, out, batched = _unpool_args(rank, input, indices, kernel_size, stride, padding,
                                        output_size, op)
    if not isinstance(grad_output, np.ndarray):
        raise InvalidType(f"{op}: grad_output must be a NumPy array")
    g = grad_output if batched else grad_output[None]
    want = (*x.shape[:2], *out)
    if g.shape != want:
        raise InvalidValue(f"{op}: grad_output has shape {grad_output.shape}, but the forward "
                           f"output has shape {want if batched else want[1:]}")
    return _unbatch(engine.unpool_backward(g, x, idx), batched)


_UNPOOL_RULES = """
    Output size per dim: ``(L - 1) * stride - 2 * padding + kernel_size`` (stride defaults to
    kernel_size), or ``output_size`` (spatial, or with N and C in front) lying strictly between
    that minus and plus the stride. The output is zero except ``out[plane][indices] = input``,
    indices being flat per (N, C) plane over the OUTPUT's spatial dims (read in whatever size is
    given, as torch does); an index outside the plane is an InvalidValue ("invalid max index").

    Duplicate indices are deterministic: the input cells are written in row-major order, so the
    LAST one wins (torch's CPU result depends on thread timing, pytorch#78249). Integer arrays
    are accepted (torch rejects them)."""


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _unpool(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _unpool(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    return _unpool(3, input, indices, kernel_size, stride, padding, output_size)


def max_unpool1d_backward(grad_output, input, indices, kernel_size, stride=None, padding=0,
                          output_size=None):
    return _unpool_backward(1, grad_output, input, indices, kernel_size, stride, padding,
                            output_size)


def max_unpool2d_backward(grad_output, input, indices, kernel_size, stride=None, padding=0,
                          output_size=None):
    return _unpool_backward(2, grad_output, input, indices, kernel_size, stride, padding,
                            output_size)


def max_unpool3d_backward(grad_output, input, indices, kernel_size, stride=None, padding=0,
                          output_size=None):
    return _unpool_backward(3, grad_output, input, indices, kernel_size, stride, padding,
                            output_size)


for _r, _sp in ((1, "L"), (2, "H, W"), (3, "D, H, W")):
    globals()[f"max_unpool{_r}d"].__doc__ = (
        f"{_r}-D max-unpooling of (N, C, {_sp}) or (C, {_sp}) with the indices of "
        f"``max_pool{_r}d(..., return_indices=True)``.\n" + _UNPOOL_RULES
    )
    globals()[f"max_unpool{_r}d_backward"].__doc__ = (
        f"Gradient of :func:`max_unpool{_r}d` with respect to ``input``: a gather, "
        f"``grad_input[i] = grad_output[indices[i]]`` per plane (a duplicate whose value was "
        f"overwritten still receives the gradient of its cell, as in torch, #80204)."
    )


# --------------------------------------------------------------------------------------------
# Anti-aliased pooling: BlurPool, MaxBlurPool, adaptive polyphase sampling.


def _blur(rank, input, filt_size, stride, pad_type, op, grad_output=None):
    x, batched = _batched(input, rank, "blur", op)
    spec = blur_spec(x.shape[2:], filt_size, stride, pad_type, op=op)
    if grad_output is None:
        return _unbatch(engine.pool(x, spec, "blur"), batched)
    g = _grad(grad_output, x, spec, batched, op)
    return _unbatch(engine.pool_backward(g, x, spec, "blur"), batched)


_BLUR_RULES = """
    Zhang 2019 ("Making Convolutional Networks Shift-Invariant Again"): each channel is
    convolved with the normalised binomial filter of size ``filt_size`` (1..7: [1], [1, 1],
    [1, 2, 1], [1, 3, 3, 1], ...; in 2-D their outer product) over the input padded by
    ``floor((filt_size-1)/2)`` before and ``ceil((filt_size-1)/2)`` after with ``pad_type``
    "reflect" (or "refl"), "repl" (or "replicate") or "zero", then sampled with ``stride``:
    ``out = ceil(L / stride)``. ``filt_size = 1`` is plain subsampling ``x[..., ::stride]``.
    Reflection needs every spatial dim larger than the after-padding. Equal to the
    antialiased-cnns package's BlurPool (to float rounding)."""


def blur_pool1d(input, filt_size=4, stride=2, pad_type="reflect"):
    return _blur(1, input, filt_size, stride, pad_type, "blur_pool1d")


def blur_pool2d(input, filt_size=4, stride=2, pad_type="reflect"):
    return _blur(2, input, filt_size, stride, pad_type, "blur_pool2d")


def blur_pool1d_backward(grad_output, input, filt_size=4, stride=2, pad_type="reflect"):
    return _blur(1, input, filt_size, stride, pad_type, "blur_pool1d_backward", grad_output)


def blur_pool2d_backward(grad_output, input, filt_size=4, stride=2, pad_type="reflect"):
    return _blur(2, input, filt_size, stride, pad_type, "blur_pool2d_backward", grad_output)


blur_pool1d.__doc__ = "BlurPool of (N, C, L) or (C, L).\n" + _BLUR_RULES
blur_pool2d.__doc__ = "BlurPool of (N, C, H, W) or (C, H, W).\n" + _BLUR_RULES
blur_pool1d_backward.__doc__ = "Gradient of :func:`blur_pool1d`: the transposed filter."
blur_pool2d_backward.__doc__ = "Gradient of :func:`blur_pool2d`: the transposed filter."


def _max_blur_specs(x, kernel_size, stride, filt_size, pad_type, op):
    max_spec = torch_spec(x.shape[2:], kernel_size, 1, 0, 1, False, op=op)
    return max_spec, blur_spec(max_spec.out_size, filt_size, stride, pad_type, op=op)


def max_blur_pool2d(input, kernel_size=2, stride=2, filt_size=4, pad_type="reflect"):
    """MaxBlurPool (Zhang 2019) of (N, C, H, W) or (C, H, W): max pooling with
    ``kernel_size`` and stride 1 (no padding: ``H - k + 1``), then :func:`blur_pool2d` with
    ``filt_size``, ``stride`` and ``pad_type``: ``out = ceil((H - k + 1) / stride)``. What
    antialiased-cnns puts in place of ``MaxPool2d(k, stride)``. Integer arrays are rejected."""
    op = "max_blur_pool2d"
    x, batched = _batched(input, 2, "blur", op)
    ms, bs = _max_blur_specs(x, kernel_size, stride, filt_size, pad_type, op)
    return _unbatch(engine.max_blur(x, ms, bs), batched)


def max_blur_pool2d_backward(grad_output, input, kernel_size=2, stride=2, filt_size=4,
                             pad_type="reflect"):
    """Gradient of :func:`max_blur_pool2d`: the blur's transpose, then the max routing."""
    op = "max_blur_pool2d_backward"
    x, batched = _batched(input, 2, "blur", op)
    ms, bs = _max_blur_specs(x, kernel_size, stride, filt_size, pad_type, op)
    shape = (*x.shape[:2], *bs.out_size)
    g = engine.check_grad(grad_output, x, shape if batched else shape[1:], op=op)
    return _unbatch(engine.max_blur_backward(g if batched else g[None], x, ms, bs), batched)


def _aps_args(input, stride, norm, op):
    x, batched = _batched(input, 2, "max", op)
    s = normalize_tuple(stride, 2, "stride")
    if min(s) < 1:
        raise InvalidValue(f"{op}: stride must be >= 1, got {stride!r}")
    if isinstance(norm, bool) or not isinstance(norm, numbers.Real):
        raise InvalidType(f"{op}: norm must be a number > 0 (1, 2, inf, ...), got {norm!r}")
    if not float(norm) > 0:
        raise InvalidValue(f"{op}: norm must be > 0, got {norm!r}")
    return x, batched, s, float(norm)


def aps_pool2d(input, stride=2, norm=2):
    """Adaptive polyphase sampling (Chaman & Dokmanic, CVPR 2021) of (N, C, H, W) or
    (C, H, W): ``out = ceil(H / stride)`` per dim.

    The input is padded circularly to a multiple of the stride; of its ``stride**2``
    polyphase components ``x[..., i::s, j::s]``, each sample keeps the one whose ``norm``
    (p-norm over all its channels and cells; 2 by default, also 1 or inf) is largest, the
    first in Chaman & Dokmanic's order ((0, 0), (1, 0), (0, 1), (1, 1) for stride 2) on ties;
    a NaN norm counts as largest. A circular shift of the input circularly shifts the output
    (by ``shift / stride`` rounded per the chosen phase): exactly shift-equivariant, where
    strided sampling is not."""
    op = "aps_pool2d"
    x, batched, s, p = _aps_args(input, stride, norm, op)
    out, _ = engine.polyphase(x, s, p)
    return _unbatch(out, batched)


def aps_pool2d_backward(grad_output, input, stride=2, norm=2):
    """Gradient of :func:`aps_pool2d`: each sample's gradient goes to the cells of the
    component it kept (the choice is piecewise constant); circular padding folds back."""
    op = "aps_pool2d_backward"
    x, batched, s, p = _aps_args(input, stride, norm, op)
    if x.dtype.kind != "f":
        raise InvalidType(f"{op}: the backward pass needs a floating input, got {x.dtype}")
    shape = (*x.shape[:2], *(-(-L // ss) for L, ss in zip(x.shape[2:], s, strict=True)))
    g = engine.check_grad(grad_output, x, shape if batched else shape[1:], op=op)
    return _unbatch(engine.polyphase_backward(g if batched else g[None], x, s, p), batched)


del _r, _sp, _f, _kind, _best, _cmp, _empty
