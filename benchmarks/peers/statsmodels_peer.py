"""statsmodels peers: the in-memory fit (also the accuracy reference) and ``DistributedModel``.

``InMemory``
    ``pandas.read_parquet`` of the needed columns, then ``smf.ols`` / ``smf.wls`` from
    the formula and ``fit()`` (its default, ``pinv``). Everything is in memory: at 2M
    rows by 229 columns it peaks near 16 GB (OLS) and 19 GB (WLS).
``Distributed``
    ``DistributedModel`` with naive averaging (``_est_unregularized_naive`` and
    ``_join_naive``: the mean of per-partition OLS/WLS fits), one partition per Parquet
    row group read with pyarrow, sequentially (statsmodels' default). The average is not
    the full-data estimate, so its accuracy is reported, not checked.
"""

from __future__ import annotations

import pyarrow.parquet as pq

from benchmarks.case import Outcome, Problem
from benchmarks.design import DenseDesign, parquet_levels, parse_formula

__all__ = ["BYTES_PER_ROW", "Distributed", "InMemory"]

#: Peak bytes per row of the in-memory fit with 229 design columns, by whether it is
#: weighted (measured at 2M rows: OLS 15.8 GB, WLS 19.3 GB).
BYTES_PER_ROW = {False: 8_000, True: 9_800}


class InMemory:
    """statsmodels OLS/WLS from a formula on a pandas frame."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import statsmodels.formula.api  # noqa: F401 - imported before the clock starts

        self.path = problem.parquet
        self.formula = problem.formula
        self.weights = problem.weights
        self.columns = parse_formula(problem.formula).columns(problem.weights)

    def fit(self) -> dict[str, float]:
        import pandas as pd
        import statsmodels.formula.api as smf

        frame = pd.read_parquet(self.path, columns=self.columns)
        if self.weights:
            model = smf.wls(self.formula, frame, weights=frame[self.weights])
        else:
            model = smf.ols(self.formula, frame)
        del frame
        results = model.fit()
        return {str(k): float(v) for k, v in results.params.items()}

    def close(self) -> None:
        pass


class Distributed:
    """statsmodels ``DistributedModel`` with naive coefficient averaging."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.path = str(problem.parquet)
        self.weights = problem.weights
        self.terms = parse_formula(problem.formula)
        self.partitions = pq.ParquetFile(self.path).num_row_groups
        outcome.notes.append(f"{self.partitions} partitions (row groups), sequential")

    def fit(self) -> dict[str, float]:
        from statsmodels.base.distributed_estimation import (
            DistributedModel,
            _est_unregularized_naive,
            _join_naive,
        )
        from statsmodels.regression.linear_model import OLS, WLS

        design = DenseDesign(self.terms, parquet_levels(self.path, self.terms.categorical))
        columns = self.terms.columns(self.weights)
        file = pq.ParquetFile(self.path)
        weights: list[object] = []

        def data() -> object:
            for index in range(self.partitions):
                table = file.read_row_group(index, columns=columns)
                if self.weights:
                    weights.append(table[self.weights].to_numpy())
                yield design.response(table), design.matrix(table)

        def init_kwds() -> object:
            for index in range(self.partitions):
                yield {"weights": weights[index]} if self.weights else {}

        model = DistributedModel(
            self.partitions,
            model_class=WLS if self.weights else OLS,
            estimation_method=_est_unregularized_naive,
            join_method=_join_naive,
        )
        # statsmodels pulls one item from each generator per partition, data first.
        results = model.fit(data(), fit_kwds={}, init_kwds_generator=init_kwds())
        return dict(zip(design.names, (float(v) for v in results.params)))

    def close(self) -> None:
        pass
