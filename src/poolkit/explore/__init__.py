"""``poolkit explore``: an interactive pooling explorer in the browser.

A small local web app (Starlette, served by uvicorn) whose page lets a learner pick any pooling
kind poolkit has (max, average, min, LP, BlurPool, MaxBlurPool, adaptive polyphase sampling,
adaptive, global, fractional), window, stride, padding (Keras words or PyTorch numbers),
dilation, ceil_mode, count_include_pad and each kind's own parameters, on a real digit, an
uploaded image or a drawing, and see the output, each cell's window and arithmetic, the shape
formulas, a trained model's feature maps before and after pooling, and what shifting the input
does to max pooling and to the anti-aliased kinds. Every number comes from poolkit's
library over a JSON API (see :mod:`.server`); the page's files ship inside the package.

Needs the ``explore`` extra: ``pip install 'poolkit[explore]'``.
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import webbrowser

__all__ = ["REQUIREMENTS", "missing_dependencies", "create_app", "serve"]

#: import name -> what pip installs it as
REQUIREMENTS = {"starlette": "starlette", "uvicorn": "uvicorn", "PIL": "pillow"}


def missing_dependencies() -> list[str]:
    """The pip names of the explorer's packages that are not installed (imports nothing)."""
    return [pip for mod, pip in REQUIREMENTS.items() if importlib.util.find_spec(mod) is None]


def create_app(*args, **kwargs):
    """The explorer's ASGI app; see :func:`poolkit.explore.server.create_app`."""
    from .server import create_app as _create

    return _create(*args, **kwargs)


def _bind(host: str, port: int) -> socket.socket:
    from ..errors import InvalidValue

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise InvalidValue(f"--host {host!r} is not an address this machine can listen on "
                           f"({e})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise InvalidValue(f"cannot listen on {host}:{port}: {e.strerror or e}; pick another "
                           f"--port (0 lets the system choose)") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def serve(host: str = "127.0.0.1", port: int = 8765, open_browser: bool = True,
          model: str | None = None, *, stream=None) -> int:
    """Run the explorer until Ctrl-C (then return 0). Listens on ``host``:``port`` (127.0.0.1
    by default: only this machine can connect; ``port`` 0 picks a free port), opens the page in
    the default browser unless ``open_browser`` is False, and uses the saved poolkit model
    ``model`` or, if None, the demo's model (trained once in the background and cached).

    Raises InvalidValue for a bad model file and for an address that cannot be used (the
    command line reports both as errors, without a traceback).
    """
    import uvicorn

    from ..errors import InvalidType, InvalidValue

    stream = stream or sys.stderr
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InvalidValue(f"--port must be an int in [0, 65535], got {port!r}")
    if not isinstance(host, str) or not host:
        raise InvalidType(f"--host must be a host name or address, got {host!r}")
    local = host in ("127.0.0.1", "localhost", "::1")
    allowed = ("127.0.0.1", "localhost", "[::1]") if local else None
    app = create_app(model_path=model, allowed_hosts=allowed)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    print(f"poolkit explore: serving {url} (Ctrl-C to stop)"
          + ("" if local else f"; listening on {host}, reachable from other machines"),
          file=stream, flush=True)
    if open_browser:
        def _open():
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=_open, daemon=True).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn stopped cleanly, then re-raised the Ctrl-C it caught
    finally:
        sock.close()
    print("poolkit explore: stopped", file=stream, flush=True)
    return 0
