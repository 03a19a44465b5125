"""Invariance metrics, checked against hand-derived facts and torch."""

import numpy as np
import pytest
import torch

from poolkit.lab import invariance as inv


def _random(shape, seed=0):
    # Distinct values (a permutation), so max pooling has no ties.
    rng = np.random.default_rng(seed)
    return (rng.permutation(np.prod(shape)).reshape(shape) / np.prod(shape)).astype(np.float32)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("shift", [(1, 0), (0, 2), (2, -1), (-2, -2)])
def test_multiple_of_stride_gives_zero_error_else_nonzero(mode, k, shift):
    x = _random((2, 18, 18, 3))
    t = tuple(k * v for v in shift)  # a multiple of the stride (= pool size)
    res = inv.shift_equivariance_error(x, t, mode, k)
    assert res["q"] == shift
    assert res["error"] == 0.0  # the same numbers, just moved
    assert res["cells"] > 0
    off = (t[0] + 1, t[1])  # not a multiple on axis 0
    assert inv.shift_equivariance_error(x, off, mode, k)["error"] > 0.05


def test_non_multiple_error_equals_a_torch_computation():
    # Shift by 1 with 2x2/2 max pooling on a 16x16 map. Compared cells, derived by hand: output
    # rows 1..7 (row 0's window reads the wrapped row), all columns; q = 0 compares them with the
    # same rows, q = 1 with rows 0..6. The metric is the smaller relative error.
    x = _random((1, 16, 16, 1), seed=3)
    xt = torch.from_numpy(x).permute(0, 3, 1, 2)
    y = torch.nn.functional.max_pool2d(xt, 2)
    z = torch.nn.functional.max_pool2d(torch.roll(xt, 1, dims=2), 2)
    errs = []
    for q in (0, 1):
        a, b = z[:, :, 1:8, :], y[:, :, 1 - q:8 - q, :]
        errs.append(float(torch.linalg.norm(a - b) / torch.linalg.norm(b)))
    res = inv.shift_equivariance_error(x, (1, 0), "max", 2)
    assert res["error"] == pytest.approx(min(errs), rel=1e-5)
    assert res["q"] == (int(np.argmin(errs)), 0)
    assert res["cells"] == 7 * 8


def test_overlapping_windows_multiple_of_stride_interior_is_exact():
    x = _random((1, 21, 21, 2), seed=1)
    assert inv.shift_equivariance_error(x, (2, 4), "max", 3, 2)["error"] == pytest.approx(0.0)
    assert inv.shift_equivariance_error(x, (1, 0), "max", 3, 2)["error"] > 0.0


def test_shift_too_large_is_an_error():
    with pytest.raises(ValueError, match="too large"):
        inv.shift_equivariance_error(np.ones((1, 4, 4, 1), np.float32), (4, 0), "max", 2)
    with pytest.raises(ValueError, match="mode"):
        inv.shift_equivariance_error(np.ones((1, 8, 8, 1), np.float32), (2, 0), "median", 2)


def test_gradient_fraction_2x2_is_a_quarter_and_matches_torch_for_overlap():
    x = _random((2, 12, 10, 3))
    assert inv.max_pool_gradient_fraction(x, 2) == 0.25
    assert inv.max_pool_gradient_fraction(_random((1, 9, 9, 2)), 3) == pytest.approx(1 / 9)
    # Overlapping 3x3 stride 1: torch autograd decides which cells get gradient.
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).requires_grad_(True)
    torch.nn.functional.max_pool2d(xt, 3, 1).sum().backward()
    expected = float((xt.grad != 0).double().mean())
    assert inv.max_pool_gradient_fraction(x, 3, 1) == pytest.approx(expected, abs=0)
    assert expected < 1 / 3  # and it is neither 1 nor a quarter: the metric has content


def test_random_shift_pairs_are_crops_of_the_padded_image():
    x = _random((5, 28, 28))
    a, b = inv.random_shift_pairs(x, pad=4, seed=7)
    assert a.shape == b.shape == (5, 28, 28, 1)
    padded = np.pad(x, ((0, 0), (4, 4), (4, 4)))
    for img, p in zip(a[..., 0], padded, strict=True):
        hits = [(dy, dx) for dy in range(9) for dx in range(9)
                if np.array_equal(p[dy:dy + 28, dx:dx + 28], img)]
        assert len(hits) == 1
    a2, _ = inv.random_shift_pairs(x, pad=4, seed=7)
    assert np.array_equal(a, a2)


def _digits_with_empty_border(n=40, seed=0):
    # Content only in the central 20x20, as in MNIST: every 28x28 crop of the 36x36 padding
    # contains the whole digit.
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 28, 28), np.float32)
    x[:, 4:24, 4:24] = rng.random((n, 20, 20)) * (rng.random((n, 20, 20)) > 0.7)
    return x


def test_consistency_is_one_for_position_blind_models():
    x = _digits_with_empty_border()
    constant = lambda a: np.tile(np.arange(10.0), (len(a), 1))  # noqa: E731

    def global_pool(a):  # a function of global max/mean features only
        feats = np.stack([a.max(axis=(1, 2, 3)), a.mean(axis=(1, 2, 3))], 1)
        return feats @ np.array([[1.0, -2.0, 0.5], [-3.0, 10.0, 2.0]])

    assert inv.shift_consistency(constant, x) == 1.0
    assert inv.shift_consistency(global_pool, x) == 1.0


def test_consistency_counts_disagreements():
    x = _digits_with_empty_border(200)

    def row_of_mass(a):  # class = the image row holding most ink, clipped to 0..9
        rows = a[..., 0].sum(axis=2).argmax(axis=1)
        return np.eye(10)[np.clip(rows - 9, 0, 9)]

    a, b = inv.random_shift_pairs(x, seed=0)
    expected = np.mean(row_of_mass(a).argmax(1) == row_of_mass(b).argmax(1))
    got = inv.shift_consistency(row_of_mass, x, seed=0)
    assert got == expected
    assert 0.0 < got < 1.0


def test_consistency_rejects_bad_predict_output():
    with pytest.raises(ValueError, match="predict must return"):
        inv.shift_consistency(lambda a: np.zeros(len(a)), np.zeros((3, 28, 28)))


def test_layer_equivariance_of_a_model():
    from poolkit import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.layers.Conv2D(4, 3, activation="relu", input_shape=(18, 18, 1)),
        keras.layers.MaxPooling2D(2),
        keras.layers.AveragePooling2D(2),
        keras.layers.Flatten(),
    ])
    x = _random((3, 18, 18))
    rows = inv.layer_equivariance(model, x, [(2, 0), (1, 0)])
    assert [(r["type"], r["shift"], r["multiple"]) for r in rows] == [
        ("MaxPooling2D", (2, 0), True), ("MaxPooling2D", (1, 0), False),
        ("AveragePooling2D", (2, 0), True), ("AveragePooling2D", (1, 0), False)]
    # Each row is the metric on the maps that reach that layer.
    conv = model.layers[0](x[..., None])
    assert rows[1]["error"] == inv.shift_equivariance_error(conv, (1, 0), "max", 2)["error"]
    pooled = model.layers[1](conv)
    assert rows[3]["error"] == inv.shift_equivariance_error(pooled, (1, 0), "avg", 2)["error"]
    assert rows[0]["error"] == 0.0 and rows[2]["error"] == 0.0
    assert rows[1]["error"] > 0 and rows[3]["error"] > 0
