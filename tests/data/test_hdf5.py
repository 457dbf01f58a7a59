"""read_hdf5: groups of 1-D datasets, 2-D and compound datasets, pandas tables."""

from __future__ import annotations

import json
import multiprocessing
import operator
import pickle

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tables

from shardfit.data.hdf5 import read_hdf5
from shardfit.errors import ReadError

N = 170


def _concat(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


@pytest.fixture
def columns(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "f": rng.normal(size=N),
        "i": np.arange(N, dtype=">i4"),
        "name": np.array([f"n{i}" for i in range(N)], dtype=object),
        "code": np.array([f"c{i % 4}".encode() for i in range(N)], dtype="S2"),
    }


@pytest.fixture
def grouped(tmp_path, columns):
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("grp")
        g.create_dataset("f", data=columns["f"], chunks=(10,))
        g.create_dataset("i", data=columns["i"], chunks=(10,))
        g.create_dataset("name", data=columns["name"], dtype=h5py.string_dtype(), chunks=(10,))
        g.create_dataset("code", data=columns["code"], chunks=(10,))
        g.create_group("sub").create_dataset("ignored", data=np.zeros(3))
        f.create_dataset("X", data=np.arange(N * 4.0).reshape(N, 4), chunks=(16, 2))
    return path


def _expected(columns: dict[str, np.ndarray], names: list[str]) -> pa.Table:
    decoded = {
        "f": pa.array(columns["f"]),
        "i": pa.array(columns["i"].astype("<i4")),
        "name": pa.array(columns["name"].tolist(), type=pa.string()),
        "code": pa.array([c.decode() for c in columns["code"]], type=pa.string()),
    }
    return pa.table({n: decoded[n] for n in names})


@pytest.mark.parametrize(("nparts", "partition_rows"), [(1, None), (3, 60), (17, 10)])
def test_group_partitions_concatenate_to_the_datasets(grouped, columns, nparts, partition_rows):
    source = read_hdf5(grouped, "/grp", partition_rows=partition_rows)
    assert source.npartitions == nparts
    # h5py lists a group's members by name; byte strings decode to str.
    expected = _expected(columns, ["code", "f", "i", "name"])
    assert source.schema.equals(expected.schema)
    assert _concat(source).equals(expected)


def test_partitions_align_to_chunks(grouped):
    rows = lambda source: [p.stop - p.start for p in source.partitions]  # noqa: E731
    assert rows(read_hdf5(grouped, "/grp", partition_rows=65))[:2] == [60, 60]
    assert rows(read_hdf5(grouped, "/grp", partition_rows=5))[:2] == [5, 5]  # below a chunk
    assert read_hdf5(grouped, "/grp").meta["partition_rows"] == 1_000_000
    assert read_hdf5(grouped, "/X").meta["partition_rows"] == 1_000_000
    assert rows(read_hdf5(grouped, "/X", partition_rows=40)) == [32] * 5 + [10]


def test_columns_select_and_order(grouped, columns):
    source = read_hdf5(grouped, "/grp", columns=["name", "f"], partition_rows=60)
    assert source.columns == ["name", "f"]
    assert _concat(source).equals(_expected(columns, ["name", "f"]))
    part = source.partitions[1]
    assert part.key == "data.h5:/grp[60:120]"
    assert part.read(["f"]).table.column("f").to_pylist() == columns["f"][60:120].tolist()
    with pytest.raises(ReadError, match=r"unknown column 'i' in partition data.h5:/grp\[60:120\]"):
        part.read(["i"])
    with pytest.raises(ReadError, match=r"unknown column 'zz' in data.h5:/grp; available .*'code'"):
        read_hdf5(grouped, "/grp", columns=["zz"])


@pytest.mark.parametrize(("nparts", "partition_rows"), [(1, 176), (3, 64), (17, 10)])
def test_matrix_dataset_with_names_and_projection(grouped, nparts, partition_rows):
    X = np.arange(N * 4.0).reshape(N, 4)  # chunks of 16 rows
    source = read_hdf5(grouped, "/X", names=list("abcd"), partition_rows=partition_rows)
    assert source.npartitions == nparts
    assert _concat(source).equals(pa.table({c: X[:, j] for j, c in enumerate("abcd")}))
    picked = read_hdf5(grouped, "/X", columns=["x3", "x1"])
    got = picked.partitions[0].read().table
    assert got.equals(pa.table({"x3": X[:, 3], "x1": X[:, 1]}))
    assert picked.partitions[0].read(["x1"]).table.column("x1").to_pylist() == X[:, 1].tolist()


def test_pytables_table_is_a_compound_dataset(tmp_path):
    class Row(tables.IsDescription):
        a = tables.Float64Col(pos=0)
        tag = tables.StringCol(6, pos=1)
        k = tables.Int16Col(pos=2)

    path = tmp_path / "pt.h5"
    with tables.open_file(path, "w") as f:
        table = f.create_table("/", "readings", Row, chunkshape=(16,))
        table.append([(i / 4, f"t{i % 3}".encode(), i) for i in range(N)])
    source = read_hdf5(path, partition_rows=50)  # the file's only table
    assert source.name == "pt.h5:/readings"
    assert [p.stop - p.start for p in source.partitions] == [48, 48, 48, 26]
    expected = pa.table(
        {
            "a": np.arange(N) / 4,
            "tag": pa.array([f"t{i % 3}" for i in range(N)]),
            "k": np.arange(N, dtype=np.int16),
        }
    )
    assert _concat(source).equals(expected)
    got = source.partitions[1].read(["k", "tag"]).table
    assert got.equals(expected.slice(48, 48).select(["k", "tag"]))
    assert source.partitions[1].read(["tag"]).table.column("tag")[0].as_py() == "t0"


@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_pandas_table_reads_back_the_frame(tmp_path, rng, nparts):
    df = pd.DataFrame(
        {
            "x": rng.normal(size=N),
            "k": pd.Categorical([["a", "b", "c"][i % 3] for i in range(N)]),
            "s": [f"s{i}" for i in range(N)],
            "n": np.arange(N),
        },
        index=np.arange(N) * 3,
    )
    path = tmp_path / "store.h5"
    df.to_hdf(path, key="frames/df", format="table")
    source = read_hdf5(path, "/frames/df", partition_rows=-(-N // nparts))
    assert source.npartitions == nparts
    assert source.schema.field("k").type == pa.dictionary(pa.int8(), pa.string())
    assert source.schema.field("s").type == pa.string()
    out = _concat(source)
    assert out.schema.equals(source.schema)
    pd.testing.assert_frame_equal(out.to_pandas(), df.reset_index(drop=True))
    got = source.partitions[-1].read(["s", "x"]).table
    assert got.column_names == ["s", "x"]
    assert got.column("s")[0].as_py() == f"s{source.partitions[-1].start}"
    assert read_hdf5(path).name == "store.h5:/frames/df"  # the file's only table
    picked = read_hdf5(path, "/frames/df", columns=["n", "k"])
    assert picked.partitions[0].read().table.column_names == ["n", "k"]


def test_pandas_fixed_format_reads_numbers_and_refuses_pickled_text(tmp_path):
    # Fixed format (to_hdf's default) is read by row ranges; its text columns are
    # pickles, which shardfit never loads: refused by name, with the remedy.
    path = tmp_path / "fixed.h5"
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.5], "t": ["a", "b", "c"]})
    frame.to_hdf(path, key="df", format="fixed")
    with pytest.raises(
        ReadError, match=r"fixed.h5:/df .*column 't' .*pickle.*columns=\['x'\].*format=\"table\""
    ):
        read_hdf5(path, "/df")
    source = read_hdf5(path, "/df", columns=["x"])
    read = pd.concat([p.read().table.to_pandas() for p in source.partitions])
    assert read["x"].tolist() == [1.0, 2.0, 3.5]


def test_wrong_keys_list_what_the_file_holds(grouped, tmp_path):
    with pytest.raises(ReadError, match=r"no key '/nope' in data.h5; the file holds: /X \(2-D"):
        read_hdf5(grouped, "/nope")
    with pytest.raises(ReadError, match=r"/grp/f \(1-D float64, shape \(170,\)\)"):
        read_hdf5(grouped, "/nope")
    with pytest.raises(ReadError, match=r"/grp/name \(1-D string, shape \(170,\)\)"):
        read_hdf5(grouped, "/nope")
    with h5py.File(tmp_path / "odd.h5", "w") as f:
        f.create_group("g2").create_dataset("M", data=np.zeros((3, 3)))
        f.create_dataset("a", data=np.zeros(5))
        f.create_dataset("b", data=np.zeros(6))
        f.create_dataset("cube", data=np.zeros((2, 2, 2)))
    with pytest.raises(ReadError, match=r"differ in length: \{'/a': 5, '/b': 6\}"):
        read_hdf5(tmp_path / "odd.h5")
    with pytest.raises(ReadError, match=r"group /g2 holds no 1-D datasets in odd.h5; the file"):
        read_hdf5(tmp_path / "odd.h5", "/g2")
    with pytest.raises(ReadError, match=r"odd.h5:/cube has shape \(2, 2, 2\)"):
        read_hdf5(tmp_path / "odd.h5", "/cube")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ReadError, match=r"cannot open .*text.h5 as an HDF5 file"):
        read_hdf5(tmp_path / "text.h5")
    with pytest.raises(ReadError, match=r"no such file or directory: .*none.h5"):
        read_hdf5(tmp_path / "none.h5")


def test_one_dimensional_dataset_is_one_column(grouped, columns):
    source = read_hdf5(grouped, "/grp/f", partition_rows=100)
    assert source.columns == ["f"]
    assert _concat(source).column("f").to_pylist() == columns["f"].tolist()
    assert read_hdf5(grouped, "/grp/f", names=["y"]).columns == ["y"]


def test_zero_rows_give_one_empty_partition(tmp_path):
    with h5py.File(tmp_path / "empty.h5", "w") as f:
        f.create_dataset("X", shape=(0, 2), dtype="f4", maxshape=(None, 2), chunks=(8, 2))
    source = read_hdf5(tmp_path / "empty.h5", "/X")
    assert source.npartitions == 1
    got = source.partitions[0].read().table
    assert got.num_rows == 0
    assert got.schema == pa.schema([("x0", pa.float32()), ("x1", pa.float32())])


def test_locate_fingerprint_and_pickle_in_another_process(grouped, columns):
    source = read_hdf5(grouped, "/grp", partition_rows=60)
    part = source.partitions[2]
    assert part.locate(7) == "file data.h5, /grp, row 127 (0-based)"
    fp = json.loads(part.fingerprint())
    assert (fp["path"], fp["start"], fp["stop"]) == (str(grouped.resolve()), 120, 170)
    assert fp["size"] == grouped.stat().st_size
    for p in source.partitions:
        assert len(pickle.dumps(p)) < 1000
        assert pickle.loads(pickle.dumps(p)) == p
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(operator.methodcaller("read", ["name", "i"]), source.partitions)
    assert pa.concat_tables([r.table for r in results]).equals(_expected(columns, ["name", "i"]))
