"""Review of the stacked ensembles (session 12): prediction of a large X runs on the
backend in blocks of rows, the same bits as serial and as scikit-learn's stacking;
a two-layer weighted stack equals scikit-learn's nested stacking on processes."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeRegressor

from shardfit.models import ensemble_jobs
from shardfit.models._ensemble_testing import PidRegressor
from shardfit.models.ensemble import StackingEnsembleClassifier, StackingEnsembleRegressor
from shardfit.models.ensemble_jobs import PREDICT_BLOCK_BYTES, row_blocks

NCOLS = 16
SMALL_BLOCK = 2**18  # 256 KiB blocks in these tests, so that prediction stays fast
NBIG = 7 * SMALL_BLOCK // (8 * NCOLS) + 5  # 8 blocks


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    return np.random.default_rng(12).normal(size=(NBIG, NCOLS))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 256 KiB instead of 32 MiB: the same code on an X that fits a test."""
    monkeypatch.setattr(ensemble_jobs, "PREDICT_BLOCK_BYTES", SMALL_BLOCK)


def test_row_blocks_depend_on_the_shape_alone() -> None:
    nrows = 2 * PREDICT_BLOCK_BYTES // (8 * NCOLS) + 5  # just over two 32 MiB blocks
    blocks = row_blocks(nrows, NCOLS)
    assert len(blocks) == 3 and blocks[0][0] == 0 and blocks[-1][1] == nrows
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    assert max(stop - start for start, stop in blocks) * 8 * NCOLS <= PREDICT_BLOCK_BYTES
    two = nrows - 10  # two blocks of 32 MiB at most
    assert row_blocks(two, NCOLS) == [(0, two // 2), (two // 2, two)]
    assert row_blocks(1000, NCOLS) == [(0, 1000)]


def test_large_predict_runs_on_the_workers_in_blocks(
    big, processes, tmp_path, small_blocks
) -> None:
    """The old transform ran every row on the driver (the pid column was the
    driver's for all rows)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, NCOLS))
    y = X[:, 0] - 2 * X[:, 1] + rng.normal(size=120)
    layer = [("pid", PidRegressor()), ("ridge", Ridge(alpha=1.0))]
    cv = KFold(3, shuffle=True, random_state=0)
    model = StackingEnsembleRegressor(
        layer, final_estimator=Ridge(), cv=cv, backend=processes, cache_dir=tmp_path
    ).fit(X, y)
    features = model.transform(big)
    pids = features[:, 0]
    blocks = row_blocks(*big.shape)
    assert len(blocks) == 8
    for start, stop in blocks:  # one worker computed each block
        assert np.unique(pids[start:stop]).size == 1
    workers = set(pids.astype(int))
    assert os.getpid() not in workers and 1 <= len(workers) <= 2
    assert list(tmp_path.iterdir()) == []  # the shared prediction input is gone
    # The ridge column: the all-rows Ridge's predictions, as computed in memory.
    reference = Ridge(alpha=1.0).fit(X, y).predict(big)
    np.testing.assert_allclose(features[:, 1], reference, rtol=1e-12, atol=1e-12)
    # A small X stays on the driver.
    assert set(model.transform(big[:50])[:, 0].astype(int)) == {os.getpid()}


def test_large_predict_is_bitwise_the_same_on_every_backend(
    big, processes, tmp_path, small_blocks
) -> None:
    X, codes = make_classification(
        n_samples=300, n_features=NCOLS, n_informative=5, n_classes=3, random_state=2
    )
    labels = np.array(["owl", "cat", "bee"])[codes]
    base = [("lr", LogisticRegression(max_iter=1000)), ("nb", GaussianNB())]
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    final = LogisticRegression(C=0.5)
    reference = StackingClassifier(base, final_estimator=final, cv=cv, passthrough=True)
    reference.fit(X, labels)
    outputs = []
    for backend in ("serial", processes, "threads"):
        model = StackingEnsembleClassifier(
            base,
            final_estimator=final,
            cv=cv,
            passthrough=True,
            backend=backend,
            workers=2 if backend == "threads" else None,
            cache_dir=tmp_path,
        ).fit(X, labels)
        outputs.append((model.transform(big), model.predict_proba(big), model.predict(big)))
    # The whole of X at once (the old driver-only transform) differs from the blocks
    # in the last bit of a few values (BLAS blocks by the number of rows): 2 of 315,502.
    whole = ensemble_jobs.stack_features(
        [list(fitted.values()) for fitted in model.layers_], model.stack_method_, 3, True, big
    )
    np.testing.assert_allclose(outputs[0][0], whole, rtol=0, atol=1e-15)
    for other in outputs[1:]:
        for a, b in zip(outputs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(outputs[0][0], reference.transform(big), rtol=0, atol=1e-12)
    np.testing.assert_allclose(outputs[0][1], reference.predict_proba(big), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(outputs[0][2], reference.predict(big))
    assert list(tmp_path.iterdir()) == []


def test_two_weighted_layers_equal_nested_sklearn_stacking(processes) -> None:
    """scikit-learn's multi-layer stack: a StackingRegressor as final estimator."""
    X, y = make_regression(n_samples=157, n_features=5, noise=4.0, random_state=3)
    w = np.random.default_rng(1).uniform(0.1, 2.0, size=len(y))
    cv = KFold(4, shuffle=True, random_state=0)
    first = [
        ("ridge", Ridge(alpha=3.0)),
        ("tree", DecisionTreeRegressor(max_depth=3, random_state=0)),
        ("ols", LinearRegression()),
    ]
    second = [
        ("ridge2", Ridge(alpha=0.5)),
        ("tree2", DecisionTreeRegressor(max_depth=2, random_state=0)),
    ]
    inner = StackingRegressor(second, final_estimator=Ridge(alpha=1.0), cv=cv)
    reference = StackingRegressor(first, final_estimator=inner, cv=cv).fit(X, y, sample_weight=w)
    models = [
        StackingEnsembleRegressor(
            [first, second], final_estimator=Ridge(alpha=1.0), cv=cv, backend=backend
        ).fit(X, y, sample_weight=w)
        for backend in ("serial", processes)
    ]
    expected = reference.final_estimator_.transform(reference.transform(X))
    np.testing.assert_allclose(models[0].transform(X), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(models[0].predict(X), reference.predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(models[0].predict(X), models[1].predict(X))


def test_a_value_that_is_not_a_number_is_located() -> None:
    """The message said only "could not convert string to float: 'y'"."""
    import pandas as pd

    y = np.arange(20.0)
    frame = pd.DataFrame({"a": y, "b": ["1.5", "y"] * 10, "c": y})
    model = StackingEnsembleRegressor([("ridge", Ridge())], cv=3, backend="serial")
    with pytest.raises(ValueError, match=r"numbers \(column 'b', row 1: 'y'\)"):
        model.fit(frame, y)
    model.fit(frame[["a", "c"]].to_numpy(), y)
    X = np.column_stack([y, y]).astype(object)
    X[7, 1] = "oops"
    with pytest.raises(ValueError, match=r"numbers \(column 1, row 7: 'oops'\)"):
        model.predict(X)


def test_serial_blocks_round_as_the_workers_do(processes, monkeypatch) -> None:
    """Serial prediction used the driver's BLAS threads: X @ coef over 16,389 x 64
    rows rounded 4 values differently with 2 threads than the one-thread workers."""
    rows, cols = 16_389, 64
    monkeypatch.setattr(ensemble_jobs, "PREDICT_BLOCK_BYTES", rows * cols * 8)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, cols))
    y = X @ rng.normal(size=cols) + rng.normal(size=200)
    big = rng.normal(size=(2 * rows, cols))
    layer = [("ridge", Ridge(alpha=0.1)), ("ols", LinearRegression())]
    outputs = []
    for backend in ("serial", processes):
        model = StackingEnsembleRegressor(layer, cv=3, backend=backend).fit(X, y)
        outputs.append(model.transform(big))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    reference = np.column_stack([est.fit(X, y).predict(big) for _, est in layer])
    np.testing.assert_allclose(outputs[0], reference, rtol=1e-12, atol=1e-12)
