"""Review of streaming (session 15): stream_fit against scikit-learn's partial_fit fed the
same batches, for every learner and option it drives, with each batch's progressive
metrics and the benchmark computed by hand from scikit-learn's predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier
from sklearn.linear_model import (
    PassiveAggressiveClassifier,
    PassiveAggressiveRegressor,
    Perceptron,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    log_loss,
    mean_squared_error,
    roc_auc_score,
)
from sklearn.naive_bayes import BernoulliNB, MultinomialNB

from shardfit import HashingFeaturizer, from_pandas, open_store, search, stream_fit
from shardfit.errors import ResponseError

N, BATCH, DROP = 2311, 170, 0.3  # 14 batches, the last of 101 rows
HASHER = HashingFeaturizer(["x1", "x2", "g"], n_features=2**6, degree=2)  # with collisions
# Non-negative counts for naive Bayes: one-hot levels, unsigned.
COUNTS = HashingFeaturizer(["g", "h"], categorical=["g", "h"], n_features=2**5, degree=1,
                           alternate_sign=False)  # fmt: skip
RS = {"random_state": 0}  # partial_fit shuffles each batch from a seeded generator


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(15)
    data = pd.DataFrame(
        {
            "x1": rng.normal(size=N),
            "x2": rng.normal(size=N),
            "g": rng.choice(list("abcde"), N),
            "h": rng.choice(list("uvw"), N),
        }
    )
    eta = 0.8 * data.x1 - data.x2 + (data.g == "b") - 0.5 * (data.g == "e") + (data.h == "u")
    data["y"] = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(int)
    data["yr"] = eta + rng.normal(size=N)
    data["w"] = rng.choice([0.0, 0.5, 1.0, 2.5], N)
    data.loc[: BATCH - 1, "w"] = 0.0  # the first batch teaches nothing: scoring starts later
    data.loc[3 * BATCH : 4 * BATCH - 1, "w"] = 0.0  # a batch of zero weight mid-stream
    return data


def _replay(est, featurizer, frame, target, weights):
    """scikit-learn's partial_fit on the same batches, each batch scored before it is
    learned with sklearn.metrics; the benchmark (running weighted mean) by hand."""
    X, y = featurizer.transform(frame), frame[target].to_numpy().astype(float)
    w = np.ones(N) if weights is None else frame[weights].to_numpy()
    clf = is_classifier(est)
    model, bench, mass = [], [], []
    learned, seen_y, seen_w = False, 0.0, 0.0
    for start in range(0, N, BATCH):
        Xb, yb, wb = X[start : start + BATCH], y[start : start + BATCH], w[start : start + BATCH]
        sw = None if weights is None else wb
        row, brow = {}, {}
        if learned and wb.sum() > 0:
            mean = seen_y / seen_w
            constant = np.full(len(yb), mean)
            if clf:
                row["accuracy"] = accuracy_score(yb, est.predict(Xb), sample_weight=sw)
                if hasattr(est, "predict_proba"):
                    score = est.predict_proba(Xb)[:, 1]
                    row["log_loss"] = log_loss(yb, score, labels=[0, 1], sample_weight=sw)
                    row["squared_error"] = brier_score_loss(yb, score, sample_weight=sw)
                else:
                    score = est.decision_function(Xb)
                both = len(np.unique(yb[wb > 0])) == 2
                row["auc"] = roc_auc_score(yb, score, sample_weight=sw) if both else np.nan
                brow["log_loss"] = log_loss(yb, constant, labels=[0, 1], sample_weight=sw)
                brow["squared_error"] = brier_score_loss(yb, constant, sample_weight=sw)
                said = np.full(len(yb), float(mean >= 0.5))  # the share's majority label
                brow["accuracy"] = accuracy_score(yb, said, sample_weight=sw)
                brow["auc"] = 0.5 if both else np.nan
            else:
                row["squared_error"] = mean_squared_error(yb, est.predict(Xb), sample_weight=sw)
                brow["squared_error"] = mean_squared_error(yb, constant, sample_weight=sw)
        model.append(row)
        bench.append(brow)
        mass.append(wb.sum())
        seen_y, seen_w = seen_y + (yb * wb).sum(), seen_w + wb.sum()
        if wb.any():
            extra = {"classes": [0, 1]} if clf else {}
            est.partial_fit(Xb, yb, **extra, **({} if sw is None else {"sample_weight": sw}))
            learned = True
    return est, model, bench, np.array(mass)


def _mean(rows, mass, name):
    """The result's mean score: the scored batches after the dropped leading fraction,
    weighted by their weight (AUC over the batches where it exists)."""
    first = int(np.flatnonzero(mass > 0)[0]) + 1
    keep = range(first + int(DROP * (len(rows) - first)), len(rows))
    values = np.array([rows[b].get(name, np.nan) for b in keep])
    weights = mass[list(keep)]
    ok = np.isfinite(values) & (weights > 0)
    return float(np.average(values[ok], weights=weights[ok]))


def _deprecated(make):
    """PassiveAggressive* (deprecated in scikit-learn 1.8, still driven by stream_fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return make()


CLASSIFIERS = [
    *(SGDClassifier(loss=loss, **RS) for loss in
      ["hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "huber",
       "epsilon_insensitive", "squared_error"]),
    *(SGDClassifier(loss="log_loss", penalty=p, l1_ratio=0.4, alpha=1e-3, **RS)
      for p in ["l1", "elasticnet", None]),
    *(SGDClassifier(loss="modified_huber", learning_rate=lr, eta0=0.05, power_t=0.3, **RS)
      for lr in ["constant", "invscaling", "adaptive"]),
    SGDClassifier(loss="hinge", learning_rate="pa2", eta0=0.5, penalty=None, **RS),
    SGDClassifier(fit_intercept=False, alpha=1e-2, **RS),
    SGDClassifier(average=True, **RS),
    SGDClassifier(loss="log_loss", average=500, **RS),
    SGDClassifier(loss="log_loss", class_weight={0: 2.0, 1: 0.5}, **RS),
    SGDClassifier(shuffle=False),
    Perceptron(**RS),
    Perceptron(penalty="elasticnet", alpha=1e-3, **RS),
    *_deprecated(lambda: [PassiveAggressiveClassifier(**RS), PassiveAggressiveClassifier(
        loss="squared_hinge", C=0.1, average=True, **RS)]),
]  # fmt: skip
REGRESSORS = [
    SGDRegressor(**RS),
    SGDRegressor(loss="huber", epsilon=0.3, **RS),
    SGDRegressor(loss="epsilon_insensitive", **RS),
    SGDRegressor(loss="squared_epsilon_insensitive", average=True, **RS),
    SGDRegressor(learning_rate="adaptive", eta0=0.003, penalty="elasticnet", **RS),
    SGDRegressor(fit_intercept=False, learning_rate="optimal", **RS),
    *_deprecated(lambda: [PassiveAggressiveRegressor(**RS)]),
]
CASES = [
    *((est, HASHER, "y", None) for est in CLASSIFIERS),
    *((est, HASHER, "yr", None) for est in REGRESSORS),
    *((est, COUNTS, "y", None) for est in
      [MultinomialNB(), BernoulliNB(), MultinomialNB(alpha=0.3, fit_prior=False)]),
    # Sample weights, with the first batch and a later one of zero weight.
    *((est, HASHER, "y", "w") for est in
      [SGDClassifier(loss="log_loss", **RS), Perceptron(**RS),
       SGDClassifier(loss="hinge", average=7, class_weight={0: 1.0, 1: 3.0}, **RS)]),
    (SGDRegressor(**RS), HASHER, "yr", "w"),
    (MultinomialNB(), COUNTS, "y", "w"),
]  # fmt: skip


def _name(case) -> str:
    est, _, _, weights = case
    changed = {k: v for k, v in est.get_params().items() if k != "random_state"}
    default = type(est)().get_params()
    text = ",".join(f"{k}={v}" for k, v in changed.items() if default.get(k) != v)
    return f"{type(est).__name__}({text}){'-weighted' if weights else ''}"


@pytest.mark.parametrize("case", CASES, ids=[_name(c) for c in CASES])
def test_stream_fit_is_partial_fit_on_the_same_batches_scored_by_sklearn_metrics(
    frame, case
) -> None:
    est, featurizer, target, weights = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # PassiveAggressive is deprecated
        fitted = stream_fit(clone(est), featurizer, from_pandas(frame, 4), target=target,
                            weights=weights, batch_rows=BATCH, drop=DROP)  # fmt: skip
        ref, model, bench, mass = _replay(clone(est), featurizer, frame, target, weights)
    got = fitted.estimator
    for attr in ("coef_", "intercept_", "t_", "_average_coef", "feature_count_",
                 "class_count_", "feature_log_prob_"):  # fmt: skip
        if hasattr(ref, attr):
            np.testing.assert_array_equal(getattr(got, attr), getattr(ref, attr), err_msg=attr)
    # New rows (the data reversed): every prediction method agrees bitwise.
    X_new = featurizer.transform(frame.iloc[::-1].reset_index(drop=True))
    for method in ("predict", "decision_function", "predict_proba"):
        if hasattr(ref, method):
            np.testing.assert_array_equal(getattr(got, method)(X_new), getattr(ref, method)(X_new))
    # Each scored batch (curve row b is batch b + 1), the model's and the benchmark's.
    assert len(fitted.curve) == len(model) - 1 == 13
    checked = 0
    for prefix, rows in (("", model), ("benchmark_", bench)):
        for name in ("log_loss", "squared_error", "accuracy", "auc"):
            expected = np.array([r.get(name, np.nan) for r in rows[1:]])
            np.testing.assert_allclose(fitted.curve[prefix + name], expected, rtol=1e-12,
                                       atol=1e-15, err_msg=prefix + name)  # fmt: skip
            checked += np.isfinite(expected).sum()
    assert checked >= 2 * 11  # at least one metric on every scored batch, both predictors
    scoring = fitted.scoring
    assert fitted.score == pytest.approx(_mean(model, mass, scoring), rel=1e-12)
    assert fitted.benchmark_score == pytest.approx(_mean(bench, mass, scoring), rel=1e-12)
    sign = 1 if scoring in ("accuracy", "auc") else -1
    gain = sign * (fitted.score - fitted.benchmark_score) / abs(fitted.benchmark_score)
    assert fitted.improvement == pytest.approx(gain, rel=1e-12)
    assert fitted.rows == N


@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
def test_a_probability_rounding_to_one_half_is_scored_as_predict_labels_it(loss) -> None:
    # x = 1e-30 times a positive weight is a positive decision value: predict says 1,
    # but the probability rounds to exactly 0.5. Accuracy must follow predict (the old
    # code counted these rows as predicted 0: accuracy 0.0 instead of 1.0).
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    x[200:] = np.abs(x[200:]) * 1e-30
    data = pd.DataFrame({"x": x, "y": (x > 0).astype(int)})
    hasher = HashingFeaturizer(["x"], n_features=4, degree=1, alternate_sign=False)
    make = lambda: SGDClassifier(loss=loss, fit_intercept=False, random_state=0)  # noqa: E731
    fitted = stream_fit(make(), hasher, data, target="y", batch_rows=100, drop=0.0,
                        scoring="accuracy")  # fmt: skip
    ref, X, y = make(), hasher.transform(data), data.y.to_numpy()
    expected = []
    for start in range(0, 400, 100):
        Xb, yb = X[start : start + 100], y[start : start + 100]
        if start:
            assert (ref.predict_proba(Xb)[yb == 1, 1] == 0.5).all() or start < 200
            expected.append(accuracy_score(yb, ref.predict(Xb)))
        ref.partial_fit(Xb, yb, classes=[0, 1])
    assert expected == [1.0, 1.0, 1.0]
    np.testing.assert_array_equal(fitted.curve.accuracy, expected)
    assert fitted.score == 1.0


@pytest.mark.parametrize("estimator", [SGDClassifier(random_state=0), Perceptron()])
def test_a_label_outside_the_two_classes_is_refused_naming_partition_and_row(
    frame, estimator, tmp_path
) -> None:
    data = frame.copy()
    data["y3"] = data.y
    data.loc[1000, "y3"] = 2  # a third class, in the second of four partitions
    where = r"'y3' is 2 in partition .*578:1156.*row 1000.*\[0, 1\]"
    with pytest.raises(ResponseError, match=where):
        stream_fit(clone(estimator), HASHER, from_pandas(data, 4), target="y3", batch_rows=BATCH)
    # Labels 1 and 2 are refused without classes=, and learned with classes=[1, 2]
    # exactly as 0 and 1 are (the larger label is the positive class).
    data["y12"] = data.y + 1
    with pytest.raises(ResponseError, match=r"'y12' is 2 in .*classes= with the target"):
        stream_fit(clone(estimator), HASHER, data, target="y12", batch_rows=BATCH)
    shifted = stream_fit(clone(estimator), HASHER, data, target="y12", classes=[1, 2],
                         batch_rows=BATCH)  # fmt: skip
    plain = stream_fit(clone(estimator), HASHER, data, target="y", batch_rows=BATCH)
    np.testing.assert_array_equal(shifted.estimator.coef_, plain.estimator.coef_)
    pd.testing.assert_frame_equal(shifted.curve, plain.curve)
    # A search refuses it the same way.
    space = {"featurizer": HASHER.get_params(), "learner": {"estimator": "sgd", **RS}}
    with pytest.raises(ResponseError, match=r"'y3' is 2 in partition .*578:1156.*row 1000"):
        search(space, from_pandas(data, 4), target="y3", store=tmp_path / "s.db",
               batch_rows=BATCH, backend="serial")  # fmt: skip


def test_a_halving_weighted_search_equals_stream_fit_of_each_survivor(frame, tmp_path) -> None:
    # Learners are compacted (sparsified) between rungs: averaged SGD must learn on
    # exactly, and each record equals a stream_fit of its rows.
    features = HASHER.get_params()
    space = [
        {"featurizer": features,
         "learner": {"estimator": "sgd", "loss": ["log_loss", "modified_huber"],
                     "average": [False, True, 300], "alpha": [1e-4, 1e-2], **RS}},
        {"featurizer": features, "learner": {"estimator": "perceptron", **RS}},
    ]  # fmt: skip
    store = tmp_path / "halving.db"
    search(space, from_pandas(frame, 4), target="y", store=store, weights="w",
           batch_rows=BATCH, drop=DROP, scoring="accuracy", backend="serial",
           halving={"min_rows": 4 * BATCH, "factor": 2}, allow_pickle=True)  # fmt: skip
    with open_store(store) as db:
        results = db.results()
        assert sorted(set(results.rows)) == [4 * BATCH, 8 * BATCH, N]  # three rungs
        for key, rows, score in zip(results.key, results.rows, results.score, strict=True):
            saved = db.model(key, allow_pickle=True)[-1]
            again = stream_fit(clone(saved), HASHER, from_pandas(frame.iloc[:rows], 3),
                               target="y", weights="w", batch_rows=BATCH, drop=DROP,
                               scoring="accuracy")  # fmt: skip
            for attr in ("coef_", "intercept_", "t_"):
                np.testing.assert_array_equal(getattr(saved, attr), getattr(again.estimator, attr))
            assert again.score == score
