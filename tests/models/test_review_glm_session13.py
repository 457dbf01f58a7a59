"""Review (session 13) of the GLM: start_params' column order, overflow and log warnings.

References: statsmodels 0.15's GLM and patsy's design columns, in memory.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import patsy
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from formulaic import model_matrix
from glm_cases import SM_FAMILIES, SM_LINKS, sm_family

import shardfit
from shardfit.design import formula as formula_module
from shardfit.design.formula import patsy_column_order
from shardfit.models.families import get_family
from shardfit.models.irls import PerfectSeparationError, PerfectSeparationWarning
from shardfit.models.links import LINKS

PARAMS = {"negative_binomial": {"alpha": 0.7}, "tweedie": {"var_power": 1.5}}


def _sm_family(name: str, link: str):
    return sm_family(name, link, **PARAMS.get(name, {}))


def _fit(formula: str, frame: pd.DataFrame, family: str, link: str | None = None, **fit):
    model = shardfit.glm(formula, frame, family=family, link=link, **PARAMS.get(family, {}))
    return model.fit(backend="serial", **fit)


# -- 1. start_params: formulaic's column order against statsmodels' (patsy's) ----------
ORDER_FORMULAS = [
    "y ~ x1:x2 + x1",
    "y ~ x1 + C(a)",
    "y ~ C(a):x1 + x2",
    "y ~ x1*C(a)",
    "y ~ C(a):C(b)",
    "y ~ C(a)*C(b) + x1",
    "y ~ x2:x1 + C(b):x1 + x1 + C(a)",
    "y ~ 0 + C(a) + x1",
    "y ~ C(b) + x1:C(a)",
    "y ~ a + x1 + np.log(x2) + I(x1*x2)",
    "y ~ x1 + x1:C(a) + C(a):C(b):x2 + x2 + C(b)",
    "y ~ x1 + x2 + x1",
]


def _order_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "y": rng.normal(size=24),
            "x1": rng.normal(size=24),
            "x2": rng.uniform(1, 2, size=24),
            "a": list("pqr") * 8,
            "b": list("uv") * 12,
        }
    )


def _patsy_order_names(formula: str, frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    spec = model_matrix(formula, frame).rhs.model_spec
    names = list(spec.column_names)
    order = patsy_column_order(spec, formula)
    assert order is not None
    theirs = patsy.dmatrices(formula, frame, return_type="dataframe")[1].columns
    squash = [name.replace(" ", "") for name in theirs]
    return [names[i].replace(" ", "") for i in order], squash


@pytest.mark.parametrize("formula", [*ORDER_FORMULAS, "y ~ (x1 + x2 + C(a))**2"])
def test_patsy_column_order_is_patsys(formula: str) -> None:
    ours, theirs = _patsy_order_names(formula, _order_frame())
    assert ours == theirs


@pytest.mark.parametrize("formula", ORDER_FORMULAS)
def test_patsy_column_order_without_patsy(formula: str, monkeypatch) -> None:
    # Without patsy, formulaic's unsorted parse gives the written order.
    monkeypatch.setattr(formula_module, "_patsy_terms", lambda formula: None)
    ours, theirs = _patsy_order_names(formula, _order_frame())
    assert ours == theirs


def _poisson_frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 600
    x1 = rng.uniform(-1, 1, n)
    x2 = rng.uniform(-1, 1, n)
    g = rng.choice(["a", "b", "c"], n)
    eta = 0.4 + 0.3 * x1 - 0.2 * x2 + 0.25 * x1 * x2 + 0.2 * (g == "b") - 0.1 * (g == "c")
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": rng.poisson(np.exp(eta)).astype(float)})


ORDER_FORMULA = "y ~ x1:x2 + x1 + C(g)"  # patsy: Intercept, C(g)..., x1:x2, x1


def test_start_params_series_in_statsmodels_order_gives_statsmodels_fit() -> None:
    frame = _poisson_frame()
    model = smf.glm(ORDER_FORMULA, frame, family=sm.families.Poisson())
    start = model.fit().params * 0.5  # statsmodels' (patsy's) order, named
    ref = model.fit(start_params=start.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a named start is unambiguous: no warning
        ours = _fit(ORDER_FORMULA, frame, "poisson", start_params=start)
    assert list(ours.params.index) != list(ref.params.index)  # the orders do differ
    assert ours.fit_history["iteration"] == ref.fit_history["iteration"]
    np.testing.assert_allclose(ours.params[ref.params.index], ref.params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-12)


def test_start_params_array_warns_when_statsmodels_orders_differently() -> None:
    frame = _poisson_frame()
    start = smf.glm(ORDER_FORMULA, frame, family=sm.families.Poisson()).fit().params * 0.5
    with pytest.warns(UserWarning, match="Pass a pandas Series") as record:
        _fit(ORDER_FORMULA, frame, "poisson", start_params=start.to_numpy())
    message = str(record[0].message)
    # both orders, named
    assert "['Intercept', 'x1', 'C(g)[T.b]', 'C(g)[T.c]', 'x1:x2']" in message
    assert "['Intercept', 'C(g)[T.b]', 'C(g)[T.c]', 'x1:x2', 'x1']" in message


def test_start_params_array_is_silent_when_the_orders_agree() -> None:
    frame = _poisson_frame()
    formula = "y ~ C(g) + x1 + x1:x2"  # formulaic and patsy agree here
    model = smf.glm(formula, frame, family=sm.families.Poisson())
    start = model.fit().params * 0.5
    ref = model.fit(start_params=start.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = _fit(formula, frame, "poisson", start_params=start.to_numpy())
    assert ours.fit_history["iteration"] == ref.fit_history["iteration"]
    np.testing.assert_allclose(ours.params[ref.params.index], ref.params, rtol=0, atol=1e-10)


# -- 2. separation under the (complementary) log-log links: no overflow warnings -------
def _separated() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=300)
    return pd.DataFrame({"x": x, "y": (x > 0.3).astype(float)})


@pytest.mark.parametrize("link", ["cloglog", "loglog"])
def test_separation_gives_only_shardfits_warning(link: str) -> None:
    frame = _separated()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = smf.glm("y ~ x", frame, family=_sm_family("binomial", link)).fit()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ours = _fit("y ~ x", frame, "binomial", link)
    # old code: NumPy's "overflow encountered in exp" from the link's inverse too
    assert [w.category for w in record] == [PerfectSeparationWarning]
    assert ours.fit_history["iteration"] == ref.fit_history["iteration"]
    np.testing.assert_allclose(ours.params[ref.params.index], ref.params, rtol=1e-8)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("link", ["cloglog", "loglog"])
def test_separation_raise_has_no_overflow_warning(link: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(PerfectSeparationError):
            _fit("y ~ x", _separated(), "binomial", link, separation="raise")


@pytest.mark.parametrize("link", ["cloglog", "loglog"])
def test_loglog_links_have_their_exact_limits_silently(link: str) -> None:
    eta = np.array([-800.0, -50.0, 0.0, 50.0, 800.0])
    theirs = SM_LINKS[link]()
    ours = LINKS[link]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = theirs.inverse(eta), theirs.inverse_deriv(eta)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = ours.inverse(eta), ours.inverse_deriv(eta)
    np.testing.assert_allclose(got[0], expected[0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-13, atol=0)


# -- 3. Poisson with the identity link: log warnings ------------------------------------
def _identity_frame(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, 300)
    return pd.DataFrame({"x": x, "y": rng.poisson(0.05 + 2 * x).astype(float)})


def _sm_identity(frame: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return smf.glm("y ~ x", frame, family=_sm_family("poisson", "identity")).fit()


def test_poisson_identity_zero_counts_positive_means_is_silent() -> None:
    frame = _identity_frame(0)
    ref = _sm_identity(frame)
    assert (frame.y == 0).mean() > 0.3 and ref.mu.min() > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = _fit("y ~ x", frame, "poisson", "identity")
    assert ours.fit_history["iteration"] == ref.fit_history["iteration"]
    np.testing.assert_allclose(ours.params[ref.params.index], ref.params, rtol=1e-10)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-12)
    np.testing.assert_allclose(ours.llf, ref.llf, rtol=1e-12)


def test_poisson_identity_negative_means_warn_once_in_shardfits_words() -> None:
    # statsmodels: llf = nan (log of a negative mean), one raw NumPy warning; shardfit
    # evaluated the log-likelihood in every IRLS pass expected to be the last and
    # emitted 40 "invalid value encountered in log" warnings.
    frame = _identity_frame(1)
    ref = _sm_identity(frame)
    assert ref.mu.min() < 0 and np.isnan(ref.llf)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ours = _fit("y ~ x", frame, "poisson", "identity")
    assert len(record) == 1
    assert "log-likelihood is nan" in str(record[0].message)
    assert "'identity' link" in str(record[0].message)
    assert np.isnan(ours.llf)
    assert ours.fit_history["iteration"] == ref.fit_history["iteration"]
    np.testing.assert_allclose(ours.params[ref.params.index], ref.params, rtol=1e-10)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-12)


# -- 4. every family with every link on well-behaved data: no warnings -----------------
def _family_frame(family: str, link: str) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 800
    x1 = rng.uniform(-1, 1, n)
    x2 = rng.uniform(-1, 1, n)
    g = rng.choice(list("abc"), n)
    lin = 0.3 * x1 - 0.2 * x2 + 0.1 * (g == "b")
    if family == "binomial":  # means in (0.2, 0.5): inside every link's range
        y = (rng.uniform(size=n) < 0.35 + 0.15 * lin).astype(float)
    elif family == "negative_binomial":
        mu = 0.3 + 0.1 * lin if link == "cloglog" else 3 + lin  # cloglog: means < 1
        y = rng.negative_binomial(1 / 0.7, 1 / (1 + 0.7 * mu)).astype(float)
    elif family == "poisson":
        y = rng.poisson(3 + lin).astype(float)
    elif family == "tweedie":
        y = rng.gamma(2.0, (2 + lin) / 1.4) * (rng.uniform(size=n) < 0.7)
    elif family == "gaussian":
        y = 2 + lin + rng.normal(scale=0.3, size=n)
    elif family == "gamma":
        y = rng.gamma(4.0, (2 + lin) / 4.0)
    else:
        y = rng.wald(1.2 + 0.3 * lin, 4.0)
    return pd.DataFrame({"x1": x1, "x2": x2, "g": g, "y": y, "w": rng.uniform(0.5, 2, n)})


def _combinations() -> list[tuple[str, str]]:
    out = []
    for family in SM_FAMILIES:
        valid = get_family(family, **PARAMS.get(family, {})).valid_links
        for link, cls in LINKS.items():
            # statsmodels' Tweedie and negative binomial fail on inverse_squared
            # (infinite weights) here
            if link == "inverse_power" or (
                link == "inverse_squared" and family in ("tweedie", "negative_binomial")
            ):
                continue
            if issubclass(cls, valid):
                out.append((family, link))
    return out


@pytest.mark.parametrize(("family", "link"), _combinations())
def test_family_link_fits_silently_as_statsmodels(family: str, link: str) -> None:
    frame = _family_frame(family, link)
    formula = "y ~ x1 + x2 + C(g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' DomainWarning for some links
        ref = smf.glm(formula, frame, family=_sm_family(family, link), var_weights=frame.w).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = shardfit.glm(
            formula, frame, family=family, link=link, weights="w", **PARAMS.get(family, {})
        ).fit(backend="serial")
    assert ours.fit_history["iteration"] == ref.fit_history["iteration"]
    np.testing.assert_allclose(ours.params[ref.params.index], ref.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.deviance, ref.deviance, rtol=1e-8)
    np.testing.assert_allclose(ours.llf, ref.llf, rtol=1e-8)
