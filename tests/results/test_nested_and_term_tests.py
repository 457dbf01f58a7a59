"""statsmodels' term and nested-model tests on shardfit's results: ``wald_test_terms``
(formula terms of several columns, arrays), ``compare_f_test``/``compare_lr_test``,
``cov_p=``/``invcov=``/``df_constraints=`` of ``t_test``/``f_test``/``wald_test``, and
``condition_number``.

Every number is compared with statsmodels fitted on the same rows in memory (shardfit
fits them in 3 partitions on the serial backend).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit

RTOL = 1e-9
# A 4-level categorical, its interaction with x (3 columns each) and a numeric term
# written after the interaction: statsmodels (patsy) lists the terms as Intercept,
# C(g), x, C(g):x, z; formulaic's columns put z before the interaction.
FULL = "y ~ C(g) * x + z"
RESTRICTED = "y ~ C(g) + x"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261201)
    n = 160
    data = pd.DataFrame(
        {
            "g": rng.choice(["a", "b", "c", "d"], n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
        }
    )
    slope = data["g"].map({"a": 0.5, "b": 0.2, "c": 1.0, "d": 0.5})
    data["y"] = 1.0 + slope * data["x"] + 0.1 * data["z"] + rng.normal(size=n)
    data["y"] += (data["g"] == "b") * 0.4
    data["count"] = rng.poisson(np.exp(0.3 + 0.4 * data["x"] - 0.3 * (data["g"] == "c")))
    return data


def _ols(formula: str, frame: pd.DataFrame, cov_type: str = "nonrobust"):
    source = shardfit.from_pandas(frame, npartitions=3)
    return shardfit.ols(formula, source).fit(backend="serial", cov_type=cov_type)


@pytest.fixture(scope="module")
def ols_full(frame):
    return _ols(FULL, frame), smf.ols(FULL, frame).fit()


@pytest.fixture(scope="module")
def ols_hc1(frame):
    return _ols(FULL, frame, "HC1"), smf.ols(FULL, frame).fit(cov_type="HC1")


@pytest.fixture(scope="module")
def poisson_pair(frame):
    formula = "count ~ C(g) * x + z"
    source = shardfit.from_pandas(frame, npartitions=3)
    ours = shardfit.poisson(formula, source).fit(backend="serial")
    theirs = smf.glm(formula, frame, family=sm.families.Poisson()).fit()
    return ours, theirs


def _same_table(ours, theirs) -> None:
    """The two WaldTestResults agree: names, order, columns, every number."""
    assert ours.distribution == theirs.distribution
    assert list(ours.table.index) == list(theirs.table.index)
    assert list(ours.table.columns) == list(theirs.table.columns)
    assert list(ours.summary_frame().columns) == list(theirs.summary_frame().columns)
    np.testing.assert_allclose(ours.statistic, theirs.statistic, rtol=RTOL)
    np.testing.assert_allclose(ours.pvalues, theirs.pvalues, rtol=1e-8, atol=1e-300)
    np.testing.assert_array_equal(ours.df_constraints, theirs.df_constraints)
    if theirs.distribution == "F":
        np.testing.assert_array_equal(ours.df_denom, theirs.df_denom)


# -- wald_test_terms ------------------------------------------------------------------
def test_wald_test_terms_ols_formula_f(ols_full):
    ours, theirs = ols_full
    result = ours.wald_test_terms()
    expected = theirs.wald_test_terms(scalar=True)
    _same_table(result, expected)
    assert list(result.table.index) == ["Intercept", "C(g)", "x", "C(g):x", "z"]
    assert list(result.table["df_constraint"]) == [1, 3, 1, 3, 1]
    assert list(result.summary_frame().columns) == ["F", "P>F", "df constraint", "df denom"]
    assert "C(g):x" in str(result)


def test_wald_test_terms_options_ols(ols_full):
    ours, theirs = ols_full
    extra = [("x=z", "x = z")]
    result = ours.wald_test_terms(
        skip_single=True, combine_terms=["g", "x"], extra_constraints=extra
    )
    expected = theirs.wald_test_terms(
        skip_single=True, combine_terms=["g", "x"], extra_constraints=extra, scalar=True
    )
    _same_table(result, expected)
    # skip_single leaves the two 3-column terms; "g" combines 6 columns, "x" 4.
    assert list(result.table["df_constraint"]) == [3, 3, 6, 4, 1]


def test_wald_test_terms_hc1_is_chi2(ols_hc1):
    ours, theirs = ols_hc1
    result = ours.wald_test_terms(combine_terms=["g"])
    _same_table(result, theirs.wald_test_terms(combine_terms=["g"], scalar=True))
    assert result.distribution == "chi2"
    assert list(result.summary_frame().columns) == ["chi2", "P>chi2", "df constraint"]


def test_wald_test_terms_poisson(poisson_pair):
    ours, theirs = poisson_pair
    result = ours.wald_test_terms(combine_terms=["x"])
    _same_table(result, theirs.wald_test_terms(combine_terms=["x"], scalar=True))


def test_wald_test_terms_arrays(frame):
    exog = sm.add_constant(frame[["x", "z"]].to_numpy())
    theirs = sm.OLS(frame["y"].to_numpy(), exog).fit()
    ours = shardfit.OLS(frame["y"].to_numpy(), exog).fit(backend="serial")
    _same_table(ours.wald_test_terms(), theirs.wald_test_terms(scalar=True))
    # Without a formula statsmodels' skip_single skips every column: only the
    # combined test is left.
    result = ours.wald_test_terms(skip_single=True, combine_terms=["x"])
    _same_table(result, theirs.wald_test_terms(skip_single=True, combine_terms=["x"]))
    assert list(result.table.index) == ["x"]


def test_wald_test_terms_refusals(ols_full):
    ours, _ = ols_full
    with pytest.raises(ValueError, match="'w' is in no term name"):
        ours.wald_test_terms(combine_terms=["w"])
    with pytest.raises(ValueError, match="scalar=False"):
        ours.wald_test_terms(scalar=False)


# -- compare_f_test / compare_lr_test --------------------------------------------------
def test_compare_f_and_lr_tests(frame, ols_full):
    ours, theirs = ols_full
    ours_r, theirs_r = _ols(RESTRICTED, frame), smf.ols(RESTRICTED, frame).fit()
    f_value, p_value, df_diff = ours.compare_f_test(ours_r)
    expected = theirs.compare_f_test(theirs_r)
    np.testing.assert_allclose([f_value, p_value], expected[:2], rtol=RTOL)
    assert df_diff == expected[2] == 4
    lr = ours.compare_lr_test(ours_r)
    expected_lr = theirs.compare_lr_test(theirs_r)
    np.testing.assert_allclose([lr.statistic, lr.pvalue], expected_lr[:2], rtol=RTOL)
    assert lr.df_diff == expected_lr[2] == 4
    statistic, pvalue, df = lr  # unpacks as statsmodels' named tuple
    assert (statistic, pvalue, df) == (lr.statistic, lr.pvalue, lr.df_diff)


def test_compare_tests_robust_warns_and_refusals(frame, ols_hc1):
    ours, theirs = ols_hc1
    ours_r = _ols(RESTRICTED, frame, "HC1")
    theirs_r = smf.ols(RESTRICTED, frame).fit(cov_type="HC1")
    with pytest.warns(UserWarning, match="robust covariance"):
        lr = ours.compare_lr_test(ours_r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' InvalidTestWarning
        expected = theirs.compare_lr_test(theirs_r)
    np.testing.assert_allclose(lr[:2], expected[:2], rtol=RTOL)
    with pytest.raises(NotImplementedError, match="large_sample=True"):
        ours.compare_lr_test(ours_r, large_sample=True)
    fewer = _ols(RESTRICTED, frame.iloc[:120])
    with pytest.raises(ValueError, match=r"nobs=160 .* and 120"):
        ours.compare_f_test(fewer)
    with pytest.raises(ValueError, match="more residual degrees of freedom"):
        ours_r.compare_f_test(ours)


# -- cov_p, invcov, df_constraints ----------------------------------------------------
def test_cov_p_and_invcov(ols_full, ols_hc1):
    ours, theirs = ols_full
    # statsmodels' (patsy's) columns are in another order than shardfit's (formulaic's).
    robust_frame = ols_hc1[1].cov_params()
    robust = robust_frame.to_numpy()
    mine = robust_frame.loc[list(ours.names), list(ours.names)].to_numpy()
    hypothesis = "x = 0, z = 0"
    t_ours = ours.t_test(hypothesis, cov_p=mine)
    t_theirs = theirs.t_test(hypothesis, cov_p=robust)
    np.testing.assert_allclose(np.ravel(t_ours.sd), np.ravel(t_theirs.sd), rtol=RTOL)
    np.testing.assert_allclose(t_ours.pvalue, t_theirs.pvalue, rtol=RTOL)
    f_ours = ours.f_test(hypothesis, cov_p=mine)
    f_theirs = theirs.f_test(hypothesis, cov_p=robust)
    np.testing.assert_allclose(
        [f_ours.fvalue, f_ours.pvalue], [f_theirs.fvalue, f_theirs.pvalue], rtol=RTOL
    )
    rows = np.zeros((2, len(ours.names)))
    rows[0, ours.names.index("x")] = rows[1, ours.names.index("z")] = 1.0
    invcov = np.linalg.inv(rows @ mine @ rows.T) * 0.9  # any given inverse is used as is
    w_ours = ours.wald_test(hypothesis, invcov=invcov, use_f=False, df_constraints=3)
    w_theirs = theirs.wald_test(
        hypothesis, invcov=invcov, use_f=False, df_constraints=3, scalar=True
    )
    np.testing.assert_allclose(
        [w_ours.statistic, w_ours.pvalue], [w_theirs.statistic, w_theirs.pvalue], rtol=RTOL
    )
    assert w_ours.df_denom == w_theirs.df_denom == 3
    f_inv = ours.f_test(hypothesis, invcov=invcov)
    f_inv_theirs = theirs.f_test(hypothesis, invcov=invcov)
    np.testing.assert_allclose(
        [f_inv.fvalue, f_inv.pvalue], [f_inv_theirs.fvalue, f_inv_theirs.pvalue], rtol=RTOL
    )
    with pytest.raises(ValueError, match=r"cov_p has shape \(2, 2\)"):
        ours.t_test(hypothesis, cov_p=np.eye(2))
    with pytest.raises(ValueError, match=r"invcov has shape \(3, 3\)"):
        ours.f_test(hypothesis, invcov=np.eye(3))


def test_condition_number(ols_full):
    ours, theirs = ols_full
    np.testing.assert_allclose(ours.condition_number, theirs.condition_number, rtol=RTOL)
