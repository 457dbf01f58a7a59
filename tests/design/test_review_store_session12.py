"""Review of the design store (session 12): row numbers of predictions and errors from a
store, new data without weights, concurrent writes, CSV vs Parquet stores.

Every reference is independent: statsmodels fits on the frame in memory, and row
positions taken from the pandas frame the files were written from.
"""

from __future__ import annotations

import json
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.design.store import MANIFEST, open_design, write_design
from shardfit.errors import ResponseError

FORMULA = "y ~ x + C(g)"


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "y": rng.poisson(2.0, size=n).astype(float),
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "w": rng.uniform(0.5, 2.0, size=n),
        }
    )


def _csv_with_bad_lines(frame: pd.DataFrame, path, at: tuple[int, ...]) -> None:
    """``frame`` as CSV with malformed lines inserted before the data rows ``at``."""
    lines = frame.to_csv(index=False).splitlines()
    for k, row in enumerate(sorted(at)):
        lines.insert(1 + row + k, "1,2,3,4,5,6")
    path.write_text("\n".join(lines) + "\n")


def _expected(frame: pd.DataFrame, formula: str = FORMULA) -> np.ndarray:
    """statsmodels' prediction for every row of ``frame``, NaN where a row has none."""
    kept = frame.dropna()
    fit = smf.ols(formula, kept).fit()
    return fit.predict(frame).reindex(frame.index).to_numpy()


def test_store_predictions_number_rows_as_the_csv_with_skipped_and_dropped_rows(tmp_path):
    # Bug: predictions from a store numbered the stored rows (0..2993), where the same
    # predictions from the CSV number the CSV's rows (0..2999, NaN for a dropped one).
    frame = _frame(3000, seed=1)
    frame.loc[[0, 1, 1399, 1400, 2000, 2999], "x"] = np.nan  # partitions' first and last
    path = tmp_path / "data.csv"
    _csv_with_bad_lines(frame, path, at=(50, 1600))
    source = shardfit.read_csv(path, partition_rows=1400, on_bad_lines="skip")
    assert source.npartitions > 1
    store = write_design(FORMULA, source, tmp_path / "store", backend="serial")
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    expected = _expected(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = fit.predict(store.source(), backend="serial")
        written = fit.predict(tmp_path / "store", out=tmp_path / "preds", backend="serial")
        raw = shardfit.ols(FORMULA, source).fit(backend="serial")
        from_csv = raw.predict(source, out=tmp_path / "raw", backend="serial")
    assert got.shape == (3000,)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)
    table = pq.read_table(tmp_path / "preds").to_pandas()
    kept = np.flatnonzero(~np.isnan(expected))
    np.testing.assert_array_equal(table["row"].to_numpy(), kept)
    np.testing.assert_allclose(table["predicted"].to_numpy(), expected[kept], rtol=1e-10)
    # The same account as the CSV gives: rows read, dropped and skipped.
    assert (written.rows_read, written.rows_skipped) == (from_csv.rows_read, 2)
    assert written.rows_dropped == from_csv.rows_dropped == {"missing": 6}


def test_store_with_many_row_groups_numbers_rows_as_parquet_files(tmp_path):
    # Parts of several row groups (as a large store writes them), a source partition
    # whose every row is dropped, and two Parquet files: the row in the data.
    frame = _frame(900, seed=2)
    frame.loc[[0, 99, 100, 101, 455, 899], "x"] = np.nan
    frame.loc[300:399, "x"] = np.nan  # the whole second row group of the first file
    frame.iloc[:600].to_parquet(tmp_path / "a.parquet", row_group_size=200)
    frame.iloc[600:].to_parquet(tmp_path / "b.parquet", row_group_size=200)
    source = shardfit.read_parquet([tmp_path / "a.parquet", tmp_path / "b.parquet"])
    store = write_design(FORMULA, source, tmp_path / "store", backend="serial")
    for name in store.files:  # rewritten in row groups of 37 rows, the same rows
        part = tmp_path / "store" / name
        pq.write_table(pq.read_table(part), part, row_group_size=37)
    store = open_design(tmp_path / "store")
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    expected = _expected(frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = fit.predict(tmp_path / "store", backend="serial")
        fit.predict(store.source(), out=tmp_path / "preds", backend="serial")
    np.testing.assert_allclose(got, expected, rtol=1e-10, equal_nan=True)
    rows = pq.read_table(tmp_path / "preds").column("row").to_numpy()
    np.testing.assert_array_equal(rows, np.flatnonzero(~np.isnan(expected)))


def test_store_written_before_row_numbers_were_kept_still_numbers_rows(tmp_path):
    # A manifest without source_name / part_skipped (the first version-1 stores).
    frame = _frame(500, seed=3)
    frame.loc[[7, 250], "x"] = np.nan
    store = write_design(
        FORMULA, shardfit.from_pandas(frame, 3), tmp_path / "store", backend="serial"
    )
    manifest = tmp_path / "store" / MANIFEST
    data = json.loads(manifest.read_text())
    del data["source_name"], data["part_skipped"]
    manifest.write_text(json.dumps(data))
    store = open_design(tmp_path / "store")
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = fit.predict(store.source(), backend="serial")
    np.testing.assert_allclose(got, _expected(frame), rtol=1e-10, equal_nan=True)
    data["version"] = 99
    manifest.write_text(json.dumps(data))
    with pytest.raises(shardfit.errors.ReadError, match=r"_design\.json.*version-1"):
        open_design(tmp_path / "store")


def test_an_error_in_a_fit_from_a_store_names_the_source_row(tmp_path):
    # Bug: it named the row within the part file (698), not the data's row (700).
    frame = _frame(1200, seed=4)
    frame.loc[[3, 10], "x"] = np.nan
    frame.loc[700, "y"] = -1.0
    path = tmp_path / "data.csv"
    _csv_with_bad_lines(frame, path, at=(20,))
    source = shardfit.read_csv(path, partition_rows=500, on_bad_lines="skip")
    store = write_design(FORMULA, source, tmp_path / "store", backend="serial")
    bad = int(np.flatnonzero(frame["y"].to_numpy() < 0)[0])
    with pytest.raises(ResponseError, match=rf"row {bad} \(0-based.*of \S*data\.csv"):
        shardfit.GLM(store.y, store.X, family="poisson").fit(backend="serial")


def test_new_data_without_response_or_weights_is_stored_to_predict(tmp_path):
    # Bug: a store written with weights= gave a spec that made data to predict on
    # (no response, no weights) fail: "unknown column 'w' in partition DataFrame[0:40]".
    train = _frame(300, seed=5)
    new = _frame(40, seed=6).drop(columns=["y", "w"])
    store = write_design(FORMULA, train, tmp_path / "train", weights="w", backend="serial")
    fit = shardfit.OLS(store.y, store.X, weights=store.weights).fit(backend="serial")
    scored = write_design(FORMULA, new, tmp_path / "new", spec=store.spec, backend="serial")
    assert not scored.has_response and not scored.has_weights
    expected = smf.wls(FORMULA, train, weights=train["w"]).fit().predict(new)
    got = fit.predict(scored.X.to_pandas(), backend="serial")
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-10)
    assert open_design(tmp_path / "new").spec.weights == "w"  # the store's spec, kept


def test_a_second_write_into_the_same_folder_is_refused_and_the_first_is_whole(tmp_path):
    # Bug: a write that found the folder empty (the first write still in its schema
    # pass) wrote into it too: both finished without an error, and the folder held the
    # second's manifest over the first's parts (a failing one deleted the other's).
    big = _frame(400_000, seed=7)
    small = _frame(50, seed=8)
    out = tmp_path / "store"
    result: dict[str, object] = {}

    def first() -> None:
        try:
            write_design(FORMULA, big, out, backend="serial")
        except FileExistsError as error:  # it lost the race for the folder
            result["first"] = error

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 5
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.0005)
    try:
        write_design(FORMULA, small, out, backend="serial")
    except FileExistsError as error:
        result["second"] = error
    thread.join()
    # Exactly one write was refused (almost always the second), before writing.
    assert len(result) == 1, result
    data = small if "first" in result else big
    store = open_design(out)
    assert store.rows_written == len(data)
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    ref = smf.ols(FORMULA, data).fit()
    np.testing.assert_allclose(fit.params, ref.params[fit.params.index], rtol=1e-10)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "part-00000.parquet"]


def test_stores_from_csv_and_parquet_fit_alike_and_as_statsmodels(tmp_path):
    # Levels only in later partitions, weights, offset and exposure, dropped rows.
    rng = np.random.default_rng(9)
    n = 600
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "w": rng.uniform(0.5, 2.0, n),
            "e": rng.uniform(0.5, 3.0, n),
            "o": rng.normal(scale=0.1, size=n),
            "g": np.where(np.arange(n) < 400, rng.choice(["b", "c"], n), rng.choice(["a", "d"], n)),
        }
    )
    frame["y"] = rng.poisson(np.exp(0.3 * frame["x"]) * frame["e"]).astype(float)
    frame.loc[[5, 450], "x"] = np.nan
    frame.loc[100, "w"] = np.nan
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet", row_group_size=150)
    options = {"weights": "w", "offset": "o", "exposure": "e", "backend": "serial"}
    csv = write_design(
        FORMULA, shardfit.read_csv(tmp_path / "d.csv", partition_rows=150), tmp_path / "s1",
        **options,
    )  # fmt: skip
    parquet = write_design(FORMULA, tmp_path / "d.parquet", tmp_path / "s2", **options)
    # The row missing only its weight is stored for predictions (a null response),
    # not dropped: fits from the store still drop it (below).
    assert csv.rows_dropped == parquet.rows_dropped == {"missing": 2}
    assert csv.rows_without_response == parquet.rows_without_response == 1
    assert csv.columns == parquet.columns
    kept = frame.dropna()
    glm_ref = smf.glm(
        FORMULA, kept, family=sm.families.Poisson(), var_weights=kept["w"],
        offset=kept["o"], exposure=kept["e"],
    ).fit()  # fmt: skip
    wls_ref = smf.wls(FORMULA, kept, weights=kept["w"]).fit()
    fits = []
    for store in (csv, parquet):
        glm = shardfit.GLM(
            store.y, store.X, family="poisson", weights=store.weights, offset=store.offset
        ).fit(backend="serial")
        wls = shardfit.OLS(store.y, store.X, weights=store.weights).fit(backend="serial")
        names = list(glm.params.index)
        np.testing.assert_allclose(glm.params, glm_ref.params[names], rtol=1e-10)
        np.testing.assert_allclose(glm.bse, glm_ref.bse[names], rtol=1e-10)
        np.testing.assert_allclose(wls.params, wls_ref.params[names], rtol=1e-10)
        np.testing.assert_allclose(wls.bse, wls_ref.bse[names], rtol=1e-10)
        fits.append((glm, wls))
    for a, b in zip(fits[0], fits[1], strict=True):
        np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a.bse, b.bse, rtol=1e-12)
