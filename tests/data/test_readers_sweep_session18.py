"""Session 18 sweep of the readers: partitions read together give pandas' / pyarrow's
whole-file read, at partition sizes that put boundaries everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shardfit.data.csv import read_csv
from shardfit.data.parquet import read_parquet
from shardfit.data.partition import Source

# pandas 3 deprecates float_precision; "round_trip" is still the exact reference here.
pytestmark = pytest.mark.filterwarnings("ignore:The 'float_precision' argument")


def _read_all(source: Source) -> tuple[pa.Table, int]:
    results = [p.read() for p in source.partitions]
    return pa.concat_tables(r.table for r in results), sum(r.skipped_rows for r in results)


def _values(column: pd.Series) -> list[object]:
    """Values with NaN/None as None and floats as their bits (so -0.0 != 0.0)."""
    out: list[object] = []
    for value in column.tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
        elif isinstance(value, float):
            out.append(("bits", np.float64(value).view(np.int64).item()))
        else:
            out.append(value)
    return out


def _assert_same_frame(table: pa.Table, expected: pd.DataFrame) -> None:
    got = table.to_pandas()
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        assert _values(got[column]) == _values(expected[column]), column


# -- hexadecimal integers (bug: pyarrow read "0x10" as 16, pandas reads text) --------


def test_a_hexadecimal_column_reads_as_text_as_pandas_reads_it(tmp_path: Path) -> None:
    # Before: the column was inferred int64 and "0x1F" became 31 (a number, one slope),
    # while pandas reads the ids as text (levels).
    path = tmp_path / "hex.csv"
    path.write_bytes(b"id,y\n0x1F,1.5\n0X0a,2.5\n7,3.5\n0x00,4.5\n")
    expected = pd.read_csv(path, float_precision="round_trip")
    assert expected["id"].tolist() == ["0x1F", "0X0a", "7", "0x00"]
    for partition_bytes in range(1, path.stat().st_size + 2):
        source = read_csv(path, partition_bytes=partition_bytes)
        assert source.schema.field("id").type == pa.string()
        table, skipped = _read_all(source)
        assert skipped == 0
        _assert_same_frame(table, expected)


# -- agreeing combinations not covered elsewhere -------------------------------------

_CASES = {
    "floats_at_the_edges": b"x\n1e308\n-1.7976931348623157e308\n4.9e-324\n-0.0\n1e309\n-1e309\n"
    b"1e-400\n.5\n5.\n+3\n-.5e-3\n0.30000000000000004\n",
    "inf_spellings": b"x\ninf\n-inf\nInfinity\n-Infinity\n1.5\n",
    "missing_markers": b"x,s\nnan,a\nNaN,b\nNA,c\n,d\nnull,e\nNULL,f\nNone,g\n<NA>,h\n"
    b"n/a,i\n-nan,j\n#N/A,k\n1.0,NA\n2,null\n3,\n4,None\n",
    "blanks_around_numbers_crlf": b"a,b\r\n 1, 2.5\r\n2 ,3.5 \r\n 3 , 4 ",
    "integers_near_2_63_and_leading_zeros": b"i,z\n9007199254740993,007\n"
    b"-9007199254740993,0010\n9223372036854775807,-01\n-9223372036854775808,0\n",
    "quotes_bom_no_final_newline": b'\xef\xbb\xbfa,s\r\n1,"x,y"\r\n\r\n2,"p""q"\r\n3,""\r\n'
    b'4,"a""""b"\r\n5,","',
    "semicolons_and_decimal_text": b'a;b;s\n1;2,5;x\n2;3;"a;b"\n',
    "booleans_with_missing": b"b,x\nTrue,1\n,2\nfalse,3\nTRUE,4\n",
}


@pytest.mark.parametrize("name", sorted(_CASES))
def test_every_cut_reads_as_pandas_reads_the_whole_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.csv"
    path.write_bytes(_CASES[name])
    sep = ";" if name.startswith("semicolons") else ","
    expected = pd.read_csv(path, sep=sep, float_precision="round_trip")
    for partition_bytes in range(1, path.stat().st_size + 2):
        table, skipped = _read_all(read_csv(path, partition_bytes=partition_bytes, delimiter=sep))
        assert skipped == 0
        _assert_same_frame(table, expected)


def test_compressed_streams_read_as_pyarrow_reads_them(tmp_path: Path) -> None:
    body = b"a,b,c\n1,0.5,x\n2,-0.0,y\n3,1e308,z\n4,,w\n5,NaN,v"
    expected = pa.csv.read_csv(pa.BufferReader(body)).to_pandas()
    for suffix, codec in ((".csv.zst", "zstd"), (".csv.gz", "gzip"), (".csv.bz2", "bz2")):
        path = tmp_path / f"data{suffix}"
        with pa.output_stream(str(path), compression=codec) as stream:
            stream.write(body)
        table, _ = _read_all(read_csv(path, partition_bytes=1))
        _assert_same_frame(table, expected)


def test_parquet_row_group_runs_across_mixed_files_read_as_pandas_concatenates(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(18)
    n = 23
    x = [None if k % 6 == 0 else float(v) for k, v in enumerate(rng.normal(size=n))]
    x[4] = float("nan")
    first = pa.table(
        {
            "i": pa.array(range(n), pa.int32()),
            "x": pa.array(x, pa.float32()),
            "s": pa.array([None if k % 7 == 0 else f"l{k % 4}" for k in range(n)]),
            "u": pa.array(np.arange(n, dtype=np.uint64)),
        }
    )
    second = pa.table(
        {
            "u": pa.array([-1, 2, None], pa.int64()),
            "s": pa.array(["z", None, "l1"]).dictionary_encode(),
            "x": pa.array([-0.0, None, 1e308]),
            "i": pa.array([2**40, None, -5], pa.int64()),
        }
    )
    files = [tmp_path / "part-0.parquet", tmp_path / "part-1.parquet"]
    pq.write_table(first, files[0], row_group_size=4)
    pq.write_table(second, files[1], row_group_size=1)
    expected = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    expected["u"] = expected["u"].astype("Int64")  # pandas makes uint64 + int64 float64
    expected["s"] = expected["s"].astype(object)
    for partition_rows in (None, 1, 3, 5, 8, 100):
        source = read_parquet(str(tmp_path), partition_rows=partition_rows)
        unified = [pa.int64(), pa.float64(), pa.string(), pa.int64()]
        assert [f.type for f in source.schema] == unified
        table, _ = _read_all(source)
        got = table.to_pandas()
        for column in ("i", "u"):
            assert [None if pd.isna(v) else int(v) for v in got[column]] == [
                None if pd.isna(v) else int(v) for v in expected[column]
            ]
        assert _values(got["x"]) == _values(expected["x"])
        assert _values(got["s"]) == _values(expected["s"])
