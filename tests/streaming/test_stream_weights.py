"""stream_fit with sample weights: the learner gets them, every progressive metric and the
benchmark are weighted as scikit-learn's metrics weigh them; checked against a replay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from shardfit import FTRLClassifier, FTRLRegressor, HashingFeaturizer, from_pandas, stream_fit
from shardfit.data.simulate import simulate_table
from shardfit.errors import MissingDataError, SchemaError

BATCH = 500


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    data = simulate_table("logit", 10_250, seed=3).to_pandas()
    rng = np.random.default_rng(5)
    data["w"] = rng.choice([0.0, 0.5, 1.0, 3.0], size=len(data))
    return data


def test_weighted_scores_equal_a_replay_with_sklearn_metrics(frame) -> None:
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**12, degree=2)

    def model() -> SGDClassifier:
        return SGDClassifier(loss="log_loss", random_state=0, learning_rate="adaptive", eta0=0.01)

    result = stream_fit(
        model(), featurizer, from_pandas(frame, 3), target="y", weights="w", batch_rows=BATCH
    )
    twin = model()
    X, y, w = featurizer.transform(frame), frame["y"].to_numpy(), frame["w"].to_numpy()
    rows = []
    for b, start in enumerate(range(0, len(frame), BATCH)):
        part = slice(start, start + BATCH)
        if b:
            p = twin.predict_proba(X[part])[:, 1]
            mean = np.average(y[:start], weights=w[:start])
            yw = {"y_true": y[part], "sample_weight": w[part]}
            rows.append(
                {
                    "weight": w[part].sum(),
                    "log_loss": log_loss(y[part], p, sample_weight=w[part], labels=[0, 1]),
                    "squared_error": np.average((p - y[part]) ** 2, weights=w[part]),
                    "accuracy": accuracy_score(y_pred=(p >= 0.5).astype(int), **yw),
                    "auc": roc_auc_score(y_score=p, **yw),
                    "benchmark_log_loss": log_loss(
                        y[part], np.full(len(p), mean), sample_weight=w[part], labels=[0, 1]
                    ),
                }
            )
        twin.partial_fit(X[part], y[part], classes=[0, 1], sample_weight=w[part])
    expected = pd.DataFrame(rows)
    curve = result.curve
    np.testing.assert_allclose(curve["weight"], expected["weight"], rtol=1e-13)
    for name in ("log_loss", "squared_error", "accuracy", "auc", "benchmark_log_loss"):
        np.testing.assert_allclose(curve[name], expected[name], rtol=1e-11, err_msg=name)
    np.testing.assert_array_equal(twin.coef_, result.estimator.coef_)
    kept = expected.iloc[int(0.7 * len(expected)) :]
    score = np.average(kept["log_loss"], weights=kept["weight"])
    bench = np.average(kept["benchmark_log_loss"], weights=kept["weight"])
    assert result.score == pytest.approx(score, rel=1e-12)
    assert result.benchmark_score == pytest.approx(bench, rel=1e-12)
    auc = np.average(kept["auc"], weights=kept["weight"])
    assert result.scores["auc"] == pytest.approx(auc, rel=1e-12)


@pytest.mark.parametrize("solver", ["ftrl", "adagrad"])
def test_zero_weight_rows_are_not_learned_without_a_penalty(frame, solver) -> None:
    # alpha=0: a row of weight 0 changes nothing, so learning every row with weights
    # in {0, 1} equals learning the rows of weight 1 alone.
    featurizer = HashingFeaturizer(["x1", "x2", "x3"], n_features=2**14, degree=2)
    kept = frame["w"].to_numpy() > 0
    X, y = featurizer.transform(frame), frame["y"].to_numpy()
    for Model in (FTRLClassifier, FTRLRegressor):
        weighted = Model(solver=solver).partial_fit(X, y, sample_weight=kept.astype(float))
        subset = Model(solver=solver).partial_fit(X[kept], y[kept])
        np.testing.assert_allclose(weighted.coef_, subset.coef_, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(weighted.intercept_, subset.intercept_, rtol=1e-14)


def test_weights_scale_the_gradient_and_ones_change_nothing(frame) -> None:
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**12, degree=1)
    X, y = featurizer.transform(frame), frame["y"].to_numpy()
    plain = FTRLRegressor(alpha=1e-4).partial_fit(X, y)
    ones = FTRLRegressor(alpha=1e-4).partial_fit(X, y, sample_weight=np.ones(len(y)))
    np.testing.assert_array_equal(plain.coef_, ones.coef_)
    # One row of weight 2 moves the state as a gradient twice as large: the first
    # FTRL step from zero is w = -eta * g / (beta + |g|) with g = 2 (0 - y).
    single = FTRLRegressor(learning_rate=0.1, beta=1.0, fit_intercept=False)
    single.partial_fit(np.array([[1.0]]), [3.0], sample_weight=[2.0])
    assert single.coef_[0] == pytest.approx(0.1 * 6.0 / (1.0 + 6.0), rel=1e-15)
    fast = stream_fit(
        FTRLClassifier(), featurizer, frame, target="y", weights="w", batch_rows=BATCH
    )
    slow_model = FTRLClassifier()
    for start in range(0, len(frame), BATCH):
        part = slice(start, start + BATCH)
        slow_model.partial_fit(X[part], y[part], sample_weight=frame["w"].to_numpy()[part])
    np.testing.assert_array_equal(fast.estimator.coef_, slow_model.coef_)


def test_bad_weights_are_refused_naming_where(frame) -> None:
    featurizer = HashingFeaturizer(["x1"], n_features=2**10, degree=1)
    bad = frame.copy()
    bad.loc[7_777, "w"] = -1.0
    with pytest.raises(MissingDataError, match=r"negative or non-finite weight -1\.0 .*7777"):
        stream_fit(FTRLClassifier(), featurizer, from_pandas(bad, 3), target="y", weights="w")
    with pytest.raises(SchemaError, match="weight column 'nope'"):
        stream_fit(FTRLClassifier(), featurizer, frame, target="y", weights="nope")
    with pytest.raises(TypeError, match="_Unweighted's does not"):
        stream_fit(_Unweighted(loss="log_loss"), featurizer, frame, target="y", weights="w")
    with pytest.raises(ValueError, match="non-zero"):
        FTRLClassifier().fit(
            featurizer.transform(frame), frame["y"], sample_weight=np.zeros(len(frame))
        )


class _Unweighted(SGDClassifier):
    """A learner whose partial_fit takes no sample_weight (weights would be ignored)."""

    def partial_fit(self, X, y, classes=None):
        return super().partial_fit(X, y, classes=classes)


def test_a_weighted_search_equals_weighted_stream_fits(frame, tmp_path) -> None:
    from shardfit import open_store, search
    from shardfit.streaming.space import build_learner

    grid = {
        "featurizer": {"columns": [["x1", "x2"]], "n_features": [2**10], "degree": [1, 2]},
        "learner": {"estimator": "ftrl", "alpha": [1e-4, 1e-2]},
    }
    data = from_pandas(frame, 2)
    search(grid, data, target="y", weights="w", store=tmp_path / "s.db", batch_rows=BATCH,
           backend="serial", halving={"min_rows": 2 * BATCH, "factor": 2})  # fmt: skip
    with open_store(tmp_path / "s.db") as store:
        records = store.results()
        best = store.best(4)
    assert len(records) == 4
    for record in best:
        alone = stream_fit(
            build_learner(record.params["learner"]),
            HashingFeaturizer(**record.params["featurizer"]),
            data,
            target="y",
            weights="w",
            batch_rows=BATCH,
        )
        if record.rows == len(frame):  # the survivor ran to the end
            assert record.score == alone.score  # bitwise: the same weighted batches
    # A store written with weights refuses to resume without them.
    with pytest.raises(Exception, match="weights"):
        search(grid, data, target="y", store=tmp_path / "s.db", batch_rows=BATCH,
               backend="serial", halving={"min_rows": 2 * BATCH, "factor": 2})  # fmt: skip


def test_a_rung_with_no_score_yet_drops_no_configuration(frame, tmp_path) -> None:
    """Every batch before the first halving checkpoint has zero weight: no
    configuration has a score there, so none is dropped (a choice by key would drop
    half of them on no evidence); the next rung halves on real scores."""
    from shardfit import open_store, search

    data = frame.copy()
    data.loc[: 2 * BATCH - 1, "w"] = 0.0  # the first rung's rows (min_rows = 2 batches)
    grid = {
        "featurizer": {"columns": [["x1", "x2"]], "n_features": [2**10], "degree": [1, 2]},
        "learner": {"estimator": "ftrl", "alpha": [1e-4, 1e-2]},
    }
    summary = search(grid, from_pandas(data, 2), target="y", weights="w",
                     store=tmp_path / "s.db", batch_rows=BATCH, backend="serial", drop=0.0,
                     halving={"min_rows": 2 * BATCH, "factor": 2})  # fmt: skip
    assert summary.rungs[0] == {"rows": 2 * BATCH, "configurations": 4, "kept": 4}
    assert summary.rungs[1]["configurations"] == 4
    assert summary.rungs[1]["kept"] == 2
    with open_store(tmp_path / "s.db") as store:
        results = store.results()
    dropped = results[results["status"] == "dropped"]
    # Two at the second checkpoint, one at the third; one ran to the end.
    assert sorted(dropped["rows"]) == [4 * BATCH, 4 * BATCH, 8 * BATCH]
    assert list(results.loc[results["status"] == "done", "rows"]) == [len(data)]
