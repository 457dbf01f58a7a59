"""Review of the streaming learners as a scikit-learn user would use them (review 2).

Each test pins a defect found by the review against an independent reference:
scikit-learn's ``ElasticNet`` and ``log_loss``, a summed CSR matrix, or the same
estimator fed by hand.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.linear_model import ElasticNet, SGDClassifier, SGDRegressor
from sklearn.metrics import log_loss

from shardfit import (
    FTRLClassifier,
    FTRLRegressor,
    HashingFeaturizer,
    open_store,
    read_csv,
    search,
    stream_fit,
)
from shardfit.streaming.persist import dump_model, load_model

BATCH = 500


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261201)
    n = 4_000
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], n),
        }
    )
    eta = 0.5 * data["x1"] - data["x2"] + 0.7 * (data["g"] == "b")
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return data


@pytest.fixture(scope="module")
def featurizer() -> HashingFeaturizer:
    return HashingFeaturizer(["x1", "x2", "g"], n_features=2**10, degree=2)


# --- class weights keep their integer labels through JSON ---------------------------


def test_class_weight_survives_the_search_space_and_the_store(frame, featurizer, tmp_path) -> None:
    weights = {0: 1.0, 1: 3.0}
    space = {
        "featurizer": featurizer.get_params(),
        "learner": {
            "estimator": "sgd",
            "loss": "log_loss",
            "random_state": 0,
            "class_weight": weights,
        },
    }
    store = tmp_path / "weights.db"
    # Before the fix: "The classes, [0, 1], are not in class_weight" (JSON made the keys
    # "0" and "1").
    search(space, frame, target="y", store=store, batch_rows=BATCH, backend="serial")
    reference = SGDClassifier(loss="log_loss", random_state=0, class_weight=weights)
    expected = stream_fit(reference, featurizer, frame, target="y", batch_rows=BATCH)
    with open_store(store) as db:
        (best,) = db.best(1)
        assert best.score == expected.score
        learner = db.model(best.key).named_steps["learner"]
    assert learner.class_weight == weights
    np.testing.assert_array_equal(learner.coef_, reference.coef_)


def test_a_loaded_weighted_sgd_learns_on_like_the_original(frame, featurizer) -> None:
    X, y = featurizer.transform(frame), frame["y"].to_numpy()
    original = SGDClassifier(random_state=0, class_weight={0: 1.0, 1: 3.0})
    original.partial_fit(X[:2000], y[:2000], classes=[0, 1])
    loaded = load_model(*dump_model(featurizer, original)).named_steps["learner"]
    original.partial_fit(X[2000:], y[2000:])
    loaded.partial_fit(X[2000:], y[2000:])
    np.testing.assert_array_equal(loaded.coef_, original.coef_)
    np.testing.assert_array_equal(loaded.intercept_, original.intercept_)


# --- AdaGrad charges the penalty on every row, as scikit-learn's SGD ----------------


@pytest.fixture(scope="module")
def rare_design() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Three dense columns and a one-hot level present in 5% of the rows."""
    rng = np.random.default_rng(1)
    n = 4_000
    X = np.column_stack([rng.normal(size=(n, 3)), (rng.random(n) < 0.05).astype(float)])
    y = X @ np.array([1.0, -0.5, 0.0, 2.0]) + 0.3 + 0.5 * rng.normal(size=n)
    return sp.csr_matrix(X), X, y


@pytest.mark.parametrize("solver", ["ftrl", "adagrad"])
def test_online_elastic_net_converges_to_scikit_learns(rare_design, solver) -> None:
    Xs, X, y = rare_design
    alpha, l1_ratio = 0.05, 0.5
    # scikit-learn's ElasticNet minimizes the same objective as the online learners:
    # mean squared error / 2 + alpha * (l1_ratio |w|_1 + (1 - l1_ratio) |w|^2 / 2).
    reference = ElasticNet(alpha=alpha, l1_ratio=l1_ratio, tol=1e-12, max_iter=100_000).fit(X, y)
    model = FTRLRegressor(alpha=alpha, l1_ratio=l1_ratio, solver=solver)
    for _ in range(100):  # epochs
        model.partial_fit(Xs, y)
    # Before the fix AdaGrad penalized the rare column on its 5% of rows only and
    # reached 1.93 for it where the elastic net has 1.01.
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=0.01)
    assert model.intercept_ == pytest.approx(reference.intercept_, abs=0.01)
    # The weights read out and the predictions agree (pending penalties included).
    np.testing.assert_allclose(model.predict(Xs), Xs @ model.coef_ + model.intercept_, atol=1e-12)


def test_adagrad_state_travels_with_the_model(rare_design, featurizer) -> None:
    Xs, _, y = rare_design
    original = FTRLRegressor(alpha=0.05, solver="adagrad").partial_fit(Xs[:3000], y[:3000])
    loaded = load_model(*dump_model(featurizer, original)).named_steps["learner"]
    np.testing.assert_array_equal(loaded.coef_, original.coef_)
    original.partial_fit(Xs[3000:], y[3000:])
    loaded.partial_fit(Xs[3000:], y[3000:])
    np.testing.assert_array_equal(loaded.coef_, original.coef_)
    assert loaded.intercept_ == original.intercept_


# --- colliding hashed terms are one feature -----------------------------------------


@pytest.mark.parametrize("solver", ["ftrl", "adagrad"])
def test_colliding_entries_learn_as_their_sum(solver) -> None:
    rng = np.random.default_rng(3)
    n, width = 300, 8
    columns = rng.integers(0, width, size=(n, 3))  # three terms a row, often colliding
    values = rng.normal(size=(n, 3))
    indptr = np.arange(0, 3 * n + 1, 3)
    duplicated = sp.csr_matrix((values.ravel(), columns.ravel(), indptr), shape=(n, width))
    summed = duplicated.copy()
    summed.sum_duplicates()
    assert summed.nnz < duplicated.nnz
    y = summed @ rng.normal(size=width) + rng.normal(size=n)
    a = FTRLRegressor(alpha=1e-3, solver=solver).partial_fit(duplicated, y)
    b = FTRLRegressor(alpha=1e-3, solver=solver).partial_fit(summed, y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(a.predict(duplicated), b.predict(summed), rtol=1e-12)


# --- progressive validation scores -----------------------------------------------


def test_log_loss_of_saturated_predictions_is_scikit_learns(frame, featurizer) -> None:
    # SGDClassifier's default schedule saturates its probabilities at 0 and 1 on
    # early batches: the loss then depends on the clipping, which must be sklearn's.
    estimator = SGDClassifier(loss="log_loss", random_state=0)
    result = stream_fit(estimator, featurizer, frame, target="y", batch_rows=BATCH, drop=0.0)
    twin = SGDClassifier(loss="log_loss", random_state=0)
    X, y = featurizer.transform(frame), frame["y"].to_numpy()
    losses, sizes = [], []
    for start in range(0, len(y), BATCH):
        part = slice(start, start + BATCH)
        if start:
            p = twin.predict_proba(X[part])[:, 1]
            losses.append(log_loss(y[part], p, labels=[0, 1]))
            sizes.append(len(y[part]))
        twin.partial_fit(X[part], y[part], classes=[0, 1])
    assert np.isin(twin.predict_proba(X)[:, 1], [0.0, 1.0]).any()  # saturated
    np.testing.assert_allclose(result.curve["log_loss"], losses, rtol=1e-12)
    assert result.score == pytest.approx(np.average(losses, weights=sizes), rel=1e-12)


@pytest.mark.parametrize(
    ("estimator", "scoring"),
    [
        (SGDRegressor(), "auc"),
        (FTRLRegressor(), "log_loss"),
        (SGDClassifier(loss="hinge"), "log_loss"),
        (FTRLClassifier(loss="hinge"), "squared_error"),
    ],
)
def test_a_scoring_the_estimator_cannot_give_raises(frame, featurizer, estimator, scoring) -> None:
    # Before: every score and the improvement were NaN, without a word.
    with pytest.raises(ValueError, match=f"scoring='{scoring}' does not apply"):
        stream_fit(estimator, featurizer, frame, target="y", batch_rows=BATCH, scoring=scoring)


# --- malformed rows the reader skipped are counted ----------------------------------


def test_rows_the_csv_reader_skipped_are_reported(tmp_path) -> None:
    rng = np.random.default_rng(5)
    lines = ["x1,y"] + [f"{rng.normal():.6f},{int(rng.random() < 0.5)}" for _ in range(1_200)]
    lines[100] = "1.0,0,an,extra,field"
    lines[900] = "too-few"
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    featurizer = HashingFeaturizer(["x1"], n_features=16)
    source = read_csv(path, on_bad_lines="skip")
    with pytest.warns(UserWarning, match="skipped 2 malformed row"):
        result = stream_fit(FTRLClassifier(), featurizer, source, target="y", batch_rows=BATCH)
    assert (result.rows, result.rows_skipped) == (1_198, 2)
    assert "rows_skipped=2" in repr(result)
    # The rows learned are the good ones, in order.
    good = pd.read_csv(io.StringIO("\n".join(lines[:100] + lines[101:900] + lines[901:])))
    expected = stream_fit(FTRLClassifier(), featurizer, good, target="y", batch_rows=BATCH)
    pd.testing.assert_frame_equal(result.curve, expected.curve)
    assert expected.rows_skipped == 0
