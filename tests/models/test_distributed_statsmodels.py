"""DistributedModel equals statsmodels' DistributedModel with the same partitions and
settings (issue 7): averaging, regularized averaging and the one-shot debiased lasso,
for OLS, WLS and the binomial and Poisson GLMs, sequentially and on processes and Dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.base import distributed_estimation as smd

import shardfit
from shardfit.models.distributed import DistributedModel

RTOL = 1e-6
K = 3
N = 600
METHODS = {
    "debiased": {},
    "average": {
        "estimation_method": smd._est_unregularized_naive,
        "join_method": smd._join_naive,
    },
    "average_regularized": {
        "estimation_method": smd._est_regularized_naive,
        "join_method": smd._join_naive,
    },
}


def _close(actual, expected, rtol=RTOL) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = np.max(np.abs(expected))
    assert np.all(np.isfinite(expected)), "the reference must be finite"
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(20261130)
    X = rng.standard_normal((N, 7))
    X[:, 0] = 1.0
    X[:, 3] += 0.6 * X[:, 2]  # correlated columns make the node-wise lassos work
    beta = np.array([0.5, 1.0, -0.8, 0.4, 0.0, 0.0, 0.2])
    eta = X @ beta
    return {
        "X": X,
        "y": eta + rng.standard_normal(N),
        "yb": (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float),
        "yp": rng.poisson(np.exp(0.3 * eta)).astype(float),
        "w": rng.uniform(0.5, 2.0, N),
    }


def _pairs(X: np.ndarray, y: np.ndarray, k: int = K):
    return [(y[rows], X[rows]) for rows in np.array_split(np.arange(len(y)), k)]


def _statsmodels(method: str, pairs, alpha: float, **model) -> np.ndarray:
    fit_kwds = {} if method == "average" else {"alpha": alpha}
    reference = smd.DistributedModel(len(pairs), **model, **METHODS[method])
    return np.asarray(reference.fit(iter(pairs), fit_kwds=fit_kwds).params)


def _ours(method: str, pairs, alpha: float, backend="serial", **model):
    fit_kwds = {} if method == "average" else {"alpha": alpha}
    ours = DistributedModel(len(pairs), **model, **METHODS[method])
    return ours.fit(iter(pairs), fit_kwds=fit_kwds, backend=backend)


@pytest.mark.parametrize("method", list(METHODS))
def test_ols_equals_statsmodels(data, method) -> None:
    pairs = _pairs(data["X"], data["y"])
    expected = _statsmodels(method, pairs, 0.05)
    result = _ours(method, pairs, 0.05)
    assert result.solver == "shardfit"
    assert result.method == method
    _close(result.params, expected)
    assert isinstance(result.params, np.ndarray)  # arrays in, an array out, as statsmodels


@pytest.mark.parametrize("method", list(METHODS))
def test_binomial_equals_statsmodels(data, method) -> None:
    pairs = _pairs(data["X"], data["yb"])
    model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Binomial()}}
    expected = _statsmodels(method, pairs, 0.02, **model)
    result = _ours(method, pairs, 0.02, **model)
    assert result.solver == "shardfit" and result.family == "binomial"
    _close(result.params, expected)
    # the shardfit spelling of the same model
    spelled = DistributedModel(K, model="glm", family="binomial", method=method, alpha=0.02)
    _close(spelled.fit(iter(pairs), backend="serial").params, expected)


@pytest.mark.parametrize("method", ["debiased", "average"])
def test_poisson_equals_statsmodels(data, method) -> None:
    pairs = _pairs(data["X"], data["yp"])
    model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Poisson()}}
    _close(_ours(method, pairs, 0.02, **model).params, _statsmodels(method, pairs, 0.02, **model))


@pytest.mark.parametrize("method", ["debiased", "average"])
def test_poisson_with_exposure_per_partition(data, method) -> None:
    pairs = _pairs(data["X"], data["yp"])
    exposure = np.linspace(0.5, 2.0, N)

    def per_partition():
        return ({"exposure": exposure[r]} for r in np.array_split(np.arange(N), K))

    model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Poisson()}}
    fit_kwds = {} if method == "average" else {"alpha": 0.02}
    expected = smd.DistributedModel(K, **model, **METHODS[method]).fit(
        iter(pairs), fit_kwds=fit_kwds, init_kwds_generator=per_partition()
    )
    result = DistributedModel(K, **model, **METHODS[method]).fit(
        iter(pairs), fit_kwds=fit_kwds, init_kwds_generator=per_partition(), backend="serial"
    )
    assert result.solver == "shardfit"
    _close(result.params, expected.params)


def test_probit_link_equals_statsmodels(data) -> None:
    pairs = _pairs(data["X"], data["yb"])
    family = sm.families.Binomial(link=sm.families.links.Probit())
    model = {"model_class": sm.GLM, "init_kwds": {"family": family}}
    result = _ours("debiased", pairs, 0.02, **model)
    assert result.solver == "shardfit" and result.link == "probit"
    _close(result.params, _statsmodels("debiased", pairs, 0.02, **model))


@pytest.mark.parametrize("method", ["average", "average_regularized"])
def test_wls_with_per_partition_weights(data, method) -> None:
    rows = np.array_split(np.arange(N), K)
    pairs = _pairs(data["X"], data["y"])
    fit_kwds = {} if method == "average" else {"alpha": 0.05}
    reference = smd.DistributedModel(K, model_class=sm.WLS, **METHODS[method]).fit(
        iter(pairs),
        fit_kwds=fit_kwds,
        init_kwds_generator=({"weights": data["w"][r]} for r in rows),
    )
    ours = DistributedModel(K, model_class=sm.WLS, **METHODS[method]).fit(
        iter(pairs),
        fit_kwds=fit_kwds,
        init_kwds_generator=({"weights": data["w"][r]} for r in rows),
        backend="serial",
    )
    assert ours.solver == "shardfit"
    _close(ours.params, reference.params)


def test_penalty_per_coefficient(data) -> None:
    pairs = _pairs(data["X"], data["y"])
    alpha = np.array([0.0, 0.1, 0.1, 0.05, 0.2, 0.2, 0.1])  # the intercept unpenalized
    expected = _statsmodels("average_regularized", pairs, alpha)
    result = _ours("average_regularized", pairs, alpha)
    _close(result.params, expected)
    assert result.params[0] != 0 and result.alpha == list(alpha)


def test_wls_debiased_with_unit_weights_is_ols(data) -> None:
    # statsmodels' WLS has no analytic score, so its debiased method fails; ours scores
    # the WLS profile likelihood, which unit weights reduce to OLS'.
    pairs = _pairs(data["X"], data["y"])
    ones = ({"weights": np.ones(len(y))} for y, _ in pairs)
    wls = DistributedModel(K, model_class=sm.WLS, alpha=0.05).fit(
        iter(pairs), init_kwds_generator=ones, backend="serial"
    )
    _close(wls.params, _statsmodels("debiased", pairs, 0.05), rtol=1e-12)


def test_threshold_and_l1_wt(data) -> None:
    pairs = _pairs(data["X"], data["y"])
    fit_kwds = {"alpha": 0.08, "L1_wt": 0.6}
    expected = smd.DistributedModel(K, join_kwds={"threshold": 0.1}).fit(
        iter(pairs), fit_kwds=fit_kwds
    )
    result = DistributedModel(K, join_kwds={"threshold": 0.1}).fit(
        iter(pairs), fit_kwds=fit_kwds, backend="serial"
    )
    _close(result.params, expected.params)
    assert np.sum(result.params == 0) >= 1  # the threshold zeroed the small ones
    assert result.threshold == 0.1 and result.l1_wt == 0.6


def test_other_statsmodels_models_run_statsmodels(data) -> None:
    # A Gaussian GLM scores with an estimated scale: statsmodels runs it, on our backend.
    pairs = _pairs(data["X"], data["y"])
    model = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Gaussian()}}
    expected = _statsmodels("average_regularized", pairs, 0.05, **model)
    result = _ours("average_regularized", pairs, 0.05, **model)
    assert result.solver == "statsmodels" and result.model == "GLM"
    _close(result.params, expected)


def _ols_params(mod, pnum, partitions, fit_kwds=None):
    return mod.fit().params


def _median_join(params, scale=1.0):
    return np.median(np.vstack(params), axis=0) * scale


def test_custom_estimation_and_join_run_like_statsmodels(data) -> None:
    pairs = _pairs(data["X"], data["y"], 5)
    settings = {
        "estimation_method": _ols_params,
        "join_method": _median_join,
        "join_kwds": {"scale": 2.0},
    }
    expected = smd.DistributedModel(5, **settings).fit(iter(pairs)).params
    result = DistributedModel(5, **settings).fit(iter(pairs), backend="serial")
    assert result.solver == "statsmodels" and result.method == "custom"
    _close(result.params, expected, rtol=1e-12)


def test_forced_statsmodels_solver_equals_ours(data) -> None:
    pairs = _pairs(data["X"], data["y"])
    ours = DistributedModel(K, alpha=0.05).fit(iter(pairs), backend="serial")
    theirs = DistributedModel(K, alpha=0.05, solver="statsmodels").fit(
        iter(pairs), backend="serial"
    )
    assert theirs.solver == "statsmodels"
    _close(ours.params, theirs.params, rtol=1e-9)


def test_formula_data_equals_statsmodels_on_the_same_partitions(data) -> None:
    frame = pd.DataFrame(data["X"][:, 1:], columns=[f"x{j}" for j in range(1, 7)])
    frame["y"] = data["yb"]
    formula = "y ~ " + " + ".join(frame.columns[:-1])
    source = shardfit.from_pandas(frame, K)
    result = DistributedModel(formula=formula, model="glm", family="binomial", alpha=0.02).fit(
        source, backend="serial"
    )
    expected = _statsmodels(
        "debiased",
        _pairs(data["X"], data["yb"]),
        0.02,
        model_class=sm.GLM,
        init_kwds={"family": sm.families.Binomial()},
    )
    assert list(result.params.index) == ["Intercept", *frame.columns[:-1]]
    _close(result.params.to_numpy(), expected)
    # predict: the mean through the link, from new data or a design matrix
    mean = result.predict(frame.head(5))
    np.testing.assert_allclose(
        mean, 1 / (1 + np.exp(-data["X"][:5] @ result.params_array)), rtol=1e-12
    )
    text = str(result.summary())
    assert "debiased" in text and "x6" in text


def test_formula_weights_are_wls(data) -> None:
    frame = pd.DataFrame(data["X"][:, 1:], columns=[f"x{j}" for j in range(1, 7)])
    frame["y"], frame["w"] = data["y"], data["w"]
    formula = "y ~ " + " + ".join(frame.columns[:6])
    result = DistributedModel(formula=formula, weights="w", method="average_regularized").fit(
        shardfit.from_pandas(frame, K), fit_kwds={"alpha": 0.05}, backend="serial"
    )
    rows = np.array_split(np.arange(N), K)
    reference = smd.DistributedModel(K, model_class=sm.WLS, **METHODS["average_regularized"]).fit(
        iter(_pairs(data["X"], data["y"])),
        fit_kwds={"alpha": 0.05},
        init_kwds_generator=({"weights": data["w"][r]} for r in rows),
    )
    _close(result.params.to_numpy(), reference.params)


def test_a_column_all_zero_in_a_partition_warns(data) -> None:
    X = data["X"].copy()
    X[200:400, 5] = 0.0  # zero throughout the second partition, which regresses x5
    pairs = _pairs(X, data["y"])
    with pytest.warns(UserWarning, match=r"1 coefficient\(s\) are NaN \(x5\)"):
        result = DistributedModel(K, alpha=0.05).fit(iter(pairs), backend="serial")
    with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels' 1/0
        expected = _statsmodels("debiased", pairs, 0.05)
    assert np.isnan(result.params[5]) and np.isnan(expected[5])
    finite = np.isfinite(expected)
    _close(result.params[finite], expected[finite])


def test_errors(data) -> None:
    pairs = _pairs(data["X"], data["y"])
    with pytest.raises(ValueError, match="needs the penalty"):
        DistributedModel(K).fit(iter(pairs), backend="serial")
    with pytest.raises(ValueError, match="'method' parameter"):
        DistributedModel(K, method="median", alpha=1.0).fit(iter(pairs), backend="serial")
    with pytest.raises(ValueError, match="init_kwds_generator gave 2 items for 3"):
        DistributedModel(K, method="average").fit(
            iter(pairs), init_kwds_generator=iter([{}, {}]), backend="serial"
        )
    with pytest.raises(ValueError, match="use solver='statsmodels'"):
        DistributedModel(K, solver="shardfit").fit(
            iter(pairs), fit_kwds={"alpha": 1.0, "refit": True}, backend="serial"
        )
    with pytest.raises(ValueError, match="fixed scale"):
        DistributedModel(K, model="glm", family="gaussian", alpha=1.0).fit(
            iter(pairs), backend="serial"
        )


# -- backends ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend_name", ["processes", "dask"])
def test_backends_equal_statsmodels(data, backend_name, request) -> None:
    backend = request.getfixturevalue("processes" if backend_name == "processes" else "dask_client")
    cases = {
        "ols": (data["y"], {}, 0.05),
        "binomial": (
            data["yb"],
            {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Binomial()}},
            0.02,
        ),
    }
    for name, (y, model, alpha) in cases.items():
        pairs = _pairs(data["X"], y)
        for method in METHODS:
            expected = _statsmodels(method, pairs, alpha, **model)
            result = _ours(method, pairs, alpha, backend=backend, **model)
            serial = _ours(method, pairs, alpha, **model)
            _close(result.params, expected)
            assert np.array_equal(result.params, serial.params), (name, method)
