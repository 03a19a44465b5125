"""The shape explorer: every row must agree with what the engine and torch actually produce."""

import re

import numpy as np
import pytest
import torch

import poolkit
from poolkit import cli, functional
from poolkit.lab import shapes_table as st

TORCH_POOL = {1: torch.nn.functional.max_pool1d, 2: torch.nn.functional.max_pool2d,
              3: torch.nn.functional.max_pool3d}
OUR_POOL = {1: functional.max_pool1d, 2: functional.max_pool2d, 3: functional.max_pool3d}

def _jax_shape(spatial, c, k, s, padding, d):
    """Independent oracle for the Keras/TF rule: jax.lax.reduce_window's shape (not computed)."""
    import jax

    n = len(spatial)
    spec = jax.ShapeDtypeStruct((1, *spatial, c), np.float32)
    out = jax.eval_shape(
        lambda x: jax.lax.reduce_window(x, -np.inf, jax.lax.max, (1, *(k,) * n, 1),
                                        (1, *(s,) * n, 1), padding.upper(),
                                        window_dilation=(1, *(d,) * n, 1)), spec)
    return tuple(out.shape[1:])


CASES = [
    ((28, 28, 32), [2, 3, 4], [None, 1, 2], [0, 1], [1, 2]),
    ((7, 5, 3), [1, 2, 3, 6, 8], [1, 2, 3], [0, 1, 2], [1, 3]),
    ((9, 4), [2, 3, 5, 10], [None, 2, 4], [0, 1], [1, 2]),        # 1-D
    ((5, 6, 4, 2), [2, 3], [None, 2], [0, 1], [1]),                # 3-D
]


@pytest.mark.parametrize("shape,ks,ss,ps,ds", CASES)
def test_every_row_matches_the_engine_and_torch(shape, ks, ss, ps, ds):
    rows = st.pool_shape_table(shape, ks, ss, ("valid", "same"), ps, (False, True), ds)
    spatial, c = shape[:-1], shape[-1]
    rank = len(spatial)
    assert len(rows) == len(ks) * len(ss) * len(ds) * (2 + 2 * len(ps))
    n_valid = n_invalid = 0
    for r in rows:
        k, s, d = r["pool_size"], r["strides"], r["dilation"]
        if r["convention"] == "keras":
            try:
                y = poolkit.max_pool(np.zeros((1, *spatial, c), np.float32), k, s, r["padding"],
                                     dilation=d)
            except ValueError:
                assert r["error"] is not None and r["output_shape"] is None
                n_invalid += 1
                continue
            assert r["error"] is None
            assert r["output_shape"] == y.shape[1:]
            assert r["output_shape"] == _jax_shape(spatial, c, k, s, r["padding"], d)
        else:
            x = np.zeros((1, c, *spatial), np.float32)
            args = dict(kernel_size=k, stride=s, padding=r["padding"], dilation=d,
                        ceil_mode=r["ceil_mode"])
            try:
                ref = TORCH_POOL[rank](torch.from_numpy(x), **args).shape
            except RuntimeError:
                ref = None
            if ref is None:
                assert r["error"] is not None and r["output_shape"] is None
                with pytest.raises(ValueError):
                    OUR_POOL[rank](x, **args)
                n_invalid += 1
                continue
            assert r["error"] is None
            y = OUR_POOL[rank](x, **args)
            assert y.shape == tuple(ref)
            assert r["output_shape"] == (*ref[2:], c)
        n_valid += 1
        # The formula ends with the size it claims, and that size is the row's output.
        claimed = [int(v) for v in re.findall(r"= (\d+)", r["formula"])]
        out = list(r["output_shape"][:-1])
        assert claimed == (out[:1] if len(set(out)) == 1 and len(claimed) == 1 else out)
        kept = np.prod(r["output_shape"][:-1]) / np.prod(spatial)
        assert r["discarded"] == pytest.approx(1 - kept)
    assert n_valid > 0
    if shape == (7, 5, 3):
        assert n_invalid > 0  # windows of 6 and 8 do not fit a 5-wide input


def test_formula_text_for_the_tutorial_case():
    rows = st.pool_shape_table((28, 28, 32), [2], [2], ["valid", "same"], [0], [False])
    by_rule = {r["rule"]: r for r in rows}
    assert by_rule["keras valid"]["formula"] == "floor((28 - 2) / 2) + 1 = 14"
    assert by_rule["keras valid"]["output_shape"] == (14, 14, 32)
    assert by_rule["keras valid"]["discarded"] == pytest.approx(0.75)
    assert by_rule["keras same"]["formula"].startswith("ceil(28 / 2) = 14")
    assert by_rule["torch p=0"]["formula"] == "floor((28 + 2*0 - (2-1) - 1) / 2) + 1 = 14"


def test_invalid_combination_is_a_row_with_a_reason():
    rows = st.pool_shape_table((4, 4, 1), [5], [1], ["valid"], [3], [False])
    assert [r["convention"] for r in rows] == ["keras", "torch"]
    assert "output size" in rows[0]["error"] and rows[0]["output_shape"] is None
    assert "padding" in rows[1]["error"]  # torch: padding 3 > kernel_size // 2
    text = st.format_pool_table(rows)
    assert text.count("invalid:") == 2


@pytest.mark.parametrize("bad", ["28xq", "28", "0x28x3", "1x2x3x4x5", ""])
def test_parse_shape_rejects(bad):
    with pytest.raises(ValueError, match="input shape"):
        st.parse_shape(bad)


def test_model_table_of_the_seed_model_and_pool_variants():
    from poolkit.lab.models import seed_model

    rows = st.model_shape_table(seed_model(), [3, 30], [None])
    base = [r for r in rows if r["variant"] == "as built"]
    # Hand-computed: 26x26x32 conv, 13x13x32 pool, 5408 features, 54,090 dense params.
    assert [r["output_shape"][1:] for r in base] == [(26, 26, 32), (13, 13, 32), (5408,), (10,)]
    assert [r["params"] for r in base] == [320, 0, 0, 54090]
    assert base[0]["macs"] == 26 * 26 * 32 * 9 and base[3]["macs"] == 5408 * 10
    assert base[1]["rf_size"] == (4, 4) and base[1]["rf_jump"] == (2, 2)
    p3 = [r for r in rows if r["variant"] == "pool 3/3"]
    assert [r["output_shape"][1:] for r in p3][1] == (8, 8, 32)   # floor((26-3)/3)+1 = 8
    assert p3[3]["params"] == 8 * 8 * 32 * 10 + 10
    assert p3[1]["rf_size"] == (5, 5) and p3[1]["rf_jump"] == (3, 3)
    bad = [r for r in rows if r["variant"] == "pool 30/30"]
    assert len(bad) == 1 and bad[0]["error"] and bad[0]["output_shape"] is None
    assert "cannot build" in st.format_model_table(rows)


def test_cli_shapes_pool_and_model(capsys):
    assert cli.main(["shapes", "--input", "28x28x32", "--pool-size", "2", "3", "4",
                     "--strides", "1", "2", "--padding", "valid", "same"]) == 0
    out = capsys.readouterr().out
    assert "floor((28 - 2) / 2) + 1 = 14" in out and "torch p=0 ceil" in out
    assert cli.main(["shapes", "--model", "seed", "--pool-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "54,410" in out and "8x8x32" in out


def test_cli_shapes_bad_arguments(capsys):
    assert cli.main(["shapes", "--input", "28xq"]) == 2
    assert "input shape" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["shapes", "--input", "28x28x1", "--pool-size", "0"])
    assert e.value.code == 2
    assert "positive int" in capsys.readouterr().err
    assert cli.main(["shapes", "--model", "/nonexistent/model.keras"]) == 2


def test_cli_shapes_of_a_saved_model(tmp_path, capsys):
    from poolkit import keras

    model = keras.Sequential([
        keras.layers.Conv2D(8, 5, activation="relu", input_shape=(20, 20, 1)),
        keras.layers.AveragePooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    path = tmp_path / "small.keras"
    model.save(path)
    assert cli.main(["shapes", "--model", str(path), "--pool-size", "4"]) == 0
    out = capsys.readouterr().out
    # Hand-computed: conv 16x16x8 (5*5*8+8 = 208 params); pool 2 -> 8x8x8, Dense 512*3+3;
    # pool 4 -> 4x4x8, Dense 128*3+3.
    assert "16x16x8" in out and "8x8x8" in out and "4x4x8" in out
    assert "1,747" in out and "595" in out  # totals: 208+1539, 208+387


def test_adaptive_row_for_a_window_that_does_not_fit_is_an_error_row():
    # Found by the fuzz harness (poolkit shapes --kinds adaptive_avg --input 17x1x3): when the
    # windowed grid an adaptive kind pools to could not be computed, the row's arguments were
    # None and the table raised AttributeError.
    from poolkit.lab.shapes_table import kind_shape_table

    rows = kind_shape_table((17, 1, 3), ["adaptive_avg"], [2], [None], "valid")
    assert rows[0]["output_shape"] is None and rows[0]["error"]
