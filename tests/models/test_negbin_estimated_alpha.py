"""Negative binomial (NB2) regression with alpha estimated equals statsmodels'
``NegativeBinomial(loglike_method="nb2")`` (refitted by Newton's method to converge
tightly) and the published R ``MASS::glm.nb`` / Stata ``nbreg`` numbers of the RAND
health insurance data (statsmodels' ``results_discrete.RandHIE``)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.errors import ResponseError
from shardfit.models.irls import ConvergenceWarning
from shardfit.models.negbin import AlphaBoundaryWarning

FORMULA = "y ~ x1 + x2 + C(g)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261123)
    n = 500
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(size=n),
            "g": rng.choice(["a", "b", "c"], n),
            "t": rng.uniform(0.5, 2.0, n),
            "off": rng.normal(scale=0.3, size=n),
        }
    )
    mu = np.exp(0.3 + 0.5 * df.x1 - 0.8 * df.x2 + np.log(df.t))
    alpha = 0.7
    df["y"] = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu)).astype(float)
    return df


def _design(df: pd.DataFrame) -> pd.DataFrame:
    X = pd.get_dummies(df[["x1", "x2", "g"]], drop_first=True, dtype=float)
    return sm.add_constant(X)


def _sm_fit(y, X, **kwargs):
    """statsmodels NB2 to its tightest: BFGS, then Newton from there."""
    model = sm.NegativeBinomial(y, X, loglike_method="nb2", **kwargs)
    first = model.fit(disp=0, maxiter=500)
    res = model.fit(start_params=first.params, method="newton", disp=0, maxiter=100)
    assert res.mle_retvals["converged"]
    return res


def _assert_matches(res, ref) -> None:
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(res.tvalues.to_numpy(), ref.tvalues.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(res.pvalues.to_numpy(), ref.pvalues.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(res.conf_int().to_numpy(), ref.conf_int().to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        res.cov_params().to_numpy(), ref.cov_params().to_numpy(), rtol=1e-6, atol=1e-12
    )
    assert res.llf == pytest.approx(ref.llf, rel=1e-9)
    assert res.llnull == pytest.approx(ref.llnull, rel=1e-9)
    assert res.aic == pytest.approx(ref.aic, rel=1e-9)
    assert res.bic == pytest.approx(ref.bic, rel=1e-9)
    assert res.prsquared == pytest.approx(ref.prsquared, rel=1e-7)
    assert (res.df_model, res.df_resid, res.nobs) == (ref.df_model, ref.df_resid, ref.nobs)
    assert res.names[-1] == "alpha" and res.converged


@pytest.mark.parametrize("nparts", [1, 4])
@pytest.mark.parametrize("kind", ["plain", "offset", "exposure", "non-integer"])
def test_matches_statsmodels(frame, kind, nparts) -> None:
    df = frame.copy()
    options, sm_options = {}, {}
    if kind == "offset":
        options, sm_options = {"offset": "off"}, {"offset": df.off.to_numpy()}
    elif kind == "exposure":
        options, sm_options = {"exposure": "t"}, {"exposure": df.t.to_numpy()}
    elif kind == "non-integer":
        df["y"] = df.y * 1.3  # statsmodels accepts non-integer counts; so does shardfit
    res = shardfit.negativebinomial(FORMULA, from_pandas(df, nparts), **options).fit(
        backend="serial"
    )
    _assert_matches(res, _sm_fit(df.y, _design(df), **sm_options))


def test_randhie_published_r_and_stata() -> None:
    """RAND HIE (20,190 rows): R 2.15.1 MASS glm.nb coefficients, Stata nbreg alpha,
    log-likelihoods, aic and bic (statsmodels' results_discrete.RandHIE)."""
    data = sm.datasets.randhie.load_pandas().data
    columns = [c for c in data.columns if c != "mdvis"]
    res = shardfit.negativebinomial("mdvis ~ " + " + ".join(columns), from_pandas(data, 3)).fit(
        backend="serial"
    )
    # R's coefficients list the columns, then the constant (appended last).
    r_params = [
        -0.0579469537244314, -0.267787718814838, 0.0412060770911646, -0.0381376804392121,
        0.268915772213171, 0.0381637446219235, -0.0441338846217674, 0.0172521803400544,
        0.177960787443151, 0.663556087183864,
    ]  # fmt: skip
    beta = res.params.to_numpy()[:-1]
    np.testing.assert_allclose(beta, np.r_[r_params[-1], r_params[:-1]], rtol=5e-7)
    assert res.alpha == pytest.approx(1.292953339909746, rel=1e-8)  # Stata
    # Stata's lnalpha carries its own convergence error (3e-9 from the optimum, which
    # statsmodels' Newton below confirms).
    assert res.lnalpha == pytest.approx(0.256929012449, abs=1e-8)
    assert res.bse["alpha"] == pytest.approx(0.0186098, abs=5e-8)  # Stata, 7 digits
    assert res.lnalpha_std_err == pytest.approx(0.0143932, abs=5e-8)
    assert res.llf == pytest.approx(-43383.66207653563, rel=1e-12)
    assert res.llnull == pytest.approx(-44199.27443563430279, rel=1e-11)
    assert res.aic == pytest.approx(86789.32415307125484, rel=1e-12)
    assert res.bic == pytest.approx(86876.36652289562335, rel=1e-12)
    assert res.llr == pytest.approx(1631.224718197351, rel=1e-9)
    assert (res.df_model, res.df_resid) == (9, 20180)
    # statsmodels' Newton from the published estimates: the same optimum and Hessian.
    X = sm.add_constant(data[columns])
    model = sm.NegativeBinomial(data.mdvis, X, loglike_method="nb2")
    ref = model.fit(start_params=np.r_[r_params[-1], r_params[:-1], 1.29], method="newton", disp=0)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)


def test_processes_backend_equals_serial(frame, processes) -> None:
    source = from_pandas(frame, 3)
    model = shardfit.negativebinomial(FORMULA, source, exposure="t")
    parallel = model.fit(backend=processes)
    serial = model.fit(backend="serial")
    # The merge tree depends only on the partitions: bitwise the same sums.
    np.testing.assert_array_equal(parallel.params.to_numpy(), serial.params.to_numpy())
    np.testing.assert_array_equal(parallel.bse.to_numpy(), serial.bse.to_numpy())
    assert parallel.llf == serial.llf
    _assert_matches(parallel, _sm_fit(frame.y, _design(frame), exposure=frame.t.to_numpy()))


def test_predict_and_start_params(frame) -> None:
    ref = _sm_fit(frame.y, _design(frame), exposure=frame.t.to_numpy())
    model = shardfit.negativebinomial(FORMULA, from_pandas(frame, 2), exposure="t")
    # statsmodels' params Series (its names differ): aligned by position via values.
    start = pd.Series(
        ref.params.to_numpy() * 1.05,
        index=["Intercept", "x1", "x2", "C(g)[T.b]", "C(g)[T.c]", "alpha"],
    )
    res = model.fit(start_params=start, backend="serial")
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    new = frame.head(7)
    exog = _design(frame).head(7)
    np.testing.assert_allclose(
        res.predict(new), ref.predict(exog, exposure=new.t.to_numpy()), rtol=1e-9
    )
    np.testing.assert_allclose(
        res.predict(new, which="linear"),
        ref.predict(exog, exposure=new.t.to_numpy(), which="linear"),
        rtol=1e-9,
    )
    text = str(res.summary())
    assert "NegativeBinomial" in text and re.search(r"^alpha\s+0\.\d+", text, re.M)
    table = res.summary().as_frame()
    np.testing.assert_allclose(table["std err"].to_numpy(), ref.bse.to_numpy(), rtol=1e-6)


def test_results_file_round_trip_predicts_as_statsmodels(frame, tmp_path) -> None:
    ref = _sm_fit(frame.y, _design(frame), exposure=frame.t.to_numpy())
    res = shardfit.negativebinomial(FORMULA, from_pandas(frame, 2), exposure="t").fit(
        backend="serial"
    )
    loaded = shardfit.load_results(res.save(tmp_path / "nb.json"))  # JSON, no pickle
    assert isinstance(loaded, shardfit.NegativeBinomialResults)
    np.testing.assert_array_equal(loaded.params, res.params)
    np.testing.assert_array_equal(loaded.bse, res.bse)
    assert (loaded.llf, loaded.llnull, loaded.aic) == (res.llf, res.llnull, res.aic)
    new = frame.tail(5)
    np.testing.assert_allclose(
        loaded.predict(new),
        ref.predict(_design(frame).tail(5), exposure=new.t.to_numpy()),
        rtol=1e-9,
    )


def test_negative_count_names_partition_row_and_value(frame) -> None:
    df = frame.copy()
    df.loc[321, "y"] = -2.0
    with pytest.raises(ResponseError, match=r"partition DataFrame\[250:500\].*row 321.*-2\.0"):
        shardfit.negativebinomial(FORMULA, from_pandas(df, 2)).fit(backend="serial")


def test_underdispersed_data_stop_at_alpha_zero() -> None:
    """Binomial counts (variance < mean): the NB2 maximum is at alpha = 0, the Poisson
    model; statsmodels' Newton from its default start returns NaN there."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"x": rng.normal(size=300)})
    df["y"] = rng.binomial(6, 1 / (1 + np.exp(-0.2 * df.x)))
    with pytest.warns(AlphaBoundaryWarning, match="no overdispersion"):
        res = shardfit.negativebinomial("y ~ x", from_pandas(df, 2)).fit(backend="serial")
    poisson = sm.Poisson(df.y, sm.add_constant(df[["x"]])).fit(disp=0)
    assert res.alpha_at_boundary and not res.converged and 0 < res.alpha < 1e-6
    np.testing.assert_allclose(res.params.to_numpy()[:-1], poisson.params.to_numpy(), rtol=1e-5)
    np.testing.assert_allclose(res.bse.to_numpy()[:-1], poisson.bse.to_numpy(), rtol=1e-5)
    # The NB2 log-likelihood approaches the Poisson maximum from below.
    assert poisson.llf - 1e-3 < res.llf <= poisson.llf


def test_nonconvergence_warns_with_the_llf_trace(frame) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = shardfit.negativebinomial(FORMULA, from_pandas(frame, 2)).fit(
            maxiter=1, backend="serial"
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert not res.converged and res.iterations == 1 and len(res.llf_history) == 2
    trace = ", ".join(f"{v:.12g}" for v in res.llf_history)
    assert any(f"log-likelihood trace: [{trace}]" in m for m in messages), messages
    # One Newton step from the Poisson start is not yet statsmodels' optimum.
    ref = _sm_fit(frame.y, _design(frame))
    assert abs(res.params["alpha"] / ref.params["alpha"] - 1) > 1e-4
