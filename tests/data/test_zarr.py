"""read_zarr: groups of 1-D arrays and 2-D arrays, formats 3 and 2, chunk-aligned."""

from __future__ import annotations

import json
import multiprocessing
import operator
import pickle

import numpy as np
import pyarrow as pa
import pytest
import zarr

from shardfit.data.zarr_source import read_zarr
from shardfit.errors import ReadError

N = 170


def _concat(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


@pytest.fixture
def data(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "f": rng.normal(size=N),
        "i": np.arange(N, dtype=np.int32),
        "s": np.array([f"s{i}" for i in range(N)]),
    }


def _group(path, data, *, zarr_format: int = 3):
    group = zarr.open_group(path, mode="w", zarr_format=zarr_format)
    for name in ("s", "i", "f"):  # written out of order; read by name
        dtype = str if name == "s" and zarr_format == 3 else data[name].dtype
        group.create_array(name, shape=(N,), chunks=(10,), dtype=dtype)[:] = data[name]
    return group


def _expected(data, names=("f", "i", "s")) -> pa.Table:
    return pa.table({n: pa.array(data[n].tolist() if n == "s" else data[n]) for n in names})


@pytest.mark.parametrize("zarr_format", [3, 2])
@pytest.mark.parametrize(("nparts", "partition_rows"), [(1, None), (3, 60), (17, 10)])
def test_group_partitions_concatenate_to_the_arrays(
    tmp_path, data, zarr_format, nparts, partition_rows
):
    _group(tmp_path / "data.zarr", data, zarr_format=zarr_format)
    source = read_zarr(tmp_path / "data.zarr", partition_rows=partition_rows)
    assert source.npartitions == nparts
    assert source.columns == ["f", "i", "s"]
    assert source.schema.equals(_expected(data).schema)
    assert _concat(source).equals(_expected(data))


def test_columns_projection_and_chunk_alignment(tmp_path, data):
    _group(tmp_path / "data.zarr", data)
    source = read_zarr(tmp_path / "data.zarr", columns=["s", "f"], partition_rows=65)
    assert [p.stop - p.start for p in source.partitions] == [60, 60, 50]
    assert _concat(source).equals(_expected(data, ["s", "f"]))
    part = source.partitions[1]
    assert part.key == "data.zarr[60:120]"
    assert part.read(["f"]).table.column("f").to_pylist() == data["f"][60:120].tolist()
    with pytest.raises(ReadError, match=r"unknown column 'i' in partition data.zarr\[60:120\]"):
        part.read(["i"])
    with pytest.raises(ReadError, match=r"unknown column 'z' in Zarr store data.zarr; .*'f', 'i'"):
        read_zarr(tmp_path / "data.zarr", columns=["z"])


@pytest.mark.parametrize(("nparts", "partition_rows"), [(1, None), (3, 70), (17, 10)])
def test_matrix_with_column_chunks(tmp_path, nparts, partition_rows):
    X = np.arange(N * 4.0).reshape(N, 4)
    arr = zarr.create_array(tmp_path / "X.zarr", shape=X.shape, chunks=(10, 2), dtype="f8")
    arr[:] = X
    source = read_zarr(tmp_path / "X.zarr", names=list("abcd"), partition_rows=partition_rows)
    assert source.npartitions == nparts
    assert _concat(source).equals(pa.table({c: X[:, j] for j, c in enumerate("abcd")}))
    picked = read_zarr(tmp_path / "X.zarr", columns=["x3", "x0"], partition_rows=70)
    got = picked.partitions[1].read().table
    assert got.equals(pa.table({"x3": X[70:140, 3], "x0": X[70:140, 0]}))
    assert picked.partitions[1].read(["x0"]).table.column("x0").to_pylist() == X[70:140, 0].tolist()


def test_sharded_arrays_align_to_shards(tmp_path):
    arr = zarr.create_array(tmp_path / "v.zarr", shape=(N,), chunks=(5,), shards=(20,), dtype="i8")
    arr[:] = np.arange(N)
    source = read_zarr(tmp_path / "v.zarr", partition_rows=50)
    assert [p.stop - p.start for p in source.partitions] == [40, 40, 40, 40, 10]
    assert _concat(source).column("x0").to_pylist() == list(range(N))


def test_group_and_array_objects_are_accepted(tmp_path, data):
    group = _group(tmp_path / "data.zarr", data)
    assert _concat(read_zarr(group)).equals(_expected(data))
    one = read_zarr(group["i"], partition_rows=100)
    assert one.columns == ["x0"]
    assert [p.key for p in one.partitions] == ["data.zarr/i[0:100]", "data.zarr/i[100:170]"]
    assert _concat(one).column("x0").to_pylist() == list(range(N))


def test_bad_stores_are_read_errors(tmp_path):
    with pytest.raises(ReadError, match=r"no such Zarr store: .*none.zarr"):
        read_zarr(tmp_path / "none.zarr")
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("M", shape=(3, 3), dtype="f8")
    with pytest.raises(
        ReadError, match=r"group g.zarr holds no 1-D arrays; it holds: \['M \(shape"
    ):
        read_zarr(tmp_path / "g.zarr")
    group.create_array("a", shape=(5,), dtype="f8")
    group.create_array("b", shape=(6,), dtype="f8")
    with pytest.raises(ReadError, match=r"differ in length: \{'a': 5, 'b': 6\}"):
        read_zarr(tmp_path / "g.zarr")
    zarr.create_array(tmp_path / "cube.zarr", shape=(2, 2, 2), dtype="f8")
    with pytest.raises(ReadError, match=r"cube.zarr has shape \(2, 2, 2\)"):
        read_zarr(tmp_path / "cube.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(ReadError, match=r"cannot open .*empty.zarr as a Zarr group or array"):
        read_zarr(tmp_path / "empty.zarr")


def test_zero_rows_give_one_empty_partition(tmp_path):
    zarr.create_array(tmp_path / "e.zarr", shape=(0, 3), chunks=(4, 3), dtype="i2")
    source = read_zarr(tmp_path / "e.zarr")
    assert source.npartitions == 1
    got = source.partitions[0].read().table
    assert got.num_rows == 0
    assert got.schema == pa.schema([(f"x{j}", pa.int16()) for j in range(3)])


def test_locate_fingerprint_and_pickle_in_another_process(tmp_path, data):
    _group(tmp_path / "data.zarr", data)
    source = read_zarr(tmp_path / "data.zarr", partition_rows=60)
    part = source.partitions[2]
    assert part.locate(3) == "store data.zarr, /, row 123 (0-based)"
    fp = json.loads(part.fingerprint())
    assert (fp["store"], fp["start"], fp["stop"]) == (
        str((tmp_path / "data.zarr").resolve()),
        120,
        170,
    )
    assert len(fp["meta_mtimes_ns"]) == 3
    for p in source.partitions:
        assert len(pickle.dumps(p)) < 1000
        assert pickle.loads(pickle.dumps(p)) == p
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(operator.methodcaller("read", ["s", "i"]), source.partitions)
    assert pa.concat_tables([r.table for r in results]).equals(_expected(data, ["s", "i"]))
