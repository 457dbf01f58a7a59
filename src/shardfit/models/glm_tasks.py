"""What each partition computes for a GLM fitted by IRLS (runs on workers).

Three kinds of pass, all reading the partition's encoded design from the session's
:class:`~shardfit.engine.cache.PartitionCache` (only a miss reads and encodes):

- :class:`PrepareTask` encodes the partition (checking the response's support and the
  weights), caches it, and returns row counts, response sums and the moments of the
  dense columns (which fix the column transform), and, when the start values need
  nothing from all the rows, IRLS's first step (:class:`FirstStep`);
- :class:`IrlsTask` is one IRLS iteration at coefficients ``beta``: ``eta = X beta +
  offset``, ``mu = g^{-1}(eta)``, working weights ``w g'(mu)^-2 / V(mu)`` and working
  response ``z = eta - offset + g'(mu) (y - mu)``; it returns the weighted Gram of the
  transformed ``[X | z]`` (or its TSQR factor, for ill-conditioned designs) and the
  deviance and Pearson chi2 at ``mu``, row block by row block;
- the final pass (:mod:`shardfit.models.glm_final`) evaluates the fit at the
  estimates.

Everything a pass returns is a sum over rows (merge is addition; TSQR factors merge
by a QR of the stacked factors) of size ``O(p**2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp

from shardfit.data.partition import Partition
from shardfit.design.fast_encoder import SplitDesign
from shardfit.design.materialize import DesignChunk, encode_partition
from shardfit.design.spec import DesignSpec
from shardfit.engine.cache import CacheRef
from shardfit.errors import DesignError
from shardfit.models.families import Binomial, Family, ResponseError, _binary
from shardfit.models.linear_tasks import ColumnMoments, mean_and_m2
from shardfit.models.links import Logit
from shardfit.stats.centered_gram import CenteredGram
from shardfit.stats.counts import RowCounts
from shardfit.stats.gram import cross_blocks, scale_rows
from shardfit.stats.transform import ColumnTransform
from shardfit.stats.tsqr import QRStatistic

if TYPE_CHECKING:  # glm_final builds on this module
    from shardfit.models.glm_final import FinalStatistic, FinalTask

__all__ = [
    "FirstStep",
    "FirstStepStatistic",
    "IrlsStatistic",
    "IrlsTask",
    "PrepareStatistic",
    "PrepareTask",
    "centring",
]

Missing = Literal["drop", "raise"]
# A binomial fitted probability this close to 0 or 1 counts as "numerically 0 or 1".
BOUNDARY_EPS = 1e-8
# Rows per block of an IRLS step on a dense design: its ~10 row-sized temporaries and
# the weighted copy of the block (11 columns: 0.7 MB) stay in the CPU's L2 cache, so
# the design block the linear predictor read is still there for the weighted copy
# (8% faster than 16,384 rows on 250k x 10 partitions).
ROW_BLOCK = 8_192


@dataclass(frozen=True)
class _Block:
    """One partition's encoded rows as the IRLS passes use them."""

    dense: np.ndarray  # (n, kd) raw dense columns, Fortran order
    sparse: sp.csc_matrix  # (n, ks) raw sparse columns
    y: np.ndarray
    # The weights every sum over rows takes: statsmodels' ``iweights``, the
    # ``var_weights`` times the ``freq_weights`` (either alone when only one is given).
    weights: np.ndarray | None
    offset: np.ndarray | None
    binary: bool = False  # every response is 0 or 1
    # With frequency weights: them, and the variance weights alone (None: none given),
    # which the log-likelihood takes apart (``sum freq * loglike_obs(var_weights)``).
    freq: np.ndarray | None = None
    var: np.ndarray | None = None

    @property
    def var_weights(self) -> np.ndarray | None:
        """The variance weights alone (``None``: all 1)."""
        return self.weights if self.freq is None else self.var

    @property
    def nrows(self) -> int:
        return int(self.y.shape[0])

    def row_blocks(self) -> list[tuple[int, _Block]]:
        """``(first row, block)`` views of at most ``ROW_BLOCK`` rows (one block when
        there are sparse columns): a block's row-sized temporaries stay in cache."""
        n = self.nrows
        if self.sparse.shape[1] or n <= ROW_BLOCK:
            return [(0, self)]

        def part(array: np.ndarray | None, a: int, b: int) -> np.ndarray | None:
            return None if array is None else array[a:b]

        # One empty sparse block per row count (building one costs ~0.1 ms).
        last = n - (n - 1) // ROW_BLOCK * ROW_BLOCK
        no_columns = {m: sp.csc_matrix((m, 0)) for m in {ROW_BLOCK, last}}

        return [
            (
                a,
                _Block(
                    dense=self.dense[a : a + ROW_BLOCK],
                    sparse=no_columns[min(ROW_BLOCK, n - a)],
                    y=self.y[a : a + ROW_BLOCK],
                    weights=part(self.weights, a, a + ROW_BLOCK),
                    offset=part(self.offset, a, a + ROW_BLOCK),
                    binary=self.binary,
                    freq=part(self.freq, a, a + ROW_BLOCK),
                    var=part(self.var, a, a + ROW_BLOCK),
                ),
            )
            for a in range(0, n, ROW_BLOCK)
        ]

    def linear_predictor(
        self, beta_dense: np.ndarray, beta_sparse: np.ndarray, shift: np.ndarray | None = None
    ) -> np.ndarray:
        """``X beta + offset``, or ``(X_dense - shift) beta_dense + X_sparse beta_sparse +
        offset`` with ``shift`` (see :class:`_Coefficients`)."""
        dense = self.dense
        if shift is not None:
            eta = (dense - shift) @ beta_dense
        elif dense.shape[1]:
            # BLAS takes a row block of a Fortran array as it is (a leading dimension
            # larger than the block): no copy, twice as fast as column by column.
            eta = dense @ beta_dense
        else:
            eta = np.zeros(self.nrows)
        if self.sparse.shape[1]:
            eta = eta + self.sparse @ beta_sparse
        if self.offset is not None:
            eta = eta + self.offset
        return eta


def _kernels() -> ModuleType:
    """The compiled loops (:mod:`~shardfit.models._irls_kernel`), imported on first
    use: the driver of a fit on worker processes never runs them, and importing numba
    costs a process ~50 MB."""
    from shardfit.models import _irls_kernel

    return _irls_kernel


def _to_arrays(
    chunk: DesignChunk, spec: DesignSpec, freq_weights: str | None = None
) -> dict[str, np.ndarray]:
    """A design chunk as the dict of plain arrays the partition cache holds
    (``freq_weights``: the extra column of frequency weights, already checked).

    With frequency weights, ``"weights"`` holds their product with the variance
    weights (statsmodels' ``iweights``), computed once here rather than every pass.
    """
    X = chunk.X
    dense_cols = np.flatnonzero(spec.dense_columns())
    if hasattr(X, "dense_index") and np.array_equal(X.dense_index, dense_cols):
        dense, sparse = X.dense, sp.csc_matrix(X.sparse)
    else:
        full = X.toarray() if hasattr(X, "toarray") else np.asarray(X, dtype=np.float64)
        sparse_cols = np.flatnonzero(~np.asarray(spec.dense_columns(), dtype=bool))
        dense, sparse = full[:, dense_cols], sp.csc_matrix(full[:, sparse_cols])
    assert chunk.y is not None
    arrays = {
        "dense": np.asfortranarray(dense, dtype=np.float64),
        "sp_data": np.asarray(sparse.data, dtype=np.float64),
        "sp_indices": np.asarray(sparse.indices, dtype=np.int64),
        "sp_indptr": np.asarray(sparse.indptr, dtype=np.int64),
        "sp_shape": np.asarray(sparse.shape, dtype=np.int64),
        "y": np.asarray(chunk.y, dtype=np.float64),
        "binary": np.asarray([_binary(chunk.y)]),
        "counts": np.asarray([chunk.rows_read, chunk.skipped_rows], dtype=np.int64),
        "dropped_reasons": np.asarray(sorted(chunk.dropped), dtype=np.str_),
        "dropped_counts": np.asarray(
            [chunk.dropped[k] for k in sorted(chunk.dropped)], dtype=np.int64
        ),
    }
    if chunk.weights is not None:
        arrays["weights"] = np.asarray(chunk.weights, dtype=np.float64)
    if freq_weights is not None:
        freq = _freq_values(chunk, freq_weights)
        arrays["freq_weights"] = freq
        if chunk.weights is not None:
            arrays["var_weights"] = arrays["weights"]
            arrays["weights"] = freq * arrays["weights"]
        else:
            arrays["weights"] = freq
    if chunk.offset is not None:
        arrays["offset"] = np.asarray(chunk.offset, dtype=np.float64)
    return arrays


def _block(arrays: dict[str, np.ndarray]) -> _Block:
    shape = tuple(int(s) for s in arrays["sp_shape"])
    sparse = sp.csc_matrix(
        (arrays["sp_data"], arrays["sp_indices"], arrays["sp_indptr"]), shape=shape
    )
    return _Block(
        dense=arrays["dense"],
        sparse=sparse,
        y=arrays["y"],
        weights=arrays.get("weights"),
        offset=arrays.get("offset"),
        binary=bool(arrays["binary"][0]),
        freq=arrays.get("freq_weights"),
        var=arrays.get("var_weights"),
    )


def _freq_values(chunk: DesignChunk, name: str) -> np.ndarray:
    """The kept rows' frequency weights (an extra column of the design) as floats."""
    return np.asarray(chunk.extras[name], dtype=np.float64)


def _check_chunk(
    chunk: DesignChunk,
    family: Family,
    partition: Partition,
    spec: DesignSpec | None = None,
    *,
    positive_weights: bool = True,
    freq_weights: str | None = None,
) -> None:
    """Raise on a response outside the family's support, a non-positive weight (with
    ``positive_weights``: an elastic net allows weights of 0), a non-positive or
    non-finite frequency weight (the extra column ``freq_weights``), or a non-finite
    offset, naming the partition, the row, the column (given ``spec``) and the value."""
    assert chunk.y is not None
    weights = getattr(spec, "weights", None)
    exposure = getattr(spec, "exposure", None)

    def where(position: int) -> str:
        row = int(chunk.row_index[position])
        return f"partition {partition.key} ({partition.locate(row)})"

    bad = family._outside(np.asarray(chunk.y, dtype=np.float64))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ResponseError(
            f"response outside the support of the {family.name} family ({family.support}) "
            f"in {where(i)}: {float(chunk.y[i])!r} ({int(bad.sum())} such rows in this "
            "partition)"
        )
    if positive_weights and chunk.weights is not None:
        nonpositive = ~(chunk.weights > 0)
        if nonpositive.any():
            i = int(np.flatnonzero(nonpositive)[0])
            raise DesignError(
                f"non-positive weight in {where(i)}"
                + (f", column {weights!r}" if weights is not None else "")
                + f": {float(chunk.weights[i])!r}; GLM weights "
                "(statsmodels' var_weights) must be > 0 (drop such rows before fitting)"
            )
    if freq_weights is not None:
        freq = _freq_values(chunk, freq_weights)
        # Missing ones (null, NaN) were dropped or raised as missing; an infinite one
        # is no count of rows.
        bad = ~((freq > 0) & np.isfinite(freq))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DesignError(
                f"non-positive or non-finite frequency weight in {where(i)}, column "
                f"{freq_weights!r}: {float(freq[i])!r}; freq_weights (statsmodels' "
                "freq_weights: how many times each row occurs) must be finite and > 0 "
                f"({int(bad.sum())} such rows in this partition)"
            )
    if chunk.offset is not None:
        nonfinite = ~np.isfinite(chunk.offset)
        if nonfinite.any():
            i = int(np.flatnonzero(nonfinite)[0])
            detail = ""
            if exposure is not None:
                # Non-finite offsets and exposures were dropped as missing, so this is
                # log(exposure) of an exposure <= 0: name the column and its value (the
                # offset's nan or -inf alone does not say what is wrong).
                try:
                    row = int(chunk.row_index[i])
                    value = partition.read([exposure]).table.column(exposure)[row].as_py()
                    detail = f" (column {exposure!r} holds {value!r}; exposures must be > 0)"
                except Exception:  # the error stands without the value
                    detail = f" (column {exposure!r}: exposures must be > 0)"
            raise DesignError(
                f"non-finite offset (or non-positive exposure) in {where(i)}: "
                f"{float(chunk.offset[i])!r}{detail}"
            )


def _cached_arrays(
    spec: DesignSpec,
    family: Family,
    missing: Missing,
    cache: CacheRef | None,
    partition: Partition,
    freq_weights: str | None = None,
) -> dict[str, np.ndarray]:
    def compute() -> dict[str, np.ndarray]:
        chunk = encode_partition(spec, partition, missing=missing, structured=True)
        _check_chunk(chunk, family, partition, spec, freq_weights=freq_weights)
        return _to_arrays(chunk, spec, freq_weights)

    if cache is None:
        return compute()
    return cache.get_or_compute(partition.key, compute)


# -- the prepare pass ------------------------------------------------------------------
@dataclass(frozen=True)
class PrepareStatistic:
    """Row counts, response sums and dense-column moments over some partitions (no
    moments, ``None``, when the pass took the first IRLS step, whose weighted Gram
    gives the column transform instead)."""

    counts: RowCounts
    nobs: int
    sum_y: float
    sum_w: float
    sum_wy: float
    sum_log_w: float
    moments: ColumnMoments | None
    first: FirstStepStatistic | None = None
    #: The sum of the frequency weights (statsmodels' ``wnobs``); ``nobs`` without.
    sum_freq: float = 0.0

    @property
    def nrows(self) -> int:
        return self.counts.read

    def merge(self, other: PrepareStatistic) -> PrepareStatistic:
        first = None
        if self.first is not None and other.first is not None:
            first = self.first.merge(other.first)
        moments = None
        if self.moments is not None and other.moments is not None:
            moments = self.moments.merge(other.moments)
        return PrepareStatistic(
            counts=self.counts.merge(other.counts),
            nobs=self.nobs + other.nobs,
            sum_y=self.sum_y + other.sum_y,
            sum_w=self.sum_w + other.sum_w,
            sum_wy=self.sum_wy + other.sum_wy,
            sum_log_w=self.sum_log_w + other.sum_log_w,
            moments=moments,
            first=first,
            sum_freq=self.sum_freq + other.sum_freq,
        )


@dataclass(frozen=True)
class PrepareTask:
    """Encode, check and cache a partition; sums for the start values and transform;
    with ``first``, IRLS's first step too (see :class:`FirstStep`)."""

    spec: DesignSpec
    family: Family
    missing: Missing
    cache: CacheRef | None
    first: FirstStep | None = None
    freq_weights: str | None = None  # the column of frequency weights

    def __call__(self, partition: Partition) -> PrepareStatistic:
        arrays = _cached_arrays(
            self.spec, self.family, self.missing, self.cache, partition, self.freq_weights
        )
        block = _block(arrays)
        read, skipped = (int(v) for v in arrays["counts"])
        dropped = {
            str(reason): int(n)
            for reason, n in zip(arrays["dropped_reasons"], arrays["dropped_counts"])
            if n
        }
        counts = RowCounts(
            read=read,
            dropped=dropped,
            skipped=skipped,
            by_partition=((partition.key, read, sum(dropped.values()), skipped),),
        )
        n = block.nrows
        w = block.weights
        sum_y = float(block.y.sum())
        return PrepareStatistic(
            counts=counts,
            nobs=n,
            sum_y=sum_y,
            sum_w=float(n) if w is None else float(w.sum()),
            sum_wy=sum_y if w is None else (float(w @ block.y) if n else 0.0),
            sum_log_w=0.0 if w is None else float(np.log(w).sum()),
            moments=None if self.first else ColumnMoments(n, *mean_and_m2(list(block.dense.T))),
            first=None if self.first is None else self.first.of_block(self.family, block),
            sum_freq=float(n) if block.freq is None else float(block.freq.sum()),
        )


@dataclass(frozen=True)
class FirstStep:
    """IRLS's first step, taken in the prepare pass when its start needs nothing
    from all the rows: the binomial's start ``(y + 1/2) / 2``, or given
    ``start_params``. That saves a pass over the data.

    The column transform (centring, scaling) is not known yet, so each partition
    returns the Gram of ``[X | z]`` about its own IRLS-weighted means
    (:class:`~shardfit.stats.centered_gram.CenteredGram`, merged exactly): as
    accurate as a Gram centred at the global means.
    """

    beta: np.ndarray | None  # start_params, or None for the family's start
    dense: tuple[bool, ...]  # spec.dense_columns()
    intercept: int | None

    def of_block(self, family: Family, block: _Block) -> FirstStepStatistic:
        coef = None if self.beta is None else _Coefficients.of(self.beta, self.dense)
        n = block.nrows
        if not n:
            return FirstStepStatistic(None, 0, 0.0, 0.0, 0.0)
        if not block.sparse.shape[1]:
            return self._dense_step(family, block, coef)
        # The start needs no mean of the responses here (see the class notes).
        z, irls_w, deviance, pearson, largest, _ = _working(family, block, coef, float("nan"))
        flags = np.asarray(self.dense, dtype=bool)
        design = SplitDesign(
            block.dense, np.flatnonzero(flags), block.sparse, np.flatnonzero(~flags)
        )
        gram = CenteredGram.of_chunk(design, z, irls_w, self.dense, self.intercept)
        return FirstStepStatistic(gram, n, deviance, pearson, largest)

    def _dense_step(
        self, family: Family, block: _Block, coef: _Coefficients | None
    ) -> FirstStepStatistic:
        """The step on a design of dense columns only, through the IRLS kernels in
        two sweeps of row blocks: the first writes ``sqrt(w)`` and ``sqrt(w) z`` (and
        the fit measures), which give the weighted means; the second accumulates the
        Gram about them. NumPy's row quantities for the whole partition took 21 ms on a
        250k x 10 partition of the ``glm_logit`` benchmark, this 9 ms."""
        n, p = block.dense.shape
        rows = min(n, ROW_BLOCK)
        sqrt_w, zw = np.empty(n), np.empty(n)
        quantities = _RowQuantities(family, rows, 0.0, 1.0)
        deviance = pearson = largest = 0.0
        for a, part in block.row_blocks():
            m = part.nrows
            _, unit, chi2, resid = quantities.write(
                part, coef, float("nan"), sqrt_w[a : a + m], zw[a : a + m]
            )
            deviance, pearson = deviance + unit, pearson + chi2
            largest = max(largest, resid)
        # The Gram below weights by sqrt(w)**2: so do its means and sums.
        w = sqrt_w * sqrt_w
        sum_w = float(w.sum())
        column_sums = block.dense.T @ w
        z_sum = float(zw @ sqrt_w)
        centred = np.ones(p + 1, dtype=bool)
        if self.intercept is not None:
            centred[self.intercept] = False
        center = np.zeros(p + 1)
        if sum_w > 0:
            center[:p] = column_sums / sum_w
            center[p] = z_sum / sum_w
            center[~centred] = 0.0
        upper = np.zeros((p + 1, p + 1), order="F")
        shift = np.ascontiguousarray(center[:p])
        kernels = _kernels()
        scratch = _gram_scratch(n, p + 1)
        column = np.empty(rows)
        for a in range(0, n, ROW_BLOCK):
            m = min(ROW_BLOCK, n - a)
            root = sqrt_w[a : a + m]
            np.multiply(root, center[p], out=column[:m])
            np.subtract(zw[a : a + m], column[:m], out=column[:m])
            kernels.add_weighted_gram(block.dense, shift, root, a, m, column, scratch, upper)
        gram = CenteredGram(
            cross=np.triu(upper) + np.triu(upper, 1).T,
            center=center,
            sums=np.append(column_sums, z_sum) - center * sum_w,
            centred=centred,
            nobs=n,
            sum_weights=sum_w,
            # IRLS weights are positive (the variance is bounded away from 0), and
            # nothing reads the log-sum of a working Gram's weights (a GLM's
            # likelihood comes from its family).
            sum_log_weights=0.0,
            zero_weights=int(n - np.count_nonzero(w)),
        )
        return FirstStepStatistic(gram, n, deviance, pearson, largest)


@dataclass(frozen=True)
class FirstStepStatistic:
    """The merged first IRLS step: a centred Gram and the fit measures at the start."""

    gram: CenteredGram | None  # None: no rows
    nobs: int
    deviance: float
    pearson_chi2: float
    max_abs_resid: float

    def merge(self, other: FirstStepStatistic) -> FirstStepStatistic:
        if self.gram is None or other.gram is None:
            gram = self.gram if other.gram is None else other.gram
        else:
            gram = self.gram.merge(other.gram)
        return FirstStepStatistic(
            gram,
            self.nobs + other.nobs,
            self.deviance + other.deviance,
            self.pearson_chi2 + other.pearson_chi2,
            max(self.max_abs_resid, other.max_abs_resid),
        )

    def irls_statistic(
        self, dense: tuple[bool, ...], intercept: int | None
    ) -> tuple[IrlsStatistic, ColumnTransform]:
        """The step as an IRLS pass's statistic, in the columns of its own transform
        (the weighted means and spreads of this step), and the transform for the
        passes to come: the same, with the working response (which changes every
        iteration) left as it is."""
        assert self.gram is not None
        gram, transform = self.gram.equilibrated(dense, intercept)
        p = len(dense)
        later = ColumnTransform(
            (*transform.shift[:p], 0.0), (*transform.scale[:p], 1.0), transform.dense
        )
        first = IrlsStatistic(
            cross=gram.cross,
            nobs=self.nobs,
            deviance=self.deviance,
            pearson_chi2=self.pearson_chi2,
            max_abs_resid=self.max_abs_resid,
            transform=transform,
        )
        return first, later


# -- one IRLS iteration ------------------------------------------------------------------
@dataclass(frozen=True)
class IrlsStatistic:
    """Weighted Gram (or TSQR factor, ``qr``) of transformed ``[X | z]`` and fit
    measures at the current ``mu``.

    ``max_abs_resid`` (merge: maximum) detects perfect prediction as statsmodels does;
    the QR factors merge by a QR of the stacked factors; every other field adds.
    """

    cross: np.ndarray | None
    nobs: int
    deviance: float
    pearson_chi2: float
    max_abs_resid: float
    qr: QRStatistic | None = None
    final: FinalStatistic | None = None
    transform: ColumnTransform | None = None  # the columns of ``cross``, if not the run's

    @property
    def nrows(self) -> int:
        return self.nobs

    def merge(self, other: IrlsStatistic) -> IrlsStatistic:
        cross = None
        if self.cross is not None and other.cross is not None:
            cross = self.cross + other.cross
        qr = None
        if self.qr is not None and other.qr is not None:
            qr = self.qr.merge(other.qr)
        final = None
        if self.final is not None and other.final is not None:
            final = self.final.merge(other.final)
        return IrlsStatistic(
            cross=cross,
            qr=qr,
            final=final,
            nobs=self.nobs + other.nobs,
            deviance=self.deviance + other.deviance,
            pearson_chi2=self.pearson_chi2 + other.pearson_chi2,
            max_abs_resid=max(self.max_abs_resid, other.max_abs_resid),
        )


@dataclass(frozen=True)
class _Coefficients:
    """Coefficients split like the design's dense and sparse blocks (0 for aliased).

    With ``shift``, the linear predictor is formed about the design's centre, ``eta =
    f + sum_j beta_j (x_j - shift_j)``, the intercept's coefficient replaced by ``f``,
    the fitted value there (see :func:`centring`): on columns far from zero relative
    to their spread, ``beta_0 + sum_j beta_j x_j`` cancels (x = 1e6 + U(0, 10) and a
    slope of 0.1: terms of 1e5 for an eta of ~1, whose rounding then made a Gamma
    fit's deviance jitter for 46 iterations instead of converging in 8).
    """

    dense: np.ndarray
    sparse: np.ndarray
    shift: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        beta: np.ndarray,
        dense_flags: tuple[bool, ...],
        centred: tuple[float, int] | None = None,
        shift: tuple[float, ...] = (),
    ) -> _Coefficients:
        """Split ``beta``; ``centred`` is ``(fitted value at shift, intercept index)``
        and ``shift`` the transform's (``p + 1`` entries, the response's last)."""
        flags = np.asarray(dense_flags, dtype=bool)
        beta = np.where(np.isfinite(beta), beta, 0.0)
        sparse = np.ascontiguousarray(beta[~flags])
        if centred is None:
            return cls(np.ascontiguousarray(beta[flags]), sparse)
        fit, intercept = centred
        centre = np.asarray(shift[: flags.size], dtype=np.float64).copy()
        centre[intercept] = 0.0
        beta = beta.copy()
        beta[intercept] = fit
        return cls(np.ascontiguousarray(beta[flags]), sparse, centre[flags])


def centring(
    solution: Any, transform: ColumnTransform, intercept: int | None
) -> tuple[float, int] | None:
    """``(fitted value at the transform's shifts, intercept)`` for
    :meth:`_Coefficients.of` where the plain linear predictor would cancel more than
    three digits (the shifted terms ``|beta_j shift_j|`` a thousand times the fitted
    value's size and the spreads' ``|beta_j| scale_j``), else ``None``: the plain form
    is one BLAS product, the centred one a copy more."""
    if intercept is None or solution is None or solution.centre_fit is None:
        return None
    fit = solution.centre_fit
    p = transform.p
    beta = np.where(np.isfinite(solution.params), solution.params, 0.0)
    others = np.arange(p) != intercept
    shift = np.asarray(transform.shift[:p])
    scale = np.asarray(transform.scale[:p])
    shifted = float(np.abs(beta[others] * shift[others]).sum())
    natural = abs(fit) + float(np.abs(beta[others] * scale[others]).sum())
    return (fit, intercept) if shifted > 1e3 * natural else None


def _mean(
    family: Family, block: _Block, beta: _Coefficients | None, y_mean: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(eta, mu)`` at ``beta``, or statsmodels' start values when ``beta`` is None."""
    if beta is None:
        mu = family.starting_mu_given_mean(block.y, y_mean)
        eta = family.link(mu)  # statsmodels starts from g(mu_0), offset included in it
        return eta, mu
    eta = block.linear_predictor(beta.dense, beta.sparse, beta.shift)
    return eta, family.link.inverse(eta)


def _transformed_weighted(
    block: _Block, transform: ColumnTransform, sqrt_w: np.ndarray
) -> tuple[np.ndarray, sp.csc_matrix]:
    """``sqrt(w)`` times the transformed dense block, and times the sparse block."""
    n, kd = block.dense.shape
    dense_cols = np.flatnonzero(transform.dense)
    shift = np.asarray(transform.shift)[dense_cols]
    scale = np.asarray(transform.scale)[dense_cols]
    buf = np.empty((n, kd), order="F")
    # Column by column, in place: contiguous passes and no (n, kd) temporaries.
    for j in range(kd):
        out = buf[:, j]
        if shift[j] != 0.0:
            np.subtract(block.dense[:, j], shift[j], out=out)
            np.multiply(out, sqrt_w, out=out)
        else:
            np.multiply(block.dense[:, j], sqrt_w, out=out)
        if scale[j] != 1.0:
            np.multiply(out, 1.0 / scale[j], out=out)
    sparse = scale_rows(block.sparse, sqrt_w) if block.sparse.shape[1] else block.sparse
    return buf, sparse


def _gram_scratch(n: int, columns: int) -> np.ndarray:
    """The scratch block of :func:`~shardfit.models._irls_kernel.add_weighted_gram`."""
    return np.empty((max(1, min(n, _kernels().GRAM_SCRATCH_ROWS)), columns), order="F")


class _RowQuantities:
    """The row quantities of IRLS steps on blocks of up to ``rows`` rows (a dense
    design's row blocks, or a whole partition with sparse columns): ``sqrt(w)``, the
    weighted working-response column, the deviance, Pearson chi2, largest ``|y - mu|``
    and ``mu`` (reused buffers: ``mu`` is valid until the next block).

    A logistic regression on 0/1 responses takes :func:`logit_rows` (about 30%
    faster a step on 250k x 10 partitions); other models NumPy's passes for ``mu``,
    ``g'(mu)``, ``V(mu)`` and the deviance, then :func:`working_rows`.
    """

    def __init__(self, family: Family, rows: int, z_shift: float, z_scale: float) -> None:
        self.family = family
        self.logit = isinstance(family, Binomial) and isinstance(family.link, Logit)
        self.z_shift, self.z_scale = z_shift, z_scale
        self.none = np.empty(0)
        self.t = np.empty(rows)
        self.mu = np.empty(rows)
        self.odds = np.empty(rows)

    def write(
        self,
        block: _Block,
        coef: _Coefficients | None,
        y_mean: float,
        sqrt_w: np.ndarray,
        z: np.ndarray,
    ) -> tuple[np.ndarray, float, float, float]:
        """Write ``sqrt_w`` and the weighted working response ``z`` (contiguous 1-d
        arrays: a column of a 2-d array that NumPy also calls C-contiguous, such as
        one of shape ``(n, 1)``, is typed as strided by numba, and the loops then do
        not vectorize: twice as slow) for ``block``; return ``mu`` and the block's
        deviance, Pearson chi2 and largest ``|y - mu|``."""
        family, none, m = self.family, self.none, block.nrows
        prior = none if block.weights is None else block.weights
        offset = none if block.offset is None else block.offset
        if self.logit and block.binary and coef is not None:
            eta = block.linear_predictor(coef.dense, coef.sparse, coef.shift)
            t = np.negative(eta, out=self.t[:m])
            with np.errstate(over="ignore"):  # exp(-eta) = inf gives the exact limit 0
                np.exp(t, out=t)
            mu, odds = self.mu[:m], self.odds[:m]
            chi2 = _kernels().logit_rows(
                eta,
                t,
                block.y,
                prior,
                offset,
                self.z_shift,
                self.z_scale,
                sqrt_w,
                z,
                mu,
                odds,
            )
            # |y - mu| = 1 - odds (to 1e-16: enough for the perfect-prediction check)
            largest = 1.0 - float(odds.min()) if m else 0.0
            logs = np.log(odds, out=odds)
            deviance = -2.0 * float(logs.sum() if block.weights is None else logs @ prior)
            return mu, deviance, chi2, largest
        eta, mu = _mean(family, block, coef, y_mean)
        unit = family.unit_deviance_given(block.y, mu, binary=block.binary)
        deriv, variance = family.deriv_and_variance(mu)
        chi2 = _kernels().working_rows(
            eta,
            block.y,
            mu,
            none if deriv is None else deriv,
            variance,
            prior,
            offset,
            self.z_shift,
            self.z_scale,
            sqrt_w,
            z,
        )
        deviance = float(unit.sum() if block.weights is None else unit @ block.weights)
        largest = float(np.abs(block.y - mu).max()) if m else 0.0
        return mu, deviance, chi2, largest


@dataclass(frozen=True)
class IrlsTask:
    """One IRLS iteration on a partition (see the module notes).

    ``beta`` holds the coefficients in the original columns (``None``: start from
    statsmodels' start values, which use ``y_mean``, the mean of all responses).
    ``final``, a :class:`~shardfit.models.glm_final.FinalTask` at the same ``beta``,
    is evaluated on the same cached block when the driver expects this pass to be the
    last (the deviance has nearly settled): if it is, the fit needs no final pass.
    """

    spec: DesignSpec
    family: Family
    transform: ColumnTransform
    missing: Missing
    cache: CacheRef | None
    beta: np.ndarray | None
    y_mean: float
    kind: Literal["gram", "qr"] = "gram"
    final: FinalTask | None = None
    centred: tuple[float, int] | None = None  # see :func:`centring`
    freq_weights: str | None = None  # the column of frequency weights

    def __call__(self, partition: Partition) -> IrlsStatistic:
        arrays = _cached_arrays(
            self.spec, self.family, self.missing, self.cache, partition, self.freq_weights
        )
        whole = _block(arrays)
        coef = None
        if self.beta is not None:
            transform = self.transform
            coef = _Coefficients.of(self.beta, transform.dense, self.centred, transform.shift)
        mu: np.ndarray | None = None
        if self.kind == "qr":
            stat = self._qr(whole, coef)
        elif whole.sparse.shape[1]:
            stat, mu = self._sparse_step(whole, coef)
        else:
            stat, mu = self._dense_step(whole, coef)
        if self.final is not None:
            final = self.final.evaluate(whole, mu=mu, deviance=stat.deviance)
            stat = replace(stat, final=final)
        return stat

    def _columns(self) -> tuple[np.ndarray, np.ndarray, float, float]:
        """The output order of ``[dense | sparse]`` columns, the dense columns' shifts,
        and the working response's shift and scale."""
        transform = self.transform
        order = np.concatenate([transform.dense_index, transform.sparse_index])
        shift = np.ascontiguousarray(np.asarray(transform.shift)[np.flatnonzero(transform.dense)])
        p = transform.p
        return order, shift, transform.shift[p], transform.scale[p]

    def _statistic(
        self, cross: np.ndarray, n: int, deviance: float, pearson: float, largest: float
    ) -> IrlsStatistic:
        scale = np.asarray(self.transform.scale)
        cross /= np.outer(scale, scale)  # the dense columns were centred, not scaled
        return IrlsStatistic(
            cross=cross, nobs=n, deviance=deviance, pearson_chi2=pearson, max_abs_resid=largest
        )

    def _dense_step(
        self, whole: _Block, coef: _Coefficients | None
    ) -> tuple[IrlsStatistic, np.ndarray | None]:
        """A dense design, row block by row block: each block's linear predictor, row
        quantities (NumPy: its vectorized ``exp`` and ``log`` beat a scalar compiled
        loop), centred weighted copy and Gram (compiled loops,
        :mod:`~shardfit.models._irls_kernel`) all work on data that stays in the CPU's
        cache: 13 ms per 250k x 10 partition where whole-partition arrays and ``dsyrk``
        took 21 ms (and the copy and Gram of 256-row sub-blocks, which stay in the
        first-level cache, a further 0.9 ms less than whole row blocks)."""
        order, shift, z_shift, z_scale = self._columns()
        n, kd = whole.dense.shape
        q = order.size
        upper = np.zeros((q, q), order="F")
        z = np.empty(min(n, ROW_BLOCK))
        scratch = _gram_scratch(n, kd + 1)
        deviance = pearson = largest = 0.0
        mus: list[np.ndarray] = []
        sqrt_w = np.empty(min(n, ROW_BLOCK))
        rows = _RowQuantities(self.family, min(n, ROW_BLOCK), z_shift, z_scale)
        kernels = _kernels()
        for a, block in whole.row_blocks():
            m = block.nrows
            mu, unit, chi2, resid = rows.write(block, coef, self.y_mean, sqrt_w, z)
            kernels.add_weighted_gram(whole.dense, shift, sqrt_w, a, m, z, scratch, upper)
            deviance += unit
            pearson += chi2
            largest = max(largest, resid)
            if self.final is not None:
                mus.append(mu.copy())
        cross = np.zeros((q, q))
        if n:
            cross[np.ix_(order, order)] = np.triu(upper) + np.triu(upper, 1).T
        stat = self._statistic(cross, n, deviance, pearson, largest)
        return stat, (np.concatenate(mus) if mus else None)

    def _sparse_step(
        self, whole: _Block, coef: _Coefficients | None
    ) -> tuple[IrlsStatistic, np.ndarray]:
        """A design with sparse columns: whole-partition arrays, and the sparse
        products through their structure."""
        order, shift, z_shift, z_scale = self._columns()
        n, kd = whole.dense.shape
        sqrt_w = np.empty(n)
        buf = np.empty((n, kd + 1), order="F")
        rows = _RowQuantities(self.family, n, z_shift, z_scale)
        mu, deviance, pearson, largest = rows.write(whole, coef, self.y_mean, sqrt_w, buf[:, kd])
        _kernels().centred_weighted(whole.dense, shift, sqrt_w, 0, n, buf)
        # The sparse rows are weighted inside the product: no scaled copy of them.
        cross = cross_blocks(buf, whole.sparse, order, row_scale=sqrt_w).cross
        return self._statistic(cross, n, deviance, pearson, largest), mu

    def _qr(self, whole: _Block, coef: _Coefficients | None) -> IrlsStatistic:
        """The TSQR factor of the weighted, transformed ``[X | z]``, row block by row
        block: accurate to ``cond * eps`` where the Gram gives ``cond**2 * eps``."""
        transform = self.transform
        dense_cols = np.flatnonzero(transform.dense)
        total: IrlsStatistic | None = None
        for _, block in whole.row_blocks():
            z, irls_w, unit, chi2, resid, _ = _working(self.family, block, coef, self.y_mean)
            design = SplitDesign(block.dense, dense_cols, block.sparse, transform.sparse_index)
            stat = IrlsStatistic(
                cross=None,
                qr=QRStatistic.of_chunk(design, z, irls_w, transform),
                nobs=block.nrows,
                deviance=unit,
                pearson_chi2=chi2,
                max_abs_resid=resid,
            )
            total = stat if total is None else total.merge(stat)
        assert total is not None
        return total


def _working(
    family: Family, block: _Block, coef: _Coefficients | None, y_mean: float
) -> tuple[np.ndarray, np.ndarray, float, float, float, np.ndarray]:
    """Working response and weights of a block, its deviance, Pearson chi2 and largest
    ``|y - mu|`` (statsmodels' IRLS step), and ``mu``."""
    eta, mu = _mean(family, block, coef, y_mean)
    w = block.weights
    deriv = family.link.deriv(mu)
    variance = family.variance(mu)
    irls_w = 1.0 / (deriv**2 * variance)
    if w is not None:
        irls_w = irls_w * w
    resid = block.y - mu
    z = eta + deriv * resid
    if block.offset is not None:
        z = z - block.offset
    unit = family.unit_deviance_given(block.y, mu, binary=block.binary)
    pearson = resid**2 / variance
    if w is not None:
        unit, pearson = unit * w, pearson * w
    largest = float(np.abs(resid).max()) if block.nrows else 0.0
    return z, irls_w, float(unit.sum()), float(pearson.sum()), largest, mu
