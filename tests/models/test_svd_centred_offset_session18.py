"""``svd(center=True)`` is as accurate for columns far from zero as near it.

The centred SVD took the TSQR factor of the raw ``sqrt(w) [X | 1]`` and centred it
afterwards, losing ``log10(|mean| / spread)`` digits: at an offset of 1e8 its singular
values were off by 1.9e-9 of the largest and its components by 5e-9, against the SVD
of the exactly centred data. Each block is now centred at its own means and the
factors merge exactly (:class:`~shardfit.stats.centered_qr.CenteredQR`). The reference
centres with exact rational arithmetic, then takes NumPy's float64 SVD.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import shardfit
from shardfit.stats.centered_qr import CenteredQR

ROWS = 600
FORMULA = "0 + a + b + c"
OFFSETS = np.array([1.0, -1.0, 0.5])  # column offsets, times the case's size


def _frame(offset: float) -> pd.DataFrame:
    """Correlated unit-spread columns at ``offset * OFFSETS``, positive weights, and
    three rows missing a value (dropped)."""
    rng = np.random.default_rng(18)
    mixing = np.array([[2.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.25]])
    values = rng.standard_normal((ROWS, 3)) @ mixing + offset * OFFSETS
    frame = pd.DataFrame(values, columns=list("abc"))
    frame["w"] = rng.uniform(0.2, 3.0, ROWS)
    for row, column in ((5, "a"), (301, "b"), (598, "c")):
        frame.loc[row, column] = np.nan
    return frame


def _exactly_centred(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``sqrt(w) (x - mean)`` with the weighted means and the differences computed
    exactly (rationals), each rounded once to float64; and the means."""
    weights = [Fraction(1)] * x.shape[0] if w is None else [Fraction(v) for v in w]
    total = sum(weights)
    z = np.empty_like(x)
    means = np.empty(x.shape[1])
    for j in range(x.shape[1]):
        column = [Fraction(v) for v in x[:, j]]
        mean = sum(wi * v for wi, v in zip(weights, column)) / total
        means[j] = float(mean)
        z[:, j] = [float(v - mean) for v in column]
    if w is not None:
        z *= np.sqrt(w)[:, None]
    return z, means


@pytest.mark.parametrize("npartitions", [1, 3, 7])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 1e4, 1e8])
def test_centred_svd_matches_exactly_centred_data_at_any_offset(
    offset: float, weighted: bool, npartitions: int
) -> None:
    frame = _frame(offset)
    complete = frame.dropna()
    x = complete[list("abc")].to_numpy()
    w = complete["w"].to_numpy() if weighted else None
    z, means = _exactly_centred(x, w)
    _, s_ref, vt_ref = np.linalg.svd(z, full_matrices=False)
    result = shardfit.svd(
        FORMULA,
        shardfit.from_pandas(frame, npartitions),
        center=True,
        weights="w" if weighted else None,
        backend="serial",
    )
    assert (result.nobs, result.rows_dropped) == (ROWS - 3, {"missing": 3})
    s = result.singular_values
    # Old code at 1e8: 7e-10 to 2.2e-9 (1e-13 to 6e-13 at 1e4); now below 1e-15.
    np.testing.assert_allclose(s, s_ref, rtol=0, atol=1e-13 * s_ref[0])
    # Components up to sign (the fixture's singular values are well separated).
    signs = np.sign(np.sum(result.components_array * vt_ref, axis=1))
    np.testing.assert_allclose(result.components_array, signs[:, None] * vt_ref, rtol=0, atol=1e-13)
    # The means subtracted are the exact ones, to the last few bits.
    np.testing.assert_allclose(result.mean_array, means, rtol=4e-16, atol=1e-15)
    n = complete["w"].sum() if weighted else ROWS - 3
    np.testing.assert_allclose(result.explained_variance, s_ref**2 / (n - 1), rtol=1e-12)
    assert result.rank == 3


@pytest.mark.parametrize("npartitions", [1, 4])
def test_rank_of_dependent_columns_far_from_zero(npartitions: int) -> None:
    """A column twice another (both near 1e8) and a constant column: rank 2 of 4, with
    the null components naming them, as NumPy's rank of the centred data says."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": 1e8 + rng.standard_normal(200), "b": rng.standard_normal(200)})
    frame["d"] = 2.0 * frame["a"]  # exact in float64
    frame["k"] = 1e8 + 0.3
    result = shardfit.svd(
        "0 + a + b + d + k", shardfit.from_pandas(frame, npartitions), center=True,
        backend="serial",
    )  # fmt: skip
    z, _ = _exactly_centred(frame.to_numpy(), None)
    assert result.rank == np.linalg.matrix_rank(z) == 2
    assert set().union(*result.null_columns().values()) == {"a", "d", "k"}
    s_ref = np.linalg.svd(z, compute_uv=False)
    np.testing.assert_allclose(result.singular_values[:2], s_ref[:2], rtol=1e-14)


def test_centred_factor_merges_to_the_factor_of_exactly_centred_rows() -> None:
    """The statistic itself: blocks merged in any bracketing give ``R'R`` equal to the
    Gram of the exactly centred rows (to rounding of the centred values), at 1e8."""
    rng = np.random.default_rng(3)
    x = 1e8 + rng.standard_normal((90, 3)) * [1.0, 2.0, 0.5]
    w = rng.uniform(0.5, 2.0, 90)
    dense = (True, True, True)
    pieces = [CenteredQR.of_chunk(x[i : i + 30], w[i : i + 30], dense) for i in (0, 30, 60)]
    left = pieces[0].merge(pieces[1]).merge(pieces[2])
    right = pieces[0].merge(pieces[1].merge(pieces[2]))
    z, means = _exactly_centred(x, w)
    gram = z.T @ z
    for merged in (left, right):
        assert (merged.nobs, merged.sum_weights) == (90, pytest.approx(w.sum(), rel=1e-15))
        np.testing.assert_allclose(merged.r.T @ merged.r, gram, rtol=0, atol=1e-13 * gram.max())
        np.testing.assert_allclose(merged.mean, means, rtol=4e-16)
    # A block without rows merges as nothing.
    empty = CenteredQR.of_chunk(np.empty((0, 3)), None, dense)
    assert empty.merge(left).r is left.r and left.merge(empty).nobs == 90
