"""The R factor of weighted rows centred at their own weighted means, merged exactly.

A TSQR factor of the raw rows ``sqrt(w) [X | 1]`` gives the centred factor only
through a cancellation: its singular values lose ``log10(|mean| / spread)`` digits. Here
every block's rows are centred at the block's own weighted means before its QR, and two
blocks merge with the QR analogue of Chan, Golub & LeVeque's pairwise variance update::

    S = S_a + S_b + (W_a W_b / W) (m_a - m_b)(m_a - m_b)',   W = W_a + W_b

so the factor of the union is the ``R`` of the stack ``[R_a; R_b; sqrt(W_a W_b / W)
(m_a - m_b)']``. Every value in it is of the size of the centred data, so one pass
gives the factor about the global weighted mean as accurately as centring every row
at it beforehand, whatever the columns' offset.

A centre is a float and cannot be the exact mean: the rows are centred at ``center``
and the small remainder ``excess = mean - center`` is kept (the weighted mean of the
centred rows, the role of :class:`~shardfit.stats.centered_gram.CenteredGram`'s
``sums``). The merge uses ``center + excess``: dropping the remainder would add a cross
term ``2 W_a excess_a (m_a - m)'``, first order in ``eps |mean|`` (2e-10 relative error
at an offset of 1e8). What remains is ``R'R = S + W excess excess'``, second order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from shardfit.errors import ShardfitError
from shardfit.stats.transform import ColumnTransform
from shardfit.stats.tsqr import _r_factor, square_r

__all__ = ["CenteredQR"]


@dataclass(frozen=True)
class CenteredQR:
    """The triangular factor of ``sqrt(w) (X - mean)`` over some rows, with the mean.

    Attributes
    ----------
    r : numpy.ndarray
        ``(min(rows, p), p)`` upper-triangular factor of the rows centred at ``center``:
        ``R'R = sum w (x - mean)(x - mean)' + W excess excess'``.
    center : numpy.ndarray
        ``(p,)`` the centre the rows were taken about (a float near the weighted mean).
    excess : numpy.ndarray
        ``(p,)`` weighted mean minus ``center`` (tiny: rounding of the mean).
    nobs : int
        Rows.
    sum_weights : float
        ``W = sum(w)`` (``nobs`` unweighted).
    """

    r: np.ndarray
    center: np.ndarray
    excess: np.ndarray
    nobs: int
    sum_weights: float

    @classmethod
    def of_chunk(
        cls, X: np.ndarray | sp.spmatrix, weights: np.ndarray | None, dense: tuple[bool, ...]
    ) -> CenteredQR:
        """The statistic of one block of encoded rows (``weights`` positive).

        ``dense`` flags the columns of ``X`` stored dense; every column is centred
        (a PCA centres dummy columns too), so the sparse ones are densified.
        """
        p = len(dense)
        identity = ColumnTransform((0.0,) * (p + 1), (1.0,) * (p + 1), dense)
        block, sparse = identity.split(X, None)
        n = block.shape[0]
        z = np.empty((n, p), order="F")
        z[:, np.flatnonzero(dense)] = block
        if sparse.shape[1]:
            z[:, identity.sparse_index] = sparse.toarray()
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        sum_w = float(n if w is None else w.sum())
        center = np.zeros(p)
        excess = np.zeros(p)
        if n == 0 or not sum_w > 0:
            return cls(np.zeros((0, p)), center, excess, n, sum_w)
        for j in range(p):
            column = z[:, j]
            # Two steps, so the centre is the float nearest the mean (the first step's
            # rounding, up to log2(n) eps |mean|, is measured on centred values and
            # removed); then the rows are centred at it and the remainder is kept.
            first = _weighted_mean(column, w, sum_w)
            center[j] = first + _weighted_mean(column - first, w, sum_w)
            np.subtract(column, center[j], out=column)
            excess[j] = _weighted_mean(column, w, sum_w)
        if w is not None:
            z *= np.sqrt(w)[:, None]
        return cls(_r_factor(z, p), center, excess, n, sum_w)

    def merge(self, other: CenteredQR) -> CenteredQR:
        """Both operands' rows, about their pooled weighted mean."""
        if self.r.shape[1] != other.r.shape[1]:
            raise ShardfitError(
                "cannot merge centred QR factors of designs with "
                f"{self.r.shape[1]} and {other.r.shape[1]} columns"
            )
        nobs = self.nobs + other.nobs
        total = self.sum_weights + other.sum_weights
        # An operand without rows (all dropped) adds nothing; its centre means nothing.
        if not other.sum_weights > 0:
            return CenteredQR(self.r, self.center, self.excess, nobs, total)
        if not self.sum_weights > 0:
            return CenteredQR(other.r, other.center, other.excess, nobs, total)
        # m_b - m_a from the centres (close values: the difference is exact or nearly)
        # and the remainders: of the size of the spread, not of the offset.
        delta = (other.center - self.center) + (other.excess - self.excess)
        share = other.sum_weights / total
        # sqrt(W_a W_b / W) without forming W_a W_b (weights may be huge).
        row = np.sqrt(self.sum_weights * share) * delta
        stacked = np.vstack([self.r, other.r, row[None, :]])
        r = _r_factor(np.asfortranarray(stacked), self.r.shape[1])
        # m = m_a + share * (m_b - m_a): the centre rounds it to a float, and the
        # rounding error (exact, by Knuth's two-sum) joins the remainder.
        step = share * delta
        center = self.center + step
        error = _two_sum_error(self.center, step, center)
        return CenteredQR(r, center, self.excess + error, nobs, total)

    @property
    def mean(self) -> np.ndarray:
        """The weighted column means."""
        return self.center + self.excess

    def full_r(self) -> np.ndarray:
        """The factor padded with zero rows to ``(p, p)``."""
        return square_r(self.r)

    def to_state(self) -> dict[str, Any]:
        """Arrays and scalars for checkpoints (no pickle)."""
        return {
            "r": self.r,
            "columns": int(self.r.shape[1]),
            "center": self.center,
            "excess": self.excess,
            "nobs": self.nobs,
            "sum_weights": self.sum_weights,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CenteredQR:
        """Inverse of :meth:`to_state`."""
        return cls(
            r=np.asarray(state["r"], dtype=np.float64).reshape(-1, int(state["columns"])),
            center=np.asarray(state["center"], dtype=np.float64),
            excess=np.asarray(state["excess"], dtype=np.float64),
            nobs=int(state["nobs"]),
            sum_weights=float(state["sum_weights"]),
        )


def _weighted_mean(values: np.ndarray, w: np.ndarray | None, sum_w: float) -> float:
    """``sum(w x) / sum(w)`` (pairwise summation unweighted)."""
    return float((values.sum() if w is None else values @ w) / sum_w)


def _two_sum_error(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``(a + b) - s`` exactly, for ``s = fl(a + b)`` (Knuth's TwoSum)."""
    b_part = s - a
    a_part = s - b_part
    return (a - a_part) + (b - b_part)
