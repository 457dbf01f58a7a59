"""GLM results: predict (mean and linear, in memory and to Parquet), save/load, summary,
Wald tests, against statsmodels (issue 6)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from glm_cases import FORMULA, glm_frame, sm_fit

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.results.glm import GLMResults


@pytest.fixture(scope="module")
def fitted():
    frame = glm_frame("poisson", seed=21)
    ours = shardfit.poisson(FORMULA, from_pandas(frame, 3), weights="w", exposure="expo").fit(
        backend="serial", cov_type="HC0"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sm_fit(frame, "poisson", weights=True, exposure=True, cov_type="HC0")
    return frame, ours, theirs


def test_predict_mean_and_linear(fitted) -> None:
    _, ours, theirs = fitted
    new = glm_frame("poisson", seed=22).iloc[:300]
    expected = theirs.predict(new, exposure=new["expo"], which="mean")
    np.testing.assert_allclose(ours.predict(new), expected, rtol=1e-12)
    linear = theirs.predict(new, exposure=new["expo"], which="linear")
    np.testing.assert_allclose(ours.predict(new, which="linear"), linear, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="'which' parameter of predict must be 'mean' or"):
        ours.predict(new, which="var")


@pytest.mark.parametrize(
    ("family", "link"),
    [("binomial", None), ("binomial", "probit"), ("gamma", None), ("poisson", None)],
)
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # statsmodels: 1 / 0
def test_get_prediction_equals_statsmodels(family, link) -> None:
    """Standard errors (the delta method's on the mean) and intervals (the linear
    predictor's, mapped by the inverse link) as statsmodels' get_prediction; the inverse
    link of a Gamma decreases, and shardfit orders the mapped endpoints."""
    frame = glm_frame(family, link, seed=31)
    ours = shardfit.glm(FORMULA, from_pandas(frame, 3), family=family, link=link).fit(
        backend="serial"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sm_fit(frame, family, link)
    new = glm_frame(family, link, seed=32).iloc[:250]
    expected = theirs.get_prediction(new).summary_frame(alpha=0.1)
    lower = np.minimum(expected["mean_ci_lower"], expected["mean_ci_upper"])
    upper = np.maximum(expected["mean_ci_lower"], expected["mean_ci_upper"])
    assert (expected["mean_ci_lower"] > expected["mean_ci_upper"]).any() == (family == "gamma")
    got = ours.get_prediction(new, alpha=0.1)
    frame_ = got.summary_frame()
    assert list(frame_.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    np.testing.assert_allclose(frame_["mean"], expected["mean"], rtol=1e-12)
    np.testing.assert_allclose(frame_["mean_se"], expected["mean_se"], rtol=1e-9)
    np.testing.assert_allclose(frame_["mean_ci_lower"], lower, rtol=1e-9)
    np.testing.assert_allclose(frame_["mean_ci_upper"], upper, rtol=1e-9)
    np.testing.assert_allclose(got.conf_int(alpha=0.05)[:, 0], np.minimum(
        *theirs.get_prediction(new).conf_int(alpha=0.05).T), rtol=1e-9)  # fmt: skip
    linear = theirs.get_prediction(new, which="linear").summary_frame(alpha=0.1)
    ours_linear = ours.get_prediction(new, which="linear", alpha=0.1).summary_frame()
    assert list(ours_linear.columns) == list(linear.columns)  # predicted, se, ci_lower, ...
    np.testing.assert_allclose(ours_linear.to_numpy(), linear.to_numpy(), rtol=1e-9, atol=1e-12)
    # predict(interval="confidence") gives the same columns, in memory and out of core.
    table = ours.predict(new, interval="confidence", alpha=0.1)
    np.testing.assert_allclose(table.to_numpy(), frame_.to_numpy(), rtol=1e-15)


def test_predict_interval_options(fitted, tmp_path) -> None:
    frame, ours, theirs = fitted
    written = ours.predict(
        from_pandas(frame, 4), out=tmp_path / "ci", interval="confidence", backend="serial"
    )
    table = pq.read_table(tmp_path / "ci").to_pandas()
    assert written.columns == ("row", "predicted", "mean_se", "mean_ci_lower", "mean_ci_upper")
    expected = theirs.get_prediction(frame, exposure=frame["expo"]).summary_frame()
    np.testing.assert_allclose(table["mean_se"], expected["mean_se"], rtol=1e-9)
    np.testing.assert_allclose(table["mean_ci_upper"], expected["mean_ci_upper"], rtol=1e-9)
    with pytest.raises(ValueError, match="no interval for a new observation"):
        ours.predict(frame, interval="prediction")
    with pytest.raises(ValueError, match="'alpha' parameter of predict must be a float"):
        ours.get_prediction(frame, alpha=1.5)


def test_predict_out_of_core_to_parquet(fitted, tmp_path) -> None:
    frame, ours, theirs = fitted
    written = ours.predict(from_pandas(frame, 4), out=tmp_path / "preds", backend="serial")
    assert written.rows_written == len(frame)
    table = pq.read_table(tmp_path / "preds").to_pandas()
    np.testing.assert_array_equal(table["row"], np.arange(len(frame)))
    np.testing.assert_allclose(table["predicted"], theirs.fittedvalues, rtol=1e-12)


def test_save_load_round_trip(fitted, tmp_path) -> None:
    frame, ours, _ = fitted
    path = ours.save(tmp_path / "glm.json")
    loaded = GLMResults.load(path)
    assert isinstance(loaded, GLMResults)
    for name in ("params", "bse", "pvalues"):
        pd.testing.assert_series_equal(getattr(loaded, name), getattr(ours, name))
    for name in ("deviance", "null_deviance", "llf", "aic", "bic", "scale", "iterations"):
        assert getattr(loaded, name) == getattr(ours, name), name
    assert loaded.family == ours.family and loaded.cov_type == "HC0"
    assert loaded.fit_history == ours.fit_history
    np.testing.assert_array_equal(loaded.predict(frame.iloc[:50]), ours.predict(frame.iloc[:50]))
    assert shardfit.load_results(path).family_name == "poisson"
    nb = shardfit.glm(FORMULA, frame, family="negative_binomial", alpha=0.4).fit(backend="serial")
    assert GLMResults.load(nb.save(tmp_path / "nb.json")).family.alpha == 0.4


def test_summary(fitted) -> None:
    _, ours, theirs = fitted
    text = str(ours.summary())
    assert "Generalized Linear Model Regression Results" in text
    assert "Model Family:                 Poisson" in text
    assert "Link Function:                    Log" in text
    assert f"{theirs.llf:.6g}" in text and f"{theirs.deviance:.6g}" in text
    assert "heteroscedasticity-robust (HC0)" in text
    table = ours.summary().as_frame()
    assert list(table.columns[:4]) == ["coef", "std err", "z", "P>|z|"]
    np.testing.assert_allclose(table.loc[theirs.params.index, "z"], theirs.tvalues, rtol=1e-9)


def test_wald_tests_and_intervals(fitted) -> None:
    _, ours, theirs = fitted
    ci = ours.conf_int(0.1).loc[theirs.params.index]
    np.testing.assert_allclose(ci.to_numpy(), theirs.conf_int(0.1).to_numpy(), rtol=1e-9)
    mine = ours.t_test("x1 = x2")
    reference = theirs.t_test("x1 = x2")
    np.testing.assert_allclose(mine.tvalue, reference.tvalue, rtol=1e-9)
    np.testing.assert_allclose(mine.pvalue, reference.pvalue, rtol=1e-9)
    assert np.shape(mine.tvalue) == np.shape(reference.tvalue) == (1, 1)
    assert np.shape(mine.pvalue) == np.shape(reference.pvalue) == ()
    assert mine.distribution == reference.distribution == "norm"
    joint, joint_ref = ours.f_test("x1 = 0, x2 = 0"), theirs.f_test("x1 = 0, x2 = 0")
    np.testing.assert_allclose(joint.fvalue, joint_ref.fvalue, rtol=1e-9)
    assert joint.df_num == joint_ref.df_num and isinstance(joint.df_num, float)


@pytest.mark.parametrize("cov_type", ["HC1", "HC3"])
def test_hc1_to_hc3_equal_statsmodels(cov_type) -> None:
    """statsmodels' GLM gives HC1-HC3 the HC0 sandwich; shardfit follows it."""
    frame = glm_frame("gamma", "log", seed=23)
    ours = shardfit.glm(FORMULA, from_pandas(frame, 3), family="gamma", link="log").fit(
        backend="serial", cov_type=cov_type
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sm_fit(frame, "gamma", "log", cov_type=cov_type)
    names = list(ours.bse.index)
    np.testing.assert_allclose(ours.bse.to_numpy(), theirs.bse[names].to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(
        ours.cov_params().to_numpy(), theirs.cov_params().loc[names, names], rtol=1e-7
    )
    assert ours.cov_type == cov_type
