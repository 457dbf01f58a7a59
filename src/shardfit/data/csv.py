"""CSV files (plain or compressed) as a :class:`~shardfit.data.partition.Source`.

A plain file is split into byte ranges aligned to line starts, so several workers
read one file in parallel: partition ``[start, end)`` owns every line whose first
byte lies in that range. Boundaries come from the file size alone; the worker finds
the line starts. Column types are inferred once, on the driver, from the head of
the first file and passed explicitly to every partition, so all partitions yield
the same schema. Errors name the file and the 1-based line (the header is line 1).
"""

from __future__ import annotations

import hashlib
import heapq
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from shardfit.data import _csv_lines as lines
from shardfit.data._csv_lines import CsvOptions
from shardfit.data._ranges import changed_ns, check_columns, check_positive_int, reading
from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.errors import ReadError

__all__ = ["CsvPartition", "read_csv"]

DEFAULT_PARTITION_BYTES = 64 << 20
_SAMPLE_BYTES = 1 << 20
_MAX_SAMPLE_BYTES = 64 << 20
_MAX_EXAMPLES = 5
_DEFAULT_BLOCK_BYTES = pacsv.ReadOptions().block_size
#: pandas' default missing-value markers (``pandas.read_csv``'s ``na_values``): pyarrow's
#: list plus ``"None"`` and ``"<NA>"``, so a file reads as the pandas frame a statsmodels
#: user fits (with pyarrow's alone, a text column's "None" was a level of its own and a
#: numeric column holding one was text).
PANDAS_NULL_VALUES = (*pacsv.ConvertOptions().null_values, "None", "<NA>")
_MAX_BLOCK_BYTES = 2**31 - 1


def read_csv(
    path_or_glob: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    partition_rows: int | None = None,
    partition_bytes: int | None = None,
    delimiter: str = ",",
    header: bool = True,
    column_names: Sequence[str] | None = None,
    column_types: Mapping[str, str | pa.DataType] | None = None,
    null_values: Sequence[str] | None = None,
    quote_char: str | None = '"',
    newlines_in_values: bool = False,
    on_bad_lines: Literal["raise", "skip"] = "raise",
    block_size: int | None = None,
) -> Source:
    """Describe one or more CSV files as a source of partitions, without reading them.

    Parameters
    ----------
    path_or_glob : str, path-like or sequence of them
        A file, a glob pattern (expanded and sorted; ``**`` recurses) or a list of files.
        Files ending in ``.gz``, ``.bz2``, ``.zst``, ``.lz4`` or ``.br`` are decompressed
        as a stream and cannot be split: one partition per file.
    partition_rows : int, optional
        About how many rows per partition, converted to bytes with the mean line length
        of the head of the first file. Exclusive with ``partition_bytes``.
    partition_bytes : int, optional
        Bytes of a plain file per partition (default 64 MiB). Smaller files give one.
    delimiter : str
        The one-character field separator (``","``, ``";"``, ``"\\t"``).
    header : bool
        Whether the first line of every file holds the column names.
    column_names : sequence of str, optional
        The column names; with ``header=True`` they replace the header line's. Without
        a header and without names, columns are called ``f0``, ``f1``, ...
    column_types : mapping of str to str or pyarrow.DataType, optional
        Types that override inference, e.g. ``{"x": "float64", "id": "string"}``.
    null_values : sequence of str, optional
        Markers of a missing value. Default: pandas' list (``""``, ``"NA"``,
        ``"NULL"``, ``"NaN"``, ``"None"``, ``"<NA>"``, ...; :data:`PANDAS_NULL_VALUES`).
        An empty field is missing too, in a column of any type, whether or not ``""``
        is among the markers (as in R and pandas).
    quote_char : str or None
        The quoting character (a doubled one inside quotes is literal); ``None``: none.
    newlines_in_values : bool
        Whether quoted values may contain line breaks. Such files are never split.
    on_bad_lines : {"raise", "skip"}
        What to do with a line with the wrong number of fields or an unparsable value:
        raise :class:`~shardfit.errors.ReadError` naming file, line and column, or drop
        the line and count it in :attr:`ReadResult.skipped_rows`. With ``"skip"``
        every column is parsed, so the rows kept do not depend on the columns read.
    block_size : int, optional
        pyarrow's parsing block size in bytes (default 1 MiB). A partition with a
        longer line is parsed again with a block twice its longest line.

    Returns
    -------
    Source
        Named after the file or pattern, with the schema inferred from the head
        (1 MiB) of the first file that has data; strings are ``pa.string()`` and
        columns empty in that head are ``float64``.

    Raises
    ------
    ReadError
        A missing file, a pattern matching nothing, an unknown column, different headers.
    ValueError
        An invalid option.

    Notes
    -----
    Lines must end with ``\\n`` or ``\\r\\n`` and the header must fit on one line.
    A line that overruns a partition boundary belongs to the partition where it starts.
    A column whose head (where types are inferred) holds a hexadecimal value (``0x1F``)
    is inferred ``string``, as pandas reads it (pyarrow alone would read the number 31).
    In a column inferred or declared integer, a hexadecimal value after the head reads
    as its number, as pyarrow reads it: finding one would mean scanning every byte read
    (it doubled the time to read a CSV of integer columns).
    """
    check_positive_int(partition_rows, name="partition_rows", owner="read_csv", optional=True)
    check_positive_int(partition_bytes, name="partition_bytes", owner="read_csv", optional=True)
    check_positive_int(block_size, name="block_size", owner="read_csv", optional=True)
    if partition_rows is not None and partition_bytes is not None:
        raise ValueError("Pass at most one of 'partition_rows' and 'partition_bytes' to read_csv.")
    _check_char("delimiter", delimiter)
    if quote_char is not None:
        _check_char("quote_char", quote_char)
    if on_bad_lines not in ("raise", "skip"):
        raise ValueError(
            "The 'on_bad_lines' parameter of read_csv must be 'raise' or 'skip'. "
            f"Got {on_bad_lines!r} instead."
        )
    if column_names is not None and len(set(column_names)) != len(column_names):
        raise ValueError(f"The 'column_names' of read_csv repeat a name: {list(column_names)}.")
    files, name = lines.resolve_paths(path_or_glob)
    null_values = list(PANDAS_NULL_VALUES if null_values is None else null_values)
    # An empty field is missing whatever the markers: without this, null_values=["-999"]
    # made a numeric column with an empty cell a text column, then a categorical.
    null_values += [""] if "" not in null_values else []
    options = CsvOptions(
        delimiter=delimiter,
        quote_char=quote_char,
        newlines_in_values=newlines_in_values,
        null_values=tuple(null_values),
        header=header,
        header_names=None,
        on_bad_lines=on_bad_lines,
        block_size=block_size,
    )
    schema, header_names, line_bytes, renamed = _infer_schema(
        files, options, column_names, column_types
    )
    options = replace(options, header_names=header_names, renamed_header=renamed)
    step = partition_bytes or DEFAULT_PARTITION_BYTES
    if partition_rows is not None and line_bytes is not None:
        step = max(1, math.ceil(partition_rows * line_bytes))
    partitions = [p for path, shown in files for p in _plan(path, shown, step, schema, options)]
    meta: dict[str, object] = {"format": "csv", "files": len(files), "partition_bytes": step}
    return Source(name, tuple(partitions), schema, meta=meta)


@dataclass(frozen=True)
class CsvPartition(Partition):
    """The lines of a CSV file whose first byte lies in ``[start, end)``, or a whole file.

    ``whole_file`` partitions (compressed files, ``newlines_in_values``) stream the
    file from its beginning. Only paths, offsets, options and the schema are held.
    """

    path: str
    display: str
    start: int
    end: int
    whole_file: bool
    compression: str | None
    size: int = field(repr=False)
    mtime_ns: int = field(repr=False)
    schema: pa.Schema = field(repr=False)
    options: CsvOptions = field(repr=False)

    @property
    def key(self) -> str:
        """``"name.csv#<hash of the absolute path>@start-end"``."""
        tag = hashlib.sha1(self.path.encode()).hexdigest()[:6]
        return f"{os.path.basename(self.path)}#{tag}@{self.start}-{self.end}"

    def fingerprint(self) -> str:
        """The absolute path, size, modification time, byte range and the options that
        decide what the lines parse to (``null_values``, ``on_bad_lines``, the quote
        character...): a checkpoint of the same bytes parsed otherwise is not these
        rows. ``block_size``, which only sets how much is parsed at once, is left out."""
        parsing = replace(self.options, block_size=None)
        return (
            f"{self.path}:{self.size}:{self.mtime_ns}:{self.start}-{self.end}:"
            f"{self.whole_file}:{self.compression}:{parsing!r}"
        )

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Parse the partition's lines, keeping ``columns`` (all when ``None``) in that order."""
        wanted = list(check_columns(columns, self.schema.names, where=self.display))
        table, skipped, examples, nbytes, _ = self._read(wanted, want_lines=False)
        return ReadResult(table, skipped, examples, nbytes)

    def locate(self, row: int) -> str:
        """``"file data.csv, line 1234"`` for row ``row`` of the table :meth:`read` gives."""
        try:
            *_, kept = self._read([], want_lines=True)
        except ReadError:
            kept = None
        if kept is None or not 0 <= row < kept.size:
            return super().locate(row)
        return f"file {self.display}, line {kept[row]}"

    def _read(
        self, columns: list[str], *, want_lines: bool
    ) -> tuple[pa.Table, int, tuple[str, ...], int, np.ndarray | None]:
        names = list(self.schema.names)
        skip = self.options.on_bad_lines == "skip"
        with reading(self.key, f"file {self.display}"):
            data = self._load()
        if not names or (data.buf is not None and len(data.buf) == 0):
            empty = self.schema.empty_table().select(columns)
            return empty, 0, (), data.nbytes, np.zeros(0, dtype=np.int64)
        parsed = names if skip else columns or names[:1]
        types = {c: self.schema.field(c).type for c in parsed}
        if not skip and not columns:
            types = {names[0]: pa.binary()}  # only the row count is wanted
        invalid: list[tuple[int, int]] = []

        def on_invalid(row: pacsv.InvalidRow) -> str:
            invalid.append((row.expected_columns, row.actual_columns))
            return "skip" if skip else "error"

        try:
            table = data.parse(self.options, names, types, parsed, on_invalid)
        except OSError as e:
            raise ReadError(f"Cannot read partition {self.key} (file {self.display}): {e}") from e
        except pa.ArrowInvalid as e:
            wider = self._block_for_long_lines(data, e)
            if wider is not None:
                # A line longer than pyarrow's block (1 MiB by default): read the
                # partition again with a block that holds its longest record, as pandas
                # reads any line length (no block_size option on the command line).
                options = replace(self.options, block_size=wider)
                return replace(self, options=options)._read(columns, want_lines=want_lines)
            diagnosis = self._diagnose(data, types, parsed, first_only=not skip, error=e)
            if not skip:
                raise self._first_problem(diagnosis, e, data) from e
            table = self._parse_kept(data, diagnosis, types, parsed, e)
        else:
            diagnosis = None
            if (skip and invalid) or self._swallowed_lines(table):
                self._refuse_runaway_quote(data, skipping=skip)
            if (skip and invalid) or want_lines:
                diagnosis = self._diagnose(data, types, [], first_only=True, error=None)
        table = table.select(columns)
        skipped: int = 0
        examples: tuple[str, ...] = ()
        if skip and diagnosis is None:
            skipped = len(invalid)
            examples = tuple(
                f"{self.display}: expected {e} fields, found {a}" for e, a in invalid[:5]
            )
        elif skip and diagnosis is not None:
            skipped = len(diagnosis.field_bad) + len(diagnosis.value_bad)
            examples = self._examples(diagnosis)
        kept = None
        if diagnosis is not None:
            keep = np.ones(diagnosis.good.size, dtype=bool)
            keep[list(diagnosis.value_bad)] = False
            kept = diagnosis.lines[diagnosis.good[keep]]
        return table, skipped, examples, data.nbytes, kept

    def _load(self) -> _Data:
        try:
            stat = os.stat(self.path)
        except OSError as e:
            raise ReadError(f"Cannot read {self.display} (partition {self.key}): {e}") from e
        if (stat.st_size, changed_ns(stat)) != (self.size, self.mtime_ns):
            raise ReadError(
                f"File {self.display} changed since the source was made (size {self.size} "
                f"-> {stat.st_size}); make the source again."
            )
        header = self.options.header
        if not self.whole_file:
            if self.end <= self.start:
                return _Data(memoryview(b""), lambda: 1, 0)
            buf, head, lo = lines.read_range(self.path, self.start, self.end)
            view = memoryview(buf)[head:]
            if self.start == 0 and header and len(view):
                first, after = lines.split_first_line(view)
                self._check_header(first)
                view, head = view[after:], head + after
            offset = lo + head
            return _Data(view, lambda: 1 + lines.count_newlines(self.path, offset), len(buf))
        compression = self.compression
        head_bytes, eof = lines.read_head(self.path, compression, _SAMPLE_BYTES)
        after = 0
        if header and head_bytes:
            first, after = lines.split_first_line(head_bytes)
            if after < len(head_bytes) or eof:
                self._check_header(first)
        first_line = 2 if header else 1
        if eof:
            return _Data(memoryview(head_bytes)[after:], lambda: first_line, self.size)

        def load_all() -> memoryview:
            with pa.input_stream(self.path, compression=compression) as stream:
                everything = stream.read()
            return memoryview(everything)[lines.split_first_line(everything)[1] if header else 0 :]

        def stream() -> pa.NativeFile:
            return pa.input_stream(self.path, compression=compression)

        return _Data(None, lambda: first_line, self.size, stream, int(header), load_all)

    def _block_for_long_lines(self, data: _Data, error: Exception) -> int | None:
        """A block size holding the partition's longest record, when ``error`` is
        pyarrow's "straddling object straddles two block boundaries" and the current
        block is smaller than that; ``None`` otherwise (then the error stands)."""
        if "straddl" not in str(error):
            return None
        try:
            buf = data.buffer()
        except (pa.ArrowException, OSError):
            return None
        starts, ends, _ = lines.record_spans(
            buf,
            quote_char=self.options.quote_char,
            newlines_in_values=self.options.newlines_in_values,
            delimiter=self.options.delimiter,
        )
        longest = int((ends - starts).max()) if starts.size else 0
        current = self.options.block_size or _DEFAULT_BLOCK_BYTES
        # Twice the longest record (with its terminator) leaves a whole record in every
        # block wherever pyarrow cuts; pyarrow's block size is a 32-bit int.
        wider = min(max(2 * (longest + 2), current), _MAX_BLOCK_BYTES)
        return wider if wider > current else None

    def _check_header(self, first: bytes) -> None:
        lines.check_line_breaks(first, self.display)
        expected = self.options.header_names
        renamed = self.options.renamed_header
        if expected is None and renamed is not None:
            # column_names replace each file's header by position: a file whose header
            # holds the first file's columns in another order would be read with its
            # columns swapped (headers spelled differently are what column_names unify).
            found = lines.header_names(first, self.options, self.display)
            if found != renamed and sorted(found) == sorted(renamed):
                raise ReadError(
                    f"The header of {self.display} has the columns {list(found)}, the "
                    f"first file's {list(renamed)} in another order; column_names= name "
                    "each file's columns by position, so its columns would be swapped. "
                    "Write the files with one column order, or read them separately."
                )
            return
        if expected is None:
            return
        found = lines.header_names(first, self.options, self.display)
        if found != expected:
            raise ReadError(
                f"The header of {self.display} has columns {list(found)}, but the source's "
                f"columns are {list(expected)}; files read together must share one header."
            )

    def _diagnose(
        self,
        data: _Data,
        types: dict[str, pa.DataType],
        check: list[str],
        *,
        first_only: bool,
        error: Exception | None,
    ) -> lines.Diagnosis | None:
        try:
            buf = data.buffer()
            return lines.diagnose(
                buf,
                first_line=data.first_line(),
                options=self.options,
                names=list(self.schema.names),
                types=types,
                check=check,
                first_only=first_only,
            )
        except (pa.ArrowException, OSError) as e:
            raise self._generic(error or e) from (error or e)

    def _first_problem(
        self, diagnosis: lines.Diagnosis | None, error: Exception, data: _Data
    ) -> ReadError:
        found = lines.problems(diagnosis, self.schema) if diagnosis is not None else []
        if not found:
            return self._generic(error, data)
        line, column, detail = min(found, key=lambda p: p[0])
        where = f"partition {self.key} (file {self.display}, line {line})"
        if column is None:
            return ReadError(f"Malformed line in {where}: {detail}.")
        hint = lines.type_hint(column, detail, self.schema)
        return ReadError(f"Unparsable value in {where}, column {column!r}: {detail}{hint}")

    def _parse_kept(
        self,
        data: _Data,
        diagnosis: lines.Diagnosis | None,
        types: dict[str, pa.DataType],
        parsed: list[str],
        error: Exception,
    ) -> pa.Table:
        if diagnosis is None or not diagnosis.value_bad:
            raise self._generic(error, data) from error
        if len(diagnosis.value_bad) == diagnosis.good.size:
            return self.schema.empty_table().select(parsed)
        # Cut out the records with unparsable values; malformed lines are skipped again.
        buf, starts, ends = data.buffer(), diagnosis.starts, diagnosis.ends
        pieces, position = [], 0
        for record in sorted(int(diagnosis.good[row]) for row in diagnosis.value_bad):
            pieces.append(buf[position : starts[record]])
            position = int(ends[record])
        pieces.append(buf[position:])
        kept = b"".join(pieces)
        try:
            return lines.parse_csv(
                kept,
                options=self.options,
                names=list(self.schema.names),
                types=types,
                include=parsed,
                handler=lambda row: "skip",
            )
        except pa.ArrowInvalid as e:
            raise self._generic(e) from e

    def _examples(self, diagnosis: lines.Diagnosis) -> tuple[str, ...]:
        first = heapq.nsmallest(_MAX_EXAMPLES, lines.problems(diagnosis, self.schema))
        return tuple(
            f"{self.display}, line {line}{'' if column is None else f', column {column!r}'}: "
            f"{detail}"
            for line, column, detail in first
        )

    def _runaway_quote(self, data: _Data) -> str | None:
        """Where a quoted field opens and never closes on its line (see
        :func:`~shardfit.data._csv_lines.unclosed_quote_line`), as an error message."""
        try:
            line = lines.unclosed_quote_line(
                data.buffer(), first_line=data.first_line(), options=self.options
            )
        except OSError:
            return None
        if line is None:
            return None
        return (
            f"Malformed line in partition {self.key} (file {self.display}, line {line}): "
            f"a quoted field opens there ({self.options.quote_char}) and does not close on "
            "that line, so the parser runs on through the lines after it. Fix the quoting, "
            "pass newlines_in_values=True (--newlines-in-values) if quoted values really "
            "contain line breaks, or quote_char=None if the file quotes nothing"
        )

    def _swallowed_lines(self, table: pa.Table) -> bool:
        """Whether a text value holds a line break although values may not: a quote
        that never closed ran on to the partition's end, where pyarrow closes it, and
        the lines after it became one value. Only text columns can hold them (in any
        other the value fails to parse), so numeric data costs nothing here."""
        if self.options.newlines_in_values or self.options.quote_char is None:
            return False
        import pyarrow.compute as pc

        return any(
            pc.any(pc.match_substring(column, "\n")).as_py()
            for column in table.columns
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        )

    def _refuse_runaway_quote(self, data: _Data, *, skipping: bool) -> None:
        # Skipping bad lines would skip the runaway field as ONE row, and a parse that
        # succeeded made the lines it swallowed one value: either way lines would be
        # lost uncounted. Refuse instead.
        message = self._runaway_quote(data)
        if message is not None:
            tail = (
                "on_bad_lines='skip' cannot skip it: the lines it swallows would be lost with it."
                if skipping
                else "The lines after it would be read as part of one value."
            )
            raise ReadError(f"{message}. {tail}")

    def _generic(self, error: Exception, data: _Data | None = None) -> ReadError:
        message = self._runaway_quote(data) if data is not None else None
        if message is not None:
            # pyarrow reports where the runaway field ended, not where it began.
            return ReadError(f"{message}. The parser said: {str(error).splitlines()[0]}")
        return ReadError(
            f"Cannot parse partition {self.key} (file {self.display}, bytes "
            f"{self.start}-{self.end}): {error}"
        )


@dataclass
class _Data:
    """The bytes a partition owns (header removed), or a way to stream them."""

    buf: memoryview | None
    first_line: Callable[[], int]
    nbytes: int
    stream: Callable[[], pa.NativeFile] | None = None
    skip_rows: int = 0
    load_all: Callable[[], memoryview] | None = None

    def parse(
        self,
        options: CsvOptions,
        names: list[str],
        types: dict[str, pa.DataType],
        include: list[str],
        handler: Callable[[pacsv.InvalidRow], str],
    ) -> pa.Table:
        if self.buf is not None:
            return lines.parse_csv(
                self.buf,
                options=options,
                names=names,
                types=types,
                include=include,
                handler=handler,
            )
        with self.stream() as stream:  # type: ignore[misc]
            return lines.parse_csv(
                stream,
                options=options,
                names=names,
                types=types,
                include=include,
                handler=handler,
                skip_rows=self.skip_rows,
            )

    def buffer(self) -> memoryview:
        if self.buf is None:
            self.buf = self.load_all()  # type: ignore[misc]
        return self.buf


def _check_char(name: str, value: str) -> None:
    if not isinstance(value, str) or len(value) != 1 or value in "\r\n":
        raise ValueError(
            f"The {name!r} parameter of read_csv must be one character other than a line "
            f"break. Got {value!r} instead."
        )


def _infer_schema(
    files: list[tuple[str, str]],
    options: CsvOptions,
    column_names: Sequence[str] | None,
    column_types: Mapping[str, str | pa.DataType] | None,
) -> tuple[pa.Schema, tuple[str, ...] | None, float | None, tuple[str, ...] | None]:
    """The schema, the header every file must have, the mean bytes per line, and the
    first file's own header where ``column_names`` replace the files' headers."""
    names = tuple(column_names) if column_names is not None else None
    header_names: tuple[str, ...] | None = None
    renamed: tuple[str, ...] | None = None
    inferred: pa.Schema | None = None
    line_bytes = None
    for path, shown in files:
        head, sample = lines.sample_head(path, shown, options, _SAMPLE_BYTES, _MAX_SAMPLE_BYTES)
        if names is None and options.header and head is not None:
            names = header_names = lines.header_names(head, options, shown)
        elif renamed is None and column_names is not None and options.header and head:
            renamed = lines.header_names(head, options, shown)
        if sample is None or (names is None and options.header):
            continue
        read_options = pacsv.ReadOptions(
            column_names=list(names) if names is not None else None,
            autogenerate_column_names=names is None,
            block_size=len(sample) + 1,
        )
        parse_options = pacsv.ParseOptions(
            delimiter=options.delimiter,
            quote_char=options.quote_char if options.quote_char is not None else False,
            newlines_in_values=options.newlines_in_values,
            invalid_row_handler=lambda row: "skip",
        )
        convert_options = pacsv.ConvertOptions(
            null_values=list(options.null_values), strings_can_be_null=True
        )
        table = pacsv.read_csv(
            pa.BufferReader(sample), read_options, parse_options, convert_options
        )
        if table.num_rows:
            inferred, names = _hex_as_text(table.schema, sample, options), tuple(table.column_names)
            line_bytes = len(sample) / table.num_rows
            break
    names = names or ()
    types = {f.name: f.type for f in inferred} if inferred is not None else {}
    for column, given in (column_types or {}).items():
        if column not in names:
            raise ReadError(
                f"column_types names unknown column {column!r}; available columns: {list(names)}"
            )
        types[column] = lines.as_type(column, given)
    fields = [
        pa.field(n, pa.float64() if types.get(n, pa.null()) == pa.null() else types[n])
        for n in names
    ]
    return pa.schema(fields), header_names, line_bytes, renamed


def _hex_as_text(schema: pa.Schema, sample: bytes, options: CsvOptions) -> pa.Schema:
    """``schema`` with the integer columns whose sample holds a hexadecimal value
    (``0x1F``) made text: pyarrow infers them as integers and reads ``0x1F`` as 31, where
    pandas reads the column as text (a label, not a number)."""
    ints = [f.name for f in schema if pa.types.is_integer(f.type)]
    hexed = lines.hex_columns(sample, options=options, names=list(schema.names), columns=ints)
    return pa.schema([pa.field(f.name, pa.string()) if f.name in hexed else f for f in schema])


def _plan(
    path: str, shown: str, step: int, schema: pa.Schema, options: CsvOptions
) -> list[CsvPartition]:
    try:
        stat = os.stat(path)
    except OSError as e:
        raise ReadError(f"Cannot read {shown}: {e}") from e
    compression = lines.compression_of(path)
    whole = compression is not None or options.newlines_in_values
    size = stat.st_size
    if whole or size <= step:
        bounds = [(0, size)]
    else:
        bounds = [(s, min(s + step, size)) for s in range(0, size, step)]
    return [
        CsvPartition(path, shown, s, e, whole, compression, size, changed_ns(stat), schema, options)
        for s, e in bounds
    ]
