"""Convert between CSV and Parquet with bounded memory.

:func:`convert` streams CSV with :func:`pyarrow.csv.open_csv` (4 MiB blocks) or
Parquet batch by batch, re-chunks the rows into equal chunks (Parquet row groups) and
writes them to a temporary file beside the destination, renamed over it at the end.
Peak memory depends on the block and chunk sizes, never on the number of rows.

CSV carries no types: they are inferred from the first 16 MiB and then kept, so a
later value that does not fit (``1.5`` in a column that looked like integers) is a
:class:`~shardfit.errors.ReadError` naming the line and column, fixed by passing
``column_types``. Missing values are the empty field and the usual spellings (``NA``,
``NULL``, ``N/A``…); ``nan`` and ``inf`` are floats, and a quoted ``""`` is an empty
string, so a CSV written here reads back to the same values.
"""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shardfit.errors import ReadError, SchemaError

__all__ = [
    "ConvertReport",
    "atomic_output",
    "convert",
    "delimiter_for",
    "infer_format",
    "open_table_writer",
    "progress_bar",
    "write_atomically",
]

Format = Literal["csv", "parquet"]

#: Bytes of CSV parsed at a time (pyarrow reads up to 32 blocks ahead).
CSV_BLOCK_BYTES = 4 * 2**20
#: Bytes at the start of a CSV file from which the column types are inferred.
CSV_INFER_BYTES = 16 * 2**20
#: In-memory (Arrow) bytes per output chunk when ``chunk_rows`` is not given.
TARGET_CHUNK_BYTES = 64 * 2**20
# Compressed CSV by extension -> pyarrow codec (streamed both ways).
_CODECS: dict[str, str] = {
    ".gz": "gzip",
    ".bz2": "bz2",
    ".zst": "zstd",
    ".lz4": "lz4",
    ".br": "brotli",
}
_SUFFIXES: dict[str, tuple[Format, str | None]] = {
    ".csv": ("csv", None),
    **{f".csv{ext}": ("csv", codec) for ext, codec in _CODECS.items()},
    ".tsv": ("csv", None),  # tab-separated: see delimiter_for
    **{f".tsv{ext}": ("csv", codec) for ext, codec in _CODECS.items()},
    ".parquet": ("parquet", None),
    ".pq": ("parquet", None),
}
# pyarrow's default null spellings less the NaN ones, so that NaN survives a round trip.
_NULL_VALUES = ["", "#N/A", "#N/A N/A", "#NA", "N/A", "NA", "NULL", "n/a", "null"]
_CSV_ERROR = re.compile(r"^(?:In CSV column #(?P<col>\d+): )?(?:CSV parse error: )?(?P<rest>.*)$")
_ROW = re.compile(r"^Row #(?P<row>\d+): (?P<detail>.*)$", re.DOTALL)


def infer_format(
    path: str | os.PathLike[str], *, format: Format | None = None
) -> tuple[Format, str | None]:
    """Tell a file's format and compression from its extension.

    Parameters
    ----------
    path : str or path-like
        The file name; ``.csv``, ``.csv.gz``, ``.csv.bz2``, ``.csv.zst``, ``.csv.lz4``,
        ``.csv.br``, the same for ``.tsv`` (tab-separated, :func:`delimiter_for`),
        ``.parquet`` and ``.pq`` are known.
    format : {"csv", "parquet"}, optional
        The format, for a file whose extension does not say it (``.txt``, ``.bin``;
        compression still comes from a ``.gz``-like ending).

    Returns
    -------
    tuple of (str, str or None)
        The format and the pyarrow compression codec (``"gzip"``, ``"bz2"``,
        ``"zstd"``, ``"lz4"``, ``"brotli"``) or ``None``.

    Raises
    ------
    ValueError
        When ``format`` contradicts the extension (``format="csv"`` for
        ``out.parquet``: a CSV file named as Parquet), or neither says the format.
    """
    name = Path(path).name.lower()
    compression = next((codec for ext, codec in _CODECS.items() if name.endswith(ext)), None)
    by_suffix = next((found for ext, found in _SUFFIXES.items() if name.endswith(ext)), None)
    if format is not None:
        if format not in ("csv", "parquet"):
            raise ValueError(
                f"The 'format' parameter must be 'csv' or 'parquet'. Got {format!r} instead."
            )
        if by_suffix is not None and by_suffix[0] != format:
            raise ValueError(
                f"{path}: the format {format!r} contradicts the extension, which says "
                f"{by_suffix[0]!r}; name the file for its format, or leave the format out "
                "to take it from the extension"
            )
        if format == "parquet" and compression:
            raise ValueError(f"{path}: {compression} compression applies to CSV files only")
        return format, compression
    if by_suffix is not None:
        return by_suffix
    raise ValueError(
        f"Cannot tell the format of {str(path)!r} from its extension "
        f"(known: {', '.join(_SUFFIXES)})."
    )


def delimiter_for(path: str | os.PathLike[str]) -> str:
    """The field delimiter a text file's name implies: a tab for ``.tsv`` (compressed or
    not: ``.tsv.gz``), else a comma."""
    name = str(path).rstrip("/\\").lower()
    for codec in _CODECS:
        name = name.removesuffix(codec)
    return "\t" if name.endswith(".tsv") else ","


def _check_delimiter(delimiter: str) -> str:
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise ValueError(
            "The 'delimiter' parameter must be one character other than a quote or a line "
            f"break (a tab: '\\t'). Got {delimiter!r} instead."
        )
    return delimiter


def write_atomically(
    path: Path, *, table: pa.Table | None = None, text: str = "", **parquet: Any
) -> None:
    """Write a Parquet ``table`` (or ``text``) to ``path`` via a temporary and a rename;
    ``parquet`` are :func:`pyarrow.parquet.write_table`'s options."""
    # A hidden temporary name: readers skip it even if a killed worker leaves it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        if table is not None:
            pq.write_table(table, tmp, **parquet)
        else:
            tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``, renamed over it if the block succeeds.

    The temporary file is ``<path>.tmp-<pid>``; on any exception it is removed and
    ``path`` is left as it was.
    """
    final = Path(path)
    if not final.parent.is_dir():
        raise FileNotFoundError(f"Cannot write {final}: no such folder {final.parent}")
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class TableWriter(Protocol):
    """Something that appends tables to an open file."""

    def write(self, table: pa.Table) -> None:
        """Append ``table`` (one Parquet row group)."""


class _ParquetTableWriter:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self._writer = pq.ParquetWriter(path, schema)

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self._writer.write_table(table, row_group_size=table.num_rows)

    def close(self) -> None:
        self._writer.close()


class _CsvTableWriter:
    def __init__(
        self, path: Path, schema: pa.Schema, compression: str | None, delimiter: str
    ) -> None:
        self._sink = pa.output_stream(path, compression=compression)
        options = pacsv.WriteOptions(delimiter=delimiter)
        self._writer = pacsv.CSVWriter(self._sink, schema, write_options=options)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


@contextmanager
def open_table_writer(
    path: str | os.PathLike[str],
    schema: pa.Schema,
    *,
    format: Format,
    compression: str | None = None,
    delimiter: str = ",",
) -> Iterator[TableWriter]:
    """Open a CSV or Parquet file for writing tables of ``schema`` one at a time.

    Each :meth:`TableWriter.write` call makes one Parquet row group; CSV fields are
    separated by ``delimiter``. The file is closed when the block ends, also on error.
    """
    if format == "csv":
        nested = [f.name for f in schema if pa.types.is_nested(f.type)]
        if nested:
            raise SchemaError(f"CSV cannot hold the nested columns {nested}")
        writer: _CsvTableWriter | _ParquetTableWriter = _CsvTableWriter(
            Path(path), schema, compression, delimiter
        )
    else:
        writer = _ParquetTableWriter(Path(path), schema)
    try:
        yield writer
    finally:
        writer.close()


@contextmanager
def progress_bar(
    description: str, *, total: int, unit: Literal["bytes", "rows"], enabled: bool
) -> Iterator[Callable[[int], None]]:
    """Yield ``update(done)``, which moves a rich progress bar on standard error.

    When ``enabled`` is false nothing is shown and ``update`` does nothing.
    """
    if not enabled:
        yield lambda done: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    amount = (
        [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    )
    columns = [TextColumn("{task.description}"), BarColumn(), *amount]
    columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)
        bar.update(task, completed=total)


@dataclass(frozen=True)
class ConvertReport:
    """What :func:`convert` did.

    Attributes
    ----------
    src, dst : pathlib.Path
        The input and output files.
    rows, columns : int
        The size of the data.
    chunks : int
        Chunks written (Parquet row groups).
    bytes_in, bytes_out : int
        The sizes of the input and output files.
    seconds : float
        Wall time.
    """

    src: Path
    dst: Path
    rows: int
    columns: int
    chunks: int
    bytes_in: int
    bytes_out: int
    seconds: float

    def summary(self) -> str:
        """One line for people, e.g. for the command line."""
        return (
            f"converted {self.rows:,} rows x {self.columns} columns: {self.src} "
            f"({_size(self.bytes_in)}) -> {self.dst} ({_size(self.bytes_out)}), "
            f"{self.chunks} chunk{'s' * (self.chunks != 1)}, in {self.seconds:.1f} s"
        )


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _parse_types(column_types: Mapping[str, str | pa.DataType] | None) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {}
    for name, kind in (column_types or {}).items():
        if isinstance(kind, pa.DataType):
            types[name] = kind
            continue
        try:
            types[name] = pa.type_for_alias(kind)
        except ValueError:
            raise ValueError(
                f"The type of column {name!r} in 'column_types' must be a pyarrow type or a "
                f"name such as 'float64', 'int64', 'string', 'bool'. Got {kind!r} instead."
            ) from None
    return types


def _csv_error(
    error: pa.ArrowException, path: Path, names: list[str], given: Mapping[str, object]
) -> ReadError:
    """Turn pyarrow's CSV error into one that names the line, column and a fix."""
    match = _CSV_ERROR.match(str(error))
    col, rest = (match["col"], match["rest"]) if match else (None, str(error))
    row = _ROW.match(rest)
    where = f"line {row['row']}" if row else "location unknown"
    detail = row["detail"] if row else rest
    if col is None:
        return ReadError(f"Malformed CSV in {path} ({where}): {detail}")
    name = names[int(col)] if int(col) < len(names) else f"#{col}"
    bad = re.search(r"invalid value '(.*)'$", detail)
    suggestion = "float64"
    if bad:
        try:
            float(bad[1])
        except ValueError:
            suggestion = "string"
    origin = (
        "was set by column_types"
        if name in given
        else f"was inferred from the first {CSV_INFER_BYTES // 2**20} MiB of the file"
    )
    return ReadError(
        f"Bad value in {path} ({where}), column {name!r}: {detail}. The column's type "
        f"{origin}; pass column_types={{{name!r}: {suggestion!r}}} (command line: "
        f"--column-type {name}={suggestion}) to set it."
    )


def _header_names(sample: bytes, parse: pacsv.ParseOptions) -> list[str]:
    """The column names in the first line of ``sample``, for error messages."""
    try:
        first_line = sample[: sample.find(b"\n") + 1] or sample
        header = pacsv.read_csv(pa.BufferReader(first_line), parse_options=parse)
    except pa.ArrowException:
        return []
    return list(header.column_names)


@dataclass
class _Input:
    """An open input: its schema, its batches, bytes read so far, and how to close it."""

    schema: pa.Schema
    batches: Iterator[pa.RecordBatch]
    bytes_read: Callable[[], int]
    close: Callable[[], None]


@dataclass(frozen=True)
class _CsvDialect:
    """How the input CSV is written: its delimiter and its spellings of missing."""

    parse: pacsv.ParseOptions
    null_values: list[str]


def _csv_options(types: dict[str, pa.DataType], dialect: _CsvDialect) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types=types,
        null_values=dialect.null_values,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )


def _csv_schema(
    path: Path, compression: str | None, types: dict[str, pa.DataType], dialect: _CsvDialect
) -> pa.Schema:
    """Infer the column types from the first :data:`CSV_INFER_BYTES`, cut at a line end.

    Done apart from the streaming reader so that its blocks, and the 32 of them it
    reads ahead, can stay small while the types still come from a large sample.
    """
    with pa.input_stream(str(path), compression=compression) as stream:
        sample = stream.read(CSV_INFER_BYTES + 1)
    if len(sample) > CSV_INFER_BYTES:
        sample = sample[: sample.rfind(b"\n", 0, CSV_INFER_BYTES) + 1]
    options = pacsv.ReadOptions(block_size=len(sample) + 1, use_threads=False)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(sample),
            read_options=options,
            parse_options=dialect.parse,
            convert_options=_csv_options(types, dialect),
        )
    except pa.ArrowException as error:
        names = _header_names(sample, dialect.parse)
        raise _csv_error(error, path, names, types) from error
    unknown = sorted(set(types) - set(table.schema.names))
    if unknown:
        raise ValueError(f"'column_types' names columns not in {path}: {unknown}")
    return table.schema


class _CountingFile(io.RawIOBase):
    """A file that counts the bytes read from it, from whichever thread reads.

    pyarrow reads through it on its own thread, under the GIL, so the count can be
    read safely from this one (for the progress bar).
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = path.open("rb", buffering=0)
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer)
        self.count += n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_csv(
    path: Path, compression: str | None, types: dict[str, pa.DataType], dialect: _CsvDialect
) -> _Input:
    schema = _csv_schema(path, compression, types, dialect)
    raw = _CountingFile(path)
    stream = pa.PythonFile(raw, mode="r")
    if compression:
        stream = pa.CompressedInputStream(stream, compression)
    # Single-threaded parsing makes pyarrow report the line of a bad value; on two
    # cores it costs little, since writing the output runs in this thread meanwhile.
    read_options = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False)
    fixed = _csv_options({field.name: field.type for field in schema}, dialect)
    try:
        reader = pacsv.open_csv(
            stream, read_options=read_options, parse_options=dialect.parse, convert_options=fixed
        )
    except pa.ArrowException as error:
        raw.close()
        raise _csv_error(error, path, schema.names, types) from error

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowException as error:
                raise _csv_error(error, path, schema.names, types) from error

    def close() -> None:
        reader.close()
        raw.close()

    return _Input(reader.schema, batches(), lambda: raw.count, close)


def _open_parquet(path: Path, types: dict[str, pa.DataType], batch_rows: int) -> _Input:
    try:
        # Without pre_buffer=False, iter_batches buffers every row group it will read.
        file = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError) as error:
        raise ReadError(f"Cannot read {path} as Parquet: {error}") from error
    schema = file.schema_arrow
    unknown = sorted(set(types) - set(schema.names))
    if unknown:
        file.close()
        raise ValueError(f"'column_types' names columns not in {path}: {unknown}")
    target = pa.schema(
        [f.with_type(types.get(f.name, f.type)) for f in schema], metadata=schema.metadata
    )
    total_rows, size = file.metadata.num_rows, path.stat().st_size
    done = [0]

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in file.iter_batches(batch_size=batch_rows, use_threads=False):
            done[0] += batch.num_rows
            if types:
                try:
                    batch = batch.cast(target)
                except pa.ArrowException as error:
                    raise ReadError(f"Cannot convert columns of {path}: {error}") from error
            yield batch

    return _Input(target, batches(), lambda: size * done[0] // max(total_rows, 1), file.close)


def _rechunk(
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    chunk_rows: int | None,
    on_batch: Callable[[], None],
) -> Iterator[pa.Table]:
    """Regroup batches into tables of ``chunk_rows`` rows (the last may be shorter).

    Without ``chunk_rows``, it is chosen from the first batch so that a chunk takes
    about :data:`TARGET_CHUNK_BYTES` of memory. ``on_batch`` runs after each batch read.
    """
    pending: list[pa.RecordBatch] = []
    npending = 0
    for batch in batches:
        on_batch()
        if batch.num_rows == 0:
            continue
        if chunk_rows is None:
            per_row = max(batch.nbytes / batch.num_rows, 1.0)
            chunk_rows = int(min(max(TARGET_CHUNK_BYTES // per_row, 1024), 4 * 2**20))
        pending.append(batch)
        npending += batch.num_rows
        while npending >= chunk_rows:
            table = pa.Table.from_batches(pending, schema=schema)
            yield table.slice(0, chunk_rows)
            pending = table.slice(chunk_rows).to_batches()
            npending -= chunk_rows
    if npending:
        yield pa.Table.from_batches(pending, schema=schema)


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    chunk_rows: int | None = None,
    column_types: Mapping[str, str | pa.DataType] | None = None,
    delimiter: str | None = None,
    null_values: Sequence[str] | None = None,
    progress: bool = False,
) -> ConvertReport:
    """Convert a CSV or Parquet file to CSV or Parquet, chunk by chunk.

    Parameters
    ----------
    src : str or path-like
        The input: ``.csv`` (plain, or compressed: ``.csv.gz``, ``.csv.bz2``,
        ``.csv.zst``, ``.csv.lz4``, ``.csv.br``), ``.parquet`` or ``.pq``.
    dst : str or path-like
        The output, format by extension; replaced atomically, untouched on failure.
    chunk_rows : int, optional
        Rows per written chunk (Parquet row group). By default about
        :data:`TARGET_CHUNK_BYTES` of memory's worth, from the first batch read.
    column_types : mapping of str to str or pyarrow.DataType, optional
        Types of some columns (``{"id": "string", "x": "float64"}``), instead of the
        types inferred from the first 16 MiB of a CSV (or cast to, from Parquet).
    delimiter : str, optional
        The input CSV's field delimiter (``";"``, ``"\\t"``, ``"|"``). By default a tab
        for ``.tsv`` files and a comma otherwise. A CSV output is separated by commas,
        or by tabs when its name ends in ``.tsv``.
    null_values : sequence of str, optional
        The input CSV's spellings of a missing value (``["-999", "."]``); an empty
        field is missing too. They match the text of a field, as in pyarrow and R:
        ``"-999"`` does not match ``-999.0`` (pandas' ``na_values`` matches the
        number). By default ``NA``, ``NULL``, ``N/A``, ``#N/A`` and the like, but not
        ``NaN``, which stays a float NaN.
    progress : bool, default False
        Show a progress bar on standard error, driven by the bytes read.

    Returns
    -------
    ConvertReport
        Rows, chunks, sizes and time.

    Raises
    ------
    shardfit.errors.ReadError
        The input is missing or malformed, or a value does not fit its column's type.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from shardfit.data.simulate import simulate
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     csv = simulate("poisson", 500, pathlib.Path(folder) / "d.csv")
    ...     convert(csv, pathlib.Path(folder) / "d.parquet", chunk_rows=200).chunks
    3
    """
    started = time.perf_counter()
    src_path, dst_path = Path(src), Path(dst)
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or chunk_rows < 1):
        raise ValueError(
            f"The 'chunk_rows' parameter of convert must be an int in [1, inf). "
            f"Got {chunk_rows!r} instead."
        )
    in_format, in_compression = infer_format(src_path)
    out_format, out_compression = infer_format(dst_path)
    types = _parse_types(column_types)
    dialect = _dialect(src_path, in_format, delimiter, null_values)
    if not src_path.is_file():
        raise ReadError(f"Cannot read {src_path}: no such file")
    if dst_path.exists() and os.path.samefile(src_path, dst_path):
        raise ValueError(f"convert cannot write {dst_path} over its own input")
    bytes_in = src_path.stat().st_size
    if in_format == "csv":
        source = _open_csv(src_path, in_compression, types, dialect)
    else:
        source = _open_parquet(src_path, types, 65_536)
    rows = chunks = 0
    try:
        with (
            atomic_output(dst_path) as tmp,
            open_table_writer(
                tmp,
                source.schema,
                format=out_format,
                compression=out_compression,
                delimiter=delimiter_for(dst_path),
            ) as writer,
            progress_bar(
                f"convert {src_path.name}", total=bytes_in, unit="bytes", enabled=progress
            ) as update,
        ):
            tables = _rechunk(
                source.batches, source.schema, chunk_rows, lambda: update(source.bytes_read())
            )
            for table in tables:
                writer.write(table)
                rows += table.num_rows
                chunks += 1
    finally:
        source.close()
    return ConvertReport(
        src=src_path,
        dst=dst_path,
        rows=rows,
        columns=len(source.schema),
        chunks=chunks,
        bytes_in=bytes_in,
        bytes_out=dst_path.stat().st_size,
        seconds=time.perf_counter() - started,
    )


def _dialect(
    src: Path, in_format: Format, delimiter: str | None, null_values: Sequence[str] | None
) -> _CsvDialect:
    """The input's CSV dialect; CSV options for a Parquet input are refused, not ignored."""
    if in_format != "csv":
        options = (("delimiter", delimiter), ("null_values", null_values))
        given = [name for name, value in options if value is not None]
        if given:
            named = " and ".join(given)
            raise ValueError(
                f"{named} (command line: --{named.replace('_', '-').replace(' and ', ' and --')})"
                f" describe{'s' * (len(given) == 1)} CSV input, but {src} is Parquet; leave "
                f"{'them' if len(given) > 1 else 'it'} out"
            )
    if isinstance(null_values, str):
        raise ValueError(
            "The 'null_values' parameter must be a list of strings, such as ['-999', '.']. "
            f"Got the string {null_values!r} instead."
        )
    nulls = list(_NULL_VALUES if null_values is None else null_values)
    nulls += [""] if "" not in nulls else []  # an empty field is always missing
    sep = _check_delimiter(delimiter_for(src) if delimiter is None else delimiter)
    return _CsvDialect(pacsv.ParseOptions(delimiter=sep), nulls)
