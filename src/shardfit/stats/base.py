"""The statistic contract: a value that merges associatively."""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

__all__ = ["Statistic"]


@runtime_checkable
class Statistic(Protocol):
    """A mergeable summary of some rows.

    ``a.merge(b)`` summarises the rows of ``a`` followed by those of ``b``. It is
    associative, so any bracketing of the partitions gives the same statistic (up to
    floating-point rounding, which the engine fixes by always merging along one tree
    in partition order). ``merge`` raises on incompatible operands.
    """

    def merge(self, other: Self) -> Self:  # pragma: no cover - protocol
        """Return the statistic of this statistic's rows followed by ``other``'s."""
        ...
