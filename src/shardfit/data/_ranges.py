"""Helpers every reader shares: row ranges, parameter checks, projection, conversion.

One copy of each rule, so that all sources split rows, name columns, check a
requested projection, turn NumPy or pandas data into Arrow, and word their errors
the same way.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from shardfit.errors import ReadError, ShardfitError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_PARTITION_ROWS",
    "MAX_PARTITION_BYTES",
    "arrays_to_table",
    "changed_ns",
    "check_columns",
    "check_positive_int",
    "dataclass_fingerprint",
    "default_names",
    "even_ranges",
    "file_stat",
    "numpy_arrow_type",
    "numpy_to_arrow",
    "pandas_schema",
    "pandas_to_arrow",
    "partition_size",
    "reading",
    "row_ranges",
]

#: Rows per partition when neither the caller nor the storage layout says otherwise.
DEFAULT_PARTITION_ROWS = 1_000_000
#: A default partition holds at most about this many bytes of decoded rows.
MAX_PARTITION_BYTES = 256 * 2**20


def check_positive_int(value: object, *, name: str, owner: str, optional: bool = False) -> None:
    """Raise unless ``value`` is a positive ``int`` (or ``None`` when ``optional``).

    Raises
    ------
    ValueError
        In the form "The 'npartitions' parameter of from_pandas must be a positive
        int. Got 0 instead."
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        what = "a positive int or None" if optional else "a positive int"
        raise ValueError(
            f"The {name!r} parameter of {owner} must be {what}. Got {value!r} instead."
        )


def row_ranges(nrows: int, size: int) -> list[tuple[int, int]]:
    """Split ``nrows`` rows into consecutive ``[start, stop)`` ranges of ``size`` rows.

    The last range may be shorter; zero rows give the single empty range ``(0, 0)``,
    so every source has at least one partition.
    """
    if nrows <= 0:
        return [(0, 0)]
    return [(start, min(start + size, nrows)) for start in range(0, nrows, size)]


def even_ranges(nrows: int, nparts: int) -> list[tuple[int, int]]:
    """Split ``nrows`` rows into ``nparts`` consecutive ranges of nearly equal size.

    The sizes are those of :func:`numpy.array_split`: the first ``nrows % nparts``
    ranges hold one row more. With more parts than rows the last ranges are empty.
    """
    base, extra = divmod(nrows, nparts)
    bounds = [0]
    for i in range(nparts):
        bounds.append(bounds[-1] + base + (1 if i < extra else 0))
    return list(itertools.pairwise(bounds))


def partition_size(partition_rows: int | None, *, chunk_rows: int | None, row_bytes: int) -> int:
    """Choose the rows per partition for chunked (or contiguous) array storage.

    Parameters
    ----------
    partition_rows : int or None
        What the caller asked for. When it is at least one chunk it is rounded down
        to a whole number of chunks, so no chunk is read by two partitions; a request
        smaller than one chunk is kept as it is.
    chunk_rows : int or None
        Rows per storage chunk along the first axis; ``None`` when not chunked.
    row_bytes : int
        Decoded bytes per row, to bound the default.

    Returns
    -------
    int
        By default the whole number of chunks nearest to
        :data:`DEFAULT_PARTITION_ROWS` rows (at least one chunk), capped near
        :data:`MAX_PARTITION_BYTES` bytes; without chunks that many rows.
    """
    if partition_rows is not None:
        if chunk_rows and partition_rows >= chunk_rows:
            return partition_rows - partition_rows % chunk_rows
        return partition_rows
    target = min(DEFAULT_PARTITION_ROWS, max(1, MAX_PARTITION_BYTES // max(row_bytes, 1)))
    if chunk_rows:
        return max(1, round(target / chunk_rows)) * chunk_rows
    return target


def default_names(ncols: int, names: Sequence[str] | None, *, owner: str) -> tuple[str, ...]:
    """Name the columns of a 2-D array: ``names`` when given, else ``x0 .. x{k-1}``.

    Raises
    ------
    ValueError
        When ``names`` has the wrong length, repeats a name or holds a non-string.
    """
    if names is None:
        return tuple(f"x{j}" for j in range(ncols))
    if isinstance(names, str):
        raise ValueError(
            f"The 'names' parameter of {owner} must be a sequence of str. Got {names!r}."
        )
    out = tuple(names)
    if len(out) != ncols:
        raise ValueError(
            f"The 'names' parameter of {owner} must name all {ncols} columns. "
            f"Got {len(out)} names: {list(out)!r}."
        )
    if not all(isinstance(n, str) for n in out) or len(set(out)) != len(out):
        raise ValueError(
            f"The 'names' parameter of {owner} must hold distinct str. Got {list(out)!r}."
        )
    return out


def check_columns(
    requested: Sequence[str] | None, available: Sequence[str], *, where: str
) -> tuple[str, ...]:
    """Return the columns to read: ``available`` for ``None``, else ``requested`` checked.

    A single string is one column name, not a sequence of one-letter names.

    Raises
    ------
    ReadError
        When a requested column is unknown (the message lists the available ones)
        or requested twice.
    """
    if requested is None:
        return tuple(available)
    if isinstance(requested, str):
        requested = [requested]
    known = set(available)
    seen: set[str] = set()
    for name in requested:
        if name not in known:
            raise ReadError(
                f"unknown column {name!r} in {where}; available columns: {list(available)!r}"
            )
        if name in seen:
            raise ReadError(f"column {name!r} requested twice in {where}")
        seen.add(name)
    return tuple(requested)


def changed_ns(st: os.stat_result) -> int:
    """When a file last changed, in ns: the later of its modification and status-change
    times. The modification time alone misses a file rewritten with its old time put
    back (``cp -p``, ``rsync -a``, ``tar x``, ``os.utime``), which sets the ctime."""
    return max(st.st_mtime_ns, st.st_ctime_ns)


def file_stat(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """Return ``(absolute path, size in bytes, last change in ns)`` of a file or
    directory (see :func:`changed_ns`).

    Raises
    ------
    ReadError
        When the path does not exist.
    """
    full = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(full)
    except FileNotFoundError as e:
        raise ReadError(f"no such file or directory: {full}") from e
    return full, st.st_size, changed_ns(st)


def dataclass_fingerprint(part: object) -> str:
    """Fingerprint a file-backed partition by all its fields (paths, sizes, mtimes, ranges)."""
    fields = {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}  # type: ignore[arg-type]
    return json.dumps({"type": type(part).__name__, **fields}, sort_keys=True, default=str)


@contextmanager
def reading(key: str, location: str) -> Iterator[None]:
    """Turn storage and conversion failures inside the block into a located ReadError.

    Errors shardfit raises on purpose pass through unchanged.
    """
    try:
        yield
    except ShardfitError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, pa.ArrowException) as e:
        raise ReadError(f"cannot read partition {key} ({location}): {type(e).__name__}: {e}") from e


def numpy_arrow_type(dtype: np.dtype, *, where: str) -> pa.DataType:
    """The Arrow type a stored NumPy dtype becomes: byte and text strings become ``string``.

    Raises
    ------
    ReadError
        For dtypes with no column meaning: sub-arrays, unstructured void, complex.
    """
    if dtype.kind in "SUOT":
        return pa.string()
    if dtype.shape or dtype.kind == "V":
        raise ReadError(f"{where} has dtype {dtype}, which is not a column of scalars")
    try:
        return pa.from_numpy_dtype(dtype.newbyteorder("="))
    except (pa.ArrowNotImplementedError, NotImplementedError, TypeError) as e:
        raise ReadError(f"{where} has dtype {dtype}, which Arrow cannot hold") from e


def numpy_to_arrow(values: np.ndarray) -> pa.Array:
    """Convert a 1-D NumPy array to Arrow, decoding byte strings as UTF-8.

    Numeric arrays in native byte order are wrapped without a copy when contiguous.
    """
    kind = values.dtype.kind
    if kind == "S":
        # Through binary: a direct cast to string would keep the NUL padding.
        return pa.array(values, type=pa.binary()).cast(pa.string())
    if kind in "UOT":
        return pa.array(values, type=pa.string())
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    return pa.array(values)


def arrays_to_table(names: Sequence[str], arrays: Sequence[np.ndarray]) -> pa.Table:
    """Build a table from one 1-D NumPy array per column (see :func:`numpy_to_arrow`)."""
    return pa.Table.from_arrays([numpy_to_arrow(a) for a in arrays], names=list(names))


def _narrow(typ: pa.DataType) -> pa.DataType:
    """``large_string`` (pandas' default) becomes ``string``, as the other readers give."""
    if pa.types.is_large_string(typ):
        return pa.string()
    if pa.types.is_dictionary(typ) and pa.types.is_large_string(typ.value_type):
        return pa.dictionary(typ.index_type, pa.string(), typ.ordered)
    return typ


def _normalized(table: pa.Table, frame: pd.DataFrame) -> pa.Schema:
    fields = []
    for fld, dtype in zip(table.schema, frame.dtypes):
        typ = _narrow(fld.type)
        # An object or str column with no values (no rows, all missing) is taken as text.
        if pa.types.is_null(typ) and dtype.kind == "O":
            typ = pa.string()
        fields.append(pa.field(fld.name, typ, fld.nullable, fld.metadata))
    return pa.schema(fields, metadata=table.schema.metadata)


def pandas_to_arrow(frame: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table:
    """Convert a DataFrame to Arrow without its index, strings as ``string``.

    Categorical columns stay dictionary-typed. With ``schema`` the table is cast to
    it, so every partition of a source yields the same types.
    """
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise _mixed_column_error(frame, error) from error
    target = _normalized(table, frame) if schema is None else schema
    return table if table.schema == target else table.cast(target)


def _mixed_column_error(frame: pd.DataFrame, error: Exception) -> TypeError:
    """Arrow's refusal of an object column whose values mix types (``[1, 'a', 2.5]``),
    said with the column, the row label and the value where it changes type (Arrow's
    own names neither the row nor what to do)."""
    for name in frame.columns:
        column = frame[name]
        if column.dtype != object:
            continue
        try:
            pa.array(column, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            values = column[column.notna()]
            first = type(values.iloc[0]) if len(values) else None
            for label, value in values.items():
                if type(value) is not first and not (
                    isinstance(value, int | float) and first in (int, float)
                ):
                    return TypeError(
                        f"column {name!r} of the DataFrame mixes types: "
                        f"{first.__name__ if first else 'None'} values, then {value!r} "
                        f"({type(value).__name__}) at row {label!r}; convert the column "
                        f"first (df[{name!r}].astype(str) for labels, "
                        f"pd.to_numeric(df[{name!r}], errors='coerce') for numbers)"
                    )
            return TypeError(f"column {name!r} of the DataFrame cannot be converted: {error}")
    return TypeError(f"the DataFrame cannot be converted to Arrow: {error}")


def pandas_schema(frame: pd.DataFrame) -> pa.Schema:
    """The schema :func:`pandas_to_arrow` gives ``frame`` (e.g. an empty ``meta``)."""
    return _normalized(pa.Table.from_pandas(frame, preserve_index=False), frame)
