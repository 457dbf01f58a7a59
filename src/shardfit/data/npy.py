"""NumPy ``.npy`` files as a source, memory-mapped on the worker.

Either one file (a 2-D array whose columns are the columns, a 1-D array, or a 1-D
structured array whose fields are the columns) or a mapping of column names to 1-D
files of equal length. A partition holds paths and a row range; :meth:`read` maps
the file with ``np.load(mmap_mode="r")`` and copies only its rows.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from shardfit.data._ranges import (
    arrays_to_table,
    check_columns,
    check_positive_int,
    dataclass_fingerprint,
    default_names,
    file_stat,
    numpy_arrow_type,
    partition_size,
    reading,
    row_ranges,
)
from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.errors import ReadError

__all__ = ["NpyPartition", "read_npy"]

PathArg = str | os.PathLike[str]


_MAGIC = b"\x93NUMPY"


def _open(path: str) -> np.ndarray:
    """Memory-map ``path``; a ReadError says why when it cannot be."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(_MAGIC))
        if magic != _MAGIC:
            # np.load takes any other file for a pickle and says it holds "pickled
            # (object) data", which misleads about a text file or an .npz.
            raise ReadError(
                f"cannot read {path} as a .npy file: it does not start with NumPy's "
                "magic string (write it with numpy.save)"
            )
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise ReadError(f"cannot memory-map {path}: {e}") from e
    except OSError as e:
        raise ReadError(f"cannot read {path} as a .npy file: {e}") from e


@dataclass(frozen=True)
class NpyPartition(Partition):
    """Rows ``start:stop`` of one or more memory-mappable ``.npy`` files.

    Attributes
    ----------
    label : str
        The data's name in keys and messages (the file name, or the first file's).
    layout : {"matrix", "fields", "files"}
        ``"matrix"``: column ``j`` of a 2-D (or the one column of a 1-D) array in
        ``paths[0]``; ``"fields"``: the fields of a structured array in ``paths[0]``;
        ``"files"``: column ``j`` is the 1-D array in ``paths[j]``.
    columns : tuple of str
        All the columns, in order.
    paths : tuple of str
        Absolute paths of the files read.
    start, stop : int
        The row range, half-open.
    sizes, mtimes_ns : tuple of int
        Each file's size and modification time when the source was planned.
    """

    label: str
    layout: str
    columns: tuple[str, ...]
    paths: tuple[str, ...]
    start: int
    stop: int
    sizes: tuple[int, ...]
    mtimes_ns: tuple[int, ...]

    @property
    def key(self) -> str:
        """``"X.npy[0:100000]"``: the data's name and the half-open row range."""
        return f"{self.label}[{self.start}:{self.stop}]"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Copy the rows of ``columns`` (all when ``None``) out of the memory map."""
        wanted = check_columns(columns, self.columns, where=f"partition {self.key}")
        rows = slice(self.start, self.stop)
        with reading(self.key, f"files {', '.join(self.paths)}"):
            for path, size in zip(self.paths, self.sizes):
                if os.stat(path).st_size != size:
                    raise ReadError(
                        f"file {path} changed since the source was planned; "
                        f"partition {self.key} no longer describes it: plan the source again"
                    )
            if self.layout == "files":
                arrays = [_open(self.paths[self.columns.index(c)])[rows] for c in wanted]
            elif self.layout == "fields":
                data = _open(self.paths[0])[rows]
                arrays = [data[c] for c in wanted]
            else:
                data = _open(self.paths[0])[rows]
                data = data if data.ndim == 2 else data[:, np.newaxis]
                arrays = [data[:, self.columns.index(c)] for c in wanted]
            # Copy out of the map: a table must not depend on the file staying as it is.
            table = arrays_to_table(wanted, [np.array(a) for a in arrays])
        return ReadResult(table, nbytes=table.nbytes)

    def locate(self, row: int) -> str:
        """``"row 1234 (0-based) of X.npy"``."""
        return f"row {self.start + row} (0-based) of {self.label}"

    def fingerprint(self) -> str:
        """The absolute paths, sizes, mtimes and the row range (all the fields)."""
        return dataclass_fingerprint(self)


Stat = tuple[str, int, int]


def _plan_mapping(
    mapping: Mapping[str, PathArg],
) -> tuple[tuple[str, ...], list[Stat], list[np.dtype], int]:
    """Columns, file stats, dtypes and row count of a mapping of names to 1-D files."""
    if not mapping:
        raise ReadError("read_npy was given an empty mapping of columns")
    stats = [file_stat(p) for p in mapping.values()]
    arrays = [_open(full) for full, _, _ in stats]
    for (full, _, _), a in zip(stats, arrays):
        if a.ndim != 1 or a.dtype.names is not None:
            raise ReadError(
                f"read_npy needs plain 1-D arrays in a mapping; {full} has shape {a.shape} "
                f"and dtype {a.dtype}"
            )
    lengths = {full: a.shape[0] for (full, _, _), a in zip(stats, arrays)}
    if len(set(lengths.values())) > 1:
        raise ReadError(f"the mapped .npy files differ in length: {lengths}")
    return tuple(str(c) for c in mapping), stats, [a.dtype for a in arrays], arrays[0].shape[0]


def _plan_file(
    path: PathArg, names: Sequence[str] | None
) -> tuple[str, tuple[str, ...], list[np.dtype]]:
    """Layout, columns and dtypes of a single file."""
    full = os.path.abspath(os.fspath(path))
    data = _open(full)
    if data.ndim not in (1, 2):
        raise ReadError(f"read_npy needs a 1-D or 2-D array; {full} has shape {data.shape}")
    if data.dtype.names is None:
        ncols = data.shape[1] if data.ndim == 2 else 1
        return "matrix", default_names(ncols, names, owner="read_npy"), [data.dtype] * ncols
    if names is not None or data.ndim != 1:
        raise ReadError(
            f"{full} holds a structured array of shape {data.shape}: it must be 1-D, and "
            "its fields name the columns (give no 'names')"
        )
    return "fields", tuple(data.dtype.names), [data.dtype[c] for c in data.dtype.names]


def read_npy(
    path_or_mapping: PathArg | Mapping[str, PathArg],
    *,
    names: Sequence[str] | None = None,
    partition_rows: int | None = None,
) -> Source:
    """Plan a source over ``.npy`` files, memory-mapped where they are read.

    Parameters
    ----------
    path_or_mapping : str, path-like, or mapping of str to path
        A 2-D array (its columns are the columns), a 1-D array (one column), a 1-D
        structured array (its fields are the columns); or a mapping from column
        name to a 1-D array file, all of one length, in the mapping's order.
    names : sequence of str, optional
        Names of the columns of a 2-D (or 1-D) array; ``x0 .. x{k-1}`` by default.
    partition_rows : int, optional
        Rows per partition. By default 1,000,000 rows, fewer for wide rows (about
        256 MiB per partition).

    Returns
    -------
    Source
        At least one partition; zero rows give one empty partition.

    Raises
    ------
    ReadError
        When a file is missing, not a ``.npy`` file, holds Python objects, has more
        than two dimensions, or the mapped files differ in length (the message
        names the files).
    """
    check_positive_int(partition_rows, name="partition_rows", owner="read_npy", optional=True)
    if isinstance(path_or_mapping, Mapping):
        if names is not None:
            raise ValueError(
                "The 'names' parameter of read_npy applies to a single file; "
                "a mapping names its columns by its keys."
            )
        columns, stats, dtypes, nrows = _plan_mapping(path_or_mapping)
        layout = "files"
    else:
        stats = [file_stat(path_or_mapping)]
        layout, columns, dtypes = _plan_file(stats[0][0], names)
        nrows = _open(stats[0][0]).shape[0]
    label = os.path.basename(stats[0][0])
    schema = pa.schema(
        [
            (c, numpy_arrow_type(t, where=f"column {c!r} of {label}"))
            for c, t in zip(columns, dtypes)
        ]
    )
    size = partition_size(
        partition_rows, chunk_rows=None, row_bytes=sum(t.itemsize for t in dtypes)
    )
    parts = tuple(
        NpyPartition(
            label=label,
            layout=layout,
            columns=columns,
            paths=tuple(full for full, _, _ in stats),
            start=a,
            stop=b,
            sizes=tuple(s for _, s, _ in stats),
            mtimes_ns=tuple(m for _, _, m in stats),
        )
        for a, b in row_ranges(nrows, size)
    )
    return Source(
        name=label, partitions=parts, schema=schema, meta={"format": "npy", "nrows": nrows}
    )
