"""A pandas ``Categorical`` keeps its declared category order, as formulaic and
statsmodels do: its first category is the reference and ``C(x, Poly)`` follows the
order (other label columns' levels are sorted by value)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit

LEVELS = ["low", "mid", "high"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    n = 3000
    k = rng.integers(0, 3, n)
    return pd.DataFrame(
        {
            "size": pd.Categorical(np.array(LEVELS)[k], categories=LEVELS, ordered=True),
            "g": pd.Categorical(np.array(LEVELS)[k], categories=["mid", "low", "high"]),
            "x": rng.normal(size=n),
            "y": k + 0.3 * rng.normal(size=n),
        }
    )


@pytest.mark.parametrize("storage", ["pandas", "parquet"])
@pytest.mark.parametrize("formula", ["y ~ C(size, Poly) + x", "y ~ g + x", "y ~ g:x + size"])
def test_declared_order_equals_statsmodels(frame, tmp_path, storage, formula) -> None:
    data = frame
    if storage == "parquet":
        data = tmp_path / "d.parquet"
        frame.to_parquet(data, row_group_size=700)  # 5 row groups, pandas metadata
    result = shardfit.ols(formula, shardfit.as_source(data)).fit(backend="serial")
    reference = smf.ols(formula, frame).fit()
    assert len(result.params) == len(reference.params)
    # Names differ for Poly (formulaic's .L/.Q, patsy's .Linear/.Quadratic): by position.
    np.testing.assert_allclose(result.params.to_numpy(), reference.params.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(result.bse.to_numpy(), reference.bse.to_numpy(), rtol=1e-9)


def test_reference_level_and_sorting(frame, tmp_path) -> None:
    declared = shardfit.ols("y ~ g", frame).fit(backend="serial")
    assert list(declared.params.index) == ["Intercept", "g[T.low]", "g[T.high]"]
    # The same labels as plain strings (CSV): sorted, "high" the reference.
    frame.to_csv(tmp_path / "d.csv", index=False)
    plain = shardfit.ols("y ~ g", str(tmp_path / "d.csv")).fit(backend="serial")
    assert list(plain.params.index) == ["Intercept", "g[T.low]", "g[T.mid]"]
    # A declared category no row has gets no (all-zero, aliased) column.
    unused = frame.assign(g=frame["g"].cat.add_categories(["none"]))
    result = shardfit.ols("y ~ g", unused).fit(backend="serial")
    pd.testing.assert_series_equal(result.params, declared.params)
