"""The weighted Gram statistic of ``[X | y]``: the fast path of exact least squares.

For transformed columns ``Z = [X | y]`` (see :class:`~shardfit.stats.transform.
ColumnTransform`) and weights ``w`` it keeps ``Z' W Z``, ``Z' w``, the number of rows,
``sum(w)`` and ``sum(log w)``. All are sums over rows, so ``merge`` is addition:
associative, and bitwise reproducible along the engine's fixed merge tree.

Dense columns are multiplied by BLAS (``dsyrk``); sparse columns through their
structure, in one compiled pass over their rows (:mod:`shardfit.stats._sparse_cross`),
so a one-hot block of 200 levels costs a few products per row, not 200.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.linalg.blas import dsyrk

from shardfit.errors import ShardfitError
from shardfit.stats.transform import ColumnTransform

__all__ = [
    "BlockCross",
    "GramStatistic",
    "RowTotals",
    "block_gram",
    "cross_blocks",
    "scale_rows",
    "weight_totals",
    "weighted_gram",
]


def weighted_gram(
    dense: np.ndarray, sparse: sp.csc_matrix, sqrt_w: np.ndarray | None, order: np.ndarray
) -> np.ndarray:
    """``Z' W Z`` for ``Z = [dense | sparse]`` reordered by ``order``.

    ``order[i]`` is the position in the output of the ``i``-th column of
    ``[dense | sparse]``.
    """
    if sqrt_w is not None:
        dense = np.multiply(dense, sqrt_w[:, None], order="F")
    # The sparse rows are scaled inside the product (no scaled copy of the block).
    return cross_blocks(dense, sparse, order, row_scale=sqrt_w).cross


def scale_rows(sparse: sp.csc_matrix, factor: np.ndarray) -> sp.csc_matrix:
    """``diag(factor) @ sparse``, keeping the CSC structure (no sparse product)."""
    sparse = sp.csc_matrix(sparse)
    return sp.csc_matrix(
        (sparse.data * factor[sparse.indices], sparse.indices, sparse.indptr), shape=sparse.shape
    )


def block_gram(
    dense: np.ndarray,
    sparse: sp.csc_matrix,
    order: np.ndarray,
    response: np.ndarray | None = None,
) -> np.ndarray:
    """``Z'Z`` for ``Z = [dense | sparse]`` (rows already weighted), reordered.

    ``order[i]`` is the output position of the ``i``-th column of ``[dense | sparse]``.
    A ``response`` vector is one more column of ``Z``, placed last in the output.
    """
    return cross_blocks(dense, sparse, order, response).cross


class BlockCross(NamedTuple):
    """What :func:`cross_blocks` computes in its passes over the rows."""

    cross: np.ndarray  # Z'Z, reordered
    sparse_sums: np.ndarray  # (ks,) sparse' weights, the sparse block unscaled
    dense_sums: np.ndarray  # (kd,) dense' row_scale


def cross_blocks(
    dense: np.ndarray,
    sparse: sp.spmatrix,
    order: np.ndarray,
    response: np.ndarray | None = None,
    *,
    row_scale: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> BlockCross:
    """:func:`block_gram` of ``[dense | diag(row_scale) sparse]``, with column sums.

    ``dense`` and ``response`` come with their rows already scaled; the sparse block's
    rows are scaled inside the product, so no scaled copy of it is made (any SciPy
    format; CSR is read without a conversion). The sums are those of the unscaled
    sparse block weighted by ``weights`` and of the dense block weighted by
    ``row_scale`` (ones when ``None``), taken in the same pass.
    """
    n, kd = dense.shape
    ks = sparse.shape[1]
    extra = 0 if response is None else 1
    q = kd + ks + extra
    if n and kd:
        upper = dsyrk(1.0, dense, trans=1, lower=0)
        dd = np.triu(upper) + np.triu(upper, 1).T
    else:
        dd = np.zeros((kd, kd))
    if ks:
        # One compiled pass over the rows: S'D, S'S, S'y, S'w, D'r and D'y together.
        from shardfit.stats._sparse_cross import sparse_cross

        sd, ss, sy, sparse_sums, dense_sums, dy = sparse_cross(
            dense, sparse, response, row_scale, weights
        )
    else:
        sd, ss, sy, sparse_sums = np.zeros((0, kd)), np.zeros((0, 0)), np.zeros(0), np.zeros(0)
        dense_sums = dense.T @ (np.ones(n) if row_scale is None else row_scale)
        dy = dense.T @ response if response is not None else np.zeros(kd)
    rows = [[dd, sd.T], [sd, ss]]
    if response is not None:
        dy = dy[:, None]
        yy = np.array([[response @ response]])
        sy = sy.reshape(ks, 1)
        rows = [[dd, sd.T, dy], [sd, ss, sy], [dy.T, sy.T, yy]]
    full = np.block(rows)
    out = np.zeros((q, q))
    where = np.concatenate([order, [q - 1]]) if extra else order
    out[np.ix_(where, where)] = full
    return BlockCross(out, sparse_sums, dense_sums)


def weight_totals(weights: np.ndarray | None, n: int) -> tuple[np.ndarray, float, int]:
    """The weights of ``n`` rows (ones when ``None``), ``sum(log w)`` over the positive
    ones and the number of zero weights."""
    if weights is None:
        return np.ones(n), 0.0, 0
    w = np.asarray(weights, dtype=np.float64)
    positive = w > 0
    return w, float(np.sum(np.log(w[positive]))), int(n - positive.sum())


@dataclass(frozen=True)
class RowTotals:
    """Row count and weighted sums of transformed ``[X | y]`` (merge: addition).

    Attributes
    ----------
    nobs : int
        Rows used.
    sums : numpy.ndarray
        ``(p + 1,)`` weighted column sums ``Z' w``.
    sum_weights, sum_log_weights : float
        ``sum(w)``, and ``sum(log w)`` over rows with positive weight.
    zero_weights : int
        Rows with zero weight.
    """

    nobs: int
    sums: np.ndarray
    sum_weights: float
    sum_log_weights: float
    zero_weights: int

    @classmethod
    def of_blocks(
        cls,
        dense: np.ndarray,
        sparse: sp.csc_matrix,
        weights: np.ndarray | None,
        transform: ColumnTransform,
        *,
        dense_weighted: bool = False,
    ) -> RowTotals:
        """Totals of one partition from its split, transformed blocks.

        With ``dense_weighted`` the dense block's rows are already multiplied by
        ``sqrt(w)`` (the sparse block's never are).
        """
        n = dense.shape[0]
        w = weight_totals(weights, n)[0]
        dense_sums = dense.T @ (np.sqrt(w) if dense_weighted else w)
        return cls.of_sums(dense_sums, sparse.T @ w, weights, n, transform)

    @classmethod
    def of_sums(
        cls,
        dense_sums: np.ndarray,
        sparse_sums: np.ndarray,
        weights: np.ndarray | None,
        n: int,
        transform: ColumnTransform,
    ) -> RowTotals:
        """Totals of ``n`` rows from their column sums, already taken."""
        w, sum_log, zero = weight_totals(weights, n)
        sums = np.zeros(transform.p + 1)
        sums[transform.dense_index] = dense_sums
        if transform.sparse_index.size:
            sums[transform.sparse_index] = sparse_sums
        return cls(
            nobs=n,
            sums=sums,
            sum_weights=float(w.sum()),
            sum_log_weights=sum_log,
            zero_weights=zero,
        )

    def merge(self, other: RowTotals) -> RowTotals:
        """Both operands' rows."""
        return RowTotals(
            nobs=self.nobs + other.nobs,
            sums=self.sums + other.sums,
            sum_weights=self.sum_weights + other.sum_weights,
            sum_log_weights=self.sum_log_weights + other.sum_log_weights,
            zero_weights=self.zero_weights + other.zero_weights,
        )

    def to_state(self) -> dict[str, Any]:
        """Arrays and scalars for checkpoints (no pickle)."""
        return {
            "nobs": self.nobs,
            "sums": self.sums,
            "sum_weights": self.sum_weights,
            "sum_log_weights": self.sum_log_weights,
            "zero_weights": self.zero_weights,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RowTotals:
        """Inverse of :meth:`to_state`."""
        return cls(
            nobs=int(state["nobs"]),
            sums=np.asarray(state["sums"], dtype=np.float64),
            sum_weights=float(state["sum_weights"]),
            sum_log_weights=float(state["sum_log_weights"]),
            zero_weights=int(state["zero_weights"]),
        )


@dataclass(frozen=True)
class GramStatistic:
    """``Z'WZ`` of transformed ``[X | y]`` over some rows, with row totals.

    Attributes
    ----------
    cross : numpy.ndarray
        ``(p + 1, p + 1)`` symmetric matrix ``Z' W Z``; the response is last.
    totals : RowTotals
        Row count and weighted sums.
    transform : str
        Fingerprint of the column transform; merging different ones raises.
    """

    cross: np.ndarray
    totals: RowTotals
    transform: str

    @classmethod
    def of_chunk(
        cls,
        X: np.ndarray | sp.spmatrix,
        y: np.ndarray,
        weights: np.ndarray | None,
        transform: ColumnTransform,
    ) -> GramStatistic:
        """The statistic of one partition's encoded rows."""
        sqrt_w = None if weights is None else np.sqrt(np.asarray(weights, dtype=np.float64))
        # The dense block comes back already multiplied by sqrt(w): one sweep, one copy.
        dense_w, sparse = transform.split(X, y, row_scale=sqrt_w)
        order = np.concatenate([transform.dense_index, transform.sparse_index])
        # The same pass over the rows gives the column sums: sqrt(w)' (sqrt(w) * x) of
        # the dense columns, w' x of the sparse ones.
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        products = cross_blocks(dense_w, sparse, order, row_scale=sqrt_w, weights=w)
        n = dense_w.shape[0]
        return cls(
            cross=products.cross,
            totals=RowTotals.of_sums(
                products.dense_sums, products.sparse_sums, weights, n, transform
            ),
            transform=transform.fingerprint(),
        )

    def merge(self, other: GramStatistic) -> GramStatistic:
        """Both operands' rows: every field adds."""
        if self.transform != other.transform or self.cross.shape != other.cross.shape:
            raise ShardfitError(
                "cannot merge Gram statistics of different designs or column transforms"
            )
        return GramStatistic(
            cross=self.cross + other.cross,
            totals=self.totals.merge(other.totals),
            transform=self.transform,
        )

    def to_state(self) -> dict[str, Any]:
        """Arrays and scalars for checkpoints (no pickle)."""
        return {"cross": self.cross, "totals": self.totals, "transform": self.transform}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GramStatistic:
        """Inverse of :meth:`to_state`."""
        totals = state["totals"]
        return cls(
            cross=np.asarray(state["cross"], dtype=np.float64),
            totals=totals if isinstance(totals, RowTotals) else RowTotals.from_state(totals),
            transform=str(state["transform"]),
        )
