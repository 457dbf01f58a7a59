"""The physical limit, and an exact NumPy reference, measured in the same run.

``read_parquet``
    The columns the model needs, from Parquet into NumPy arrays with pyarrow alone
    (categoricals as dictionary codes). No fit can beat reading its data.
``parse_csv``
    The same columns parsed from the CSV with pyarrow alone (into an Arrow table).
``gram_blas``
    ``X'X`` of the dense design ``[X | y]`` (229 + 1 columns, weighted rows for WLS)
    with NumPy's BLAS on blocks already in memory; building them is not timed. Blocks
    beyond :data:`GRAM_MEMORY` are the first ones again (the same flops; at 10M rows the
    dense design would need 18 GB).
``numpy_tsqr``
    An exact reference independent of shardfit: each row group read with pyarrow, its
    dense design built in NumPy, and the R factor of ``[X | y]`` updated by a
    Householder QR of ``[R; block]``; memory is bounded, so it runs where statsmodels
    does not fit.
"""

from __future__ import annotations

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import scipy.linalg

from benchmarks.case import Outcome, Problem
from benchmarks.design import DenseDesign, parquet_levels, parse_formula

__all__ = ["GRAM_MEMORY", "GramBlas", "NumpyTSQR", "ParseCsv", "ReadParquet"]

GRAM_MEMORY = 4 * 2**30  # bytes of dense design kept in memory for the BLAS limit
BLOCK_ROWS = 250_000


class ReadParquet:
    """pyarrow ``read_table`` of the needed columns, then NumPy arrays."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.path = str(problem.parquet)
        self.terms = parse_formula(problem.formula)
        self.columns = self.terms.columns(problem.weights)

    def fit(self) -> None:
        table = pq.read_table(
            self.path, columns=self.columns, read_dictionary=list(self.terms.categorical)
        )
        arrays = []
        for name in self.columns:
            column = table[name]
            if name in self.terms.categorical:
                arrays.append(column.combine_chunks().indices.to_numpy())
            else:
                arrays.append(column.to_numpy())
        assert all(len(a) == table.num_rows for a in arrays)

    def close(self) -> None:
        pass


class ParseCsv:
    """pyarrow ``csv.read_csv`` of the needed columns."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.path = str(problem.csv)
        self.columns = parse_formula(problem.formula).columns(problem.weights)

    def fit(self) -> None:
        options = pacsv.ConvertOptions(include_columns=self.columns)
        table = pacsv.read_csv(self.path, convert_options=options)
        assert table.num_columns == len(self.columns)

    def close(self) -> None:
        pass


def _weighted_block(design: DenseDesign, table: object, weights: str | None) -> np.ndarray:
    """``[X | y]`` of a table, rows scaled by the square root of the weights."""
    X = design.matrix(table)
    block = np.empty((X.shape[0], X.shape[1] + 1))
    block[:, :-1] = X
    block[:, -1] = design.response(table)
    if weights:
        block *= np.sqrt(np.asarray(table[weights], dtype=np.float64))[:, None]
    return block


class GramBlas:
    """Sum of ``B'B`` over blocks ``B`` of ``[X | y]`` already in memory."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        terms = parse_formula(problem.formula)
        design = DenseDesign(terms, parquet_levels(str(problem.parquet), terms.categorical))
        self.rows = problem.rows
        file = pq.ParquetFile(problem.parquet)
        budget = max(1, GRAM_MEMORY // ((design.width + 1) * 8 * BLOCK_ROWS))
        self.blocks: list[np.ndarray] = []
        for batch in file.iter_batches(BLOCK_ROWS, columns=terms.columns(problem.weights)):
            if len(self.blocks) == budget:
                break
            self.blocks.append(_weighted_block(design, batch, problem.weights))
        held = sum(len(b) for b in self.blocks)
        if held < self.rows:
            outcome.notes.append(
                f"{held:,} rows held in memory and reused to make {self.rows:,} rows of flops"
            )

    def fit(self) -> None:
        done = 0
        gram = np.zeros((self.blocks[0].shape[1],) * 2)
        while done < self.rows:
            for block in self.blocks:
                part = block[: self.rows - done]
                gram += part.T @ part  # NumPy calls BLAS syrk for a product with its transpose
                done += len(part)
                if done >= self.rows:
                    break

    def close(self) -> None:
        self.blocks.clear()


class NumpyTSQR:
    """Exact least squares by a streamed Householder QR of ``[X | y]`` (row groups)."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.path = str(problem.parquet)
        self.weights = problem.weights
        self.terms = parse_formula(problem.formula)

    def fit(self) -> dict[str, float]:
        design = DenseDesign(self.terms, parquet_levels(self.path, self.terms.categorical))
        columns = self.terms.columns(self.weights)
        r: np.ndarray | None = None
        for batch in pq.ParquetFile(self.path).iter_batches(BLOCK_ROWS, columns=columns):
            block = _weighted_block(design, batch, self.weights)
            stacked = block if r is None else np.vstack([r, block])
            r = scipy.linalg.qr(stacked, mode="r", overwrite_a=True, check_finite=False)[0]
            r = r[: block.shape[1]]
        assert r is not None
        p = design.width
        params = scipy.linalg.solve_triangular(r[:p, :p], r[:p, p])
        return dict(zip(design.names, params.tolist()))

    def close(self) -> None:
        pass
