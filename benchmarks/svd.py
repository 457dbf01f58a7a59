"""Case ``svd_pca``: PCA of the seed's design (seed 002) out of core vs in memory.

Data: ``shardfit simulate linreg --seed 0`` read as the seed's shape: four normal
columns (``x1``..``x4`` for the seed's ``a``..``d``; ``x2`` correlates with ``x1``,
``x4`` with ``x3``) and a categorical (``g10``, 10 levels, for the seed's 5-level
``cat1``). Formula: the seed's ``0 + a + b + c + d + d:c + a:b + a:c + C(cat1)``, so
17 columns; centred, the ten dummies sum to one, so the rank is 16. The "parameters"
compared are the singular values above ``1e-6 s_max`` (``s1``..``s16``).

Tools (every one reads the Parquet file inside the clock):

- limit: pyarrow reads the five columns into NumPy;
- reference: NumPy ``svd`` of the centred dense design in memory;
- peer: scikit-learn ``PCA(svd_solver="full")`` in memory;
- peer: scikit-learn ``IncrementalPCA`` fed one row group (a partition) at a time,
  the out-of-core peer;
- peer: ``dask.array.linalg.svd`` (TSQR) of the centred design on a 2-worker
  LocalCluster, one chunk per row group;
- shardfit: ``shardfit.svd(center=True)`` on a warm default (processes) session.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.case import Case, DataSpec, Outcome, Problem, Tool
from benchmarks.design import parquet_levels
from benchmarks.peers.dask_peer import LocalDask

__all__ = ["CASES", "make_data"]

QUICK_ROWS = (20_000,)  # the file the linear cases' --quick runs simulate already
FULL_ROWS = (2_500_000,)
FORMULA = "0 + x1 + x2 + x3 + x4 + x4:x3 + x1:x2 + x1:x3 + C(g10)"
NUMERIC = ("x1", "x2", "x3", "x4")
CATEGORICAL = "g10"
COLUMNS = [*NUMERIC, CATEGORICAL]
#: Singular values below this fraction of the largest are the design's null space.
NULL = 1e-6


def make_data(rows: int) -> DataSpec:
    """``shardfit simulate linreg --seed 0`` at ``rows``."""
    return DataSpec("linreg", rows, seed=0)


def _params(s: np.ndarray) -> dict[str, float]:
    s = np.asarray(s, dtype=np.float64)
    return {f"s{i + 1}": float(v) for i, v in enumerate(s[s > NULL * s[0]])}


def _levels(path: str) -> tuple[str, ...]:
    return parquet_levels(path, [CATEGORICAL])[CATEGORICAL]


def _design(table: pa.Table, levels: tuple[str, ...]) -> np.ndarray:
    """The formula's 17 columns (the dummies of every level: no intercept)."""
    x1, x2, x3, x4 = (np.asarray(table[name].to_numpy(), dtype=np.float64) for name in NUMERIC)
    X = np.zeros((len(x1), 7 + len(levels)))
    for j, column in enumerate((x1, x2, x3, x4, x4 * x3, x1 * x2, x1 * x3)):
        X[:, j] = column
    codes = pc.index_in(table[CATEGORICAL], value_set=pa.array(levels))
    codes = np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.intp)
    X[np.arange(len(codes)), 7 + codes] = 1.0
    return X


def _read_design(path: str) -> np.ndarray:
    table = pq.read_table(path, columns=COLUMNS)
    return _design(table, _levels(path))


class ReadColumns:
    """pyarrow ``read_table`` of the five columns, then NumPy arrays (the limit)."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.path = str(problem.parquet)

    def fit(self) -> None:
        table = pq.read_table(self.path, columns=COLUMNS, read_dictionary=[CATEGORICAL])
        arrays = [table[name].to_numpy() for name in NUMERIC]
        arrays.append(table[CATEGORICAL].combine_chunks().indices.to_numpy())
        assert all(len(a) == table.num_rows for a in arrays)

    def close(self) -> None:
        pass


class NumpySVD:
    """NumPy ``svd`` of the centred design, built in memory (the reference)."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.path = str(problem.parquet)

    def fit(self) -> dict[str, float]:
        X = _read_design(self.path)
        X -= X.mean(axis=0)
        return _params(np.linalg.svd(X, compute_uv=False))

    def close(self) -> None:
        pass


class SklearnPCA:
    """scikit-learn ``PCA(svd_solver="full")`` on the design in memory."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        from sklearn.decomposition import PCA  # imported before the clock

        self.path = str(problem.parquet)
        self.pca = PCA

    def fit(self) -> dict[str, float]:
        pca = self.pca(svd_solver="full").fit(_read_design(self.path))
        return _params(pca.singular_values_)

    def close(self) -> None:
        pass


class SklearnIncrementalPCA:
    """scikit-learn ``IncrementalPCA``, ``partial_fit`` on one row group at a time."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        from sklearn.decomposition import IncrementalPCA

        self.path = str(problem.parquet)
        self.estimator = IncrementalPCA
        groups = pq.ParquetFile(self.path).metadata.num_row_groups
        outcome.notes.append(f"batch = one row group ({groups} batches)")

    def fit(self) -> dict[str, float]:
        levels = _levels(self.path)  # a pass over the categorical, as shardfit's schema pass
        pca = self.estimator()
        handle = pq.ParquetFile(self.path)
        for group in range(handle.metadata.num_row_groups):
            pca.partial_fit(_design(handle.read_row_group(group, columns=COLUMNS), levels))
        return _params(pca.singular_values_)

    def close(self) -> None:
        pass


class DaskSVD(LocalDask):
    """``dask.array.linalg.svd`` (TSQR) of the centred design on a LocalCluster."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        super().__init__(problem, outcome)
        self.path = str(problem.parquet)
        outcome.notes.append("2 workers; one chunk per row group; centred with da.mean")

    def fit(self) -> dict[str, float]:
        import dask
        import dask.array as da

        levels = _levels(self.path)
        path = self.path

        def block(group: int) -> np.ndarray:
            return _design(pq.ParquetFile(path).read_row_group(group, columns=COLUMNS), levels)

        width = 7 + len(levels)
        X = da.concatenate(
            [
                da.from_delayed(dask.delayed(block)(g), shape=(n, width), dtype=float)
                for g, n in enumerate(self.chunks)
            ]
        )
        centred = X - X.mean(axis=0)
        _, s, _ = da.linalg.svd(centred)
        return _params(np.asarray(s.compute()))


class ShardfitSVD:
    """``shardfit.svd(center=True)`` on a warm default (processes) session."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import shardfit
        from shardfit.data.partition import Source
        from shardfit.engine import session

        self.shardfit = shardfit
        self.path = str(problem.parquet)
        started = time.perf_counter()
        self.session = session().open()
        # Warm the workers (imports, the formula's plan) on the first row groups, as
        # the peers' clusters start before their clocks.
        whole = shardfit.read_parquet(self.path)
        sample = Source(whole.name, whole.partitions[: self.session.nworkers], whole.schema)
        shardfit.svd(FORMULA, sample, center=True, backend=self.session)
        outcome.startup_seconds = time.perf_counter() - started
        outcome.notes.append(
            f"{self.session.name}, {self.session.nworkers} workers, session reused; "
            f"{whole.npartitions} partitions"
        )

    def fit(self) -> dict[str, float]:
        source = self.shardfit.read_parquet(self.path)
        result: Any = self.shardfit.svd(FORMULA, source, center=True, backend=self.session)
        return _params(result.singular_values)

    def close(self) -> None:
        self.session.close()


CASES: dict[str, Case] = {
    "svd_pca": Case(
        name="svd_pca",
        description="PCA of the seed-002 design (17 columns, rank 16) from Parquet",
        make_data=make_data,
        formula=FORMULA,
        sizes={"quick": QUICK_ROWS, "full": FULL_ROWS},
        tools=(
            Tool("pyarrow read Parquet → NumPy", "limit", ReadColumns),
            Tool("NumPy svd in memory", "reference", NumpySVD),
            Tool("scikit-learn PCA(full) in memory", "peer", SklearnPCA, requires=("sklearn",)),
            Tool(
                "scikit-learn IncrementalPCA (batch = row group)",
                "peer",
                SklearnIncrementalPCA,
                requires=("sklearn",),
            ),
            Tool(
                "Dask da.linalg.svd (TSQR)",
                "peer",
                DaskSVD,
                requires=("dask.array", "distributed"),
            ),
            Tool("shardfit svd(center=True)", "shardfit", ShardfitSVD),
        ),
        references=("NumPy svd in memory",),
        goals="one pass; equal singular values to 1e-9; faster than IncrementalPCA",
    ),
}
