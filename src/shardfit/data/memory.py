"""In-memory data as a source: pandas DataFrames, Arrow tables and NumPy arrays.

The rows are converted to one Arrow table once; each partition holds a zero-copy
slice of it. Here, exceptionally, the partition is the data: pickling a partition
(to ship it to a worker process) serializes only its own rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from shardfit.data._ranges import (
    arrays_to_table,
    check_columns,
    check_positive_int,
    default_names,
    even_ranges,
    pandas_to_arrow,
)
from shardfit.data.partition import Partition, ReadResult, Source

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MemoryPartition", "from_arrays", "from_arrow", "from_pandas"]


def _ipc_bytes(table: pa.Table) -> pa.Buffer:
    # The IPC writer copies only a slice's own rows; pickling a slice directly would
    # serialize the parent table's whole buffers.
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _from_ipc(buffer: pa.Buffer, name: str, start: int, stop: int, index: int) -> MemoryPartition:
    table = pa.ipc.open_stream(buffer).read_all()
    return MemoryPartition(table=table, name=name, start=start, stop=stop, index=index)


@dataclass(frozen=True, eq=False)
class MemoryPartition(Partition):
    """Rows ``start:stop`` of an in-memory table, held as a zero-copy Arrow slice.

    Attributes
    ----------
    table : pyarrow.Table
        The rows themselves.
    name : str
        What the whole data set is called (``"DataFrame"``).
    start, stop : int
        The global row range of this slice, half-open.
    index : int
        The partition's position in its source (keeps empty partitions' keys distinct).
    """

    table: pa.Table
    name: str
    start: int
    stop: int
    index: int

    @property
    def key(self) -> str:
        """``"DataFrame[0:1000]"``; an empty slice adds its index: ``"DataFrame[9:9]#4"``."""
        base = f"{self.name}[{self.start}:{self.stop}]"
        return base if self.stop > self.start else f"{base}#{self.index}"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """The slice, keeping ``columns`` (all when ``None``) in that order."""
        wanted = check_columns(columns, self.table.column_names, where=f"partition {self.key}")
        return ReadResult(self.table.select(list(wanted)))

    def locate(self, row: int) -> str:
        """``"row 1234 of DataFrame"``, with the row counted from 0 over the whole data."""
        return f"row {self.start + row} of {self.name}"

    def fingerprint(self) -> str:
        """The key and a SHA-256 of the rows, so different data never shares a fingerprint."""
        digest = hashlib.sha256(memoryview(_ipc_bytes(self.table))).hexdigest()
        return f"{self.key}:{digest[:32]}"

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        args = (_ipc_bytes(self.table), self.name, self.start, self.stop, self.index)
        return (_from_ipc, args)


def from_arrow(table: pa.Table, npartitions: int = 1, *, name: str = "Table") -> Source:
    """Split an Arrow table into ``npartitions`` consecutive, nearly equal slices.

    Parameters
    ----------
    table : pyarrow.Table
        The data; not copied.
    npartitions : int, default 1
        The number of partitions. The sizes are those of :func:`numpy.array_split`;
        more partitions than rows leave the last ones empty.
    name : str, default "Table"
        What to call the data in keys and messages.

    Returns
    -------
    Source
    """
    if not isinstance(table, pa.Table):
        raise TypeError(f"from_arrow expects a pyarrow.Table. Got {type(table).__name__}.")
    check_positive_int(npartitions, name="npartitions", owner="from_arrow")
    parts = tuple(
        MemoryPartition(table.slice(a, b - a), name=name, start=a, stop=b, index=i)
        for i, (a, b) in enumerate(even_ranges(table.num_rows, int(npartitions)))
    )
    return Source(
        name=name,
        partitions=parts,
        schema=table.schema,
        meta={"format": "memory", "nrows": table.num_rows},
    )


def from_pandas(df: pd.DataFrame, npartitions: int = 1, *, name: str = "DataFrame") -> Source:
    """Split a pandas DataFrame into ``npartitions`` consecutive, nearly equal slices.

    The frame is converted to Arrow once, without its index
    (``pa.Table.from_pandas(preserve_index=False)``). Categorical columns stay
    dictionary-typed; text columns (pandas 3 ``str`` or ``object``) become ``string``.

    Parameters
    ----------
    df : pandas.DataFrame
        The data.
    npartitions : int, default 1
        As in :func:`from_arrow`.
    name : str, default "DataFrame"
        What to call the data in keys and messages.

    Returns
    -------
    Source
    """
    import pandas as pd  # here, not at import: worker processes never need it

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_pandas expects a pandas.DataFrame. Got {type(df).__name__}.")
    check_positive_int(npartitions, name="npartitions", owner="from_pandas")
    return from_arrow(pandas_to_arrow(df), npartitions, name=name)


def from_arrays(
    X: np.ndarray,
    y: np.ndarray | None = None,
    *,
    npartitions: int = 1,
    names: Sequence[str] | None = None,
    y_name: str = "y",
) -> Source:
    """Make a source of a 2-D NumPy array of features and an optional response.

    Parameters
    ----------
    X : array-like of shape (n, k)
        The features; column ``j`` is named ``names[j]``, or ``"x{j}"``.
    y : array-like of shape (n,), optional
        The response, added as the last column, named ``y_name``.
    npartitions : int, default 1
        As in :func:`from_arrow`.
    names : sequence of str, optional
        The names of the ``k`` columns of ``X``.
    y_name : str, default "y"
        The name of the response column.

    Returns
    -------
    Source
        Named ``"arrays"``.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"from_arrays expects a 2-D X. Got an array of shape {X.shape}.")
    check_positive_int(npartitions, name="npartitions", owner="from_arrays")
    cols = list(default_names(X.shape[1], names, owner="from_arrays"))
    arrays = [X[:, j] for j in range(X.shape[1])]
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(
                f"from_arrays expects y of shape ({X.shape[0]},) to match X. Got {y.shape}."
            )
        if y_name in cols:
            raise ValueError(f"y_name {y_name!r} is already the name of a column of X")
        cols.append(y_name)
        arrays.append(y)
    return from_arrow(arrays_to_table(cols, arrays), npartitions, name="arrays")
