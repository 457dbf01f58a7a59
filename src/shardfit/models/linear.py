"""Exact OLS and WLS out of core: ``ols``, ``wls`` and ``OLS``.

A fit is a short sequence of passes over the data, all on one backend session:

1. the schema pass learns the design; a formula without stateful transforms needs
   only its categorical columns' levels, so only those are read;
2. the main pass reads every needed column once and accumulates the Gram of
   ``[X | y]`` about each partition's own weighted means, merged exactly to the
   global means (``method="gram"``/``"auto"``; see
   :class:`~shardfit.stats.centered_gram.CenteredGram`), then centred (with an
   intercept) and scaled to unit spread for the solve; ``method="qr"`` takes the
   shifts and scales from one partition and accumulates the TSQR factor of the
   columns so centred instead (the intercept absorbs the shifts; aliasing is still
   decided on the uncentred columns, as R's ``lm`` does);
3. ``auto`` estimates the condition number of the transformed design and, above
   ``cond_threshold`` (or when the residuals are under
   :data:`AUTO_MIN_RESIDUAL_FRACTION` of the response's sum of squares), runs one
   TSQR pass and solves from it (``method_used``);
4. robust covariances run one more pass for the sandwich's meat (HAC's lag window
   pairs each row with the ``maxlags`` rows before it in the order read, across
   partitions; hac-panel's only within a run of one group; hac-groupsum sums the
   scores by time value: see :mod:`shardfit.models.hac`).

Each partition is encoded and accumulated in blocks of rows, so a worker's memory is
bounded by the block, not by the partition or the data. The Gram solve loses about
``cond**2 * eps`` relative accuracy, TSQR about ``cond * eps`` (``cond`` of the
centred, equilibrated design). The default threshold, 1e3, keeps the Gram path within
about 1e-10.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.linalg

from shardfit.data.partition import Source
from shardfit.data.resolve import as_source
from shardfit.design.schema import LearnedDesign, learn_design
from shardfit.design.store import STORE_META, check_groups, source_counts
from shardfit.engine import run_pass, session
from shardfit.engine.blas import single_threaded_blas
from shardfit.errors import DesignError
from shardfit.models import hac as _hac
from shardfit.models.hac import (
    HAC_COV_TYPES,
    HacOptions,
    LagWindow,
    PanelLagWindow,
    TimeScoreSums,
    hac_middle,
)
from shardfit.models.least_squares import (
    QR_ALIAS_TOL,
    LeastSquaresSolution,
    check_rank_tol,
    cholesky_with_aliasing,
    psd_factor,
    robust_basis,
    solve_from_r,
)
from shardfit.models.linear_tasks import (
    CenteredGramTask,
    ClusterScores,
    LeastSquaresPass,
    LeastSquaresTask,
    MeatStatistic,
    MomentsTask,
    RobustTask,
    TwoWayClusterScores,
)
from shardfit.results.linear import LinearResults
from shardfit.stats.centered_gram import CenteredGram
from shardfit.stats.gram import GramStatistic
from shardfit.stats.transform import ColumnTransform

__all__ = ["OLS", "LinearModel", "ols", "wls"]

CovType = Literal[
    "nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC", "cluster", "hac-panel", "hac-groupsum"
]
Method = Literal["auto", "gram", "qr"]
_COV_TYPES = (
    "nonrobust",
    "HC0",
    "HC1",
    "HC2",
    "HC3",
    "HAC",
    "cluster",
    "hac-panel",
    "hac-groupsum",
)
DEFAULT_COND_THRESHOLD = 1e3
# The Gram gives the residual sum of squares as a difference, so it loses about
# log10(1 / fraction) digits where the residuals are that small a fraction of the
# response's (centred) sum of squares: an almost exact fit (NIST's Pontius, 1 - R2 =
# 1e-7, lost 9 of its 15 digits in the standard errors). "auto" then takes TSQR,
# which computes it directly.
AUTO_MIN_RESIDUAL_FRACTION = 1e-5


@dataclass(frozen=True)
class LinearModel:
    """A linear model on a source, fitted with :meth:`fit`.

    Use :func:`ols`, :func:`wls` or :class:`OLS` to build one.
    """

    formula: str | None
    data: Any
    weights: str | None = None
    missing: Literal["drop", "raise"] = "drop"
    x_columns: tuple[str, ...] | None = None
    response: str | None = None
    max_levels: int = 10_000
    sparse_x: tuple[str, ...] = ()  # mostly-zero x_columns (a design store's dummies)
    x_constant: str | None = None  # a known constant column (a design store's Intercept)
    find_constant: bool = True  # look for a constant column (False: the columns are known)

    def fit(
        self,
        *,
        backend: Any = None,
        workers: int | None = None,
        cov_type: CovType = "nonrobust",
        cov_kwds: dict[str, Any] | None = None,
        method: Method = "auto",
        rank_deficient: Literal["raise", "drop"] = "raise",
        cond_threshold: float = DEFAULT_COND_THRESHOLD,
        rank_tol: float = QR_ALIAS_TOL,
        checkpoint: str | None = None,
        progress: bool = False,
        use_t: bool | None = None,
    ) -> LinearResults:
        """Fit by exact least squares, out of core.

        Parameters
        ----------
        backend, workers
            Where the passes run: ``"serial"``, ``"threads"``, ``"processes"`` (default),
            ``"dask"``, ``"mpi"``, a Dask client or scheduler address, an MPI
            communicator (see :func:`shardfit.engine.run_pass`).
        cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC", "cluster", \
"hac-panel", "hac-groupsum"}
            Covariance of the estimates; robust ones cost one more pass.
        cov_kwds : dict, optional
            ``{"groups": column}`` for ``"cluster"`` (clusters may span partitions), or
            ``{"groups": [column1, column2]}`` for two-way clustering (statsmodels'
            ``cov_cluster_2groups``: ``V_1 + V_2 - V_12``, each with its small-sample
            correction, inference with ``min(n_groups) - 1`` degrees of freedom).
            ``"HAC"`` (Newey-West) takes ``{"maxlags": L, "kernel": "bartlett" |
            "uniform", "use_correction": False}`` as statsmodels: HAC assumes the rows
            are consecutive, equally spaced time periods **in the order read**
            (partition order, then row order; rows dropped for missing values are
            skipped, as statsmodels' ``missing="drop"``), and pairs rows across
            partition boundaries. ``use_correction=True`` multiplies by ``n / (n -
            p)``. ``maxlags`` is required, as in statsmodels; ``maxlags=None`` takes
            statsmodels' automatic lag ``floor(4 (n / 100)^(2/9))`` of the rows used
            (recorded as ``nlags`` in ``results.extra["cov_kwds"]``).
            ``"hac-panel"`` (statsmodels' ``cov_nw_panel``) takes ``{"groups":
            column}`` or ``{"time": column}``, ``"maxlags": L`` (required, an
            integer), ``"kernel"`` (or ``"weights_func"``, by name) and
            ``"use_correction": "hac" (default) | "cluster" | False``: HAC within
            each run of consecutive rows of one group value (a new run where the
            group changes, or, with ``time``, where the time decreases), in the order
            read and across partition boundaries, summed over the runs; ``"hac"``
            multiplies by ``n / (n - p)``, ``"cluster"`` by ``G / (G - 1) (n - 1) /
            (n - p)`` with ``G`` the runs; inference with ``G - 1`` degrees of
            freedom. ``"hac-groupsum"`` (Driscoll and Kraay, ``cov_nw_groupsum``)
            takes ``{"time": column, "maxlags": L or None, "kernel": ...,
            "use_correction": "cluster" (default) | "hac" | False}``: the scores are
            summed within each time value, then HAC over the time values in sorted
            order (the distinct values as consecutive periods; statsmodels expects
            them coded 0..T-1, every period present); ``"cluster"`` with ``G`` the
            distinct times, inference with the runs of non-decreasing time minus one
            degrees of freedom (statsmodels' ``n_groups``). At most
            :data:`shardfit.models.hac.MAX_TIME_VALUES` (100,000) distinct times.
            Rows missing the group or time value are dropped (or raise) as for
            ``"cluster"``'s groups.
        method : {"auto", "gram", "qr"}
            ``"auto"``: Gram of centred, scaled columns, then TSQR if the condition
            number exceeds ``cond_threshold`` or the fit is nearly exact (residuals
            under 1e-5 of the response's sum of squares, whose difference the Gram
            would take); ``"qr"``: always TSQR; ``"gram"``: the Gram only (fastest,
            least accurate).
        rank_deficient : {"raise", "drop"}
            Aliased (collinear) columns raise naming them, or are dropped with a
            warning and reported as NaN, as R's ``lm`` does.
        cond_threshold : float
            See ``method``.
        rank_tol : float
            A column whose component orthogonal to the columns before it (columns
            scaled to unit spread) is below ``rank_tol`` times its norm is aliased
            (decided on the TSQR factor; ``"auto"`` takes TSQR when the Gram shows
            collinearity). The default,
            1e-10, is a numerical rank (rounding leaves exact collinearity near
            1e-16); R's ``lm`` uses 1e-7, which ``rank_tol=1e-7`` reproduces.
        checkpoint : str, optional
            A directory where each partition's statistic is kept as it completes;
            a rerun after an interruption computes only what is missing.
        progress : bool
            Show a progress bar.
        use_t : bool, optional
            Student's t (and F) distributions for inference, or the normal (and chi2);
            by default t for ``"nonrobust"`` and normal for robust covariances, as
            statsmodels (t with ``n_groups - 1`` degrees of freedom for ``"cluster"``,
            the fewer clusters' for two-way).
            Prediction intervals use the t with ``df_resid`` degrees of freedom, as
            statsmodels' ``get_prediction``, also under cluster and panel covariances.

        Returns
        -------
        LinearResults
        """
        _check_options(cov_type, cov_kwds, method, rank_deficient, cond_threshold)
        _check_use_t(use_t)
        check_rank_tol(rank_tol)
        source = as_source(self.data)
        groups, hac, extra_columns = _covariance_columns(source, cov_type, cov_kwds)
        # One BLAS thread for every product and solve: bitwise the same on every backend.
        with (
            session(backend, workers=workers, partitions=source.npartitions) as sess,
            single_threaded_blas(),
        ):
            learned = learn_design(
                self.formula,
                source,
                x_columns=self.x_columns,
                sparse_x=self.sparse_x,
                x_constant=self.x_constant,
                find_constant=self.find_constant,
                response=self.response,
                weights=self.weights,
                extra_columns=extra_columns,
                missing=self.missing,
                max_levels=self.max_levels,
                needs_response=True,
                summaries="levels",
                backend=sess,
                progress=progress,
            )
            spec = learned.spec
            intercept = _intercept(learned)
            # Every rank (under MPI) needs each merged statistic to take the next step.
            options = {
                "backend": sess,
                "progress": progress,
                "checkpoint": checkpoint,
                "allreduce": True,
            }
            if method == "qr":
                kind = "qr"
                transform = _column_transform(learned, source, intercept, sess, self.missing)
                main: LeastSquaresPass = run_pass(
                    LeastSquaresTask(spec, transform, kind, self.missing),
                    source,
                    pass_name="ls-qr",
                    **options,
                )
            else:
                kind = "gram"
                dense = spec.dense_columns()
                centred: LeastSquaresPass = run_pass(
                    CenteredGramTask(spec, dense, intercept, self.missing),
                    source,
                    pass_name="ls-gram",
                    **options,
                )
                _check_rows_used(centred, source)
                assert isinstance(centred.core, CenteredGram)
                gram, transform = centred.core.equilibrated(dense, intercept)
                main = LeastSquaresPass(gram, centred.counts)
            solution = _solve(main, transform, intercept, rank_tol)
            if method == "auto" and (
                solution.condition > cond_threshold
                or not solution.kept.all()
                or _residual_fraction(main, solution, transform) < AUTO_MIN_RESIDUAL_FRACTION
            ):
                kind = "qr"
                main = run_pass(
                    LeastSquaresTask(spec, transform, "qr", self.missing),
                    source,
                    pass_name="ls-qr",
                    **options,
                )
                solution = _solve(main, transform, intercept, rank_tol)
            totals = main.core.totals
            nobs = totals.nobs
            _report_aliased(solution, spec.column_names, main, rank_deficient)
            rank = solution.rank
            if nobs - rank <= 0:
                raise DesignError(
                    f"{nobs} rows for {rank} coefficients: no residual degrees of freedom"
                )
            k_constant, const_idx = _constant(solution, totals, intercept, transform)
            ssr = solution.ssr
            centered, uncentered = _total_sums(main, transform, intercept)
            cov, default_use_t, df_inference, n_groups, cov_factor, nlags = _covariance(
                cov_type,
                solution,
                spec,
                transform,
                source,
                sess,
                self.missing,
                groups,
                ssr,
                nobs,
                rank,
                options,
                hac,
            )
        singular = _singular_values(solution)
        return LinearResults(
            names=spec.column_names,
            params_array=solution.params,
            normalized_cov=solution.normalized_cov,
            cov_array=cov,
            cov_factor=cov_factor,
            nobs=nobs,
            rank=rank,
            k_constant=k_constant,
            ssr=ssr,
            centered_tss=centered,
            uncentered_tss=uncentered,
            sum_log_weights=_sum_log_weights(totals),
            cov_type=cov_type,
            use_t=default_use_t if use_t is None else use_t,
            df_resid_inference=df_inference,
            condition_number=_condition_number(singular),
            eigenvals_array=singular**2,
            method_used=kind,
            const_idx=const_idx,
            weighted=self.weights is not None,
            data_name=source.name,
            formula=self.formula,
            **_row_counts(source, main.counts),
            n_groups=n_groups,
            extra=_cov_note_options(cov_type, groups, hac, nlags),
            spec=spec,
        )


def _sum_log_weights(totals: Any) -> float:
    """``sum(log w)`` for the WLS log-likelihood: ``-inf`` when a weight is zero.

    Zero-weight rows count in ``nobs`` and ``df_resid`` as in statsmodels, whose
    log-likelihood is then ``-inf`` (a zero weight is an infinite variance). R's ``lm``
    and Stata drop such rows instead; the warning says how to get their answer.
    """
    zero = int(getattr(totals, "zero_weights", 0))
    if not zero:
        return float(totals.sum_log_weights)
    warnings.warn(
        f"{zero:,} of {totals.nobs:,} rows have zero weight: they count in nobs and "
        "df_resid (so in scale and the standard errors) as in statsmodels, and the "
        "log-likelihood, AIC and BIC are infinite. R's lm and Stata drop such rows: "
        "filter them out of the data for their answer.",
        UserWarning,
        stacklevel=3,
    )
    return -math.inf


def _check_options(
    cov_type: str,
    cov_kwds: dict[str, Any] | None,
    method: str,
    rank_deficient: str,
    cond_threshold: float,
) -> None:
    if cov_type not in _COV_TYPES:
        raise ValueError(f"The 'cov_type' parameter must be one of {_COV_TYPES}. Got {cov_type!r}.")
    if method not in ("auto", "gram", "qr"):
        raise ValueError(f"The 'method' parameter must be 'auto', 'gram' or 'qr'. Got {method!r}.")
    if rank_deficient not in ("raise", "drop"):
        raise ValueError(
            f"The 'rank_deficient' parameter must be 'raise' or 'drop'. Got {rank_deficient!r}."
        )
    if not cond_threshold > 1:
        raise ValueError(f"The 'cond_threshold' parameter must be > 1. Got {cond_threshold!r}.")
    kwds = dict(cov_kwds or {})
    if cov_type == "cluster":
        _groups(cov_type, kwds)
        kwds.pop("groups", None)
    elif cov_type in HAC_COV_TYPES:
        HacOptions.parse(cov_type, kwds)  # names any unknown option
        kwds.clear()
    if kwds:
        raise ValueError(f"unknown cov_kwds for cov_type={cov_type!r}: {sorted(kwds)}")


def _groups(cov_type: str, cov_kwds: dict[str, Any] | None) -> str | tuple[str, str] | None:
    """The cluster column, or the two columns of two-way clustering (``None`` unless
    ``cov_type="cluster"``)."""
    if cov_type != "cluster":
        return None
    groups = (cov_kwds or {}).get("groups")
    if isinstance(groups, list | tuple):
        if len(groups) == 1 and isinstance(groups[0], str):
            return groups[0]
        if len(groups) == 2 and all(isinstance(g, str) for g in groups):
            if groups[0] == groups[1]:
                raise ValueError(
                    f"cov_kwds={{'groups': {groups!r}}}: two-way clustering needs two "
                    "different columns"
                )
            return (groups[0], groups[1])
        raise ValueError(
            f"cov_kwds={{'groups': {groups!r}}}: give one column name, or two for two-way "
            "clustering (as statsmodels, no more than two)"
        )
    if not isinstance(groups, str):
        raise ValueError(
            "cov_type='cluster' needs cov_kwds={'groups': column_name} (or two column "
            f"names for two-way clustering); got groups={groups!r}"
        )
    return groups


def _cov_note_options(
    cov_type: str, groups: Any, hac: HacOptions | None, nlags: int | None = None
) -> dict[str, Any]:
    """What the summary and a reader of the results file need to know of the
    covariance's options (statsmodels keeps them in ``cov_kwds``); ``nlags`` is the
    lag a HAC-type covariance used."""
    if hac is not None:
        return {"cov_kwds": hac.cov_kwds(nlags)}
    if cov_type == "cluster" and groups is not None:
        return {"cov_kwds": {"groups": [groups] if isinstance(groups, str) else list(groups)}}
    return {}


def _check_use_t(use_t: Any) -> None:
    if use_t is not None and not isinstance(use_t, bool):
        raise ValueError(f"The 'use_t' parameter must be True, False or None. Got {use_t!r}.")


def _intercept(learned: LearnedDesign) -> int | None:
    spec = learned.spec
    index = spec.intercept_index()
    if index is not None or spec.formula is not None:
        return index
    # Plain columns: a column constant over the data (add_constant's) is the intercept.
    for position, name in enumerate(spec.x_columns):
        column = learned.summary.columns.get(name)  # absent: not summarized (known columns)
        if getattr(column, "count", 0) and column.min == column.max and column.min != 0:
            return position
    return None


def _column_transform(
    learned: LearnedDesign, source: Source, intercept: int | None, sess: Any, missing: str
) -> ColumnTransform:
    """Shift and scale from the first partition with complete rows.

    Raises when no partition has one (every row dropped for missing values).
    """
    spec = learned.spec
    p = len(spec.column_names)
    dense = spec.dense_columns()
    rows_read = 0
    for index, partition in enumerate(source.partitions):
        known = learned.partitions[index] if learned.rows_complete is not None else None
        if known is not None and known.complete == 0:
            rows_read += known.rows
            continue
        sample = Source(source.name, (partition,), source.schema)
        moments = run_pass(
            MomentsTask(spec, missing), sample, backend=sess, pass_name="moments", allreduce=True
        )
        rows_read += moments.rows_read
        if moments.n:
            break
    else:
        raise DesignError(
            f"no rows of {source.name!r} have every value the model needs "
            + (
                f"({rows_read:,} rows read, all dropped for missing values)"
                if rows_read
                else "(it has no rows)"
            )
        )
    spread = np.where(moments.std > 0, moments.std, 1.0)
    magnitude = np.where(moments.std > 0, spread, np.maximum(np.abs(moments.mean), 1.0))
    shift = np.zeros(p + 1)
    scale = np.ones(p + 1)
    for j in range(p):
        if not dense[j] or j == intercept:
            continue
        scale[j] = magnitude[j]
        if intercept is not None:
            shift[j] = moments.mean[j]
    scale[p] = magnitude[p]
    if intercept is not None:
        shift[p] = moments.mean[p]
    return ColumnTransform(tuple(shift), tuple(scale), dense)


def _check_rows_used(main: LeastSquaresPass, source: Source) -> None:
    if main.core.nobs == 0:  # type: ignore[union-attr]
        raise DesignError(
            f"no rows of {source.name!r} have every value the model needs "
            + (
                f"({main.counts.read:,} rows read, all dropped for missing values)"
                if main.counts.read
                else "(it has no rows)"
            )
        )


def _solve(
    main: LeastSquaresPass, transform: ColumnTransform, intercept: int | None, rank_tol: float
) -> LeastSquaresSolution:
    core = main.core
    if isinstance(core, GramStatistic):
        r = cholesky_with_aliasing(core.cross, transform.p)
        return solve_from_r(r, transform, intercept=intercept, tol=0.0)
    return solve_from_r(core.full_r(), transform, intercept=intercept, tol=rank_tol)


def _residual_fraction(
    main: LeastSquaresPass, solution: LeastSquaresSolution, transform: ColumnTransform
) -> float:
    """The Gram solution's residual sum of squares over the response's sum of squares
    about its shift (its centred sum with an intercept); 1 for a TSQR solution."""
    core = main.core
    if not isinstance(core, GramStatistic):
        return 1.0
    p = transform.p
    total = float(core.cross[p, p])
    if total <= 0:
        return 1.0
    return solution.ssr / transform.scale[p] ** 2 / total


def _report_aliased(
    solution: LeastSquaresSolution, names: tuple[str, ...], main: LeastSquaresPass, policy: str
) -> None:
    if solution.kept.all():
        return
    aliased = [names[j] for j in np.flatnonzero(~solution.kept)]
    message = (
        f"the design is rank deficient: {aliased} "
        f"{'is' if len(aliased) == 1 else 'are'} collinear with earlier columns "
        f"(or all zero in the {main.core.totals.nobs:,} rows used)"
    )
    if policy == "raise":
        raise DesignError(message + "; pass rank_deficient='drop' to drop them, as R's lm does")
    warnings.warn(message + "; dropped (reported as NaN)", UserWarning, stacklevel=3)


def _constant(
    solution: LeastSquaresSolution,
    totals: Any,
    intercept: int | None,
    transform: ColumnTransform,
) -> tuple[int, int | None]:
    if intercept is not None:
        return 1, intercept
    # An implicit constant (0 + C(g)): the weighted constant column c = sqrt(w) lies in
    # X's column space when its residual on X, |c - P c|^2 / |c|^2 = 1 - u'u / sum(w)
    # with R'u = X'w, is zero up to rounding. u by a triangular solve: its rounding is
    # about eps * cond (measured <= 6e-13 with an exact constant at cond 2e8), where
    # the quadratic form through (X'WX)^-1 loses eps * cond**2 (it gave 2.1, not 0,
    # there). 1e-10 leaves room for sums rounded over many rows and keeps out a
    # constant reproduced to 4 digits only: Longley's six regressors through the
    # origin leave 7.3e-9, and statsmodels, R and Stata report uncentred statistics.
    sw = totals.sum_weights
    cols = np.flatnonzero(solution.kept)
    if sw <= 0 or cols.size == 0:
        return 0, None
    shift = np.asarray(transform.shift)[cols]
    scale = np.asarray(transform.scale)[cols]
    raw_sums = scale * totals.sums[cols] + shift * sw  # X'w of the kept columns
    u = scipy.linalg.solve_triangular(solution.r_raw, raw_sums, trans="T", check_finite=False)
    residual = 1.0 - float(u @ u) / sw
    # Capped: at any conditioning, a constant reproduced to 3 digits is none.
    tolerance = min(max(1e-10, 16 * np.finfo(np.float64).eps * solution.condition), 1e-6)
    return (1, None) if residual <= tolerance else (0, None)


def _total_sums(
    main: LeastSquaresPass, transform: ColumnTransform, intercept: int | None
) -> tuple[float, float]:
    """Weighted centred and uncentred total sums of squares of y.

    With a TSQR factor and an intercept column, the centred sum is the squared
    residual norm of y on the intercept alone, read off the factor (its entries are
    sums of squares, not differences): ``syy - sy**2 / sw`` would cancel every digit
    of a response far from zero relative to its spread (NIST's SmLs09: 1e12 + 0.1).
    A Gram is centred on the global means, so there the difference does not cancel.
    """
    totals = main.core.totals
    p = transform.p
    shift, scale = transform.shift[p], transform.scale[p]
    sy = float(totals.sums[p])
    sw = totals.sum_weights
    gram = isinstance(main.core, GramStatistic)
    r = None if gram else main.core.full_r()
    syy = float(main.core.cross[p, p]) if r is None else float(r[:, p] @ r[:, p])
    if r is not None and intercept is not None:
        pair = scipy.linalg.qr(r[:, [intercept, p]], mode="r", check_finite=False)[0]
        centered = scale**2 * float(pair[1, 1] ** 2) if pair.shape[0] > 1 else 0.0
    else:
        centered = scale**2 * (syy - sy * sy / sw)
    uncentered = scale**2 * syy + 2 * scale * shift * sy + shift**2 * sw
    return centered, uncentered


def _singular_values(solution: LeastSquaresSolution) -> np.ndarray:
    """The weighted design's singular values, largest first: those of its triangular
    factor. Their squares are statsmodels' ``eigenvals`` (of ``X'WX``), each accurate
    to ``eps`` of the largest, as statsmodels' from the design itself."""
    return np.linalg.svd(solution.r_raw, compute_uv=False)


def _condition_number(singular: np.ndarray) -> float:
    """statsmodels' ``condition_number``: ``sqrt(largest / smallest eigenvalue)`` of
    ``X'WX``, the ratio of the extreme singular values."""
    if singular.size == 0 or singular[-1] == 0:
        return float("inf")
    return float(singular[0] / singular[-1])


def _covariance(
    cov_type: str,
    solution: LeastSquaresSolution,
    spec: Any,
    transform: ColumnTransform,
    source: Source,
    sess: Any,
    missing: str,
    groups: str | tuple[str, str] | None,
    ssr: float,
    nobs: int,
    rank: int,
    options: dict[str, Any],
    hac: HacOptions | None = None,
) -> tuple[np.ndarray, bool, float | None, int | None, np.ndarray | None, int | None]:
    """The covariance, the default ``use_t``, the inference degrees of freedom, the
    number of clusters, a factor ``L`` of the covariance (``L L'``, for prediction
    standard errors ``|x'L|``; ``None`` where none is accurate: a plain sandwich), and
    the lag a HAC-type covariance used (else ``None``)."""
    if cov_type == "nonrobust":
        sigma2 = ssr / (nobs - rank)
        factor = solution.normalized_factor()
        if factor is not None:
            factor = factor * np.sqrt(sigma2)
        return solution.normalized_cov * sigma2, True, None, None, factor, None
    # An ill-conditioned design's meat is summed in the orthonormal basis (see
    # RobustTask): the plain sandwich loses cond**2 * eps.
    basis = robust_basis(cov_type, solution)
    orthonormal = basis is not None
    task = RobustTask(
        spec=spec,
        transform=transform,
        kept=tuple(bool(k) for k in solution.kept),
        gamma=solution.gamma,
        cov_gamma=solution.cov_gamma,
        cov_type=cov_type,
        groups=groups,
        missing=missing,  # type: ignore[arg-type]
        r_inv=basis,
        **_hac_task_options(hac, nobs),
    )
    meat_stat = run_pass(task, source, pass_name=f"robust-{cov_type}", **options)
    bread = solution.cov_gamma
    n_groups = None
    df_inference = None
    nlags = None
    k_params = solution.kept.size  # statsmodels' exog columns, aliased ones included
    if isinstance(meat_stat, TwoWayClusterScores):
        return (*_two_way_covariance(meat_stat, solution, orthonormal, nobs, k_params), None)
    if isinstance(meat_stat, ClusterScores):
        scores = meat_stat.sums
        if orthonormal:  # each row's score was summed in the orthonormal basis
            bread = solution.r_inv
        elif solution.r_inv is not None:
            # The clusters' scores in that basis on the driver (the sums are linear):
            # R^{-1} (V'V) R^{-T} with V = S R^{-1} loses cond * eps where
            # cov_gamma (S'S) cov_gamma loses cond**2 * eps.
            scores = scores @ solution.r_inv
            bread = solution.r_inv
        meat = scores.T @ scores
        n_groups = len(meat_stat.keys)
        if n_groups < 2:
            raise DesignError(f"cluster covariance needs at least 2 clusters; found {n_groups}")
        correction = n_groups / (n_groups - 1) * (nobs - 1) / (nobs - k_params)
        df_inference = float(n_groups - 1)
    elif isinstance(meat_stat, LagWindow | PanelLagWindow | TimeScoreSums):
        assert hac is not None
        # statsmodels' cov_hac_simple, cov_nw_panel, cov_nw_groupsum: corrections with
        # k its exog's columns.
        middle = hac_middle(meat_stat, hac, nobs, k_params, stacklevel=3)  # fit's caller
        meat, correction = middle.meat, middle.correction
        n_groups, df_inference, nlags = middle.n_groups, middle.df_inference, middle.nlags
        if orthonormal:
            bread = solution.r_inv
    else:
        assert isinstance(meat_stat, MeatStatistic)
        meat = meat_stat.meat
        if orthonormal:
            bread = solution.r_inv
        correction = nobs / (nobs - rank) if cov_type == "HC1" else 1.0
    cov_gamma = bread @ meat @ bread.T * correction
    factor = None
    if bread is solution.r_inv and _is_psd(meat):
        # cov_gamma = R^{-1} S R^{-T} with S small and well scaled: factor S. A
        # uniform-kernel HAC meat need not be positive semi-definite: a factor would
        # clip its negative eigenvalues and predict standard errors that are not
        # sqrt(x'Cx) (positive where statsmodels' are NaN), so the covariance decides.
        factor = solution.factor_of(psd_factor(meat * correction))
    return solution.covariance_of(cov_gamma), False, df_inference, n_groups, factor, nlags


def _hac_task_options(hac: HacOptions | None, nobs: int) -> dict[str, Any]:
    """The robust pass's HAC options: the kernel weights (sized from the rows used
    when ``maxlags`` is None: the count is known by now), the key column, and the
    cap on hac-groupsum's time values (read here, so one setting holds on every
    worker)."""
    if hac is None:
        return {}
    weights = None
    if hac.cov_type != "hac-groupsum":  # its lag is sized from the time values found
        weights = tuple(hac.weights(nobs).tolist())
    return {
        "hac_weights": weights,
        "hac_column": hac.column,
        "hac_by": hac.by,
        "time_cap": _hac.MAX_TIME_VALUES if hac.cov_type == "hac-groupsum" else None,
    }


def _covariance_columns(
    source: Source, cov_type: str, cov_kwds: dict[str, Any] | None
) -> tuple[str | tuple[str, str] | None, HacOptions | None, tuple[str, ...]]:
    """The cluster column(s), the HAC options, and the data columns the covariance
    reads besides the design's (cluster ids, or hac-panel's and hac-groupsum's
    column), each checked to be in ``source``."""
    groups = _groups(cov_type, cov_kwds)
    hac = HacOptions.parse(cov_type, cov_kwds) if cov_type in HAC_COV_TYPES else None
    columns = (groups,) if isinstance(groups, str) else groups or ()
    for column in columns:
        check_groups(source, column)  # a design store holds no cluster column
    if hac is not None and hac.column is not None:
        _check_hac_column(source, hac)
        columns = (hac.column,)
    return groups, hac, columns


def _check_hac_column(source: Source, hac: HacOptions) -> None:
    """Refuse a hac-panel or hac-groupsum column that a design store does not hold
    (it keeps the design's columns only) or that the data lack, naming it."""
    column = hac.column
    if column is None or column in source.columns:
        return
    option = f"cov_kwds={{{hac.by!r}: {column!r}}} of cov_type={hac.cov_type!r}"
    folder = source.meta.get(STORE_META)
    if folder is not None:
        raise DesignError(
            f"{option}: the design store {folder} does not hold {column!r}; a store keeps "
            "only the response, the design columns, weights and offset. Fit the formula "
            "on the data for this covariance"
        )
    raise DesignError(
        f"{option}: {source.name!r} has no column {column!r} (its columns: "
        f"{', '.join(map(repr, source.columns[:20]))}"
        f"{', ...' if len(source.columns) > 20 else ''})"
    )


def _is_psd(matrix: np.ndarray) -> bool:
    """Whether a small symmetric matrix is positive semi-definite up to rounding (its
    eigenvalues no more negative than 1e-10 of the largest)."""
    if matrix.size == 0:
        return True
    values = np.linalg.eigvalsh((matrix + matrix.T) / 2)
    return bool(values[0] >= -1e-10 * max(values[-1], 0.0))


def _two_way_covariance(
    stat: TwoWayClusterScores,
    solution: LeastSquaresSolution,
    orthonormal: bool,
    nobs: int,
    k_params: int,
) -> tuple[np.ndarray, bool, float | None, int | None, np.ndarray | None]:
    """statsmodels' ``cov_cluster_2groups``: ``V_1 + V_2 - V_12``, each one-way CRV1
    with its own ``G / (G - 1) (n - 1) / (n - k)``; inference with ``min(G_1, G_2) -
    1`` degrees of freedom. No factor: the difference need not be positive
    semi-definite."""
    # The orthonormal basis (see _covariance) when the scores were not summed in it.
    basis = solution.r_inv if not orthonormal and solution.r_inv is not None else None
    inner, n_groups = stat.meat(nobs, k_params, basis)
    bread = solution.cov_gamma if solution.r_inv is None else solution.r_inv
    cov_gamma = bread @ inner @ bread.T
    return solution.covariance_of(cov_gamma), False, float(n_groups - 1), n_groups, None


def ols(
    formula: str,
    data: Any,
    *,
    weights: str | None = None,
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = 10_000,
) -> LinearModel:
    """Ordinary least squares on ``data`` from a formula (weights make it WLS).

    Parameters
    ----------
    formula : str
        A formulaic formula, e.g. ``"y ~ x1 + np.log(x2) + C(g)"``. Formula strings are
        evaluated as Python: never pass one from an untrusted source.
    data : Source, path, glob, pandas.DataFrame or pyarrow.Table
        The data, of any size.
    weights : str, optional
        A column of non-negative weights.
    missing : {"drop", "raise"}
        Drop rows missing a needed value (counted and reported), or raise naming it.
    max_levels : int
        The most levels a categorical column may have.

    Returns
    -------
    LinearModel
        Call ``.fit()``.
    """
    return LinearModel(formula, data, weights=weights, missing=missing, max_levels=max_levels)


def wls(
    formula: str,
    data: Any,
    *,
    weights: str,
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = 10_000,
) -> LinearModel:
    """Weighted least squares (see :func:`ols`); ``weights`` is a column name."""
    return LinearModel(formula, data, weights=weights, missing=missing, max_levels=max_levels)


def OLS(
    endog: Any,
    exog: Any,
    *,
    weights: Any = None,
    npartitions: int = 1,
) -> LinearModel:
    """Least squares on arrays, like ``statsmodels.OLS(y, X)`` (no intercept added).

    Parameters
    ----------
    endog : array_like
        ``(n,)`` response.
    exog : array_like or pandas.DataFrame
        ``(n, p)`` predictors; DataFrame column names label the results.
    weights : array_like, optional
        ``(n,)`` non-negative weights (WLS).
    npartitions : int
        Partitions to split the in-memory arrays into.

    ``endog`` and ``exog`` may also be a design store's ``store.y`` and ``store.X``
    (:func:`shardfit.write_design`), with ``weights=store.weights``: the stored
    columns are fitted out of core, one partition per part file.
    """
    from shardfit.data.memory import from_pandas
    from shardfit.design.store import stored_column, stored_design

    store = stored_design(endog, exog, weights=weights)
    if store is not None:
        return LinearModel(
            None,
            store.source(),
            weights=stored_column(weights, "weights"),
            response=endog.names[0],
            **exog.plain_design(),
        )
    X = np.asarray(exog, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if isinstance(exog, pd.DataFrame):
        names = [str(name) for name in exog.columns]
    else:
        names = _array_names(X)
    frame = pd.DataFrame(X, columns=[str(n) for n in names])
    frame["__y__"] = np.asarray(endog, dtype=np.float64)
    if weights is not None:
        frame["__w__"] = np.asarray(weights, dtype=np.float64)
    return LinearModel(
        None,
        from_pandas(frame, npartitions),
        weights="__w__" if weights is not None else None,
        x_columns=tuple(str(n) for n in names),
        response="__y__",
    )


def _array_names(X: np.ndarray) -> list[str]:
    """statsmodels' names for array columns: ``const`` for a constant, else x1, x2, ..."""
    names, counter = [], 0
    for j in range(X.shape[1]):
        column = X[:, j]
        if column.size and np.ptp(column) == 0 and column[0] != 0:
            names.append("const")
        else:
            counter += 1
            names.append(f"x{counter}")
    return names


def _row_counts(source: Source, counts: Any) -> dict[str, Any]:
    """The results' rows read, dropped and skipped (from the original data when the
    source is a design store's)."""
    read, dropped, skipped = source_counts(
        source, counts.read, dict(counts.dropped), counts.skipped
    )
    return {"rows_read": read, "rows_dropped": dropped, "rows_skipped": skipped}
