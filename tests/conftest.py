"""Shared hypothesis settings and strategies for the engine's parity tests.

Profiles (pick with HYPOTHESIS_PROFILE=...): "ci" (default) is derandomized, so a failure
reproduces on every run and machine, and small enough for the engine suite to run in a few
minutes on 2 cores including Numba compilation; "thorough" draws many more random examples;
"dev" is random (prints the seed on failure) for hunting.

The strategies draw pooling *arguments* and a *seed*; arrays are then built with NumPy from the
seed (much faster than drawing every element through hypothesis, and still reproducible).
Spatial sizes are drawn as "window - 2*padding + extra" so that valid argument sets are never
filtered away: the tests do not need their own copy of the output-size formula.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

_common = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("ci", max_examples=40, derandomize=True, **_common)
settings.register_profile("thorough", max_examples=400, **_common)
settings.register_profile("dev", max_examples=100, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The suite tests the kernels: a kernel missing from the cache compiles at its first call
# instead of in a background process while NumPy computes the call (test_background_compile
# turns that on where it tests it).
os.environ["POOLKIT_BACKGROUND_COMPILE"] = "0"


def pytest_collection_finish(session):
    """Before a run of (most of) the suite, compile the kernels it uses over all CPUs
    (kernel_specs.py says why); a run of a few files compiles only what it needs, as it goes."""
    files = {item.path for item in session.items}
    if 2 * len(files) < len(list(Path(__file__).parent.glob("test_*.py"))):
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import kernel_specs

    from poolkit._kernels.precompile import precompile

    try:
        seconds = precompile(kernel_specs.load())
    except Exception as e:  # a stale list only costs time; its own test says what is wrong
        print(f"\nkernels not compiled ahead ({type(e).__name__}: {e}); they compile as needed")
        return
    if seconds:
        print(f"\nkernels compiled ahead in {seconds:.0f} s")

FLOAT_DTYPES = (np.float16, np.float32, np.float64)
INT_DTYPES = (np.int8, np.uint8, np.int16, np.int32, np.int64)

# --------------------------------------------------------------------------------------------
# Values.

VALUE_KINDS = ("ties", "distinct", "specials", "neginf", "wide")


def make_values(rng: np.random.Generator, shape, dtype, kind: str) -> np.ndarray:
    """An array of ``shape``/``dtype`` whose values stress one rule.

    - "ties": small integers (-3..3), so most windows hold several equal maxima;
    - "distinct": a permutation of 0..n-1 (shifted for signed ints), no ties at all;
    - "specials" (floats): ties plus NaN, +inf, -inf and -0.0 sprinkled in;
    - "neginf" (floats): mostly -inf, so whole windows are -inf; for ints, the dtype's minimum;
    - "wide": the dtype's full range (floats: normal values of both signs, various exponents).
    """
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    if kind == "ties":
        lo = 0 if dtype.kind == "u" else -3
        v = rng.integers(lo, 4, size=n)
    elif kind == "distinct":
        v = rng.permutation(n)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            if dtype.itemsize <= 2:  # wrap into the dtype's range (repeats only if n > span)
                v = v % (int(info.max) - int(info.min) + 1) + int(info.min)
            elif dtype.kind == "i":
                v = v - n // 2
    elif kind == "specials" and dtype.kind == "f":
        v = rng.integers(-3, 4, size=n).astype(np.float64)
        specials = np.array([np.nan, np.inf, -np.inf, -0.0])
        mask = rng.random(n) < 0.25
        v[mask] = rng.choice(specials, size=int(mask.sum()))
    elif kind == "neginf":
        if dtype.kind == "f":
            v = np.full(n, -np.inf)
            mask = rng.random(n) < 0.15
            v[mask] = rng.integers(-3, 4, size=int(mask.sum()))
        else:
            v = np.full(n, int(np.iinfo(dtype).min))
            mask = rng.random(n) < 0.15
            v[mask] = int(np.iinfo(dtype).min) + rng.integers(0, 3, size=int(mask.sum()))
    else:  # "wide", or "specials" for ints
        if dtype.kind == "f":
            fi = np.finfo(dtype)
            e = rng.uniform(-4, min(np.log10(float(fi.max)) - 1, 30), size=n)
            v = np.sign(rng.random(n) - 0.5) * 10.0**e
        else:
            info = np.iinfo(dtype)
            v = rng.integers(int(info.min), int(info.max), size=n, endpoint=True)
    return np.asarray(v).astype(dtype).reshape(shape)


LAYOUTS = ("contiguous", "channels_last_memory", "strided", "fortran", "reversed")


def with_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """The same logical (N, C, *spatial) array ``x`` with a different memory layout."""
    nd = x.ndim
    if layout == "contiguous":
        return np.ascontiguousarray(x)
    if layout == "channels_last_memory":
        # x = nhwc.transpose(0, 3, 1, 2): channels-first view of channels-last memory.
        perm = (0, *range(2, nd), 1)
        back = (0, nd - 1, *range(1, nd - 1))
        return np.ascontiguousarray(x.transpose(perm)).transpose(back)
    if layout == "strided":
        big = np.zeros(tuple(2 * s for s in x.shape), x.dtype)
        big[tuple(slice(None, None, 2) for _ in x.shape)] = x
        return big[tuple(slice(None, None, 2) for _ in x.shape)]
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "reversed":
        r = np.ascontiguousarray(x[..., ::-1])
        return r[..., ::-1]
    raise AssertionError(layout)


# --------------------------------------------------------------------------------------------
# Valid PyTorch-style arguments.


@st.composite
def torch_args(draw, rank: int, *, dilation: bool = True, max_extra: int = 4,
               kernel_within_input: bool = False):
    """Valid PyTorch-style pooling arguments and a matching spatial size.

    Returns dict(spatial, kernel_size, stride, padding, dilation, ceil_mode); each argument is
    drawn as an int or a per-dim tuple. The spatial size is "effective window - 2*padding +
    extra" (at least 1), so every output dim is at least 1; with ``kernel_within_input``
    (torch's avg_pool3d rule) it is also at least the kernel size.
    """
    k = [draw(st.integers(1, 4)) for _ in range(rank)]
    s = [draw(st.integers(1, 4)) for _ in range(rank)]
    p = [draw(st.integers(0, kk // 2)) for kk in k]
    d = [draw(st.integers(1, 3)) if dilation else 1 for _ in range(rank)]
    spatial = []
    for kk, pp, dd in zip(k, p, d, strict=True):
        e = dd * (kk - 1) + 1
        base = max(1, e - 2 * pp, kk if kernel_within_input else 1)
        spatial.append(base + draw(st.integers(0, max_extra)))

    def as_arg(vals, allow_none=False):
        choice = draw(st.sampled_from(["tuple", "int", "none"] if allow_none else ["tuple", "int"]))
        if choice == "none":
            return None
        if choice == "int" and len(set(vals)) == 1:
            return vals[0]
        return tuple(vals)

    return dict(
        spatial=tuple(spatial),
        kernel_size=as_arg(k),
        stride=as_arg(s, allow_none=True),
        padding=as_arg(p),
        dilation=as_arg(d),
        ceil_mode=draw(st.booleans()),
    )


@st.composite
def keras_args(draw, rank: int, *, dilation: bool = True, max_extra: int = 4):
    """Valid Keras-style arguments and a matching spatial size (no output-size formula needed:
    the size is drawn as 'window - pads + extra')."""
    k = [draw(st.integers(1, 4)) for _ in range(rank)]
    d = [draw(st.integers(1, 3)) if dilation else 1 for _ in range(rank)]
    e = [dd * (kk - 1) + 1 for kk, dd in zip(k, d, strict=True)]
    strides = draw(st.one_of(st.none(), st.tuples(*[st.integers(1, 4)] * rank)))
    kind = draw(st.sampled_from(["valid", "same", "explicit"]))
    if kind == "explicit":
        padding = tuple((draw(st.integers(0, ee - 1)), draw(st.integers(0, ee - 1))) for ee in e)
        base = [max(1, ee - b - a) for ee, (b, a) in zip(e, padding, strict=True)]
    else:
        padding = draw(st.sampled_from([kind, kind.upper()]))
        base = e if kind == "valid" else [1] * rank
    spatial = tuple(b + draw(st.integers(0, max_extra)) for b in base)
    pool = k[0] if len(set(k)) == 1 and draw(st.booleans()) else tuple(k)
    dil = d[0] if len(set(d)) == 1 and draw(st.booleans()) else tuple(d)
    return dict(spatial=spatial, pool_size=pool, strides=strides, padding=padding, dilation=dil)


seeds = st.integers(0, 2**32 - 1)
