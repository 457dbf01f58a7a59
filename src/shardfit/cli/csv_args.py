"""Options for reading CSV data, shared by the commands that read DATA.

``--delimiter``, ``--column-type NAME=TYPE``, ``--null-values``,
``--newlines-in-values`` and ``--skip-bad-lines`` are :func:`shardfit.read_csv`'s
arguments; any of them reads DATA as CSV whatever its extension (tab-separated when
the name ends in ``.tsv``, compressed or not, unless ``--delimiter`` says otherwise),
except a binary format's (Parquet, HDF5, Zarr, ``.npy``, a directory), refused.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = [
    "add_column_type_argument",
    "add_csv_arguments",
    "add_dialect_arguments",
    "column_type",
    "delimiter_text",
    "null_values_text",
    "source_of",
]


def column_type(text: str) -> tuple[str, str]:
    """``NAME=TYPE`` as a pair (the column name may itself contain ``=``)."""
    name, sep, kind = text.rpartition("=")
    if not sep or not name or not kind:
        raise argparse.ArgumentTypeError(f"expected NAME=TYPE (e.g. x=float64), got {text!r}")
    return name, kind


def add_column_type_argument(container: Any) -> None:
    """``--column-type NAME=TYPE`` (repeatable) on a parser or argument group."""
    container.add_argument(
        "--column-type",
        type=column_type,
        action="append",
        default=[],
        metavar="NAME=TYPE",
        help="set a column's type instead of inferring it (repeatable; e.g. x=float64)",
    )


def delimiter_text(text: str) -> str:
    """``--delimiter``'s value: ``'\\t'``, ``tab`` or ``TAB`` mean a tab (a shell passes
    ``'\\t'`` as two characters; it means a tab, as in R and pandas)."""
    return "\t" if text in ("\\t", "tab", "TAB") else text


def null_values_text(text: str) -> list[str]:
    """``--null-values A,B`` as a list."""
    return text.split(",")


def add_dialect_arguments(container: Any, *, default_nulls: str) -> None:
    """``--delimiter`` and ``--null-values`` on a parser or argument group."""
    container.add_argument(
        "--delimiter",
        type=delimiter_text,
        default=None,
        metavar="CHAR",
        help="field delimiter (default: , or, for .tsv data, a tab; '\\t' or tab: a tab)",
    )
    container.add_argument(
        "--null-values",
        type=null_values_text,
        default=None,
        metavar="A,B",
        help="comma-separated strings read as missing, besides an empty field (default: "
        f"{default_nulls}); a list starting with '-' needs '=': --null-values=-999,.",
    )


def add_csv_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the CSV reading options, and HDF5's ``--key``, to ``parser``."""
    parser.add_argument_group("HDF5 data").add_argument(
        "--key",
        default=None,
        metavar="KEY",
        help="the group, dataset or pandas store key to read (e.g. /measurements or df; "
        "default: the file's only table)",
    )
    group = parser.add_argument_group("CSV data (any of these reads DATA as CSV)")
    add_dialect_arguments(group, default_nulls="pyarrow's, such as NA")
    add_column_type_argument(group)
    group.add_argument(
        "--newlines-in-values",
        action="store_true",
        help="quoted values may contain line breaks (slower: the file is read serially)",
    )
    group.add_argument(
        "--skip-bad-lines",
        action="store_true",
        help="skip (and count) malformed lines instead of failing at the first",
    )


# Formats that are never text: reading one as CSV prints its bytes in the error.
_BINARY = {
    ".parquet": "Parquet data",
    ".pq": "Parquet data",
    ".h5": "HDF5 data",
    ".hdf5": "HDF5 data",
    ".hdf": "HDF5 data",
    ".zarr": "Zarr data",
    ".npy": "NumPy .npy data",
}
_FLAGS = {
    "delimiter": "--delimiter",
    "column_types": "--column-type",
    "null_values": "--null-values",
    "newlines_in_values": "--newlines-in-values",
    "on_bad_lines": "--skip-bad-lines",
}


def _refuse_binary(data: str, options: dict[str, Any]) -> None:
    """A CSV option on Parquet (HDF5, Zarr, .npy) data is a mistake, not a request to
    parse its bytes as text."""
    name = data.rstrip("/\\").lower()
    kind = next((k for suffix, k in _BINARY.items() if name.endswith(suffix)), None)
    if kind is None and os.path.isdir(data):
        kind = "a directory, read as Parquet (a glob such as DIR/*.csv reads CSV files)"
    if kind is None:
        return
    given = ", ".join(_FLAGS[key] for key in options)
    verb = "is a CSV option" if len(options) == 1 else "are CSV options"
    raise ValueError(f"{given} {verb}, but {data} is {kind}; leave {given} out")


def _csv_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if args.delimiter is not None:
        options["delimiter"] = args.delimiter
    if args.column_type:
        options["column_types"] = dict(args.column_type)
    if args.null_values is not None:
        options["null_values"] = args.null_values
    if args.newlines_in_values:
        options["newlines_in_values"] = True
    if args.skip_bad_lines:
        options["on_bad_lines"] = "skip"
    return options


def _hdf5_source(data: str, key: str, options: dict[str, Any], partition_rows: int | None) -> Any:
    """``--key`` reads HDF5 data at that key; with other data it is a mistake."""
    name = data.rstrip("/\\").lower()
    if not name.endswith((".h5", ".hdf5", ".hdf")):
        raise ValueError(f"--key names a key in HDF5 data (.h5, .hdf5, .hdf), but DATA is {data}")
    if options:
        given = ", ".join(_FLAGS[option] for option in options)
        verb = "reads" if len(options) == 1 else "read"
        raise ValueError(f"{given} {verb} CSV data, but {data} is HDF5 data; leave {given} out")
    from shardfit.data.hdf5 import read_hdf5

    return read_hdf5(data, key, partition_rows=partition_rows)


def source_of(args: argparse.Namespace, partition_rows: int | None = None) -> Any:
    """The source ``args.data`` names: by extension, or CSV with the CSV options."""
    options = _csv_options(args)
    if args.key is not None:
        return _hdf5_source(args.data, args.key, options, partition_rows)
    if not options:
        from shardfit.data.resolve import as_source

        return as_source(args.data, partition_rows=partition_rows)
    _refuse_binary(args.data, options)
    from shardfit.data.convert import delimiter_for
    from shardfit.data.csv import read_csv

    # Without --delimiter a .tsv stays tab-separated: a CSV option must not change it.
    options.setdefault("delimiter", delimiter_for(args.data))
    return read_csv(args.data, partition_rows=partition_rows, **options)
