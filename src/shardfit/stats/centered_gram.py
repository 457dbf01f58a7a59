"""The Gram of ``[X | y]`` about each partition's own weighted means, merged exactly.

Accumulating ``Z'WZ`` about a centre far from the data loses digits to cancellation;
accumulating it about the data's mean does not. A fixed centre needs the mean before
the pass (one more read), and a centre from one partition drifts from the rest. Here
every partition centres its dense columns at its own weighted means, and ``merge``
moves both operands to their pooled centre with the exact identity (Chan, Golub &
LeVeque's pairwise update, in matrix form)::

    sum w (z - c')(z - c')' = G + s d' + d s' + W d d',   d = c - c',  s = sum w (z - c)

so one pass gives the Gram about the global weighted mean, as accurate as centring
every row at it. :meth:`CenteredGram.about` then moves it to any centre (the origin
for models without an intercept) and :meth:`CenteredGram.equilibrated` scales it to
unit spread for the solve, as a :class:`~shardfit.stats.gram.GramStatistic` with the
:class:`~shardfit.stats.transform.ColumnTransform` that undoes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shardfit.errors import ShardfitError
from shardfit.stats.gram import GramStatistic, RowTotals, cross_blocks, weight_totals
from shardfit.stats.transform import ColumnTransform, dense_and_sparse

__all__ = ["CenteredGram"]


@dataclass(frozen=True)
class CenteredGram:
    """``G = sum w (z - c)(z - c)'`` over some rows of ``z = [X | y]``, with its centre.

    Attributes
    ----------
    cross : numpy.ndarray
        ``(p + 1, p + 1)`` symmetric ``G``; the response is last.
    center : numpy.ndarray
        ``(p + 1,)`` centre ``c``: weighted means of the centred (dense, non-intercept)
        columns, 0 for the others.
    sums : numpy.ndarray
        ``(p + 1,)`` ``sum w (z - c)`` (near 0 for centred columns).
    centred : numpy.ndarray
        ``(p + 1,)`` bool, the columns that get centred.
    nobs, sum_weights, sum_log_weights, zero_weights
        As in :class:`~shardfit.stats.gram.RowTotals`.
    """

    cross: np.ndarray
    center: np.ndarray
    sums: np.ndarray
    centred: np.ndarray
    nobs: int
    sum_weights: float
    sum_log_weights: float
    zero_weights: int

    @classmethod
    def of_chunk(
        cls,
        X: Any,
        y: np.ndarray,
        weights: np.ndarray | None,
        dense: tuple[bool, ...],
        intercept: int | None,
        *,
        overwrite: bool = False,
    ) -> CenteredGram:
        """The statistic of one partition's (or block's) encoded rows.

        ``dense`` flags the columns of ``X`` stored dense (those get centred, except
        the ``intercept`` column); sparse columns are multiplied through their
        structure, uncentred. A :class:`~shardfit.design.fast_encoder.SplitDesign`
        split this way has its dense columns centred and weighted into a block of our
        own in one sweep; otherwise, with ``overwrite``, the dense block of ``X`` (one
        the caller will not use again) is centred and weighted in place instead of in
        a copy.
        """
        p = len(dense)
        flags = np.asarray(dense, dtype=bool)
        dense_cols = np.flatnonzero(flags)
        sparse_cols = np.flatnonzero(~flags)
        split = hasattr(X, "sparse_rows") and (
            np.array_equal(X.dense_index, dense_cols)
            and np.array_equal(X.sparse_index, sparse_cols)
        )
        # A SplitDesign split this way hands over its sparse block by rows, as the
        # product reads it, and its dense columns, which are centred and weighted into
        # a fresh block in one sweep (the only copy made of them).
        block: np.ndarray | None = None
        if split:
            columns: list[np.ndarray | None] = X.dense_columns()
            sparse = X.sparse_rows
            n = X.shape[0]
        else:
            block, sparse = dense_and_sparse(X, dense_cols, sparse_cols)
            if not (overwrite and block.flags.f_contiguous and block.flags.writeable):
                block = np.array(block, dtype=np.float64, order="F")
            columns = list(block.T)
            n = block.shape[0]
        w, sum_log, zero = weight_totals(weights, n)
        sum_w = float(w.sum())
        centred = np.zeros(p + 1, dtype=bool)
        centred[dense_cols] = True
        centred[p] = True
        if intercept is not None:
            centred[intercept] = False
        center = np.zeros(p + 1)
        if sum_w > 0:
            # Column by column (not one matrix product), so that a block and its
            # columns give the same bits; unweighted, from the column sums (which a
            # SplitDesign has already taken to check them).
            if weights is None:
                totals = X.column_sums() if split else [values.sum() for values in columns]
                center[dense_cols] = np.asarray(totals, dtype=np.float64) / sum_w
            elif split:
                # The encoder may have taken them already (to check the columns).
                center[dense_cols] = X.weighted_sums(w) / sum_w
            else:
                ones = np.ones(n) if any(values is None for values in columns) else None
                center[dense_cols] = [
                    float((ones if values is None else values) @ w) / sum_w for values in columns
                ]
            center[p] = float(y @ w) / sum_w
            center[~centred] = 0.0
        sqrt_w = None if weights is None else np.sqrt(w)
        # Centre and weight the dense columns: in place in a block of our own, or
        # from a SplitDesign's columns into a fresh block (one sweep per column).
        block = _centred_block(columns, n, center[dense_cols], sqrt_w, out=block)
        y_w = np.subtract(y, center[p], dtype=np.float64)
        if sqrt_w is not None:
            np.multiply(y_w, sqrt_w, out=y_w)
        order = np.concatenate([dense_cols, sparse_cols])
        # The sparse rows are weighted inside the product; the same pass gives the
        # weighted sums of the centred dense columns, sqrt(w)' (sqrt(w) * (z - c)),
        # and those of the sparse ones, w' z.
        products = cross_blocks(
            block, sparse, order, y_w, row_scale=sqrt_w, weights=None if weights is None else w
        )
        sums = np.zeros(p + 1)
        sums[dense_cols] = products.dense_sums
        sums[p] = float(np.sum(y_w) if sqrt_w is None else y_w @ sqrt_w)
        if sparse_cols.size:
            sums[sparse_cols] = products.sparse_sums
        return cls(
            cross=products.cross,
            center=center,
            sums=sums,
            centred=centred,
            nobs=n,
            sum_weights=sum_w,
            sum_log_weights=sum_log,
            zero_weights=zero,
        )

    def about(self, center: np.ndarray) -> CenteredGram:
        """The same rows' statistic about another centre (exact identity above)."""
        d = self.center - center
        if not d.any():
            return self
        cross = (
            self.cross
            + np.outer(self.sums, d)
            + np.outer(d, self.sums)
            + self.sum_weights * np.outer(d, d)
        )
        return CenteredGram(
            cross=cross,
            center=np.array(center, dtype=np.float64),
            sums=self.sums + self.sum_weights * d,
            centred=self.centred,
            nobs=self.nobs,
            sum_weights=self.sum_weights,
            sum_log_weights=self.sum_log_weights,
            zero_weights=self.zero_weights,
        )

    def merge(self, other: CenteredGram) -> CenteredGram:
        """Both operands' rows, about their pooled weighted mean."""
        if self.cross.shape != other.cross.shape or not np.array_equal(self.centred, other.centred):
            raise ShardfitError("cannot merge centred Gram statistics of different designs")
        total = self.sum_weights + other.sum_weights
        if total > 0:
            pooled = (self.sum_weights * self.center + other.sum_weights * other.center) / total
        else:
            pooled = self.center
        left, right = self.about(pooled), other.about(pooled)
        return CenteredGram(
            cross=left.cross + right.cross,
            center=pooled,
            sums=left.sums + right.sums,
            centred=self.centred,
            nobs=self.nobs + other.nobs,
            sum_weights=total,
            sum_log_weights=self.sum_log_weights + other.sum_log_weights,
            zero_weights=self.zero_weights + other.zero_weights,
        )

    def spreads(self) -> np.ndarray:
        """Weighted standard deviations of the columns about the centre (0 when
        constant), for scaling."""
        if self.sum_weights <= 0:
            return np.zeros(self.center.size)
        return np.sqrt(np.maximum(np.diag(self.cross), 0.0) / self.sum_weights)

    def equilibrated(
        self, dense: tuple[bool, ...], intercept: int | None
    ) -> tuple[GramStatistic, ColumnTransform]:
        """The Gram of ``z = (x - shift) / scale`` and that transform, for the solve.

        With an intercept the shift is the weighted mean (a reparametrization); without
        one the statistic is moved to the origin (shift 0). Dense columns (and the
        response) are scaled to unit spread, or by their magnitude when constant;
        sparse columns are left as they are.
        """
        p = len(dense)
        flags = np.asarray([*dense, True], dtype=bool)
        spread = self.spreads()
        mean = self.center + (self.sums / self.sum_weights if self.sum_weights > 0 else 0.0)
        magnitude = np.where(spread > 0, spread, np.maximum(np.abs(mean), 1.0))
        scale = np.where(flags, magnitude, 1.0)
        if intercept is not None:
            scale[intercept] = 1.0
            moved = self
        else:
            moved = self.about(np.zeros(p + 1))
        shift = moved.center
        cross = moved.cross / np.outer(scale, scale)
        transform = ColumnTransform(tuple(shift), tuple(scale), tuple(bool(f) for f in dense))
        totals = RowTotals(
            nobs=self.nobs,
            sums=moved.sums / scale,
            sum_weights=self.sum_weights,
            sum_log_weights=self.sum_log_weights,
            zero_weights=self.zero_weights,
        )
        return GramStatistic(cross, totals, transform.fingerprint()), transform

    def to_state(self) -> dict[str, Any]:
        """Arrays and scalars for checkpoints (no pickle)."""
        return {
            "cross": self.cross,
            "center": self.center,
            "sums": self.sums,
            "centred": self.centred,
            "nobs": self.nobs,
            "sum_weights": self.sum_weights,
            "sum_log_weights": self.sum_log_weights,
            "zero_weights": self.zero_weights,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CenteredGram:
        """Inverse of :meth:`to_state`."""
        return cls(
            cross=np.asarray(state["cross"], dtype=np.float64),
            center=np.asarray(state["center"], dtype=np.float64),
            sums=np.asarray(state["sums"], dtype=np.float64),
            centred=np.asarray(state["centred"], dtype=bool),
            nobs=int(state["nobs"]),
            sum_weights=float(state["sum_weights"]),
            sum_log_weights=float(state["sum_log_weights"]),
            zero_weights=int(state["zero_weights"]),
        )


def _centred_block(
    columns: list[np.ndarray | None],
    n: int,
    shift: np.ndarray,
    sqrt_w: np.ndarray | None,
    *,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The Fortran-ordered block ``(x_j - shift_j) * sqrt_w`` of the columns (``None``:
    ones), each written in one sweep. With ``out``, the block the columns are
    columns of, it is done in place; the values are the same bits either way."""
    block = np.empty((n, len(columns)), order="F") if out is None else out
    for j, values in enumerate(columns):
        target = block[:, j]
        if values is None:
            target.fill(1.0 - shift[j])
        elif shift[j] != 0.0:
            np.subtract(values, shift[j], out=target)
        elif out is None:
            np.copyto(target, values)
        if sqrt_w is not None:
            np.multiply(target, sqrt_w, out=target)
    return block
