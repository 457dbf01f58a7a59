"""Generalized linear models out of core by IRLS: ``glm``, ``logit``, ``poisson``, ``GLM``.

A fit is a sequence of passes on one backend session, and, from the second pass on,
on the session's partition cache (so no pass after the first reads or encodes data):

1. the schema pass learns the design (levels, missing rows);
2. the prepare pass encodes every partition, checks the response's support and the
   weights, caches the encoded design on the workers, and sums what the start values
   and the column transform need (centre and scale dense columns, as the exact OLS);
3. one IRLS pass per iteration (:class:`~shardfit.models.glm_tasks.IrlsTask`): the
   weighted Gram of the transformed ``[X | z]`` and the deviance and Pearson chi2 at the
   current mean; the driver solves the merged Gram by Cholesky with aliasing detection;
4. a final pass at the estimates: log-likelihood at the final scale, null deviance, and
   the sandwich pieces of robust covariances (HAC's lag window pairs each row with the
   ``maxlags`` rows before it in the order read, across partitions: see
   :mod:`shardfit.models.hac`).

The iteration is statsmodels' ``GLM.fit()`` (IRLS) step for step: the same start values
(``(y + mean(y)) / 2``, ``(y + 0.5) / 2`` for the binomial), the same working weights
and response, and the same stopping rule, ``|dev_k - dev_{k-1}| <= tol + rtol |dev_k|``
on the deviance history (whose entries are divided by the scale estimate of the
previous iterate, as statsmodels does), with ``tol=1e-8``, ``rtol=0`` and
``maxiter=100``; the covariance is that of the last weighted least-squares step. So the
estimates, their covariance and the iteration count equal statsmodels' (to rounding).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from shardfit.data.partition import Source
from shardfit.data.resolve import as_source
from shardfit.design.formula import patsy_column_order
from shardfit.design.schema import learn_design
from shardfit.design.store import source_counts
from shardfit.engine import PartitionCache, run_pass, session
from shardfit.engine.blas import single_threaded_blas
from shardfit.errors import DesignError
from shardfit.models.families import Family, get_family
from shardfit.models.glm_final import FinalStatistic, FinalTask, concentrated_llf
from shardfit.models.glm_tasks import (
    FirstStep,
    IrlsStatistic,
    IrlsTask,
    PrepareStatistic,
    PrepareTask,
    centring,
)
from shardfit.models.hac import HAC_COV_TYPES, HacOptions
from shardfit.models.irls import (
    ConvergenceWarning,
    IrlsOptions,
    PerfectSeparationError,
    PerfectSeparationWarning,
    fit_null_intercept,
    glm_covariance,
    run_irls,
    separated_terms,
)
from shardfit.models.least_squares import QR_ALIAS_TOL, check_rank_tol, robust_basis
from shardfit.models.linear import (
    _COV_TYPES,
    CovType,
    _cov_note_options,
    _covariance_columns,
    _groups,
    _hac_task_options,
)
from shardfit.models.links import Log
from shardfit.results.glm import GLMResults
from shardfit.stats.transform import ColumnTransform

__all__ = [
    "GLM",
    "ConvergenceWarning",
    "GeneralizedLinearModel",
    "PerfectSeparationError",
    "PerfectSeparationWarning",
    "glm",
    "logit",
    "poisson",
]

# The same covariances as the linear models'.
GLMCovType = CovType
#: Above this condition number (centred, equilibrated design) ``method="auto"``
#: switches to TSQR, as the exact OLS does.
DEFAULT_COND_THRESHOLD = 1e3


class _TimedPasses:
    """``run_pass`` that records each pass's wall time (``results.extra["passes"]``)."""

    def __init__(self) -> None:
        self.passes: list[list[Any]] = []

    def __call__(self, task: Any, source: Source, *, pass_name: str, **options: Any) -> Any:
        started = time.perf_counter()
        out = run_pass(task, source, pass_name=pass_name, **options)
        self.passes.append([pass_name, time.perf_counter() - started])
        return out


@dataclass(frozen=True)
class GeneralizedLinearModel:
    """A GLM on a source, fitted with :meth:`fit`.

    Use :func:`glm`, :func:`logit`, :func:`poisson` or :func:`GLM` to build one.
    """

    formula: str | None
    data: Any
    family: Family
    weights: str | None = None
    offset: str | None = None
    exposure: str | None = None
    missing: Literal["drop", "raise"] = "drop"
    x_columns: tuple[str, ...] | None = None
    response: str | None = None
    max_levels: int = 10_000
    sparse_x: tuple[str, ...] = ()  # mostly-zero x_columns (a design store's dummies)
    x_constant: str | None = None  # a known constant column (a design store's Intercept)
    find_constant: bool = True  # look for a constant column (False: the columns are known)
    freq_weights: str | None = None  # statsmodels' freq_weights (weights: its var_weights)

    def __post_init__(self) -> None:
        # log(exposure) is an offset of the log of a rate only under the log link;
        # statsmodels refuses it with any other link, and so does shardfit rather than
        # fit a model whose exposure means something else than the user meant.
        if self.exposure is not None and not isinstance(self.family.link, Log):
            raise ValueError(
                f"exposure={self.exposure!r} needs the log link (it adds log(exposure) "
                f"to the linear predictor); the {self.family.name} family here has the "
                f"{self.family.link.name!r} link. Use the log link, or pass the column "
                "you mean to add to the linear predictor as offset="
            )

    def fit(
        self,
        *,
        start_params: Any = None,
        maxiter: int = 100,
        tol: float = 1e-8,
        rtol: float = 0.0,
        cov_type: GLMCovType = "nonrobust",
        cov_kwds: dict[str, Any] | None = None,
        method: Literal["auto", "gram", "qr"] = "auto",
        cond_threshold: float = DEFAULT_COND_THRESHOLD,
        rank_deficient: Literal["raise", "drop"] = "raise",
        rank_tol: float = QR_ALIAS_TOL,
        separation: Literal["warn", "raise"] = "warn",
        backend: Any = None,
        workers: int | None = None,
        cache_bytes: int | None = None,
        progress: bool = False,
        use_t: bool = False,
        scale: float | str | None = None,
    ) -> GLMResults:
        """Fit by IRLS, one pass over the (cached) data per iteration.

        Parameters
        ----------
        start_params : array_like or pandas.Series, optional
            Starting coefficients (a Series is aligned by column name); by default
            statsmodels' start values of the mean.
        maxiter : int
            The most IRLS iterations.
        tol, rtol : float
            Stop when ``|dev_k - dev_{k-1}| <= tol + rtol * |dev_k|`` (statsmodels'
            ``atol``/``rtol`` on its deviance history).
        cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "HAC", "cluster", \
"hac-panel", "hac-groupsum"}
            Covariance of the estimates: the inverse Fisher information times the
            scale, or a sandwich of statsmodels' ``score_obs`` with its observed
            information as the bread, both at the fit's scale (``"cluster"`` with
            statsmodels' small-sample correction); robust ones read the data once
            more (cluster ids are not cached). ``"HC1"``–``"HC3"`` equal ``"HC0"``, as
            in statsmodels' GLM (which applies no leverage or degrees-of-freedom
            correction to GLM sandwiches), so code written for statsmodels gets the
            same numbers.
        cov_kwds : dict, optional
            ``{"groups": column}`` for ``"cluster"`` (clusters may span partitions),
            or ``{"groups": [column1, column2]}`` for two-way clustering
            (statsmodels' ``groups=np.column_stack([g1, g2])``: ``V_1 + V_2 -
            V_12``, each with its small-sample correction, ``min(n_groups) - 1``
            inference degrees of freedom). ``"HAC"`` (Newey-West) takes
            ``{"maxlags": L, "kernel": "bartlett" | "uniform", "use_correction":
            False}`` as statsmodels: the rows are consecutive, equally spaced time
            periods **in the order read** (partition order, then row order; rows
            dropped for missing values are skipped), paired across partition
            boundaries; ``use_correction=True`` multiplies by ``n / (n - p)``;
            ``maxlags=None`` takes statsmodels' automatic lag ``floor(4 (n /
            100)^(2/9))`` of the rows used. ``"hac-panel"`` (``{"groups": column}``
            or ``{"time": column}``, ``"maxlags": L``, ``"use_correction": "hac" |
            "cluster" | False``) and ``"hac-groupsum"`` (``{"time": column,
            "maxlags": L or None, "use_correction": "cluster" | "hac" | False}``) are
            statsmodels' panel HAC and Driscoll-Kraay covariances, on the GLM's
            scores as above (see :meth:`shardfit.LinearModel.fit` for their
            meaning, corrections and degrees of freedom); like ``"cluster"`` they
            read the data once more. None of the HAC-type or cluster covariances is
            taken with ``freq_weights``.
        method : {"auto", "gram", "qr"}
            How each weighted least-squares step is solved: ``"gram"``, the Gram of
            centred, scaled columns (fastest; loses ``cond**2 * eps``); ``"qr"``, TSQR
            factors (``cond * eps``); ``"auto"``, the Gram until a step's design has a
            condition number above ``cond_threshold`` (or looks rank deficient), then
            TSQR (``results.method_used`` says which).
        cond_threshold : float
            See ``method``.
        rank_deficient : {"raise", "drop"}
            Collinear columns raise naming them, or are dropped (reported as NaN).
        rank_tol : float
            A column whose component orthogonal to the columns before it (columns
            scaled to unit spread, in TSQR steps) is below ``rank_tol`` times its norm
            is aliased (see :meth:`shardfit.LinearModel.fit`); R uses 1e-7.
        separation : {"warn", "raise"}
            What to do when a binomial model's data are (quasi-)separated (fitted
            probabilities numerically 0 or 1 while coefficients diverge), or a count
            model's zeros are (fitted means numerically 0 while coefficients diverge:
            a level whose responses are all 0, for example). statsmodels says nothing
            in the second case, and reports the estimate where its IRLS stopped.
        backend, workers
            Where the passes run (see :func:`shardfit.engine.run_pass`).
        cache_bytes : int, optional
            In-memory bound per worker of the encoded-partition cache (beyond it,
            partitions spill to local files, memory-mapped when used, so memory does
            not grow with the rows); default 64 MiB (see
            :mod:`shardfit.engine.cache`). A larger bound saves mapping spilled
            partitions back on every iteration.
        progress : bool
            Show progress bars.
        use_t : bool
            Student's t (and F) distributions for inference, with ``df_resid`` degrees
            of freedom (``n_groups - 1`` for ``"cluster"``, the fewer clusters' for
            two-way), as statsmodels' ``GLM.fit(use_t=True)``; by default the normal
            (and chi2 in :meth:`~GLMResults.wald_test`).
            Prediction intervals use the t with ``df_resid`` degrees of freedom, as
            statsmodels' ``get_prediction``, also under cluster and panel covariances.
        scale : float or {"X2", "dev"}, optional
            statsmodels' ``scale``: by default Pearson's chi2 over ``df_resid`` for the
            families with a free scale and 1 for the others; ``"X2"`` Pearson's chi2
            over ``df_resid`` for any family (quasi-likelihood: a quasi-Poisson),
            ``"dev"`` the deviance over ``df_resid``, a number a fixed scale. It
            scales the covariance and enters the log-likelihood (except the Gaussian
            with the identity link, whose likelihood is concentrated), as there.

        Returns
        -------
        GLMResults
        """
        _check_options(maxiter, tol, rtol, cov_type, cov_kwds, rank_deficient, separation)
        if not isinstance(use_t, bool):
            raise ValueError(f"The 'use_t' parameter must be True or False. Got {use_t!r}.")
        _check_scale(scale)
        if method not in ("auto", "gram", "qr"):
            raise ValueError(
                f"The 'method' parameter must be 'auto', 'gram' or 'qr'. Got {method!r}."
            )
        if not cond_threshold > 1:
            raise ValueError(f"The 'cond_threshold' parameter must be > 1. Got {cond_threshold!r}.")
        check_rank_tol(rank_tol)
        source = as_source(self.data)
        groups, hac, group_columns = _covariance_columns(source, cov_type, cov_kwds)
        freq = self.freq_weights
        if freq is not None:
            _check_freq_weights(source, freq, cov_type)
        # Frequency weights are read (and checked for missing values) as an extra
        # column of the design, like cluster ids: predictions never read them.
        extra_columns = tuple(dict.fromkeys(c for c in (*group_columns, freq) if c is not None))
        family = self.family
        timed = _TimedPasses()
        with (
            session(backend, workers=workers, partitions=source.npartitions) as sess,
            single_threaded_blas(),
            PartitionCache(sess, max_bytes=cache_bytes) as cache,
        ):
            started = time.perf_counter()
            learned = learn_design(
                self.formula,
                source,
                x_columns=self.x_columns,
                sparse_x=self.sparse_x,
                x_constant=self.x_constant,
                find_constant=self.find_constant,
                response=self.response,
                weights=self.weights,
                offset=self.offset,
                exposure=self.exposure,
                extra_columns=extra_columns,
                missing=self.missing,
                max_levels=self.max_levels,
                needs_response=True,
                # The prepare pass reads and checks every column; here only the
                # categorical columns' levels are needed (no pass at all without one).
                summaries="levels",
                backend=sess,
                progress=progress,
            )
            timed.passes.append(["schema", time.perf_counter() - started])
            spec = learned.spec
            options = {"backend": sess, "progress": progress, "allreduce": True}
            start = _start(start_params, spec)
            prepared: PrepareStatistic = timed(
                PrepareTask(
                    spec,
                    family,
                    self.missing,
                    cache.ref,
                    _first_step(spec, family, start, method),
                    freq,
                ),
                source,
                pass_name="glm-prepare",
                **options,
            )
            nobs = prepared.nobs
            if nobs == 0:
                raise DesignError(
                    f"no rows of {source.name!r} have every value the model needs "
                    + (
                        f"({prepared.counts.read:,} rows read, all dropped for missing values)"
                        if prepared.counts.read
                        else "(it has no rows)"
                    )
                )
            # statsmodels' wnobs: the rows, or the sum of the frequency weights (the
            # residual degrees of freedom are wnobs - rank); nobs stays the rows.
            wnobs: float = nobs if freq is None else prepared.sum_freq
            intercept = _intercept(spec, prepared)
            first = None
            if prepared.first is not None:
                first, transform = prepared.first.irls_statistic(spec.dense_columns(), intercept)
            else:
                transform = _column_transform(spec, prepared, intercept)
            y_mean = prepared.sum_y / nobs

            has_offset = self.offset is not None or self.exposure is not None
            null_mu = None if has_offset else prepared.sum_wy / prepared.sum_w
            null_beta = None  # the null model's intercept with an offset (fitted last)

            def final_task(
                beta: np.ndarray,
                scale: float,
                loglike_scale: float,
                kept: tuple[bool, ...],
                centred: tuple[float, int] | None,
                r_inv: np.ndarray | None = None,
            ) -> FinalTask:
                return FinalTask(
                    spec=spec,
                    family=family,
                    # The final pass works in the columns the solution's back-transform
                    # expects.
                    transform=transform,
                    missing=self.missing,
                    cache=cache.ref,
                    beta=np.asarray(beta),
                    scale=scale,
                    loglike_scale=loglike_scale,
                    null_mu=null_mu,
                    null_beta=null_beta,
                    kept=kept,
                    cov_type=cov_type,
                    groups=groups,
                    centred=centred,
                    r_inv=r_inv,
                    freq_weights=freq,
                    # HAC's weights sized from the rows used (maxlags=None: the count
                    # is known by now), hac-panel's and hac-groupsum's columns.
                    **_hac_task_options(hac, nobs),
                )

            # A pass expected to be the last also evaluates the final fit measures at
            # its coefficients (saving the final pass) when they need neither the final
            # scale nor a later pass: a fixed scale, no offset, nonrobust covariance.
            may_fold_final = (
                cov_type == "nonrobust"
                and not family.free_scale
                and not has_offset
                and scale is None
            )

            centre: list[float] = []  # the working response's shift, once known

            def irls_pass(
                beta: np.ndarray | None, kind: str, last_likely: bool, solution: Any
            ) -> IrlsStatistic:
                centred = centring(solution, transform, intercept)
                final = None
                if last_likely and may_fold_final and beta is not None:
                    final = final_task(beta, 1.0, 1.0, (True,) * len(spec.column_names), centred)
                # The working response is centred at the first solve's fitted value at
                # the design's centre (the intercept absorbs it): uncentred, a response
                # far from zero relative to its spread (a Gaussian GLM of NIST's SmLs06,
                # 1e6 + 0.1 steps) loses the slopes' digits in the Gram's Cholesky
                # factor. One centre for every pass: moving it would change each pass's
                # rounding, and an ill-conditioned fit's deviance (Filip as a Gaussian
                # GLM) would then never settle to 1e-8.
                columns = transform
                if solution is not None and solution.centre_fit is not None:
                    if not centre:
                        centre.append(solution.centre_fit)
                    columns = transform.with_response_shift(centre[0])
                task = IrlsTask(
                    spec,
                    family,
                    columns,
                    self.missing,
                    cache.ref,
                    beta,
                    y_mean,
                    kind,
                    final,
                    centred,
                    freq,
                )
                stat = timed(task, source, pass_name=f"glm-irls-{kind}", **options)
                return replace(stat, transform=columns)

            state = run_irls(
                irls_pass,
                start,
                family,
                transform,
                intercept,
                wnobs,
                IrlsOptions(
                    maxiter, tol, rtol, method, cond_threshold, rank_deficient, rank_tol, scale
                ),
                spec.column_names,
                first,
            )
            assert state.solution is not None and state.last is not None
            solution = state.solution
            rank = solution.rank
            scale = state.scale
            if has_offset:
                null_beta = fit_null_intercept(
                    spec,
                    family,
                    self.missing,
                    cache.ref,
                    source,
                    timed,
                    options,
                    prepared,
                    maxiter,
                    tol,
                    freq,
                )
            loglike_scale = scale
            if concentrated_llf(family):
                loglike_scale = state.last.deviance / wnobs  # statsmodels' concentrated llf
            # The basis the final pass sums a robust covariance's pieces in, and that
            # maps the sandwich back (None: the plain sandwich).
            basis = robust_basis(cov_type, solution)
            final: FinalStatistic
            if state.last.final is not None:
                final = state.last.final  # evaluated by the last IRLS pass
            else:
                final = timed(
                    final_task(
                        np.asarray(state.beta),
                        scale,
                        loglike_scale,
                        tuple(bool(k) for k in solution.kept),
                        centring(solution, transform, intercept),
                        basis,
                    ),
                    source,
                    pass_name="glm-final",
                    **options,
                )
        separated = separated_terms(
            family, state, final, spec.column_names, transform.scale[:-1], separation
        )
        method_used = state.kind
        cov, n_groups, df_inference, cov_factor, nlags = glm_covariance(
            cov_type, solution, final, scale, nobs, basis, hac
        )
        if not state.converged:
            trace = ", ".join(f"{d:.10g}" for d in state.history[1:])
            warnings.warn(
                f"IRLS did not converge in {maxiter} iterations (tol={tol:g}); deviance "
                f"trace: [{trace}]",
                ConvergenceWarning,
                stacklevel=2,
            )
        if not np.isfinite(final.loglike):
            warnings.warn(
                f"the log-likelihood is {final.loglike} (so are aic and bic): "
                + _why_not_finite(family),
                RuntimeWarning,
                stacklevel=2,
            )
        return GLMResults(
            names=spec.column_names,
            params_array=np.asarray(state.beta, dtype=np.float64),
            normalized_cov=solution.normalized_cov,
            cov_array=cov,
            cov_factor=cov_factor,
            nobs=nobs,
            rank=rank,
            family_name=family.name,
            link_name=family.link.name,
            family_params=family.params(),
            scale=float(scale),
            deviance=float(state.last.deviance),
            null_deviance=float(final.null_deviance),
            pearson_chi2=float(state.last.pearson_chi2),
            llf=float(final.loglike),
            llnull=float(final.null_loglike),
            converged=state.converged,
            iterations=state.iterations,
            deviance_history=tuple(float(d) for d in state.history),
            cov_type=cov_type,
            use_t=use_t,
            df_resid_inference=df_inference,
            const_idx=intercept,
            data_name=source.name,
            formula=self.formula,
            **_row_counts(source, prepared.counts),
            n_groups=n_groups,
            weighted=self.weights is not None,
            sum_freq_weights=None if freq is None else float(wnobs),
            separated_terms=tuple(separated),
            boundary_rows=final.boundary,
            spec=spec,
            method_used=method_used,
            extra={"passes": timed.passes, **_cov_note_options(cov_type, groups, hac, nlags)},
        )


def _why_not_finite(family: Family) -> str:
    """Why a fit's log-likelihood is not finite, for its warning."""
    power = family.params().get("var_power") if family.name == "tweedie" else None
    if power is not None and not 1 <= power <= 2:
        # Not a range problem: the Tweedie density is only evaluated for 1 <= p <= 2.
        return (
            f"the Tweedie log-likelihood is only defined here for 1 <= var_power <= 2 "
            f"(var_power={power:g}), as in statsmodels, which gives NaN too; the "
            "estimates, deviance and scale are unaffected"
        )
    if power == 2:
        # The Gamma density of a zero response is infinite (the deviance clips it).
        return (
            "with var_power=2 the log-likelihood is the Gamma's, infinite at a zero "
            "response (statsmodels gives the same value); the estimates and deviance "
            "(which clips zeros, as statsmodels') are unaffected"
        )
    return (
        f"some fitted means lie outside the {family.name} family's range, which the "
        f"{family.link.name!r} link does not keep them in (statsmodels gives the same "
        "value). A link that does, or a model whose means stay in range, gives a "
        "finite one"
    )


def _check_options(
    maxiter: int,
    tol: float,
    rtol: float,
    cov_type: str,
    cov_kwds: dict[str, Any] | None,
    rank_deficient: str,
    separation: str,
) -> None:
    if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 1:
        raise ValueError(f"The 'maxiter' parameter must be an int >= 1. Got {maxiter!r}.")
    if not (tol >= 0 and rtol >= 0):
        raise ValueError(f"The 'tol' and 'rtol' parameters must be >= 0. Got {tol!r}, {rtol!r}.")
    if cov_type not in _COV_TYPES:
        raise ValueError(f"The 'cov_type' parameter must be one of {_COV_TYPES}. Got {cov_type!r}.")
    if rank_deficient not in ("raise", "drop"):
        raise ValueError(
            f"The 'rank_deficient' parameter must be 'raise' or 'drop'. Got {rank_deficient!r}."
        )
    if separation not in ("warn", "raise"):
        raise ValueError(
            f"The 'separation' parameter must be 'warn' or 'raise'. Got {separation!r}."
        )
    kwds = dict(cov_kwds or {})
    if cov_type == "cluster":
        _groups(cov_type, kwds)  # one column name, or two (two-way), else a clear error
        kwds.pop("groups", None)
    elif cov_type in HAC_COV_TYPES:
        HacOptions.parse(cov_type, kwds)  # names any unknown option
        kwds.clear()
    if kwds:
        raise ValueError(f"unknown cov_kwds for cov_type={cov_type!r}: {sorted(kwds)}")


def _check_freq_weights(source: Source, column: str, cov_type: str) -> None:
    """Refuse frequency weights where they would give numbers statsmodels does not
    stand behind, or that are not counts at all, before any pass."""
    from shardfit.stats.column_summary import is_categorical_type

    if cov_type == "cluster":
        # statsmodels warns "cov_type not fully supported with freq_weights" for it:
        # its cluster scores are not divided by sqrt(freq_weights) as HC0's are, and
        # its small-sample correction counts rows, not frequencies.
        raise ValueError(
            f"cov_type='cluster' with freq_weights={column!r} is not supported "
            "(statsmodels does not fully support it either); use cov_type='HC0' or "
            "expand the rows"
        )
    if cov_type in HAC_COV_TYPES:
        # statsmodels warns the same for HAC, whose lags pair the rows as stored: a row
        # of frequency f is not f consecutive periods, so no meaning of the weights
        # makes its number the expanded series' Newey-West covariance.
        raise ValueError(
            f"cov_type={cov_type!r} with freq_weights={column!r} is not supported: HAC's lags "
            "pair consecutive rows, and a row standing for several identical rows is "
            "not several consecutive periods (statsmodels warns that it does not fully "
            "support it); expand the rows, or use cov_type='HC0'"
        )
    types = dict(zip(source.schema.names, source.schema.types))
    if column in types and is_categorical_type(types[column]):
        raise DesignError(
            f"column {column!r} holds labels ({types[column]}); freq_weights need numbers"
        )


def _check_scale(scale: Any) -> None:
    if scale is None or (isinstance(scale, str) and scale.lower() in ("x2", "dev")):
        return
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise ValueError(
            f"The 'scale' parameter must be None, 'X2', 'dev' or a number > 0. Got {scale!r}."
        )
    if not np.isfinite(scale):
        raise ValueError(f"The 'scale' parameter must be finite. Got {scale!r}.")


def _intercept(spec: Any, prepared: PrepareStatistic) -> int | None:
    index = spec.intercept_index()
    if index is not None or spec.formula is not None:
        return index
    # Plain columns: a constant non-zero column (add_constant's) is the intercept.
    dense = np.flatnonzero(spec.dense_columns())
    moments = prepared.moments
    assert moments is not None  # taken unless the spec knows its intercept
    for k, j in enumerate(dense):
        if moments.m2[k] == 0 and moments.mean[k] != 0:
            return int(j)
    return None


def _column_transform(
    spec: Any, prepared: PrepareStatistic, intercept: int | None
) -> ColumnTransform:
    """Centre (with an intercept) and scale the dense columns; the working response is
    left as it is (it changes every iteration)."""
    flags = spec.dense_columns()
    p = len(flags)
    moments = prepared.moments
    assert moments is not None  # taken unless the first IRLS step gives the transform
    spread = np.where(moments.std > 0, moments.std, 1.0)
    magnitude = np.where(moments.std > 0, spread, np.maximum(np.abs(moments.mean), 1.0))
    shift = np.zeros(p + 1)
    scale = np.ones(p + 1)
    for k, j in enumerate(np.flatnonzero(flags)):
        if j == intercept:
            continue
        scale[j] = magnitude[k]
        if intercept is not None:
            shift[j] = moments.mean[k]
    return ColumnTransform(tuple(shift), tuple(scale), tuple(flags))


def _first_step(
    spec: Any, family: Family, start: np.ndarray | None, method: str
) -> FirstStep | None:
    """IRLS's first step for the prepare pass to take, when it can: a Gram step whose
    start needs no mean of all the responses, with an intercept known from the spec
    (plain array designs find theirs from the prepare pass's moments)."""
    if method == "qr" or (start is None and family.start_needs_mean):
        return None
    if spec.formula is None and spec.intercept_index() is None:
        return None
    return FirstStep(start, tuple(spec.dense_columns()), spec.intercept_index())


def _start(start_params: Any, spec: Any) -> np.ndarray | None:
    names: tuple[str, ...] = spec.column_names
    if start_params is None:
        return None
    if isinstance(start_params, pd.Series):
        missing = [name for name in names if name not in start_params.index]
        if missing:
            raise ValueError(f"start_params lacks the columns {missing}")
        values = start_params.loc[list(names)].to_numpy(dtype=np.float64)
    else:
        values = np.asarray(start_params, dtype=np.float64).ravel()
        _warn_patsy_order(spec)
    if values.shape != (len(names),) or not np.all(np.isfinite(values)):
        raise ValueError(
            f"start_params needs {len(names)} finite values (columns {list(names)}); "
            f"got {values.shape[0]}"
        )
    return values


def _warn_patsy_order(spec: Any) -> None:
    """Warn that an unnamed ``start_params`` is read in formulaic's column order where
    statsmodels' (patsy's) order for the same formula differs: statsmodels'
    ``start_params`` array copied here would start from misassigned values (the fit
    still converges, in another number of iterations)."""
    if spec.formula is None:
        return
    specs = spec.formulaic_specs()
    rhs = specs.rhs if spec.has_formula_response else specs
    order = patsy_column_order(rhs, spec.formula)
    if order is None or order == tuple(range(len(spec.column_names))):
        return
    names = list(spec.column_names)
    warnings.warn(
        f"start_params is an unnamed array, read in shardfit's (formulaic's) column "
        f"order {names}; statsmodels (patsy) orders the columns of {spec.formula!r} as "
        f"{[names[i] for i in order]}. Pass a pandas Series indexed by column name "
        "(statsmodels' params Series as it is) to start from the values you mean",
        UserWarning,
        stacklevel=4,
    )


# -- constructors ------------------------------------------------------------------------
def glm(
    formula: str,
    data: Any,
    *,
    family: str | Family = "gaussian",
    link: str | None = None,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = 10_000,
    alpha: float | None = None,
    var_power: float | None = None,
    freq_weights: str | None = None,
) -> GeneralizedLinearModel:
    """A generalized linear model on ``data`` from a formula.

    Parameters
    ----------
    formula : str
        A formulaic formula, e.g. ``"y ~ x1 + np.log(x2) + C(g)"``. Formula strings are
        evaluated as Python: never pass one from an untrusted source.
    data : Source, path, glob, pandas.DataFrame or pyarrow.Table
        The data, of any size.
    family : str or Family
        ``"gaussian"``, ``"binomial"``, ``"poisson"``, ``"gamma"``,
        ``"inverse_gaussian"``, ``"negative_binomial"``, ``"tweedie"``, a
        :class:`~shardfit.models.families.Family`, or a statsmodels family object
        (``sm.families.Tweedie(var_power=1.5)``: its link and parameters are kept).
    link : str, Link or statsmodels link, optional
        The link (the family's canonical one, statsmodels' default, when omitted); see
        :func:`~shardfit.models.families.get_family` for the names.
    weights : str, optional
        A column of positive weights with statsmodels' ``var_weights`` meaning: the
        variance of row ``i`` is ``scale * V(mu_i) / w_i``. A binomial response that is
        a proportion of ``n_i`` trials takes ``n_i`` as its weight (its ``llf`` is then
        the binomial log-likelihood of the counts, as in R and statsmodels'
        two-column form).
    freq_weights : str, optional
        A column of positive, finite frequency weights with statsmodels'
        ``freq_weights`` meaning: row ``i`` counts as ``f_i`` identical rows, so the
        residual degrees of freedom are ``sum(f) - rank`` (``nobs`` stays the number
        of rows; ``results.wnobs`` is ``sum(f)``) and the fit equals that of the
        expanded rows. May be given with ``weights``; a row missing it is dropped as
        missing (or raises with ``missing="raise"``). ``cov_type="cluster"``,
        ``"HAC"``, ``"hac-panel"`` and ``"hac-groupsum"`` are refused with them.
    offset, exposure : str, optional
        Columns added to the linear predictor (``log(exposure)`` for the exposure).
    missing : {"drop", "raise"}
        Drop rows missing a needed value (counted), or raise naming the first.
    max_levels : int
        The most levels a categorical column may have.
    alpha, var_power : float, optional
        The negative binomial's ``alpha`` (default 1) and Tweedie's ``var_power``
        (default 1).

    Returns
    -------
    GeneralizedLinearModel
        Call ``.fit()``.

    Examples
    --------
    >>> import shardfit
    >>> model = shardfit.glm(
    ...     "claims ~ age + C(region)", "policies/*.parquet", family="poisson",
    ...     exposure="years",
    ... )  # doctest: +SKIP
    >>> print(model.fit(cov_type="HC0").summary())  # doctest: +SKIP
    """
    return GeneralizedLinearModel(
        formula,
        data,
        get_family(family, link, **_family_params(alpha, var_power)),
        weights=weights,
        offset=offset,
        exposure=exposure,
        missing=missing,
        max_levels=max_levels,
        freq_weights=freq_weights,
    )


def _family_params(alpha: float | None, var_power: float | None) -> dict[str, float]:
    return {k: v for k, v in (("alpha", alpha), ("var_power", var_power)) if v is not None}


def logit(formula: str, data: Any, **options: Any) -> GeneralizedLinearModel:
    """Logistic regression: :func:`glm` with the binomial family and the logit link.

    Keyword options are those of :func:`glm` (``weights``, ``freq_weights``, ``offset``,
    ``missing``...).
    Formula strings are evaluated as Python: never pass one from an untrusted source.
    """
    return glm(formula, data, family="binomial", link="logit", **options)


def poisson(formula: str, data: Any, **options: Any) -> GeneralizedLinearModel:
    """Poisson regression with the log link: :func:`glm` with ``family="poisson"``.

    Keyword options are those of :func:`glm` (``exposure``, ``offset``, ``weights``,
    ``freq_weights``...).
    Formula strings are evaluated as Python: never pass one from an untrusted source.
    """
    return glm(formula, data, family="poisson", **options)


def GLM(
    endog: Any,
    exog: Any,
    family: str | Family = "gaussian",
    *,
    link: str | None = None,
    weights: Any = None,
    offset: Any = None,
    exposure: Any = None,
    npartitions: int = 1,
    alpha: float | None = None,
    var_power: float | None = None,
    freq_weights: Any = None,
) -> GeneralizedLinearModel:
    """A GLM on arrays, like ``statsmodels.GLM(y, X, family, var_weights=...,
    freq_weights=...)``.

    No intercept is added. ``family`` is a name, a shardfit family or a statsmodels
    family object (``sm.families.Poisson()``); ``weights`` are statsmodels'
    ``var_weights`` (row ``i``'s variance is ``scale * V(mu_i) / w_i``);
    ``freq_weights`` are its ``freq_weights`` (row ``i`` counts as ``f_i`` identical
    rows: see :func:`glm`); ``offset`` and ``exposure`` are arrays; ``npartitions`` splits the
    arrays into partitions; ``alpha`` and ``var_power`` are the negative binomial's and
    Tweedie's parameters (as in :func:`glm`). ``endog`` and ``exog`` may also be a
    design store's ``store.y`` and ``store.X`` (:func:`shardfit.write_design`), with
    ``weights=store.weights`` and ``offset=store.offset``: fitted out of core.
    """
    from shardfit.data.memory import from_pandas
    from shardfit.design.store import stored_column, stored_design

    family_params = _family_params(alpha, var_power)
    store = stored_design(endog, exog, weights=weights, offset=offset, exposure=exposure)
    if store is not None and freq_weights is not None:
        # A design store keeps the response, the design, weights and offset only.
        raise ValueError(
            "freq_weights cannot be given with a design store's X and y (a store keeps "
            "no frequency weights); fit the source data with shardfit.glm(..., "
            "freq_weights=column)"
        )
    if store is not None:
        return GeneralizedLinearModel(
            None,
            store.source(),
            get_family(family, link, **family_params),
            weights=stored_column(weights, "weights"),
            offset=stored_column(offset, "offset"),
            response=endog.names[0],
            **exog.plain_design(),
        )

    frame, names = _array_frame(
        endog,
        exog,
        {
            "__w__": ("weights", weights),
            "__freq__": ("freq_weights", freq_weights),
            "__offset__": ("offset", offset),
            "__exposure__": ("exposure", exposure),
        },
    )
    if freq_weights is not None:
        _check_freq_array(frame["__freq__"].to_numpy())
    return GeneralizedLinearModel(
        None,
        from_pandas(frame, npartitions),
        get_family(family, link, **family_params),
        weights="__w__" if weights is not None else None,
        offset="__offset__" if offset is not None else None,
        exposure="__exposure__" if exposure is not None else None,
        x_columns=tuple(names),
        response="__y__",
        freq_weights="__freq__" if freq_weights is not None else None,
    )


def _array_frame(
    endog: Any, exog: Any, arrays: dict[str, tuple[str, Any]]
) -> tuple[pd.DataFrame, list[str]]:
    """``exog``'s columns, ``endog`` as ``__y__`` and each given array of ``arrays``
    (``{column: (argument, values or None)}``) in one frame, and ``exog``'s names:
    a DataFrame's, else statsmodels' (``const``, x1, x2...). The arrays are checked
    to have one value per row (:func:`_row_array`)."""
    from shardfit.models.linear import _array_names

    X = np.asarray(exog, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    names = [str(n) for n in exog.columns] if isinstance(exog, pd.DataFrame) else _array_names(X)
    frame = pd.DataFrame(X, columns=names)
    frame["__y__"] = np.asarray(endog, dtype=np.float64)
    for column, (argument, values) in arrays.items():
        if values is not None:
            frame[column] = _row_array(values, argument, len(frame))
    return frame, names


def _row_array(values: Any, name: str, nrows: int) -> np.ndarray:
    """``values`` as one float per row of ``endog``, or a ValueError naming the argument
    (pandas' own message names neither it nor ``endog``). A scalar applies to every
    row, as it did before (statsmodels 0.15 fails on a scalar ``freq_weights``)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        return np.full(nrows, float(array))
    if array.ndim != 1 or array.shape[0] != nrows:
        raise ValueError(
            f"{name} has shape {array.shape}; endog has {nrows} rows, so it needs ({nrows},)"
        )
    return array


def _check_freq_array(freq: np.ndarray) -> None:
    """Refuse a zero, negative or infinite frequency weight of :func:`GLM` by its
    position in the array (a fit would name only the internal column ``__freq__``);
    NaN is a missing value, dropped (or raised) with the row as before."""
    bad = ~np.isnan(freq) & ~((freq > 0) & np.isfinite(freq))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DesignError(
            f"freq_weights[{i}] is {float(freq[i])!r}; frequency weights (how many times "
            f"each row occurs) must be finite and > 0 ({int(bad.sum())} such values)"
        )


def _row_counts(source: Source, counts: Any) -> dict[str, Any]:
    """The results' rows read, dropped and skipped (from the original data when the
    source is a design store's)."""
    read, dropped, skipped = source_counts(
        source, counts.read, dict(counts.dropped), counts.skipped
    )
    return {"rows_read": read, "rows_dropped": dropped, "rows_skipped": skipped}
