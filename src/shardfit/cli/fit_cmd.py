"""``shardfit fit DATA FORMULA``: fit a model out of core and print its summary.

The estimator is picked by :data:`FITTERS`, keyed by model family: ``None`` (no
``--family``) is exact least squares, OLS or, with ``--weights``, WLS. A family
(the GLM issue's ``--family``) adds its argument in :func:`add_parser` and its entry
in :data:`FITTERS`; reading the data, the backend, printing and saving are shared.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shardfit.cli.args import out_file_problem, positive_int, report_error
from shardfit.cli.csv_args import add_csv_arguments, source_of

__all__ = ["FITTERS", "FitContext", "add_parser", "parse_cov", "run"]

_HC = ("HC0", "HC1", "HC2", "HC3")


@dataclass(frozen=True)
class FitContext:
    """What every fitter gets besides the parsed arguments."""

    source: Any
    backend: Any
    workers: int | None
    progress: bool


def parse_cov(text: str) -> tuple[str, dict[str, Any] | None]:
    """``"HC1"`` -> ``("HC1", None)``; ``"cluster:firm"`` -> ``("cluster", {"groups":
    "firm"})``; ``"cluster:firm,year"`` -> two-way (``{"groups": ["firm", "year"]}``);
    ``"HAC:4"`` -> ``("HAC", {"maxlags": 4})`` (Newey-West, Bartlett kernel, rows in
    time order as read), ``"HAC:auto"`` -> ``{"maxlags": None}`` (statsmodels'
    automatic lag); ``"hac-panel:firm:2"`` -> ``("hac-panel", {"groups": "firm",
    "maxlags": 2})`` (HAC within runs of one firm); ``"hac-groupsum:year:2"`` (or
    ``:auto``) -> ``("hac-groupsum", {"time": "year", "maxlags": 2})`` (Driscoll and
    Kraay)."""
    kind, sep, value = text.partition(":")
    if kind.lower() == "cluster":
        if not sep or not value:
            raise argparse.ArgumentTypeError(
                "cluster covariance needs a column: cluster:COLUMN (or cluster:COL1,COL2)"
            )
        columns = value.split(",")
        return "cluster", {"groups": columns[0] if len(columns) == 1 else columns}
    if kind.lower() == "hac":
        if not (_digits(value) or value.lower() == "auto"):
            raise argparse.ArgumentTypeError(
                "HAC covariance needs its highest lag: HAC:MAXLAGS (e.g. HAC:4), or "
                f"HAC:auto for statsmodels' automatic lag; got {text!r}"
            )
        return "HAC", {"maxlags": _lag(value)}
    if kind.lower() in ("hac-panel", "hac-groupsum"):
        # The lag after the last colon: a column name may hold colons.
        column, colon, lag = value.rpartition(":")
        auto = kind.lower() == "hac-groupsum"
        role = "GROUPCOL" if kind.lower() == "hac-panel" else "TIMECOL"
        if not (colon and column and (_digits(lag) or (auto and lag.lower() == "auto"))):
            raise argparse.ArgumentTypeError(
                f"{kind.lower()} covariance needs a column and its highest lag: "
                f"{kind.lower()}:{role}:MAXLAGS (e.g. {kind.lower()}:{role.lower()}:2"
                f"{', or MAXLAGS auto' if auto else ''}); got {text!r}"
            )
        key = "groups" if kind.lower() == "hac-panel" else "time"
        return kind.lower(), {key: column, "maxlags": _lag(lag)}
    if sep:
        raise argparse.ArgumentTypeError(
            "only cluster:COLUMN, HAC:MAXLAGS, hac-panel:GROUPCOL:MAXLAGS and "
            f"hac-groupsum:TIMECOL:MAXLAGS take a value; got {text!r}"
        )
    for name in ("nonrobust", *_HC):
        if kind.lower() == name.lower():
            return name, None
    raise argparse.ArgumentTypeError(
        "expected nonrobust, HC0, HC1, HC2, HC3 or one of cluster:COLUMN[,COLUMN], "
        "HAC:MAXLAGS|auto, hac-panel:GROUPCOL:MAXLAGS, hac-groupsum:TIMECOL:MAXLAGS|auto; "
        f"got {text!r}"
    )


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts superscripts (``"²"``), which
    ``int`` refuses, and argparse would then say only "invalid parse_cov value"."""
    return text.isascii() and text.isdigit()


def _lag(text: str) -> int | None:
    """A ``--cov`` lag: digits, or ``auto`` (None: statsmodels' automatic lag)."""
    return None if text.lower() == "auto" else int(text)


#: ``--nb-alpha estimate``: alpha estimated with the coefficients, not fixed.
ESTIMATE = "estimate"


def _nb_alpha(text: str) -> float | str:
    """``--nb-alpha``: a number (the GLM family's fixed alpha) or ``estimate``."""
    if text.strip().lower() == ESTIMATE:
        return ESTIMATE
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number or '{ESTIMATE}', got {text!r}"
        ) from None


def _family_key(name: str | None) -> str | None:
    """``--family`` as :data:`FITTERS` keys it, spelt as the library accepts it:
    any case, ``-`` for ``_``, statsmodels' one-word class names
    (``NegativeBinomial``)."""
    if name is None:
        return None
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    return {family.replace("_", ""): family for family in _GLM_FAMILIES}.get(key, key)


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by commands that run passes: backend, workers, scheduler, partitions."""
    parser.add_argument(
        "--backend",
        default=None,
        help="serial, threads, processes (default), dask, mpi, or a Dask scheduler address",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=None, metavar="N", help="workers to start"
    )
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDR", help="run on this Dask scheduler"
    )
    parser.add_argument(
        "--partition-rows",
        type=positive_int,
        default=None,
        metavar="N",
        help="rows per partition (default: the reader's)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when standard error is a terminal)",
    )


def backend_of(args: argparse.Namespace) -> Any:
    """The backend the arguments ask for: ``--scheduler ADDR`` is that Dask scheduler."""
    if args.scheduler is None:
        return args.backend
    if args.backend not in (None, "dask"):
        raise ValueError(f"--scheduler runs on Dask; it cannot go with --backend {args.backend}")
    return args.scheduler


def add_parser(subparsers: Any) -> None:
    """Add the ``fit`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "fit",
        help="fit a model out of core and print its summary",
        description=(
            "Fit FORMULA to DATA partition by partition, with the numbers of an in-memory "
            "fit, and print the summary. Formula strings are evaluated as Python code: "
            "never pass an untrusted one."
        ),
    )
    parser.add_argument(
        "data",
        help="a file, directory or glob (CSV, Parquet, HDF5, Zarr, .npy), or a design store "
        "written by `shardfit design` (then no FORMULA)",
    )
    parser.add_argument(
        "formula", nargs="?", default=None, help='e.g. "y ~ x1 + np.log(x2) + C(g)"'
    )
    parser.add_argument(
        "--weights",
        default=None,
        metavar="COL",
        help="weights column: WLS, or with --family the GLM's variance weights "
        "(statsmodels' var_weights)",
    )
    parser.add_argument(
        "--cov",
        type=parse_cov,
        default=("nonrobust", None),
        metavar="TYPE",
        help="nonrobust (default), HC0, HC1, HC2, HC3, cluster:COLUMN, two-way "
        "cluster:COL1,COL2, HAC:MAXLAGS or HAC:auto (Newey-West; rows in time order as "
        "read), hac-panel:GROUPCOL:MAXLAGS (HAC within each run of one group), or "
        "hac-groupsum:TIMECOL:MAXLAGS|auto (Driscoll-Kraay: HAC of the scores summed "
        "by time)",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "gram", "qr"),
        default="auto",
        help="auto (default): the Gram, then TSQR if ill-conditioned; qr: always TSQR; "
        "gram: the Gram only (fastest, least accurate)",
    )
    parser.add_argument(
        "--rank-deficient",
        choices=("raise", "drop"),
        default="raise",
        help="collinear columns: fail naming them (default), or drop them (reported as NA)",
    )
    parser.add_argument(
        "--rank-tol",
        type=float,
        default=None,
        metavar="TOL",
        help="a column whose part not explained by the columns before it is below TOL "
        "times its norm is collinear (default 1e-10; R's lm uses 1e-7)",
    )
    parser.add_argument(
        "--missing",
        choices=("drop", "raise"),
        default="drop",
        help="rows missing a value: drop and count them (default), or fail",
    )
    parser.add_argument(
        "--family",
        default=None,
        metavar="NAME",
        help="fit a GLM by IRLS: gaussian, binomial, poisson, gamma, inverse_gaussian, "
        "negative_binomial or tweedie (default: least squares)",
    )
    parser.add_argument(
        "--link",
        default=None,
        metavar="NAME",
        help="GLM link: logit, probit, cloglog, cauchy, loglog, logc, log, identity, inverse, "
        "inverse_squared, sqrt, power(P), nbinom(ALPHA) (default: the family's canonical link)",
    )
    parser.add_argument(
        "--freq-weights",
        default=None,
        metavar="COL",
        help="GLM frequency weights column (statsmodels' freq_weights: each row counts "
        "that many times)",
    )
    parser.add_argument("--offset", default=None, metavar="COL", help="GLM offset column")
    parser.add_argument(
        "--exposure", default=None, metavar="COL", help="GLM exposure column (log is added)"
    )
    parser.add_argument(
        "--nb-alpha",
        type=_nb_alpha,
        default=None,
        metavar="A",
        help="the negative binomial family's fixed alpha (default 1), or 'estimate': fit "
        "NB2 with alpha estimated by maximum likelihood (statsmodels' NegativeBinomial, "
        "R's glm.nb), the coefficients' and alpha's standard errors from the Hessian",
    )
    parser.add_argument(
        "--var-power",
        type=float,
        default=None,
        metavar="P",
        help="the Tweedie family's variance power (default 1)",
    )
    parser.add_argument("--out", default=None, metavar="FILE", help="save the results (JSON)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the summary, print where time and memory went, pass by pass",
    )
    add_backend_arguments(parser)
    add_csv_arguments(parser)
    parser.set_defaults(run=run)


def _fit_least_squares(args: argparse.Namespace, context: FitContext) -> Any:
    from shardfit.models.linear import ols, wls

    if args.weights is None:
        model = ols(args.formula, context.source, missing=args.missing)
    else:
        model = wls(args.formula, context.source, weights=args.weights, missing=args.missing)
    return _fit(model, args, context)


def _fit(model: Any, args: argparse.Namespace, context: FitContext) -> Any:
    """``model.fit`` with the options every fitter shares (covariance, method, rank)."""
    cov_type, cov_kwds = args.cov
    rank_tol = {} if args.rank_tol is None else {"rank_tol": args.rank_tol}
    return model.fit(
        backend=context.backend,
        workers=context.workers,
        cov_type=cov_type,
        cov_kwds=cov_kwds,
        method=args.method,
        rank_deficient=args.rank_deficient,
        **rank_tol,
        progress=context.progress,
    )


def _fit_glm(args: argparse.Namespace, context: FitContext) -> Any:
    from shardfit.models.glm import glm

    model = glm(
        args.formula,
        context.source,
        family=args.family,
        link=args.link,
        weights=args.weights,
        freq_weights=args.freq_weights,
        offset=args.offset,
        exposure=args.exposure,
        missing=args.missing,
        alpha=args.nb_alpha,
        var_power=args.var_power,
    )
    return _fit(model, args, context)


def _fit_negbin(args: argparse.Namespace, context: FitContext) -> Any:
    """NB2 with alpha estimated (``--family negative_binomial --nb-alpha estimate``)."""
    from shardfit.models.negbin import NegativeBinomial, negativebinomial

    if args.formula is None:  # a design store (its weights were refused)
        store = context.source
        model: Any = NegativeBinomial(
            store.y,
            store.X,
            offset=store.offset if store.has_offset else None,
            missing=args.missing,
        )
    else:
        model = negativebinomial(
            args.formula,
            context.source,
            offset=args.offset,
            exposure=args.exposure,
            missing=args.missing,
        )
    cov_type, cov_kwds = args.cov
    return model.fit(
        backend=context.backend,
        workers=context.workers,
        progress=context.progress,
        cov_type=cov_type,
        cov_kwds=cov_kwds,
    )


def _negbin_problem(args: argparse.Namespace, store: Any) -> str | None:
    """Why ``--nb-alpha estimate`` cannot run with the other arguments (options of the
    GLM or least squares the NB2 fit has no use for: refused, not ignored), or ``None``.
    ``args.family`` is ``negative_binomial`` (checked first)."""
    if store is not None and store.has_weights:
        return (
            f"{args.data} is a design store with weights; the negative binomial model "
            f"with alpha estimated (--nb-alpha {ESTIMATE}) takes no weights: write the "
            "store without them, or give a fixed --nb-alpha for the GLM"
        )
    from shardfit.models.negbin import NB_COV_TYPES

    cov_type, cov_kwds = args.cov
    groups = (cov_kwds or {}).get("groups")
    two_way = isinstance(groups, tuple | list) and len(groups) > 1
    unused = [
        flag
        for flag, given in (
            ("--weights", args.weights is not None),
            ("--freq-weights", args.freq_weights is not None),
            (f"--cov {cov_type}", cov_type not in NB_COV_TYPES or two_way),
            ("--var-power", args.var_power is not None),
            (f"--link {args.link}", args.link is not None and args.link.lower() != "log"),
            (f"--method {args.method}", args.method != "auto"),
            ("--rank-deficient drop", args.rank_deficient != "raise"),
            ("--rank-tol", args.rank_tol is not None),
        )
        if given
    ]
    if not unused:
        return None
    return (
        f"{', '.join(unused)}: not used by the negative binomial model with alpha "
        f"estimated (--nb-alpha {ESTIMATE}: log link, no weights, covariance "
        "nonrobust, HC0-HC3 or one-way cluster:COL); leave "
        + ("them" if len(unused) > 1 else "it")
        + " out, or give a fixed --nb-alpha for the GLM"
    )


_GLM_FAMILIES = (
    "gaussian",
    "binomial",
    "poisson",
    "gamma",
    "inverse_gaussian",
    "negative_binomial",
    "tweedie",
)

#: Fitters by model family (``args.family``; ``None``: least squares).
FITTERS: dict[str | None, Callable[[argparse.Namespace, FitContext], Any]] = {
    None: _fit_least_squares,
    **dict.fromkeys(_GLM_FAMILIES, _fit_glm),
}


def _fit_stored(args: argparse.Namespace, context: FitContext) -> Any:
    """Least squares or a GLM on a design store's columns, with its weights and offset."""
    from shardfit.models.glm import GLM
    from shardfit.models.linear import OLS

    store = context.source
    weights = store.weights if store.has_weights else None
    if args.family is None:
        model: Any = OLS(store.y, store.X, weights=weights)
    else:
        model = GLM(
            store.y,
            store.X,
            args.family,
            link=args.link,
            weights=weights,
            offset=store.offset if store.has_offset else None,
            alpha=args.nb_alpha,
            var_power=args.var_power,
        )
    return _fit(model, args, context)


def _stored_design(args: argparse.Namespace) -> Any:
    """The design store DATA names when no FORMULA is given (else ``None``)."""
    from shardfit.design.store import MANIFEST, open_design

    is_store = os.path.isfile(os.path.join(args.data, MANIFEST))
    if args.formula is not None:
        if is_store:
            # Its part files hold encoded columns, not the raw data a formula reads:
            # fitting them as data ignores the store's weights and offset.
            raise ValueError(
                f"{args.data} is a design store: it holds its design (the columns its "
                "formula gave), its weights and offset; leave FORMULA out to fit it, or "
                "give the raw data to fit a formula"
            )
        return None
    if not is_store:
        raise ValueError(
            f"FORMULA is missing; without one DATA must be a design store written by "
            f"`shardfit design` ({args.data} has no {MANIFEST})"
        )
    given = [
        f"--{name.replace('_', '-')}"
        for name in (
            "weights",
            "freq_weights",
            "offset",
            "exposure",
            "key",
            "delimiter",
            "null_values",
        )
        if getattr(args, name, None) is not None
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)}: a design store holds its own columns (its weights and "
            "offset are used when it has them); leave them out"
        )
    # Options a store does not use: refused rather than silently ignored.
    unused = [
        flag
        for name, flag in (
            ("column_type", "--column-type"),
            ("newlines_in_values", "--newlines-in-values"),
            ("skip_bad_lines", "--skip-bad-lines"),
            ("partition_rows", "--partition-rows"),
        )
        if getattr(args, name, None) not in (None, False, [])
    ]
    if unused:
        pronoun = "them" if len(unused) > 1 else "it"
        raise ValueError(
            f"{', '.join(unused)}: a design store is read as written (Parquet parts, one "
            f"row group per task, no text to parse); leave {pronoun} out"
        )
    return open_design(args.data)


def data_files(source: Any) -> list[str]:
    """The files ``source`` reads (a design store's part files, or its partitions')."""
    files = getattr(source, "files", None)
    if files is not None:  # a design store
        root = os.fspath(getattr(source, "path", ""))
        return [os.path.join(root, os.fspath(name)) for name in files]
    paths = (getattr(part, "path", None) for part in getattr(source, "partitions", ()))
    return sorted({os.fspath(path) for path in paths if path is not None})


def _refuse_data_as_out(out: str, source: Any) -> None:
    """``--out`` naming one of DATA's files would replace the data with the results."""
    for path in data_files(source):
        if os.path.exists(out) and os.path.samefile(out, path):
            raise ValueError(
                f"--out {out} is the data file {path}; saving the results there would "
                "replace the data: choose another file name"
            )


def _profiler(on: bool) -> Any:
    """A :func:`shardfit.profile` block when ``on``, else a block that does nothing."""
    if not on:
        return contextlib.nullcontext()
    from shardfit.engine.profile import profile

    return profile()


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit fit``; prints the summary and returns the exit status."""
    family = _family_key(getattr(args, "family", None))
    fitter = FITTERS.get(family)
    if fitter is None:
        known = sorted(str(name) for name in FITTERS if name is not None)
        print(
            f"shardfit fit: error: unknown family {args.family!r}; known: {known}",
            file=sys.stderr,
        )
        return 2
    args.family = family
    if getattr(args, "nb_alpha", None) == ESTIMATE and family != "negative_binomial":
        # Before the "GLM option" check: its hint (add --family gaussian) is not this one.
        print(
            f"shardfit fit: error: --nb-alpha {ESTIMATE} fits the negative binomial model "
            "with alpha estimated; add --family negative_binomial"
            + (f" (not --family {args.family})" if family else ""),
            file=sys.stderr,
        )
        return 2
    glm_only = ("link", "freq_weights", "offset", "exposure", "nb_alpha", "var_power")
    # "is not None", not truthiness: --var-power 0 or --nb-alpha 0 is a value given.
    given = [
        f"--{name.replace('_', '-')}" for name in glm_only if getattr(args, name, None) is not None
    ]
    if family is None and given:
        # Least squares would ignore them: an offset silently left out is a wrong fit.
        verb = "is a GLM option" if len(given) == 1 else "are GLM options"
        print(
            f"shardfit fit: error: {', '.join(given)} {verb}; add --family (e.g. gaussian)",
            file=sys.stderr,
        )
        return 2
    try:
        store = _stored_design(args)
        if store is not None:
            fitter = _fit_stored
        if args.nb_alpha == ESTIMATE:
            problem = _negbin_problem(args, store)
            if problem is not None:
                return report_error(args, problem)
            fitter = _fit_negbin
        context = FitContext(
            source=store if store is not None else source_of(args, args.partition_rows),
            backend=backend_of(args),
            workers=args.workers,
            progress=sys.stderr.isatty() if args.progress is None else args.progress,
        )
        if args.out:
            # Before the fit, not after it. The data first: --out naming DATA's file is
            # refused even with --overwrite, and says so rather than "it exists".
            _refuse_data_as_out(args.out, context.source)
            problem = out_file_problem(args.out, overwrite=args.overwrite)
            if problem is not None:
                raise ValueError(problem)
        profiling = getattr(args, "profile", False)
        prof = None
        try:
            with _profiler(profiling) as prof:
                results = fitter(args, context)
        except BaseException:
            if prof is not None:  # the passes before the failure are what was asked for
                print(prof.summary(), file=sys.stderr)
            raise
        print(results.summary())
        if profiling:
            print()
            print(prof.summary())
        if args.out:
            path = results.save(args.out)
            print(f"saved the results to {path}")
    except (OSError, ValueError) as error:
        return report_error(args, error)
    return 0
