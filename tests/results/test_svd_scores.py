"""``SVDResults.transform`` and ``left_singular_vectors``: scores and ``U`` equal
scikit-learn's and NumPy's, in memory and written out of core as Parquet parts.

Scores and ``U`` are products of the data with components accurate to ~1e-14 (see
tests/models/test_svd.py), so they agree to ~1e-13 absolute; we assert 1e-10.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.decomposition import PCA

import shardfit
from shardfit.errors import PartitionTaskError, UnseenLevelError

FORMULA = "0 + a + b + c + d:c + C(cat1)"
ATOL = 1e-10


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    rows = 1800
    frame = pd.DataFrame(
        rng.standard_normal((rows, 4)) * [1.0, 2.0, 0.5, 3.0], columns=list("abcd")
    )
    frame["cat1"] = rng.choice(["x", "y", "z"], rows)
    frame["w"] = rng.uniform(0.5, 2.0, rows)
    return frame


@pytest.fixture(scope="module")
def parquet(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("svd") / "data.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=400)
    return path


@pytest.fixture(scope="module")
def design(frame: pd.DataFrame) -> np.ndarray:
    return shardfit.dmatrix(FORMULA, frame).to_numpy()


@pytest.fixture(scope="module")
def pca_result(parquet: Path):
    return shardfit.svd(FORMULA, shardfit.read_parquet(parquet), center=True, backend="serial")


def _u_with_sklearn_signs(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NumPy's thin ``U`` and ``Vt``, each component's sign set as scikit-learn does."""
    u, _, vt = np.linalg.svd(centred, full_matrices=False)
    signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
    return u * signs, vt * signs[:, None]


def test_scores_equal_sklearn_transform(frame, design, pca_result) -> None:
    pca = PCA(svd_solver="full").fit(design)
    scores = pca_result.transform(frame, backend="serial")
    assert list(scores.columns) == pca_result.component_names
    assert np.array_equal(scores.index.to_numpy(), np.arange(len(frame)))
    np.testing.assert_allclose(scores.to_numpy(), pca.transform(design), rtol=0, atol=ATOL)
    two = pca_result.transform(frame.head(30), n_components=2, backend="serial")
    np.testing.assert_allclose(two.to_numpy(), pca.transform(design[:30])[:, :2], atol=ATOL)
    with pytest.raises(ValueError, match="'n_components' parameter must be an int in"):
        pca_result.transform(frame, n_components=0, backend="serial")


def test_left_singular_vectors_equal_numpy_u(frame, parquet, design, pca_result) -> None:
    u, _ = _u_with_sklearn_signs(design - design.mean(0))
    k = pca_result.rank
    assert k == design.shape[1] - 1  # the three dummies sum to one: centred, rank p - 1
    got = pca_result.left_singular_vectors(shardfit.read_parquet(parquet), backend="serial")
    assert got.shape == (len(frame), k)
    np.testing.assert_allclose(got.to_numpy(), u[:, :k], rtol=0, atol=ATOL)
    np.testing.assert_allclose(got.to_numpy().T @ got.to_numpy(), np.eye(k), atol=1e-12)
    with pytest.raises(ValueError, match=rf"in \[1, {k}\]"):
        pca_result.left_singular_vectors(frame, n_components=k + 1, backend="serial")


def test_weighted_left_singular_vectors(frame, design) -> None:
    result = shardfit.svd(FORMULA, shardfit.from_pandas(frame, 3), weights="w", backend="serial")
    root = np.sqrt(frame["w"].to_numpy())[:, None]
    u, _ = _u_with_sklearn_signs(root * design)
    got = result.left_singular_vectors(frame, backend="serial")
    np.testing.assert_allclose(got.to_numpy(), u, rtol=0, atol=ATOL)
    w = frame["w"].to_numpy()
    centred = shardfit.svd(FORMULA, frame, weights="w", center=True, backend="serial")
    u, _ = _u_with_sklearn_signs(root * (design - (w @ design) / w.sum()))
    k = centred.rank
    got = centred.left_singular_vectors(shardfit.from_pandas(frame, 4), backend="serial")
    np.testing.assert_allclose(got.to_numpy(), u[:, :k], rtol=0, atol=ATOL)
    # Scores do not need (or read) the weight column.
    scores = result.transform(frame.drop(columns="w"), backend="serial")
    np.testing.assert_allclose(scores.to_numpy(), design @ result.components_array.T, atol=ATOL)


def test_out_of_core_scores_written_as_parquet(frame, parquet, pca_result, tmp_path) -> None:
    out = tmp_path / "scores"
    source = shardfit.read_parquet(parquet)
    assert pca_result.transform(source, out=out, backend="processes", workers=2) == out
    parts = sorted(p.name for p in out.glob("part-*.parquet"))
    assert len(parts) == source.npartitions == 5
    table = pq.read_table(out)  # pyarrow skips _manifest.json
    assert table.column_names == ["row", *pca_result.component_names]
    written = table.to_pandas().set_index("row")
    expected = pca_result.transform(frame, backend="serial")
    assert np.array_equal(written.index.to_numpy(), np.arange(len(frame)))
    np.testing.assert_allclose(written.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-14)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["rows_written"] == len(frame) and manifest["files"] == parts
    with pytest.raises(FileExistsError, match="new or empty directory"):
        pca_result.transform(source, out=out, backend="serial")


def test_missing_rows_dropped_counted_and_positioned(frame, pca_result, tmp_path) -> None:
    holes = frame.copy()
    holes.loc[[3, 900], "b"] = np.nan
    with pytest.warns(UserWarning, match="2 of 1,800 rows .* have no scores"):
        scores = pca_result.transform(shardfit.from_pandas(holes, 3), backend="serial")
    assert 3 not in scores.index and 900 not in scores.index and len(scores) == 1798
    with pytest.warns(UserWarning, match="have no left singular vectors"):
        out = pca_result.left_singular_vectors(holes, out=tmp_path / "u", backend="serial")
    rows = pq.read_table(out).column("row").to_numpy()
    assert np.array_equal(rows, np.setdiff1d(np.arange(len(frame)), [3, 900]))


def test_failed_partition_removes_the_output(frame, pca_result, tmp_path) -> None:
    bad = frame.copy()
    bad.loc[1500, "cat1"] = "never seen"
    source = shardfit.from_pandas(bad, 4)  # the last partition fails, after three wrote
    out = tmp_path / "new" / "scores"
    with pytest.raises((UnseenLevelError, PartitionTaskError), match="unseen level"):
        pca_result.transform(source, out=out, backend="serial")
    assert not out.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises((UnseenLevelError, PartitionTaskError), match="unseen level"):
        pca_result.transform(source, out=existing, backend="serial")
    assert existing.is_dir() and not any(existing.iterdir())
    # unseen="zero" encodes the unseen level as zeros instead.
    scores = pca_result.transform(source, unseen="zero", backend="serial")
    assert len(scores) == len(frame)
