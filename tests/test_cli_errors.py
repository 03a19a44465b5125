"""The command line tells the user's mistakes from poolkit's bugs: bad input and bad paths print
'poolkit <cmd>: error: ...' and exit 2, anything else keeps its traceback; a command that
needs a missing package says so before doing any work; `import poolkit` stays light."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest

from poolkit import cli, demo
from poolkit.errors import InvalidType, InvalidValue

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
QUICK = ["--max-train", "64", "--max-test", "32", "--epochs", "1", "--quiet"]


def _raiser(exc):
    def fn(*args, **kwargs):
        raise exc
    return fn


@pytest.mark.parametrize("exc", [RuntimeError("boom"), ValueError("internal bug"),
                                 TypeError("internal bug"), KeyError("k"),
                                 OSError(28, "No space left on device")])
def test_internal_errors_keep_their_traceback(monkeypatch, tmp_path, exc):
    # A plain ValueError/TypeError from inside poolkit is a bug, not bad input (the landed CLI
    # turned every ValueError/TypeError/OSError into "error:" and exit 2).
    monkeypatch.setattr(demo, "run_train", _raiser(exc))
    with pytest.raises(type(exc)):
        cli.main(["train", "--out", str(tmp_path / "o"), *QUICK])


@pytest.mark.parametrize("exc", [InvalidValue("pool_size must be positive, got 0"),
                                 InvalidType("strides must be an int, got 'x'")])
def test_user_errors_exit_2(monkeypatch, tmp_path, capsys, exc):
    monkeypatch.setattr(demo, "run_train", _raiser(exc))
    assert cli.main(["train", "--out", str(tmp_path / "o"), *QUICK]) == 2
    assert capsys.readouterr().err == f"poolkit train: error: {exc}\n"


def test_a_bad_path_the_user_gave_exits_2(tmp_path, capsys):
    assert cli.main(["shapes", "--model", str(tmp_path / "missing.poolkit")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poolkit shapes: error:") and "missing.poolkit" in err
    assert cli.main(["show", "--model", str(tmp_path), "--train", "0",
                     "--out", str(tmp_path / "x.png")]) == 2  # a directory, not a model
    assert "poolkit show: error:" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.main(["sweep", "--csv", str(blocker / "sub" / "s.csv"), "--kinds", "none",
                     "--limit", "8", "--quiet"]) == 2  # a file where a directory must be
    assert "poolkit sweep: error:" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["x" * 300 + ".png", "."])
def test_any_os_error_about_a_path_the_user_gave_exits_2(tmp_path, capsys, out, monkeypatch):
    # Found by the fuzz harness: a name too long (ENAMETOOLONG) or "." (EBUSY on the rename)
    # escaped as OSError with a traceback.
    monkeypatch.chdir(tmp_path)
    assert cli.main(["show", "--train", "0", "--out", out]) == 2
    assert "poolkit show: error:" in capsys.readouterr().err


def test_a_missing_file_poolkit_did_not_ask_the_user_for_is_a_bug(monkeypatch, tmp_path):
    err = FileNotFoundError(2, "No such file or directory", "/usr/share/poolkit/nowhere.bin")
    monkeypatch.setattr(demo, "run_train", _raiser(err))
    with pytest.raises(FileNotFoundError):
        cli.main(["train", "--out", str(tmp_path / "o"), *QUICK])


@pytest.mark.parametrize("argv,missing", [
    (["demo"], "matplotlib"),
    (["train", *QUICK], "PIL"),
    (["show", "--train", "0"], "matplotlib"),
    (["sweep", "--kinds", "none"], "matplotlib"),
])
def test_a_missing_package_is_named_before_any_work(monkeypatch, tmp_path, capsys, argv,
                                                    missing):
    monkeypatch.setitem(sys.modules, missing, None)  # as if it were not installed
    for name in ("run_demo", "run_train"):
        monkeypatch.setattr(demo, name, _raiser(AssertionError("work started")))
    from poolkit.lab import commands

    for name in ("show", "sweep_cmd"):
        monkeypatch.setattr(commands, name, _raiser(AssertionError("work started")))
    out = ["--out", str(tmp_path / "o")] if argv[0] in ("demo", "train", "show") else \
        ["--csv", str(tmp_path / "s.csv")]
    assert cli.main([*argv, *out]) == 2
    err = capsys.readouterr().err
    pip = {"PIL": "pillow"}.get(missing, missing)
    assert f"needs {missing}" in err and f"pip install {pip}" in err
    assert not os.listdir(tmp_path)


def test_figure_libraries_are_core_dependencies():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)["project"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for d in project["dependencies"]}
    assert {"numpy", "numba", "matplotlib", "pillow"} <= names


def test_import_poolkit_is_light():
    code = ("import sys, poolkit; heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'numba', 'matplotlib', 'PIL', 'llvmlite'}); print(heavy); "
            "print(poolkit.max_pool.__name__)")
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["[]", "max_pool"]  # the ops load on first use
