"""The explorer's API for the whole pooling family (min, LP, BlurPool, MaxBlurPool, adaptive
polyphase sampling, adaptive, global and fractional pooling), through Starlette's test client.

Outputs are checked against torch 2.13 where torch has the op (min as -max_pool2d(-x), LP for
the inputs torch gets right, adaptive, fractional with the same ``_random_samples``), against
the antialiased-cnns package for BlurPool and MaxBlurPool, against NumPy references written here
(APS, LP on negative input, global pooling) and against poolkit's own call. Windows are checked
against the formulas written here and by pooling one-hot images through the library; every new
parameter's bounds give 400 naming the field; the shift panel's rows against the library and a
reference of its change measure.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
torch = pytest.importorskip("torch")
from starlette.testclient import TestClient  # noqa: E402

import poolkit  # noqa: E402
from poolkit import functional  # noqa: E402
from poolkit.explore import create_app  # noqa: E402
from poolkit.explore.model import train_demo_model  # noqa: E402

BASE = "http://127.0.0.1"
BINOMIAL = {1: [1], 2: [1, 1], 3: [1, 2, 1], 4: [1, 3, 3, 1], 5: [1, 4, 6, 4, 1],
            6: [1, 5, 10, 10, 5, 1], 7: [1, 6, 15, 20, 15, 6, 1]}


@pytest.fixture(scope="module")
def model():
    return train_demo_model(300, 1)


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model=model), base_url=BASE) as c:
        yield c


def pool(client, **body):
    r = client.post("/api/pool", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def out_array(res):
    return np.array([[np.nan if v is None else v for v in row] for row in res["output"]])


def digit(i=0):
    from poolkit.lab.figures import dataset_digit

    return dataset_digit(i)[0].astype(np.float64)


def t4(x):
    return torch.from_numpy(np.ascontiguousarray(x))[None, None]


def grids():
    rng = np.random.default_rng(0)
    return [rng.normal(size=(7, 9)), rng.integers(0, 4, (8, 6)).astype(float),
            digit(3)[4:24, 3:25]]


def read_cells(res, x_shape) -> np.ndarray:
    """cells[i, j, r, c]: how many of output (i, j)'s window positions take input (r, c)."""
    h, w = x_shape
    m = np.zeros((*res["shape"], h, w), int)
    for i, rows in enumerate(res["windows"]["src_rows"]):
        for j, cols in enumerate(res["windows"]["src_cols"]):
            for r, c in itertools.product(rows, cols):
                if r is not None and c is not None:
                    m[i, j, r, c] += 1
    return m


def one_hots(shape) -> np.ndarray:
    """Every one-hot image of ``shape``, as a batch (h*w, h, w)."""
    return np.eye(math.prod(shape)).reshape(-1, *shape)


def probe(shape, op) -> np.ndarray:
    """probe[i, j, r, c] = op(one-hot at (r, c))[i, j] for a batched op (B, h, w) -> (B, o, p)."""
    outs = op(one_hots(shape))
    return np.moveaxis(outs, 0, -1).reshape(*outs.shape[1:], *shape)


def nchw(op):
    return lambda e: op(e[:, None])[:, 0]


def nhwc(op):
    return lambda e: op(e[..., None])[..., 0]


# --------------------------------------------------------------------------------------------
# Min pooling.


@pytest.mark.parametrize("case", [
    dict(pool_size=[2, 2], strides=None, padding=[0, 0], ceil_mode=False, dilation=[1, 1]),
    dict(pool_size=[3, 3], strides=[2, 2], padding=[1, 1], ceil_mode=True, dilation=[1, 1]),
    dict(pool_size=[3, 2], strides=[2, 1], padding=[1, 0], ceil_mode=False, dilation=[2, 1]),
])
def test_torch_min_is_minus_torch_max_of_minus_x(client, case):
    for x in grids():
        want, idx = torch.nn.functional.max_pool2d(
            -t4(x), case["pool_size"], case["strides"] or case["pool_size"], case["padding"],
            case["dilation"], case["ceil_mode"], return_indices=True)
        res = pool(client, x=x.tolist(), kind="min", convention="torch", **case)
        np.testing.assert_array_equal(out_array(res), -want[0, 0].numpy())
        w = x.shape[1]
        got = np.array([[r * w + c for r, c in row] for row in res["argmax"]])
        np.testing.assert_array_equal(got, idx[0, 0].numpy())  # same winner, same tie rule
        assert res["reduce"] == "min" and res["function"] == "poolkit.functional.min_pool2d"


@pytest.mark.parametrize("padding", ["valid", "same", [[1, 0], [0, 1]]])
def test_keras_min_is_the_window_minimum_and_its_first_position(client, padding):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (8, 9)).astype(float)  # ties
    res = pool(client, x=x.tolist(), kind="min", convention="keras", pool_size=[3, 2],
               strides=[2, 2], padding=padding, dilation=[1, 1])
    pad = padding if isinstance(padding, str) else tuple(map(tuple, padding))
    np.testing.assert_array_equal(out_array(res), poolkit.min_pool(
        x[None, :, :, None], (3, 2), (2, 2), pad)[0, :, :, 0])
    cells = read_cells(res, x.shape) > 0
    np.testing.assert_array_equal(cells, probe(x.shape, nhwc(
        lambda e: -poolkit.min_pool(-e, (3, 2), (2, 2), pad))) != 0)
    for i, j in itertools.product(*map(range, res["shape"])):
        first = min(zip(*np.nonzero(cells[i, j] & (x == x[cells[i, j]].min())), strict=True))
        assert tuple(res["argmax"][i][j]) == first


# --------------------------------------------------------------------------------------------
# LP pooling.


def lp_ref(x, windows, p):
    """(sum over each window of |x|^p)^(1/p), or max |x| for p = inf."""
    out = np.zeros(windows.shape[:2])
    for i, j in itertools.product(*map(range, out.shape)):
        v = np.abs(x[windows[i, j] > 0])
        out[i, j] = v.max() if p == "inf" else (v**p).sum() ** (1 / p)
    return out


@pytest.mark.parametrize("p", [1, 2, 3, 0.5, "inf"])
@pytest.mark.parametrize("padding", ["valid", "same"])
def test_keras_lp_is_the_p_norm_of_the_window(client, p, padding):
    x = np.random.default_rng(2).normal(size=(7, 8))  # negative values: the norm takes |x|
    res = pool(client, x=x.tolist(), kind="lp", convention="keras", p=p, pool_size=[3, 3],
               strides=[2, 2], padding=padding)
    pn = math.inf if p == "inf" else p
    np.testing.assert_array_equal(out_array(res), poolkit.lp_pool(
        x[None, :, :, None], pn, 3, 2, padding)[0, :, :, 0])
    windows = read_cells(res, x.shape)
    np.testing.assert_array_equal(windows > 0, probe(x.shape, nhwc(
        lambda e: poolkit.lp_pool(e, 1, 3, 2, padding))) != 0)
    np.testing.assert_allclose(out_array(res), lp_ref(x, windows, p), rtol=1e-12)
    assert res["lp"]["p"] == p
    assert res["lp"]["reads"] == windows.sum(axis=(2, 3)).tolist()
    if p != "inf":
        assert {v for row in res["lp"]["scale"] for v in row} == {1.0}


@pytest.mark.parametrize("p", [1, 2, 4, 1.5])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_torch_lp_equals_torch_where_torch_is_right(client, p, ceil_mode):
    # torch is right for non-negative input (and even p on any input): pytorch#184037.
    x = np.random.default_rng(3).random((8, 10))
    res = pool(client, x=x.tolist(), kind="lp", convention="torch", p=p, pool_size=[3, 3],
               strides=[2, 2], ceil_mode=ceil_mode)
    want = torch.nn.functional.lp_pool2d(t4(x), p, 3, 2, ceil_mode)[0, 0].numpy()
    np.testing.assert_allclose(out_array(res), want, rtol=1e-10)
    # The ceil_mode scale, from the library on ones: kernel cells / cells read (PyTorch's).
    reads = np.array(res["lp"]["reads"])
    np.testing.assert_allclose(np.array(res["lp"]["scale"]), 9 / reads, rtol=1e-9)
    assert (reads < 9).any() == ceil_mode


def test_torch_lp_on_negative_input_is_the_norm_not_torchs_nan(client):
    x = np.random.default_rng(4).normal(size=(6, 6))
    res = pool(client, x=x.tolist(), kind="lp", convention="torch", p=3, pool_size=[2, 2])
    assert np.isnan(torch.nn.functional.lp_pool2d(t4(x), 3, 2)[0, 0].numpy()).any()
    np.testing.assert_allclose(out_array(res), lp_ref(x, read_cells(res, x.shape), 3),
                               rtol=1e-12)


# --------------------------------------------------------------------------------------------
# BlurPool and MaxBlurPool.


def blur_oracle(filt, stride, pad_type):
    acnn = pytest.importorskip("antialiased_cnns")
    return acnn.BlurPool(1, pad_type=pad_type, filt_size=filt, stride=stride).double()


@pytest.mark.parametrize("filt,stride,pad_type", [
    (4, [2, 2], "reflect"), (3, [2, 2], "repl"), (5, [3, 2], "zero"), (1, [2, 2], "reflect"),
    (7, [1, 1], "zero"), (2, [2, 3], "reflect"), (6, [2, 2], "repl"),
])
@pytest.mark.parametrize("convention", ["keras", "torch"])
def test_blur_equals_antialiased_cnns_and_its_weighted_windows(client, filt, stride, pad_type,
                                                                convention):
    for x in grids():
        if pad_type == "reflect" and min(x.shape) <= filt // 2:
            continue
        res = pool(client, x=x.tolist(), kind="blur", convention=convention, filt_size=filt,
                   strides=stride, pad_type=pad_type)
        if stride[0] == stride[1]:
            want = blur_oracle(filt, stride[0], pad_type)(t4(x))[0, 0].detach().numpy()
            np.testing.assert_allclose(out_array(res), want, rtol=1e-12, atol=1e-13)
        lib = functional.blur_pool2d(x[None, None], filt, stride, pad_type)[0, 0]
        np.testing.assert_array_equal(out_array(res), lib)
    # The window of each output, with its weights: a one-hot input at (r, c) shows output (i, j)
    # the sum of the weights of the positions that take (r, c) (reflection can take it twice).
    x = np.random.default_rng(5).random((6, 7))
    res = pool(client, x=x.tolist(), kind="blur", convention=convention, filt_size=filt,
               strides=stride, pad_type=pad_type)
    taps = np.array(BINOMIAL[filt], float) / sum(BINOMIAL[filt])
    np.testing.assert_array_equal(np.array(res["blur"]["weights"]), np.outer(taps, taps))
    assert res["blur"]["weights_text"][0][0] == str(Fraction(1, sum(BINOMIAL[filt]) ** 2))
    want = probe(x.shape, nchw(lambda e: functional.blur_pool2d(e, filt, stride, pad_type)))
    got = np.zeros_like(want)
    geo = res["windows"]
    for i, j in itertools.product(*map(range, res["shape"])):
        for (a, r), (b, c) in itertools.product(enumerate(geo["src_rows"][i]),
                                                enumerate(geo["src_cols"][j])):
            if r is not None and c is not None:
                got[i, j, r, c] += taps[a] * taps[b]
    np.testing.assert_allclose(got, want, atol=1e-15)
    # Positions: output o reads o*stride - floor((filt-1)/2) + j, padded as the pad type says.
    pb = (filt - 1) // 2
    assert res["padding"] == {"before": [pb, pb], "after": [filt // 2] * 2,
                              "type": {"reflect": "reflect", "repl": "replicate",
                                       "zero": "zero"}[pad_type]}
    for o, w in enumerate(geo["rows"]):
        assert w == [o * stride[0] - pb + j for j in range(filt)]


@pytest.mark.parametrize("k,stride,filt,pad_type", [
    (2, 2, 4, "reflect"), (3, 2, 3, "repl"), (2, 3, 5, "zero"), (1, 2, 4, "reflect"),
])
@pytest.mark.parametrize("convention", ["keras", "torch"])
def test_max_blur_equals_antialiased_cnns_and_shows_both_steps(client, k, stride, filt,
                                                                pad_type, convention):
    x = np.random.default_rng(6).permutation(90).reshape(9, 10).astype(float)  # distinct
    res = pool(client, x=x.tolist(), kind="max_blur", convention=convention, pool_size=[k, k],
               strides=[stride, stride], filt_size=filt, pad_type=pad_type)
    oracle = torch.nn.Sequential(torch.nn.MaxPool2d(k, stride=1),
                                 blur_oracle(filt, stride, pad_type))
    np.testing.assert_allclose(out_array(res), oracle(t4(x))[0, 0].detach().numpy(),
                               rtol=1e-12)
    # Step 1 is torch's max pooling with stride 1, its winners torch's indices.
    st = res["max_blur"]["stage"]
    m, idx = torch.nn.functional.max_pool2d(t4(x), k, 1, return_indices=True)
    np.testing.assert_array_equal(np.array(st["output"]), m[0, 0].numpy())
    w = x.shape[1]
    np.testing.assert_array_equal(np.array([[r * w + c for r, c in row] for row in st["argmax"]]),
                                  idx[0, 0].numpy())
    # The input cells an output depends on: the max windows of the M cells its blur reads.
    want = probe(x.shape, nchw(lambda e: functional.max_blur_pool2d(e, k, stride, filt,
                                                                     pad_type))) != 0
    np.testing.assert_array_equal(read_cells(res, x.shape) > 0, want)
    for i, rows in enumerate(res["windows"]["rows"]):
        ms = {m for m in st["src_rows"][i] if m is not None}
        assert rows == sorted({m + j for m in ms for j in range(k)})


# --------------------------------------------------------------------------------------------
# Adaptive polyphase sampling.


def aps_ref(x, s, p):
    """(output, kept phase (a, b), norms in the documented order (0,0), (1,0), (0,1), ...)."""
    xp = np.pad(x, [(0, (-L) % ss) for L, ss in zip(x.shape, s, strict=True)], mode="wrap")
    phases = [(k % s[0], k // s[0]) for k in range(s[0] * s[1])]
    comps = [xp[a::s[0], b::s[1]] for a, b in phases]
    norms = [np.abs(c).max() if p == "inf" else (np.abs(c) ** p).sum() ** (1 / p)
             for c in comps]
    k = int(np.argmax(norms))
    return comps[k], phases[k], norms


@pytest.mark.parametrize("stride", [[2, 2], [3, 3], [2, 3], [1, 2]])
@pytest.mark.parametrize("norm", [2, 1, "inf", 0.5])
def test_aps_keeps_the_component_with_the_largest_norm(client, stride, norm):
    for x in grids():
        want, phase, norms = aps_ref(x, stride, norm)
        for convention in ("keras", "torch"):
            res = pool(client, x=x.tolist(), kind="aps", convention=convention,
                       strides=stride, norm=norm)
            np.testing.assert_array_equal(out_array(res), want)
            a = res["aps"]
            assert a["phase"] == list(phase) and a["norm"] == norm
            assert [c["phase"] for c in a["components"]] == [
                [k % stride[0], k // stride[0]] for k in range(stride[0] * stride[1])]
            np.testing.assert_allclose([c["norm"] for c in a["components"]], norms, rtol=1e-10)
            assert a["chosen"] == [c["phase"] for c in a["components"]].index(list(phase))
            # Each output reads one cell of the kept component, wrapped around the input.
            for i, j in itertools.product(*map(range, res["shape"])):
                (r,), (c,) = res["windows"]["rows"][i], res["windows"]["cols"][j]
                assert (r, c) == (phase[0] + i * stride[0], phase[1] + j * stride[1])
                sr, sc = res["windows"]["src_rows"][i][0], res["windows"]["src_cols"][j][0]
                assert (sr, sc) == (r % x.shape[0], c % x.shape[1])
                assert x[sr, sc] == out_array(res)[i, j]
        assert res["padding"]["type"] == "circular"


def test_overflowing_norms_are_null_not_a_broken_answer(client):
    x = np.full((6, 6), 1e6)
    x[::2, ::2] = 2e5
    res = pool(client, x=x.tolist(), kind="aps", norm=64)  # |1e6|^64 overflows float64
    assert res["aps"]["components"][0]["norm"] is None
    np.testing.assert_array_equal(out_array(res), poolkit.aps_pool(x[None, :, :, None],
                                                                   norm=64)[0, :, :, 0])
    res = pool(client, x=x.tolist(), kind="lp", p=64)
    want = poolkit.lp_pool(x[None, :, :, None], 64, 2)[0, :, :, 0]
    assert not np.isfinite(want).any() and res["output"] == [[None] * 3] * 3


def test_aps_follows_a_circular_shift(client):
    x = np.random.default_rng(7).random((8, 10))
    base = pool(client, x=x.tolist(), kind="aps", strides=[2, 2])
    moved = pool(client, x=np.roll(x, (1, 3), axis=(0, 1)).tolist(), kind="aps",
                 strides=[2, 2])
    out, got = out_array(base), out_array(moved)
    assert base["aps"]["phase"] != moved["aps"]["phase"]
    assert any(np.array_equal(got, np.roll(out, q, axis=(0, 1)))
               for q in itertools.product(range(4), range(5)))


# --------------------------------------------------------------------------------------------
# Adaptive and global pooling.


def adaptive_ref(L, O):
    return [list(range(i * L // O, -(-(i + 1) * L // O))) for i in range(O)]


@pytest.mark.parametrize("output_size", [[5, 5], [3, None], [1, 4], [9, 12], [None, None]])
@pytest.mark.parametrize("convention", ["keras", "torch"])
def test_adaptive_max_and_avg_equal_torch(client, output_size, convention):
    for x in grids():
        res_max = pool(client, x=x.tolist(), kind="adaptive_max", convention=convention,
                       output_size=output_size)
        res_avg = pool(client, x=x.tolist(), kind="adaptive_avg", convention=convention,
                       output_size=output_size)
        size = tuple(output_size)
        want, idx = torch.nn.functional.adaptive_max_pool2d(t4(x), size, return_indices=True)
        np.testing.assert_array_equal(out_array(res_max), want[0, 0].numpy())
        w = x.shape[1]
        np.testing.assert_array_equal(
            np.array([[r * w + c for r, c in row] for row in res_max["argmax"]]),
            idx[0, 0].numpy())
        np.testing.assert_allclose(out_array(res_avg), torch.nn.functional.adaptive_avg_pool2d(
            t4(x), size)[0, 0].numpy(), rtol=1e-12)
        out = [L if o is None else o for L, o in zip(x.shape, output_size, strict=True)]
        for res in (res_max, res_avg):
            assert res["shape"] == out
            assert res["windows"]["rows"] == adaptive_ref(x.shape[0], out[0])
            assert res["windows"]["cols"] == adaptive_ref(x.shape[1], out[1])
            assert res["shapes"]["rules"][0 if convention == "keras" else 1]["active"]
            assert all(r["shape"] == out for r in res["shapes"]["rules"])
        # The divisor of each average: its window's size.
        assert res_avg["divisor"] == [[len(r) * len(c) for c in res_avg["windows"]["cols"]]
                                      for r in res_avg["windows"]["rows"]]
    x = np.random.default_rng(8).random((7, 9))
    res = pool(client, x=x.tolist(), kind="adaptive_avg", convention=convention,
               output_size=[4, 5])
    np.testing.assert_array_equal(read_cells(res, x.shape) > 0, probe(x.shape, nchw(
        lambda e: functional.adaptive_avg_pool2d(e, (4, 5)))) != 0)


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_max_and_avg(client, keepdims):
    x = np.random.default_rng(9).integers(0, 5, (6, 7)).astype(float)  # ties
    mx = pool(client, x=x.tolist(), kind="global_max", keepdims=keepdims)
    av = pool(client, x=x.tolist(), kind="global_avg", keepdims=keepdims)
    assert mx["convention"] == av["convention"] == "keras"
    assert mx["output"] == [[x.max()]] and av["output"] == [[pytest.approx(x.mean(), 1e-15)]]
    assert mx["argmax"] == [[list(np.unravel_index(np.argmax(x), x.shape))]]  # the first max
    assert av["divisor"] == [[42]]
    for res in (mx, av):
        assert res["shape"] == [1, 1]
        assert res["library_shapes"] == {"input": [1, 6, 7, 1],
                                         "output": [1, 1, 1, 1] if keepdims else [1, 1]}
        assert res["windows"]["rows"] == [list(range(6))]
        assert res["windows"]["cols"] == [list(range(7))]


# --------------------------------------------------------------------------------------------
# Fractional max pooling.


def fractional_ref(L, O, k, u):
    """The windows' starts by the rule in torch's FractionalMaxPool2d (float64 input)."""
    if O == 1:
        return [L - k]
    alpha = (L - k) / (O - 1)
    return [int((i + u) * alpha) - int(u * alpha) for i in range(O - 1)] + [L - k]


@pytest.mark.parametrize("k,size,ratio", [
    (2, None, 0.7), (3, [5, 6], None), (2, [4, 4], 0.5), (1, None, 0.5), (2, [1, 3], None),
])
@pytest.mark.parametrize("seed", [0, 12345])
def test_fractional_equals_torch_with_the_same_samples(client, k, size, ratio, seed):
    for x in grids():
        u = np.random.default_rng(seed).random((1, 2))  # the rule the page states
        samples = torch.from_numpy(u.reshape(1, 1, 2))
        out_size = tuple(size) if size else None
        body = dict(x=x.tolist(), kind="fractional_max", pool_size=[k, k], output_size=size,
                    output_ratio=ratio, seed=seed)
        try:
            want, idx = torch.nn.functional.fractional_max_pool2d(
                t4(x), k, output_size=out_size, output_ratio=None if out_size else (ratio,) * 2,
                return_indices=True, _random_samples=samples)
        except RuntimeError as e:  # what torch refuses, the explorer refuses with its reason
            r = client.post("/api/pool", json=body)
            assert r.status_code == 400 and "too large" in r.json()["error"], (e, r.text)
            continue
        res = pool(client, **body)
        assert res["convention"] == "torch"
        np.testing.assert_array_equal(out_array(res), want[0, 0].numpy())
        w = x.shape[1]
        np.testing.assert_array_equal(
            np.array([[r * w + c for r, c in row] for row in res["argmax"]]), idx[0, 0].numpy())
        oh, ow = res["shape"]
        starts_r = fractional_ref(x.shape[0], oh, k, u[0, 1])  # [..., 1] drives the height
        starts_c = fractional_ref(x.shape[1], ow, k, u[0, 0])
        assert res["windows"]["rows"] == [list(range(s, s + k)) for s in starts_r]
        assert res["windows"]["cols"] == [list(range(s, s + k)) for s in starts_c]
        # Reproducible: the same seed gives the same windows and output.
        again = pool(client, x=x.tolist(), kind="fractional_max", pool_size=[k, k],
                     output_size=size, output_ratio=ratio, seed=seed)
        assert again["output"] == res["output"] and again["windows"] == res["windows"]


def test_fractional_windows_probe_and_seeds_differ(client):
    x = np.random.default_rng(10).random((9, 11))
    res = [pool(client, x=x.tolist(), kind="fractional_max", pool_size=[2, 2],
                output_ratio=0.6, seed=s) for s in range(4)]
    assert len({str(r["windows"]) for r in res}) > 1
    u = np.random.default_rng(3).random((1, 2))
    samples = np.broadcast_to(u, (99, 1, 2)).copy()
    want = probe(x.shape, nchw(lambda e: functional.fractional_max_pool2d(
        e, 2, output_ratio=0.6, _random_samples=samples))) != 0
    np.testing.assert_array_equal(read_cells(res[3], x.shape) > 0, want)
    assert res[3]["shapes"]["rules"][0]["formula"][0] == "floor(9 * 0.6) = 5"


# --------------------------------------------------------------------------------------------
# Shape formulas of the kinds outside the windowed family.


def eval_lhs(text):
    lhs = text.split(" = ")[0]
    return eval(lhs, {"__builtins__": {}, "floor": math.floor, "ceil": math.ceil})


@pytest.mark.parametrize("size", [(28, 28), (13, 17), (9, 6)])
def test_formulas_evaluate_to_the_library_shape(client, size):
    x = np.zeros(size).tolist()
    cases = [("blur", dict(filt_size=3, strides=[2, 3])),
             ("max_blur", dict(pool_size=[3, 3], strides=[2, 2])),
             ("aps", dict(strides=[3, 2])),
             ("fractional_max", dict(output_ratio=0.8))]
    for kind, args in cases:
        res = pool(client, x=x, kind=kind, **args)
        for r in res["shapes"]["rules"]:
            assert r["shape"] == res["shape"], (kind, r)
            assert [eval_lhs(f) for f in r["formula"]] == res["shape"], (kind, r)


# --------------------------------------------------------------------------------------------
# Bad values of every new parameter: 400 naming the field and the rule.


G = [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
BAD = [
    (dict(kind="lp", p=0), "p", "(0, 64] or 'inf'"),
    (dict(kind="lp", p=-2), "p", "(0, 64] or 'inf'"),
    (dict(kind="lp", p=65), "p", "(0, 64] or 'inf'"),
    (dict(kind="lp", p="abc"), "p", "'inf'"),
    (dict(kind="lp", p="Infinity"), "p", "'inf'"),
    (dict(kind="lp", p=True), "p", "'inf'"),
    (dict(kind="lp", p=None), "p", "'inf'"),
    (dict(kind="lp", p=[2]), "p", "'inf'"),
    (dict(kind="lp", convention="torch", padding=[1, 1]), "padding", "not a parameter"),
    (dict(kind="lp", convention="torch", pool_size=[4, 4]), None, "output size"),
    (dict(kind="min", pool_size=[0, 2]), "pool_size", "[1, 32]"),
    (dict(kind="min", convention="torch", ceil_mode=1), "ceil_mode", "true or false"),
    (dict(kind="blur", filt_size=0), "filt_size", "[1, 7]"),
    (dict(kind="blur", filt_size=8), "filt_size", "[1, 7]"),
    (dict(kind="blur", filt_size=2.5), "filt_size", "[1, 7]"),
    (dict(kind="blur", filt_size="4"), "filt_size", "[1, 7]"),
    (dict(kind="blur", pad_type="mirror"), "pad_type", "one of"),
    (dict(kind="blur", pad_type=0), "pad_type", "one of"),
    (dict(kind="blur", strides=[0, 2]), "strides", "[1, 32]"),
    (dict(kind="blur", strides=None), "strides", "two ints"),
    (dict(kind="blur", filt_size=7), None, "reflection padding of 3"),
    (dict(kind="blur", dilation=[1, 1]), "dilation", "not a parameter"),
    (dict(kind="max_blur", pool_size=[4, 4]), None, "output size"),
    (dict(kind="max_blur", pad_type="circular"), "pad_type", "one of"),
    (dict(kind="aps", strides=[9, 2]), "strides", "[1, 8]"),
    (dict(kind="aps", norm=0), "norm", "(0, 64]"),
    (dict(kind="aps", norm="2"), "norm", "'inf'"),
    (dict(kind="aps", convention="torch", stride=[2, 2]), "stride", "not a parameter"),
    (dict(kind="adaptive_max", output_size=[0, 5]), "output_size", "[1, 64]"),
    (dict(kind="adaptive_max", output_size=[65, 5]), "output_size", "[1, 64]"),
    (dict(kind="adaptive_avg", output_size=[5]), "output_size", "[rows, cols]"),
    (dict(kind="adaptive_avg", output_size=None), "output_size", "[rows, cols]"),
    (dict(kind="adaptive_avg", output_size="5"), "output_size", "[rows, cols]"),
    (dict(kind="adaptive_avg", output_size=[5.5, 5]), "output_size", "[rows, cols]"),
    (dict(kind="global_max", keepdims="yes"), "keepdims", "true or false"),
    (dict(kind="global_avg", convention="torch"), "convention", "no torch-convention call"),
    (dict(kind="global_avg", pool_size=[2, 2]), "pool_size", "not a parameter"),
    (dict(kind="fractional_max", convention="keras"), "convention", "no keras-convention"),
    (dict(kind="fractional_max", output_ratio=1), "output_ratio", "(0, 1)"),
    (dict(kind="fractional_max", output_ratio=0), "output_ratio", "(0, 1)"),
    (dict(kind="fractional_max", output_ratio="0.5"), "output_ratio", "(0, 1)"),
    (dict(kind="fractional_max", output_size=[0, 2]), "output_size", "[1, 64]"),
    (dict(kind="fractional_max", seed=-1), "seed", "[0, 2147483647]"),
    (dict(kind="fractional_max", seed=2**31), "seed", "[0, 2147483647]"),
    (dict(kind="fractional_max", seed=1.5), "seed", "int"),
    (dict(kind="fractional_max", output_size=[3, 3]), None, "too large"),
    (dict(kind="fractional_max", output_ratio=None), None, "output_size or an output_ratio"),
]


@pytest.mark.parametrize("body,field,rule", BAD)
def test_bad_family_requests_get_400_naming_field_and_rule(client, body, field, rule):
    r = client.post("/api/pool", json={"x": G, **body})
    assert r.status_code == 400, (body, r.text)
    msg = r.json()["error"]
    if field:
        assert msg.startswith(f"{field}:"), msg
    assert rule in msg, msg
    assert client.get("/api/health").json() == {"status": "ok"}


# --------------------------------------------------------------------------------------------
# The shift panel: max pooling, the anti-aliased kinds and the selection, on the model's maps.


def shift_ref(x, dy, dx):
    out = np.zeros_like(x)
    out[dy:, dx:] = x[:x.shape[0] - dy, :x.shape[1] - dx]
    return out


def change_ref(base, moved, t, L):
    """min over q in {floor, ceil}(t * O / L) of ||moved[q:] - base[:-q]|| / ||base[:-q]||."""
    best = None
    qs = [{math.floor(ti * o / Li), math.ceil(ti * o / Li)}
          for ti, o, Li in zip(t, base.shape[:2], L, strict=True)]
    for q0, q1 in itertools.product(*qs):
        if q0 >= base.shape[0] or q1 >= base.shape[1]:
            continue
        a = moved[q0:, q1:]
        b = base[:base.shape[0] - q0, :base.shape[1] - q1]
        e = np.linalg.norm(a - b) / np.linalg.norm(b)
        best = e if best is None else min(best, e)
    return best


def test_shift_rows_pool_the_models_maps_with_each_kind(client, model):
    x = digit(11)
    body = {"x": x.tolist(), "shift": [1, 2], "channel": 3,
            "pool": {"kind": "lp", "convention": "torch", "p": 3, "pool_size": [2, 2],
                     "strides": None, "ceil_mode": False}}
    res = client.post("/api/shift", json=body).json()
    rows = {r["kind"]: r for r in res["kinds"]}
    assert [r["kind"] for r in res["kinds"]] == ["max", "blur", "max_blur", "aps", "lp"]
    assert rows["lp"]["selected"] and not any(rows[k]["selected"] for k in ("max", "aps"))
    assert rows["lp"]["call"] == ("poolkit.functional.lp_pool2d(maps, norm_type=3, "
                                  "kernel_size=(2, 2), stride=None, ceil_mode=False)")
    batch = np.stack([shift_ref(x, i, j) for i in range(5) for j in range(5)])
    maps = model.layers[0](batch[..., None].astype(np.float32))
    maps = np.asarray(maps)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    refs = {
        "max": torch.nn.functional.max_pool2d(t(maps), 2).numpy(),
        "blur": blur_oracle(4, 2, "reflect").float()(
            t(maps).reshape(-1, 1, 26, 26)).reshape(25, 32, 13, 13).detach().numpy(),
        "max_blur": torch.nn.Sequential(torch.nn.MaxPool2d(2, stride=1),
                                        blur_oracle(4, 2, "reflect").float())(
            t(maps).reshape(-1, 1, 26, 26)).reshape(25, 32, 13, 13).detach().numpy(),
        "aps": functional.aps_pool2d(np.ascontiguousarray(maps.transpose(0, 3, 1, 2))),
        "lp": torch.nn.functional.lp_pool2d(t(maps), 3, 2).numpy(),  # maps >= 0 (ReLU)
    }
    for kind, ref in refs.items():
        row = rows[kind]
        assert row["error"] is None and row["shape"] == [13, 13]
        np.testing.assert_allclose(np.array(row["base"]), ref[0, 3], atol=6e-5)
        np.testing.assert_allclose(np.array(row["maps"]), ref[1 * 5 + 2, 3], atol=6e-5)
        nhwc = ref.transpose(0, 2, 3, 1).astype(np.float64)
        for i, j in itertools.product(range(5), range(5)):
            want = change_ref(nhwc[0], nhwc[i * 5 + j], (i, j), (26, 26))
            assert row["changes"][i][j] == pytest.approx(want, rel=1e-4, abs=1e-6), (kind, i, j)
        assert row["change"] == row["changes"][1][2]
    # What the panel is for: max pooling is exact only for shifts by its stride; polyphase
    # sampling follows the digit (its change is 0 while the digit stays in the frame).
    mx, aps = rows["max"]["changes"], rows["aps"]["changes"]
    assert mx[0][2] == 0 and mx[2][0] == 0 and mx[2][2] == 0
    assert min(mx[0][1], mx[1][0], mx[1][1]) > 0.05
    assert max(aps[0][1], aps[1][0], aps[1][1], aps[0][2], aps[2][2]) < 1e-6


def test_shift_selection_matching_a_row_marks_it_and_bad_selections(client):
    x = digit(2).tolist()
    same = {"kind": "blur", "convention": "keras", "filt_size": 4, "strides": [2, 2],
            "pad_type": "reflect"}
    res = client.post("/api/shift", json={"x": x, "shift": [0, 1], "pool": same}).json()
    assert [r["kind"] for r in res["kinds"]] == ["max", "blur", "max_blur", "aps"]
    assert [r["selected"] for r in res["kinds"]] == [False, True, False, False]
    # strides=None is the pool size: the page's default max pooling is the model's layer's.
    res = client.post("/api/shift", json={"x": x, "shift": [0, 1], "pool": {
        "kind": "max", "pool_size": [2, 2], "strides": None}}).json()
    assert [r["selected"] for r in res["kinds"]] == [True, False, False, False]
    # Valid for the page's grid, impossible on the 26 x 26 maps: that row says why.
    res = client.post("/api/shift", json={"x": x, "shift": [0, 0], "pool": {
        "kind": "fractional_max", "output_size": [26, 26]}}).json()
    assert "too large" in res["kinds"][-1]["error"] and res["kinds"][-1]["selected"]
    for body, start in [
        ({"pool": {"kind": "lp", "p": 0}}, "pool.p: must be a number in (0, 64]"),
        ({"pool": {"kind": "nope"}}, "pool.kind: must be one of"),
        ({"pool": {"kind": "max", "x": G}}, "pool.x: is not a parameter"),
        ({"pool": [1]}, "pool: must be a JSON object"),
        ({"channel": 32}, "channel: must be an int in [0, 31]"),
        ({"channel": "1"}, "channel: must be an int in [0, 31]"),
        ({"extra": 1}, "extra: is not a field of a shift request"),
    ]:
        r = client.post("/api/shift", json={"x": x, "shift": [0, 0], **body})
        assert r.status_code == 400 and r.json()["error"].startswith(start), r.text


def test_a_model_with_global_pooling_shows_one_by_one_maps():
    # Conv2D -> GlobalAveragePooling2D -> Dense, the usual head: its pooled output is (N, C).
    from poolkit import keras

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu", input_shape=(28, 28, 1)),
                          keras.layers.GlobalAveragePooling2D(),
                          keras.layers.Dense(10, activation="softmax")])
    x = digit(1)
    with TestClient(create_app(model=m), base_url=BASE) as c:
        assert c.get("/api/model").json()["pool"] == 1
        res = c.post("/api/model", json={"x": x.tolist()}).json()
        conv = np.asarray(m.layers[0](x[None, :, :, None].astype(np.float32)))[0]
        assert res["pooled"]["shape"] == [1, 1, 4]
        np.testing.assert_allclose(np.array(res["pooled"]["maps"])[:, 0, 0],
                                   conv.mean(axis=(0, 1)), atol=6e-5)
        sh = c.post("/api/shift", json={"x": x.tolist(), "shift": [2, 1]})
        assert sh.status_code == 200 and sh.json()["pooled"]["shape"] == [1, 1, 4]
        assert [r["kind"] for r in sh.json()["kinds"]] == ["max", "blur", "max_blur", "aps"]
