"""The structured encoder's split design (dense block + sparse block by rows) and the
centred Gram taken through it, against the same design as one dense array."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shardfit.data.memory import from_pandas
from shardfit.design.fast_encoder import SplitDesign, _rows_to_csr
from shardfit.design.materialize import encode_blocks, encode_partition
from shardfit.design.schema import learn_design
from shardfit.stats.centered_gram import CenteredGram

# Treatment-coded factors, a factor times a numeric column (values other than 1 in
# the sparse block) and a numeric product: all on the structured encoder's path.
FORMULA = "y ~ x1 + x1:x2 + C(g) + C(g):x2 + C(h)"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(31)
    n = 500
    g = rng.choice(list("abcd"), n)
    h = rng.choice(["p", "q", "r", "s", "t"], n, p=[0.4, 0.3, 0.2, 0.05, 0.05])
    x1 = 1e4 + rng.normal(size=n)  # far from 0: centring matters
    x2 = rng.uniform(-2.0, 3.0, n)
    y = 2.0 * x1 + (g == "b") * x2 + (h == "q") + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g, "h": h, "w": rng.uniform(0.5, 2, n)})


@pytest.fixture(scope="module")
def spec(frame: pd.DataFrame):
    learned = learn_design(FORMULA, from_pandas(frame, 1), weights="w", backend="serial")
    assert learned.spec.fast_encoder() is not None
    return learned.spec


def _means(
    Z: np.ndarray, y: np.ndarray, w: np.ndarray, dense: np.ndarray, intercept: int | None
) -> np.ndarray:
    """The centre: weighted means of the dense non-intercept columns and of y, 0 else."""
    centred = np.append(dense, True)
    if intercept is not None:
        centred[intercept] = False
    return np.where(centred, (np.column_stack([Z, y]).T @ w) / w.sum(), 0.0)


def _reference(
    Z: np.ndarray, y: np.ndarray, w: np.ndarray, center: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """sum w (z - c)(z - c)' and sum w (z - c) in plain NumPy. Taken about the
    statistic's own centre: the means themselves carry rounding (~eps * |mean|), which
    moves the uncentred sparse columns' products with the dense ones by that much
    times their counts."""
    moved = np.column_stack([Z, y]) - center
    return moved.T @ (moved * w[:, None]), moved.T @ w


@pytest.mark.parametrize("weighted", [False, True])
def test_centred_gram_of_split_design_equals_dense_reference(
    spec, frame: pd.DataFrame, weighted: bool
) -> None:
    chunk = encode_partition(spec, from_pandas(frame, 1).partitions[0], structured=True)
    X = chunk.X
    # C(g): 3, C(g):x2: 4 (no x2 main effect, so every level), C(h): 4.
    assert isinstance(X, SplitDesign) and X.sparse.shape[1] == 3 + 4 + 4
    assert np.any(X.sparse_rows.data != 1.0)  # C(g):x2 puts x2 in the sparse block
    dense = np.asarray(spec.dense_columns(), dtype=bool)
    intercept = spec.intercept_index()
    w = chunk.weights if weighted else None
    full = X.toarray()
    got = CenteredGram.of_chunk(X, chunk.y, w, tuple(dense), intercept)
    weights = np.ones(500) if w is None else w
    np.testing.assert_allclose(
        got.center, _means(full, chunk.y, weights, dense, intercept), rtol=1e-14
    )
    expected, sums = _reference(full, chunk.y, weights, got.center)
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    np.testing.assert_allclose(got.cross / scale, expected / scale, rtol=0, atol=1e-13)
    np.testing.assert_allclose(got.sums, sums, rtol=1e-13, atol=1e-13 * np.abs(full).sum())
    # The same design handed over as one dense array gives the same statistic.
    dense_path = CenteredGram.of_chunk(full, chunk.y, w, tuple(dense), intercept)
    np.testing.assert_allclose(got.cross / scale, dense_path.cross / scale, rtol=0, atol=1e-13)
    sparse_cols = np.flatnonzero(~dense)
    np.testing.assert_array_equal(got.sums[sparse_cols], dense_path.sums[sparse_cols])


@pytest.mark.parametrize("weighted", [False, True])
def test_columns_block_and_in_place_give_the_same_bits(
    spec, frame: pd.DataFrame, weighted: bool
) -> None:
    """A design handed over as columns, as a block and as one array: the same
    statistic, bit for bit; neither the data read nor the block is written to."""
    part = from_pandas(frame, 1).partitions[0]
    flags, intercept = tuple(spec.dense_columns()), spec.intercept_index()
    chunk = encode_partition(spec, part, structured=True)
    w = chunk.weights if weighted else None
    sources = [c.copy() for c in chunk.X.dense_columns() if c is not None]
    by_columns = CenteredGram.of_chunk(chunk.X, chunk.y, w, flags, intercept)
    for kept, source in zip([c for c in chunk.X.dense_columns() if c is not None], sources):
        np.testing.assert_array_equal(kept, source)
    X = chunk.X
    block = SplitDesign(X.dense.copy(order="F"), X.dense_index, X.sparse, X.sparse_index)
    before = block.dense.copy()
    copied = CenteredGram.of_chunk(block, chunk.y, w, flags, intercept)
    np.testing.assert_array_equal(block.dense, before)  # not overwritten by default
    as_array = CenteredGram.of_chunk(block.toarray(), chunk.y, w, flags, intercept)
    overwrite = CenteredGram.of_chunk(block, chunk.y, w, flags, intercept, overwrite=True)
    for other in (copied, as_array, overwrite):
        np.testing.assert_array_equal(other.cross, by_columns.cross)
        np.testing.assert_array_equal(other.sums, by_columns.sums)
        np.testing.assert_array_equal(other.center, by_columns.center)


def test_empty_block_gives_an_empty_statistic(spec, frame: pd.DataFrame) -> None:
    part = from_pandas(frame, 1).partitions[0]
    chunk = encode_partition(spec, part, structured=True)
    empty = chunk.X.take_rows(np.zeros(500, dtype=bool))
    assert empty.shape == (0, chunk.X.shape[1])
    stat = CenteredGram.of_chunk(
        empty, chunk.y[:0], chunk.weights[:0], tuple(spec.dense_columns()), spec.intercept_index()
    )
    assert stat.nobs == 0 and stat.sum_weights == 0.0
    assert not stat.cross.any() and not stat.sums.any()


def test_blocks_merge_to_the_whole(spec, frame: pd.DataFrame) -> None:
    part = from_pandas(frame, 1).partitions[0]
    flags, intercept = tuple(spec.dense_columns()), spec.intercept_index()
    merged = None
    for chunk in encode_blocks(spec, part, structured=True, block_rows=170):
        piece = CenteredGram.of_chunk(chunk.X, chunk.y, chunk.weights, flags, intercept)
        merged = piece if merged is None else merged.merge(piece)
    whole = encode_partition(spec, part, structured=True)
    full = whole.X.toarray()
    means = _means(full, whole.y, whole.weights, np.asarray(flags), intercept)
    np.testing.assert_allclose(merged.center, means, rtol=1e-14)
    expected, _ = _reference(full, whole.y, whole.weights, merged.center)
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    np.testing.assert_allclose(merged.cross / scale, expected / scale, rtol=0, atol=1e-13)


def test_split_design_formats_rows_and_pickle(spec, frame: pd.DataFrame) -> None:
    X = encode_partition(spec, from_pandas(frame, 1).partitions[0], structured=True).X
    assert sp.isspmatrix_csr(X.sparse_rows) and sp.isspmatrix_csc(X.sparse)
    np.testing.assert_array_equal(X.sparse.toarray(), X.sparse_rows.toarray())
    rows = np.array([3, 0, 499, 3])
    np.testing.assert_array_equal(X.take_rows(rows).toarray(), X.toarray()[rows])
    again = pickle.loads(pickle.dumps(X))
    np.testing.assert_array_equal(again.toarray(), X.toarray())
    with pytest.raises(AttributeError, match="read-only"):
        X.dense = X.dense  # type: ignore[misc]
    # Built from columns, the rows come on demand and agree.
    by_columns = SplitDesign(X.dense, X.dense_index, X.sparse, X.sparse_index)
    np.testing.assert_array_equal(by_columns.sparse_rows.toarray(), X.sparse.toarray())


def test_finite_rows_sees_non_finite_sparse_values() -> None:
    dense = np.asfortranarray(np.ones((4, 1)))
    sparse = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, np.inf], [2.0, 0.0], [np.nan, 1.0]]))
    for block in (sparse, sparse.tocsc()):
        X = SplitDesign(dense, np.array([0]), block, np.array([1, 2]))
        np.testing.assert_array_equal(X.finite_rows(), [True, False, True, False])


@pytest.mark.parametrize("terms", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 40])
def test_rows_to_csr_equals_dense_construction(terms: int, n: int) -> None:
    rng = np.random.default_rng(terms * 100 + n)
    width, columns, values, expected = 0, [], [], np.zeros((n, 0))
    for t in range(terms):
        levels = 3 + t
        local = rng.integers(-1, levels, n)  # -1: no column in this row
        columns.append(np.where(local >= 0, local + width, -1))
        value = None if t == 0 else rng.normal(size=n)
        values.append(value)
        block = np.zeros((n, levels))
        present = np.flatnonzero(local >= 0)
        block[present, local[present]] = 1.0 if value is None else value[present]
        expected = np.hstack([expected, block])
        width += levels
    got = _rows_to_csr(columns, values, n, width)
    assert got.shape == (n, width) and got.has_sorted_indices
    np.testing.assert_array_equal(got.toarray(), expected)
    assert got.nnz == sum(int((c >= 0).sum()) for c in columns)


@pytest.mark.parametrize("drop", [False, True])
def test_column_sums_reused_from_the_read_are_the_column_sums(
    spec, frame: pd.DataFrame, drop: bool
) -> None:
    """The sums taken when the columns are checked stand in for the dense columns'
    sums (used for the unweighted means): they must be those sums, bit for bit, also
    when rows were dropped (then they are not reused)."""
    data = frame.copy()
    if drop:
        data.loc[[3, 250], "x2"] = np.nan
    chunk = encode_partition(spec, from_pandas(data, 1).partitions[0], structured=True)
    assert chunk.nrows == (498 if drop else 500)
    expected = [float(chunk.nrows) if c is None else c.sum() for c in chunk.X.dense_columns()]
    np.testing.assert_array_equal(chunk.X.column_sums(), expected)
