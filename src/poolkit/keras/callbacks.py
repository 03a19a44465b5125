"""History and the Keras-like progress bar used by ``fit``/``evaluate``/``predict``."""

from __future__ import annotations

import sys
import time

__all__ = ["History", "ProgressBar"]


class History:
    """``history`` maps 'loss', 'accuracy' (and 'val_loss', 'val_accuracy') to per-epoch lists."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.epoch_seconds: list[float] = []  # wall time of each epoch (training + validation)
        self.params: dict = {}

    def append(self, epoch: int, logs: dict) -> None:
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __repr__(self) -> str:
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


def _fmt_time(seconds: float) -> str:
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    if s >= 60:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s}s"


def _fmt_step(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class ProgressBar:
    """``  57/1875 ━━━━━━━━━━━━━━━━━━━━ 3s 2ms/step - accuracy: 0.8123 - loss: 0.5321``.

    While running, the time shown is the ETA; on the final line it is the elapsed time. On a
    terminal the line is redrawn at most every ``interval`` seconds; otherwise only the final
    line is written. ``verbose``: 0 silent, 1 bar, 2 one line per epoch.
    """

    WIDTH = 20

    def __init__(self, total: int, verbose: int = 1, stream=None, interval: float = 0.05):
        self.total = max(int(total), 1)
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self.interval = interval
        self.start = time.perf_counter()
        self._last = 0.0
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False

    def _line(self, step: int, logs: dict, final: bool) -> str:
        now = time.perf_counter()
        el = now - self.start
        per = el / max(step, 1)
        fill = int(self.WIDTH * step / self.total)
        bar = "━" * fill + "─" * (self.WIDTH - fill)
        t = _fmt_time(el if final else per * (self.total - step))
        parts = [f"{step:{len(str(self.total))}d}/{self.total} {bar} {t} {_fmt_step(per)}"]
        parts += [f"{k}: {v:.4f}" for k, v in logs.items()]
        return " - ".join(parts)

    def update(self, step: int, logs: dict) -> None:
        if self.verbose != 1 or not self.tty:
            return
        now = time.perf_counter()
        if now - self._last < self.interval and step < self.total:
            return
        self._last = now
        self.stream.write("\r" + self._line(step, logs, False) + "\x1b[K")
        self.stream.flush()

    def finish(self, step: int, logs: dict) -> None:
        if self.verbose == 0:
            return
        prefix = "\r" if (self.tty and self.verbose == 1) else ""
        self.stream.write(prefix + self._line(step, logs, True) + ("\x1b[K" if prefix else "")
                          + "\n")
        self.stream.flush()
