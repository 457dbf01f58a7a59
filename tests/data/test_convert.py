"""Tests of CSV <-> Parquet conversion: exact values, chunking, errors, atomic writes."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from shardfit.data.convert import CSV_INFER_BYTES, ConvertReport, convert
from shardfit.data.simulate import simulate, simulate_table
from shardfit.errors import ReadError


def _row_groups(path) -> list[int]:
    meta = pq.read_metadata(path)
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def _float_bits(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy().view(np.int64)


def _big_csv(path, *, rows: int, bad_line: int | None = None, bad_text: str = "") -> int:
    """Write ``a,b,c`` rows (int, float, string) past the inference sample; return size."""
    lines = [f"{i},{i * 0.25},label-{i % 97:03d}\n" for i in range(rows)]
    if bad_line is not None:
        lines[bad_line - 2] = bad_text + "\n"  # line 1 is the header
    path.write_text("a,b,c\n" + "".join(lines))
    return path.stat().st_size


def test_csv_to_parquet_to_csv_round_trip_is_exact(tmp_path):
    original = simulate("linreg", 30_000, tmp_path / "d.csv", seed=9)
    report = convert(original, tmp_path / "d.parquet", chunk_rows=7_000)
    back = convert(tmp_path / "d.parquet", tmp_path / "back.csv")
    assert back.dst.read_bytes() == original.read_bytes()
    table = pq.read_table(report.dst)
    truth = simulate_table("linreg", 30_000, seed=9)
    assert table.equals(truth)
    for name in ("x1", "x20", "w", "y"):  # floats are bitwise equal
        np.testing.assert_array_equal(_float_bits(table, name), _float_bits(truth, name))
    assert _row_groups(report.dst) == [7_000] * 4 + [2_000]
    assert (report.rows, report.columns, report.chunks) == (30_000, 24, 5)
    assert report.bytes_in == original.stat().st_size
    assert report.bytes_out == report.dst.stat().st_size
    assert report.seconds > 0
    assert "converted 30,000 rows x 24 columns" in report.summary()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.csv", "d.csv", "d.parquet"]


def test_awkward_values_survive_parquet_to_csv_to_parquet(tmp_path):
    floats = [0.1, 1 / 3, 5e-324, -0.0, np.nan, np.inf, -np.inf, 1.7976931348623157e308, None]
    strings = ["plain", "a,b", 'say "hi"', "", None, "NA?", "ñandú", "nan", "x"]
    table = pa.table(
        {
            "f": pa.array(floats, type=pa.float64()),
            "s": pa.array(strings, type=pa.string()),
            "i": pa.array([1, -2, None, 2**62, 0, 5, 6, 7, 8], type=pa.int64()),
            "b": pa.array([True, False, None, True, True, False, False, True, None]),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    convert(tmp_path / "t.parquet", tmp_path / "t.csv")
    convert(tmp_path / "t.csv", tmp_path / "back.parquet")
    back = pq.read_table(tmp_path / "back.parquet")
    assert back.schema.equals(table.schema)
    np.testing.assert_array_equal(_float_bits(back, "f")[:8], _float_bits(table, "f")[:8])
    assert back.column("f").null_count == 1
    for name in ("s", "i", "b"):
        assert back.column(name).to_pylist() == table.column(name).to_pylist()


def test_parquet_to_parquet_rechunks_row_groups(tmp_path):
    source = simulate("poisson", 10_000, tmp_path / "d.parquet", chunk_rows=3_000)
    report = convert(source, tmp_path / "e.pq", chunk_rows=4_096)
    assert _row_groups(report.dst) == [4_096, 4_096, 1_808]
    assert pq.read_table(report.dst).equals(pq.read_table(source))


def test_default_chunk_is_one_group_for_small_data(tmp_path):
    source = simulate("logit", 5_000, tmp_path / "d.csv")
    report = convert(source, tmp_path / "d.parquet")
    assert _row_groups(report.dst) == [5_000]
    assert report.chunks == 1


def test_gzip_csv_in_and_out(tmp_path):
    source = simulate("logit", 2_000, tmp_path / "d.csv.gz", seed=2)
    convert(source, tmp_path / "d.parquet")
    convert(tmp_path / "d.parquet", tmp_path / "e.csv.gz")
    with gzip.open(tmp_path / "e.csv.gz", "rb") as file:
        text = file.read()
    assert text == gzip.decompress(source.read_bytes())
    assert pacsv.read_csv(tmp_path / "e.csv.gz").num_rows == 2_000


def test_header_only_csv_gives_an_empty_parquet(tmp_path):
    (tmp_path / "e.csv").write_text("a,b\n")
    report = convert(tmp_path / "e.csv", tmp_path / "e.parquet")
    table = pq.read_table(report.dst)
    assert (table.num_rows, table.column_names, report.chunks) == (0, ["a", "b"], 0)


def test_bad_value_past_the_sample_names_line_and_column_and_writes_nothing(tmp_path):
    src = tmp_path / "big.csv"
    rows = 1_000_000
    size = _big_csv(src, rows=rows, bad_line=900_000, bad_text="1.5,2.0,s")
    assert size > 1.5 * CSV_INFER_BYTES
    dst = tmp_path / "big.parquet"
    dst.write_bytes(b"old content")
    with pytest.raises(ReadError, match=r"line 900000\), column 'a': .*invalid value '1.5'"):
        convert(src, dst)
    with pytest.raises(ReadError, match=r"column_types=\{'a': 'float64'\}"):
        convert(src, dst)
    assert dst.read_bytes() == b"old content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv", "big.parquet"]
    report = convert(src, dst, column_types={"a": "float64"}, chunk_rows=400_000)
    table = pq.read_table(dst)
    assert table.schema.field("a").type == pa.float64()
    assert report.rows == rows
    assert table.column("a")[899_998].as_py() == 1.5
    assert table.column("a")[899_999].as_py() == 899_999.0
    assert _row_groups(dst) == [400_000, 400_000, 200_000]


def test_malformed_line_past_the_first_block_removes_the_temporary_file(tmp_path):
    src = tmp_path / "big.csv"
    _big_csv(src, rows=1_000_000, bad_line=950_001, bad_text="1,2")
    dst = tmp_path / "out.csv"
    with pytest.raises(ReadError, match=r"Malformed CSV .*line 950001.*Expected 3 columns, got 2"):
        convert(src, dst, chunk_rows=10_000)
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["big.csv"]
    assert not any(name.startswith("out.csv.tmp-") for name in os.listdir(tmp_path))


def test_bad_value_in_the_sample_is_located_too(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("a,b\n1,2\n3,oops\n")
    with pytest.raises(ReadError, match=r"line 3\), column 'b'.*'string'"):
        convert(src, tmp_path / "d.parquet", column_types={"b": "int64"})
    report = convert(src, tmp_path / "d.parquet", column_types={"b": pa.string()})
    assert pq.read_table(report.dst).column("b").to_pylist() == ["2", "oops"]


def test_errors_for_bad_arguments(tmp_path):
    src = simulate("logit", 10, tmp_path / "d.csv")
    with pytest.raises(ReadError, match="no such file"):
        convert(tmp_path / "missing.csv", tmp_path / "x.parquet")
    with pytest.raises(
        ValueError,
        match=r"Cannot tell the format of '.*x\.json' from its extension \(known: \.csv,",
    ):
        convert(src, tmp_path / "x.json")
    with pytest.raises(ValueError, match="over its own input"):
        convert(src, src)
    with pytest.raises(ValueError, match=r"names columns not in .*\['nope'\]"):
        convert(src, tmp_path / "x.parquet", column_types={"nope": "int64"})
    with pytest.raises(ValueError, match=r"column 'x1' .* Got 'float65' instead"):
        convert(src, tmp_path / "x.parquet", column_types={"x1": "float65"})
    with pytest.raises(ValueError, match=r"'chunk_rows' parameter .* Got 0 instead"):
        convert(src, tmp_path / "x.parquet", chunk_rows=0)
    (tmp_path / "fake.parquet").write_text("not parquet")
    with pytest.raises(ReadError, match=r"Cannot read .*fake\.parquet as Parquet"):
        convert(tmp_path / "fake.parquet", tmp_path / "x.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "fake.parquet"]


def test_progress_bar_goes_to_stderr(tmp_path, capsys):
    src = simulate("logit", 1_000, tmp_path / "d.csv", progress=True)
    report = convert(src, tmp_path / "d.parquet", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "convert d.csv" in captured.err
    assert isinstance(report, ConvertReport)


def test_column_types_cast_parquet_input(tmp_path):
    source = simulate("poisson", 1_000, tmp_path / "d.parquet")
    report = convert(source, tmp_path / "e.parquet", column_types={"y": "float64"})
    table = pq.read_table(report.dst)
    assert table.schema.field("y").type == pa.float64()
    assert table.column("y").to_pylist() == pq.read_table(source).column("y").to_pylist()
    with pytest.raises(ReadError, match=r"Cannot convert columns of .*d\.parquet"):
        convert(source, tmp_path / "f.parquet", column_types={"region": "int64"})
    with pytest.raises(ValueError, match=r"names columns not in .*\['z'\]"):
        convert(source, tmp_path / "f.parquet", column_types={"z": "int64"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet", "e.parquet"]


def test_delimiter_and_null_values_read_as_pandas_reads_them(tmp_path):
    # A European export: semicolons, -999 and "." for missing, an empty cell too.
    text = "id;x;g\n1;1.5;a\n2;-999;b\n3;;.\n4;2.25;c\n5;.;a\n"
    src = tmp_path / "export.csv"
    src.write_text(text)
    convert(src, tmp_path / "d.parquet", delimiter=";", null_values=["-999", "."])
    got = pq.read_table(tmp_path / "d.parquet").to_pandas()
    expected = pd.read_csv(src, sep=";", na_values=["-999", "."])
    np.testing.assert_array_equal(got["x"].to_numpy(), expected["x"].to_numpy())
    assert got["x"].isna().tolist() == [False, True, True, False, True]
    assert got["g"].isna().tolist() == [False, False, True, False, False]
    assert got["id"].tolist() == [1, 2, 3, 4, 5]


def test_tsv_in_and_out_by_extension(tmp_path):
    table = pa.table({"x": [1.5, None, -2.0], "name": ["a,b", "tab\there", None]})
    pq.write_table(table, tmp_path / "d.parquet")
    convert(tmp_path / "d.parquet", tmp_path / "d.tsv.gz")
    with gzip.open(tmp_path / "d.tsv.gz", "rt") as text:
        header = text.readline()
    assert header.rstrip("\n").split("\t") == ['"x"', '"name"']
    read_back = pd.read_csv(tmp_path / "d.tsv.gz", sep="\t")
    assert read_back["name"].tolist()[:2] == ["a,b", "tab\there"]
    convert(tmp_path / "d.tsv.gz", tmp_path / "back.parquet")
    assert pq.read_table(tmp_path / "back.parquet").equals(table)


def test_simulate_writes_tab_separated_tsv(tmp_path):
    path = simulate("logit", 50, tmp_path / "d.tsv")
    expected = simulate_table("logit", 50)
    got = pd.read_csv(path, sep="\t")
    np.testing.assert_array_equal(got["x1"].to_numpy(), expected["x1"].to_numpy())


def test_csv_options_on_parquet_input_are_refused(tmp_path):
    simulate("logit", 10, tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"delimiter .* describes CSV input, but .*d\.parquet"):
        convert(tmp_path / "d.parquet", tmp_path / "d.csv", delimiter=";")
    assert not (tmp_path / "d.csv").exists()
    csv = simulate("logit", 10, tmp_path / "d.csv")
    with pytest.raises(ValueError, match="one character"):
        convert(csv, tmp_path / "e.parquet", delimiter=";;")
    with pytest.raises(ValueError, match="list of strings"):
        convert(csv, tmp_path / "e.parquet", null_values="-999")
    assert not (tmp_path / "e.parquet").exists()
