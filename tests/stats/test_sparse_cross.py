"""The compiled sparse cross products and the Gram blocks built on them, against dense
NumPy products of the same matrices."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from shardfit.stats._sparse_cross import sparse_cross
from shardfit.stats.gram import block_gram, cross_blocks, scale_rows, weighted_gram


def _blocks(
    rng: np.random.Generator, n: int, kd: int = 4, ks: int = 7
) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """A dense block, a sparse block with values other than 1 (negative ones, explicit
    zeros, rows without any value), a response, row scales and weights."""
    dense = rng.normal(size=(n, kd)) * np.arange(1, kd + 1)
    mask = rng.random((n, ks)) < 0.35
    values = rng.normal(2.0, 3.0, size=(n, ks)) * mask
    sparse = sp.csr_matrix(values)
    if sparse.nnz:
        sparse.data[0] = 0.0  # an explicit zero stays in the structure
    y = rng.normal(size=n)
    return dense, sparse, y, rng.uniform(0.3, 1.7, n), rng.uniform(0.5, 2.0, n)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("scaled", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("with_response", [False, True])
def test_sparse_cross_equals_dense_products(
    rng: np.random.Generator,
    compiled: bool,
    fmt: str,
    order: str,
    scaled: bool,
    weighted: bool,
    with_response: bool,
) -> None:
    dense, sparse, y, r, w = _blocks(rng, 53)
    dense = np.asarray(dense, order=order)
    row_scale = r if scaled else None
    weights = w if weighted else None
    got = sparse_cross(
        dense,
        sparse.asformat(fmt),
        y if with_response else None,
        row_scale,
        weights,
        compiled=compiled,
    )
    S = sparse.toarray()
    S_r = S * (r if scaled else np.ones(53))[:, None]
    np.testing.assert_allclose(got.sd, S_r.T @ dense, rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(got.ss, S_r.T @ S_r, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(got.ss, got.ss.T)  # symmetric by construction
    np.testing.assert_allclose(got.sw, S.T @ (w if weighted else np.ones(53)), rtol=1e-13)
    np.testing.assert_allclose(got.dr, dense.T @ (r if scaled else np.ones(53)), rtol=1e-13)
    if with_response:
        np.testing.assert_allclose(got.sy, S_r.T @ y, rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(got.dy, dense.T @ y, rtol=1e-13, atol=1e-12)
    else:
        assert not got.sy.any() and not got.dy.any()
    # The sums run over rows in order, as SciPy's: its S'D comes out bitwise the same.
    scipy_sd = np.asarray(scale_rows(sparse, r).T @ dense) if scaled else sparse.T @ dense
    np.testing.assert_array_equal(got.sd, scipy_sd)


@pytest.mark.parametrize("compiled", [True, False])
def test_duplicate_entries_are_summed(rng: np.random.Generator, compiled: bool) -> None:
    dense = rng.normal(size=(5, 2))
    rows, cols = np.array([0, 0, 2, 4, 4, 4]), np.array([1, 1, 0, 2, 2, 1])
    data = np.array([2.0, -0.5, 3.0, 1.0, 4.0, -2.0])
    coo = sp.coo_matrix((data, (rows, cols)), shape=(5, 3))
    csr = sp.csr_matrix((data, cols, np.array([0, 2, 2, 3, 3, 6])), shape=(5, 3))
    assert csr.nnz == 6  # duplicates kept in the structure
    S = coo.toarray()
    for matrix in (coo, csr):
        got = sparse_cross(dense, matrix, np.arange(5.0), compiled=compiled)
        np.testing.assert_allclose(got.sd, S.T @ dense, rtol=1e-14)
        np.testing.assert_allclose(got.ss, S.T @ S, rtol=1e-14)
        np.testing.assert_allclose(got.sy, S.T @ np.arange(5.0), rtol=1e-14)


@pytest.mark.parametrize("compiled", [True, False])
def test_one_hot_block_counts_and_group_sums(rng: np.random.Generator, compiled: bool) -> None:
    """A one-hot block: S'S is the level counts, S'D the per-level sums of D."""
    n, levels = 200, 6
    codes = rng.integers(0, levels, n)
    onehot = sp.csr_matrix((np.ones(n), codes, np.arange(n + 1)), shape=(n, levels))
    dense = rng.normal(size=(n, 3))
    got = sparse_cross(dense, onehot, compiled=compiled)
    np.testing.assert_array_equal(got.ss, np.diag(np.bincount(codes, minlength=levels)))
    for level in range(levels):
        np.testing.assert_allclose(got.sd[level], dense[codes == level].sum(axis=0), rtol=1e-13)


@pytest.mark.parametrize("compiled", [True, False])
def test_zero_rows_and_zero_columns(compiled: bool) -> None:
    empty = sparse_cross(
        np.zeros((0, 3)), sp.csr_matrix((0, 4)), np.zeros(0), np.zeros(0), compiled=compiled
    )
    assert empty.sd.shape == (4, 3) and empty.ss.shape == (4, 4)
    assert not any(part.any() for part in empty)
    dense = np.arange(6.0).reshape(3, 2)
    no_sparse = sparse_cross(dense, sp.csr_matrix((3, 0)), np.ones(3), compiled=compiled)
    assert no_sparse.sd.shape == (0, 2) and no_sparse.ss.shape == (0, 0)
    np.testing.assert_array_equal(no_sparse.dy, dense.sum(axis=0))
    with pytest.raises(ValueError, match="3 rows"):
        sparse_cross(np.zeros((2, 1)), sp.csr_matrix((3, 1)), compiled=compiled)


def _reordered_gram(Z: np.ndarray, order: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    """The dense reference of block_gram: Z'Z with column i of Z at order[i]."""
    q = Z.shape[1] + (y is not None)
    full = np.column_stack([Z, y]) if y is not None else Z
    where = np.concatenate([order, [q - 1]]) if y is not None else order
    out = np.zeros((q, q))
    out[np.ix_(where, where)] = full.T @ full
    return out


@pytest.mark.parametrize("n", [0, 1, 61])
@pytest.mark.parametrize("with_response", [False, True])
def test_block_gram_equals_dense_gram(
    rng: np.random.Generator, n: int, with_response: bool
) -> None:
    dense, sparse, y, _, _ = _blocks(rng, n)
    dense = np.asfortranarray(dense)
    order = rng.permutation(dense.shape[1] + sparse.shape[1])
    response = y if with_response else None
    expected = _reordered_gram(np.hstack([dense, sparse.toarray()]), order, response)
    got = block_gram(dense, sparse.tocsc(), order, response)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-12)


def test_cross_blocks_scales_sparse_rows_and_sums(rng: np.random.Generator) -> None:
    dense, sparse, y, r, w = _blocks(rng, 45)
    order = np.arange(dense.shape[1] + sparse.shape[1])
    scaled_dense = np.asfortranarray(dense * r[:, None])
    got = cross_blocks(scaled_dense, sparse, order, y * r, row_scale=r, weights=w)
    Z = np.hstack([dense, sparse.toarray()]) * r[:, None]
    np.testing.assert_allclose(got.cross, _reordered_gram(Z, order, y * r), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(got.sparse_sums, sparse.toarray().T @ w, rtol=1e-13)
    np.testing.assert_allclose(got.dense_sums, scaled_dense.T @ r, rtol=1e-13)
    # Without sparse columns the sums come from BLAS, with the same meaning.
    plain = cross_blocks(scaled_dense, sp.csc_matrix((45, 0)), np.arange(4), row_scale=r)
    np.testing.assert_allclose(plain.dense_sums, scaled_dense.T @ r, rtol=1e-13)
    np.testing.assert_allclose(plain.cross, scaled_dense.T @ scaled_dense, rtol=1e-13)


def test_weighted_gram_equals_dense_weighted_gram(rng: np.random.Generator) -> None:
    dense, sparse, _, r, _ = _blocks(rng, 70)
    order = rng.permutation(dense.shape[1] + sparse.shape[1])
    Z = np.hstack([dense, sparse.toarray()])
    expected = np.zeros((Z.shape[1],) * 2)
    expected[np.ix_(order, order)] = Z.T @ (Z * (r**2)[:, None])
    got = weighted_gram(np.asfortranarray(dense), sparse.tocsc(), r, order)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-12)
    unweighted = weighted_gram(np.asfortranarray(dense), sparse.tocsc(), None, order)
    expected[np.ix_(order, order)] = Z.T @ Z
    np.testing.assert_allclose(unweighted, expected, rtol=1e-13, atol=1e-12)


def test_paths_agree_and_small_blocks_skip_numba(rng: np.random.Generator) -> None:
    """The compiled pass and SciPy agree to rounding (their S'D and S'S bitwise: both
    sum in row order); a block below COMPILED_MIN_ROWS rows does not import numba."""
    dense, sparse, y, r, w = _blocks(rng, 300, kd=5, ks=9)
    compiled = sparse_cross(dense, sparse, y, r, w, compiled=True)
    scipy_path = sparse_cross(dense, sparse, y, r, w, compiled=False)
    for a, b in zip(compiled, scipy_path):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(compiled.sd, scipy_path.sd)
    np.testing.assert_array_equal(compiled.ss, scipy_path.ss)
    # Below COMPILED_MIN_ROWS numba is not even imported (a fresh interpreter shows it).
    script = (
        "import sys, numpy as np, scipy.sparse as sp\n"
        "from shardfit.stats._sparse_cross import COMPILED_MIN_ROWS, sparse_cross\n"
        "n = COMPILED_MIN_ROWS - 1\n"
        "s = sp.csr_matrix((np.ones(n), np.zeros(n, dtype=np.int32), np.arange(n + 1)))\n"
        "assert sparse_cross(np.ones((n, 1)), s).ss[0, 0] == n\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
