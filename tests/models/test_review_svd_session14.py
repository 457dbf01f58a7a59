"""Adversarial review of ``shardfit.svd`` (session 14): ill-conditioned designs, wide
and single-row partitions, rank deficiency, weighted centring with dropped rows on
Parquet (serial and processes), ``scale()`` terms, and Dask's TSQR as a peer.

References: NumPy's SVD of the same (weighted, centred) matrix in memory, scikit-learn's
``PCA(svd_solver="full")`` and ``StandardScaler``, and ``dask.array.linalg.svd``. Right
singular vectors are compared after scikit-learn's sign convention, written out here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

import shardfit


def _flip(vt: np.ndarray) -> np.ndarray:
    """Each row's largest-|.| entry made positive (scikit-learn's ``svd_flip``)."""
    vt = vt.copy()
    for row in vt:
        if row[int(np.argmax(np.abs(row)))] < 0:
            row *= -1
    return vt


def _reference(X: np.ndarray, w: np.ndarray | None, center: bool):
    """``mean``, ``Z = sqrt(w) (X - mean)`` and its thin SVD, in memory."""
    w = np.ones(X.shape[0]) if w is None else w
    mean = w @ X / w.sum() if center else np.zeros(X.shape[1])
    Z = np.sqrt(w)[:, None] * (X - mean)
    _, s, vt = np.linalg.svd(Z, full_matrices=False)
    return mean, Z, s, _flip(vt)


@pytest.mark.parametrize("eps", [1e-7, 1e-8])
@pytest.mark.parametrize("npartitions", [1, 5])
def test_lauchli_small_singular_values_keep_full_relative_accuracy(
    eps: float, npartitions: int
) -> None:
    """The Läuchli matrix [1'; eps I] (condition 1e8-1e9): its Gram matrix rounds
    1 + eps**2 to 1, so normal equations lose the small singular values entirely; the
    TSQR factor keeps them to a few ulps, as NumPy does."""
    p = 4
    lauchli = np.vstack([np.ones((1, p)), eps * np.eye(p)])
    data = shardfit.from_pandas(pd.DataFrame(lauchli, columns=list("abcd")), npartitions)
    result = shardfit.svd("0 + a + b + c + d", data, backend="serial")
    s = np.linalg.svd(lauchli, compute_uv=False)
    np.testing.assert_allclose(result.singular_values, s, rtol=1e-12)
    assert result.rank == np.linalg.matrix_rank(lauchli) == p
    assert result.condition_number == pytest.approx(s[0] / s[-1], rel=1e-12)


@pytest.mark.parametrize("rows", [1, 2, 11, 12, 13])
@pytest.mark.parametrize("center", [False, True])
def test_partitions_of_one_row_and_wider_than_tall(rows: int, center: bool) -> None:
    """12 columns; 1 to 13 rows, each partition a single row (factors of shape
    (1, 13)), or all in one: min(rows, 12) components, equal to NumPy's."""
    rng = np.random.default_rng(14)
    names = [f"x{j}" for j in range(12)]
    X = rng.standard_normal((rows, 12)) * np.linspace(3.0, 0.5, 12)
    frame = pd.DataFrame(X, columns=names)
    _, Z, s, vt = _reference(X, None, center)
    k = min(rows, 12)
    for npartitions in sorted({1, rows}):
        result = shardfit.svd(
            "0 + " + " + ".join(names),
            shardfit.from_pandas(frame, npartitions),
            center=center,
            backend="serial",
        )
        assert result.singular_values.shape == (k,)
        np.testing.assert_allclose(result.singular_values, s[:k], rtol=0, atol=1e-13 * s[0])
        rank = int(np.linalg.matrix_rank(Z)) if Z.any() else 0
        assert result.rank == rank
        np.testing.assert_allclose(result.components_array[:rank], vt[:rank], atol=1e-12)
        scores = result.transform(frame, backend="serial").to_numpy()
        np.testing.assert_allclose(scores[:, :rank], (Z @ vt.T)[:, :rank], atol=1e-12 * s[0])
        u = result.left_singular_vectors(frame, backend="serial")
        assert u.shape == (rows, rank)
        np.testing.assert_allclose(u.to_numpy(), (Z @ vt[:rank].T) / s[:rank], atol=1e-12)


def test_rank_deficient_components_beyond_the_rank() -> None:
    """A combination of columns, a constant column and a full set of dummies: ranks
    equal NumPy's, the null components name the culprits, scores exist on all p
    components (k > rank) while left singular vectors stop at the rank."""
    rng = np.random.default_rng(15)
    frame = pd.DataFrame(rng.standard_normal((200, 2)) * [2.0, 1.0], columns=list("ab"))
    frame["c"] = 3.0 * frame["a"] - frame["b"]
    frame["k"] = 0.1
    frame["g"] = rng.choice(list("xyz"), 200)
    formula = "0 + a + b + c + k + C(g)"
    X = shardfit.dmatrix(formula, frame).to_numpy()
    pca = PCA(svd_solver="full").fit(X)
    for npartitions in (1, 7, 17):
        result = shardfit.svd(
            formula, shardfit.from_pandas(frame, npartitions), center=True, backend="serial"
        )
        _, Z, s, _ = _reference(X, None, True)
        np.testing.assert_allclose(result.singular_values, s, rtol=0, atol=1e-13 * s[0])
        assert result.rank == np.linalg.matrix_rank(Z) == 4
        rank = result.rank
        np.testing.assert_allclose(
            result.explained_variance[:rank], pca.explained_variance_[:rank], rtol=1e-12
        )
        np.testing.assert_allclose(
            result.explained_variance_ratio, pca.explained_variance_ratio_, atol=1e-15
        )
        # The null space is 3-dimensional (its basis is arbitrary): each null
        # component is a direction of no variance, and together they name every
        # column involved.
        null = result.null_columns()
        assert sorted(null) == ["PC5", "PC6", "PC7"]
        assert set().union(*null.values()) == set(result.column_names)
        np.testing.assert_allclose(Z @ result.components_array[rank:].T, 0, atol=1e-12 * s[0])
        assert result.transform(frame, n_components=7, backend="serial").shape == (200, 7)
        assert result.left_singular_vectors(frame, backend="serial").shape == (200, rank)
        with pytest.raises(ValueError, match=r"in \[1, 4\]"):
            result.left_singular_vectors(frame, n_components=5, backend="serial")


@pytest.fixture(scope="module")
def missing_frame() -> pd.DataFrame:
    rng = np.random.default_rng(16)
    n = 170
    frame = pd.DataFrame(rng.standard_normal((n, 3)) * [3.0, 1.0, 0.3], columns=list("abc"))
    frame["g"] = rng.choice(list("xyz"), n)
    frame["w"] = rng.uniform(0.5, 2.0, n)
    frame.loc[[0, 5, 40, 41, 169], "a"] = np.nan
    frame.loc[77, "b"] = np.inf
    frame.loc[100, "g"] = None
    frame.loc[12, "w"] = np.nan  # dropped by a weighted fit and its U, not by the scores
    return frame


def _write_parts(frame: pd.DataFrame, folder: Path, nfiles: int) -> None:
    """``nfiles`` Parquet files, the second of a single row (when there are several)."""
    folder.mkdir()
    if nfiles == 1:
        bounds = [0, len(frame)]
    else:
        rest = np.linspace(61, len(frame), nfiles - 1).round().astype(int)
        bounds = [0, 60, *rest.tolist()]
    for i in range(nfiles):
        part = frame.iloc[bounds[i] : bounds[i + 1]]
        table = pa.Table.from_pandas(part, preserve_index=False)
        pq.write_table(table, folder / f"part-{i:02d}.parquet")


@pytest.mark.parametrize("nfiles", [1, 7, 17])
@pytest.mark.parametrize("weights", [None, "w"])
def test_weighted_centring_with_dropped_rows_on_parquet_serial_and_processes(
    missing_frame: pd.DataFrame, tmp_path, processes, nfiles: int, weights: str | None
) -> None:
    """Rows missing a value (NaN, inf, null level, NaN weight) dropped and counted;
    weighted means subtracted; the processes backend bitwise equal to serial; scores
    and U row-aligned with the data (reindexing gives NaN exactly at dropped rows)."""
    folder = tmp_path / "data"
    _write_parts(missing_frame, folder, nfiles)
    source = shardfit.read_parquet(folder)
    assert source.npartitions == nfiles
    formula = "0 + a + b + c + C(g) + a:c"
    clean = missing_frame.replace([np.inf, -np.inf], np.nan)
    predictors = clean[["a", "b", "c", "g"]].notna().all(axis=1)
    kept = predictors & (clean["w"].notna() if weights else True)
    X = shardfit.dmatrix(formula, missing_frame[kept]).to_numpy()
    w = missing_frame.loc[kept, "w"].to_numpy() if weights else None
    mean, Z, s, vt = _reference(X, w, True)
    serial = shardfit.svd(formula, source, center=True, weights=weights, backend="serial")
    parallel = shardfit.svd(formula, source, center=True, weights=weights, backend=processes)
    assert np.array_equal(serial.singular_values_array, parallel.singular_values_array)
    assert np.array_equal(serial.components_array, parallel.components_array)
    assert serial.nobs == int(kept.sum()) and serial.rows_read == len(missing_frame)
    assert serial.rows_dropped == {"missing": len(missing_frame) - int(kept.sum())}
    np.testing.assert_allclose(serial.mean.to_numpy(), mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(serial.singular_values, s, rtol=0, atol=1e-13 * s[0])
    np.testing.assert_allclose(serial.components_array, vt, atol=1e-11)  # null one too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the dropped rows are announced
        scores = serial.transform(source, backend=processes)
        u = serial.left_singular_vectors(source, backend=processes)
    # Scores need no weight: the row with a NaN weight has one.
    X_scored = shardfit.dmatrix(formula, missing_frame[predictors]).to_numpy()
    full = scores.reindex(range(len(missing_frame)))
    assert np.array_equal(full.isna().all(axis=1).to_numpy(), ~predictors.to_numpy())
    np.testing.assert_allclose(
        full.to_numpy()[predictors.to_numpy()], (X_scored - mean) @ vt.T, atol=1e-12 * s[0]
    )
    # Centred, the full set of dummies sums to a constant: rank 6 of 7 columns.
    rank = serial.rank
    assert rank == np.linalg.matrix_rank(Z) == 6
    assert np.array_equal(u.index.to_numpy(), np.flatnonzero(kept))
    np.testing.assert_allclose(u.to_numpy(), (Z @ vt[:rank].T) / s[:rank], atol=1e-12)
    np.testing.assert_allclose(u.to_numpy().T @ u.to_numpy(), np.eye(rank), atol=1e-12)


def test_scale_terms_give_standard_scaler_pca_up_to_ddof() -> None:
    """``scale()`` divides by the n-1 standard deviation (formulaic's convention, as the
    README says), StandardScaler by n's: the same components and variance shares,
    singular values in the ratio sqrt((n-1)/n)."""
    rng = np.random.default_rng(17)
    n = 400
    frame = pd.DataFrame(
        rng.standard_normal((n, 3)) @ [[1.0, 0.6, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]]
        + [10.0, -3.0, 0.5],
        columns=list("abc"),
    ) * [5.0, 2.0, 0.1]
    result = shardfit.svd(
        "0 + scale(a) + scale(b) + scale(c)",
        shardfit.from_pandas(frame, 7),
        center=True,
        backend="serial",
    )
    pca = PCA(svd_solver="full").fit(StandardScaler().fit_transform(frame.to_numpy()))
    np.testing.assert_allclose(
        result.singular_values, pca.singular_values_ * np.sqrt((n - 1) / n), rtol=1e-12
    )
    np.testing.assert_allclose(result.components_array, pca.components_, atol=1e-12)
    np.testing.assert_allclose(
        result.explained_variance_ratio, pca.explained_variance_ratio_, rtol=1e-12
    )


def test_equals_dask_tsqr_on_a_dask_dataframe() -> None:
    """Dask's ``da.linalg.svd`` (its own TSQR), the README's peer, on the same rows."""
    da = pytest.importorskip("dask.array")
    dd = pytest.importorskip("dask.dataframe")
    rng = np.random.default_rng(18)
    X = rng.standard_normal((700, 4)) * [4.0, 2.0, 1.0, 0.5]
    result = shardfit.svd(
        "0 + a + b + c + d",
        dd.from_pandas(pd.DataFrame(X, columns=list("abcd")), npartitions=7),
        backend="serial",
    )
    _, s, v = da.linalg.svd(da.from_array(X, chunks=(100, 4)))
    s, v = s.compute(), v.compute()
    np.testing.assert_allclose(result.singular_values, s, rtol=1e-12)
    np.testing.assert_allclose(result.components_array, _flip(v), atol=1e-12)
