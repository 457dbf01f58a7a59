from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shardfit.stats.exact_sum import ExactSum, exact_sum, exact_sum_of_squares


def _random_splits(values: np.ndarray, rng: np.random.Generator, parts: int) -> list[np.ndarray]:
    cuts = np.sort(rng.integers(0, values.size + 1, size=parts - 1))
    return np.split(values, cuts)


def test_sum_equals_rational_sum_over_wide_magnitudes(rng: np.random.Generator) -> None:
    values = rng.standard_normal(5000) * 10.0 ** rng.uniform(-140, 140, 5000)
    exact = sum(Fraction(float(v)) for v in values)
    assert ExactSum.of(values).fraction() == exact
    assert exact_sum(values) == float(exact)
    assert exact_sum(values) == math.fsum(values)


def test_sum_of_squares_is_exact(rng: np.random.Generator) -> None:
    values = rng.standard_normal(3000) * 10.0 ** rng.uniform(-60, 60, 3000)
    exact = sum(Fraction(float(v)) ** 2 for v in values)
    assert ExactSum.of_squares(values).fraction() == exact
    assert exact_sum_of_squares(values) == float(exact)


def test_subnormals_and_extremes() -> None:
    values = np.array([5e-324, -5e-324, 2.2e-308, 1e308, 1e308, -1e308, -0.0])
    assert ExactSum.of(values).fraction() == sum(Fraction(float(v)) for v in values)


def test_merge_over_any_split_is_bitwise_the_one_pass_sum(rng: np.random.Generator) -> None:
    values = rng.standard_normal(20_000) * 1e3 + 1e6  # rounding-sensitive: large offset
    whole = ExactSum.of(values)
    for parts in (2, 3, 17):
        merged = ExactSum()
        for piece in _random_splits(values, rng, parts):
            merged = merged.merge(ExactSum.of(piece))
        assert merged == whole
        assert merged.value() == whole.value()


def test_state_round_trip(rng: np.random.Generator) -> None:
    total = ExactSum.of(rng.standard_normal(100))
    assert ExactSum.from_state(total.to_state()) == total


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
        max_size=50,
    )
)
def test_property_equals_fractions(values: list[float]) -> None:
    array = np.array(values, dtype=np.float64)
    assert ExactSum.of(array).fraction() == sum((Fraction(v) for v in values), Fraction(0))
