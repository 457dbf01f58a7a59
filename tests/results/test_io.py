"""Results saved as one JSON document load equal bitwise and predict identically."""

from __future__ import annotations

import json
import warnings
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

import shardfit
from shardfit.data.simulate import simulate_table
from shardfit.errors import ReadError
from shardfit.results.io import load_results, save_results
from shardfit.results.linear import LinearResults

FORMULA = "y ~ x1 + x2 + x12 + scale(x3) + np.log(w) + C(g10)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = simulate_table("linreg", 3_000, seed=4).to_pandas()
    data["x12"] = data["x1"] + 2 * data["x2"]  # aliased: its estimate is NaN
    data["cl"] = np.arange(len(data)) % 40
    data.loc[[2, 9], "x1"] = np.nan  # rows_dropped is not empty
    return data


def _fit(frame: pd.DataFrame, kind: str) -> LinearResults:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the aliased column
        if kind == "ols":
            model = shardfit.ols(FORMULA, frame)
            return model.fit(backend="serial", rank_deficient="drop")
        model = shardfit.wls(FORMULA, shardfit.from_pandas(frame, 3), weights="w")
        return model.fit(
            backend="serial", rank_deficient="drop", cov_type="cluster", cov_kwds={"groups": "cl"}
        )


def _assert_identical(saved: LinearResults, loaded: LinearResults) -> None:
    for item in fields(LinearResults):
        ours, theirs = getattr(saved, item.name), getattr(loaded, item.name)
        if isinstance(ours, np.ndarray):
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, item.name
            # Bitwise: compare the bytes (NaN included).
            assert ours.tobytes() == theirs.tobytes(), item.name
        elif isinstance(ours, float) and np.isnan(ours):
            assert np.isnan(theirs), item.name
        else:
            assert ours == theirs, item.name
            assert type(ours) is type(theirs) or isinstance(ours, np.floating), item.name


@pytest.mark.parametrize("kind", ["ols", "wls-cluster"])
def test_round_trip_is_bitwise(frame: pd.DataFrame, kind: str, tmp_path) -> None:
    results = _fit(frame, kind)
    assert np.isnan(results.params["x12"]) and results.rows_dropped == {"missing": 2}
    path = save_results(results, tmp_path / "r.json")
    loaded = load_results(path)
    _assert_identical(results, loaded)
    pd.testing.assert_frame_equal(loaded.conf_int(), results.conf_int())
    assert loaded.summary().as_text() == results.summary().as_text()


def test_the_file_is_plain_json_without_pickle(frame: pd.DataFrame, tmp_path) -> None:
    path = _fit(frame, "ols").save(tmp_path / "r.json")
    raw = path.read_bytes()
    assert raw.startswith(b"{") and b"\x80" not in raw  # no pickle protocol header

    def strict(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    document = json.loads(raw, parse_constant=strict)
    assert (document["format"], document["version"], document["kind"]) == (
        "shardfit-results",
        1,
        "LinearResults",
    )
    assert document["shardfit_version"] == shardfit.__version__
    assert document["fields"]["spec"]["__design_spec__"]["formula"] == FORMULA
    assert "nan" in document["fields"]["params_array"]["__ndarray__"]["data"]


def test_a_loaded_result_predicts_identically(frame: pd.DataFrame, tmp_path) -> None:
    results = _fit(frame, "wls-cluster")
    loaded = LinearResults.load(results.save(tmp_path / "r.json"))
    fresh = simulate_table("linreg", 500, seed=5).to_pandas()
    fresh["x12"] = fresh["x1"] + 2 * fresh["x2"]
    fresh = fresh.drop(columns=["y", "w"]).assign(w=fresh["w"])  # np.log(w) is a predictor
    np.testing.assert_array_equal(loaded.predict(fresh), results.predict(fresh))
    pd.testing.assert_frame_equal(
        loaded.get_prediction(fresh).summary_frame(), results.get_prediction(fresh).summary_frame()
    )


def test_unknown_version_and_foreign_files_raise(frame: pd.DataFrame, tmp_path) -> None:
    path = _fit(frame, "ols").save(tmp_path / "r.json")
    document = json.loads(path.read_text())
    document["version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ReadError, match=r"format version 99 .* reads version 1 only"):
        load_results(path)
    path.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ReadError, match="not a shardfit results file"):
        load_results(path)
    path.write_text("not json")
    with pytest.raises(ReadError, match="not JSON"):
        load_results(path)
    document["version"] = 1
    document["fields"]["surprise"] = 1
    path.write_text(json.dumps(document))
    with pytest.raises(ReadError, match="fields unknown to LinearResults: \\['surprise'\\]"):
        load_results(path)
