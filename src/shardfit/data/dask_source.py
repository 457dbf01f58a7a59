"""Dask collections as a source: one partition per Dask partition or row chunk.

Each partition holds the Dask task graph of its own piece only (culled, so it does
not carry the others' data) and computes it where it is read, with the synchronous
scheduler, then converts it to Arrow. Dask is imported only when used.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shardfit.data._ranges import (
    arrays_to_table,
    check_columns,
    default_names,
    numpy_arrow_type,
    pandas_schema,
    pandas_to_arrow,
    reading,
)
from shardfit.data.partition import Partition, ReadResult, Source

__all__ = ["DaskPartition", "from_dask"]


@dataclass(frozen=True, eq=False)
class DaskPartition(Partition):
    """One partition of a Dask DataFrame, or one row chunk of a Dask Array.

    Attributes
    ----------
    task : dask.delayed.Delayed
        Computes the piece: a pandas DataFrame, or a NumPy array.
    label : str
        The collection's name in keys and messages (``"dask-dataframe-1a2b3c4d5e6f"``).
    index : int
        The piece's position in the collection.
    schema : pyarrow.Schema
        The columns and types every piece yields.
    first_row : int or None
        The global row of the piece's first row, where the chunk sizes are known.
    """

    task: Any
    label: str
    index: int
    schema: pa.Schema
    first_row: int | None = None

    @property
    def key(self) -> str:
        """``"dask-dataframe-1a2b3c4d5e6f[3]"``: the collection and the piece's index.

        The collection's name is Dask's deterministic token of its graph, so the key
        (and the fingerprint) change when the data do.
        """
        return f"{self.label}[{self.index}]"

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Compute the piece (``scheduler="sync"``) and keep ``columns`` in that order."""
        wanted = list(check_columns(columns, self.schema.names, where=f"partition {self.key}"))
        schema = pa.schema([self.schema.field(c) for c in wanted])
        with reading(self.key, f"piece {self.index} of {self.label}"):
            value = self.task.compute(scheduler="sync")
            if hasattr(value, "columns"):
                # The schema names columns as Arrow does, by their labels as text: an
                # unnamed Series (column 0) or pd.DataFrame(array) has integer labels.
                value = value.set_axis([str(c) for c in value.columns], axis="columns")
                table = pandas_to_arrow(value[wanted], schema)
            else:
                block = value if value.ndim == 2 else value[:, np.newaxis]
                names = self.schema.names
                table = arrays_to_table(wanted, [block[:, names.index(c)] for c in wanted])
                table = table.cast(schema)
        return ReadResult(table, nbytes=table.nbytes)

    def locate(self, row: int) -> str:
        """``"row 1234 (0-based) of dask-array-…"`` where known, else the piece's row."""
        if self.first_row is not None:
            return f"row {self.first_row + row} (0-based) of {self.label}"
        return f"row {row} (0-based) of piece {self.index} of {self.label}"


def from_dask(collection: Any, *, names: Sequence[str] | None = None) -> Source:
    """Make a source of a Dask DataFrame, Series, or 1-D / 2-D Array.

    Parameters
    ----------
    collection : dask.dataframe.DataFrame, dask.dataframe.Series or dask.array.Array
        A DataFrame gives one partition per Dask partition, its schema from ``meta``
        (object columns are taken as text); a Series is a one-column frame. An array
        gives one partition per row chunk (its column chunks are joined first).
    names : sequence of str, optional
        Names of the columns of an array; ``x0 .. x{k-1}`` by default.

    Returns
    -------
    Source

    Raises
    ------
    TypeError
        For anything else.
    """
    import dask.array as da
    import dask.dataframe as dd
    from dask.base import tokenize

    if isinstance(collection, dd.Series):
        collection = collection.to_frame()
    if isinstance(collection, dd.DataFrame):
        if names is not None:
            raise ValueError(
                "The 'names' parameter of from_dask applies to a Dask Array; "
                "a DataFrame names its columns."
            )
        label = f"dask-dataframe-{tokenize(collection)[:12]}"
        schema = pandas_schema(collection._meta)  # the empty frame Dask calls meta
        parts = tuple(
            DaskPartition(
                # One partition's own graph: to_delayed() on the whole frame would give
                # every piece the full graph, and with it every piece's data.
                task=collection.partitions[i].to_delayed()[0],
                label=label,
                index=i,
                schema=schema,
            )
            for i in range(collection.npartitions)
        )
        return Source(name=label, partitions=parts, schema=schema, meta={"format": "dask"})
    if isinstance(collection, da.Array):
        if collection.ndim not in (1, 2):
            raise ValueError(
                f"from_dask reads 1-D and 2-D Dask arrays. Got shape {collection.shape}."
            )
        ncols = collection.shape[1] if collection.ndim == 2 else 1
        cols = default_names(ncols, names, owner="from_dask")
        if collection.ndim == 2:
            collection = collection.rechunk({1: -1})
        label = f"dask-array-{tokenize(collection)[:12]}"
        typ = numpy_arrow_type(collection.dtype, where=label)
        schema = pa.schema([(c, typ) for c in cols])
        # Row offsets of the chunks; NaN where Dask does not know the chunk sizes.
        starts = [0.0, *itertools.accumulate(collection.chunks[0])][:-1]
        parts = tuple(
            DaskPartition(
                task=collection.blocks[i].to_delayed().ravel()[0],
                label=label,
                index=i,
                schema=schema,
                first_row=None if math.isnan(start) else int(start),
            )
            for i, start in enumerate(starts)
        )
        return Source(name=label, partitions=parts, schema=schema, meta={"format": "dask"})
    raise TypeError(
        "from_dask accepts a dask.dataframe.DataFrame, dask.dataframe.Series or "
        f"dask.array.Array. Got {type(collection).__name__}."
    )
