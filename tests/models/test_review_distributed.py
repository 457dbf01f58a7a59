"""Review of DistributedModel as a statsmodels user would use it (review 2).

Edge cases against statsmodels' ``DistributedModel`` on the same partitions (one
partition, unequal sizes, more data partitions than ``partitions``), and the rows a
formula fit drops for missing values, which must be counted and reported.
"""

from __future__ import annotations

import itertools
import warnings

import formulaic
import numpy as np
import pandas as pd
import pytest
from statsmodels.base import distributed_estimation as smd

import shardfit
from shardfit.models.distributed import DistributedModel

AVERAGE = {"estimation_method": smd._est_unregularized_naive, "join_method": smd._join_naive}
FORMULA = "y ~ x1 + x2 + C(g)"


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261201)
    X = rng.standard_normal((700, 6))
    X[:, 0] = 1.0
    X[:, 3] += 0.6 * X[:, 2]
    y = X @ np.array([0.5, 1.0, -0.8, 0.4, 0.0, 0.2]) + rng.standard_normal(700)
    return X, y


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 600
    data = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "g": rng.choice(list("abc"), n)}
    )
    data["y"] = data["x1"] - 0.5 * data["x2"] + (data["g"] == "b") + rng.normal(size=n)
    data.loc[[5, 17, 400], "x1"] = np.nan  # two rows in the first partition, one in the third
    data.loc[250, "y"] = np.inf
    return data


def _split(X, y, sizes):
    bounds = np.cumsum([0, *sizes])
    return [(y[a:b], X[a:b]) for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize(
    ("sizes", "k", "method"),
    [
        ([700], 1, "debiased"),
        ([700], 1, "average"),
        ([100, 250, 350], 3, "debiased"),
        ([100, 250, 350], 3, "average"),
        ([175, 175, 175, 175], 2, "debiased"),  # more data partitions than K
    ],
)
def test_edge_partitionings_equal_statsmodels(arrays, sizes, k, method) -> None:
    X, y = arrays
    pairs = _split(X, y, sizes)
    kwds = AVERAGE if method == "average" else {}
    fit_kwds = {} if method == "average" else {"alpha": 0.05}
    expected = smd.DistributedModel(k, **kwds).fit(iter(pairs), fit_kwds=fit_kwds).params
    result = DistributedModel(k, **kwds).fit(iter(pairs), fit_kwds=fit_kwds)
    np.testing.assert_allclose(result.params, expected, rtol=0, atol=1e-10)
    assert result.nobs == result.rows_read == 700 and result.rows_dropped == {}


def test_rows_dropped_for_missing_values_are_counted(frame, tmp_path) -> None:
    model = DistributedModel(3, formula=FORMULA)
    result = model.fit(frame, fit_kwds={"alpha": 0.02})
    # The reference: statsmodels on the complete rows of the same three partitions.
    pairs = []
    for rows in np.array_split(np.arange(len(frame)), 3):
        part = frame.iloc[rows]
        part = part[np.isfinite(part[["x1", "x2", "y"]]).all(axis=1)]
        y, X = formulaic.model_matrix(FORMULA, part)
        pairs.append((y.to_numpy().ravel(), X.to_numpy()))
    expected = smd.DistributedModel(3).fit(iter(pairs), fit_kwds={"alpha": 0.02}).params
    np.testing.assert_allclose(result.params.to_numpy(), expected, rtol=0, atol=1e-10)
    # Before: nothing said that 4 of the 600 rows were not used.
    assert result.rows_read == 600
    assert result.nobs == 596 == sum(len(y) for y, _ in pairs)
    assert result.rows_dropped == {"missing": 4}
    text = str(result.summary())
    assert "No. Observations:                 596" in text
    assert "4 of the 600 rows read were not used (missing: 4)" in text
    loaded = shardfit.load_results(result.save(tmp_path / "fit.json"))
    assert (loaded.nobs, loaded.rows_read, loaded.rows_dropped) == (596, 600, {"missing": 4})
    np.testing.assert_array_equal(loaded.params, result.params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the new rows with missing values are skipped
        np.testing.assert_array_equal(loaded.predict(frame), result.predict(frame))


def test_glm_fits_count_rows_too(frame) -> None:
    data = frame.assign(y=(frame["y"] > 0.5).astype(float))
    data.loc[[3, 300], "x2"] = np.nan
    result = DistributedModel(2, formula=FORMULA, model="glm", family="binomial").fit(
        data, fit_kwds={"alpha": 0.02}
    )
    assert result.rows_dropped == {"missing": 5} and result.nobs == 595


def test_malformed_rows_the_reader_skipped_are_counted(frame, tmp_path) -> None:
    finite = np.isfinite(frame[["x1", "x2", "y"]]).all(axis=1)
    complete = frame[finite].iloc[:300]
    lines = complete[["x1", "x2", "g", "y"]].to_csv(index=False).splitlines()
    lines.insert(50, "1.0,2.0,a,3.0,an extra field")
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    model = DistributedModel(1, formula=FORMULA, method="average")
    result = model.fit(shardfit.read_csv(path, on_bad_lines="skip"))
    expected = model.fit(complete.reset_index(drop=True))
    np.testing.assert_allclose(result.params, expected.params, rtol=1e-12)
    assert (result.nobs, result.rows_read, result.rows_skipped) == (300, 300, 1)
    assert "Rows skipped:                       1" in str(result.summary())
    assert "alpha:                              -" in str(result.summary())  # not "nan"
