"""tree_merge: a fixed tree in partition order, which makes the bitwise tests meaningful."""

from __future__ import annotations

from functools import reduce

import pytest

from shardfit.engine import tree_merge
from shardfit.engine._testing import GramStat, seeded_source


def _stats(n: int) -> list[GramStat]:
    return [GramStat.of(p.values()) for p in seeded_source(n, nrows=40, seed=3).partitions]


def test_tree_depends_only_on_the_count():
    class Leaf:
        def __init__(self, label: str) -> None:
            self.label = label

        def merge(self, other: Leaf) -> Leaf:
            return Leaf(f"({self.label} {other.label})")

    leaves = [Leaf(str(i)) for i in range(5)]
    assert tree_merge(leaves).label == "((0 1) (2 (3 4)))"


def test_order_of_float_merges_changes_bits():
    # If a left fold gave the same bits as the tree, bitwise equality across
    # backends would prove nothing about merge order.
    stats = _stats(11)
    folded = reduce(lambda a, b: a.merge(b), stats)
    assert folded.digest() != tree_merge(stats).digest()


def test_empty_merge_is_an_error():
    with pytest.raises(ValueError, match="nothing to merge"):
        tree_merge([])
