"""The ``shardfit`` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shardfit.errors import ShardfitError

__all__ = ["main"]

# name -> module that defines ``add_parser(subparsers)`` and ``run(args) -> int``.
_COMMANDS: dict[str, str] = {
    "simulate": "shardfit.cli.simulate_cmd",
    "convert": "shardfit.cli.convert_cmd",
    "schema": "shardfit.cli.schema_cmd",
    "demo": "shardfit.cli.demo_cmd",
    "design": "shardfit.cli.design_cmd",
    "fit": "shardfit.cli.fit_cmd",
    "svd": "shardfit.cli.svd_cmd",
    "predict": "shardfit.cli.predict_cmd",
    "search": "shardfit.cli.search_cmd",
    "best": "shardfit.cli.best_cmd",
}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shardfit",
        description="Fit models to data too large for memory, partition by partition.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in _COMMANDS.values():
        module = importlib.import_module(module_name)
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ShardfitError as error:
        print(f"shardfit {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"shardfit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
