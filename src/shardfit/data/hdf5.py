"""HDF5 files as a source: row ranges of datasets, aligned to their chunks.

Four layouts are read:

- a group whose children are 1-D datasets of one length (each a column);
- a 2-D dataset (its columns are the columns);
- a compound (structured) 1-D dataset, such as a PyTables ``Table``;
- a pandas ``HDFStore`` table written by ``DataFrame.to_hdf(..., format="table")``,
  read through :func:`pandas.read_hdf` with ``start`` / ``stop``.

Byte strings decode to ``str`` (UTF-8). The driver opens the file only to plan; each
worker opens it again and reads its own rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    pandas_schema,
    pandas_to_arrow,
    partition_size,
    reading,
    row_ranges,
)
from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.errors import ReadError

if TYPE_CHECKING:
    import h5py

__all__ = ["Hdf5Partition", "HdfStorePartition", "read_hdf5"]

_LISTED = 20  # entries of a file's contents shown in an error message


@dataclass(frozen=True)
class Hdf5Partition(Partition):
    """Rows ``start:stop`` of an HDF5 dataset, or of a group of 1-D datasets.

    Attributes
    ----------
    path, label : str
        The file's absolute path, and its name for keys and messages.
    node : str
        The group or dataset read (``"/measurements"``).
    layout : {"datasets", "matrix", "compound"}
        How columns are stored: one 1-D dataset each, as the columns of a 2-D
        dataset, or as the fields of a compound dataset.
    columns : tuple of str
        The source's columns, in order.
    stored : tuple of str or int
        Where each column is: a dataset path, a column index, or a field name.
    start, stop : int
        The row range, half-open.
    size, mtime_ns : int
        The file's size and modification time when the source was planned.
    """

    path: str
    label: str
    node: str
    layout: str
    columns: tuple[str, ...]
    stored: tuple[str | int, ...]
    start: int
    stop: int
    size: int
    mtime_ns: int

    @property
    def key(self) -> str:
        """``"data.h5:/grp[0:1000000]"``: file, node and half-open row range."""
        return f"{self.label}:{self.node}[{self.start}:{self.stop}]"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Read the rows of ``columns`` (all when ``None``), in that order."""
        wanted = check_columns(columns, self.columns, where=f"partition {self.key}")
        where = [self.stored[self.columns.index(c)] for c in wanted]
        rows = slice(self.start, self.stop)
        import h5py

        with reading(self.key, f"file {self.path}, {self.node}"), h5py.File(self.path, "r") as f:
            if self.layout == "datasets":
                arrays = [f[str(s)][rows] for s in where]
            elif self.layout == "compound":
                block = f[self.node].fields([str(s) for s in where])[rows]
                arrays = [block[str(s)] for s in where] if block.dtype.names else [block]
            else:
                block = f[self.node][rows]
                arrays = [block[:, int(s)] for s in where]
            table = arrays_to_table(wanted, arrays)
        return ReadResult(table, nbytes=table.nbytes)

    def locate(self, row: int) -> str:
        """``"file data.h5, /grp, row 1234 (0-based)"``."""
        return f"file {self.label}, {self.node}, row {self.start + row} (0-based)"

    def fingerprint(self) -> str:
        """The absolute path, size, mtime, node, columns and row range."""
        return dataclass_fingerprint(self)


@dataclass(frozen=True)
class HdfStorePartition(Partition):
    """Rows ``start:stop`` of a pandas ``HDFStore`` table, read with ``pd.read_hdf``.

    Attributes are those of :class:`Hdf5Partition`; ``node`` is the store key.
    """

    path: str
    label: str
    node: str
    columns: tuple[str, ...]
    start: int
    stop: int
    size: int
    mtime_ns: int
    schema: pa.Schema

    @property
    def key(self) -> str:
        """``"data.h5:/df[0:1000000]"``: file, store key and half-open row range."""
        return f"{self.label}:{self.node}[{self.start}:{self.stop}]"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Read the rows of ``columns`` (all when ``None``), in that order."""
        import pandas as pd

        wanted = list(check_columns(columns, self.columns, where=f"partition {self.key}"))
        schema = pa.schema([self.schema.field(c) for c in wanted])
        with reading(self.key, f"file {self.path}, {self.node}"):
            # All columns, then by their names as text: a frame's labels may be integers
            # (pd.DataFrame(array)), which columns=wanted would not find. pandas reads
            # whole rows of a table anyway, whatever columns it is given.
            frame = pd.read_hdf(self.path, self.node, start=self.start, stop=self.stop)
            frame.columns = [str(c) for c in frame.columns]
            table = pandas_to_arrow(frame[wanted], schema)
        return ReadResult(table, nbytes=table.nbytes)

    def locate(self, row: int) -> str:
        """``"file data.h5, /df, row 1234 (0-based)"``."""
        return f"file {self.label}, {self.node}, row {self.start + row} (0-based)"

    def fingerprint(self) -> str:
        """The absolute path, size, mtime, key, columns and row range."""
        return dataclass_fingerprint(self)


# h5py is an optional dependency, imported where it is used (Python caches the import).
def _is_group(obj: Any) -> bool:
    import h5py

    return isinstance(obj, h5py.Group)


def _is_dataset(obj: Any) -> bool:
    import h5py

    return isinstance(obj, h5py.Dataset)


def _pandas_type(obj: Any) -> str:
    """The ``pandas_type`` attribute pandas writes on its groups; ``""`` elsewhere."""
    value = obj.attrs.get("pandas_type", "") if _is_group(obj) else ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _is_column(obj: Any) -> bool:
    return _is_dataset(obj) and obj.ndim == 1 and obj.dtype.names is None


def _is_table(obj: Any) -> bool:
    """A dataset or pandas table that holds a whole table by itself."""
    if _is_dataset(obj):
        return (obj.ndim == 2 and obj.dtype.names is None) or (
            obj.ndim == 1 and obj.dtype.names is not None
        )
    return _pandas_type(obj) == "frame_table"


def _walk(group: h5py.Group) -> list[Any]:
    """Every dataset and pandas object below ``group``, not looking inside pandas groups."""
    found: list[Any] = []
    for name in group:
        obj = group.get(name)
        if _is_dataset(obj) or (_is_group(obj) and _pandas_type(obj)):
            found.append(obj)
        elif _is_group(obj):
            found.extend(_walk(obj))
    return found


def _describe(obj: Any) -> str:
    if _is_group(obj):
        return f"{obj.name} (pandas {_pandas_type(obj)})"
    import h5py

    text = h5py.check_string_dtype(obj.dtype) is not None
    kind = "compound" if obj.dtype.names else f"{obj.ndim}-D {'string' if text else obj.dtype}"
    return f"{obj.name} ({kind}, shape {obj.shape})"


def _missing(label: str, f: h5py.File, what: str) -> ReadError:
    """A ReadError saying ``what`` and listing what the file holds."""
    found = [_describe(obj) for obj in _walk(f)]
    listing = "; ".join(found[:_LISTED]) or "nothing"
    if len(found) > _LISTED:
        listing += f"; and {len(found) - _LISTED} more"
    return ReadError(f"{what} in {label}; the file holds: {listing}")


def _target(f: h5py.File, key: str, label: str) -> Any:
    """The object to read: ``f[key]``; under the default key, the file's only table."""
    if key not in f:
        raise _missing(label, f, f"no key {key!r}")
    obj = f[key]
    if key == "/" and not any(_is_column(obj.get(n)) for n in obj):
        found = _walk(f)
        tables = [t for t in found if _is_table(t)]
        if len(tables) == 1:
            return tables[0]
        # The file's only object is a pandas one that cannot be read (format="fixed"):
        # name it, and why, rather than say that the root holds no columns.
        if not tables and len(found) == 1 and _pandas_type(found[0]):
            return found[0]
    return obj


def read_hdf5(
    path: str | os.PathLike[str],
    key: str = "/",
    *,
    columns: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    partition_rows: int | None = None,
) -> Source:
    """Plan a source over a table stored in an HDF5 file.

    Parameters
    ----------
    path : str or path-like
        The HDF5 file.
    key : str, default "/"
        The group, dataset or pandas store key to read. Under the default, a root
        group without 1-D datasets but with exactly one table (2-D or compound
        dataset, pandas table) anywhere in the file reads that table.
    columns : sequence of str, optional
        Read only these columns, in this order (names of the datasets of a group,
        the fields of a compound dataset, the columns of a pandas table, or the
        ``names`` of a 2-D dataset).
    names : sequence of str, optional
        Names of the columns of a 2-D (or 1-D) dataset; ``x0 .. x{k-1}`` by default.
    partition_rows : int, optional
        Rows per partition, rounded down to whole chunks when at least one chunk.
        By default the number of whole chunks nearest 1,000,000 rows (at most about
        256 MiB), or 1,000,000 rows for contiguous storage.

    Returns
    -------
    Source

    Raises
    ------
    ReadError
        When the file is missing or not HDF5, the key is absent (the message lists
        the file's datasets and tables), 1-D datasets differ in length, or a layout
        is unsupported (pandas ``format="fixed"``, 3-D datasets).
    """
    check_positive_int(partition_rows, name="partition_rows", owner="read_hdf5", optional=True)
    full, size, mtime_ns = file_stat(path)
    label = os.path.basename(full)
    import h5py

    try:
        f = h5py.File(full, "r")
    except OSError as e:
        raise ReadError(f"cannot open {full} as an HDF5 file: {e}") from e
    with f:
        obj = _target(f, key, label)
        node = obj.name  # h5py forgets names once the file is closed
        where = f"{label}:{node}"
        if _pandas_type(obj):
            return _plan_store(obj, where, (full, size, mtime_ns), columns, names, partition_rows)
        layout, all_cols, stored, dtypes, ds = _layout(f, obj, label, names)
        nrows, chunks = ds.shape[0], ds.chunks
    chosen = check_columns(columns, all_cols, where=where)
    stored = tuple(stored[all_cols.index(c)] for c in chosen)
    dtypes = [dtypes[all_cols.index(c)] for c in chosen]
    schema = pa.schema(
        [(c, numpy_arrow_type(t, where=f"column {c!r} of {where}")) for c, t in zip(chosen, dtypes)]
    )
    rows = partition_size(
        partition_rows,
        chunk_rows=chunks[0] if chunks else None,
        row_bytes=sum(t.itemsize for t in dtypes),
    )
    parts = tuple(
        Hdf5Partition(
            path=full,
            label=label,
            node=node,
            layout=layout,
            columns=chosen,
            stored=stored,
            start=a,
            stop=b,
            size=size,
            mtime_ns=mtime_ns,
        )
        for a, b in row_ranges(nrows, rows)
    )
    return Source(
        name=where,
        partitions=parts,
        schema=schema,
        meta={"format": "hdf5", "layout": layout, "nrows": nrows, "partition_rows": rows},
    )


def _layout(
    f: h5py.File, obj: Any, label: str, names: Sequence[str] | None
) -> tuple[str, tuple[str, ...], tuple[str | int, ...], list[np.dtype], h5py.Dataset]:
    """Layout, column names, stored places, dtypes and a representative dataset."""
    if _is_group(obj):
        if names is not None:
            raise ValueError(
                "The 'names' parameter of read_hdf5 applies to a 2-D or 1-D dataset; "
                f"the datasets of group {obj.name} name its columns."
            )
        dsets = [obj[n] for n in obj if _is_column(obj.get(n))]
        if not dsets:
            raise _missing(label, f, f"group {obj.name} holds no 1-D datasets")
        lengths = {d.name: d.shape[0] for d in dsets}
        if len(set(lengths.values())) > 1:
            raise ReadError(f"the 1-D datasets of {label}:{obj.name} differ in length: {lengths}")
        cols = tuple(d.name.rsplit("/", 1)[-1] for d in dsets)
        return "datasets", cols, tuple(d.name for d in dsets), [d.dtype for d in dsets], dsets[0]
    if obj.dtype.names is not None:
        if obj.ndim != 1 or names is not None:
            raise ReadError(
                f"{label}:{obj.name} is a compound dataset of shape {obj.shape}: it must be "
                "1-D, and its fields name the columns (give no 'names')"
            )
        fields = tuple(obj.dtype.names)
        return "compound", fields, fields, [obj.dtype[n] for n in fields], obj
    if obj.ndim == 1:
        cols = default_names(1, names or [obj.name.rsplit("/", 1)[-1]], owner="read_hdf5")
        return "datasets", cols, (obj.name,), [obj.dtype], obj
    if obj.ndim == 2:
        cols = default_names(obj.shape[1], names, owner="read_hdf5")
        return "matrix", cols, tuple(range(len(cols))), [obj.dtype] * len(cols), obj
    raise ReadError(f"{label}:{obj.name} has shape {obj.shape}; read_hdf5 reads 1-D and 2-D data")


def _plan_store(
    group: h5py.Group,
    where: str,
    stat: tuple[str, int, int],
    columns: Sequence[str] | None,
    names: Sequence[str] | None,
    partition_rows: int | None,
) -> Source:
    """Plan a pandas HDFStore table (``format="table"``)."""
    import pandas as pd

    full, size, mtime_ns = stat
    kind = _pandas_type(group)
    if kind != "frame_table" or "table" not in group:
        raise ReadError(
            f"{where} is a pandas {kind!r} object; read_hdf5 reads DataFrames written "
            'with to_hdf(..., format="table"), which can be read in row ranges'
        )
    if names is not None:
        raise ValueError(
            "The 'names' parameter of read_hdf5 applies to a 2-D or 1-D dataset; "
            f"the pandas table {where} names its columns."
        )
    table = group["table"]
    with reading(where, f"file {full}"):
        empty = pd.read_hdf(full, group.name, start=0, stop=0)
    # Columns are named by their labels as text (integer labels of pd.DataFrame(array)
    # become "0", "1", ...), so labels must stay distinct as text.
    labels = [str(c) for c in empty.columns]
    if len(set(labels)) != len(labels):
        raise ReadError(
            f"the columns of the pandas table {where} are not distinct as text: "
            f"{list(empty.columns)!r}; rename them before writing the table"
        )
    empty.columns = labels
    chosen = check_columns(columns, labels, where=where)
    schema = pandas_schema(empty[list(chosen)])
    rows = partition_size(
        partition_rows,
        chunk_rows=table.chunks[0] if table.chunks else None,
        row_bytes=table.dtype.itemsize,
    )
    parts = tuple(
        HdfStorePartition(
            path=full,
            label=os.path.basename(full),
            node=group.name,
            columns=chosen,
            start=a,
            stop=b,
            size=size,
            mtime_ns=mtime_ns,
            schema=schema,
        )
        for a, b in row_ranges(table.shape[0], rows)
    )
    meta = {"format": "hdf5", "layout": "pandas", "nrows": table.shape[0], "partition_rows": rows}
    return Source(name=where, partitions=parts, schema=schema, meta=meta)
