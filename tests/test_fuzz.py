"""The fuzz harness (fuzz/, issue 9 item 6): its runner classifies every way a case can fail
and survives each; a quick campaign over every target finds nothing; every public op is
fuzzed. The long campaign is ``python -m fuzz --seconds 1800`` (see fuzz/LAST_RUN.md)."""

from __future__ import annotations

import inspect
import os
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fuzz import oracle, runner  # noqa: E402
from fuzz.targets import calls  # noqa: E402


def test_runner_classifies_each_failure_and_survives_it():
    names = ["_selftest_segfault", "_selftest_ok", "_selftest_abort", "_selftest_hang",
             "_selftest_nan", "_selftest_keyerror"]
    targets = oracle.select(",".join(names))
    result = runner.run(targets, cases=2 * len(names), workers=1, timeout=3)
    rows = result["per_target"]
    assert {n: rows[n]["cases"] for n in names} == dict.fromkeys(names, 2)
    assert rows["_selftest_ok"]["findings"] == 0
    assert rows["_selftest_ok"]["returned"] + rows["_selftest_ok"]["raised"] == 2
    kinds = {(f["target"], f["kind"], f["error"]) for f in result["all_findings"]}
    assert kinds == {
        ("_selftest_segfault", "signal", "SIGSEGV"),
        ("_selftest_abort", "signal", "SIGABRT"),
        ("_selftest_hang", "hang", "no result within 3 s"),
        ("_selftest_nan", "nonfinite", "Finding"),
        ("_selftest_keyerror", "exception", "KeyError"),
    }
    assert result["findings"] == 10 and result["worker_restarts"] == 6
    crash = next(f for f in result["all_findings"] if f["kind"] == "signal")
    assert "Fatal Python error" in crash["stderr"]  # faulthandler's traceback of the crash
    assert crash["replay"] == f"python -m fuzz --replay {crash['target']}:{crash['seed']}"


def test_a_case_is_the_same_on_replay():
    (t,) = oracle.select("_selftest_ok")
    assert [oracle.run_case(t, s)["status"] for s in range(8)] == \
        [oracle.run_case(t, s)["status"] for s in range(8)]
    assert {oracle.run_case(t, s)["status"] for s in range(8)} == {"returned", "raised"}


def test_the_report_is_written_atomically(tmp_path):
    from fuzz import report

    path = tmp_path / "r.json"
    report.write_json(str(path), {"cases": 1})
    class Unwritable:
        def __str__(self):
            raise TypeError("no text")

    with pytest.raises(TypeError):
        report.write_json(str(path), {"cases": Unwritable()})
    assert path.read_text().strip().startswith("{") and os.listdir(tmp_path) == ["r.json"]


def _covered() -> set[str]:
    return {c for t in oracle.select() for c in t.covers}


def test_every_public_op_is_fuzzed():
    import poolkit
    from poolkit import engine, functional
    from poolkit.torch import functional as torch_functional

    covered = _covered()
    want = ({f"functional.{n}" for n in functional.__all__}
            | {f"poolkit.{n}" for n in poolkit.__all__ if n != "__version__"}
            | {f"torch.functional.{n}" for n in torch_functional.__all__}
            | {f"engine.{n}" for n in engine.__all__ if inspect.isfunction(getattr(engine, n))})
    assert sorted(want - covered) == []


def test_every_layer_and_torch_module_is_fuzzed():
    from fuzz.targets.keras_api import LAYER_PARAMS, layer_classes
    from fuzz.targets.torch_api import modules
    from poolkit.keras import layers

    covered = _covered()
    public = {n for n in layers.__all__ if isinstance(getattr(layers, n), type)}
    fuzzed = {n for n in public if f"keras.layers.{n}" in covered}
    aliases = {n for n in public - fuzzed if getattr(layers, n) in
               {getattr(layers, m) for m in fuzzed}}
    bases = {"Layer", "InputSpec", "BasePoolingLayer", "BasePooling", "BaseGlobalPooling",
             "BaseAdaptivePooling"}
    assert sorted(public - fuzzed - aliases - bases) == []
    for name, cls in layer_classes().items():
        assert calls.unknown_params(cls, LAYER_PARAMS) == [], name
    for name, cls in modules().items():
        assert calls.unknown_params(cls, calls.TORCH_PARAMS) == [], name


def test_every_parameter_of_every_op_has_a_generator():
    import poolkit
    from poolkit import functional
    from poolkit.torch import functional as torch_functional

    missing = {}
    for module, table, names in (
        (functional, calls.TORCH_PARAMS, functional.__all__),
        (torch_functional, calls.TORCH_PARAMS, torch_functional.__all__),
        (poolkit, calls.KERAS_PARAMS, [n for n in poolkit.__all__ if n != "__version__"]),
    ):
        for n in names:
            unknown = calls.unknown_params(getattr(module, n), table)
            if unknown:
                missing[f"{module.__name__}.{n}"] = unknown
    assert missing == {}


def test_quick_campaign_finds_nothing():
    """One round over every target (each its weight's worth of cases, fixed seeds), two
    workers: what CI runs; the long run is on demand. Budget: ~90 s on 2 cores with an empty
    kernel cache."""
    from fuzz.report import summary

    targets = oracle.select()
    result = runner.run(targets, cases=runner.rounds(targets), workers=2, timeout=120)
    assert result["cases"] == runner.rounds(targets)
    assert all(row["cases"] >= 1 for row in result["per_target"].values())
    assert result["findings"] == 0, summary(result)
