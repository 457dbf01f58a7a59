"""The IRLS driver of a GLM fit: statsmodels' iteration, one pass per step.

Pure driver-side logic on merged statistics: solving each weighted least-squares step
(Gram by Cholesky, or TSQR), the stopping rule on the deviance history, the null
model's intercept with an offset, separation detection, and robust covariances.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import numpy as np

from shardfit.data.partition import Source
from shardfit.errors import ConvergenceError, DesignError
from shardfit.models.families import Family
from shardfit.models.glm_final import FinalStatistic, NullStatistic, NullTask
from shardfit.models.glm_tasks import IrlsStatistic, PrepareStatistic
from shardfit.models.hac import HAC_COV_TYPES, HacOptions, hac_middle
from shardfit.models.least_squares import (
    QR_ALIAS_TOL,
    LeastSquaresSolution,
    cholesky_with_aliasing,
    psd_factor,
    solve_from_r,
)
from shardfit.models.linear_tasks import TwoWayClusterScores
from shardfit.stats.transform import ColumnTransform

__all__ = [
    "ConvergenceWarning",
    "IrlsOptions",
    "IrlsState",
    "PerfectSeparationError",
    "PerfectSeparationWarning",
    "fit_null_intercept",
    "glm_covariance",
    "run_irls",
    "separated_terms",
]


class ConvergenceWarning(UserWarning):
    """IRLS stopped at ``maxiter`` before the deviance settled."""


class PerfectSeparationWarning(UserWarning):
    """A binomial model's fitted probabilities reach 0 or 1: the data are separated."""


class PerfectSeparationError(ConvergenceError):
    """Separation detected with ``separation="raise"``."""


@dataclass
class IrlsState:
    """What the driver keeps between passes."""

    beta: np.ndarray | None
    solution: LeastSquaresSolution | None = None
    history: list[float] = field(default_factory=lambda: [float("inf")])
    params_history: list[np.ndarray] = field(default_factory=list)
    scale: float = 1.0
    last: IrlsStatistic | None = None
    converged: bool = False
    iterations: int = 0
    kind: Literal["gram", "qr"] = "gram"


@dataclass(frozen=True)
class IrlsOptions:
    """The fixed settings of an IRLS run."""

    maxiter: int
    tol: float
    rtol: float
    method: str
    cond_threshold: float
    rank_deficient: str
    rank_tol: float = QR_ALIAS_TOL
    #: statsmodels' ``scale``: None (Pearson's chi2 / df_resid where the family's
    #: scale is free, else 1), ``"x2"``, ``"dev"`` (deviance / df_resid) or a number.
    scale: float | str | None = None


def scale_estimate(
    scale: float | str | None, family: Family, pearson_chi2: float, deviance: float, df_resid: int
) -> float:
    """statsmodels' ``GLM.estimate_scale`` for the ``scale`` option of ``fit``."""
    if scale is None:
        return pearson_chi2 / df_resid if family.free_scale else 1.0
    if isinstance(scale, str):
        return (pearson_chi2 if scale.lower() == "x2" else deviance) / df_resid
    return float(scale)


def _solve(
    stat: IrlsStatistic, transform: ColumnTransform, intercept: int | None, rank_tol: float
) -> Any:
    transform = transform if stat.transform is None else stat.transform
    if stat.qr is not None:
        r = stat.qr.full_r()
        return solve_from_r(r, transform, intercept=intercept, tol=rank_tol)
    assert stat.cross is not None
    r = cholesky_with_aliasing(stat.cross, transform.p)
    return solve_from_r(r, transform, intercept=intercept, tol=0.0)


#: A deviance this fraction of the start's, or less, is an exact fit (rounding only).
EXACT_FIT = 1e-24


def _ratio(deviance: float, scale: float) -> float:
    """``deviance / scale`` with NumPy's semantics (a zero scale gives inf, as in
    statsmodels, rather than an exception), except that an exact fit (zero deviance,
    and so a zero estimated scale) is 0, not nan: it has converged."""
    if deviance == 0.0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(deviance) / np.float64(scale))


def run_irls(
    irls_pass: Any,
    start: np.ndarray | None,
    family: Family,
    transform: ColumnTransform,
    intercept: int | None,
    nobs: float,
    options: IrlsOptions,
    names: tuple[str, ...],
    first: IrlsStatistic | None = None,
) -> IrlsState:
    """statsmodels' ``_fit_irls``, one pass per deviance evaluation.

    ``first``, when given, is the first pass's statistic at ``start``, already taken
    (with the prepare pass: see :class:`~shardfit.models.glm_tasks.FirstStep`).

    ``irls_pass(beta, kind, last_likely, solution)`` runs one pass; ``last_likely``
    says the deviance has nearly settled (or the pass is the last ``maxiter`` allows),
    so the pass may as well evaluate the final fit measures at ``beta`` too;
    ``solution`` is the solve that gave ``beta`` (``None`` at the start).
    ``nobs`` is the number of rows, or the sum of the frequency weights (statsmodels'
    ``wnobs``), whose difference with the rank is the scale's degrees of freedom.

    Pass ``k`` evaluates the deviance at ``beta_k`` and accumulates the Gram that
    gives ``beta_{k+1}``; convergence of ``beta_k`` is known after pass ``k``, so the
    estimate's covariance is that of pass ``k - 1``'s Gram, as in statsmodels. With
    ``method="auto"``, a Gram whose design is ill-conditioned (or looks rank
    deficient) is recomputed once as a TSQR factor, and TSQR is used from then on.
    """
    state = IrlsState(beta=start)
    state.kind = "qr" if options.method == "qr" else "gram"

    def threshold(new: float) -> float:
        return options.tol + options.rtol * abs(new)

    def likely_last(old: float, new: float) -> bool:
        # Newton's quadratic convergence: the next change is about change**2 / |dev|;
        # expect convergence when that is within the threshold.
        change = abs(old - new)
        return bool(change * change <= threshold(new) * max(abs(new), 1e-300))

    def solve(stat: IrlsStatistic, previous: Any) -> tuple[IrlsStatistic, Any]:
        """Solve from ``stat``, the pass at ``previous``'s coefficients (``None``: at
        the start)."""
        _check_finite(stat, state.history[1:], family, previous is None and start is None)
        solution = _solve(stat, transform, intercept, options.rank_tol)
        suspicious = solution.condition > options.cond_threshold or not solution.kept.all()
        if options.method == "auto" and state.kind == "gram" and suspicious:
            state.kind = "qr"
            beta = start if previous is None else previous.params
            stat = irls_pass(beta, "qr", False, previous)
            solution = _solve(stat, transform, intercept, options.rank_tol)
        if previous is not None and np.isnan(stat.deviance) and not solution.kept.all():
            # The step left the family's range, which the link does not keep the means
            # in (a binomial mean above 1 under the log link): the clipped variances
            # give those rows weights of ~1e15, and a Gram dominated by a few rows
            # looks rank deficient. That is a divergence, not a collinear design (IRLS
            # may come back into the range: only with aliasing does it stop here).
            aliased = [names[j] for j in np.flatnonzero(~solution.kept)]
            _raise_diverged(
                state.history[1:],
                f"the {family.name} family's deviance is NaN (fitted means outside its "
                f"range, which the {family.link.name!r} link does not keep them in), and "
                f"the working weights of those rows make {aliased} look collinear",
            )
        _report_aliased(solution, names, options.rank_deficient)
        return stat, solution

    if first is None or state.kind != "gram":
        first = irls_pass(start, state.kind, False, None)
    stat, solution = solve(first, None)
    df_resid = nobs - solution.rank
    if df_resid <= 0:
        rows = f"{nobs} rows" if isinstance(nobs, int) else f"frequency weights summing to {nobs!r}"
        raise DesignError(f"{rows} for {solution.rank} coefficients: no residual df")

    def scale_of(s: IrlsStatistic) -> float:
        return scale_estimate(options.scale, family, s.pearson_chi2, s.deviance, df_resid)

    state.scale = scale_of(stat)
    state.history.append(_ratio(stat.deviance, state.scale))
    start_deviance = stat.deviance
    if not np.isfinite(stat.deviance):
        raise ConvergenceError("the deviance at the start values is not finite")
    last_likely = False
    for iteration in range(options.maxiter):
        state.solution = solution
        state.beta = solution.params
        state.params_history.append(solution.params)
        stat = irls_pass(solution.params, state.kind, last_likely, solution)
        state.last = stat
        state.history.append(_ratio(stat.deviance, state.scale))
        state.scale = scale_of(stat)
        state.iterations = iteration + 1
        old, new = state.history[-2], state.history[-1]
        # An exact fit (a deviance at rounding level: 24 orders of magnitude below the
        # start's, residuals 1e-12 of the response's spread) has converged: a further
        # step only adds rounding noise, which the deviance over a near-zero scale blows
        # up. Exactly 0 or 7e-29 depends on the BLAS and NumPy at hand. Its size, not
        # its value: a negative deviance far from 0 (a Poisson mean below 0 under the
        # identity link, whose y log(y / mu) terms are then NaN-free but negative) is a
        # step outside the family's range, not an exact fit; statsmodels iterates on,
        # and IRLS may come back into the range.
        exact = abs(stat.deviance) <= EXACT_FIT * start_deviance
        if abs(old - new) <= threshold(new) or exact:
            state.converged = True
            break
        last_likely = likely_last(old, new) or iteration + 2 == options.maxiter
        if iteration + 1 < options.maxiter:
            stat, solution = solve(stat, solution)
    return state


def _check_finite(
    stat: IrlsStatistic, history: list[float], family: Family, family_start: bool = False
) -> None:
    """Raise :class:`ConvergenceError` when a pass's weighted Gram (or factor) is not
    finite: the fitted means left the family's range (a negative mean under the
    inverse Gaussian's 1/mu**2 link), and IRLS has diverged; or, with
    ``family_start`` (the pass at the family's start values), the start itself is
    outside the link's range."""
    factor = stat.qr.r if stat.qr is not None else stat.cross
    if factor is not None and np.isfinite(factor).all():
        return
    if family_start:
        # statsmodels' start means come from the responses ((y + mean(y)) / 2 for
        # counts): all-zero counts give means of 0, whose log is -inf.
        raise ConvergenceError(
            f"the working weights at the {family.name} family's start values are not "
            f"finite: the {family.link.name!r} link of the start means, which come from "
            "the responses as in statsmodels, is not finite (every response 0 under a "
            "log link, for example: check the response column, or give start_params)"
        )
    _raise_diverged(
        history,
        f"the working weights of the {family.name} family are no longer finite (fitted "
        "means outside its range)",
    )


def _raise_diverged(history: list[float], what: str) -> NoReturn:
    """Raise :class:`ConvergenceError` naming the iteration, ``what`` went wrong and
    the deviance ``history`` (the start's deviance first)."""
    trace = ", ".join(f"{value:.6g}" for value in history) or "none yet"
    steps = max(len(history) - 1, 0)
    when = f"after {steps} iteration{'' if steps == 1 else 's'}" if history else "at the start"
    raise ConvergenceError(
        f"IRLS diverged {when}: {what}; deviance history: {trace}. Try another link, "
        "start_params, or check the data"
    )


def _report_aliased(solution: LeastSquaresSolution, names: tuple[str, ...], policy: str) -> None:
    if solution.kept.all():
        return
    aliased = [names[j] for j in np.flatnonzero(~solution.kept)]
    message = (
        f"the design is rank deficient: {aliased} "
        f"{'is' if len(aliased) == 1 else 'are'} collinear with earlier columns"
    )
    if policy == "raise":
        raise DesignError(message + "; pass rank_deficient='drop' to drop them")
    warnings.warn(message + "; dropped (reported as NaN)", UserWarning, stacklevel=4)


def fit_null_intercept(
    spec: Any,
    family: Family,
    missing: Any,
    cache: Any,
    source: Source,
    timed: Any,
    options: dict[str, Any],
    prepared: PrepareStatistic,
    maxiter: int,
    tol: float,
    freq_weights: str | None = None,
) -> float:
    """The intercept of the constant-only model with the offset (statsmodels' ``null``):
    IRLS on one coefficient, started at ``g(mean(y))``, one scalar pass an iteration
    (``freq_weights``: the column of frequency weights, which count in its residual
    degrees of freedom, as statsmodels' ``wnobs``)."""
    df_resid = (prepared.nobs if freq_weights is None else prepared.sum_freq) - 1
    b0 = float(family.link(np.asarray(prepared.sum_y / prepared.nobs)))

    def run(beta0: float) -> NullStatistic:
        task = NullTask(spec, family, missing, cache, beta0, freq_weights)
        return timed(task, source, pass_name="glm-null", **options)

    stat = run(b0)
    scale = stat.pearson_chi2 / df_resid if family.free_scale else 1.0
    history = [_ratio(stat.deviance, scale)]
    for _ in range(maxiter):
        b0 = stat.sum_wz / stat.sum_w
        stat = run(b0)
        history.append(_ratio(stat.deviance, scale))
        scale = stat.pearson_chi2 / df_resid if family.free_scale else 1.0
        if abs(history[-2] - history[-1]) <= tol:
            break
    return b0


def separated_terms(
    family: Family,
    state: IrlsState,
    final: FinalStatistic,
    names: tuple[str, ...],
    spread: tuple[float, ...],
    policy: str,
) -> list[str]:
    """Terms whose coefficients diverge while fitted probabilities reach 0 or 1, or
    fitted means of a count family reach 0 (``final.boundary`` counts those rows).

    Any family: every fitted value equal to its response (statsmodels' "perfect
    prediction" check, ``|y - mu| <= 1e-8``) warns as well.
    """
    if final.boundary == 0:
        if state.last is not None and state.last.max_abs_resid <= 1e-8:
            warnings.warn(
                "perfect prediction: every fitted value equals its response, so the "
                "parameters may not be identified",
                PerfectSeparationWarning,
                stacklevel=3,
            )
        return []
    history = state.params_history
    diverging: list[str] = []
    if len(history) >= 3:
        step = history[-1] - history[-2]
        before = history[-2] - history[-3]
        with np.errstate(invalid="ignore"):
            grows = (np.abs(step) > 1e-3 * (1 + np.abs(history[-1]))) & (
                np.abs(step) >= 0.5 * np.abs(before)
            )
        # Standardized steps: a separating direction dominates; bystanders only drift.
        standardized = np.abs(step) * np.asarray(spread)
        grows &= standardized >= 0.05 * np.nanmax(standardized)
        diverging = [names[j] for j in np.flatnonzero(grows)]
    if not diverging and state.converged:
        return []
    terms = diverging or ["(not isolated: the IRLS did not converge)"]
    if family.name == "binomial":
        message = (
            f"perfect or quasi-complete separation: {final.boundary:,} of {final.nobs:,} "
            f"fitted probabilities are numerically 0 or 1 and the coefficients of {terms} "
            "diverge; their estimates and standard errors are meaningless (remove or merge "
            "the separating terms, or use a penalized fit)"
        )
    else:
        # statsmodels says nothing here: its estimate is finite only because IRLS stops
        # once the vanishing means no longer move the deviance (a coefficient near -25
        # with a standard error of 1e4).
        message = (
            f"zero responses separated: {final.boundary:,} of {final.nobs:,} fitted means "
            f"of the {family.name} model are numerically 0 and the coefficients of "
            f"{terms} diverge (a level or region whose responses are all 0 has no finite "
            "estimate); their estimates and standard errors are "
            "meaningless (remove or merge those terms, or use a penalized fit)"
        )
    if policy == "raise":
        raise PerfectSeparationError(message)
    warnings.warn(message, PerfectSeparationWarning, stacklevel=3)
    return diverging


def glm_covariance(
    cov_type: str,
    solution: LeastSquaresSolution,
    final: FinalStatistic,
    scale: float,
    nobs: int,
    basis: np.ndarray | None = None,
    hac: HacOptions | None = None,
) -> tuple[np.ndarray, int | None, float | None, np.ndarray | None, int | None]:
    """The covariance of the estimates, its number of clusters and inference degrees
    of freedom, a factor ``L`` of the covariance (``L L'``, for prediction standard
    errors ``|x'L|``; ``None`` for a plain sandwich, which has no accurate one), and
    the lag a HAC-type covariance used (else ``None``); ``basis`` is the ``R^{-1}``
    the final pass summed the robust pieces in
    (:func:`~shardfit.models.least_squares.robust_basis`), whose sandwich maps back by
    ``R^{-1} C R^{-T}``.

    The sandwiches are statsmodels' for a GLM (``get_robustcov_results`` on
    ``score_obs`` with the inverse observed Hessian as the bread, both at the fit's
    scale, so the covariance scales with it): ``"cluster"`` with ``G / (G - 1) (n -
    1) / (n - k)`` (``k`` the design's columns, aliased ones included), two-way
    ``V_1 + V_2 - V_12`` each with its own correction and ``min(G_1, G_2) - 1``
    inference degrees of freedom (``cov_cluster_2groups``), ``"HAC"`` Newey-West
    (``cov_hac_simple``), ``"hac-panel"`` (``cov_nw_panel``) and ``"hac-groupsum"``
    (``cov_nw_groupsum``) with the corrections of ``hac``
    (:func:`~shardfit.models.hac.hac_middle`)."""
    if cov_type == "nonrobust":
        factor = solution.normalized_factor()
        if factor is not None:
            factor = factor * np.sqrt(scale)
        return solution.normalized_cov * scale, None, None, factor, None
    assert final.hessian is not None
    bread = np.linalg.inv(final.hessian)
    n_groups = df_inference = nlags = None
    k_params = solution.kept.size
    positive = True  # whether the middle is positive semi-definite (has a factor)
    if cov_type == "cluster" and isinstance(final.clusters, TwoWayClusterScores):
        meat, n_groups = final.clusters.meat(nobs, k_params)
        inner = bread @ meat @ bread
        df_inference = float(n_groups - 1)
        positive = False  # V_1 + V_2 - V_12 need not be
    elif cov_type == "cluster":
        assert final.clusters is not None
        sums = final.clusters.sums
        n_groups = len(final.clusters.keys)
        if n_groups < 2:
            raise DesignError(f"cluster covariance needs at least 2 clusters; found {n_groups}")
        correction = n_groups / (n_groups - 1) * (nobs - 1) / (nobs - k_params)
        inner = bread @ (sums.T @ sums) @ bread * correction
        df_inference = float(n_groups - 1)
    elif cov_type in HAC_COV_TYPES:
        assert final.window is not None and hac is not None
        middle = hac_middle(final.window, hac, nobs, k_params, stacklevel=3)  # fit's caller
        inner = bread @ middle.meat @ bread * middle.correction
        n_groups, df_inference, nlags = middle.n_groups, middle.df_inference, middle.nlags
        # The uniform kernel's meat need not be positive semi-definite; Bartlett's is.
        positive = middle.positive
    else:
        assert final.meat is not None
        inner = bread @ final.meat @ bread
    if basis is None:
        return solution.covariance_of(inner), n_groups, df_inference, None, nlags
    # In the orthonormal basis cov_gamma = R^{-1} S R^{-T} with S small and well
    # scaled: factor S.
    cov = solution.covariance_of(basis @ inner @ basis.T)
    factor = solution.factor_of(psd_factor(inner)) if positive else None
    return cov, n_groups, df_inference, factor, nlags
