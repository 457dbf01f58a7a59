"""``shardfit predict RESULTS DATA --out DIR``: predictions out of core, as Parquet parts.

``--resid KIND`` writes the fit's residuals instead (``results.resid``), and
``--influence KIND`` its leverages, studentized residuals or Cook's distances
(``results.influence``); DATA then needs the columns the fit read (the response...).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Any

from shardfit.cli.args import report_error
from shardfit.cli.csv_args import add_csv_arguments, source_of
from shardfit.cli.fit_cmd import add_backend_arguments, backend_of, data_files

__all__ = ["add_parser", "run"]


def _alpha(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def add_parser(subparsers: Any) -> None:
    """Add the ``predict`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "predict",
        help="predict from saved results on data of any size, writing Parquet",
        description=(
            "Predict from RESULTS (saved by `shardfit fit --out`) on DATA, partition by "
            "partition, each worker writing its own part file into the directory OUT; a "
            "_manifest.json written last marks the output complete. The results' formula "
            "is evaluated as Python code: use results files from trusted sources only."
        ),
    )
    parser.add_argument("results", help="a results file written by `shardfit fit --out`")
    parser.add_argument("data", help="a file, directory or glob (CSV, Parquet, HDF5, Zarr, .npy)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--interval",
        choices=("confidence", "prediction"),
        default=None,
        help="add the standard error and interval bounds of the mean (or of a new observation)",
    )
    parser.add_argument(
        "--alpha",
        type=_alpha,
        default=None,
        help="with --interval: intervals at 1 - alpha (default 0.05)",
    )
    parser.add_argument(
        "--which",
        choices=("mean", "linear"),
        default=None,
        help="GLM and negative binomial results: predict the mean (default) or the linear "
        "predictor",
    )
    measures = parser.add_mutually_exclusive_group()
    measures.add_argument(
        "--resid",
        metavar="KIND",
        default=None,
        help=(
            "write residuals instead of predictions: response, weighted or pearson "
            "(linear); response, pearson, deviance, working, anscombe or "
            "anscombe_unscaled (GLM); statsmodels' names (resid_deviance...) too"
        ),
    )
    measures.add_argument(
        "--influence",
        metavar="KIND",
        default=None,
        help=(
            "write influence measures instead of predictions: hat, studentized, cooks "
            "or cooks_pvalue (statsmodels' get_influence() hat_matrix_diag, "
            "resid_studentized, cooks_distance[0] and [1]), and for OLS/WLS "
            "studentized_external, dffits or dffits_internal "
            "(resid_studentized_external, dffits[0], dffits_internal[0]); statsmodels' "
            "names too; DATA should be the rows the model was fitted on"
        ),
    )
    parser.add_argument(
        "--unseen",
        choices=("raise", "zero"),
        default="raise",
        help="a categorical level the fit never saw: fail (default) or encode as zeros",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier prediction in OUT"
    )
    add_backend_arguments(parser)
    add_csv_arguments(parser)
    parser.set_defaults(run=run)


def _refuse_data_in_out(out: str, source: Any) -> None:
    """An OUT that directly holds DATA's files is refused before anything is written: the part
    files of a Spark or Dask data set are named ``part-*`` as predict's are, and
    ``--overwrite`` would delete them before reading them."""
    root = os.path.realpath(out)
    for path in data_files(source):
        # Only OUT's own entries are replaced (or refused): data below it is safe.
        if os.path.dirname(os.path.realpath(path)) == root:
            raise ValueError(
                f"--out {out} holds the data being read ({path}); write the output to "
                "another directory"
            )


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit predict``; prints a one-line account and returns the exit status."""
    from shardfit.results.glm import GLMResults
    from shardfit.results.io import load_results
    from shardfit.results.linear import LinearResults
    from shardfit.results.negbin import NegativeBinomialResults
    from shardfit.results.predict import PredictionOutput

    started = time.perf_counter()
    if args.alpha is not None and args.interval is None:
        # Without an interval the level would be silently ignored.
        print(
            "shardfit predict: error: --alpha sets the level of an interval; add "
            "--interval confidence (or prediction)",
            file=sys.stderr,
        )
        return 2
    # "is not None", not truthiness: `--influence ""` is a kind to refuse, not an absent
    # flag (it wrote predictions, exit status 0).
    measure = (
        "resid" if args.resid is not None else "influence" if args.influence is not None else None
    )
    if measure is not None and (args.interval or args.which or args.alpha is not None):
        print(
            f"shardfit predict: error: --{measure} writes {measure} values; --interval, "
            "--alpha and --which are for predictions",
            file=sys.stderr,
        )
        return 2
    try:
        try:
            results = load_results(args.results)
        except OSError as error:
            # Not Python's "[Errno 2] No such file or directory: 'r.json'": which file,
            # and what it should be.
            raise ValueError(
                f"cannot read the results file {args.results}: "
                f"{error.strerror or error} (RESULTS is a file written by `shardfit fit --out`)"
            ) from error
        if measure is not None and not isinstance(results, LinearResults | GLMResults):
            raise ValueError(
                f"{args.results} holds {type(results).__name__}; --{measure} is for linear "
                "models and GLMs"
            )
        # Each kind predicts its own way (a GLM's mean is the inverse link of x'b).
        options: dict[str, object] = {}
        if isinstance(results, GLMResults | NegativeBinomialResults):
            # NB2 with alpha estimated predicts as a log-link GLM (alpha plays no part
            # in the mean).
            options["which"] = args.which or "mean"
        elif not isinstance(results, LinearResults):
            raise ValueError(
                f"{args.results} holds {type(results).__name__}, which predicts in Python "
                "(results.predict) but not out of core; the CLI predicts from linear "
                "models, GLMs and negative binomial models"
            )
        elif args.which is not None:
            raise ValueError(
                "--which is for GLM and negative binomial results; a linear model predicts its mean"
            )
        source = source_of(args, args.partition_rows)
        _refuse_data_in_out(args.out, source)
        with warnings.catch_warnings():
            # The account below reports dropped rows; the library's warning would repeat it.
            warnings.filterwarnings("ignore", message="predict: ", category=UserWarning)
            warnings.filterwarnings("ignore", message="resid: ", category=UserWarning)
            if measure is not None:
                method = results.resid if measure == "resid" else results.influence
                output = method(
                    source,
                    kind=args.resid if measure == "resid" else args.influence,
                    out=args.out,
                    unseen=args.unseen,
                    backend=backend_of(args),
                    workers=args.workers,
                    overwrite=args.overwrite,
                    progress=sys.stderr.isatty() if args.progress is None else args.progress,
                )
            else:
                output = results.predict(
                    source,
                    out=args.out,
                    interval=args.interval,
                    alpha=0.05 if args.alpha is None else args.alpha,
                    unseen=args.unseen,
                    backend=backend_of(args),
                    workers=args.workers,
                    overwrite=args.overwrite,
                    progress=sys.stderr.isatty() if args.progress is None else args.progress,
                    **options,
                )
    except (OSError, ValueError) as error:
        return report_error(args, error)
    assert isinstance(output, PredictionOutput)  # with out=, predict reports what it wrote
    seconds = time.perf_counter() - started
    dropped = sum(output.rows_dropped.values())
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in sorted(output.rows_dropped.items()))
    account = f"{dropped:,} dropped" + (f": {reasons}" if dropped else "")
    if output.rows_skipped:
        account += f", {output.rows_skipped:,} malformed rows skipped"
    files = len(output.files)
    what = {"resid": "residuals", "influence": "influence values"}.get(measure or "", "predictions")
    print(
        f"wrote {output.rows_written:,} {what} for {output.rows_read:,} rows ({account}) "
        f"to {output.path} ({files} part file{'s' if files != 1 else ''}; columns "
        f"{', '.join(output.columns)}) in {seconds:.1f} s"
    )
    return 0
