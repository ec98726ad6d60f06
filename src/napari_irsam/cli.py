"""Command line: ``napari-irsam <command>`` (also ``python -m napari_irsam``).

Works without a display except ``demo``. Bad arguments or paths exit with code 2 and one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__


class UsageError(Exception):
    """A user error: printed as one line, exit code 2."""


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    run_demo(with_sample=not args.no_sample)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="napari-irsam", description="IRSAM infrared small-target segmentation for napari."
    )
    parser.add_argument("--version", action="version", version=f"napari-irsam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="open napari with the plugin and the sample data")
    demo.add_argument("--no-sample", action="store_true", help="do not load the sample data")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (UsageError, ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"napari-irsam {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
