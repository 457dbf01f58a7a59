"""Review of the out-of-core spline and polynomial transforms (session 16).

Every entry point (ols/wls/glm/negativebinomial/elastic_net/svd/DistributedModel,
dmatrices, design stores, saved results, the CLI) and source (Parquet row groups,
CSV, globs, Dask, DataFrames) matched formulaic in memory; the one bug found is
``poly(x, degree)`` of a column with at most ``degree`` distinct values. formulaic's
recurrence then has a zero (or rounding-noise) ``norms2_k``: NaN columns, so every row
is dropped, or a unit-norm column of noise. Out of core that was a bare
``ZeroDivisionError``, a misleading "all dropped for missing values", or a silent
noise column (a 0/1 column in ``poly(b, 2)``); now a DesignError names the call.
Also: predicting on new data beyond a spline's learned bounds gave formulaic's message
alone; it now names the partition and the learned bounds.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from formulaic import model_matrix

import shardfit
from shardfit.design.dmatrices import dmatrices
from shardfit.errors import DesignError


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(16)
    n = 300
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "c": np.full(n, 2.5),  # constant
            "two": np.where(np.arange(n) % 2, 1.0, 3.0),  # two values, symmetric
            "b": (rng.random(n) < 0.3).astype(float),  # a 0/1 column
            "five": rng.integers(0, 5, n).astype(float),  # five values
        }
    )


@pytest.mark.parametrize(
    ("formula", "k", "message"),
    [
        ("y ~ poly(c, 1)", 1, "is constant"),  # was: "all dropped for missing values"
        ("y ~ poly(c, 2)", 1, "is constant"),  # was: ZeroDivisionError
        ("y ~ poly(two, 3)", 2, "at most 2 distinct values"),  # was: ZeroDivisionError
        ("y ~ poly(b, 2)", 2, "at most 2 distinct values"),  # was: a noise column
    ],
)
def test_poly_of_too_few_distinct_values_is_refused(formula: str, k: int, message: str) -> None:
    frame = _frame()
    # formulaic in memory: norms2_k is zero, NaN or rounding noise (~1e-31 relative).
    expected = model_matrix(formula, frame)
    norms2 = next(iter(expected.model_spec.rhs.transform_state.values()))["norms2"]
    ratio = norms2[k] / norms2[k - 1]
    assert not ratio > 1e-24, ratio
    with pytest.raises(DesignError, match=rf"poly\(.*{message}.*lower the degree"):
        shardfit.ols(formula, shardfit.from_pandas(frame, npartitions=3)).fit(backend="serial")
    # Not refused: five distinct values give poly of degree 4, formulaic's numbers.
    expected = model_matrix("y ~ poly(five, 4)", frame).rhs
    _y, X = dmatrices("y ~ poly(five, 4)", shardfit.from_pandas(frame, npartitions=3))
    np.testing.assert_allclose(X.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-13)


def test_predict_outside_the_learned_bounds_names_partition_and_bounds(tmp_path) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.normal(size=200)})
    frame["y"] = np.sin(frame["x"]) + rng.normal(scale=0.1, size=200)
    formula = "y ~ bs(x, df=4)"
    fit = shardfit.ols(formula, shardfit.from_pandas(frame, npartitions=2)).fit(backend="serial")
    # The bounds formulaic learns in memory, and its refusal of a value beyond them.
    state = model_matrix(formula, frame).model_spec.rhs.transform_state["bs(x, df=4)"]
    new = frame.copy()
    new.loc[150, "x"] = state["upper_bound"] + 1.0
    path = tmp_path / "new.parquet"
    pq.write_table(pa.Table.from_pandas(new, preserve_index=False), path, row_group_size=100)
    # Old: formulaic's message alone, naming neither the partition nor the bounds.
    bounds = re.escape(f"[{state['lower_bound']!r}, {state['upper_bound']!r}]")
    with pytest.raises(DesignError, match=rf"partition new\.parquet\[rg1:2\].*{bounds}"):
        fit.predict(str(path), backend="serial")
