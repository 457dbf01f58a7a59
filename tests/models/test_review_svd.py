"""Review of ``shardfit.svd`` on awkward data: extreme scales, partitions with fewer
rows than columns, malformed CSV lines, failed out-of-core transforms.

References: NumPy's SVD and ``matrix_rank`` and scikit-learn's ``PCA`` of the same
design in memory. The SVD is scale-equivariant (``svd(c X) = c svd(X)`` exactly when
``c`` is a power of two, and to rounding otherwise), so the variance shares of a
design scaled by 1e160 or 1e-200 must equal those of the unscaled design.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

import shardfit
from shardfit.errors import UnseenLevelError

FORMULA = "0 + a + b + c"


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    rng = np.random.default_rng(5)
    mixing = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.0, 0.0, 2.0]])
    return rng.standard_normal((200, 3)) @ mixing


@pytest.mark.parametrize("center", [False, True])
@pytest.mark.parametrize("scale", [1e160, 1e-200])
def test_extreme_scales_keep_rank_and_variance_shares(
    base: np.ndarray, scale: float, center: bool
) -> None:
    """Columns of 1e160 once gave rank 0 (an infinite tolerance: the column norms
    overflowed) and NaN variance shares (``s**2`` overflowed, or underflowed at 1e-200)."""
    values = base * scale
    result = shardfit.svd(
        FORMULA,
        shardfit.from_pandas(pd.DataFrame(values, columns=list("abc")), 3),
        center=center,
        backend="serial",
    )
    z = values - values.mean(axis=0) if center else values
    s = np.linalg.svd(z, compute_uv=False)
    np.testing.assert_allclose(result.singular_values, s, rtol=1e-12)
    assert np.isfinite(result.tolerance) and result.tolerance > 0
    assert result.rank == np.linalg.matrix_rank(z) == 3
    assert result.condition_number == pytest.approx(s[0] / s[-1], rel=1e-12)
    unscaled = base - base.mean(axis=0) if center else base
    s1 = np.linalg.svd(unscaled, compute_uv=False)
    np.testing.assert_allclose(result.explained_variance_ratio, s1**2 / np.sum(s1**2), rtol=1e-12)
    if center:
        pca = PCA(svd_solver="full").fit(base)
        np.testing.assert_allclose(
            result.explained_variance_ratio, pca.explained_variance_ratio_, rtol=1e-12
        )
    assert "nan" not in result.summary()


@pytest.mark.parametrize("npartitions", [1, 5])
def test_fewer_rows_than_columns_in_every_partition(npartitions: int) -> None:
    """10 rows, 6 columns, partitions of 2 rows: each partition's factor is wider than
    tall; 4 rows overall (n < p): 4 components, the last one null when centred."""
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(rng.standard_normal((10, 6)), columns=list("abcdef"))
    formula = "0 + a + b + c + d + e + f"
    for rows in (10, 4):
        data = frame.head(rows)
        pca = PCA(svd_solver="full").fit(data.to_numpy())
        source = shardfit.from_pandas(data, min(npartitions, rows))
        result = shardfit.svd(formula, source, center=True, backend="serial")
        assert result.components_array.shape == pca.components_.shape == (min(rows, 6), 6)
        s = pca.singular_values_
        np.testing.assert_allclose(result.singular_values, s, rtol=0, atol=1e-13 * s[0])
        keep = s > 1e-8 * s[0]
        np.testing.assert_allclose(
            result.components_array[keep], pca.components_[keep], rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(
            result.explained_variance[keep], pca.explained_variance_[keep], rtol=1e-12
        )
        assert result.rank == np.linalg.matrix_rank(data.to_numpy() - data.to_numpy().mean(0))
        raw = shardfit.svd(formula, source, backend="serial")
        np.testing.assert_allclose(
            raw.singular_values, np.linalg.svd(data.to_numpy(), compute_uv=False), rtol=1e-12
        )


def test_summary_says_how_many_malformed_lines_were_skipped(base: np.ndarray, tmp_path) -> None:
    """The summary said "rows used: 200 of 200 read" and nothing of the 2 lines the CSV
    reader skipped."""
    lines = ["a,b,c", *(",".join(repr(float(v)) for v in row) for row in base)]
    lines.insert(11, "1.0,2.0")  # too few fields
    lines.insert(120, "1,2,3,4,5")  # too many
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    source = shardfit.read_csv(path, on_bad_lines="skip", partition_bytes=3000)
    assert source.npartitions >= 3
    result = shardfit.svd(FORMULA, source, center=True, backend="serial")
    assert (result.rows_read, result.rows_skipped, result.nobs) == (200, 2, 200)
    pca = PCA(svd_solver="full").fit(base)  # repr() round-trips float64 exactly
    np.testing.assert_allclose(result.singular_values, pca.singular_values_, rtol=1e-12)
    assert "rows used: 200 of 200 read; 2 malformed lines skipped" in result.summary()
    loaded = shardfit.load_results(result.save(tmp_path / "pca.json"))
    assert loaded.summary() == result.summary()


def test_failed_transform_removes_the_directories_it_made(tmp_path) -> None:
    """``out=`` with missing parents: a failure removed the last directory only and left
    its parents, made by the same call, behind."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.standard_normal((30, 2)), columns=["a", "b"])
    frame["g"] = rng.choice(["x", "y"], 30)
    result = shardfit.svd("0 + a + b + C(g)", frame, center=True, backend="serial")
    bad = frame.copy()
    bad.loc[25, "g"] = "unseen"
    source = shardfit.from_pandas(bad, 3)
    with pytest.raises(UnseenLevelError, match="'unseen' is not among the 2 levels"):
        result.transform(source, out=tmp_path / "new" / "deeper" / "scores", backend="serial")
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(UnseenLevelError):
        result.transform(source, out=tmp_path / "kept" / "scores", backend="serial")
    assert (tmp_path / "kept").is_dir() and not (tmp_path / "kept" / "scores").exists()
    # And the good data still goes where it was asked to.
    written = result.transform(frame, out=tmp_path / "new" / "scores", backend="serial")
    scores = pd.read_parquet(written / "part-00000.parquet")
    expected = result.transform(frame, backend="serial")
    np.testing.assert_array_equal(scores[list(expected.columns)].to_numpy(), expected.to_numpy())


def test_n_components_rejects_bools(base: np.ndarray) -> None:
    """``n_components=True`` was taken as 1 (a bool is an int)."""
    frame = pd.DataFrame(base, columns=list("abc"))
    result = shardfit.svd(FORMULA, frame, center=True, backend="serial")
    with pytest.raises(ValueError, match=r"'n_components' parameter must be an int in \[1, 3\]"):
        result.transform(frame, n_components=True, backend="serial")
    two = result.transform(frame, n_components=2, backend="serial")
    pca = PCA(n_components=2, svd_solver="full").fit(base)
    np.testing.assert_allclose(two.to_numpy(), pca.transform(base), rtol=0, atol=1e-12)
