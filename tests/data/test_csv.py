"""Tests of shardfit.data.csv: byte-range partitions, parsing options, located errors."""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import itertools
import math
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardfit.data.csv import CsvPartition, read_csv
from shardfit.data.partition import Source
from shardfit.errors import ReadError


def write_frame(rng: np.random.Generator, path: Path, n: int = 400, **to_csv: object) -> None:
    frame = pd.DataFrame(
        {
            "i": rng.integers(-1000, 1000, n),
            "x": rng.normal(size=n) * 10.0 ** rng.integers(-5, 5, n),
            "s": rng.choice(["alpha", "b", "c d", "e,f", 'g"h'], n),
        }
    )
    frame.to_csv(path, index=False, **to_csv)


def read_all(source: Source, columns: list[str] | None = None) -> pa.Table:
    tables = [p.read(columns).table for p in source.partitions]
    return pa.concat_tables(tables)


def assert_same_as_pandas(table: pa.Table, path: Path, **read_csv_kw: object) -> None:
    expected = pd.read_csv(path, **read_csv_kw)
    got = table.to_pandas()
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for column in expected.columns:
        left, right = got[column].to_numpy(), expected[column].to_numpy()
        if left.dtype.kind == "f":
            # Bitwise: same bits, NaN where pandas has NaN.
            np.testing.assert_array_equal(left.view(np.int64), right.view(np.int64))
        else:
            assert [None if pd.isna(v) else v for v in left] == [
                None if pd.isna(v) else v for v in right
            ]


def split_at(part: CsvPartition, cuts: list[int]) -> list[CsvPartition]:
    bounds = [part.start, *cuts, part.end]
    return [dataclasses.replace(part, start=a, end=b) for a, b in itertools.pairwise(bounds)]


def numbered_lines(path: Path, body: list[str], header: str = "line,v") -> None:
    path.write_bytes(("\n".join([header, *body]) + "\n").encode())


# -- splitting -----------------------------------------------------------------------


@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_byte_ranges_reproduce_pandas(rng, tmp_path, nparts):
    path = tmp_path / "data.csv"
    write_frame(rng, path)
    size = path.stat().st_size
    source = read_csv(path, partition_bytes=math.ceil(size / nparts))
    assert source.npartitions == nparts
    assert source.schema == pa.schema([("i", pa.int64()), ("x", pa.float64()), ("s", pa.string())])
    assert_same_as_pandas(read_all(source), path)


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
@pytest.mark.parametrize("trailing", [True, False])
def test_every_cut_position_reproduces_the_file(rng, tmp_path, ending, trailing):
    path = tmp_path / "small.csv"
    rows = [f"{rng.integers(100)},{rng.normal():.3f},w{k}" for k in range(12)]
    text = ending.join(["i,x,s", *rows]) + (ending if trailing else "")
    path.write_bytes(text.encode())
    whole = read_all(read_csv(path))
    assert whole.num_rows == 12
    (part,) = read_csv(path).partitions
    # Cuts at every byte: line starts, mid-line, on '\r' or '\n', and the last byte.
    for cut in range(1, part.end):
        halves = split_at(part, [cut])
        assert pa.concat_tables([p.read().table for p in halves]).equals(whole), cut
    assert_same_as_pandas(whole, path)


def test_three_way_cuts_around_line_starts(tmp_path):
    path = tmp_path / "d.csv"
    numbered_lines(path, [f"{k},{k * 1.5}" for k in range(2, 40)])
    data = path.read_bytes()
    starts = [k + 1 for k, b in enumerate(data) if b == 0x0A][:-1]
    (part,) = read_csv(path).partitions
    whole = read_all(read_csv(path))
    for a in (starts[3] - 1, starts[3], starts[3] + 1):
        for b in (starts[20], starts[20] + 2, len(data) - 1):
            parts = split_at(part, [a, b])
            assert pa.concat_tables([p.read().table for p in parts]).equals(whole)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(-(10**12), 10**12),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(alphabet='ab ,"é', min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=60,
    ),
    data=st.data(),
)
def test_any_partition_bytes_reproduce_the_file(rows, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.csv"
        pd.DataFrame(rows, columns=["i", "x", "s"]).to_csv(path, index=False)
        size = path.stat().st_size
        whole = read_all(read_csv(path))
        assert whole.num_rows == len(rows)
        step = data.draw(st.integers(1, size + 5), label="partition_bytes")
        source = read_csv(path, partition_bytes=step)
        assert source.npartitions == max(1, math.ceil(size / step))
        assert read_all(source).equals(whole)


def test_partition_rows_sets_the_byte_size(rng, tmp_path):
    path = tmp_path / "data.csv"
    write_frame(rng, path, n=1000)
    source = read_csv(path, partition_rows=100)
    assert 8 <= source.npartitions <= 12
    assert read_all(source).num_rows == 1000


# -- files ---------------------------------------------------------------------------


def test_glob_and_list_read_files_in_order(rng, tmp_path):
    paths = [tmp_path / f"part-{k}.csv" for k in range(3)]
    for path in paths:
        write_frame(rng, path, n=50)
    expected = pd.concat([pd.read_csv(p) for p in paths])
    pattern = str(tmp_path / "part-*.csv")
    by_glob = read_csv(pattern, partition_bytes=700)
    by_list = read_csv([str(p) for p in reversed(paths)][::-1], partition_bytes=700)
    assert by_glob.name == pattern
    assert by_glob.npartitions > 3
    for source in (by_glob, by_list):
        got = read_all(source).to_pandas()
        np.testing.assert_array_equal(got["x"].to_numpy(), expected["x"].to_numpy())
        assert got["s"].tolist() == expected["s"].tolist()


def test_missing_file_and_empty_glob_raise(tmp_path):
    with pytest.raises(ReadError, match=r"No such file: '.*nope\.csv'"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(ReadError, match=r"No files match the pattern '.*zz-\*\.csv'"):
        read_csv(str(tmp_path / "zz-*.csv"))
    with pytest.raises(ReadError, match="No such file"):
        read_csv([tmp_path / "nope.csv"])


def test_headers_must_agree_across_files(tmp_path):
    (tmp_path / "a.csv").write_text("x,y\n1,2\n")
    (tmp_path / "b.csv").write_text("x,z\n3,4\n")
    source = read_csv(str(tmp_path / "*.csv"))
    assert source.partitions[0].read().table.num_rows == 1
    with pytest.raises(ReadError, match=r"header of .*b\.csv has columns \['x', 'z'\]"):
        source.partitions[1].read()


@pytest.mark.parametrize("opener, suffix", [(gzip.open, ".gz"), (bz2.open, ".bz2")])
def test_compressed_files_are_one_partition_each(rng, tmp_path, opener, suffix):
    plain = tmp_path / "data.csv"
    write_frame(rng, plain, n=300)
    packed = tmp_path / f"data.csv{suffix}"
    with opener(packed, "wb") as f:
        f.write(plain.read_bytes())
    source = read_csv(packed, partition_bytes=100)
    assert source.npartitions == 1
    assert_same_as_pandas(read_all(source), plain)


def test_large_gzip_streams_and_locates_errors(tmp_path):
    body = [f"{k},{k % 7}" for k in range(2, 200_002)]
    body[150_000] = "oops"  # file line 150_002
    packed = tmp_path / "big.csv.gz"
    with gzip.open(packed, "wt") as f:
        f.write("line,v\n" + "\n".join(body) + "\n")
    with gzip.open(packed, "rb") as f:
        assert len(f.read()) > 1 << 20  # past the head read first: the file is streamed
    source = read_csv(packed)
    with pytest.raises(ReadError, match=r"big\.csv\.gz, line 150002\): expected 2 fields, found 1"):
        source.partitions[0].read()
    skipping = read_csv(packed, on_bad_lines="skip")
    result = skipping.partitions[0].read()
    assert result.skipped_rows == 1
    assert result.skipped_examples == (f"{packed}, line 150002: expected 2 fields, found 1",)
    assert result.table.num_rows == 199_999
    assert result.table["line"][160_000].as_py() == 160_003
    assert skipping.partitions[0].locate(160_000) == f"file {packed}, line 160003"


# -- parsing options -----------------------------------------------------------------


def test_header_false_with_and_without_names(tmp_path):
    path = tmp_path / "nohead.csv"
    path.write_text("1,a\n2,b\n3,c\n")
    named = read_csv(path, header=False, column_names=["n", "t"], partition_bytes=4)
    assert named.columns == ["n", "t"]
    assert read_all(named).to_pydict() == {"n": [1, 2, 3], "t": ["a", "b", "c"]}
    assert read_all(read_csv(path, header=False)).column_names == ["f0", "f1"]
    replaced = read_csv(path, column_names=["n", "t"])  # the first line becomes the header
    assert read_all(replaced).to_pydict() == {"n": [2, 3], "t": ["b", "c"]}


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_delimiters(rng, tmp_path, delimiter):
    path = tmp_path / "d.txt"
    write_frame(rng, path, n=120, sep=delimiter)
    source = read_csv(path, delimiter=delimiter, partition_bytes=500)
    assert source.npartitions > 2
    assert_same_as_pandas(read_all(source), path, sep=delimiter)


def test_null_markers(tmp_path):
    path = tmp_path / "nulls.csv"
    path.write_text("a,b\n1,x\nNA,\n,NA\n3,-\n")
    table = read_all(read_csv(path))
    assert table.to_pydict() == {"a": [1, None, None, 3], "b": ["x", None, None, "-"]}
    custom = read_all(read_csv(path, null_values=["-", ""]))
    assert custom.schema.field("a").type == pa.string()  # "NA" is no longer missing
    assert custom.to_pydict() == {"a": ["1", "NA", None, "3"], "b": ["x", None, "NA", None]}


def test_column_types_override(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3\n4,5,6\n")
    source = read_csv(path, column_types={"a": "float64", "b": pa.string(), "c": "int32"})
    assert source.schema == pa.schema([("a", pa.float64()), ("b", pa.string()), ("c", pa.int32())])
    assert read_all(source).to_pydict() == {"a": [1.0, 4.0], "b": ["2", "5"], "c": [3, 6]}
    with pytest.raises(
        ReadError, match=r"unknown column 'z'; available columns: \['a', 'b', 'c'\]"
    ):
        read_csv(path, column_types={"z": "float64"})
    with pytest.raises(ValueError, match=r"column_types\['a'\] must be a pyarrow type"):
        read_csv(path, column_types={"a": "floaty"})


def test_projection(rng, tmp_path):
    path = tmp_path / "data.csv"
    write_frame(rng, path, n=200)
    source = read_csv(path, partition_bytes=900)
    table = read_all(source, ["s", "i"])
    assert table.column_names == ["s", "i"]
    assert table.equals(read_all(source).select(["s", "i"]))
    assert sum(p.read([]).table.num_rows for p in source.partitions) == 200
    with pytest.raises(
        ReadError, match=r"unknown column .q. in .*data\.csv; available columns: \[.i., .x., .s.\]"
    ):
        source.partitions[0].read(["i", "q"])


def test_newlines_in_values(tmp_path):
    path = tmp_path / "nl.csv"
    path.write_text('k,note\n1,"two\nlines"\n2,plain\n3,x,extra\n')
    source = read_csv(path, newlines_in_values=True, partition_bytes=5)
    assert source.npartitions == 1
    with pytest.raises(ReadError, match=r"nl\.csv, line 5\): expected 2 fields, found 3"):
        source.partitions[0].read()
    skipping = read_csv(path, newlines_in_values=True, on_bad_lines="skip")
    result = skipping.partitions[0].read()
    assert result.table.to_pydict() == {"k": [1, 2], "note": ["two\nlines", "plain"]}
    assert [skipping.partitions[0].locate(r) for r in (0, 1)] == [
        f"file {path}, line 2",
        f"file {path}, line 4",
    ]


def test_newlines_in_values_in_a_streamed_file(tmp_path):
    path = tmp_path / "nl.csv"
    body = [f'{k},"note {k}"' for k in range(2, 120_000)]
    body[100_000] = '100002,"spans\nthree\nlines"'  # lines 100002-100004
    body[110_000] = "110004,x,extra"  # line 110002 + 2
    path.write_text("line,note\n" + "\n".join(body) + "\n")
    assert path.stat().st_size > 1 << 20  # past the head read first: the file is streamed
    source = read_csv(path, newlines_in_values=True)
    with pytest.raises(ReadError, match=r"nl\.csv, line 110004\): expected 2 fields, found 3"):
        source.partitions[0].read()
    skipping = read_csv(path, newlines_in_values=True, on_bad_lines="skip")
    table = skipping.partitions[0].read().table
    assert table["note"][100_000].as_py() == "spans\nthree\nlines"
    assert table.num_rows == 119_997
    assert skipping.partitions[0].locate(100_001) == f"file {path}, line 100005"


# -- empty files ---------------------------------------------------------------------


def test_empty_and_header_only_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    source = read_csv(empty)
    assert source.npartitions == 1
    assert source.schema == pa.schema([])
    assert source.partitions[0].read().table.num_rows == 0
    head = tmp_path / "head.csv"
    head.write_text("a,b\n")
    source = read_csv(head)
    assert source.npartitions == 1
    result = source.partitions[0].read()
    assert result.table.schema == source.schema
    assert result.table.column_names == ["a", "b"]
    assert result.table.num_rows == 0


def test_blank_header_line_raises(tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("\n1,2\n")
    with pytest.raises(ReadError, match=r"first line of .*blank\.csv should name the columns"):
        read_csv(path)
    assert read_all(read_csv(path, header=False)).to_pydict() == {"f0": [1], "f1": [2]}


def test_schema_comes_from_first_file_with_data(tmp_path):
    (tmp_path / "0.csv").write_bytes(b"")
    (tmp_path / "1.csv").write_text("a,b\n")
    (tmp_path / "2.csv").write_text("a,b\n1,x\n")
    source = read_csv(str(tmp_path / "*.csv"))
    assert source.schema == pa.schema([("a", pa.int64()), ("b", pa.string())])
    assert [p.read().table.num_rows for p in source.partitions] == [0, 0, 1]
    assert read_all(source).schema == source.schema


# -- errors and skipping -------------------------------------------------------------


def test_wrong_field_count_names_the_line(tmp_path):
    path = tmp_path / "data.csv"
    body = [f"{k},{k}" for k in range(2, 500)]
    body[300] = "302,1,2"  # file line 302
    numbered_lines(path, body)
    source = read_csv(path, partition_bytes=1000)
    bad = [p for p in source.partitions if p.start <= 2950 < p.end]
    assert bad and bad[0].start > 0
    with pytest.raises(ReadError, match=r"data\.csv, line 302\): expected 2 fields, found 3"):
        read_all(source)


def test_unparsable_value_names_line_and_column(tmp_path):
    path = tmp_path / "data.csv"
    body = [f"{k},{k / 4}" for k in range(2, 500)]
    body[400] = "402,abc"
    numbered_lines(path, body)
    source = read_csv(path, partition_bytes=1000, column_types={"v": "float64"})
    with pytest.raises(
        ReadError, match=r"data\.csv, line 402\), column 'v': cannot parse 'abc' as double"
    ) as info:
        read_all(source)
    assert isinstance(info.value.__cause__, pa.ArrowInvalid)
    # Reading only the other column does not parse 'v'.
    assert read_all(source, ["line"]).num_rows == 498


def test_integer_column_turning_float_suggests_float64(tmp_path):
    path = tmp_path / "ints.csv"
    body = [f"{k},{k % 10}" for k in range(2, 300_002)]
    body[250_000] = "250002,1.5"
    numbered_lines(path, body)
    assert path.stat().st_size > 2 << 20  # line 250002 is beyond the 1 MiB head
    source = read_csv(path, partition_bytes=200_000)
    assert source.schema.field("v").type == pa.int64()
    with pytest.raises(
        ReadError,
        match=r"line 250002\), column 'v': cannot parse '1\.5' as int64.*"
        r"column_types=\{'v': 'float64'\} to read it as floats",
    ):
        read_all(source)
    fixed = read_csv(path, partition_bytes=200_000, column_types={"v": "float64"})
    assert read_all(fixed)["v"][250_000].as_py() == 1.5


def test_a_quote_that_never_closes_names_its_line_and_is_not_skipped_silently(tmp_path):
    """A field that opens a quote and never closes it makes the parser run on through
    the following lines: it failed naming only the partition's bytes, read as text it
    silently made them one value, and with on_bad_lines='skip' it swallowed them as
    one skipped row. All three now name the line where the quote opens."""
    path = tmp_path / "data.csv"
    body = [f"{k},{k / 8}" for k in range(2, 602)]
    body[300] = '302,"unterminated'  # file line 302
    body[500] = '502,"closed ""quoted"" text"'  # a doubled quote: balanced
    numbered_lines(path, body)
    runaway = r"data\.csv, line 302\): a quoted field opens there"
    # Read as text, the parse succeeds: the swallowed lines became one value.
    with pytest.raises(ReadError, match=runaway + r".*read as part of one value"):
        read_all(read_csv(path, partition_bytes=1000, column_types={"v": "string"}))
    # As numbers, it fails: the error names the line, not the partition's bytes.
    with pytest.raises(ReadError, match=runaway + r".*The parser said"):
        read_all(read_csv(path, partition_bytes=1000, column_types={"v": "float64"}))
    with pytest.raises(ReadError, match=runaway + r".*cannot skip it"):
        read_all(read_csv(path, partition_bytes=1000, on_bad_lines="skip"))


def test_a_literal_quote_inside_a_field_is_not_a_runaway(tmp_path):
    """A quote not at a field's start is a literal (12" pipe): skipping another bad
    line in the same partition still works, and counts exactly one."""
    path = tmp_path / "data.csv"
    body = [f"{k},{k}" for k in range(2, 202)]
    body[50] = '52,12" pipe'  # odd quote count, but a literal
    body[100] = "102,1,2"  # too many fields
    numbered_lines(path, body)
    source = read_csv(path, on_bad_lines="skip", column_types={"v": "string"})
    results = [p.read() for p in source.partitions]
    assert sum(r.skipped_rows for r in results) == 1
    table = pa.concat_tables([r.table for r in results])
    assert table.num_rows == 199 and '12" pipe' in table["v"].to_pylist()


def test_skip_counts_bad_lines_exactly(tmp_path):
    path = tmp_path / "data.csv"
    body = [f"{k},{k / 8}" for k in range(2, 602)]
    body[10] = "12"  # file line 12: too few fields
    body[250] = "252,1.0,9"  # file line 252: too many
    body[500] = "502,zz"  # file line 502: not a number
    numbered_lines(path, body)
    source = read_csv(
        path, partition_bytes=1000, on_bad_lines="skip", column_types={"v": "float64"}
    )
    results = [p.read() for p in source.partitions]
    assert sum(r.skipped_rows for r in results) == 3
    examples = [e for r in results for e in r.skipped_examples]
    assert examples == [
        f"{path}, line 12: expected 2 fields, found 1",
        f"{path}, line 252: expected 2 fields, found 3",
        f"{path}, line 502, column 'v': cannot parse 'zz' as double",
    ]
    table = pa.concat_tables([r.table for r in results])
    expected = [k for k in range(2, 602) if k not in (12, 252, 502)]
    assert table["line"].to_pylist() == expected
    assert table["v"].to_pylist() == [k / 8 for k in expected]
    # The rows kept do not depend on the columns read.
    assert read_all(source, ["line"])["line"].to_pylist() == expected


def test_locate_accounts_for_header_blanks_and_skipped_lines(tmp_path):
    path = tmp_path / "data.csv"
    lines = ["line,v"]
    for k in range(2, 400):
        if k % 37 == 0:
            lines.append("")  # a blank line, ignored
        elif k % 53 == 0:
            lines.append(f"{k},1,2")  # malformed, skipped
        elif k % 71 == 0:
            lines.append(f"{k},nan?")  # unparsable, skipped
        else:
            lines.append(f"{k},{k}")
    path.write_bytes("\r\n".join(lines).encode())
    source = read_csv(path, partition_bytes=600, on_bad_lines="skip", column_types={"v": "int64"})
    assert source.npartitions > 3
    for part in source.partitions:
        table = part.read().table
        for row in range(table.num_rows):
            assert part.locate(row) == f"file {path}, line {table['line'][row].as_py()}"
        assert part.locate(table.num_rows) == f"row {table.num_rows} of partition {part.key}"


def test_locate_in_raise_mode(tmp_path):
    path = tmp_path / "data.csv"
    numbered_lines(path, [f"{k},{k}" if k % 5 else "" for k in range(2, 300)])
    source = read_csv(path, partition_bytes=300)
    for part in source.partitions[1:]:
        table = part.read().table
        for row in {0, table.num_rows - 1} & set(range(table.num_rows)):
            assert part.locate(row) == f"file {path}, line {table['line'][row].as_py()}"


# -- partitions ----------------------------------------------------------------------


def test_partitions_pickle_and_identify_themselves(rng, tmp_path):
    path = tmp_path / "data.csv"
    write_frame(rng, path)
    source = read_csv(path, partition_bytes=2000)
    part = source.partitions[1]
    clone = pickle.loads(pickle.dumps(part))
    assert clone == part and hash(clone) == hash(part)
    assert len(pickle.dumps(part)) < 2000
    assert clone.read().table.equals(part.read().table)
    assert part.key.startswith("data.csv#") and part.key.endswith("@2000-4000")
    other = tmp_path / "sub" / "data.csv"
    other.parent.mkdir()
    other.write_bytes(path.read_bytes())
    twin = read_csv(other, partition_bytes=2000).partitions[1]
    assert twin.key != part.key and twin.key.endswith("@2000-4000")
    stat = path.stat()
    assert part.fingerprint().startswith(f"{path}:{stat.st_size}:{stat.st_mtime_ns}:2000-4000:")
    result = part.read()
    assert 2000 <= result.nbytes < 2200
    assert sum(p.read().nbytes for p in source.partitions) >= stat.st_size


def test_truncated_gzip_raises(rng, tmp_path):
    packed = tmp_path / "bad.csv.gz"
    body = "".join(f"{x},{y}\n" for x, y in rng.normal(size=(100_000, 2)))
    full = gzip.compress(("a,b\n" + body).encode())
    packed.write_bytes(full[: len(full) // 2])
    with pytest.raises(ReadError, match=r"bad\.csv\.gz"):
        read_all(read_csv(packed))


def test_values_are_found_without_row_numbers_too(tmp_path, monkeypatch):
    from shardfit.data import _csv_lines

    def no_numbers(self, lo, hi):
        raise _csv_lines._NoRowNumbers

    monkeypatch.setattr(_csv_lines._Scan, "first_error", no_numbers)
    path = tmp_path / "data.csv"
    numbered_lines(path, [f"{k},{'x' if k in (40, 41, 333) else k}" for k in range(2, 400)])
    source = read_csv(path, partition_bytes=1500, column_types={"v": "int64"})
    with pytest.raises(ReadError, match=r"line 40\), column 'v': cannot parse 'x' as int64"):
        read_all(source)
    skipping = read_csv(path, on_bad_lines="skip", column_types={"v": "int64"})
    result = skipping.partitions[0].read()
    assert result.skipped_rows == 3
    assert result.table["line"].to_pylist() == [k for k in range(2, 400) if k not in (40, 41, 333)]


def test_changed_file_raises(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a\n1\n")
    source = read_csv(path)
    path.write_text("a\n1\n2\n")
    os.utime(path, ns=(1, 1))
    with pytest.raises(ReadError, match=r"changed since the source was made"):
        source.partitions[0].read()


def test_invalid_options():
    with pytest.raises(ValueError, match="at most one of 'partition_rows' and 'partition_bytes'"):
        read_csv("x.csv", partition_rows=10, partition_bytes=10)
    with pytest.raises(ValueError, match=r"'partition_bytes' parameter of read_csv must be a "):
        read_csv("x.csv", partition_bytes=0)
    with pytest.raises(ValueError, match="'on_bad_lines' parameter of read_csv must be"):
        read_csv("x.csv", on_bad_lines="warn")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'delimiter' parameter of read_csv must be one"):
        read_csv("x.csv", delimiter=",,")
