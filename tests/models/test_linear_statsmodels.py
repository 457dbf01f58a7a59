"""OLS and WLS equal statsmodels in memory to relative 1e-9 (issue 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from linear_cases import FORMULA, assert_matches, linreg_frame

import shardfit

RTOL = 1e-9
COV_TYPES = ["nonrobust", "HC0", "HC1", "HC2", "HC3", "cluster"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return linreg_frame()


def _reference(frame: pd.DataFrame, cov_type: str, weighted: bool):
    kwds = {"groups": frame["cl"].to_numpy()} if cov_type == "cluster" else None
    model = smf.wls(FORMULA, frame, weights=frame["w"]) if weighted else smf.ols(FORMULA, frame)
    return model.fit(cov_type=cov_type, cov_kwds=kwds)


@pytest.mark.parametrize("weighted", [False, True], ids=["ols", "wls"])
@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_every_attribute_and_covariance(frame: pd.DataFrame, cov_type: str, weighted: bool) -> None:
    kwds = {"groups": "cl"} if cov_type == "cluster" else None
    model = (
        shardfit.wls(FORMULA, shardfit.from_pandas(frame, 5), weights="w")
        if weighted
        else shardfit.ols(FORMULA, shardfit.from_pandas(frame, 5))
    )
    result = model.fit(backend="serial", cov_type=cov_type, cov_kwds=kwds)
    reference = _reference(frame, cov_type, weighted)
    assert_matches(result, reference, rtol=RTOL)
    assert result.use_t == reference.use_t
    if cov_type == "cluster":
        assert result.n_groups == 1000
        assert result.df_resid_inference == reference.df_resid_inference


@pytest.mark.parametrize("npartitions", [1, 2, 3, 17])
def test_any_partitioning(frame: pd.DataFrame, npartitions: int) -> None:
    result = shardfit.wls(FORMULA, shardfit.from_pandas(frame, npartitions), weights="w").fit(
        backend="serial", cov_type="HC1"
    )
    assert_matches(result, _reference(frame, "HC1", weighted=True), rtol=RTOL)


def test_t_and_f_tests(frame: pd.DataFrame) -> None:
    result = shardfit.ols(FORMULA, frame).fit(backend="serial")
    reference = _reference(frame, "nonrobust", weighted=False)
    for hypothesis in ["x1 = x2", "x1 = x2, x3 = 0, C(g10)[T.b] = 0.5"]:
        ours, theirs = result.f_test(hypothesis), reference.f_test(hypothesis)
        np.testing.assert_allclose(ours.fvalue, float(np.squeeze(theirs.fvalue)), rtol=RTOL)
        np.testing.assert_allclose(ours.pvalue, float(theirs.pvalue), rtol=RTOL)
        assert ours.df_num == theirs.df_num and ours.df_denom == theirs.df_denom
    ours_t, theirs_t = result.t_test("x1 - 2 * x4 = 0.1"), reference.t_test("x1 - 2 * x4 = 0.1")
    np.testing.assert_allclose(ours_t.tvalue, theirs_t.tvalue, rtol=RTOL)
    np.testing.assert_allclose(ours_t.pvalue, theirs_t.pvalue, rtol=RTOL)
    np.testing.assert_allclose(ours_t.conf_int(), theirs_t.conf_int(), rtol=RTOL)
    # One restriction: statsmodels' (1, 1) sd and tvalue and 0-d pvalue, and its frame.
    for name in ("effect", "sd", "tvalue", "statistic", "pvalue"):
        assert np.shape(getattr(ours_t, name)) == np.shape(getattr(theirs_t, name)), name
    assert ours_t.distribution == theirs_t.distribution == "t"
    pd.testing.assert_frame_equal(
        ours_t.summary_frame(), theirs_t.summary_frame(), check_exact=False, rtol=RTOL
    )
    # A matrix restriction, with the robust (normal) distribution.
    robust = shardfit.ols(FORMULA, frame).fit(backend="serial", cov_type="HC3")
    robust_ref = _reference(frame, "HC3", weighted=False)
    names = list(robust.params.index)
    matrix = np.zeros((2, len(names)))
    matrix[0, names.index("x5")] = 1.0
    matrix[1, names.index("x6")] = 1.0
    ref_matrix = np.zeros((2, len(robust_ref.params)))
    ref_names = list(robust_ref.params.index)
    ref_matrix[0, ref_names.index("x5")] = 1.0
    ref_matrix[1, ref_names.index("x6")] = 1.0
    np.testing.assert_allclose(
        robust.f_test(matrix).fvalue,
        float(np.squeeze(robust_ref.f_test(ref_matrix).fvalue)),
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        robust.t_test(matrix).pvalue, robust_ref.t_test(ref_matrix).pvalue, rtol=RTOL
    )


def test_array_interface_matches_statsmodels_ols(frame: pd.DataFrame) -> None:
    import statsmodels.api as sm

    X = sm.add_constant(frame[["x1", "x2", "x3"]].to_numpy())
    y = frame["y"].to_numpy()
    result = shardfit.OLS(y, X, npartitions=4).fit(backend="serial")
    reference = sm.OLS(y, X).fit()
    assert list(result.params.index) == ["const", "x1", "x2", "x3"]
    np.testing.assert_allclose(result.params.to_numpy(), reference.params, rtol=RTOL)
    np.testing.assert_allclose(result.bse.to_numpy(), reference.bse, rtol=RTOL)
    np.testing.assert_allclose(result.rsquared, reference.rsquared, rtol=RTOL)
    assert result.k_constant == 1 and result.df_model == 3


def test_no_intercept_and_implicit_constant(frame: pd.DataFrame) -> None:
    for formula in ["y ~ 0 + x1 + x2", "y ~ 0 + C(g10) + x1"]:
        result = shardfit.ols(formula, frame).fit(backend="serial")
        reference = smf.ols(formula, frame).fit()
        np.testing.assert_allclose(result.rsquared, reference.rsquared, rtol=RTOL)
        np.testing.assert_allclose(result.rsquared_adj, reference.rsquared_adj, rtol=RTOL)
        np.testing.assert_allclose(result.fvalue, reference.fvalue, rtol=RTOL)
        np.testing.assert_allclose(result.df_model, reference.df_model)
        np.testing.assert_allclose(result.aic, reference.aic, rtol=RTOL)


@pytest.mark.parametrize(
    ("formula", "k_constant"),
    [
        # The constant is u + (1 - u): in the span, on a design of condition 2e8 (the
        # quadratic form through (X'WX)^-1 left a residual of 2.1 of sum(w) there).
        ("y ~ 0 + u + I(1 - u) + x1", 1),
        # t and t**2 over 30 years from 1950 reproduce the constant to 5 digits only
        # (residual 3e-10 of sum(w), which the former threshold of 1e-8 took for one).
        ("y ~ 0 + t + I(t ** 2) + x1", 0),
    ],
)
def test_implicit_constant_decided_like_statsmodels(frame, formula, k_constant) -> None:
    rng = np.random.default_rng(5)
    data = frame.iloc[:3000].copy()
    data["u"] = 1000.0 + 0.01 * rng.normal(size=len(data))
    data["t"] = 1950.0 + 30.0 * np.arange(len(data)) / len(data)
    reference = smf.wls(formula, data, weights=data["w"]).fit()
    assert reference.model.k_constant == k_constant
    for method in ("auto", "qr"):
        model = shardfit.wls(formula, shardfit.from_pandas(data, 3), weights="w")
        result = model.fit(backend="serial", method=method)
        assert result.k_constant == k_constant
        # Centred or not: R2 of ~5e-4 either way here, but its total differs by 1e6.
        np.testing.assert_allclose(result.rsquared, reference.rsquared, rtol=0, atol=1e-9)
        np.testing.assert_allclose(result.fvalue, reference.fvalue, rtol=1e-5)
        assert result.df_model == reference.df_model


def test_zero_weights_count_like_statsmodels_and_warn() -> None:
    """Zero-weight rows count in nobs and df_resid as in statsmodels, whose llf is then
    -inf (a zero weight is an infinite variance); the warning names R's alternative.
    The llf used to add the log-weights of the positive rows only: finite, and neither
    statsmodels' value nor R's."""
    rng = np.random.default_rng(3)
    n = 120
    frame = pd.DataFrame({"x": rng.normal(size=n), "w": rng.uniform(0.5, 2.0, n)})
    frame["y"] = 1.0 + 2.0 * frame["x"] + rng.normal(size=n) / np.sqrt(frame["w"])
    frame.loc[:6, "w"] = 0.0
    with pytest.warns(UserWarning, match="7 of 120 rows have zero weight"):
        fit = shardfit.wls("y ~ x", frame, weights="w").fit(backend="serial")
    with np.errstate(divide="ignore"):
        ref = smf.wls("y ~ x", frame, weights=frame["w"]).fit()
        assert ref.llf == -np.inf  # the reference's definition, checked
    np.testing.assert_allclose(fit.params, ref.params, rtol=1e-12)
    np.testing.assert_allclose(fit.bse, ref.bse, rtol=1e-10)
    assert (fit.nobs, fit.df_resid) == (ref.nobs, ref.df_resid) == (120, 118)
    assert fit.llf == -np.inf and fit.aic == np.inf and fit.bic == np.inf
