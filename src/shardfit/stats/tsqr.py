"""The R factor of a tall-skinny QR (TSQR) of weighted ``[X | y]``: the accurate path.

Each partition gives ``R`` of the Householder QR of ``sqrt(w) * Z`` (LAPACK
``dgeqrf``); two factors merge as the ``R`` of the QR of the two stacked. Since
``Z'WZ = R'R`` for every bracketing, the merge is associative in exact arithmetic,
and the engine's fixed tree makes it bitwise reproducible. Solving from ``R`` costs
one condition number of accuracy where the normal equations cost two.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from shardfit.errors import ShardfitError
from shardfit.stats.gram import RowTotals
from shardfit.stats.transform import ColumnTransform

__all__ = ["QRStatistic"]


def square_r(r: np.ndarray) -> np.ndarray:
    """A triangular factor of fewer rows than columns (from fewer rows than columns
    of data) padded with zero rows to square."""
    q = r.shape[1]
    out = np.zeros((q, q))
    out[: r.shape[0]] = r
    return out


def _r_factor(matrix: np.ndarray, q: int) -> np.ndarray:
    if matrix.shape[0] == 0:
        return np.zeros((0, q))
    r = scipy.linalg.qr(matrix, mode="r", overwrite_a=True, check_finite=False)[0]
    return np.triu(r[: min(matrix.shape[0], q)])


@dataclass(frozen=True)
class QRStatistic:
    """The triangular factor of weighted, transformed ``[X | y]`` over some rows.

    Attributes
    ----------
    r : numpy.ndarray
        ``(min(rows, p + 1), p + 1)`` upper-triangular factor; ``R'R = Z'WZ``.
    totals : RowTotals
        Row count and weighted sums.
    transform : str
        Fingerprint of the column transform; merging different ones raises.
    """

    r: np.ndarray
    totals: RowTotals
    transform: str

    @classmethod
    def of_chunk(
        cls,
        X: np.ndarray | sp.spmatrix,
        y: np.ndarray,
        weights: np.ndarray | None,
        transform: ColumnTransform,
    ) -> QRStatistic:
        """The statistic of one partition's encoded rows."""
        dense, sparse = transform.split(X, y)
        q = transform.p + 1
        z = np.empty((dense.shape[0], q), order="F")
        z[:, transform.dense_index] = dense
        if sparse.shape[1]:
            z[:, transform.sparse_index] = sparse.toarray()
        totals = RowTotals.of_blocks(dense, sparse, weights, transform)
        if weights is not None:
            z *= np.sqrt(np.asarray(weights, dtype=np.float64))[:, None]
        return cls(r=_r_factor(z, q), totals=totals, transform=transform.fingerprint())

    def merge(self, other: QRStatistic) -> QRStatistic:
        """The factor of both operands' rows: QR of the stacked factors."""
        if self.transform != other.transform or self.r.shape[1] != other.r.shape[1]:
            raise ShardfitError("cannot merge QR factors of different designs or transforms")
        stacked = np.vstack([self.r, other.r])
        return QRStatistic(
            r=_r_factor(np.asfortranarray(stacked), self.r.shape[1]),
            totals=self.totals.merge(other.totals),
            transform=self.transform,
        )

    def full_r(self) -> np.ndarray:
        """The factor padded with zero rows to ``(p + 1, p + 1)``."""
        return square_r(self.r)

    def to_state(self) -> dict[str, Any]:
        """Arrays and scalars for checkpoints (no pickle)."""
        return {
            "r": self.r,
            "columns": int(self.r.shape[1]),
            "totals": self.totals,
            "transform": self.transform,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> QRStatistic:
        """Inverse of :meth:`to_state`."""
        return cls(
            r=np.asarray(state["r"], dtype=np.float64).reshape(-1, int(state["columns"])),
            totals=state["totals"]
            if isinstance(state["totals"], RowTotals)
            else RowTotals.from_state(state["totals"]),
            transform=str(state["transform"]),
        )
