"""Issue 2 acceptance: the same data from every source and partitioning gives one design.

CSV (one file split into byte ranges; several files), Parquet, HDF5, pandas and Dask,
each with 1, 3 and 17 partitions: ``dmatrices`` gives bitwise identical matrices, equal
to formulaic's ``model_matrix`` on the whole data in memory, with a categorical level
that some partitions lack, interactions and stateful transforms.
"""

from __future__ import annotations

import math
from pathlib import Path

import dask.dataframe as dd
import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from design_cases import FORMULA, make_frame
from formulaic import model_matrix

import shardfit
from shardfit.data.csv import read_csv
from shardfit.data.dask_source import from_dask
from shardfit.data.hdf5 import read_hdf5
from shardfit.data.memory import from_pandas
from shardfit.data.parquet import read_parquet

PARTITIONS = (1, 3, 17)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame(np.random.default_rng(7), n=900)


@pytest.fixture(scope="module")
def reference(frame: pd.DataFrame):
    return model_matrix(FORMULA, frame)


def _csv_one_file(frame: pd.DataFrame, folder: Path, k: int):
    path = folder / "one.csv"
    if not path.exists():
        frame.to_csv(path, index=False)
    source = read_csv(path, partition_bytes=math.ceil(path.stat().st_size / k))
    assert source.npartitions == k
    return source


def _csv_many_files(frame: pd.DataFrame, folder: Path, k: int):
    sub = folder / f"many{k}"
    sub.mkdir(exist_ok=True)
    for i, piece in enumerate(np.array_split(np.arange(len(frame)), k)):
        frame.iloc[piece].to_csv(sub / f"part-{i:03d}.csv", index=False)
    return read_csv(str(sub / "part-*.csv"))


def _parquet(frame: pd.DataFrame, folder: Path, k: int):
    path = folder / f"data{k}.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, path, row_group_size=math.ceil(len(frame) / k))
    return read_parquet(path)


def _hdf5(frame: pd.DataFrame, folder: Path, k: int):
    path = folder / "data.h5"
    if not path.exists():
        with h5py.File(path, "w") as handle:
            group = handle.create_group("table")
            for name in frame.columns:
                values = frame[name].to_numpy()
                if frame[name].dtype.kind in "OUT" or str(frame[name].dtype) == "str":
                    group.create_dataset(
                        name, data=values.astype(object), dtype=h5py.string_dtype()
                    )
                else:
                    group.create_dataset(name, data=values)
    return read_hdf5(path, "/table", partition_rows=math.ceil(len(frame) / k))


def _pandas(frame: pd.DataFrame, folder: Path, k: int):
    return from_pandas(frame, k)


def _dask(frame: pd.DataFrame, folder: Path, k: int):
    return from_dask(dd.from_pandas(frame, npartitions=k, sort=False))


SOURCES = {
    "csv-byte-ranges": _csv_one_file,
    "csv-files": _csv_many_files,
    "parquet": _parquet,
    "hdf5": _hdf5,
    "pandas": _pandas,
    "dask": _dask,
}


def test_every_source_and_partitioning_gives_one_design(
    frame: pd.DataFrame, reference, tmp_path: Path
) -> None:
    baseline_y, baseline_X = shardfit.dmatrices(FORMULA, frame)
    assert list(baseline_X.columns) == list(reference.rhs.columns)
    np.testing.assert_allclose(
        baseline_X.to_numpy(), reference.rhs.to_numpy(), rtol=1e-12, atol=1e-10
    )
    np.testing.assert_array_equal(baseline_y.to_numpy(), reference.lhs.to_numpy()[:, 0])
    for name, make in SOURCES.items():
        for k in PARTITIONS:
            source = make(frame, tmp_path, k)
            assert source.npartitions >= min(k, 2) or k == 1, (name, k)
            y, X = shardfit.dmatrices(FORMULA, source)
            assert list(X.columns) == list(baseline_X.columns), (name, k)
            assert np.array_equal(X.to_numpy(), baseline_X.to_numpy()), (name, k)
            assert np.array_equal(y.to_numpy(), baseline_y.to_numpy()), (name, k)
            assert np.array_equal(X.index.to_numpy(), np.arange(len(frame))), (name, k)


def test_a_partition_lacks_a_level(frame: pd.DataFrame, tmp_path: Path) -> None:
    source = _csv_one_file(frame, tmp_path, 17)
    first = source.partitions[0].read(["g"]).table.column("g").to_pylist()
    assert "e" not in first  # so the design of that partition still has C(g)[T.e]
    spec = shardfit.learn_design(FORMULA, source, backend="serial").spec
    assert "C(g)[T.e]" in spec.column_names
