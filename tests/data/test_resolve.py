"""as_source: the reader follows the kind of data and the file's extension."""

from __future__ import annotations

import gzip

import dask.array as da
import dask.dataframe as dd
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zarr

from shardfit.data.dask_source import DaskPartition
from shardfit.data.hdf5 import Hdf5Partition
from shardfit.data.memory import MemoryPartition, from_arrays
from shardfit.data.npy import NpyPartition
from shardfit.data.parquet import ParquetPartition
from shardfit.data.resolve import as_source
from shardfit.data.zarr_source import ZarrPartition
from shardfit.errors import ReadError

N = 40


@pytest.fixture
def table() -> pa.Table:
    return pa.table({"a": np.arange(N, dtype=np.int64), "b": np.arange(N) / 8})


def _concat(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


def test_a_source_passes_through():
    source = from_arrays(np.zeros((4, 2)))
    assert as_source(source) is source
    with pytest.raises(ValueError, match="'partition_rows' parameter of as_source cannot re-"):
        as_source(source, partition_rows=2)


@pytest.mark.parametrize("name", ["t.parquet", "t.pq", "dir"])
def test_parquet_files_and_directories(tmp_path, table, name):
    path = tmp_path / name
    if name == "dir":
        path.mkdir()
        pq.write_table(table.slice(0, 25), path / "p0.parquet", row_group_size=10)
        pq.write_table(table.slice(25), path / "p1.parquet", row_group_size=10)
    else:
        pq.write_table(table, path, row_group_size=10)
    source = as_source(str(path), partition_rows=20)
    assert all(isinstance(p, ParquetPartition) for p in source.partitions)
    assert _concat(source).equals(table)
    assert as_source([path] if name != "dir" else sorted(path.iterdir())).meta["nrows"] == N


def test_hdf5_zarr_and_npy_by_extension(tmp_path, table):
    X = np.column_stack([np.arange(N), np.arange(N) / 8])
    expected = pa.table({"x0": X[:, 0], "x1": X[:, 1]})
    for suffix in (".h5", ".hdf5", ".hdf"):
        with h5py.File(tmp_path / f"X{suffix}", "w") as f:
            f.create_dataset("X", data=X)
        source = as_source(tmp_path / f"X{suffix}", partition_rows=15)
        assert isinstance(source.partitions[0], Hdf5Partition)
        assert source.npartitions == 3
        assert _concat(source).equals(expected)
    zarr.create_array(tmp_path / "X.zarr", shape=X.shape, chunks=(10, 2), dtype="f8")[:] = X
    source = as_source(tmp_path / "X.zarr", partition_rows=20)
    assert isinstance(source.partitions[0], ZarrPartition)
    assert _concat(source).equals(expected)
    np.save(tmp_path / "X.npy", X)
    source = as_source(str(tmp_path / "X.npy"), partition_rows=15)
    assert isinstance(source.partitions[0], NpyPartition)
    assert _concat(source).equals(expected)


def test_csv_and_tsv_go_to_read_csv(tmp_path):
    lines = ["a,b", *(f"{i},{i / 8}" for i in range(N))]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "t.tsv").write_text("\n".join(line.replace(",", "\t") for line in lines) + "\n")
    with gzip.open(tmp_path / "t.csv.gz", "wt") as f:
        f.write("\n".join(lines) + "\n")
    for name in ("t.csv", "t.tsv", "t.csv.gz"):
        source = as_source(tmp_path / name)
        assert source.columns == ["a", "b"]
        out = _concat(source)
        assert out.column("a").to_pylist() == list(range(N))
        assert out.column("b").to_pylist() == [i / 8 for i in range(N)]


def test_in_memory_data(table, rng):
    df = table.to_pandas()
    source = as_source(df, partition_rows=15)
    assert isinstance(source.partitions[0], MemoryPartition)
    assert source.npartitions == 3
    assert source.name == "DataFrame"
    assert _concat(source).equals(table)
    assert as_source(table, partition_rows=40).npartitions == 1
    assert _concat(as_source(table)).equals(table)
    X = rng.normal(size=(N, 3))
    arrays = as_source(X, partition_rows=7)
    assert arrays.npartitions == 6
    assert _concat(arrays).equals(pa.table({f"x{j}": X[:, j] for j in range(3)}))


def test_dask_collections(table):
    ddf = dd.from_pandas(table.to_pandas(), npartitions=4)
    source = as_source(ddf)
    assert isinstance(source.partitions[0], DaskPartition)
    assert source.npartitions == 4
    assert _concat(source).equals(table)
    assert as_source(da.ones((N, 2), chunks=(10, 2))).npartitions == 4
    with pytest.raises(ValueError, match="cannot re-partition a DataFrame"):
        as_source(ddf, partition_rows=10)


def test_unknown_extensions_and_types(tmp_path):
    (tmp_path / "data.xlsx").write_text("")
    with pytest.raises(ReadError, match=r"format of '.*data.xlsx'.*known extensions: .csv.gz, "):
        as_source(tmp_path / "data.xlsx")
    with pytest.raises(ReadError, match=r"list of files of one format; got \['csv', 'parquet'\]"):
        as_source(["a.csv", "b.parquet"])
    with pytest.raises(ReadError, match="read npy files one at a time"):
        as_source(["a.npy", "b.npy"])
    for bad in (3, {"a": [1, 2]}, [1, 2], None):
        with pytest.raises(TypeError, match=r"as_source accepts a shardfit Source, a path .* Got"):
            as_source(bad)
    with pytest.raises(ValueError, match="'partition_rows' parameter of as_source"):
        as_source(pd.DataFrame({"a": [1]}), partition_rows=0)
