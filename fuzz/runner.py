"""The runner: worker subprocesses fed batches of cases, and the tally.

Each worker (:mod:`fuzz.worker`) says which case it starts, so when one dies (a signal, an
exit) or goes silent past the timeout (it is then sent SIGUSR1 for a traceback, then SIGKILL),
the runner knows the case, records the finding and starts a new worker for the rest of the
batch. Cases are (target, seed) pairs, dealt round-robin over the targets with seeds
``seed, seed+1, ...`` per target.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .oracle import Target

__all__ = ["Runner", "run"]

BATCH = 8
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker_env(home: str) -> dict:
    """The environment of a worker: offline data, no GUI, one thread per worker."""
    env = dict(os.environ)
    path = [_ROOT, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env.update(
        PYTHONPATH=os.pathsep.join(path),
        KERAS_BACKEND="torch",
        MPLBACKEND="Agg",
        POOLKIT_DATA=os.path.join(home, "data"),
        POOLKIT_SYSTEM_DATA=os.path.join(home, "system-data"),
        POOLKIT_DATA_URL="http://127.0.0.1:9/",  # the discard port: refused, never a download
        POOLKIT_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        NUMBA_NUM_THREADS="1",
        PYTHONFAULTHANDLER="1",
        HOME=home,
    )
    return env


class Worker:
    def __init__(self, home: str, number: int):
        self.dir = tempfile.mkdtemp(prefix=f"w{number}-", dir=home)
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fuzz.worker"], cwd=self.dir, env=worker_env(self.dir),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
            )
        self.buffer = ""
        self.batch: collections.deque = collections.deque()  # sent, not yet done
        self.current: tuple | None = None
        self.since = time.monotonic()
        self.ready = False

    def send(self, cases: list, modules: dict) -> None:
        self.batch.extend(cases)
        msg = [[name, seed, modules[name]] for name, seed in cases]
        self.proc.stdin.write(json.dumps({"cases": msg}) + "\n")
        self.proc.stdin.flush()
        self.since = time.monotonic()

    def lines(self) -> list[dict]:
        data = os.read(self.proc.stdout.fileno(), 1 << 16)
        if not data:
            return [{"eof": True}]
        self.buffer += data.decode()
        *done, self.buffer = self.buffer.split("\n")
        return [json.loads(x) for x in done if x]

    def stderr_tail(self, n: int = 3000) -> str:
        try:
            with open(self.stderr_path, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class Runner:
    """Run cases on ``workers`` processes until the cases or the time run out."""

    def __init__(self, targets: list[Target], *, workers: int = 2, seed: int = 0,
                 timeout: float = 60.0, yield_to: str | None = None, log=print):
        self.targets = targets
        self.n_workers = max(1, workers)
        self.timeout = timeout
        self.log = log
        self.pending: collections.deque = collections.deque()
        self._deal = self._cases(seed)
        self.counts = {t.name: collections.Counter() for t in targets}
        self.seconds = collections.Counter()
        self.groups = {t.name: t.group for t in targets}
        self.modules = {t.name: t.fn.__module__ for t in targets}
        self.findings: list[dict] = []
        self.home = tempfile.mkdtemp(prefix="poolkit-fuzz-")
        self.restarts = 0
        self.yield_to = yield_to
        self.reduced_seconds = 0.0

    def wanted(self) -> int:
        """Workers to run now: one while the ``yield_to`` file exists (someone is timing
        benchmarks on this machine), else all."""
        if self.yield_to and os.path.exists(self.yield_to):
            return 1
        return self.n_workers

    def _cases(self, seed: int):
        """Rounds over the targets, ``weight`` cases each, seeds ``seed, seed+1, ...`` per
        target."""
        seeds = {t.name: itertools.count(seed) for t in self.targets}
        while True:
            for t in self.targets:
                for _ in range(t.weight):
                    yield (t.name, next(seeds[t.name]))

    def _next_batch(self, limit: int | None) -> list:
        out = []
        while len(out) < BATCH:
            if self.pending:
                out.append(self.pending.popleft())
            elif limit is None or self.dealt < limit:
                out.append(next(self._deal))
                self.dealt += 1
            else:
                break
        return out

    def _record(self, case, outcome: dict) -> None:
        name, seed = case
        self.counts[name][outcome["status"]] += 1
        self.seconds[name] += outcome.get("seconds", 0.0)
        if outcome["status"] == "finding":
            f = {"target": name, "seed": seed, **outcome,
                 "replay": f"python -m fuzz --replay {name}:{seed}"}
            self.findings.append(f)
            self.log(f"FINDING {name}:{seed} {outcome.get('kind')} {outcome.get('error', '')}: "
                     f"{outcome.get('message', '')[:200]}")

    def _died(self, w: Worker, why: str, kind: str) -> None:
        """``w`` died or hung: its current case is a finding; the rest of its batch goes
        back to the queue."""
        tail = w.stderr_tail()
        w.kill()
        if w.current is not None:
            self._record(w.current, {"status": "finding", "kind": kind, "error": why,
                                     "message": f"worker: {why}", "stderr": tail,
                                     "frames": [], "where": crash_site(tail) or why})
            if w.current in w.batch:
                w.batch.remove(w.current)
        elif not w.ready:
            raise RuntimeError(f"fuzz worker failed to start: {why}\n{tail}")
        self.pending.extendleft(reversed(w.batch))
        self.restarts += 1

    def run(self, *, cases: int | None = None, seconds: float | None = None) -> dict:
        start = time.monotonic()
        self.dealt = 0
        if cases is None and seconds is None:
            cases = rounds(self.targets)
        sel = selectors.DefaultSelector()
        workers: list[Worker] = []
        stopping = False

        def spawn(number):
            w = Worker(self.home, number)
            sel.register(w.proc.stdout, selectors.EVENT_READ, w)
            workers.append(w)

        def retire(w):
            sel.unregister(w.proc.stdout)
            workers.remove(w)

        def more() -> bool:
            return not stopping and bool(self.pending or cases is None or self.dealt < cases)

        number = 0
        last = time.monotonic()
        try:
            while workers or more():
                now = time.monotonic()
                if seconds is not None and now - start > seconds:
                    stopping = True
                if self.wanted() < self.n_workers:
                    self.reduced_seconds += now - last
                last = now
                while more() and len(workers) < self.wanted():
                    spawn(number)
                    number += 1
                for key, _ in sel.select(timeout=1.0):
                    w = key.data
                    for msg in w.lines():
                        if "eof" in msg:
                            code = w.proc.wait()
                            why = (signal.Signals(-code).name if code < 0
                                   else f"exit status {code}")
                            retire(w)
                            self._died(w, why, "signal" if code < 0 else "exit")
                            break
                        if "ready" in msg:
                            w.ready = True
                        elif "start" in msg:
                            w.current = tuple(msg["start"])
                            w.since = time.monotonic()
                        elif "done" in msg:
                            case = tuple(msg["done"])
                            self._record(case, msg["outcome"])
                            w.batch.remove(case)
                            w.current = None
                        if "idle" in msg or ("ready" in msg and not w.batch):
                            batch = [] if stopping or len(workers) > self.wanted() else \
                                self._next_batch(cases)
                            if not batch:
                                retire(w)
                                w.kill()
                                break
                            w.send(batch, self.modules)
                now = time.monotonic()
                for w in list(workers):
                    if w.current is not None and now - w.since > self.timeout:
                        w.proc.send_signal(signal.SIGUSR1)
                        time.sleep(0.5)
                        retire(w)
                        self._died(w, f"no result within {self.timeout:g} s", "hang")
        finally:
            for w in workers:
                w.kill()
            shutil.rmtree(self.home, ignore_errors=True)
        return self.report(time.monotonic() - start)

    def report(self, wall: float) -> dict:
        per_target = {name: {"group": self.groups[name], "cases": sum(c.values()),
                             "returned": c["returned"], "raised": c["raised"],
                             "findings": c["finding"], "seconds": round(self.seconds[name], 1)}
                      for name, c in self.counts.items()}
        per_group: dict[str, collections.Counter] = {}
        for row in per_target.values():
            g = per_group.setdefault(row["group"], collections.Counter())
            g.update({k: v for k, v in row.items() if k != "group"})
        return {
            "cases": sum(r["cases"] for r in per_target.values()),
            "findings": len(self.findings),
            "wall_seconds": round(wall, 1),
            "workers": self.n_workers,
            "worker_restarts": self.restarts,
            "seconds_with_one_worker": round(self.reduced_seconds, 1),
            "per_group": {g: dict(c) for g, c in sorted(per_group.items())},
            "per_target": per_target,
            "unique_findings": unique(self.findings),
            "all_findings": self.findings,
        }


def rounds(targets: list[Target], n: int = 1) -> int:
    """The number of cases of ``n`` rounds (every target its weight's worth of cases)."""
    return n * sum(t.weight for t in targets)


def crash_site(stderr: str) -> str | None:
    """The innermost poolkit frame of faulthandler's dump of the current thread."""
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("File ") and "poolkit" + os.sep in line:
            path, _, rest = line[6:].partition('", line ')
            return f"{path.rsplit(os.sep + 'src' + os.sep, 1)[-1]}:{rest.replace(' in ', ' in ')}"
    return None


def unique(findings: list[dict]) -> list[dict]:
    """Findings grouped by (target, kind, error, where): the first case of each, and a count."""
    groups: dict[tuple, dict] = {}
    for f in findings:
        key = (f["target"], f["kind"], f.get("error"), f.get("where"))
        if key in groups:
            groups[key]["count"] += 1
        else:
            groups[key] = {**f, "count": 1}
    return list(groups.values())


def run(targets: list[Target], **kw) -> dict:
    budget = {k: kw.pop(k) for k in ("cases", "seconds") if k in kw}
    return Runner(targets, **kw).run(**budget)
