"""Spline transforms (bs, cr/cs/cc) learned from all rows out of core.

Every number is compared with formulaic's ``model_matrix`` on the whole data in
memory (and statsmodels on that matrix). Rows missing y or z count towards the knots,
as they do in memory: formulaic and statsmodels learn a transform's state before
dropping incomplete rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from design_cases import logit_predicts_as_formulaic, row_group_parquet
from formulaic import model_matrix
from formulaic.errors import FactorEvaluationError

import shardfit
from shardfit.design import quantiles
from shardfit.design.dmatrices import dmatrices
from shardfit.errors import DesignError

ROW_GROUP = 70


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "z": z})
    frame["y"] = np.sin(2 * x) + 0.3 * z + rng.normal(scale=0.2, size=n)
    frame["b"] = (rng.random(n) < 1 / (1 + np.exp(-(np.sin(2 * x) + 0.5 * z)))).astype(float)
    # Missing values: y (the fit drops the row, the knots still count its x), x and z.
    frame.loc[[0, 1, 2, 150], "y"] = np.nan
    frame.loc[[3, 222], "x"] = np.nan
    frame.loc[[4], "z"] = np.nan
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, str]:
    frame = _frame()
    return frame, row_group_parquet(frame, tmp_path_factory.mktemp("splines"), ROW_GROUP, 6)


def _reference_ols(formula: str, frame: pd.DataFrame) -> tuple[np.ndarray, dict]:
    matrices = model_matrix(formula, frame)
    params = sm.OLS(matrices.lhs.to_numpy()[:, 0], matrices.rhs.to_numpy()).fit().params
    return params, dict(matrices.model_spec.rhs.transform_state)


def test_exact_quantiles_out_of_core_bitwise(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    columns = [
        rng.normal(size=1001) * 1e-3,
        rng.integers(-3, 4, size=777).astype(float),  # ties
        1 + rng.random(500),  # one binade: all in a few top-bit bins
        np.concatenate([rng.normal(size=300), [-0.0, 0.0, 1e300, -1e-300, 5e-324]]),
        np.array([2.5]),
    ]
    for limit in (quantiles.COLLECT_LIMIT, 1):  # 1: refine down to single keys
        monkeypatch.setattr(quantiles, "COLLECT_LIMIT", limit)
        for x in columns:
            probabilities = np.linspace(0, 1, 7)[1:-1]
            parts = np.array_split(quantiles.monotone_keys(x), 3)
            histogram = quantiles.KeyHistogram.of(parts[0], 48)
            for part in parts[1:]:
                histogram = histogram.merge(quantiles.KeyHistogram.of(part, 48))
            gamma, previous, following = quantiles.linear_ranks(x.size, probabilities)
            search = quantiles.RankSearch(
                tuple(sorted({*previous.tolist(), *following.tolist()})), histogram
            )
            passes = 0
            while not search.done:
                gathered: dict = {}
                for part in parts:
                    for request in search.requests():
                        found = request.gather(part)
                        gathered[request] = (
                            found
                            if request not in gathered
                            else quantiles.merge_gathered(gathered[request], found)
                        )
                search.update(gathered)
                passes += 1
            assert passes <= 4
            got = quantiles.linear_quantiles(
                gamma,
                [search.values[int(r)] for r in previous],
                [search.values[int(r)] for r in following],
            )
            assert got.tobytes() == np.nanquantile(x, probabilities).tobytes()


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ bs(x, df=5) + z",
        "y ~ bs(x, df=7, degree=2, include_intercept=True) + z",
        "y ~ bs(x, df=5, lower_bound=-1.5, upper_bound=1.5, extrapolation='clip') + z",
        "y ~ bs(x, knots=[-1, 0, 1]) + z",
        "y ~ 0 + cr(x, knots=[-1, 0, 1]) + z",
        "y ~ 0 + cc(x, knots=[-1, 0.5]) + z",
    ],
)
def test_ols_with_splines_matches_formulaic(data: tuple[pd.DataFrame, str], formula: str) -> None:
    frame, path = data
    expected_params, expected_state = _reference_ols(formula, frame)
    for source in (shardfit.from_pandas(frame, npartitions=1), shardfit.read_parquet(path)):
        fit = shardfit.ols(formula, source).fit(backend="serial")
        # The learned state is formulaic's, bit for bit (knots from all 398 finite x,
        # including the 4 rows the fit drops for a missing y).
        assert fit.spec.transform_state == expected_state
        np.testing.assert_allclose(np.asarray(fit.params), expected_params, rtol=1e-10, atol=0)
    _y, X = dmatrices(formula, shardfit.read_parquet(path))
    reference = model_matrix(formula, frame).rhs
    assert list(X.columns) == list(reference.columns)
    np.testing.assert_allclose(X.to_numpy(), reference.to_numpy(), rtol=1e-12, atol=1e-12)


def test_knots_count_rows_the_fit_drops(data: tuple[pd.DataFrame, str]) -> None:
    # In memory (formulaic, statsmodels with missing="drop") the knots come from every
    # finite x, not from df.dropna(): the two differ on this data, and shardfit agrees
    # with the former.
    frame, path = data
    formula = "y ~ bs(x, df=5) + z"
    state = shardfit.ols(formula, shardfit.read_parquet(path)).fit(backend="serial").spec
    knots = state.transform_state["bs(x, df=5)"]["knots"][4:6]
    assert knots == np.nanquantile(frame["x"], [1 / 3, 2 / 3]).tolist()
    assert knots != np.quantile(frame.dropna()["x"], [1 / 3, 2 / 3]).tolist()


def test_logit_with_bs_predicts_after_save_load(data: tuple[pd.DataFrame, str], tmp_path) -> None:
    frame, path = data
    new = pd.DataFrame({"x": [-1.2, 0.0, 0.7, 2.1], "z": [0.5, -0.3, 1.0, 0.0]})
    loaded, matrices = logit_predicts_as_formulaic(
        frame, path, "b ~ bs(x, df=4) + z", new, tmp_path
    )
    # Outside the learned bounds formulaic's bs raises (extrapolation="raise"), and so
    # does the prediction.
    outside = pd.DataFrame({"x": [frame["x"].max() + 1.0], "z": [0.0]})
    with pytest.raises(FactorEvaluationError, match="beyond upper and/or lower bounds"):
        matrices.model_spec.rhs.get_model_matrix(outside)
    with pytest.raises(DesignError, match="beyond upper and/or lower bounds"):
        loaded.predict(outside, backend="serial")


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ bs(center(x), df=4)", "nested stateful"),
    ],
)
def test_refused_before_reading(formula: str, message: str) -> None:
    frame = _frame()
    with pytest.raises(DesignError, match=message):
        shardfit.ols(formula, shardfit.from_pandas(frame)).fit(backend="serial")
