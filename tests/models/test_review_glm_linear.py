"""Review of the linear and generalized linear models against statsmodels in memory:
Wald tests with a singular restriction covariance, ``wald_test``, ``use_t``, the
binomial's Cauchy, log-log and log-complement links, general power links, statsmodels
family objects, and exposure with a link other than the log."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from glm_cases import glm_frame, sm_family

import shardfit
from shardfit.data.memory import from_pandas

RTOL = 1e-9


def _linear_frame(rows: int = 120, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.uniform(1, 3, rows),
            "g": rng.choice(list("abcd"), rows),
            "h": rng.choice(list("pqr"), rows),
        }
    )
    frame["y"] = 1 + 0.5 * frame.x1 + (frame.g == "b") * 0.4 + rng.normal(size=rows)
    return frame


def _quiet_fit(model, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' domain and rank warnings
        return model.fit(**kwargs)


def test_cluster_f_test_uses_the_rank_of_the_restrictions_covariance() -> None:
    """Three clusters give a covariance of rank 2: statsmodels' F test (and the robust
    regression F) divides the Wald statistic by that rank, not by the 4 restrictions
    (shardfit gave F 1.24 where statsmodels gives 3.10)."""
    frame = _linear_frame()
    formula = "y ~ x1 + np.log(x2) + C(g)"
    ours = shardfit.ols(formula, from_pandas(frame, 2)).fit(
        backend="serial", cov_type="cluster", cov_kwds={"groups": "h"}
    )
    groups = pd.factorize(frame["h"])[0]
    theirs = _quiet_fit(smf.ols(formula, frame), cov_type="cluster", cov_kwds={"groups": groups})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels: "covariance ... not full rank"
        fvalue, f_pvalue = theirs.fvalue, theirs.f_pvalue
    np.testing.assert_allclose(ours.fvalue, fvalue, rtol=RTOL)
    np.testing.assert_allclose(ours.f_pvalue, f_pvalue, rtol=RTOL)
    hypothesis = "x1 = 0, np.log(x2) = 0, C(g)[T.b] = 0"
    mine, reference = ours.f_test(hypothesis), _quiet_fit_test(theirs, hypothesis)
    np.testing.assert_allclose(mine.fvalue, reference.fvalue, rtol=RTOL)
    np.testing.assert_allclose(mine.pvalue, reference.pvalue, rtol=RTOL)
    assert mine.df_num == reference.df_num == 2.0


def _quiet_fit_test(results, hypothesis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return results.f_test(hypothesis)


@pytest.mark.parametrize("use_f", [None, False, True])
def test_wald_test_equals_statsmodels(use_f) -> None:
    """``wald_test`` (missing before): F where the results use t, else chi2."""
    frame = glm_frame("poisson", rows=300, seed=4)
    formula = "y ~ x1 + x2 + C(g)"
    glm_ours = shardfit.poisson(formula, frame).fit(backend="serial")
    glm_theirs = smf.glm(formula, frame, family=sm.families.Poisson()).fit()
    frame["z"] = frame.x1 + np.random.default_rng(0).normal(size=len(frame))
    ols_ours = shardfit.ols("z ~ x1 + x2 + C(g)", frame).fit(backend="serial")
    ols_theirs = smf.ols("z ~ x1 + x2 + C(g)", frame).fit()
    for ours, theirs in ((glm_ours, glm_theirs), (ols_ours, ols_theirs)):
        mine = ours.wald_test("x1 = 0, x2 = 0", use_f=use_f)
        reference = theirs.wald_test("x1 = 0, x2 = 0", use_f=use_f, scalar=True)
        np.testing.assert_allclose(mine.statistic, reference.statistic, rtol=RTOL)
        np.testing.assert_allclose(mine.pvalue, reference.pvalue, rtol=RTOL)
        assert mine.distribution == reference.distribution


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "cluster"])
def test_use_t_equals_statsmodels(cov_type) -> None:
    """``fit(use_t=True)`` (a TypeError before) for GLMs and robust OLS: t with df_resid
    (G - 1 with clusters), and ``use_t=False`` for a nonrobust OLS: the normal."""
    frame = glm_frame("poisson", rows=300, seed=4)
    frame["cl"] = np.arange(len(frame)) % 7
    frame["z"] = frame.x1 + np.random.default_rng(0).normal(size=len(frame))
    kwds = {"groups": "cl"} if cov_type == "cluster" else None
    sm_kwds = {"groups": frame["cl"].to_numpy()} if cov_type == "cluster" else {}
    cases = [
        (
            shardfit.poisson("y ~ x1 + x2 + C(g)", frame),
            smf.glm("y ~ x1 + x2 + C(g)", frame, family=sm.families.Poisson()),
            True,
        ),
        (shardfit.ols("z ~ x1 + x2 + C(g)", frame), smf.ols("z ~ x1 + x2 + C(g)", frame), True),
        (shardfit.ols("z ~ x1 + x2 + C(g)", frame), smf.ols("z ~ x1 + x2 + C(g)", frame), False),
    ]
    for model, sm_model, use_t in cases:
        ours = model.fit(backend="serial", cov_type=cov_type, cov_kwds=kwds, use_t=use_t)
        theirs = sm_model.fit(cov_type=cov_type, cov_kwds=sm_kwds, use_t=use_t)
        names = list(ours.params.index)
        assert ours.use_t == theirs.use_t == use_t
        np.testing.assert_allclose(ours.pvalues, theirs.pvalues[names], rtol=1e-9)
        np.testing.assert_allclose(ours.conf_int(0.1), theirs.conf_int(0.1).loc[names], rtol=1e-9)
        mine, reference = ours.t_test("x1 = x2"), theirs.t_test("x1 = x2")
        np.testing.assert_allclose(np.ravel(mine.pvalue), np.ravel(reference.pvalue), rtol=1e-9)
        column = ours.summary().as_frame().columns[2]
        assert column == ("t" if use_t else "z")


@pytest.mark.parametrize(
    ("link", "sm_link"),
    [
        ("cauchy", sm.families.links.Cauchy),
        ("loglog", sm.families.links.LogLog),
        ("logc", sm.families.links.LogC),
    ],
)
def test_binomial_links_statsmodels_allows(link, sm_link) -> None:
    """statsmodels' binomial takes the Cauchy, log-log and log-complement links;
    shardfit refused them ("unknown link")."""
    frame = glm_frame("binomial", rows=600, seed=1)
    if link == "logc":
        rng = np.random.default_rng(1)
        p = 1 - 0.3 * np.exp(0.3 * frame.x1.clip(-2, 2))
        frame["y"] = (rng.uniform(size=len(frame)) < p).astype(float)
    ours = shardfit.glm("y ~ x1 + x2", from_pandas(frame, 2), family="binomial", link=link).fit(
        backend="serial", cov_type="HC0"
    )
    model = smf.glm("y ~ x1 + x2", frame, family=sm.families.Binomial(link=sm_link()))
    theirs = _quiet_fit(model, cov_type="HC0")
    for name in ("params", "bse"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-7)
    np.testing.assert_allclose(ours.llf, theirs.llf, rtol=1e-9)
    np.testing.assert_allclose(ours.deviance, theirs.deviance, rtol=1e-9)
    assert ours.iterations == theirs.fit_history["iteration"]
    new = frame.iloc[:25]
    np.testing.assert_allclose(ours.predict(new), theirs.predict(new), rtol=1e-9)


def test_power_link_results_predict_and_reload(tmp_path) -> None:
    """A Tweedie fit with a power link fitted, but its results could not rebuild the link
    ("unknown link 'power'"): predict, summary and a reloaded fit all failed."""
    frame = glm_frame("tweedie", rows=300, seed=1)
    family = shardfit.models.families.Tweedie(shardfit.models.links.Power(0.3), var_power=1.5)
    ours = shardfit.glm("y ~ x1 + x2", frame, family=family).fit(backend="serial")
    tweedie = sm.families.Tweedie(link=sm.families.links.Power(0.3), var_power=1.5)
    theirs = smf.glm("y ~ x1 + x2", frame, family=tweedie).fit()
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-9)
    np.testing.assert_allclose(ours.llf, theirs.llf, rtol=1e-9)
    new = frame.iloc[:10]
    np.testing.assert_allclose(ours.predict(new), theirs.predict(new), rtol=1e-9)
    assert "Power" in str(ours.summary())
    loaded = shardfit.load_results(ours.save(tmp_path / "fit.json"))
    np.testing.assert_allclose(loaded.predict(new), theirs.predict(new), rtol=1e-9)


@pytest.mark.parametrize(
    "theirs_family",
    [
        sm.families.NegativeBinomial(alpha=0.5),
        sm.families.Tweedie(var_power=1.3),
        sm.families.Gamma(link=sm.families.links.Log()),
        sm.families.Poisson(link=sm.families.links.Sqrt()),
    ],
    ids=["negbin", "tweedie", "gamma-log", "poisson-sqrt"],
)
def test_statsmodels_family_objects(theirs_family) -> None:
    """Code written for statsmodels passes its family objects (a TypeError before), to
    ``glm`` and to the array ``GLM``, which also takes ``alpha``/``var_power`` now."""
    frame = glm_frame("poisson", rows=300, seed=6)
    frame["y"] = frame["y"] + 0.5  # positive for the Gamma
    ours = shardfit.glm("y ~ x1 + x2", frame, family=theirs_family).fit(backend="serial")
    theirs = _quiet_fit(smf.glm("y ~ x1 + x2", frame, family=theirs_family))
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-9)
    np.testing.assert_allclose(ours.llf, theirs.llf, rtol=1e-9)
    X = sm.add_constant(frame[["x1", "x2"]])
    arrays = shardfit.GLM(frame["y"], X, theirs_family, npartitions=2).fit(backend="serial")
    np.testing.assert_allclose(arrays.params, theirs.params, rtol=1e-9)


def test_array_glm_takes_family_parameters() -> None:
    frame = glm_frame("negative_binomial", rows=300, seed=7)
    X = sm.add_constant(frame[["x1", "x2"]])
    ours = shardfit.GLM(frame["y"], X, "negative_binomial", alpha=0.5).fit(backend="serial")
    theirs = sm.GLM(frame["y"], X, sm.families.NegativeBinomial(alpha=0.5)).fit()
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-9)
    np.testing.assert_allclose(ours.llf, theirs.llf, rtol=1e-9)


def test_exposure_needs_the_log_link() -> None:
    """statsmodels refuses exposure with a link other than the log; shardfit fitted
    log(exposure) as an offset of an identity-link Poisson without a word."""
    frame = glm_frame("poisson", rows=100, seed=2)
    with pytest.raises(ValueError, match="exposure can only be used with the log link"):
        sm.GLM(
            frame["y"],
            sm.add_constant(frame["x1"]),
            sm.families.Poisson(sm.families.links.Identity()),
            exposure=frame["expo"],
        )
    with pytest.raises(ValueError, match=r"exposure='expo' needs the log link.*'identity' link"):
        shardfit.glm("y ~ x1", frame, family="poisson", link="identity", exposure="expo")
    with pytest.raises(ValueError, match="needs the log link"):
        shardfit.GLM(frame["y"], frame[["x1"]], "gamma", exposure=frame["expo"])


@pytest.mark.parametrize(
    ("family", "scale", "cov_type"),
    [
        ("poisson", "X2", "nonrobust"),  # quasi-Poisson
        ("gamma", "dev", "HC0"),
        ("binomial", 2.5, "nonrobust"),
        ("gaussian", "dev", "nonrobust"),
    ],
)
def test_scale_option_equals_statsmodels(family, scale, cov_type) -> None:
    """``fit(scale=...)`` (a TypeError before): the scale, covariance, log-likelihood
    and information criteria of statsmodels' ``GLM.fit(scale=...)``, iterations too."""
    frame = glm_frame(family, rows=300, seed=4)
    formula = "y ~ x1 + x2 + C(g)"
    ours = shardfit.glm(formula, from_pandas(frame, 3), family=family, weights="w").fit(
        backend="serial", scale=scale, cov_type=cov_type
    )
    model = smf.glm(formula, frame, family=sm_family(family), var_weights=frame["w"])
    theirs = _quiet_fit(model, scale=scale, cov_type=cov_type)
    names = list(ours.params.index)
    np.testing.assert_allclose(ours.params, theirs.params[names], rtol=1e-9)
    np.testing.assert_allclose(ours.bse, theirs.bse[names], rtol=1e-9)
    for name in ("scale", "llf", "aic"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-9)
    np.testing.assert_allclose(ours.bic, theirs.bic_llf, rtol=1e-9)
    assert ours.iterations == theirs.fit_history["iteration"]
    with pytest.raises(ValueError, match="'scale' parameter must be None, 'X2', 'dev'"):
        shardfit.glm(formula, frame, family=family).fit(backend="serial", scale="pearson")


def test_clear_errors_for_unknown_restriction_names_and_two_way_clusters() -> None:
    """An unknown name in a restriction gave formulaic's bare ``KeyError: 'xx'``; a
    two-way cluster request said only that a column name was needed."""
    frame = _linear_frame(rows=60)
    results = shardfit.ols("y ~ x1 + C(g)", frame).fit(backend="serial")
    with pytest.raises(ValueError, match=r"names 'xx', which is not a coefficient.*'x1'"):
        results.f_test("xx = 0")
    with pytest.raises(ValueError, match="names 'xx'"):
        results.t_test("x1 = xx")
    # OLS/WLS and GLMs take two-way clusters now (tests/models/test_hac_twoway_cluster.py,
    # test_glm_hac_twoway_cluster.py); more than two columns are refused by name.
    with pytest.raises(ValueError, match=r"give one column name, or two .* no more than two"):
        shardfit.glm("y ~ x1", frame).fit(
            backend="serial", cov_type="cluster", cov_kwds={"groups": ["g", "h", "x1"]}
        )


@pytest.mark.parametrize(
    ("family", "link", "offset"),
    [("gaussian", None, False), ("poisson", None, True), ("gamma", "log", True)],
)
def test_llnull_and_pseudo_rsquared_equal_statsmodels(family, link, offset) -> None:
    """``llnull`` and ``pseudo_rsquared`` (missing before; statsmodels' summary shows
    the Cox-Snell R2): the constant-only model's log-likelihood with the offset, at the
    fit's scale (the Gaussian's at its own concentrated scale)."""
    frame = glm_frame(family, link, rows=300, seed=5)
    extra = {"offset": "off"} if offset else {}
    ours = shardfit.glm(
        "y ~ x1 + x2 + C(g)", from_pandas(frame, 2), family=family, link=link, weights="w", **extra
    ).fit(backend="serial")
    model = smf.glm(
        "y ~ x1 + x2 + C(g)",
        frame,
        family=sm_family(family, link),
        var_weights=frame["w"],
        **({"offset": frame["off"]} if offset else {}),
    )
    theirs = _quiet_fit(model)
    np.testing.assert_allclose(ours.llnull, theirs.llnull, rtol=1e-10)
    for kind in ("cs", "mcf"):
        np.testing.assert_allclose(
            ours.pseudo_rsquared(kind), theirs.pseudo_rsquared(kind), rtol=1e-9
        )
    assert f"{theirs.pseudo_rsquared('cs'):.4g}" in str(ours.summary())
