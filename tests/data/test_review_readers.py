"""A pandas/pyarrow user's review of the readers: bugs found, each pinned here.

Every reader's answer is compared with pandas (or NumPy) reading the same file.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.data import read_csv, read_npy, read_parquet
from shardfit.errors import ReadError


def _read_all(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


@pytest.mark.parametrize("partition_bytes", [None, 40])
def test_custom_null_values_keep_an_empty_field_missing(tmp_path, partition_bytes) -> None:
    # Before: null_values=["-999"] dropped "" from the markers, so column b (numbers,
    # one empty cell) was typed string ['', None, '4', ...], and g kept '' as a level.
    path = tmp_path / "holes.csv"
    path.write_text("a,b,g\n1,,u\n2,-999,\n3,4,v\n4,5.5,u\n5,-999,NA\n")
    source = read_csv(path, null_values=["-999"], partition_bytes=partition_bytes)
    assert source.schema == pa.schema([("a", pa.int64()), ("b", pa.float64()), ("g", pa.string())])
    got = _read_all(source).to_pydict()
    expected = pd.read_csv(path, na_values=["-999"])  # pandas: "" is missing too
    assert expected.b.isna().tolist() == [True, True, False, False, True]
    assert got["b"] == [None if np.isnan(v) else v for v in expected.b]
    assert got["g"] == ["u", None, "v", "u", "NA"]  # "NA" is no marker here; "" still is
    assert got["a"] == [1, 2, 3, 4, 5]


def test_a_file_that_is_not_npy_is_named_as_such(tmp_path) -> None:
    # Before: "cannot memory-map ...: This file contains pickled (object) data",
    # for a text file as for a NumPy .npz archive saved under a .npy name.
    text = tmp_path / "data.npy"
    np.savetxt(text, np.arange(6.0).reshape(3, 2))
    archive = tmp_path / "archive.npy"
    with open(archive, "wb") as handle:
        np.savez(handle, x=np.arange(3.0))
    for path in (text, archive):
        with pytest.raises(ReadError, match=r"does not start with NumPy's magic string") as info:
            read_npy(path)
        assert str(path) in str(info.value) and "pickled" not in str(info.value)
    good = tmp_path / "good.npy"
    np.save(good, np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(_read_all(read_npy(good)).to_pandas().to_numpy(), np.load(good))


def test_an_unparsable_value_names_the_command_line_fix_too(tmp_path) -> None:
    # Before: only the Python spelling (column_types={...}), which a user of
    # `shardfit fit` cannot type.
    path = tmp_path / "v.csv"
    path.write_text("a,b\n1,2\n2,2.5\n3,x\n")
    source = read_csv(path, column_types={"b": "int64"})
    with pytest.raises(ReadError) as info:
        _read_all(source)
    assert str(info.value).endswith(
        "(file " + str(path) + ", line 3), column 'b': cannot parse '2.5' as int64; the "
        "column was read as integers, pass column_types={'b': 'float64'} to read it as "
        "floats (command line: --column-type b=float64)."
    )
    with pytest.raises(ReadError) as info:
        _read_all(read_csv(path, column_types={"b": "float64"}))
    assert str(info.value).endswith(
        "line 4), column 'b': cannot parse 'x' as double; pass column_types={'b': 'string'} "
        "to read the column as text, or on_bad_lines='skip' to drop such lines (command "
        "line: --column-type b=string, --skip-bad-lines)."
    )
    kept = _read_all(read_csv(path, column_types={"b": "float64"}, on_bad_lines="skip"))
    assert kept.to_pydict() == {"a": [1, 2], "b": [2.0, 2.5]}


def test_hive_partition_keys_are_columns_as_pyarrow_reads_them(tmp_path) -> None:
    # Before: the keys of a Hive-partitioned directory (yr=2020/reg=south%20east/...)
    # vanished silently; pyarrow.parquet.read_table and pandas add them as columns.
    rng = np.random.default_rng(4)
    n = 600
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "yr": rng.choice([2020, 2021, 2022], size=n),
            "reg": rng.choice(["north", "south east"], size=n),
        }
    )
    frame["y"] = 1 + frame.x + 0.5 * (frame.yr - 2021) + (frame.reg == "north") + rng.normal(size=n)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_to_dataset(table, tmp_path / "lake", partition_cols=["yr", "reg"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source = read_parquet(tmp_path / "lake")
    assert source.columns == ["x", "y", "yr", "reg"]
    assert source.schema.field("yr").type == pa.int64()  # every value an integer
    assert source.schema.field("reg").type == pa.string()  # percent-decoded text
    ours = _read_all(source).to_pandas()
    theirs = pq.read_table(tmp_path / "lake").to_pandas()
    theirs = theirs.astype({"yr": "int64", "reg": "str"})
    key = ["yr", "reg", "x"]
    pd.testing.assert_frame_equal(
        ours.sort_values(key).reset_index(drop=True),
        theirs[ours.columns].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    # A fit on the keys equals statsmodels on the frame in memory.
    fit = shardfit.ols("y ~ x + yr + C(reg)", source).fit(backend="serial")
    reference = smf.ols("y ~ x + yr + C(reg)", frame).fit()
    np.testing.assert_allclose(fit.params[reference.params.index], reference.params, rtol=1e-10)
    # A key the files also store is theirs (one column, the stored values).
    (tmp_path / "stored" / "yr=1999").mkdir(parents=True)
    pq.write_table(table, tmp_path / "stored" / "yr=1999" / "x.parquet")
    stored = read_parquet(tmp_path / "stored")
    assert stored.columns == ["x", "yr", "reg", "y"]
    assert sorted(set(_read_all(stored).column("yr").to_pylist())) == [2020, 2021, 2022]
    # Hive's default partition is a missing value; text keys stay text.
    (tmp_path / "mixed" / "g=__HIVE_DEFAULT_PARTITION__").mkdir(parents=True)
    (tmp_path / "mixed" / "g=a1").mkdir(parents=True)
    small = pa.table({"v": [1.0, 2.0]})
    pq.write_table(small, tmp_path / "mixed" / "g=__HIVE_DEFAULT_PARTITION__" / "p.parquet")
    pq.write_table(small, tmp_path / "mixed" / "g=a1" / "p.parquet")
    mixed = _read_all(read_parquet(tmp_path / "mixed"))
    assert mixed.column("g").type == pa.string() and mixed.column("g").null_count == 2
    assert [v for v in mixed.column("g").to_pylist() if v is not None] == ["a1", "a1"]
