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

The covariance is the inverse of minus the Hessian in ``(beta, alpha)`` at the
estimates, statsmodels' default (``cov_type="nonrobust"``). The optimum is the same
as statsmodels': the score is zero at the same point, so params agree to the
convergence tolerance and the standard errors to the rounding of the Hessian.

Data without overdispersion (Poisson-like counts) have their likelihood maximum at
the boundary ``alpha = 0``; ``alpha`` then shrinks geometrically along the Newton
path. Below ``alpha_floor`` the fit stops with a :class:`AlphaBoundaryWarning`: the
coefficients are then the Poisson model's, and the Wald inference for ``alpha`` is
not valid (a boundary). statsmodels' own optimizers end somewhere on that flat path.
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
from shardfit.engine import PartitionCache, run_pass, session
from shardfit.engine.blas import single_threaded_blas
from shardfit.errors import DesignError
from shardfit.models.families import NegativeBinomial
from shardfit.models.glm_tasks import PrepareStatistic, PrepareTask
from shardfit.models.irls import ConvergenceWarning
from shardfit.models.negbin_tasks import NBStatistic, NBTask
from shardfit.results.negbin import NegativeBinomialResults

__all__ = ["AlphaBoundaryWarning", "NegativeBinomialModel", "negativebinomial"]

#: Below this ``alpha`` the fit stops at the boundary (see the module notes). The
#: NB2 sums lose digits as ``theta = 1 / alpha`` grows: ``lgamma(y + theta) -
#: lgamma(theta)`` cancels (about ``eps * theta log(theta)`` per row), and the score in
#: ``alpha``, of order ``alpha**2`` there, drowns in the digamma differences' rounding
#: near ``alpha = 1e-7`` (at 1e-8 the log-likelihood of underdispersed data came out
#: above the Poisson maximum, which it cannot be). At 1e-6 both keep ~3 digits or more.
ALPHA_FLOOR = 1e-6
#: The most step halvings of one Newton iteration.
MAX_HALVINGS = 40


class AlphaBoundaryWarning(UserWarning):
    """``alpha`` went to 0: no overdispersion, the fit is the Poisson model's."""


@dataclass
class _Newton:
    """Where a Newton run ended."""

    x: np.ndarray  # (beta, log alpha) or beta
    stat: NBStatistic  # the sums at x
    converged: bool
    iterations: int
    passes: int
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


def nb2_hessian(stat: NBStatistic, alpha: float) -> np.ndarray:
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
    state = _Newton(x, stat, False, 0, 0, [stat.llf])
    while state.iterations < maxiter:
        g, H = derivatives(state.stat, state.x)
        step = _step(g, H)
        if np.all(np.abs(step) <= tol * np.maximum(1.0, np.abs(state.x))):
            state.converged = True
            return state
        state.iterations += 1
        base = state.stat.llf
        # Rounding of the sums: near the optimum a full step may "lower" the
        # log-likelihood by a few ulps of it; that is no reason to halve.
        slack = 1e-12 * max(1.0, abs(base))
        t = 1.0
        for _ in range(MAX_HALVINGS):
            trial = state.x + t * step
            candidate = evaluate(trial)
            state.passes += 1
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

    Build it with :func:`negativebinomial`.
    """

    formula: str
    data: Any
    offset: str | None = None
    exposure: str | None = None
    missing: Literal["drop", "raise"] = "drop"
    max_levels: int = 10_000

    def fit(
        self,
        *,
        start_params: Any = None,
        maxiter: int = 100,
        tol: float = 1e-8,
        alpha_floor: float = ALPHA_FLOOR,
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
            The most Newton iterations (of the Poisson start, the fit and the null
            model, each).
        tol : float
            Converged when every coordinate of the Newton step in ``(beta, log
            alpha)`` is at most ``tol * max(1, |value|)``.
        alpha_floor : float
            Stop at the boundary when ``alpha`` falls below it (see the module notes).
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
        source = as_source(self.data)
        passes: list[list[Any]] = []
        with (
            session(backend, workers=workers) as sess,
            single_threaded_blas(),
            PartitionCache(sess, max_bytes=cache_bytes) as cache,
        ):
            started = time.perf_counter()
            learned = learn_design(
                self.formula,
                source,
                offset=self.offset,
                exposure=self.exposure,
                missing=self.missing,
                max_levels=self.max_levels,
                needs_response=True,
                summaries="levels",
                backend=sess,
                progress=progress,
            )
            passes.append(["schema", time.perf_counter() - started])
            spec = learned.spec
            names = tuple(spec.column_names)
            options = {"backend": sess, "progress": progress, "allreduce": True}

            def timed(task: Any, name: str) -> Any:
                began = time.perf_counter()
                out = run_pass(task, source, pass_name=name, **options)
                passes.append([name, time.perf_counter() - began])
                return out

            # The GLM prepare pass encodes, checks (y >= 0) and caches each partition.
            prepared: PrepareStatistic = timed(
                PrepareTask(spec, NegativeBinomial(), self.missing, cache.ref), "nb-prepare"
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

            def task(x: np.ndarray, kind: Any, null: bool = False) -> NBStatistic:
                beta, alpha = (x, 1.0) if kind != "nb2" else (x[:-1], float(np.exp(x[-1])))
                return timed(
                    NBTask(spec, self.missing, cache.ref, beta, alpha, kind, 0.0, null),
                    f"nb-{'null-' if null else ''}{kind}",
                )

            start = _start(start_params, names)
            if start is None:
                first = timed(
                    NBTask(
                        spec, self.missing, cache.ref, None, 1.0, "poisson-start",
                        prepared.sum_y / nobs,
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
                start = np.r_[poisson.x, max(0.05, moment)]
            x0 = np.r_[start[:-1], np.log(start[-1])]
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
                maxiter,
                tol,
                alpha_floor,
            )
        alpha = float(np.exp(fit.x[-1]))
        params = np.r_[fit.x[:-1], alpha]
        hessian = nb2_hessian(stat, alpha)
        try:
            cov = np.linalg.inv(-hessian)
        except np.linalg.LinAlgError:
            cov = np.full_like(hessian, np.nan)
        _warn(fit, null, maxiter, alpha_floor)
        read, dropped, skipped = source_counts(
            source, prepared.counts.read, dict(prepared.counts.dropped), prepared.counts.skipped
        )
        return NegativeBinomialResults(
            names=(*names, "alpha"),
            params_array=params,
            cov_array=cov,
            normalized_cov=cov,
            hessian=hessian,
            nobs=nobs,
            rank=len(names),
            k_constant=int(spec.intercept_index() is not None),
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
            extra={"passes": passes},
        )


def _warn(fit: _Newton, null: _Newton, maxiter: int, floor: float) -> None:
    trace = ", ".join(f"{v:.12g}" for v in fit.history)
    if fit.boundary:
        warnings.warn(
            f"alpha went below alpha_floor={floor:g} ({np.exp(fit.x[-1]):.3g}): the data "
            "show no overdispersion and the maximum likelihood is on the boundary "
            "alpha = 0, where the model is Poisson. The coefficients are (to that "
            "alpha) the Poisson fit's; the standard error, z and p-value of alpha are "
            "not valid at a boundary. Fit a Poisson model instead",
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
        Call ``.fit()``.

    Examples
    --------
    >>> import shardfit
    >>> res = shardfit.negativebinomial(
    ...     "claims ~ age + C(region)", "policies/*.parquet", exposure="years"
    ... ).fit()  # doctest: +SKIP
    >>> res.params["alpha"]  # doctest: +SKIP
    """
    return NegativeBinomialModel(formula, data, offset, exposure, missing, max_levels)
