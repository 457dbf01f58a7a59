"""Review of the streaming package and ``shardfit search`` (session 12).

Each test pins a defect against an independent reference: pandas' one-hot encoding,
scikit-learn's ``accuracy_score`` of ``predict`` on a replay, SQLite's own view of a
database file, and the type rules of a TOML configuration.
"""

from __future__ import annotations

import hashlib
import sqlite3
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score

from shardfit import FTRLClassifier, HashingFeaturizer, open_store, search, stream_fit
from shardfit.cli.search_cmd import load_config
from shardfit.errors import MissingDataError
from shardfit.streaming.store import StoreError

# --- a pandas Categorical is categorical, whatever its categories' type ---------------


def test_a_categorical_of_integer_codes_is_one_hot_not_a_number() -> None:
    rng = np.random.default_rng(12)
    codes = rng.choice([3, 7, 11], size=200)
    frame = pd.DataFrame({"g": pd.Categorical(codes), "x": rng.normal(size=200)})
    hasher = HashingFeaturizer(["g", "x"], n_features=2**20, degree=2)
    X = hasher.transform(frame).tocsr()
    # Terms g, x, x^2 and g*x: no g^2 (a level times itself), four entries a row.
    # Before the fix g was the number 3, 7 or 11 (five terms, g^2 among them).
    assert X.nnz == 4 * len(frame)
    dummies = pd.get_dummies(frame["g"]).astype(float)  # the reference one-hot encoding
    x = frame["x"].to_numpy()
    for level in (3, 7, 11):
        terms = hasher.term_indices({"g": str(level)})
        index, sign = terms[f"g={level}"]
        np.testing.assert_array_equal(X[:, index].toarray().ravel() * sign, dummies[level])
        index, sign = terms[f"g={level}*x"]
        np.testing.assert_array_equal(X[:, index].toarray().ravel() * sign, dummies[level] * x)
    # The same encoding as the codes written as text.
    as_text = frame.assign(g=frame["g"].astype(str))
    assert (X - hasher.transform(as_text)).count_nonzero() == 0


def test_nan_in_a_floating_column_read_as_categorical_is_missing() -> None:
    hasher = HashingFeaturizer(["g"], n_features=16, degree=1, categorical=["g"])
    values = np.array([1.0, 2.0, np.nan, 1.0])
    # Before: the level "nan", silently (a null was refused, a NaN was not).
    with pytest.raises(MissingDataError, match=r"column 'g', row 2 of the batch: missing"):
        hasher.transform({"g": values})
    encoded = pa.table({"g": pa.array(values, from_pandas=False).dictionary_encode()})
    with pytest.raises(MissingDataError, match=r"column 'g', row 2 of the batch: missing"):
        hasher.transform(encoded)


# --- progressive accuracy counts the label predict gives ----------------------------


@pytest.mark.parametrize(
    "estimator",
    [
        FTRLClassifier(fit_intercept=False),
        SGDClassifier(loss="log_loss", fit_intercept=False, random_state=0),
    ],
    ids=["ftrl", "sgd"],
)
def test_progressive_accuracy_equals_accuracy_score_of_predict(estimator) -> None:
    # Many levels, no intercept: a row whose level was never seen has decision value 0
    # (probability 0.5), which predict gives as the first class.
    rng = np.random.default_rng(0)
    n, batch = 2_000, 100
    frame = pd.DataFrame({"g": rng.choice([f"l{i}" for i in range(400)], n)})
    frame["y"] = (rng.random(n) < 0.3).astype(np.int64)
    hasher = HashingFeaturizer(["g"], n_features=2**12, degree=1)
    result = stream_fit(
        estimator, hasher, frame, target="y", batch_rows=batch, drop=0.0, scoring="accuracy"
    )
    twin = type(estimator)(**estimator.get_params())
    X, y = hasher.transform(frame), frame["y"].to_numpy()
    expected, ties = [], 0
    for start in range(0, n, batch):
        part = slice(start, start + batch)
        if start:
            expected.append(accuracy_score(y[part], twin.predict(X[part])))
            ties += int((twin.decision_function(X[part]) == 0).sum())
        twin.partial_fit(X[part], y[part], classes=[0, 1])
    assert ties > 100  # the case at stake
    # Before the fix a probability of 0.5 counted as the positive class: 0.53 where
    # accuracy_score gives 0.60.
    np.testing.assert_allclose(result.curve["accuracy"], expected, rtol=0, atol=1e-15)
    assert result.score == pytest.approx(np.mean(expected), rel=1e-14)


# --- the search's configuration and store are checked before any work ----------------


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> str:
    rng = np.random.default_rng(7)
    n = 600
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-frame["x1"]))).astype(np.int64)
    path = tmp_path_factory.mktemp("s12") / "d.parquet"
    frame.to_parquet(path)
    return str(path)


SPACE = {
    "featurizer": {"columns": ["x1", "x2"], "n_features": 64},
    "learner": {"estimator": "ftrl", "alpha": [0.001, 0.01]},
}


_TOML = """data = "{data}"
target = "y"
store = "m.db"
batch_rows = 100
{extra}
[grid.featurizer]
columns = ["x1", "x2"]
n_features = 64
[grid.learner]
estimator = "ftrl"
alpha = [0.001, 0.01]
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('resume = "false"', "'resume' must be true or false; got 'false'"),
        ('allow_pickle = "no"', "'allow_pickle' must be true or false; got 'no'"),
        ("halving = 5", r"'halving' must be a table \(min_rows, factor\); got 5"),
        ('n_iter = "3"', "'n_iter' must be an integer; got '3'"),
        ('classes = "ab"', "'classes' must be an array of the two labels; got 'ab'"),
        ("batch_rows = true", "'batch_rows' must be an integer; got True"),
    ],
)
def test_a_config_value_of_the_wrong_type_is_refused_naming_the_key(
    small_data, tmp_path, extra, message
) -> None:
    # Before: resume = "false" and allow_pickle = "no" were truthy strings (the search
    # resumed, pickles would load); the others failed with Python's words and no key.
    text = _TOML.format(data=small_data, extra=extra)
    if extra.startswith("batch_rows"):
        text = text.replace("batch_rows = 100\n", "")
    config = tmp_path / "search.toml"
    config.write_text(text)
    with pytest.raises(ValueError, match=rf"search\.toml: {message}"):
        load_config(config)


def test_search_refuses_bad_flags_and_classes_before_writing_the_store(
    small_data, tmp_path
) -> None:
    store = tmp_path / "m.db"
    for flag in ("resume", "allow_pickle"):
        with pytest.raises(ValueError, match=rf"'{flag}' parameter of search must be a bool"):
            search(SPACE, small_data, target="y", store=store, batch_rows=100, **{flag: "no"})
    # Before: three classes were refused in a worker, after the store was written.
    with pytest.raises(ValueError, match="classes must hold 2 labels"):
        search(SPACE, small_data, target="y", store=store, batch_rows=100, classes=[0, 1, 2])
    assert not store.exists()


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_another_programs_database_is_refused_and_left_untouched(small_data, tmp_path) -> None:
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as conn:
        conn.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ana')")
    conn.close()
    before = _digest(app)
    # Before: the search added its four tables to the database and made it WAL.
    with pytest.raises(StoreError, match=r"app\.db is an SQLite database but not a shardfit"):
        search(SPACE, small_data, target="y", store=app, batch_rows=100, backend="serial")
    with pytest.raises(StoreError, match=r"it has the table\(s\) users"):
        open_store(app)
    assert _digest(app) == before
    with sqlite3.connect(app) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("users",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_stores_of_another_layout_or_a_newer_format_are_refused_by_name(
    small_data, tmp_path
) -> None:
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE results (key TEXT PRIMARY KEY, params TEXT, score REAL)")
    conn.close()
    # Before: "no such column: status", or a failed save after the first unit's work.
    with pytest.raises(StoreError, match=r"table 'results' lacks the column\(s\) status"):
        search(SPACE, small_data, target="y", store=old, batch_rows=100, backend="serial")
    done = search(SPACE, small_data, target="y", store=tmp_path / "s.db", batch_rows=100,
                  backend="serial")  # fmt: skip
    with sqlite3.connect(done.store) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (1,)
        conn.execute("PRAGMA user_version=0")  # a store written before the format was set
    conn.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = search(SPACE, small_data, target="y", store=done.store, batch_rows=100,
                       backend="serial")  # fmt: skip
    assert (again.skipped, again.fitted) == (2, 0)
    with sqlite3.connect(done.store) as conn:
        conn.execute("PRAGMA user_version=2")  # a newer shardfit's
    conn.close()
    with pytest.raises(StoreError, match="has format 2, written by a newer shardfit"):
        open_store(done.store)


def test_a_search_refuses_a_scoring_its_learners_cannot_give(small_data, tmp_path) -> None:
    # stream_fit refused it already; search stored every score as NaN (unranked).
    space = [
        {**SPACE, "learner": {"estimator": "sgd", "loss": "hinge", "random_state": 0}},
        {**SPACE, "learner": {"estimator": "ftrl", "loss": "hinge"}},
    ]
    store = tmp_path / "hinge.db"
    with pytest.raises(ValueError, match=r"scoring='log_loss' does not apply to configuration"):
        search(space, small_data, target="y", store=store, batch_rows=100, scoring="log_loss")
    assert not store.exists()
    # The metrics a hinge loss has: scored, and equal to stream_fit's.
    done = search(space, small_data, target="y", store=store, batch_rows=100,
                  scoring="accuracy", backend="serial")  # fmt: skip
    hasher = HashingFeaturizer(**SPACE["featurizer"])
    with open_store(done.store) as db:
        for record in db.best(2):
            params = dict(record.params["learner"])
            kind = {"sgd": SGDClassifier, "ftrl": FTRLClassifier}[params.pop("estimator")]
            learner = kind(**params)
            expected = stream_fit(learner, hasher, small_data, target="y", batch_rows=100,
                                  scoring="accuracy")  # fmt: skip
            assert np.isfinite(record.score) and record.score == expected.score
