"""What poolkit.torch hands to torch, and the ways torch code reaches the ops: never an error for
something torch itself runs, torch's own error for what torch rejects, and the same results
under tracing, transforms and dispatch modes."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as TF
from torch._subclasses.fake_tensor import FakeTensorMode

import poolkit.torch as pt
import poolkit.torch.functional as PTF
from poolkit.torch.ops import FALLBACKS, OPS

# torch's forward-mode AD and jit.trace use torch.jit internally, which warns in 2.13.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.*deprecated:DeprecationWarning")


def outcome(fn, *args, **kwargs):
    """("ok", result) or ("error", exception type, message). torch's argument parser says
    "(position 2)" when an argument came positionally; poolkit hands torch its arguments
    positionally whichever way the caller passed them, so that part is left out."""
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as e:  # noqa: BLE001 - comparing whatever torch raises
        return ("error", type(e), re.sub(r" \(position \d+\)", "", str(e)))


def assert_same_outcome(name, x, *args, **kwargs):
    ours = outcome(getattr(PTF, name), x, *args, **kwargs)
    ref = outcome(getattr(TF, name), x, *args, **kwargs)
    assert ours[0] == ref[0], (ours, ref)
    if ref[0] == "error":
        assert ours[1:] == ref[1:]
    else:
        a, b = ours[1], ref[1]
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                        strict=True):
            assert u.shape == v.shape and u.dtype == v.dtype and u.device == v.device
            if u.device.type != "meta":
                torch.testing.assert_close(u, v, rtol=0, atol=0, equal_nan=True)


def counted(op, reason):
    return FALLBACKS[op, reason]


# --------------------------------------------------------------------------------------------
# Tensors poolkit does not compute.


def test_meta_tensors_fall_back():
    x = torch.empty(2, 3, 9, 9, device="meta")
    before = counted("max_pool2d", "device")
    assert_same_outcome("max_pool2d", x, 3, 2, 1, return_indices=True)
    assert_same_outcome("avg_pool2d", x, 2)
    assert counted("max_pool2d", "device") == before + 1


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_runs_its_torch_implementation_on_meta_tensors(name):
    """Other devices get the torch implementation: same shapes as poolkit's on the CPU."""
    from test_torch_ops import sample

    x, args = sample(name, dtype=torch.float32)
    names = OPS[name].names
    kw = dict(zip(names, args, strict=True))
    move = {n: a.to("meta") if isinstance(a, torch.Tensor) else a for n, a in kw.items()}
    before = counted(name, "device")
    on_meta = getattr(PTF, name)(x.to("meta"), **move)
    on_cpu = getattr(PTF, name)(x, **kw)
    assert on_meta.device.type == "meta" and on_meta.shape == on_cpu.shape
    assert on_meta.dtype == on_cpu.dtype
    assert counted(name, "device") == before + 1


def test_integer_average_pooling_is_torchs():
    x = torch.arange(2 * 16, dtype=torch.int64).reshape(2, 1, 16)
    before = counted("avg_pool1d", "dtype")
    assert_same_outcome("avg_pool1d", x, 3)  # torch truncates; poolkit leaves it to torch
    assert counted("avg_pool1d", "dtype") == before + 1


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint16, torch.complex64])
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_dtypes_torch_rejects_get_torchs_error(name, dtype):
    x = torch.ones(1, 2, 4, 4).to(dtype)
    assert_same_outcome(name, x, 2)


def test_sparse_tensors_fall_back():
    x = torch.randn(1, 2, 4, 4).to_sparse()
    assert_same_outcome("max_pool2d", x, 2)


# --------------------------------------------------------------------------------------------
# Arguments: whatever torch accepts runs; whatever it rejects raises torch's error.

ARGUMENTS = [
    # accepted by torch
    dict(kernel_size=[3], stride=(), padding=[1]),
    dict(kernel_size=torch.Size([2, 3]), stride=torch.Size([1, 2])),
    dict(kernel_size=np.int64(2), stride=np.int32(1)),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    # rejected by torch
    dict(kernel_size=3, padding=2),
    dict(kernel_size=0),
    dict(kernel_size=2, stride=0),
    dict(kernel_size=2, padding=-1),
    dict(kernel_size=20),
    dict(kernel_size=(2, 2, 2)),
    dict(kernel_size=2.5),
    dict(kernel_size="2"),
]


@pytest.mark.parametrize("kw", ARGUMENTS, ids=repr)
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_arguments_behave_as_in_torch(name, kw):
    torch.manual_seed(0)
    assert_same_outcome(name, torch.randn(2, 3, 7, 7), **kw)


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_integer_ceil_mode_is_rejected_as_in_torch(name):
    """torch wants a bool ceil_mode; poolkit rejects an int too (it used to take 1 as True)."""
    x = torch.randn(1, 2, 7, 7)
    assert outcome(getattr(TF, name), x, 2, ceil_mode=1)[0] == "error"
    assert outcome(getattr(PTF, name), x, 2, ceil_mode=1)[0] == "error"


@pytest.mark.parametrize("shape", [(7, 7), (1, 2, 3, 7, 7), (0, 3, 7, 7), (2, 0, 7, 7),
                                   (2, 3, 0, 7)])
def test_input_shapes_behave_as_in_torch(shape):
    x = torch.zeros(shape)
    assert_same_outcome("max_pool2d", x, 2)
    assert_same_outcome("avg_pool2d", x, 2)


@pytest.mark.parametrize("name", ["blur_pool2d", "aps_pool2d"])
@pytest.mark.parametrize("shape", [(7,), (1, 2, 3, 7, 7), (2, 0, 7, 7), (2, 3, 0, 7)])
def test_own_ops_check_the_input_shape_on_the_fallback_path_too(name, shape):
    """Found by the fuzz harness: on the torch path (a bool tensor, the meta device) poolkit's
    own ops skipped the input's shape check and raised torch's IndexError."""
    for x in (torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, device="meta")):
        with pytest.raises(ValueError, match="must be 3-D|zero-size"):
            getattr(PTF, name)(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.bool])
def test_own_ops_keep_poolkits_argument_errors(dtype):
    """Found by the fuzz harness: min_pool1d(x, 10**18) fell back to torch's max_pool1d,
    which loops for ever on that kernel size; an argument poolkit's own op rejects now raises
    poolkit's error on every path (its kernels, or the torch reference for other dtypes)."""
    x = torch.zeros(2, 3, 4, dtype=dtype)
    with pytest.raises(ValueError, match="kernel_size"):
        PTF.min_pool1d(x, 10**18, ceil_mode=True)
    with pytest.raises(ValueError, match="pad"):
        PTF.min_pool1d(x, 2, padding=2)


def test_fractional_without_size_or_ratio_is_torchs_value_error_for_any_dtype():
    # Found by the fuzz harness: for a bool input poolkit drew the default samples first and
    # raised torch.rand's NotImplementedError; torch asks for a size or ratio first.
    x = torch.zeros(2, 1, 3, 5, 5, dtype=torch.bool)
    assert_same_outcome("fractional_max_pool3d", x, (2, 3, 2))
    with pytest.raises(ValueError):
        PTF.fractional_max_pool3d(x, (2, 3, 2))


@pytest.mark.parametrize("name,args", [
    ("max_pool1d", dict(kernel_size=(2**63 - 1,), padding=(1,))),  # torch: a segfault
    ("fractional_max_pool3d", dict(kernel_size=-2**63, output_size=(1, 4, 2))),  # torch: hangs
    ("max_unpool1d", dict(kernel_size=2**31, stride=3)),
    # each size in range, the dilated window not: torch 2.13 returns a wrong shape, and its
    # backward then aborts in free() (heap corruption)
    ("max_pool3d", dict(kernel_size=2**31 - 1, stride=1, padding=(0, 1, 1), dilation=2,
                        ceil_mode=True, return_indices=True)),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int32])
def test_sizes_beyond_int32_are_poolkits_error_and_never_reach_torch(monkeypatch, name, args,
                                                                     dtype):
    """Found by the fuzz harness: poolkit's checks refused these sizes, so the call went to
    torch, whose CPU kernels crash or hang on them (checked by hand: both in unpatched torch
    2.13). Whatever the dtype, poolkit's error now stands, and torch is never called."""
    import poolkit.torch.ops as ops

    def no_torch(*a, **k):
        raise AssertionError("handed to torch")

    monkeypatch.setattr(ops, "_torch", no_torch)
    x = torch.zeros(1, 2, 5, 4, 5) if name.endswith("3d") else torch.zeros(1, 8)
    extra = {"indices": torch.zeros(1, 8, dtype=torch.int64)} if "unpool" in name else {}
    with pytest.raises(ValueError, match="at most 2\\*\\*31 - 1"):
        getattr(PTF, name)(x.to(dtype), **extra, **args)


@pytest.mark.parametrize("name,dtype", [  # dtypes poolkit hands to torch
    ("adaptive_avg_pool1d", torch.complex64), ("adaptive_avg_pool1d", torch.uint8),
    ("adaptive_avg_pool1d", torch.bool), ("adaptive_max_pool1d", torch.complex64),
    ("adaptive_max_pool1d", torch.bool)])
def test_fallbacks_get_the_callers_arguments_not_poolkits_resolved_ones(name, dtype):
    """Found by the fuzz harness: poolkit resolved output_size=(None,) (which its 1-D ops
    accept) before handing a dtype it does not compute to torch, so torch raised a
    RuntimeError about the input where it raises a TypeError about output_size."""
    x = torch.zeros(2, 3, 6, dtype=dtype)
    ours, ref = outcome(getattr(PTF, name), x, (None,)), outcome(getattr(TF, name), x, (None,))
    # (the message differs with how the argument reaches torch's parser: keyword or position)
    assert ours[:2] == ref[:2] == ("error", TypeError), (ours, ref)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.bool])
def test_fractional_of_a_dtype_poolkit_does_not_compute_draws_nothing_itself(dtype):
    """Found by the fuzz harness: poolkit drew the default samples (torch.rand fails for
    integer dtypes) where torch first refuses a bare float output_ratio."""
    x = torch.zeros(2, 1, 8, 2, dtype=dtype)
    assert_same_outcome("fractional_max_pool2d", x, (1, 3), output_ratio=0.7)
    assert_same_outcome("fractional_max_pool2d", x, (1, 1), output_size=(4, 2))


@pytest.mark.parametrize("args", [((2,), 3), (3, 3)])
@pytest.mark.parametrize("dtype", [torch.bool, torch.complex64])
def test_lp_pool_on_the_torch_path_checks_input_and_output_size_as_poolkit(args, dtype):
    """Found by the fuzz harness: on the torch path (dtypes poolkit does not compute) LP
    pooling raised whatever torch's avg_pool met first (RuntimeError, IndexError)."""
    for shape in [(2, 3, 0, 1), (6, 6), (2, 7, 1)]:  # empty, 2-D, an output too small
        with pytest.raises(ValueError):
            PTF.lp_pool2d(torch.zeros(shape, dtype=dtype), 2, *args)


@pytest.mark.parametrize("dtype", [torch.float16, torch.int32])
def test_lp_pool_inf_checks_the_kernel_size_too(dtype):
    # Found by the fuzz harness (a hang): lp_pool1d(x, inf, 2**62) went to torch's
    # max_pool1d unchecked, which loops for ever on such a kernel.
    with pytest.raises(ValueError, match="kernel_size"):
        PTF.lp_pool1d(torch.ones(1, 2, 5, dtype=dtype), math.inf, 2**62, 2, True)


@pytest.mark.parametrize("p", [0, -1.5])
def test_lp_pool_with_p_at_most_zero_is_poolkits_error(p):
    """Where torch divides by zero (pytorch#187743), poolkit says why, on every device."""
    for device in ("cpu", "meta"):
        with pytest.raises(ValueError, match="norm_type must be > 0"):
            PTF.lp_pool2d(torch.ones(1, 1, 4, 4, device=device), p, 2)


@pytest.mark.parametrize("name,args", [("max_pool2d", (2,)), ("adaptive_avg_pool2d", ((2, None),)),
                                       ("fractional_max_pool2d", (2, 2))])
def test_not_a_tensor_is_torchs_error(name, args):
    assert_same_outcome(name, np.zeros((1, 1, 4, 4), np.float32), *args)


# --------------------------------------------------------------------------------------------
# Transforms, tracing and modes.


def test_vmap_and_func_grad_equal_torchs():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 2, 6, 6, dtype=torch.float64)
    ours = torch.func.vmap(lambda t: PTF.max_pool2d(t, 3, 2, 1))(x)
    ref = torch.func.vmap(lambda t: TF.max_pool2d(t, 3, 2, 1))(x)
    assert torch.equal(ours, ref)
    g_ours = torch.func.grad(lambda t: PTF.avg_pool2d(t, 2).square().sum())(x[0])
    g_ref = torch.func.grad(lambda t: TF.avg_pool2d(t, 2).square().sum())(x[0])
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=1e-12)


def test_forward_mode_ad_equals_torchs():
    torch.manual_seed(0)
    x, v = torch.randn(2, 2, 6, 6, dtype=torch.float64), torch.randn(2, 2, 6, 6,
                                                                   dtype=torch.float64)
    tangents = []
    for fn in (PTF.max_pool2d, TF.max_pool2d):
        with fwAD.dual_level():
            y = fn(fwAD.make_dual(x, v), 3, 2, 1)
            tangents.append(fwAD.unpack_dual(y).tangent)
    assert tangents[0] is not None and torch.equal(tangents[0], tangents[1])


def test_fake_tensor_mode_gives_torchs_metadata():
    with FakeTensorMode():
        for x in (torch.empty(2, 3, 9, 9), torch.empty(2, 3, 9, 9).to(
                memory_format=torch.channels_last)):
            ours = PTF.max_pool2d(x, 3, 2, 1, return_indices=True)
            ref = TF.max_pool2d(x, 3, 2, 1, return_indices=True)
            for u, v in zip(ours, ref, strict=True):
                assert u.shape == v.shape and u.stride() == v.stride() and u.dtype == v.dtype


def _small_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, padding=1), torch.nn.MaxPool2d(3, 2, 1), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(),
    ).double()


def test_fx_symbolic_trace_and_jit_trace_run_poolkit():
    torch.manual_seed(0)
    model = _small_model()
    x = torch.randn(2, 2, 10, 10, dtype=torch.float64)
    ref = model(x)
    pt.patch(model)
    gm = torch.fx.symbolic_trace(model)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert PTF.max_pool2d in targets and PTF.avg_pool2d in targets
    assert torch.equal(gm(x), ref)
    traced = torch.jit.trace(model, (x,), check_trace=False)
    assert "poolkit::max_pool2d" in str(traced.inlined_graph)
    assert torch.equal(traced(x), ref)


def test_torch_function_mode_sees_the_call():
    """Also with arguments whose positions differ from the table's (fractional's samples)."""
    seen = []

    class Record(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.randn(1, 1, 4, 4)
    with Record():
        y = PTF.max_pool2d(x, 2)
        u = torch.rand(1, 1, 2)
        f = PTF.fractional_max_pool2d(x, 2, 3, None, True, u)
    assert PTF.max_pool2d in seen and PTF.fractional_max_pool2d in seen
    assert torch.equal(y, TF.max_pool2d(x, 2))
    ref = TF.fractional_max_pool2d(x, 2, 3, None, True, u)
    assert torch.equal(f[0], ref[0]) and torch.equal(f[1], ref[1])


def test_parameters_and_inference_mode():
    p = torch.nn.Parameter(torch.randn(1, 2, 6, 6))
    y = PTF.max_pool2d(p, 2)
    y.sum().backward()
    ref = TF.max_pool2d(p.detach().requires_grad_(), 2)
    assert torch.equal(y, ref) and p.grad is not None
    with torch.inference_mode():
        assert torch.equal(PTF.avg_pool2d(p, 2), TF.avg_pool2d(p, 2))


# Found by the fuzz harness: LP pooling of a bool tensor, which torch runs, raised
# NotImplementedError in poolkit's torch reference (torch has no abs of bool). It now runs, in
@pytest.mark.parametrize("fn", ["lp_pool1d", "lp_pool2d"])
def test_lp_pool_inf_of_bool_is_any(fn):
    """Found by the fuzz harness: torch has no bool max pooling, so p = inf of a bool input
    raised NotImplementedError; max |x| of bools is their any, a bool."""
    x = torch.rand((2, 3, 6, 6)[: 4 if fn == "lp_pool2d" else 3]) > 0.7
    got = getattr(PTF, fn)(x, math.inf, 2)
    assert got.dtype == torch.bool
    want = getattr(TF, fn.replace("lp", "max"))(x.float(), 2) > 0
    assert torch.equal(got, want)


# torch's result dtype, by poolkit's rule (torch's own truncates: x.pow(p) of bool is int64,
# whose average pooling rounds down, so it returns zeros).
@pytest.mark.parametrize("fn", ["lp_pool1d", "lp_pool2d"])
def test_lp_pool_of_bool_runs_by_poolkits_rule(fn):
    x = torch.rand((2, 3, 6, 6)[: 4 if fn == "lp_pool2d" else 3]) > 0.5
    got = getattr(PTF, fn)(x, 2, 2)
    assert got.dtype == getattr(TF, fn)(x, 2, 2).dtype
    torch.testing.assert_close(got, getattr(PTF, fn)(x.float(), 2, 2))
