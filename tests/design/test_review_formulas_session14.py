"""Review of formulas as statsmodels users write them (session 14): each fit equals
``statsmodels.formula.api`` on the whole frame, by coefficient name, for 1, 7 and 17
partitions, and predictions on new data use the fitted levels and transform state."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.errors import DesignError, UnseenLevelError


def _frame(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.uniform(0.5, 3.0, n),
            "z": rng.normal(1.0, 2.0, n),
            "g": rng.choice(list("abc"), n).astype(object),
            "h": rng.choice(list("uv"), n).astype(object),
            "k": rng.integers(0, 3, n),
            "fx": rng.choice([0.5, 1.5, 2.5], n),
        }
    )
    frame["y"] = frame.x + 0.3 * frame.z + (frame.g == "b") + rng.normal(size=n)
    frame["cnt"] = rng.poisson(np.exp(0.2 * frame.x)).astype(float)
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    frame = _frame(3, 170)
    frame.loc[165:, "g"] = "d"  # a level only in the last partition(s)
    frame.loc[[3, 50, 120], "g"] = None  # missing labels: rows dropped, as patsy does
    frame.loc[[7, 8, 100], "y"] = np.nan  # center() still learns from these rows' x
    frame.loc[[9], "z"] = np.nan
    return frame


@pytest.fixture(scope="module")
def new_frame() -> pd.DataFrame:
    new = _frame(99, 40).drop(columns=["y", "cnt"])
    new["x"] += 2.0  # another mean: predict must use the fitted one
    new.loc[:5, "g"] = "a"
    new.loc[6:, "g"] = np.random.default_rng(1).choice(list("abcd"), 34)
    return new


def _fit_both(formula: str, data: pd.DataFrame, npartitions: int, family=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if family is None:
            reference = smf.ols(formula, data).fit()
            result = shardfit.ols(formula, from_pandas(data, npartitions)).fit(backend="serial")
        else:
            reference = smf.glm(formula, data, family=family).fit()
            result = shardfit.glm(formula, from_pandas(data, npartitions), family=family).fit(
                backend="serial"
            )
    return result, reference


def _assert_same_fit(result, reference) -> None:
    assert sorted(result.params.index) == sorted(reference.params.index)
    names = list(result.params.index)
    np.testing.assert_allclose(
        result.params.to_numpy(), reference.params[names].to_numpy(), rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(
        result.bse.to_numpy(), reference.bse[names].to_numpy(), rtol=1e-10, atol=1e-10
    )
    assert result.nobs == reference.nobs


# --- bug: patsy's bare ``Treatment`` (no call) crashed inside formulaic ---------------


@pytest.mark.parametrize("npartitions", [1, 7, 17])
@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + C(g, Treatment)",
        "y ~ C(g, Treatment)*x",
        "y ~ C(g, Treatment):C(h) + z",
        "y ~ C(k, Treatment) + C(g, Treatment(reference='b'))",
    ],
)
def test_bare_treatment_contrast_fits_like_statsmodels(frame, formula, npartitions) -> None:
    # formulaic's patsy-compatible ``Treatment`` is a function, so ``C(g, Treatment)``
    # (patsy's commonest spelling) raised "tuple index out of range".
    result, reference = _fit_both(formula, frame, npartitions)
    _assert_same_fit(result, reference)


def test_bare_treatment_contrast_predicts_like_statsmodels(frame, new_frame) -> None:
    formula = "y ~ center(x) + C(g, Treatment)*z"
    result, reference = _fit_both(formula, frame, 7)
    predicted = np.asarray(result.predict(from_pandas(new_frame, 3)), dtype=float)
    np.testing.assert_allclose(predicted, reference.predict(new_frame), rtol=1e-10, atol=1e-10)


def test_bare_glm_treatment_contrast_fits_like_statsmodels(frame) -> None:
    result, reference = _fit_both(
        "cnt ~ C(g, Treatment) + standardize(x)", frame, 7, sm.families.Poisson()
    )
    _assert_same_fit(result, reference)


# --- areas checked without a bug: guards against statsmodels ---------------------------


@pytest.mark.parametrize("npartitions", [1, 7, 17])
@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x + C(g, Treatment('c'))",
        "y ~ x + C(g, Sum) + C(h, Helmert)",
        "y ~ C(g, Sum)*C(h)",
        "y ~ C(g):C(h)",
        "y ~ 0 + C(g) + center(x):C(h)",
        "y ~ (x + z + np.log(x))**2",
        "y ~ C(g)*center(x) + I(center(x)**2)",
        "y ~ standardize(x)*C(h) + C(fx) + C(k)",
    ],
)
def test_formulas_fit_like_statsmodels(frame, formula, npartitions) -> None:
    result, reference = _fit_both(formula, frame, npartitions)
    _assert_same_fit(result, reference)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ center(x) + C(g, Sum) + C(h, Helmert)",
        "y ~ standardize(x)*C(h) + C(g, Diff)",
        "y ~ C(g):C(h) + center(x) + np.log(x)",
    ],
)
def test_formulas_predict_like_statsmodels(frame, new_frame, formula) -> None:
    result, reference = _fit_both(formula, frame, 7)
    predicted = np.asarray(result.predict(from_pandas(new_frame, 3)), dtype=float)
    np.testing.assert_allclose(predicted, reference.predict(new_frame), rtol=1e-10, atol=1e-10)


def test_unseen_level_at_predict_raises_then_zero(frame, new_frame) -> None:
    result, _ = _fit_both("y ~ x + C(g, Treatment)", frame, 7)
    unseen = new_frame.copy()
    unseen.loc[10, "g"] = "zz"
    with pytest.raises(UnseenLevelError, match="'zz'"):
        result.predict(from_pandas(unseen, 3))
    predicted = np.asarray(result.predict(from_pandas(unseen, 3), unseen="zero"), dtype=float)
    expected = result.params["Intercept"] + result.params["x"] * unseen.loc[10, "x"]
    assert predicted[10] == pytest.approx(expected, rel=1e-14)


def test_te_is_refused_clearly(frame) -> None:
    # Splines and orthogonal polynomials are learned out of core now
    # (tests/design/test_*_out_of_core.py); te() is not a formulaic transform at all.
    with pytest.raises(DesignError, match="has no tensor-product smooth"):
        shardfit.ols("y ~ te(x, z)", from_pandas(frame, 3)).fit(backend="serial")
