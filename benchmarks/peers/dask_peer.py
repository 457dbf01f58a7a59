"""Dask peers: least squares with ``dask.array`` from the Parquet data.

Both start a ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``
(start-up reported apart), read the needed columns with ``dask.dataframe.read_parquet``
(one partition per row group), learn the levels of the categoricals in one pass, and
expand the formula per partition into the same 229-column treatment-coded design (see
:mod:`benchmarks.design`); rows are scaled by the square root of the weights for WLS.

``NormalEquations``
    ``solve(X'X, X'y)``: the two products are reduced across partitions by Dask, the
    small solve runs on the client.
``TSQR``
    ``dask.array.linalg.lstsq`` (tall-and-skinny QR), which needs the row counts of the
    chunks: they come from the Parquet metadata.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow.parquet as pq

from benchmarks.case import Outcome, Problem
from benchmarks.design import DenseDesign, levels_of, parse_formula

__all__ = ["TSQR", "LocalDask", "NormalEquations"]


class LocalDask:
    """A ``LocalCluster`` of 2 worker processes (1 thread each) and its client, started
    before the clock (its start-up reported apart); ``chunks``: the row counts of the
    Parquet file's row groups, one Dask chunk each. The base of every Dask peer."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import dask
        from distributed import Client, LocalCluster

        dask.config.set({"distributed.shuffle.method": "tasks", "logging.distributed": "error"})
        self.problem = problem
        started = time.perf_counter()
        self.cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            local_directory=str(problem.scratch),
        )
        self.client = Client(self.cluster)
        outcome.startup_seconds = time.perf_counter() - started
        metadata = pq.ParquetFile(problem.parquet).metadata
        self.chunks = tuple(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups))

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


class _DaskLeastSquares(LocalDask):
    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        super().__init__(problem, outcome)
        self.terms = parse_formula(problem.formula)

    def arrays(self) -> tuple[object, object, list[str]]:
        """The design ``X`` and response ``y`` as Dask arrays, and the column names."""
        import dask
        import dask.array as da
        import dask.dataframe as dd

        terms, weights = self.terms, self.problem.weights
        frame = dd.read_parquet(
            str(self.problem.parquet), columns=terms.columns(weights), split_row_groups=True
        )
        parts = frame.to_delayed()
        if len(parts) != len(self.chunks):
            raise RuntimeError(f"{len(parts)} Dask partitions for {len(self.chunks)} row groups")

        def unique(part: object, name: str) -> list[str]:
            return part[name].unique().tolist()  # type: ignore[index]

        found = dask.compute(
            {name: [dask.delayed(unique)(p, name) for p in parts] for name in terms.categorical}
        )[0]
        design = DenseDesign(terms, {name: levels_of(found[name]) for name in found})

        def block(part: object) -> np.ndarray:
            X = design.matrix(part)  # type: ignore[arg-type]
            if weights:
                X *= np.sqrt(part[weights].to_numpy(np.float64))[:, None]  # type: ignore[index]
            return X

        def response(part: object) -> np.ndarray:
            y = design.response(part)  # type: ignore[arg-type]
            if weights:
                y = y * np.sqrt(part[weights].to_numpy(np.float64))  # type: ignore[index]
            return y

        X = da.concatenate(
            [
                da.from_delayed(dask.delayed(block)(p), shape=(n, design.width), dtype=float)
                for p, n in zip(parts, self.chunks)
            ]
        )
        y = da.concatenate(
            [
                da.from_delayed(dask.delayed(response)(p), shape=(n,), dtype=float)
                for p, n in zip(parts, self.chunks)
            ]
        )
        return X, y, design.names


class NormalEquations(_DaskLeastSquares):
    """``solve(X'X, X'y)`` with the products computed by Dask."""

    def fit(self) -> dict[str, float]:
        import dask

        X, y, names = self.arrays()
        gram, moment = dask.compute(X.T @ X, X.T @ y)  # type: ignore[attr-defined]
        params = np.linalg.solve(gram, moment)
        return dict(zip(names, params.tolist()))


class TSQR(_DaskLeastSquares):
    """``dask.array.linalg.lstsq``: a tall-and-skinny QR."""

    def fit(self) -> dict[str, float]:
        import dask.array as da

        X, y, names = self.arrays()
        params, *_ = da.linalg.lstsq(X, y)
        return dict(zip(names, np.asarray(params.compute()).tolist()))
