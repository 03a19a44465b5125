"""``poolkit explore`` on the command line, in-process: its options, and the message it gives
before anything else when the explorer's packages are missing."""

from __future__ import annotations

import pytest

import poolkit.explore
from poolkit import cli


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["explore", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--host", "--port", "--no-browser", "--model"):
        assert opt in out
    assert "127.0.0.1" in out and "8765" in out


def test_defaults_bind_to_this_machine(monkeypatch):
    seen = {}

    def fake_serve(host, port, open_browser, model):
        seen.update(host=host, port=port, open_browser=open_browser, model=model)
        return 0

    monkeypatch.setattr(poolkit.explore, "serve", fake_serve)
    monkeypatch.setattr(poolkit.explore, "missing_dependencies", lambda: [])
    assert cli.main(["explore"]) == 0
    assert seen == {"host": "127.0.0.1", "port": 8765, "open_browser": True, "model": None}
    assert cli.main(["explore", "--no-browser", "--port", "0", "--host", "0.0.0.0",
                     "--model", "m.poolkit"]) == 0
    assert seen == {"host": "0.0.0.0", "port": 0, "open_browser": False, "model": "m.poolkit"}


def test_missing_packages_are_named_before_anything_starts(monkeypatch, capsys):
    def must_not_run(*a, **k):
        raise AssertionError("serve() ran although packages are missing")

    monkeypatch.setattr(poolkit.explore, "serve", must_not_run)
    monkeypatch.setattr(poolkit.explore, "missing_dependencies", lambda: ["starlette", "uvicorn"])
    assert cli.main(["explore", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("poolkit explore: error: needs starlette, uvicorn: "
                           "pip install 'poolkit[explore]'")


def test_missing_dependencies_finds_uninstalled_modules(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert poolkit.explore.missing_dependencies() == ["uvicorn"]


def test_bad_port_is_a_user_error(capsys):
    pytest.importorskip("uvicorn")
    assert cli.main(["explore", "--no-browser", "--port", "70000"]) == 2
    assert "--port must be an int in [0, 65535]" in capsys.readouterr().err
