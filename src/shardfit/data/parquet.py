"""Parquet files as a source: each partition is a run of row groups of one file.

The driver reads only the files' footers (row-group sizes and schemas); workers
read their own row groups with :meth:`pyarrow.parquet.ParquetFile.read_row_groups`
and cast them to the column types unified across the files
(:mod:`shardfit.data._parquet_schema`).
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import itertools
import json
import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from shardfit.data._parquet_schema import (
    conform,
    file_casts,
    refuse_conflicts,
    unify_file_schemas,
)
from shardfit.data._ranges import (
    check_columns,
    check_positive_int,
    file_stat,
    reading,
)
from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.errors import ReadError

__all__ = ["ParquetPartition", "coalesce_partitions", "read_parquet"]

_SUFFIXES = (".parquet", ".pq")

PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class ParquetPartition(Partition):
    """Consecutive row groups ``row_groups`` of one Parquet file.

    Attributes
    ----------
    path : str
        Absolute path of the file.
    label : str
        The file's name as shown in keys and messages (relative to the source root).
    columns : tuple of str
        The source's columns, in the source's order.
    row_groups : tuple of int
        The row-group ids read, consecutive; empty for a file without row groups.
    first_row : int
        Row (0-based, within the file) of the first row of the first row group.
    num_rows : int
        Rows in these row groups.
    size, mtime_ns : int
        The file's size and modification time when the source was planned.
    casts : tuple of (str, pyarrow.DataType)
        Columns this file stores with another type than the source's, and the
        source's (unified) type they are cast to when read.
    conflicts : tuple of (str, str)
        Columns whose types differ across the files beyond unifying, each with the
        message reading it raises.
    constants : tuple of (str, object)
        Hive-style partition keys of the file (``year=2020/`` in its path): columns not
        stored in it, with this file's value (``None`` for Hive's default partition or
        a file outside that folder level). Their types are the source schema's.
    """

    path: str
    label: str
    columns: tuple[str, ...]
    row_groups: tuple[int, ...]
    first_row: int
    num_rows: int
    size: int
    mtime_ns: int
    casts: tuple[tuple[str, pa.DataType], ...] = ()
    conflicts: tuple[tuple[str, str], ...] = ()
    constants: tuple[tuple[str, Any], ...] = ()
    constant_types: tuple[tuple[str, pa.DataType], ...] = ()

    @property
    def key(self) -> str:
        """``"part-0.parquet[rg2:4]"``: the file and the half-open range of row-group ids."""
        lo = self.row_groups[0] if self.row_groups else 0
        hi = self.row_groups[-1] + 1 if self.row_groups else 0
        return f"{self.label}[rg{lo}:{hi}]"

    #: :func:`~shardfit.data.partition.read_labels` may ask for dictionary columns.
    reads_dictionaries = True

    def read(
        self, columns: Sequence[str] | None = None, *, dictionary: Sequence[str] = ()
    ) -> ReadResult:
        """Read the row groups, keeping ``columns`` (all when ``None``) in that order.

        String columns named in ``dictionary`` come back dictionary-encoded, as Parquet
        usually stores them: label columns are then coded without building a Python
        string per row. Columns the file stores with another type than the source's
        are cast to the source's type.
        """
        wanted = list(check_columns(columns, self.columns, where=f"partition {self.key}"))
        refuse_conflicts(wanted, self.conflicts, where=f"partition {self.key}")
        constants = dict(self.constants)
        stored = [name for name in wanted if name not in constants]
        with reading(self.key, f"file {self.path}"):
            size = os.stat(self.path).st_size
            if size != self.size:
                raise ReadError(
                    f"file {self.path} changed since the source was planned "
                    f"({self.size} bytes then, {size} now); partition {self.key} "
                    "no longer describes it: plan the source again"
                )
            # Buffered column reads instead of pre-buffering whole column chunks: the
            # same speed on local files, a third less transient memory per row group.
            with pq.ParquetFile(
                self.path,
                pre_buffer=False,
                buffer_size=_READ_BUFFER,
                read_dictionary=_string_columns(self, dictionary, stored),
            ) as pf:
                table = pf.read_row_groups(list(self.row_groups), columns=stored)
                nbytes = _compressed_bytes(pf.metadata, self.row_groups, set(stored))
        if self.casts:
            table = conform(table, self.casts, dictionary=dictionary, where=f"file {self.path}")
        if len(stored) < len(wanted):
            types = dict(self.constant_types)
            for name in wanted:
                if name in constants:
                    value = pa.scalar(constants[name], type=types[name])
                    table = table.append_column(
                        pa.field(name, types[name]), pa.repeat(value, table.num_rows)
                    )
        return ReadResult(table.select(wanted), nbytes=nbytes)

    def locate(self, row: int) -> str:
        """``"file part-0.parquet, row 1234 (0-based, within the file)"``."""
        return f"file {self.label}, row {self.first_row + row} (0-based, within the file)"

    def fingerprint(self) -> str:
        """The absolute path, size, mtime and row-group ids (all the fields; the casts
        and conflicts only where there are some, so a data set of one type keeps the
        fingerprints it had before they existed)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("casts", "conflicts", "constants", "constant_types"):
            if not fields[name]:
                del fields[name]
        return json.dumps({"type": type(self).__name__, **fields}, sort_keys=True, default=str)


_READ_BUFFER = 1 << 20


def _string_columns(
    partition: ParquetPartition, names: Sequence[str], wanted: Sequence[str]
) -> list[str] | None:
    """Those of ``names`` that are read and stored as strings (dictionary-readable)."""
    if not names:
        return None
    strings = _file_strings(partition.path, partition.size, partition.mtime_ns)
    return [name for name in names if name in wanted and name in strings] or None


@functools.lru_cache(maxsize=64)
def _file_strings(path: str, size: int, mtime_ns: int) -> frozenset[str]:
    """The string columns of a file (its footer read once per process and version)."""
    schema = pq.read_schema(path)
    return frozenset(
        field.name
        for field in schema
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
    )


def _compressed_bytes(meta: pq.FileMetaData, row_groups: Sequence[int], columns: set[str]) -> int:
    """Bytes stored for ``columns`` (top-level names) in ``row_groups``."""
    total = 0
    for g in row_groups:
        group = meta.row_group(g)
        for j in range(group.num_columns):
            chunk = group.column(j)
            if chunk.path_in_schema.split(".")[0] in columns:
                total += chunk.total_compressed_size
    return total


def _expand(item: PathArg) -> list[str]:
    """One path, directory or glob → the Parquet files it names, sorted."""
    text = os.fspath(item)
    if any(ch in text for ch in "*?["):
        files = sorted(f for f in glob.glob(text, recursive=True) if os.path.isfile(f))
        if not files:
            raise ReadError(f"no files match {text!r}")
        return files
    path = Path(text)
    if path.is_dir():
        found = [f for f in path.rglob("*") if f.is_file() and f.name.lower().endswith(_SUFFIXES)]
        files = sorted(str(f) for f in found if not _hidden(path, f))
        if not files:
            skipped = (
                f" ({len(found)} left out below folders or files whose names start with "
                "'.' or '_', as pyarrow and Spark leave them out)"
                if found
                else ""
            )
            raise ReadError(f"no *.parquet or *.pq files below directory {text}{skipped}")
        return files
    if not path.exists():
        raise ReadError(f"no such file or directory: {text}")
    return [text]


def _hidden(root: Path, file: Path) -> bool:
    """Whether a name on the way from ``root`` to ``file`` starts with ``.`` or ``_``.

    pyarrow's dataset discovery (so ``pd.read_parquet`` of a directory), Dask and Spark
    leave such files out: Spark's ``_temporary/`` attempts of a job still running or
    failed, ``_SUCCESS`` and ``_metadata`` files, hidden copies. Reading them would
    add rows that a fit of the same directory in pandas does not have.
    """
    return any(part.startswith((".", "_")) for part in file.relative_to(root).parts)


def _hive_values(root: Path, file: str) -> dict[str, str | None]:
    """``{key: value}`` of the ``key=value`` folders between ``root`` and ``file``
    (percent-decoded, as Hive writes them; its default partition is ``None``)."""
    values: dict[str, str | None] = {}
    for part in Path(file).relative_to(root).parts[:-1]:
        if "=" in part and not part.startswith("="):
            key, value = part.split("=", 1)
            decoded = urllib.parse.unquote(value)
            values[urllib.parse.unquote(key)] = (
                None if decoded == "__HIVE_DEFAULT_PARTITION__" else decoded
            )
    return values


def _hive_type(values: Sequence[str | None]) -> pa.DataType:
    """int64 when every value is an integer (``2020``, ``-3``), else string: what
    ``pyarrow.dataset``'s partitioning infers, with int64 rather than int32."""
    try:
        for value in values:
            if value is not None:
                int(value)
    except ValueError:
        return pa.string()
    return pa.int64()


def _columns_mismatch(first: str, schema0: pa.Schema, other: str, schema: pa.Schema) -> str | None:
    """Describe how the column names of ``schema`` (of ``other``) differ from those of
    ``schema0`` (of ``first``); their types are unified separately."""
    names = set(schema.names)
    for fld in schema0:
        if fld.name not in names:
            return f"column {fld.name!r} of {first} is missing from {other}"
    extra = [n for n in schema.names if n not in set(schema0.names)]
    if extra:
        return f"column {extra[0]!r} of {other} is not in {first}"
    return None


def _group(sizes: Sequence[int], limit: int | None) -> list[list[int]]:
    """Runs of consecutive row-group ids with at most ``limit`` rows (one group if larger)."""
    if limit is None:
        return [[g] for g in range(len(sizes))] or [[]]
    runs: list[list[int]] = []
    run: list[int] = []
    rows = 0
    for g, n in enumerate(sizes):
        if run and rows + n > limit:
            runs.append(run)
            run, rows = [], 0
        run.append(g)
        rows += n
    runs.append(run)
    return runs


def read_parquet(
    path_or_dir_or_glob: PathArg | Sequence[PathArg], *, partition_rows: int | None = None
) -> Source:
    """Plan a source over one or many Parquet files.

    Parameters
    ----------
    path_or_dir_or_glob : str, path-like, or a sequence of them
        A file; a directory (every ``*.parquet`` / ``*.pq`` file below it, sorted by
        path, leaving out those below a folder or named with a leading ``.`` or
        ``_``, as pyarrow, pandas and Spark do: ``_temporary/``, hidden files); a
        glob such as ``"data/*.parquet"`` (``**`` recurses, every match is read); or
        a list of any of these, read in the order given.
    partition_rows : int, optional
        Group consecutive row groups of a file into partitions of at most this many
        rows; a row group larger than that is a partition of its own. By default
        each row group is one partition. Partitions never span files.

    Returns
    -------
    Source
        Its schema has the first file's columns, in its order, each with the type
        unified across the files: types that can be promoted are (int32 and int64
        make int64, float32 and float64 float64, integers and floats float64; an
        all-missing ``null`` column takes the others' type; string, large_string and
        dictionary-encoded strings make string; timestamps in different time zones
        make UTC at the finest unit), and every partition casts the rows
        it reads to these types, so all partitions yield the same schema. The casts
        are safe: an integer that float64 cannot hold exactly (beyond 2**53) is a
        ReadError naming the file and column, not a rounded value as in pandas. A
        file with no row groups gives one empty partition. A directory partitioned
        Hive-style (``year=2020/region=north/part-0.parquet``, as
        ``pyarrow.parquet.write_to_dataset`` and Spark write) has its keys as further
        columns after the stored ones, as ``pyarrow.parquet.read_table`` and pandas
        add them: int64 where every value is an integer, else string (percent-decoded);
        Hive's default partition is missing. A key the files also store is theirs.
        pyarrow and pandas type the keys as dictionaries (a pandas ``Categorical``),
        so statsmodels on ``pd.read_parquet`` fits an integer key as levels: here it
        is a number (one slope) unless the formula says ``C(year)``.
        ``meta["partition_keys"]`` names the keys.

    Raises
    ------
    ReadError
        When no file matches, a file is not Parquet, or a file's column names differ
        from the first file's (the message names both files and the column). Types
        that do not unify (strings in one file, numbers in another) are refused only
        when a partition reads that column: the message names the column and the
        files with their types; columns that are not read may disagree (the schema
        gives them type ``null``, and ``meta["type_conflicts"]`` the messages).
    """
    check_positive_int(partition_rows, name="partition_rows", owner="read_parquet", optional=True)
    items = (
        [path_or_dir_or_glob]
        if isinstance(path_or_dir_or_glob, str | os.PathLike)
        else list(path_or_dir_or_glob)
    )
    files: list[str] = []
    hive: dict[str, dict[str, str | None]] = {}  # file -> its key=value folders
    for item in items:
        expanded = _expand(item)
        for f in expanded:
            full = os.path.abspath(f)
            files.append(full)
            if Path(item).is_dir():
                hive[full] = _hive_values(Path(item).resolve(), str(Path(f).resolve()))
    if not files:
        raise ReadError("read_parquet was given an empty list of paths")
    root = os.path.commonpath([os.path.dirname(f) for f in files])

    footers = [_footer(f) for f in files]
    schema0, first = footers[0].schema, footers[0].path
    for footer in footers[1:]:
        if (problem := _columns_mismatch(first, schema0, footer.path, footer.schema)) is not None:
            raise ReadError(f"Parquet files disagree: {problem}")
    unified = unify_file_schemas([f.path for f in footers], [f.schema for f in footers])
    conflicts = tuple(unified.conflicts.items())
    # Hive-style keys (year=2020/ folders) are columns, as pyarrow and pandas read
    # them; a key the files also store is theirs.
    keys = [k for k in dict.fromkeys(k for v in hive.values() for k in v) if k not in schema0.names]
    key_types = tuple((key, _hive_type([hive.get(f, {}).get(key) for f in files])) for key in keys)
    schema = unified.schema
    for key, kind in key_types:
        schema = schema.append(pa.field(key, kind))
    columns = tuple(schema0.names) + tuple(keys)

    partitions: list[Partition] = []
    total = 0
    for footer in footers:
        full, size, mtime_ns, sizes = footer.path, footer.size, footer.mtime_ns, footer.sizes
        label = os.path.relpath(full, root)
        casts = file_casts(footer.schema, unified)
        offsets = [0, *itertools.accumulate(sizes)]
        for run in _group(sizes, partition_rows):
            partitions.append(
                ParquetPartition(
                    path=full,
                    label=label,
                    columns=columns,
                    row_groups=tuple(run),
                    first_row=offsets[run[0]] if run else 0,
                    num_rows=sum(sizes[g] for g in run),
                    size=size,
                    mtime_ns=mtime_ns,
                    casts=casts,
                    conflicts=conflicts,
                    constants=tuple(
                        (key, _typed(hive.get(full, {}).get(key), kind)) for key, kind in key_types
                    ),
                    constant_types=key_types,
                )
            )
        total += sum(sizes)
    if len(files) == 1:
        name = os.path.basename(files[0])
    else:
        name = os.fspath(items[0]) if len(items) == 1 else f"{len(files)} Parquet files"
    meta: dict[str, object] = {"format": "parquet", "files": files, "nrows": total}
    if unified.conflicts:
        meta["type_conflicts"] = dict(unified.conflicts)
    if keys:
        meta["partition_keys"] = list(keys)
    return Source(name=name, partitions=tuple(partitions), schema=schema, meta=meta)


def _typed(value: str | None, kind: pa.DataType) -> Any:
    """A Hive key's folder text as a value of its column's type."""
    if value is None:
        return None
    return int(value) if pa.types.is_integer(kind) else value


@dataclass(frozen=True)
class _Footer:
    """What the driver learns of one file: its schema, row-group sizes and identity."""

    path: str
    size: int
    mtime_ns: int
    schema: pa.Schema
    sizes: list[int]


def _footer(path: str) -> _Footer:
    full, size, mtime_ns = file_stat(path)
    try:
        with pq.ParquetFile(full) as pf:
            schema = pf.schema_arrow
            meta = pf.metadata
            sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    except (OSError, pa.ArrowException) as e:
        raise ReadError(f"cannot read the Parquet footer of {full}: {e}") from e
    return _Footer(full, size, mtime_ns, schema, sizes)


def coalesce_partitions(partitions: Sequence[Partition], groups: int) -> tuple[Partition, ...]:
    """Consecutive Parquet partitions of one file joined into at most about ``groups``
    partitions of similar row counts (as many more as there are files).

    For a pass whose tasks are too small to repay a task each (the schema pass that
    learns only categorical levels reads a column or two per row group): fewer,
    larger tasks. Partitions that are not Parquet row groups are returned as they are.
    """
    if groups < 1 or len(partitions) <= groups:
        return tuple(partitions)
    if not all(isinstance(part, ParquetPartition) and part.row_groups for part in partitions):
        return tuple(partitions)
    parquet = [part for part in partitions if isinstance(part, ParquetPartition)]
    total = sum(part.num_rows for part in parquet)
    target = max(1, -(-total // groups))  # rows per group, rounded up
    joined: list[Partition] = []
    run: list[ParquetPartition] = []
    rows = 0
    for part in parquet:
        follows = bool(run) and part.path == run[-1].path
        follows = follows and part.row_groups[0] == run[-1].row_groups[-1] + 1
        if run and (not follows or rows + part.num_rows > target):
            joined.append(_joined(run))
            run, rows = [], 0
        run.append(part)
        rows += part.num_rows
    joined.append(_joined(run))
    return tuple(joined)


def _joined(run: list[ParquetPartition]) -> ParquetPartition:
    """One partition of the consecutive row groups of ``run`` (one file)."""
    first = run[0]
    if len(run) == 1:
        return first
    return dataclasses.replace(
        first,
        row_groups=tuple(g for part in run for g in part.row_groups),
        num_rows=sum(part.num_rows for part in run),
    )
