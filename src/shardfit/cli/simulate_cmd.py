"""``shardfit simulate``: write a simulated data set with known parameters."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from shardfit.cli.args import out_file_problem, report_error
from shardfit.data.simulate import KINDS, simulate

__all__ = ["add_parser", "run"]


def _count(text: str) -> int:
    """Parse a non-negative row count; ``1_000_000`` and ``1e6`` are accepted."""
    try:
        value = float(text.replace("_", "")) if "e" in text.lower() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(value)


def add_parser(subparsers: Any) -> None:
    """Add the ``simulate`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "simulate",
        help="write a simulated data set (linreg, logit, poisson)",
        description=(
            "Write a simulated data set whose generating coefficients are known, chunk by "
            "chunk with bounded memory. The same seed always gives the same rows."
        ),
    )
    parser.add_argument("kind", choices=KINDS, help="the data-generating model")
    parser.add_argument("--rows", type=_count, required=True, help="number of rows")
    parser.add_argument(
        "--out", required=True, help="output file (.csv, .csv.gz, .csv.bz2, .csv.zst, .parquet)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--seed", type=_count, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--format",
        choices=("csv", "parquet"),
        help="file format (default: by extension; one the extension contradicts is an error)",
    )
    parser.add_argument(
        "--chunk-rows",
        type=_count,
        default=250_000,
        help="rows written at a time; the Parquet row-group size (default 250000)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when standard error is a terminal)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit simulate``; prints a one-line summary and returns the exit status."""
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    problem = out_file_problem(args.out, "the simulated data", overwrite=args.overwrite)
    if problem is not None:  # a data file is never replaced by a mistyped --out
        return report_error(args, ValueError(problem))
    started = time.perf_counter()
    try:
        path = simulate(
            args.kind,
            args.rows,
            args.out,
            seed=args.seed,
            format=args.format,
            chunk_rows=args.chunk_rows,
            progress=progress,
        )
    except (OSError, ValueError) as error:
        return report_error(args, error)
    seconds = time.perf_counter() - started
    size = path.stat().st_size / 1e6
    print(
        f"wrote {args.rows:,} {args.kind} rows (seed {args.seed}) to {path} "
        f"({size:.1f} MB) in {seconds:.1f} s"
    )
    return 0
