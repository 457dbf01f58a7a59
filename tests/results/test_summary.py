"""The summary shows statsmodels' numbers, the rows used, and honest notes."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.data.simulate import simulate_table

FORMULA = "y ~ x1 + x2 + x3 + np.exp(x4 / 4) + C(g10)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = simulate_table("linreg", 4_000, seed=3).to_pandas()
    data.loc[[5, 6, 7], "x2"] = np.nan
    return data


def _value(text: str, label: str) -> str:
    match = re.search(re.escape(label) + r"\s+(\S+)", text)
    assert match, f"{label} not in the summary"
    return match.group(1)


def _flat(text: str) -> str:
    """The text with line breaks and runs of spaces as one space (notes wrap)."""
    return " ".join(text.split())


def _row(text: str, name: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(name + " "))
    return line[len(name) :].split()


def test_numbers_are_statsmodels(frame: pd.DataFrame) -> None:
    ours = shardfit.ols(FORMULA, shardfit.from_pandas(frame, 3)).fit(backend="serial")
    reference = smf.ols(FORMULA, frame).fit()
    text = str(ours.summary())
    assert text.splitlines()[0].strip() == "OLS Regression Results"
    assert _value(text, "R-squared:") == f"{reference.rsquared:.4f}"
    assert _value(text, "Adj. R-squared:") == f"{reference.rsquared_adj:.4f}"
    np.testing.assert_allclose(float(_value(text, "F-statistic:")), reference.fvalue, rtol=1e-5)
    np.testing.assert_allclose(float(_value(text, "Log-Likelihood:")), reference.llf, rtol=1e-5)
    np.testing.assert_allclose(float(_value(text, "AIC:")), reference.aic, rtol=1e-5)
    np.testing.assert_allclose(float(_value(text, "BIC:")), reference.bic, rtol=1e-5)
    assert _value(text, "No. Observations:") == f"{int(reference.nobs):,}" == "3,997"
    assert _value(text, "Rows read:") == "4,000"
    assert _value(text, "Rows dropped:") == "3"
    assert _value(text, "Df Residuals:") == f"{int(reference.df_resid):,}"
    assert _value(text, "Df Model:") == f"{int(reference.df_model)}"
    assert _value(text, "Covariance Type:") == "nonrobust"
    assert _value(text, "Method:") == "Least" and "Least Squares (gram)" in text
    assert "3 of the 4,000 rows read were not used (missing: 3)" in _flat(text)
    bounds = reference.conf_int()
    for name in reference.params.index:  # patsy orders terms differently: match by name
        cells = _row(text, name)
        expected = [
            reference.params[name],
            reference.bse[name],
            reference.tvalues[name],
        ]
        assert cells[:3] == [f"{value:.4f}" for value in expected], name
        assert cells[3] == f"{reference.pvalues[name]:.3f}", name
        assert cells[4:] == [f"{bounds.loc[name, 0]:.4f}", f"{bounds.loc[name, 1]:.4f}"], name
    assert "condition number is" not in text


def test_frame_is_the_coefficient_table(frame: pd.DataFrame) -> None:
    ours = shardfit.wls(FORMULA, frame, weights="w").fit(backend="serial", cov_type="HC1")
    reference = smf.wls(FORMULA, frame, weights=frame["w"]).fit(cov_type="HC1")
    summary = ours.summary(alpha=0.1)
    table = summary.as_frame()
    assert list(table.columns) == ["coef", "std err", "z", "P>|z|", "[0.05", "0.95]"]
    index = reference.params.index
    columns = [reference.params, reference.bse, reference.tvalues, reference.pvalues]
    expected = pd.concat([*columns, reference.conf_int(0.1)], axis=1)
    np.testing.assert_allclose(table.loc[index].to_numpy(), expected.to_numpy(), rtol=1e-9)
    text = summary.as_text()
    assert text.splitlines()[0].strip() == "WLS Regression Results"
    assert "heteroscedasticity-robust (HC1)" in _flat(text)
    assert "<table" in summary._repr_html_() and "C(g10)[T.b]" in summary._repr_html_()


def test_aliased_columns_and_large_condition_numbers_are_noted(frame: pd.DataFrame) -> None:
    data = frame.assign(x12=frame["x1"] - frame["x3"], big=frame["x4"] * 1e7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = shardfit.ols("y ~ x1 + x3 + x12 + big", data).fit(
            backend="serial", rank_deficient="drop"
        )
    text = ours.summary().as_text()
    assert _row(text, "x12") == ["NA"] * 6
    notes = _flat(text)
    assert "reported as NA: x12." in notes
    assert ours.condition_number > 1e5
    assert f"The design's condition number is {ours.condition_number:.3g}" in notes
    assert "Solved from the TSQR factor" in notes and "Least Squares (qr)" in text


def test_cluster_counts_and_plain_columns(frame: pd.DataFrame) -> None:
    data = frame.dropna().assign(firm=lambda d: np.arange(len(d)) % 25)
    ours = shardfit.ols(FORMULA, data).fit(
        backend="serial", cov_type="cluster", cov_kwds={"groups": "firm"}
    )
    text = ours.summary().as_text()
    assert _value(text, "No. Clusters:") == "25"
    assert "within 25 clusters" in _flat(text)
    no_constant = shardfit.OLS(data["y"].to_numpy(), data[["x1", "x3"]]).fit(backend="serial")
    text = str(no_constant.summary())
    assert _value(text, "Dep. Variable:") == "y"
    assert "R-squared (uncentered):" in text
    np.testing.assert_allclose(
        float(_value(text, "R-squared (uncentered):")), no_constant.rsquared, atol=5e-5
    )
