"""The partition and source contracts every reader implements.

A :class:`Partition` is a small, picklable description of some rows (a file and a
byte range, a run of Parquet row groups, a slice of an array) with a stable ``key``.
Its :meth:`Partition.read` runs on the worker, so the driver never ships row data.
A :class:`Source` is an ordered tuple of partitions plus what is known of the columns.
"""

from __future__ import annotations

import functools
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from shardfit._measure import count, in_phase, phase

__all__ = ["Partition", "ReadResult", "Source", "read_labels"]


@dataclass(frozen=True)
class ReadResult:
    """What reading one partition gives.

    Attributes
    ----------
    table : pyarrow.Table
        The rows, with only the columns asked for, in partition order.
    skipped_rows : int
        Rows the reader skipped (malformed lines with ``on_bad_lines="skip"``).
    skipped_examples : tuple of str
        Locations and reasons of the first few skipped rows, for reports.
    nbytes : int
        Bytes read from storage (for progress), 0 where unknown.
    """

    table: pa.Table
    skipped_rows: int = 0
    skipped_examples: tuple[str, ...] = ()
    nbytes: int = 0


class Partition(ABC):
    """A picklable description of some rows, read where it runs.

    Subclasses are frozen dataclasses holding paths and offsets, never row data
    (in-memory sources excepted: there the rows are the description).

    Every subclass's ``read`` is timed as the ``read`` phase of a profiled task
    (:func:`shardfit.profile`), whoever calls it.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        read = cls.__dict__.get("read")
        if read is not None and not getattr(read, "_timed", False):
            cls.read = _timed_read(read)  # type: ignore[method-assign]

    @property
    @abstractmethod
    def key(self) -> str:
        """A stable, human-readable identifier (e.g. ``"data.csv@0-1048576"``)."""

    @abstractmethod
    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        """Read the rows, keeping only ``columns`` (all when ``None``), in stored order."""

    def locate(self, row: int) -> str:
        """Describe where row ``row`` (0-based, within this partition) is stored.

        Used only to build error messages, so it may be slow (e.g. count lines).
        """
        return f"row {row} of partition {self.key}"

    def fingerprint(self) -> str:
        """Identify the stored content (paths, sizes, modification times) for checkpoints.

        The default is the key, which is right for immutable in-memory data that
        carries its own identity; file-backed partitions add size and mtime.
        """
        return self.key


@dataclass(frozen=True)
class Source:
    """An ordered set of partitions that together hold a data set.

    Attributes
    ----------
    name : str
        What to call the data in summaries and errors (a file name, ``"DataFrame"``).
    partitions : tuple of Partition
        In storage order; there is always at least one (an empty file gives one
        empty partition), so every pass has something to merge.
    schema : pyarrow.Schema
        The column names and types every partition yields.
    """

    name: str
    partitions: tuple[Partition, ...]
    schema: pa.Schema
    meta: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.partitions:
            raise ValueError(f"source {self.name!r} has no partitions")

    @property
    def columns(self) -> list[str]:
        """The column names, in stored order."""
        return list(self.schema.names)

    @property
    def npartitions(self) -> int:
        """The number of partitions."""
        return len(self.partitions)

    def fingerprint(self) -> str:
        """A hash of every partition's fingerprint, in order (for checkpoint keys)."""
        digest = hashlib.sha256()
        digest.update(json.dumps([p.fingerprint() for p in self.partitions]).encode())
        digest.update(str(self.schema).encode())
        return digest.hexdigest()[:32]

    def __repr__(self) -> str:
        return f"Source({self.name!r}, npartitions={self.npartitions}, columns={self.columns!r})"


def _timed_read(read: Any) -> Any:
    """``read`` wrapped in the ``read`` phase, counting ``rows_read`` (no-ops outside a
    profiled task; a partition reading another counts its rows once)."""

    @functools.wraps(read)
    def timed(self: Partition, *args: Any, **kwargs: Any) -> ReadResult:
        outer = not in_phase("read")
        with phase("read"):
            result = read(self, *args, **kwargs)
        if outer:
            table = getattr(result, "table", result)
            count("rows_read", int(getattr(table, "num_rows", 0)))
        return result

    timed._timed = True  # type: ignore[attr-defined]
    return timed


def read_labels(partition: Partition, columns: Sequence[str], labels: Sequence[str]) -> ReadResult:
    """``partition.read(columns)``, with the string columns among ``labels``
    dictionary-encoded where the format stores them so (Parquet): coding their levels
    then costs a lookup per distinct value, not a string per row. Other partitions
    read as usual; readers of label columns accept both."""
    if labels and getattr(partition, "reads_dictionaries", False):
        return partition.read(columns, dictionary=tuple(labels))  # type: ignore[call-arg]
    return partition.read(columns)
