"""File- and byte-level helpers behind :mod:`shardfit.data.csv`.

Resolving paths and sampling a file's head (driver side); reading a byte range
aligned to line starts, finding record boundaries, counting lines, and diagnosing
malformed lines and unparsable values so that errors and skipped-line reports can
name the file line (worker side). Nothing here builds sources or partitions.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from shardfit.errors import ReadError

__all__ = [
    "CsvOptions",
    "Diagnosis",
    "as_type",
    "check_line_breaks",
    "compression_of",
    "count_newlines",
    "diagnose",
    "header_names",
    "hex_columns",
    "parse_csv",
    "problems",
    "read_head",
    "read_range",
    "record_spans",
    "resolve_paths",
    "sample_head",
    "split_first_line",
    "type_hint",
]

_CHUNK = 1 << 16
_WINDOW = 1024  # records per first parse when scanning for unparsable values
_COUNT_CHUNK = 1 << 23
# Extension -> pyarrow codec name. Such files cannot be split: one partition per file.
_COMPRESSIONS = {
    ".gz": "gzip",
    ".bz2": "bz2",
    ".zst": "zstd",
    ".lz4": "lz4",
    ".br": "brotli",
}


@dataclass(frozen=True)
class CsvOptions:
    """How every partition of a CSV source is parsed (shipped to workers)."""

    delimiter: str
    quote_char: str | None
    newlines_in_values: bool
    null_values: tuple[str, ...]
    header: bool
    header_names: tuple[str, ...] | None
    on_bad_lines: str
    block_size: int | None
    # The first file's own header when column_names replace the headers (the others
    # must not hold its columns in another order).
    renamed_header: tuple[str, ...] | None = None


# Compressions pyarrow has no codec for: refused by name rather than parsed as text.
_UNSUPPORTED = {".xz": "xz", ".lzma": "lzma", ".zip": "zip"}


def compression_of(path: str) -> str | None:
    """The pyarrow codec name implied by ``path``'s extension, or ``None``.

    Raises
    ------
    ReadError
        For ``.xz``, ``.lzma`` and ``.zip`` files, which pyarrow cannot decompress.
    """
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _UNSUPPORTED:
        raise ReadError(
            f"cannot read {path}: pyarrow cannot decompress {_UNSUPPORTED[suffix]} files; "
            f"decompress it, or recompress it as {', '.join(_COMPRESSIONS)}"
        )
    return _COMPRESSIONS.get(suffix)


def read_head(path: str, compression: str | None, nbytes: int) -> tuple[bytes, bool]:
    """The first ``nbytes`` (decompressed) bytes of a file and whether that is all of it."""
    with pa.input_stream(path, compression=compression) as stream:
        head = stream.read(nbytes)
        eof = len(head) < nbytes or not stream.read(1)
    return head, eof


def read_range(path: str, start: int, end: int) -> tuple[bytearray, int, int]:
    """Read the lines whose first byte lies in ``[start, end)``.

    Returns ``(buf, head, lo)``: the owned lines are ``buf[head:]`` and ``buf[0]`` is
    byte ``lo`` of the file. One seek and one read of the range; the line that starts
    exactly at ``start`` is kept because reading begins at ``start - 1`` and skips to
    just after the first newline found there. The last line is completed past ``end``.
    """
    lo = max(start - 1, 0)
    with open(path, "rb") as f:
        f.seek(lo)
        buf = bytearray(end - lo)
        got = f.readinto(buf)
        del buf[got:]
        head = 0
        if start > 0:
            newline = buf.find(b"\n")
            if newline < 0 or lo + newline + 1 >= end:
                return bytearray(), 0, lo  # a line from before spans the whole range
            head = newline + 1
        if buf and buf[-1] != 0x0A:
            while chunk := f.read(_CHUNK):
                newline = chunk.find(b"\n")
                if newline >= 0:
                    buf += chunk[: newline + 1]
                    break
                buf += chunk
    return buf, head, lo


def count_newlines(path: str, stop: int) -> int:
    """Count ``b"\\n"`` in the first ``stop`` bytes of a plain file, in chunks."""
    count = 0
    with open(path, "rb") as f:
        while stop > 0:
            chunk = f.read(min(_COUNT_CHUNK, stop))
            if not chunk:
                break
            count += chunk.count(b"\n")
            stop -= len(chunk)
    return count


def split_first_line(buf: bytes | bytearray | memoryview) -> tuple[bytes, int]:
    """The first line (without its terminator) and the offset just after it."""
    newline = bytes(buf[:_CHUNK]).find(b"\n")
    if newline < 0:
        newline = bytes(buf).find(b"\n")
    if newline < 0:
        return bytes(buf).rstrip(b"\r"), len(buf)
    return bytes(buf[:newline]).rstrip(b"\r"), newline + 1


def check_line_breaks(first: bytes, shown: str) -> None:
    """Refuse a header line that holds a bare ``\\r``.

    ``first`` is a file's first line as :func:`split_first_line` gives it (a final
    ``\\r`` removed). A ``\\r`` left inside means lines end in ``\\r`` alone (classic
    Mac): files are split at ``\\n``, so the whole file was taken for its header and
    every data row was lost without a word, while pandas reads them all.

    Raises
    ------
    ReadError
        Naming the file and line 1.
    """
    if b"\r" in first:
        raise ReadError(
            f"Line 1 of {shown} holds a line break '\\r' that no '\\n' follows: its lines "
            "seem to end in '\\r' alone (classic Mac). shardfit reads lines that end in "
            "'\\n' or '\\r\\n'; convert the line endings first (e.g. tr '\\r' '\\n')."
        )


def record_spans(
    buf: bytes | bytearray | memoryview,
    *,
    quote_char: str | None,
    newlines_in_values: bool,
    delimiter: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start, end and 0-based physical line of every non-empty record in ``buf``.

    Ends exclude the terminator (``\\n`` or ``\\r\\n``). Empty lines are dropped, as
    pyarrow drops them. With ``newlines_in_values``, a newline ends a record only
    outside quotes (an even number of quote characters before it), which is exact for
    the doubled-quote escaping that CSV uses when quotes appear only in quoted fields.
    Given the ``delimiter``, the records are found as pyarrow's parser finds them,
    where a quote inside an unquoted field (``5'3"``) is a literal (slower: a regular
    expression, one match per record).
    """
    arr = np.frombuffer(buf, dtype=np.uint8)
    if arr.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    newlines = np.flatnonzero(arr == 0x0A)
    terminators = newlines
    if newlines_in_values and quote_char is not None and delimiter is not None:
        ends_found = [m.end() - 1 for m in _record_pattern(quote_char, delimiter).finditer(buf)]
        found = np.asarray(ends_found, dtype=np.int64)
        terminators = found[(found < arr.size) & (arr[np.minimum(found, arr.size - 1)] == 0x0A)]
    elif newlines_in_values and quote_char is not None:
        quotes = np.flatnonzero(arr == ord(quote_char))
        terminators = newlines[np.searchsorted(quotes, newlines) % 2 == 0]
    starts = np.concatenate(([0], terminators + 1))
    ends = np.concatenate((terminators, [arr.size]))
    carriage = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == 0x0D)
    ends = ends - carriage
    if newlines_in_values:
        lines = np.searchsorted(newlines, starts)
    else:
        lines = np.arange(starts.size)
    keep = ends > starts
    return starts[keep], ends[keep], lines[keep]


def _record_pattern(quote_char: str, delimiter: str) -> re.Pattern[bytes]:
    """One CSV record and its newline, as pyarrow parses it: a field that starts with
    a quote runs to the closing quote (a doubled quote is literal), then to the
    delimiter; any other field runs to the delimiter, its quotes literal."""
    q, d = re.escape(quote_char.encode()), re.escape(delimiter.encode())
    field = rb"(?:" + q + rb"(?:[^" + q + rb"]|" + q + q + rb")*" + q + rb"[^" + d + rb"\n]*"
    field += rb"|[^" + d + rb"\n]*)"
    return re.compile(field + rb"(?:" + d + field + rb")*(?:\n|\Z)")


def parse_csv(
    source: pa.NativeFile | pa.Buffer | bytes | memoryview,
    *,
    options: CsvOptions,
    names: Sequence[str],
    types: dict[str, pa.DataType],
    include: Sequence[str],
    handler: Callable[[pacsv.InvalidRow], str] | None,
    skip_rows: int = 0,
    serial: bool = False,
    block_size: int | None = None,
) -> pa.Table:
    """Parse CSV bytes (no header line) with explicit names and types.

    ``serial`` parses on one thread, which makes pyarrow number the rows in its
    messages (``InvalidRow.number``, ``"Row #12"``): the 1-based non-empty record.
    """
    read_options = pacsv.ReadOptions(
        column_names=list(names), skip_rows=skip_rows, use_threads=not serial
    )
    if block_size or options.block_size:
        read_options.block_size = block_size or options.block_size
    parse_options = pacsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=options.quote_char if options.quote_char is not None else False,
        newlines_in_values=options.newlines_in_values,
        invalid_row_handler=handler,
    )
    convert_options = pacsv.ConvertOptions(
        column_types=types,
        include_columns=list(include),
        null_values=list(options.null_values),
        strings_can_be_null=True,
    )
    if not isinstance(source, pa.NativeFile):
        source = pa.BufferReader(pa.py_buffer(source))
    return pacsv.read_csv(source, read_options, parse_options, convert_options)


@dataclass
class Diagnosis:
    """Where the records of a partition are and which of them are bad.

    ``lines[k]`` is the 1-based file line of the non-empty record ``k``; ``good`` maps
    a row of the parsed table (before dropping unparsable values) to its record;
    ``field_bad`` maps records to ``(expected, found)`` field counts; ``value_bad``
    maps rows to ``(column, value)``.
    """

    starts: np.ndarray
    ends: np.ndarray
    lines: np.ndarray
    good: np.ndarray
    field_bad: dict[int, tuple[int, int]]
    value_bad: dict[int, tuple[str, str]]


def diagnose(
    buf: memoryview,
    *,
    first_line: int,
    options: CsvOptions,
    names: Sequence[str],
    types: dict[str, pa.DataType],
    check: Sequence[str],
    first_only: bool,
) -> Diagnosis | None:
    """Find the malformed lines and, in ``check``, the unparsable values of ``buf``.

    With ``first_only``, only the earliest problem is sure to be found. Returns
    ``None`` when the records found here do not match the rows pyarrow parses
    (e.g. a bare ``\\r`` line ending), so lines cannot be named.
    """
    starts, ends, offsets = record_spans(
        buf, quote_char=options.quote_char, newlines_in_values=options.newlines_in_values
    )
    field_bad: dict[int, tuple[int, int]] = {}

    def collect(row: pacsv.InvalidRow) -> str:
        field_bad[(row.number or 0) - 1] = (row.expected_columns, row.actual_columns)
        return "skip"

    counted = parse_csv(
        buf,
        options=options,
        names=names,
        types={names[0]: pa.binary()},
        include=names[:1],
        handler=collect,
        serial=True,
    ).num_rows

    def matches(starts: np.ndarray) -> bool:
        bad = sum(1 for k in field_bad if 0 <= k < starts.size)
        return starts.size - bad == counted and counted + len(field_bad) == starts.size

    if not matches(starts) and options.newlines_in_values and options.quote_char is not None:
        # Quote parity miscounts records where a quote is a literal inside an unquoted
        # field (5'3"); find them as pyarrow does (slower, so only now).
        starts, ends, offsets = record_spans(
            buf, quote_char=options.quote_char, newlines_in_values=True, delimiter=options.delimiter
        )
    is_bad = np.zeros(starts.size, dtype=bool)
    is_bad[[k for k in field_bad if 0 <= k < starts.size]] = True
    good = np.flatnonzero(~is_bad)
    if good.size != counted or good.size + len(field_bad) != starts.size:
        return None
    diagnosis = Diagnosis(starts, ends, offsets + first_line, good, field_bad, {})
    typed = [c for c in check if types[c] not in (pa.string(), pa.large_string(), pa.binary())]
    if not typed or good.size == 0:
        return diagnosis
    # A value matters with first_only only if it comes before the first malformed line.
    stop = min(field_bad) if first_only and field_bad else starts.size
    scan = _Scan(buf, starts, ends, options, names, {c: types[c] for c in typed})
    try:
        bad_records = scan.bad_records(stop, first_only=first_only)
    except _NoRowNumbers:
        bad_records = _bisect(scan, good, stop, first_only=first_only)
    for record in bad_records:
        column = scan.failing_column(record)
        row = int(np.searchsorted(good, record))
        diagnosis.value_bad[row] = (column, scan.raw(record, column))
    return diagnosis


class _NoRowNumbers(Exception):
    """pyarrow's conversion error did not say which row failed."""


@dataclass
class _Scan:
    """Parses runs of records of one buffer, converting the typed columns to check."""

    buf: memoryview
    starts: np.ndarray
    ends: np.ndarray
    options: CsvOptions
    names: Sequence[str]
    types: dict[str, pa.DataType]

    def parses(self, lo: int, hi: int, columns: Sequence[str] | None = None) -> bool:
        """Whether records ``lo..hi-1`` convert (malformed ones are skipped)."""
        try:
            self._parse(lo, hi, list(columns or self.types), serial=False)
        except pa.ArrowInvalid:
            return False
        return True

    def first_error(self, lo: int, hi: int) -> int | None:
        """The record of the first conversion error pyarrow reports in ``lo..hi-1``."""
        if hi <= lo:
            return None
        try:
            self._parse(lo, hi, list(self.types), serial=True)
        except pa.ArrowInvalid as e:
            found = re.search(r"Row #(\d+)", str(e))
            if found is None:
                raise _NoRowNumbers from e
            return lo + int(found[1]) - 1
        return None

    def bad_records(self, stop: int, *, first_only: bool) -> list[int]:
        """Records before ``stop`` with an unparsable value, in order.

        pyarrow parses a whole buffer before it reports a conversion error, so the
        records are scanned in windows that grow while they are clean: linear time.
        """
        bad: list[int] = []
        position, window = 0, _WINDOW
        while position < stop:
            end = min(position + window, stop)
            found = self.first_error(position, end)
            if found is None:
                position, window = end, min(2 * window, 64 * _WINDOW)
                continue
            # Within a block pyarrow converts column by column: look for an earlier row.
            while (earlier := self.first_error(position, found)) is not None:
                found = earlier
            bad.append(found)
            if first_only:
                break
            position, window = found + 1, _WINDOW
        return bad

    def failing_column(self, record: int) -> str:
        """The first checked column whose value in ``record`` does not convert."""
        failing = (c for c in self.types if not self.parses(record, record + 1, [c]))
        return next(failing, next(iter(self.types)))

    def raw(self, record: int, column: str) -> str:
        """The text of ``column`` in ``record``."""
        table = parse_csv(
            self.buf[self.starts[record] : self.ends[record]],
            options=self.options,
            names=self.names,
            types={column: pa.binary()},
            include=[column],
            handler=None,
        )
        value = table.column(0)[0].as_py() or b""
        return value.decode(errors="replace")

    def _parse(self, lo: int, hi: int, columns: list[str], *, serial: bool) -> pa.Table:
        return parse_csv(
            self.buf[self.starts[lo] : self.ends[hi - 1]],
            options=self.options,
            names=self.names,
            types={c: self.types[c] for c in columns},
            include=columns,
            handler=lambda row: "skip",
            serial=serial,
        )


def _bisect(scan: _Scan, good: np.ndarray, stop: int, *, first_only: bool) -> list[int]:
    """Records with unparsable values, by bisection (when pyarrow gives no row numbers)."""
    goods = good[good < stop]

    def search(lo: int, hi: int) -> list[int]:
        if hi <= lo or scan.parses(int(goods[lo]), int(goods[hi - 1]) + 1):
            return []
        if hi - lo == 1:
            return [int(goods[lo])]
        mid = (lo + hi) // 2
        left = search(lo, mid)
        return left if first_only and left else left + search(mid, hi)

    return search(0, goods.size)


def _opens_unclosed_field(line: bytes, quote: int, delimiter: int) -> bool:
    """Whether a quoted field opens in ``line`` and is still open at its end. A quote
    opens a field only at the field's start (elsewhere it is a literal, as in ``12"``);
    inside one, a doubled quote is an escaped quote."""
    in_quotes, at_start, i, n = False, True, 0, len(line)
    while i < n:
        c = line[i]
        if in_quotes:
            if c == quote:
                if i + 1 < n and line[i + 1] == quote:
                    i += 2
                    continue
                in_quotes = False
        elif c == quote and at_start:
            in_quotes = True
        at_start = not in_quotes and c == delimiter
        i += 1
    return in_quotes


def unclosed_quote_line(
    buf: bytes | bytearray | memoryview, *, first_line: int, options: CsvOptions
) -> int | None:
    """The file line of the first line of ``buf`` where a quoted field opens and does
    not close: without ``newlines_in_values`` the parser then runs on through the
    following lines and fails (or, skipping bad lines, swallows them as one bad row)
    with a message that names neither. ``None`` when there is none, or quoted values
    may span lines."""
    if options.quote_char is None or options.newlines_in_values:
        return None
    arr = np.frombuffer(buf, dtype=np.uint8)
    quote, delimiter = ord(options.quote_char), ord(options.delimiter)
    quotes = np.cumsum(arr == quote)
    if arr.size == 0 or quotes[-1] == 0:
        return None
    newlines = np.flatnonzero(arr == ord("\n"))
    line_ends = np.append(newlines, arr.size - 1)
    # Candidates: lines with an odd number of quotes (vectorized); then the exact
    # rule on those few lines only.
    for k in np.flatnonzero(np.diff(quotes[line_ends], prepend=0) % 2):
        start = int(newlines[k - 1]) + 1 if k else 0
        line = bytes(arr[start : int(line_ends[k]) + 1]).rstrip(b"\r\n")
        if _opens_unclosed_field(line, quote, delimiter):
            return first_line + int(k)
    return None


#: A value pyarrow's integer parser reads as hexadecimal ("0x1F" -> 31); leading
#: blanks are trimmed first, as pyarrow trims them.
_HEX = re.compile(rb"0[xX]")
_HEX_VALUE = r"^[ \t]*0[xX]"


def hex_columns(
    buf: bytes | bytearray | memoryview,
    *,
    options: CsvOptions,
    names: Sequence[str],
    columns: Sequence[str],
) -> set[str]:
    """The integer ``columns`` holding a hexadecimal value (``0x1F``) in ``buf``.

    pyarrow's integer parser reads ``"0x10"`` as 16, where pandas (and Python's
    ``int``/``float``) read it as text. Used on the head that types are inferred from:
    one regex pass over its bytes, and one more parse (the columns as text, bad lines
    skipped) only where it holds ``0x``.
    """
    if not columns or _HEX.search(buf) is None:
        return set()
    import pyarrow.compute as pc

    table = parse_csv(
        buf,
        options=options,
        names=names,
        types={c: pa.string() for c in columns},
        include=list(columns),
        handler=lambda row: "skip",
    )
    return {
        column
        for column in columns
        if pc.any(pc.match_substring_regex(table.column(column), _HEX_VALUE)).as_py()
    }


def problems(diagnosis: Diagnosis, schema: pa.Schema) -> list[tuple[int, str | None, str]]:
    """``(line, column or None, detail)`` of every bad record of a diagnosis."""
    found: list[tuple[int, str | None, str]] = [
        (int(diagnosis.lines[k]), None, f"expected {expected} fields, found {actual}")
        for k, (expected, actual) in diagnosis.field_bad.items()
    ]
    for row, (column, value) in diagnosis.value_bad.items():
        detail = f"cannot parse {value!r} as {schema.field(column).type}"
        found.append((int(diagnosis.lines[diagnosis.good[row]]), column, detail))
    return found


def type_hint(column: str, detail: str, schema: pa.Schema) -> str:
    """How to read a column whose value failed to parse (``detail`` from :func:`problems`)."""
    value = detail.split("'")[1] if detail.count("'") >= 2 else ""
    if pa.types.is_integer(schema.field(column).type):
        try:
            float(value)
        except ValueError:
            pass
        else:
            return (
                f"; the column was read as integers, pass column_types={{{column!r}: "
                f"'float64'}} to read it as floats (command line: --column-type "
                f"{column}=float64)."
            )
    return (
        f"; pass column_types={{{column!r}: 'string'}} to read the column as text, "
        "or on_bad_lines='skip' to drop such lines (command line: --column-type "
        f"{column}=string, --skip-bad-lines)."
    )


def as_type(column: str, given: str | pa.DataType) -> pa.DataType:
    """A pyarrow type from a type or its name (``"float64"``, ``"string"``, ...)."""
    if isinstance(given, pa.DataType):
        return given
    alias = {"str": "string", "float": "float64", "int": "int64"}.get(given, given)
    try:
        return pa.type_for_alias(alias)
    except (ValueError, TypeError) as e:
        raise ValueError(
            f"column_types[{column!r}] must be a pyarrow type or a name such as 'float64', "
            f"'int64', 'string', 'bool', 'timestamp[s]'. Got {given!r} instead."
        ) from e


def header_names(line: bytes, options: CsvOptions, shown: str) -> tuple[str, ...]:
    """The column names a header line gives, as pyarrow reads them."""
    if not line.strip():
        raise ReadError(
            f"The first line of {shown} should name the columns but is blank; "
            "pass header=False (with column_names) if the file has no header."
        )
    parse_options = pacsv.ParseOptions(
        delimiter=options.delimiter,
        quote_char=options.quote_char if options.quote_char is not None else False,
    )
    # A block that holds the whole line: pyarrow's default (1 MiB) cut a wide header
    # (100,000 columns) and found no names in it.
    read_options = pacsv.ReadOptions(block_size=len(line) + 2)
    try:
        table = pacsv.read_csv(
            pa.BufferReader(line + b"\n"), read_options=read_options, parse_options=parse_options
        )
    except pa.ArrowInvalid as e:
        raise ReadError(f"Cannot read the header line of {shown}: {e}") from e
    names = tuple(table.column_names)
    if len(set(names)) != len(names):
        raise ReadError(
            f"The header of {shown} repeats a column name: {list(names)}; "
            "pass column_names to name the columns."
        )
    return names


def sample_head(
    path: str, shown: str, options: CsvOptions, nbytes: int, most: int
) -> tuple[bytes | None, bytes | None]:
    """The header line (``None`` if absent) and whole data records from a file's head.

    Reads ``nbytes`` (decompressed), more (up to ``most``) when that holds no whole record.
    """
    compression = compression_of(path)
    while True:
        try:
            head, eof = read_head(path, compression, nbytes)
        except OSError as e:
            raise ReadError(f"Cannot read {shown}: {e}") from e
        first, after = b"", 0
        if options.header and head:
            first, after = split_first_line(head)
            check_line_breaks(first, shown)
        data = head[after:]
        starts, _, _ = record_spans(
            data, quote_char=options.quote_char, newlines_in_values=options.newlines_in_values
        )
        if not eof:  # the last record may be cut short
            data, starts = data[: starts[-1]] if starts.size else b"", starts[:-1]
        header_done = not options.header or after < len(head) or eof
        if (header_done and starts.size) or eof or nbytes >= most:
            break
        nbytes *= 4
    header = first if options.header and head and header_done else None
    return header, data if starts.size else None


def resolve_paths(
    path_or_glob: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
) -> tuple[list[tuple[str, str]], str]:
    """``[(absolute path, path as shown), ...]`` for a file, a glob or a list, and a name."""
    if isinstance(path_or_glob, str | os.PathLike):
        shown = os.fspath(path_or_glob)
        if isinstance(path_or_glob, str) and not os.path.exists(shown):
            if any(c in shown for c in "*?["):
                matches = sorted(m for m in glob.glob(shown, recursive=True) if os.path.isfile(m))
                if not matches:
                    raise ReadError(f"No files match the pattern {shown!r}.")
                return [(os.path.abspath(m), m) for m in matches], shown
        items, name = [shown], shown
    else:
        items = [os.fspath(p) for p in path_or_glob]
        if not items:
            raise ReadError("read_csv was given an empty list of files.")
        name = items[0] if len(items) == 1 else f"{items[0]} and {len(items) - 1} more files"
    for item in items:
        if not os.path.exists(item):
            raise ReadError(f"No such file: {item!r}.")
        if os.path.isdir(item):
            raise ReadError(f"{item!r} is a directory; pass a glob such as '{item}/*.csv'.")
    return [(os.path.abspath(item), item) for item in items], name
