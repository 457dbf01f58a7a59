"""Session 18's differential sweep of the out-of-core design against formulaic.

A level that only rows dropped for a missing predictor have: formulaic finds the
levels in the rows it keeps, so it gets no column there. shardfit learned it from
every row and gave it a column of zeros (``C(g)[T.f]``), which made ``ols`` refuse
the design as rank deficient and changed the ``Sum``/``Diff`` columns of every other
level. The sweep (formulas over 1-7 partitions and Parquet row groups) agreed with
formulaic's ``model_matrix`` on everything else; the parametrized test keeps the
most valuable agreeing combinations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from formulaic import model_matrix

import shardfit
from shardfit.errors import DesignError


def _frame(seed: int = 0, n: int = 240) -> pd.DataFrame:
    """Level 'e' only in the last rows; level 'f' only in rows whose x is missing; an
    ordered Categorical with an unused category; bool and int columns."""
    rng = np.random.default_rng(seed)
    g = rng.choice(list("abcd"), n).astype(object)
    g[-12:] = np.where(rng.random(12) < 0.5, "e", g[-12:])
    x = rng.normal(size=n)
    x[[7, 50, 130, 200]] = np.nan
    g[[7, 130]] = "f"
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": x,
            "z": rng.uniform(0.5, 3.0, n),
            "w": rng.normal(2.0, 1.5, n),
            "k": rng.integers(0, 4, n),
            "g": pd.array(g, dtype="str"),
            "h": pd.array(rng.choice(["lo", "mid", "hi"], n), dtype="str"),
            "size": pd.Categorical(
                rng.choice(["s", "m", "l"], n), categories=["s", "m", "l", "xl"], ordered=True
            ),
            "flag": rng.random(n) < 0.4,
        }
    )


def _parquet(frame: pd.DataFrame, folder) -> str:
    path = folder / "d.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=50)
    return str(path)


def _assert_as_formulaic(X: pd.DataFrame, frame: pd.DataFrame, formula: str) -> None:
    reference = model_matrix(formula, frame).rhs
    assert list(X.columns) == list(reference.columns)
    np.testing.assert_array_equal(X.index.to_numpy(), reference.index.to_numpy())
    np.testing.assert_allclose(X.to_numpy(), reference.to_numpy(float), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ C(g)*x",  # old: C(g)[T.f] and C(g)[T.f]:x, all zeros
        "y ~ C(g, Sum) + x",  # old: [S.e] where formulaic has [S.d], other values too
        "y ~ 0 + x:C(g) + C(g, Diff)",
    ],
)
def test_level_only_in_rows_missing_a_predictor_gets_no_column(formula, tmp_path):
    frame = _frame()
    for source in (
        shardfit.from_pandas(frame, npartitions=3),
        shardfit.read_parquet(_parquet(frame, tmp_path)),
    ):
        _, X = shardfit.dmatrices(formula, source)
        _assert_as_formulaic(X, frame, formula)


def test_ols_with_level_only_in_rows_missing_a_predictor_is_statsmodels():
    # Old code: DesignError, "['C(g)[T.f]', 'C(g)[T.f]:x'] are collinear".
    frame = _frame(1)
    formula = "y ~ C(g)*x + C(h, Sum):z"
    reference = model_matrix(formula, frame)
    expected = sm.OLS(reference.lhs.to_numpy()[:, 0], reference.rhs.to_numpy()).fit()
    fit = shardfit.ols(formula, shardfit.from_pandas(frame, npartitions=4)).fit(backend="serial")
    assert list(fit.params.index) == list(reference.rhs.columns)
    np.testing.assert_allclose(fit.params.to_numpy(), expected.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.bse.to_numpy(), expected.bse, rtol=1e-8)


def test_level_kept_when_a_later_partition_has_it_in_a_complete_row():
    frame = _frame(2)
    frame.loc[200, "g"] = "f"  # x is missing there too
    frame.loc[230, "g"] = "f"  # a complete row, in the last partition
    formula = "y ~ C(g) + x"
    _, X = shardfit.dmatrices(formula, shardfit.from_pandas(frame, npartitions=5))
    assert "C(g)[T.f]" in X.columns
    _assert_as_formulaic(X, frame, formula)


AGREEING = [
    "y ~ poly(w, 3) + poly(z, 2, raw=True) + bs(w, df=5) + bs(z, knots=[1, 2])",
    "y ~ cr(w, df=5) + cc(z, knots=[1.5, 2.5]) + cr(z, df=4, constraints='center')",
    "y ~ C(g, Treatment(reference='c')):C(h, Sum) + C(h, Helmert)*w",
    "y ~ 0 + C(g):w + C(g, Sum)*z",
    "y ~ (w + z + g)**2 + C(h, Poly)",
    "y ~ np.log(z) + np.exp(w / 4) + I(w**2) + I(w > 2) + flag:w + C(flag)",
    "y ~ C(k, Sum)*w + k + size:w + C(size, Treatment(reference='m'))",
    "y ~ center(w):C(h) + scale(z):g + standardize(w) + C(h, levels=['mid', 'lo', 'hi'])",
]


@pytest.mark.parametrize("formula", AGREEING)
def test_agrees_with_formulaic_over_partitions(formula, tmp_path):
    frame = _frame(3).drop(columns="x")
    frame.loc[[3, 90], "y"] = np.nan  # transforms learn from these rows too (formulaic)
    reference = model_matrix(formula, frame).rhs
    # Unused declared categories get no column here (documented): all zeros there.
    unused = [c for c in reference.columns if "xl]" in c]
    assert all((reference[c] == 0).all() for c in unused)
    for source in (
        shardfit.from_pandas(frame, npartitions=7),
        shardfit.read_parquet(_parquet(frame, tmp_path)),
    ):
        _, X = shardfit.dmatrices(formula, source)
        expected = reference.drop(columns=unused)
        assert list(X.columns) == list(expected.columns)
        np.testing.assert_allclose(X.to_numpy(), expected.to_numpy(float), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("formula", "words"),
    [
        ("y ~ x + nosuch", ["nosuch"]),
        ("y ~ np.log(h)", ["h"]),
    ],
)
def test_bad_formula_names_the_column(formula, words):
    with pytest.raises(DesignError) as info:
        shardfit.dmatrices(formula, shardfit.from_pandas(_frame(), npartitions=2))
    assert all(word in str(info.value) for word in words)


def test_unseen_level_at_predict_names_partition_row_and_column():
    frame = _frame(4)
    fit = shardfit.ols("y ~ C(h) + z", frame.iloc[:200]).fit(backend="serial")
    new = frame.iloc[200:].copy()
    new.loc[new.index[5], "h"] = "zzz"
    with pytest.raises(DesignError) as info:
        fit.predict(new)
    message = str(info.value)
    assert "'h'" in message and "'zzz'" in message and "row 5" in message
