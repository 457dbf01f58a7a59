"""from_dask: one partition per Dask partition or row chunk, computed where read."""

from __future__ import annotations

import multiprocessing
import operator
import pickle

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shardfit.data.dask_source import from_dask
from shardfit.data.memory import from_pandas
from shardfit.errors import ReadError

N = 170


def _concat(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


@pytest.fixture
def df(rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(size=N),
            "n": np.arange(N, dtype=np.int64),
            "s": pd.array([f"s{i}" for i in range(N)], dtype="str"),
            "c": pd.Categorical([["a", "b", "c"][i % 3] for i in range(N)]),
        }
    )


def test_dataframe_partitions_concatenate_to_the_frame(df):
    ddf = dd.from_pandas(df, npartitions=4)
    source = from_dask(ddf)
    assert source.npartitions == 4
    assert source.schema.equals(from_pandas(df).schema)
    sizes = [p.read().table.num_rows for p in source.partitions]
    assert sizes == [len(part) for part in ddf.partitions]
    assert sum(sizes) == N
    out = _concat(source)
    assert out.schema.equals(source.schema)
    pd.testing.assert_frame_equal(out.to_pandas(), df)


def test_projection_and_unknown_columns(df):
    source = from_dask(dd.from_pandas(df, npartitions=4))
    part = source.partitions[1]
    got = part.read(["s", "x"]).table
    assert got.column_names == ["s", "x"]
    start = source.partitions[0].read().table.num_rows
    assert got.column("s")[0].as_py() == f"s{start}"
    with pytest.raises(ReadError, match=r"unknown column 'z' in partition dask-dataframe-\w+\[1\]"):
        part.read(["z"])
    assert part.locate(2) == f"row 2 (0-based) of piece 1 of {source.name}"


def test_object_columns_are_text_and_a_series_is_one_column(df):
    frame = df.assign(o=pd.Series([None if i % 5 else f"o{i}" for i in range(N)], dtype=object))
    source = from_dask(dd.from_pandas(frame, npartitions=4))
    assert source.schema.field("o").type == pa.string()
    assert _concat(source).column("o").to_pylist()[:6] == ["o0", None, None, None, None, "o5"]
    series = from_dask(dd.from_pandas(df["x"], npartitions=3))
    assert series.columns == ["x"]
    assert _concat(series).column("x").to_pylist() == df["x"].tolist()


@pytest.mark.parametrize(("nparts", "rows"), [(1, N), (3, 60), (17, 10)])
def test_array_row_chunks_concatenate_to_the_array(rng, nparts, rows):
    X = rng.normal(size=(N, 5))
    source = from_dask(da.from_array(X, chunks=(rows, 2)), names=list("abcde"))
    assert source.npartitions == nparts
    assert _concat(source).equals(pa.table({c: X[:, j] for j, c in enumerate("abcde")}))
    part = source.partitions[-1]
    assert part.read(["e", "a"]).table.equals(
        pa.table({"e": X[part.first_row :, 4], "a": X[part.first_row :, 0]})
    )
    assert part.locate(1) == f"row {part.first_row + 1} (0-based) of {source.name}"


def test_one_dimensional_and_unknown_chunk_sizes(rng):
    y = np.arange(N, dtype=np.int32)
    source = from_dask(da.from_array(y, chunks=50))
    assert source.columns == ["x0"]
    assert _concat(source).column("x0").to_pylist() == y.tolist()
    X = da.from_array(np.arange(N * 2.0).reshape(N, 2), chunks=(40, 2))
    kept = from_dask(X[X[:, 0] % 4 == 0])  # chunk sizes unknown until computed
    assert kept.partitions[1].first_row is None
    assert kept.partitions[1].locate(0) == f"row 0 (0-based) of piece 1 of {kept.name}"
    assert _concat(kept).column("x0").to_pylist() == list(np.arange(0, N * 2, 4.0))


def test_each_partition_carries_only_its_own_data(df):
    big = pd.DataFrame({"x": np.arange(200_000.0)})
    parts = from_dask(dd.from_pandas(big, npartitions=4)).partitions
    whole = len(pickle.dumps(big))
    assert all(len(pickle.dumps(p)) < whole / 3 for p in parts)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(operator.methodcaller("read"), parts)
    assert pa.concat_tables([r.table for r in results]).column("x").to_pylist() == big["x"].tolist()


def test_keys_are_stable_and_follow_the_data(df):
    a = from_dask(dd.from_pandas(df, npartitions=4))
    b = from_dask(dd.from_pandas(df.copy(), npartitions=4))
    c = from_dask(dd.from_pandas(df.assign(x=df["x"] + 1), npartitions=4))
    assert [p.key for p in a.partitions] == [p.key for p in b.partitions]
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_other_inputs_are_refused(df):
    with pytest.raises(
        TypeError, match=r"from_dask accepts a dask\.dataframe\.DataFrame.*Got DataFrame"
    ):
        from_dask(df)
    with pytest.raises(ValueError, match=r"1-D and 2-D Dask arrays. Got shape \(2, 2, 2\)"):
        from_dask(da.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="'names' parameter of from_dask applies to a Dask Array"):
        from_dask(dd.from_pandas(df, npartitions=2), names=["a"])
