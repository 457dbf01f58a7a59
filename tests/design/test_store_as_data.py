"""A design store is data: ``predict``, ``get_prediction``, ``resid`` and ``influence``
take the store itself, its ``store.X``, its folder or its source.

Before, ``fit.predict(store)`` and ``fit.resid(store)`` raised a TypeError, and a GLM
fitted with ``offset=store.offset`` could not predict from the store by any route
(``store.source()`` and ``shardfit predict fit.json STORE`` said a fit on arrays with an
offset predicts on arrays only), though the store holds the offset it was fitted with.

References: statsmodels' GLM and OLS fitted on the same rows in memory, their
``predict``, ``get_prediction``, ``resid_*`` and ``get_influence()`` on the frame.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from design_cases import parquet_parts, quiet

import shardfit
from shardfit.design.store import write_design
from shardfit.errors import DesignError

FORMULA = "y ~ x + C(g)"
NO_X = [4, 77, 401]  # rows the store drops (a predictor is missing)


def _frame(n: int = 700, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "t": rng.uniform(0.5, 3.0, n),
            "g": rng.choice(["a", "b", "c"], n),
        }
    )
    frame["y"] = rng.poisson(np.exp(0.2 + 0.3 * frame.x + 0.4 * (frame.g == "c")) * frame.t)
    frame["y"] = frame["y"].astype(float)
    frame.loc[NO_X, "x"] = np.nan
    return frame


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    folder = tmp_path_factory.mktemp("store_as_data")
    frame = _frame()
    files = parquet_parts(frame, folder / "data", 3)
    store = write_design(FORMULA, files, folder / "store", exposure="t", backend="serial")
    fit = shardfit.GLM(store.y, store.X, family="poisson", offset=store.offset).fit(
        backend="serial"
    )
    complete = frame.dropna()
    reference = smf.glm(FORMULA, complete, family=sm.families.Poisson(), exposure=complete.t).fit()
    return frame, store, fit, reference, folder


def test_a_store_fit_with_an_offset_predicts_from_the_store_as_statsmodels(stored):
    frame, store, fit, reference, _ = stored
    params = pd.Series(np.asarray(fit.params), index=store.columns)
    np.testing.assert_allclose(params[reference.params.index], reference.params, rtol=1e-10)
    expected = np.asarray(reference.predict(frame, exposure=frame.t))  # NaN where x is
    assert np.isnan(expected[NO_X]).all()
    for data in (store, store.X, store.source(), str(store.path)):
        got = quiet(fit.predict, data, backend="serial")
        np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)
    # offset=store.offset, as the fit was given it, is the offset the store holds.
    for data in (store.X, str(store.path)):
        got = quiet(fit.predict, data, offset=store.offset, backend="serial")
        np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)
    linear = quiet(fit.predict, store, which="linear", backend="serial")
    np.testing.assert_allclose(linear, np.log(expected), rtol=1e-10, atol=1e-12, equal_nan=True)


def test_prediction_intervals_residuals_and_influence_from_the_store(stored):
    frame, store, fit, reference, _ = stored
    kept = np.setdiff1d(np.arange(len(frame)), NO_X)
    intervals = quiet(fit.get_prediction, store, backend="serial").summary_frame()
    expected = reference.get_prediction(frame.dropna(), exposure=frame.dropna().t)
    expected = expected.summary_frame()
    assert len(intervals) == len(kept)  # the rows with a prediction
    for column in ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper"):
        np.testing.assert_allclose(intervals[column], expected[column], rtol=1e-9)
    deviance = quiet(fit.resid, store, kind="deviance", backend="serial")
    np.testing.assert_allclose(
        np.asarray(deviance)[kept], reference.resid_deviance, rtol=1e-9, atol=1e-12
    )
    cooks = quiet(fit.influence, store, kind="cooks", backend="serial")
    np.testing.assert_allclose(
        np.asarray(cooks)[kept], reference.get_influence().cooks_distance[0], rtol=1e-8
    )


def test_the_cli_predicts_a_store_fit_with_an_offset_from_the_store(stored, tmp_path):
    frame, store, fit, reference, _ = stored
    saved = tmp_path / "fit.json"
    fit.save(saved)
    out = tmp_path / "predictions"
    command = ["predict", str(saved), str(store.path), "--out", str(out), "--backend", "serial"]
    done = subprocess.run(
        [sys.executable, "-m", "shardfit", *command],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = pd.read_parquet(out).set_index("row")["predicted"]
    kept = np.setdiff1d(np.arange(len(frame)), NO_X)
    assert list(written.index) == list(kept)  # numbered as the source's rows
    np.testing.assert_allclose(written, reference.fittedvalues, rtol=1e-10)


def test_an_ols_store_fit_predicts_from_the_store_itself(stored):
    frame, store, _, _, _ = stored
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    reference = smf.ols(FORMULA, frame.dropna()).fit()
    expected = np.asarray(reference.predict(frame))
    for data in (store, store.X):
        got = quiet(fit.predict, data, backend="serial")
        np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)
    resid = quiet(fit.resid, store, backend="serial")
    kept = np.setdiff1d(np.arange(len(frame)), NO_X)
    np.testing.assert_allclose(np.asarray(resid)[kept], reference.resid, atol=1e-10)


def test_an_offset_the_store_lacks_or_given_twice_is_refused(stored, tmp_path):
    frame, store, fit, _, _ = stored
    # The same design columns, written without the exposure.
    plain = write_design(FORMULA, frame, tmp_path / "no_offset", backend="serial")
    assert plain.columns == store.columns and not plain.has_offset
    with pytest.raises(DesignError, match=r"'__offset__'.*no_offset lacks"):
        fit.predict(plain, backend="serial")
    with pytest.raises(ValueError, match="offset= go"):
        fit.predict(store, offset=np.zeros(len(frame)), backend="serial")
    with pytest.raises(TypeError, match="design store"):
        fit.predict(object(), backend="serial")
