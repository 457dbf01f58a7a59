from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from shardfit.engine import tree_merge
from shardfit.errors import SchemaError
from shardfit.stats.column_summary import (
    CategoricalSummary,
    NumericSummary,
    summarize_table,
)


def _table(rng: np.random.Generator, n: int) -> pa.Table:
    x = rng.normal(10.0, 3.0, n)
    x[rng.random(n) < 0.05] = np.nan
    x[:3] = [np.inf, -np.inf, np.nan]
    g = rng.choice(["a", "b", "c", "d"], n).astype(object)
    g[rng.random(n) < 0.03] = None
    return pa.table({"x": x, "g": pa.array(g, type=pa.string()), "k": rng.integers(0, 5, n)})


def test_merge_over_random_split_equals_one_pass(rng: np.random.Generator) -> None:
    table = _table(rng, 5000)
    whole = summarize_table(table, categorical=frozenset({"k"}))
    for parts in (3, 17):
        cuts = np.sort(rng.integers(0, table.num_rows, parts - 1))
        bounds = [0, *cuts.tolist(), table.num_rows]
        pieces = [
            summarize_table(table.slice(a, b - a), categorical=frozenset({"k"}))
            for a, b in itertools.pairwise(bounds)
        ]
        merged = tree_merge(pieces)
        assert merged.rows == whole.rows == 5000
        x_whole, x_merged = whole.columns["x"], merged.columns["x"]
        assert isinstance(x_merged, NumericSummary)
        assert x_merged.count == x_whole.count
        assert x_merged.missing == x_whole.missing
        assert (x_merged.min, x_merged.max) == (x_whole.min, x_whole.max)
        np.testing.assert_allclose(x_merged.mean, x_whole.mean, rtol=1e-13)
        np.testing.assert_allclose(x_merged.std, x_whole.std, rtol=1e-12)
        assert merged.columns["g"] == whole.columns["g"]
        assert merged.columns["k"] == whole.columns["k"]


def test_numeric_summary_matches_numpy(rng: np.random.Generator) -> None:
    table = _table(rng, 2000)
    x = table.column("x").to_numpy()
    finite = x[np.isfinite(x)]
    summary = summarize_table(table).columns["x"]
    assert isinstance(summary, NumericSummary)
    assert summary.missing == int((~np.isfinite(x)).sum())
    np.testing.assert_allclose(summary.mean, finite.mean(), rtol=1e-14)
    np.testing.assert_allclose(summary.std, finite.std(ddof=1), rtol=1e-13)


def test_level_counts_and_missing(rng: np.random.Generator) -> None:
    table = _table(rng, 3000)
    g = table.column("g").to_pylist()
    summary = summarize_table(table).columns["g"]
    assert isinstance(summary, CategoricalSummary)
    assert summary.missing == sum(v is None for v in g)
    assert summary.levels == {level: g.count(level) for level in "abcd"}
    assert summary.sorted_levels() == ["a", "b", "c", "d"]


def test_cardinality_cap_raises_naming_column() -> None:
    table = pa.table({"id": [f"u{i}" for i in range(50)]})
    with pytest.raises(SchemaError, match=r"column 'id' has more than 10 distinct levels"):
        summarize_table(table, max_levels=10)


def test_cap_applies_to_merged_levels() -> None:
    left = summarize_table(pa.table({"g": ["a", "b", "c"]}), max_levels=4)
    right = summarize_table(pa.table({"g": ["d", "e"]}), max_levels=4)
    with pytest.raises(SchemaError, match="more than 4 distinct levels"):
        left.merge(right)


def test_merge_rejects_different_columns() -> None:
    left = summarize_table(pa.table({"a": [1.0]}))
    right = summarize_table(pa.table({"b": [1.0]}))
    with pytest.raises(SchemaError, match="disagree on columns"):
        left.merge(right)


def test_merge_rejects_kind_change() -> None:
    numeric = summarize_table(pa.table({"a": [1.0]}))
    labels = summarize_table(pa.table({"a": ["x"]}))
    with pytest.raises(SchemaError, match="cannot merge a numeric summary"):
        numeric.merge(labels)


@pytest.mark.parametrize(
    "values",
    [
        pa.chunked_array([pa.array(np.arange(10.0)), pa.array(np.arange(5.0))]).slice(3, 9),
        pa.array(np.arange(40, dtype=np.int32)).slice(7, 20),
        pa.array([True, False, True, True, False, False, True, False, True, True] * 3).slice(3),
        pa.chunked_array([pa.array([True, False]), pa.array([False, True, True])]),
        pa.array([1.0, None, 3.0]),  # nulls: pyarrow's own conversion (NaN)
        pa.array(np.arange(6, dtype=np.uint8)),
        pa.chunked_array([], type=pa.float64()),
        pa.array(["a", "b"]),
    ],
)
def test_to_numpy_equals_pyarrows_conversion(values) -> None:
    from shardfit.stats.column_summary import to_numpy

    got = to_numpy(values)
    expected = values.to_numpy(zero_copy_only=False)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
