"""Turn whatever the user passed as data into a :class:`~shardfit.data.partition.Source`."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from shardfit.data._ranges import check_positive_int
from shardfit.data.hdf5 import read_hdf5
from shardfit.data.memory import from_arrays, from_arrow, from_pandas
from shardfit.data.npy import read_npy
from shardfit.data.parquet import read_parquet
from shardfit.data.partition import Source
from shardfit.errors import ReadError

__all__ = ["as_source"]

# Compressed text: read_csv decompresses these as a stream (one partition per file).
_CODECS = (".gz", ".bz2", ".zst", ".lz4", ".br")
# Longest suffixes first, so ".csv.gz" wins over ".gz" and ".tsv.bz2" over ".bz2".
_FORMATS: dict[str, str] = {
    **{
        f"{text}{codec}": kind
        for codec in _CODECS
        for text, kind in ((".csv", "csv"), (".tsv", "tsv"), (".txt", "csv"))
    },
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "csv",
    ".gz": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".zarr": "zarr",
    ".npy": "npy",
}

_ACCEPTED = (
    "a shardfit Source, a path or glob (str or os.PathLike) to CSV, TSV, Parquet, HDF5, "
    "Zarr or .npy data, a list of CSV or Parquet files, a pandas.DataFrame, a pyarrow.Table, "
    "a Dask DataFrame or Array, a 2-D NumPy array, or a design store (write_design, "
    "open_design) or its columns (store.X, store.y)"
)


# Compressions pyarrow cannot decompress (see _csv_lines.compression_of).
_UNSUPPORTED = (".xz", ".lzma", ".zip")


def _format_of(path: str) -> str:
    """The reader for ``path`` by its extension; a plain directory means Parquet."""
    name = path.rstrip("/\\").lower()
    if name.endswith(_UNSUPPORTED):
        raise ReadError(
            f"cannot read {path!r}: pyarrow cannot decompress {name.rsplit('.', 1)[1]} "
            f"files; decompress it, or recompress it as {', '.join(_CODECS)}"
        )
    for suffix, fmt in _FORMATS.items():
        if name.endswith(suffix):
            return fmt
    if Path(path).is_dir():
        return "parquet"
    raise ReadError(
        f"cannot tell the format of {path!r} from its extension; known extensions: "
        f"{', '.join(_FORMATS)} (and a directory of Parquet files)"
    )


def _read_paths(paths: list[str], partition_rows: int | None) -> Source:
    """Read one path or glob, or a list of files of one format, with its reader."""
    formats = {_format_of(p) for p in paths}
    if len(formats) > 1:
        raise ReadError(f"as_source reads a list of files of one format; got {sorted(formats)}")
    fmt = formats.pop()
    target: str | list[str] = paths[0] if len(paths) == 1 else paths
    if fmt in ("csv", "tsv"):
        from shardfit.data.csv import read_csv

        delimiter = "\t" if fmt == "tsv" else ","
        return read_csv(target, partition_rows=partition_rows, delimiter=delimiter)
    if fmt == "parquet":
        return read_parquet(target, partition_rows=partition_rows)
    if isinstance(target, list):
        raise ReadError(
            f"as_source reads lists of CSV or Parquet files; read {fmt} files one at a time"
        )
    if fmt == "hdf5":
        return read_hdf5(target, partition_rows=partition_rows)
    if fmt == "npy":
        return read_npy(target, partition_rows=partition_rows)
    from shardfit.data.zarr_source import read_zarr

    return read_zarr(target, partition_rows=partition_rows)


def _is_dask(data: object) -> bool:
    # Dask cannot have made ``data`` unless it is imported already; do not import it.
    dask = sys.modules.get("dask")
    return dask is not None and dask.is_dask_collection(data)


def _nparts(nrows: int, partition_rows: int | None) -> int:
    return 1 if partition_rows is None else max(1, math.ceil(nrows / partition_rows))


def as_source(data: Any, *, partition_rows: int | None = None) -> Source:
    """Return ``data`` as a :class:`~shardfit.data.partition.Source`.

    Parameters
    ----------
    data : Source, path or paths, DataFrame, Table, Dask collection, ndarray or DesignStore
        A Source is returned as it is; a design store (or its ``store.X``, ``store.y``)
        gives its stored rows, ``store.source()``. A path or glob picks the reader by its
        extension: ``.csv``, ``.txt``, ``.gz`` (CSV), ``.tsv`` (tab-separated),
        either compressed (``.csv.gz``, ``.csv.bz2``, ``.csv.zst``, ``.csv.lz4``,
        ``.csv.br``, the same for ``.tsv``: read as a stream, one partition per
        file; ``.xz`` and ``.zip`` are refused, pyarrow has no codec for them),
        ``.parquet``, ``.pq`` or a directory (Parquet),
        ``.h5``, ``.hdf5``, ``.hdf`` (HDF5), ``.zarr`` (Zarr), ``.npy`` (NumPy).
        A list or tuple of CSV (or of Parquet) files is read as one source. A pandas DataFrame,
        pyarrow Table, Dask collection or 2-D NumPy array is wrapped in memory.
    partition_rows : int, optional
        Rows per partition for files (see each reader), and for in-memory data the
        number of partitions ``ceil(n / partition_rows)``. Not for a Source or a
        Dask collection, which are partitioned already.

    Returns
    -------
    Source

    Raises
    ------
    TypeError
        For any other kind of ``data``; the message lists what is accepted.
    ReadError
        For a path with an unknown extension (the message lists the known ones), or
        when the reader fails.
    ValueError
        When ``partition_rows`` is given with a Source or a Dask collection.
    """
    check_positive_int(partition_rows, name="partition_rows", owner="as_source", optional=True)
    # A design store (and its store.X / store.y) reads as the store's rows: the design
    # package builds on this one, so it is recognized by its hook, not by its class.
    stored = getattr(type(data), "_shardfit_source", None)
    if stored is not None:
        data = stored(data)
    if isinstance(data, Source) or _is_dask(data):
        if partition_rows is not None:
            raise ValueError(
                f"The 'partition_rows' parameter of as_source cannot re-partition a "
                f"{type(data).__name__}, which has its partitions already; repartition "
                "it before, or pass the data it was made from."
            )
        if isinstance(data, Source):
            return data
        from shardfit.data.dask_source import from_dask

        return from_dask(data)
    if isinstance(data, str | os.PathLike):
        return _read_paths([os.fspath(data)], partition_rows)
    if (
        isinstance(data, list | tuple)
        and data
        and all(isinstance(p, str | os.PathLike) for p in data)
    ):
        return _read_paths([os.fspath(p) for p in data], partition_rows)
    # A DataFrame exists only once pandas is imported (worker processes never import it).
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return from_pandas(data, _nparts(len(data), partition_rows))
    if isinstance(data, pa.Table):
        return from_arrow(data, _nparts(data.num_rows, partition_rows))
    if isinstance(data, np.ndarray):
        return from_arrays(data, npartitions=_nparts(len(data), partition_rows))
    raise TypeError(f"as_source accepts {_ACCEPTED}. Got {type(data).__name__}.")
