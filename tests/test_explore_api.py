"""The explorer's JSON API, through Starlette's test client: every endpoint with good and bad
input. Outputs are checked against torch (PyTorch convention) and poolkit's own ops (Keras
convention, which the rest of the suite checks against Keras and JAX); windows, winners and
divisors against independent references written here."""

from __future__ import annotations

import io
import itertools
import json
import math
import re
import time

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import poolkit  # noqa: E402
from poolkit import functional  # noqa: E402
from poolkit.errors import InvalidValue  # noqa: E402
from poolkit.explore import create_app  # noqa: E402
from poolkit.explore.api import MAX_BODY  # noqa: E402
from poolkit.explore.model import train_demo_model  # noqa: E402
from poolkit.kinds import POOL_KINDS  # noqa: E402

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def model():
    return train_demo_model(300, 1)


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model=model), base_url=BASE) as c:
        yield c


def digit(i=0):
    from poolkit.lab.figures import dataset_digit

    return dataset_digit(i)[0].astype(np.float64)


def png_bytes(img: Image.Image, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# Health, kinds, static files.


def test_health(client):
    r = client.get("/api/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_kinds_lists_every_kind_with_its_parameters(client):
    from poolkit.explore.kinds import EXTRA_KINDS

    data = client.get("/api/kinds").json()
    assert [k["name"] for k in data["kinds"]] == [*POOL_KINDS, *EXTRA_KINDS]
    assert data["conventions"] == ["keras", "torch"]
    controls = {"size", "stride", "keras_padding", "torch_padding", "bool", "int",
                "int_or_null", "choice", "norm", "output_size", "size_or_null", "ratio"}
    for k in data["kinds"]:
        assert k["explorer"], k["name"]  # every kind the engine has is in the explorer
        assert k["library_kind"] == (k["name"] in POOL_KINDS)
        for conv, call in k["conventions"].items():
            assert conv in ("keras", "torch")
            assert call["explain"] in ("argmax", "divisor", "lp", "blur", "max_blur", "aps")
            for p in call["params"]:
                assert p["control"] in controls and p["testid"] and p["arg"], p
        if k["family"] != "windowed":
            continue
        for conv in ("keras", "torch"):
            params = {p["name"]: p for p in k["conventions"][conv]["params"]}
            assert params["pool_size"]["testid"] == "pool-size"
            assert params["strides"]["testid"] == "stride"
            if k["name"] != "lp" or conv == "keras":  # torch's lp_pool2d has no padding
                assert params["padding"]["control"] == f"{conv}_padding"
    by_name = {k["name"]: k for k in data["kinds"]}
    assert set(by_name["global_max"]["conventions"]) == {"keras"}  # torch has no global pool
    assert set(by_name["fractional_max"]["conventions"]) == {"torch"}
    mx = by_name["max"]
    assert mx["conventions"]["torch"]["function"] == "poolkit.functional.max_pool2d"
    torch_args = [p["arg"] for p in mx["conventions"]["torch"]["params"]]
    assert torch_args[:2] == ["kernel_size", "stride"] and "ceil_mode" in torch_args
    lp = [p["arg"] for p in by_name["lp"]["conventions"]["torch"]["params"]]
    assert lp == ["norm_type", "kernel_size", "stride", "ceil_mode"]  # lp_pool2d's order


def test_page_and_static_files(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    html = r.text
    for testid in ("pool-type", "convention", "output-shape", "upload", "play"):
        assert f'data-testid="{testid}"' in html
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css"),
                        ("favicon.svg", "image/svg+xml")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(ctype)
        assert "https://" not in r.text


@pytest.mark.parametrize("path", [
    "/static/../server.py", "/static/..%2Fserver.py", "/static/%2e%2e/__init__.py",
    "/static/..%2F..%2Fkinds.py", "/static//etc/passwd", "/static/app.js%00.png",
    "/static/", "/static/index.html/..", "/../../etc/passwd", "/static/APP.JS",
])
def test_static_files_cannot_be_escaped(client, path):
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code)
    assert "error" in r.json()
    assert "def create_app" not in r.text and "root:" not in r.text


def test_unknown_host_is_refused(client):
    # A page on another site that rebinds its DNS name to 127.0.0.1 still sends its own Host.
    r = client.get("/api/health", headers={"Host": "evil.example"})
    assert r.status_code == 400


# --------------------------------------------------------------------------------------------
# Pooling: outputs.


def pool(client, **body):
    r = client.post("/api/pool", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def out_array(res):
    return np.array([[np.nan if v is None else v for v in row] for row in res["output"]])


KERAS_CASES = [
    dict(pool_size=[2, 2], strides=None, padding="valid"),
    dict(pool_size=[3, 3], strides=[2, 2], padding="same"),
    dict(pool_size=[3, 2], strides=[1, 2], padding="same"),
    dict(pool_size=[2, 3], strides=[2, 1], padding=[[1, 0], [2, 1]]),
    dict(pool_size=[4, 4], strides=[3, 3], padding="valid"),
]
TORCH_CASES = [
    dict(pool_size=[2, 2], strides=None, padding=[0, 0], ceil_mode=False),
    dict(pool_size=[3, 3], strides=[2, 2], padding=[1, 1], ceil_mode=True),
    dict(pool_size=[2, 2], strides=[2, 2], padding=[1, 1], ceil_mode=True),
    dict(pool_size=[3, 2], strides=[2, 3], padding=[1, 0], ceil_mode=False),
    dict(pool_size=[5, 5], strides=[3, 3], padding=[2, 2], ceil_mode=True),
]


def grids():
    rng = np.random.default_rng(0)
    return [digit(3)[5:20, 4:26], rng.integers(0, 5, (7, 9)).astype(float),
            rng.normal(size=(11, 6))]


@pytest.mark.parametrize("case", KERAS_CASES)
@pytest.mark.parametrize("dilation", [[1, 1], [2, 1]])
def test_keras_max_equals_poolkit_max_pool(client, case, dilation):
    for x in grids():
        try:
            want = poolkit.max_pool(x[None, :, :, None], case["pool_size"], case["strides"],
                                    case["padding"] if isinstance(case["padding"], str)
                                    else tuple(map(tuple, case["padding"])),
                                    dilation=tuple(dilation))[0, :, :, 0]
        except ValueError:
            continue
        res = pool(client, x=x.tolist(), kind="max", convention="keras", dilation=dilation,
                   **case)
        np.testing.assert_array_equal(out_array(res), want)
        assert res["shape"] == list(want.shape)


@pytest.mark.parametrize("case", KERAS_CASES)
@pytest.mark.parametrize("count", [False, True])
def test_keras_avg_equals_poolkit_average_pool(client, case, count):
    for x in grids():
        try:
            want = poolkit.average_pool(x[None, :, :, None], case["pool_size"], case["strides"],
                                        case["padding"] if isinstance(case["padding"], str)
                                        else tuple(map(tuple, case["padding"])),
                                        count_include_pad=count)[0, :, :, 0]
        except ValueError:
            continue
        res = pool(client, x=x.tolist(), kind="avg", convention="keras",
                   count_include_pad=count, **case)
        np.testing.assert_array_equal(out_array(res), want)


@pytest.mark.parametrize("case", TORCH_CASES)
@pytest.mark.parametrize("dilation", [[1, 1], [2, 2]])
def test_torch_max_equals_torch_and_functional(client, case, dilation):
    torch = pytest.importorskip("torch")
    for x in grids():
        t = torch.from_numpy(x)[None, None]
        try:
            want, idx = torch.nn.functional.max_pool2d(
                t, case["pool_size"], case["strides"] or case["pool_size"], case["padding"],
                dilation, case["ceil_mode"], return_indices=True)
        except RuntimeError:
            continue
        res = pool(client, x=x.tolist(), kind="max", convention="torch", dilation=dilation,
                   **case)
        np.testing.assert_array_equal(out_array(res), want[0, 0].numpy())
        np.testing.assert_array_equal(
            out_array(res), functional.max_pool2d(x[None, None], case["pool_size"],
                                                  case["strides"], case["padding"], dilation,
                                                  case["ceil_mode"])[0, 0])
        # The winner (the gradient's route) is torch's index.
        w = x.shape[1]
        got = np.array([[r * w + c for r, c in row] for row in res["argmax"]])
        np.testing.assert_array_equal(got, idx[0, 0].numpy())


@pytest.mark.parametrize("case", TORCH_CASES)
@pytest.mark.parametrize("count", [True, False])
@pytest.mark.parametrize("divisor", [None, 3])
def test_torch_avg_equals_torch(client, case, count, divisor):
    torch = pytest.importorskip("torch")
    for x in grids():
        t = torch.from_numpy(x)[None, None]
        try:
            want = torch.nn.functional.avg_pool2d(
                t, case["pool_size"], case["strides"] or case["pool_size"], case["padding"],
                case["ceil_mode"], count, divisor)
        except RuntimeError:
            continue
        res = pool(client, x=x.tolist(), kind="avg", convention="torch", count_include_pad=count,
                   divisor_override=divisor, **case)
        np.testing.assert_allclose(out_array(res), want[0, 0].numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(
            out_array(res), functional.avg_pool2d(x[None, None], case["pool_size"],
                                                  case["strides"], case["padding"],
                                                  case["ceil_mode"], count, divisor)[0, 0])


# --------------------------------------------------------------------------------------------
# Pooling: windows, winners, divisors.


def probe_windows(x_shape, op) -> np.ndarray:
    """windows[i, j, r, c]: does output (i, j) read input (r, c)? Found by pooling one-hot
    images with ``op`` (a one-hot cell shows up exactly in the outputs whose window reads it)."""
    h, w = x_shape
    eye = np.eye(h * w).reshape(h * w, h, w)
    outs = np.stack([op(e) for e in eye])  # (h*w, OH, OW)
    return np.moveaxis(outs != 0, 0, -1).reshape(*outs.shape[1:], h, w)


def response_windows(res, x_shape) -> np.ndarray:
    """windows[i, j, r, c] from the response: the input cells output (i, j) reads (the
    sources of its window's positions)."""
    h, w = x_shape
    oh, ow = res["shape"]
    m = np.zeros((oh, ow, h, w), bool)
    for i, rows in enumerate(res["windows"]["src_rows"]):
        for j, cols in enumerate(res["windows"]["src_cols"]):
            for r, c in itertools.product(rows, cols):
                if r is not None and c is not None:
                    m[i, j, r, c] = True
    return m


@pytest.mark.parametrize("conv,case", [("keras", c) for c in KERAS_CASES]
                         + [("torch", c) for c in TORCH_CASES])
def test_windows_are_the_cells_each_output_reads(client, conv, case):
    x = np.arange(7 * 8, dtype=float).reshape(7, 8)
    dil = [2, 1]
    res = pool(client, x=x.tolist(), kind="max", convention=conv, dilation=dil, **case)
    if conv == "keras":
        pad = case["padding"] if isinstance(case["padding"], str) else tuple(
            map(tuple, case["padding"]))

        def op(e):
            return poolkit.max_pool(e[None, :, :, None], case["pool_size"], case["strides"], pad,
                                    dilation=tuple(dil))[0, :, :, 0]
    else:
        def op(e):
            return functional.max_pool2d(e[None, None], case["pool_size"], case["strides"],
                                         case["padding"], dil, case["ceil_mode"])[0, 0]
    np.testing.assert_array_equal(response_windows(res, x.shape), probe_windows(x.shape, op))
    # Window positions outside the input are the padding: their count matches the pads, and
    # max pooling never reads them.
    rows, src = res["windows"]["rows"], res["windows"]["src_rows"]
    assert min(min(r) for r in rows) == -res["padding"]["before"][0]
    assert res["padding"]["type"] == "none"
    for w, sw in zip(rows, src, strict=True):
        assert sw == [r if 0 <= r < 7 else None for r in w]


def test_max_winner_is_the_first_maximum_in_its_window(client):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (9, 9)).astype(float)  # many ties
    for case in KERAS_CASES:
        res = pool(client, x=x.tolist(), kind="max", convention="keras", dilation=[1, 1], **case)
        win = response_windows(res, x.shape)
        out = out_array(res)
        for i, j in itertools.product(*map(range, out.shape)):
            cells = sorted(zip(*np.nonzero(win[i, j]), strict=True))  # row-major
            first = next((r, c) for r, c in cells if x[r, c] == out[i, j])
            assert tuple(res["argmax"][i][j]) == first


def test_max_winner_is_where_the_gradient_goes(client):
    x = np.random.default_rng(2).normal(size=(8, 10))
    res = pool(client, x=x.tolist(), kind="max", convention="keras", pool_size=[3, 3],
               strides=[2, 2], padding="same", dilation=[1, 1])
    g = poolkit.max_pool_backward(np.ones((1, *res["shape"], 1)), x[None, :, :, None], 3, 2,
                                  "same")[0, :, :, 0]
    routed = np.zeros_like(x)
    for row in res["argmax"]:
        for r, c in row:
            routed[r, c] += 1
    np.testing.assert_array_equal(routed, g)


def torch_divisor(L, k, s, p, o, count):
    start = o * s - p
    end = min(start + k, L + p)
    size = end - start
    n = min(end, L) - max(start, 0)
    return size if count else n


@pytest.mark.parametrize("case", TORCH_CASES)
@pytest.mark.parametrize("count", [True, False])
def test_torch_avg_divisor_follows_torchs_rule(client, case, count):
    x = np.random.default_rng(3).random((9, 7))
    res = pool(client, x=x.tolist(), kind="avg", convention="torch", count_include_pad=count,
               divisor_override=None, **case)
    k = case["pool_size"]
    s = case["strides"] or k
    p = case["padding"]
    for i, j in itertools.product(*map(range, res["shape"])):
        want = (torch_divisor(9, k[0], s[0], p[0], i, count)
                * torch_divisor(7, k[1], s[1], p[1], j, count))
        assert res["divisor"][i][j] == want
    res = pool(client, x=x.tolist(), kind="avg", convention="torch", count_include_pad=count,
               divisor_override=5, **case)
    assert {v for row in res["divisor"] for v in row} == {5}


@pytest.mark.parametrize("case", KERAS_CASES)
@pytest.mark.parametrize("count", [False, True])
def test_keras_avg_output_is_window_sum_over_divisor(client, case, count):
    x = np.random.default_rng(4).random((8, 9))
    res = pool(client, x=x.tolist(), kind="avg", convention="keras", count_include_pad=count,
               **case)
    win = response_windows(res, x.shape)
    out = out_array(res)
    for i, j in itertools.product(*map(range, out.shape)):
        n = int(win[i, j].sum())
        if not count:
            assert res["divisor"][i][j] == n
        assert res["divisor"][i][j] >= n
        assert math.isclose(x[win[i, j]].sum() / res["divisor"][i][j], out[i, j], rel_tol=1e-12)


def test_empty_window_gives_null_not_a_crash(client):
    # Dilation 3 with 2 cells of padding before: the second window reads rows -1 and 2 of a
    # 2-row input, both outside it, so max pooling gives -inf there.
    x = [[1.0], [2.0]]
    res = pool(client, x=x, kind="max", convention="keras", pool_size=[2, 1], strides=[1, 1],
               padding=[[2, 1], [0, 0]], dilation=[3, 1])
    assert res["output"] == [[2.0], [None]] and res["argmax"][1][0] is None
    assert poolkit.max_pool(np.array(x)[None, :, :, None], (2, 1), (1, 1), ((2, 1), (0, 0)),
                            dilation=(3, 1))[0, 1, 0, 0] == -np.inf


# --------------------------------------------------------------------------------------------
# Shape rules.


def keras_ref(L, k, s, d, padding):
    e = d * (k - 1) + 1
    if padding == "valid":
        return (L - e) // s + 1
    if padding == "same":
        return math.ceil(L / s)
    return (L + padding[0] + padding[1] - e) // s + 1


def eval_formula(text):
    """The value of the formula's left-hand side (floor/ceil of integer arithmetic)."""
    lhs = text.split(" = ")[0]
    assert re.fullmatch(r"[\d\s()+\-*/floorceil]+", lhs), lhs
    return eval(lhs, {"__builtins__": {}, "floor": math.floor, "ceil": math.ceil})


@pytest.mark.parametrize("convention,extra", [
    ("keras", dict(padding="valid", dilation=[1, 1])),
    ("keras", dict(padding=[[1, 1], [0, 1]], dilation=[2, 1])),
    ("torch", dict(padding=[1, 1], ceil_mode=True, dilation=[1, 2])),
    ("torch", dict(padding=[0, 1], ceil_mode=False, dilation=[1, 1])),
])
@pytest.mark.parametrize("size", [(28, 28), (13, 17), (5, 6)])
def test_shape_rules_of_both_conventions(client, convention, extra, size):
    torch = pytest.importorskip("torch")
    x = np.zeros(size).tolist()
    res = pool(client, x=x, kind="max", convention=convention, pool_size=[3, 2],
               strides=[2, 2], **extra)
    rules = res["shapes"]["rules"]
    d = extra["dilation"]
    active = [r for r in rules if r["active"]]
    assert len(active) == 1 and active[0]["shape"] == res["shape"]
    for r in rules:
        if r["convention"] == "keras":
            want = [keras_ref(L, k, 2, dd, r["padding"] if isinstance(r["padding"], str)
                              else r["padding"][a])
                    for a, (L, k, dd) in enumerate(zip(size, (3, 2), d, strict=True))]
        else:
            try:
                want = list(torch.nn.functional.max_pool2d(
                    torch.zeros(1, 1, *size), (3, 2), 2, r["padding"], d,
                    r["ceil_mode"]).shape[2:])
            except RuntimeError:
                want = None
        if want is None or min(want) < 1:
            assert r["shape"] is None and r["error"], r
            continue
        assert r["shape"] == want, r
        for text, n in zip(r["formula"], want, strict=True):
            assert text.split(" = ")[-1].split(" ")[0] == str(n) or f"-> {n} " in text
            raw = eval_formula(text)
            assert raw == n or (r["ceil_mode"] and raw == n + 1 and f"-> {n}" in text)


# --------------------------------------------------------------------------------------------
# Digits and uploads.


def test_digits_and_one_digit(client):
    from poolkit.keras.datasets import mnist_sample

    _, (xt, yt) = mnist_sample.load_data()
    d = client.get("/api/digits").json()
    assert d["count"] == len(yt) == 2000 and d["labels"] == yt.tolist()
    r = client.get("/api/digit/17").json()
    assert r["label"] == int(yt[17])
    np.testing.assert_allclose(np.array(r["x"]), xt[17] / 255.0, atol=5e-5)


def test_upload_is_made_mnist_like_by_load_image(client, tmp_path):
    from poolkit.lab.figures import load_image

    # A dark digit on white paper, larger than MNIST and off centre, as a photo would be.
    ink = (255 - (digit(5) * 255)).astype(np.uint8)
    big = Image.fromarray(ink).resize((90, 90)).crop((-10, -30, 110, 100))
    for fmt, ctype in (("PNG", "image/png"), ("JPEG", "image/jpeg"), ("BMP", "image/bmp")):
        data = png_bytes(big.convert("L") if fmt == "JPEG" else big, fmt)
        r = client.post("/api/upload", content=data, headers={"Content-Type": ctype})
        assert r.status_code == 200, r.text
        res = r.json()
        path = tmp_path / f"up.{fmt.lower()}"
        path.write_bytes(data)
        np.testing.assert_allclose(np.array(res["x"]), load_image(path), atol=5e-5)
        assert (res["width"], res["height"], res["format"]) == (120, 130, fmt)


# --------------------------------------------------------------------------------------------
# The model.


def test_model_status_and_feature_maps(client, model):
    st = client.get("/api/model").json()
    assert st["status"] == "ready"
    assert [layer["type"] for layer in st["layers"]] == [
        "Conv2D", "MaxPooling2D", "Flatten", "Dense"]
    x = digit(7)
    res = client.post("/api/model", json={"x": x.tolist()}).json()
    conv = model.layers[0](x[None, :, :, None].astype(np.float32))
    np.testing.assert_allclose(np.array(res["conv"]["maps"]), conv[0].transpose(2, 0, 1),
                               atol=6e-5)
    pooled = poolkit.max_pool(conv, 2)
    np.testing.assert_allclose(np.array(res["pooled"]["maps"]), pooled[0].transpose(2, 0, 1),
                               atol=6e-5)
    assert res["pooled"]["shape"] == [13, 13, 32]
    probs = model.predict(x[None, :, :, None].astype(np.float32), verbose=0)[0]
    np.testing.assert_allclose(res["scores"], probs, atol=1e-5)
    assert res["prediction"] == int(np.argmax(probs))


def shift_ref(x, dy, dx):
    out = np.zeros_like(x)
    out[dy:, dx:] = x[:x.shape[0] - dy, :x.shape[1] - dx]
    return out


def test_shift_moves_the_digit_and_predicts_every_shift(client, model):
    x = digit(11)
    res = client.post("/api/shift", json={"x": x.tolist(), "shift": [1, 3]}).json()
    np.testing.assert_allclose(np.array(res["x"]), shift_ref(x, 1, 3), atol=5e-5)
    batch = np.stack([shift_ref(x, i, j) for i in range(5) for j in range(5)])
    preds = model.predict(batch[..., None].astype(np.float32), verbose=0).argmax(1)
    assert res["grid"] == preds.reshape(5, 5).tolist()
    assert res["prediction"] == preds[1 * 5 + 3] and res["base"]["prediction"] == preds[0]
    assert res["consistent"] == int((preds == preds[0]).sum())
    conv = model.layers[0](shift_ref(x, 1, 3)[None, :, :, None].astype(np.float32))
    np.testing.assert_allclose(np.array(res["pooled"]["maps"]),
                               poolkit.max_pool(conv, 2)[0].transpose(2, 0, 1), atol=6e-5)
    assert res["equivariance"]["error"] >= 0 and len(res["equivariance"]["q"]) == 2
    # A shift by the stride moves a non-overlapping max-pooled map by one cell exactly.
    even = client.post("/api/shift", json={"x": x.tolist(), "shift": [2, 0]}).json()
    assert even["equivariance"]["error"] == pytest.approx(0.0, abs=1e-6)


def test_default_model_trains_in_the_background_and_is_cached(tmp_path):
    app = create_app(cache_dir=str(tmp_path), train_examples=200, epochs=1)
    with TestClient(app, base_url=BASE) as c:
        st = c.get("/api/model").json()
        assert st["status"] in ("training", "ready")
        assert "demo's model" in st["source"]
        if st["status"] == "training":
            r = c.post("/api/model", json={"x": digit().tolist()})
            assert r.status_code == 503 and "training" in r.json()["error"]
            assert c.get("/api/health").json() == {"status": "ok"}  # still answering
        deadline = time.monotonic() + 240
        while st["status"] == "training" and time.monotonic() < deadline:
            time.sleep(0.5)
            st = c.get("/api/model").json()
        assert st["status"] == "ready", st
        assert c.post("/api/model", json={"x": digit().tolist()}).status_code == 200
    cached = list(tmp_path.glob("*.poolkit"))
    assert len(cached) == 1
    with TestClient(create_app(cache_dir=str(tmp_path), train_examples=200, epochs=1),
                    base_url=BASE) as c:
        assert c.get("/api/model").json()["status"] == "ready"  # from the cache, at once


def test_failed_training_is_reported_not_hidden(tmp_path):
    # No training digits: the child process fails, and the page is told why.
    with TestClient(create_app(cache_dir=str(tmp_path), train_examples=0, epochs=1),
                    base_url=BASE) as c:
        deadline = time.monotonic() + 120
        st = c.get("/api/model").json()
        while st["status"] == "training" and time.monotonic() < deadline:
            time.sleep(0.3)
            st = c.get("/api/model").json()
        assert st["status"] == "failed" and "training the default model failed" in st["error"]
        r = c.post("/api/model", json={"x": digit().tolist()})
        assert r.status_code == 503 and r.json()["error"].startswith("model: training")
    assert list(tmp_path.glob("*.poolkit")) == []


def test_a_model_without_pooling_shows_its_conv_maps(tmp_path):
    from poolkit import keras

    keras.utils.set_random_seed(0)
    plain = keras.Sequential([keras.layers.Conv2D(4, 3, activation="relu",
                                                  input_shape=(28, 28, 1)),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    with TestClient(create_app(model=plain), base_url=BASE) as c:
        st = c.get("/api/model").json()
        assert st["status"] == "ready" and st["conv"] == 0 and st["pool"] is None
        res = c.post("/api/model", json={"x": digit().tolist()}).json()
        assert res["pooled"] is None and res["conv"]["shape"] == [26, 26, 4]
        sh = c.post("/api/shift", json={"x": digit().tolist(), "shift": [1, 1]}).json()
        assert sh["pooled"] is None and sh["equivariance"] is None and len(sh["grid"]) == 5


def test_bad_model_files_are_refused_without_unpickling(tmp_path, model):
    bad = tmp_path / "bad.poolkit"
    bad.write_bytes(b"\x80\x04\x95 not a zip, a pickle header")
    with pytest.raises(InvalidValue, match="--model"):
        create_app(model_path=str(bad))
    with pytest.raises(InvalidValue, match="no model file"):
        create_app(model_path=str(tmp_path / "missing.poolkit"))
    from poolkit import keras

    other = keras.Sequential([keras.layers.Conv2D(2, 3, input_shape=(10, 10, 1)),
                              keras.layers.Flatten(), keras.layers.Dense(3)])
    path = tmp_path / "other.poolkit"
    other.save(path)
    with pytest.raises(InvalidValue, match="28x28x1"):
        create_app(model_path=str(path))
    good = tmp_path / "good.poolkit"
    model.save(good)
    with TestClient(create_app(model_path=str(good)), base_url=BASE) as c:
        assert c.get("/api/model").json()["source"].startswith("good.poolkit")


# --------------------------------------------------------------------------------------------
# Bad requests: each gets a JSON error naming the field and rule, and the server survives.


def big_png(w, h) -> bytes:
    return png_bytes(Image.new("L", (w, h)))


def noise_png() -> bytes:
    rng = np.random.default_rng(5)
    return png_bytes(Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)))


GOOD = {"x": [[0.0, 1.0], [2.0, 3.0]], "kind": "max", "convention": "keras",
        "pool_size": [2, 2]}

BAD_POOL = [
    ([1, 2], None, "JSON object"),
    ({"kind": "max"}, "x", "required"),
    ({**GOOD, "x": "abc"}, "x", "2-D list"),
    ({**GOOD, "x": []}, "x", "non-empty"),
    ({**GOOD, "x": [[1, 2], [3]]}, "x", "same length"),
    ({**GOOD, "x": [[1, "a"]]}, "x", "number"),
    ({**GOOD, "x": [[1, True]]}, "x", "number"),
    ({**GOOD, "x": [[1, None]]}, "x", "number"),
    ({**GOOD, "x": [[1e300, 1]]}, "x", "finite"),
    ({**GOOD, "x": [[0.0] * 65]}, "x", "at most 64 columns"),
    ({**GOOD, "x": [[0.0]] * 65}, "x", "at most 64 rows"),
    ({**GOOD, "x": [[[1]]]}, "x", "number"),
    ({**GOOD, "kind": "median"}, "kind", "one of"),
    ({**GOOD, "kind": ["max"]}, "kind", "one of"),
    ({**GOOD, "convention": "tf"}, "convention", "one of"),
    ({**GOOD, "pool_size": [0, 2]}, "pool_size", "[1, 32]"),
    ({**GOOD, "pool_size": [33, 2]}, "pool_size", "[1, 32]"),
    ({**GOOD, "pool_size": [2]}, "pool_size", "two ints"),
    ({**GOOD, "pool_size": "2"}, "pool_size", "int"),
    ({**GOOD, "pool_size": [2.5, 2]}, "pool_size", "int"),
    ({**GOOD, "pool_size": 10**30}, "pool_size", "[1, 32]"),
    ({**GOOD, "pool_size": [3, 3]}, None, "output size"),
    ({**GOOD, "strides": [0, 1]}, "strides", "[1, 32]"),
    ({**GOOD, "padding": "full"}, "padding", "'valid', 'same'"),
    ({**GOOD, "padding": [[1, 2, 3]]}, "padding", "'valid', 'same'"),
    ({**GOOD, "padding": [[5, 0], [0, 0]]}, None, "effective window"),
    ({**GOOD, "padding": [[-1, 0], [0, 0]]}, "padding", "[0, 32]"),
    ({**GOOD, "dilation": [0, 1]}, "dilation", "[1, 8]"),
    ({**GOOD, "ceil_mode": True}, "ceil_mode", "not a parameter"),
    ({**GOOD, "count_include_pad": True}, "count_include_pad", "not a parameter"),
    ({**GOOD, "kind": "avg", "dilation": [2, 2]}, "dilation", "not a parameter"),
    ({**GOOD, "convention": "torch", "padding": [2, 2]}, None, "at most half"),
    ({**GOOD, "convention": "torch", "padding": "same"}, "padding", "int"),
    ({**GOOD, "convention": "torch", "ceil_mode": "yes"}, "ceil_mode", "true or false"),
    ({**GOOD, "convention": "torch", "kind": "avg", "divisor_override": 0},
     "divisor_override", "null or an int"),
    ({**GOOD, "convention": "torch", "stride": [1, 1]}, "stride", "not a parameter"),
    # Found by the fuzz harness: a JSON int beyond float's range escaped as OverflowError (500)
    ({**GOOD, "kind": "lp", "p": 10**400}, "p", "got int"),
]


@pytest.mark.parametrize("body,field,rule", BAD_POOL)
def test_bad_pool_requests_get_400_naming_field_and_rule(client, body, field, rule):
    r = client.post("/api/pool", json=body)
    assert r.status_code == 400, (body, r.text)
    msg = r.json()["error"]
    if field:
        assert msg.startswith(f"{field}:"), msg
    assert rule in msg, msg


def test_malformed_and_hostile_requests_then_health(client):
    post = client.post
    deep = "[" * 200_000 + "]" * 200_000  # 400 kB, deeper than any parser's recursion
    cases = [
        (post("/api/pool", content=b"{not json", headers={"Content-Type": "application/json"}),
         400),
        (post("/api/pool", content=b"\xff\xfe", headers={"Content-Type": "application/json"}),
         400),
        (post("/api/pool", content=deep.encode(), headers={"Content-Type": "application/json"}),
         400),
        (post("/api/pool", content=b'{"x": [[NaN, 1]], "kind": "max"}',
              headers={"Content-Type": "application/json"}), 400),
        (post("/api/pool", content=b'{"x": [[Infinity]]}',
              headers={"Content-Type": "application/json"}), 400),
        (post("/api/pool", content=b'{"x": [[' + b"9" * 5000 + b"]]}",
              headers={"Content-Type": "application/json"}), 400),
        (post("/api/pool", content=json.dumps(GOOD).encode(),
              headers={"Content-Type": "text/plain"}), 415),
        (post("/api/pool", content=json.dumps(GOOD).encode()), 415),
        (post("/api/pool", content=b"x" * (MAX_BODY + 1),
              headers={"Content-Type": "application/json"}), 413),
        (post("/api/pool", content=iter([b"[" * 65536] * 17),
              headers={"Content-Type": "application/json"}), 413),  # chunked, no length
        (post("/api/pool", content=b"{}", headers={"Content-Type": "application/json",
                                                   "Content-Length": "abc"}), 400),
        (client.get("/api/pool"), 405),
        (client.put("/api/health"), 405),
        (client.get("/api/nothing"), 404),
        (client.get("/api/digit/-1"), 400),
        (client.get("/api/digit/2000"), 400),
        (client.get("/api/digit/abc"), 400),
        (client.get("/api/digit/99999999999999999999"), 400),
        (client.get("/api/digit/%C2%B2"), 400),  # a superscript two: isdigit() but not an int
        (post("/api/upload", content=b""), 415),
        (post("/api/upload", content=b"", headers={"Content-Type": "image/png"}), 400),
        (post("/api/upload", content=b"hello", headers={"Content-Type": "image/png"}), 400),
        (post("/api/upload", content=b"<svg xmlns='http://www.w3.org/2000/svg'/>",
              headers={"Content-Type": "image/svg+xml"}), 400),
        (post("/api/upload", content=noise_png()[:400],
              headers={"Content-Type": "image/png"}), 400),  # truncated
        (post("/api/upload", content=big_png(5000, 20),
              headers={"Content-Type": "image/png"}), 400),  # too wide
        (post("/api/upload", content=big_png(20000, 20000),
              headers={"Content-Type": "image/png"}), 413),  # a small file, a huge image
        (post("/api/upload", content=b"\x89PNG" + b"\0" * (MAX_BODY),
              headers={"Content-Type": "image/png"}), 413),
        (post("/api/upload", content=png_bytes(Image.new("RGB", (8, 8)), "TIFF"),
              headers={"Content-Type": "image/tiff"}), 400),  # not an accepted format
        (post("/api/model", json={"x": [[0.0] * 27] * 28}), 400),
        (post("/api/model", json={"y": 1}), 400),
        (post("/api/model", json=[]), 400),
        (post("/api/shift", json={"x": [[0.0] * 28] * 28, "shift": [5, 0]}), 400),
        (post("/api/shift", json={"x": [[0.0] * 28] * 28, "shift": [-1, 0]}), 400),
        (post("/api/shift", json={"x": [[0.0] * 28] * 28, "shift": [True, 0]}), 400),
        (post("/api/shift", json={"x": [[0.0] * 28] * 28, "shift": "1"}), 400),
    ]
    for i, (r, status) in enumerate(cases):
        assert r.status_code == status, (i, r.status_code, r.text[:200])
        if status != 405 or r.headers.get("content-type", "").startswith("application/json"):
            assert isinstance(r.json()["error"], str) and r.json()["error"], i
    assert client.get("/api/health").json() == {"status": "ok"}
    assert pool(client, **GOOD)["output"] == [[3.0]]


def test_error_messages_name_the_rule(client):
    r = client.post("/api/upload", content=big_png(5000, 20), headers={"Content-Type": "image/png"})
    assert "image: is 5000 x 20 pixels; at most 4096 x 4096" in r.json()["error"]
    r = client.post("/api/shift", json={"x": [[0.0] * 28] * 28, "shift": [5, 0]})
    assert r.json()["error"].startswith("shift: must be [down, right], two ints in [0, 4]")
    r = client.post("/api/model", json={"x": [[0.0] * 27] * 28})
    assert r.json()["error"] == "x: must be 28 x 28 (the model's input), got 28 x 27"


# --------------------------------------------------------------------------------------------
# A new kind is one table entry.


def test_a_new_kind_is_one_table_entry(client, monkeypatch):
    """A kind added to poolkit.kinds without an explorer entry is listed but refused; one entry
    in CALLS (here a hypothetical range pooling, max - min of each window, written with the
    library's ops for the test) is all it takes for the API, and so the page, to offer it."""
    from poolkit import kinds as pk
    from poolkit.explore import kinds as ek

    new = pk.Kind("range", "range pooling (max - min)", "range_pool", "RangePooling2D",
                  "windowed", "max")
    monkeypatch.setattr(ek, "KINDS", {**pk.KINDS, "range": new})
    monkeypatch.setattr(ek, "POOL_KINDS", (*pk.POOL_KINDS, "range"))
    listed = {k["name"]: k for k in client.get("/api/kinds").json()["kinds"]}
    assert listed["range"]["explorer"] is False and listed["range"]["conventions"] == {}
    r = client.post("/api/pool", json={**GOOD, "kind": "range"})
    assert r.status_code == 400 and r.json()["error"].startswith("kind: must be one of")

    def range_pool(x, a):
        args = (a["pool_size"], a["strides"], a["padding"])
        return poolkit.max_pool(x, *args) - poolkit.min_pool(x, *args)

    entry = ek.Call("range_pool", (ek.POOL_SIZE, ek.STRIDES, ek.KERAS_PADDING),
                    ek._keras(range_pool), ek._keras_windows)
    monkeypatch.setitem(ek.CALLS, "range", {"keras": entry})
    listed = {k["name"]: k for k in client.get("/api/kinds").json()["kinds"]}
    assert listed["range"]["explorer"] is True and listed["range"]["family"] == "windowed"
    assert [p["name"] for p in listed["range"]["conventions"]["keras"]["params"]] == [
        "pool_size", "strides", "padding"]
    r = client.post("/api/pool", json={**GOOD, "kind": "range", "convention": "torch"})
    assert r.status_code == 400 and r.json()["error"].startswith(
        "convention: range pooling (max - min) has no torch-convention call")
    x = np.random.default_rng(6).normal(size=(6, 7))
    res = pool(client, x=x.tolist(), kind="range", convention="keras", pool_size=[2, 3],
               strides=[2, 2], padding="same")
    assert res["explain"] == "window" and res["shapes"]["rules"][1]["active"]  # 'same'
    win = response_windows(res, x.shape)
    out = out_array(res)
    for i, j in itertools.product(*map(range, out.shape)):
        assert out[i, j] == x[win[i, j]].max() - x[win[i, j]].min()
