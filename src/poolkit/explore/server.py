"""The explorer's web server: a Starlette app over :mod:`.api` and :mod:`.model`, and the page.

Routes (all JSON unless said; errors are ``{"error": "<field>: <rule>"}`` with 400, 404, 405,
413 (a body over 1 MB), 415 (not JSON), 503 (the model is still training) or 500 (a bug)):

    GET  /                    the page;  GET /static/<name>: its files (a fixed list)
    GET  /api/health          {"status": "ok"}
    GET  /api/kinds           the pooling kinds, their parameters per convention, the limits
    POST /api/pool            pool a grid: output, windows, argmax/divisor, both shape rules
    GET  /api/digits          the embedded sample's size and labels
    GET  /api/digit/{index}   one test digit, 28x28 in [0, 1]
    POST /api/upload          an image file's bytes (PNG/JPEG/GIF/BMP/WebP) -> a 28x28 digit
    GET  /api/model           the model's status (training/ready/failed) and layers
    POST /api/model           {"x"}: conv feature maps before/after pooling, prediction
    POST /api/shift           {"x", "shift": [dy, dx]}: the same for a shifted input

Every computation runs in a worker thread under one lock (the compiled kernels and the model's
layers are not shared between concurrent calls), so the event loop keeps answering.
"""

from __future__ import annotations

import json
import logging
import threading
from contextlib import asynccontextmanager
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import api
from .kinds import kinds_json
from .model import ModelState, feature_maps, shift_report

__all__ = ["create_app", "STATIC_FILES"]

log = logging.getLogger("poolkit.explore")

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
STATIC_FILES = ("index.html", "app.js", "style.css", "favicon.svg")
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                               "style-src 'self'; script-src 'self'; connect-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _static() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the package: the only files the server ever sends."""
    root = resources.files(__package__).joinpath("static")
    out = {}
    for name in STATIC_FILES:
        ext = name[name.rfind("."):]
        out[name] = (root.joinpath(name).read_bytes(), _TYPES[ext])
    return out


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)


class _JSON(JSONResponse):
    def render(self, content) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("utf-8")


class BodyLimit:
    """ASGI middleware: reads at most ``limit`` bytes of a request body; a longer body (by its
    Content-Length or as it arrives) gets 413 before the app sees the request."""

    def __init__(self, app, limit: int = api.MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._refuse(send, 413 if length.isdigit() else 400,
                                      f"request body over {self.limit} bytes (1 MB)"
                                      if length.isdigit() else "bad Content-Length header")
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > self.limit:
                return await self._refuse(send, 413, f"request body over {self.limit} bytes "
                                                     "(1 MB)")
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        whole = b"".join(chunks)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send, status: int, message: str):
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def create_app(model=None, model_path: str | None = None, *, cache_dir: str | None = None,
               train_examples: int | None = None, epochs: int | None = None,
               allowed_hosts: tuple[str, ...] | None = ("127.0.0.1", "localhost", "[::1]")):
    """The explorer as an ASGI app.

    ``model``: a poolkit model object; else ``model_path``: a saved model file (checked now:
    bad files raise InvalidValue); else the default model, loaded from its cache or trained in
    a child process at startup (``cache_dir``, ``train_examples``, ``epochs`` override its
    recipe). ``allowed_hosts``: the Host headers answered (a guard against DNS rebinding);
    None answers any host.
    """
    kw = {k: v for k, v in (("train_examples", train_examples), ("epochs", epochs))
          if v is not None}
    state = ModelState(model, model_path, cache_dir=cache_dir, **kw)
    files = _static()
    lock = threading.Lock()

    def locked(fn, *args):
        with lock:
            return fn(*args)

    async def compute(fn, *args):
        return await run_in_threadpool(locked, fn, *args)

    async def body_json(request: Request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise api.ApiError(f"Content-Type must be application/json, got {ctype!r}", None, 415)
        raw = await request.body()
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as e:
            raise api.ApiError(f"the request body is not valid JSON ({type(e).__name__}: "
                               f"{str(e)[:100]})") from None

    async def index(request):
        return Response(files["index.html"][0], media_type=files["index.html"][1],
                        headers=_HEADERS)

    async def static(request):
        name = request.path_params["name"]
        if name not in files:
            raise HTTPException(404, f"no such file: {name[:60]!r}")
        data, ctype = files[name]
        return Response(data, media_type=ctype, headers=_HEADERS)

    async def health(request):
        return _JSON({"status": "ok"}, headers=_HEADERS)

    async def kinds(request):
        return _JSON(kinds_json(), headers=_HEADERS)

    async def pool(request):
        body = await body_json(request)
        return _JSON(await compute(api.pool, body), headers=_HEADERS)

    async def digits(request):
        return _JSON(await compute(api.digits), headers=_HEADERS)

    async def digit(request):
        return _JSON(await compute(api.digit, request.path_params["index"]), headers=_HEADERS)

    async def upload(request):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not (ctype.startswith("image/") or ctype == "application/octet-stream"):
            raise api.ApiError(f"Content-Type must be an image type (image/png, ...), got "
                               f"{ctype!r}: send the file's bytes as the body", None, 415)
        data = await request.body()
        return _JSON(await compute(api.image_to_digit, data), headers=_HEADERS)

    async def model_status(request):
        return _JSON(state.status(), headers=_HEADERS)

    async def model_maps(request):
        body = await body_json(request)
        m, parts = state.get()
        return _JSON(await compute(feature_maps, m, parts, body), headers=_HEADERS)

    async def shift(request):
        body = await body_json(request)
        m, parts = state.get()
        return _JSON(await compute(shift_report, m, parts, body), headers=_HEADERS)

    async def on_api_error(request, exc: api.ApiError):
        return _error(exc.status, str(exc))

    async def on_http_error(request, exc: HTTPException):
        return _error(exc.status_code, str(exc.detail))

    async def on_bug(request, exc: Exception):
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, f"internal error ({type(exc).__name__}); see the server's log")

    @asynccontextmanager
    async def lifespan(app):
        if state.model is None:
            state.start()
        try:
            yield
        finally:
            state.stop()

    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    routes = [
        Route("/", index),
        Route("/static/{name}", static),
        Route("/api/health", health),
        Route("/api/kinds", kinds),
        Route("/api/pool", pool, methods=["POST"]),
        Route("/api/digits", digits),
        Route("/api/digit/{index}", digit),
        Route("/api/upload", upload, methods=["POST"]),
        Route("/api/model", model_status, methods=["GET"]),
        Route("/api/model", model_maps, methods=["POST"]),
        Route("/api/shift", shift, methods=["POST"]),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={api.ApiError: on_api_error, HTTPException: on_http_error,
                                        Exception: on_bug})
    app.state.model = state
    return BodyLimit(app)
