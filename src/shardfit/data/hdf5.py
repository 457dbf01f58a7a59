"""HDF5 files as a source: row ranges of datasets, aligned to their chunks.

Five layouts are read:

- a group whose children are 1-D datasets of one length (each a column);
- a 2-D dataset (its columns are the columns);
- a compound (structured) 1-D dataset, such as a PyTables ``Table``;
- a pandas ``HDFStore`` table written by ``DataFrame.to_hdf(..., format="table")``,
  read through :func:`pandas.read_hdf` with ``start`` / ``stop``;
- a pandas frame written with ``format="fixed"`` (``to_hdf``'s default): each block of
  columns is a 2-D dataset (``block0_values``, one row per row of the frame), read
  by row ranges with h5py, so a partition holds only its rows. Text (object or str)
  columns are stored there as pickles, which are never loaded: reading one is refused.

Byte strings decode to ``str`` (UTF-8). The driver opens the file only to plan; each
worker opens it again and reads its own rows.
"""

from __future__ import annotations

import datetime
import os
import re
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

__all__ = ["Hdf5Partition", "HdfFixedPartition", "HdfStorePartition", "read_hdf5"]

_LISTED = 20  # entries of a file's contents shown in an error message


class _RowRange:
    """What the three kinds of HDF5 partition share: a key, a location and a
    fingerprint from the file's label, the node (dataset, group or store key) and the
    half-open row range ``start:stop``."""

    label: str
    node: str
    start: int
    stop: int

    @property
    def key(self) -> str:
        """``"data.h5:/grp[0:1000000]"``: file, node and half-open row range."""
        return f"{self.label}:{self.node}[{self.start}:{self.stop}]"

    def locate(self, row: int) -> str:
        """``"file data.h5, /grp, row 1234 (0-based)"``."""
        return f"file {self.label}, {self.node}, row {self.start + row} (0-based)"

    def fingerprint(self) -> str:
        """The absolute path, size, mtime, node, columns and row range."""
        return dataclass_fingerprint(self)


@dataclass(frozen=True)
class Hdf5Partition(_RowRange, Partition):
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

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Read the rows of ``columns`` (all when ``None``), in that order."""
        wanted = check_columns(columns, self.columns, where=f"partition {self.key}")
        where = [self.stored[self.columns.index(c)] for c in wanted]
        rows = slice(self.start, self.stop)
        import h5py

        _check_unchanged(self.path, self.size, self.key)
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
        _check_rows(table, self.start, self.stop, self.key, self.path)
        return ReadResult(table, nbytes=table.nbytes)


@dataclass(frozen=True)
class HdfStorePartition(_RowRange, Partition):
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

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Read the rows of ``columns`` (all when ``None``), in that order."""
        import pandas as pd

        wanted = list(check_columns(columns, self.columns, where=f"partition {self.key}"))
        # With the pandas metadata: it says which columns are Categoricals, whose
        # category order sets the levels (and the reference) as in statsmodels.
        schema = pa.schema([self.schema.field(c) for c in wanted], metadata=self.schema.metadata)
        _check_unchanged(self.path, self.size, self.key)
        with reading(self.key, f"file {self.path}, {self.node}"):
            # All columns, then by their names as text: a frame's labels may be integers
            # (pd.DataFrame(array)), which columns=wanted would not find. pandas reads
            # whole rows of a table anyway, whatever columns it is given.
            frame = pd.read_hdf(self.path, self.node, start=self.start, stop=self.stop)
            frame.columns = [str(c) for c in frame.columns]
            table = pandas_to_arrow(frame[wanted], schema)
        _check_rows(table, self.start, self.stop, self.key, self.path)
        return ReadResult(table, nbytes=table.nbytes)


@dataclass(frozen=True)
class HdfFixedPartition(_RowRange, Partition):
    """Rows ``start:stop`` of a pandas frame written with ``to_hdf(..., format="fixed")``.

    Each column is read with h5py from its block (``block{i}_values``, rows by
    columns) and rebuilt as :func:`pandas.read_hdf` rebuilds it (booleans, datetimes
    with their time zone, timedeltas), then converted as the ``format="table"``
    reader converts a frame. The frame's index is not a column, as for tables.

    Attributes
    ----------
    path, label, node, start, stop, size, mtime_ns
        As for :class:`HdfStorePartition`; ``node`` is the store key.
    columns : tuple of str
        The source's columns (the frame's labels as text), in order.
    stored : tuple of (str, int, str, str)
        For each column: its block dataset, its position in the block, how pandas
        stored it (a NumPy dtype, ``"bool"``, ``"datetime64[us]"``, ...) and its time
        zone (``""`` for none; a fixed offset as ``"+01:00"``).
    schema : pyarrow.Schema
        The columns' Arrow types.
    """

    path: str
    label: str
    node: str
    columns: tuple[str, ...]
    stored: tuple[tuple[str, int, str, str], ...]
    start: int
    stop: int
    size: int
    mtime_ns: int
    schema: pa.Schema

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Read the rows of ``columns`` (all when ``None``), in that order."""
        import pandas as pd

        wanted = check_columns(columns, self.columns, where=f"partition {self.key}")
        schema = pa.schema([self.schema.field(c) for c in wanted])
        if self.stop <= self.start:
            # An empty frame's blocks hold a placeholder, not rows.
            return ReadResult(schema.empty_table())
        places = [self.stored[self.columns.index(c)] for c in wanted]
        by_block: dict[str, list[int]] = {}
        for block, j, _, _ in places:
            by_block.setdefault(block, []).append(j)
        import h5py

        _check_unchanged(self.path, self.size, self.key)
        with reading(self.key, f"file {self.path}, {self.node}"), h5py.File(self.path, "r") as f:
            values: dict[tuple[str, int], np.ndarray] = {}
            for block, positions in by_block.items():
                ds = f[block]
                rows = slice(self.start, self.stop)
                picked = sorted(set(positions))
                # Only the block's columns asked for (h5py selects them in the file).
                whole = len(picked) == ds.shape[1]
                data = ds[rows] if whole else ds[rows, picked]
                for k, j in enumerate(picked):
                    values[block, j] = data[:, k]
            frame = pd.DataFrame(
                {
                    name: _fixed_column(values[block, j], kind, tz)
                    for name, (block, j, kind, tz) in zip(wanted, places)
                },
                columns=list(wanted),
            )
            table = pandas_to_arrow(frame, schema)
        _check_rows(table, self.start, self.stop, self.key, self.path)
        return ReadResult(table, nbytes=table.nbytes)


def _fixed_column(values: np.ndarray, kind: str, tz: str) -> Any:
    """A stored column as :func:`pandas.read_hdf` rebuilds it (``read_array``)."""
    import pandas as pd

    if kind == "bool":
        return values.astype(bool)  # PyTables stores booleans as an 8-bit bitfield
    if kind.startswith("datetime64"):
        stamps = pd.Series(values.astype(np.int64, copy=False).view(kind))
        if not tz:
            return stamps
        # Stored as UTC instants, with the zone beside them.
        return stamps.dt.tz_localize("UTC").dt.tz_convert(_zone(tz))
    if kind.startswith("timedelta64"):
        return values.astype(np.int64, copy=False).view(kind)
    return values


def _zone(tz: str) -> Any:
    """A stored zone: a name pandas knows, or a fixed offset ``"+01:00"``."""
    match = re.fullmatch(r"([+-])(\d\d):(\d\d)", tz)
    if match is None:
        return tz
    minutes = int(match[2]) * 60 + int(match[3])
    return datetime.timezone(datetime.timedelta(minutes=-minutes if match[1] == "-" else minutes))


def _check_unchanged(path: str, size: int, key: str) -> None:
    """Refuse a file whose size differs from the plan's, as the Parquet reader does:
    its row ranges no longer describe it (a shorter file would lose rows silently)."""
    try:
        now = os.stat(path).st_size
    except OSError as e:
        raise ReadError(f"cannot read partition {key}: {e}") from e
    if now != size:
        raise ReadError(
            f"file {path} changed since the source was planned ({size} bytes then, "
            f"{now} now); partition {key} no longer describes it: plan the source again"
        )


def _check_rows(table: pa.Table, start: int, stop: int, key: str, path: str) -> None:
    """Refuse a read that gave fewer rows than its range: slicing past the end of a
    dataset gives what is there, and rows would go missing without a word."""
    if table.num_rows != stop - start:
        raise ReadError(
            f"partition {key} read {table.num_rows} rows of file {path} where the plan "
            f"has {stop - start}: the data changed since the source was planned; plan "
            "the source again"
        )


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
    return _pandas_type(obj) in ("frame_table", "frame")


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
        # The file's only object is a pandas one that cannot be read (a Series):
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
    """Plan a pandas HDFStore frame (``format="table"``, or ``"fixed"``)."""
    import pandas as pd

    full, size, mtime_ns = stat
    kind = _pandas_type(group)
    if kind == "frame" and names is None:
        return _plan_fixed(group, where, stat, columns, partition_rows)
    if kind not in ("frame_table", "frame") or (kind == "frame_table" and "table" not in group):
        raise ReadError(
            f"{where} is a pandas {kind!r} object; read_hdf5 reads DataFrames written "
            'with to_hdf(..., format="table") or format="fixed", in row ranges'
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


def _text(value: Any) -> str:
    """An HDF5 attribute written by PyTables as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


# How PyTables stores a datetime.timezone attribute (a protocol-0 pickle; pandas writes
# UTC and fixed offsets so). It is matched as text and never unpickled.
_PICKLED_OFFSET = re.compile(
    rb"cdatetime\ntimezone\np\d+\n\(cdatetime\ntimedelta\np\d+\n"
    rb"\(I(-?\d+)\nI(\d+)\nI(\d+)\ntp\d+\nRp\d+\ntp\d+\nRp\d+\n\."
)


def _stored_zone(value: Any, where: str) -> str:
    """The time zone attribute of a datetime block: a name, or an offset as text."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    match = _PICKLED_OFFSET.fullmatch(raw)
    if match is None:
        if raw.startswith(b"c") and b"\n" in raw:  # any other pickle: not loaded
            raise ReadError(f"{where} has a time zone stored as a pickle ({raw[:40]!r}...)")
        return raw.decode()
    days, seconds, micro = (int(g) for g in match.groups())
    offset = days * 86400 + seconds
    if micro or offset % 60:
        raise ReadError(f"{where} has a time zone offset of {offset}s {micro}us, not whole minutes")
    if offset == 0:
        return "UTC"
    sign, minutes = ("-" if offset < 0 else "+"), abs(offset) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _fixed_labels(node: Any, encoding: str, where: str) -> list[str]:
    """The column labels stored in ``axis0`` or ``block{i}_items``, as text."""
    if "shape" in node.attrs:  # pandas' placeholder for an empty index
        return []
    kind = _text(node.attrs.get("kind", ""))
    values = node[()]
    if kind == "string":
        return [v.decode(encoding) if isinstance(v, bytes) else str(v) for v in values]
    if kind in ("integer", "float"):
        return [str(v.item()) for v in values]
    raise ReadError(
        f"the column labels of {where} are stored as {kind!r}; read_hdf5 reads frames "
        "whose column labels are text or numbers"
    )


def _fixed_block_kind(ds: Any, where: str) -> tuple[str, str]:
    """How a block's values are stored: (``read_array``'s value type, time zone)."""
    import h5py

    attrs = ds.attrs
    value_type = _text(attrs.get("value_type", ""))
    if _text(attrs.get("CLASS", "")) == "VLARRAY":
        return "pickle", ""
    if "shape" in attrs:  # an empty block: a placeholder, the dtype in value_type
        if value_type in ("object", "str", "string"):
            return "object", ""
        return value_type or str(ds.dtype), ""
    if value_type.startswith(("datetime64", "timedelta64")):
        if value_type in ("datetime64", "timedelta64"):
            value_type += "[ns]"  # written before pandas recorded units
        unit = np.datetime_data(np.dtype(value_type))[0]
        if unit not in ("s", "ms", "us", "ns"):
            raise ReadError(f"{where} holds {value_type}, which read_hdf5 does not read")
        tz = _stored_zone(attrs["tz"], where) if "tz" in attrs else ""
        return value_type, tz
    if value_type:
        raise ReadError(f"{where} holds {value_type} values, which read_hdf5 does not read")
    if ds.id.get_type().get_class() == h5py.h5t.BITFIELD:
        return "bool", ""
    return str(ds.dtype), ""


def _plan_fixed(
    group: h5py.Group,
    where: str,
    stat: tuple[str, int, int],
    columns: Sequence[str] | None,
    partition_rows: int | None,
) -> Source:
    """Plan a pandas frame written with ``format="fixed"``: its blocks by row ranges."""
    import pandas as pd

    full, size, mtime_ns = stat
    for axis in ("axis0", "axis1"):
        if _text(group.attrs.get(f"{axis}_variety", "regular")) != "regular":
            what = "columns" if axis == "axis0" else "rows"
            raise ReadError(
                f"{where} is a pandas frame with a MultiIndex on its {what}; read_hdf5 "
                'reads fixed-format frames with a plain index (or write format="table")'
            )
    encoding = _text(group.attrs.get("encoding", "UTF-8")) or "UTF-8"
    labels = _fixed_labels(group["axis0"], encoding, where)
    if len(set(labels)) != len(labels):
        raise ReadError(
            f"the columns of the pandas frame {where} are not distinct as text: "
            f"{labels!r}; rename them before writing the frame"
        )
    place: dict[str, tuple[str, int, str, str]] = {}
    lengths: dict[str, int] = {}
    itemsize: dict[str, int] = {}
    chunk_rows: dict[str, int | None] = {}
    for i in range(int(group.attrs.get("nblocks", 0))):
        ds = group[f"block{i}_values"]
        kind, tz = _fixed_block_kind(ds, f"block {ds.name} of {where}")
        items = _fixed_labels(group[f"block{i}_items"], encoding, where)
        empty = "shape" in ds.attrs
        if kind != "pickle":  # a pickled block is one object, whatever its rows
            lengths[ds.name] = 0 if empty else ds.shape[0]
        itemsize[ds.name] = ds.dtype.itemsize
        chunk_rows[ds.name] = None if empty or not ds.chunks else ds.chunks[0]
        for j, name in enumerate(items):
            place[name] = (ds.name, j, kind, tz)
    if set(place) != set(labels):
        raise ReadError(
            f"the blocks of the pandas frame {where} do not hold its columns {labels!r}"
        )
    if len(set(lengths.values())) > 1:
        raise ReadError(f"the blocks of the pandas frame {where} differ in rows: {lengths}")
    nrows = next(iter(lengths.values()), 0)
    chosen = check_columns(columns, labels, where=where)
    pickled = [c for c in chosen if place[c][2] == "pickle"]
    if pickled:
        others = [c for c in labels if place[c][2] != "pickle"]
        raise ReadError(
            f"{where} is a pandas 'frame' object written with format=\"fixed\", whose "
            f"column {pickled[0]!r} (text or objects) is stored as a pickle"
            + (f" (and {len(pickled) - 1} more: {pickled[1:]!r})" if len(pickled) > 1 else "")
            + "; shardfit loads no pickle, as loading one runs whatever code it names. "
            f"Read the other columns with columns={others!r}, or write the frame with "
            'to_hdf(..., format="table"), which stores text without pickle'
        )
    # Complex values have no Arrow type: refused here, naming them, where the first
    # read failed with pyarrow's "Unsupported numpy type 15".
    complex_ = [c for c in chosen if place[c][2].startswith("complex")]
    if complex_:
        others = [c for c in labels if c not in complex_ and place[c][2] != "pickle"]
        raise ReadError(
            f"the column(s) {complex_!r} of the pandas frame {where} hold complex numbers "
            f"({place[complex_[0]][2]}), which read_hdf5 does not read; read the other "
            f"columns with columns={others!r}, or store the real and imaginary parts as "
            "two columns"
        )
    empty = pd.DataFrame(
        {
            c: (
                np.empty(0, dtype=object)
                if place[c][2] == "object"
                else _fixed_column(np.empty(0, dtype=_zero_dtype(place[c][2])), *place[c][2:])
            )
            for c in chosen
        },
        columns=list(chosen),
    )
    schema = pandas_schema(empty)
    blocks = list(dict.fromkeys(place[c][0] for c in chosen))
    rows = partition_size(
        partition_rows,
        chunk_rows=chunk_rows[blocks[0]] if blocks else None,
        row_bytes=sum(itemsize[place[c][0]] for c in chosen),
    )
    parts = tuple(
        HdfFixedPartition(
            path=full,
            label=os.path.basename(full),
            node=group.name,
            columns=chosen,
            stored=tuple(place[c] for c in chosen),
            start=a,
            stop=b,
            size=size,
            mtime_ns=mtime_ns,
            schema=schema,
        )
        for a, b in row_ranges(nrows, rows)
    )
    meta = {"format": "hdf5", "layout": "pandas_fixed", "nrows": nrows, "partition_rows": rows}
    return Source(name=where, partitions=parts, schema=schema, meta=meta)


def _zero_dtype(kind: str) -> np.dtype:
    """The dtype of a stored block's raw values (datetimes as int64)."""
    if kind.startswith(("datetime64", "timedelta64")):
        return np.dtype(np.int64)
    return np.dtype(kind)
