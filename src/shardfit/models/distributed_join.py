"""Joining per-partition fits: coefficient averaging and the one-shot debiased lasso.

Plain functions of the partitions' results, with no data and no backend (the policy
of a distributed fit, apart from its execution). The formulas are those of Lee, Liu,
Sun & Taylor (2015), "Communication-efficient sparse regression: a one-shot approach"
(arXiv:1503.04337), in the form statsmodels' ``DistributedModel`` computes them:

- averaging: ``b = mean_k b_k``;
- debiasing: ``b = mean_k b_k - Theta mean_k g_k``, where ``g_k`` is partition ``k``'s
  gradient of the penalized loss at ``b_k`` and ``Theta`` the approximate inverse
  covariance assembled from the node-wise lasso rows ``gamma_j`` and weights ``tau_j``
  (each partition computes its share of the variables): ``Theta_jj = 1 / tau_j^2`` and
  ``Theta_j,-j = -gamma_j / tau_j^2``;
- then coefficients smaller than ``threshold`` in absolute value are set to zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "DebiasedPart",
    "approx_inverse_covariance",
    "indefinite_variables",
    "join_average",
    "join_debiased",
]


@dataclass(frozen=True)
class DebiasedPart:
    """One partition's contribution to the debiased estimate.

    Attributes
    ----------
    params : (p,) array
        The partition's regularized estimate.
    grad : (p,) array
        Gradient of the partition's penalized loss per row at ``params``.
    rows : (m, p - 1) array
        Node-wise lasso coefficients of the partition's share of ``m`` variables.
    weights : (m,) array
        Their node-wise weights ``tau``.
    """

    params: np.ndarray
    grad: np.ndarray
    rows: np.ndarray
    weights: np.ndarray

    @classmethod
    def coerce(cls, value: Any) -> DebiasedPart:
        """Accept statsmodels' ``(params, grad, rows, weights)`` tuples too."""
        if isinstance(value, cls):
            return value
        params, grad, rows, weights = value
        p = len(params)
        return cls(
            np.asarray(params, dtype=np.float64),
            np.asarray(grad, dtype=np.float64),
            np.asarray(rows, dtype=np.float64).reshape(-1, max(p - 1, 0)),
            np.asarray(weights, dtype=np.float64).reshape(-1),
        )


def _threshold(params: np.ndarray, threshold: float) -> np.ndarray:
    out = np.array(params, dtype=np.float64)
    out[np.abs(out) < threshold] = 0.0
    return out


def join_average(params: Sequence[Any], threshold: float = 0.0) -> np.ndarray:
    """The mean of the partitions' coefficient vectors, thresholded."""
    if not params:
        raise ValueError("join_average needs at least one partition's parameters")
    stacked = np.vstack([np.asarray(p, dtype=np.float64) for p in params])
    return _threshold(stacked.sum(axis=0) / stacked.shape[0], threshold)


def approx_inverse_covariance(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Theta`` from the node-wise rows ``(p, p - 1)`` and weights ``(p,)``."""
    p = weights.size
    theta = np.eye(p)
    for j in range(p):
        theta[j, np.arange(p) != j] = -rows[j]
    # A zero weight (a column that is all zero where its regression ran) gives inf/NaN,
    # as in statsmodels; DistributedModel reports it.
    with np.errstate(divide="ignore", invalid="ignore"):
        return theta / weights[:, None] ** 2


def join_debiased(parts: Sequence[Any], threshold: float = 0.0) -> np.ndarray:
    """The one-shot debiased estimate from every partition's :class:`DebiasedPart`."""
    if not parts:
        raise ValueError("join_debiased needs at least one partition's results")
    coerced = [DebiasedPart.coerce(part) for part in parts]
    k = len(coerced)
    params = sum(part.params for part in coerced) / k
    grad = -sum(part.grad for part in coerced) / k
    rows = np.vstack([part.rows for part in coerced])
    weights = np.concatenate([part.weights for part in coerced])
    p = params.size
    if weights.size != p:
        raise ValueError(
            f"the partitions' node-wise regressions cover {weights.size} of {p} variables; "
            "each variable needs one (set 'partitions' to the number of data partitions)"
        )
    theta = approx_inverse_covariance(rows, weights)
    with np.errstate(invalid="ignore"):
        return _threshold(params + theta @ grad, threshold)


def indefinite_variables(parts: Sequence[Any]) -> tuple[float, list[tuple[int, int]]]:
    """Whether the debiased join's ``Theta`` is a usable inverse Hessian.

    statsmodels' ``_calc_approx_inv_cov`` (and :func:`approx_inverse_covariance`)
    stacks the partitions' node-wise rows without symmetrizing or checking them; when
    the partitions differ (each fits its share of rows on its own data) or columns are
    nearly collinear, ``Theta`` can fail to be positive definite, and the debiasing
    step ``Theta g`` can then move the estimate uphill.

    Returns
    -------
    min_eigenvalue : float
        The smallest eigenvalue of ``(Theta + Theta') / 2`` (NaN when ``Theta`` is not
        finite, which the caller reports as NaN coefficients).
    variables : list of (variable, partition position)
        The variables loading on its non-positive eigenvalues (at least half the
        largest loading), with the position of the partition that fitted their row;
        empty when ``Theta`` is positive definite.
    """
    coerced = [DebiasedPart.coerce(part) for part in parts]
    rows = np.vstack([part.rows for part in coerced])
    weights = np.concatenate([part.weights for part in coerced])
    owners = np.repeat(np.arange(len(coerced)), [part.weights.size for part in coerced])
    theta = approx_inverse_covariance(rows, weights)
    if not np.all(np.isfinite(theta)):
        return float("nan"), []
    values, vectors = np.linalg.eigh((theta + theta.T) / 2.0)
    bad = values <= 0
    if not bad.any():
        return float(values[0]), []
    loading = np.max(np.abs(vectors[:, bad]), axis=1)
    flagged = np.flatnonzero(loading >= 0.5 * loading.max())
    return float(values[0]), [(int(j), int(owners[j])) for j in flagged]
