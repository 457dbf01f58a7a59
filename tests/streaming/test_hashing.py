"""HashingFeaturizer: the seed's term rules, exact values, a stable hash, clear errors."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.base import clone

from shardfit import HashingFeaturizer
from shardfit.errors import DesignError, MissingDataError

# The hash is part of the on-disk contract (stored models are read by index): pinned.
PINNED_2_20 = {"x1": (686593, 1), "x1*x2": (558562, 1), "x1^2": (1000856, -1)}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261123)
    n = 500
    return pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], size=n),
            "h": rng.choice(["u", "v"], size=n),
        }
    )


def _names(hasher: HashingFeaturizer, categorical: list[str]) -> list[str]:
    return [term.name for term in hasher.terms(categorical=categorical)]


def test_terms_follow_the_interaction_rules() -> None:
    hasher = HashingFeaturizer(["x1", "x2", "g", "h"], degree=2)
    names = _names(hasher, ["g", "h"])
    assert names == [
        "x1", "x2", "g", "h",
        "x1^2", "x1*x2", "g*x1", "h*x1", "x2^2", "g*x2", "h*x2", "g*h",
    ]  # fmt: skip
    # No categorical with itself at any degree; numeric powers up to the degree.
    cubic = _names(HashingFeaturizer(["x1", "g"], degree=3), ["g"])
    assert cubic == ["x1", "g", "x1^2", "g*x1", "x1^3", "g*x1^2"]


def test_numeric_terms_are_exact_products(frame) -> None:
    hasher = HashingFeaturizer(["x1", "x2"], n_features=2**20, degree=2)
    X = hasher.transform(frame)
    assert X.shape == (len(frame), 2**20) and X.nnz == 5 * len(frame)
    dense = {name: X[:, index].toarray().ravel() * sign for name, (index, sign) in
             hasher.term_indices().items()}  # fmt: skip
    x1, x2 = frame["x1"].to_numpy(), frame["x2"].to_numpy()
    np.testing.assert_array_equal(dense["x1"], x1)
    np.testing.assert_array_equal(dense["x2"], x2)
    np.testing.assert_array_equal(dense["x1^2"], x1 * x1)
    np.testing.assert_array_equal(dense["x1*x2"], x1 * x2)
    np.testing.assert_array_equal(dense["x2^2"], x2 * x2)


def test_categorical_terms_are_signed_one_hot(frame) -> None:
    hasher = HashingFeaturizer(["x1", "g"], n_features=2**20, degree=2)
    X = hasher.transform(frame).tocsr()
    x1 = frame["x1"].to_numpy()
    for level in ("a", "b", "c"):
        terms = hasher.term_indices({"g": level})
        index, sign = terms[f"g={level}"]
        np.testing.assert_array_equal(X[:, index].toarray().ravel() * sign, frame["g"] == level)
        index, sign = terms[f"g={level}*x1"]
        expected = np.where(frame["g"] == level, x1, 0.0)
        np.testing.assert_array_equal(X[:, index].toarray().ravel() * sign, expected)


def test_hash_ignores_column_order_and_input_type(frame) -> None:
    a = HashingFeaturizer(["x1", "x2", "g"], n_features=2**18).transform(frame)
    b = HashingFeaturizer(["g", "x2", "x1"], n_features=2**18).transform(
        pa.Table.from_pandas(frame[["g", "x1", "x2"]])
    )
    # The same entries per row, possibly in another order within the row.
    assert (a - b).count_nonzero() == 0
    dictionary = pa.table({"x1": frame["x1"], "x2": frame["x2"],
                           "g": pa.array(frame["g"]).dictionary_encode()})  # fmt: skip
    c = HashingFeaturizer(["x1", "x2", "g"], n_features=2**18).transform(dictionary)
    assert (a - c).count_nonzero() == 0


def test_hash_is_pinned_across_runs() -> None:
    terms = HashingFeaturizer(["x1", "x2"], n_features=2**20).term_indices()
    assert {k: terms[k] for k in PINNED_2_20} == PINNED_2_20
    other_seed = HashingFeaturizer(["x1", "x2"], n_features=2**20, seed=1).term_indices()
    assert other_seed["x1"] != terms["x1"]


_CHILD = """
import hashlib, sys
import numpy as np, pandas as pd
from shardfit import HashingFeaturizer
rng = np.random.default_rng(5)
frame = pd.DataFrame({"x1": rng.normal(size=300), "g": rng.choice(list("abcdefg"), 300)})
X = HashingFeaturizer(["x1", "g"], n_features=2**22, degree=2).transform(frame)
digest = hashlib.sha256()
for part in (X.indptr, X.indices, X.data):
    digest.update(np.ascontiguousarray(part).tobytes())
print(digest.hexdigest())
"""


def test_hash_is_identical_across_processes() -> None:
    digests = set()
    for seed in ("0", "12345"):  # different salts for Python's own hash
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run(
            [sys.executable, "-c", _CHILD], capture_output=True, text=True, env=env, check=True
        )
        digests.add(done.stdout.strip())
    assert len(digests) == 1
    namespace: dict[str, object] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_CHILD, namespace)  # this process too
    assert digests == {out.getvalue().strip()}


def test_is_a_stateless_scikit_learn_transformer(frame) -> None:
    hasher = HashingFeaturizer(["x1", "g"], n_features=2**12, degree=2)
    copy = clone(hasher)
    assert copy.get_params() == hasher.get_params()
    X = copy.fit_transform(frame)
    assert (X - hasher.transform(frame)).count_nonzero() == 0


def test_bad_input_raises_naming_the_column(frame) -> None:
    with pytest.raises(DesignError, match="column 'zz' is not in the data"):
        HashingFeaturizer(["x1", "zz"]).transform(frame)
    broken = frame.copy()
    broken.loc[7, "x2"] = np.nan
    with pytest.raises(MissingDataError, match=r"column 'x2', row 7 of the batch"):
        HashingFeaturizer(["x1", "x2"]).transform(broken)
    broken = frame.astype({"g": object})
    broken.loc[3, "g"] = None
    with pytest.raises(MissingDataError, match=r"column 'g', row 3 of the batch: missing"):
        HashingFeaturizer(["g"]).transform(broken)
    with pytest.raises(DesignError, match=r"'degree' parameter .* Got 0"):
        HashingFeaturizer(["x1"], degree=0).fit()
    with pytest.raises(DesignError, match="'n_features' parameter"):
        HashingFeaturizer(["x1"], n_features=2**40).fit()
    with pytest.raises(TypeError, match=r"HashingFeaturizer\.transform takes"):
        HashingFeaturizer(["x1"]).transform([[1.0]])
