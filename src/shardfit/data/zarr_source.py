"""Zarr stores as a source: row ranges of arrays, aligned to their chunks (or shards).

A group of 1-D arrays of one length (each a column), a 2-D array (its columns are
the columns) or a 1-D array (one column), in Zarr format 3 or 2. A partition holds
the store's location, the array paths and a row range; the worker opens the arrays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shardfit.data._ranges import (
    arrays_to_table,
    changed_ns,
    check_columns,
    check_positive_int,
    dataclass_fingerprint,
    default_names,
    numpy_arrow_type,
    partition_size,
    reading,
    row_ranges,
)
from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.errors import ReadError

__all__ = ["ZarrPartition", "read_zarr"]

_METADATA_FILES = ("zarr.json", ".zarray")


@dataclass(frozen=True)
class ZarrPartition(Partition):
    """Rows ``start:stop`` of Zarr arrays.

    Attributes
    ----------
    store : str or zarr store
        The absolute path of a local store, or a picklable Zarr store object.
    label : str
        The store's name in keys and messages.
    layout : {"arrays", "matrix"}
        One 1-D array per column (``stored`` holds their paths), or the columns of
        one 2-D array (``stored`` holds the column indices; ``node`` the array).
    node : str
        The group or array read, as a path inside the store (``""`` for the root).
    columns : tuple of str
        The source's columns, in order.
    stored : tuple of str or int
        Where each column is: an array path or a column index.
    start, stop : int
        The row range, half-open.
    meta_mtimes_ns : tuple of int
        Modification times of the arrays' metadata documents when the source was
        planned (local stores; empty otherwise).
    shape : tuple of int
        The shape of every array read (the 2-D array; each 1-D array of a group) when
        the source was planned: a read refuses arrays whose shape differs since.
    """

    store: Any
    label: str
    layout: str
    node: str
    columns: tuple[str, ...]
    stored: tuple[str | int, ...]
    start: int
    stop: int
    meta_mtimes_ns: tuple[int, ...]
    shape: tuple[int, ...]

    @property
    def key(self) -> str:
        """``"data.zarr/grp[0:1000000]"``: store, node and half-open row range."""
        node = f"/{self.node}" if self.node else ""
        return f"{self.label}{node}[{self.start}:{self.stop}]"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Read the rows of ``columns`` (all when ``None``), in that order."""
        import zarr

        wanted = check_columns(columns, self.columns, where=f"partition {self.key}")
        where = [self.stored[self.columns.index(c)] for c in wanted]
        rows = slice(self.start, self.stop)
        with reading(self.key, f"store {self.store}, {self.node or '/'}"):
            if self.layout == "arrays":
                arrays = []
                for s in where:
                    arr = zarr.open_array(store=self.store, path=str(s), mode="r")
                    self._check_shape(arr, str(s))
                    arrays.append(np.asarray(arr[rows]))
            else:
                arr = zarr.open_array(store=self.store, path=self.node, mode="r")
                self._check_shape(arr, self.node)
                cols = sorted(int(s) for s in set(where))  # orthogonal selection wants order
                block = np.asarray(
                    arr.get_orthogonal_selection((rows, np.asarray(cols, dtype=np.intp)))
                )
                arrays = [block[:, cols.index(int(s))] for s in where]
            table = arrays_to_table(wanted, arrays)
        if table.num_rows != self.stop - self.start:
            # Slicing past an array's end gives what is there: rows would go missing
            # without a word (the shape check above should have caught it first).
            raise ReadError(
                f"partition {self.key} read {table.num_rows} rows of Zarr store "
                f"{self.store} where the plan has {self.stop - self.start}: the data changed "
                "since the source was planned; plan the source again"
            )
        return ReadResult(table, nbytes=table.nbytes)

    def _check_shape(self, arr: Any, path: str) -> None:
        """Refuse an array whose shape changed since the plan: its row ranges no
        longer describe it (rows lost are missing from a read; rows added are in no
        partition; a 2-D array's column indices may name other columns)."""
        shape = tuple(int(n) for n in arr.shape)
        if shape != self.shape:
            raise ReadError(
                f"Zarr store {self.store}, array {path or '/'}, changed since the source "
                f"was planned (shape {self.shape} then, {shape} now); partition "
                f"{self.key} no longer describes it: plan the source again"
            )

    def locate(self, row: int) -> str:
        """``"store data.zarr, grp, row 1234 (0-based)"``."""
        return f"store {self.label}, {self.node or '/'}, row {self.start + row} (0-based)"

    def fingerprint(self) -> str:
        """The store, node, columns, row range and metadata mtimes (all the fields)."""
        return dataclass_fingerprint(self)


def _open(store_or_path: Any) -> tuple[Any, str, str, Any]:
    """Return ``(store, node path, label, zarr object)`` for any accepted input."""
    import zarr

    store: Any
    if isinstance(store_or_path, zarr.Array | zarr.Group):
        obj, store, node = store_or_path, store_or_path.store, store_or_path.path
    else:
        store = store_or_path
        if isinstance(store, str | os.PathLike):
            store = os.path.abspath(os.fspath(store))
            if not os.path.exists(store):
                raise ReadError(f"no such Zarr store: {store}")
        node = ""
        try:
            obj = zarr.open(store=store, mode="r")
        except (FileNotFoundError, ValueError, KeyError) as e:
            raise ReadError(f"cannot open {store} as a Zarr group or array: {e}") from e
    root = getattr(store, "root", None)
    if root is not None:  # a local store: keep its path, which is small and readable
        store = os.path.abspath(os.fspath(root))
    label = os.path.basename(store) if isinstance(store, str) else type(store).__name__
    return store, node, label, obj


def _meta_mtime(store: Any, path: str) -> int:
    if not isinstance(store, str):
        return 0
    for name in _METADATA_FILES:
        try:
            return changed_ns(os.stat(os.path.join(store, path, name)))
        except FileNotFoundError:
            continue
    return 0


def read_zarr(
    store_or_path: Any,
    *,
    columns: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    partition_rows: int | None = None,
) -> Source:
    """Plan a source over a Zarr group of 1-D arrays, or a 1-D or 2-D array.

    Parameters
    ----------
    store_or_path : str, path-like, zarr store, zarr.Group or zarr.Array
        The data. A path names a local store; other stores must be picklable to
        run on worker processes.
    columns : sequence of str, optional
        Read only these columns, in this order (names of a group's arrays, or the
        ``names`` of a 2-D array). By default a group's arrays in name order.
    names : sequence of str, optional
        Names of the columns of a 2-D (or 1-D) array; ``x0 .. x{k-1}`` by default.
    partition_rows : int, optional
        Rows per partition, rounded down to whole chunks (shards, when the array is
        sharded) when at least one. By default the number of whole chunks nearest
        1,000,000 rows (at most about 256 MiB).

    Returns
    -------
    Source

    Raises
    ------
    ReadError
        When the store is missing, holds no 1-D arrays, its arrays differ in length,
        or an array has more than two dimensions.
    """
    import zarr

    check_positive_int(partition_rows, name="partition_rows", owner="read_zarr", optional=True)
    store, node, label, obj = _open(store_or_path)
    stored: tuple[str | int, ...]
    if isinstance(obj, zarr.Group):
        if names is not None:
            raise ValueError(
                "The 'names' parameter of read_zarr applies to a 2-D or 1-D array; "
                f"the arrays of group {label} name its columns."
            )
        members = sorted((n, a) for n, a in obj.arrays() if a.ndim == 1)
        if not members:
            found = sorted(f"{n} (shape {a.shape})" for n, a in obj.arrays())
            raise ReadError(f"Zarr group {label} holds no 1-D arrays; it holds: {found}")
        lengths = {n: a.shape[0] for n, a in members}
        if len(set(lengths.values())) > 1:
            raise ReadError(f"the 1-D arrays of Zarr group {label} differ in length: {lengths}")
        all_cols = tuple(n for n, _ in members)
        arrays = [a for _, a in members]
        dtypes = {n: a.dtype for n, a in members}
        layout, stored = "arrays", tuple(a.path for a in arrays)
    elif obj.ndim in (1, 2):
        arrays = [obj]
        ncols = obj.shape[1] if obj.ndim == 2 else 1
        all_cols = default_names(ncols, names, owner="read_zarr")
        dtypes = dict.fromkeys(all_cols, obj.dtype)
        layout = "matrix" if obj.ndim == 2 else "arrays"
        stored = tuple(range(ncols)) if obj.ndim == 2 else (obj.path,)
    else:
        raise ReadError(f"Zarr array {label} has shape {obj.shape}; read_zarr reads 1-D and 2-D")
    chosen = check_columns(columns, all_cols, where=f"Zarr store {label}")
    schema = pa.schema(
        [(c, numpy_arrow_type(dtypes[c], where=f"column {c!r} of {label}")) for c in chosen]
    )
    first = arrays[0]
    mtimes = tuple(_meta_mtime(store, arr.path) for arr in arrays)
    chunk_rows = (getattr(first, "shards", None) or first.chunks)[0]
    rows = partition_size(
        partition_rows, chunk_rows=chunk_rows, row_bytes=sum(dtypes[c].itemsize for c in chosen)
    )
    parts = tuple(
        ZarrPartition(
            store=store,
            label=label,
            layout=layout,
            node=node,
            columns=chosen,
            stored=tuple(stored[all_cols.index(c)] for c in chosen),
            start=a,
            stop=b,
            meta_mtimes_ns=mtimes,
            shape=tuple(int(n) for n in first.shape),
        )
        for a, b in row_ranges(first.shape[0], rows)
    )
    return Source(
        name=label,
        partitions=parts,
        schema=schema,
        meta={"format": "zarr", "layout": layout, "nrows": first.shape[0], "partition_rows": rows},
    )
