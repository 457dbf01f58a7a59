"""Solving least squares from merged statistics: rank, conditioning, back-transform.

Input is an upper-triangular factor ``R`` of transformed ``Z = [X | y]`` (``R'R =
Z'WZ``), from TSQR directly or from a Cholesky factorization of the Gram. Steps:

1. Aliased columns: column ``j`` of ``X`` is aliased when its component orthogonal
   to the columns before it is below ``tol`` times its norm (R's ``lm`` rule, with
   ``tol = 1e-10`` on the QR by default where R takes 1e-7: see
   :data:`QR_ALIAS_TOL`). The Gram path uses the same rule on the equilibrated Gram,
   where the threshold applies to squared norms.
2. The factor of the kept columns is re-formed from ``R`` (a QR of a ``(p+1) x k``
   matrix, no data).
3. ``gamma = R_xx^{-1} r_xy``, ``ssr = r_yy**2``, ``(Z'WZ)^{-1} = R_xx^{-1} R_xx^{-T}``.
4. Back to the original columns: ``x_j = scale_j z_j + shift_j`` (shifts only with an
   intercept), so ``beta = T gamma + c`` exactly and ``cov(beta) = T cov(gamma) T'``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from shardfit.stats.transform import ColumnTransform

__all__ = [
    "GRAM_ALIAS_TOL",
    "QR_ALIAS_TOL",
    "LeastSquaresSolution",
    "check_rank_tol",
    "cholesky_with_aliasing",
    "equilibrated_condition",
    "psd_factor",
    "solve_from_r",
]

# A numerical rank, not a statistical judgement. The TSQR factor of scaled columns is
# backward stable: rounding leaves an exactly collinear column a relative residual of
# order 1e-16 times a modest growth factor (measured: 1e-16 to 1e-14 for linear
# combinations, dummy sums and products, 2M rows in 1 and 16 partitions), so 1e-10
# separates collinearity from real columns with a wide margin. R's ``lm`` takes 1e-7
# (``rank_tol=1e-7`` reproduces it), which declares NIST's Filip polynomial (relative
# residual 6.1e-8 for x**10) rank deficient, where the QR solves it to the 7-8 digits
# its conditioning allows.
QR_ALIAS_TOL = 1e-10
# On the Gram, rounding alone leaves relative Schur complements near 1e-16 * cond;
# 1e-10 (1e-5 on norms) separates exact collinearity from real columns, and designs
# where it is close are sent to the QR path by the condition check first.
GRAM_ALIAS_TOL = 1e-10


def check_rank_tol(rank_tol: float) -> None:
    """Raise on a ``rank_tol`` outside ``[0, 1)``."""
    if not 0.0 <= rank_tol < 1.0:
        raise ValueError(f"The 'rank_tol' parameter must be in [0, 1). Got {rank_tol!r}.")


@dataclass(frozen=True)
class LeastSquaresSolution:
    """Estimates in the original columns.

    Attributes
    ----------
    params : numpy.ndarray
        ``(p,)``; NaN for aliased columns.
    normalized_cov : numpy.ndarray
        ``(p, p)`` ``(X'WX)^{-1}`` over kept columns; NaN rows and columns for aliased.
    ssr : float
        Weighted residual sum of squares ``sum(w * e**2)``.
    kept : numpy.ndarray
        ``(p,)`` bool, columns not aliased.
    r_raw : numpy.ndarray
        Triangular factor of the kept original columns (``R'R = X_K'WX_K``), for the
        condition number and leverages.
    condition : float
        Condition number of the equilibrated, transformed kept design.
    gamma, cov_gamma : numpy.ndarray
        Coefficients and ``(Z_K'WZ_K)^{-1}`` in the transformed, kept columns.
    to_original : numpy.ndarray
        ``T`` with ``beta_K = T gamma + c``; a covariance ``C`` of ``gamma`` maps to
        ``T C T'``.
    r_inv : numpy.ndarray
        ``R^{-1}`` of the transformed kept columns (``R'R = Z_K'WZ_K``, so
        ``cov_gamma = R^{-1} R^{-T}``): rows ``z_i' R^{-1}`` are orthonormal-basis
        coordinates, in which sums of outer products keep their accuracy (a robust
        covariance's meat).
    centre_fit : float or None
        The fitted value at the transform's shifts, ``beta_0 + sum_j shift_j beta_j``,
        from the transformed solution (so without that sum's cancellation); ``None``
        without a kept intercept.
    response_scale : float
        The response's scale ``s_y`` in the transform: ``normalized_cov = T cov_gamma
        T' / s_y**2``.
    """

    params: np.ndarray
    normalized_cov: np.ndarray
    ssr: float
    kept: np.ndarray
    r_raw: np.ndarray
    condition: float
    gamma: np.ndarray
    cov_gamma: np.ndarray
    to_original: np.ndarray
    centre_fit: float | None = None
    r_inv: np.ndarray | None = None
    response_scale: float = 1.0

    def covariance_of(self, cov_gamma: np.ndarray) -> np.ndarray:
        """``(p, p)`` covariance of ``beta`` (NaN for aliased) from one of ``gamma``."""
        p = self.kept.size
        cols = np.flatnonzero(self.kept)
        out = np.full((p, p), np.nan)
        out[np.ix_(cols, cols)] = self.to_original @ cov_gamma @ self.to_original.T
        return out

    @property
    def rank(self) -> int:
        """Number of kept columns."""
        return int(self.kept.sum())

    def factor_of(self, inner: np.ndarray | None = None) -> np.ndarray | None:
        """``(p, m)`` factor ``L = T R^{-1} F`` (NaN rows for aliased columns) of the
        covariance :meth:`covariance_of` gives for ``cov_gamma = R^{-1} F F' R^{-T}``;
        ``inner`` is ``F`` (``None``: the identity, a factor of ``T cov_gamma T'``).

        A prediction's standard error ``|x'L|`` loses about ``cond * eps`` where
        ``sqrt(x'Cx)`` from the explicit covariance loses ``cond**2 * eps`` to
        cancellation (6e-4 relative at an equilibrated condition number of 5e6).
        ``None`` without ``r_inv``.
        """
        if self.r_inv is None:
            return None
        base = self.r_inv if inner is None else self.r_inv @ inner
        out = np.full((self.kept.size, base.shape[1]), np.nan)
        out[np.flatnonzero(self.kept)] = self.to_original @ base
        return out

    def normalized_factor(self) -> np.ndarray | None:
        """``(p, k)`` factor ``L`` of ``normalized_cov`` (``L L'``, NaN rows for aliased
        columns): ``T R^{-1} / s_y``; see :meth:`factor_of`."""
        factor = self.factor_of()
        return None if factor is None else factor / self.response_scale


def psd_factor(matrix: np.ndarray) -> np.ndarray:
    """``F`` with ``F F' = matrix`` for a small symmetric positive semi-definite matrix
    (a robust covariance's middle in the orthonormal basis), from its eigenvalues:
    rounding can leave tiny negative ones, set to zero (they are zero exactly)."""
    if matrix.size == 0:
        return np.zeros(matrix.shape)
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


#: Above this condition number of the equilibrated design, a robust covariance's
#: pieces are summed in the orthonormal basis of the fit's factor (see
#: :func:`robust_basis`); below it the plain sandwich's ``cond**2 * eps`` is under 2e-8.
#: (Equilibrated designs are usually far below: 103 for the demo's 229 columns. The
#: basis makes the robust pass about 2.7 times longer on such a wide design.)
ROBUST_BASIS_CONDITION = 1e4


def robust_basis(cov_type: str, solution: LeastSquaresSolution) -> np.ndarray | None:
    """``R^{-1}`` of the fit's factor when a robust covariance should sum its pieces
    (the meat, a GLM's observed information) over rows ``z_i' R^{-1}``, orthonormal
    under the fit's weights: an ill-conditioned design, where the plain sandwich
    ``B M B`` loses ``cond**2 * eps`` (a NaN or 0.6-fold standard error at a
    condition number of 1e7); else ``None``. It costs a product by ``R^{-1}`` per row."""
    if cov_type == "nonrobust" or solution.r_inv is None:
        return None
    return None if solution.condition <= ROBUST_BASIS_CONDITION else solution.r_inv


def cholesky_with_aliasing(gram: np.ndarray, p: int, tol: float = GRAM_ALIAS_TOL) -> np.ndarray:
    """An upper factor ``R`` of the ``(p+1)``-square Gram with aliased columns zeroed.

    Column by column: the squared norm of a column's component orthogonal to the
    kept columns before it, relative to its squared norm, below ``tol`` marks it
    aliased; its row of ``R`` is left zero, so ``solve_from_r`` sees ``R[j, j] = 0``.
    """
    q = gram.shape[0]
    diag = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    safe = np.where(diag > 0, diag, 1.0)
    scaled = gram / safe[:, None] / safe[None, :]
    if diag[:p].all():
        # The usual full-rank case in one LAPACK call; it is the loop's factor whenever
        # no column is aliased, which its pivots show.
        try:
            r = scipy.linalg.cholesky(scaled, lower=False, check_finite=False)
        except np.linalg.LinAlgError:
            r = None
        if r is not None and np.all(np.diag(r)[:p] ** 2 > tol):
            return r * safe[None, :]
    r = np.zeros((q, q))
    for j in range(q):
        if diag[j] == 0:
            continue
        column = scaled[:j, j] if j else np.zeros(0)
        r_col = np.zeros(j)
        kept = np.flatnonzero(np.diag(r)[:j] != 0)
        if kept.size:
            r_col[kept] = scipy.linalg.solve_triangular(
                r[np.ix_(kept, kept)], column[kept], trans="T", check_finite=False
            )
        schur = scaled[j, j] - float(r_col @ r_col)
        r[:j, j] = r_col
        if j < p and schur <= tol * scaled[j, j]:
            continue  # aliased: leave R[j, j] = 0
        r[j, j] = np.sqrt(max(schur, 0.0))
    return r * safe[None, :]


def equilibrated_condition(r_xx: np.ndarray) -> float:
    """2-norm condition number of a design whose triangular factor is ``r_xx``,
    after scaling its columns to unit norm (scaling-invariant accuracy measure)."""
    if r_xx.size == 0:
        return 1.0
    norms = np.linalg.norm(r_xx, axis=0)
    norms[norms == 0] = 1.0
    singular = np.linalg.svd(r_xx / norms, compute_uv=False)
    return float(singular[0] / singular[-1]) if singular[-1] > 0 else np.inf


def _uncentred_factor(
    full: np.ndarray, transform: ColumnTransform, intercept: int | None
) -> np.ndarray:
    """The factor of the same columns scaled but not centred, from the factor ``full``
    of the centred ones: ``x_j / s_j = z_j + (shift_j / s_j) s_0 z_0`` with ``z_0`` the
    intercept column, so ``Z_raw = Z M`` and ``R_raw`` is ``R M`` (re-triangularized
    when the intercept is not the first column).

    Aliasing is decided on it, as R's ``lm`` decides on its uncentred QR: relative to
    a column's norm, not to its spread (``rank_tol=1e-7`` then drops what R drops),
    while the solution keeps the centred factor's digits.
    """
    p = transform.p
    shift = np.asarray(transform.shift[:p])
    if intercept is None or not shift.any():
        return full
    scale = np.asarray(transform.scale)
    m = np.eye(full.shape[1])
    m[intercept, :p] += shift * scale[intercept] / scale[:p]
    m[intercept, intercept] = 1.0
    product = full @ m
    if intercept == 0:  # adding multiples of the first column keeps it triangular
        return product
    return np.triu(scipy.linalg.qr(product, mode="r", check_finite=False)[0])


def solve_from_r(
    r: np.ndarray,
    transform: ColumnTransform,
    *,
    intercept: int | None,
    tol: float = QR_ALIAS_TOL,
) -> LeastSquaresSolution:
    """Least-squares estimates from the factor ``r`` of transformed ``[X | y]``."""
    p = transform.p
    q = p + 1
    full = np.zeros((q, q))
    full[: r.shape[0]] = r[:q]
    kept = np.ones(p, dtype=bool)
    decide = _uncentred_factor(full, transform, intercept) if tol > 0 else full
    for j in range(p):
        column_norm = np.linalg.norm(decide[: j + 1, j])
        if column_norm == 0 or abs(decide[j, j]) <= tol * column_norm:
            kept[j] = False
    index = np.concatenate([np.flatnonzero(kept), [p]])
    if not kept.all():
        # The factor of the kept columns: R[:, K] = Q_K R_K, so a small QR re-forms it.
        full_k = scipy.linalg.qr(full[:, index], mode="r", check_finite=False)[0]
        full_k = np.triu(full_k[: index.size])
    else:
        full_k = full
    k = index.size - 1
    r_xx, r_xy, r_yy = full_k[:k, :k], full_k[:k, k], float(full_k[k, k])
    condition = equilibrated_condition(r_xx)
    gamma = scipy.linalg.solve_triangular(r_xx, r_xy, check_finite=False) if k else np.zeros(0)
    r_inv = (
        scipy.linalg.solve_triangular(r_xx, np.eye(k), check_finite=False)
        if k
        else np.zeros((0, 0))
    )
    cov_gamma = r_inv @ r_inv.T
    # Back-transform: x_j = scale_j z_j + shift_j, y = scale_y z_y + shift_y.
    shift = np.asarray(transform.shift)
    scale = np.asarray(transform.scale)
    cols = np.flatnonzero(kept)
    t = np.diag(scale[p] / scale[cols])
    offset = np.zeros(k)
    centre_fit = None
    if intercept is not None and kept[intercept]:
        i0 = int(np.flatnonzero(cols == intercept)[0])
        row = -shift[cols] * scale[p] / scale[cols]
        row[i0] = scale[p]
        t[i0, :] = row
        offset[i0] = shift[p]
        centre_fit = float(scale[p] * gamma[i0] + shift[p])
    beta = t @ gamma + offset
    cov_beta = t @ cov_gamma @ t.T / scale[p] ** 2
    params = np.full(p, np.nan)
    params[cols] = beta
    normalized_cov = np.full((p, p), np.nan)
    normalized_cov[np.ix_(cols, cols)] = cov_beta
    # Factor of the original kept columns: X_K = Z_K M with M upper triangular.
    m = np.diag(scale[cols])
    if intercept is not None and kept[intercept]:
        i0 = int(np.flatnonzero(cols == intercept)[0])
        m[i0, :] += shift[cols]
        m[i0, i0] = scale[intercept]
    # Re-triangularize: M is upper triangular only when the intercept comes first.
    r_raw = np.triu(scipy.linalg.qr(r_xx @ m, mode="r", check_finite=False)[0]) if k else r_xx
    return LeastSquaresSolution(
        params=params,
        normalized_cov=normalized_cov,
        ssr=scale[p] ** 2 * r_yy**2,
        kept=kept,
        r_raw=r_raw,
        condition=condition,
        gamma=gamma,
        cov_gamma=cov_gamma,
        to_original=t,
        centre_fit=centre_fit,
        r_inv=r_inv,
        response_scale=float(scale[p]),
    )
