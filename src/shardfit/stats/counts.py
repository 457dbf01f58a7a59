"""Mergeable counts of rows read, dropped and skipped, kept per partition for reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RowCounts"]


@dataclass(frozen=True)
class RowCounts:
    """Rows read, rows dropped by reason, and malformed rows skipped.

    Attributes
    ----------
    read : int
        Rows parsed from storage.
    dropped : dict of str to int
        Rows left out, by reason (``"missing"``, ``"nonfinite"``).
    skipped : int
        Malformed rows the readers skipped.
    by_partition : tuple of (str, int, int, int)
        ``(key, read, dropped, skipped)`` per partition, in partition order.
    """

    read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    by_partition: tuple[tuple[str, int, int, int], ...] = ()

    @classmethod
    def of_partition(cls, key: str, read: int, dropped: dict[str, int], skipped: int) -> RowCounts:
        """Counts of one partition: ``read`` rows, ``dropped`` by reason, ``skipped``."""
        dropped = {reason: n for reason, n in dropped.items() if n}
        return cls(
            read=read,
            dropped=dropped,
            skipped=skipped,
            by_partition=((key, read, sum(dropped.values()), skipped),),
        )

    @property
    def total_dropped(self) -> int:
        """Rows dropped for any reason."""
        return sum(self.dropped.values())

    def merge(self, other: RowCounts) -> RowCounts:
        """Both operands' partitions, left then right."""
        dropped = dict(self.dropped)
        for reason, n in other.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
        return RowCounts(
            read=self.read + other.read,
            dropped=dropped,
            skipped=self.skipped + other.skipped,
            by_partition=self.by_partition + other.by_partition,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-safe state for checkpoints."""
        return {
            "read": self.read,
            "dropped": dict(self.dropped),
            "skipped": self.skipped,
            "by_partition": [list(row) for row in self.by_partition],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RowCounts:
        """Inverse of :meth:`to_state`."""
        return cls(
            read=int(state["read"]),
            dropped={str(k): int(v) for k, v in state["dropped"].items()},
            skipped=int(state["skipped"]),
            by_partition=tuple(
                (str(k), int(r), int(d), int(s)) for k, r, d, s in state["by_partition"]
            ),
        )
