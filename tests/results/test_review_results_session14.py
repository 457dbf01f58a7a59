"""Review of the results API against statsmodels (session 14): Wald-test results
answer to statsmodels' names and keywords (``f_test(...).statistic``,
``t_test(..., use_t=...)``, ``wald_test(..., scalar=True)``), and robust model F
tests, no-intercept fit measures and hypothesis tests equal statsmodels' numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit

RTOL = 1e-9


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(14)
    n = 200
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": rng.choice(list("abc"), n),
            "w": rng.uniform(0.5, 3.0, n),
            "cl": rng.integers(0, 12, n),
        }
    )
    eta = 0.3 + 0.5 * data["x1"] - 0.2 * data["x2"] + 0.4 * (data["g"] == "b")
    data["y"] = eta + rng.normal(size=n)
    data["cnt"] = rng.poisson(np.exp(eta))
    return data


@pytest.fixture(scope="module")
def ols_pair(frame: pd.DataFrame) -> tuple[object, object]:
    return (
        shardfit.ols("y ~ x1 + x2", frame).fit(backend="serial"),
        smf.ols("y ~ x1 + x2", frame).fit(),
    )


def test_f_test_has_statsmodels_statistic_and_distribution(ols_pair) -> None:
    """statsmodels' ``f_test`` gives a ContrastResults with ``.statistic`` and
    ``.distribution == "F"``; code written for it read them."""
    ours, theirs = ols_pair
    test, ref = ours.f_test("x1 = 0, x2 = 0"), theirs.f_test("x1 = 0, x2 = 0")
    np.testing.assert_allclose(test.statistic, ref.statistic, rtol=RTOL)
    assert test.statistic == test.fvalue
    assert test.distribution == ref.distribution == "F"


@pytest.mark.parametrize("use_t", [False, True])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC1"])
def test_t_test_use_t_overrides_the_fit_as_statsmodels(frame, cov_type, use_t) -> None:
    ours = shardfit.ols("y ~ x1 + x2", frame).fit(backend="serial", cov_type=cov_type)
    theirs = smf.ols("y ~ x1 + x2", frame).fit(cov_type=cov_type)
    test = ours.t_test("x1 = x2, x2 = 0.1", use_t=use_t)
    ref = theirs.t_test("x1 = x2, x2 = 0.1", use_t=use_t)
    np.testing.assert_allclose(test.pvalue, ref.pvalue, rtol=RTOL)
    np.testing.assert_allclose(test.conf_int(0.1), ref.conf_int(0.1), rtol=RTOL)
    assert test.distribution == ref.distribution
    # the default still follows the fit
    default = ours.t_test("x1 = x2, x2 = 0.1")
    np.testing.assert_allclose(default.pvalue, theirs.t_test("x1 = x2, x2 = 0.1").pvalue, rtol=RTOL)


def test_wald_test_accepts_statsmodels_scalar_keyword(frame) -> None:
    """``wald_test(..., scalar=True)`` is how statsmodels code silences its
    FutureWarning; shardfit's statistics are always scalars."""
    ours = shardfit.poisson("cnt ~ x1 + x2", frame).fit(backend="serial")
    theirs = smf.glm("cnt ~ x1 + x2", frame, family=sm.families.Poisson()).fit()
    test = ours.wald_test("x1 = 0, x2 = 0", scalar=True)
    ref = theirs.wald_test("x1 = 0, x2 = 0", scalar=True)
    np.testing.assert_allclose(test.statistic, ref.statistic, rtol=1e-8)
    np.testing.assert_allclose(test.pvalue, ref.pvalue, rtol=1e-8)
    with pytest.raises(ValueError, match="scalar"):
        ours.wald_test("x1 = 0, x2 = 0", scalar=False)


# -- regression guards: numbers checked equal to statsmodels in this review ---------
@pytest.mark.parametrize(
    "formula", ["y ~ x1 + x2 + C(g)", "y ~ x1 + x2 - 1", "y ~ 0 + x1 + x2 + C(g)"]
)
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC2", "HC3", "cluster"])
def test_fit_measures_and_model_f_test_equal_statsmodels(frame, formula, cov_type) -> None:
    kwds = {"groups": "cl"} if cov_type == "cluster" else None
    ours = shardfit.wls(formula, frame, weights="w").fit(
        backend="serial", cov_type=cov_type, cov_kwds=kwds
    )
    theirs = smf.wls(formula, frame, weights=frame["w"]).fit(
        cov_type=cov_type, cov_kwds={"groups": frame["cl"]} if kwds else None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in (
            "rsquared",
            "rsquared_adj",
            "fvalue",
            "f_pvalue",
            "llf",
            "aic",
            "bic",
            "ess",
            "mse_model",
            "mse_resid",
            "mse_total",
            "df_model",
            "df_resid",
        ):
            # fvalue is NaN for a robust covariance with an implicit constant (statsmodels #2444)
            np.testing.assert_allclose(
                getattr(ours, name), getattr(theirs, name), rtol=RTOL, err_msg=name
            )
    order = [list(ours.names).index(name) for name in theirs.params.index]
    np.testing.assert_allclose(ours.bse.to_numpy()[order], theirs.bse.to_numpy(), rtol=RTOL)
    test, ref = ours.f_test("x1 = 0.4, x1 = x2"), theirs.f_test("x1 = 0.4, x1 = x2")
    np.testing.assert_allclose(
        [test.fvalue, test.pvalue, test.df_num, test.df_denom],
        [ref.fvalue, ref.pvalue, ref.df_num, ref.df_denom],
        rtol=RTOL,
    )


def test_a_chi2_wald_test_puts_its_df_in_df_denom_as_statsmodels() -> None:
    # statsmodels' chi2 Wald test holds its degrees of freedom in df_denom (and has no
    # df_num); shardfit's had df_denom None, so code reading it got None.
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x1": rng.normal(size=120), "x2": rng.normal(size=120)})
    frame["cnt"] = rng.poisson(np.exp(0.2 + 0.3 * frame.x1 + 0.1 * frame.x2))
    ours = shardfit.poisson("cnt ~ x1 + x2", frame).fit(backend="serial")
    theirs = smf.glm("cnt ~ x1 + x2", frame, family=sm.families.Poisson()).fit()
    got = ours.wald_test("x1 = 0, x2 = 0")
    expected = theirs.wald_test("x1 = 0, x2 = 0", scalar=True)
    assert got.distribution == expected.distribution == "chi2"
    assert got.df_denom == expected.df_denom == 2.0 and got.df_num == 2.0
    np.testing.assert_allclose(got.statistic, expected.statistic, rtol=1e-9)
    np.testing.assert_allclose(got.pvalue, expected.pvalue, rtol=1e-9)
