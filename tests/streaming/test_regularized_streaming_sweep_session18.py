"""Differential sweep of regularized and streaming fits (session 18).

Bugs fixed (each test below fails on the old code):

- AdaGrad with ``beta=0`` raised ``ZeroDivisionError`` from the compiled kernel on a
  row whose loss gradient is zero (a zero sample weight, an exact fit such as ``y = 0``
  at the start): the touched coordinate's step ``eta / (0 + sqrt(0))``.
- Progressive validation of an FTRL classifier (the compiled path) computed the
  probability as ``0.5 * (1 + tanh(m / 2))``, which loses small probabilities to
  cancellation: the log-loss of a confident wrong row was up to 0.03 off
  ``log_loss(y, predict_proba(X))`` (per batch, 3e-4 relative in the sweep).
- A non-numeric array in statsmodels-style ``(endog, exog)`` pairs raised NumPy's
  "could not convert string to float", naming neither the partition nor the column.

Guards for what agreed in the sweep (see the report of session 18): the distributed
joins against statsmodels with partitions of fewer rows than columns and an all-zero
column, the elastic net against scikit-learn with weights, no intercept and
standardization on several partitions, the weighted Poisson ridge against
``PoissonRegressor``, FTRL and AdaGrad against a NumPy transcription of their update
rules, the feature hashing against an independent transcription of its hash, and the
progressive metrics of a scikit-learn learner recomputed by hand.
"""

from __future__ import annotations

import copy
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import statsmodels.api as sm
from sklearn.linear_model import (
    ElasticNet,
    LogisticRegression,
    PoissonRegressor,
    SGDClassifier,
)
from sklearn.utils import murmurhash3_32
from statsmodels.base import distributed_estimation as smd

from shardfit.data.memory import from_pandas
from shardfit.models.distributed import DistributedModel
from shardfit.models.elastic_net import elastic_net
from shardfit.streaming.hashing import HashingFeaturizer
from shardfit.streaming.learners import FTRLClassifier, FTRLRegressor
from shardfit.streaming.stream import stream_fit

EPS = float(np.finfo(np.float64).eps)


# -- NumPy references ----------------------------------------------------------------
def _sigmoid(m: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(m))
    return np.where(m >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _gradient(margin: float, y: float, loss: str) -> float:
    if loss == "log_loss":
        return float(_sigmoid(np.array(margin))) - y
    if loss == "squared_error":
        return margin - y
    return -y if y * margin < 1 else 0.0  # hinge, y in {-1, +1}


def _online_reference(X, y, sw, *, loss, solver, alpha, l1_ratio, eta, beta, batch):
    """FTRL-Proximal and AdaGrad as the module docs state them, dense, row by row.

    AdaGrad charges every coordinate the per-row penalty on every row (a proximal step
    with its current step size); a coordinate whose gradient sum is still zero has not
    moved and does not move. Returns each row's decision value before its batch and
    the final weights (intercept last).
    """
    X = X.toarray()
    rows, p = X.shape
    z, n, w = np.zeros(p + 1), np.zeros(p + 1), np.zeros(p + 1)
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)

    def ftrl(t):
        lam1 = np.r_[np.full(p, t * l1), 0.0]
        lam2 = np.r_[np.full(p, t * l2), 0.0]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = -(z - np.sign(z) * lam1) / ((beta + np.sqrt(n)) / eta + lam2)
        return np.where(np.abs(z) <= lam1, 0.0, value)

    scores, t = np.empty(rows), 0
    for start in range(0, rows, batch):
        stop = min(start + batch, rows)
        current = ftrl(t) if solver == "ftrl" else w
        scores[start:stop] = X[start:stop] @ current[:-1] + current[-1]
        for r in range(start, stop):
            t += 1
            x = np.r_[X[r], 1.0]
            if solver == "ftrl":
                cur = ftrl(t)
                gi = _gradient(x @ cur, y[r], loss) * sw[r] * x
                z += gi - (np.sqrt(n + gi**2) - np.sqrt(n)) / eta * cur
                n += gi**2
                continue
            g = _gradient(x @ w, y[r], loss) * sw[r]
            for j in range(p):
                if x[j] != 0:
                    gj = g * x[j] + l2 * w[j]
                    n[j] += gj * gj
                    if n[j] == 0:
                        continue
                    s = eta / (beta + np.sqrt(n[j]))
                    u = w[j] - s * gj
                elif w[j] == 0:
                    continue
                else:
                    s = eta / (beta + np.sqrt(n[j]))
                    u = w[j] * (1 - s * l2)
                w[j] = np.sign(u) * max(abs(u) - s * l1, 0.0)
            if g != 0:
                n[p] += g * g
                w[p] -= eta / (beta + np.sqrt(n[p])) * g
    return scores, ftrl(t) if solver == "ftrl" else w.copy()


_M64 = (1 << 64) - 1


def _hash_reference(frame, columns, categorical, n_features, degree, alternate_sign, seed):
    """The documented hash, in Python integers: MurmurHash3 tokens, splitmix64 fold."""

    def mix(h):
        h = ((h ^ (h >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _M64
        return h ^ (h >> 31)

    def token(s):
        lo = murmurhash3_32(s, seed=0x5F3759DF ^ seed, positive=True)
        hi = murmurhash3_32(s, seed=0x2545F491 ^ seed, positive=True)
        return (hi << 32) | lo

    out = np.zeros((len(frame), n_features))
    for r in range(len(frame)):
        for k in range(1, degree + 1):
            for combo in itertools.combinations_with_replacement(columns, k):
                cats = [c for c in combo if c in categorical]
                if len(cats) != len(set(cats)):
                    continue
                acc, value = 0, 1.0
                for factor in sorted(combo):
                    v = frame[factor].iloc[r]
                    if factor in categorical:
                        level = str(v).lower() if isinstance(v, bool | np.bool_) else str(v)
                        h = token(f"{factor}={level}")
                    else:
                        h, value = token(factor), value * float(v)
                    acc = mix((acc * 0x9E3779B97F4A7C15 + h) & _M64)
                sign = 1 - 2 * (acc & 1) if alternate_sign else 1
                out[r, (acc >> 1) % n_features] += sign * value
    return out


# -- fixed bugs ------------------------------------------------------------------------
def test_adagrad_with_beta_zero_learns_rows_without_gradient() -> None:
    rng = np.random.default_rng(4)
    X = sp.random(40, 6, density=0.4, random_state=rng, format="csr")
    X.data -= 0.3
    y = X @ rng.standard_normal(6)
    y[0] = 0.0  # the first row fits exactly at zero weights: no gradient
    sw = rng.uniform(0.5, 2.0, 40)
    sw[[3, 11]] = 0.0  # rows without weight: no gradient either
    model = FTRLRegressor(solver="adagrad", beta=0.0, alpha=0.01, l1_ratio=0.5, learning_rate=0.3)
    scores = model.progressive_fit(X, y, batch_rows=5, sample_weight=sw)
    expected_scores, expected = _online_reference(
        X, y, sw, loss="squared_error", solver="adagrad", alpha=0.01, l1_ratio=0.5,
        eta=0.3, beta=0.0, batch=5,
    )  # fmt: skip
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.coef_, expected[:-1], rtol=1e-12, atol=1e-12)
    assert model.intercept_ == pytest.approx(expected[-1], rel=1e-12, abs=1e-12)
    # The classifier's kernel path too (a zero-weight first row).
    clf = FTRLClassifier(solver="adagrad", beta=0.0).partial_fit(
        X, (y > 0).astype(int), sample_weight=np.r_[0.0, np.ones(39)]
    )
    assert np.all(np.isfinite(clf.coef_))


def test_progressive_log_loss_of_confident_rows_equals_sklearn_log_loss() -> None:
    # Batch 1 teaches a positive weight; batch 2's rows are positive with ever more
    # negative feature values: margins from -30 down to about -37, where the
    # probability is below 1e-15 (the log-loss then hinges on its last digits).
    x = np.r_[np.ones(20), -np.linspace(14.5, 17.5, 20), np.ones(20)]
    y = np.ones(60)
    y[40:50] = 0.0
    frame = pd.DataFrame({"x": x, "y": y})
    model = FTRLClassifier(learning_rate=1.0, fit_intercept=False)
    reference = copy.deepcopy(model)
    result = stream_fit(
        model, HashingFeaturizer(["x"], n_features=4, degree=1), frame,
        target="y", batch_rows=20, drop=0.0,
    )  # fmt: skip
    X = HashingFeaturizer(["x"], n_features=4, degree=1).transform(frame[["x"]])
    expected = []
    for start in range(0, 60, 20):
        Xb, yb = X[start : start + 20], y[start : start + 20]
        if start:
            p = np.clip(reference.predict_proba(Xb)[:, 1], EPS, 1 - EPS)
            expected.append(float(np.mean(-(yb * np.log(p) + (1 - yb) * np.log1p(-p)))))
        reference.partial_fit(Xb, yb, classes=[0, 1])
    np.testing.assert_allclose(result.curve["log_loss"], expected, rtol=1e-13)
    assert result.score == pytest.approx(np.mean(expected), rel=1e-13)


def test_non_numeric_exog_names_the_partition_and_column() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.standard_normal((40, 2)), columns=["a", "b"])
    y = rng.standard_normal(40)
    bad = X.iloc[20:].assign(g=["u", "v"] * 10)
    pairs = [(y[:20], X.iloc[:20].assign(g=1.0)), (y[20:], bad)]
    with pytest.raises(ValueError, match=r"partition 1 of the data generator: exog, column 'g'"):
        DistributedModel(2, alpha=0.1).fit(iter(pairs))


# -- agreement guards ----------------------------------------------------------------
def _split(X, y, k):
    return [(y[rows], X[rows]) for rows in np.array_split(np.arange(len(y)), k)]


@pytest.mark.parametrize(("family", "k"), [(None, 4), (None, 6), ("binomial", 4)])
def test_debiased_with_wide_partitions_and_a_zero_column_equals_statsmodels(family, k) -> None:
    # Partitions of 5 to 8 rows and 12 columns (p > n in each), a column of zeros.
    rng = np.random.default_rng(18)
    X = rng.standard_normal((30, 12))
    X[:, 0] = 1.0
    X[:, 7] = 0.0
    eta = X[:, :3] @ [0.3, 1.0, -1.0]
    if family is None:
        y, model = eta + rng.standard_normal(30), {}
    else:
        y = (rng.random(30) < 1 / (1 + np.exp(-eta))).astype(float)
        model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Binomial()}}
    fit_kwds = {"alpha": 0.2, "L1_wt": 0.5}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = smd.DistributedModel(k, **model).fit(iter(_split(X, y, k)), fit_kwds=fit_kwds)
        result = DistributedModel(k, **model).fit(iter(_split(X, y, k)), fit_kwds=fit_kwds)
    np.testing.assert_allclose(result.params, expected.params, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("intercept", "l1_ratio"), [(True, 0.1), (False, 0.5), (True, 1.0)])
def test_weighted_standardized_gaussian_equals_sklearn(intercept, l1_ratio) -> None:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((80, 5)) * [1e3, 1.0, 1e-2, 5.0, 1.0] + [10, -3, 0, 100, 0]
    X[:, 4] = 0.0  # an all-zero column
    y = X[:, :2] @ [1e-3, -0.5] + rng.standard_normal(80) + 2
    w = rng.uniform(0.2, 3.0, 80)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)]).assign(y=y, w=w)
    formula = "y ~ " + ("" if intercept else "0 + ") + " + ".join(f"x{j}" for j in range(5))
    result = elastic_net(
        formula, from_pandas(frame, 3), alpha=0.05, l1_ratio=l1_ratio, weights="w",
        standardize=True, tol=1e-12, backend="serial",
    )  # fmt: skip
    share = w / w.sum()
    centre = share @ X if intercept else np.zeros(5)
    sd = np.sqrt(share @ (X - centre) ** 2)
    sd = np.where(sd > 0, sd, 1.0)
    reference = ElasticNet(
        alpha=0.05, l1_ratio=l1_ratio, fit_intercept=intercept, tol=1e-14, max_iter=100_000
    ).fit(X / sd, y, sample_weight=w * 80 / w.sum())
    np.testing.assert_allclose(result.coef_, reference.coef_ / sd, rtol=1e-7, atol=1e-9)
    assert result.intercept_ == pytest.approx(reference.intercept_, rel=1e-7, abs=1e-9)


def test_weighted_poisson_ridge_on_partitions_equals_sklearn() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100, 4)) * 0.5
    X[:, 2] = 0.0
    y = rng.poisson(np.exp(0.3 + X[:, 0] - 0.5 * X[:, 3])).astype(float)
    w = rng.uniform(0.2, 3.0, 100)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y, w=w)
    result = elastic_net(
        "y ~ a + b + c + d", from_pandas(frame, 4), alpha=0.03, l1_ratio=0.0,
        family="poisson", weights="w", tol=1e-12, max_iter=200, backend="serial",
    )  # fmt: skip
    reference = PoissonRegressor(alpha=0.03, tol=1e-12, max_iter=10_000).fit(X, y, sample_weight=w)
    np.testing.assert_allclose(result.coef_, reference.coef_, rtol=1e-6, atol=1e-8)
    assert result.intercept_ == pytest.approx(reference.intercept_, rel=1e-6)


@pytest.mark.parametrize(
    ("loss", "solver", "alpha", "l1_ratio", "beta"),
    [
        ("log_loss", "ftrl", 0.01, 0.5, 1.0),
        ("hinge", "ftrl", 0.3, 1.0, 0.0),
        ("squared_error", "adagrad", 0.01, 0.0, 1.0),
        ("log_loss", "adagrad", 0.3, 0.5, 0.0),
        ("hinge", "adagrad", 0.01, 1.0, 1.0),
    ],
)
def test_online_learners_equal_their_update_rules(loss, solver, alpha, l1_ratio, beta) -> None:
    rng = np.random.default_rng(11)
    X = sp.random(60, 8, density=0.35, random_state=rng, format="csr") * 2
    X.data -= 0.5
    X.data[::5] = 0.0  # explicit zeros: absent entries
    m = X @ rng.standard_normal(8)
    sw = rng.uniform(0.0, 2.0, 60)
    sw[::9] = 0.0
    if loss == "squared_error":
        y, target, model = m, m, FTRLRegressor(solver=solver)
        extra: dict = {}
    else:
        y = (m > 0).astype(float)
        target = y if loss == "log_loss" else 2 * y - 1
        model, extra = FTRLClassifier(loss=loss, solver=solver), {"classes": [0, 1]}
    model.set_params(alpha=alpha, l1_ratio=l1_ratio, learning_rate=0.5, beta=beta)
    scores = model.progressive_fit(X, y, batch_rows=7, sample_weight=sw, **extra)
    expected_scores, expected = _online_reference(
        X, target, sw, loss=loss, solver=solver, alpha=alpha, l1_ratio=l1_ratio,
        eta=0.5, beta=beta, batch=7,
    )  # fmt: skip
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-10, atol=1e-12)
    weights = np.r_[np.ravel(model.coef_), np.ravel(model.intercept_)]
    np.testing.assert_allclose(weights, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("n_features", "degree", "alternate_sign"), [(7, 3, True), (64, 2, False)])
def test_hashing_equals_its_documented_hash(n_features, degree, alternate_sign) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.standard_normal(6),
            "n": rng.integers(-3, 4, 6),
            "g": rng.choice(["a", "b", "ü"], 6),
            "b": rng.random(6) < 0.5,
            "c": pd.Categorical(rng.choice(["p", "q"], 6)),
        }
    )
    columns = ["x", "g", "n", "b", "c"]
    hasher = HashingFeaturizer(
        columns, n_features=n_features, degree=degree, alternate_sign=alternate_sign, seed=77
    )
    expected = _hash_reference(
        frame, columns, {"g", "b", "c"}, n_features, degree, alternate_sign, 77
    )
    np.testing.assert_allclose(hasher.transform(frame).toarray(), expected, rtol=1e-15)


def test_weighted_progressive_metrics_of_sgd_equal_a_hand_loop() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x1": rng.standard_normal(90), "g": rng.choice(list("abc"), 90)})
    margin = frame.x1 + (frame.g == "a")
    frame["y"] = (rng.random(90) < 1 / (1 + np.exp(-margin))).astype(float)
    frame["w"] = rng.uniform(0.0, 2.0, 90)
    frame.loc[:9, "w"] = 0.0  # the first batch has no weight: scoring starts later
    hasher = HashingFeaturizer(["x1", "g"], n_features=32)
    model = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.1, random_state=0)
    reference = copy.deepcopy(model)
    result = stream_fit(
        model, hasher, from_pandas(frame, 3), target="y", weights="w", batch_rows=10, drop=0.0
    )
    X = hasher.transform(frame[["x1", "g"]])
    y, w = frame.y.to_numpy(), frame.w.to_numpy()
    log_loss, accuracy, bench = [], [], []
    for start in range(10, 90, 10):
        Xb, yb, wb = X[start : start + 10], y[start : start + 10], w[start : start + 10]
        if start > 10:
            p = np.clip(reference.predict_proba(Xb)[:, 1], EPS, 1 - EPS)
            log_loss.append(np.sum(wb * -(yb * np.log(p) + (1 - yb) * np.log1p(-p))) / wb.sum())
            accuracy.append(np.sum(wb * (reference.predict(Xb) == yb)) / wb.sum())
            mean = np.sum(w[:start] * y[:start]) / w[:start].sum()
            bench.append(np.sum(wb * (mean - yb) ** 2) / wb.sum())
        reference.partial_fit(Xb, yb, classes=[0, 1], sample_weight=wb)
    curve = result.curve.iloc[1:]  # batch 1 follows the weightless batch 0: not scored
    assert np.isnan(result.curve["log_loss"].iloc[0])
    np.testing.assert_allclose(curve["log_loss"], log_loss, rtol=1e-12)
    np.testing.assert_allclose(curve["accuracy"], accuracy, rtol=1e-12)
    np.testing.assert_allclose(curve["benchmark_squared_error"], bench, rtol=1e-12)


def test_weighted_standardized_binomial_ridge_equals_sklearn_logistic() -> None:
    # scikit-learn's C * sum_i w_i l_i + |b|^2 / 2 is shardfit's objective times C W
    # with alpha = 1 / (C W), W = sum(w); standardized columns as StandardScaler's
    # (weighted population moments).
    rng = np.random.default_rng(9)
    X = rng.standard_normal((120, 4)) * [50.0, 1.0, 0.1, 3.0] + [5.0, 0.0, -1.0, 20.0]
    z = (X - X.mean(0)) / X.std(0)
    y = (rng.random(120) < 1 / (1 + np.exp(-(0.4 + z[:, 0] - z[:, 3])))).astype(float)
    w = rng.uniform(0.2, 3.0, 120)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y, w=w)
    alpha = 0.02
    result = elastic_net(
        "y ~ a + b + c + d", from_pandas(frame, 3), alpha=alpha, l1_ratio=0.0,
        family="binomial", weights="w", standardize=True, tol=1e-12, max_iter=200,
        backend="serial",
    )  # fmt: skip
    share = w / w.sum()
    sd = np.sqrt(share @ (X - share @ X) ** 2)
    reference = LogisticRegression(C=1 / (alpha * w.sum()), tol=1e-12, max_iter=10_000)
    reference.fit(X / sd, y, sample_weight=w)
    np.testing.assert_allclose(result.coef_, reference.coef_[0] / sd, rtol=1e-6, atol=1e-9)
    assert result.intercept_ == pytest.approx(reference.intercept_[0], rel=1e-6)
