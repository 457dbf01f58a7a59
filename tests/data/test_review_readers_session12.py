"""A pandas/pyarrow user's review of the readers (session 12): bugs found, each pinned.

Every reader's answer is compared with pandas, pyarrow, h5py or Dask reading the
same data in memory.
"""

from __future__ import annotations

import decimal
import gzip
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shardfit.data import read_csv, read_hdf5, read_parquet
from shardfit.errors import ReadError


def _read_all(source, columns=None) -> tuple[pa.Table, int]:
    results = [p.read(columns) for p in source.partitions]
    return pa.concat_tables([r.table for r in results]), sum(r.skipped_rows for r in results)


@pytest.mark.parametrize("name", ["long.csv", "long.csv.gz"])
def test_a_line_longer_than_the_parse_block_reads_as_pandas_reads_it(tmp_path, name) -> None:
    # Before: "straddling object straddles two block boundaries (try to increase block
    # size?)" for any line over 1 MiB, with no block size to raise on the command line;
    # pandas reads the file.
    text = "x" * (3 << 20)  # 3 MiB in one field: more than two of pyarrow's 1 MiB blocks
    body = "a,b\n" + "".join(f"{i},v{i}\n" for i in range(2000)) + f"7,{text}\n8,w\n"
    plain = (body + "9,1,2\n").encode()  # and one malformed line after the long one
    path = tmp_path / name
    path.write_bytes(gzip.compress(plain) if name.endswith(".gz") else plain)
    reference = pd.read_csv(path, on_bad_lines="skip")
    assert len(reference) == 2002
    for partition_bytes in (None, 1 << 20, 40000):
        source = read_csv(path, partition_bytes=partition_bytes, on_bad_lines="skip")
        table, skipped = _read_all(source)
        assert skipped == 1
        assert table.column("a").to_pylist() == reference.a.tolist()
        assert table.column("b").to_pylist() == reference.b.tolist()
    # Raising on bad lines still names the malformed line (header 1, rows 2..2003).
    with pytest.raises(ReadError, match=r"line 2004\): expected 2 fields, found 3"):
        _read_all(read_csv(path))


def test_a_header_wider_than_one_mebibyte_gives_its_names(tmp_path) -> None:
    # Before: "Cannot read the header line ...: Empty CSV file or block: cannot infer
    # number of columns" once the header line passed pyarrow's 1 MiB block.
    names = [f"feature_{j:05d}_" + "m" * 40 for j in range(20000)]
    path = tmp_path / "wide.csv"
    rows = [",".join(str(j % 7) for j in range(len(names))), ",".join("1" for _ in names)]
    path.write_text(",".join(names) + "\n" + "\n".join(rows) + "\n")
    assert len(names[0]) * len(names) > 1 << 20
    source = read_csv(path)
    assert source.columns == list(pd.read_csv(path, nrows=0).columns)
    table, _ = _read_all(source, [names[0], names[-1]])
    reference = pd.read_csv(path, usecols=[names[0], names[-1]])
    assert table.column(0).to_pylist() == reference[names[0]].tolist() == [0, 1]
    assert table.column(1).to_pylist() == reference[names[-1]].tolist() == [19999 % 7, 1]


def test_a_literal_quote_with_newlines_in_values_names_and_skips_its_line(tmp_path) -> None:
    # Before: with newlines_in_values=True a quote inside an unquoted field (5'3")
    # upset the quote-parity record count, so an unparsable value gave only "Cannot
    # parse partition ... bytes 0-68" and on_bad_lines="skip" raised that too.
    path = tmp_path / "heights.csv"
    path.write_text(
        'a,h,t\n1,5\'3",plain\n2,6\'1","multi\nline"\n3,x,y\nz,4\'2",w\n4,5\'0","a""b"\n'
    )
    reference = pd.read_csv(path)  # pandas reads column a as text: 'z' on line 6
    assert reference.h.tolist() == ["5'3\"", "6'1\"", "x", "4'2\"", "5'0\""]
    options = {"newlines_in_values": True, "column_types": {"a": "int64"}}
    with pytest.raises(ReadError, match=r"line 6\), column 'a': cannot parse 'z' as int64"):
        _read_all(read_csv(path, **options))
    source = read_csv(path, on_bad_lines="skip", **options)
    results = [p.read() for p in source.partitions]
    table = pa.concat_tables([r.table for r in results])
    kept = reference[reference.a != "z"]
    assert table.column("a").to_pylist() == [int(v) for v in kept.a] == [1, 2, 3, 4]
    assert table.column("h").to_pylist() == kept.h.tolist()
    assert table.column("t").to_pylist() == kept.t.tolist()
    assert sum(r.skipped_rows for r in results) == 1
    assert results[0].skipped_examples[0].endswith("line 6, column 'a': cannot parse 'z' as int64")


def test_parquet_files_of_decimals_and_integers_read_together(tmp_path) -> None:
    # Before: pyarrow unifies decimal128(5, 2) and int64 to decimal128(20, 2) and then
    # refuses every int64 -> decimal128(20, 2) cast ("should be at least 21"), so the
    # integer file's 3 and -5 could not be read although they fit.
    (tmp_path / "set").mkdir()
    prices = pa.array([decimal.Decimal("1.25"), decimal.Decimal("-0.10")], pa.decimal128(5, 2))
    pq.write_table(pa.table({"p": prices}), tmp_path / "set" / "a.parquet")
    pq.write_table(pa.table({"p": pa.array([3, -5], pa.int64())}), tmp_path / "set" / "b.parquet")
    source = read_parquet(tmp_path / "set")
    assert source.schema.field("p").type == pa.decimal128(20, 2)
    got = _read_all(source)[0].column("p").to_pylist()
    integers = pq.read_table(tmp_path / "set" / "b.parquet").column("p").to_pylist()
    reference = [
        *pq.read_table(tmp_path / "set" / "a.parquet").column("p").to_pylist(),
        *(decimal.Decimal(v) for v in integers),
    ]
    assert got == reference == [decimal.Decimal(v) for v in ("1.25", "-0.10", "3", "-5")]
    # A value with more digits than the unified type holds is still refused, by name.
    (tmp_path / "big").mkdir()
    pq.write_table(pa.table({"p": prices}), tmp_path / "big" / "a.parquet")
    pq.write_table(pa.table({"p": pa.array([2**63 - 1])}), tmp_path / "big" / "b.parquet")
    big = read_parquet(tmp_path / "big")
    with pytest.raises(ReadError, match=r"column 'p' of file .*b\.parquet is int64"):
        _read_all(big)


def test_a_pandas_table_with_integer_column_labels_reads_as_pandas(tmp_path) -> None:
    # Before: KeyError "None of [Index(['0', '1'])] are in the [columns]" while planning
    # a frame made from an array (pd.DataFrame(X)) and written with format="table".
    pytest.importorskip("tables")
    rng = np.random.default_rng(12)
    frame = pd.DataFrame(rng.normal(size=(23, 3)))
    frame[3] = rng.integers(0, 9, size=23)
    path = tmp_path / "int_labels.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.to_hdf(path, key="df", format="table")
    source = read_hdf5(path, "df", partition_rows=5)
    assert source.columns == ["0", "1", "2", "3"]
    reference = pd.read_hdf(path, "df")
    table, _ = _read_all(source)
    for j in range(4):
        np.testing.assert_array_equal(table.column(str(j)).to_numpy(), reference[j].to_numpy())
    picked, _ = _read_all(read_hdf5(path, "df", columns=["3", "1"]))
    assert picked.column_names == ["3", "1"]
    np.testing.assert_array_equal(picked.column("1").to_numpy(), reference[1].to_numpy())


def test_a_lone_fixed_format_frame_is_named_under_the_default_key(tmp_path) -> None:
    # Before: "group / holds no 1-D datasets in fixed.h5", as if the file held nothing
    # readable rather than a frame written with format="fixed".
    pytest.importorskip("tables")
    path = tmp_path / "fixed.h5"
    pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}).to_hdf(path, key="df", format="fixed")
    for key in ("/", "df"):
        with pytest.raises(ReadError, match=r"fixed\.h5:/df is a pandas 'frame' object.*format="):
            read_hdf5(path, key)


def test_dask_frames_with_integer_labels_and_unnamed_series_read() -> None:
    # Before: an unnamed Series (column 0) or dd.from_pandas(pd.DataFrame(X)) planned a
    # source of columns '0', '1' that then failed to read: KeyError "None of
    # [Index(['0', '1'])] are in the [columns]".
    dd = pytest.importorskip("dask.dataframe")
    from shardfit.data.dask_source import from_dask

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(11, 2)))
    series = pd.Series(rng.normal(size=9))
    for collection, expected in (
        (dd.from_pandas(frame, npartitions=3), frame),
        (dd.from_pandas(series, npartitions=2), series.to_frame()),
    ):
        source = from_dask(collection)
        table, _ = _read_all(source)
        assert table.column_names == [str(c) for c in expected.columns]
        computed = collection.compute()
        computed = computed.to_frame() if isinstance(computed, pd.Series) else computed
        for label in expected.columns:
            np.testing.assert_array_equal(
                table.column(str(label)).to_numpy(), computed[label].to_numpy()
            )


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_bom_quotes_blank_lines_and_no_final_newline_at_every_cut(tmp_path, ending) -> None:
    # Checked, not a bug: a UTF-8 BOM, quoted delimiters and doubled quotes, blank lines
    # and a last line without its newline, split at every byte: no row lost or doubled.
    lines = [b"a,b,s", b'1,0.1,"x,y"', b"", b'2,1e-300,"p""q"', b"3,-2.5,plain", b"", b"4,7,z"]
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ending.join(lines))
    reference = pd.read_csv(path)
    for partition_bytes in range(1, path.stat().st_size + 2):
        table, skipped = _read_all(read_csv(path, partition_bytes=partition_bytes))
        assert skipped == 0
        assert table.column_names == list(reference.columns)
        assert table.column("a").to_pylist() == reference.a.tolist()
        assert table.column("b").to_pylist() == reference.b.tolist()
        assert table.column("s").to_pylist() == reference.s.tolist()
