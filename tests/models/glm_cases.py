"""Shared data and comparison helpers for the GLM tests (statsmodels is the reference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf

FORMULA = "y ~ x1 + x2 + I(x1 * x2) + C(g)"
#: Matched to relative 1e-7 (the issue's acceptance).
SCALARS = ("deviance", "pearson_chi2", "scale", "llf", "aic", "bic", "df_model", "df_resid")
VECTORS = ("params", "bse")

SM_LINKS = {
    "logit": sm.families.links.Logit,
    "probit": sm.families.links.Probit,
    "cloglog": sm.families.links.CLogLog,
    "cauchy": sm.families.links.Cauchy,
    "loglog": sm.families.links.LogLog,
    "logc": sm.families.links.LogC,
    "log": sm.families.links.Log,
    "identity": sm.families.links.Identity,
    "inverse": sm.families.links.InversePower,
    "inverse_squared": sm.families.links.InverseSquared,
    "sqrt": sm.families.links.Sqrt,
    "nbinom": sm.families.links.NegativeBinomial,
}

SM_FAMILIES = {
    "gaussian": sm.families.Gaussian,
    "binomial": sm.families.Binomial,
    "poisson": sm.families.Poisson,
    "gamma": sm.families.Gamma,
    "inverse_gaussian": sm.families.InverseGaussian,
    "negative_binomial": sm.families.NegativeBinomial,
    "tweedie": sm.families.Tweedie,
}


def sm_family(name: str, link: str | None = None, **params: float):
    """The statsmodels family of a shardfit family name."""
    cls = SM_FAMILIES[name]
    kwargs = dict(params)
    if link is not None:
        kwargs["link"] = SM_LINKS[link]()
    return cls(**kwargs)


def glm_frame(family: str, link: str | None = None, *, rows: int = 1500, seed: int = 0):
    """Predictors ``x1, x2, g``, weights ``w``, offset ``off``, exposure ``expo`` and a
    response ``y`` drawn from ``family`` with ``link``."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=rows)
    x2 = rng.uniform(-1, 1, size=rows)
    g = rng.choice(["a", "b", "c"], size=rows, p=[0.5, 0.3, 0.2])
    frame = pd.DataFrame({"x1": x1, "x2": x2, "g": g})
    frame["w"] = rng.uniform(0.5, 2.0, rows)
    frame["off"] = rng.uniform(-0.2, 0.2, rows)
    frame["expo"] = rng.uniform(0.5, 3.0, rows)
    level = (g == "b") * 0.2 - (g == "c") * 0.1
    eta = 0.3 * x1 - 0.2 * x2 + 0.1 * x1 * x2 + level
    if family == "gaussian":
        y = 1.0 + eta + rng.normal(scale=0.5, size=rows)
    elif family == "binomial":
        p = {"probit": 0.5 * (1 + np.tanh(0.8 * (0.2 + eta))), "cloglog": 1 - np.exp(-np.exp(eta))}
        prob = p.get(link or "logit", 1 / (1 + np.exp(-(0.2 + eta))))
        y = (rng.uniform(size=rows) < prob).astype(float)
    elif family == "poisson":
        y = rng.poisson(np.exp(0.5 + eta)).astype(float)
    elif family == "negative_binomial":
        mu = np.exp(0.5 + eta)
        y = rng.negative_binomial(2.0, 2.0 / (2.0 + mu)).astype(float)
    elif family == "gamma":
        mu = np.exp(0.5 + eta) if link == "log" else 1 / (1.0 + 0.3 * eta)
        y = rng.gamma(2.0, mu / 2.0)
    elif family == "inverse_gaussian":
        mu = 1 / np.sqrt(1.0 + 0.3 * eta)
        y = rng.wald(mu, 4.0)
    elif family == "tweedie":
        mu = np.exp(0.5 + eta)
        y = rng.gamma(2.0, mu / 1.4) * (rng.uniform(size=rows) < 0.7)
    else:
        raise ValueError(family)
    frame["y"] = y
    return frame


def sm_fit(
    frame,
    family,
    link=None,
    *,
    formula=FORMULA,
    weights=False,
    offset=False,
    exposure=False,
    cov_type="nonrobust",
    groups=None,
    **params,
):
    kwargs = {}
    if weights:
        kwargs["var_weights"] = frame["w"].to_numpy()
    if offset:
        kwargs["offset"] = frame["off"].to_numpy()
    if exposure:
        kwargs["exposure"] = frame["expo"].to_numpy()
    model = smf.glm(formula, frame, family=sm_family(family, link, **params), **kwargs)
    cov_kwds = {"groups": frame[groups].to_numpy()} if groups else None
    return model.fit(cov_type=cov_type, cov_kwds=cov_kwds)


LIKELIHOODS = ("llf", "aic", "bic")


def assert_matches(
    result, reference, *, rtol: float = 1e-7, iterations: bool = True, likelihood=None
) -> None:
    """params, bse, deviance, Pearson chi2, scale, llf, aic... to ``rtol``; the
    iteration count to +-1. ``likelihood``, another statsmodels fit, is the reference
    for ``llf``, ``aic`` and ``bic`` (a binomial of proportions: the two-column form)."""
    for name in VECTORS:
        theirs = getattr(reference, name)
        ours = getattr(result, name).loc[theirs.index].to_numpy()
        np.testing.assert_allclose(ours, theirs.to_numpy(), rtol=rtol, err_msg=name)
    for name in SCALARS:
        if likelihood is not None and name in LIKELIHOODS:
            np.testing.assert_allclose(
                getattr(result, name), getattr(likelihood, name), rtol=rtol, err_msg=name
            )
            continue
        np.testing.assert_allclose(
            getattr(result, name), getattr(reference, name), rtol=rtol, err_msg=name
        )
    if iterations:
        assert abs(result.iterations - reference.fit_history["iteration"]) <= 1


def two_column_binomial(reference, trials: np.ndarray):
    """statsmodels' binomial of ``(successes, failures)`` counts, the model of
    ``reference`` (proportions with the trial counts as ``var_weights``)."""
    model = reference.model
    successes = model.endog * trials
    endog = np.column_stack([successes, trials - successes])
    offset = getattr(model, "offset", None)
    # A family of its own: statsmodels' binomial keeps the trial counts of the data it
    # is initialized with, which would change the reference's lazily computed results.
    family = sm.families.Binomial(link=type(model.family.link)())
    return sm.GLM(endog, model.exog, family=family, offset=offset).fit()


def max_relative_error(result, reference) -> float:
    """Largest relative difference over params, bse and the scalars (for reports)."""
    worst = 0.0
    for name in VECTORS:
        theirs = getattr(reference, name)
        ours = getattr(result, name).loc[theirs.index].to_numpy()
        worst = max(worst, float(np.max(np.abs(ours - theirs) / np.abs(theirs))))
    for name in SCALARS:
        a, b = float(getattr(result, name)), float(getattr(reference, name))
        worst = max(worst, abs(a - b) / abs(b) if b else abs(a))
    return worst
