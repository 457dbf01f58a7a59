"""Options for reading CSV data, shared by the commands that read DATA.

``--delimiter``, ``--column-type NAME=TYPE``, ``--null-values``,
``--newlines-in-values`` and ``--skip-bad-lines`` are :func:`shardfit.read_csv`'s
arguments; any of them reads DATA as CSV whatever its extension.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_column_type_argument", "add_csv_arguments", "column_type", "source_of"]


def column_type(text: str) -> tuple[str, str]:
    """``NAME=TYPE`` as a pair (the column name may itself contain ``=``)."""
    name, sep, kind = text.rpartition("=")
    if not sep or not name or not kind:
        raise argparse.ArgumentTypeError(f"expected NAME=TYPE (e.g. x=float64), got {text!r}")
    return name, kind


def add_column_type_argument(container: Any) -> None:
    """``--column-type NAME=TYPE`` (repeatable) on a parser or argument group."""
    container.add_argument(
        "--column-type",
        type=column_type,
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help="set a column's type instead of inferring it (repeatable; e.g. x=float64)",
    )


def add_csv_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the CSV reading options to ``parser``."""
    group = parser.add_argument_group("CSV data (any of these reads DATA as CSV)")
    group.add_argument("--delimiter", default=None, metavar="CHAR", help="field delimiter (,)")
    add_column_type_argument(group)
    group.add_argument(
        "--null-values",
        default=None,
        metavar="A,B",
        help="comma-separated strings read as missing (default: pyarrow's, such as NA)",
    )
    group.add_argument(
        "--newlines-in-values",
        action="store_true",
        help="quoted values may contain line breaks (slower: the file is read serially)",
    )
    group.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="skip (and count) malformed lines instead of failing at the first",
    )


def _csv_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.delimiter is not None:
        options["delimiter"] = args.delimiter
    if args.column_type:
        options["column_types"] = dict(args.column_type)
    if args.null_values is not None:
        options["null_values"] = args.null_values.split(",")
    if args.newlines_in_values:
        options["newlines_in_values"] = True
    if args.skip_bad_lines:
        options["on_bad_lines"] = "skip"
    return options


def source_of(args: argparse.Namespace, partition_rows: int | None = None) -> Any:
    """The source ``args.data`` names: by extension, or CSV with the CSV options."""
    options = _csv_options(args)
    if not options:
        from shardfit.data.resolve import as_source

        return as_source(args.data, partition_rows=partition_rows)
    from shardfit.data.csv import read_csv

    return read_csv(args.data, partition_rows=partition_rows, **options)
