"""The negative binomial's own link, ``log(mu / (mu + 1/alpha))`` (statsmodels'
``links.NegativeBinomial``), by object and by name, against statsmodels' GLM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit


@pytest.fixture(scope="module")
def counts() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    X = sm.add_constant(rng.standard_normal((400, 2)))
    y = rng.negative_binomial(2, 0.5, 400).astype(float)
    return y, X


@pytest.mark.parametrize("link_alpha", [1.0, 0.5])
def test_statsmodels_link_object_equals_statsmodels(counts, link_alpha) -> None:
    y, X = counts
    link = sm.families.links.NegativeBinomial(alpha=link_alpha)
    family = sm.families.NegativeBinomial(alpha=0.7, link=link)
    ref = sm.GLM(y, X, family=family).fit()
    fit = shardfit.GLM(y, X, family=family, npartitions=3).fit(backend="serial")
    np.testing.assert_allclose(np.asarray(fit.params), ref.params, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(fit.bse), ref.bse, rtol=1e-10)
    assert fit.llf == pytest.approx(ref.llf, rel=1e-12)
    assert fit.deviance == pytest.approx(ref.deviance, rel=1e-12)
    assert abs(fit.iterations - ref.fit_history["iteration"]) <= 1


def test_link_by_name_survives_save_and_load(counts, tmp_path) -> None:
    y, X = counts
    frame = pd.DataFrame({"y": y, "a": X[:, 1], "b": X[:, 2]})
    # statsmodels' class name also names the family
    fit = shardfit.glm("y ~ a + b", frame, family="NegativeBinomial", link="nbinom(0.5)").fit(
        backend="serial"
    )
    link = sm.families.links.NegativeBinomial(alpha=0.5)
    ref = sm.GLM(y, X, family=sm.families.NegativeBinomial(link=link)).fit()
    np.testing.assert_allclose(np.asarray(fit.params), ref.params, rtol=1e-10)
    loaded = shardfit.load_results(fit.save(tmp_path / "nb.json"))
    assert loaded.family.link == shardfit.get_family("negative_binomial", "nbinom(0.5)").link
    np.testing.assert_allclose(
        np.asarray(loaded.predict(frame.head(5))), ref.predict(X[:5]), rtol=1e-12
    )


def test_nbinom_link_alpha_must_be_positive() -> None:
    with pytest.raises(ValueError, match="nbinom link must be a float in"):
        shardfit.get_family("negative_binomial", "nbinom(-1)")
