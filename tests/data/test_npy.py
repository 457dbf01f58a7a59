"""read_npy: memory-mapped .npy files, a path and a row range per partition."""

from __future__ import annotations

import json
import multiprocessing
import operator
import pickle

import numpy as np
import pyarrow as pa
import pytest

from shardfit.data.npy import read_npy
from shardfit.errors import ReadError

N = 170


def _concat(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


@pytest.fixture
def X(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(N, 4))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize(("nparts", "partition_rows"), [(1, None), (3, 60), (17, 10)])
def test_matrix_partitions_concatenate_to_the_array(tmp_path, X, order, nparts, partition_rows):
    path = tmp_path / "X.npy"
    np.save(path, np.asarray(X, order=order))
    source = read_npy(path, partition_rows=partition_rows)
    assert source.npartitions == nparts
    assert source.columns == ["x0", "x1", "x2", "x3"]
    expected = pa.table({f"x{j}": X[:, j] for j in range(4)})
    assert source.schema.equals(expected.schema)
    assert _concat(source).equals(expected)


def test_names_and_projection(tmp_path, X):
    np.save(tmp_path / "X.npy", X)
    source = read_npy(tmp_path / "X.npy", names=["a", "b", "c", "d"], partition_rows=60)
    part = source.partitions[1]
    assert part.key == "X.npy[60:120]"
    got = part.read(["d", "a"]).table
    assert got.column_names == ["d", "a"]
    np.testing.assert_array_equal(got.column("d").to_numpy(), X[60:120, 3])
    np.testing.assert_array_equal(got.column("a").to_numpy(), X[60:120, 0])
    with pytest.raises(ReadError, match=r"unknown column 'x0' .*available columns: \['a', 'b'"):
        part.read(["x0"])
    with pytest.raises(ValueError, match=r"'names' parameter of read_npy must name all 4 columns"):
        read_npy(tmp_path / "X.npy", names=["a"])


def test_one_dimensional_array_is_one_column(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(25, dtype=np.int32))
    source = read_npy(tmp_path / "v.npy", partition_rows=10)
    assert [p.key for p in source.partitions] == ["v.npy[0:10]", "v.npy[10:20]", "v.npy[20:25]"]
    assert _concat(source).equals(pa.table({"x0": pa.array(np.arange(25, dtype=np.int32))}))
    assert read_npy(tmp_path / "v.npy", names=["v"]).columns == ["v"]


def test_mapping_of_column_files_with_byte_strings_decoded(tmp_path, rng):
    ints = np.arange(N, dtype=np.int64)
    floats = rng.normal(size=N).astype(np.float32)
    labels = np.array([f"é{i}".encode() for i in range(N)], dtype="S5")
    words = np.array([f"w{i % 3}" for i in range(N)])
    paths = {}
    for name, arr in [("i", ints), ("f", floats), ("label", labels), ("w", words)]:
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], arr)
    source = read_npy(paths, partition_rows=60)
    expected = pa.table(
        {
            "i": ints,
            "f": floats,
            "label": pa.array([f"é{i}" for i in range(N)], type=pa.string()),
            "w": pa.array(words.tolist(), type=pa.string()),
        }
    )
    assert source.npartitions == 3
    assert source.schema.equals(expected.schema)
    assert _concat(source).equals(expected)
    assert source.partitions[2].read(["label", "i"]).table.column("label")[0].as_py() == "é120"


def test_mapped_files_of_other_lengths_are_named(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(10))
    np.save(tmp_path / "b.npy", np.zeros(11))
    with pytest.raises(ReadError, match=r"differ in length: .*a.npy': 10, .*b.npy': 11"):
        read_npy({"a": tmp_path / "a.npy", "b": tmp_path / "b.npy"})
    np.save(tmp_path / "m.npy", np.zeros((10, 2)))
    with pytest.raises(ReadError, match=r"plain 1-D arrays in a mapping; .*m.npy has shape"):
        read_npy({"a": tmp_path / "a.npy", "m": tmp_path / "m.npy"})


def test_structured_array_fields_are_columns(tmp_path):
    data = np.zeros(30, dtype=[("u", "<f4"), ("k", ">i8"), ("tag", "S3")])
    data["u"] = np.arange(30) / 4
    data["k"] = np.arange(30) * 3
    data["tag"] = [f"t{i % 5}".encode() for i in range(30)]
    np.save(tmp_path / "s.npy", data)
    source = read_npy(tmp_path / "s.npy", partition_rows=7)
    assert source.npartitions == 5
    out = _concat(source)
    assert out.schema == pa.schema([("u", pa.float32()), ("k", pa.int64()), ("tag", pa.string())])
    assert out.column("k").to_pylist() == list(range(0, 90, 3))
    assert out.column("tag").to_pylist()[:6] == ["t0", "t1", "t2", "t3", "t4", "t0"]


def test_zero_rows_give_one_empty_partition(tmp_path):
    np.save(tmp_path / "e.npy", np.zeros((0, 3)))
    source = read_npy(tmp_path / "e.npy")
    assert source.npartitions == 1
    got = source.partitions[0].read().table
    assert got.num_rows == 0
    assert got.column_names == ["x0", "x1", "x2"]


def test_unreadable_files_are_read_errors(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ReadError, match=r"cannot memory-map .*o.npy"):
        read_npy(tmp_path / "o.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ReadError, match=r"1-D or 2-D array; .*cube.npy has shape \(2, 2, 2\)"):
        read_npy(tmp_path / "cube.npy")
    with pytest.raises(ReadError, match=r"no such file or directory: .*none.npy"):
        read_npy(tmp_path / "none.npy")
    (tmp_path / "text.npy").write_text("hello")
    with pytest.raises(ReadError, match=r"text.npy"):
        read_npy(tmp_path / "text.npy")


def test_rows_are_copied_out_of_the_map(tmp_path, X):
    path = tmp_path / "X.npy"
    np.save(path, X)
    part = read_npy(path).partitions[0]
    before = part.read().table
    np.save(path, X + 1.0)  # same size, other values
    np.testing.assert_array_equal(before.column("x1").to_numpy(), X[:, 1])
    np.testing.assert_array_equal(part.read().table.column("x1").to_numpy(), X[:, 1] + 1.0)
    np.save(path, X[:10])
    with pytest.raises(ReadError, match=r"X.npy changed since the source was planned"):
        part.read()


def test_default_partitions_stay_near_256_mib_for_wide_rows(tmp_path):
    # A sparse file: 2000 rows of 20,000 float64 (320 MB) cost no disk and no memory.
    np.lib.format.open_memmap(tmp_path / "wide.npy", mode="w+", dtype="f8", shape=(2000, 20_000))
    source = read_npy(tmp_path / "wide.npy")
    assert [p.stop - p.start for p in source.partitions] == [1677, 323]


def test_locate_fingerprint_and_pickle_in_another_process(tmp_path, X):
    path = tmp_path / "X.npy"
    np.save(path, X)
    source = read_npy(path, partition_rows=60)
    part = source.partitions[2]
    assert part.locate(5) == "row 125 (0-based) of X.npy"
    fp = json.loads(part.fingerprint())
    assert fp["paths"] == [str(path.resolve())]
    assert (fp["start"], fp["stop"], fp["sizes"]) == (120, 170, [path.stat().st_size])
    for p in source.partitions:
        blob = pickle.dumps(p)
        assert len(blob) < 1000  # paths and a row range, no rows
        assert pickle.loads(blob) == p
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(operator.methodcaller("read", ["x3", "x1"]), source.partitions)
    got = pa.concat_tables([r.table for r in results])
    assert got.equals(pa.table({"x3": X[:, 3], "x1": X[:, 1]}))
