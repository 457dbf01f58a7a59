"""Review (session 16) of OLS/WLS HAC and two-way cluster covariances against statsmodels.

A uniform-kernel HAC meat need not be positive semi-definite: on an ill-conditioned
design (the orthonormal-basis path) the prediction factor clipped its negative
eigenvalues, so ``get_prediction``'s standard errors were not ``sqrt(x'Cx)``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import statsmodels.formula.api as smf

import shardfit
from shardfit.data.memory import MemoryPartition
from shardfit.data.partition import Source


def _source(df: pd.DataFrame, cuts: list[int]) -> Source:
    table = pa.Table.from_pandas(df, preserve_index=False)
    bounds = [0, *cuts, len(df)]
    parts = tuple(
        MemoryPartition(table.slice(a, b - a), name="df", start=a, stop=b, index=i)
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    )
    return Source("df", parts, table.schema)


def test_uniform_hac_prediction_se_is_the_covariance_s_on_an_ill_conditioned_design():
    rng = np.random.default_rng(5)
    n = 120
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.8 * e[t - 1] + rng.normal()
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.gamma(2.0, size=n)})
    df["x3"] = df.x1 + 1e-4 * rng.normal(size=n)  # condition number above 1e4
    df["y"] = 1.0 + 2.0 * df.x1 - 0.5 * df.x2 + e
    kwds = {"maxlags": 40, "kernel": "uniform"}  # an indefinite meat
    theirs = smf.ols("y ~ x1 + x2 + x3", df).fit(cov_type="HAC", cov_kwds=kwds)
    ours = shardfit.ols("y ~ x1 + x2 + x3", _source(df, [30, 31, 90])).fit(
        backend="serial", cov_type="HAC", cov_kwds=kwds
    )
    np.testing.assert_allclose(ours.bse[1:], theirs.bse[1:], rtol=1e-5)
    new = df.iloc[::10]
    expected = theirs.get_prediction(new).summary_frame()
    got = ours.get_prediction(new, backend="serial").summary_frame()
    finite = np.isfinite(expected.mean_se.to_numpy())
    assert 0 < finite.sum() < finite.size
    # x'Cx cancels cond**2 * eps in both (statsmodels' own covariance): 1e-2.
    # The clipped factor gave 0.2728 for statsmodels' 0.0537.
    np.testing.assert_allclose(
        got.mean_se.to_numpy()[finite], expected.mean_se.to_numpy()[finite], rtol=1e-2
    )
    for column in ("obs_ci_lower", "obs_ci_upper"):
        np.testing.assert_allclose(
            got[column].to_numpy()[finite], expected[column].to_numpy()[finite], rtol=1e-5
        )
