"""The README's tour runs as written."""

from __future__ import annotations

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_the_family_tour_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    tour = next(b for b in blocks if "import poolkit.functional as F" in b)
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    # 3x3, stride 2, padding 1, ceil_mode on 28: floor((28 + 2 - 2 - 1 + 1) / 2) + 1 = 15, and
    # the last window starts at 28 < 28 + 1, inside the padded input, so it stays
    assert namespace["y"].shape == (8, 32, 15, 15) and namespace["idx"].dtype == "int64"
    assert namespace["gx"].shape == namespace["x"].shape
