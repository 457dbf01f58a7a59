"""``get_prediction(...).summary_frame()`` names its columns as statsmodels 0.15 does.

statsmodels names the frame's columns ``mean, mean_se, mean_ci_lower, mean_ci_upper``
for its default ``which=None`` only; with ``which="mean"`` given (as with ``"linear"``)
they are ``predicted, se, ci_lower, ci_upper``, the values the same. shardfit gave the
``mean...`` names for an explicit ``which="mean"``, so code indexing statsmodels'
columns broke.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit


@pytest.mark.parametrize("which", [None, "mean", "linear"])
def test_summary_frame_columns_and_values_are_statsmodels(which) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"x": rng.normal(size=200), "t": rng.uniform(1, 2, 200)})
    frame["y"] = rng.poisson(np.exp(0.2 + 0.3 * frame.x) * frame.t)
    reference = smf.glm("y ~ x", frame, family=sm.families.Poisson(), exposure=frame.t).fit()
    fit = shardfit.poisson("y ~ x", frame, exposure="t").fit(backend="serial")
    options = {} if which is None else {"which": which}
    expected = reference.get_prediction(frame, exposure=frame.t, **options).summary_frame()
    got = fit.get_prediction(frame, **options).summary_frame()
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)
