"""The campaign's report: a text summary, fuzz/LAST_RUN.md (the summary with a row per target)
and the JSON file, written atomically (a temporary file in the same directory, then
os.replace)."""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["summary", "markdown", "write_json", "write_markdown"]


def _table(rows: list[tuple], head: tuple) -> list[str]:
    cells = [tuple(map(str, head)), *[tuple(map(str, r)) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in
                            enumerate(widths)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in
                          enumerate(widths)) + "|"
    return [fmt.format(*cells[0]), sep, *(fmt.format(*c) for c in cells[1:])]


def summary(result: dict, *, per_target: bool = False) -> str:
    keys = ("cases", "returned", "raised", "findings", "seconds")
    lines = [f"{result['cases']} cases in {result['wall_seconds']} s on {result['workers']} "
             f"worker(s), {result['worker_restarts']} worker restart(s); "
             f"{result['findings']} finding(s), {len(result['unique_findings'])} distinct", ""]
    groups = result["per_group"]
    lines += _table([(g, *(round(c.get(k, 0), 1) for k in keys)) for g, c in groups.items()],
                    ("group", *keys))
    if per_target:
        lines += ["", *_table([(n, *(c[k] for k in keys))
                               for n, c in sorted(result["per_target"].items())],
                              ("target", *keys))]
    for f in result["unique_findings"]:
        lines += ["", f"- {f['target']}:{f['seed']} ({f['count']} case(s)): {f['kind']} "
                      f"{f.get('error', '')}: {f.get('message', '')[:300]}",
                  f"  at {f.get('where', '?')}; replay: {f['replay']}"]
        lines += [f"    {n}" for n in f.get("notes", [])[-3:]]
    return "\n".join(lines)


def markdown(result: dict, command: str) -> str:
    """fuzz/LAST_RUN.md: the command, the machine's load, the summary with a row per target."""
    head = [
        "# Last long fuzz run",
        "",
        f"`{command}` at {result.get('started', '?')} (commit {result.get('commit', '?')}); "
        f"load average at the start: {result.get('load', '?')}.",
        "",
        "Outcomes per case: *returned*, *raised* (ValueError/TypeError or an exception the "
        "target documents) or a *finding* (any other exception, a non-finite result from "
        "finite input, a signal, a hang). Replay a case with `python -m fuzz --replay "
        "TARGET:SEED`. *seconds*: the cases' own run time, summed.",
        "",
    ]
    return "\n".join(head) + "\n" + summary(result, per_target=True) + "\n"


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fuzz-report-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: str, result: dict) -> None:
    _write_atomic(path, json.dumps(result, indent=1, default=str))


def write_markdown(path: str, result: dict, command: str) -> None:
    _write_atomic(path, markdown(result, command))
