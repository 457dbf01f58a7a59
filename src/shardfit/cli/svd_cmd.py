"""``shardfit svd DATA FORMULA``: the SVD (``--center``: PCA) of a formula's design, out of core.

One pass over the data (:func:`shardfit.svd`); prints the singular values, explained
variance and the leading components' loadings, and optionally saves the results
(JSON) and writes the scores of every row as Parquet part files.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from shardfit.cli.args import out_file_problem, positive_int, report_error
from shardfit.cli.csv_args import add_csv_arguments, source_of
from shardfit.cli.fit_cmd import add_backend_arguments, backend_of

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "svd",
        help="SVD or PCA (--center) of a formula's design matrix, in one pass",
        description=(
            "The singular value decomposition of the design matrix FORMULA builds from "
            "DATA (a right-hand side such as '0 + a + b + C(g)'), in one pass over the "
            "data; with --center, of the column-centred design (PCA). Formula strings are "
            "evaluated as Python code: never pass an untrusted one."
        ),
    )
    parser.add_argument("data", help="a file, directory or glob (CSV, Parquet, HDF5, Zarr, .npy)")
    parser.add_argument("formula", help='a right-hand side, e.g. "0 + a + b + C(g)"')
    parser.add_argument("--center", action="store_true", help="centre the columns first (PCA)")
    parser.add_argument("--weights", default=None, metavar="COL", help="a column of row weights")
    parser.add_argument("--missing", choices=["drop", "raise"], default="drop")
    parser.add_argument(
        "--components",
        type=positive_int,
        default=5,
        metavar="N",
        help="loadings shown for the N leading components (default 5)",
    )
    parser.add_argument("--out", default=None, metavar="FILE", help="save the results (JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument(
        "--scores",
        default=None,
        metavar="DIR",
        help="write the scores of every row on the --components leading components to DIR "
        "(Parquet part files; a new or empty directory)",
    )
    add_backend_arguments(parser)
    add_csv_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit svd``; prints the summary and returns the exit status."""
    from shardfit.engine.session import session
    from shardfit.models.svd import svd

    problem = out_file_problem(args.out, overwrite=args.overwrite)
    if problem is not None:
        print(f"shardfit svd: error: {problem}", file=sys.stderr)
        return 2
    try:
        source = source_of(args, args.partition_rows)
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        # One session for the SVD and the scores: the workers start once.
        with session(backend_of(args), workers=args.workers) as sess:
            results = svd(
                args.formula,
                source,
                center=args.center,
                weights=args.weights,
                missing=args.missing,
                backend=sess,
                progress=progress,
            )
            print(results.summary())
            shown = results.components.iloc[: args.components]
            if not shown.empty:
                print()
                print("loadings (rows of Vt):")
                print(shown.T.to_string(float_format=lambda v: f"{v:.4f}"))
            if args.out:
                print(f"saved the results to {results.save(args.out)}")
            if args.scores:
                k = min(args.components, results.singular_values.size)
                written = results.transform(
                    source, n_components=k, out=args.scores, backend=sess, progress=progress
                )
                print(f"wrote the scores on {k} components to {written}")
    except (OSError, ValueError) as error:
        return report_error(args, error)
    return 0
