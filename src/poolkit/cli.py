"""The ``poolkit`` command. Each subcommand is a few lines over a library function that a
notebook user can call too; the argument parsers live here, the work does not."""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="poolkit",
        description="Pooling layers for CNNs: the tutorial's model, and tools to see and measure "
        "what pooling does.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    # >>> demo/train (CNN) subcommands
    # <<< demo/train
    # >>> lab subcommands (shapes, show, sweep)
    # <<< lab
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, OSError) as e:
        print(f"poolkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
