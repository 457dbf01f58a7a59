"""The ensemble's job scheduling: shared inputs written once and removed on exit, job
descriptions, and one job run here against the same fit done in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from shardfit.models.ensemble_jobs import CACHE_PREFIX, FoldJob, SharedArrays, fit_job


def test_shared_arrays_write_once_map_read_only_and_always_go(tmp_path: Path) -> None:
    X = np.arange(12.0).reshape(4, 3)
    with pytest.raises(RuntimeError, match="boom"), SharedArrays(tmp_path) as shared:
        path = Path(shared.write("X", X))
        assert path.parent.name.startswith(CACHE_PREFIX) and path.parent.parent == tmp_path
        assert path.stat().st_size == 128 + X.nbytes  # the .npy header, then the bytes
        mapped = np.load(path, mmap_mode="r")
        assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
        np.testing.assert_array_equal(mapped, X)
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_fold_job_fits_its_rows_and_predicts_the_held_out_ones(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(np.int64)
    train, test = np.arange(10, 40), np.arange(10)
    with SharedArrays(tmp_path) as shared:
        paths = [shared.write(n, a) for n, a in (("X", X), ("y", y), ("tr", train), ("te", test))]
        job = FoldJob(2, "lr", LogisticRegression(), 0, "predict_proba", *paths)
        assert job.key == "layer 2, estimator 'lr', fold 0"
        np.testing.assert_array_equal(job.read().table["row"].to_numpy(), train)
        result = fit_job(job)
        refit = fit_job(FoldJob(2, "lr", LogisticRegression(), None, "predict_proba", *paths[:2]))
    expected = LogisticRegression().fit(X[train], y[train]).predict_proba(X[test])
    np.testing.assert_array_equal(result.predictions, expected)
    assert result.estimator is None and refit.predictions is None
    np.testing.assert_array_equal(refit.estimator.coef_, LogisticRegression().fit(X, y).coef_)
    assert list(tmp_path.iterdir()) == []
