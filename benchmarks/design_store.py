"""Case ``design_store``: fit from a design stored once (seed 002) or from the raw data.

Seed 002 reads a big CSV in chunks, encodes the formula's design chunk by chunk and
keeps it on disk to fit from. Data: ``shardfit simulate linreg --seed 0`` as CSV and
Parquet, the 229-column ``default_formula("linreg")`` (mostly dummies). Tools:

- limit: pyarrow parses the CSV's needed columns;
- reference: NumPy's exact streamed QR (from the Parquet file);
- shardfit from CSV: ``ols(formula, csv)``, parsing and encoding every fit;
- shardfit from Parquet: the same from the Parquet file;
- shardfit from the design store: ``OLS(store.y, store.X)``, the store written once
  from the CSV by ``write_design`` before the clock (its time reported as start-up).

Every shardfit tool runs on a warm 2-worker ``processes`` session.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from benchmarks.case import Case, DataSpec, Outcome, Problem, Tool
from benchmarks.limits import NumpyTSQR, ParseCsv
from shardfit.data.simulate import default_formula

__all__ = ["CASES"]

QUICK_ROWS = (20_000,)
FULL_ROWS = (500_000,)


def make_data(rows: int) -> DataSpec:
    """``shardfit simulate linreg --seed 0`` at ``rows``."""
    return DataSpec("linreg", rows, seed=0)


class _Warm:
    """A warm default session (workers started and their imports done)."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import shardfit
        from shardfit.engine import session

        self.shardfit, self.problem = shardfit, problem
        started = time.perf_counter()
        self.session = session().open()
        self.prepare()
        outcome.startup_seconds = time.perf_counter() - started
        outcome.notes.append(f"{self.session.name}, {self.session.nworkers} workers")

    def prepare(self) -> None:
        # Warm the workers with a fit of the Parquet file (imports, compiled kernels).
        self.shardfit.ols(self.problem.formula, str(self.problem.parquet)).fit(backend=self.session)

    def close(self) -> None:
        self.session.close()


class FromCsv(_Warm):
    """``ols(formula, csv)``: parse and encode on every fit."""

    def fit(self) -> dict[str, float]:
        results = self.shardfit.ols(self.problem.formula, str(self.problem.csv)).fit(
            backend=self.session
        )
        return {str(k): float(v) for k, v in results.params.items()}


class FromParquet(_Warm):
    """``ols(formula, parquet)``: read and encode on every fit."""

    def fit(self) -> dict[str, float]:
        results = self.shardfit.ols(self.problem.formula, str(self.problem.parquet)).fit(
            backend=self.session
        )
        return {str(k): float(v) for k, v in results.params.items()}


class FromStore(_Warm):
    """``OLS(store.y, store.X)`` on a store written from the CSV before the clock."""

    store: Any

    def prepare(self) -> None:
        super().prepare()
        folder = self.problem.scratch / "design-store"
        shutil.rmtree(folder, ignore_errors=True)
        self.store = self.shardfit.write_design(
            self.problem.formula, str(self.problem.csv), folder, backend=self.session
        )

    def fit(self) -> dict[str, float]:
        results = self.shardfit.OLS(self.store.y, self.store.X).fit(backend=self.session)
        return {str(k): float(v) for k, v in results.params.items()}


CASES: dict[str, Case] = {
    "design_store": Case(
        name="design_store",
        description="OLS on linreg (229 design columns): from CSV, Parquet or a design store",
        make_data=make_data,
        formula=default_formula("linreg"),
        sizes={"quick": QUICK_ROWS, "full": FULL_ROWS},
        goals="a fit from the store faster than re-parsing and re-encoding the CSV",
        tools=(
            Tool("pyarrow parse CSV", "limit", ParseCsv, needs=("csv",)),
            Tool("NumPy streamed QR (exact)", "reference", NumpyTSQR),
            Tool("shardfit from CSV", "shardfit", FromCsv, needs=("csv", "parquet")),
            Tool("shardfit from Parquet", "shardfit", FromParquet),
            Tool("shardfit from the design store", "shardfit", FromStore, needs=("csv", "parquet")),
        ),
        references=("NumPy streamed QR (exact)",),
    ),
}
