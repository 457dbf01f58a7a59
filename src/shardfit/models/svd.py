"""Out-of-core SVD and PCA of a formula design: ``shardfit.svd``.

One pass over the data, each partition reduced to a small triangular factor merged
along the engine's fixed tree:

- uncentred (``center=False``): the TSQR factor
  (:class:`~shardfit.stats.tsqr.QRStatistic`) of ``sqrt(w) [X | 1]``, whose leading
  ``p x p`` block ``R11`` is the ``R`` of ``sqrt(w) X``: the singular values and right
  singular vectors of the design are those of ``R11``;
- centred (PCA, ``center=True``): the factor of ``sqrt(w) (X - mean)`` with the
  weighted means (:class:`~shardfit.stats.centered_qr.CenteredQR`): each block's rows
  are centred at the block's own means before its QR, and two factors merge exactly
  as the QR of ``[R_a; R_b; sqrt(W_a W_b / W) (mean_a - mean_b)']`` (the QR form of
  Chan et al.'s parallel variance update), without a second pass to find the means.

Every step is an orthogonal transformation or an SVD (LAPACK), so the result is
backward stable: the singular values carry an absolute error of about ``eps`` times
the largest column norm of the design (centred, when centring: a column's offset from
zero costs no digits). Only the smallest singular values can be disturbed more, by up
to ``eps`` times the largest raw column norm, because a column's mean is itself
rounded to a float before it is subtracted (as it is in any float64 centring); the
rank tolerance allows for that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from shardfit.data.partition import Partition
from shardfit.data.resolve import as_source
from shardfit.design.materialize import DesignChunk
from shardfit.design.schema import learn_design
from shardfit.design.spec import DesignSpec
from shardfit.design.store import StoredColumns, stored_column, stored_design
from shardfit.engine import run_pass, session
from shardfit.engine.blas import single_threaded_blas
from shardfit.errors import DesignError
from shardfit.models.linear_tasks import LeastSquaresPass, fold_blocks
from shardfit.results.svd import SVDResults, sign_flip
from shardfit.results.svd_scores import check_positive_weights
from shardfit.stats.centered_qr import CenteredQR
from shardfit.stats.counts import RowCounts
from shardfit.stats.transform import ColumnTransform
from shardfit.stats.tsqr import QRStatistic

__all__ = ["CenteredSVDPass", "CenteredSVDTask", "SVDTask", "svd"]

Missing = Literal["drop", "raise"]


@dataclass(frozen=True)
class SVDTask:
    """Encode a partition and accumulate the TSQR factor of ``sqrt(w) * [X | 1]``
    (uncentred SVD).

    The ones column rides in the response slot of
    :class:`~shardfit.stats.tsqr.QRStatistic` (unused: the leading ``p x p`` block is
    the factor of ``sqrt(w) X``); the transform is the identity, so the factor is of the
    raw design.
    """

    spec: DesignSpec
    transform: ColumnTransform
    missing: Missing

    def fingerprint(self) -> str:
        return f"svd-qr-{self.missing}-{self.spec.fingerprint()}-{self.transform.fingerprint()}"

    def __call__(self, partition: Partition) -> LeastSquaresPass:
        def of_block(chunk: DesignChunk) -> QRStatistic:
            if chunk.weights is not None:
                check_positive_weights(chunk.weights, chunk.row_index, partition)
            ones = np.ones(chunk.nrows)
            return QRStatistic.of_chunk(chunk.X, ones, chunk.weights, self.transform)

        return LeastSquaresPass(*fold_blocks(self.spec, partition, self.missing, of_block))


@dataclass(frozen=True)
class CenteredSVDPass:
    """The merged result of a centred SVD pass: the centred factor and row counts."""

    core: CenteredQR
    counts: RowCounts

    def merge(self, other: CenteredSVDPass) -> CenteredSVDPass:
        return CenteredSVDPass(self.core.merge(other.core), self.counts.merge(other.counts))

    def to_state(self) -> dict[str, Any]:
        return {"core": self.core, "counts": self.counts}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CenteredSVDPass:
        return cls(core=state["core"], counts=state["counts"])


@dataclass(frozen=True)
class CenteredSVDTask:
    """Encode a partition and accumulate the factor of ``sqrt(w) (X - mean)`` about
    each block's own weighted means (:class:`~shardfit.stats.centered_qr.CenteredQR`),
    merged exactly to the global means (PCA)."""

    spec: DesignSpec
    dense: tuple[bool, ...]  # spec.dense_columns(), worked out once on the driver
    missing: Missing

    def fingerprint(self) -> str:
        # Not "svd-qr-...": a checkpoint of the uncentred factor is not this one.
        return f"svd-centred-qr-{self.missing}-{self.spec.fingerprint()}"

    def __call__(self, partition: Partition) -> CenteredSVDPass:
        def of_block(chunk: DesignChunk) -> CenteredQR:
            if chunk.weights is not None:
                check_positive_weights(chunk.weights, chunk.row_index, partition)
            return CenteredQR.of_chunk(chunk.X, chunk.weights, self.dense)

        return CenteredSVDPass(*fold_blocks(self.spec, partition, self.missing, of_block))


def svd(
    formula: str | StoredColumns,
    data: Any = None,
    *,
    center: bool = False,
    weights: str | StoredColumns | None = None,
    missing: Missing = "drop",
    max_levels: int = 10_000,
    backend: Any = None,
    workers: int | None = None,
    checkpoint: str | None = None,
    progress: bool = False,
) -> SVDResults:
    """Singular value decomposition (or PCA) of a formula's design matrix, out of core.

    One pass over the data: each partition's rows are encoded with the design learned
    in the schema pass and reduced to a small triangular factor (TSQR); the SVD of the
    merged factor gives the singular values and right singular vectors of the whole
    design exactly (backward stable, no normal equations). Centred, each block's rows
    are centred at its own means and the factors merge exactly, so a column's offset
    from zero costs no accuracy. Results are bitwise the same on every backend for a
    given partitioning.

    Parameters
    ----------
    formula : str
        A right-hand-side formulaic formula, e.g. ``"0 + a + b + d:c + C(cat1)"``,
        applied identically to every partition. Without ``0 +`` the design has an
        intercept column, which the SVD treats as any other column. Formula strings
        are code: they are evaluated as Python, so never pass one from an untrusted
        source. Or a design store's ``store.X`` (:func:`shardfit.write_design`), with
        no ``data``: the stored columns, as they are.
    data : Source, path, glob, pandas.DataFrame or pyarrow.Table
        The data (none with a design store).
    center : bool
        ``True`` for PCA: the SVD of the column-centred design (weighted means with
        ``weights``), still in one pass (see :mod:`shardfit.models.svd`).
    weights : str, optional
        A column of positive row weights (a store's ``store.weights``): the SVD is
        of ``sqrt(w) * X`` (centred about the weighted means). A non-positive weight
        raises naming its partition and row.
    missing : {"drop", "raise"}
        Rows missing a value the design needs are dropped and counted
        (``rows_dropped``), or raise naming the first one.
    max_levels : int
        The most levels a categorical may have.
    backend, workers, progress
        Where the pass runs (see :func:`shardfit.engine.run_pass`); the default is
        local processes, so a script calling this needs ``if __name__ == "__main__":``.
    checkpoint : str, optional
        A directory keeping each partition's factor as it completes, so a rerun after
        an interruption computes only what is missing.

    Returns
    -------
    SVDResults
        Singular values, components (the rows of ``Vt``), explained variances, rank,
        and out-of-core scores through :meth:`SVDResults.transform`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, shardfit
    >>> df = pd.DataFrame({"a": [1.0, 2.0, 4.0, 7.0], "b": [1.0, 0.0, 1.0, 3.0]})
    >>> res = shardfit.svd("0 + a + b", df, center=True, backend="serial")
    >>> res.rank
    2
    """
    if missing not in ("drop", "raise"):
        raise ValueError(
            f"The 'missing' parameter of svd must be 'drop' or 'raise'. Got {missing!r}."
        )
    if not isinstance(center, bool):
        raise TypeError(f"The 'center' parameter of svd must be a bool. Got {center!r}.")
    stored = _stored(formula, data, weights)
    if stored is not None:
        source, design, weights = stored
        formula = f"the design stored at {formula.store.path}"  # type: ignore[union-attr]
    else:
        if "~" in str(formula).strip().lstrip("~"):  # '~ a + b' is a right-hand side alone
            raise ValueError(
                "svd takes a right-hand-side formula (no response), e.g. '0 + a + b'. "
                f"Got {formula!r}."
            )
        # A formula's design: no constant column to look for (an SVD has no intercept).
        source, design = as_source(data), {"find_constant": False}
    assert isinstance(formula, str) and not isinstance(weights, StoredColumns)
    with (
        session(backend, workers=workers, partitions=source.npartitions) as sess,
        single_threaded_blas(),
    ):
        learned = learn_design(
            None if stored else formula,
            source,
            **design,
            weights=weights,
            missing=missing,
            max_levels=max_levels,
            summaries="levels",
            backend=sess,
            progress=progress,
        )
        spec = learned.spec
        p = len(spec.column_names)
        if p == 0:
            raise DesignError(f"formula {formula!r} gives a design with no columns")
        dense = spec.dense_columns()
        task: SVDTask | CenteredSVDTask
        if center:
            task = CenteredSVDTask(spec, tuple(dense), missing)
        else:
            identity = ColumnTransform((0.0,) * (p + 1), (1.0,) * (p + 1), dense)
            task = SVDTask(spec, identity, missing)
        merged: LeastSquaresPass | CenteredSVDPass = run_pass(
            task,
            source,
            backend=sess,
            progress=progress,
            checkpoint=checkpoint,
            pass_name="svd-qr",  # both: profiles name the pass, the fingerprint the factor
            allreduce=True,
        )
        if isinstance(merged.core, CenteredQR):
            nobs, sum_weights = merged.core.nobs, merged.core.sum_weights
        else:
            assert isinstance(merged.core, QRStatistic)
            nobs, sum_weights = merged.core.totals.nobs, merged.core.totals.sum_weights
        if nobs == 0:
            raise DesignError(
                f"no rows of {source.name!r} have every value the design needs "
                f"({merged.counts.read:,} rows read, all dropped for missing values)"
            )
        factor, mean, largest_norm = _design_factor(merged.core)
        s, vt = _svd_of_factor(factor, min(nobs, p))
    # numpy.linalg.matrix_rank's default tolerance, with the largest raw column norm in
    # place of s_max when centring: the smallest centred singular values carry errors
    # of eps times the raw column norms, from rounding each mean to a float.
    tolerance = float(max(s[0] if s.size else 0.0, largest_norm) * max(nobs, p))
    tolerance *= float(np.finfo(np.float64).eps)
    return SVDResults(
        names=spec.column_names,
        singular_values_array=s,
        components_array=vt,
        nobs=int(nobs),
        sum_weights=float(sum_weights),
        mean_array=mean,
        center=center,
        weighted=weights is not None,
        tolerance=tolerance,
        rows_read=int(merged.counts.read),
        rows_dropped=dict(merged.counts.dropped),
        rows_skipped=int(merged.counts.skipped),
        formula=formula,
        data_name=source.name,
        spec=spec,
    )


def _stored(formula: Any, data: Any, weights: Any) -> tuple[Any, dict[str, Any], str | None] | None:
    """A design store's source, plain-columns design and weight column, when
    ``formula`` is ``store.X``; ``None`` for a formula."""
    if not isinstance(formula, StoredColumns):
        if isinstance(weights, StoredColumns):
            raise DesignError("weights=store.weights goes with a store's design: svd(store.X)")
        return None
    if data is not None:
        raise ValueError("svd(store.X) reads the store: pass no data")
    # The same store's columns (its response column named, not read: a store of data to
    # predict on has none).
    store = formula.store
    stored_design(StoredColumns(store, (store.response,)), formula, weights=weights)
    weight_column = stored_column(weights, "weights")
    return store.source(), formula.plain_design(), weight_column


def _design_factor(
    stat: QRStatistic | CenteredQR,
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """The ``p x p`` factor of the (centred) weighted design, the weighted column means
    when centred (a :class:`CenteredQR`), and the largest raw column norm of
    ``sqrt(w) X``."""
    if isinstance(stat, CenteredQR):
        r = stat.full_r()  # of sqrt(w) (X - mean)
        mean = stat.mean
        # sum w x^2 = sum w (x - mean)^2 + W mean^2: the raw norms are those of the
        # columns of [R; sqrt(W) mean'] (up to the second-order W excess^2).
        raw = np.vstack([r, np.sqrt(stat.sum_weights) * mean[None, :]])
        return r, mean, _largest_column_norm(raw)
    r = stat.full_r()  # of sqrt(w) [X | 1]
    p = r.shape[1] - 1
    # ||R e_j|| = ||Z e_j||: the raw column norms, for the rank tolerance.
    return r[:p, :p].copy(), None, _largest_column_norm(r[:, :p])


def _largest_column_norm(a: np.ndarray) -> float:
    """The largest Euclidean column norm of ``a``, without overflow or underflow.

    ``np.linalg.norm`` squares the entries: columns of 1e155 gave ``inf`` (and a rank
    of 0), columns of 1e-170 gave 0. Scaling by the largest entry first, as LAPACK's
    ``dnrm2`` does, keeps every finite norm.
    """
    if not a.size:
        return 0.0
    biggest = float(np.max(np.abs(a)))
    if biggest == 0.0 or not np.isfinite(biggest):
        return biggest
    return biggest * float(np.max(np.linalg.norm(a / biggest, axis=0)))


def _svd_of_factor(factor: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest singular values and right singular vectors of ``factor``, with
    scikit-learn's sign convention (see :func:`~shardfit.results.svd.sign_flip`)."""
    _, s, vt = np.linalg.svd(factor, full_matrices=False)
    return s[:k].copy(), sign_flip(vt[:k].copy())
