"""Figures: feature maps before and after pooling (``poolkit show`` and the demo's
``feature_maps.png``) and a sweep's results (``poolkit sweep``), as matplotlib Figures.

:func:`feature_map_figure` (``poolkit show``) has one header row and one row per channel:

- header: the input image; an enlarged crop of one feature map with every cell's value, the
  window of each output cell outlined in its own colour (the value max pooling picks in
  bold); then the pooled crop for each pooling type, each output cell framed in its window's
  colour — so the eye can follow which cells fed which output;
- channel rows: the whole feature map with the window grid, then each pooled map, on one colour
  scale per row (shared by the maps of that row, shown by the row's colour bar).

Images follow the MNIST convention: float32 in [0, 1], a light digit on a dark background.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .._io import atomic_write
from ..errors import InvalidValue
from ..kinds import POOL_KINDS, get_kind
from ..shapes import keras_spec
from .models import pool_maps

__all__ = [
    "load_image",
    "dataset_digit",
    "first_conv_layer",
    "conv_feature_maps",
    "feature_map_figure",
    "model_feature_maps_figure",
    "sweep_figure",
    "save_figure",
]

_WINDOW_COLOURS = ("#e41a1c", "#377eb8", "#4daf4a", "#ff7f00", "#984ea3", "#a65628",
                   "#f781bf", "#17becf", "#bcbd22", "#1f3d7a", "#8c564b", "#2ca02c",
                   "#d62728", "#9467bd", "#e377c2", "#7f7f7f")


def _mpl():
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def load_image(path: str | os.PathLike, size: int = 28) -> np.ndarray:
    """Read a PNG/JPEG (anything Pillow opens) as a ``size`` x ``size`` float32 image in [0, 1]
    prepared like an MNIST digit.

    Rule: convert to 8-bit grayscale (alpha composited on white); if the border pixels are on
    average lighter than mid-grey (dark ink on light paper) invert, so the digit is light on
    black; crop to the bounding box of pixels above 10% of the maximum; resize keeping the aspect
    ratio so the longer side is ``round(size * 20 / 28)`` (20 px for 28, as MNIST fits digits in a
    20x20 box); paste centred on a black ``size`` x ``size`` canvas. A blank image stays blank.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            gray = np.asarray(im.convert("L"), dtype=np.float32)
    except UnidentifiedImageError:
        raise InvalidValue(
            f"image file {os.fspath(path)!r} is not an image Pillow can read"
        ) from None
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    if border.mean() > 127.5:
        gray = 255.0 - gray
    canvas = np.zeros((size, size), np.float32)
    if gray.max() <= 0:
        return canvas
    rows, cols = np.nonzero(gray > 0.1 * gray.max())
    gray = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    box = max(1, round(size * 20 / 28))
    h, w = gray.shape
    scale = box / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = Image.fromarray(gray.astype(np.uint8)).resize((nw, nh), Image.Resampling.LANCZOS)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top:top + nh, left:left + nw] = np.asarray(small, np.float32)
    return np.clip(canvas / 255.0, 0.0, 1.0)


def dataset_digit(index: int = 0) -> tuple[np.ndarray, int]:
    """Test digit ``index`` of the embedded MNIST sample: ((28, 28) float32 in [0, 1], label)."""
    from ..data import load_raw

    _, (x_test, y_test) = load_raw("mnist-sample")
    if not isinstance(index, int | np.integer) or not 0 <= index < len(x_test):
        raise InvalidValue(
            f"index must be an int in [0, {len(x_test) - 1}] (the sample's test digits), "
            f"got {index!r}"
        )
    return x_test[index].astype(np.float32) / 255.0, int(y_test[index])


def first_conv_layer(model=None, seed: int = 0, train_examples: int = 0):
    """The first ``Conv2D`` of ``model`` (a model object or a saved-model path).

    With no model: the tutorial's model (Conv2D(32, 3x3, relu) -> MaxPooling2D(2) -> Flatten ->
    Dense(10)) with weights drawn after ``keras.utils.set_random_seed(seed)``; if
    ``train_examples`` > 0 it is first trained for one epoch (Adam, batch 32) on that many
    training digits of the embedded sample, so the filters are edge and stroke detectors rather
    than random ones (2,000 digits take a few seconds)."""
    if model is None:
        from ..data import load_dataset
        from ..keras import utils
        from .models import seed_model

        utils.set_random_seed(seed)
        model = seed_model()
        if train_examples:
            if not isinstance(train_examples, int) or train_examples < 0:
                raise InvalidValue(
                    f"train_examples must be a non-negative int, got {train_examples!r}"
                )
            (x, y), _ = load_dataset("mnist-sample")
            model.fit(x[:train_examples], y[:train_examples], epochs=1, verbose=0)
    elif isinstance(model, str | os.PathLike):
        from ..keras.models import load_model

        model = load_model(model)
    from ..keras.layers import Conv2D

    for layer in model.layers:
        if isinstance(layer, Conv2D):
            return layer
    raise InvalidValue(f"model {getattr(model, 'name', model)!r} has no Conv2D layer to show")


def conv_feature_maps(image: np.ndarray, conv) -> np.ndarray:
    """``conv`` (a layer or callable on (N, H, W, C)) applied to one (H, W) or (H, W, C) image:
    the (OH, OW, filters) feature maps."""
    x = np.asarray(image, np.float32)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3:
        raise InvalidValue(f"image must be (H, W) or (H, W, C), got shape {x.shape}")
    return np.asarray(conv(x[None]))[0]


def _check_modes(modes) -> None:
    for m in modes:
        if m not in POOL_KINDS:
            raise InvalidValue(f"modes must be among {POOL_KINDS}, got {m!r}")


def _pick_channels(maps: np.ndarray, n: int) -> list[int]:
    """The strongest channel (largest total |activation|), then greedily the channel least
    correlated with those already picked, so the rows show different filters."""
    flat = maps.reshape(-1, maps.shape[-1]).astype(np.float64)
    energy = np.abs(flat).sum(axis=0)
    centred = flat - flat.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    live = [c for c in np.argsort(-energy, kind="stable") if norms[c] > 0]
    if not live:
        return list(range(min(n, maps.shape[-1])))
    unit = centred / np.where(norms > 0, norms, 1.0)
    corr = np.abs(unit.T @ unit)
    picked = [int(live[0])]
    while len(picked) < min(n, len(live)):
        rest = [c for c in live if c not in picked]
        picked.append(int(min(rest, key=lambda c: corr[c, picked].max())))
    return picked


def _zoom_block(spec, peak: tuple[int, int], max_cells: int = 10):
    """Output block (o0, o1 per dim, half-open) of up to 4x4 cells (3x3 if windows overlap,
    which keeps the outlines apart) whose windows fit in ``max_cells`` input cells and cover the
    input cell ``peak``."""
    most = 3 if spec.overlapping else 4
    block = []
    for out, s, e, pb, p in zip(spec.out_size, spec.stride, spec.effective_window,
                                spec.pad_before, peak, strict=True):
        m = max(1, min(most, out, (max_cells - e) // s + 1))
        centre = min(max((p + pb) // s, 0), out - 1)
        o0 = min(max(centre - m // 2, 0), out - m)
        block.append((o0, o0 + m))
    return block


def _block(a: np.ndarray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """Rows r0..r1 and columns c0..c1 of ``a``, clipped to its size (a kind on a coarser grid,
    e.g. global pooling's 1 x 1, shows what it has there)."""
    h, w = a.shape
    r0, c0 = min(r0, h - 1), min(c0, w - 1)
    return a[r0:max(min(r1, h), r0 + 1), c0:max(min(c1, w), c0 + 1)]


def feature_map_figure(
    image: np.ndarray,
    maps: np.ndarray,
    pool_size: int = 2,
    strides: int | None = None,
    padding: str = "valid",
    modes: Sequence[str] = ("max", "avg"),
    channels: Sequence[int] | None = None,
    n_channels: int = 4,
    title: str | None = None,
):
    """Figure of feature maps ``maps`` (H, W, C) of ``image`` (h, w) before and after pooling.

    ``pool_size``/``strides``/``padding`` follow Keras (strides ``None`` = pool size; square
    windows). ``modes`` are kinds of :data:`poolkit.kinds.POOL_KINDS`, each applied as
    :func:`poolkit.lab.models.pool_maps` applies it (the header's windows are the windowed
    kinds' windows; the other kinds sample on their own grid). ``channels``
    picks the channel rows; default ``n_channels`` of them: the strongest (largest total
    |activation|), then each time the one least correlated with those already picked. The
    zoomed crop in the header shows the first channel around its strongest cell. Returns a
    ``matplotlib.figure.Figure``.
    """
    plt = _mpl()
    from matplotlib.patches import Rectangle

    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3:
        raise InvalidValue(f"maps must be (H, W, C) feature maps, got shape {maps.shape}")
    _check_modes(modes)
    labels = {m: get_kind(m).label for m in modes}
    h, w, c = maps.shape
    spec = keras_spec((h, w), pool_size, strides, padding, op="show")
    if channels is None:
        channels = _pick_channels(maps, min(n_channels, c))
    channels = [int(ch) for ch in channels]
    for ch in channels:
        if not 0 <= ch < c:
            raise InvalidValue(f"channels must be in [0, {c - 1}], got {ch}")
    pooled = {m: pool_maps(m, maps[None], pool_size, strides, padding)[0] for m in modes}
    k, s = spec.window[0], spec.stride[0]
    pool_txt = f"{k}x{k}, stride {s}" + ("" if padding == "valid" else f", {padding}")

    ncols = 2 + len(modes)
    nrows = 1 + len(channels)
    fig = plt.figure(figsize=(3.1 * ncols + 0.6, 3.0 * nrows + 1.0), layout="constrained")
    gs = fig.add_gridspec(nrows, ncols + 1, width_ratios=[1] * ncols + [0.06],
                          height_ratios=[1.35] + [1] * (nrows - 1))
    fig.suptitle(title or f"Feature maps before and after pooling ({pool_txt})", fontsize=13)

    # Header: input image.
    ax = fig.add_subplot(gs[0, 0])
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(f"input {image.shape[0]}x{image.shape[1]}", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])

    # Header: enlarged crop of the first channel around its strongest cell.
    ch0 = channels[0]
    plane = maps[:, :, ch0]
    peak = np.unravel_index(int(np.argmax(plane)), plane.shape)
    (r0, r1), (c0, c1) = _zoom_block(spec, peak)
    e = spec.effective_window
    ys = [o * spec.stride[0] - spec.pad_before[0] for o in range(r0, r1)]
    xs = [o * spec.stride[1] - spec.pad_before[1] for o in range(c0, c1)]
    iy0, iy1 = max(ys[0], 0), min(ys[-1] + e[0], h)
    ix0, ix1 = max(xs[0], 0), min(xs[-1] + e[1], w)
    crop = plane[iy0:iy1, ix0:ix1]
    crops = {m: _block(pooled[m][:, :, ch0], r0, r1, c0, c1) for m in modes}
    vmin = float(min(crop.min(), *(v.min() for v in crops.values())))
    vmax = float(max(crop.max(), *(v.max() for v in crops.values())))
    vmax = vmax if vmax > vmin else vmin + 1.0
    ax = fig.add_subplot(gs[0, 1])
    ax.imshow(crop, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest",
              extent=(ix0 - 0.5, ix1 - 0.5, iy1 - 0.5, iy0 - 0.5))
    overlap = spec.overlapping
    picked = set()
    for a in range(r1 - r0):
        for b in range(c1 - c0):
            colour = _WINDOW_COLOURS[(a * (c1 - c0) + b) % len(_WINDOW_COLOURS)]
            inset = 0.08 + (0.12 * ((a + b) % 2) if overlap else 0.0)
            ax.add_patch(Rectangle((xs[b] - 0.5 + inset, ys[a] - 0.5 + inset),
                                   e[1] - 2 * inset, e[0] - 2 * inset, fill=False,
                                   edgecolor=colour, linewidth=2.0))
            if "max" in modes:
                win = plane[max(ys[a], 0):ys[a] + e[0], max(xs[b], 0):xs[b] + e[1]]
                wy, wx = np.unravel_index(int(np.argmax(win)), win.shape)
                picked.add((max(ys[a], 0) + wy, max(xs[b], 0) + wx))
    if crop.size <= 100:
        for (i, j), v in np.ndenumerate(crop):
            bold = (iy0 + i, ix0 + j) in picked
            ax.text(ix0 + j, iy0 + i, f"{v:.2f}", ha="center", va="center",
                    fontsize=7.5 if bold else 6.5, fontweight="bold" if bold else "normal",
                    color="white" if v < (vmin + vmax) / 2 else "black")
    ax.set_xlim(ix0 - 0.5, ix1 - 0.5)
    ax.set_ylim(iy1 - 0.5, iy0 - 0.5)
    ax.set_title(f"channel {ch0}, rows {iy0}-{iy1 - 1}, cols {ix0}-{ix1 - 1}\n"
                 f"windows outlined" + (", max picks bold" if picked else ""), fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    for n, m in enumerate(modes):
        ax = fig.add_subplot(gs[0, 2 + n])
        v = crops[m]
        im = ax.imshow(v, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        for (i, j), val in np.ndenumerate(v):
            ax.text(j, i, f"{val:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if val < (vmin + vmax) / 2 else "black")
            colour = _WINDOW_COLOURS[(i * v.shape[1] + j) % len(_WINDOW_COLOURS)]
            ax.add_patch(Rectangle((j - 0.42, i - 0.42), 0.84, 0.84, fill=False,
                                   edgecolor=colour, linewidth=2.0))
        ax.set_title(f"{labels[m]}: outputs\nrows {r0}-{r1 - 1}, cols {c0}-{c1 - 1}",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, cax=fig.add_subplot(gs[0, ncols]))

    # One row per channel: full map with the window grid, then each pooled map.
    for row, ch in enumerate(channels, start=1):
        plane = maps[:, :, ch]
        outs = [pooled[m][:, :, ch] for m in modes]
        vmin = float(min(plane.min(), *(o.min() for o in outs)))
        vmax = float(max(plane.max(), *(o.max() for o in outs)))
        vmax = vmax if vmax > vmin else vmin + 1.0
        ax = fig.add_subplot(gs[row, 0:2])
        ax.imshow(plane, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        # Window starts along each axis; with stride == pool size these are the window edges.
        for o in range(spec.out_size[0] + 1):
            ax.axhline(o * spec.stride[0] - spec.pad_before[0] - 0.5, color="white", lw=0.5,
                       alpha=0.6)
        for o in range(spec.out_size[1] + 1):
            ax.axvline(o * spec.stride[1] - spec.pad_before[1] - 0.5, color="white", lw=0.5,
                       alpha=0.6)
        if ch == ch0:  # where the enlarged crop came from
            ax.add_patch(Rectangle((ix0 - 0.5, iy0 - 0.5), ix1 - ix0, iy1 - iy0, fill=False,
                                   edgecolor="red", linewidth=1.5))
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_title(f"channel {ch} before pooling: {h}x{w} (grid: stride {s})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        for n, (m, o) in enumerate(zip(modes, outs, strict=True)):
            ax = fig.add_subplot(gs[row, 2 + n])
            im = ax.imshow(o, cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_title(f"{labels[m]}: {o.shape[0]}x{o.shape[1]}", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, cax=fig.add_subplot(gs[row, ncols]))
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 110) -> str:
    """Write ``fig`` as a PNG at ``path`` atomically (``poolkit._io.atomic_write``: temp file in
    the same dir, fsync, rename; folders created) and close it. Returns the path."""
    plt = _mpl()
    path = os.fspath(path)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi))
    finally:
        plt.close(fig)
    return path


def _first_conv_and_pool(model):
    from ..keras import layers

    conv = next((layer for layer in model.layers if isinstance(layer, layers.Conv2D)), None)
    if conv is None:
        raise InvalidValue(f"model {getattr(model, 'name', model)!r} has no Conv2D layer")
    i = model.layers.index(conv)
    nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
    if isinstance(nxt, layers.BasePooling) and nxt.pool_dimensions == 2:
        return conv, i, nxt.pool_size, nxt.strides, nxt.padding
    return conv, i, (2, 2), (2, 2), "valid"


def model_feature_maps_figure(model, image, *, label=None, predicted=None, max_maps: int = 32,
                              modes: Sequence[str] = ("max", "avg")):
    """A matplotlib Figure of what a model's pooling does (``poolkit demo``'s
    ``feature_maps.png``): ``image`` (H, W) or (H, W, 1) on the left; on the right one panel of
    the first Conv2D's feature maps for it (after the convolution and its activation), then one
    per pooling kind in ``modes`` (kinds of :data:`poolkit.kinds.POOL_KINDS`) with the
    pooling arguments of the layer that follows the convolution (2x2, stride 2, 'valid' if
    none). Each panel shows up to ``max_maps`` channels on one colour scale and has its shape
    in the title."""
    plt = _mpl()
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3:
        raise InvalidValue(f"image must be (H, W) or (H, W, C), got shape {img.shape}")
    _check_modes(modes)
    conv, i, pool_size, strides, padding = _first_conv_and_pool(model)
    h = img[None].astype(model._dtype)
    for layer in model.layers[: i + 1]:
        h = layer.call(h, training=False)
    maps = h.astype(np.float32)
    n = min(maps.shape[-1], max_maps)
    cols = 8
    rows = -(-n // cols)
    p = "x".join(map(str, pool_size))
    s = "x".join(map(str, strides))
    panels = [(maps[0], f"{conv.name} ({conv.activation}) output, shape {maps.shape[1:]}")]
    for m in modes:
        y = pool_maps(m, maps, pool_size, strides, padding)
        panels.append((y[0], f"{get_kind(m).label} {p}, strides {s}, {padding}: "
                             f"shape {y.shape[1:]}"))
    fig = plt.figure(figsize=(15, 3.2 * len(panels) + 0.6), layout="constrained")
    left, right = fig.subfigures(1, 2, width_ratios=[1, 3.2])
    ax = left.add_subplot(1, 1, 1)
    ax.imshow(img[..., 0], cmap="gray")
    title = f"test digit, shape {img.shape}"
    if label is not None:
        title += f"\nlabel {label}"
        if predicted is not None:
            title += f", predicted {predicted}"
    ax.set_title(title, fontsize=11)
    ax.set_xticks([])
    ax.set_yticks([])
    subs = right.subfigures(len(panels), 1)
    for sub, (arr, text) in zip(subs, panels, strict=True):
        vmax = float(arr[..., :n].max())
        vmin = float(arr[..., :n].min())
        axes = sub.subplots(rows, cols)
        im = None
        for k, a in enumerate(np.atleast_1d(axes).ravel()):
            a.set_xticks([])
            a.set_yticks([])
            if k < n:
                im = a.imshow(arr[..., k], cmap="viridis", vmin=vmin, vmax=vmax)
            else:
                a.axis("off")
        sub.suptitle(text + f" — {n} channels, one colour scale", fontsize=11)
        sub.colorbar(im, ax=axes, shrink=0.9, pad=0.01)
    fig.suptitle(f"What the pooling layer does: {len(model.layers)}-layer CNN, "
                 f"channels 0-{n - 1} left to right, top to bottom", fontsize=12)
    return fig


def sweep_figure(rows: Sequence[dict], title: str | None = None):
    """Bar charts of a sweep's rows (dicts as returned by :func:`poolkit.lab.sweep.run_sweep`):
    train and test accuracy, shift consistency, and seconds per epoch with multiply-adds, one
    bar per variant."""
    plt = _mpl()
    names = [r["variant"] for r in rows]
    f = {c: np.array([float(r[c]) for r in rows]) for c in
         ("train_accuracy", "test_accuracy", "consistency", "consistency_1px", "epoch_seconds",
          "macs", "params")}
    pos = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(max(10.0, 1.3 * len(rows) * 3), 4.2),
                             layout="constrained")
    ax = axes[0]
    ax.bar(pos - 0.2, f["train_accuracy"], 0.4, label="train", color="#9ecae1")
    ax.bar(pos + 0.2, f["test_accuracy"], 0.4, label="test", color="#08519c")
    for p, v in zip(pos, f["test_accuracy"], strict=True):
        ax.text(p + 0.2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=7)
    low = min(f["test_accuracy"].min(), f["train_accuracy"].min())
    ax.set_ylim(max(0.0, low - 0.05), 1.06)
    ax.set_title("train and test accuracy (gap = overfitting)")
    ax.legend(loc="upper center", ncols=2, fontsize=8)
    ax = axes[1]
    ax.bar(pos - 0.2, f["consistency_1px"], 0.4, label="shifts <= 1 px", color="#a1d99b")
    ax.bar(pos + 0.2, f["consistency"], 0.4, label="shifts <= 4 px", color="#31a354")
    for p, v1, v4 in zip(pos, f["consistency_1px"], f["consistency"], strict=True):
        ax.text(p - 0.2, v1, f"{v1:.2f}", ha="center", va="bottom", fontsize=7)
        ax.text(p + 0.2, v4, f"{v4:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0.0, 1.12)
    ax.legend(loc="upper center", ncols=2, fontsize=8)
    ax.set_title("shift consistency: same class for\ntwo randomly shifted copies")
    ax = axes[2]
    ax.bar(pos, f["epoch_seconds"], 0.6, color="#fd8d3c")
    for p, sec, m, n in zip(pos, f["epoch_seconds"], f["macs"], f["params"], strict=True):
        ax.text(p, sec, f"{m / 1e6:.1f}M MACs\n{n / 1e3:.0f}k params", ha="center",
                va="bottom", fontsize=7)
    ax.set_ylim(0, f["epoch_seconds"].max() * 1.3)
    ax.set_title("seconds per epoch")
    for ax in axes[:2]:  # headroom for the legend, but no ticks above 1
        ax.set_yticks([t for t in ax.get_yticks() if t <= 1.0 + 1e-9])
    for ax in axes:
        ax.set_xticks(pos, names, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig
