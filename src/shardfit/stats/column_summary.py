"""Mergeable per-column summaries: the statistic of the schema pass.

Numeric columns keep counts, extremes and a running mean and sum of squared
deviations merged with Chan, Golub & LeVeque's pairwise formula
(``M2 = M2_a + M2_b + d**2 * n_a * n_b / n``, ``d = mean_b - mean_a``).
Categorical columns keep the count of every level, up to a cap.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from shardfit.errors import SchemaError

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "CategoricalSummary",
    "ColumnSummary",
    "LabelSummary",
    "NumericSummary",
    "TableSummary",
    "describe_tokens",
    "is_categorical_type",
    "numeric_values",
    "stray_tokens",
    "summarize_table",
]

DEFAULT_MAX_LEVELS = 10_000


def is_categorical_type(dtype: pa.DataType) -> bool:
    """Whether an Arrow type holds labels rather than quantities.

    Booleans are quantities (0/1), as formulaic encodes them, unless a formula
    wraps them in ``C()``.
    """
    return bool(
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
        or pa.types.is_dictionary(dtype)
    )


def numeric_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric or boolean column as float64, nulls as NaN."""
    if pa.types.is_boolean(column.type) or pa.types.is_null(column.type):
        column = column.cast(pa.float64())
    return np.asarray(to_numpy(column), dtype=np.float64)


_FIXED_WIDTH = {
    pa.float64(): np.float64,
    pa.float32(): np.float32,
    pa.int64(): np.int64,
    pa.int32(): np.int32,
    pa.int16(): np.int16,
    pa.int8(): np.int8,
    pa.uint64(): np.uint64,
    pa.uint32(): np.uint32,
    pa.uint16(): np.uint16,
    pa.uint8(): np.uint8,
}


def to_numpy(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """``values.to_numpy(zero_copy_only=False)``, read straight from the Arrow
    buffers where they hold the values as NumPy would (numbers and booleans without
    nulls: a read-only view, or the unpacked bits).

    pyarrow's own conversion imports pandas on first use (about 40 MB in each worker
    process that otherwise never needs it); the values are the same either way.
    """
    if isinstance(values, pa.ChunkedArray):
        dtype = _FIXED_WIDTH.get(values.type, bool if pa.types.is_boolean(values.type) else None)
        if values.num_chunks == 1:
            return to_numpy(values.chunk(0))
        if values.num_chunks == 0 and dtype is not None:
            return np.empty(0, dtype=dtype)
        if dtype is not None and values.null_count == 0:
            return np.concatenate([to_numpy(chunk) for chunk in values.chunks])
        return values.to_numpy(zero_copy_only=False)
    if values.null_count == 0:
        dtype = _FIXED_WIDTH.get(values.type)
        if dtype is not None:
            itemsize = np.dtype(dtype).itemsize
            return np.frombuffer(
                values.buffers()[1],
                dtype=dtype,
                count=len(values),
                offset=values.offset * itemsize,
            )
        if pa.types.is_boolean(values.type):
            if not len(values):
                return np.empty(0, dtype=bool)
            bits = np.frombuffer(values.buffers()[1], dtype=np.uint8)
            start = values.offset
            return np.unpackbits(bits, bitorder="little")[start : start + len(values)].view(bool)
    return values.to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class NumericSummary:
    """Rows, missing count, extremes, mean and spread of a numeric column.

    NaN, +inf and -inf count as missing, like nulls.
    """

    count: int = 0
    missing: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    dtype: str = "double"

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> NumericSummary:
        """Summarize one Arrow column."""
        values = numeric_values(column)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(count=0, missing=int(values.size), dtype=str(column.type))
        mean = float(finite.mean())
        return cls(
            count=int(finite.size),
            missing=int(values.size - finite.size),
            min=float(finite.min()),
            max=float(finite.max()),
            mean=mean,
            m2=float(np.sum((finite - mean) ** 2)),
            dtype=str(column.type),
        )

    def merge(self, other: NumericSummary) -> NumericSummary:
        """Summary of both operands' rows (Chan et al. pairwise update)."""
        if not isinstance(other, NumericSummary):
            raise SchemaError(f"cannot merge a numeric summary with {type(other).__name__}")
        n = self.count + other.count
        if n == 0:
            return NumericSummary(missing=self.missing + other.missing, dtype=self.dtype)
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return NumericSummary(
            count=n,
            missing=self.missing + other.missing,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
            mean=mean,
            m2=m2,
            dtype=self.dtype,
        )

    @property
    def std(self) -> float:
        """Sample standard deviation (ddof=1); NaN below two values."""
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else math.nan

    @property
    def is_numeric(self) -> bool:
        return True


@dataclass(frozen=True)
class CategoricalSummary:
    """Rows, missing count and level counts of a categorical column.

    ``levels`` maps each level (a str, bool or int) to its count. More than
    ``max_levels`` distinct levels raises :class:`~shardfit.errors.SchemaError`.
    ``declared`` holds the categories a pandas ``Categorical`` (or an Arrow
    dictionary column, which pandas reads as one) declares, in its order, ``None``
    for other columns. Partitions that declare different categories merge as pandas
    concatenates such columns: each partition's new categories after the earlier
    ones (``union_categoricals``; pyarrow's ``unify_dictionaries``).
    """

    count: int = 0
    missing: int = 0
    levels: dict[Any, int] = field(default_factory=dict)
    max_levels: int = DEFAULT_MAX_LEVELS
    dtype: str = "string"
    column: str = ""
    declared: tuple[Any, ...] | None = None

    @classmethod
    def of(
        cls,
        column: pa.ChunkedArray | pa.Array,
        *,
        name: str,
        max_levels: int,
        declared: bool = False,
    ) -> CategoricalSummary:
        """Summarize one Arrow column, treating its values as labels; ``declared``: the
        column is a pandas ``Categorical`` (its dictionary is its categories, in order)."""
        if pa.types.is_dictionary(column.type):
            return cls._of_dictionary(column, name=name, max_levels=max_levels, declared=declared)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        import pyarrow.compute as pc  # here: dictionary columns (Parquet's) never need it

        missing = column.null_count
        if pa.types.is_floating(column.type):
            missing += int(pc.sum(pc.is_nan(column).cast(pa.int64())).as_py() or 0)
            column = pc.filter(column, pc.invert(pc.is_nan(column)))
        counts = pc.value_counts(column.drop_null())
        levels = {
            value: int(n)
            for value, n in zip(
                counts.field("values").to_pylist(), counts.field("counts").to_pylist()
            )
        }
        summary = cls(
            count=len(column) - column.null_count,
            missing=missing,
            levels=levels,
            max_levels=max_levels,
            dtype=str(column.type),
            column=name,
        )
        summary._check_cap()
        return summary

    @classmethod
    def _of_dictionary(
        cls, column: pa.ChunkedArray | pa.Array, *, name: str, max_levels: int, declared: bool
    ) -> CategoricalSummary:
        """Level counts of a dictionary-encoded column from its codes (no decoding);
        with ``declared``, its dictionaries as the declared order: chunks with
        different dictionaries unify as pyarrow and pandas unify them (the first
        chunk's values, then each later chunk's new ones, in order)."""
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        levels: dict[Any, int] = {}
        order: tuple[Any, ...] = ()
        missing = 0
        for chunk in chunks:
            missing += chunk.null_count
            codes = to_numpy(chunk.indices)
            if chunk.null_count:
                codes = codes[~np.asarray(to_numpy(chunk.is_null()))]
            counts = np.bincount(codes.astype(np.intp), minlength=len(chunk.dictionary))
            values = chunk.dictionary.to_pylist()
            order = _ordered_union(order, values)
            for code in np.flatnonzero(counts):
                value = values[code]
                levels[value] = levels.get(value, 0) + int(counts[code])
        summary = cls(
            count=len(column) - missing,
            missing=missing,
            levels=levels,
            max_levels=max_levels,
            dtype=str(column.type.value_type),
            column=name,
            declared=order if declared else None,
        )
        summary._check_cap()
        return summary

    def _check_cap(self) -> None:
        if len(self.levels) <= self.max_levels:
            return
        name = self.column
        stray = stray_tokens(self.levels)
        if stray is not None:
            # Not an identifier: numbers a reader typed as text because of a few tokens.
            which = (
                f"all numbers but for {describe_tokens(stray, self.levels)}"
                if stray
                else "all of them numbers (what made the reader type it as text is in rows "
                "not summarized yet)"
            )
            raise SchemaError(
                f"column {name!r} was read as text, and has more than {self.max_levels:,} "
                f"distinct values ({len(self.levels):,} seen so far), {which}. "
                "If the column is numeric, give its "
                f"type (column_types={{{name!r}: 'float64'}} when reading a CSV, "
                f"--column-type {name}=float64 on the command line: the reader then names the "
                "line of each such token) or declare the tokens missing (null_values=[...], "
                "--null-values)."
            )
        raise SchemaError(
            f"column {name!r} has more than {self.max_levels:,} distinct levels "
            f"({len(self.levels):,} seen so far); a categorical this large is probably an "
            "identifier. Raise max_levels= if it really is a factor, or hash it."
        )

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        """Summary of both operands' rows: level counts add."""
        if not isinstance(other, CategoricalSummary):
            raise SchemaError(
                f"column {self.column!r} is categorical in one partition and "
                f"{type(other).__name__} in another"
            )
        levels = dict(self.levels)
        for level, n in other.levels.items():
            levels[level] = levels.get(level, 0) + n
        merged = CategoricalSummary(
            count=self.count + other.count,
            missing=self.missing + other.missing,
            levels=levels,
            max_levels=self.max_levels,
            dtype=self.dtype,
            column=self.column,
            declared=(
                None
                if self.declared is None or other.declared is None
                else _ordered_union(self.declared, other.declared)
            ),
        )
        merged._check_cap()
        return merged

    def sorted_levels(self) -> list[Any]:
        """Levels in the order formulaic gives them: a pandas ``Categorical``'s declared
        order (its first category is the reference, ``C(x, Poly)`` follows the order),
        else sorted by value. Declared categories no row has are left out: formulaic
        would give them a column of zeros, which aliases."""
        if self.declared is not None:
            return [level for level in self.declared if level in self.levels]
        return sorted(self.levels)

    @property
    def is_numeric(self) -> bool:
        return False


@dataclass(frozen=True)
class LabelSummary:
    """Rows and missing count of an identifier column (cluster ids): no level counts,
    so a column with millions of distinct values costs nothing."""

    count: int = 0
    missing: int = 0
    dtype: str = "string"

    @classmethod
    def of(cls, column: pa.ChunkedArray | pa.Array) -> LabelSummary:
        """Summarize one Arrow column of identifiers."""
        missing = column.null_count
        if pa.types.is_floating(column.type):
            import pyarrow.compute as pc

            missing += int(pc.sum(pc.is_nan(column).cast(pa.int64())).as_py() or 0)
        return cls(count=len(column) - missing, missing=missing, dtype=str(column.type))

    def merge(self, other: LabelSummary) -> LabelSummary:
        """Both operands' rows."""
        if not isinstance(other, LabelSummary):
            raise SchemaError(f"cannot merge an identifier summary with {type(other).__name__}")
        return LabelSummary(self.count + other.count, self.missing + other.missing, self.dtype)

    @property
    def is_numeric(self) -> bool:
        return False


ColumnSummary = NumericSummary | CategoricalSummary | LabelSummary

#: A text column with at least this many levels, all but a few of them numbers, is
#: most likely a numeric column with a stray token (``n/a``, ``?``, ``12..5``) in it.
STRAY_MIN_LEVELS = 10
STRAY_MAX_SHARE = 0.05


def stray_tokens(levels: Mapping[Any, int]) -> list[str] | None:
    """The levels that are not numbers, when all but a few (at most
    :data:`STRAY_MAX_SHARE`) of at least :data:`STRAY_MIN_LEVELS` text levels are:
    the tokens that made a reader type a numeric column as text (empty when every
    level is a number: the token is in rows not summarized here). ``None`` for a
    column that is not numbers read as text (integer or boolean levels are labels by
    intent)."""
    if len(levels) < STRAY_MIN_LEVELS:
        return None
    others: list[str] = []
    for level in levels:
        if not isinstance(level, str):
            return None
        try:
            float(level)
        except ValueError:
            others.append(level)
            if len(others) > STRAY_MAX_SHARE * len(levels):
                return None
    return others


def describe_tokens(tokens: list[str], levels: Mapping[Any, int], shown: int = 5) -> str:
    """``'n/a' (3 rows), '?' (1 row)``: the first ``shown`` tokens and their counts."""
    text = ", ".join(
        f"{v!r} ({levels[v]:,} row{'' if levels[v] == 1 else 's'})" for v in tokens[:shown]
    )
    return text + (f" and {len(tokens) - shown:,} more" if len(tokens) > shown else "")


@dataclass(frozen=True)
class TableSummary:
    """Summaries of the columns of some rows, plus row counts.

    Attributes
    ----------
    rows : int
        Rows seen (missing values included).
    columns : dict of str to ColumnSummary
        In the order of the table's columns.
    partitions : int
        Partitions merged into this summary.
    skipped_rows : int
        Rows the readers skipped as malformed (``on_bad_lines="skip"``).
    """

    rows: int
    columns: dict[str, ColumnSummary]
    partitions: int = 1
    skipped_rows: int = 0

    def merge(self, other: TableSummary) -> TableSummary:
        """Summary of both operands' rows; raises if their columns differ."""
        if list(self.columns) != list(other.columns):
            raise SchemaError(
                f"partitions disagree on columns: {list(self.columns)} vs {list(other.columns)}"
            )
        return TableSummary(
            rows=self.rows + other.rows,
            columns={
                name: summary.merge(other.columns[name])  # type: ignore[arg-type]
                for name, summary in self.columns.items()
            },
            partitions=self.partitions + other.partitions,
            skipped_rows=self.skipped_rows + other.skipped_rows,
        )


def summarize_table(
    table: pa.Table,
    *,
    categorical: frozenset[str] = frozenset(),
    identifiers: frozenset[str] = frozenset(),
    max_levels: int = DEFAULT_MAX_LEVELS,
    skipped_rows: int = 0,
    source_schema: pa.Schema | None = None,
    dictionaries: frozenset[str] = frozenset(),
) -> TableSummary:
    """Summarize every column of ``table``.

    Columns in ``identifiers`` get a :class:`LabelSummary`; columns of a label type
    (string, dictionary) and those in ``categorical`` a :class:`CategoricalSummary`;
    the rest a :class:`NumericSummary`. A column that pandas metadata, of the table or
    of ``source_schema`` (the schema of the source it was read from), says was a
    ``Categorical`` keeps its categories' order (a Dask partition's table is built
    without the metadata its frame's ``meta`` gives the source). So does a column
    in ``dictionaries``, one the source stores as an Arrow dictionary (an Arrow
    table's, a Parquet or Feather file's): pandas reads it as a ``Categorical`` whose
    categories are the dictionary, in its order (a reader asked for dictionaries of
    plain text columns, as :func:`~shardfit.data.partition.read_labels` asks Parquet,
    gives no such order: those are sorted, as pandas sorts text).
    """
    columns: dict[str, ColumnSummary] = {}
    declared = _pandas_categoricals(table.schema) | dictionaries
    if source_schema is not None:
        declared |= _pandas_categoricals(source_schema)
    for name in table.column_names:
        column = table.column(name)
        if name in identifiers:
            columns[name] = LabelSummary.of(column)
        elif name in categorical or is_categorical_type(column.type):
            columns[name] = CategoricalSummary.of(
                column, name=name, max_levels=max_levels, declared=name in declared
            )
        else:
            columns[name] = NumericSummary.of(column)
    return TableSummary(rows=table.num_rows, columns=columns, skipped_rows=skipped_rows)


def _ordered_union(first: Sequence[Any], second: Sequence[Any]) -> tuple[Any, ...]:
    """``first``'s values, then ``second``'s not in ``first``, each in its order."""
    seen = set(first)
    return (*first, *(value for value in second if value not in seen))


def _pandas_categoricals(schema: pa.Schema) -> frozenset[str]:
    """Columns that pandas metadata (an Arrow table made from a DataFrame, or a Parquet
    file written by pandas) says were a ``Categorical``."""
    raw = (schema.metadata or {}).get(b"pandas")
    if not raw:
        return frozenset()
    try:
        described = json.loads(raw).get("columns", [])
    except (ValueError, AttributeError):
        return frozenset()
    return frozenset(
        str(item.get("field_name", item.get("name")))
        for item in described
        if isinstance(item, dict) and item.get("pandas_type") == "categorical"
    )
