"""Exact, order-independent sums of float64 values.

Every finite float64 is an integer multiple of ``2**-1074``. :class:`ExactSum` keeps
the sum of its values as one Python integer ``N`` with value ``N * 2**-1126`` (the
extra 52 bits keep subnormal mantissas integral), so merging is integer addition:
exact, associative and commutative. The float it reports is correctly rounded, so
the mean of a column is bitwise the same however the rows were partitioned.

Sums of squares use Veltkamp's split ``x = hi + lo`` (26 significant bits each), so
``x**2 = hi*hi + 2*hi*lo + lo*lo`` with every product exact; this holds for
``1e-150 < |x| < 1e150`` (outside, squares under- or overflow and the result is the
ordinary float one).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

__all__ = ["ExactSum", "exact_sum", "exact_sum_of_squares"]

_SCALE_BITS = 1126  # value = N / 2**_SCALE_BITS
_EXP_OFFSET = 1074  # frexp exponents of finite doubles lie in [-1073, 1024]
_NBINS = 2100
# Rows per block: mantissa halves are below 2**27 in magnitude, so a float64
# bincount of up to 2**25 of them is an exact integer.
_BLOCK = 1 << 25
_SPLITTER = float(2**27 + 1)


def _exact_int(values: np.ndarray) -> int:
    """Return ``N`` with ``sum(values) == N * 2**-1126`` exactly (values finite)."""
    total = 0
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    for start in range(0, flat.size, _BLOCK):
        block = flat[start : start + _BLOCK]
        fraction, exponent = np.frexp(block)
        mantissa = (fraction * 2.0**53).astype(np.int64)  # exact: 53-bit integers
        high = mantissa >> 26
        low = mantissa - (high << 26)
        bins = exponent + _EXP_OFFSET
        sum_high = np.bincount(bins, weights=high, minlength=_NBINS)
        sum_low = np.bincount(bins, weights=low, minlength=_NBINS)
        for index in np.flatnonzero((sum_high != 0) | (sum_low != 0)):
            exact = (int(sum_high[index]) << 26) + int(sum_low[index])
            # x = mantissa * 2**(e - 53); shift to the common scale 2**-1126.
            total += exact << (int(index) - _EXP_OFFSET - 53 + _SCALE_BITS)
    return total


def _veltkamp_split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scaled = values * _SPLITTER
    high = scaled - (scaled - values)
    return high, values - high


@dataclass(frozen=True)
class ExactSum:
    """The exact sum of some float64 values, mergeable without rounding.

    Attributes
    ----------
    numerator : int
        The sum times ``2**1126``.
    """

    numerator: int = 0

    @classmethod
    def of(cls, values: np.ndarray) -> ExactSum:
        """Exact sum of finite ``values``."""
        return cls(_exact_int(np.asarray(values, dtype=np.float64)))

    @classmethod
    def of_squares(cls, values: np.ndarray) -> ExactSum:
        """Exact sum of ``values**2`` (see the module note on range)."""
        values = np.asarray(values, dtype=np.float64)
        high, low = _veltkamp_split(values)
        numerator = _exact_int(high * high) + 2 * _exact_int(high * low) + _exact_int(low * low)
        return cls(numerator)

    def merge(self, other: ExactSum) -> ExactSum:
        """Sum of both operands' values (exact, associative, commutative)."""
        return ExactSum(self.numerator + other.numerator)

    def fraction(self) -> Fraction:
        """The exact sum as a rational number."""
        return Fraction(self.numerator, 1 << _SCALE_BITS)

    def value(self) -> float:
        """The exact sum rounded once to the nearest float64."""
        return self.numerator / (1 << _SCALE_BITS)  # int / int is correctly rounded

    def to_state(self) -> dict[str, str]:
        """A JSON-safe state (the integer as a hex string)."""
        return {"numerator": hex(self.numerator)}

    @classmethod
    def from_state(cls, state: dict[str, str]) -> ExactSum:
        """Inverse of :meth:`to_state`."""
        return cls(int(state["numerator"], 16))


def exact_sum(values: np.ndarray) -> float:
    """The correctly rounded sum of finite ``values``."""
    return ExactSum.of(values).value()


def exact_sum_of_squares(values: np.ndarray) -> float:
    """The correctly rounded sum of squares of finite ``values``."""
    return ExactSum.of_squares(values).value()
