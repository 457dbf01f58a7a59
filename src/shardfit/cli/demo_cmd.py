"""``shardfit demo``: the README's main job on an embedded default.

Simulates a ``linreg`` data set (20 numeric columns, a 10-level and a 200-level
categorical, weights) into a scratch folder as Parquet, fits the weighted regression
of its 229-column design out of core on local worker processes, prints the summary,
and deletes the data.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from shardfit.cli.args import positive_int, report_error

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="simulate a regression data set and fit it out of core (the main job)",
        description="Simulate linreg data, fit WLS out of core, print the summary.",
    )
    parser.add_argument("--rows", type=positive_int, default=2_000_000)
    parser.add_argument("--partition-rows", type=positive_int, default=250_000)
    parser.add_argument("--backend", default=None, help="default: processes")
    parser.add_argument("--workers", type=positive_int, default=None)
    parser.add_argument("--keep", default=None, help="keep the simulated data in this folder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit demo``; a user's mistake is a one-line error and status 2."""
    try:
        return _run(args)
    except (OSError, ValueError) as error:
        return report_error(args, error)


def _run(args: argparse.Namespace) -> int:
    from shardfit.data.parquet import read_parquet
    from shardfit.data.simulate import default_formula, simulate, true_params
    from shardfit.models.linear import wls

    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="shardfit-demo-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        path = simulate(
            "linreg", args.rows, scratch / "linreg.parquet", seed=0, chunk_rows=args.partition_rows
        )
        simulated = time.perf_counter() - started
        source = read_parquet(path, partition_rows=args.partition_rows)
        started = time.perf_counter()
        results = wls(default_formula("linreg"), source, weights="w").fit(
            backend=args.backend, workers=args.workers, progress=sys.stderr.isatty()
        )
        fitted = time.perf_counter() - started
        print(results.summary())
        truth = true_params("linreg")
        worst = max(
            abs(results.params[name] - value) / results.bse[name] for name, value in truth.items()
        )
        print(
            f"\nsimulated {args.rows:,} rows in {simulated:.1f} s; fitted "
            f"{len(results.params)} coefficients out of core in {fitted:.1f} s "
            f"({source.npartitions} partitions, method {results.method_used}); "
            f"largest |estimate - truth| / std err = {worst:.2f}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0
