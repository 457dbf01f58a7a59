"""``shardfit schema DATA [FORMULA]``: one pass of column summaries, printed as a table."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from shardfit.cli.args import out_file_problem, positive_int, report_error
from shardfit.cli.csv_args import add_csv_arguments, source_of
from shardfit.cli.render import render_learned_design, render_summary

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="summarize columns (rows, missing, range, mean, levels) in one pass",
        description=(
            "Summarize the columns of DATA in one pass, or only those FORMULA needs, and "
            "show the design columns the formula yields. Formula strings are evaluated "
            "as Python code: never pass an untrusted one."
        ),
    )
    parser.add_argument("data", help="a file, directory or glob (CSV, Parquet, HDF5, Zarr, .npy)")
    parser.add_argument("formula", nargs="?", default=None, help='e.g. "y ~ x1 + C(g)"')
    parser.add_argument(
        "--max-levels", type=positive_int, default=10_000, help="categorical level cap"
    )
    parser.add_argument("--missing", choices=["drop", "raise"], default="drop")
    parser.add_argument("--backend", default=None, help="serial, threads, processes, dask, mpi")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N")
    parser.add_argument("--json", dest="json_out", default=None, help="write the design spec here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    add_csv_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit schema``; a user's mistake is a one-line error and status 2."""
    try:
        return _run(args)
    except (OSError, ValueError) as error:
        # A bad --backend, an unwritable --json: say so, as the other commands do.
        return report_error(args, error)


def _run(args: argparse.Namespace) -> int:
    from shardfit.design.schema import learn_design, schema_pass

    problem = out_file_problem(args.json_out, "the design spec", overwrite=args.overwrite)
    if problem is not None:  # before the pass over the data, not after it
        raise ValueError(problem)
    source = source_of(args)
    options = {
        "max_levels": args.max_levels,
        "missing": args.missing,
        "backend": args.backend,
        "workers": args.workers,
    }
    if args.formula is None:
        statistic = schema_pass(source, **options)
        render_summary(statistic, source_name=source.name, file=sys.stdout)
        return 0
    learned = learn_design(args.formula, source, **options)
    render_learned_design(learned, source_name=source.name, file=sys.stdout)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as handle:
            json.dump(learned.spec.to_dict(), handle, indent=2)
    return 0
