"""``shardfit demo``: the README's main job on an embedded default.

Simulates a ``linreg`` data set into a scratch folder, runs the schema pass that
learns its design on local worker processes, encodes every partition, and prints
what it saw. (Model fitting joins this job as the estimators land.)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="simulate a data set and learn its design out of core (the main job)",
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=["linreg", "logit", "poisson"], default="linreg")
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--backend", default="processes")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", default=None, help="keep the simulated data in this folder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from shardfit.cli.render import render_learned_design
    from shardfit.data.parquet import read_parquet
    from shardfit.data.simulate import default_formula, simulate
    from shardfit.design.schema import learn_design

    scratch = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="shardfit-demo-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        path = simulate(
            args.kind,
            args.rows,
            scratch / f"{args.kind}.parquet",
            seed=0,
            chunk_rows=args.partition_rows,
        )
        simulated = time.perf_counter() - started
        source = read_parquet(path, partition_rows=args.partition_rows)
        formula = default_formula(args.kind)
        started = time.perf_counter()
        learned = learn_design(formula, source, backend=args.backend, workers=args.workers)
        learned_in = time.perf_counter() - started
        render_learned_design(learned, source_name=path.name, file=sys.stdout)
        print(
            f"simulated {args.rows:,} rows in {simulated:.1f} s; schema pass on "
            f"{args.backend} in {learned_in:.1f} s ({source.npartitions} partitions)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0
