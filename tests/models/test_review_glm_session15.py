"""Review of the GLM's Tweedie family against statsmodels (session 15).

The Tweedie family's response support depends on ``var_power``: ``var_power=0`` is the
normal (any real response, statsmodels fits it), above 2 a zero response has an
infinite unit deviance (statsmodels fits on to an infinite deviance), and outside
``[1, 2]`` the log-likelihood is NaN for a reason that is not a link's range.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.errors import ResponseError

RTOL = 1e-7


def _data(seed: int = 0, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return np.column_stack([np.ones(n), x]), x


@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_tweedie_power_zero_fits_negative_responses_as_statsmodels(npartitions: int) -> None:
    # var_power=0 is the normal distribution: statsmodels fits negative responses; the
    # old support check (y >= 0 for every power) refused them.
    X, x = _data()
    y = 1 + x + np.random.default_rng(1).normal(size=x.size)
    assert (y < 0).any()
    theirs = sm.GLM(
        y, X, family=sm.families.Tweedie(var_power=0, link=sm.families.links.Identity())
    ).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # llf NaN, as statsmodels'
        ours = shardfit.GLM(
            y, X, "tweedie", link="identity", var_power=0, npartitions=npartitions
        ).fit(backend="serial")
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params, rtol=RTOL)
    np.testing.assert_allclose(ours.bse.to_numpy(), theirs.bse, rtol=RTOL)
    for name in ("deviance", "pearson_chi2", "scale", "null_deviance", "df_resid"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=RTOL)
    assert ours.nobs == theirs.nobs
    assert abs(ours.iterations - theirs.fit_history["iteration"]) <= 1
    assert np.isnan(ours.llf) and np.isnan(theirs.llf)


@pytest.mark.parametrize("var_power", [2.5, 3.0])
def test_tweedie_power_above_two_refuses_zero_responses_naming_the_row(var_power: float) -> None:
    X, x = _data()
    rng = np.random.default_rng(2)
    y = rng.gamma(2.0, np.exp(0.3 * x) / 2)
    # Without zeros the fit is statsmodels'.
    theirs = sm.GLM(y, X, family=sm.families.Tweedie(var_power=var_power)).fit()
    with pytest.warns(RuntimeWarning, match="log-likelihood is nan"):
        ours = shardfit.GLM(y, X, "tweedie", var_power=var_power, npartitions=3).fit(
            backend="serial"
        )
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params, rtol=RTOL)
    np.testing.assert_allclose(ours.deviance, theirs.deviance, rtol=RTOL)
    # A zero response has an infinite unit deviance above var_power 2: statsmodels
    # "fits" to an infinite deviance; shardfit raised "the deviance at the start values
    # is not finite" without saying why, and now names the support, partition and row.
    y[[40, 41, 90]] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isinf(
            sm.GLM(y, X, family=sm.families.Tweedie(var_power=var_power)).fit().deviance
        )
    with pytest.raises(ResponseError, match=r"y > 0 when var_power=.* > 2.*row 40.*0\.0"):
        shardfit.GLM(y, X, "tweedie", var_power=var_power, npartitions=3).fit(backend="serial")


def test_tweedie_power_two_keeps_zero_responses_as_statsmodels() -> None:
    # At var_power=2 statsmodels clips zero responses in the deviance; so does shardfit,
    # whose infinite llf warning now gives that reason, not a link's range.
    X, x = _data()
    y = np.random.default_rng(3).gamma(2.0, np.exp(0.3 * x) / 2)
    y[:5] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sm.GLM(y, X, family=sm.families.Tweedie(var_power=2)).fit()
        theirs_llf = theirs.llf  # computed lazily, with a log(0) warning
    with pytest.warns(RuntimeWarning, match="var_power=2.*zero response") as record:
        ours = shardfit.GLM(y, X, "tweedie", var_power=2, npartitions=3).fit(backend="serial")
    assert not any("outside" in str(w.message) for w in record)
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params, rtol=RTOL)
    np.testing.assert_allclose(ours.deviance, theirs.deviance, rtol=RTOL)
    assert np.isinf(ours.llf) and np.isinf(theirs_llf)


@pytest.mark.parametrize("var_power", [0.5, 3.0])
def test_tweedie_nan_llf_warning_gives_the_power_not_a_range(var_power: float) -> None:
    X, x = _data()
    y = np.random.default_rng(4).gamma(2.0, np.exp(0.3 * x) / 2)
    theirs = sm.GLM(y, X, family=sm.families.Tweedie(var_power=var_power)).fit()
    with pytest.warns(RuntimeWarning, match=r"1 <= var_power <= 2 \(var_power=") as record:
        ours = shardfit.GLM(y, X, "tweedie", var_power=var_power).fit(backend="serial")
    # The means are all in range (log link): the old warning blamed the link.
    assert not any("outside" in str(w.message) for w in record)
    assert np.isnan(ours.llf) and np.isnan(theirs.llf)
    np.testing.assert_allclose(ours.params.to_numpy(), theirs.params, rtol=RTOL)
    np.testing.assert_allclose(ours.scale, theirs.scale, rtol=RTOL)
