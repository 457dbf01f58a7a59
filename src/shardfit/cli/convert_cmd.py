"""``shardfit convert``: CSV and Parquet to CSV or Parquet, with bounded memory."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shardfit.cli.args import positive_int, report_error
from shardfit.cli.csv_args import add_column_type_argument, add_dialect_arguments
from shardfit.data.convert import convert

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``convert`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "convert",
        help="convert CSV <-> Parquet chunk by chunk",
        description=(
            "Convert a CSV (.csv, or compressed: .csv.gz, .csv.bz2, .csv.zst, .csv.lz4, "
            ".csv.br; .tsv the same, tab-separated) or Parquet (.parquet, .pq) file to "
            "CSV or Parquet, format by extension, chunk by chunk with bounded memory. "
            "The output is replaced atomically and left untouched on failure."
        ),
    )
    parser.add_argument("src", metavar="IN", help="input file")
    parser.add_argument("dst", metavar="OUT", help="output file")
    parser.add_argument(
        "--chunk-rows",
        type=positive_int,
        help="rows per written chunk / Parquet row group (default: about 64 MiB of memory)",
    )
    add_column_type_argument(parser)
    add_dialect_arguments(parser, default_nulls="NA, NULL, N/A and the like; NaN stays a float")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when standard error is a terminal)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit convert``; prints a one-line summary and returns the exit status."""
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        report = convert(
            args.src,
            args.dst,
            chunk_rows=args.chunk_rows,
            column_types=dict(args.column_type) or None,
            delimiter=args.delimiter,
            null_values=args.null_values,
            progress=progress,
        )
    except (OSError, ValueError) as error:
        return report_error(args, error)
    print(report.summary())
    return 0
