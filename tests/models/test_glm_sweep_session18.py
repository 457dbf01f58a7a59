"""Session 18's differential sweep of GLMs and count models against statsmodels.

Each test fits the same random data in memory with statsmodels and out of core with
shardfit (several partitions) and compares numbers computed here, in the test.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit

FIT = {"backend": "serial"}

# statsmodels' own warnings on the references (a link outside the family's domain,
# var_weights with a sandwich, NaN standard errors of a two-way cluster prediction)
# and shardfit's NaN Tweedie log-likelihood at var_power=3 (documented, as there).
pytestmark = [
    pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.DomainWarning"),
    pytest.mark.filterwarnings("ignore:cov_type not fully supported"),
    pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:the log-likelihood is nan:RuntimeWarning"),
]


def _negative_deviance_data() -> pd.DataFrame:
    """Counts whose identity-link Poisson IRLS takes a first step to negative means,
    where the deviance is -210.8, then comes back into the range (statsmodels'
    deviance history: inf, 37.47, -210.83, 92.41, 89.19, ...)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=60)
    y = rng.poisson(np.exp(0.3 + 0.5 * x)).astype(float)
    w = rng.uniform(0.5, 2.0, size=60)
    return pd.DataFrame({"y": y, "x": x, "w": w})


def test_negative_deviance_is_not_an_exact_fit() -> None:
    """A step outside the Poisson's range gives a negative deviance; the exact-fit
    rule (deviance <= 1e-24 x the start's) took it for a fit of deviance 0 and
    stopped, converged, after one iteration (params 1.9% / 25% off statsmodels')."""
    frame = _negative_deviance_data()
    family = sm.families.Poisson(sm.families.links.Identity())
    X = sm.add_constant(frame[["x"]])
    ref = sm.GLM(frame["y"], X, family=family, var_weights=frame["w"]).fit()
    assert min(ref.fit_history["deviance"][1:]) < -200  # the data do what they should
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ours = shardfit.glm(
            "y ~ x",
            shardfit.from_pandas(frame, npartitions=3),
            family="poisson",
            link="identity",
            weights="w",
        ).fit(cov_type="HC0", **FIT)
    ref_hc0 = sm.GLM(frame["y"], X, family=family, var_weights=frame["w"]).fit(cov_type="HC0")
    assert ours.converged
    assert ours.iterations == ref.fit_history["iteration"]
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(ours.bse.to_numpy(), ref_hc0.bse.to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-9)
    np.testing.assert_allclose(
        ours.deviance_history[1:], ref.fit_history["deviance"][1:], rtol=1e-8
    )


# -- the sweep's most valuable combinations not covered elsewhere ------------------------
def _frame(n: int, seed: int, kind: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-1, 1, size=n)
    eta = 0.3 + 0.5 * x1 - 0.4 * x2
    e = rng.uniform(0.5, 3.0, size=n)
    if kind == "binary":
        y = rng.binomial(1, 1 / (1 + np.exp(-eta))).astype(float)
    elif kind == "count":
        y = rng.poisson(np.exp(eta) * e).astype(float)
    elif kind == "ig":
        y = rng.wald(np.exp(eta), 4.0)
    elif kind == "tweedie":
        y = np.where(rng.uniform(size=n) < 0.2, 0.0, rng.gamma(2.0, np.exp(eta) / 2.0))
    elif kind == "gauss":
        y = np.exp(eta) + rng.normal(scale=0.3, size=n)
    else:  # positive
        y = rng.gamma(2.0, np.exp(eta) / 2.0)
    return pd.DataFrame(
        {
            "y": y,
            "x1": x1,
            "x2": x2,
            "g": rng.integers(0, 12, size=n),
            "h": rng.integers(0, 7, size=n),
            "unit": np.repeat(np.arange(n // 10), 10),
            "time": np.tile(np.arange(10), n // 10),
            "w": rng.uniform(0.5, 2.0, size=n),
            "f": rng.integers(1, 4, size=n).astype(float),
            "off": rng.normal(scale=0.2, size=n),
            "e": e,
        }
    )


_L = sm.families.links
# (family, link, family options, statsmodels family, data kind, cov_type, shardfit cov_kwds,
#  weights (var, freq), offset or exposure column, scale, use_t)
ROBUST_CASES = {
    "cloglog-HAC-uniform-corrected": (
        "binomial", "cloglog", {}, sm.families.Binomial(_L.CLogLog()), "binary",
        "HAC", {"maxlags": 2, "kernel": "uniform", "use_correction": True},
        ("w", None), ("offset", "off"), None, True,
    ),
    "gamma-log-hac-panel-scale-dev": (
        "gamma", "log", {}, sm.families.Gamma(_L.Log()), "positive",
        "hac-panel", {"groups": "unit", "maxlags": 2, "use_correction": "cluster"},
        ("w", None), ("offset", "off"), "dev", False,
    ),
    "invgauss-log-hac-groupsum-exposure": (
        "inverse_gaussian", "log", {}, sm.families.InverseGaussian(_L.Log()), "ig",
        "hac-groupsum", {"time": "time", "maxlags": 2, "use_correction": "hac"},
        (None, None), ("exposure", "e"), None, False,
    ),
    "tweedie-two-way-cluster-exposure": (
        "tweedie", "log", {"var_power": 1.5}, sm.families.Tweedie(_L.Log(), var_power=1.5),
        "tweedie", "cluster", {"groups": ["g", "h"]},
        ("w", None), ("exposure", "e"), None, True,
    ),
    "gaussian-log-HC3-freq-and-var-weights-fixed-scale": (
        "gaussian", "log", {}, sm.families.Gaussian(_L.Log()), "gauss",
        "HC3", {}, ("w", "f"), ("offset", "off"), 2.0, False,
    ),
    "negbin-log-cluster-exposure-quasi": (
        "negative_binomial", "log", {"alpha": 0.5},
        sm.families.NegativeBinomial(_L.Log(), alpha=0.5), "count",
        "cluster", {"groups": "g"}, (None, None), ("exposure", "e"), "X2", False,
    ),
}  # fmt: skip


def _statsmodels_cov_kwds(frame: pd.DataFrame, cov_kwds: dict) -> dict:
    out = dict(cov_kwds)
    for key in ("groups", "time"):
        if key in out:
            columns = out[key] if isinstance(out[key], list) else [out[key]]
            values = frame[columns].to_numpy()
            out[key] = values if values.shape[1] > 1 else values[:, 0]
    return out


@pytest.mark.parametrize("case", list(ROBUST_CASES))
def test_robust_covariance_prediction_and_tests(case: str) -> None:
    """Sandwiches of non-canonical links and free-scale families with weights, offsets
    or exposures and the scale options, and what is built on them: intervals of the
    mean of new rows (with their own offsets), t and Wald tests."""
    (family, link, params, sm_family, kind, cov_type, cov_kwds, (w, f), (off_kind, off),
     scale, use_t) = ROBUST_CASES[case]  # fmt: skip
    frame = _frame(240, sum(map(ord, case)), kind)
    X = sm.add_constant(frame[["x1", "x2"]])
    sm_kwargs: dict = {off_kind: frame[off].to_numpy()}
    if w is not None:
        sm_kwargs["var_weights"] = frame[w].to_numpy()
    if f is not None:
        sm_kwargs["freq_weights"] = frame[f].to_numpy()
    ref = sm.GLM(frame["y"], X, family=sm_family, **sm_kwargs).fit(
        cov_type=cov_type,
        cov_kwds=_statsmodels_cov_kwds(frame, cov_kwds),
        scale=scale,
        use_t=use_t,
    )
    ours = shardfit.glm(
        "y ~ x1 + x2",
        shardfit.from_pandas(frame, npartitions=4),
        family=family,
        link=link,
        weights=w,
        freq_weights=f,
        **{off_kind: off},
        **params,
    ).fit(cov_type=cov_type, cov_kwds=cov_kwds or None, scale=scale, use_t=use_t, **FIT)
    np.testing.assert_allclose(ours.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.pvalues.to_numpy(), ref.pvalues.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(
        ours.conf_int(alpha=0.1).to_numpy(), np.asarray(ref.conf_int(alpha=0.1)), rtol=1e-9
    )
    new = _frame(30, 99, kind)
    Xn = sm.add_constant(new[["x1", "x2"]], has_constant="add")
    for which in ("mean", "linear"):
        theirs = ref.get_prediction(Xn, which=which, **{off_kind: new[off].to_numpy()})
        mine = ours.get_prediction(new, which=which)
        np.testing.assert_allclose(
            mine.summary_frame(alpha=0.1).to_numpy(),
            theirs.summary_frame(alpha=0.1).to_numpy(),
            rtol=1e-9,
        )
    t_ours, t_ref = ours.t_test("x1 = 0.3, x2 + x1 = 0"), ref.t_test("x1 = 0.3, x2 + x1 = 0")
    np.testing.assert_allclose(t_ours.tvalue.ravel(), t_ref.tvalue.ravel(), rtol=1e-9)
    np.testing.assert_allclose(t_ours.pvalue.ravel(), t_ref.pvalue.ravel(), rtol=1e-8)
    w_ours = ours.wald_test("x1 = 0, x2 = 0")
    w_ref = ref.wald_test("x1 = 0, x2 = 0", scalar=True)
    np.testing.assert_allclose(float(w_ours.statistic), float(w_ref.statistic), rtol=1e-9)
    np.testing.assert_allclose(float(w_ours.pvalue), float(w_ref.pvalue), rtol=1e-7)


@pytest.mark.parametrize(
    ("family", "params", "sm_family", "kind", "scale", "influence"),
    [
        ("poisson", {}, sm.families.Poisson(), "count", "X2", True),
        ("gamma", {}, sm.families.Gamma(_L.Log()), "positive", "dev", True),
        # Some observed-information weights are negative here: statsmodels' leverages
        # fail (the SVD of sqrt(w) X does not converge), so residuals only.
        ("tweedie", {"var_power": 3.0}, sm.families.Tweedie(_L.Log(), var_power=3.0),
         "positive", None, False),
    ],
)  # fmt: skip
def test_residuals_and_influence_under_scale_options(
    family: str, params: dict, sm_family: object, kind: str, scale: str | None, influence: bool
) -> None:
    """Every residual kind and influence measure where the scale is not the family's
    default (quasi-Poisson's X2, the deviance's) or the variance power is 3, with var
    weights and an offset: the anscombe residuals and studentized residuals divide
    by it, Cook's p-values use its degrees of freedom."""
    frame = _frame(150, 7, kind)
    X = sm.add_constant(frame[["x1", "x2"]])
    ref = sm.GLM(frame["y"], X, family=sm_family, var_weights=frame["w"], offset=frame["off"]).fit(
        scale=scale
    )
    ours = shardfit.glm(
        "y ~ x1 + x2",
        shardfit.from_pandas(frame, npartitions=3),
        family=family,
        link="log",
        weights="w",
        offset="off",
        **params,
    ).fit(scale=scale, **FIT)
    for kind_name in ("response", "pearson", "deviance", "working", "anscombe"):
        np.testing.assert_allclose(
            ours.resid(frame, kind=kind_name).to_numpy(),
            np.asarray(getattr(ref, f"resid_{kind_name}")),
            rtol=1e-8,
            atol=1e-12,
            err_msg=kind_name,
        )
    if not influence:
        return
    measures = ref.get_influence()
    expected = {
        "hat": measures.hat_matrix_diag,
        "studentized": measures.resid_studentized,
        "cooks": measures.cooks_distance[0],
        "cooks_pvalue": measures.cooks_distance[1],
    }
    for kind_name, values in expected.items():
        np.testing.assert_allclose(
            ours.influence(frame, kind=kind_name).to_numpy(),
            np.asarray(values),
            rtol=1e-8,
            atol=1e-14,
            err_msg=kind_name,
        )


def test_negativebinomial_with_offset_exposure_and_levels() -> None:
    """NB2 with alpha estimated, an offset and an exposure together and a categorical
    term, against statsmodels' discrete NegativeBinomial: estimates, their standard
    errors (alpha's and log alpha's), the likelihood measures and predictions of new
    rows with their own offsets and exposures, with confidence intervals."""
    from statsmodels.discrete.discrete_model import NegativeBinomial

    rng = np.random.default_rng(18)
    n = 400
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "g": rng.integers(0, 3, size=n),
            "off": rng.normal(scale=0.3, size=n),
            "e": rng.uniform(0.5, 3.0, size=n),
        }
    )
    mu = np.exp(0.4 + 0.5 * frame["x1"] - 0.3 * (frame["g"] == 2) + frame["off"]) * frame["e"]
    frame["y"] = rng.negative_binomial(1 / 0.8, 1 / (1 + 0.8 * mu)).astype(float)
    X = pd.concat(
        [
            sm.add_constant(frame[["x1"]]),
            pd.get_dummies(frame["g"], prefix="g", drop_first=True).astype(float),
        ],
        axis=1,
    )
    ref = NegativeBinomial(
        frame["y"], X, loglike_method="nb2", offset=frame["off"], exposure=frame["e"]
    ).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    ours = shardfit.negativebinomial(
        "y ~ x1 + C(g)", shardfit.from_pandas(frame, npartitions=5), offset="off", exposure="e"
    ).fit(**FIT)
    np.testing.assert_allclose(ours.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(ours.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-6)
    for name in ("llf", "llnull", "aic", "bic", "prsquared", "llr"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-8, err_msg=name)
    np.testing.assert_allclose(ours.llr_pvalue, ref.llr_pvalue, rtol=1e-6)  # 1.5e-19
    np.testing.assert_allclose(ours.lnalpha_std_err, ref.lnalpha_std_err, rtol=1e-6)
    new = frame.iloc[:20].assign(off=rng.normal(size=20), e=rng.uniform(0.2, 5.0, size=20))
    kwargs = {"offset": new["off"].to_numpy(), "exposure": new["e"].to_numpy()}
    for which in ("mean", "linear"):
        np.testing.assert_allclose(
            np.asarray(ours.predict(new, which=which)),
            np.asarray(ref.predict(X.iloc[:20], which=which, **kwargs)),
            rtol=1e-7,
        )
    interval = ours.predict(new, interval="confidence")
    theirs = ref.get_prediction(X.iloc[:20], **kwargs).summary_frame()
    np.testing.assert_allclose(interval.to_numpy(), theirs.to_numpy(), rtol=1e-6)


@pytest.mark.parametrize(
    ("cov_type", "cov_kwds"), [("HAC", {"maxlags": 2}), ("cluster", {"groups": "g"})]
)
def test_probit_margins_under_robust_covariances(cov_type: str, cov_kwds: dict) -> None:
    """A probit's marginal effects (with dummy and count columns' discrete changes) on
    a robust covariance: the GLM's sandwich (observed-information bread) is
    statsmodels' Probit's, so the delta-method errors equal ``sm.Probit``'s."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(31)
    n = 300
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "d": rng.integers(0, 2, size=n).astype(float),
            "c": rng.integers(0, 5, size=n).astype(float),
            "g": rng.integers(0, 15, size=n),
        }
    )
    eta = -0.2 + 0.6 * frame["x1"] - 0.5 * frame["d"] + 0.2 * frame["c"]
    frame["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    sm_kwds = {"groups": frame["g"].to_numpy()} if cov_type == "cluster" else cov_kwds
    ref = smf.probit("y ~ x1 + d + c", frame).fit(
        disp=0, cov_type=cov_type, cov_kwds=sm_kwds, tol=1e-12
    )
    ours = shardfit.glm(
        "y ~ x1 + d + c",
        shardfit.from_pandas(frame, npartitions=3),
        family="binomial",
        link="probit",
    ).fit(cov_type=cov_type, cov_kwds=cov_kwds, tol=1e-13, **FIT)  # as converged as Probit's
    for at, method in (("overall", "dydx"), ("mean", "eydx"), ("overall", "eyex")):
        options = {"dummy": True, "count": True} if method != "eyex" else {}
        mine = ours.get_margeff(at=at, method=method, data=frame, **options)
        theirs = ref.get_margeff(at=at, method=method, **options)
        np.testing.assert_allclose(mine.margeff, theirs.margeff, rtol=1e-7)
        np.testing.assert_allclose(mine.margeff_se, theirs.margeff_se, rtol=1e-6)
