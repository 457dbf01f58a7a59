"""Review of ``GLMResults.get_margeff`` against statsmodels (session 16).

Each test pins a bug found by comparing with statsmodels' discrete models in memory:

- effects over rows other than the fit's (statsmodels' ``atexog`` array): a dummy
  constant in those rows (a subgroup) lost its effect, as the constant columns were
  found from the rows read rather than from the fit;
- a fit with an offset: statsmodels refuses its margins, shardfit returned effects at
  offset 0;
- a constant-only model: an empty result whose ``summary()`` raised ``TypeError``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit

OPTIONS = {"backend": "serial", "tol": 1e-14, "maxiter": 100}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(16)
    n = 300
    df = pd.DataFrame(
        {
            "z": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "d": rng.integers(0, 2, size=n).astype(float),
            "o": rng.normal(scale=0.2, size=n),
        }
    )
    eta = -0.2 + 0.3 * df.z + 0.4 * (df.g == "b") + 0.5 * df.d
    df["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    df["c"] = rng.poisson(np.exp(0.1 + 0.3 * df.z + df.o)).astype(float)
    return df


def test_subgroup_rows_keep_the_effects_of_their_constant_dummies(frame):
    """statsmodels' ``get_margeff(atexog=X_subgroup)`` reports every non-constant
    column of the fit's design; the old code dropped C(g)[T.b] (all 1) and C(g)[T.c]
    (all 0) in the rows with g == "b" (0.1947 and -0.0204 missing)."""
    formula = "y ~ z + C(g) + d"
    theirs = smf.logit(formula, frame).fit(disp=0, tol=1e-12)
    ours = shardfit.logit(formula, frame).fit(**OPTIONS)
    rows = (frame["g"] == "b").to_numpy()
    for at in ("overall", "mean"):
        with pytest.warns(UserWarning, match="dummy and count columns are found"):
            margins = ours.get_margeff(at=at, data=frame[rows], backend="serial")
        reference = theirs.get_margeff(at=at, atexog=theirs.model.exog[rows]).summary_frame()
        assert sorted(margins.names) == sorted(reference.index)
        reference = reference.reindex(list(margins.names))
        np.testing.assert_allclose(margins.margeff, reference["dy/dx"], rtol=1e-7)
        np.testing.assert_allclose(margins.margeff_se, reference["Std. Err."], rtol=1e-6)
        assert margins.nobs == rows.sum()


def test_fit_with_an_offset_is_refused_as_statsmodels(frame):
    """statsmodels: NotImplementedError("Margins with offset are not available"); the
    old code returned effects at offset 0. with_offset=True stays: NumPy closed form
    with statsmodels' estimates (dy/dx_j = mean(mu) b_j, mu = exp(x'b + o))."""
    theirs = smf.poisson("c ~ z + d", frame, offset=frame["o"]).fit(disp=0, tol=1e-12)
    with pytest.raises(NotImplementedError, match="offset"):
        theirs.get_margeff()
    ours = shardfit.poisson("c ~ z + d", frame, offset="o").fit(**OPTIONS)
    for at in ("overall", "mean"):
        with pytest.raises(NotImplementedError, match="with_offset=True"):
            ours.get_margeff(at=at, data=frame, backend="serial")
    names = list(ours.names)
    X = pd.DataFrame(theirs.model.exog, columns=theirs.model.exog_names)[names].to_numpy()
    b = theirs.params[names].to_numpy()
    mu = np.exp(X @ b + frame["o"].to_numpy())
    margins = ours.get_margeff(with_offset=True, data=frame, backend="serial")
    keep = [j for j, name in enumerate(names) if name != "Intercept"]
    np.testing.assert_allclose(margins.margeff, (mu.mean() * b)[keep], rtol=1e-7)


def test_constant_only_model_is_refused_clearly(frame):
    """statsmodels fails on it (a pandas shape ValueError); the old code returned no
    effects whose summary() raised TypeError."""
    with pytest.raises(ValueError):
        smf.logit("y ~ 1", frame).fit(disp=0).get_margeff().summary_frame()
    ours = shardfit.logit("y ~ 1", frame).fit(**OPTIONS)
    with pytest.raises(ValueError, match="no non-constant design column"):
        ours.get_margeff(data=frame, backend="serial")
