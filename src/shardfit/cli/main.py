"""The ``shardfit`` command: one sub-command per module in this package."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from shardfit.cli.args import cli_message, report_error
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


class _StdoutClosed(Exception):
    """The reader of standard output went away (``shardfit fit ... | head``). Not an
    ``OSError``, so the commands' handlers of file errors let it through."""


class _Stdout:
    """Standard output whose broken pipe raises :class:`_StdoutClosed`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError as error:
            raise _StdoutClosed from error

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError as error:
            raise _StdoutClosed from error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _warning_printer(args: argparse.Namespace) -> Any:
    """A ``warnings.showwarning`` for a command-line user: ``warning: MESSAGE`` on one
    line of standard error, with the command's flags for the library's Python hints,
    rather than the source file, line number and code line of the ``warn`` call."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = re.sub(r"\s*\n\s*", " ", cli_message(args, str(message)).strip())
        try:
            print(f"warning: {text}", file=sys.stderr if file is None else file)
        except OSError:  # as warnings' own printer: a closed stderr loses the warning
            pass

    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    stdout = sys.stdout
    sys.stdout = _Stdout(stdout)  # type: ignore[assignment]
    # catch_warnings restores the printer on leaving: main() called from Python (the
    # tests) leaves the caller's warnings as they were.
    with warnings.catch_warnings():
        warnings.showwarning = _warning_printer(args)
        try:
            return int(args.run(args) or 0)
        except _StdoutClosed:
            # As a Unix tool killed by SIGPIPE: no message, status 128 + 13. Output still
            # buffered would fail again at exit: point the descriptor at /dev/null.
            os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
            return 141
        except ShardfitError as error:
            return report_error(args, error)
        except KeyboardInterrupt:
            print(f"shardfit {args.command}: interrupted", file=sys.stderr)
            return 130
        finally:
            sys.stdout = stdout


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
