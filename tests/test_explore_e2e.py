"""``poolkit explore`` for real: the command in a child process (a real uvicorn server on a
free port), and the page in a real headless browser (Debian's chromium driven by Playwright).

Browser tests skip only if /usr/bin/chromium is absent (CI installs it). With
POOLKIT_SCREENSHOT=1 the screenshot for the README is written to docs/figures/explore.png.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
from PIL import Image  # noqa: E402

import poolkit  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
SRC = str(Path(poolkit.__file__).resolve().parents[1])
TIMEOUT = 180_000  # ms: with an empty kernel cache, a busy machine compiles for a while


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from poolkit.explore.model import train_demo_model

    path = tmp_path_factory.mktemp("model") / "small.poolkit"
    train_demo_model(1000, 1).save(path)  # under a second once compiled
    return str(path)


class Server:
    """``poolkit explore`` in a child process; ``url`` once it listens."""

    def __init__(self, *args, env=None):
        full_env = {**os.environ, **(env or {})}
        full_env["PYTHONPATH"] = os.pathsep.join([SRC, full_env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen([sys.executable, "-m", "poolkit.cli", "explore", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=full_env)
        self.lines: queue.Queue = queue.Queue()
        self.err: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.err.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_url(self, timeout=60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            m = re.search(r"serving (http://\S+/)", line)
            if m:
                return m.group(1)
        raise AssertionError(f"the server did not start: {''.join(self.err)}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        time.sleep(0.1)  # let the reader thread collect the last lines
        return code


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# --------------------------------------------------------------------------------------------
# The command.


def test_serves_opens_the_browser_and_stops_cleanly_on_ctrl_c(model_file, tmp_path):
    record = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{record}"\n')
    script.chmod(0o755)
    s = Server("--port", "0", "--model", model_file, env={"BROWSER": f"{script} %s"})
    try:
        url = s.wait_url()
        assert url.startswith("http://127.0.0.1:")
        assert get(url + "api/health") == (200, b'{"status":"ok"}')
        deadline = time.monotonic() + 20
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert record.read_text() == url  # the page was opened in "the browser"
    finally:
        code = s.stop()
    err = "".join(s.err)
    assert code == 0, err
    assert "poolkit explore: stopped" in err and "Traceback" not in err


def listening_addresses(port: int) -> set[str]:
    """The local addresses with a socket listening on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:  # 0A: LISTEN
                found.add(addr)
    return found


def test_no_browser_and_only_local_connections(model_file, tmp_path):
    record = tmp_path / "opened.txt"
    s = Server("--port", "0", "--no-browser", "--model", model_file,
               env={"BROWSER": f"touch {record}"})
    try:
        url = s.wait_url()
        port = int(url.rsplit(":", 1)[1].strip("/"))
        if Path("/proc/net/tcp").exists():
            # Bound to the loopback address only (127.0.0.1, little-endian hex), not 0.0.0.0.
            assert listening_addresses(port) == {"0100007F"}
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        time.sleep(1.0)
        assert not record.exists()
    finally:
        assert s.stop() == 0


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs /proc/net/tcp")
def test_host_opens_it_to_the_network_and_says_so(model_file):
    s = Server("--host", "0.0.0.0", "--port", "0", "--no-browser", "--model", model_file)
    try:
        url = s.wait_url()
        assert listening_addresses(int(url.rsplit(":", 1)[1].strip("/"))) == {"00000000"}
        assert "reachable from other machines" in "".join(s.err)
        assert get(url + "api/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_bad_model_file_is_a_plain_error(tmp_path):
    bad = tmp_path / "bad.poolkit"
    bad.write_bytes(b"PK\x03\x04 truncated")
    s = Server("--port", "0", "--no-browser", "--model", str(bad))
    code = s.proc.wait(timeout=60)
    time.sleep(0.1)
    err = "".join(s.err)
    assert code == 2 and "poolkit explore: error: --model" in err and "Traceback" not in err


def test_port_in_use_is_a_plain_error(model_file):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        s = Server("--port", str(port), "--no-browser", "--model", model_file)
        code = s.proc.wait(timeout=60)
    time.sleep(0.1)
    err = "".join(s.err)
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------
# The page.


@pytest.fixture(scope="module")
def server(model_file):
    s = Server("--port", "0", "--no-browser", "--model", model_file)
    url = s.wait_url()
    yield url
    assert s.stop() == 0


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium; CI installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT)
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server)
    pg.wait_for_selector("[data-testid=out-cell]")
    yield pg
    ctx.close()
    assert errors == [], errors


def expect_text(pg, testid: str, text: str):
    pg.wait_for_function(
        "([id, t]) => document.querySelector(`[data-testid=${id}]`).textContent.includes(t)",
        arg=[testid, text])


def settle(pg):
    """Wait until the page has drawn the answer to its last change."""
    pg.wait_for_function("() => !document.body.dataset.busy")


def window_cells(pg) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in pg.eval_on_selector_all(
        "[data-testid=in-cell][data-in-window=true]",
        "els => els.map(e => [e.dataset.row, e.dataset.col])")}


def test_pool_size_hover_and_convention(page):
    pg = page
    expect_text(pg, "output-shape", "14 x 14")
    assert pg.locator("[data-testid=in-cell]").count() == 28 * 28
    assert pg.locator("[data-testid=out-cell]").count() == 14 * 14

    pg.select_option("[data-testid=pool-size]", "3")
    expect_text(pg, "output-shape", "9 x 9")
    settle(pg)
    assert pg.locator("[data-testid=out-cell]").count() == 81

    # Output (2, 3) of a 3x3 stride-3 window reads rows 6-8 and columns 9-11.
    pg.hover("[data-testid=out-cell][data-row='2'][data-col='3']")
    assert window_cells(pg) == {(r, c) for r in range(6, 9) for c in range(9, 12)}
    expect_text(pg, "explain", "max(")
    # And input (7, 10) feeds exactly that output cell.
    pg.hover("[data-testid=in-cell][data-row='7'][data-col='10']")
    fed = pg.eval_on_selector_all("[data-testid=out-cell][data-fed=true]",
                                  "els => els.map(e => [+e.dataset.row, +e.dataset.col])")
    assert fed == [[2, 3]]

    pg.select_option("[data-testid=stride]", "2")
    expect_text(pg, "output-shape", "13 x 13")  # floor((28 - 3) / 2) + 1
    settle(pg)
    pg.hover("[data-testid=out-cell][data-row='1'][data-col='1']")
    assert window_cells(pg) == {(r, c) for r in range(2, 5) for c in range(2, 5)}

    pg.select_option("[data-testid=convention]", "torch")
    expect_text(pg, "call", "poolkit.functional.max_pool2d(x, kernel_size=(3, 3)")
    settle(pg)
    expect_text(pg, "output-shape", "13 x 13")
    pg.select_option("[data-testid=padding]", "1")
    expect_text(pg, "output-shape", "14 x 14")  # floor((28 + 2 - 2 - 1) / 2) + 1
    settle(pg)
    pg.hover("[data-testid=out-cell][data-row='0'][data-col='0']")
    assert window_cells(pg) == {(r, c) for r in range(0, 2) for c in range(0, 2)}
    assert pg.locator(".cell.pad.in-window").count() == 5  # the padding part of the window
    expect_text(pg, "shape-rules", "PyTorch padding=1, ceil_mode=False")
    expect_text(pg, "shape-rules", "floor((28 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 14")

    pg.select_option("[data-testid=pool-type]", "avg")
    expect_text(pg, "call", "poolkit.functional.avg_pool2d")
    pg.wait_for_selector("[data-testid=count-include-pad]")
    settle(pg)
    pg.hover("[data-testid=out-cell][data-row='0'][data-col='0']")
    expect_text(pg, "explain", "/ 9 =")  # count_include_pad: 4 cells + 5 padding
    pg.uncheck("[data-testid=count-include-pad]")
    settle(pg)
    pg.hover("[data-testid=out-cell][data-row='0'][data-col='1']")
    pg.hover("[data-testid=out-cell][data-row='0'][data-col='0']")
    expect_text(pg, "explain", "/ 4 =")

    pg.select_option("[data-testid=convention]", "keras")
    pg.select_option("[data-testid=padding]", "same")
    expect_text(pg, "output-shape", "14 x 14")  # ceil(28 / 2)
    settle(pg)

    pg.click("[data-testid=play]")
    pg.wait_for_selector("[data-testid=out-cell].current")
    pg.click("[data-testid=play]")


def test_upload_an_image(page, tmp_path):
    from poolkit.lab.figures import dataset_digit, load_image

    pg = page
    ink = (255 - dataset_digit(4)[0] * 255).astype(np.uint8)  # dark ink on white paper
    path = tmp_path / "my digit.png"
    Image.fromarray(ink).resize((112, 112)).save(path)
    pg.select_option("[data-testid=source]", "upload")
    pg.set_input_files("[data-testid=upload]", str(path))
    pg.wait_for_function(
        "() => document.querySelector('#input-desc').textContent.includes('uploaded')")
    titles = pg.eval_on_selector_all("[data-testid=in-cell]", "els => els.map(e => e.title)")
    got = np.zeros((28, 28))
    for t in titles:
        r, c, v = re.fullmatch(r"input \((\d+), (\d+)\) = (\S+)", t).groups()
        got[int(r), int(c)] = float(v)
    np.testing.assert_allclose(got, load_image(path), atol=1e-3)
    expect_text(pg, "output-shape", "14 x 14")


def test_draw_a_digit(page):
    pg = page
    pg.select_option("[data-testid=source]", "draw")
    box = pg.locator("[data-testid=draw-canvas]").bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    for k in range(1, 11):
        pg.mouse.move(x0, y0 + box["height"] * 0.07 * k)
    pg.mouse.up()
    pg.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=in-cell]')].some(e => "
        "!e.title.endsWith('= 0'))")
    assert "your drawing" in pg.text_content("#input-desc")


def test_model_panel_shift_and_screenshot(page, tmp_path):
    pg = page
    pg.wait_for_selector("#model-body:not([hidden])")
    assert pg.locator("#thumbs-conv canvas").count() == 32
    assert pg.locator("#thumbs-pool canvas").count() == 32
    assert re.fullmatch(r"\d \(\d+%\)", pg.text_content("[data-testid=prediction]"))
    pg.wait_for_selector("#shift-body:not([hidden])")
    pg.eval_on_selector("[data-testid=shift-dx]",
                        "e => { e.value = 3; e.dispatchEvent(new Event('input')); }")
    expect_text(pg, "shift-prediction", "Shifted by (0, 3)")
    assert pg.locator("[data-testid=shift-grid] td").count() == 25
    # The README's picture: overlapping 3x3 windows, stride 2, one window's arithmetic shown.
    pg.select_option("[data-testid=pool-size]", "3")
    pg.select_option("[data-testid=stride]", "2")
    expect_text(pg, "output-shape", "13 x 13")
    settle(pg)
    pg.evaluate("() => window.scrollTo(0, 0)")
    pg.hover("[data-testid=out-cell][data-row='3'][data-col='5']")
    assert len(window_cells(pg)) == 9
    out = (ROOT / "docs" / "figures" / "explore.png" if os.environ.get("POOLKIT_SCREENSHOT")
           else tmp_path / "explore.png")
    pg.screenshot(path=str(out), full_page=True)
    assert out.stat().st_size > 10_000
