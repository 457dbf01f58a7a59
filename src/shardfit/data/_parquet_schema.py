"""One set of column types for the files of a Parquet data set.

Files written on different days often store a column with different types: ``count``
as int32 in one and int64 in another, a float as float32 and float64, a string column
dictionary-encoded in one file and plain in the next, or a column that was all
missing (Arrow type ``null``) in one file. Like ``pyarrow.dataset`` and Dask, the
reader unifies them: each column gets the type every file's values fit in
(:func:`pyarrow.unify_schemas` with ``promote_options="permissive"``, text types
mapped to ``string``), and each partition casts what it reads to those types, so every
partition yields the same schema. Casts are safe: a value the unified type cannot hold
exactly (an integer beyond 2**53 in a column unified to float64) is an error naming
the file and column, never a silently rounded number.

Timestamps in different time zones (UTC in one file, Europe/Paris in another) are
instants and unify to UTC at the finest unit, as pandas concatenates them; a timestamp
without a zone beside one with a zone does not unify.

Types that do not unify (text in one file, numbers in another; a timestamp and a
number; naive and zoned timestamps) are recorded per column: only reading such a
column is an error, so a fit that does not use it is not refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from shardfit.errors import ReadError

__all__ = ["UnifiedSchema", "conform", "file_casts", "refuse_conflicts", "unify_file_schemas"]

#: The type of a text column read dictionary-encoded from Parquet.
_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
#: Files named per type in a conflict message, beyond which "and N more" is said.
_FILES_SHOWN = 1
#: Timestamp units, finest first.
_UNITS = ("ns", "us", "ms", "s")


@dataclass(frozen=True)
class UnifiedSchema:
    """The column types every partition of a Parquet data set yields.

    Attributes
    ----------
    schema : pyarrow.Schema
        The first file's columns, in its order and with its metadata, each with its
        unified type. A column whose types do not unify has type ``null`` (unknown):
        no check made on the schema before reading then misreports it as the first
        file's type, and reading it raises the conflict.
    conflicts : dict of str to str
        Columns whose types do not unify, each with a message naming the files and
        their types.
    """

    schema: pa.Schema
    conflicts: Mapping[str, str]


def _is_text(typ: pa.DataType) -> bool:
    """Whether ``typ`` holds strings: plain, large, view or dictionary-encoded."""
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return bool(
        pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ)
    )


def _unified_type(types: Sequence[pa.DataType]) -> pa.DataType | None:
    """The type all of ``types`` fit in, or ``None`` when there is none."""
    distinct = list(dict.fromkeys(types))
    if len(distinct) == 1:
        return distinct[0]
    # An all-missing column (type null) says nothing about the column's type.
    known = [t for t in distinct if not pa.types.is_null(t)]
    if len(known) <= 1:
        return known[0] if known else pa.null()
    texts = [_is_text(t) for t in known]
    if all(texts):
        # Labels either way; the readers of label columns take string (and dictionaries
        # where asked for), as pandas_to_arrow gives for large_string.
        return pa.string()
    if any(texts):
        return None  # text and numbers: pyarrow would make binary or refuse
    if all(pa.types.is_timestamp(t) for t in known):
        zones = {t.tz for t in known}
        if len(zones) > 1 and None in zones:
            return None  # naive and zoned times: a naive time is no instant
        if len(zones) > 1:
            # Zoned times are instants (Arrow stores them as UTC whatever the zone), so
            # times in different zones make one column in UTC, at the finest unit; the
            # cast changes no value. pyarrow refuses to merge them.
            return pa.timestamp(min((t.unit for t in known), key=_UNITS.index), "UTC")
    try:
        merged = pa.unify_schemas(
            [pa.schema([("c", t)]) for t in known], promote_options="permissive"
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    return merged.field(0).type


def _describe(name: str, seen: Mapping[pa.DataType, list[str]]) -> str:
    """``"column 'g' has types that do not unify across the Parquet files: string in
    a.parquet but int64 in b.parquet (and 2 more files)"``: each type with the first
    file that has it."""
    parts = []
    for typ, files in seen.items():
        shown = ", ".join(files[:_FILES_SHOWN])
        more = len(files) - _FILES_SHOWN
        extra = f" (and {more} more file{'s' if more > 1 else ''})" if more > 0 else ""
        parts.append(f"{typ} in {shown}{extra}")
    why = ""
    if all(pa.types.is_timestamp(t) for t in seen) and len({t.tz is None for t in seen}) > 1:
        why = (
            " (times without a time zone are not instants, so they cannot join times "
            "in a zone: write the files with one kind, e.g. tz_localize the naive ones)"
        )
    return (
        f"column {name!r} has types that do not unify across the Parquet files: "
        f"{' but '.join(parts[:2])}{''.join(', ' + p for p in parts[2:])}{why}"
    )


def unify_file_schemas(files: Sequence[str], schemas: Sequence[pa.Schema]) -> UnifiedSchema:
    """Unify the column types of ``schemas`` (one per file of ``files``, same columns).

    The column names must already agree (any order); the first file sets the order.
    """
    first = schemas[0]
    fields = []
    conflicts: dict[str, str] = {}
    for fld in first:
        seen: dict[pa.DataType, list[str]] = {}
        for path, schema in zip(files, schemas, strict=True):
            seen.setdefault(schema.field(fld.name).type, []).append(path)
        typ = _unified_type(list(seen))
        if typ is None:
            conflicts[fld.name] = _describe(fld.name, seen)
            typ = pa.null()
        fields.append(fld.with_type(typ))
    return UnifiedSchema(pa.schema(fields, metadata=first.metadata), conflicts)


def file_casts(schema: pa.Schema, unified: UnifiedSchema) -> tuple[tuple[str, pa.DataType], ...]:
    """The ``(column, unified type)`` pairs where a file's ``schema`` differs."""
    return tuple(
        (fld.name, fld.type)
        for fld in unified.schema
        if fld.name not in unified.conflicts and schema.field(fld.name).type != fld.type
    )


def refuse_conflicts(
    wanted: Iterable[str], conflicts: Sequence[tuple[str, str]], *, where: str
) -> None:
    """Raise a ReadError if a column in ``wanted`` is one whose types do not unify."""
    known = dict(conflicts)
    bad = [name for name in wanted if name in known]
    if bad:
        raise ReadError(
            f"cannot read {where}: {known[bad[0]]}. Columns that are not read may "
            "disagree; convert the files so that this column has one type, or leave "
            "it out of the formula"
        )


def conform(
    table: pa.Table,
    casts: Sequence[tuple[str, pa.DataType]],
    *,
    dictionary: Iterable[str],
    where: str,
) -> pa.Table:
    """Cast the columns of ``table`` named in ``casts`` to their unified types.

    A text column asked for dictionary-encoded (``dictionary``) becomes
    ``dictionary<int32, string>``, what Parquet's dictionary reads give, whatever the
    file stored (int8 indices, plain or null). Casts are safe: a value the unified
    type cannot hold exactly raises a ReadError naming the column and ``where``.
    """
    keep = set(dictionary)
    for name, unified in casts:
        index = table.schema.get_field_index(name)
        if index < 0:
            continue
        column = table.column(index)
        target = _DICTIONARY if name in keep and _is_text(unified) else unified
        if column.type == target:
            continue
        try:
            cast = _safe_cast(column, target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as error:
            raise ReadError(
                f"column {name!r} of {where} is {column.type}, and its values do not all "
                f"fit {target}, the type the other Parquet files make it: {error}. Write "
                "the files with one type for this column"
            ) from error
        table = table.set_column(index, table.field(index).with_type(target), cast)
    return table


def _safe_cast(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """``column.cast(target, safe=True)``, integers to decimals included.

    pyarrow unifies int64 and decimal128(5, 2) to decimal128(20, 2), then refuses to
    cast any int64 to it (it wants precision 21 whatever the values). Through a
    decimal wide enough for every integer, the cast down to ``target`` checks each
    value instead: 3 becomes 3.00, and only a value with too many digits fails.
    """
    if pa.types.is_integer(column.type) and pa.types.is_decimal(target):
        scale = target.scale
        wide = pa.decimal128(38, scale) if 0 <= scale <= 18 else pa.decimal256(76, scale)
        return column.cast(wide, safe=True).cast(target, safe=True)
    return column.cast(target, safe=True)
