"""read_parquet: runs of row groups, never spanning files, read on the worker."""

from __future__ import annotations

import json
import multiprocessing
import operator
import os
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shardfit.data.parquet import ParquetPartition, read_parquet
from shardfit.errors import ReadError

N = 170


@pytest.fixture
def table(rng: np.random.Generator) -> pa.Table:
    strings = [None if i % 7 == 0 else f"s{i}" for i in range(N)]
    return pa.table(
        {
            "i": pa.array(np.arange(N, dtype=np.int64)),
            "f": pa.array(rng.normal(size=N)),
            "s": pa.array(strings, type=pa.string()),
            "c": pa.array([["lo", "mid", "hi"][i % 3] for i in range(N)]).dictionary_encode(),
            "b": pa.array(rng.random(N) < 0.5),
            "t": pa.array(np.arange(N).astype("datetime64[ms]")),
        }
    )


def _write(path, table: pa.Table, row_group_size: int = 10):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _concat(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


@pytest.mark.parametrize(("nparts", "partition_rows"), [(1, N), (3, 60), (17, None)])
def test_partitions_concatenate_to_the_file(tmp_path, table, nparts, partition_rows):
    path = _write(tmp_path / "data.parquet", table)
    source = read_parquet(path, partition_rows=partition_rows)
    assert source.npartitions == nparts
    assert source.schema.equals(table.schema)
    assert sum(p.num_rows for p in source.partitions) == N
    out = _concat(source)
    assert out.schema.equals(table.schema)
    assert out.equals(table)
    assert source.meta["nrows"] == N


def test_runs_hold_at_most_partition_rows_and_big_groups_stand_alone(tmp_path, table):
    path = _write(tmp_path / "data.parquet", table)
    keys = [p.key for p in read_parquet(path, partition_rows=25).partitions]
    assert keys[:2] == ["data.parquet[rg0:2]", "data.parquet[rg2:4]"]
    assert keys[-1] == "data.parquet[rg16:17]"
    alone = read_parquet(path, partition_rows=4)  # every row group holds 10 > 4 rows
    assert [p.row_groups for p in alone.partitions] == [(g,) for g in range(17)]
    assert [p.first_row for p in alone.partitions][:3] == [0, 10, 20]


def test_directory_glob_and_list_read_every_file_in_order(tmp_path, table):
    pieces = [table.slice(0, 50), table.slice(50, 70), table.slice(120)]
    paths = [
        _write(tmp_path / "d" / "a" / "p0.parquet", pieces[0]),
        _write(tmp_path / "d" / "a" / "p1.parquet", pieces[1]),
        _write(tmp_path / "d" / "b" / "p2.parquet", pieces[2]),
    ]
    (tmp_path / "d" / "notes.txt").write_text("not data")
    for arg in (tmp_path / "d", str(tmp_path / "d" / "**" / "*.parquet"), paths):
        source = read_parquet(arg, partition_rows=1000)
        # One partition per file: partitions never span files.
        assert [p.key for p in source.partitions] == [
            "a/p0.parquet[rg0:5]",
            "a/p1.parquet[rg0:7]",
            "b/p2.parquet[rg0:5]",
        ]
        assert _concat(source).equals(table)
    assert read_parquet(paths).name == "3 Parquet files"


def test_projection_keeps_requested_columns_in_order(tmp_path, table):
    source = read_parquet(_write(tmp_path / "data.parquet", table), partition_rows=60)
    part = source.partitions[1]
    got = part.read(["s", "i"]).table
    assert got.column_names == ["s", "i"]
    assert got.column("i").to_pylist() == list(range(60, 120))
    assert got.equals(table.slice(60, 60).select(["s", "i"]))
    one, both = part.read(["f"]).nbytes, part.read(["f", "s"]).nbytes
    assert 0 < one < both
    with pytest.raises(ReadError, match=r"unknown column 'zz' in partition data.parquet\[rg6:12\]"):
        part.read(["i", "zz"])
    with pytest.raises(ReadError, match=r"available columns: \['i', 'f', 's', 'c', 'b', 't'\]"):
        part.read(["zz"])


def test_files_with_columns_in_another_order_read_in_the_first_files_order(tmp_path, table):
    _write(tmp_path / "p0.parquet", table.slice(0, 100))
    _write(tmp_path / "p1.parquet", table.slice(100).select(["t", "b", "c", "s", "f", "i"]))
    assert _concat(read_parquet(tmp_path)).equals(table)


def test_a_file_with_other_types_names_both_files_and_the_column(tmp_path, table):
    # float32 and double unify (tests/data/test_parquet_unify.py); text and numbers
    # do not: reading the column names it and both files with their types.
    _write(tmp_path / "p0.parquet", table)
    other = table.set_column(1, "f", table.column("f").cast(pa.string()))
    _write(tmp_path / "p1.parquet", other)
    source = read_parquet(tmp_path)
    with pytest.raises(ReadError, match=r"column 'f' .* double in .*p0.parquet but string in .*p1"):
        source.partitions[-1].read(["i", "f"])


def test_a_file_missing_a_column_names_both_files_and_the_column(tmp_path, table):
    _write(tmp_path / "p0.parquet", table)
    _write(tmp_path / "p1.parquet", table.drop_columns(["s"]))
    with pytest.raises(ReadError, match=r"column 's' of .*p0.parquet is missing from .*p1.parquet"):
        read_parquet(tmp_path)
    _write(tmp_path / "p1.parquet", table.append_column("z", pa.array(np.zeros(N))))
    with pytest.raises(ReadError, match=r"column 'z' of .*p1.parquet is not in .*p0.parquet"):
        read_parquet(tmp_path)


def test_a_file_without_rows_or_row_groups_gives_one_empty_partition(tmp_path, table):
    no_rows = _write(tmp_path / "rows.parquet", table.slice(0, 0))
    with pq.ParquetWriter(tmp_path / "groups.parquet", table.schema):
        pass  # a footer and no row group at all
    for path, key in [(no_rows, "rows.parquet[rg0:1]"), (tmp_path / "groups.parquet", None)]:
        source = read_parquet(path)
        assert source.npartitions == 1
        got = source.partitions[0].read().table
        assert got.num_rows == 0
        assert got.schema.equals(table.schema)
        if key:
            assert source.partitions[0].key == key
    assert read_parquet(tmp_path / "groups.parquet").partitions[0].key == "groups.parquet[rg0:0]"


def test_locate_and_fingerprint_describe_the_file(tmp_path, table):
    path = _write(tmp_path / "data.parquet", table)
    part = read_parquet(path, partition_rows=30).partitions[2]
    assert part.locate(3) == "file data.parquet, row 63 (0-based, within the file)"
    fp = json.loads(part.fingerprint())
    st = os.stat(path)
    assert fp["path"] == str(path.resolve())
    assert (fp["size"], fp["mtime_ns"], fp["row_groups"]) == (st.st_size, st.st_mtime_ns, [6, 7, 8])


def test_a_file_changed_since_planning_is_refused(tmp_path, table):
    path = _write(tmp_path / "data.parquet", table)
    source = read_parquet(path)
    before = source.fingerprint()
    _write(path, table.slice(0, 20))
    with pytest.raises(ReadError, match=r"data.parquet changed since the source was planned"):
        source.partitions[0].read()
    assert read_parquet(path).fingerprint() != before


def test_missing_paths_are_read_errors(tmp_path):
    with pytest.raises(ReadError, match=r"no such file or directory: .*nope.parquet"):
        read_parquet(tmp_path / "nope.parquet")
    with pytest.raises(ReadError, match=r"no files match '.*\*.parquet'"):
        read_parquet(str(tmp_path / "*.parquet"))
    with pytest.raises(ReadError, match=r"no \*.parquet or \*.pq files below directory"):
        read_parquet(tmp_path)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ReadError, match=r"cannot read the Parquet footer of .*bad.parquet"):
        read_parquet(tmp_path / "bad.parquet")


def test_partition_rows_must_be_positive(tmp_path, table):
    path = _write(tmp_path / "data.parquet", table)
    with pytest.raises(ValueError, match=r"'partition_rows' parameter of read_parquet .* Got 0"):
        read_parquet(path, partition_rows=0)


def test_partitions_pickle_and_read_the_same_in_another_process(tmp_path, table):
    source = read_parquet(_write(tmp_path / "data.parquet", table), partition_rows=60)
    for part in source.partitions:
        blob = pickle.dumps(part)
        assert len(blob) < 1000  # a path and row-group ids, no rows
        assert pickle.loads(blob) == part
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(operator.methodcaller("read"), source.partitions)
    assert all(isinstance(p, ParquetPartition) for p in source.partitions)
    assert pa.concat_tables([r.table for r in results]).equals(table)


def test_coalesced_partitions_join_consecutive_row_groups_of_each_file(tmp_path, table):
    from shardfit.data.parquet import coalesce_partitions

    _write(tmp_path / "a.parquet", table, row_group_size=10)  # 17 row groups
    _write(tmp_path / "b.parquet", table.slice(0, 30), row_group_size=10)  # 3 row groups
    source = read_parquet(str(tmp_path))
    assert len(source.partitions) == 20
    joined = coalesce_partitions(source.partitions, 2)
    # About 200 / 2 rows a partition, never across files: a[0:10], a[10:17], b[0:3].
    assert [(p.label, p.row_groups[0], p.row_groups[-1] + 1) for p in joined] == [
        ("a.parquet", 0, 10),
        ("a.parquet", 10, 17),
        ("b.parquet", 0, 3),
    ]
    assert [p.num_rows for p in joined] == [100, 70, 30]
    whole = pa.concat_tables([p.read(["i", "f"]).table for p in joined])
    parts = pa.concat_tables([p.read(["i", "f"]).table for p in source.partitions])
    assert whole.equals(parts)
    assert joined[1].first_row == 100
    # Nothing to join: as they are.
    assert coalesce_partitions(source.partitions, 50) == source.partitions
    assert coalesce_partitions(joined[:1], 1) == joined[:1]
