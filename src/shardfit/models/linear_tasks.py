"""What each partition computes for linear models (runs on workers).

Every task encodes its partition with the learned design and returns a small
mergeable statistic: design-column moments (to choose the column transform), the
Gram or TSQR factor of ``[X | y]`` with row counts, and the sandwich "meat" of robust
covariances (per-row for HC0-HC3, per-cluster score sums for cluster, by each of two
columns and their pairs for two-way cluster, the lag windows of
:mod:`shardfit.models.hac` for HAC and hac-panel, per-time-value score sums for
hac-groupsum).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import scipy.sparse as sp

from shardfit.data.partition import Partition
from shardfit.design.materialize import DesignChunk, encode_blocks
from shardfit.design.spec import DesignSpec
from shardfit.errors import DesignError, ShardfitError
from shardfit.models.hac import LagWindow, PanelLagWindow, TimeScoreSums
from shardfit.stats.centered_gram import CenteredGram
from shardfit.stats.counts import RowCounts
from shardfit.stats.gram import GramStatistic, weighted_gram
from shardfit.stats.transform import ColumnTransform
from shardfit.stats.tsqr import QRStatistic

__all__ = [
    "CenteredGramTask",
    "ClusterScores",
    "ColumnMoments",
    "LeastSquaresPass",
    "LeastSquaresTask",
    "MeatStatistic",
    "MomentsTask",
    "RobustTask",
    "TwoWayClusterScores",
    "fold_blocks",
]

Missing = Literal["drop", "raise"]
S = TypeVar("S")


def fold_blocks(
    spec: DesignSpec,
    partition: Partition,
    missing: Missing,
    statistic_of: Callable[[DesignChunk], S],
) -> tuple[S, RowCounts]:
    """Encode ``partition`` block by block (see
    :func:`~shardfit.design.materialize.encode_blocks`) and merge ``statistic_of``
    each block in row order: memory is bounded by the block, not the partition."""
    merged: Any = None
    read, skipped, dropped = 0, 0, Counter[str]()
    for chunk in encode_blocks(spec, partition, missing=missing, structured=True):
        piece = statistic_of(chunk)
        merged = piece if merged is None else merged.merge(piece)
        read += chunk.rows_read
        skipped += chunk.skipped_rows
        dropped.update(chunk.dropped)
    return merged, RowCounts.of_partition(partition.key, read, dict(dropped), skipped)


@dataclass(frozen=True)
class ColumnMoments:
    """Count, means and sums of squared deviations of the columns of ``[X | y]``
    (Chan et al.'s pairwise merge), and the rows read to get them."""

    n: int
    mean: np.ndarray
    m2: np.ndarray
    rows_read: int = 0

    def merge(self, other: ColumnMoments) -> ColumnMoments:
        n = self.n + other.n
        rows_read = self.rows_read + other.rows_read
        if n == 0:
            return ColumnMoments(0, self.mean, self.m2, rows_read)
        delta = other.mean - self.mean
        return ColumnMoments(
            n=n,
            mean=self.mean + delta * other.n / n,
            m2=self.m2 + other.m2 + delta**2 * self.n * other.n / n,
            rows_read=rows_read,
        )

    @property
    def std(self) -> np.ndarray:
        """Population standard deviations (0 for constant columns)."""
        return np.sqrt(self.m2 / self.n) if self.n else np.zeros_like(self.m2)


def mean_and_m2(columns: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and sum of squared deviations, a column at a time (no
    block-sized temporaries); zeros for columns of no rows."""
    mean = np.zeros(len(columns))
    m2 = np.zeros(len(columns))
    for j, values in enumerate(columns):
        if values.size:
            mean[j] = values.mean()
            deviation = values - mean[j]
            m2[j] = np.dot(deviation, deviation)
    return mean, m2


@dataclass(frozen=True)
class MomentsTask:
    """Moments of the encoded design of one partition (to pick shifts and scales)."""

    spec: DesignSpec
    missing: Missing

    def __call__(self, partition: Partition) -> ColumnMoments:
        moments, _ = fold_blocks(self.spec, partition, self.missing, self._of_block)
        return moments

    def _of_block(self, chunk: DesignChunk) -> ColumnMoments:
        # Only dense columns get shifted and scaled: the sparse ones are left out (their
        # moments stay 0), which keeps this O(rows x dense columns) in time and memory.
        p = len(self.spec.column_names)
        if hasattr(chunk.X, "dense_index"):
            dense, index = chunk.X.dense, chunk.X.dense_index
        else:
            dense, index = chunk.X, np.arange(p)
        mean = np.zeros(p + 1)
        m2 = np.zeros(p + 1)
        where = [*index, p]
        mean[where], m2[where] = mean_and_m2([*dense.T, chunk.y])
        return ColumnMoments(chunk.nrows, mean, m2, chunk.rows_read)


@dataclass(frozen=True)
class LeastSquaresPass:
    """The merged result of a least-squares pass: the factor statistic and row counts."""

    core: GramStatistic | QRStatistic | CenteredGram
    counts: RowCounts

    def merge(self, other: LeastSquaresPass) -> LeastSquaresPass:
        return LeastSquaresPass(self.core.merge(other.core), self.counts.merge(other.counts))  # type: ignore[arg-type]

    def to_state(self) -> dict[str, Any]:
        return {"core": self.core, "counts": self.counts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LeastSquaresPass:
        return cls(core=state["core"], counts=state["counts"])


@dataclass(frozen=True)
class LeastSquaresTask:
    """Encode a partition and accumulate the Gram (``"gram"``) or TSQR factor (``"qr"``)."""

    spec: DesignSpec
    transform: ColumnTransform
    kind: Literal["gram", "qr"]
    missing: Missing

    def fingerprint(self) -> str:
        # missing= changes the result (drop vs raise): a checkpoint of one is not the other's.
        return (
            f"ls-{self.kind}-{self.missing}-{self.spec.fingerprint()}-"
            f"{self.transform.fingerprint()}"
        )

    def __call__(self, partition: Partition) -> LeastSquaresPass:
        return LeastSquaresPass(*fold_blocks(self.spec, partition, self.missing, self._of_block))

    def _of_block(self, chunk: DesignChunk) -> GramStatistic | QRStatistic:
        assert chunk.y is not None
        statistic = GramStatistic if self.kind == "gram" else QRStatistic
        return statistic.of_chunk(chunk.X, chunk.y, chunk.weights, self.transform)


@dataclass(frozen=True)
class CenteredGramTask:
    """Encode a partition and accumulate the Gram of ``[X | y]`` about its own weighted
    means (see :class:`~shardfit.stats.centered_gram.CenteredGram`): no pass is needed
    beforehand to choose a centre."""

    spec: DesignSpec
    dense: tuple[bool, ...]  # spec.dense_columns(), worked out once on the driver
    intercept: int | None
    missing: Missing

    def fingerprint(self) -> str:
        return f"ls-centred-gram-{self.missing}-{self.spec.fingerprint()}-{self.intercept}"

    def __call__(self, partition: Partition) -> LeastSquaresPass:
        return LeastSquaresPass(*fold_blocks(self.spec, partition, self.missing, self._of_block))

    def _of_block(self, chunk: DesignChunk) -> CenteredGram:
        assert chunk.y is not None
        # The block is encoded for this call only: it may be centred and weighted in place.
        return CenteredGram.of_chunk(
            chunk.X, chunk.y, chunk.weights, self.dense, self.intercept, overwrite=True
        )


@dataclass(frozen=True)
class MeatStatistic:
    """``sum_i s_i z_i z_i'`` over rows (``z`` transformed kept columns, ``s`` the
    HC scale of the row); merge is addition."""

    meat: np.ndarray

    def merge(self, other: MeatStatistic) -> MeatStatistic:
        return MeatStatistic(self.meat + other.meat)

    def to_state(self) -> dict[str, Any]:
        return {"meat": self.meat}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MeatStatistic:
        return cls(np.asarray(state["meat"], dtype=np.float64))


@dataclass(frozen=True)
class ClusterScores:
    """Per-cluster sums of scores ``sum_{i in g} w_i e_i z_i``; clusters may span
    partitions, so sums are kept by cluster id and added on merge. Memory is
    O(clusters x columns)."""

    keys: tuple[Any, ...]
    sums: np.ndarray

    def merge(self, other: ClusterScores) -> ClusterScores:
        index = {key: i for i, key in enumerate(self.keys)}
        new_keys = [key for key in other.keys if key not in index]
        sums = np.vstack([self.sums, np.zeros((len(new_keys), self.sums.shape[1]))])
        for offset, key in enumerate(new_keys):
            index[key] = len(self.keys) + offset
        rows = np.array([index[key] for key in other.keys], dtype=np.intp)
        if rows.size:
            np.add.at(sums, rows, other.sums)
        return ClusterScores(self.keys + tuple(new_keys), sums)

    def to_state(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "sums": self.sums}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ClusterScores:
        return cls(tuple(state["keys"]), np.asarray(state["sums"], dtype=np.float64))


@dataclass(frozen=True)
class TwoWayClusterScores:
    """Per-cluster score sums by the first column, by the second, and by each pair of
    their values (the intersection clusters): two-way clustering's three one-way
    meats (Cameron, Gelbach and Miller's ``V_1 + V_2 - V_12``)."""

    first: ClusterScores
    second: ClusterScores
    pair: ClusterScores  # keys are (first value, second value) tuples

    def merge(self, other: TwoWayClusterScores) -> TwoWayClusterScores:
        return TwoWayClusterScores(
            self.first.merge(other.first),
            self.second.merge(other.second),
            self.pair.merge(other.pair),
        )

    def to_state(self) -> dict[str, Any]:
        # The pair keys as two lists: a saved tuple would come back a list (unhashable).
        return {
            "first": self.first.to_state(),
            "second": self.second.to_state(),
            "pair_first": [key[0] for key in self.pair.keys],
            "pair_second": [key[1] for key in self.pair.keys],
            "pair_sums": self.pair.sums,
        }

    def meat(
        self, nobs: int, k_params: int, basis: np.ndarray | None = None
    ) -> tuple[np.ndarray, int]:
        """statsmodels' ``cov_cluster_2groups`` middle: ``M_1 + M_2 - M_12``, each
        one-way meat times its own ``G / (G - 1) (n - 1) / (n - k)``, of the score sums
        times ``basis`` (when given); and ``min(G_1, G_2)``, the clusters inference
        counts.

        Raises
        ------
        DesignError
            A column with fewer than 2 clusters.
        """
        counts = [len(self.first.keys), len(self.second.keys)]
        if min(counts) < 2:
            raise DesignError(
                f"two-way cluster covariance needs at least 2 clusters in each column; "
                f"found {counts[0]} and {counts[1]}"
            )
        total: np.ndarray | None = None
        for one_way, sign in ((self.first, 1.0), (self.second, 1.0), (self.pair, -1.0)):
            sums = one_way.sums if basis is None else one_way.sums @ basis
            groups = len(one_way.keys)  # the pairs' count is at least each column's
            correction = groups / (groups - 1) * (nobs - 1) / (nobs - k_params)
            term = sign * correction * (sums.T @ sums)
            total = term if total is None else total + term
        assert total is not None
        return total, min(counts)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TwoWayClusterScores:
        keys = tuple(zip(state["pair_first"], state["pair_second"], strict=True))
        return cls(
            ClusterScores.from_state(state["first"]),
            ClusterScores.from_state(state["second"]),
            ClusterScores(keys, np.asarray(state["pair_sums"], dtype=np.float64)),
        )


@dataclass(frozen=True)
class RobustTask:
    """Second pass for robust covariances, in the transformed, kept columns.

    ``gamma`` and ``cov_gamma`` are the transformed coefficients and
    ``(Z_K' W Z_K)^{-1}``; residuals are ``e = z_y - Z_K gamma``.

    With ``r_inv`` (``R^{-1}``, ``cov_gamma = R^{-1} R^{-T}``), the heteroskedasticity
    meat is summed over rows ``u_i = z_i' R^{-1}``, whose columns are orthonormal
    under ``W``: the driver's sandwich ``R^{-1} (sum s_i u_i u_i') R^{-T}`` then loses
    ``cond * eps``, where ``cov_gamma (sum s_i z_i z_i') cov_gamma`` loses
    ``cond**2 * eps`` (a NaN intercept standard error at a condition number of 1e7).
    It costs a product by ``R^{-1}`` per row, so the driver asks for it only for
    ill-conditioned designs.

    ``groups`` is one column (one-way cluster) or two (two-way); ``hac_weights`` are
    the kernel weights of lags ``0..maxlags`` for ``cov_type="HAC"`` and
    ``"hac-panel"``; ``hac_column`` is the group or time column of ``"hac-panel"``
    (``hac_by`` says which) and the time column of ``"hac-groupsum"``, whose distinct
    values are capped at ``time_cap``.
    """

    spec: DesignSpec
    transform: ColumnTransform
    kept: tuple[bool, ...]
    gamma: np.ndarray
    cov_gamma: np.ndarray
    cov_type: str
    groups: str | tuple[str, ...] | None
    missing: Missing
    r_inv: np.ndarray | None = None
    hac_weights: tuple[float, ...] | None = None
    hac_column: str | None = None
    hac_by: Literal["groups", "time"] | None = None
    time_cap: int | None = None

    def fingerprint(self) -> str:
        # hashlib, not hash(): the key must be the same in every process and run.
        basis = b"" if self.r_inv is None else b"orthonormal" + self.r_inv.tobytes()
        options = repr(
            (self.groups, self.hac_weights, self.hac_column, self.hac_by, self.time_cap)
        ).encode()
        digest = hashlib.sha256(
            self.gamma.tobytes() + self.cov_gamma.tobytes() + basis + options
        ).hexdigest()
        return f"robust-{self.cov_type}-{self.missing}-{self.spec.fingerprint()}-{digest[:16]}"

    def __call__(self, partition: Partition) -> RobustStatistic:
        meat, _ = fold_blocks(self.spec, partition, self.missing, self._of_block)
        return meat

    def _of_block(self, chunk: DesignChunk) -> RobustStatistic:
        assert chunk.y is not None
        dense, sparse, order = self._kept_blocks(chunk)
        z_y = dense[:, -1]
        dense = dense[:, :-1]
        kd = dense.shape[1]
        gamma = self.gamma[order]  # coefficients in block order [dense | sparse]
        fitted = dense @ gamma[:kd] + (sparse @ gamma[kd:] if sparse.shape[1] else 0.0)
        w = np.ones(z_y.size) if chunk.weights is None else chunk.weights
        score_weight = w * (z_y - fitted)  # the score of row i is w_i e_i z_i
        if self.cov_type in ("HAC", "hac-panel", "hac-groupsum"):
            # Rows in the order read (blocks and partitions are merged in that order).
            if self.r_inv is not None:
                z = orthonormal_rows(self.r_inv, dense, sparse, order)
            else:
                z = _kept_order_rows(dense, sparse, order)
            return hac_statistic(
                self.cov_type,
                z * score_weight[:, None],
                None if self.hac_column is None else chunk.extras[self.hac_column],
                self.hac_weights,
                self.hac_by,
                self.hac_column,
                self.time_cap,
            )
        if self.cov_type == "cluster":
            if self.groups is None:
                raise ShardfitError("cluster covariance needs groups")
            if self.r_inv is not None:
                # Each row's score in the orthonormal basis before the clusters' sums.
                u = orthonormal_rows(self.r_inv, dense, sparse, order)
                dense, sparse = u, sp.csc_matrix((u.shape[0], 0))
                order = np.arange(u.shape[1], dtype=np.intp)
            if isinstance(self.groups, tuple):
                return _two_way_scores(
                    [chunk.extras[name] for name in self.groups], score_weight, dense, sparse, order
                )
            return _cluster_scores(chunk.extras[self.groups], score_weight, dense, sparse, order)
        scale = score_weight**2  # wexog = sqrt(w) z, wresid = sqrt(w) e
        if self.r_inv is not None:
            return self._orthonormal_meat(
                orthonormal_rows(self.r_inv, dense, sparse, order), w, scale
            )
        if self.cov_type in ("HC2", "HC3"):
            leverage = w * _row_quadratic_forms(dense, sparse, self.cov_gamma[np.ix_(order, order)])
            scale = scale / (1.0 - leverage) ** (1 if self.cov_type == "HC2" else 2)
        return MeatStatistic(weighted_gram(dense, sparse, np.sqrt(scale), order))

    def _orthonormal_meat(self, u: np.ndarray, w: np.ndarray, scale: np.ndarray) -> MeatStatistic:
        """``sum s_i u_i u_i'`` over the rows ``u_i`` in the orthonormal basis; the
        leverages are ``w_i |u_i|**2``."""
        if self.cov_type in ("HC2", "HC3"):
            leverage = w * np.einsum("ij,ij->i", u, u)
            scale = scale / (1.0 - leverage) ** (1 if self.cov_type == "HC2" else 2)
        root = np.sqrt(scale)
        weighted = u * root[:, None]
        return MeatStatistic(weighted.T @ weighted)

    def _kept_blocks(self, chunk: Any) -> tuple[np.ndarray, sp.csc_matrix, np.ndarray]:
        """Transformed kept columns as a dense block (response last) and a sparse block,
        and for each block column its position among the kept columns."""
        dense, sparse = self.transform.split(chunk.X, chunk.y)
        kept = np.asarray(self.kept, dtype=bool)
        position = np.full(kept.size, -1)
        position[kept] = np.arange(int(kept.sum()))
        dense_cols = self.transform.dense_index[:-1]
        sparse_cols = self.transform.sparse_index
        keep_dense = kept[dense_cols]
        keep_sparse = kept[sparse_cols]
        dense = np.asfortranarray(
            dense[:, np.append(np.flatnonzero(keep_dense), dense.shape[1] - 1)]
        )
        sparse = sparse[:, np.flatnonzero(keep_sparse)]
        order = np.concatenate(
            [position[dense_cols[keep_dense]], position[sparse_cols[keep_sparse]]]
        )
        return dense, sp.csc_matrix(sparse), order.astype(np.intp)


def orthonormal_rows(
    r_inv: np.ndarray, dense: np.ndarray, sparse: sp.csc_matrix, order: np.ndarray
) -> np.ndarray:
    """Rows ``u_i = z_i' R^{-1}`` of a block of kept columns ``[dense | sparse]``
    (``order``: each block column's position among the kept columns), whose columns
    are orthonormal under the fit's weights when ``R'R = Z'WZ``: sums of products of
    them keep their accuracy however ill-conditioned ``Z`` is (see
    :class:`RobustTask`)."""
    kd = dense.shape[1]
    u = dense @ r_inv[order[:kd]]
    if sparse.shape[1]:
        u += sparse @ r_inv[order[kd:]]
    return np.asfortranarray(u)


def hac_statistic(
    cov_type: str,
    scores: np.ndarray,
    keys: np.ndarray | None,
    weights: tuple[float, ...] | None,
    by: Literal["groups", "time"] | None,
    column: str | None,
    cap: int | None,
) -> LagWindow | PanelLagWindow | TimeScoreSums:
    """The HAC-type statistic of a block's scores (rows in the order read; ``keys``
    the block's values of the group or time column): the lag window of ``"HAC"``, the
    panel's of ``"hac-panel"``, the per-time sums of ``"hac-groupsum"``."""
    if cov_type == "hac-groupsum":
        assert keys is not None and column is not None and cap is not None
        return TimeScoreSums.of_scores(scores, keys, column, cap)
    assert weights is not None
    if cov_type == "hac-panel":
        assert keys is not None and by is not None
        return PanelLagWindow.of_scores(scores, keys, np.asarray(weights), by)
    return LagWindow.of_scores(scores, np.asarray(weights))


def _kept_order_rows(dense: np.ndarray, sparse: sp.csc_matrix, order: np.ndarray) -> np.ndarray:
    """The block's rows ``[dense | sparse]`` as a dense array in kept-column order."""
    z = np.empty((dense.shape[0], order.size))
    kd = dense.shape[1]
    z[:, order[:kd]] = dense
    if sparse.shape[1]:
        z[:, order[kd:]] = sparse.toarray()
    return z


def _row_quadratic_forms(
    dense: np.ndarray, sparse: sp.csc_matrix, matrix: np.ndarray
) -> np.ndarray:
    """``z_i' M z_i`` for every row ``z_i = [dense_i | sparse_i]`` (M in block order)."""
    kd = dense.shape[1]
    product = dense @ matrix[:kd] + (sparse @ matrix[kd:] if sparse.shape[1] else 0.0)
    forms = np.einsum("ij,ij->i", dense, product[:, :kd])
    if sparse.shape[1]:
        forms += np.asarray(sparse.multiply(product[:, kd:]).sum(axis=1)).ravel()
    return forms


def _cluster_scores(
    ids: np.ndarray,
    score_weight: np.ndarray,
    dense: np.ndarray,
    sparse: sp.csc_matrix,
    order: np.ndarray,
) -> ClusterScores:
    """Per-cluster sums of ``w e z`` in kept-column order."""
    keys, inverse = np.unique(ids, return_inverse=True)
    keys_out = tuple(k.item() if hasattr(k, "item") else k for k in keys)
    return ClusterScores(keys_out, _sums_by(inverse, len(keys), score_weight, dense, sparse, order))


def _two_way_scores(
    ids: list[np.ndarray],
    score_weight: np.ndarray,
    dense: np.ndarray,
    sparse: sp.csc_matrix,
    order: np.ndarray,
) -> TwoWayClusterScores:
    """Per-cluster sums of ``w e z`` by each of two id columns and by their pairs."""
    first_keys, first = np.unique(ids[0], return_inverse=True)
    second_keys, second = np.unique(ids[1], return_inverse=True)
    codes, pair = np.unique(first * len(second_keys) + second, return_inverse=True)

    def plain(keys: np.ndarray) -> list[Any]:
        return [k.item() if hasattr(k, "item") else k for k in keys]

    first_plain, second_plain = plain(first_keys), plain(second_keys)
    pair_keys = tuple(
        (first_plain[c // len(second_keys)], second_plain[c % len(second_keys)])
        for c in codes.tolist()
    )
    parts = [
        (tuple(first_plain), first, len(first_keys)),
        (tuple(second_plain), second, len(second_keys)),
        (pair_keys, pair, len(codes)),
    ]
    by = [
        ClusterScores(keys, _sums_by(inverse, count, score_weight, dense, sparse, order))
        for keys, inverse, count in parts
    ]
    return TwoWayClusterScores(*by)


def _sums_by(
    inverse: np.ndarray,
    nkeys: int,
    score_weight: np.ndarray,
    dense: np.ndarray,
    sparse: sp.csc_matrix,
    order: np.ndarray,
) -> np.ndarray:
    """``(nkeys, k)`` sums of ``w e z`` by cluster index ``inverse``, in kept-column order."""
    inverse = np.asarray(inverse).ravel()
    indicator = sp.csr_matrix(
        (score_weight, (inverse, np.arange(inverse.size))), shape=(nkeys, inverse.size)
    )
    blocks = [np.asarray(indicator @ dense)]
    if sparse.shape[1]:
        blocks.append(np.asarray((indicator @ sparse).todense()))
    in_block_order = np.hstack(blocks)
    sums = np.empty_like(in_block_order)
    sums[:, order] = in_block_order
    return sums


RobustStatistic = (
    MeatStatistic | ClusterScores | TwoWayClusterScores | LagWindow | PanelLagWindow | TimeScoreSums
)
