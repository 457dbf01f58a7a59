"""``shardfit design DATA FORMULA --out DIR``: encode a formula's design once, into a store.

The design store (:func:`shardfit.write_design`) holds the response, the design
columns, and the weights and offset when given, as Parquet part files; ``shardfit fit
DIR`` then fits the stored columns with no formula to parse and no text to encode.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shardfit.cli.args import report_error
from shardfit.cli.csv_args import add_csv_arguments, source_of
from shardfit.cli.fit_cmd import add_backend_arguments, backend_of

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Add the ``design`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "design",
        help="encode a formula's design once into a store on disk (Parquet parts)",
        description=(
            "Encode the design of FORMULA on DATA partition by partition into the folder "
            "OUT: the response, the design columns, and --weights / --offset / --exposure "
            "when given. `shardfit fit OUT` fits it without encoding again. Formula "
            "strings are evaluated as Python code: never pass an untrusted one."
        ),
    )
    parser.add_argument("data", help="a file, directory or glob (CSV, Parquet, HDF5, Zarr, .npy)")
    parser.add_argument("formula", help='e.g. "y ~ x1 + np.log(x2) + C(g)"')
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="the store (a new or empty folder)"
    )
    parser.add_argument("--weights", default=None, metavar="COL", help="a weights column")
    parser.add_argument("--offset", default=None, metavar="COL", help="a GLM offset column")
    parser.add_argument(
        "--exposure", default=None, metavar="COL", help="a GLM exposure column (log is added)"
    )
    parser.add_argument("--missing", choices=("drop", "raise"), default="drop")
    add_backend_arguments(parser)
    add_csv_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit design``; prints a one-line summary and returns the exit status."""
    from shardfit.design.store import write_design

    try:
        store = write_design(
            args.formula,
            source_of(args, args.partition_rows),
            args.out,
            weights=args.weights,
            offset=args.offset,
            exposure=args.exposure,
            missing=args.missing,
            backend=backend_of(args),
            workers=args.workers,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
        )
    except (OSError, ValueError) as error:
        return report_error(args, error)
    print(store.summary())
    return 0
