"""`poolkit show`: image preparation and the PNG it writes."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from poolkit import cli
from poolkit.lab import figures


def _drawn_digit(path, light_background=True, size=(90, 60)):
    """A thick vertical bar (a '1') drawn with Pillow."""
    bg, ink = (255, 0) if light_background else (0, 255)
    im = Image.new("L", size, bg)
    ImageDraw.Draw(im).rectangle((25, 10, 34, 79), fill=ink)  # 10 wide, 70 tall
    im.save(path)
    return path


@pytest.mark.parametrize("light", [True, False])
def test_load_image_makes_an_mnist_like_digit(tmp_path, light):
    img = figures.load_image(_drawn_digit(tmp_path / "one.png", light))
    assert img.shape == (28, 28) and img.dtype == np.float32
    # Ink becomes light on black whichever way it was drawn.
    assert img.max() > 0.9 and img[0].max() == 0 and img[:, 0].max() == 0
    rows, cols = np.nonzero(img > 0.5)
    # Longest side fitted to 20 px (70 -> 20, so 10 -> ~3), centred on the 28x28 canvas.
    assert rows.max() - rows.min() + 1 == 20
    assert 2 <= cols.max() - cols.min() + 1 <= 4
    assert (rows.min() + rows.max()) / 2 == pytest.approx(13.5, abs=1)
    assert (cols.min() + cols.max()) / 2 == pytest.approx(13.5, abs=1)


def test_load_image_rejects_non_images(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not an image"):
        figures.load_image(bad)


def test_pooled_panels_hold_the_engine_output():
    # The figure pools what it is given: check the arrays behind the max/avg panels by hand.
    maps = np.arange(4 * 4 * 1, dtype=np.float32).reshape(4, 4, 1)
    fig = figures.feature_map_figure(np.zeros((6, 6), np.float32), maps, 2, n_channels=1)
    shown = [im.get_array() for ax in fig.axes for im in ax.get_images()]
    expected_max = np.array([[5, 7], [13, 15]], np.float32)
    expected_avg = np.array([[2.5, 4.5], [10.5, 12.5]], np.float32)
    assert any(a.shape == (2, 2) and np.array_equal(a, expected_max) for a in shown)
    assert any(a.shape == (2, 2) and np.allclose(a, expected_avg) for a in shown)
    figures._mpl().close(fig)


def test_channel_rows_show_different_filters():
    rng = np.random.default_rng(0)
    base = rng.random((10, 10)).astype(np.float32)
    # Channels 0-2 are near copies of one map, channel 3 is different: pick 0 (strongest), 3.
    maps = np.stack([base * 3, base * 2.9, base * 2.8, rng.random((10, 10)) * 0.5], -1)
    assert figures._pick_channels(maps.astype(np.float32), 2) == [0, 3]


def _png(path):
    with Image.open(path) as im:
        im.load()
        return im.format, im.mode, im.size


def test_show_digit_and_image_write_pngs(tmp_path, capsys):
    out = tmp_path / "digit.png"
    assert cli.main(["show", "--index", "3", "--n-channels", "2", "--train", "64",
                     "--out", str(out)]) == 0
    fmt, mode, (w, h) = _png(out)
    assert fmt == "PNG" and mode in ("RGB", "RGBA")
    # 4 columns and 1 + 2 rows at 110 dpi (figure size (3.1*4+0.6) x (3*3+1) inches).
    assert (w, h) == (round(13.0 * 110), round(10.0 * 110))
    src = _drawn_digit(tmp_path / "mine.jpg", True)
    out2 = tmp_path / "image.png"
    assert cli.main(["show", "--image", str(src), "--pool-size", "3", "--strides", "2",
                     "--train", "0", "--out", str(out2)]) == 0
    assert _png(out2)[0] == "PNG"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert out.stat().st_mode & 0o044  # readable by others, as open() would make it


def test_show_bad_arguments(tmp_path, capsys):
    assert cli.main(["show", "--index", "99999", "--out", str(tmp_path / "a.png")]) == 2
    assert "index" in capsys.readouterr().err
    assert cli.main(["show", "--image", str(tmp_path / "none.png"),
                     "--out", str(tmp_path / "b.png")]) == 2
    assert cli.main(["show", "--pool-size", "30", "--train", "0",
                     "--out", str(tmp_path / "c.png")]) == 2
    assert "pool" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
    with pytest.raises(SystemExit) as e:
        cli.main(["show", "--index", "1", "--image", "x.png"])
    assert e.value.code == 2


def test_show_uses_a_saved_models_first_conv(tmp_path, capsys):
    from poolkit.lab.models import seed_model

    m = seed_model()
    w = m.layers[0].get_weights()
    w[0][...] = 0.0
    w[0][1, 1, 0, :] = np.linspace(-1, 1, 32)  # each filter scales the centre pixel
    m.layers[0].set_weights(w)
    path = tmp_path / "m.keras"
    m.save(path)
    conv = figures.first_conv_layer(str(path))
    img = figures.dataset_digit(5)[0]
    maps = figures.conv_feature_maps(img, conv)
    scale = np.linspace(-1, 1, 32, dtype=np.float32)
    expected = np.maximum(img[1:-1, 1:-1, None] * scale, 0)  # relu(centre * weight)
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-7)
    out = tmp_path / "s.png"
    assert cli.main(["show", "--model", str(path), "--out", str(out)]) == 0
    assert _png(out)[0] == "PNG"
