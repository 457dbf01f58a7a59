"""A real partition that also logs each read to a file (workers append to it), to count
the reads of a fit: the GLM passes after the first must come from the partition cache."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shardfit.data.memory import MemoryPartition, from_pandas
from shardfit.data.partition import ReadResult, Source


@dataclass(frozen=True)
class LoggedPartition(MemoryPartition):
    """A :class:`MemoryPartition` whose ``read`` appends its key to ``log``."""

    log: str = ""

    def read(self, columns: Sequence[str] | None = None) -> ReadResult:
        with open(self.log, "a", encoding="utf-8") as handle:
            handle.write(self.key + "\n")
        return super().read(columns)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # MemoryPartition pickles as a plain MemoryPartition; keep the subclass and log.
        return (_rebuild, (super().__reduce__(), self.log))


def _rebuild(plain: tuple[object, tuple[object, ...]], log: str) -> LoggedPartition:
    build, args = plain
    p = build(*args)  # type: ignore[operator]
    return LoggedPartition(p.table, p.name, p.start, p.stop, p.index, log)


def logged_source(frame, npartitions: int, log: Path) -> Source:
    plain = from_pandas(frame, npartitions)
    parts = tuple(
        LoggedPartition(p.table, p.name, p.start, p.stop, p.index, str(log))
        for p in plain.partitions
    )
    return Source(plain.name, parts, plain.schema)


def reads(log: Path) -> Counter[str]:
    return Counter(log.read_text().split())
