"""The lab takes every pooling kind: ``pool_maps``, the shapes tables, ``show`` and the sweep's
variants (issue 8's lab)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import poolkit
from poolkit.kinds import POOL_KINDS
from poolkit.lab import shapes_table
from poolkit.lab.models import SWEEP_KINDS, downsampling_model, pool_maps
from poolkit.lab.sweep import sweep_variants

X = np.random.default_rng(0).random((2, 26, 26, 3), dtype=np.float32)


@pytest.mark.parametrize("kind", POOL_KINDS)
def test_pool_maps_calls_each_kind_with_its_own_arguments(kind):
    want = {
        "max": lambda: poolkit.max_pool(X, 2, 2),
        "avg": lambda: poolkit.average_pool(X, 2, 2),
        "min": lambda: poolkit.min_pool(X, 2, 2),
        "lp": lambda: poolkit.lp_pool(X, 2, 2, 2),
        "blur": lambda: poolkit.blur_pool(X, strides=2),
        "max_blur": lambda: poolkit.max_blur_pool(X, 2, 2),
        "aps": lambda: poolkit.aps_pool(X, 2),
        "adaptive_max": lambda: poolkit.adaptive_max_pool(X, (13, 13)),
        "adaptive_avg": lambda: poolkit.adaptive_average_pool(X, (13, 13)),
        "global_max": lambda: poolkit.global_max_pool(X, keepdims=True),
        "global_avg": lambda: poolkit.global_average_pool(X, keepdims=True),
    }[kind]()
    np.testing.assert_array_equal(pool_maps(kind, X, 2, 2), want)


def test_kind_table_gives_the_shapes_the_ops_produce():
    rows = shapes_table.kind_shape_table((26, 26, 3), POOL_KINDS, (2, 3), (None, 1))
    assert len(rows) == len(POOL_KINDS) * 4
    for r in rows:
        k = int(r["arguments"].split("pool_size=")[1].split(",")[0]) if "pool_size" in \
            r["arguments"] else None
        assert r["error"] is None, r
        assert r["rule"]
        # the same arguments through pool_maps give that shape
        s = int(r["arguments"].split("strides=")[1].split(",")[0]) if "strides" in \
            r["arguments"] else None
        if r["kind"].startswith("adaptive"):
            grid = tuple(int(v) for v in r["arguments"].split("(")[1].split(")")[0].split(","))
            out = getattr(poolkit, "adaptive_" + ("max_pool" if "max" in r["kind"]
                                                  else "average_pool"))(X, grid)
        elif r["kind"].startswith("global"):
            out = pool_maps(r["kind"], X)
        else:
            out = pool_maps(r["kind"], X, k if k is not None else s, s)
        assert tuple(r["output_shape"]) == out.shape[1:], r
    text = shapes_table.format_kind_table(rows)
    for kind in POOL_KINDS:
        assert kind in text


def test_model_table_for_kinds():
    rows = shapes_table.kinds_model_table(["blur", "global_avg"], (2,), (None,))
    assert {r["variant"] for r in rows} == {"blur 2/2", "global_avg 2/2"}
    blur = [r for r in rows if r["variant"] == "blur 2/2"]
    assert [r["type"] for r in blur] == ["Conv2D", "BlurPool2D", "Flatten", "Dense"]
    assert blur[1]["output_shape"] == downsampling_model("blur", 2, 2).layers[1].output_shape


def test_sweep_defaults_to_the_anti_aliased_variants():
    names = [v.name for v in sweep_variants()]
    assert names == ["none", "max 2/2", "avg 2/2", "blur /2", "max_blur 2/2", "aps /2",
                     "conv 3/2"]
    assert set(SWEEP_KINDS) == {"none", "max", "avg", "max_blur", "blur", "aps", "conv"}
    # every kind can still be swept; adaptive kinds pool to the windowed grid
    every = sweep_variants(kinds=("adaptive_avg", "global_max", "lp", "min"))
    assert [v.name for v in every] == ["min 2/2", "lp 2/2", "adaptive_avg 2/2", "global_max"]


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "poolkit.cli", *argv], capture_output=True,
                          text=True, timeout=600)


def test_cli_shapes_and_show_take_every_kind(tmp_path):
    res = _cli("shapes", "--input", "26x26x32", "--kinds", *POOL_KINDS, "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [r["kind"] for r in data["kinds"]] == list(POOL_KINDS)
    out = tmp_path / "show.png"
    res = _cli("show", "--train", "0", "--kinds", "blur", "aps", "global_max", "--out",
               str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = _cli("show", "--kinds", "nope")
    assert res.returncode == 2 and "invalid choice" in res.stderr
