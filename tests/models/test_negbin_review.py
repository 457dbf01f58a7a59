"""Review of the NB2 model with alpha estimated (``shardfit.negativebinomial``): each
test compares with statsmodels' ``NegativeBinomial(loglike_method="nb2")`` refitted by
Newton's method, on a case the first version got wrong."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.models.irls import ConvergenceWarning
from shardfit.models.negbin import AlphaBoundaryWarning


def _sm_fit(y, X, start=None, **kwargs):
    """statsmodels NB2 by Newton's method (from ``start`` or its own BFGS fit)."""
    model = sm.NegativeBinomial(y, X, loglike_method="nb2", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if start is None:
            start = model.fit(disp=0, maxiter=500).params
        res = model.fit(start_params=np.asarray(start), method="newton", disp=0, maxiter=100)
    assert res.mle_retvals["converged"]
    return res


def test_columns_far_from_zero_and_badly_scaled() -> None:
    """x = 1e6 + U(0, 10) and a column of size 1e5: the uncentred X'WX was declared
    rank deficient (DesignError naming 'x'). Now centred and scaled as the GLM: params
    and bse equal statsmodels' fit on centred columns mapped back (statsmodels' own
    uncentred bse are off by 2e-6 here)."""
    rng = np.random.default_rng(1)
    n, c = 2000, 1e6 + 5
    df = pd.DataFrame({"x": 1e6 + rng.uniform(0, 10, n), "z": rng.normal(size=n)})
    mu = np.exp(0.5 + 0.1 * (df.x - 1e6) + 0.3 * df.z)
    df["y"] = rng.negative_binomial(2.0, 1 / (1 + 0.5 * mu)).astype(float)
    df["zz"] = 1e5 * df.z
    res = shardfit.negativebinomial("y ~ x + zz", from_pandas(df, 3)).fit(backend="serial")
    centred = sm.add_constant(pd.DataFrame({"x": df.x - c, "z": df.z}))
    ref = _sm_fit(df.y, centred)
    # beta = A gamma: intercept - c * slope_x, slope_z / 1e5.
    A = np.eye(4)
    A[0, 1], A[2, 2] = -c, 1e-5
    params = A @ ref.params.to_numpy()
    cov = A @ ref.cov_params().to_numpy() @ A.T
    assert res.converged and list(res.names) == ["Intercept", "x", "zz", "alpha"]
    np.testing.assert_allclose(res.params.to_numpy(), params, rtol=1e-8)
    np.testing.assert_allclose(res.bse.to_numpy(), np.sqrt(np.diag(cov)), rtol=1e-8)
    np.testing.assert_allclose(res.cov_params().to_numpy(), cov, rtol=1e-6)
    assert res.llf == pytest.approx(ref.llf, rel=1e-11)
    # The Hessian is reported in the design's columns: its inverse is the covariance.
    np.testing.assert_allclose(np.linalg.inv(-res.hessian)[1:, 1:], cov[1:, 1:], rtol=1e-5)


def test_implicit_constant_counts_as_statsmodels_k_constant() -> None:
    """``0 + C(g) + x`` spans the constant: statsmodels' k_constant is 1, so aic and
    bic count it (shardfit had k_constant 0: aic 2 lower, bic log(n) lower)."""
    rng = np.random.default_rng(2)
    n = 800
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcd"), n)})
    mu = np.exp(df.g.map({"a": 0.1, "b": 0.5, "c": -0.3, "d": 0.8}) + 0.3 * df.x)
    df["y"] = rng.negative_binomial(1 / 0.8, 1 / (1 + 0.8 * mu)).astype(float)
    res = shardfit.negativebinomial("y ~ 0 + C(g) + x", from_pandas(df, 3)).fit(backend="serial")
    X = pd.concat([pd.get_dummies(df.g, dtype=float), df.x], axis=1)
    ref = _sm_fit(df.y, X)
    assert (res.k_constant, res.df_model, res.df_resid) == (1, ref.df_model, ref.df_resid)
    assert ref.k_constant == 1
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    assert res.aic == pytest.approx(ref.aic, rel=1e-10)
    assert res.bic == pytest.approx(ref.bic, rel=1e-10)
    assert res.llnull == pytest.approx(ref.llnull, rel=1e-9)
    assert res.prsquared == pytest.approx(ref.prsquared, rel=1e-7)
    # Through the origin on a regressor alone: no constant, as statsmodels.
    plain = shardfit.negativebinomial("y ~ 0 + x", from_pandas(df, 2)).fit(backend="serial")
    ref0 = _sm_fit(df.y, df[["x"]])
    assert (plain.k_constant, ref0.k_constant) == (0, 0)
    assert plain.aic == pytest.approx(ref0.aic, rel=1e-10)
    # A column far from zero is nearly, not exactly, constant: none either.
    df["far"] = 1e6 + rng.uniform(0, 10, n)
    far = shardfit.negativebinomial("y ~ 0 + far", from_pandas(df, 2)).fit(backend="serial")
    assert far.k_constant == sm.NegativeBinomial(df.y, df[["far"]]).k_constant == 0


def test_huge_counts_null_model_converges() -> None:
    """Counts of 1e6: lgamma(y + theta) - lgamma(y + 1) cancels terms of 1e7, so the
    log-likelihood carries noise of ~1e-6, above the step search's old slack of
    1e-12 |llf|: Newton steps were halved away near the optimum, and both the fit
    and the null model crept for 100 iterations and warned that they did not
    converge."""
    rng = np.random.default_rng(4)
    n = 1500
    df = pd.DataFrame({"x": rng.normal(size=n)})
    mu = np.exp(13.8 + 0.2 * df.x)
    df["y"] = rng.negative_binomial(1 / 0.3, 1 / (1 + 0.3 * mu)).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        res = shardfit.negativebinomial("y ~ x", from_pandas(df, 3)).fit(backend="serial")
    ref = _sm_fit(df.y, sm.add_constant(df[["x"]]), start=res.params.to_numpy())
    assert res.converged and res.null_converged
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    assert res.llnull == pytest.approx(ref.llnull, rel=1e-9)
    assert res.prsquared == pytest.approx(ref.prsquared, rel=1e-6)


def test_llnull_does_not_depend_on_maxiter() -> None:
    """statsmodels' llnull is the constant-only model's maximum whatever ``maxiter``;
    shardfit stopped its null fit at ``maxiter`` too (maxiter=1: llnull -710.0003
    instead of -709.968, and a second warning)."""
    rng = np.random.default_rng(5)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "off": rng.normal(scale=0.2, size=n)})
    mu = np.exp(0.5 + 0.4 * df.x + df.off)
    df["y"] = rng.negative_binomial(2.0, 1 / (1 + 0.5 * mu)).astype(float)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = shardfit.negativebinomial("y ~ x", from_pandas(df, 2), offset="off").fit(
            maxiter=1, backend="serial"
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert not res.converged and len(messages) == 1 and "llnull" not in messages[0]
    ref = _sm_fit(df.y, sm.add_constant(df[["x"]]), offset=df.off.to_numpy())
    assert res.llnull == pytest.approx(ref.llnull, rel=1e-9)


def test_alpha_at_boundary_has_no_standard_error() -> None:
    """Underdispersed counts stop at alpha ~ 1e-6, where the curvature in alpha is
    rounding noise: its variance came out 2.6e-6 or -2.0e-6 by chance (the latter a
    RuntimeWarning from bse). Now NaN; the coefficients' are the Poisson fit's."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=300)})
    df["y"] = rng.binomial(6, 1 / (1 + np.exp(-0.2 * df.x)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AlphaBoundaryWarning)
        warnings.simplefilter("error", RuntimeWarning)
        res = shardfit.negativebinomial("y ~ x", from_pandas(df, 2)).fit(backend="serial")
        bse = res.bse
    poisson = sm.Poisson(df.y, sm.add_constant(df[["x"]])).fit(disp=0)
    assert res.alpha_at_boundary and np.isnan(bse["alpha"])
    assert np.isnan(res.cov_params().to_numpy()[-1]).all()
    np.testing.assert_allclose(bse.to_numpy()[:-1], poisson.bse.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(res.params.to_numpy()[:-1], poisson.params.to_numpy(), rtol=1e-5)
