"""The centred Gram statistic: exact merges about pooled means, against direct sums."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from shardfit.stats.centered_gram import CenteredGram


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), 1e6 + rng.normal(size=n), -3e4 + 0.01 * rng.normal(size=n)])
    y = 5e5 + X[:, 1] * 2 + rng.normal(size=n)
    w = rng.uniform(0.5, 2.0, size=n)
    return X, y, w


def _exact_centred_gram(Z: np.ndarray, w: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """sum w (z - m)(z - m)' in rational arithmetic, m the exact weighted means."""
    rows = [[Fraction(float(v)) for v in row] for row in Z]
    weights = [Fraction(float(v)) for v in w]
    total = sum(weights)
    q = Z.shape[1]
    means = [
        sum(wi * row[j] for wi, row in zip(weights, rows)) / total if centred[j] else Fraction(0)
        for j in range(q)
    ]
    out = np.empty((q, q))
    for a in range(q):
        for b in range(a, q):
            value = sum(
                wi * (row[a] - means[a]) * (row[b] - means[b]) for wi, row in zip(weights, rows)
            )
            out[a, b] = out[b, a] = float(value)
    return out


@pytest.mark.parametrize("pieces", [1, 3, 7])
def test_merged_blocks_equal_the_exact_centred_gram(pieces: int) -> None:
    X, y, w = _data(60)
    dense = (True, True, True)
    parts = [
        CenteredGram.of_chunk(X[idx], y[idx], w[idx], dense, intercept=0)
        for idx in np.array_split(np.arange(60), pieces)
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    Z = np.column_stack([X, y])
    centred = np.array([False, True, True, True])
    exact = _exact_centred_gram(Z, w, centred)
    # Columns with means 1e6 and spreads 1: a raw Gram would lose ~12 digits here.
    np.testing.assert_allclose(merged.cross, exact, rtol=1e-12, atol=1e-9 * np.abs(exact).max())
    np.testing.assert_allclose(merged.center[1:], (Z[:, 1:].T @ w) / w.sum(), rtol=1e-14)
    assert merged.nobs == 60
    np.testing.assert_allclose(merged.sum_weights, w.sum(), rtol=1e-14)


def test_about_the_origin_is_the_raw_gram() -> None:
    X, y, w = _data(40, seed=1)
    stat = CenteredGram.of_chunk(X, y, w, (True, True, True), intercept=None)
    raw = stat.about(np.zeros(4))
    Z = np.column_stack([X, y])
    np.testing.assert_allclose(raw.cross, Z.T @ (Z * w[:, None]), rtol=1e-12)
    np.testing.assert_allclose(raw.sums, Z.T @ w, rtol=1e-12)


def test_equilibrated_has_unit_diagonal_for_centred_columns() -> None:
    X, y, w = _data(50, seed=2)
    stat = CenteredGram.of_chunk(X, y, w, (True, True, True), intercept=0)
    gram, transform = stat.equilibrated((True, True, True), intercept=0)
    diag = np.diag(gram.cross) / gram.totals.sum_weights
    np.testing.assert_allclose(diag[1:], 1.0, rtol=1e-12)  # unit spread
    assert transform.scale[0] == 1.0 and transform.shift[0] == 0.0  # intercept untouched


def test_state_round_trip_and_empty_merge() -> None:
    X, y, w = _data(10, seed=3)
    stat = CenteredGram.of_chunk(X, y, w, (True, True, True), intercept=0)
    again = CenteredGram.from_state(stat.to_state())
    np.testing.assert_array_equal(again.cross, stat.cross)
    empty = CenteredGram.of_chunk(X[:0], y[:0], w[:0], (True, True, True), intercept=0)
    merged = empty.merge(stat)
    np.testing.assert_allclose(merged.cross, stat.cross, rtol=1e-15)
    np.testing.assert_allclose(merged.center, stat.center, rtol=1e-15)
