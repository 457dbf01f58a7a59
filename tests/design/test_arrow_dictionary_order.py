"""Arrow dictionary columns keep their dictionary's order as their levels, as pandas
does when it reads them (a ``Categorical`` whose categories are the dictionary): the
first entry is the reference level. statsmodels on pandas' frame is the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf

import shardfit

FORMULA = "y ~ x + g"


def _data(seed: int = 0, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # "c" first: the dictionary is in order of appearance, so it is not sorted.
    g = np.r_[["c"], rng.choice(["b", "c", "a"], n - 1)]
    x = rng.normal(size=n)
    y = x + (g == "a") * 1.0 + (g == "c") * 0.5 + rng.normal(size=n)
    return g, x, y


def _check(params: pd.Series, reference: pd.Series) -> None:
    assert sorted(params.index) == sorted(reference.index)
    np.testing.assert_allclose(params[reference.index], reference, rtol=1e-10, atol=1e-12)


def test_from_arrow_dictionary_reference_level_is_the_dictionary_first() -> None:
    g, x, y = _data()
    table = pa.table({"y": y, "x": x, "g": pa.array(g).dictionary_encode()})
    frame = table.to_pandas()
    assert list(frame["g"].cat.categories) == ["c", "a", "b"]
    reference = smf.ols(FORMULA, frame).fit().params
    assert "g[T.a]" in reference.index  # "c" is the reference level
    fit = shardfit.ols(FORMULA, shardfit.from_arrow(table, npartitions=3)).fit(backend="serial")
    _check(fit.params, reference)


def test_parquet_dictionary_column_reads_as_pandas_reads_it(tmp_path) -> None:
    g, x, y = _data(1)
    table = pa.table({"y": (y > 0) * 1.0, "x": x, "g": pa.array(g).dictionary_encode()})
    path = tmp_path / "dictionary.parquet"
    pq.write_table(table, path, row_group_size=70)
    frame = pd.read_parquet(path)
    assert list(frame["g"].cat.categories) == ["c", "a", "b"]
    reference = smf.logit(FORMULA, frame).fit(disp=0).params
    fit = shardfit.logit(FORMULA, shardfit.read_parquet(str(path))).fit(backend="serial")
    _check(fit.params, reference)


def test_chunks_with_different_dictionaries_unify_in_order_of_appearance() -> None:
    g, x, y = _data(2)
    half = len(g) // 2
    # The second chunk's dictionary starts with a level the first chunk lacks.
    g[:half] = np.where(g[:half] == "a", "b", g[:half])
    first = pa.table({"y": y[:half], "x": x[:half], "g": pa.array(g[:half]).dictionary_encode()})
    rest = g[half:].copy()
    rest[0] = "a"
    second = pa.table({"y": y[half:], "x": x[half:], "g": pa.array(rest).dictionary_encode()})
    table = pa.concat_tables([first, second])
    frame = table.to_pandas()
    assert list(frame["g"].cat.categories) == ["c", "b", "a"]
    reference = smf.ols(FORMULA, frame).fit().params
    for parts in (1, 2, 5):
        source = shardfit.from_arrow(table, npartitions=parts)
        fit = shardfit.ols(FORMULA, source).fit(backend="serial")
        _check(fit.params, reference)


def test_plain_text_parquet_columns_stay_sorted(tmp_path) -> None:
    """Parquet text columns are read dictionary-encoded for speed, but pandas reads
    them as text, whose levels statsmodels sorts: so must shardfit."""
    g, x, y = _data(3)
    path = tmp_path / "text.parquet"
    pq.write_table(pa.table({"y": y, "x": x, "g": g}), path, row_group_size=100)
    frame = pd.read_parquet(path)
    assert frame["g"].dtype != "category"
    reference = smf.ols(FORMULA, frame).fit().params
    assert "g[T.b]" in reference.index and "g[T.c]" in reference.index
    fit = shardfit.ols(FORMULA, shardfit.read_parquet(str(path))).fit(backend="serial")
    _check(fit.params, reference)


@pytest.mark.parametrize("parts", [1, 3])
def test_pandas_categorical_order_still_declared(parts: int) -> None:
    g, x, y = _data(4)
    frame = pd.DataFrame({"y": y, "x": x, "g": pd.Categorical(g, categories=["b", "c", "a"])})
    reference = smf.ols(FORMULA, frame).fit().params
    fit = shardfit.ols(FORMULA, shardfit.from_pandas(frame, npartitions=parts)).fit(
        backend="serial"
    )
    _check(fit.params, reference)
