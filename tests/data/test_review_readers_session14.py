"""Session 14 reader review: the declared category order of pandas Categoricals read
from HDF5 tables.

statsmodels (patsy) takes a Categorical's levels in its category order, the first
category being the reference of ``C(g)``. The HDF5 table reader rebuilt each
partition's schema without the pandas metadata that marks a column as a Categorical,
so the levels fell back to sorted order: another reference level, other coefficients.
Every answer is compared with statsmodels on the same data in memory.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import shardfit
from shardfit.data import read_hdf5, read_parquet
from shardfit.errors import ReadError

smf = pytest.importorskip("statsmodels.formula.api")


def _categorical_frame(n: int, seed: int) -> pd.DataFrame:
    """``y ~ x + C(g)`` data whose category order (c, b, a) is not alphabetical, with a
    missing x and a missing g (statsmodels drops both rows)."""
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], size=n)
    x = rng.normal(size=n)
    y = 1.0 + 2.0 * x + 1.5 * (g == "b") - 0.7 * (g == "a") + rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "g": pd.Categorical(g, categories=["c", "b", "a"]), "y": y})
    frame.loc[3, "x"] = np.nan
    frame.loc[5, "g"] = np.nan
    return frame


def _assert_fit_equals_statsmodels(source, frame: pd.DataFrame) -> None:
    results = shardfit.ols("y ~ x + C(g)", source).fit(backend="serial")
    expected = smf.ols("y ~ x + C(g)", frame).fit()
    # The reference level is the first category, c: the coefficients are those of b and a.
    assert sorted(results.params.index) == sorted(expected.params.index)
    assert "C(g)[T.c]" not in results.params.index
    np.testing.assert_allclose(
        results.params[expected.params.index].to_numpy(), expected.params.to_numpy(), rtol=1e-9
    )
    np.testing.assert_allclose(
        results.bse[expected.params.index].to_numpy(), expected.bse.to_numpy(), rtol=1e-8
    )
    assert results.nobs == expected.nobs == len(frame) - 2
    assert results.rows_read == len(frame)
    assert results.rows_dropped == {"missing": 2}


@pytest.mark.parametrize("partition_rows", [None, 1, 10])
def test_hdf5_table_categorical_keeps_its_category_order(tmp_path, partition_rows) -> None:
    pytest.importorskip("tables")
    frame = _categorical_frame(73, seed=1)
    path = tmp_path / "cat.h5"
    frame.to_hdf(path, key="frame", format="table")
    back = pd.read_hdf(path, "frame")
    assert list(back["g"].cat.categories) == ["c", "b", "a"]
    source = read_hdf5(path, "frame", partition_rows=partition_rows)
    _assert_fit_equals_statsmodels(source, back)


def test_a_parquet_directory_leaves_out_what_pandas_leaves_out(tmp_path) -> None:
    """Files below ``_temporary/`` (a Spark job's attempts) or named with a leading
    ``.`` or ``_`` are not part of the data set for pyarrow, pandas and Spark; they were
    read, adding their rows to the fit."""
    rng = np.random.default_rng(3)
    n = 60
    g = rng.choice(["a", "b", "c"], size=n)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "g": g, "y": 2.0 * x + (g == "b") + rng.normal(size=n)})
    data = tmp_path / "data"
    (data / "_temporary" / "0").mkdir(parents=True)
    (data / "year=2020" / ".staging").mkdir(parents=True)
    frame.iloc[:25].to_parquet(data / "part-0.parquet", row_group_size=7)
    frame.iloc[25:40].to_parquet(data / "year=2020" / "part-1.parquet")
    frame.iloc[40:].to_parquet(data / "_temporary" / "0" / "part-2.parquet")
    frame.iloc[40:].to_parquet(data / ".part-3.parquet")
    frame.iloc[40:].to_parquet(data / "_part-4.parquet")
    frame.iloc[40:].to_parquet(data / "year=2020" / ".staging" / "part-5.parquet")

    back = pd.read_parquet(data)
    assert len(back) == 40
    source = read_parquet(data)
    assert source.meta["nrows"] == 40
    assert [os.path.basename(f) for f in source.meta["files"]] == [
        "part-0.parquet",
        "part-1.parquet",
    ]
    results = shardfit.ols("y ~ x + C(g)", source).fit(backend="serial")
    expected = smf.ols("y ~ x + C(g)", back).fit()
    np.testing.assert_allclose(
        results.params[expected.params.index].to_numpy(), expected.params.to_numpy(), rtol=1e-9
    )
    assert results.nobs == expected.nobs == 40
    assert results.rows_read == 40
    assert results.rows_dropped == {}


def test_a_parquet_directory_of_hidden_files_only_says_why_none_is_read(tmp_path) -> None:
    data = tmp_path / "data"
    (data / "_temporary").mkdir(parents=True)
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(data / "_temporary" / "part-0.parquet")
    with pytest.raises(ReadError, match=r"no \*\.parquet.*1 left out below folders or files"):
        read_parquet(data)
