"""Window geometry shared by the kernels: which input rows feed an output row.

A (d, h) output row reads up to ``kd*kh`` input rows; each is given as the flat offset of its
first element within a channels-first plane (``(id*H + ih)*W``) or, for channels-last, within a
sample (``((id*H + ih)*W)*C``). Rows come in row-major window order, which is the order the
reductions must see them in.
"""

from numba import njit


@njit(inline="always")
def window_rows(od, oh, geo, lo, hi, H, row_len, rows):
    """Fill ``rows`` with the offsets of the in-bounds input rows of output row (od, oh);
    return how many there are."""
    n = 0
    for jd in range(geo[0, 0]):
        if od < lo[0, jd] or od >= hi[0, jd]:
            continue
        i_d = od * geo[0, 1] - geo[0, 3] + jd * geo[0, 2]
        for jh in range(geo[1, 0]):
            if oh < lo[1, jh] or oh >= hi[1, jh]:
                continue
            i_h = oh * geo[1, 1] - geo[1, 3] + jh * geo[1, 2]
            rows[n] = (i_d * H + i_h) * row_len
            n += 1
    return n


def num_chunks(n_rows: int) -> int:
    """Tasks for n_rows output rows: enough to balance threads, few enough that each task's
    scratch buffers are allocated rarely."""
    return max(1, min(n_rows, 256))


@njit(inline="always")
def row_coords(t, OD, OH):
    """(sample, d, h) of flat output row t. Three divisions: call once per chunk and step with
    next_row (per row, the divisions cost as much as pooling a short row)."""
    return t // (OD * OH), (t // OH) % OD, t % OH


@njit(inline="always")
def next_row(n, od, oh, OD, OH):
    """(sample, d, h) of the output row after (n, od, oh)."""
    oh += 1
    if oh == OH:
        oh = 0
        od += 1
        if od == OD:
            od = 0
            n += 1
    return n, od, oh


@njit(inline="always")
def chunk_bounds(ch, n_chunks, n_rows):
    return ch * n_rows // n_chunks, (ch + 1) * n_rows // n_chunks


# Kernel variants: literal window width/stride (dilation 1) and channels-first (C == 1).
V_ANY = 0
V_ANY_C1 = 1
V_2x2_C1 = 2
V_3x3s2_C1 = 3
V_3x3s1_C1 = 4
V_2x2 = 5
V_3x3s2 = 6
V_2x2s1_C1 = 7  # MaxBlurPool's max pooling
V_2x2s1 = 8
VARIANTS = (V_ANY, V_ANY_C1, V_2x2_C1, V_3x3s2_C1, V_3x3s1_C1, V_2x2, V_3x3s2, V_2x2s1_C1,
            V_2x2s1)


# How a specialisation passes the window's sizes to the row code it calls: as literals (Numba
# then compiles that code for those sizes: loops of known trip count, no integer division) or
# as run-time values; and the channel count as the literal 1 (channels-first planes) or at run
# time. Each kernel factory branches on its mode with ``==`` so that Numba prunes the other
# branches; the literal sizes reach the row code as closure constants, which Numba types as
# literals (passed through ``*args`` they would arrive as plain int64: 2x slower).
SIZES_LITERAL_C1, SIZES_LITERAL, SIZES_RUNTIME_C1, SIZES_RUNTIME = 0, 1, 2, 3
# variant -> (window width, stride, window rows an argmax group takes); dilation is 1
_LITERAL_SIZES = {V_2x2_C1: (2, 2, 2), V_2x2: (2, 2, 2), V_2x2s1_C1: (2, 1, 2),
                  V_2x2s1: (2, 1, 2), V_3x3s2_C1: (3, 2, 3), V_3x3s2: (3, 2, 3),
                  V_3x3s1_C1: (3, 1, 3)}
_C1 = (V_ANY_C1, V_2x2_C1, V_2x2s1_C1, V_3x3s2_C1, V_3x3s1_C1)
# the same table read the other way: (window width, stride, channels-first) -> variant
_BY_SIZES = {(K, S, v in _C1): v for v, (K, S, _) in _LITERAL_SIZES.items()}


def sizes(variant: int, literal=VARIANTS) -> tuple[int, int, int, int]:
    """``(mode, K, S, R)`` of ``variant``'s specialisation: its SIZES_* mode, and with a
    literal mode the window width, stride and rows per group (else 0, 0 and 2 rows). Only
    variants in ``literal`` take literal sizes: a kernel may keep fewer specialisations, each
    one a compilation of its row code."""
    c1 = variant in _C1
    if variant in literal and variant in _LITERAL_SIZES:
        K, S, R = _LITERAL_SIZES[variant]
        return (SIZES_LITERAL_C1 if c1 else SIZES_LITERAL), K, S, R
    return (SIZES_RUNTIME_C1 if c1 else SIZES_RUNTIME), 0, 0, 2


def variant(kw: int, sw: int, dw: int, channels: int, specialise: bool = True) -> int:
    """The specialised kernel for a problem's last spatial dim (window, stride, dilation) and
    channel count. Only float32 work (``specialise``; float16 is computed in float32) takes the
    literal specialisations: each one is a separate compilation per kernel, and the other
    dtypes are rarely speed-critical, so they share the generic kernels."""
    generic = V_ANY_C1 if channels == 1 else V_ANY
    if not specialise or dw != 1:
        return generic
    return _BY_SIZES.get((kw, sw, channels == 1), generic)


@njit(inline="always")
def fill(a, v):
    """a[:] = v as a plain loop: Numba's slice assignment costs tens of nanoseconds a call,
    as much as filling a short row (measured: 7.6 -> 4.7 ms on a row-by-row backward)."""
    for k in range(a.shape[0]):
        a[k] = v


@njit(inline="always")
def copy(dst, src):
    """dst[:] = src for two 1-D arrays of one length, as a plain loop (see fill)."""
    for k in range(dst.shape[0]):
        dst[k] = src[k]
