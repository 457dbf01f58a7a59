"""Predictions equal statsmodels' in memory, and out of core as Parquet part files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.data.simulate import simulate_table
from shardfit.errors import UnseenLevelError
from shardfit.results.predict import get_prediction, predict

# Numeric columns, a transform, a stateful transform (its training mean must be reused)
# and a categorical; statsmodels (patsy) is slow on the full 229-column design.
FORMULA = "y ~ x1 + x2 + x3 + x4 + np.exp(x5 / 4) + center(x6) + C(g10)"
FRAME_COLUMNS = [
    "mean",
    "mean_se",
    "mean_ci_lower",
    "mean_ci_upper",
    "obs_ci_lower",
    "obs_ci_upper",
]


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return simulate_table("linreg", 5_000, seed=1).to_pandas()


@pytest.fixture(scope="module")
def new() -> pd.DataFrame:
    # Another draw: the same columns and levels, different rows; a shuffled index
    # checks that rows are matched by label, not position.
    frame = simulate_table("linreg", 2_000, seed=2).to_pandas()
    frame.index = np.random.default_rng(7).permutation(np.arange(10_000, 12_000))
    return frame


@pytest.fixture(scope="module")
def fits(train: pd.DataFrame) -> dict[str, tuple[object, object]]:
    """(shardfit, statsmodels) pairs by name, fitted once for the module."""
    out = {}
    for cov_type in ("nonrobust", "HC1"):
        ours = shardfit.ols(FORMULA, shardfit.from_pandas(train, 3)).fit(
            backend="serial", cov_type=cov_type
        )
        out[f"ols-{cov_type}"] = (ours, smf.ols(FORMULA, train).fit(cov_type=cov_type))
    ours = shardfit.wls(FORMULA, train, weights="w").fit(backend="serial")
    out["wls-nonrobust"] = (ours, smf.wls(FORMULA, train, weights=train["w"]).fit())
    return out


@pytest.mark.parametrize("name", ["ols-nonrobust", "wls-nonrobust"])
def test_predict_equals_statsmodels(fits, new: pd.DataFrame, name: str) -> None:
    ours, reference = fits[name]
    # New data needs no response or weights.
    values = ours.predict(new.drop(columns=["y", "w"]))
    assert isinstance(values, np.ndarray) and values.shape == (len(new),)
    # atol: predictions near zero are compared on the scale of the others.
    np.testing.assert_allclose(values, reference.predict(new).to_numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["ols-nonrobust", "ols-HC1", "wls-nonrobust"])
def test_summary_frame_equals_statsmodels(fits, new: pd.DataFrame, name: str) -> None:
    ours, reference = fits[name]
    for alpha in (0.05, 0.2):
        got = ours.get_prediction(new, alpha=alpha).summary_frame()
        expected = reference.get_prediction(new).summary_frame(alpha=alpha)
        assert list(got.columns) == FRAME_COLUMNS == list(expected.columns)
        pd.testing.assert_index_equal(got.index, expected.index)
        scale = np.abs(expected.to_numpy()).max()
        np.testing.assert_allclose(
            got.to_numpy(), expected.to_numpy(), rtol=1e-9, atol=1e-12 * scale
        )


def test_interval_columns_match_get_prediction(fits, new: pd.DataFrame) -> None:
    ours, _ = fits["ols-HC1"]
    frame = ours.predict(new, interval="prediction", alpha=0.1)
    expected = ours.get_prediction(new).summary_frame(alpha=0.1)
    assert list(frame.columns) == ["predicted", *FRAME_COLUMNS[1:]]
    np.testing.assert_array_equal(frame.index, expected.index)
    np.testing.assert_allclose(frame.to_numpy(), expected.to_numpy(), rtol=1e-13)
    confidence = ours.predict(new, interval="confidence")
    assert list(confidence.columns) == ["predicted", "mean_se", "mean_ci_lower", "mean_ci_upper"]


def test_rows_missing_a_predictor_are_dropped_and_counted(fits, new: pd.DataFrame) -> None:
    ours, reference = fits["ols-nonrobust"]
    holes = new.copy()
    holes.loc[holes.index[[3, 10]], "x5"] = np.nan
    holes.loc[holes.index[20], "g10"] = None
    holes["y"] = np.nan  # the response is not read at all
    with pytest.warns(UserWarning, match=r"3 of 2,000 rows .* \(missing: 3\)"):
        values = ours.predict(holes)
    # NaN in place, as statsmodels' predict on the same frame: value i is row i's.
    assert values.shape == (2_000,)
    with_holes = reference.predict(holes.drop(columns="y")).to_numpy()
    np.testing.assert_array_equal(np.isnan(values), np.isnan(with_holes))
    np.testing.assert_allclose(values, with_holes, rtol=1e-10, atol=1e-12)
    with pytest.warns(UserWarning, match="3 of 2,000"):
        prediction = get_prediction(ours, holes)
    assert prediction.rows_read == 2_000
    assert prediction.rows_dropped == {"missing": 3}
    kept = holes.index.delete([3, 10, 20])
    pd.testing.assert_index_equal(prediction.row_labels, kept)
    expected = reference.predict(new.loc[kept]).to_numpy()
    np.testing.assert_allclose(prediction.predicted_mean, expected, rtol=1e-10, atol=1e-12)


def test_unseen_level_raises_or_encodes_as_zero(fits, new: pd.DataFrame) -> None:
    ours, _ = fits["ols-nonrobust"]
    odd = new.iloc[:50].copy()
    odd.loc[odd.index[7], "g10"] = "zz"
    with pytest.raises(UnseenLevelError, match=r"column 'g10': 'zz' is not among the 10 levels"):
        ours.predict(odd)
    values = ours.predict(odd, unseen="zero")
    # All-zero dummies are the reference level's prediction.
    reference_level = odd.copy()
    reference_level.loc[odd.index[7], "g10"] = "a"
    np.testing.assert_array_equal(values, ours.predict(reference_level))


def test_aliased_columns_contribute_nothing(train: pd.DataFrame, new: pd.DataFrame) -> None:
    formula = "y ~ x1 + x2 + x12 + x3"
    data = train.assign(x12=train["x1"] + train["x2"])
    with pytest.warns(UserWarning, match="rank deficient"):
        ours = shardfit.ols(formula, data).fit(backend="serial", rank_deficient="drop")
    assert np.isnan(ours.params["x12"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels says it is rank deficient, as we know
        reference = smf.ols(formula, data).fit()  # pinv: the same fitted values
    fresh = new.assign(x12=new["x1"] + new["x2"])
    np.testing.assert_allclose(ours.predict(fresh), reference.predict(fresh), rtol=1e-9)
    got = ours.get_prediction(fresh).summary_frame()
    expected = reference.get_prediction(fresh).summary_frame()
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-8)


def test_plain_columns_model_predicts_on_an_array(train: pd.DataFrame) -> None:
    X = sm.add_constant(train[["x1", "x2", "x3"]].to_numpy())
    ours = shardfit.OLS(train["y"].to_numpy(), X).fit(backend="serial")
    reference = sm.OLS(train["y"].to_numpy(), X).fit()
    fresh = X[:100] * 1.5
    np.testing.assert_allclose(
        ours.predict(fresh), reference.predict(fresh), rtol=1e-10, atol=1e-12
    )
    with pytest.raises(ValueError, match="the 4 fitted columns"):
        ours.predict(fresh[:, :2])


def test_options_are_checked(fits, new: pd.DataFrame) -> None:
    ours, _ = fits["ols-nonrobust"]
    with pytest.raises(ValueError, match="'interval' parameter of predict"):
        ours.predict(new, interval="mean")
    with pytest.raises(ValueError, match="'alpha' parameter of predict"):
        ours.predict(new, alpha=1.5)
    with pytest.raises(ValueError, match="'unseen' parameter of predict"):
        ours.predict(new, unseen="ignore")


def test_out_of_core_parquet_from_csv_on_processes(fits, new: pd.DataFrame, tmp_path) -> None:
    ours, _ = fits["ols-HC1"]
    holes = new.reset_index(drop=True)
    holes.loc[[5, 1_999], "x3"] = np.nan
    csv = tmp_path / "new.csv"
    holes.to_csv(csv, index=False)
    source = shardfit.read_csv(csv, partition_rows=700)
    assert source.npartitions == 3
    out = tmp_path / "preds.parquet"
    with pytest.warns(UserWarning, match="2 of 2,000"):
        written = predict(
            ours, source, out=out, interval="prediction", backend="processes", workers=2
        )
    assert written.files == ("part-00000.parquet", "part-00001.parquet", "part-00002.parquet")
    assert (written.rows_read, written.rows_written, written.rows_dropped) == (
        2_000,
        1_998,
        {"missing": 2},
    )
    # Complete and ordered; nothing but the parts and the manifest (no temporary files).
    assert sorted(p.name for p in out.iterdir()) == ["_manifest.json", *written.files]
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["rows_written"] == 1_998 and manifest["columns"] == list(written.columns)
    table = pd.read_parquet(out)
    np.testing.assert_array_equal(table["row"], np.delete(np.arange(2_000), [5, 1_999]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        in_memory = ours.predict(holes, interval="prediction")
        serial = predict(
            ours, source, out=tmp_path / "serial", interval="prediction", backend="serial"
        )
    np.testing.assert_array_equal(table["row"], in_memory.index)
    # Predictions are row-wise sums: bitwise the same for any partitioning. Standard
    # errors go through BLAS (x'Cx), whose blocking follows the partition sizes.
    np.testing.assert_array_equal(table["predicted"], in_memory["predicted"])
    np.testing.assert_allclose(
        table.drop(columns="row").to_numpy(), in_memory.to_numpy(), rtol=1e-12, atol=1e-12
    )
    # The same partitions on another backend: bitwise.
    assert serial.rows_written == 1_998
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "serial"), table)


def test_output_directory_is_never_clobbered(fits, new: pd.DataFrame, tmp_path) -> None:
    ours, _ = fits["ols-nonrobust"]
    out = tmp_path / "preds"
    source = shardfit.from_pandas(new, 2)
    predict(ours, source, out=out, backend="serial")
    with pytest.raises(FileExistsError, match="holds an earlier prediction"):
        predict(ours, source, out=out, backend="serial")
    again = predict(ours, source, out=out, backend="serial", interval="confidence", overwrite=True)
    assert list(pd.read_parquet(out).columns) == list(again.columns)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        predict(ours, source, out=out, backend="serial", overwrite=True)
