"""from_pandas, from_arrow, from_arrays: zero-copy slices of one Arrow table."""

from __future__ import annotations

import multiprocessing
import operator
import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shardfit.data.memory import from_arrays, from_arrow, from_pandas
from shardfit.errors import ReadError

N = 170


@pytest.fixture
def df(rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": np.arange(N, dtype=np.int64),
            "f": rng.normal(size=N),
            "s": pd.array([None if i % 9 == 0 else f"s{i}" for i in range(N)], dtype="str"),
            "c": pd.Categorical([["lo", "mid", "hi"][i % 3] for i in range(N)]),
            "b": rng.random(N) < 0.5,
            "t": pd.date_range("2026-01-01", periods=N, freq="h"),
            "n": pd.array([None if i % 4 == 0 else i for i in range(N)], dtype="Int64"),
        },
        index=np.arange(N) * 2 + 7,  # an index that is not the row number
    )


def _concat(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_pandas_partitions_concatenate_to_the_frame(df, nparts):
    source = from_pandas(df, nparts)
    assert source.npartitions == nparts
    sizes = [len(a) for a in np.array_split(np.arange(N), nparts)]
    assert [p.read().table.num_rows for p in source.partitions] == sizes
    out = _concat(source)
    assert out.schema.field("s").type == pa.string()
    assert out.schema.field("c").type == pa.dictionary(pa.int8(), pa.string())
    assert out.schema.field("n").type == pa.int64()
    pd.testing.assert_frame_equal(out.to_pandas(), df.reset_index(drop=True))


@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_arrays_partitions_concatenate_to_the_arrays(rng, nparts):
    X = rng.normal(size=(N, 3))
    y = rng.integers(0, 2, size=N)
    source = from_arrays(X, y, npartitions=nparts, names=["a", "b", "c"], y_name="label")
    assert source.npartitions == nparts
    expected = pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "label": y})
    assert source.schema.equals(expected.schema)
    assert _concat(source).equals(expected)
    assert from_arrays(X).columns == ["x0", "x1", "x2"]


def test_keys_locate_and_more_partitions_than_rows(df):
    small = df.iloc[:3]
    source = from_pandas(small, 5)
    assert [p.key for p in source.partitions] == [
        "DataFrame[0:1]",
        "DataFrame[1:2]",
        "DataFrame[2:3]",
        "DataFrame[3:3]#3",
        "DataFrame[3:3]#4",
    ]
    empty = source.partitions[4].read(["c", "i"]).table
    assert empty.num_rows == 0
    assert empty.schema.field("c").type == pa.dictionary(pa.int8(), pa.string())
    pd.testing.assert_frame_equal(_concat(source).to_pandas(), small.reset_index(drop=True))
    assert from_pandas(df, 3).partitions[1].locate(4) == "row 61 of DataFrame"
    assert from_pandas(df, 3, name="train").partitions[2].key == "train[114:170]"


def test_slices_are_zero_copy_and_pickle_only_their_rows(rng):
    table = pa.table({"x": rng.normal(size=100_000)})
    source = from_arrow(table, 10)
    part = source.partitions[3]
    parent = table.column("x").chunk(0).buffers()[1]
    assert part.table.column("x").chunk(0).buffers()[1].address == parent.address
    blob = pickle.dumps(part)
    assert len(blob) < 100_000 * 8 / 10 + 2_000
    back = pickle.loads(blob)
    assert back.key == "Table[30000:40000]"
    assert back.read().table.equals(table.slice(30_000, 10_000))


def test_projection_and_unknown_columns(df):
    part = from_pandas(df, 3).partitions[0]
    got = part.read(["t", "i"]).table
    assert got.column_names == ["t", "i"]
    assert got.column("i").to_pylist() == list(range(57))
    with pytest.raises(ReadError, match=r"unknown column 'x' in partition DataFrame\[0:57\]"):
        part.read(["x"])


def test_fingerprint_tells_data_apart(df):
    a = from_pandas(df, 2)
    b = from_pandas(df.assign(f=df["f"] + 1), 2)
    assert a.partitions[0].key == b.partitions[0].key
    assert a.partitions[0].fingerprint() != b.partitions[0].fingerprint()
    assert a.fingerprint() == from_pandas(df.copy(), 2).fingerprint()


def test_parameter_errors(df, rng):
    with pytest.raises(ValueError, match=r"'npartitions' parameter of from_pandas .* Got 0"):
        from_pandas(df, 0)
    with pytest.raises(TypeError, match=r"from_pandas expects a pandas\.DataFrame\. Got Series"):
        from_pandas(df["i"])
    with pytest.raises(TypeError, match=r"from_arrow expects a pyarrow\.Table\. Got DataFrame"):
        from_arrow(df)
    with pytest.raises(ValueError, match=r"2-D X. Got an array of shape \(5,\)"):
        from_arrays(np.zeros(5))
    with pytest.raises(ValueError, match=r"y of shape \(5,\) to match X. Got \(4,\)"):
        from_arrays(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="y_name 'x1' is already the name of a column"):
        from_arrays(np.zeros((5, 2)), np.zeros(5), y_name="x1")
    with pytest.raises(ValueError, match=r"'names' parameter of from_arrays must hold distinct"):
        from_arrays(np.zeros((5, 2)), names=["a", "a"])


def test_partitions_read_the_same_in_another_process(df):
    source = from_pandas(df, 4)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(operator.methodcaller("read"), source.partitions)
    out = pa.concat_tables([r.table for r in results])
    pd.testing.assert_frame_equal(out.to_pandas(), df.reset_index(drop=True))


def test_a_column_mixing_types_is_named_with_its_row() -> None:
    """An object column of numbers and text: Arrow's refusal named neither the row nor
    a remedy (``ArrowInvalid: Could not convert 'a' with type str``)."""
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0], "x": [1, "a", 2.5]}, index=[7, 8, 9])
    with pytest.raises(
        TypeError, match=r"column 'x' .* mixes types: int values, then 'a' \(str\) at row 8"
    ):
        from_pandas(frame, npartitions=2)
