"""What each partition computes for the exact elastic net (runs on workers).

Cross-validation folds are assigned row by row by a fixed hash, never by Python's
salted ``hash``: a row's fold is ``splitmix64(seed(key) + row) mod K``, where ``key``
is its partition's key, ``seed`` the first 8 bytes of its BLAKE2b digest and ``row``
the row's position within the partition as read (before rows with missing values are
dropped). The same data read as the same partitions gets the same folds on every
backend and in every run; :func:`cv_folds` gives them, e.g. to hand scikit-learn a
``PredefinedSplit`` with the same folds.

- :class:`FoldGramTask` (Gaussian): one pass, the Gram statistic of ``[X | y]`` of each
  fold's rows (one set when there is no cross-validation).
- :class:`IrlsTask` (GLMs): for each model (the full-data one and one per fold), the
  weighted Gram and working response of its training rows at its current coefficients,
  its training deviance, and the held-out deviance of the fold it leaves out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from shardfit.data.partition import Partition
from shardfit.design.materialize import encode_partition
from shardfit.design.spec import DesignSpec
from shardfit.engine.cache import CacheRef
from shardfit.models.families import _binary
from shardfit.models.glm_tasks import (
    ROW_BLOCK,
    _Block,
    _check_chunk,
    _Coefficients,
    _gram_scratch,
    _kernels,
    _RowQuantities,
)
from shardfit.stats.gram import GramStatistic
from shardfit.stats.transform import ColumnTransform

__all__ = ["FoldGramTask", "FoldGrams", "IrlsStatistic", "IrlsTask", "cv_folds"]

Missing = Literal["drop", "raise"]
_MASK = (1 << 64) - 1


def cv_folds(key: str, rows: Any, k: int) -> np.ndarray:
    """The cross-validation fold (``0 .. k-1``) of rows ``rows`` of partition ``key``.

    Parameters
    ----------
    key : str
        The partition's key (``Partition.key``).
    rows : array_like of int
        Row positions within the partition, counted from 0 as read.
    k : int
        The number of folds.

    Returns
    -------
    numpy.ndarray of int64
    """
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    z = np.asarray(rows, dtype=np.uint64) + np.uint64(seed)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(k)).astype(np.int64)


@dataclass(frozen=True)
class FoldGrams:
    """One :class:`~shardfit.stats.gram.GramStatistic` per fold; merge: fold by fold."""

    grams: tuple[GramStatistic, ...]

    def merge(self, other: FoldGrams) -> FoldGrams:
        if len(self.grams) != len(other.grams):
            raise ValueError("cannot merge fold statistics with different numbers of folds")
        return FoldGrams(tuple(a.merge(b) for a, b in zip(self.grams, other.grams)))

    def total(self) -> GramStatistic:
        """All rows."""
        out = self.grams[0]
        for gram in self.grams[1:]:
            out = out.merge(gram)
        return out


@dataclass(frozen=True)
class FoldGramTask:
    """Encode a partition and accumulate the Gram of ``[X | y]`` of each fold's rows."""

    spec: DesignSpec
    transform: ColumnTransform
    folds: int
    missing: Missing

    def __call__(self, partition: Partition) -> FoldGrams:
        chunk = encode_partition(self.spec, partition, missing=self.missing, structured=True)
        assert chunk.y is not None
        if self.folds == 1:
            return FoldGrams(
                (GramStatistic.of_chunk(chunk.X, chunk.y, chunk.weights, self.transform),)
            )
        fold = cv_folds(partition.key, chunk.row_index, self.folds)
        grams = []
        for f in range(self.folds):
            rows = fold == f
            X = chunk.X.take_rows(rows) if hasattr(chunk.X, "take_rows") else chunk.X[rows]
            w = None if chunk.weights is None else chunk.weights[rows]
            grams.append(GramStatistic.of_chunk(X, chunk.y[rows], w, self.transform))
        return FoldGrams(tuple(grams))


@dataclass(frozen=True)
class IrlsStatistic:
    """Per model: weighted Gram ``Z'WZ``, ``Z'Wz``, prior-weight sums and deviances.

    Model 0 is fitted on every row, model ``f + 1`` on every row outside fold ``f``.
    Every field is a sum over rows, so merge is addition.
    """

    cross: np.ndarray  # (M, q, q)
    target: np.ndarray  # (M, q)
    sum_weights: np.ndarray  # (M,) prior weights of the training rows
    deviance: np.ndarray  # (M,) training deviance
    test_deviance: np.ndarray  # (M,) deviance of the held-out fold (0 for model 0)
    test_weights: np.ndarray  # (M,)
    sums: np.ndarray  # (M, q + 1) prior-weighted sums of [Z | y] over each model's rows
    squares: np.ndarray  # (M, q + 1) prior-weighted sums of squares
    nobs: int

    def merge(self, other: IrlsStatistic) -> IrlsStatistic:
        return IrlsStatistic(
            self.cross + other.cross,
            self.target + other.target,
            self.sum_weights + other.sum_weights,
            self.deviance + other.deviance,
            self.test_deviance + other.test_deviance,
            self.test_weights + other.test_weights,
            self.sums + other.sums,
            self.squares + other.squares,
            self.nobs + other.nobs,
        )


@dataclass(frozen=True)
class IrlsTask:
    """One IRLS pass of every model at its coefficients ``params`` (``(M, q)``, z-space).

    With ``cache``, a partition's transformed design (sparse columns made dense), its
    response, weights, offset and folds are encoded once and read from the workers'
    partition cache by the later passes of the path. Each model's step is the GLM's
    (its row quantities and compiled Gram kernel, row block by row block, see
    :mod:`~shardfit.models.glm_tasks`) with the held-out rows' prior weights 0,
    rather than NumPy passes over copies of the training rows. ``moments`` adds the
    prior-weighted sums and sums of squares of ``[Z | y]`` over each model's training
    rows (the first pass's, for the start and the standardization: glmnet's
    ``cv.glmnet`` standardizes each fold's model by its own training rows).
    """

    spec: DesignSpec
    transform: ColumnTransform
    family: Any
    params: np.ndarray
    folds: int
    missing: Missing
    cache: CacheRef | None = None
    moments: bool = True

    def _arrays(self, partition: Partition) -> dict[str, np.ndarray]:
        def compute() -> dict[str, np.ndarray]:
            chunk = encode_partition(self.spec, partition, missing=self.missing, structured=True)
            assert chunk.y is not None
            # What shardfit.glm refuses (a response outside the family's support, an
            # exposure <= 0), but weights of 0, which the elastic net's objective (and
            # scikit-learn's sample_weight) allows; negative ones the encoding refused.
            _check_chunk(chunk, self.family, partition, self.spec, positive_weights=False)
            dense, sparse = self.transform.split(chunk.X, None)
            n = chunk.y.size
            Z = np.empty((n, self.transform.p), order="F")
            Z[:, np.flatnonzero(self.transform.dense)] = dense
            if sparse.shape[1]:
                Z[:, self.transform.sparse_index] = sparse.toarray()
            none = np.empty(0)
            return {
                "Z": Z,
                "y": np.asarray(chunk.y, dtype=np.float64),
                "w": none if chunk.weights is None else np.asarray(chunk.weights, np.float64),
                "offset": none if chunk.offset is None else np.asarray(chunk.offset, np.float64),
                "fold": (
                    cv_folds(partition.key, chunk.row_index, self.folds)
                    if self.folds > 1
                    else np.empty(0, dtype=np.int64)
                ),
            }

        if self.cache is None:
            return compute()
        return self.cache.get_or_compute(partition.key, compute)

    def __call__(self, partition: Partition) -> IrlsStatistic:
        arrays = self._arrays(partition)
        Z, y, w = arrays["Z"], arrays["y"], arrays["w"]
        n, q = Z.shape
        weights = w if w.size else np.ones(n)
        fold = arrays["fold"]
        models = self.params.shape[0]
        cross = np.zeros((models, q, q))
        target = np.zeros((models, q))
        sum_w = np.zeros(models)
        dev = np.zeros(models)
        test_dev = np.zeros(models)
        test_w = np.zeros(models)
        binary = _binary(y)
        no_columns = sp.csc_matrix((n, 0))  # every column is in Z
        offset = arrays["offset"] if arrays["offset"].size else None
        for m in range(models):
            # Model f + 1 leaves fold f out: its rows weigh 0 in the training sums.
            held_out = fold == m - 1 if m > 0 else None
            prior = w if w.size else None
            if held_out is not None:
                prior = np.where(held_out, 0.0, weights)
            block = _Block(
                dense=Z,
                sparse=no_columns,
                y=y,
                weights=prior,
                offset=offset,
                binary=binary,
            )
            coefficients = _Coefficients(np.ascontiguousarray(self.params[m]), np.empty(0))
            step = _model_step(self.family, block, coefficients, held_out, weights)
            upper, dev[m], test_dev[m] = step
            full = np.triu(upper) + np.triu(upper, 1).T
            cross[m], target[m] = full[:q, :q], full[:q, q]
            if held_out is None:
                sum_w[m] = float(weights.sum())
            else:
                test_w[m] = float(weights @ held_out)
                sum_w[m] = float(weights @ ~held_out)
        sums = np.zeros((models, q + 1))
        squares = np.zeros((models, q + 1))
        if self.moments:
            for m in range(models):
                prior = weights if m == 0 else np.where(fold == m - 1, 0.0, weights)
                sums[m] = np.append(Z.T @ prior, y @ prior)
                squares[m] = np.append((Z * Z).T @ prior, (y * y) @ prior)
        return IrlsStatistic(cross, target, sum_w, dev, test_dev, test_w, sums, squares, n)


def _model_step(
    family: Any,
    block: _Block,
    coefficients: _Coefficients,
    held_out: np.ndarray | None,
    weights: np.ndarray,
) -> tuple[np.ndarray, float, float]:
    """One model's weighted Gram of ``[Z | z]`` (upper triangle), training deviance and
    held-out deviance, row block by row block through the GLM's IRLS row quantities
    and Gram kernel (``Z`` is already transformed: no shift)."""
    kernels = _kernels()
    n, q = block.dense.shape
    rows = min(n, ROW_BLOCK)
    upper = np.zeros((q + 1, q + 1), order="F")
    scratch = _gram_scratch(n, q + 1)
    sqrt_w, z = np.empty(rows), np.empty(rows)
    quantities = _RowQuantities(family, rows, 0.0, 1.0)
    no_shift = np.zeros(q)
    deviance = test = 0.0
    for a, part in block.row_blocks():
        m = part.nrows
        mu, unit, _, _ = quantities.write(part, coefficients, float("nan"), sqrt_w, z)
        kernels.add_weighted_gram(block.dense, no_shift, sqrt_w, a, m, z, scratch, upper)
        deviance += unit
        if held_out is not None:
            out = held_out[a : a + m]
            if out.any():
                held = family.unit_deviance_given(part.y[out], mu[out], binary=block.binary)
                test += float(held @ weights[a : a + m][out])
    return upper, deviance, test
