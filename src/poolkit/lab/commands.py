"""The lab's command-line handlers (``poolkit shapes | show | sweep``): each takes the parsed
arguments of its subcommand (parsers in :mod:`poolkit.cli`), calls library functions, prints,
and returns an exit code."""

from __future__ import annotations

import json
import os
import sys

from . import figures, models, shapes_table, sweep


def _model(spec: str | None):
    """'seed' (or None): the tutorial's model; anything else: a saved model file."""
    if spec in (None, "seed"):
        return models.seed_model()
    from ..keras.models import load_model

    return load_model(spec)


def shapes(args) -> int:
    kinds = getattr(args, "kinds", None)
    if args.input is not None:
        shape = shapes_table.parse_shape(args.input)
        rows = shapes_table.pool_shape_table(
            shape, args.pool_size or [2], args.strides or [None], args.padding,
            args.torch_padding, [c == "true" for c in args.ceil_mode], args.dilation)
        text = shapes_table.format_pool_table(rows)
        if kinds:
            krows = shapes_table.kind_shape_table(shape, kinds, args.pool_size or [2],
                                                  args.strides or [None], args.padding[0])
            rows = {"rules": rows, "kinds": krows}
            text += "\n\n" + shapes_table.format_kind_table(krows)
    elif kinds:
        rows = shapes_table.kinds_model_table(kinds, args.pool_size or [2],
                                              args.strides or [None])
        text = shapes_table.format_model_table(rows)
    else:
        rows = shapes_table.model_shape_table(_model(args.model), args.pool_size or [2, 3, 4],
                                              args.strides or [None])
        text = shapes_table.format_model_table(rows)
    print(json.dumps(rows, indent=1) if args.json else text)
    return 0


def show(args) -> int:
    if args.image is not None:
        image = figures.load_image(args.image)
        what = f"image {os.path.basename(args.image)}"
    else:
        image, label = figures.dataset_digit(args.index)
        what = f"MNIST test digit {args.index} (label {label})"
    seeded = args.model in (None, "seed")
    conv = figures.first_conv_layer(None if seeded else args.model, seed=args.seed,
                                    train_examples=args.train)
    maps = figures.conv_feature_maps(image, conv)
    source = os.path.basename(args.model)
    if seeded:
        source = "Conv2D(32, 3x3) " + (f"after 1 epoch on {args.train} digits" if args.train
                                       else f"fresh, seed {args.seed}")
    k = args.pool_size
    s = k if args.strides is None else args.strides
    fig = figures.feature_map_figure(
        image, maps, k, args.strides, args.padding, modes=tuple(args.kinds),
        channels=args.channels,
        n_channels=args.n_channels,
        title=f"{what}: {source}, then pooling {k}x{k} stride {s} {args.padding}")
    print(figures.save_figure(fig, args.out))
    return 0


def sweep_cmd(args) -> int:
    variants = sweep.sweep_variants(args.pool_size, args.strides or [None], args.kinds)
    rows = sweep.run_sweep(variants, args.csv, args.dataset, args.epochs, args.limit,
                           args.batch_size, args.seed, resume=not args.fresh,
                           consistency_images=args.consistency_images,
                           verbose=0 if args.quiet else 1,
                           threads="auto" if args.threads is None else args.threads)
    rows = [sweep.typed(r) for r in rows]
    print(shapes_table.format_table(
        rows, ("variant", "feature_map", "params", "macs", "train_accuracy", "test_accuracy",
               "gap", "consistency_1px", "consistency", "epoch_seconds"),
        headers=("variant", "feature map", "params", "MACs", "train acc", "test acc", "gap",
                 "consist. 1px", "consist. 4px", "s/epoch")))
    plot = args.plot or os.path.splitext(args.csv)[0] + ".png"
    limit = f", first {args.limit} examples" if args.limit else ""
    figures.save_figure(figures.sweep_figure(
        rows, f"{args.dataset}, {args.epochs} epoch(s){limit}, seed {args.seed}"), plot)
    print(f"results: {args.csv}\nplot: {plot}", file=sys.stderr)
    return 0
