"""The on-disk design store: encode once (write_design), fit the stored columns
(OLS, GLM) out of core, reopen it later (open_design); checked against statsmodels.

Out-of-core calls run on the module's open 2-worker ``processes`` session (conftest):
the default backend is the same kind of pool, started afresh by every call (13 pool
starts, 14 s of the module's 23 s, before)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.errors import DesignError, MissingDataError, ReadError

FORMULA = "y ~ x1 + np.log(x2) + C(g) + x1:x3"


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    n = 900
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.uniform(0.5, 3.0, size=n),
            "x3": rng.normal(size=n),
            "g": rng.choice(["north", "south", "east"], size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
            "t": rng.uniform(1.0, 4.0, size=n),
        }
    )
    data["y"] = 1.0 + 0.5 * data.x1 - np.log(data.x2) + rng.normal(size=n)
    data["count"] = rng.poisson(data.t * np.exp(0.2 + 0.3 * data.x1))
    data.loc[[5, 400, 899], "x1"] = np.nan  # dropped and counted
    data.loc[17, "g"] = None
    return data


@pytest.fixture(scope="module")
def csv_files(frame, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    for i, start in enumerate(range(0, len(frame), 300)):
        frame.iloc[start : start + 300].to_csv(folder / f"part{i}.csv", index=False)
    return str(folder / "part*.csv")


def test_ols_on_a_stored_design_equals_statsmodels(frame, csv_files, tmp_path, processes):
    store = shardfit.write_design(FORMULA, csv_files, tmp_path / "design", backend=processes)
    expected = smf.ols(FORMULA, frame).fit()
    assert store.rows_read == len(frame)
    assert store.rows_written == expected.nobs == len(frame) - 4
    assert store.rows_dropped == {"missing": 4}
    # formulaic's column order (patsy's differs): compare by name
    assert sorted(store.columns) == sorted(expected.params.index)
    names = list(store.columns)
    assert len(store.files) == 3 and (tmp_path / "design" / "_design.json").is_file()

    fit = shardfit.OLS(store.y, store.X).fit(backend=processes)
    np.testing.assert_allclose(fit.params, expected.params[names], rtol=1e-10)
    np.testing.assert_allclose(fit.bse, expected.bse[names], rtol=1e-10)
    assert list(fit.params.index) == names
    assert fit.nobs == expected.nobs
    np.testing.assert_allclose(fit.rsquared, expected.rsquared, rtol=1e-12)

    # The stored columns are the design statsmodels builds, row for row.
    X = store.X.to_pandas()
    kept = frame.dropna(subset=["x1", "g"]).index
    np.testing.assert_array_equal(X.index, kept)
    exog = pd.DataFrame(expected.model.exog, columns=expected.model.exog_names)
    np.testing.assert_allclose(X.to_numpy(), exog[names].to_numpy(), rtol=1e-15)


def test_reopened_store_fits_weighted_and_glm_models(frame, csv_files, tmp_path, processes):
    first = shardfit.write_design(
        "count ~ x1 + C(g)", csv_files, tmp_path / "d", weights="w", exposure="t",
        backend=processes,
    )  # fmt: skip
    store = shardfit.open_design(tmp_path / "d")
    assert store == first

    kept = frame.dropna(subset=["x1", "g"])
    wls = shardfit.OLS(store.y, store.X, weights=store.weights).fit(backend=processes)
    expected = smf.wls("count ~ x1 + C(g)", kept, weights=kept.w).fit()
    names = list(store.columns)
    np.testing.assert_allclose(wls.params, expected.params[names], rtol=1e-10)
    np.testing.assert_allclose(wls.bse, expected.bse[names], rtol=1e-10)

    glm = shardfit.GLM(store.y, store.X, "poisson", weights=store.weights, offset=store.offset).fit(
        backend=processes
    )
    reference = smf.glm(
        "count ~ x1 + C(g)",
        kept,
        family=sm.families.Poisson(),
        var_weights=kept.w,
        exposure=kept.t,
    ).fit()
    np.testing.assert_allclose(glm.params, reference.params[names], rtol=1e-9)
    np.testing.assert_allclose(glm.bse, reference.bse[names], rtol=1e-9)
    np.testing.assert_allclose(glm.deviance, reference.deviance, rtol=1e-9)
    assert (
        glm.converged
        and abs(glm.fit_history["iteration"] - reference.fit_history["iteration"]) <= 1
    )


def test_new_data_encoded_with_the_stored_spec_predicts_as_statsmodels(frame, tmp_path, processes):
    train, new = frame.iloc[:600].dropna(), frame.iloc[600:].dropna()
    store = shardfit.write_design(FORMULA, train, tmp_path / "train", backend=processes)
    fit = shardfit.OLS(store.y, store.X).fit(backend=processes)
    scored = shardfit.write_design(
        FORMULA, new, tmp_path / "new", spec=store.spec, backend=processes
    )
    got = fit.predict(scored.X.to_pandas())
    expected = smf.ols(FORMULA, train).fit().predict(new)
    np.testing.assert_allclose(np.asarray(got), expected.to_numpy(), rtol=1e-12)

    unseen = new.assign(g="west")
    with pytest.raises(DesignError, match="west"):
        shardfit.write_design(
            FORMULA, unseen, tmp_path / "unseen", spec=store.spec, backend=processes
        )
    assert list((tmp_path / "unseen").iterdir()) == []  # nothing half-written


def test_failed_write_leaves_no_store_and_open_refuses_it(frame, tmp_path, processes):
    with pytest.raises(MissingDataError, match="x1"):
        shardfit.write_design(FORMULA, frame, tmp_path / "d", missing="raise", backend=processes)
    assert list((tmp_path / "d").iterdir()) == []
    with pytest.raises(ReadError, match=r"no _design\.json"):
        shardfit.open_design(tmp_path / "d")

    store = shardfit.write_design(FORMULA, frame, tmp_path / "e", backend=processes)
    with pytest.raises(FileExistsError, match="new or empty folder"):
        shardfit.write_design(FORMULA, frame, tmp_path / "e", backend=processes)
    (tmp_path / "e" / store.files[0]).unlink()
    with pytest.raises(ReadError, match="lacks the part file"):
        shardfit.open_design(tmp_path / "e")
    manifest = json.loads((tmp_path / "e" / "_design.json").read_text())
    assert manifest["format"] == "shardfit-design"


def test_store_columns_go_together(frame, tmp_path, processes):
    store = shardfit.write_design(FORMULA, frame, tmp_path / "d", backend=processes)
    with pytest.raises(DesignError, match="go together"):
        shardfit.OLS(frame["y"].to_numpy(), store.X)
    with pytest.raises(DesignError, match="store's own columns"):
        shardfit.OLS(store.y, store.X, weights=np.ones(store.rows_written))
    with pytest.raises(DesignError, match="has no weights"):
        _ = store.weights
    with pytest.raises(DesignError, match="no response"):
        shardfit.write_design("~ x1", frame, tmp_path / "e", backend=processes)


def test_svd_of_a_stored_design_equals_numpy(frame, tmp_path):
    store = shardfit.write_design(FORMULA, frame, tmp_path / "d", weights="w")
    X = store.X.to_pandas().to_numpy()
    w = frame.loc[store.X.to_pandas().index, "w"].to_numpy()
    plain = shardfit.svd(store.X, backend="serial")
    np.testing.assert_allclose(
        plain.singular_values, np.linalg.svd(X, compute_uv=False), rtol=1e-12
    )
    weighted = shardfit.svd(store.X, center=True, weights=store.weights, backend="serial")
    mean = w @ X / w.sum()
    expected = np.linalg.svd(np.sqrt(w)[:, None] * (X - mean), compute_uv=False)
    np.testing.assert_allclose(weighted.singular_values[:-1], expected[:-1], rtol=1e-10)
    assert list(weighted.names) == list(store.columns)
    with pytest.raises(ValueError, match="pass no data"):
        shardfit.svd(store.X, frame)
