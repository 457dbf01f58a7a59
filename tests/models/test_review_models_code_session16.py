"""Code review (session 16) of the NB2, HAC/two-way cluster and freq_weights code.

- The HAC summary note left out ``use_correction``: a fit whose standard errors are
  ``sqrt(n / (n - k))`` times larger read the same as one without (statsmodels' note
  says "with/without small sample correction").
- A negative binomial results file was loaded with a ``rank`` that is not its design's
  column count (predictions take the first ``rank`` parameters as the coefficients;
  ``df_model``, aic and bic count it) or with ``alpha <= 0``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.errors import ReadError
from shardfit.results.negbin import NegativeBinomialResults


def _ar1_frame(n: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(16)
    e = np.zeros(n)
    for t in range(1, n):
        e[t] = 0.7 * e[t - 1] + rng.normal()
    x = rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": 1.0 + 0.5 * x + e})


@pytest.mark.parametrize("correction", [True, False])
def test_hac_summary_says_whether_the_small_sample_correction_is_applied(correction):
    df = _ar1_frame()
    kwds = {"maxlags": 3, "use_correction": correction}
    res = shardfit.ols("y ~ x", df).fit(backend="serial", cov_type="HAC", cov_kwds=kwds)
    ref = smf.ols("y ~ x", df).fit(cov_type="HAC", cov_kwds=kwds)
    np.testing.assert_allclose(res.bse.to_numpy(), ref.bse.to_numpy(), rtol=1e-10)
    word = "with" if correction else "without"
    assert f"{word} small sample correction" in str(ref.summary())
    squeezed = "".join(str(res.summary()).split())  # the note wraps anywhere
    assert f"{word}small-samplecorrection" in squeezed


def _saved_negbin(tmp_path) -> tuple[dict, str]:
    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(size=n)
    mu = np.exp(0.2 + 0.4 * x)
    df = pd.DataFrame({"x": x, "y": rng.negative_binomial(2.0, 1 / (1 + 0.5 * mu))})
    res = shardfit.negativebinomial("y ~ x", df).fit(backend="serial")
    ref = smf.negativebinomial("y ~ x", df).fit(disp=0, method="newton", maxiter=100)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params.to_numpy(), rtol=1e-7)
    assert res.df_model == ref.df_model == 1.0
    path = tmp_path / "nb.json"
    res.save(path)
    assert NegativeBinomialResults.load(path).aic == pytest.approx(ref.aic, rel=1e-10)
    return json.loads(path.read_text()), str(path)


def test_negbin_results_file_with_a_rank_other_than_its_design_columns_is_refused(tmp_path):
    document, path = _saved_negbin(tmp_path)
    document["fields"]["rank"] = 3  # names are Intercept, x, alpha: 2 design columns
    with open(path, "w") as handle:
        json.dump(document, handle)
    with pytest.raises(ReadError, match="field 'rank' is 3"):
        NegativeBinomialResults.load(path)


def test_negbin_results_file_with_a_non_positive_alpha_is_refused(tmp_path):
    document, path = _saved_negbin(tmp_path)
    document["fields"]["params_array"]["__ndarray__"]["data"][-1] = -0.5
    with open(path, "w") as handle:
        json.dump(document, handle)
    with pytest.raises(ReadError, match=r"alpha = -0\.5"):
        NegativeBinomialResults.load(path)
