"""`poolkit train` / `poolkit demo` through cli.main, and the library functions under them."""

import json
import os

import numpy as np
import pytest

from poolkit import cli, keras
from poolkit.demo import run_demo
from poolkit.lab.figures import model_feature_maps_figure

QUICK = ["--max-train", "320", "--max-test", "200", "--epochs", "1", "--quiet"]


def test_train_writes_model_figure_and_metrics(tmp_path):
    out = tmp_path / "run"
    rc = cli.main(["train", "--dataset", "mnist-sample", "--pool", "avg", "--pool-size", "3",
                   "--strides", "2", "--padding", "same", "--out", str(out), *QUICK])
    assert rc == 0
    assert sorted(os.listdir(out)) == ["feature_maps.png", "metrics.json", "model.poolkit"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["dataset"] == "mnist-sample" and m["pool"] == "avg"
    assert m["pool_size"] == [3, 3] and m["strides"] == [2, 2] and m["padding"] == "same"
    assert m["n_train"] == 320 and m["n_test"] == 200 and m["epochs"] == 1
    assert 0 <= m["test_accuracy"] <= 1 and len(m["history"]["loss"]) == 1
    # 26 -> ceil(26/2) = 13 after "same" pooling: Dense sees 13*13*32 inputs.
    assert m["params"] == 320 + 13 * 13 * 32 * 10 + 10
    model = keras.models.load_model(out / "model.poolkit")
    assert type(model.layers[1]).__name__ == "AveragePooling2D"
    png = (out / "feature_maps.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args,words",
    [
        (["--pool-size", "0"], "pool_size"),
        (["--pool-size", "27"], "zero or negative"),
        (["--strides", "-1"], "strides"),
        (["--epochs", "0"], "epochs"),
        (["--batch-size", "0"], "batch_size"),
    ],
)
def test_bad_values_exit_2_with_message(tmp_path, capsys, args, words):
    rc = cli.main(["train", "--out", str(tmp_path / "o"), *QUICK, *args])
    assert rc == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--pool", "median"], ["--padding", "full"],
                                  ["--dataset", "cifar"], ["--pool-size", "two"]])
def test_bad_choices_are_argparse_errors(args, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", *args])
    assert e.value.code == 2
    assert "invalid" in capsys.readouterr().err


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert cli.main(["train", "--out", str(f), *QUICK]) == 2
    assert "is a file" in capsys.readouterr().err


def test_feature_map_figure_titles_carry_shapes():
    keras.utils.set_random_seed(0)
    from poolkit.lab.models import tutorial_model

    model = tutorial_model("max", 2, 2, "valid")
    fig = model_feature_maps_figure(model, np.random.default_rng(0).random((28, 28)), label=3)
    texts = [t.get_text() for sf in fig.subfigs for t in sf.texts] + \
            [t.get_text() for sub in fig.subfigs[1].subfigs for t in [sub._suptitle]]
    joined = " ".join(texts)
    assert "(26, 26, 32)" in joined and "(13, 13, 32)" in joined
    assert "max pooling" in joined and "average pooling" in joined


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    """The main job: summary, progress bar, >= 0.95 test accuracy, files."""
    m = run_demo(out=str(tmp_path / "demo"))
    out = capsys.readouterr().out
    assert "Total params: 54,410" in out and "Test accuracy" in out and "step - accuracy" in out
    assert m["test_accuracy"] >= 0.95
    assert m["n_train"] == 8000 and m["n_test"] == 2000
    assert sorted(os.listdir(tmp_path / "demo")) == ["feature_maps.png", "metrics.json",
                                                     "model.poolkit"]


def test_thread_picking_is_poolkits_and_restored():
    from poolkit import _threads
    from poolkit.errors import InvalidType, InvalidValue
    from poolkit.lab.threads import pick_threads, using_threads

    assert pick_threads(10_000) == _threads.max_threads()  # capped at the CPUs we may use
    assert pick_threads(1) == 1
    assert 1 <= pick_threads("auto") <= _threads.get_num_threads()
    with pytest.raises(InvalidType, match="threads"):
        pick_threads("many")
    with pytest.raises(InvalidValue, match="threads"):
        pick_threads(0)
    before = _threads.get_num_threads()
    with pytest.raises(RuntimeError), using_threads(1):
        assert _threads.get_num_threads() == 1
        raise RuntimeError
    assert _threads.get_num_threads() == before


def test_a_fresh_cache_compiles_the_tutorials_kernels_in_parallel_first(tmp_path):
    """Cold start (issue 9 item 5): with an empty Numba cache, `poolkit train` says how long
    compiling will take, compiles exactly the kernels tutorial_kernels lists (in parallel
    processes) before the first epoch, and training compiles nothing more."""
    import subprocess
    import sys

    code = (
        "import json, sys\n"
        "from poolkit.demo import run_train, tutorial_kernels\n"
        "from poolkit._kernels import _jit\n"
        "m = run_train(max_train=64, max_test=64, epochs=1, out=sys.argv[1])\n"
        "used = sorted(str(s) for s in _jit.compiled_specialisations())\n"
        "want = sorted(str(s) for s in tutorial_kernels())\n"
        "print(json.dumps({'used': used, 'want': want, 'compile': m['compile_seconds']}))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "poolkit: compiling 9 kernels, once: ~" in res.stdout
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["used"] == out["want"]  # nothing compiled during training but these
    assert out["compile"] > 0
    # a second run finds them all in the cache: no notice, no compiling
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out2")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0 and "compiling" not in res.stdout
    assert json.loads(res.stdout.strip().splitlines()[-1])["compile"] == 0
