"""What each partition computes in a distributed fit (runs on workers).

A partition of a :class:`~shardfit.models.distributed.DistributedModel` fit is wrapped
in a :class:`FitPartition` that carries its position (the debiased estimator gives
partition ``k`` the node-wise regressions of variables ``k*ceil(p/K)`` onwards) and its
per-partition model keywords (statsmodels' ``init_kwds_generator``: WLS weights, an
offset). :class:`PartitionFit` then reads the rows, encodes them (or takes the arrays
the user gave) and fits:

- ``solver="shardfit"``: least squares on the partition's Gram with statsmodels'
  coordinate descent reproduced step for step, or the GLM coordinate descent on the
  rows (see :mod:`shardfit.models._elastic_net_cd`);
- ``solver="statsmodels"``: the user's statsmodels model class on the partition, with
  statsmodels' own per-partition estimation function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from shardfit.data.partition import Partition, ReadResult
from shardfit.errors import DesignError
from shardfit.models._elastic_net_cd import (
    statsmodels_glm_cd,
    statsmodels_gram_cd,
    statsmodels_nodewise,
)
from shardfit.models.distributed_join import DebiasedPart

__all__ = ["ArraysPartition", "Counted", "FitOptions", "FitPartition", "PartitionFit"]

Method = Literal["debiased", "average", "average_regularized"]


@dataclass(frozen=True, eq=False)
class ArraysPartition(Partition):
    """One ``(endog, exog)`` pair of statsmodels' ``data_generator``, as a partition."""

    endog: np.ndarray
    exog: np.ndarray
    index: int

    @property
    def key(self) -> str:
        return f"arrays#{self.index}"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        names = [f"x{j}" for j in range(self.exog.shape[1])]
        table = pa.table({"y": self.endog, **dict(zip(names, self.exog.T))})
        return ReadResult(table.select(list(columns)) if columns is not None else table)


@dataclass(frozen=True, eq=False)
class FitPartition(Partition):
    """A partition with its position among the fit's partitions and its own keywords."""

    inner: Partition
    index: int
    init_kwds: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.inner.key

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        return self.inner.read(columns)

    def locate(self, row: int) -> str:
        return self.inner.locate(row)

    def fingerprint(self) -> str:
        return self.inner.fingerprint()


@dataclass(frozen=True)
class Counted:
    """A partition's fit and the rows behind it (so no dropped row goes uncounted).

    Attributes
    ----------
    value : object
        What the estimation method returned (parameters, a :class:`DebiasedPart`, or a
        custom method's output), as the join expects it.
    rows_read : int
        Rows read from the partition.
    nobs : int
        Rows fitted.
    dropped : dict of str to int
        Rows not fitted, by reason (``"missing"``, ``"nonfinite"``).
    skipped : int
        Malformed rows the reader skipped (not in ``rows_read``).
    notes : tuple of str
        Why the partition's fit is unreliable (no convergence, a design of lower rank
        than its columns, perfect prediction), for the driver to warn about.
    """

    value: Any
    rows_read: int
    nobs: int
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FitOptions:
    """The estimator's settings, as statsmodels' ``fit_kwds`` and our own.

    Attributes
    ----------
    method : {"debiased", "average", "average_regularized"}
    model : {"ols", "glm"}
    family : Family or None
        A :class:`~shardfit.models.families.Family` for ``model="glm"``.
    alpha : float or (p,) array
    l1_wt : float
    partitions : int
        The ``K`` of the node-wise share ``ceil(p / K)``.
    maxiter, cnvrg_tol, zero_tol : statsmodels' coordinate-descent settings
        (``zero_tol`` None: 1e-8 for OLS, 1e-10 for GLMs, statsmodels' defaults).
    irls : dict
        ``GLM.fit`` keywords of an unregularized GLM fit (``method="average"``):
        ``maxiter``, ``tol``, ``atol``, ``rtol``, ``tol_criterion``.
    """

    method: Method
    model: Literal["ols", "glm"]
    family: Any
    alpha: Any
    l1_wt: float
    partitions: int
    maxiter: int = 50
    cnvrg_tol: float = 1e-10
    zero_tol: float | None = None
    irls: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PartitionFit:
    """Fit one partition: returns its parameters, or a :class:`DebiasedPart`."""

    options: FitOptions
    spec: Any = None  # DesignSpec for formula data; None for arrays
    missing: str = "drop"
    sm_model_class: Any = None
    sm_init_kwds: dict[str, Any] = field(default_factory=dict)
    sm_estimation: Callable[..., Any] | None = None
    sm_estimation_kwds: dict[str, Any] = field(default_factory=dict)
    sm_fit_kwds: dict[str, Any] = field(default_factory=dict)
    # Model keywords (statsmodels' init_kwds) the fast solvers use on every partition:
    # WLS weights, a GLM's offset, exposure and var_weights (scalars or per-row arrays).
    fast_init_kwds: dict[str, Any] = field(default_factory=dict)
    # Keywords statsmodels' model class ignores (OLS ignores weights), dropped here too.
    ignored_kwds: tuple[str, ...] = ()

    def __call__(self, partition: Partition) -> Counted:
        if not isinstance(partition, FitPartition):
            raise TypeError("PartitionFit runs on FitPartition wrappers")
        y, X, from_design, rows_read, dropped, skipped = self._arrays(partition)
        kwds = {**from_design, **partition.init_kwds}
        notes: list[str] = []
        nobs = int(y.shape[0])
        if self.sm_model_class is not None:
            model = self.sm_model_class(y, X, **{**self.sm_init_kwds, **kwds})
            assert self.sm_estimation is not None
            value = self.sm_estimation(
                model,
                partition.index,
                self.options.partitions,
                fit_kwds=dict(self.sm_fit_kwds),
                **self.sm_estimation_kwds,
            )
            # A statsmodels model given missing="drop" fits fewer rows than it was
            # given: count them, as formula fits count the rows they drop.
            fitted = getattr(model, "nobs", None)
            if fitted is not None and int(fitted) < nobs:
                dropped = {**dropped, "missing": dropped.get("missing", 0) + nobs - int(fitted)}
                nobs = int(fitted)
        elif y.shape[0] == 0:
            raise DesignError(f"partition {partition.key} has no complete rows to fit")
        else:
            kwds = _fast_kwds(
                {**self.fast_init_kwds, **kwds}, self.ignored_kwds, nobs, partition.key
            )
            if self.options.model == "ols":
                value = _fit_least_squares(
                    X, y, kwds.get("weights"), self.options, partition.index, notes
                )
            else:
                value = _fit_glm(
                    X, y, kwds, self.options, partition.index, notes, key=partition.key
                )
        return Counted(value, rows_read, nobs, dropped, skipped, tuple(notes))

    def _arrays(
        self, partition: FitPartition
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any], int, dict[str, int], int]:
        """Response, design, the design's own weights and offset (if any), the rows
        read, the rows dropped by reason and the malformed rows skipped."""
        inner = partition.inner
        if isinstance(inner, ArraysPartition):
            return inner.endog, inner.exog, {}, int(inner.endog.shape[0]), {}, 0
        from shardfit.design.materialize import encode_partition

        chunk = encode_partition(self.spec, inner, missing=self.missing)  # type: ignore[arg-type]
        assert chunk.y is not None
        extra: dict[str, Any] = {}
        if chunk.weights is not None:
            extra["weights"] = chunk.weights
        if chunk.offset is not None:
            extra["offset"] = chunk.offset
        dropped = {reason: int(n) for reason, n in chunk.dropped.items() if n}
        X = np.asarray(chunk.X, dtype=np.float64)
        return chunk.y, X, extra, chunk.rows_read, dropped, int(chunk.skipped_rows)


def _fast_kwds(kwds: dict[str, Any], ignored: Sequence[str], nobs: int, key: str) -> dict[str, Any]:
    """The model keywords of a fast fit, each a scalar or one value per row.

    statsmodels' model refuses a per-row array of another length ("offset is not the
    same length as endog"); refuse it too, naming the partition, rather than broadcast.
    """
    out = {}
    for name, value in kwds.items():
        if name in ignored or value is None:
            continue
        array = np.asarray(value, dtype=np.float64)
        if array.ndim > 1 or (array.ndim == 1 and array.shape[0] != nobs):
            raise DesignError(
                f"partition {key}: {name} has shape {array.shape}, but the partition "
                f"has {nobs} rows (statsmodels' model raises too); give each partition "
                "its own values through init_kwds_generator"
            )
        out[name] = array
    return out


def _alpha_vector(alpha: Any, p: int) -> np.ndarray:
    a = np.asarray(alpha, dtype=np.float64)
    return np.full(p, float(a)) if a.ndim == 0 else a


def _not_converged(options: FitOptions) -> str:
    return (
        f"the regularized fit did not converge in maxiter={options.maxiter} sweeps "
        "(statsmodels records converged=False, and its GLM warns); raise maxiter"
    )


def _rank_note(X: np.ndarray) -> str | None:
    """A note when the design cannot identify an unpenalized fit (rank < columns)."""
    n, p = X.shape
    rank = int(np.linalg.matrix_rank(X)) if n and p else 0
    if rank >= p:
        return None
    return (
        f"its design of {n} rows has rank {rank} < {p} columns, so its unpenalized "
        "estimate is not identified (a minimum-norm one is averaged)"
    )


def _share(index: int, partitions: int, p: int) -> np.ndarray:
    per = int(np.ceil(p / partitions))
    return np.arange(index * per, min((index + 1) * per, p))


# -- least squares -----------------------------------------------------------------------
def _fit_least_squares(
    X: np.ndarray,
    y: np.ndarray,
    weights: Any,
    options: FitOptions,
    index: int,
    notes: list[str] | None = None,
) -> Any:
    notes = [] if notes is None else notes
    n, p = X.shape
    alpha = _alpha_vector(options.alpha, p)
    if weights is not None:
        # statsmodels' WLS fits the whitened data and rescales alpha by mean(w).
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (n,))
        root = np.sqrt(w)
        Xw, yw = X * root[:, None], y * root
        alpha = alpha * float(np.sum(w)) / n
    else:
        w, Xw, yw = None, X, y
    if options.method == "average":
        note = _rank_note(Xw)
        if note is not None:
            notes.append(note)
        return np.linalg.pinv(Xw) @ yw  # statsmodels' default fit (pinv)
    gram = Xw.T @ Xw
    xty = Xw.T @ yw
    if options.l1_wt == 0:
        params = np.linalg.solve(gram + n * np.diag(alpha), xty)  # statsmodels' ridge
    else:
        zero_tol = 1e-8 if options.zero_tol is None else options.zero_tol
        B, _, converged = statsmodels_gram_cd(
            gram,
            xty[:, None],
            n,
            alpha,
            options.l1_wt,
            maxiter=options.maxiter,
            cnvrg_tol=options.cnvrg_tol,
            zero_tol=zero_tol,
        )
        params = B[:, 0]
        if not converged[0]:
            notes.append(_not_converged(options))
    if options.method == "average_regularized":
        return params
    # statsmodels scores the profile likelihood here (scale concentrated out).
    ssr = float(yw @ yw - 2.0 * xty @ params + params @ gram @ params)
    alpha_raw = _alpha_vector(options.alpha, p)
    grad = (n * (gram @ params - xty) / ssr + alpha_raw * (1 - options.l1_wt)) / n
    # The node-wise regressions use the design weighted by the Hessian factor: the
    # weights themselves for WLS (on the raw, unwhitened design), ones for OLS.
    hess_gram = gram if w is None else (X * w[:, None]).T @ X
    rows, taus = statsmodels_nodewise(hess_gram, n, _share(index, options.partitions, p), alpha_raw)
    return DebiasedPart(params, grad, rows, taus)


# -- GLMs --------------------------------------------------------------------------------
def _glm_functions(family: Any, var_weights: np.ndarray | None) -> tuple[Callable[..., Any], ...]:
    """Inverse link, log-likelihood, score and observed-Hessian factors (scale 1).

    The log-likelihood may leave out terms that do not depend on ``mu`` (statsmodels
    only compares and minimizes it). Canonical links take their simple closed forms
    (statsmodels' general expressions reduce to them to rounding).
    """
    w = 1.0 if var_weights is None else var_weights
    link = family.link
    key = (family.name, link.name)
    if key == ("binomial", "logit"):

        def inverse(eta: np.ndarray) -> np.ndarray:
            return 1.0 / (1.0 + np.exp(-eta))

        def loglike(y: np.ndarray, mu: np.ndarray) -> float:
            return float(np.sum(w * (y * np.log(mu / (1 - mu)) + np.log(1 - mu))))

        def hessian_factor(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
            return w * mu * (1 - mu)

    elif key == ("poisson", "log"):
        inverse = np.exp

        def loglike(y: np.ndarray, mu: np.ndarray) -> float:
            return float(np.sum(w * (y * np.log(mu) - mu)))

        def hessian_factor(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
            return w * mu

    else:
        inverse = link.inverse

        def loglike(y: np.ndarray, mu: np.ndarray) -> float:
            return float(np.sum(family.loglike_obs(y, mu, var_weights)))

        def hessian_factor(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
            # statsmodels' observed information
            eim = w / (link.deriv(mu) ** 2 * family.variance(mu))
            unit = (y - mu) / link.deriv(mu) / family.variance(mu)
            extra = family.variance(mu) * link.deriv2(mu) + family.variance_deriv(mu) * link.deriv(
                mu
            )
            return eim * (1 + unit * extra)

    canonical = key in (("binomial", "logit"), ("poisson", "log"))

    def score_factor(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
        if canonical:
            return (y - mu) * w
        return (y - mu) / link.deriv(mu) / family.variance(mu) * w

    return inverse, loglike, score_factor, hessian_factor


def _glm_irls(
    X: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    family: Any,
    var_weights: np.ndarray | None,
    *,
    irls: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> np.ndarray:
    """statsmodels' ``GLM.fit()`` (IRLS), iteration for iteration.

    ``irls`` holds the ``fit_kwds`` statsmodels' ``_est_unregularized_naive`` passes to
    ``GLM.fit``: ``maxiter`` (100), ``tol`` (1e-8), ``atol`` (``tol``), ``rtol`` (0)
    and ``tol_criterion`` (``"deviance"`` or ``"params"``). As statsmodels, it starts
    from ``family.starting_mu(y)``, compares the first iterate's deviance with the
    start's, and stops when ``np.allclose(previous, new, atol, rtol)`` holds for the
    criterion, so each partition's estimate equals statsmodels' (not a tighter MLE).

    Appends to ``notes`` why the estimate is unreliable: IRLS did not converge, or the
    fitted means equal the response (perfect separation or prediction, as statsmodels
    warns: the estimate diverges and depends on where IRLS stopped).
    """
    notes = [] if notes is None else notes
    irls = {} if irls is None else irls
    maxiter = int(irls.get("maxiter", 100))
    tol = float(irls.get("tol", 1e-8))
    atol = tol if irls.get("atol") is None else float(irls["atol"])
    rtol = float(irls.get("rtol", 0.0))
    criterion_name = irls.get("tol_criterion", "deviance")
    w = np.ones(y.size) if var_weights is None else var_weights
    mu = family.starting_mu(y)
    eta = family.link(mu)
    params = np.zeros(X.shape[1])
    previous: Any = family.deviance(y, mu, var_weights) if criterion_name == "deviance" else params
    converged = False
    for _ in range(maxiter):
        weights = w * family.irls_weights(mu)
        z = eta - offset + (y - mu) * family.link.deriv(mu)
        root = np.sqrt(weights)
        # statsmodels' _MinimalWLS(method="lstsq"): rcond=-1
        params = np.linalg.lstsq(X * root[:, None], z * root, rcond=-1)[0]
        eta = X @ params + offset
        mu = family.link.inverse(eta)
        new = family.deviance(y, mu, var_weights) if criterion_name == "deviance" else params
        if np.allclose(previous, new, atol=atol, rtol=rtol):
            converged = True
            break
        previous = new
    if np.allclose(mu - y, 0):
        notes.append(
            "perfect separation or prediction (every fitted mean equals the response): "
            "its unpenalized estimate is not identified"
        )
    elif not converged:
        notes.append(
            f"the unpenalized IRLS fit did not converge in maxiter={maxiter} iterations "
            f"(tol={tol:g}); raise fit_kwds['maxiter']"
        )
    return params


def _fit_glm(
    X: np.ndarray,
    y: np.ndarray,
    kwds: dict[str, Any],
    options: FitOptions,
    index: int,
    notes: list[str] | None = None,
    *,
    key: str = "?",
) -> Any:
    notes = [] if notes is None else notes
    n, p = X.shape
    family = options.family
    family.check_response(y)
    offset = np.zeros(n)
    if kwds.get("exposure") is not None and family.link.name != "log":
        # statsmodels' GLM raises the same: log(exposure) is an offset only on the log scale
        raise DesignError(
            f"partition {key}: exposure can only be used with the log link function "
            f"(the {family.name} family here has the {family.link.name} link); pass "
            "log(exposure) as an offset if that is what you mean"
        )
    if kwds.get("offset") is not None:
        offset = offset + np.asarray(kwds["offset"], dtype=np.float64)
    if kwds.get("exposure") is not None:
        offset = offset + np.log(np.asarray(kwds["exposure"], dtype=np.float64))
    var_weights = kwds.get("var_weights", kwds.get("weights"))
    if var_weights is not None:
        var_weights = np.asarray(var_weights, dtype=np.float64)
    if options.method == "average":
        note = _rank_note(X)
        if note is not None:
            notes.append(note)
        return _glm_irls(X, y, offset, family, var_weights, irls=options.irls, notes=notes)
    inverse, loglike, score_factor, hessian_factor = _glm_functions(family, var_weights)
    alpha = _alpha_vector(options.alpha, p)
    zero_tol = 1e-10 if options.zero_tol is None else options.zero_tol
    what = f"the regularized {family.name} GLM with the {family.link.name} link"
    with np.errstate(all="ignore"):
        start = loglike(y, inverse(offset))
    if not np.isfinite(start):
        # statsmodels' fit_regularized starts at zero too, gets a non-finite objective
        # there and returns NaN coefficients; the coordinate descent would fail in a
        # line search (scipy's BracketError) or wander: say so, and what to do.
        raise DesignError(
            f"partition {key}: {what} cannot be fitted: statsmodels' fit_regularized "
            f"starts at zero coefficients, where the means (the inverse link of the "
            f"offset) are outside the family's domain (log-likelihood {start}), and "
            "gives NaN coefficients. Use a link valid at zero (e.g. the canonical link), "
            "an offset that makes the start valid, or method='average' (unpenalized "
            "IRLS, which starts from the data)"
        )
    try:
        with np.errstate(all="ignore"):
            if options.l1_wt == 0:
                # statsmodels' GLM.fit_regularized solves a pure ridge with BFGS, not
                # coordinate descent (which can stall on correlated columns): same.
                params = _glm_ridge(X, y, offset, inverse, loglike, score_factor, alpha, notes)
            else:
                params, _, converged = statsmodels_glm_cd(
                    X,
                    y,
                    offset,
                    inverse,
                    loglike,
                    score_factor,
                    hessian_factor,
                    alpha,
                    options.l1_wt,
                    maxiter=options.maxiter,
                    cnvrg_tol=options.cnvrg_tol,
                    zero_tol=zero_tol,
                )
                if not converged:
                    notes.append(_not_converged(options))
    except (RuntimeError, ValueError, FloatingPointError) as error:
        # e.g. scipy's BracketError when a coordinate's line search leaves the
        # family's domain (a non-canonical link whose means turn invalid)
        raise DesignError(
            f"partition {key}: {what} failed ({type(error).__name__}: {error}); its "
            "coordinate descent left the family's domain. Use the canonical link, a "
            "larger alpha, or method='average'"
        ) from error
    if not np.all(np.isfinite(params)):
        raise DesignError(
            f"partition {key}: {what} gave non-finite coefficients {params}; use the "
            "canonical link, a larger alpha, or method='average'"
        )
    if options.method == "average_regularized":
        return params
    mu = inverse(X @ params + offset)
    grad = (-(score_factor(y, mu) @ X) + alpha * (1 - options.l1_wt)) / n
    factor = hessian_factor(y, mu)
    negative = int(np.sum(~(factor >= 0)))
    if negative:
        # statsmodels weights the node-wise design by sqrt(hessian_factor): negative
        # (observed) information gives NaN rows and it raises "exog contains inf or
        # nans". The Gram X' diag(factor) X is then indefinite and its approximate
        # inverse not positive definite, so the debiasing cannot be trusted: refuse too.
        raise DesignError(
            f"partition {key}: the observed information (statsmodels' hessian_factor) "
            f"of {what} is negative or non-finite at {negative} of {n} rows at the "
            "partition's estimate (its log-likelihood is not concave there), so the "
            "approximate inverse Hessian of the debiased estimator is not positive "
            "definite (statsmodels raises 'exog contains inf or nans'). Use "
            "method='average_regularized', a link with a concave log-likelihood (logit, "
            "probit), or solver='statsmodels' with "
            "estimation_kwds={'hess_kwds': {'observed': False}} (expected information)"
        )
    hess_gram = (X * factor[:, None]).T @ X
    rows, taus = statsmodels_nodewise(hess_gram, n, _share(index, options.partitions, p), alpha)
    return DebiasedPart(params, grad, rows, taus)


def _glm_ridge(
    X: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    inverse: Callable[..., Any],
    loglike: Callable[..., Any],
    score_factor: Callable[..., Any],
    alpha: np.ndarray,
    notes: list[str],
) -> np.ndarray:
    """statsmodels' ``GLM._fit_ridge``: BFGS from zero on ``-loglike / n + alpha b^2 / 2``.

    ``fit_regularized(L1_wt=0)`` ignores ``maxiter`` and ``cnvrg_tol`` there, so they
    are ignored here too; a failed minimization is noted as statsmodels warns it.
    """
    from scipy.optimize import minimize

    n = y.shape[0]

    def fun(b: np.ndarray) -> float:
        return -(loglike(y, inverse(X @ b + offset)) / n - float(np.sum(alpha * b**2)) / 2)

    def grad(b: np.ndarray) -> np.ndarray:
        return -((score_factor(y, inverse(X @ b + offset)) @ X) / n - alpha * b)

    result = minimize(fun, np.zeros(X.shape[1]), jac=grad, method="bfgs")
    if not result.success:
        norm = float(np.sqrt(np.sum(result.jac**2)))
        notes.append(
            f"the ridge (L1_wt=0) optimization may have failed, |grad|={norm:f} "
            "(statsmodels' GLM warns the same)"
        )
    return np.asarray(result.x, dtype=np.float64)
