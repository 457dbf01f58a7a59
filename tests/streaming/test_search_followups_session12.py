"""Follow-ups to the session-12 review of the streaming search.

Each test pins a defect against an independent reference: scikit-learn's
``ParameterSampler`` (draws over a grid), a search run afresh into another store (the
settings a resumed search may and may not differ in), a hand-written dense AdaGrad
(explicit zeros) and pandas' one-hot encoding (``term_indices``).
"""

from __future__ import annotations

import math
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp
from sklearn.model_selection import ParameterGrid, ParameterSampler

from shardfit import FTRLClassifier, FTRLRegressor, HashingFeaturizer, open_store, search
from shardfit.streaming.space import expand
from shardfit.streaming.store import StoreError

# --- n_iter over a grid of lists draws without replacement, as ParameterSampler -------

GRID = {
    "featurizer": {"columns": [["x1"], ["x1", "x2"]], "degree": [1, 2]},
    "learner": {"estimator": "ftrl", "alpha": [1e-4, 1e-3, 1e-2]},
}
# The same 12 points as a scikit-learn grid (one name per axis).
SK_GRID = {"columns": [("x1",), ("x1", "x2")], "degree": [1, 2], "alpha": [1e-4, 1e-3, 1e-2]}


def _point(config) -> tuple:
    featurizer, learner = config.featurizer, config.learner
    return (tuple(featurizer["columns"]), featurizer["degree"], learner["alpha"])


def test_n_iter_over_a_grid_draws_distinct_points_as_parameter_sampler() -> None:
    grid = {_point(c) for c in expand(GRID)}
    assert len(grid) == len(ParameterGrid(SK_GRID)) == 12
    for seed in range(10):
        sampled = list(ParameterSampler(SK_GRID, n_iter=7, random_state=seed))
        drawn = expand(GRID, n_iter=7, random_state=seed)
        # Before: each list was drawn from with replacement and duplicates collapsed:
        # as few as 5 configurations where ParameterSampler gives 7.
        assert len({_point(c) for c in drawn}) == len(drawn) == len(sampled) == 7
        assert {_point(c) for c in drawn} <= grid
        again = expand(GRID, n_iter=7, random_state=seed)  # reproducible by seed
        assert [c.key for c in again] == [c.key for c in drawn]
    assert {_point(c) for c in expand(GRID, n_iter=7, random_state=0)} != {
        _point(c) for c in expand(GRID, n_iter=7, random_state=1)
    }
    # More draws than points: the whole grid, with ParameterSampler's warning.
    message = r"The total space of parameters 12 is smaller than n_iter=20\. Running 12"
    with pytest.warns(UserWarning, match=message):
        sampled = list(ParameterSampler(SK_GRID, n_iter=20, random_state=0))
    with pytest.warns(UserWarning, match=message):
        drawn = expand(GRID, n_iter=20, random_state=0)
    assert len(drawn) == len(sampled) == 12 and {_point(c) for c in drawn} == grid


# --- the settings a resumed search is checked against ---------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    rng = np.random.default_rng(5)
    n = 600
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-frame["x1"]))).astype(np.int64)
    frame["w"] = rng.uniform(0.5, 2.0, size=n)
    path = tmp_path_factory.mktemp("followups") / "d.parquet"
    frame.to_parquet(path)
    return str(path)


SPACE = {
    "featurizer": {"columns": ["x1", "x2"], "n_features": 64},
    "learner": {"estimator": "ftrl", "alpha": [1e-4, 1e-3, 1e-2, 1e-1]},
}


def _run(data: str, store, **kwargs):
    kwargs = {"target": "y", "store": store, "batch_rows": 100, "backend": "serial", **kwargs}
    return search(SPACE, data, **kwargs)


def _forget_setting(store, name: str) -> None:
    """Make the store look written by a version that did not record ``name``."""
    with sqlite3.connect(store) as conn:
        conn.execute("DELETE FROM meta WHERE name = ?", (name,))
    conn.close()


def _results(store) -> pd.DataFrame:
    with open_store(store) as db:
        return db.results().drop(columns=["seconds", "finished"], errors="ignore")


def test_resuming_with_other_halving_is_refused_and_old_stores_still_resume(data, tmp_path) -> None:
    store = tmp_path / "halving.db"
    first = _run(data, store, halving={"min_rows": 200, "factor": 2})
    assert first.dropped == 3 and first.fitted == 1
    before = _results(store)
    # Before: resuming without halving (or with another factor) was accepted, mixing
    # the rung-200 scores of dropped configurations with full-stream ones.
    for other in (None, {"min_rows": 200, "factor": 3}, {"min_rows": 300}):
        with pytest.raises(StoreError, match=r"written by a search with halving="):
            _run(data, store, halving=other)
    pd.testing.assert_frame_equal(_results(store), before)
    # The same halving, written with its default factor, is the same setting.
    again = _run(data, store, halving={"min_rows": 200})
    assert (again.skipped, again.fitted) == (4, 0)
    # A store from before halving was recorded resumes, with a warning, and records it.
    _forget_setting(store, "halving")
    with pytest.warns(UserWarning, match=r"did not record halving"):
        old = _run(data, store)
    assert (old.skipped, old.fitted) == (4, 0)
    with open_store(store) as db:
        assert db.meta()["halving"] is None
    with pytest.raises(StoreError, match=r"halving=None, not \{'min_rows': 200"):
        _run(data, store, halving={"min_rows": 200})


def test_classes_none_is_0_1_and_a_missing_weights_setting_means_unweighted(data, tmp_path) -> None:
    store, fresh = tmp_path / "classes.db", tmp_path / "fresh.db"
    _run(data, store)  # classes=None
    # The reference: classes=[0, 1] run afresh scores exactly as classes=None did.
    _run(data, fresh, classes=[0, 1])
    pd.testing.assert_frame_equal(_results(fresh), _results(store))
    # Before: StoreError "classes=None, not [0, 1]", for the same models.
    for classes in ([0, 1], [1, 0], np.array([0, 1])):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a store of this version: nothing unchecked
            resumed = _run(data, store, classes=classes)
        assert (resumed.skipped, resumed.fitted) == (4, 0)
    with pytest.raises(StoreError, match=r"classes=\[0, 1\], not \[0, 2\]"):
        _run(data, store, classes=[0, 2])
    # A store from before sample weights was unweighted: before, lacking the key skipped
    # the check and a weighted search resumed into unweighted results.
    _forget_setting(store, "weights")
    with pytest.raises(StoreError, match=r"weights=None, not 'w'"):
        _run(data, store, weights="w")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # implied, so checked: no warning
        resumed = _run(data, store)
    assert (resumed.skipped, resumed.fitted) == (4, 0)


# --- AdaGrad: an explicit zero entry is an absent one ----------------------------------


def _soft(u: float, d: float) -> float:
    return math.copysign(max(abs(u) - d, 0.0), u)


def _dense_adagrad(X, y, *, alpha, l1_ratio, eta, beta, loss):
    """AdaGrad with the per-row elastic net, row by row on the dense matrix.

    A coordinate whose feature is 0 has no loss gradient: it takes the penalty-only
    proximal step with its step size as it stands, and its accumulator is unchanged.
    """
    l1, l2 = alpha * l1_ratio, alpha * (1 - l1_ratio)
    w, n = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    b, nb = 0.0, 0.0
    for x, target in zip(X, y):
        margin = float(w @ x) + b
        if loss == "log":
            g = 1 / (1 + math.exp(-margin)) - target
        else:
            g = margin - target
        for j in range(X.shape[1]):
            if x[j] == 0.0:
                s = eta / (beta + math.sqrt(n[j]))
                w[j] = _soft(w[j] * (1 - s * l2), s * l1)
            else:
                gj = g * x[j] + l2 * w[j]
                n[j] += gj * gj
                s = eta / (beta + math.sqrt(n[j]))
                w[j] = _soft(w[j] - s * gj, s * l1)
        if g != 0.0:
            nb += g * g
            b -= eta / (beta + math.sqrt(nb)) * g
    return w, b


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_adagrad_explicit_zeros_equal_absent_entries_and_dense_adagrad(kind) -> None:
    rng = np.random.default_rng(4)
    rows, cols = 300, 6
    dense = rng.normal(size=(rows, cols)) * (rng.random((rows, cols)) < 0.5)
    dense[:, 0] = 1.0  # one coordinate always present: weights everywhere non-zero
    if kind == "classifier":
        y = (rng.random(rows) < 1 / (1 + np.exp(-dense @ np.linspace(-1, 1, cols)))).astype(int)
        model, loss = FTRLClassifier, "log"
    else:
        y = dense @ np.linspace(-1, 1, cols) + 0.1 * rng.normal(size=rows)
        model, loss = FTRLRegressor, "squared"
    # Every cell stored, zeros included (as a numeric column equal to 0 is hashed).
    full = sp.csr_matrix(
        (dense.ravel(), np.tile(np.arange(cols), rows), np.arange(0, rows * cols + 1, cols)),
        shape=(rows, cols),
    )
    assert full.nnz == rows * cols > sp.csr_matrix(dense).nnz
    params = {"solver": "adagrad", "alpha": 0.02, "l1_ratio": 0.3, "learning_rate": 0.2}
    explicit = model(**params).partial_fit(full, y)
    absent = model(**params).partial_fit(sp.csr_matrix(dense), y)
    w, b = _dense_adagrad(dense, y, alpha=0.02, l1_ratio=0.3, eta=0.2, beta=1.0, loss=loss)
    # Before: the explicit zeros fed the L2 penalty into their accumulators (coefficients
    # off by up to 5e-5 relative, 7e-6 absolute); now they are absent entries, bit for bit.
    np.testing.assert_array_equal(explicit.coef_, absent.coef_)
    np.testing.assert_array_equal(explicit.intercept_, absent.intercept_)
    np.testing.assert_allclose(explicit.coef_.ravel(), w, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(explicit.intercept_, [b], rtol=1e-10)
    # Scoring is unchanged by explicit zeros too.
    score = "decision_function" if kind == "classifier" else "predict"
    np.testing.assert_array_equal(
        getattr(explicit, score)(full), getattr(absent, score)(sp.csr_matrix(dense))
    )


# --- term_indices leaves out the terms of categorical columns not in levels -----------


def test_term_indices_leaves_out_categorical_columns_not_in_levels() -> None:
    rng = np.random.default_rng(9)
    n = 300
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b"], size=n),
            "h": rng.choice(["u", "v", "w"], size=n),
        }
    )
    hasher = HashingFeaturizer(["x", "g", "h"], n_features=2**20, degree=2)
    X = hasher.transform(frame).tocsr()
    x = frame["x"].to_numpy()
    a = pd.get_dummies(frame["g"]).astype(float)["a"].to_numpy()  # the reference one-hot
    expected = {"x": x, "x^2": x * x, "g=a": a, "g=a*x": a * x}
    schema = pa.Table.from_pandas(frame, preserve_index=False).schema
    for data in (frame, schema):
        terms = hasher.term_indices({"g": "a"}, data=data)
        # Before: also "h", "h^2", "h*x" and "g=a*h", as if h were a number.
        assert set(terms) == set(expected)
        for name, (index, sign) in terms.items():
            np.testing.assert_array_equal(X[:, index].toarray().ravel() * sign, expected[name])
    # Neither level given: only the numeric terms.
    assert set(hasher.term_indices(data=frame)) == {"x", "x^2"}
