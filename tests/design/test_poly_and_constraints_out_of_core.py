"""Orthogonal poly() and centred cubic splines (cr/cs/cc with constraints) out of core.

Every number is compared with formulaic's ``model_matrix`` on the whole data in
memory (and statsmodels on that matrix). Rows missing y count towards the learned
state, as in memory: formulaic learns a transform's state before dropping rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from design_cases import logit_predicts_as_formulaic, row_group_parquet
from formulaic import model_matrix

import shardfit
import shardfit.design.schema as schema
from shardfit.design.dmatrices import dmatrices
from shardfit.errors import DesignError

ROW_GROUP = 70


def _frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = 2.0 + 3.0 * rng.normal(size=n)
    z = rng.normal(size=n)
    w = rng.uniform(-2, 2, size=n)  # no missing values: the centred splines' input
    frame = pd.DataFrame({"x": x, "z": z, "w": w})
    signal = np.sin(x / 2) + 0.3 * z + np.cos(2 * w)
    frame["y"] = signal + rng.normal(scale=0.2, size=n)
    frame["b"] = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(float)
    frame.loc[[0, 1, 2, 150], "y"] = np.nan  # dropped by the fit, counted when learning
    frame.loc[[3, 222], "x"] = np.nan
    frame.loc[[4], "z"] = np.nan
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, str]:
    frame = _frame()
    return frame, row_group_parquet(frame, tmp_path_factory.mktemp("poly"), ROW_GROUP, 6)


def _poly_arrays(state: dict) -> np.ndarray:
    """alpha then norms2, by degree (formulaic's int keys or shardfit's saved strings)."""
    return np.array(
        [state[name][key] for name in ("alpha", "norms2") for key in sorted(state[name], key=int)]
    )


def _assert_state_close(got: dict, expected: dict) -> None:
    # formulaic keeps an empty state for poly(x, raw=True), which learns nothing.
    expected = {key: state for key, state in expected.items() if state}
    assert set(got) == set(expected)
    for key, state in expected.items():
        if "alpha" in state:
            assert len(got[key]["alpha"]) == len(state["alpha"])
            assert len(got[key]["norms2"]) == len(state["norms2"])
            np.testing.assert_allclose(
                _poly_arrays(got[key]), _poly_arrays(state), rtol=1e-13, atol=0
            )
        elif "knots" in state:
            assert got[key]["knots"] == state["knots"]
            assert got[key]["cyclic"] == state["cyclic"]
            np.testing.assert_allclose(
                np.asarray(got[key]["constraints"]), state["constraints"], rtol=1e-13, atol=1e-15
            )
        else:  # center(): the exact mean, formulaic's numpy.mean to within rounding
            assert got[key]["scale"] == state["scale"]
            assert got[key]["center"] == pytest.approx(state["center"], rel=1e-13)


def _reference(formula: str, frame: pd.DataFrame) -> tuple[np.ndarray, dict, pd.DataFrame]:
    matrices = model_matrix(formula, frame)
    params = sm.OLS(matrices.lhs.to_numpy()[:, 0], matrices.rhs.to_numpy()).fit().params
    return params, dict(matrices.model_spec.rhs.transform_state), matrices.rhs


FORMULAS = [
    "y ~ poly(x, 3) + poly(z, 2)",
    "y ~ poly(x, degree=4):z + center(w) + poly(x, 2, raw=True)",
    "y ~ 0 + cr(w, knots=[-1, 0, 1], constraints='center') + poly(x, 2)",
    "y ~ cs(w, knots=[-0.5, 0.5], constraints='center') + z",
    "y ~ cc(w, knots=[-1, 0.5], constraints='center') + z",
    "y ~ cr(w, knots=[0], lower_bound=-1.5, upper_bound=1.5, extrapolation='clip', "
    "constraints='center') + z",
    "y ~ 0 + cr(w, knots=[-1, 1], constraints=[[1, -1, 0, 0]]) + z",
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_ols_matches_formulaic_in_memory(data: tuple[pd.DataFrame, str], formula: str) -> None:
    frame, path = data
    expected_params, expected_state, expected_x = _reference(formula, frame)
    states = []
    for source in (shardfit.from_pandas(frame, npartitions=1), shardfit.read_parquet(path)):
        fit = shardfit.ols(formula, source).fit(backend="serial")
        _assert_state_close(fit.spec.transform_state, expected_state)
        np.testing.assert_allclose(np.asarray(fit.params), expected_params, rtol=1e-10, atol=0)
        states.append(fit.spec.transform_state)
    # Exact sums: the same state, bit for bit, from one partition or six row groups.
    assert states[0] == states[1]
    _y, X = dmatrices(formula, shardfit.read_parquet(path))
    assert list(X.columns) == list(expected_x.columns)
    np.testing.assert_allclose(X.to_numpy(), expected_x.to_numpy(), rtol=1e-13, atol=1e-13)


def test_polys_advance_together_one_pass_per_degree(
    data: tuple[pd.DataFrame, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, path = data
    passes: list[str] = []
    real_run_pass = schema.run_pass

    def counting(*args, **kwargs):
        passes.append(kwargs["pass_name"])
        return real_run_pass(*args, **kwargs)

    monkeypatch.setattr(schema, "run_pass", counting)
    formula = "y ~ poly(x, 3) + poly(z, 2) + cr(w, knots=[0], constraints='center')"
    learned = schema.learn_design(formula, shardfit.read_parquet(path), backend="serial")
    # poly(x, 3) needs norms2_1..3 (three passes); poly(z, 2) and the centering ride along.
    assert passes == ["schema", "moments", "moments", "moments"]
    _params, expected_state, _x = _reference(formula, frame)
    _assert_state_close(learned.spec.transform_state, expected_state)


def test_poly_learns_from_rows_the_fit_drops(data: tuple[pd.DataFrame, str]) -> None:
    frame, path = data
    state = (
        shardfit.ols("y ~ poly(x, 2)", shardfit.read_parquet(path))
        .fit(backend="serial")
        .spec.transform_state["poly(x, 2)"]
    )
    # formulaic learns on every non-missing x (398 rows), y missing or not ...
    assert state["norms2"]["0"] == 398.0
    assert state["alpha"]["0"] == pytest.approx(np.nanmean(frame["x"]), rel=1e-15)
    # ... not on the complete rows alone.
    assert state["alpha"]["0"] != pytest.approx(frame.dropna()["x"].mean(), rel=1e-6)


def test_centering_skips_missing_x_where_formulaic_gives_nan(
    data: tuple[pd.DataFrame, str],
) -> None:
    frame, path = data
    formula = "y ~ cr(x, knots=[0, 3], constraints='center') + z"
    # In memory one NaN x makes formulaic's constraint NaN (and every row missing).
    nan_state = model_matrix(formula, frame).model_spec.rhs.transform_state
    assert np.isnan(nan_state["cr(x, knots=[0, 3], constraints='center')"]["constraints"]).all()
    # shardfit leaves the rows with a missing x out of the means, as formulaic does
    # without them (rows missing y still count).
    expected_params, expected_state, _x = _reference(formula, frame[frame["x"].notna()])
    fit = shardfit.ols(formula, shardfit.read_parquet(path)).fit(backend="serial")
    _assert_state_close(fit.spec.transform_state, expected_state)
    np.testing.assert_allclose(np.asarray(fit.params), expected_params, rtol=1e-10, atol=0)


def test_processes_backend_gives_the_serial_state(data: tuple[pd.DataFrame, str]) -> None:
    frame, path = data
    formula = "y ~ poly(x, 3) + cc(w, knots=[-1, 0.5], constraints='center') + z"
    serial = shardfit.ols(formula, shardfit.read_parquet(path)).fit(backend="serial")
    parallel = shardfit.ols(formula, shardfit.read_parquet(path)).fit(
        backend="processes", workers=2
    )
    assert parallel.spec.transform_state == serial.spec.transform_state
    expected_params, expected_state, _x = _reference(formula, frame)
    _assert_state_close(parallel.spec.transform_state, expected_state)
    np.testing.assert_allclose(np.asarray(parallel.params), expected_params, rtol=1e-10, atol=0)


def test_logit_with_poly_predicts_after_save_load(data: tuple[pd.DataFrame, str], tmp_path) -> None:
    frame, path = data
    formula = "b ~ poly(x, 3) + cr(w, knots=[-1, 0, 1], constraints='center') + z"
    # New data, beyond the learned range of x too: the basis learned on all rows.
    new = pd.DataFrame({"x": [-9.0, 0.0, 2.5, 15.0], "w": [-1.5, 0.0, 0.7, 1.9]})
    new["z"] = [0.5, -0.3, 1.0, 0.0]
    logit_predicts_as_formulaic(frame, path, formula, new, tmp_path)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ cr(w, knots=[0], constraints='middle')", "constraints must be 'center'"),
        ("y ~ poly(center(x), 2)", "nested stateful"),
        ("y ~ poly(np.exp(x * 300), 3)", "overflows float64"),
    ],
)
def test_refused_clearly(data: tuple[pd.DataFrame, str], formula: str, message: str) -> None:
    frame, _path = data
    with pytest.raises(DesignError, match=message):
        shardfit.ols(formula, shardfit.from_pandas(frame, npartitions=2)).fit(backend="serial")
