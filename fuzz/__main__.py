"""``python -m fuzz``: run a campaign, or replay one case.

    python -m fuzz --seconds 1800 --workers 2 --report fuzz-report.json
    python -m fuzz --cases 500 --targets functional,cli
    python -m fuzz --replay functional.max_pool2d:17
    python -m fuzz --list
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from . import report
from .oracle import TARGETS, run_case, select
from .runner import run, worker_env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.split("\n")[0])
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--seconds", type=float, help="run for this long (wall time)")
    budget.add_argument("--cases", type=int, help="run this many cases (default: one per "
                        "target)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--targets", default=None, help="comma-separated target or group names, "
                   "or prefixes ending in '*' (default: all)")
    p.add_argument("--seed", type=int, default=0, help="first seed of every target")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds before a case is a hang")
    p.add_argument("--yield-to", default=None, metavar="FILE", help="run one worker while "
                   "FILE exists (e.g. /tmp/bench.lock: someone is timing benchmarks)")
    p.add_argument("--report", default=None, help="write the full report as JSON here")
    p.add_argument("--replay", metavar="TARGET:SEED", help="run one case in this process and "
                   "print its arguments and traceback")
    p.add_argument("--markdown", default=None, metavar="PATH",
                   help="also write the summary as Markdown (fuzz/LAST_RUN.md)")
    p.add_argument("--per-target", action="store_true", help="a row per target in the summary")
    p.add_argument("--list", action="store_true", help="list the targets and exit")
    return p


def replay(spec: str) -> int:
    """Run one case here, in the environment a worker has (offline data, a temporary home)."""
    name, _, seed = spec.rpartition(":")
    home = tempfile.mkdtemp(prefix="poolkit-fuzz-replay-")
    os.environ.update(worker_env(home))
    os.chdir(home)
    (t,) = select(name)
    out = run_case(t, int(seed), with_traceback=True)
    print(f"{name}:{seed} -> {out['status']}")
    for line in out["notes"]:
        print("  " + line)
    if out["status"] == "finding":
        print(out.get("traceback", ""))
        print(f"{out['kind']}: {out['error']}: {out['message']}")
        return 1
    return 0


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    if a.replay:
        return replay(a.replay)
    targets = select(a.targets)
    if a.list:
        for t in targets:
            print(f"{t.group:12s} {t.name}")
        print(f"{len(targets)} targets ({len(TARGETS)} with hidden ones)")
        return 0
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    result = run(targets, cases=a.cases, seconds=a.seconds, workers=a.workers, seed=a.seed,
                 timeout=a.timeout, yield_to=a.yield_to,
                 log=lambda text: print(text, file=sys.stderr, flush=True))
    result.update(started=started, load=load, commit=_commit())
    print(report.summary(result, per_target=a.per_target))
    if a.report:
        report.write_json(a.report, result)
    if a.markdown:
        command = "python -m fuzz " + " ".join(argv if argv is not None else sys.argv[1:])
        report.write_markdown(a.markdown, result, command)
    return 1 if result["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
