"""Target for the explorer's web API through Starlette's TestClient: random and hostile requests
to every route. A 5xx, an exception out of the app, or a 4xx without a JSON ``error`` is a
finding; the server must validate every request and survive every bad one."""

from __future__ import annotations

import functools
import io
import json

import numpy as np

from .. import gen
from ..oracle import fail, note, target

BASE = "http://127.0.0.1"


@functools.cache
def client():
    """One app and client per worker, with the tutorial's (untrained) model: no training."""
    from starlette.testclient import TestClient

    from poolkit.explore import create_app
    from poolkit.lab.models import seed_model

    c = TestClient(create_app(model=seed_model()), base_url=BASE)
    c.__enter__()
    return c


def _grid(rng, rows=None, cols=None):
    rows = rows or int(rng.integers(1, 12))
    cols = cols or int(rng.integers(1, 12))
    g = np.round(rng.uniform(-4, 4, size=(rows, cols)), 3).tolist()
    if gen.chance(rng, gen.bad_rate()):
        r = rng.random()
        if r < 0.3:
            g[int(rng.integers(rows))][0] = gen.pick(rng, gen.JSON_BAD)
        elif r < 0.5 and rows > 1:
            g[-1] = g[-1][:-1] or [1.0, 2.0]
        elif r < 0.6:
            return [[0.0] * 65] * 2
        else:
            return gen.pick(rng, gen.JSON_BAD)
    return g


def _param_value(rng, p):
    """A value for explorer parameter ``p`` (an explore.kinds.Param): in range, near its
    bounds, or hostile."""
    if gen.chance(rng, gen.bad_rate()):
        return gen.pick(rng, gen.JSON_BAD)

    def num():
        return int(rng.integers(p.low - 1, p.high + 2)) if p.high else int(rng.integers(0, 4))

    c = p.control
    if c in ("size", "torch_padding"):
        return [num(), num()]
    if c in ("stride", "size_or_null", "output_size"):
        return None if gen.chance(rng, 0.3) else [num(), num()]
    if c == "keras_padding":
        return gen.pick(rng, ("valid", "same", [[0, 1], [1, 0]], [[2, 2], [0, 0]]))
    if c == "bool":
        return gen.chance(rng, 0.5)
    if c in ("int", "int_or_null"):
        return None if c == "int_or_null" and gen.chance(rng, 0.3) else num()
    if c == "choice":
        return gen.pick(rng, tuple(p.options) or ("x",))
    if c == "norm":
        return gen.pick(rng, (1, 2, 3, "inf", 0.5, p.high or 8, 0))
    if c == "ratio":
        return gen.pick(rng, (None, 0.5, 0.7, 0.99, 1.0))
    return gen.pick(rng, gen.JSON_BAD)


def pool_body(rng, with_x: bool = True) -> dict:
    from poolkit.explore.kinds import CALLS, CONVENTIONS

    kind = gen.pick(rng, sorted(CALLS))
    conv = gen.pick(rng, sorted(CALLS[kind]) if not gen.chance(rng, 0.05) else CONVENTIONS)
    body = {"kind": kind, "convention": conv}
    for p in CALLS[kind].get(conv, next(iter(CALLS[kind].values()))).params:
        if gen.chance(rng, 0.8):
            body[p.name] = _param_value(rng, p)
    if with_x:
        body["x"] = _grid(rng)
    if gen.chance(rng, 0.05):
        body[gen.pick(rng, ("bogus", "kind", "x"))] = gen.pick(rng, gen.JSON_BAD)
    return body


def _png(rng) -> bytes:
    from PIL import Image

    side = int(rng.integers(1, 60))
    img = Image.fromarray(rng.integers(0, 256, size=(side, side), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, gen.pick(rng, ("PNG", "BMP", "GIF", "JPEG")))
    data = buf.getvalue()
    r = rng.random()
    if r < 0.2:
        return data[: int(rng.integers(0, len(data)))]
    if r < 0.3:  # a PNG header declaring a huge image
        return data[:16] + (10**5).to_bytes(4, "big") * 2 + data[24:]
    if r < 0.4:
        return rng.bytes(int(rng.integers(0, 300)))
    return data


def request(rng) -> tuple[str, str, dict]:
    """(method, path, keyword arguments of client.request)."""
    r = rng.random()
    if r < 0.4:
        return "POST", "/api/pool", {"json": pool_body(rng)}
    if r < 0.5:
        return "POST", "/api/model", {"json": {"x": _grid(rng, 28, 28) if gen.chance(rng, 0.8)
                                                else _grid(rng)}}
    if r < 0.6:
        body = {"x": _grid(rng, 28, 28), "shift": [int(rng.integers(-1, 6)) for _ in range(2)],
                "channel": int(rng.integers(-1, 34)),
                "pool": pool_body(rng, with_x=False) if gen.chance(rng, 0.7) else None}
        if gen.chance(rng, gen.bad_rate()):
            body[gen.pick(rng, list(body))] = gen.pick(rng, gen.JSON_BAD)
        return "POST", "/api/shift", {"json": body}
    if r < 0.7:
        ctype = gen.pick(rng, ("image/png", "application/octet-stream", "image/x", "text/plain"))
        return "POST", "/api/upload", {"content": _png(rng), "headers": {"content-type": ctype}}
    if r < 0.8:
        index = gen.pick(rng, ("0", "9999", "10000", "-1", "1e3", "x", "%00", "99999999999999999"))
        return "GET", f"/api/digit/{index}", {}
    if r < 0.9:  # raw bodies: not JSON, deeply nested, wrong type, too big
        raw = gen.pick(rng, (b"{", b"\xff\xfe", b"[" * 100000 + b"]" * 100000, b"null",
                             b"[1, 2]", b'"x"', b"1e999", b"{}", b" " * (1 << 20 | 1)))
        path = gen.pick(rng, ("/api/pool", "/api/model", "/api/shift"))
        ctype = gen.pick(rng, ("application/json", "application/json; charset=utf-8",
                               "text/plain", ""))
        return "POST", path, {"content": raw, "headers": {"content-type": ctype}}
    path = gen.pick(rng, ("/", "/api/health", "/api/kinds", "/api/digits", "/api/model",
                          "/static/app.js", "/static/../server.py", "/static/%2e%2e", "/nope"))
    return gen.pick(rng, ("GET", "GET", "POST", "PUT", "DELETE")), path, {}


@target("explore.api", "explore", weight=6, strict=True, covers=("explore.create_app",))
def _explore(rng):
    method, path, kw = request(rng)
    shown = {k: (v if k != "content" else v[:40]) for k, v in kw.items()}
    note(method, path, **shown)
    try:
        r = client().request(method, path, **kw)
    except Exception as e:  # noqa: BLE001 - the app let an exception out
        fail("server", f"{type(e).__name__} out of the app: {str(e)[:300]}")
    if r.status_code >= 500:
        fail("server", f"HTTP {r.status_code}: {r.text[:300]}")
    if r.status_code >= 400:
        try:
            ok = isinstance(r.json().get("error"), str)
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            fail("server", f"HTTP {r.status_code} without a JSON error: {r.text[:200]}")
    elif r.headers.get("content-type", "").startswith("application/json"):
        json.loads(r.text, parse_constant=_no_constant)  # strict JSON: the page parses it


def _no_constant(name: str):
    fail("server", f"the response has {name}, which is not JSON")
