"""The ``poolkit`` command. Each subcommand is a few lines over a library function that a
notebook user can call too; the argument parsers live here, the work does not.

Errors: bad input (:class:`poolkit.errors.UserError`: InvalidValue, InvalidType, an
unavailable dataset), and an OSError about a file or directory the user named (missing,
unreadable, misplaced, a name too long, a busy mount point such as ``.``: any OSError whose
path is one given on the command line) print ``poolkit <command>: error: ...`` and exit with
status 2, as argparse's own errors do. Anything else is a bug in poolkit and propagates with
its traceback. A command that needs a package which is not installed says so before it starts
any work.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from .data import DATASETS
from .errors import UserError
from .kinds import POOL_KINDS
from .lab.models import DOWNSAMPLING_KINDS

# Import name -> pip name of the packages a command may need.
_PIP_NAMES = {"matplotlib": "matplotlib", "PIL": "pillow"}
_FIGURES = ("matplotlib", "PIL")
_PATH_ERRORS = (OSError,)  # reported as the user's only if about a path they gave


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="poolkit",
        description="Pooling layers for CNNs: the tutorial's model, and tools to see and measure "
        "what pooling does.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    # What main() checks before and after a command runs: packages it needs, and the arguments
    # that are paths the user gave (errors about them are the user's, reported without a trace).
    p.set_defaults(needs=(), paths=())
    # >>> demo/train (CNN) subcommands
    def _demo(a):
        from .demo import run_demo

        run_demo(out=a.out, epochs=a.epochs, batch_size=a.batch_size, seed=a.seed,
                 learning_rate=a.learning_rate, verbose=0 if a.quiet else "auto",
                 threads=a.threads)
        return 0

    def _train(a):
        from .demo import run_train

        run_train(a.dataset, a.pool, a.pool_size, a.strides, a.padding, a.epochs, a.batch_size,
                  a.out, seed=a.seed, verbose=0 if a.quiet else "auto",
                  max_train=a.max_train, max_test=a.max_test, learning_rate=a.learning_rate,
                  threads=a.threads)
        return 0

    def _threads(text):
        if text == "auto":
            return text
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be 'auto' or an int, got {text!r}") from None

    threads_help = ("threads while training: 'auto' (all, or 1 when the machine is busy) "
                    "or N; results do not depend on it")

    sp = sub.add_parser(
        "demo", help="train the tutorial's CNN on the embedded MNIST sample and show its pooling",
        description="Train the tutorial's CNN (Conv2D 32 3x3 relu, MaxPooling2D 2x2, Flatten, "
        "Dense 10 softmax) on the embedded MNIST sample (8,000 train / 2,000 test), print the "
        "summary and test accuracy, and write feature_maps.png, model.poolkit and metrics.json.",
    )
    sp.add_argument("--out", default="poolkit-demo", help="output directory (default %(default)s)")
    sp.add_argument("--epochs", type=int, default=6, help="default %(default)s")
    sp.add_argument("--batch-size", type=int, default=32, help="default %(default)s")
    sp.add_argument("--learning-rate", type=float, default=2e-3, help="Adam; default %(default)s")
    sp.add_argument("--seed", type=int, default=0, help="default %(default)s")
    sp.add_argument("--threads", type=_threads, default="auto", help=threads_help)
    sp.add_argument("--quiet", action="store_true", help="no summary or progress bar")
    sp.set_defaults(func=_demo, needs=_FIGURES, paths=("out",))

    sp = sub.add_parser(
        "train", help="train the tutorial's CNN with a chosen dataset and pooling layer",
        description="Train the tutorial's CNN with the pooling layer given by --pool, "
        "--pool-size, --strides and --padding; same outputs as `poolkit demo`.",
    )
    sp.add_argument("--dataset", choices=DATASETS, default="mnist-sample",
                    help="default %(default)s")
    sp.add_argument("--pool", choices=POOL_KINDS, default="max", help="default %(default)s")
    sp.add_argument("--pool-size", type=int, default=2, help="default %(default)s")
    sp.add_argument("--strides", type=int, default=None, help="default: the pool size")
    sp.add_argument("--padding", choices=["valid", "same"], default="valid",
                    help="default %(default)s")
    sp.add_argument("--epochs", type=int, default=3, help="default %(default)s")
    sp.add_argument("--batch-size", type=int, default=32, help="default %(default)s")
    sp.add_argument("--learning-rate", type=float, default=1e-3, help="Adam; default %(default)s")
    sp.add_argument("--out", default="poolkit-train", help="output directory (default %(default)s)")
    sp.add_argument("--seed", type=int, default=0, help="default %(default)s")
    sp.add_argument("--max-train", type=int, default=None, help="use the first N training images")
    sp.add_argument("--max-test", type=int, default=None, help="use the first N test images")
    sp.add_argument("--threads", type=_threads, default="auto", help=threads_help)
    sp.add_argument("--quiet", action="store_true", help="no summary or progress bar")
    sp.set_defaults(func=_train, needs=_FIGURES, paths=("out",))
    # <<< demo/train
    # >>> lab subcommands (shapes, show, sweep)
    def lab(name):
        def run(a):
            from .lab import commands

            return getattr(commands, name)(a)
        return run

    def pos_int(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
        if v < 1:
            raise argparse.ArgumentTypeError(f"expected a positive int, got {v}")
        return v

    sp = sub.add_parser("shapes", help="pooling output shapes (Keras and PyTorch rules) or a "
                        "model's per-layer shapes, params, multiply-adds and receptive fields")
    sp.add_argument("--input", metavar="HxWxC", help="input shape, channels last, e.g. 28x28x32 "
                    "(pool table); without it, the model table")
    sp.add_argument("--model", default="seed", help="'seed' (the tutorial's model, default) or "
                    "a saved model file; shown with each --pool-size/--strides")
    sp.add_argument("--pool-size", type=pos_int, nargs="+", default=None,
                    help="default: 2 for the pool table, 2 3 4 for the model table")
    sp.add_argument("--strides", type=pos_int, nargs="+", default=None,
                    help="default: the pool size")
    sp.add_argument("--padding", choices=("valid", "same"), nargs="+", default=["valid", "same"],
                    help="Keras paddings (default both)")
    sp.add_argument("--torch-padding", type=int, nargs="+", default=[0],
                    help="PyTorch paddings (default 0)")
    sp.add_argument("--ceil-mode", choices=("false", "true"), nargs="+",
                    default=["false", "true"], help="PyTorch ceil_mode values (default both)")
    sp.add_argument("--dilation", type=pos_int, nargs="+", default=[1])
    sp.add_argument("--kinds", choices=POOL_KINDS, nargs="+", default=None,
                    help="also the output shape of each of these pooling kinds (pool table), "
                    "or the tutorial's model with each as its pooling layer (model table)")
    sp.add_argument("--json", action="store_true", help="print the rows as JSON")
    sp.set_defaults(func=lab("shapes"), paths=("model",))

    sp = sub.add_parser("show", help="PNG of feature maps before and after pooling")
    src = sp.add_mutually_exclusive_group()
    src.add_argument("--index", type=int, default=0, help="test digit of the embedded sample")
    src.add_argument("--image", help="a PNG/JPEG file, made MNIST-like: grayscale, inverted if "
                     "its border is light, cropped to the ink, fitted in 20x20, centred on 28x28")
    sp.add_argument("--model", default="seed", help="saved model whose first Conv2D is used; "
                    "default 'seed': the tutorial's model, seeded with --seed and trained "
                    "for one epoch on --train digits")
    sp.add_argument("--train", type=int, default=2000, help="digits to quick-train the seed "
                    "model on (default %(default)s, a few seconds; 0 = untrained)")
    sp.add_argument("--pool-size", type=pos_int, default=2)
    sp.add_argument("--strides", type=pos_int, default=None, help="default: the pool size")
    sp.add_argument("--padding", choices=("valid", "same"), default="valid")
    sp.add_argument("--kinds", choices=POOL_KINDS, nargs="+", default=["max", "avg"],
                    help="pooling kinds to show (default: max avg)")
    sp.add_argument("--channels", type=int, nargs="+", default=None,
                    help="channels to show (default: the strongest)")
    sp.add_argument("--n-channels", type=pos_int, default=4)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--out", default="poolkit-show.png")
    sp.set_defaults(func=lab("show"), needs=_FIGURES, paths=("image", "model", "out"))

    sp = sub.add_parser("sweep", help="train no/max/avg pooling and strided-conv variants; "
                        "table, CSV and PNG of accuracy, consistency and time")
    sp.add_argument("--dataset", choices=DATASETS, default="mnist-sample")
    sp.add_argument("--epochs", type=pos_int, default=1)
    sp.add_argument("--pool-size", type=pos_int, nargs="+", default=[2])
    sp.add_argument("--strides", type=pos_int, nargs="+", default=None,
                    help="default: the pool size")
    sp.add_argument("--kinds", choices=DOWNSAMPLING_KINDS, nargs="+", default=None,
                    help="default: none, max, avg, max_blur, blur, aps, conv")
    sp.add_argument("--limit", type=pos_int, default=None, help="train on the first N examples")
    sp.add_argument("--batch-size", type=pos_int, default=32)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--consistency-images", type=pos_int, default=1000)
    sp.add_argument("--csv", default="poolkit-sweep/sweep.csv")
    sp.add_argument("--plot", default=None, help="default: the CSV's path with .png")
    sp.add_argument("--fresh", action="store_true",
                    help="replace the CSV instead of skipping variants already in it")
    sp.add_argument("--threads", type=pos_int, default=None,
                    help="threads (default: all, or 1 if the machine is busy)")
    sp.add_argument("--quiet", action="store_true", help="no per-batch progress bar")
    sp.set_defaults(func=lab("sweep_cmd"), needs=("matplotlib",), paths=("csv", "plot"))
    # <<< lab
    # >>> explore
    def _explore(a):
        from .explore import missing_dependencies, serve

        missing = missing_dependencies()
        if missing:  # said before anything starts, without a traceback
            print(f"poolkit explore: error: needs {', '.join(missing)}: "
                  "pip install 'poolkit[explore]'", file=sys.stderr)
            return 2
        return serve(a.host, a.port, open_browser=not a.no_browser, model=a.model)

    sp = sub.add_parser("explore", help="interactive pooling explorer in the browser",
                        description="Start a local web app to explore pooling: any kind, window, "
                        "stride, padding, dilation and convention on real digits, each cell's "
                        "window and arithmetic, a trained model's feature maps, shifts. "
                        "Ctrl-C stops it.")
    sp.add_argument("--host", default="127.0.0.1",
                    help="address to listen on (default %(default)s: this machine only)")
    sp.add_argument("--port", type=int, default=8765, help="default %(default)s; 0: any free")
    sp.add_argument("--no-browser", action="store_true", help="do not open a browser")
    sp.add_argument("--model", metavar="FILE", default=None, help="a saved poolkit model "
                    "(default: the demo's model, trained once and cached)")
    sp.set_defaults(func=_explore)
    # <<< explore
    return p


def _missing(modules) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _names_user_path(err: OSError, args) -> bool:
    """Whether ``err`` is about a path the user gave (or a file in, next to or above it)."""
    given = [os.path.abspath(v) for v in (getattr(args, d, None) for d in args.paths)
             if isinstance(v, str) and v != "seed"]
    for name in (err.filename, err.filename2):
        if not isinstance(name, str | bytes | os.PathLike):
            continue
        p = os.path.abspath(os.fsdecode(name))
        for u in given:
            if p == u or p.startswith(u + os.sep) or u.startswith(p.rstrip(os.sep) + os.sep) \
                    or os.path.dirname(p) == os.path.dirname(u):
                return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = _missing(getattr(args, "needs", ()))
    if missing:
        pip = " ".join(_PIP_NAMES.get(m, m) for m in missing)
        print(f"poolkit {args.command}: error: this command needs {', '.join(missing)}, which "
              f"is not installed; install it with: pip install {pip}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"poolkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except _PATH_ERRORS as e:
        if not _names_user_path(e, args):
            raise
        print(f"poolkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
