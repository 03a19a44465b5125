"""`poolkit sweep`: variants, the CSV it keeps, resuming after an interruption."""

import csv

import numpy as np
import pytest

from poolkit import cli, kinds
from poolkit.lab import models, sweep


def test_variants_of_a_sweep():
    names = [v.name for v in sweep.sweep_variants([2, 3], [None, 2],
                                                  ["none", "max", "avg", "conv"])]
    # 2/None and 2/2 are the same variant: listed once.
    assert names == ["none", "max 2/2", "max 3/3", "max 3/2",
                     "avg 2/2", "avg 3/3", "avg 3/2", "conv 3/2", "conv 3/3"]
    assert [v.name for v in sweep.sweep_variants([2], [1], ["max", "conv"])] == ["max 2/1"]
    with pytest.raises(ValueError, match="kinds"):
        sweep.sweep_variants([2], [None], ["median"])
    # By default: none, conv and every pooling kind that has a layer.
    default = {v.kind for v in sweep.sweep_variants([2], [None])}
    assert {"none", "max", "avg", "conv"} <= default
    assert default <= {"none", "conv", *(k for k in kinds.POOL_KINDS if models.has_layer(k))}


@pytest.mark.parametrize("variant,params,fmap", [
    # Hand-computed: conv 3x3x1x32 + 32 = 320; dense = features*10 + 10.
    (sweep.Variant("none"), 320 + 26 * 26 * 32 * 10 + 10, (26, 26, 32)),
    (sweep.Variant("max", 2, 2), 320 + 13 * 13 * 32 * 10 + 10, (13, 13, 32)),
    (sweep.Variant("avg", 3, 2), 320 + 12 * 12 * 32 * 10 + 10, (12, 12, 32)),
    (sweep.Variant("conv", 3, 2), 320 + 9 * 32 * 32 + 32 + 12 * 12 * 32 * 10 + 10, (12, 12, 32)),
])
def test_variant_models(variant, params, fmap):
    m = sweep.build_model(variant)
    assert m.count_params() == params
    assert m.layer_table()[-3]["output_shape"][1:] == fmap
    assert m.predict(np.zeros((2, 28, 28, 1), np.float32), verbose=0).shape == (2, 10)


def _tiny_data(n=48, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return (x, y), (x[:16], y[:16])


def _fake_train(calls, fail_on=None):
    def train(variant, data, **kw):
        if variant.name == fail_on:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-sweep
        calls.append(variant.name)
        return {"kind": variant.kind, "pool_size": variant.pool_size,
                "strides": variant.strides, "feature_map": "1x1x1", "params": 1, "macs": 2,
                "train_accuracy": 0.5, "test_accuracy": 0.25, "gap": 0.25,
                "consistency": 1.0, "consistency_1px": 1.0, "epoch_seconds": 0.1}
    return train


def test_interrupted_sweep_resumes_without_retraining(tmp_path):
    path = tmp_path / "s.csv"
    variants = sweep.sweep_variants([2], [None], ["none", "max", "avg"])
    calls = []
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(variants, path, epochs=1, data=_tiny_data(),
                        train_fn=_fake_train(calls, fail_on="max 2/2"), log=lambda m: None)
    assert calls == ["none"]
    assert [r["variant"] for r in sweep.read_results(path)] == ["none"]
    calls2 = []
    rows = sweep.run_sweep(variants, path, epochs=1, data=_tiny_data(),
                           train_fn=_fake_train(calls2), log=lambda m: None)
    assert calls2 == ["max 2/2", "avg 2/2"]  # "none" came from the CSV
    assert [r["variant"] for r in rows] == ["none", "max 2/2", "avg 2/2"]
    # Different settings (epochs) are a different run: trained again, rows kept side by side.
    calls3 = []
    sweep.run_sweep(variants[:1], path, epochs=2, data=_tiny_data(),
                    train_fn=_fake_train(calls3), log=lambda m: None)
    assert calls3 == ["none"] and len(sweep.read_results(path)) == 4
    # fresh: replaced, retrained.
    calls4 = []
    sweep.run_sweep(variants[:1], path, epochs=1, resume=False, data=_tiny_data(),
                    train_fn=_fake_train(calls4), log=lambda m: None)
    assert calls4 == ["none"] and len(sweep.read_results(path)) == 1


def test_foreign_csv_is_not_touched(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a poolkit sweep CSV"):
        sweep.run_sweep([sweep.Variant("none")], path, data=_tiny_data(),
                        train_fn=_fake_train([]), log=lambda m: None)
    assert path.read_text() == "a,b\n1,2\n"


def test_real_sweep_of_two_variants_and_cli(tmp_path, capsys):
    path = tmp_path / "out" / "sweep.csv"
    rc = cli.main(["sweep", "--epochs", "2", "--limit", "64", "--kinds", "none", "max",
                   "--consistency-images", "40", "--csv", str(path), "--quiet"])
    assert rc == 0
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == sweep.SWEEP_COLUMNS
        rows = list(reader)
    assert [r["variant"] for r in rows] == ["none", "max 2/2"]
    for r in rows:
        t = sweep.typed(r)
        assert 0 <= t["test_accuracy"] <= 1 and 0 <= t["train_accuracy"] <= 1
        assert t["gap"] == pytest.approx(t["train_accuracy"] - t["test_accuracy"], abs=1e-5)
        assert 0 <= t["consistency"] <= 1 and 0 <= t["consistency_1px"] <= 1
        assert t["epoch_seconds"] > 0
        assert t["limit"] == 64 and t["epochs"] == 2
        # Test accuracy is a multiple of 1/2000 (the whole embedded test set).
        assert t["test_accuracy"] * 2000 == pytest.approx(round(t["test_accuracy"] * 2000))
    assert sweep.typed(rows[1])["params"] == 54410 and rows[1]["feature_map"] == "13x13x32"
    png = path.with_suffix(".png")
    from PIL import Image

    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > im.size[1] > 100
    out = capsys.readouterr()
    assert "max 2/2" in out.out and "[2/2]" in out.err
    # Rerun: both skipped.
    assert cli.main(["sweep", "--epochs", "2", "--limit", "64", "--kinds", "none", "max",
                     "--consistency-images", "40", "--csv", str(path), "--quiet"]) == 0
    assert capsys.readouterr().err.count("skipped") == 2


def test_sweep_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["sweep", "--epochs", "0"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["sweep", "--dataset", "cifar"])
    assert e.value.code == 2
    with pytest.raises(ValueError, match="epochs"):
        sweep.run_sweep([], tmp_path / "x.csv", epochs=0)


def test_a_sweep_with_nothing_to_run_is_a_value_error():
    # Found by the fuzz harness: `poolkit sweep --kinds conv --strides 1` ran no variant and
    # then failed drawing an empty figure (numpy's ValueError, with a traceback).
    from poolkit.lab import sweep

    with pytest.raises(ValueError, match="no variant to run"):
        sweep.sweep_variants([2], [1], ["conv"])


def test_a_csv_that_is_not_text_is_a_value_error(tmp_path):
    # Found by the fuzz harness: a --csv naming a PNG raised UnicodeDecodeError in read_results.
    from poolkit.lab import sweep

    path = tmp_path / "s.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ValueError, match="not a poolkit sweep CSV"):
        sweep.read_results(path)
