"""cr/cs/cc(x, df=...) out of core: knots at percentiles of the distinct values of x.

formulaic places the inner knots at ``numpy.nanpercentile(numpy.unique(x_in_bounds),
...)``; shardfit collects each partition's distinct values in the schema pass and
merges them by sorted union, so the knots are formulaic's bit for bit. Every number
is compared with formulaic's ``model_matrix`` on the whole data in memory (and
statsmodels on that matrix).
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
from shardfit.design import distinct_values, schema
from shardfit.design.dmatrices import dmatrices
from shardfit.errors import DesignError

ROW_GROUP = 70


def _frame(n: int = 400, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Rounded: many ties, so the percentiles of the distinct values differ from the
    # quantiles of x (the knots of bs(x, df=...)).
    x = np.round(rng.normal(size=n), 1)
    w = rng.normal(size=n)
    z = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "w": w, "z": z})
    frame["y"] = np.sin(2 * x) + np.cos(w) + 0.3 * z + rng.normal(scale=0.2, size=n)
    frame["b"] = (rng.random(n) < 1 / (1 + np.exp(-np.sin(2 * x) - 0.5 * z))).astype(float)
    # A missing y: the fit drops the row, the knots still count its x (as in memory).
    frame.loc[[0, 1, 150], "y"] = np.nan
    frame.loc[[0, 150], "x"] = [3.5, 0.05]  # distinct values only rows missing y hold
    frame.loc[[3, 222], "x"] = np.nan  # missing x: not among the distinct values
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, str]:
    frame = _frame()
    return frame, row_group_parquet(frame, tmp_path_factory.mktemp("cubic_df"), ROW_GROUP, 6)


def _assert_state(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, state in expected.items():
        # Knots and bounds: the same arithmetic on the same values, bit for bit.
        assert got[key]["knots"] == state["knots"], key
        assert got[key]["lower_bound"] == state["lower_bound"]
        assert got[key]["upper_bound"] == state["upper_bound"]
        assert got[key]["cyclic"] == state["cyclic"]
        if state["constraints"] is None:
            assert got[key]["constraints"] is None
        else:  # the centering means: exact sums, rounded once (numpy.mean in memory)
            np.testing.assert_allclose(
                np.asarray(got[key]["constraints"]), state["constraints"], rtol=1e-13, atol=1e-15
            )


FORMULAS = [
    "y ~ 0 + cr(x, df=5) + z",
    "y ~ 0 + cs(x, df=4) + w",
    "y ~ 0 + cc(x, df=4) + z",
    "y ~ cr(w, df=4, constraints='center') + z",
    "y ~ cc(w, df=3, constraints='center') + cr(z, df=3, constraints='center')",
    "y ~ 0 + cr(w, df=3, constraints=[[1, -1, 0, 0]]) + z",
    # Given bounds: the knots come from the distinct values within them only.
    "y ~ 0 + cr(x, df=4, lower_bound=-1, upper_bound=1, extrapolation='clip') + z",
    "y ~ 0 + cr(x, df=4, lower_bound=-1.5) + z",
    # The row-wise tensor product of two marginal bases (te() without constraints).
    "y ~ 0 + cr(x, df=3):cr(w, df=4) + z",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_ols_matches_formulaic_in_memory(data: tuple[pd.DataFrame, str], formula: str) -> None:
    frame, path = data
    matrices = model_matrix(formula, frame)
    expected = sm.OLS(matrices.lhs.to_numpy()[:, 0], matrices.rhs.to_numpy()).fit().params
    expected_state = dict(matrices.model_spec.rhs.transform_state)
    states = []
    for source in (shardfit.from_pandas(frame, npartitions=1), shardfit.read_parquet(path)):
        fit = shardfit.ols(formula, source).fit(backend="serial")
        _assert_state(fit.spec.transform_state, expected_state)
        np.testing.assert_allclose(np.asarray(fit.params), expected, rtol=1e-10, atol=0)
        states.append(fit.spec.transform_state)
    assert states[0] == states[1]  # one partition or six row groups: the same bits
    _y, X = dmatrices(formula, shardfit.read_parquet(path))
    assert list(X.columns) == list(matrices.rhs.columns)
    np.testing.assert_allclose(X.to_numpy(), matrices.rhs.to_numpy(), rtol=1e-12, atol=1e-12)


def test_knots_are_percentiles_of_distinct_values_in_the_schema_pass(
    data: tuple[pd.DataFrame, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, path = data
    passes: list[str] = []
    real_run_pass = schema.run_pass

    def counting(*args, **kwargs):
        passes.append(kwargs["pass_name"])
        return real_run_pass(*args, **kwargs)

    monkeypatch.setattr(schema, "run_pass", counting)
    learned = schema.learn_design(
        "y ~ 0 + cr(x, df=5)", shardfit.read_parquet(path), backend="serial"
    )
    assert passes == ["schema"]  # the distinct values ride on the schema pass
    knots = learned.spec.transform_state["cr(x, df=5)"]["knots"][1:-1]
    # All 398 finite x (rows missing y too), distinct, then NumPy's percentiles ...
    distinct = np.unique(frame["x"].dropna())
    assert knots == np.percentile(distinct, [25, 50, 75]).tolist()
    # ... which are neither the quantiles of x nor those of the rows the fit keeps.
    assert knots != np.nanquantile(frame["x"], [0.25, 0.5, 0.75]).tolist()
    assert knots != np.percentile(np.unique(frame.dropna()["x"]), [25, 50, 75]).tolist()

    passes.clear()
    schema.learn_design(
        "y ~ cr(w, df=4, constraints='center')", shardfit.read_parquet(path), backend="serial"
    )
    assert passes == ["schema", "moments"]  # knots first, then the centering means


def test_too_many_distinct_values_are_refused_naming_the_column(
    data: tuple[pd.DataFrame, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, path = data
    count = np.unique(frame["x"].dropna()).size
    formula = "y ~ 0 + cr(x, df=4) + z"
    expected_state = dict(model_matrix(formula, frame).model_spec.rhs.transform_state)
    # At the cap: learned as in memory.
    monkeypatch.setattr(distinct_values, "MAX_DISTINCT", count)
    fit = shardfit.ols(formula, shardfit.read_parquet(path)).fit(backend="serial")
    _assert_state(fit.spec.transform_state, expected_state)
    # One over: refused, though no single row group holds that many.
    starts = range(0, len(frame), ROW_GROUP)
    assert max(np.unique(frame["x"][i : i + ROW_GROUP].dropna()).size for i in starts) < count
    monkeypatch.setattr(distinct_values, "MAX_DISTINCT", count - 1)
    with pytest.raises(DesignError, match=rf"column 'x' has more than {count - 1} distinct"):
        shardfit.ols(formula, shardfit.read_parquet(path)).fit(backend="serial")


def test_processes_backend_gives_the_serial_state(data: tuple[pd.DataFrame, str]) -> None:
    frame, path = data
    formula = "y ~ 0 + cr(x, df=5) + cc(w, df=4)"  # one pass: the schema pass
    serial = schema.learn_design(formula, shardfit.read_parquet(path), backend="serial")
    # The partitions' distinct values cross process boundaries and merge there.
    parallel = schema.learn_design(
        formula, shardfit.read_parquet(path), backend="processes", workers=2
    )
    assert parallel.spec.transform_state == serial.spec.transform_state
    expected = model_matrix(formula, frame).model_spec.rhs.transform_state
    _assert_state(parallel.spec.transform_state, dict(expected))


def test_logit_predicts_after_save_load(data: tuple[pd.DataFrame, str], tmp_path) -> None:
    frame, path = data
    formula = "b ~ 0 + cr(w, df=4, constraints='center') + cc(x, df=3) + z"
    # New rows, beyond the learned bounds too (cr extends, cc wraps around).
    new = pd.DataFrame({"x": [-9.0, 0.05, 1.3, 6.0], "w": [-4.0, 0.0, 0.7, 5.5]})
    new["z"] = [0.5, -0.3, 1.0, 0.0]
    logit_predicts_as_formulaic(frame, path, formula, new, tmp_path)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ cr(x, df=1)", r"'df'=1 must be greater than or equal to 2"),
        ("y ~ cc(x, df=0)", r"'df'=0 must be greater than or equal to 1"),
        ("y ~ cr(k, df=3)", r"Unable to compute n_inner_knots\(1\) \+ 2 distinct knots"),
    ],
)
def test_errors_are_formulaics(formula: str, message: str) -> None:
    frame = _frame().assign(k=2.0)  # one distinct value: knots coincide
    with pytest.raises(FactorEvaluationError, match=message):
        model_matrix(formula, frame)
    with pytest.raises(DesignError, match=message):
        shardfit.ols(formula, shardfit.from_pandas(frame, 3)).fit(backend="serial")


def test_te_is_refused_because_formulaic_has_none() -> None:
    frame = _frame()
    formula = "y ~ te(cr(x, df=3), cr(w, df=3))"
    with pytest.raises(FactorEvaluationError, match="name 'te' is not defined"):
        model_matrix(formula, frame)
    with pytest.raises(DesignError, match=r"formulaic.* has no tensor-product smooth te\(\)"):
        shardfit.ols(formula, shardfit.from_pandas(frame, 3)).fit(backend="serial")
