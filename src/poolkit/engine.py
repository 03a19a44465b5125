"""The pooling engine: every pooling kind of poolkit on one set of window specs and kernels.

A front-end (``poolkit.functional``, the Keras-style ops, the layers) resolves its conventions
into a window spec from :mod:`poolkit.shapes` and calls :func:`pool` / :func:`pool_backward`
with a reduction from :data:`REDUCTIONS`:

=============  ===========================================================================
window spec    what each output cell reads, per spatial dim
=============  ===========================================================================
PoolSpec       a uniform window: ``o*stride - pad_before + j*dilation``, ``j < window``
AdaptiveSpec   ``floor(o*L/O) .. ceil((o+1)*L/O) - 1`` (adaptive and global pooling)
FractionalSpec ``start[plane, o] .. start[plane, o] + window - 1``, starts per (N, C) plane
BlurSpec       a binomial filter over a padded window, then a stride (BlurPool)
=============  ===========================================================================

The engine takes batched arrays, (N, C, *spatial) or (N, *spatial, C), checks them against the
spec (a spec it cannot honour is refused: no kernel ever reads or writes outside an array),
pools the memory layout the array has (a channels-first array whose memory is channels-last is
pooled by the channels-last kernel without a copy, and vice versa), lifts 1-D and 2-D problems
to 3-D and runs the kernels on poolkit's threads. float16 is computed in float32; integers in
int64 (uint64 for uint64), which holds every value, and cast back exactly.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from dataclasses import dataclass, field, fields

try:
    import resource
except ImportError:  # not on Windows
    resource = None

import numpy as np

from . import _buffers, _threads
from ._kernels import avgpool as _avgk
from ._kernels import blur as _blurk
from ._kernels import fractional as _frack
from ._kernels import maxpool as _maxk
from ._kernels import rows as _rows
from ._kernels import unpool as _unpk
from ._kernels import windows as _wink
from .errors import InvalidType, InvalidValue
from .shapes import AdaptiveSpec, BlurSpec, FractionalSpec, PoolSpec, binomial_filter

__all__ = [
    "Reduction",
    "REDUCTIONS",
    "MODES",
    "check_input",
    "check_grad",
    "output_shape",
    "pool",
    "pool_backward",
    "max_blur",
    "max_blur_backward",
    "unpool",
    "unpool_backward",
    "polyphase",
    "polyphase_backward",
]


# --------------------------------------------------------------------------------------------
# The registry of reductions.


@dataclass(frozen=True)
class Reduction:
    """A way of reducing a window to one value.

    ``integers``: integer arrays allowed; ``indices``: can return the position it took
    (flat per plane); ``specs``: the window specs it runs on.
    """

    name: str
    label: str
    integers: bool
    indices: bool
    specs: tuple[type, ...]


REDUCTIONS: dict[str, Reduction] = {
    r.name: r
    for r in (
        # first maximum wins ties; a NaN wins, its index the last NaN's (PyTorch's rule)
        Reduction("max", "maximum", True, True, (PoolSpec, AdaptiveSpec, FractionalSpec)),
        # the max rules mirrored: max pooling of the order-reversed values (-x, or ~x for ints)
        Reduction("min", "minimum", True, True, (PoolSpec, AdaptiveSpec, FractionalSpec)),
        # sum / divisor (the spec says how the divisor counts padding)
        Reduction("avg", "mean", False, False, (PoolSpec, AdaptiveSpec)),
        # (sum |x|^p / divisor * scale)^(1/p); p = inf is max |x|
        Reduction("lp", "power mean", False, False, (PoolSpec,)),
        # sum of binomial weights * x over a padded window
        Reduction("blur", "weighted window", False, False, (BlurSpec,)),
    )
}
MODES = tuple(REDUCTIONS)


def _reduction(name) -> Reduction:
    if isinstance(name, Reduction):
        return name
    try:
        return REDUCTIONS[name]
    except (KeyError, TypeError):
        raise InvalidValue(f"reduction must be one of {MODES}, got {name!r}") from None


# --------------------------------------------------------------------------------------------
# Array checks (shared by every front-end).


# The native dtypes check_input takes as they are, without integers and with them.
_FLOATS = frozenset(np.dtype(c) for c in "efd")
_ACCEPTED = {False: _FLOATS, True: _FLOATS | {np.dtype(c) for c in "bhilqBHILQ"}}


def check_input(x, mode="max", name: str = "input", *, op: str = "pool") -> np.ndarray:
    """``x`` as an ndarray of a dtype reduction ``mode`` supports, else InvalidType naming the
    rule. Array-likes are converted; byte-swapped arrays are converted to native order."""
    red = REDUCTIONS.get(mode) if type(mode) is str else None  # (the common case first)
    if red is None:
        red = _reduction(mode)
    if type(x) is np.ndarray and x.dtype in _ACCEPTED[red.integers]:
        return x
    if not isinstance(x, np.ndarray):
        if hasattr(x, "__array__") or isinstance(x, list | tuple):
            try:
                x = np.asarray(x)
            except (ValueError, TypeError) as e:
                raise InvalidType(
                    f"{op}: {name} of type {type(x).__name__} is not a numeric array: {e}"
                ) from e
            except Exception as e:  # e.g. a torch tensor that requires grad
                raise InvalidType(
                    f"{op}: {name} of type {type(x).__name__} could not be converted to a NumPy "
                    f"array: {e}"
                ) from e
        else:
            raise InvalidType(f"{op}: {name} must be a NumPy array, got {type(x).__name__}")
    kind = x.dtype.kind
    if kind in "fiu" and not x.dtype.isnative:
        # The kernels take native byte order only; a byte-swapped array is a legal input.
        x = x.astype(x.dtype.newbyteorder("="))
    if kind == "f":
        if x.dtype.itemsize not in (2, 4, 8):
            raise InvalidType(
                f"{op}: {name} has dtype {x.dtype}; supported floating dtypes are "
                f"float16, float32 and float64"
            )
        return x
    if kind in "iu":
        if red.integers:
            return x
        raise InvalidType(
            f"{op}: {name} has integer dtype {x.dtype}; {red.label} pooling needs a floating "
            f"dtype (float16, float32 or float64): cast with x.astype(np.float32)"
        )
    raise InvalidType(
        f"{op}: {name} has dtype {x.dtype}; pooling takes floating arrays"
        + (" or integer arrays" if red.integers else "")
        + " (bool, complex, object, string and structured arrays are not supported)"
    )


def check_grad(grad, x: np.ndarray, out_shape: tuple, *, op: str) -> np.ndarray:
    """``grad`` as the gradient of an output of shape ``out_shape`` for input ``x``."""
    if not isinstance(grad, np.ndarray):
        raise InvalidType(f"{op}: grad_output must be a NumPy array, got {type(grad).__name__}")
    if grad.dtype.kind == "f" and not grad.dtype.isnative:
        grad = grad.astype(grad.dtype.newbyteorder("="))
    if x.dtype.kind != "f":
        raise InvalidType(
            f"{op}: the backward pass needs a floating input, got input dtype {x.dtype}"
        )
    if grad.dtype != x.dtype:
        raise InvalidType(
            f"{op}: grad_output dtype {grad.dtype} must equal the input dtype {x.dtype}"
        )
    if tuple(grad.shape) != tuple(out_shape):
        raise InvalidValue(
            f"{op}: grad_output has shape {tuple(grad.shape)}, but the forward output for this "
            f"input and these arguments has shape {tuple(out_shape)}"
        )
    return grad


def _check_spec(x, spec, red: Reduction, channels_last: bool) -> int:
    """Refuse what the kernels cannot honour: the engine is public, so it re-checks what the
    front-ends have checked: the array against the spec here, the spec itself once per spec
    (memoised: a spec is immutable). Returns the bytes the output needs, as checked."""
    if not isinstance(x, np.ndarray):
        raise InvalidType(f"pool: x must be a NumPy array, got {type(x).__name__}")
    if not isinstance(spec, red.specs):
        raise InvalidValue(
            f"pool: reduction {red.name!r} runs on {[t.__name__ for t in red.specs]}, got a "
            f"{type(spec).__name__}"
        )
    if isinstance(spec, FractionalSpec):  # its starts are not part of its hash
        _check_spec_values(spec, red.name)
    else:
        _check_spec_memo(spec, red.name)
    rank = spec.rank
    if x.ndim != rank + 2:
        raise InvalidValue(
            f"pool: a {rank}-D spec needs a {rank + 2}-D batched array, got shape {x.shape}"
        )
    spatial = x.shape[1:-1] if channels_last else x.shape[2:]
    if spatial != spec.in_size:
        raise InvalidValue(
            f"pool: the array's spatial dims {tuple(spatial)} differ from the spec's in_size "
            f"{tuple(spec.in_size)}"
        )
    if (x.shape[-1] if channels_last else x.shape[1]) < 1:
        raise InvalidValue(f"pool: zero-size channel dim in shape {x.shape}")
    planes = x.shape[0] * (x.shape[-1] if channels_last else x.shape[1])
    if isinstance(spec, FractionalSpec) and spec.starts.shape[0] != planes:
        raise InvalidValue(f"pool: fractional spec does not fit {planes} planes: {spec}")
    # The output, its indices and the per-dim window tables.
    n_bytes = planes * math.prod(spec.out_size) * 16 + 32 * sum(spec.out_size)
    check_memory(n_bytes, f"an output of spatial size {tuple(spec.out_size)} for {planes} "
                          f"planes", "pool")
    return n_bytes


def memory_limit() -> int:
    """Bytes poolkit may ask for at once: the machine's memory, or less under a resource
    limit on the process's memory."""
    limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for which in ("RLIMIT_AS", "RLIMIT_DATA"):
        soft = resource.getrlimit(getattr(resource, which))[0] if resource else -1
        if soft not in (-1, getattr(resource, "RLIM_INFINITY", -1)):
            limit = min(limit, soft)
    return limit


def check_memory(n_bytes: int, what: str, op: str) -> None:
    """InvalidValue if ``what`` needs more than :func:`memory_limit` bytes: an argument that
    asks for more memory than there is is refused, not attempted."""
    limit = memory_limit()
    if n_bytes > limit:
        # (a size past float range is written as a power of two: dividing it overflows)
        size = (f"{n_bytes / 2**30:.1f} GiB" if n_bytes < 2**1000
                else f"about 2**{int(n_bytes).bit_length() - 1} bytes")
        raise InvalidValue(f"{op}: {what} would take {size}, more than the "
                           f"{limit / 2**30:.1f} GiB of memory this process may use")


def _check_spec_values(spec, red_name: str) -> None:
    """The spec's own consistency: sizes that are ints within int32, positive windows and
    strides, pads and outputs >= 0, fractional windows inside the input, a blur spec whose
    output size and padding its kernel can honour."""
    rank = spec.rank
    if not isinstance(spec.in_size, tuple) or not 1 <= rank <= 3:
        raise InvalidValue(f"pool: a spec has 1 to 3 spatial dims as a tuple, got {spec}")
    ints = [*spec.in_size, *spec.out_size]
    if isinstance(spec, PoolSpec):
        for name in ("window", "stride", "dilation", "pad_before", "pad_after", "out_size"):
            if len(getattr(spec, name)) != rank:
                raise InvalidValue(f"pool: spec.{name} must have {rank} entries, got {spec}")
        ints += [*spec.window, *spec.stride, *spec.dilation, *spec.pad_before, *spec.pad_after]
    if any(not isinstance(v, int | np.integer) or abs(int(v)) > 2**31 - 1 for v in ints):
        raise InvalidValue(f"pool: spec sizes must be ints up to 2**31 - 1, got {spec}")
    if min(spec.in_size) < 1 or len(spec.out_size) != rank or min(spec.out_size) < 0:
        raise InvalidValue(f"pool: spec sizes must be >= 1 (input) and >= 0 (output), got "
                           f"{spec}")
    if isinstance(spec, PoolSpec):
        if (min(spec.window + spec.stride + spec.dilation) < 1
                or min(spec.pad_before + spec.pad_after) < 0):
            raise InvalidValue(f"pool: window, stride and dilation must be >= 1 and pads "
                               f">= 0, got {spec}")
        if red_name in ("avg", "lp") and max(spec.dilation) != 1:
            raise InvalidValue(f"pool: average and LP pooling have no dilation, got "
                               f"{spec.dilation}")
        if red_name == "lp" and spec.divisor < 0:
            # (sum |x|^p / divisor)^(1/p) of a negative divisor is NaN for every input
            raise InvalidValue(f"pool: LP pooling's divisor must be > 0 (or 0: the window's "
                               f"cell count), got {spec.divisor}")
        # Every window starts before the end of the padded input (PyTorch's and Keras's
        # output sizes always give this): one that starts past it covers nothing, not even
        # padding, and an average over it would divide by zero.
        for o, s, b, L, a in zip(spec.out_size, spec.stride, spec.pad_before, spec.in_size,
                                 spec.pad_after, strict=True):
            if o and (o - 1) * s - b >= L + a:
                raise InvalidValue(f"pool: output size {o} needs windows past the padded input "
                                   f"(stride {s}, pads {b} + {a}, input {L}): {spec}")
    elif isinstance(spec, FractionalSpec):
        st = spec.starts
        if (len(spec.window) != rank or min(spec.window) < 1
                or not isinstance(st, np.ndarray) or st.dtype != np.int64 or st.ndim != 3
                or st.shape[1] != 3 or st.shape[2] < max(spec.out_size, default=0)):
            raise InvalidValue(f"pool: invalid fractional spec {spec}")
        for r in range(rank):
            s = st[:, 3 - rank + r, : spec.out_size[r]]
            if s.size and (s.min() < 0 or s.max() > spec.in_size[r] - spec.window[r]):
                raise InvalidValue("pool: fractional windows must lie inside the input")
        # The rows of the dims a 1-D or 2-D spec lacks are read too (the kernels lift every
        # problem to 3-D, those dims of size 1): their one window starts at 0.
        if st.shape[2] and st[:, : 3 - rank, 0].any():
            raise InvalidValue(f"pool: fractional starts of the {3 - rank} leading dims a "
                               f"{rank}-D spec lacks must be 0 (starts[:, :{3 - rank}, 0])")
    elif isinstance(spec, BlurSpec):
        if (spec.filt not in range(1, 8) or spec.mode not in (0, 1, 2) or rank > 2
                or len(spec.stride) != rank or min(spec.stride) < 1
                or spec.out_size != tuple(-(-L // s) for L, s in zip(spec.in_size, spec.stride,
                                                                      strict=True))
                or (spec.mode == 0 and min(spec.in_size) <= spec.pad_after)):
            raise InvalidValue(f"pool: invalid blur spec {spec}")


def _typed(v):
    """A value with the type of every part: equal specs of other field types (2.0 for 2,
    True for 1) get other keys."""
    if isinstance(v, tuple):
        return tuple(_typed(e) for e in v)
    return type(v), v


_SPEC_OK: dict = {}  # type-exact keys of specs that passed _check_spec_values


def _check_spec_memo(spec, red_name: str) -> None:
    """:func:`_check_spec_values`, remembered for specs that passed (keyed on every field's
    value and type: a dataclass's own equality would take a spec of floats for the checked
    spec of ints)."""
    try:
        key = (type(spec), red_name, *(_typed(getattr(spec, f.name))
                                       for f in fields(spec)))
        if key in _SPEC_OK:
            return
    except TypeError:  # an unhashable field: the checks say what is wrong with it
        key = None
    _check_spec_values(spec, red_name)
    if key is not None:
        if len(_SPEC_OK) >= 256:
            _SPEC_OK.pop(next(iter(_SPEC_OK)))
        _SPEC_OK[key] = True


# --------------------------------------------------------------------------------------------
# Layout.


def _perm_to_cl(nd: int) -> tuple[int, ...]:
    return (0, *range(2, nd), 1)


def _perm_to_cf(nd: int) -> tuple[int, ...]:
    return (0, nd - 1, *range(1, nd - 1))


# How an array reaches the kernels (a function of its shape and strides only, so a plan can
# keep it): as it is, as its transpose into the other layout, or as a C-contiguous copy.
_AS_IS, _TRANSPOSED, _COPIED = 0, 1, 2


def _view_kind(x: np.ndarray, channels_last: bool) -> tuple[int, bool]:
    """(how, use_cl_kernel): how x becomes a C-contiguous array in the layout of its memory."""
    if x.flags.c_contiguous:
        return _AS_IS, channels_last
    alt = x.transpose(_perm_to_cl(x.ndim) if not channels_last else _perm_to_cf(x.ndim))
    if alt.flags.c_contiguous and x.size > 0:
        return _TRANSPOSED, not channels_last
    return _COPIED, channels_last


def _kernel_view(x: np.ndarray, how: int, channels_last: bool) -> np.ndarray:
    if how == _AS_IS:
        return x
    if how == _TRANSPOSED:
        return x.transpose(_perm_to_cl(x.ndim) if not channels_last else _perm_to_cf(x.ndim))
    return np.ascontiguousarray(x)


def _lift_shape(shape: tuple, cl: bool) -> tuple:
    """(N, C, *sp) -> (N*C, D, H, W, 1); (N, *sp, C) -> (N, D, H, W, C)."""
    if cl:
        sp = shape[1:-1]
        return (shape[0],) + (1,) * (3 - len(sp)) + sp + (shape[-1],)
    sp = shape[2:]
    return (shape[0] * shape[1],) + (1,) * (3 - len(sp)) + sp + (1,)


def _lift_array(v: np.ndarray, cl: bool) -> np.ndarray:
    """A C-contiguous array in the kernels' 5-D shape (see :func:`_lift_shape`)."""
    return v.reshape(_lift_shape(v.shape, cl))


def _shape_with(shape: tuple, spatial: tuple, cl: bool) -> tuple:
    """``shape`` (N, C, *sp) or (N, *sp, C) with its spatial dims replaced."""
    if cl:
        return (shape[0], *spatial, shape[-1])
    return (shape[0], shape[1], *spatial)


def output_shape(x_shape: tuple, spec, channels_last: bool) -> tuple:
    """The output shape of pooling an array of shape ``x_shape`` with ``spec``."""
    return _shape_with(tuple(x_shape), tuple(spec.out_size), channels_last)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """float16 is computed in float32; integers in int64 (uint64 in uint64), which holds every
    value exactly, so the cast back is exact and the kernels compile for two integer dtypes
    instead of eight."""
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind in "iu":
        return np.dtype(np.uint64) if dtype == np.uint64 else np.dtype(np.int64)
    return dtype


class _Problem:
    """An input prepared for the kernels: ``v`` in the layout of its memory and the compute
    dtype, ``x3`` its 5-D lifted view, ``cl`` the kernel layout."""

    def __init__(self, x: np.ndarray, channels_last: bool, transform=None):
        how, cl = _view_kind(x, channels_last)
        dt = _compute_dtype(x.dtype)
        v = _prepared(x, how, channels_last, dt, transform)
        self.x, self.v, self.cl, self.dt = x, v, cl, dt
        self.how, self.channels_last, self.transform = how, channels_last, transform
        self.flip = cl != channels_last
        self.x3 = _lift_array(v, cl)

    def empty(self, spatial: tuple, dtype=None) -> np.ndarray:
        return _buffers.empty(_shape_with(self.v.shape, spatial, self.cl), dtype or self.dt)

    def grad(self, grad_output: np.ndarray, dtype=None) -> np.ndarray:
        """An array in the caller's layout (a gradient, indices) in the kernel layout, C-
        contiguous, in ``dtype`` (default: the compute dtype)."""
        g = grad_output
        if self.flip:
            g = g.transpose(_perm_to_cl(g.ndim) if self.cl else _perm_to_cf(g.ndim))
        return np.ascontiguousarray(g, dtype=self.dt if dtype is None else dtype)

    def back(self, a: np.ndarray, dtype=None) -> np.ndarray:
        """A kernel-layout result in the caller's layout (and ``dtype``, default x's)."""
        return _back(a, self.x.dtype if dtype is None else dtype, self.flip, self.cl)


def _prepared(x: np.ndarray, how: int, channels_last: bool, dt: np.dtype, transform):
    """x as the kernels read it: C-contiguous in its memory's layout, in the compute dtype."""
    v = _kernel_view(x, how, channels_last)
    if v.dtype != dt:
        v = v.astype(dt)
    if transform is not None:
        v = transform(v)
    return v


def _back(a: np.ndarray, dtype: np.dtype, flip: bool, cl: bool) -> np.ndarray:
    if a.dtype != dtype:
        a = a.astype(dtype)
    if flip:
        a = a.transpose(_perm_to_cf(a.ndim) if cl else _perm_to_cl(a.ndim))
    return a


def _run(kernel, n_tasks: int, *args, work: int) -> None:
    _threads.parallel_for(kernel, n_tasks, *args, work=work)


@dataclass(frozen=True, eq=False)
class _Launch:
    """The kernel call of a forward pass: ``kernel(x3, o3, [i3,] *consts, lo, hi)`` over task
    ranges of ``range(n_tasks)`` (``i3``, the indices, only when they are asked for), touching
    ``work`` elements. ``kernel`` is a compiled entry point (``Kernel.entry``): every array
    the plan passes it is C-contiguous by construction. ``serial``: it runs in the calling
    thread whatever the thread count."""

    kernel: object
    n_tasks: int
    consts: tuple
    work: int
    #: ``kernel`` stands in (in NumPy) for a kernel still compiling: not to be memoised
    provisional: bool = False
    serial: bool = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "serial", _threads.runs_serially(self.n_tasks, self.work))


# --------------------------------------------------------------------------------------------
# Uniform windows: per-dim tables for the kernels.


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


def _frozen(fn):
    """Memoise a table builder on its (hashable) arguments and make the tables read-only:
    building them costs tens of microseconds of NumPy per call, as much as pooling a small
    input; the kernels only read them."""

    @functools.lru_cache(maxsize=256)
    def cached(*args):
        tables = fn(*args)
        for t in tables:
            t.flags.writeable = False
        return tables

    cached.__doc__ = fn.__doc__
    return cached


@_frozen
def _tables(spec: PoolSpec, acc_dtype=None):
    """Per-dim tables for the kernels (see _kernels/__init__.py). The kernels see only the
    window offsets that can land in the input (``_live_offsets``): the others only ever read
    padding, so dropping them changes no value, index or order, and a huge window over a
    small input no longer costs a loop over every offset. ``first``, ``valid`` and the
    divisors use the full window."""
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


def _variant(geo: np.ndarray, channels: int, dt: np.dtype) -> int:
    """The kernel variant for the last dim's live window (geo row 2), specialised for float32."""
    return _rows.variant(int(geo[2, 0]), int(geo[2, 1]), int(geo[2, 2]), channels, dt == np.float32)


def _empty_value(dtype: np.dtype, largest: bool):
    """The value of a window that reads no input: -inf (or the dtype's minimum) for max, +inf
    (or the maximum) for min."""
    if dtype.kind == "f":
        return dtype.type(np.inf if largest else -np.inf)
    info = np.iinfo(dtype)
    return dtype.type(info.max if largest else info.min)


def _flip_order(v: np.ndarray) -> np.ndarray:
    """An order-reversing bijection: min pooling is max pooling of these values (NaN stays
    NaN, -0.0 and 0.0 stay tied, integers cannot overflow)."""
    return np.negative(v) if v.dtype.kind == "f" else np.invert(v)


def _out3(p: _Problem, spec) -> tuple:
    """The 5-D kernel shape of the output of ``spec`` on ``p``."""
    return _lift_shape(_shape_with(p.v.shape, spec.out_size, p.cl), p.cl)


def _uniform_max(p: _Problem, spec: PoolSpec, init, return_indices: bool) -> _Launch:
    geo, lo, hi, first, _, _ = _tables(spec)
    variant = _variant(geo, p.x3.shape[4], p.dt)
    o3 = _out3(p, spec)
    nch = _rows.num_chunks(o3[0] * o3[1] * o3[2])
    if return_indices:
        return _Launch(_maxk.MAX_FWD_IDX.entry((variant, p.dt)), nch,
                       (init, geo, lo, hi, first, nch), p.x3.size)
    entry = _ready(_maxk.MAX_FWD, (variant, p.dt), spec)
    if entry is None:  # compiling in another process: NumPy computes this call
        return _Launch(functools.partial(_numpy_max, _lift(spec)), 1, (init,), p.x3.size,
                       provisional=True)
    return _Launch(entry, nch, (init, geo, lo, hi, nch), p.x3.size)


# Windows of up to this many cells may run in NumPy while their kernel compiles (a NumPy pass
# per cell).
_NUMPY_WINDOW = 64


def _ready(kernel, key, spec: PoolSpec):
    """``kernel``'s entry for ``key``; or None while it compiles in another process, for a
    window NumPy may compute meanwhile (see ``Kernel.ready_entry``): the first call of a
    fresh install need not wait seconds for Numba."""
    if math.prod(spec.window) > _NUMPY_WINDOW:
        return kernel.entry(key)
    return kernel.ready_entry(key)


def _numpy_windows(lifted, x3: np.ndarray, fill):
    """For each window cell in row-major order, the view of ``x3`` (padded with ``fill``)
    that cell reads for every output: NumPy's way through the windows, for the stand-ins
    below."""
    L, K, S, Dl, PB, _, O = lifted
    reach = [(o - 1) * s + (k - 1) * d + 1 for o, s, k, d in zip(O, S, K, Dl, strict=True)]
    after = [max(0, r - pb - n) for r, pb, n in zip(reach, PB, L, strict=True)]
    if any(PB) or any(after):
        xp = np.full((x3.shape[0], *(pb + n + a for pb, n, a in zip(PB, L, after, strict=True)),
                      x3.shape[4]), fill, x3.dtype)
        xp[:, PB[0]:PB[0] + L[0], PB[1]:PB[1] + L[1], PB[2]:PB[2] + L[2]] = x3
    else:
        xp = x3
    for jd in range(K[0]):
        for jh in range(K[1]):
            for jw in range(K[2]):
                yield xp[:, jd * Dl[0]::S[0], jh * Dl[1]::S[1], jw * Dl[2]::S[2]][
                    :, : O[0], : O[1], : O[2]]


def _numpy_max(lifted, x3: np.ndarray, o3: np.ndarray, init, t0: int, t1: int) -> None:
    """Max pooling without indices into ``o3``, as the max kernel computes it, in NumPy, for
    the calls made while that kernel compiles. The same values bit for bit: window cells in
    row-major order, each one replacing the running maximum ``m`` where ``v > m or v != v``,
    starting from ``init`` (what a window that reads no input gives); the padding is
    ``init``, which never replaces anything. Serial: one task (t0, t1 = 0, 1)."""
    o3[...] = init
    wins = np.empty(o3.shape, bool)
    nan = np.empty(o3.shape, bool)
    for v in _numpy_windows(lifted, x3, init):
        np.greater(v, o3, out=wins)
        np.not_equal(v, v, out=nan)
        np.logical_or(wins, nan, out=wins)
        np.copyto(o3, v, where=wins)


def _numpy_avg(lifted, div: np.ndarray, x3: np.ndarray, o3: np.ndarray, t0: int,
               t1: int) -> None:
    """Average pooling into ``o3``, as the average kernel computes it, in NumPy, for the
    calls made while that kernel compiles: a sum from 0 in ``o3``'s dtype adding the window's
    cells in row-major order, then one division by ``div`` (the kernel's divisors). The same
    values bit for bit but for NaN payloads: the padding is 0, and adding 0 changes no sum
    that starts at +0. Serial: one task."""
    o3[...] = 0
    with np.errstate(all="ignore"):  # inf - inf is NaN, as in the kernel, without a warning
        for v in _numpy_windows(lifted, x3, 0):
            np.add(o3, v, out=o3)
        np.divide(o3, div, out=o3)


def _uniform_max_backward(p: _Problem, g: np.ndarray, spec: PoolSpec, init) -> np.ndarray:

    gx = _buffers.empty(p.v.shape, p.dt)
    if gx.size and g.size:
        g3 = _lift_array(g, p.cl)
        gx3 = _lift_array(gx, p.cl)
        geo, lo, hi, first, valid, _ = _tables(spec)
        variant = _variant(geo, gx3.shape[4], p.dt)
        tiled = all(
            s == k and d == 1 and pad == 0 and o * k <= n
            for k, s, d, pad, o, n in zip(
                spec.window, spec.stride, spec.dilation, spec.pad_before, spec.out_size,
                spec.in_size, strict=True,
            )
        )
        _run(_maxk.MAX_BWD[variant, tiled, p.dt], gx3.shape[0], p.x3, g3, gx3, init, geo, lo,
             hi, first, valid, work=gx.size)
    else:
        gx[...] = 0
    return gx


def _power(p_norm) -> int:
    """The avg kernels' literal value transform for an LP norm: 1 |x|, 2 x*x, 3 |x|**p."""
    return 1 if p_norm == 1 else 2 if p_norm == 2 else 3


def _uniform_avg(p: _Problem, spec: PoolSpec, P: int, p_norm: float, scale: float) -> _Launch:
    geo, lo, hi, _, _, cnt = _tables(spec, p.dt)
    variant = _variant(geo, p.x3.shape[4], p.dt)
    o3 = _out3(p, spec)
    nch = _rows.num_chunks(o3[0] * o3[1] * o3[2])
    key = (variant, P, p.dt)
    # (power averages always wait for their kernel: NumPy's powers need not round as its do)
    entry = _ready(_avgk.AVG_FWD, key, spec) if P == 0 else _avgk.AVG_FWD.entry(key)
    if entry is None:  # compiling in another process: NumPy computes this call
        O = _lift(spec)[6]
        # the kernel's divisor of window (od, oh, ow): cnt[0, od] * cnt[1, oh] * cnt[2, ow]
        div = ((cnt[0, : O[0], None] * cnt[1, None, : O[1]])[:, :, None]
               * cnt[2, None, None, : O[2]])[None, ..., None]
        return _Launch(functools.partial(_numpy_avg, _lift(spec), div), 1, (), p.x3.size,
                       provisional=True)
    return _Launch(entry, nch, (geo, lo, hi, cnt, p.dt.type(p_norm), p.dt.type(scale), nch),
                   p.x3.size)


def _uniform_avg_backward(p: _Problem, g: np.ndarray, spec: PoolSpec) -> np.ndarray:

    gx = _buffers.empty(p.v.shape, p.dt)
    if gx.size and g.size:
        g3 = _lift_array(g, p.cl)
        gx3 = _lift_array(gx, p.cl)
        geo, lo, hi, _, _, cnt = _tables(spec, p.dt)
        _run(_avgk.AVG_BWD[p.dt], gx3.shape[0], g3, gx3, geo, lo, hi, cnt, work=gx.size)
    else:
        gx[...] = 0
    return gx


# --------------------------------------------------------------------------------------------
# Adaptive and fractional windows.


@_frozen
def _adaptive_tables(spec: AdaptiveSpec) -> tuple[np.ndarray, np.ndarray]:
    """(start, count) as (3, max O) tables, lifted to 3 dims with identity dims."""
    omax = max((*spec.out_size, 1))
    start = np.zeros((3, omax), np.int64)
    count = np.ones((3, omax), np.int64)
    lift = 3 - spec.rank
    for r in range(spec.rank):
        s, c = spec.windows(r)
        start[lift + r, : len(s)] = s
        count[lift + r, : len(c)] = c
    return start, count


_NO_INDEX = np.empty((0, 0, 0, 0, 0), np.int64)


def _small_uniform(spec: AdaptiveSpec) -> PoolSpec | None:
    """Adaptive windows that are small uniform windows (every dim divides evenly, at most 4
    cells a dim) as a uniform spec: the uniform kernels are faster there, with the same
    values, indices and tie rules (averages to float rounding)."""
    u = spec.uniform()
    return u if u is not None and max(u.window) <= 4 else None


def _adaptive_reduce(p: _Problem, spec: AdaptiveSpec, red: str, return_indices: bool):
    small = _small_uniform(spec)
    if small is not None:
        if red == "avg":
            return _uniform_avg(p, small, 0, 1.0, 1.0)
        return _uniform_max(p, small, p.dt.type(_empty_value(p.dt, False)), return_indices)
    o3 = _out3(p, spec)
    c1 = p.x3.shape[4] == 1
    if red == "avg" and all(o == 1 for o in spec.out_size):  # global: a plane mean
        return _Launch(_wink.PLANE_MEAN.entry((c1, p.dt)), o3[0], (), p.x3.size)
    start, count = _adaptive_tables(spec)
    kind = _wink.RED_SUM if red == "avg" else _wink.RED_MAX
    return _Launch(_wink.WIN_FWD.entry((kind, return_indices, c1, p.dt)),
                   o3[0] * o3[1] * o3[2],
                   (start, count) if return_indices else (_NO_INDEX, start, count), p.x3.size)


def _scatter_backward(p: _Problem, g: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Max-pooling gradient from (kernel-layout) indices: each gradient added at its index."""

    gx = _buffers.empty(p.v.shape, p.dt)
    if gx.size and g.size:
        gx3 = _lift_array(gx, p.cl)
        bad = np.zeros(gx3.shape[0], np.int64)
        _run(_wink.SCATTER_ADD[gx3.shape[4] == 1, p.dt], gx3.shape[0], _lift_array(g, p.cl),
             _lift_array(idx, p.cl), gx3, bad, work=gx.size)
        if bad.any():  # our own indices: a bug if it ever happens
            raise AssertionError("max pooling produced an index outside its plane")
    else:
        gx[...] = 0
    return gx


def _adaptive_avg_backward(p: _Problem, g: np.ndarray, spec: AdaptiveSpec) -> np.ndarray:

    gx = _buffers.empty(p.v.shape, p.dt)
    if gx.size and g.size:
        gx3 = _lift_array(gx, p.cl)
        start, count = _adaptive_tables(spec)
        tiled = all(o > 0 and L % o == 0 for L, o in zip(spec.in_size, spec.out_size,
                                                         strict=True))
        _run(_wink.WIN_AVG_BWD[tiled, gx3.shape[4] == 1, p.dt], gx3.shape[0],
             _lift_array(g, p.cl), gx3, start, count, work=gx.size)
    else:
        gx[...] = 0
    return gx


def _fractional_max(p: _Problem, spec: FractionalSpec, return_indices: bool) -> _Launch:
    k3 = np.array((1,) * (3 - spec.rank) + tuple(spec.window), np.int64)
    kd, kh, kw = _frack.literal_window(tuple(int(v) for v in k3))
    starts = np.ascontiguousarray(spec.starts)
    return _Launch(_frack.FRAC_FWD.entry((kd, kh, kw, return_indices, p.x3.shape[4] == 1, p.dt)),
                   p.x3.shape[0], (starts, k3) if return_indices else (_NO_INDEX, starts, k3),
                   p.x3.size)


# --------------------------------------------------------------------------------------------
# BlurPool.


@_frozen
def _blur_tables(spec: BlurSpec, dt: np.dtype):
    taps = binomial_filter(spec.filt).astype(dt)
    if spec.rank == 1:
        fh = np.ones(1, dt)
        geo = np.array([1, 0, spec.stride[0], spec.pad_before, spec.mode], np.int64)
    else:
        fh = taps
        geo = np.array([spec.stride[0], spec.pad_before, spec.stride[1], spec.pad_before,
                        spec.mode], np.int64)
    return fh, taps, geo


def _blur(p: _Problem, spec: BlurSpec) -> _Launch:
    fh, fw, geo = _blur_tables(spec, p.dt)
    S = spec.stride[-1] if spec.stride[-1] == 2 else 0  # BlurPool's stride: literal
    return _Launch(_blurk.BLUR_FWD.entry((spec.filt, S, p.x3.shape[4] == 1, p.dt)),
                   _out3(p, spec)[0],
                   (fh, fw, geo), p.x3.size)


def _blur_backward(p: _Problem, g: np.ndarray, spec: BlurSpec) -> np.ndarray:

    gx = _buffers.empty(p.v.shape, p.dt)
    if gx.size and g.size:
        gx3 = _lift_array(gx, p.cl)
        fh, fw, geo = _blur_tables(spec, p.dt)
        _run(_blurk.BLUR_BWD[spec.filt, gx3.shape[4] == 1, p.dt], gx3.shape[0],
             _lift_array(g, p.cl), gx3, fh, fw, geo, work=gx.size)
    else:
        gx[...] = 0
    return gx


# --------------------------------------------------------------------------------------------
# Forward and backward.


def _check_norm(p_norm) -> float:
    if not isinstance(p_norm, int | float | np.integer | np.floating) or isinstance(p_norm, bool):
        raise InvalidType(f"pool: norm_type must be a number, got {p_norm!r}")
    p_norm = float(p_norm)
    if not p_norm > 0:  # also NaN
        raise InvalidValue(
            f"pool: norm_type must be > 0 (LP pooling is (sum |x|^p)^(1/p); p <= 0 has no "
            f"such norm), got {p_norm!r}"
        )
    return p_norm


def pool(
    x: np.ndarray,
    spec,
    mode="max",
    *,
    channels_last: bool = False,
    return_indices: bool = False,
    p=None,
    scale: float = 1.0,
):
    """Pool a batched array whose spatial dims match ``spec.in_size`` with reduction ``mode``.

    Returns the output in the same logical layout (and dtype) as ``x``; with
    ``return_indices`` (max and min) also int64 indices flattened per (sample, channel) plane
    over the input's spatial dims, shaped like the output. ``p`` is the LP norm (> 0, inf
    allowed) and ``scale`` the LP scale (PyTorch multiplies the mean by the window size).
    """
    return plan_pool(x, spec, mode, channels_last=channels_last, return_indices=return_indices,
                     p=p, scale=scale, run=True)


def plan_pool(x, spec, mode="max", *, channels_last=False, return_indices=False, p=None,
              scale=1.0, run: bool = False):
    """The plan :func:`pool` runs for these arguments (checked as :func:`pool` checks them),
    or None where pool keeps no plan; with ``run``, pool's result instead. For front-ends
    that memoise their own calls: ``plan.run(x)`` is ``pool(x, ...)`` for every array of
    x's shape, strides and dtype."""
    key = None
    if type(x) is np.ndarray and type(spec) in _PLANNED_SPECS:
        # Everything the checks and the plan depend on. The spec by identity (a plan keeps
        # its spec alive, so the id stays its own): equal specs of other types, say floats
        # for ints, must still meet the checks. p and scale with their types: True == 1.
        key = (id(spec), mode, channels_last, return_indices, p, type(p), scale, type(scale),
               x.shape, x.strides, x.dtype)
        try:
            plan = PLANS.get(key)
        except TypeError:  # an unhashable argument: the checks below say what is wrong
            plan = key = None
        if plan is not None:
            return plan.run(x) if run else plan
    red = _reduction(mode)
    n_bytes = _check_spec(x, spec, red, channels_last)
    checked = check_input(x, red, "x", op="pool")
    if return_indices and not red.indices:
        raise InvalidValue(f"pool: return_indices needs max or min pooling, got {red.name!r}")
    if red.name == "lp":
        p = _check_norm(p)
        if math.isinf(p):  # max |x|, its index the argmax of |x|
            return pool(np.abs(checked), spec, "max", channels_last=channels_last,
                        return_indices=return_indices)
    prob = _Problem(checked, channels_last, _flip_order if red.name == "min" else None)
    plan = _Plan(prob, spec, red, return_indices, p, scale, n_bytes)
    # (a byte-swapped x was converted: not planned)
    if key is None or checked is not x or plan.provisional:
        return plan.finish(*plan.compute(prob.x3)) if run else None
    PLANS.put(key, plan)
    return plan.finish(*plan.compute(prob.x3)) if run else plan


# --------------------------------------------------------------------------------------------
# Plans: a forward call with everything but the values decided, memoised per call key.


class _Plan:
    """How :func:`pool` computes its result for one array shape, strides and dtype, one spec
    and one set of arguments, after the checks passed: the kernel view of the input, the
    kernel call with its tables, the output's shape and layout. :func:`pool` runs every call
    through a plan and keeps the plans of checked calls (:data:`_PLANS`), so that a repeated
    call is a key, a dict lookup, an allocation and the kernel (the checks, the spec's
    tables and the layout logic cost ~8 us against ~1 us of kernel on a small input).
    Nothing in a plan depends on the thread count (see :class:`_Launch`)."""

    __slots__ = ("spec", "red", "how", "channels_last", "cl", "flip", "dt", "transform",
                 "x3_shape", "out_shape", "o3_shape", "indices", "negate", "out_dtype",
                 "launch", "n_bytes", "as_is", "plain_out", "alloc", "provisional")

    def __init__(self, prob: _Problem, spec, red: Reduction, return_indices, p_norm, scale,
                 n_bytes: int = 0):
        self.spec, self.red = spec, red
        self.how, self.channels_last, self.cl, self.flip = (prob.how, prob.channels_last,
                                                           prob.cl, prob.flip)
        self.dt, self.transform, self.x3_shape = prob.dt, prob.transform, prob.x3.shape
        self.out_shape = _shape_with(prob.v.shape, spec.out_size, prob.cl)
        self.o3_shape = _lift_shape(self.out_shape, prob.cl)
        self.indices = bool(return_indices)
        self.negate = red.name == "min"
        self.out_dtype = prob.x.dtype
        self.n_bytes = n_bytes
        n_out = math.prod(self.out_shape)
        self.launch = (_forward_launch(prob, spec, red.name, self.indices, p_norm, scale)
                       if n_out else None)
        # Computed in NumPy while its kernel compiles: never memoised (see _ready)
        self.provisional = self.launch is not None and self.launch.provisional
        # The common case, decided once: the input is the kernel view, the output the result.
        self.as_is = prob.how == _AS_IS and prob.dt == prob.x.dtype and prob.transform is None
        self.plain_out = not self.negate and not self.flip and self.dt == self.out_dtype
        # Large outputs from the buffer cache (decided once: small ones skip its bookkeeping).
        self.alloc = _buffers.empty if n_out * 8 >= _buffers.MIN_BYTES else np.empty

    def compute(self, x3: np.ndarray):
        """(output, indices or None) in the kernel layout, from the lifted kernel view."""
        out = self.alloc(self.out_shape, self.dt)
        idx = self.alloc(self.out_shape, np.int64) if self.indices else None
        launch = self.launch
        if launch is not None:
            arrays = ((x3, out.reshape(self.o3_shape)) if idx is None else
                      (x3, out.reshape(self.o3_shape), idx.reshape(self.o3_shape)))
            if launch.serial:
                launch.kernel(*arrays, *launch.consts, 0, launch.n_tasks)
            else:
                _threads.parallel_for(launch.kernel, launch.n_tasks, *arrays, *launch.consts,
                                      work=launch.work)
        return out, idx

    def finish(self, out: np.ndarray, idx):
        """The caller's result from the kernel-layout output (and indices)."""
        if self.negate:
            out = _flip_order(out)
        out = _back(out, self.out_dtype, self.flip, self.cl)
        if idx is None:
            return out
        return out, _back(idx, np.int64, self.flip, self.cl)

    def run(self, x: np.ndarray):
        """``pool``'s result for ``x`` (of the shape, strides and dtype planned for)."""
        if self.n_bytes > _RECHECK_BYTES:  # the process's memory limit may have changed
            _check_spec(x, self.spec, self.red, self.channels_last)
        v = x if self.as_is else _prepared(x, self.how, self.channels_last, self.dt,
                                           self.transform)
        out, idx = self.compute(v.reshape(self.x3_shape))
        return out if self.plain_out and idx is None else self.finish(out, idx)


def _forward_launch(p: _Problem, spec, red: str, return_indices: bool, p_norm,
                    scale) -> _Launch:
    if isinstance(spec, PoolSpec):
        if red in ("max", "min"):
            flip = red == "min"
            init = _empty_value(p.x.dtype, largest=flip)
            if flip:
                init = _flip_order(np.array([init]).astype(p.dt))[0]
            return _uniform_max(p, spec, p.dt.type(init), return_indices)
        if red == "avg":
            return _uniform_avg(p, spec, 0, 1.0, 1.0)
        return _uniform_avg(p, spec, _power(p_norm), p_norm, scale)
    if isinstance(spec, AdaptiveSpec):
        return _adaptive_reduce(p, spec, red, return_indices)
    if isinstance(spec, FractionalSpec):
        return _fractional_max(p, spec, return_indices)
    return _blur(p, spec)


class PlanMemo:
    """Plans of checked calls by call key, at most ``maxsize`` (the oldest dropped first).
    ``get(key)`` is the dict's own (a TypeError for an unhashable key); every memo is emptied
    by :func:`clear_plans`."""

    def __init__(self, maxsize: int = 256):
        self.maxsize = maxsize
        self._plans: dict = {}
        self._lock = threading.Lock()
        self.get = self._plans.get
        _MEMOS.append(self)

    def put(self, key, value) -> None:
        with self._lock:
            while len(self._plans) >= max(self.maxsize, 1):
                del self._plans[next(iter(self._plans))]
            self._plans[key] = value

    def clear(self) -> None:
        with self._lock:
            self._plans.clear()

    def __len__(self) -> int:
        return len(self._plans)

    def __contains__(self, key) -> bool:
        return key in self._plans


_MEMOS: list[PlanMemo] = []
# Fractional specs are not planned: their window starts are not part of their identity
# as a key (and a new spec is drawn for nearly every call).
_PLANNED_SPECS = (PoolSpec, AdaptiveSpec, BlurSpec)
#: pool's call key -> _Plan.
PLANS = PlanMemo()
# Outputs this large re-check the memory limit on every call (a plan's memory check passed
# once; smaller outputs fit under any limit a running interpreter has).
_RECHECK_BYTES = 1 << 24


def clear_plans() -> None:
    """Forget every memoised plan (they are rebuilt, after the checks, on the next calls)."""
    for memo in _MEMOS:
        memo.clear()


def pool_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    spec,
    mode="max",
    *,
    channels_last: bool = False,
    p=None,
    scale: float = 1.0,
) -> np.ndarray:
    """Gradient of ``pool(x, spec, mode, ...)`` with respect to ``x``, given ``grad_output``
    (same dtype as ``x``, the forward output's shape).

    Max and min: each output's gradient goes to its window's winner (first maximum, last NaN),
    added in output row-major order, so overlapping windows accumulate exactly as in PyTorch.
    Average: each output's gradient divided by its divisor is spread over its window. LP:
    ``g * scale / divisor * sign(x) * (|x| / out)^(p-1)`` summed over windows (0 where the
    window's output or the cell is 0). Blur: the transposed filter. Deterministic: planes (or
    samples) are independent tasks.
    """
    red = _reduction(mode)
    _check_spec(x, spec, red, channels_last)
    x = check_input(x, red, "x", op="pool_backward")
    grad_output = check_grad(grad_output, x, output_shape(x.shape, spec, channels_last),
                             op="pool_backward")
    if red.name == "lp":
        p = _check_norm(p)
        return _lp_backward(grad_output, x, spec, p, scale, channels_last)
    flip = red.name == "min"
    prob = _Problem(x, channels_last, _flip_order if flip else None)
    g = prob.grad(grad_output)
    if isinstance(spec, PoolSpec):
        if red.name in ("max", "min"):
            init = prob.dt.type(_empty_value(prob.dt, largest=False))
            gx = _uniform_max_backward(prob, g, spec, init)
        else:
            gx = _uniform_avg_backward(prob, g, spec)
    elif isinstance(spec, AdaptiveSpec) and _small_uniform(spec) is not None:
        small = _small_uniform(spec)
        if red.name == "avg":
            gx = _uniform_avg_backward(prob, g, small)
        else:
            gx = _uniform_max_backward(prob, g, small, prob.dt.type(_empty_value(prob.dt,
                                                                                 False)))
    elif isinstance(spec, AdaptiveSpec):
        if red.name == "avg":
            gx = _adaptive_avg_backward(prob, g, spec)
        else:
            _, idx = _Plan(prob, spec, REDUCTIONS["max"], True, None, 1.0).compute(prob.x3)
            gx = _scatter_backward(prob, g, idx)
    elif isinstance(spec, FractionalSpec):
        _, idx = _Plan(prob, spec, REDUCTIONS["max"], True, None, 1.0).compute(prob.x3)
        gx = _scatter_backward(prob, g, idx)
    else:
        gx = _blur_backward(prob, g, spec)
    return prob.back(gx)


def _lp_backward(grad_output, x, spec: PoolSpec, p_norm: float, scale: float, cl: bool):
    if math.isinf(p_norm):
        gx = pool_backward(grad_output, np.abs(x), spec, "max", channels_last=cl)
        return (gx * np.sign(x)).astype(x.dtype, copy=False)
    dt = _compute_dtype(x.dtype)
    xc = x.astype(dt, copy=False)
    out = pool(xc, spec, "lp", channels_last=cl, p=p_norm, scale=scale)
    g = grad_output.astype(dt, copy=False)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p_norm == 1:
            G = g * dt.type(scale)
        else:
            G = np.where(out != 0, g * dt.type(scale) * out ** dt.type(1 - p_norm), 0)
        G = np.ascontiguousarray(G, dtype=dt)
        prob = _Problem(xc, cl)
        spread = prob.back(_uniform_avg_backward(prob, prob.grad(G), spec), dt)
        ax = np.abs(xc)
        if p_norm == 1:
            factor = np.sign(xc)
        elif p_norm == 2:
            factor = xc
        else:
            factor = np.where(ax != 0, np.sign(xc) * ax ** dt.type(p_norm - 1), 0)
        gx = factor * spread
    return gx.astype(x.dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Compositions and the ops that are not window reductions.


def max_blur(x: np.ndarray, max_spec: PoolSpec, blur_spec: BlurSpec, *,
             channels_last: bool = False) -> np.ndarray:
    """MaxBlurPool (Zhang 2019): max pooling with ``max_spec`` (stride 1), then BlurPool."""
    return pool(pool(x, max_spec, "max", channels_last=channels_last), blur_spec, "blur",
                channels_last=channels_last)


def max_blur_backward(grad_output: np.ndarray, x: np.ndarray, max_spec: PoolSpec,
                      blur_spec: BlurSpec, *, channels_last: bool = False) -> np.ndarray:
    """Gradient of :func:`max_blur`: the blur's transpose, then the max routing."""
    m = pool(x, max_spec, "max", channels_last=channels_last)
    gm = pool_backward(grad_output, m, blur_spec, "blur", channels_last=channels_last)
    return pool_backward(gm, x, max_spec, "max", channels_last=channels_last)


def _check_indices(indices, x: np.ndarray, op: str) -> np.ndarray:
    if not isinstance(indices, np.ndarray):
        raise InvalidType(f"{op}: indices must be a NumPy array, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise InvalidType(f"{op}: indices must be an integer array, got dtype {indices.dtype}")
    if indices.shape != x.shape:
        raise InvalidValue(f"{op}: indices must have the input's shape {x.shape}, got "
                           f"{indices.shape}")
    return indices


def unpool(x: np.ndarray, indices: np.ndarray, out_size: tuple, *,
           channels_last: bool = False) -> np.ndarray:
    """Max-unpooling: a zero array of spatial size ``out_size`` with ``out[idx] = x`` per
    plane (``indices`` flat per plane over ``out_size``; duplicates: the last input cell in
    row-major order wins). An index outside the plane raises InvalidValue."""
    op = "max_unpool"
    x = check_input(x, "max", "input", op=op)
    indices = _check_indices(indices, x, op)
    if not isinstance(out_size, tuple | list) or len(out_size) != x.ndim - 2 or any(
            not isinstance(v, int | np.integer) or isinstance(v, bool) or not 0 <= v <= 2**31 - 1
            for v in out_size):
        raise InvalidValue(f"{op}: out_size must be {x.ndim - 2} ints in [0, 2**31 - 1] (the "
                           f"input has shape {x.shape}), got {out_size!r}")
    out_size = tuple(int(v) for v in out_size)
    planes = x.shape[0] * (x.shape[-1] if channels_last else x.shape[1])
    check_memory(planes * math.prod(out_size) * 8,
                 f"an output of spatial size {out_size} for {planes} planes", op)
    prob = _Problem(x, channels_last)
    out = prob.empty(tuple(out_size))
    if out.size or x.size:
        iv = prob.grad(indices, np.int64)
        bad = _unpool_kernel("UNPOOL_FWD", prob, _lift_array(iv, prob.cl),
                             _lift_array(out, prob.cl), prob.x3)
        if bad:
            plane = int(np.prod(out_size))
            j = indices[(indices < 0) | (indices >= plane)].ravel()[0]
            raise InvalidValue(f"{op}: found an invalid max index {int(j)} (output planes are "
                               f"of size {'x'.join(map(str, out_size))})")
    return prob.back(out)


def _unpool_kernel(name: str, prob: _Problem, i3, o3, src3) -> bool:

    n = max(src3.shape[0], o3.shape[0])
    bad = np.zeros(n, np.int64)
    if src3.size or o3.size:
        c1 = src3.shape[4] == 1
        if name == "UNPOOL_FWD":
            _run(_unpk.UNPOOL_FWD[c1, prob.dt], n, src3, i3, o3, bad, work=o3.size + src3.size)
        else:
            _run(_unpk.UNPOOL_BWD[c1, prob.dt], n, src3, i3, o3, bad, work=o3.size + src3.size)
    return bool(bad.any())


def unpool_backward(grad_output: np.ndarray, x: np.ndarray, indices: np.ndarray, *,
                    channels_last: bool = False) -> np.ndarray:
    """Gradient of :func:`unpool` with respect to its input: ``g[idx]`` per plane (a gather;
    an input whose value a duplicate overwrote still gets the gradient of its cell)."""
    op = "max_unpool_backward"
    x = check_input(x, "max", "input", op=op)
    indices = _check_indices(indices, x, op)
    if x.dtype.kind != "f":
        raise InvalidType(f"{op}: the backward pass needs a floating input, got {x.dtype}")
    if not isinstance(grad_output, np.ndarray) or grad_output.dtype != x.dtype:
        raise InvalidType(f"{op}: grad_output must be an array of the input's dtype {x.dtype}")
    if grad_output.ndim != x.ndim or _shape_with(grad_output.shape, (), channels_last) != \
            _shape_with(x.shape, (), channels_last):
        raise InvalidValue(f"{op}: grad_output shape {grad_output.shape} does not fit input "
                           f"shape {x.shape}")
    prob = _Problem(x, channels_last)
    g = prob.grad(grad_output)
    gx = _buffers.empty(prob.v.shape, prob.dt)
    if gx.size:
        iv = prob.grad(indices, np.int64)
        if _unpool_kernel("UNPOOL_BWD", prob, _lift_array(iv, prob.cl),
                          _lift_array(gx, prob.cl), _lift_array(g, prob.cl)):
            raise InvalidValue(f"{op}: found an invalid max index (outside the output plane)")
    return prob.back(gx)


def _fastest_first(stride: tuple[int, ...]) -> list[tuple[int, ...]]:
    out = []
    total = int(np.prod(stride))
    for k in range(total):
        ph, rem = [], k
        for s in stride:
            ph.append(rem % s)
            rem //= s
        out.append(tuple(ph))
    return out


def _polyphase_parts(x: np.ndarray, stride: tuple[int, ...], channels_last: bool):
    """x padded circularly to multiples of the stride, and a view (N, *phases, C, *out)."""
    rank = len(stride)
    axes = range(1, 1 + rank) if channels_last else range(2, 2 + rank)
    pad = [(0, 0)] * x.ndim
    for ax, s in zip(axes, stride, strict=True):
        pad[ax] = (0, (-x.shape[ax]) % s)
    xp = np.pad(x, pad, mode="wrap") if any(b for _, b in pad) else x
    return xp, list(axes)


def _check_polyphase(x, stride, norm, channels_last: bool, op: str):
    """(x, stride, effective stride, norm) checked. The effective stride caps each stride at
    its dim's size: phases past the size are circular copies of earlier ones, which never win
    (the first maximum does), so the result is the same without padding to a huge stride."""
    x = check_input(x, "max", "x", op=op)
    if not isinstance(stride, tuple) or not stride or len(stride) != x.ndim - 2 or any(
            not isinstance(s, int | np.integer) or isinstance(s, bool) or not
            1 <= s <= 2**31 - 1 for s in stride):
        raise InvalidValue(f"{op}: stride must be a tuple of {x.ndim - 2} ints in "
                           f"[1, 2**31 - 1] (one per spatial dim of x of shape {x.shape}), got "
                           f"{stride!r}")
    spatial = x.shape[1:-1] if channels_last else x.shape[2:]
    if min(spatial) < 1 or (x.shape[-1] if channels_last else x.shape[1]) < 1:
        raise InvalidValue(f"{op}: x of shape {x.shape} has a zero-size channel or spatial dim")
    stride = tuple(int(s) for s in stride)
    eff = tuple(min(s, L) for s, L in zip(stride, spatial, strict=True))
    return x, stride, eff, _check_norm(norm)


def polyphase(x: np.ndarray, stride: tuple[int, ...], norm: float, *,
              channels_last: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive polyphase sampling (Chaman & Dokmanic 2021): (output, phase per sample).

    The input is padded circularly to multiples of the stride; of its polyphase components
    ``x[..., i::s, j::s]`` each sample keeps the one with the largest ``norm`` over all its
    channels (the first such component in Chaman & Dokmanic's order on ties; a NaN norm counts
    as largest). A circular shift of the input shifts the output circularly. The phase is
    numbered in that order for ``stride``.
    """
    x, stride, eff, norm = _check_polyphase(x, stride, norm, channels_last, "polyphase")
    out, phase = _polyphase(x, eff, norm, channels_last)
    if eff != stride:  # renumber the phases for the stride asked for
        offsets = np.asarray(_fastest_first(eff), np.int64)[phase]
        phase = offsets @ np.cumprod((1, *stride[:-1]), dtype=np.int64)
    return out, phase


def _polyphase(x: np.ndarray, stride: tuple[int, ...], norm: float, channels_last: bool):
    xp, axes = _polyphase_parts(x, stride, channels_last)
    phases = _fastest_first(stride)
    n = x.shape[0]
    norms = np.empty((n, len(phases)), np.float64)
    comps = []
    with np.errstate(over="ignore"):  # a norm that overflows is inf: still comparable
        _phase_norms(xp, axes, phases, stride, norm, norms, comps)
    phase = np.argmax(norms, axis=1)  # first maximum; np.argmax takes the first NaN
    out = np.empty(comps[0].shape, x.dtype)
    for i in range(n):
        out[i] = comps[phase[i]][i]
    return out, phase


def _phase_norms(xp, axes, phases, stride, norm, norms, comps) -> None:
    """Each polyphase component of xp (appended to comps) and its norm per sample."""
    n = xp.shape[0]
    for k, ph in enumerate(phases):
        sl = [slice(None)] * xp.ndim
        for ax, off, s in zip(axes, ph, stride, strict=True):
            sl[ax] = slice(off, None, s)
        c = xp[tuple(sl)]
        comps.append(c)
        a = np.abs(c.astype(np.float64)).reshape(n, -1)
        if math.isinf(norm):
            norms[:, k] = a.max(axis=1) if a.shape[1] else 0.0
        elif norm == 1:
            norms[:, k] = a.sum(axis=1)
        elif norm == 2:
            norms[:, k] = np.einsum("ij,ij->i", a, a)
        else:
            norms[:, k] = (a**norm).sum(axis=1)


def polyphase_backward(grad_output: np.ndarray, x: np.ndarray, stride: tuple[int, ...],
                       norm: float, *, channels_last: bool = False) -> np.ndarray:
    """Gradient of :func:`polyphase`: each sample's gradient goes back to the cells of its
    chosen component (the choice itself is piecewise constant), padding folded back."""
    op = "polyphase_backward"
    x, _, stride, norm = _check_polyphase(x, stride, norm, channels_last, op)
    out, phase = _polyphase(x, stride, norm, channels_last)
    grad_output = check_grad(grad_output, x, out.shape, op=op)
    xp, axes = _polyphase_parts(x, stride, channels_last)
    gp = np.zeros(xp.shape, grad_output.dtype)
    phases = _fastest_first(stride)
    for i in range(x.shape[0]):
        sl = [i] + [slice(None)] * (x.ndim - 1)
        for ax, off, s in zip(axes, phases[phase[i]], stride, strict=True):
            sl[ax] = slice(off, None, s)
        gp[tuple(sl)] = grad_output[i]
    for ax in axes:  # fold the circular padding back onto the cells it copied
        L = x.shape[ax]
        extra = gp.shape[ax] - L
        if extra:
            head = [slice(None)] * gp.ndim
            tail = [slice(None)] * gp.ndim
            head[ax] = slice(0, extra)
            tail[ax] = slice(L, None)
            gp[tuple(head)] += gp[tuple(tail)]
            keep = [slice(None)] * gp.ndim
            keep[ax] = slice(0, L)
            gp = gp[tuple(keep)]
    return np.ascontiguousarray(gp)
