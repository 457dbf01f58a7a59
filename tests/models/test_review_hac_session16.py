"""Review (session 16) of OLS/WLS HAC and two-way cluster covariances against statsmodels.

A uniform-kernel HAC meat need not be positive semi-definite: on an ill-conditioned
design (the orthonormal-basis path) the prediction factor clipped its negative
eigenvalues, so ``get_prediction``'s standard errors were not ``sqrt(x'Cx)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from linear_cases import cut_source

import shardfit


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
    ours = shardfit.ols("y ~ x1 + x2 + x3", cut_source(df, [30, 31, 90])).fit(
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


def test_two_way_cluster_prediction_where_the_covariance_is_indefinite():
    # V1 + V2 - V12 need not be positive semi-definite: where x'Cx < 0 statsmodels'
    # mean_se is NaN (its sqrt). shardfit clipped x'Cx to 0: a zero-width confidence
    # interval. Its observation interval there is NaN too (statsmodels' sqrt(x'Cx +
    # scale) is finite: a covariance negative at x says nothing about a new row).
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame(
        {"x": rng.standard_normal(n), "g1": rng.integers(0, 3, n), "g2": rng.integers(0, 3, n)}
    )
    df["y"] = 1 + df.x + rng.standard_normal(n)
    groups = np.column_stack([df.g1, df.g2])
    ref = sm.OLS(df.y, sm.add_constant(df[["x"]])).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    assert np.linalg.eigvalsh(ref.cov_params()).min() < 0
    fit = shardfit.ols("y ~ x", df).fit(
        backend="serial", cov_type="cluster", cov_kwds={"groups": ["g1", "g2"]}
    )
    new = pd.DataFrame({"x": np.linspace(-3, 3, 13)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # statsmodels' sqrt of a negative
        expected = ref.get_prediction(sm.add_constant(new, has_constant="add")).summary_frame()
    got = fit.get_prediction(new, backend="serial").summary_frame()
    assert expected["mean_se"].isna().sum() == 1
    np.testing.assert_array_equal(got["mean_se"].isna(), expected["mean_se"].isna())
    for column in ("mean_se", "mean_ci_lower", "mean_ci_upper"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9)
    defined = expected["mean_se"].notna().to_numpy()
    for column in ("obs_ci_lower", "obs_ci_upper"):
        assert got[column][~defined].isna().all()
        np.testing.assert_allclose(got[column][defined], expected[column][defined], rtol=1e-9)
    # The same numbers from predict(interval=) (the path that writes part files).
    predicted = fit.predict(new, interval="prediction", backend="serial")
    np.testing.assert_allclose(predicted["mean_se"], got["mean_se"], rtol=1e-12)
    np.testing.assert_allclose(predicted["obs_ci_lower"], got["obs_ci_lower"], rtol=1e-12)
