"""Session 13 reader review: pandas fixed-format HDF5 by row ranges, Parquet timestamps
in several time zones, and HDF5 partitions that no longer match their file.

Every answer is compared with pandas (``pd.read_hdf``, ``pd.read_parquet``) or
statsmodels on the same data in memory.
"""

from __future__ import annotations

import datetime
import re
import warnings

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shardfit
from shardfit.data import read_hdf5, read_parquet
from shardfit.errors import ReadError

pytest.importorskip("tables")
smf = pytest.importorskip("statsmodels.formula.api")


def _read_all(source, columns=None) -> pa.Table:
    return pa.concat_tables([p.read(columns).table for p in source.partitions])


def _mixed_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """Float, int, bool, datetime (naive, in a zone, UTC, fixed offset), timedelta and
    narrow numeric columns: one pandas block each kind, two float columns in one."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(-50, 50, size=n),
            "b": rng.random(n) < 0.4,
            "t": pd.date_range("2021-03-27", periods=n, freq="37min"),
            "paris": pd.date_range("2021-03-27", periods=n, freq="37min", tz="Europe/Paris"),
            "utc": pd.date_range("2021-01-01", periods=n, freq="h", tz="UTC"),
            "east": pd.date_range(
                "2021-01-01", periods=n, freq="h", tz=datetime.timezone(datetime.timedelta(hours=5))
            ),
            "d": pd.to_timedelta(rng.integers(0, 10**6, size=n), unit="s"),
            "i32": rng.integers(0, 9, size=n).astype("int32"),
            "f32": rng.normal(size=n).astype("float32"),
            "u8": rng.integers(0, 255, size=n).astype("uint8"),
        }
    )
    frame["y"] = 1.0 + 2.0 * x - 0.1 * frame.k + 0.5 * frame.b + rng.normal(size=n)
    frame.loc[3, "x"] = np.nan  # a missing value and a missing time survive
    frame.loc[5, "t"] = pd.NaT
    frame.index = pd.RangeIndex(100, 100 + n)  # an index that is not 0..n-1
    return frame


@pytest.mark.parametrize("complib", [None, "zlib"])  # contiguous, and chunked blocks
def test_a_fixed_format_frame_reads_by_row_ranges_as_pandas_reads_it(tmp_path, complib) -> None:
    # Before: "fixed.h5:/df is a pandas 'frame' object; read_hdf5 reads DataFrames
    # written with to_hdf(..., format="table")": pandas' default format was refused.
    n = 1003
    frame = _mixed_frame(n)
    path = tmp_path / "fixed.h5"
    frame.to_hdf(path, key="df", format="fixed", complib=complib, complevel=1 if complib else None)
    with h5py.File(path, "r") as f:
        assert f["df"].attrs["nblocks"] >= 8  # several blocks: each dtype its own
    reference = pd.read_hdf(path, "df")
    for partition_rows in (None, 100, 97, 1003, 5000):  # 97: an uneven last partition
        source = read_hdf5(path, "df", partition_rows=partition_rows)
        assert source.meta["layout"] == "pandas_fixed" and source.meta["nrows"] == n
        assert source.columns == list(reference.columns)
        sizes = [p.stop - p.start for p in source.partitions]
        assert sum(sizes) == n and all(
            p.read().table.num_rows == s for p, s in zip(source.partitions, sizes)
        )
        ours = _read_all(source).to_pandas()
        # Values, dtypes (units and zones) and column order are pandas'; the index is
        # not a column, as for format="table": rows are in pandas' order.
        pd.testing.assert_frame_equal(ours, reference.reset_index(drop=True))
    source = read_hdf5(path, "df", partition_rows=100)
    assert len(source.partitions) == 11 and source.partitions[-1].start == 1000
    # The default key finds the file's only frame; a projection reads its columns only.
    assert read_hdf5(path).name == "fixed.h5:/df"
    picked = _read_all(read_hdf5(path, "df", columns=["paris", "x"], partition_rows=300))
    pd.testing.assert_frame_equal(
        picked.to_pandas(), reference[["paris", "x"]].reset_index(drop=True)
    )
    last = source.partitions[-1].read(["u8", "k"]).table.to_pandas()
    pd.testing.assert_frame_equal(last, reference[["u8", "k"]].iloc[1000:].reset_index(drop=True))


def test_a_fit_on_a_fixed_format_frame_equals_statsmodels(tmp_path) -> None:
    frame = _mixed_frame(2000, seed=4)
    path = tmp_path / "fit.h5"
    frame.to_hdf(path, key="df")  # pandas' default: format="fixed"
    formula = "y ~ x + k + f32 + i32 + u8"
    expected = smf.ols(formula, frame, missing="drop").fit()
    fitted = shardfit.ols(formula, read_hdf5(path, partition_rows=300)).fit(backend="serial")
    assert fitted.nobs == expected.nobs == 1999
    np.testing.assert_allclose(fitted.params[expected.params.index], expected.params, rtol=1e-10)
    np.testing.assert_allclose(fitted.bse[expected.bse.index], expected.bse, rtol=1e-10)


def test_pickled_text_columns_of_a_fixed_frame_are_refused_by_name(tmp_path) -> None:
    # Text (str or object) columns are stored by pandas as a pickle in fixed format;
    # shardfit loads none. The refusal names file, key and column; the other columns read.
    frame = pd.DataFrame(
        {"x": np.arange(6.0), "name": list("abcdef"), "k": np.arange(6), "o": [1, "a"] * 3}
    )
    path = tmp_path / "text.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas' PerformanceWarning on mixed objects
        frame.to_hdf(path, key="df", format="fixed")
    with pytest.raises(
        ReadError,
        match=r"text\.h5:/df is a pandas 'frame' object written with format=\"fixed\", "
        r"whose column 'name' .*pickle.*\(and 1 more: \['o'\]\).*columns=\['x', 'k'\]",
    ):
        read_hdf5(path, "df")
    with pytest.raises(ReadError, match=r"column 'o' .*stored as a pickle"):
        read_hdf5(path, "df", columns=["x", "o"])
    ours = _read_all(read_hdf5(path, "df", columns=["k", "x"], partition_rows=4)).to_pandas()
    pd.testing.assert_frame_equal(ours, pd.read_hdf(path, "df")[["k", "x"]])


def test_an_empty_and_an_integer_labelled_fixed_frame(tmp_path) -> None:
    path = tmp_path / "odd.h5"
    pd.DataFrame({"x": np.arange(3.0)}).iloc[:0].to_hdf(path, key="empty")
    rng = np.random.default_rng(1)
    pd.DataFrame(rng.normal(size=(7, 3))).to_hdf(path, key="ints")
    empty = read_hdf5(path, "empty")
    assert empty.meta["nrows"] == 0 and len(empty.partitions) == 1
    assert _read_all(empty).num_rows == 0 and empty.schema.field("x").type == pa.float64()
    ints = read_hdf5(path, "ints", partition_rows=3)
    assert ints.columns == ["0", "1", "2"]
    reference = pd.read_hdf(path, "ints")
    table = _read_all(ints)
    for j in range(3):
        np.testing.assert_array_equal(table.column(str(j)).to_numpy(), reference[j].to_numpy())


def test_hdf5_partitions_refuse_a_file_that_changed_since_the_plan(tmp_path) -> None:
    # Before: a file rewritten shorter after planning read 6 rows where the plan (and
    # pandas before the rewrite) had 10; the partitions past the end gave 0 rows each.
    frame = pd.DataFrame({"x": np.arange(10.0)})
    fixed, table, plain = tmp_path / "f.h5", tmp_path / "t.h5", tmp_path / "g.h5"
    frame.to_hdf(fixed, key="df", format="fixed")
    frame.to_hdf(table, key="df", format="table")
    with h5py.File(plain, "w") as f:
        f["grp/x"] = np.arange(10.0)
    sources = [
        read_hdf5(fixed, partition_rows=4),
        read_hdf5(table, partition_rows=4),
        read_hdf5(plain, "grp", partition_rows=4),
    ]
    assert [_read_all(s).num_rows for s in sources] == [10, 10, 10]
    frame.iloc[:6].to_hdf(fixed, key="df", format="fixed", mode="w")
    frame.iloc[:6].to_hdf(table, key="df", format="table", mode="w")
    with h5py.File(plain, "w") as f:
        f["grp/x"] = np.arange(6.0)  # the same file size: only the rows say it changed
    for source in sources:
        with pytest.raises(ReadError, match=r"changed since the source was planned|plan the"):
            _read_all(source)
    with pytest.raises(ReadError, match=r"g\.h5:/grp\[4:8\] read 2 rows .* where the plan has 4"):
        sources[2].partitions[1].read()


def _write_times(path, times: pd.Series, v: np.ndarray) -> None:
    pq.write_table(
        pa.Table.from_pandas(pd.DataFrame({"t": times, "v": v}), preserve_index=False), path
    )


def test_timestamps_in_different_zones_unify_to_utc_as_pandas_concatenates(tmp_path) -> None:
    # Before: "column 't' has types that do not unify across the Parquet files:
    # timestamp[us, tz=UTC] in a.parquet but timestamp[ns, tz=Europe/Paris] in b.parquet".
    rng = np.random.default_rng(2)
    base = pd.Series(pd.date_range("2021-03-27 22:00", periods=7, freq="47min", tz="UTC"))
    parts = [
        base.dt.as_unit("us"),
        base.dt.tz_convert("Europe/Paris").dt.as_unit("ns") + pd.Timedelta(days=3),
        base.dt.tz_convert("America/New_York").dt.as_unit("ms") + pd.Timedelta(days=9),
    ]
    parts[1].iloc[2] = pd.NaT
    for i, times in enumerate(parts):
        _write_times(tmp_path / f"{i}.parquet", times, rng.normal(size=len(times)))
    files = [tmp_path / f"{i}.parquet" for i in range(3)]
    source = read_parquet(files)
    assert source.schema.field("t").type == pa.timestamp("ns", "UTC")
    assert "type_conflicts" not in source.meta
    frames = [pd.read_parquet(f) for f in files]
    expected = pd.concat(
        [f.assign(t=f.t.dt.tz_convert("UTC").dt.as_unit("ns")) for f in frames], ignore_index=True
    )
    pd.testing.assert_frame_equal(_read_all(source).to_pandas(), expected)


def test_naive_and_zoned_timestamps_are_refused_naming_both_files(tmp_path) -> None:
    naive = pd.Series(pd.date_range("2021-01-01", periods=3, freq="h"))
    _write_times(tmp_path / "a.parquet", naive, np.arange(3.0))
    _write_times(tmp_path / "b.parquet", naive.dt.tz_localize("Europe/Paris"), np.arange(3.0))
    source = read_parquet(tmp_path)
    assert _read_all(source, ["v"]).num_rows == 6  # a fit without t is not refused
    message = (
        r"column 't' has types that do not unify across the Parquet files: "
        r"timestamp\[us\] in .*a\.parquet but timestamp\[us, tz=Europe/Paris\] in "
        r".*b\.parquet \(times without a time zone are not instants"
    )
    with pytest.raises(ReadError, match=message):
        _read_all(source)
    assert re.search(message, source.meta["type_conflicts"]["t"])
