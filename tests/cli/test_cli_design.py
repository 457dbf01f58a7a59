"""``shardfit design`` then ``shardfit fit STORE``, checked against statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from shardfit.cli.main import main
from shardfit.results.io import load_results


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
            "t": rng.uniform(1.0, 3.0, size=n),
        }
    )
    frame["y"] = 2.0 + frame.x + rng.normal(size=n)
    frame["count"] = rng.poisson(frame.t * np.exp(0.1 + 0.4 * frame.x))
    frame.loc[9, "x"] = np.nan
    path = tmp_path_factory.mktemp("design") / "d.csv"
    frame.to_csv(path, index=False)
    return path, frame.dropna()


def test_design_then_fit_the_store(data, tmp_path, capsys) -> None:
    path, kept = data
    store = tmp_path / "store"
    argv = ["design", str(path), "y ~ x + C(g)", "--out", str(store), "--weights", "w"]
    assert main([*argv, "--backend", "serial"]) == 0
    assert "stored 599 rows x 4 design columns" in capsys.readouterr().out
    saved = tmp_path / "wls.json"
    assert main(["fit", str(store), "--backend", "serial", "--out", str(saved)]) == 0
    assert "WLS Regression Results" in capsys.readouterr().out
    expected = smf.wls("y ~ x + C(g)", kept, weights=kept.w).fit()
    result = load_results(saved)
    names = list(result.params.index)
    np.testing.assert_allclose(result.params, expected.params[names], rtol=1e-10)
    np.testing.assert_allclose(result.bse, expected.bse[names], rtol=1e-10)


def test_a_poisson_glm_from_a_store_with_exposure(data, tmp_path, capsys) -> None:
    path, kept = data
    store = tmp_path / "store"
    argv = ["design", str(path), "count ~ x", "--out", str(store), "--exposure", "t"]
    assert main([*argv, "--backend", "serial"]) == 0
    saved = tmp_path / "glm.json"
    fit = ["fit", str(store), "--family", "poisson", "--backend", "serial", "--out", str(saved)]
    assert main(fit) == 0
    expected = smf.glm("count ~ x", kept, family=sm.families.Poisson(), exposure=kept.t).fit()
    result = load_results(saved)
    np.testing.assert_allclose(result.params, expected.params[result.params.index], rtol=1e-9)
    np.testing.assert_allclose(result.deviance, expected.deviance, rtol=1e-9)


def test_usage_errors(data, tmp_path, capsys) -> None:
    path, _ = data
    assert main(["fit", str(path), "--backend", "serial"]) == 2
    assert "FORMULA is missing" in capsys.readouterr().err
    store = tmp_path / "store"
    assert main(["design", str(path), "y ~ x", "--out", str(store), "--backend", "serial"]) == 0
    capsys.readouterr()
    assert main(["fit", str(store), "--weights", "w", "--backend", "serial"]) == 2
    assert "--weights: a design store holds its own columns" in capsys.readouterr().err
    assert main(["design", str(path), "y ~ x", "--out", str(store)]) == 2
    assert "new or empty folder" in capsys.readouterr().err
