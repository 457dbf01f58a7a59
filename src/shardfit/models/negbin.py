"""Negative binomial (NB2) regression with the dispersion ``alpha`` estimated.

The model of statsmodels' ``NegativeBinomial(y, X, loglike_method="nb2")`` and R's
``MASS::glm.nb`` (``theta = 1 / alpha``): ``y ~ NB(mu, alpha)`` with ``mu = exp(x'beta +
offset)`` and ``Var(y) = mu + alpha mu**2``, fitted by maximum likelihood jointly in
``(beta, alpha)``. (:func:`shardfit.glm` with ``family="negativebinomial"`` keeps
``alpha`` fixed.)

A fit is a sequence of passes on one backend session, all but the first on the
session's partition cache:

1. the schema pass learns the design; the GLM prepare pass
   (:class:`~shardfit.models.glm_tasks.PrepareTask`) encodes, checks (a negative
   count raises naming its partition, row and value) and caches every partition;
2. the start: a Poisson fit by Newton's method from IRLS's first step at
   statsmodels' GLM start ``mu = (y + mean(y)) / 2``, then statsmodels' moment
   estimate of ``alpha`` at the Poisson fit (at least 0.05), as
   ``NegativeBinomial.fit()`` starts;
3. Newton's method on the NB2 log-likelihood in ``(beta, log alpha)``, one pass per
   iteration: each pass returns the exact sums of the log-likelihood, score and
   Hessian at its point (:class:`~shardfit.models.negbin_tasks.NBTask`). ``log alpha``
   keeps ``alpha > 0`` without constraints; a step that lowers the log-likelihood is
   halved (one more pass each). It stops when the Newton step at the last evaluated
   point is below ``tol`` (relative to the parameters), so the reported estimates,
   log-likelihood and Hessian are all from the same pass;
4. the same on the constant-only model (with the offset) for ``llnull``, as
   statsmodels' ``llnull`` (alpha estimated there too).

Every pass after the prepare pass works in the dense columns centred (with an
intercept) and scaled by their means and spreads, as the GLM's IRLS
(:func:`shardfit.models.glm._column_transform`): ``gamma = T beta``. Raw columns far
from zero (x = 1e6 + U(0, 10)) make ``x'beta`` cancel and ``X'WX`` too
ill-conditioned to solve. Estimates, covariance and Hessian are mapped back to the
design's columns at the end.

The covariance is the inverse of minus the Hessian in ``(beta, alpha)`` at the
estimates, statsmodels' default (``cov_type="nonrobust"``). The optimum is the same
as statsmodels': the score is zero at the same point, so params agree to the
convergence tolerance and the standard errors to the rounding of the Hessian.

Robust covariances are statsmodels' ``NegativeBinomial.fit(cov_type=...)`` (its
``get_robustcov_results`` on ``score_obs`` with ``alpha``, not ``log alpha``, as the
last parameter), from one more pass at the estimates
(:class:`~shardfit.models.negbin_tasks.NBRobustTask`): the sandwich ``H^-1 M H^-1``
with ``H`` the Hessian in ``(beta, alpha)`` and ``M`` the sum of the per-row score
outer products (``"HC0"``; statsmodels' discrete models give ``"HC1"``-``"HC3"`` the
same matrix, no small-sample factor and no leverage), or of the per-cluster score
sums' outer products times ``G / (G - 1) (n - 1) / (n - k)`` with ``k`` counting
``alpha`` (``"cluster"``, one-way; inference with ``G - 1`` degrees of freedom under
``use_t``).

Data without overdispersion (Poisson-like counts) have their likelihood maximum at
the boundary ``alpha = 0``; ``alpha`` then shrinks geometrically along the Newton
path. Below ``alpha_floor`` the fit stops with a :class:`AlphaBoundaryWarning`: the
coefficients are then the Poisson model's, and the Wald inference for ``alpha`` is
not valid (a boundary; its row and column of the covariance are NaN). statsmodels' own
optimizers end somewhere on that flat path.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from shardfit.data.resolve import as_source
from shardfit.design.schema import learn_design
from shardfit.design.store import source_counts
from shardfit.engine import PartitionCache, session
from shardfit.engine.blas import single_threaded_blas
from shardfit.errors import DesignError
from shardfit.models.families import NegativeBinomial as NBFamily
from shardfit.models.glm import _column_transform, _intercept, _TimedPasses
from shardfit.models.glm_tasks import PrepareStatistic, PrepareTask
from shardfit.models.irls import ConvergenceWarning
from shardfit.models.linear import _cov_note_options, _covariance_columns, _groups
from shardfit.models.negbin_tasks import NBRobustStatistic, NBRobustTask, NBStatistic, NBTask
from shardfit.results.negbin import NegativeBinomialResults
from shardfit.stats.transform import ColumnTransform

__all__ = ["AlphaBoundaryWarning", "NegativeBinomial", "NegativeBinomialModel", "negativebinomial"]

#: Below this ``alpha`` the fit stops at the boundary (see the module notes). The
#: NB2 sums lose digits as ``theta = 1 / alpha`` grows: ``lgamma(y + theta) -
#: lgamma(theta)`` cancels (about ``eps * theta log(theta)`` per row), and the score in
#: ``alpha``, of order ``alpha**2`` there, drowns in the digamma differences' rounding
#: near ``alpha = 1e-7`` (at 1e-8 the log-likelihood of underdispersed data came out
#: above the Poisson maximum, which it cannot be). At 1e-6 both keep ~3 digits or more.
ALPHA_FLOOR = 1e-6
#: The most step halvings of one Newton iteration.
MAX_HALVINGS = 40
#: Machine epsilon: the step search's allowance for the log-likelihood's rounding.
EPS = float(np.finfo(np.float64).eps)
#: The fewest Newton iterations of the constant-only model (llnull).
NULL_MAXITER = 100
#: The covariances of :meth:`NegativeBinomialModel.fit` (statsmodels' discrete
#: models give HC0 to HC3 the same sandwich).
NB_COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster")


class AlphaBoundaryWarning(UserWarning):
    """``alpha`` went to 0: no overdispersion, the fit is the Poisson model's."""


@dataclass
class _Newton:
    """Where a Newton run ended."""

    x: np.ndarray  # (beta, log alpha) or beta
    stat: NBStatistic  # the sums at x
    converged: bool
    iterations: int
    history: list[float] = field(default_factory=list)
    boundary: bool = False  # alpha fell below the floor
    stalled: bool = False  # no step of any length raised the log-likelihood


def _nb2_derivatives(stat: NBStatistic, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score and Hessian in ``(beta, log alpha)`` from the sums at ``x``."""
    alpha = float(np.exp(x[-1]))
    p = stat.score.shape[0]
    g = np.empty(p + 1)
    g[:p] = stat.score
    g[p] = -stat.u / alpha  # alpha * d llf / d alpha
    H = np.empty((p + 1, p + 1))
    H[:p, :p] = -stat.info
    H[:p, p] = H[p, :p] = alpha * stat.cross
    # d2 llf / d(log alpha)^2 = alpha^2 H_aa + alpha g_a.
    H[p, p] = stat.u / alpha + stat.v / alpha**2
    return g, H


def _poisson_derivatives(stat: NBStatistic, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return stat.score, -stat.info


def _nb2_hessian(stat: NBStatistic, alpha: float) -> np.ndarray:
    """The Hessian in ``(beta, alpha)`` (statsmodels' ``_hessian_nb2``) from the sums."""
    p = stat.score.shape[0]
    H = np.empty((p + 1, p + 1))
    H[:p, :p] = -stat.info
    H[:p, p] = H[p, :p] = stat.cross
    H[p, p] = 2 * stat.u / alpha**3 + stat.v / alpha**4
    return H


def _step(g: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Newton's step ``(-H)^-1 g``; where ``-H`` is not positive definite (far from the
    optimum the alpha block can be), the step of ``|H|`` (eigenvalues' absolute
    values, floored), which still ascends."""
    info = -H
    try:
        factor = np.linalg.cholesky(info)
        return np.linalg.solve(factor.T, np.linalg.solve(factor, g))
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(info)
        floor = max(float(np.max(np.abs(values))), 1.0) * 1e-10
        return vectors @ ((vectors.T @ g) / np.maximum(np.abs(values), floor))


def _newton(
    evaluate: Callable[[np.ndarray], NBStatistic],
    derivatives: Callable[[NBStatistic, np.ndarray], tuple[np.ndarray, np.ndarray]],
    x: np.ndarray,
    stat: NBStatistic,
    maxiter: int,
    tol: float,
    floor: float | None = None,
) -> _Newton:
    """Maximize by Newton's method with step halving, one pass per evaluation.

    Stops when the step at the last evaluated point is at most ``tol * max(1, |x|)``
    in every coordinate (converged), after ``maxiter`` iterations, or (with ``floor``)
    when ``exp(x[-1])``, alpha, falls below ``floor``.
    """
    state = _Newton(x, stat, False, 0, [stat.llf])
    while state.iterations < maxiter:
        g, H = derivatives(state.stat, state.x)
        step = _step(g, H)
        if np.all(np.abs(step) <= tol * np.maximum(1.0, np.abs(state.x))):
            state.converged = True
            return state
        state.iterations += 1
        base = state.stat.llf
        # Rounding of the sums: near the optimum a full step may "lower" the
        # log-likelihood by its rounding error, no reason to halve. That error is
        # about eps times the sum of its terms' sizes, which for counts of 1e6
        # (lgamma(y + theta) - lgamma(y + 1): terms of 1e7 each) is far more than
        # ulps of the sum: 1e-12 |llf| alone rejected every Newton step of the null
        # model (by noise of 1e-6), which then crept for maxiter iterations.
        slack = max(1e-12 * max(1.0, abs(base)), 4 * EPS * state.stat.llf_abs)
        t = 1.0
        for _ in range(MAX_HALVINGS):
            trial = state.x + t * step
            candidate = evaluate(trial)
            if np.isfinite(candidate.llf) and candidate.llf >= base - slack:
                break
            t /= 2
        else:
            state.stalled = True
            return state
        state.x, state.stat = trial, candidate
        state.history.append(candidate.llf)
        if floor is not None and np.exp(state.x[-1]) < floor:
            state.boundary = True
            return state
    return state


@dataclass(frozen=True)
class NegativeBinomialModel:
    """An NB2 regression with ``alpha`` estimated, fitted with :meth:`fit`.

    Build it with :func:`negativebinomial` (a formula) or :func:`NegativeBinomial`
    (arrays).
    """

    formula: str | None
    data: Any
    offset: str | None = None
    exposure: str | None = None
    missing: Literal["drop", "raise"] = "drop"
    max_levels: int = 10_000
    # A plain-columns design (formula None), as :class:`GeneralizedLinearModel`'s:
    # :func:`NegativeBinomial`'s arrays or a design store's columns.
    x_columns: tuple[str, ...] | None = None
    response: str | None = None
    sparse_x: tuple[str, ...] = ()
    x_constant: str | None = None
    find_constant: bool = True

    def fit(
        self,
        *,
        start_params: Any = None,
        maxiter: int = 100,
        tol: float = 1e-8,
        alpha_floor: float = ALPHA_FLOOR,
        cov_type: str = "nonrobust",
        cov_kwds: dict[str, Any] | None = None,
        use_t: bool = False,
        backend: Any = None,
        workers: int | None = None,
        cache_bytes: int | None = None,
        progress: bool = False,
    ) -> NegativeBinomialResults:
        """Maximize the NB2 log-likelihood jointly in ``(beta, alpha)``.

        Parameters
        ----------
        start_params : array_like or pandas.Series, optional
            ``beta`` then ``alpha`` (a Series is aligned by name, ``"alpha"`` last, as
            statsmodels' ``params``); by default a Poisson fit and statsmodels' moment
            estimate of ``alpha`` (see the module notes).
        maxiter : int
            The most Newton iterations (of the Poisson start and of the fit, each; the
            constant-only model of ``llnull`` takes up to ``max(maxiter, 100)``, as
            statsmodels fits it whatever ``maxiter``).
        tol : float
            Converged when every coordinate of the Newton step in ``(gamma, log
            alpha)`` is at most ``tol * max(1, |value|)``, ``gamma`` the coefficients
            of the centred, scaled columns (see the module notes).
        alpha_floor : float
            Stop at the boundary when ``alpha`` falls below it (see the module notes).
        cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"}
            The covariance of the estimates, as statsmodels'
            ``NegativeBinomial.fit(cov_type=...)``: ``"nonrobust"`` the inverse of minus
            the Hessian in ``(beta, alpha)``; ``"HC0"`` the sandwich of the per-row
            scores (``"HC1"``-``"HC3"`` are the same matrix, as in statsmodels' discrete
            models: no small-sample factor, no leverage); ``"cluster"`` the one-way
            cluster sandwich with ``G / (G - 1) (n - 1) / (n - k)``, ``k`` the
            coefficients plus ``alpha``. A robust covariance takes one more pass.
        cov_kwds : dict, optional
            ``{"groups": column}`` for ``"cluster"``: the data's column of cluster ids
            (any values; a cluster may span partitions; rows missing it are dropped, or
            raise with ``missing="raise"``). Nothing for the others. A fit on arrays
            (:func:`NegativeBinomial`) or a design store has no such column.
        use_t : bool
            Inference (p-values, intervals) from Student's t: with ``G - 1`` degrees of
            freedom for ``"cluster"``, else ``df_resid``; by default the normal, as
            statsmodels.
        backend, workers
            Where the passes run (see :func:`shardfit.engine.run_pass`).
        cache_bytes : int, optional
            In-memory bound per worker of the encoded-partition cache (see
            :meth:`shardfit.GeneralizedLinearModel.fit`).
        progress : bool
            Show progress bars.

        Returns
        -------
        NegativeBinomialResults

        Warns
        -----
        ConvergenceWarning
            Newton's method stopped before converging (the log-likelihood trace is in
            the message).
        AlphaBoundaryWarning
            ``alpha`` went below ``alpha_floor``.
        """
        if isinstance(maxiter, bool) or not isinstance(maxiter, int) or maxiter < 1:
            raise ValueError(f"The 'maxiter' parameter must be an int >= 1. Got {maxiter!r}.")
        if not tol > 0:
            raise ValueError(f"The 'tol' parameter must be > 0. Got {tol!r}.")
        if not 0 < alpha_floor < 1:
            raise ValueError(f"The 'alpha_floor' parameter must be in (0, 1). Got {alpha_floor!r}.")
        _check_covariance(cov_type, cov_kwds)
        if not isinstance(use_t, bool):
            raise ValueError(f"The 'use_t' parameter must be True or False. Got {use_t!r}.")
        source = as_source(self.data)
        # The cluster column, checked to be in the data (a design store has none).
        groups, _, group_columns = _covariance_columns(source, cov_type, cov_kwds)
        assert groups is None or isinstance(groups, str)  # two-way refused above
        passes = _TimedPasses()  # each pass's wall time (results.extra["passes"])
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
                response=self.response,
                sparse_x=self.sparse_x,
                x_constant=self.x_constant,
                find_constant=self.find_constant,
                offset=self.offset,
                exposure=self.exposure,
                # Read with the design, so a row missing its cluster id is dropped
                # (counted) by every pass alike.
                extra_columns=group_columns,
                missing=self.missing,
                max_levels=self.max_levels,
                needs_response=True,
                summaries="levels",
                backend=sess,
                progress=progress,
            )
            passes.passes.append(["schema", time.perf_counter() - started])
            spec = learned.spec
            names = tuple(spec.column_names)
            options = {"backend": sess, "progress": progress, "allreduce": True}

            def timed(task: Any, name: str) -> Any:
                return passes(task, source, pass_name=name, **options)

            # The GLM prepare pass encodes, checks (y >= 0) and caches each partition.
            prepared: PrepareStatistic = timed(
                PrepareTask(spec, NBFamily(), self.missing, cache.ref), "nb-prepare"
            )
            nobs = prepared.nobs
            if nobs == 0:
                raise DesignError(
                    f"no rows of {source.name!r} have every value the model needs "
                    f"({prepared.counts.read:,} rows read)"
                )
            if prepared.sum_y <= 0:
                raise DesignError(
                    f"every response of {source.name!r} is 0: the negative binomial "
                    "model's coefficients have no finite estimate"
                )

            # Newton's method runs in the centred, scaled columns (as the GLM's
            # IRLS): gamma = T beta. See NBTask's ``transform``.
            intercept = _intercept(spec, prepared)
            transform = _column_transform(spec, prepared, intercept)
            to_gamma = _to_transformed(transform, intercept)

            def task(x: np.ndarray, kind: Any, null: bool = False) -> NBStatistic:
                beta, alpha = (x, 1.0) if kind != "nb2" else (x[:-1], float(np.exp(x[-1])))
                return timed(
                    NBTask(
                        spec, self.missing, cache.ref, beta, alpha, kind, 0.0, null,
                        None if null else transform,
                    ),
                    f"nb-{'null-' if null else ''}{kind}",
                )  # fmt: skip

            start = _start(start_params, names)
            if start is None:
                first = timed(
                    NBTask(
                        spec, self.missing, cache.ref, None, 1.0, "poisson-start",
                        prepared.sum_y / nobs, False, transform,
                    ),
                    "nb-poisson-start",
                )  # fmt: skip
                _check_rank(first.info, names)
                beta0 = np.linalg.solve(first.info, first.score)
                poisson = _newton(
                    lambda x: task(x, "poisson"),
                    _poisson_derivatives,
                    beta0,
                    task(beta0, "poisson"),
                    maxiter,
                    tol,
                )
                df_resid = nobs - len(names)
                moment = poisson.stat.u / df_resid if df_resid > 0 else 0.0
                x0 = np.r_[poisson.x, np.log(max(0.05, moment))]
            else:
                x0 = np.r_[to_gamma @ start[:-1], np.log(start[-1])]
            stat0 = task(x0, "nb2")
            _check_rank(stat0.info, names)
            fit = _newton(
                lambda x: task(x, "nb2"), _nb2_derivatives, x0, stat0, maxiter, tol, alpha_floor
            )
            # The null model: intercept only, with the offset; from the constant-only
            # Poisson fit (closed form) and the fit's alpha.
            stat = fit.stat
            const = np.log(stat.sum_y / stat.sum_exp_offset)
            x_null = np.array([const, fit.x[-1]])
            null = _newton(
                lambda x: task(x, "nb2", True),
                _nb2_derivatives,
                x_null,
                task(x_null, "nb2", True),
                # llnull describes the data, not the fit: statsmodels fits the null
                # model with its own limits whatever ``maxiter``, and two parameters
                # from the closed-form start need a handful of iterations.
                max(maxiter, NULL_MAXITER),
                tol,
                alpha_floor,
            )
            robust: NBRobustStatistic | None = None
            if cov_type != "nonrobust":
                # One more pass at the estimates: the per-row scores' meat or cluster sums.
                point = NBTask(
                    spec, self.missing, cache.ref, fit.x[:-1], float(np.exp(fit.x[-1])), "nb2",
                    0.0, False, transform,
                )  # fmt: skip
                robust = timed(NBRobustTask(point, groups), f"nb-robust-{cov_type}")
        alpha = float(np.exp(fit.x[-1]))
        # Back to the design's columns: beta = T^-1 gamma, cov = T^-1 cov_gamma T^-T,
        # H = T' H_gamma T (alpha's row and column unchanged).
        p = len(names)
        extended = np.eye(p + 1)
        extended[:p, :p] = to_gamma
        back = np.eye(p + 1)
        back[:p, :p] = _from_transformed(to_gamma, intercept)
        params = np.r_[back[:p, :p] @ fit.x[:-1], alpha]
        hessian_gamma = _nb2_hessian(stat, alpha)
        hessian = extended.T @ hessian_gamma @ extended
        try:
            bread = np.linalg.inv(-hessian_gamma)
        except np.linalg.LinAlgError:
            bread = np.full_like(hessian, np.nan)
        normalized = back @ bread @ back.T
        cov, n_groups = normalized, None
        if robust is not None:
            middle, n_groups = _middle(robust, nobs, p + 1)
            cov = back @ (bread @ middle @ bread) @ back.T
        if fit.boundary:
            # At alpha ~ 1e-6 the curvature in alpha (terms of 1 / alpha**4) is
            # rounding noise: its variance came out positive or negative by chance (a
            # RuntimeWarning from bse). No Wald inference for alpha there: NaN.
            cov[-1, :] = cov[:, -1] = np.nan
            normalized[-1, :] = normalized[:, -1] = np.nan
        k_constant = 1 if intercept is not None or _implicit_constant(stat) else 0
        _warn(fit, null, maxiter, alpha_floor)
        read, dropped, skipped = source_counts(
            source, prepared.counts.read, dict(prepared.counts.dropped), prepared.counts.skipped
        )
        return NegativeBinomialResults(
            names=(*names, "alpha"),
            params_array=params,
            cov_array=cov,
            # statsmodels' normalized_cov_params: the nonrobust one whatever cov_type.
            normalized_cov=normalized,
            hessian=hessian,
            nobs=nobs,
            rank=len(names),
            k_constant=k_constant,
            llf=float(stat.llf),
            llnull=float(null.stat.llf),
            converged=fit.converged,
            iterations=fit.iterations,
            llf_history=tuple(float(v) for v in fit.history),
            alpha_at_boundary=fit.boundary,
            null_converged=null.converged or null.boundary,
            data_name=source.name,
            formula=self.formula,
            rows_read=read,
            rows_dropped=dropped,
            rows_skipped=skipped,
            spec=spec,
            extra={"passes": passes.passes, **_cov_note_options(cov_type, groups, None)},
            cov_type=cov_type,
            use_t=use_t,
            # statsmodels' df_correction default: cluster inference on G - 1.
            df_resid_inference=None if n_groups is None else float(n_groups - 1),
            n_groups=n_groups,
        )


def _check_covariance(cov_type: Any, cov_kwds: dict[str, Any] | None) -> None:
    """Refuse, before any pass, a covariance the NB fit does not compute, or options
    it does not use, naming what it supports."""
    if cov_type not in NB_COV_TYPES:
        raise ValueError(
            f"cov_type={cov_type!r} is not supported by the negative binomial fit: use one "
            f"of {list(NB_COV_TYPES)} (HC1-HC3 equal HC0 for it, as in statsmodels' "
            "discrete models; HAC-type covariances are not available)"
        )
    kwds = dict(cov_kwds or {})
    if cov_type == "cluster":
        groups = _groups(cov_type, kwds)  # one column name, else a clear error
        if not isinstance(groups, str):
            raise ValueError(
                f"cov_kwds={{'groups': {kwds.get('groups')!r}}}: the negative binomial fit "
                "clusters on one column only (two-way clustering is not supported)"
            )
        kwds.pop("groups")
    if kwds:
        raise ValueError(
            f"unknown cov_kwds for cov_type={cov_type!r}: {sorted(kwds)}"
            + (" (only 'groups')" if cov_type == "cluster" else " (it takes none)")
        )


def _middle(robust: NBRobustStatistic, nobs: int, k_params: int) -> tuple[np.ndarray, int | None]:
    """The sandwich's middle in the transformed columns, and the number of clusters:
    HC0's score outer products, or the cluster sums' times statsmodels' ``cov_cluster``
    factor ``G / (G - 1) (n - 1) / (n - k)`` (``k`` counts alpha, a column of its
    ``score_obs``)."""
    if robust.clusters is None:
        assert robust.meat is not None
        return robust.meat, None
    sums = robust.clusters.sums
    n_groups = len(robust.clusters.keys)
    if n_groups < 2:
        raise DesignError(f"cluster covariance needs at least 2 clusters; found {n_groups}")
    correction = n_groups / (n_groups - 1) * (nobs - 1) / (nobs - k_params)
    return sums.T @ sums * correction, n_groups


def _warn(fit: _Newton, null: _Newton, maxiter: int, floor: float) -> None:
    trace = ", ".join(f"{v:.12g}" for v in fit.history)
    if fit.boundary:
        warnings.warn(
            f"alpha went below alpha_floor={floor:g} ({np.exp(fit.x[-1]):.3g}): the data "
            "show no overdispersion and the maximum likelihood is on the boundary "
            "alpha = 0, where the model is Poisson. The coefficients are (to that "
            "alpha) the Poisson fit's; the standard error, z and p-value of alpha are "
            "not valid at a boundary (NaN). Fit a Poisson model instead",
            AlphaBoundaryWarning,
            stacklevel=3,
        )
    elif not fit.converged:
        why = (
            "no step along Newton's direction raised the log-likelihood"
            if fit.stalled
            else f"maxiter={maxiter} iterations were not enough"
        )
        warnings.warn(
            f"Newton's method did not converge ({why}); log-likelihood trace: [{trace}]",
            ConvergenceWarning,
            stacklevel=3,
        )
    if not (null.converged or null.boundary):
        warnings.warn(
            "the constant-only model (llnull) did not converge; llnull trace: ["
            + ", ".join(f"{v:.12g}" for v in null.history)
            + "]",
            ConvergenceWarning,
            stacklevel=3,
        )


def _to_transformed(transform: ColumnTransform, intercept: int | None) -> np.ndarray:
    """``T`` with ``gamma = T beta``: the coefficients of the transformed columns
    ``(x_j - shift_j) / scale_j``, the intercept absorbing ``sum_j shift_j beta_j``."""
    p = transform.p
    shift = np.asarray(transform.shift[:p], dtype=np.float64)
    T = np.diag(np.asarray(transform.scale[:p], dtype=np.float64))
    if intercept is not None:
        T[intercept, :] += shift  # the intercept's own shift is 0
    return T


def _from_transformed(T: np.ndarray, intercept: int | None) -> np.ndarray:
    """``T^-1`` in closed form (``beta_j = gamma_j / scale_j`` and ``beta_0 = gamma_0 -
    sum_j shift_j beta_j``), without a solve's rounding on entries of 1e6."""
    scale = np.diag(T).copy()
    M = np.diag(1.0 / scale)
    if intercept is not None:
        M[intercept, :] = -T[intercept, :] / scale
        M[intercept, intercept] = 1.0
    return M


def _implicit_constant(stat: NBStatistic) -> bool:
    """Whether the constant lies in the design's column space (``0 + C(g)``), as
    statsmodels' ``k_constant`` finds it: the weighted constant's residual on the
    columns, ``1 - u'u / sum(w)`` with ``L u = X'w`` (``X'WX = L L'``), is 0 up to
    rounding."""
    if stat.sum_w <= 0:
        return False
    d = np.sqrt(np.diag(stat.info))
    if not np.all(d > 0):
        return False
    try:
        factor = np.linalg.cholesky(stat.info / np.outer(d, d))
    except np.linalg.LinAlgError:
        return False
    u = np.linalg.solve(factor, stat.xw / d)
    residual = 1.0 - float(u @ u) / stat.sum_w
    # Its rounding is about eps * cond; 1e-13 (the constant 3e-7 of its length away
    # from the span) keeps out columns merely far from zero: ``0 + x`` with x = 1e6 +
    # U(0, 10) leaves 9e-12, and statsmodels' rank test counts no constant there.
    diagonal = np.diag(factor)
    cond = float((diagonal.max() / diagonal.min()) ** 2)
    return residual <= min(max(1e-13, 64 * EPS * cond), 1e-8)


def _check_rank(info: np.ndarray, names: tuple[str, ...]) -> None:
    """Raise naming the columns collinear with earlier ones (``X'WX`` singular): the
    Newton system has no unique solution."""
    d = np.sqrt(np.diag(info))
    if np.all(d > 0):
        scaled = info / np.outer(d, d)
        if np.linalg.matrix_rank(scaled, tol=1e-10) == len(names):
            return
    aliased = []
    kept: list[int] = []
    for j in range(len(names)):
        trial = [*kept, j]
        sub = info[np.ix_(trial, trial)]
        ds = np.sqrt(np.maximum(np.diag(sub), 0))
        if ds[-1] == 0:
            aliased.append(names[j])
            continue
        scaled = sub / np.outer(np.where(ds > 0, ds, 1), np.where(ds > 0, ds, 1))
        if np.linalg.matrix_rank(scaled, tol=1e-10) < len(trial):
            aliased.append(names[j])
        else:
            kept.append(j)
    raise DesignError(
        f"the design is rank deficient: {aliased} are collinear with earlier columns "
        "(or all zero); drop them from the formula"
    )


def _start(start_params: Any, names: tuple[str, ...]) -> np.ndarray | None:
    if start_params is None:
        return None
    full = (*names, "alpha")
    if isinstance(start_params, pd.Series):
        missing = [name for name in full if name not in start_params.index]
        if missing:
            raise ValueError(f"start_params lacks {missing}")
        values = start_params.loc[list(full)].to_numpy(dtype=np.float64)
    else:
        values = np.asarray(start_params, dtype=np.float64).ravel()
    if values.shape != (len(full),) or not np.all(np.isfinite(values)) or not values[-1] > 0:
        raise ValueError(
            f"start_params needs {len(full)} finite values ({list(full)}), alpha > 0; "
            f"got {values.tolist()}"
        )
    return values


def negativebinomial(
    formula: str,
    data: Any,
    *,
    offset: str | None = None,
    exposure: str | None = None,
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = 10_000,
) -> NegativeBinomialModel:
    """Negative binomial (NB2) regression with ``alpha`` estimated, out of core.

    statsmodels' ``NegativeBinomial(y, X, loglike_method="nb2")`` and R's
    ``MASS::glm.nb`` (whose ``theta`` is ``1 / alpha``); see
    :mod:`shardfit.models.negbin`.

    Parameters
    ----------
    formula : str
        A formulaic formula, e.g. ``"days ~ sex + C(age)"``. Formula strings are
        evaluated as Python: never pass one from an untrusted source.
    data : Source, path, glob, pandas.DataFrame or pyarrow.Table
        The data, of any size. Counts must be >= 0 (non-integer values are accepted,
        as statsmodels does).
    offset, exposure : str, optional
        Columns added to the linear predictor (``log(exposure)`` for the exposure).
    missing : {"drop", "raise"}
        Drop rows missing a needed value (counted), or raise naming the first.
    max_levels : int
        The most levels a categorical column may have.

    Returns
    -------
    NegativeBinomialModel
        Call ``.fit()`` (``cov_type="HC0"`` or ``"cluster"`` for statsmodels' robust
        sandwiches: see :meth:`NegativeBinomialModel.fit`).

    Examples
    --------
    >>> import shardfit
    >>> res = shardfit.negativebinomial(
    ...     "claims ~ age + C(region)", "policies/*.parquet", exposure="years"
    ... ).fit()  # doctest: +SKIP
    >>> res.params["alpha"]  # doctest: +SKIP
    >>> clustered = shardfit.negativebinomial(
    ...     "claims ~ age", "policies/*.parquet", exposure="years"
    ... ).fit(cov_type="cluster", cov_kwds={"groups": "region"})  # doctest: +SKIP
    >>> clustered.get_prediction(new).summary_frame(alpha=0.05)  # doctest: +SKIP
    """
    return NegativeBinomialModel(formula, data, offset, exposure, missing, max_levels)


def NegativeBinomial(
    endog: Any,
    exog: Any,
    *,
    offset: Any = None,
    exposure: Any = None,
    npartitions: int = 1,
    missing: Literal["drop", "raise"] = "drop",
    loglike_method: str = "nb2",
) -> NegativeBinomialModel:
    """NB2 regression with ``alpha`` estimated on arrays, like
    ``statsmodels.discrete.discrete_model.NegativeBinomial(endog, exog,
    loglike_method="nb2", offset=..., exposure=...)``.

    Parameters
    ----------
    endog : array_like
        The counts (>= 0), one per row of ``exog``.
    exog : array_like or pandas.DataFrame
        The design; no intercept is added (``sm.add_constant``'s column is one). The
        parameters are named as statsmodels names them: a DataFrame's columns, else
        ``const`` for a constant column and x1, x2... for the others; then ``alpha``.
        May also be a design store's ``store.X`` with ``endog=store.y`` (and
        ``offset=store.offset``): fitted out of core.
    offset, exposure : array_like, optional
        One value per row (a scalar applies to every row): added to the linear
        predictor (``log(exposure)`` for the exposure).
    npartitions : int
        Split the rows into this many partitions.
    missing : {"drop", "raise"}
        Drop rows with a NaN (counted), or raise naming the first.
    loglike_method : {"nb2"}
        statsmodels' argument, accepted for code written for it: only NB2
        (``Var(y) = mu + alpha mu**2``) is fitted.

    Returns
    -------
    NegativeBinomialModel
        Call ``.fit()`` (see :meth:`NegativeBinomialModel.fit`).

    Examples
    --------
    >>> import numpy as np, shardfit
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([np.ones(500), rng.normal(size=500)])
    >>> y = rng.negative_binomial(2.0, 1 / (1 + 0.5 * np.exp(0.5 + 0.3 * X[:, 1])))
    >>> res = shardfit.NegativeBinomial(y, X).fit(backend="serial")
    >>> list(res.params.index)
    ['const', 'x1', 'alpha']
    """
    from shardfit.data.memory import from_pandas
    from shardfit.design.store import stored_column, stored_design
    from shardfit.models.glm import _array_frame

    if loglike_method != "nb2":
        # nb1 and the geometric model have other likelihoods: fitting NB2 under their
        # name would give numbers that match neither.
        raise ValueError(
            f"loglike_method={loglike_method!r} is not supported: shardfit fits the NB2 "
            "model only (Var(y) = mu + alpha mu**2, loglike_method='nb2')"
        )
    store = stored_design(endog, exog, offset=offset, exposure=exposure)
    if store is not None:
        return NegativeBinomialModel(
            None,
            store.source(),
            offset=stored_column(offset, "offset"),
            missing=missing,
            response=endog.names[0],
            **exog.plain_design(),
        )
    frame, names = _array_frame(
        endog, exog, {"__offset__": ("offset", offset), "__exposure__": ("exposure", exposure)}
    )
    return NegativeBinomialModel(
        None,
        from_pandas(frame, npartitions),
        offset="__offset__" if offset is not None else None,
        exposure="__exposure__" if exposure is not None else None,
        missing=missing,
        x_columns=tuple(names),
        response="__y__",
    )
