"""A Dask DataFrame's Categorical keeps its category order, as statsmodels' does.

patsy (statsmodels) takes a pandas Categorical's levels in its categories' order, the
first one the reference. A Dask partition's table was built without the pandas metadata
of the frame's ``meta``, so the levels fell back to sorted order: the reference became
``a`` where statsmodels has ``c``, and every coefficient of the term differed.
"""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import shardfit


def test_a_dask_categorical_keeps_its_category_order_as_statsmodels():
    rng = np.random.default_rng(1)
    n = 300
    g = rng.choice(list("abc"), n)
    x = rng.normal(size=n)
    y = 2 * x + (g == "b") - 0.5 * (g == "a") + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "g": pd.Categorical(g, categories=["c", "b", "a"]), "y": y})
    expected = smf.ols("y ~ x + C(g)", frame).fit()
    assert list(expected.params.index) == ["Intercept", "C(g)[T.b]", "C(g)[T.a]", "x"]
    fit = shardfit.ols("y ~ x + C(g)", dd.from_pandas(frame, npartitions=3)).fit(backend="serial")
    assert sorted(fit.params.index) == sorted(expected.params.index)
    np.testing.assert_allclose(
        fit.params[expected.params.index], expected.params, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(fit.bse[expected.params.index], expected.bse, rtol=1e-10)
