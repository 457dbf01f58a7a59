"""``eigenvals`` of linear results equal statsmodels' (the eigenvalues of the weighted
design's ``X'WX``, largest first), and survive a save and load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.data.memory import from_pandas


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 300
    x1 = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": 1e3 + rng.uniform(0, 5, n),  # far from 0: a large condition number
            "g": rng.choice(["a", "b", "c"], n),
            "w": rng.uniform(0.2, 3.0, n),
        }
    )
    frame["y"] = 1 + 2 * x1 - 0.01 * frame["x2"] + rng.normal(size=n)
    return frame


@pytest.mark.parametrize("partitions", [1, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_eigenvals_equal_statsmodels(frame, tmp_path, partitions, weighted) -> None:
    formula = "y ~ x1 + x2 + C(g)"
    if weighted:
        reference = smf.wls(formula, frame, weights=frame["w"]).fit()
        fit = shardfit.wls(formula, from_pandas(frame, partitions), weights="w")
    else:
        reference = smf.ols(formula, frame).fit()
        fit = shardfit.ols(formula, from_pandas(frame, partitions))
    results = fit.fit(backend="serial")
    expected = reference.eigenvals
    assert expected[0] / expected[-1] > 1e8  # the case is ill-conditioned
    # Each eigenvalue to eps of the largest (both sides' accuracy), the largest closely.
    np.testing.assert_allclose(results.eigenvals, expected, rtol=0, atol=1e-12 * expected[0])
    np.testing.assert_allclose(results.eigenvals[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(results.eigenvals[-1], expected[-1], rtol=1e-6)
    assert results.condition_number == pytest.approx(reference.condition_number, rel=1e-9)
    loaded = shardfit.load_results(results.save(tmp_path / "fit.json"))
    np.testing.assert_array_equal(loaded.eigenvals, results.eigenvals)
