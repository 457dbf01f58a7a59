"""Merging partition statistics along a fixed balanced tree in partition order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["tree_merge"]

S = TypeVar("S")


def tree_merge(stats: Sequence[S]) -> S:
    """Merge ``stats`` (in partition order) along the balanced binary tree.

    The tree depends only on ``len(stats)``: the left half is ``stats[: n // 2]``.
    Every backend merges this way, so the floating-point result is bitwise the same
    whichever backend or number of workers computed the leaves.
    """
    if not stats:
        raise ValueError("nothing to merge: a pass needs at least one partition")
    if len(stats) == 1:
        return stats[0]
    mid = len(stats) // 2
    return tree_merge(stats[:mid]).merge(tree_merge(stats[mid:]))  # type: ignore[attr-defined]
