"""The campaign's report: a text summary (also the body of fuzz/LAST_RUN.md) and the JSON file,
written atomically (a temporary file in the same directory, then os.replace)."""

from __future__ import annotations

import json
import os
import tempfile

__all__ = ["summary", "write_json"]


def _table(rows: list[tuple], head: tuple) -> list[str]:
    cells = [tuple(map(str, head)), *[tuple(map(str, r)) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in
                            enumerate(widths)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in
                          enumerate(widths)) + "|"
    return [fmt.format(*cells[0]), sep, *(fmt.format(*c) for c in cells[1:])]


def summary(result: dict, *, per_target: bool = False) -> str:
    keys = ("cases", "returned", "raised", "findings")
    lines = [f"{result['cases']} cases in {result['wall_seconds']} s on {result['workers']} "
             f"worker(s), {result['worker_restarts']} worker restart(s); "
             f"{result['findings']} finding(s), {len(result['unique_findings'])} distinct", ""]
    groups = result["per_group"]
    lines += _table([(g, *(c.get(k, 0) for k in keys)) for g, c in groups.items()],
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


def write_json(path: str, result: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".fuzz-report-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1, default=str)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
