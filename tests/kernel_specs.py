"""The kernel specialisations the test suite compiles, kept in kernel_specs.json.

A fresh clone compiles ~200 specialisations during the suite, one after another in the test
process: most of CI's time. conftest.py compiles them first, over all CPUs, with the project's
own parallel precompile (as ``poolkit demo`` does for its kernels). The list only saves time:
a specialisation missing from it compiles when a test first needs it, as before.

Regenerate it from a Numba cache that a full run filled (a fresh clone keeps its cache next to
the kernels' source):

    python tests/kernel_specs.py src/poolkit/_kernels/__pycache__
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

FILE = Path(__file__).with_name("kernel_specs.json")


def load() -> list[tuple[str, tuple]]:
    """(kernel name, key) pairs, keys decoded (the last entry a NumPy dtype)."""
    from poolkit._kernels.precompile import _decode

    return [(name, _decode(key)) for name, key in json.loads(FILE.read_text())]


def _parse(cache_dir: str) -> list[list]:
    from poolkit._kernels.precompile import _kernels

    kernels = _kernels()
    specs = []
    for f in sorted(os.listdir(cache_dir)):
        m = re.fullmatch(r"\w+\.(\w+)-\d+\.py\d+\.nbi", f)
        if m is None:
            continue
        name, *parts = m.group(1).split("__")
        if name not in kernels or not parts:
            continue  # a helper cached on its own (not a Kernel)
        key = [p == "True" if p in ("True", "False") else int(p) for p in parts[:-1]]
        specs.append([name, [*key, parts[-1]]])
    return specs


if __name__ == "__main__":
    lines = ",\n".join(json.dumps(spec) for spec in _parse(sys.argv[1]))
    FILE.write_text(f"[\n{lines}\n]\n")
