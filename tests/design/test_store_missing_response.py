"""A design store keeps the rows missing only their response, for predictions.

statsmodels users predict the rows whose outcome is missing. Predicting from the raw
data gives them a value (predict reads no response); a store dropped them, so
predictions from it had none. The store now keeps them with a null response: fits from
it drop them exactly as fits from the data do (same nobs, same rows dropped for
missing values), and predictions from it give them a value.

References: statsmodels fits (missing="drop") on the frame in memory, its ``predict``
on the frame's rows with complete predictors, and fits from the raw data.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import statsmodels.api as sm
import statsmodels.formula.api as smf
from design_cases import parquet_parts, quiet

import shardfit
from shardfit.design.store import MANIFEST, open_design, write_design

FORMULA = "y ~ x + C(g) + np.log(z)"
NO_Y = [3, 50, 51, 620, 1199]  # the response alone is missing
NO_X = [7, 700]  # a predictor alone is missing
BOTH = [90, 1100]  # both


def _frame(n: int = 1200, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "z": rng.uniform(0.5, 3.0, size=n),
        }
    )
    eta = 0.3 + 0.4 * frame["x"] + 0.5 * (frame["g"] == "b") + 0.2 * np.log(frame["z"])
    frame["y"] = rng.poisson(np.exp(eta)).astype(float)
    frame.loc[NO_Y + BOTH, "y"] = np.nan
    frame.loc[NO_X + BOTH, "x"] = np.nan
    return frame


def test_fits_from_a_store_with_missing_responses_equal_statsmodels_and_the_data(tmp_path):
    frame = _frame()
    files = parquet_parts(frame, tmp_path / "data", 2)
    store = write_design(FORMULA, files, tmp_path / "store", backend="serial")
    # The five rows missing only y are stored (with a null y), the four others dropped.
    assert store.rows_written == len(frame) - len(NO_X) - len(BOTH)
    assert store.rows_without_response == len(NO_Y)
    assert sum(store.part_without_response) == len(NO_Y)
    assert store.rows_dropped == {"missing": len(NO_X) + len(BOTH)}
    y = store.y.to_pandas()[store.response]  # indexed by source row
    assert list(y.index[y.isna()]) == NO_Y

    reference = smf.ols(FORMULA, frame, missing="drop").fit()
    from_store = shardfit.OLS(store.y, store.X).fit(backend="serial")
    from_data = shardfit.ols(FORMULA, files).fit(backend="serial")
    dropped = len(NO_Y) + len(NO_X) + len(BOTH)
    assert from_store.nobs == from_data.nobs == reference.nobs == len(frame) - dropped
    assert from_store.rows_dropped == from_data.rows_dropped == {"missing": dropped}
    assert from_store.rows_read == from_data.rows_read == len(frame)
    expected = reference.params
    got = pd.Series(np.asarray(from_store.params), index=store.columns)[expected.index]
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(from_store.bse), np.asarray(from_data.bse), rtol=1e-10)

    glm_reference = smf.glm(FORMULA, frame, family=sm.families.Poisson(), missing="drop").fit()
    glm_store = shardfit.GLM(store.y, store.X, "poisson").fit(backend="serial")
    glm_data = shardfit.glm(FORMULA, files, family="poisson").fit(backend="serial")
    assert glm_store.nobs == glm_data.nobs == glm_reference.nobs
    assert glm_store.rows_dropped == glm_data.rows_dropped == {"missing": dropped}
    got = pd.Series(np.asarray(glm_store.params), index=store.columns)[glm_reference.params.index]
    np.testing.assert_allclose(got, glm_reference.params, rtol=1e-8)
    np.testing.assert_allclose(glm_store.llf, glm_reference.llf, rtol=1e-10)
    np.testing.assert_allclose(glm_store.deviance, glm_reference.deviance, rtol=1e-10)


def test_predictions_from_a_store_cover_rows_missing_only_the_response(tmp_path):
    # Bug: the store dropped the rows missing only y, so predictions from it were NaN at
    # rows 3, 50, 51, 620 and 1199, where statsmodels and predictions from the data
    # give values (predict needs no response).
    frame = _frame()
    files = parquet_parts(frame, tmp_path / "data", 2)
    store = write_design(FORMULA, files, tmp_path / "store", backend="serial")
    reference = smf.ols(FORMULA, frame, missing="drop").fit()
    complete = frame.dropna(subset=["x", "g", "z"])
    expected = reference.predict(complete).reindex(frame.index).to_numpy()
    assert np.isfinite(expected[NO_Y]).all()
    assert np.isnan(expected[NO_X + BOTH]).all()

    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    from_store = quiet(fit.predict, store.source(), backend="serial")
    from_folder = quiet(fit.predict, str(tmp_path / "store"), backend="serial")
    from_data = quiet(
        shardfit.ols(FORMULA, files).fit(backend="serial").predict, files, backend="serial"
    )
    for got in (from_store, from_folder, from_data):
        got = np.asarray(got, dtype=np.float64)
        assert got.shape == (len(frame),)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
        np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)

    glm_reference = smf.glm(FORMULA, frame, family=sm.families.Poisson(), missing="drop").fit()
    expected = glm_reference.predict(complete).reindex(frame.index).to_numpy()
    glm = shardfit.GLM(store.y, store.X, "poisson").fit(backend="serial")
    got = np.asarray(quiet(glm.predict, store.source(), backend="serial"), dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-8, equal_nan=True)


def _as_version_1(folder) -> None:
    """Rewrite a store as the version-1 code wrote it: rows with a null response not
    stored (counted as dropped for missing values), no new manifest keys."""
    manifest = folder / MANIFEST
    data = json.loads(manifest.read_text())
    removed = 0
    for name in data["files"]:
        table = pq.read_table(folder / name)
        kept = table.filter(pa.compute.is_valid(table.column(data["response"])))
        removed += table.num_rows - kept.num_rows
        pq.write_table(kept, folder / name)
    data["version"] = 1
    data["rows_written"] -= removed
    data["rows_dropped"]["missing"] += removed
    del data["rows_without_response"], data["part_without_response"]
    manifest.write_text(json.dumps(data))


def test_a_version_1_store_still_opens_and_fits(tmp_path):
    frame = _frame()
    files = parquet_parts(frame, tmp_path / "data", 2)
    write_design(FORMULA, files, tmp_path / "store", backend="serial")
    _as_version_1(tmp_path / "store")
    store = open_design(tmp_path / "store")
    assert store.rows_without_response == 0 and store.part_without_response == ()
    dropped = len(NO_Y) + len(NO_X) + len(BOTH)
    assert store.rows_dropped == {"missing": dropped}
    reference = smf.ols(FORMULA, frame, missing="drop").fit()
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    assert fit.nobs == reference.nobs
    assert fit.rows_dropped == {"missing": dropped}
    got = pd.Series(np.asarray(fit.params), index=store.columns)[reference.params.index]
    np.testing.assert_allclose(got, reference.params, rtol=1e-10)
    # Its predictions are still numbered as the data's rows (none where it dropped one).
    predicted = np.asarray(quiet(fit.predict, store.source(), backend="serial"))
    assert predicted.shape == (len(frame),)
    assert np.isnan(predicted[NO_Y + NO_X + BOTH]).all()
