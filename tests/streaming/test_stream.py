"""stream_fit: progressive validation on `shardfit simulate logit` data, against references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.metrics import log_loss, roc_auc_score

from shardfit import FTRLClassifier, FTRLRegressor, HashingFeaturizer, from_pandas, stream_fit
from shardfit.data.simulate import simulate, simulate_table, true_params
from shardfit.errors import DesignError, MissingDataError, SchemaError

ROWS = 100_000
BATCH = 1000
TRUE_COLUMNS = ["x1", "x2", "x3", "x1_x2", "x1_x3", "x2_x3", "x1_sq", "x2_sq", "x3_sq"]
# Hashed term name -> the simulator's name for the same term.
TERMS = {
    "x1": "x1", "x2": "x2", "x3": "x3", "x1*x2": "x1:x2", "x1*x3": "x1:x3", "x2*x3": "x2:x3",
    "x1^2": "I(x1 ** 2)", "x2^2": "I(x2 ** 2)", "x3^2": "I(x3 ** 2)",
}  # fmt: skip


@pytest.fixture(scope="module")
def logit_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("logit") / "logit.parquet"
    simulate("logit", ROWS, path, seed=0, chunk_rows=30_000)  # 4 row groups
    return str(path)


@pytest.fixture(scope="module")
def frame(logit_file) -> pd.DataFrame:
    return pq.read_table(logit_file).to_pandas()


def _scored_rows(n: int, drop: float) -> slice:
    """The rows the mean score covers: batches after the first and the dropped fraction."""
    scored = -(-n // BATCH) - 1
    return slice(BATCH * (1 + int(drop * scored)), n)


@pytest.mark.parametrize("solver", ["ftrl", "adagrad"])
def test_hashed_sgd_reaches_the_in_memory_logistic_regression(logit_file, frame, solver) -> None:
    featurizer = HashingFeaturizer(["x1", "x2", "x3"], n_features=2**20, degree=2)
    result = stream_fit(FTRLClassifier(solver=solver), featurizer, logit_file, target="y")
    # The reference: logistic regression in memory on the true quadratic terms, scored
    # in-sample (it has seen every row; the stream had not seen the rows it scored).
    reference = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000)
    reference.fit(frame[TRUE_COLUMNS], frame["y"])
    rows = _scored_rows(ROWS, 0.7)
    p = reference.predict_proba(frame[TRUE_COLUMNS].iloc[rows])[:, 1]
    in_memory = log_loss(frame["y"].iloc[rows], p)
    assert result.scoring == "log_loss"
    assert result.score <= 1.02 * in_memory
    assert result.score >= 0.98 * in_memory
    assert result.improvement > 0.1  # far better than the running mean
    # The largest weights fall on the strongest true terms.
    learner = result.estimator
    weights = {
        TERMS[name]: learner.coef_[0, index] * sign
        for name, (index, sign) in featurizer.term_indices().items()
    }
    truth = true_params("logit")
    by_weight = sorted(weights, key=lambda k: -abs(weights[k]))
    by_truth = sorted(weights, key=lambda k: -abs(truth[k]))
    assert by_weight[:3] == by_truth[:3] == ["x1", "x2", "x3"]
    assert set(by_weight[:5]) == set(by_truth[:5])
    for name, value in weights.items():
        assert value == pytest.approx(truth[name], abs=0.06), name
    assert learner.intercept_[0] == pytest.approx(truth["Intercept"], abs=0.06)
    # Nothing else was learned: the 2**20 - 9 other columns stay zero.
    assert np.count_nonzero(learner.coef_) == 9


def test_scores_and_benchmark_equal_an_independent_computation(frame) -> None:
    data = frame.iloc[:20_500]  # a short last batch
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**12, degree=2)
    model = SGDClassifier(loss="log_loss", random_state=0, learning_rate="adaptive", eta0=0.01)
    result = stream_fit(model, featurizer, data, target="y", batch_rows=BATCH, drop=0.5)
    # Replay by hand with an identical learner: predict each batch, then learn it.
    twin = SGDClassifier(loss="log_loss", random_state=0, learning_rate="adaptive", eta0=0.01)
    X, y = featurizer.transform(data), data["y"].to_numpy()
    rows = []
    for b, start in enumerate(range(0, len(data), BATCH)):
        part = slice(start, start + BATCH)
        if b:
            p = twin.predict_proba(X[part])[:, 1]
            mean = y[:start].mean()
            rows.append(
                {
                    "n": len(y[part]),
                    "log_loss": log_loss(y[part], p, labels=[0, 1]),
                    "squared_error": np.mean((p - y[part]) ** 2),
                    "accuracy": np.mean((p >= 0.5) == y[part]),
                    "auc": roc_auc_score(y[part], p),
                    "benchmark_log_loss": log_loss(y[part], np.full(len(p), mean), labels=[0, 1]),
                }
            )
        twin.partial_fit(X[part], y[part], classes=[0, 1])
    expected = pd.DataFrame(rows)
    curve = result.curve
    assert len(curve) == 20 and curve["n"].iloc[-1] == 500
    for name in ("log_loss", "squared_error", "accuracy", "auc", "benchmark_log_loss"):
        np.testing.assert_allclose(curve[name], expected[name], rtol=1e-12, err_msg=name)
    np.testing.assert_array_equal(curve["benchmark_auc"], 0.5)
    kept = expected.iloc[10:]  # drop=0.5 of 20 scored batches, weighted by rows
    score = np.average(kept["log_loss"], weights=kept["n"])
    bench = np.average(kept["benchmark_log_loss"], weights=kept["n"])
    assert result.score == pytest.approx(score, rel=1e-12)
    assert result.benchmark_score == pytest.approx(bench, rel=1e-12)
    assert result.improvement == pytest.approx((bench - score) / bench, rel=1e-12)
    np.testing.assert_array_equal(twin.coef_, result.estimator.coef_)


@pytest.mark.parametrize("npartitions", [1, 3, 17])
def test_partitioning_does_not_change_anything(frame, npartitions) -> None:
    data = frame.iloc[:30_000]
    featurizer = HashingFeaturizer(["x1", "x2", "x3"], n_features=2**16, degree=2)
    one = stream_fit(FTRLClassifier(alpha=1e-5), featurizer, data, target="y", batch_rows=700)
    many = stream_fit(
        FTRLClassifier(alpha=1e-5),
        featurizer,
        from_pandas(data, npartitions),
        target="y",
        batch_rows=700,
    )
    pd.testing.assert_frame_equal(one.curve, many.curve)
    assert one.scores == many.scores


def test_regressors_are_scored_by_squared_error() -> None:
    table = simulate_table("linreg", 30_000, seed=1)
    columns = [f"x{j}" for j in range(1, 11)]
    featurizer = HashingFeaturizer([*columns, "g10"], n_features=2**16, degree=1)
    # The reference: least squares in memory on the same columns, scored in-sample.
    frame = table.to_pandas()
    design = pd.get_dummies(frame[[*columns, "g10"]], columns=["g10"], dtype=float)
    fitted = LinearRegression().fit(design, frame["y"])
    rows = _scored_rows(len(frame), 0.7)
    in_memory = np.mean((fitted.predict(design.iloc[rows]) - frame["y"].iloc[rows]) ** 2)
    for model in (FTRLRegressor(learning_rate=0.5), SGDRegressor(random_state=0)):
        result = stream_fit(model, featurizer, table, target="y")
        assert result.scoring == "squared_error"
        assert np.isnan(result.scores["log_loss"]) and np.isnan(result.scores["auc"])
        assert in_memory <= result.score <= 1.05 * in_memory, type(model).__name__
        assert result.improvement > 0.2


def test_bad_input_names_the_column_partition_and_row(frame, tmp_path) -> None:
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**10)
    data = frame.iloc[:5000].reset_index(drop=True)
    with pytest.raises(SchemaError, match="target column 'label' is not in"):
        stream_fit(FTRLClassifier(), featurizer, data, target="label")
    with pytest.raises(DesignError, match="feature column 'x9' is not in"):
        stream_fit(FTRLClassifier(), HashingFeaturizer(["x1", "x9"]), data, target="y")
    text = data.assign(y=np.where(data["y"] == 1, "yes", "no"))
    with pytest.raises(SchemaError, match=r"'y' in partition .* has type string.* numeric"):
        stream_fit(FTRLClassifier(), featurizer, text, target="y")
    broken = data.astype({"y": float})
    broken.loc[3210, "y"] = np.nan
    path = tmp_path / "broken.csv"
    broken.to_csv(path, index=False)
    with pytest.raises(MissingDataError, match=r"missing target in partition .*line 3212"):
        stream_fit(FTRLClassifier(), featurizer, str(path), target="y")
    broken = data.copy()
    broken.loc[4321, "x2"] = np.inf
    with pytest.raises(MissingDataError, match=r"column 'x2'.* partition DataFrame.*4321"):
        stream_fit(FTRLClassifier(), featurizer, from_pandas(broken, 3), target="y")
    with pytest.raises(ValueError, match="'drop' parameter"):
        stream_fit(FTRLClassifier(), featurizer, data, target="y", drop=1.0)
    with pytest.raises(TypeError, match="needs an estimator with partial_fit"):
        stream_fit(LogisticRegression(), featurizer, data, target="y")
    assert pa.types.is_int64(pa.Table.from_pandas(data).schema.field("y").type)


def test_too_few_batches_to_score_warn() -> None:
    """One batch only trains: nothing is scored, and the NaN scores come with a
    warning saying why; two batches score the second."""
    table = simulate_table("linreg", 800, seed=2)
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**10, degree=1)
    with pytest.warns(UserWarning, match="scored no rows: 1 batch"):
        result = stream_fit(SGDRegressor(random_state=0), featurizer, table, target="y")
    assert np.isnan(result.score) and result.rows == 800
    scored = stream_fit(
        SGDRegressor(random_state=0), featurizer, table, target="y", batch_rows=400, drop=0.0
    )
    assert np.isfinite(scored.score) and scored.curve["n"].tolist() == [400]
