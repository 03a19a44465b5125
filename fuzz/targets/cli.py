"""Target for the command line: ``poolkit.cli.main(argv)`` with random argv from the real
subcommands and flags, good and bad values, run in a temporary directory. A user error must
end with status 2 and an ``error:`` message (argparse's SystemExit(2) included); anything
escaping ``main`` is a finding (the CLI promises a traceback only for bugs). Work is kept
small (tiny --max-train/--limit/--train); ``demo`` and ``explore`` only have their arguments
fuzzed: their work (a full training, a server) is replaced by a stub."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from unittest import mock

from poolkit import cli
from poolkit.data import DATASETS
from poolkit.kinds import POOL_KINDS
from poolkit.lab.models import DOWNSAMPLING_KINDS

from .. import gen
from ..oracle import fail, note, target

BAD = ("0", "-1", "1.5", "x", "", "99999999999999999999", "nan", "-", "--", "é", "1e3",
       "/nonexistent/dir/f", ".", "/dev/null", "2x", "0x0x0")


# For the flags that bound the work (--epochs, --limit, ...): 10**20 epochs is a long run,
# not an error.
BAD_SMALL = tuple(b for b in BAD if b not in ("99999999999999999999", "1e3"))


def _int(lo, hi):
    return lambda rng: str(int(rng.integers(lo, hi + 1)))


def _of(*values):
    return lambda rng: gen.pick(rng, values)


def _kinds(choices, most=3):
    return lambda rng: [gen.pick(rng, choices) for _ in range(int(rng.integers(1, most + 1)))]


def _path(name):
    return lambda rng: gen.pick(rng, (name, f"sub/{name}", "/nonexistent/dir/" + name, ".",
                                      "/dev/null/" + name, "x" * 300))


def _shape(rng):
    return "x".join(str(int(rng.integers(1, 30))) for _ in range(int(rng.integers(1, 4))))


# subcommand -> flag -> value generator (None: a switch); "cap": flags always given, small.
COMMANDS = {
    "shapes": {
        "--input": _shape, "--model": _of("seed", "missing.poolkit", "."),
        "--pool-size": _kinds(("1", "2", "3", "4", "0"), 2), "--strides": _kinds(("1", "2"), 2),
        "--padding": _kinds(("valid", "same"), 2), "--torch-padding": _kinds(("0", "1", "-1")),
        "--ceil-mode": _kinds(("false", "true"), 2), "--dilation": _kinds(("1", "2"), 2),
        "--kinds": _kinds(POOL_KINDS), "--json": None,
    },
    "show": {
        "--index": _int(-2, 12000), "--image": _path("img.png"),
        "--model": _of("seed", "missing.poolkit"), "--pool-size": _int(1, 4),
        "--strides": _int(1, 3), "--padding": _of("valid", "same"),
        "--kinds": _kinds(POOL_KINDS), "--channels": _kinds(("0", "1", "31", "99", "-1")),
        "--n-channels": _int(1, 8), "--seed": _int(0, 3), "--out": _path("show.png"),
        "cap": {"--train": _int(0, 16)},
    },
    "train": {
        "--dataset": _of(*DATASETS), "--pool": _of(*POOL_KINDS), "--pool-size": _int(1, 4),
        "--strides": _int(0, 3), "--padding": _of("valid", "same"),
        "--batch-size": _int(0, 64), "--learning-rate": _of("0.001", "0", "-1", "1e9", "nan"),
        "--out": _path("train-out"), "--seed": _int(0, 3), "--threads": _of("1", "auto", "0"),
        "--quiet": None,
        "cap": {"--max-train": _int(0, 24), "--max-test": _int(0, 12), "--epochs": _int(0, 1)},
    },
    "sweep": {
        "--dataset": _of("mnist-sample", "mnist"), "--pool-size": _kinds(("2", "3"), 2),
        "--strides": _kinds(("1", "2"), 1), "--kinds": _kinds(DOWNSAMPLING_KINDS, 2),
        "--batch-size": _int(1, 16), "--seed": _int(0, 3), "--csv": _path("s/sweep.csv"),
        "--plot": _path("s/sweep.png"), "--fresh": None, "--threads": _int(1, 2),
        "--quiet": None,
        "cap": {"--limit": _int(1, 16), "--epochs": _of("1"),
                "--consistency-images": _int(1, 4)},
    },
    "demo": {
        "--out": _path("demo-out"), "--epochs": _int(0, 3), "--batch-size": _int(0, 64),
        "--learning-rate": _of("0.002", "0", "-1"), "--seed": _int(0, 3),
        "--threads": _of("1", "auto", "x"), "--quiet": None,
    },
    "explore": {
        "--host": _of("127.0.0.1", "localhost", "::1", "0.0.0.0", "bad host"),
        "--port": _int(-1, 70000), "--no-browser": None, "--model": _path("m.poolkit"),
    },
}


def random_argv(rng) -> list[str]:
    if gen.chance(rng, 0.03):
        return gen.pick(rng, ([], ["--help"], ["nosuch"], ["shapes", "--help"], ["-x"]))
    command = gen.pick(rng, list(COMMANDS))
    flags = COMMANDS[command]
    argv = [command]
    for flag, make in flags.get("cap", {}).items():  # hostile, never huge: work stays small
        argv += [flag, gen.pick(rng, BAD_SMALL) if gen.chance(rng, 0.1) else make(rng)]
    names = [f for f in flags if f != "cap"]
    for flag in [str(f) for f in rng.permutation(names)][: int(rng.integers(0, len(names) + 1))]:
        make = flags[flag]
        if make is None:
            argv.append(flag)
            continue
        value = gen.pick(rng, BAD) if gen.chance(rng, gen.bad_rate()) else make(rng)
        argv += [flag, *(value if isinstance(value, list) else [value])]
    if gen.chance(rng, 0.03):
        argv.append(gen.pick(rng, ("--bogus", "extra", "-q")))
    return argv


@target("cli", "cli", weight=6, strict=True, covers=("cli.main",))
def _cli(rng):
    argv = random_argv(rng)
    note("poolkit", *argv)
    err, out = io.StringIO(), io.StringIO()
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as d, \
            mock.patch("poolkit.demo.run_demo", return_value={}), \
            mock.patch("poolkit.explore.serve", return_value=0):
        os.makedirs(os.path.join(d, "s"))
        os.chdir(d)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = cli.main(argv)
        except SystemExit as e:
            code = e.code
        finally:
            os.chdir(here)
    if code not in (0, 2):
        fail("wrong", f"exit status {code!r}")
    if code == 2 and "error:" not in err.getvalue():
        fail("wrong", f"exit status 2 without an 'error:' message: {err.getvalue()[-300:]!r}")
