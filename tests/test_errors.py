"""Bad input: the right exception type (ValueError for a bad value, TypeError for a bad type),
raised before any kernel runs, with a message naming the argument and the value received.
Plus a fuzz test: random garbage arguments either work or raise ValueError/TypeError."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import poolkit
import poolkit.functional as PF

X2 = np.zeros((1, 2, 6, 6), np.float32)  # NCHW for functional
XK = np.zeros((1, 6, 6, 2), np.float32)  # NHWC for the Keras-style ops


def esc(v) -> str:
    return re.escape(str(v))


# --------------------------------------------------------------------------------------------
# Sizes: non-positive, negative/too-large padding, wrong lengths, non-integers.


@pytest.mark.parametrize("fn", [PF.max_pool2d, PF.avg_pool2d])
@pytest.mark.parametrize("arg", ["kernel_size", "stride"])
@pytest.mark.parametrize("bad", [0, -1, (2, 0), (-3, 2)])
def test_functional_non_positive_sizes(fn, arg, bad):
    kw = {"kernel_size": 2, arg: bad}
    with pytest.raises(ValueError, match=rf"{arg}.*{esc(bad if isinstance(bad, tuple) else '')}"):
        fn(X2, **kw)
    with pytest.raises(ValueError, match=rf"{arg}.*(greater than zero|positive)"):
        fn(X2, **kw)


@pytest.mark.parametrize("bad", [0, -2, (1, 0)])
def test_functional_non_positive_dilation(bad):
    with pytest.raises(ValueError, match=r"dilation.*(greater than zero|positive)"):
        PF.max_pool2d(X2, 2, dilation=bad)


@pytest.mark.parametrize("fn", [poolkit.max_pool, poolkit.average_pool])
@pytest.mark.parametrize("arg", ["pool_size", "strides"])
@pytest.mark.parametrize("bad", [0, -1, (2, 0)])
def test_ops_non_positive_sizes(fn, arg, bad):
    kw = {"pool_size": 2, arg: bad}
    with pytest.raises(ValueError, match=rf"{arg}.*(greater than zero|positive)"):
        fn(XK, **kw)


def test_ops_non_positive_dilation():
    with pytest.raises(ValueError, match=r"dilation.*(greater than zero|positive)"):
        poolkit.max_pool(XK, 2, dilation=0)


def test_negative_padding():
    with pytest.raises(ValueError, match=r"padding.*-1"):
        PF.max_pool2d(X2, 2, padding=-1)
    with pytest.raises(ValueError, match=r"padding.*-1"):
        poolkit.max_pool(XK, 2, padding=((0, -1), (0, 0)))


def test_too_large_padding():
    with pytest.raises(ValueError, match=r"padding.*\(2, 2\).*kernel_size.*\(3, 3\)"):
        PF.avg_pool2d(X2, 3, padding=2)
    # torch compares with the raw kernel size even when dilation widens the window
    with pytest.raises(ValueError, match=r"padding.*kernel_size"):
        PF.max_pool2d(X2, 3, padding=2, dilation=2)
    PF.max_pool2d(X2, 2, padding=1, dilation=3)  # accepted, as torch does
    with pytest.raises(ValueError, match=r"padding.*\(3, 0\).*effective window"):
        poolkit.max_pool(XK, 3, padding=((3, 0), (0, 0)))


@pytest.mark.parametrize("arg", ["kernel_size", "stride", "padding", "dilation"])
def test_functional_wrong_tuple_length(arg):
    kw = {"kernel_size": 2, arg: (1, 1, 1)}
    with pytest.raises(ValueError, match=rf"{arg}.*\(1, 1, 1\).*3 values"):
        PF.max_pool2d(X2, **kw)


@pytest.mark.parametrize("arg", ["pool_size", "strides", "dilation"])
def test_ops_wrong_tuple_length(arg):
    kw = {"pool_size": 2, arg: (1, 1, 1)}
    with pytest.raises(ValueError, match=rf"{arg}.*\(1, 1, 1\)"):
        poolkit.max_pool(XK, **kw)
    with pytest.raises(ValueError, match=r"padding.*\(\(0, 0\),\)"):
        poolkit.max_pool(XK, 2, padding=((0, 0),))


@pytest.mark.parametrize("bad", [2.5, "2", 2.0, None, True, (2, 2.5), (2, "2")])
def test_non_integer_sizes(bad):
    for fn, kw in [
        (PF.max_pool2d, {"kernel_size": bad}),
        (PF.avg_pool2d, {"kernel_size": 2, "stride": bad} if bad is not None else None),
        (PF.max_pool2d, {"kernel_size": 2, "padding": bad}),
        (PF.max_pool2d, {"kernel_size": 2, "dilation": bad}),
    ]:
        if kw is None:
            continue
        arg = [k for k, v in kw.items() if v is bad][0]
        with pytest.raises(TypeError, match=rf"{arg}.*{esc(repr(bad))}"):
            fn(X2, **kw)
    for kw in ({"pool_size": bad}, {"pool_size": 2, "dilation": bad}):
        arg = [k for k, v in kw.items() if v is bad][0]
        with pytest.raises(TypeError, match=rf"{arg}.*{esc(repr(bad))}"):
            poolkit.max_pool(XK, **kw)
    if bad is not None:
        with pytest.raises(TypeError, match=rf"strides.*{esc(repr(bad))}"):
            poolkit.average_pool(XK, 2, strides=bad)


@pytest.mark.parametrize("bad", [2.5, ((1, 0.5), (0, 0)), (("1", 0), (0, 0))])
def test_ops_non_integer_padding(bad):
    with pytest.raises(TypeError, match=r"padding"):
        poolkit.max_pool(XK, 2, padding=bad)


# --------------------------------------------------------------------------------------------
# Arrays: rank, zero-size dims, window larger than the padded input.


@pytest.mark.parametrize("ndim", [0, 1, 2, 5, 6])
def test_functional_wrong_rank(ndim):
    x = np.zeros((2,) * ndim, np.float32)
    with pytest.raises(ValueError, match=rf"3-D.*4-D.*{ndim}-D.*{esc(x.shape)}"):
        PF.max_pool2d(x, 1)


@pytest.mark.parametrize("ndim", [0, 1, 2, 6])
def test_ops_wrong_rank(ndim):
    x = np.zeros((2,) * ndim, np.float32)
    with pytest.raises(ValueError, match=rf"{ndim}-D.*{esc(x.shape)}"):
        poolkit.max_pool(x, 1)
    with pytest.raises(ValueError, match=r"input_shape"):
        poolkit.output_shape((2,) * ndim, 1)


@pytest.mark.parametrize("shape", [(1, 0, 4, 4), (1, 2, 0, 4), (1, 2, 4, 0), (0, 4, 4)])
def test_functional_zero_size_dims(shape):
    x = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=rf"{esc(shape)}.*zero-size"):
        PF.max_pool2d(x, 1)
    with pytest.raises(ValueError, match=rf"{esc(shape)}.*zero-size"):
        PF.avg_pool2d(x, 1)


def test_batch_of_zero_is_allowed():
    x = np.zeros((0, 2, 4, 4), np.float32)
    assert PF.max_pool2d(x, 2).shape == (0, 2, 2, 2)
    assert PF.max_pool2d_backward(np.zeros((0, 2, 2, 2), np.float32), x, 2).shape == x.shape
    assert poolkit.max_pool(np.zeros((0, 4, 4, 2)), 2).shape == (0, 2, 2, 2)


@pytest.mark.parametrize("shape", [(1, 0, 4, 2), (1, 4, 4, 0)])
def test_ops_zero_size_dims(shape):
    with pytest.raises(ValueError, match=rf"{esc(shape)}.*zero-size"):
        poolkit.max_pool(np.zeros(shape, np.float32), 1)


def test_window_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"\(6, 6\).*kernel_size=\(7, 7\).*output size"):
        PF.max_pool2d(X2, 7)
    with pytest.raises(ValueError, match=r"\(6, 6\).*dilation=\(4, 4\)"):
        PF.max_pool2d(X2, 3, dilation=4)
    with pytest.raises(ValueError, match=r"\(6, 6\).*pool_size=\(7, 7\)"):
        poolkit.max_pool(XK, 7)
    with pytest.raises(ValueError, match=r"input_shape|\(6, 6\)"):
        poolkit.output_shape((None, 6, 6, 2), 7)


# --------------------------------------------------------------------------------------------
# Dtypes.


@pytest.mark.parametrize(
    "x",
    [
        np.zeros((1, 1, 4, 4), bool),
        np.zeros((1, 1, 4, 4), np.complex64),
        np.zeros((1, 1, 4, 4), object),
        np.zeros((1, 1, 4, 4), "U1"),
        np.zeros((1, 1, 4, 4), "S1"),
        np.zeros((1, 1, 4, 4), "M8[s]"),
        np.zeros((1, 1, 4, 4), [("a", "f4")]),
        np.zeros((1, 1, 4, 4), np.longdouble) if np.dtype(np.longdouble).itemsize > 8 else None,
    ],
    ids=lambda x: "none" if x is None else str(x.dtype),
)
def test_unsupported_dtypes(x):
    if x is None:
        pytest.skip("longdouble is float64 here")
    for fn in (PF.max_pool2d, PF.avg_pool2d):
        with pytest.raises(TypeError, match=rf"input.*{esc(x.dtype)}"):
            fn(x, 2)
    for fn in (poolkit.max_pool, poolkit.average_pool):
        with pytest.raises(TypeError, match=rf"x.*{esc(x.dtype)}"):
            fn(x, 2)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64", "uint64"])
def test_average_pooling_of_integers_is_rejected(dtype):
    x = np.zeros((1, 1, 4, 4), dtype)
    with pytest.raises(TypeError, match=rf"{dtype}.*float"):
        PF.avg_pool2d(x, 2)
    with pytest.raises(TypeError, match=rf"{dtype}.*float"):
        poolkit.average_pool(x, 2)


def test_unconvertible_array_like():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"input.*Tensor.*could not be converted"):
        PF.max_pool1d(torch.ones(1, 1, 4, requires_grad=True), 2)


def test_not_an_array():
    with pytest.raises(TypeError, match=r"input.*NumPy array.*object"):
        PF.max_pool2d(object(), 2)
    with pytest.raises(TypeError, match=r"x.*NumPy array.*str"):
        poolkit.max_pool("abc", 2)


# --------------------------------------------------------------------------------------------
# Divisor, gradients, padding words, data_format.


def test_divisor_override():
    with pytest.raises(ValueError, match=r"divisor_override.*0"):
        PF.avg_pool2d(X2, 2, divisor_override=0)
    with pytest.raises(TypeError, match=r"divisor_override.*2\.5"):
        PF.avg_pool2d(X2, 2, divisor_override=2.5)


def test_grad_output_shape_and_dtype():
    g = np.zeros((1, 2, 3, 3), np.float32)
    PF.max_pool2d_backward(g, X2, 2)  # the right one works
    with pytest.raises(ValueError, match=r"grad_output.*\(1, 2, 3, 4\).*\(1, 2, 3, 3\)"):
        PF.max_pool2d_backward(np.zeros((1, 2, 3, 4), np.float32), X2, 2)
    with pytest.raises(ValueError, match=r"grad_output.*\(2, 3, 3\)"):
        PF.avg_pool2d_backward(np.zeros((2, 3, 3), np.float32), X2, 2)
    with pytest.raises(TypeError, match=r"grad_output.*float64.*float32"):
        PF.max_pool2d_backward(g.astype(np.float64), X2, 2)
    with pytest.raises(TypeError, match=r"grad_output.*list"):
        PF.max_pool2d_backward(g.tolist(), X2, 2)
    gk = np.zeros((1, 3, 3, 2), np.float32)
    poolkit.max_pool_backward(gk, XK, 2)
    with pytest.raises(ValueError, match=r"grad_output.*\(1, 2, 3, 3\)"):
        poolkit.average_pool_backward(np.zeros((1, 2, 3, 3), np.float32), XK, 2)
    with pytest.raises(TypeError, match=r"grad_output.*int32"):
        poolkit.max_pool_backward(gk.astype(np.int32), XK, 2)
    with pytest.raises(TypeError, match=r"backward.*int32"):
        poolkit.max_pool_backward(gk.astype(np.int32), XK.astype(np.int32), 2)


@pytest.mark.parametrize("bad", ["full", "causal", "", "valid ", ("same",)])
def test_bad_padding_words(bad):
    with pytest.raises((ValueError, TypeError), match=rf"padding.*{esc(repr(bad))}"):
        poolkit.max_pool(XK, 2, padding=bad)
    with pytest.raises((ValueError, TypeError), match=r"padding"):
        poolkit.output_shape(XK.shape, 2, padding=bad)


def test_padding_of_wrong_type():
    with pytest.raises(TypeError, match=r"padding.*1\.5"):
        poolkit.max_pool(XK, 2, padding=1.5)
    with pytest.raises(TypeError, match=r"padding.*"):
        PF.max_pool2d(X2, 2, padding="same")


@pytest.mark.parametrize("bad", ["NHWC", "channels-last", "", "channel_last"])
def test_bad_data_format(bad):
    with pytest.raises(ValueError, match=rf"data_format.*{esc(repr(bad))}"):
        poolkit.max_pool(XK, 2, data_format=bad)
    with pytest.raises(ValueError, match=rf"data_format.*{esc(repr(bad))}"):
        poolkit.output_shape(XK.shape, 2, data_format=bad)
    with pytest.raises(TypeError, match=r"data_format.*None"):
        poolkit.average_pool(XK, 2, data_format=None)


# --------------------------------------------------------------------------------------------
# Odd but legal arrays are accepted and pooled correctly.


def test_read_only_and_byte_swapped_inputs():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    expected = np.array([[[[5, 7], [13, 15]]]], np.float32)
    ro = x.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(PF.max_pool2d(ro, 2), expected)
    swapped = x.astype(x.dtype.newbyteorder(">"))
    np.testing.assert_array_equal(PF.max_pool2d(swapped, 2), expected)
    np.testing.assert_array_equal(PF.avg_pool2d(swapped, 2), expected - 2.5)
    np.testing.assert_array_equal(
        PF.max_pool2d_backward(np.ones((1, 1, 2, 2), swapped.dtype), swapped, 2).sum(), 4)


def test_huge_sizes_are_rejected_not_overflowed():
    x = np.ones((1, 1, 5), np.float32)
    for kw in ({"stride": 2**64}, {"padding": 2**70}, {"dilation": 2**65}):
        with pytest.raises(ValueError, match=r"stride|padding|dilation"):
            PF.max_pool1d(x, 1, **kw)
    with pytest.raises(ValueError, match=r"strides"):
        poolkit.max_pool(np.ones((1, 5, 1)), 1, strides=2**64)


# --------------------------------------------------------------------------------------------
# Fuzz: garbage arguments either work or raise ValueError/TypeError, never anything else.

garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 8),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=3),
    st.sampled_from(["same", "valid", "SAME", "channels_first", "channels_last"]),
    st.tuples(st.integers(-2, 5)),
    st.tuples(st.integers(-2, 5), st.integers(-2, 5)),
    st.tuples(st.integers(-2, 5), st.integers(-2, 5), st.integers(-2, 5)),
    st.tuples(st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
              st.tuples(st.integers(-1, 3), st.integers(-1, 3))),
    st.lists(st.one_of(st.integers(-1, 4), st.floats(), st.text(max_size=1)), max_size=3),
    st.just(np.int64(2)),
    st.just(np.float32(2)),
    st.just(object()),
)

arrays = st.sampled_from([
    np.zeros((1, 2, 5, 5), np.float32),
    np.zeros((5, 5, 2), np.float64),
    np.zeros((0, 1, 3, 3), np.float32),
    np.zeros((1, 1, 4), np.int8),
    np.zeros((2, 3, 3, 3, 2), np.float16),
    np.zeros((1, 1, 1, 1, 1, 1), np.float32),
    np.zeros((1, 4, 4, 1), bool),
    np.zeros(()),
    np.zeros((3, 0, 3), np.float32),
    np.ones((1, 3, 3, 1), np.float64)[:, ::-1],
    [[[1.0, 2.0, 3.0]]],
    [[[1.0], [2.0, 3.0]]],
    "abc",
    None,
    3.0,
])

FUNCTIONAL = [getattr(PF, n) for n in PF.__all__]
OPS = [poolkit.max_pool, poolkit.average_pool, poolkit.max_pool_backward,
       poolkit.average_pool_backward]


@settings(max_examples=max(settings().max_examples, 300))
@given(fn=st.sampled_from(FUNCTIONAL + OPS + [poolkit.output_shape]), x=arrays,
       args=st.lists(garbage, min_size=1, max_size=6), data=st.data())
def test_fuzz_only_value_or_type_errors(fn, x, args, data):
    if fn is poolkit.output_shape:
        x = getattr(x, "shape", x)
    call = [x, *args]
    if fn.__name__.endswith("_backward"):
        g = data.draw(st.sampled_from([np.zeros((1, 2, 2, 2), np.float32), x, None, 1.0]))
        call = [g, *call]
    note(f"{fn.__name__}({call!r})")
    try:
        fn(*call)
    except (ValueError, TypeError):
        pass


# Found by the fuzz harness: arguments that ask for more memory than there is raised
# MemoryError (after trying to allocate tens of GiB) instead of being refused.
@pytest.mark.parametrize("call", [
    lambda x: __import__("poolkit").functional.adaptive_avg_pool1d(x, 2**31 - 1),
    lambda x: __import__("poolkit").adaptive_max_pool(x, 2**31 - 1, data_format="channels_first"),
    lambda x: __import__("poolkit").engine.unpool(x, np.zeros(x.shape, np.int64), (2**31 - 1,)),
])
def test_outputs_larger_than_memory_are_refused(call):
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="GiB"):
        call(x)


@pytest.mark.parametrize("out_size", [(2**31,), (-1,), (2.0,), (True,), 5])
def test_engine_unpool_checks_out_size(out_size):
    from poolkit import engine

    x = np.zeros((1, 1, 4), np.float32)
    with pytest.raises(ValueError, match="out_size must be"):
        engine.unpool(x, np.zeros(x.shape, np.int64), out_size)


# Found by the fuzz harness: a hand-built spec whose output needs windows that start past the
# padded input (no PyTorch or Keras rule gives one) averaged over zero cells: NaN.
@pytest.mark.parametrize("reduction", ["avg", "max", "lp"])
def test_engine_refuses_windows_past_the_padded_input(reduction):
    from poolkit import engine
    from poolkit.shapes import PoolSpec

    x = np.ones((1, 1, 4), np.float32)
    bad = PoolSpec((4,), (2,), (2,), (1,), (0,), (1,), (4,), count_pad=True)
    with pytest.raises(ValueError, match="past the padded input"):
        engine.pool(x, bad, reduction)
    ok = PoolSpec((4,), (2,), (2,), (1,), (0,), (1,), (3,), count_pad=True)  # ceil-mode-like
    assert np.isfinite(engine.pool(x, ok, "avg")).all()


# Found by the fuzz harness (a segfault): the engine checked a hand-built fractional spec's
# starts only in the dims it has; the kernels, which lift every problem to 3-D, also read the
# start of each lifted dim, and one of 2**40 read far outside the input.
@pytest.mark.parametrize("rank", [1, 2])
def test_engine_checks_the_fractional_starts_of_lifted_dims(rank):
    from poolkit import engine
    from poolkit.shapes import FractionalSpec

    x = np.ones((1, 3) + (6,) * rank, np.float32)
    starts = np.zeros((3, 3, 5), np.int64)
    starts[:, 3 - rank :, :5] = [2, 2, 1, 0, 3]
    spec = FractionalSpec((6,) * rank, (5,) * rank, (2,) * rank, starts)
    assert engine.pool(x, spec, "max").shape == (1, 3) + (5,) * rank
    starts[0, 0, 0] = 2**40
    with pytest.raises(ValueError, match="leading dims"):
        engine.pool(x, FractionalSpec((6,) * rank, (5,) * rank, (2,) * rank, starts), "max")


# Found by the fuzz harness: a hand-built spec with a negative divisor gave LP pooling NaN for
# every input ((sum |x|^p / divisor)^(1/p)); and an absurd size made the memory check's own
# message overflow (OverflowError formatting n / 2**30).
def test_engine_refuses_a_negative_lp_divisor_and_words_absurd_sizes():
    from poolkit import engine
    from poolkit.shapes import PoolSpec

    x = np.ones((1, 1, 4), np.float32)
    spec = PoolSpec((4,), (2,), (2,), (1,), (0,), (0,), (2,), divisor=-1)
    with pytest.raises(ValueError, match="divisor must be > 0"):
        engine.pool(x, spec, "lp", p=2.0)
    assert np.isfinite(engine.pool(x, spec, "avg")).all()  # torch's divisor_override allows it
    with pytest.raises(ValueError, match=r"about 2\*\*1200 bytes"):
        engine.check_memory(2**1200, "a weight", "layer")
