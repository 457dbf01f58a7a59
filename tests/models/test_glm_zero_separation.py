"""Count models whose zeros are separated (a level whose responses are all 0): the
maximum-likelihood estimate does not exist, the level's coefficient runs off towards
minus infinity until IRLS's deviance stops moving. statsmodels reports that point
silently (here -25.1 with a standard error of 1.3e4); shardfit reports the same numbers
and says which coefficient diverges, as it does for a separated binomial."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.models.glm import PerfectSeparationError, PerfectSeparationWarning


def _counts(zero_level: bool) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 300
    g = rng.choice(["a", "b", "c"], n)
    x = rng.normal(size=n)
    y = rng.poisson(np.exp(0.5 + 0.3 * x)).astype(float)
    if zero_level:
        y[g == "c"] = 0.0
    return pd.DataFrame({"y": y, "x": x, "g": g})


@pytest.mark.parametrize(
    ("family", "reference"),
    [
        ("poisson", sm.families.Poisson()),
        ("negativebinomial", sm.families.NegativeBinomial(alpha=0.5)),
    ],
)
def test_a_level_of_zeros_warns_naming_it(family, reference) -> None:
    frame = _counts(zero_level=True)
    expected = smf.glm("y ~ x + C(g)", frame, family=reference).fit()
    options = {"alpha": 0.5} if family == "negativebinomial" else {}
    model = shardfit.glm("y ~ x + C(g)", from_pandas(frame, 3), family=family, **options)
    with pytest.warns(PerfectSeparationWarning, match=r"fitted means .* numerically 0") as got:
        results = model.fit(backend="serial")
    message = str(got[0].message)
    assert "['C(g)[T.c]'] diverge" in message and "of 300 fitted means" in message
    assert results.separated_terms == ("C(g)[T.c]",)
    assert "fitted means are numerically 0" in str(results.summary())
    # The numbers are still statsmodels' (the point where IRLS stops).
    assert expected.params["C(g)[T.c]"] < -20
    np.testing.assert_allclose(results.params[expected.params.index], expected.params, rtol=1e-7)
    np.testing.assert_allclose(results.bse[expected.bse.index], expected.bse, rtol=1e-6)
    assert results.iterations == expected.fit_history["iteration"]
    with pytest.raises(PerfectSeparationError, match=r"C\(g\)\[T\.c\]"):
        model.fit(backend="serial", separation="raise")


def test_small_means_without_separation_do_not_warn() -> None:
    """Many zeros from small (not vanishing) means: no warning."""
    frame = _counts(zero_level=False)
    frame["y"] = np.random.default_rng(1).poisson(np.exp(-3 + 0.3 * frame["x"])).astype(float)
    assert (frame["y"] == 0).mean() > 0.9
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        results = shardfit.poisson("y ~ x + C(g)", from_pandas(frame, 3)).fit(backend="serial")
    assert results.separated_terms == ()
