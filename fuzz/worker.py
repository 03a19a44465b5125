"""A fuzz worker: runs the cases the runner sends and says which one it is on.

Protocol, one JSON object per line. The runner writes
``{"cases": [[target, seed, module of the target], ...]}`` on the worker's stdin; the worker
writes ``{"start": [target, seed]}`` before each case and ``{"done": [target, seed],
"outcome": {...}}`` after it, then ``{"idle": true}``, on its real stdout (the cases' own prints
go to /dev/null). Its stderr is a file the runner reads when the worker dies: it is emptied
before each case, so it then holds only the fatal case's output (faulthandler's traceback of a
crash, or of a hang on SIGUSR1).
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import os
import resource
import signal
import sys
import time

# Keep a runaway allocation from taking the machine: a refused allocation is a MemoryError
# (a finding). RLIMIT_DATA, not RLIMIT_AS: Numba's LLVM and torch reserve large address ranges.
DATA_LIMIT = 6 * 2**30


def _limit_memory() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = DATA_LIMIT if hard == resource.RLIM_INFINITY else min(DATA_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def main() -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    faulthandler.enable(all_threads=True)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    _limit_memory()

    from . import targets  # noqa: F401  (registers them)
    from .oracle import TARGETS, run_case

    def send(msg: dict) -> None:
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    send({"ready": os.getpid()})
    for line in sys.stdin:
        for name, seed, module in json.loads(line)["cases"]:
            os.ftruncate(2, 0)
            send({"start": [name, seed]})
            start = time.perf_counter()
            try:
                importlib.import_module(module)  # registers the target (only its module)
                outcome = run_case(TARGETS[name], seed)
            except BaseException as e:  # noqa: BLE001 - a target that cannot even load
                outcome = {"status": "finding", "kind": "exception",
                           "error": type(e).__qualname__, "message": f"{module}: {e}",
                           "frames": [], "where": module, "notes": []}
            outcome["seconds"] = round(time.perf_counter() - start, 4)
            send({"done": [name, seed], "outcome": outcome})
        send({"idle": True})


if __name__ == "__main__":
    main()
