"""Exact order statistics and quantiles of a column, out of core.

``np.quantile(x, q)`` (method ``"linear"``) interpolates between the two order
statistics at ranks ``floor((n - 1) q)`` and the next one. Out of core those ranks are
found without sorting the column: every float64 maps to a 64-bit key whose unsigned
order is the numbers' order (:func:`monotone_keys`); a histogram of the keys' top 16
bits, merged over the partitions (the schema pass), names the bin holding each rank;
a further pass either collects the few values of that bin (at most
:data:`COLLECT_LIMIT` per bin) or, where the bin is crowded, histograms its next 16
bits. The schema pass resolves the top 16 bits and each further level 16 more, so
a pass at the third level below reaches single keys: at most three passes after the
schema pass, and usually one. :func:`linear_quantiles` then applies NumPy's own
interpolation formula to the order statistics, which gives ``np.quantile``'s result
bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = [
    "COLLECT_LIMIT",
    "LEVEL_BITS",
    "KeyHistogram",
    "RankSearch",
    "Request",
    "linear_quantiles",
    "linear_ranks",
    "merge_gathered",
    "monotone_keys",
    "values_from_keys",
]

#: Bits of the key each histogram level resolves.
LEVEL_BITS = 16
#: A bin with at most this many values is collected whole rather than refined.
COLLECT_LIMIT = 1 << 16

_SIGN = np.uint64(1 << 63)


def monotone_keys(values: np.ndarray) -> np.ndarray:
    """Map float64 values to uint64 keys whose order is the values' order.

    Non-negative numbers get their sign bit set; negative numbers have all bits
    flipped. ``-0.0`` is first made ``+0.0`` (they are equal numbers, and NumPy's
    quantile may return either). NaN must be removed beforehand.
    """
    finite = np.ascontiguousarray(values, dtype=np.float64) + 0.0  # -0.0 + 0.0 is +0.0
    bits = finite.view(np.uint64)
    return np.where(bits & _SIGN, ~bits, bits | _SIGN)


def values_from_keys(keys: np.ndarray) -> np.ndarray:
    """Inverse of :func:`monotone_keys`."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    bits = np.where(keys & _SIGN, keys & ~_SIGN, ~keys)
    return bits.view(np.float64)


@dataclass(frozen=True)
class KeyHistogram:
    """Counts of ``key >> shift``, sparse: the bins present, sorted, and their counts."""

    shift: int
    bins: np.ndarray
    counts: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray, shift: int) -> KeyHistogram:
        """The histogram of ``keys`` at ``shift``."""
        bins, counts = np.unique(keys >> np.uint64(shift), return_counts=True)
        return cls(shift, bins.astype(np.uint64), counts.astype(np.int64))

    def merge(self, other: KeyHistogram) -> KeyHistogram:
        """Both histograms' counts added (exact: integers)."""
        if other.shift != self.shift:
            raise ValueError(f"cannot merge histograms at shifts {self.shift} and {other.shift}")
        bins = np.concatenate([self.bins, other.bins])
        counts = np.concatenate([self.counts, other.counts])
        merged, where = np.unique(bins, return_inverse=True)
        totals = np.zeros(merged.size, dtype=np.int64)
        np.add.at(totals, where, counts)
        return KeyHistogram(self.shift, merged, totals)

    @property
    def total(self) -> int:
        """How many keys the histogram counts."""
        return int(self.counts.sum())


@dataclass(frozen=True)
class Request:
    """What a pass gathers for one cell (the keys with ``key >> shift == prefix``):
    its values (``"collect"``) or a histogram of its next :data:`LEVEL_BITS` bits."""

    shift: int
    prefix: int
    kind: Literal["collect", "histogram"]

    def select(self, keys: np.ndarray) -> np.ndarray:
        """The keys in this cell."""
        return keys[(keys >> np.uint64(self.shift)) == np.uint64(self.prefix)]

    def gather(self, keys: np.ndarray) -> np.ndarray | KeyHistogram:
        """What one partition contributes: its keys in the cell, or their histogram."""
        inside = self.select(keys)
        if self.kind == "collect":
            return inside
        return KeyHistogram.of(inside, self.shift - LEVEL_BITS)


def merge_gathered(
    left: np.ndarray | KeyHistogram, right: np.ndarray | KeyHistogram
) -> np.ndarray | KeyHistogram:
    """Merge two partitions' contributions to one request."""
    if isinstance(left, KeyHistogram) and isinstance(right, KeyHistogram):
        return left.merge(right)
    return np.concatenate([np.asarray(left), np.asarray(right)])


@dataclass
class RankSearch:
    """Driver-side search for the values at given ranks (0-based, ascending) of one
    column, from the histogram of its keys' top bits.

    Call :meth:`requests`, gather them over all partitions, hand the merged results to
    :meth:`update`, and repeat until :attr:`done`; :attr:`values` then maps each rank
    to its value.
    """

    ranks: tuple[int, ...]
    histogram: KeyHistogram
    values: dict[int, float] = field(default_factory=dict)
    # rank -> (cell shift, cell prefix, rank within the cell, values in the cell)
    _cells: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        total = self.histogram.total
        for rank in self.ranks:
            if not 0 <= rank < total:
                raise ValueError(f"rank {rank} outside a column of {total} values")
            self._locate(rank, self.histogram, rank)

    def _locate(self, rank: int, histogram: KeyHistogram, within: int) -> None:
        cumulative = np.cumsum(histogram.counts)
        at = int(np.searchsorted(cumulative, within, side="right"))
        before = int(cumulative[at - 1]) if at else 0
        prefix = int(histogram.bins[at])
        if histogram.shift == 0:  # a single key: the value itself
            self.values[rank] = float(values_from_keys(np.array([prefix], dtype=np.uint64))[0])
            return
        self._cells[rank] = (histogram.shift, prefix, within - before, int(histogram.counts[at]))

    @property
    def done(self) -> bool:
        """Whether every rank's value is known (no cell left to search)."""
        return not self._cells

    def requests(self) -> tuple[Request, ...]:
        """What the next pass must gather (each cell once)."""
        wanted = {
            Request(shift, prefix, "collect" if count <= COLLECT_LIMIT else "histogram")
            for shift, prefix, _within, count in self._cells.values()
        }
        return tuple(sorted(wanted, key=lambda r: (r.shift, r.prefix, r.kind)))

    def update(self, gathered: dict[Request, np.ndarray | KeyHistogram]) -> None:
        """Use a pass's merged results for :meth:`requests`."""
        cells, self._cells = self._cells, {}
        for rank, (shift, prefix, within, count) in cells.items():
            kind = "collect" if count <= COLLECT_LIMIT else "histogram"
            found = gathered[Request(shift, prefix, kind)]
            if isinstance(found, KeyHistogram):
                if found.total != count:
                    raise RuntimeError(
                        f"the data changed between passes: a bin held {count} values, "
                        f"then {found.total}"
                    )
                self._locate(rank, found, within)
            else:
                keys = np.sort(np.asarray(found, dtype=np.uint64))
                if keys.size != count:
                    raise RuntimeError(
                        f"the data changed between passes: a bin held {count} values, "
                        f"then {keys.size}"
                    )
                self.values[rank] = float(values_from_keys(keys[within : within + 1])[0])


def linear_ranks(n: int, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy's virtual indexes for ``np.quantile(..., method="linear")`` of ``n``
    values, and the ranks it interpolates between (``previous``, ``next``).

    Mirrors ``numpy.lib._function_base_impl._quantile``: the virtual index is
    ``(n - 1) * q``; at or beyond the last index both ranks are ``n - 1``.
    """
    virtual = (n - 1) * np.asanyarray(probabilities, dtype=np.float64)
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = -1
    following[above] = -1
    below = virtual < 0
    previous[below] = 0
    following[below] = 0
    previous_index = previous.astype(np.intp)
    following_index = following.astype(np.intp)
    # NumPy's gamma uses the index arrays as they are, -1 included.
    gamma = np.asanyarray(virtual - previous_index, dtype=virtual.dtype)
    previous_rank = np.where(previous_index < 0, n + previous_index, previous_index)
    following_rank = np.where(following_index < 0, n + following_index, following_index)
    return gamma, previous_rank, following_rank


def linear_quantiles(
    gamma: np.ndarray, previous_values: np.ndarray, following_values: np.ndarray
) -> np.ndarray:
    """NumPy's linear interpolation (``_lerp``) between the order statistics, as
    ``np.quantile`` computes it: the same operations, so the same bits."""
    a = np.asarray(previous_values, dtype=np.float64)
    b = np.asarray(following_values, dtype=np.float64)
    t = np.asarray(gamma, dtype=np.float64)
    diff_b_a = b - a
    result = np.add(a, diff_b_a * t)
    np.subtract(b, diff_b_a * (1 - t), out=result, where=t >= 0.5, casting="unsafe")
    return result
