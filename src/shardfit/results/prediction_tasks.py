"""What each partition computes for predictions (runs on workers).

A task encodes its partition with the fitted design (predictor columns only) and
computes, for each kept design row ``x`` and the non-aliased estimates ``b`` with
their covariance ``C`` (aliased columns, reported as NaN, contribute nothing):

- ``predicted = x'b``;
- ``mean_se = sqrt(x'Cx)``; ``mean_ci_* = predicted -/+ q * mean_se``;
- ``obs_ci_* = predicted -/+ q * sqrt(mean_se**2 + scale)``.

In memory the values go back to the driver; out of core the worker writes them to
its own Parquet part file and returns only counts.

``predicted`` is summed row by row, so it is bitwise the same for any partitioning
and any backend; ``mean_se`` goes through a BLAS product whose blocking follows the
partition's size, so across partitionings it agrees to the last bit or two.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from scipy import stats

from shardfit.data.convert import write_atomically
from shardfit.data.partition import Partition
from shardfit.design.materialize import encode_partition
from shardfit.design.spec import DesignSpec
from shardfit.errors import ReadError

__all__ = [
    "CountRows",
    "PartPrediction",
    "PredictTask",
    "PredictionModel",
    "critical_value",
    "prediction_model",
    "source_positions",
    "total_counts",
    "value_columns",
    "warn_dropped",
    "write_atomically",
]

Unseen = Literal["raise", "zero"]
#: What a task computes: the mean only, ``mean_se`` too (get_prediction), or intervals.
Outputs = Literal["mean", "mean_se", "confidence", "prediction"]

MEAN_COLUMNS = ("mean_se", "mean_ci_lower", "mean_ci_upper")
OBS_COLUMNS = ("obs_ci_lower", "obs_ci_upper")
# Rows per block of x'Cx: bounds the temporary (block x p) product.
_BLOCK_ROWS = 16_384


def value_columns(outputs: Outputs) -> tuple[str, ...]:
    """The columns a task with ``outputs`` returns, after ``predicted``."""
    return {
        "mean": (),
        "mean_se": ("mean_se",),
        "confidence": MEAN_COLUMNS,
        "prediction": MEAN_COLUMNS + OBS_COLUMNS,
    }[outputs]


def critical_value(use_t: bool, df: float | None, alpha: float) -> float:
    """The ``1 - alpha/2`` quantile of Student's t with ``df`` (or of the normal)."""
    if use_t:
        return float(stats.t.ppf(1 - alpha / 2, df))
    return float(stats.norm.ppf(1 - alpha / 2))


@dataclass(frozen=True, eq=False)
class PredictionModel:
    """What a worker needs to predict: the design and the non-aliased estimates."""

    spec: DesignSpec
    kept: np.ndarray
    params: np.ndarray
    cov: np.ndarray
    scale: float
    crit: float

    def columns(
        self, X: np.ndarray, outputs: Outputs, offset: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """``predicted`` and the columns of ``outputs`` for design rows ``X`` (plus the
        design's ``offset`` column, when it has one)."""
        Xk = X if self.kept.all() else X[:, self.kept]
        n = Xk.shape[0]
        predicted = np.empty(n)
        variance = np.empty(n) if outputs != "mean" else None
        for start in range(0, n, _BLOCK_ROWS):
            block = np.ascontiguousarray(Xk[start : start + _BLOCK_ROWS])
            # Row by row with numpy's pairwise sum, not BLAS gemv: each row's sum then
            # does not depend on the rows beside it or on BLAS threads, so predictions
            # are bitwise the same for every partitioning and backend.
            predicted[start : start + _BLOCK_ROWS] = (block * self.params).sum(axis=1)
            if variance is not None:
                variance[start : start + _BLOCK_ROWS] = ((block @ self.cov) * block).sum(axis=1)
        if offset is not None:
            predicted += offset
        out = {"predicted": predicted}
        if variance is None:
            return out
        # x'Cx >= 0 exactly; rounding can leave a tiny negative where x'Cx is ~0.
        mean_se = np.sqrt(np.maximum(variance, 0.0))
        out["mean_se"] = mean_se
        if outputs == "mean_se":
            return out
        out["mean_ci_lower"] = predicted - self.crit * mean_se
        out["mean_ci_upper"] = predicted + self.crit * mean_se
        if outputs == "prediction":
            obs_se = np.sqrt(mean_se**2 + self.scale)
            out["obs_ci_lower"] = predicted - self.crit * obs_se
            out["obs_ci_upper"] = predicted + self.crit * obs_se
        return out


def prediction_model(results: Any, alpha: float) -> PredictionModel:
    """The worker-side model of ``results`` with intervals at level ``1 - alpha``."""
    if results.spec is None:
        raise ValueError("these results carry no design spec, so they cannot predict")
    params = np.asarray(results.params_array, dtype=np.float64)
    kept = np.isfinite(params)  # aliased columns are NaN and contribute nothing
    cov = np.asarray(results.cov_array, dtype=np.float64)[np.ix_(kept, kept)]
    return PredictionModel(
        spec=_predictor_spec(results.spec),
        kept=kept,
        params=params[kept],
        cov=cov,
        scale=float(results.scale),
        crit=critical_value(bool(results.use_t), results.df_inference, alpha),
    )


def _predictor_spec(spec: DesignSpec) -> DesignSpec:
    """The spec reading only predictor columns: new data needs no response or weights."""
    from shardfit.design.formula import analyze_formula

    if spec.formula is None:
        needed = set(spec.x_columns)
    else:
        formula = str(spec.formula)
        rhs = formula.split("~", 1)[1] if spec.has_formula_response else formula
        needed = set(analyze_formula(rhs).variables) & set(spec.formula_columns)
    needed |= {name for name in (spec.offset, spec.exposure) if name}
    columns = tuple(name for name in spec.raw_columns if name in needed)
    return replace(spec, raw_columns=columns, weights=None, extra_columns=())


@dataclass(frozen=True, eq=False)
class PartPrediction:
    """One partition's outcome: counts, and the values (in memory) or the file written."""

    rows_read: int
    dropped: dict[str, int]
    skipped: int
    row_index: np.ndarray | None = None
    values: dict[str, np.ndarray] | None = None
    file: str | None = None
    written: int = 0

    @property
    def nrows(self) -> int:  # progress displays count rows read
        return self.rows_read


@dataclass(frozen=True)
class PredictTask:
    """Encode a partition and predict; write a part file when ``layout`` is given.

    ``layout`` maps a partition key to ``(file name, first row, rows expected)``;
    ``out_dir`` is an absolute directory the workers can see.
    """

    model: PredictionModel
    outputs: Outputs
    unseen: Unseen
    out_dir: str | None = None
    layout: dict[str, tuple[str, int, int]] | None = None

    def __call__(self, partition: Partition) -> PartPrediction:
        chunk = encode_partition(
            self.model.spec, partition, missing="drop", unseen=self.unseen, need_response=False
        )
        # A structured (split) design is a speed-up of fits; prediction multiplies densely.
        X = chunk.X if isinstance(chunk.X, np.ndarray) else chunk.X.toarray()
        values = self.model.columns(X, self.outputs, chunk.offset)
        dropped = {reason: n for reason, n in chunk.dropped.items() if n}
        if self.layout is None or self.out_dir is None:
            return PartPrediction(
                chunk.rows_read, dropped, chunk.skipped_rows, chunk.row_index, values
            )
        name, first, expected = self.layout[partition.key]
        if chunk.rows_read != expected:
            raise ReadError(
                f"partition {partition.key} gave {chunk.rows_read} rows where {expected} "
                "were counted before: the data changed while predicting"
            )
        table = pa.table({"row": (first + chunk.row_index).astype(np.int64), **values})
        write_atomically(Path(self.out_dir) / name, table=table)
        return PartPrediction(
            chunk.rows_read, dropped, chunk.skipped_rows, file=name, written=chunk.nrows
        )


@dataclass(frozen=True)
class CountRows:
    """Rows a partition yields when ``columns`` are read (what PredictTask reads)."""

    columns: tuple[str, ...]

    def __call__(self, partition: Partition) -> int:
        return partition.read(list(self.columns)).table.num_rows


def source_positions(parts: Sequence[tuple[Any, int]]) -> np.ndarray:
    """The 0-based positions in the source of the rows each partition kept, in source
    order, from ``(row_index within the partition, rows it read)`` pairs."""
    firsts = np.cumsum([0, *(rows for _, rows in parts)])
    kept = (first + np.asarray(index, np.int64) for first, (index, _) in zip(firsts, parts))
    return np.concatenate([np.zeros(0, np.int64), *kept])


def total_counts(parts: list[PartPrediction]) -> dict[str, Any]:
    """Rows read, dropped by reason, and skipped, over all partitions."""
    dropped: dict[str, int] = {}
    for part in parts:
        for reason, n in part.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
    return {
        "read": sum(part.rows_read for part in parts),
        "dropped": dropped,
        "skipped": sum(part.skipped for part in parts),
    }


def warn_dropped(counts: dict[str, Any], name: str, *, stacklevel: int = 4) -> None:
    """Say how many rows got no prediction (nothing is dropped without a word).

    The default ``stacklevel`` points at the code calling ``LinearResults.predict``.
    """
    total = sum(counts["dropped"].values())
    if total:
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in counts["dropped"].items())
        warnings.warn(
            f"predict: {total:,} of {counts['read']:,} rows of {name!r} have no prediction "
            f"({reasons}); get_prediction(...).row_labels names the rows kept",
            UserWarning,
            stacklevel=stacklevel,
        )
