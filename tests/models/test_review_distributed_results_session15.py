"""Review of DistributedModel's keywords and results against statsmodels (session 15).

- ``model_class=OLS`` with ``weights`` (``init_kwds`` or ``init_kwds_generator``):
  statsmodels' OLS ignores them (with a ValueWarning); shardfit fitted WLS, 0.047 off.
- Per-row ``init_kwds`` (a WLS ``weights``, a GLM ``offset``, ``exposure`` or
  ``var_weights``), which statsmodels passes to every partition's model: the fast
  solvers dropped them silently (a Poisson offset of ``0.5 * x2``: 0.49 off).
- ``exposure`` with a non-log link: statsmodels' GLM raises; shardfit fitted it.
- A statsmodels model given ``missing="drop"``: the rows it dropped were counted as
  fitted (``nobs`` 300 for 295 rows, ``rows_dropped`` empty).
- Results: statsmodels' ``bse``, ``tvalues``, ``fittedvalues`` ... are absent (or fail
  on its dummy model); shardfit's absence now says why; ``predict(which=)`` as GLM's.
- Guards for what matched: ``join_kwds`` thresholds and ``fit_kwds`` per method,
  ``estimation_kwds`` with ``solver="statsmodels"``, partition counts 1, 2, 3 and 7
  of unequal sizes with a partition of fewer rows than columns and a constant column.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.base import distributed_estimation as smd

import shardfit
from shardfit.errors import DesignError
from shardfit.models.distributed import DistributedModel

NAIVE = {"estimation_method": smd._est_regularized_naive, "join_method": smd._join_naive}
AVERAGE = {"estimation_method": smd._est_unregularized_naive, "join_method": smd._join_naive}
METHODS = {"debiased": {}, "average_regularized": NAIVE, "average": AVERAGE}
N = 300


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(15)
    X = rng.standard_normal((N, 5))
    X[:, 0] = 1.0
    X[:, 3] += 0.5 * X[:, 2]
    return {
        "X": X,
        "y": X @ np.array([1.0, 2.0, 0.0, -1.0, 0.3]) + rng.standard_normal(N),
        "yp": rng.poisson(np.exp(0.2 * X @ np.array([1.0, 1, 0, -1, 0.3]) + 0.5 * X[:, 2])).astype(
            float
        ),
        "w": rng.uniform(0.5, 2.0, N),
    }


def _split(n: int, sizes: list[int]) -> list[np.ndarray]:
    assert sum(sizes) == n
    return np.split(np.arange(n), np.cumsum(sizes)[:-1])


def _fit_kwds(method: str, **extra) -> dict:
    return extra if method == "average" else {"alpha": 0.05, **extra}


def _quiet(function, *args, **kwds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwds)


# -- fixes -------------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(METHODS))
def test_ols_model_class_ignores_weights_like_statsmodels(data, method) -> None:
    rows = _split(N, [60, 100, 140])
    pairs = [(data["y"][r], data["X"][r]) for r in rows]

    def weights():
        return ({"weights": data["w"][r]} for r in rows)

    settings = {"model_class": sm.OLS, **METHODS[method]}
    expected = _quiet(
        smd.DistributedModel(3, **settings).fit,
        iter(pairs),
        fit_kwds=_fit_kwds(method),
        init_kwds_generator=weights(),
    ).params
    with pytest.warns(UserWarning, match="model_class=OLS ignores weights"):
        result = DistributedModel(3, **settings).fit(
            iter(pairs), fit_kwds=_fit_kwds(method), init_kwds_generator=weights()
        )
    assert result.solver == "shardfit"
    # The old code fitted WLS: 0.047 (debiased), 0.039, 0.040 away.
    np.testing.assert_allclose(result.params_array, expected, rtol=0, atol=1e-10)


def _per_partition_reference(k, pairs, method, settings):
    """statsmodels' own per-partition fits and join (its ``fit`` then builds a dummy
    model ``model_class([0], [0], **init_kwds)``, which a per-row init_kwds breaks)."""
    model = smd.DistributedModel(k, **settings, **METHODS[method])
    parts = _quiet(model.fit_sequential, iter(pairs), _fit_kwds(method))
    return np.asarray(model.join_method(parts))


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("key", ["offset", "exposure", "var_weights"])
def test_glm_init_kwds_reach_every_partition_fit(data, key, method) -> None:
    values = {"offset": 0.5 * data["X"][:, 2], "exposure": data["w"], "var_weights": data["w"]}
    settings = {
        "model_class": sm.GLM,
        "init_kwds": {"family": sm.families.Poisson(), key: values[key]},
    }
    pairs = [(data["yp"], data["X"])]
    expected = _per_partition_reference(1, pairs, method, settings)
    # statsmodels' fit itself fails after fitting, on its dummy results model
    with pytest.raises(ValueError, match="same length as endog"):
        _quiet(
            smd.DistributedModel(1, **settings, **METHODS[method]).fit,
            iter(pairs),
            fit_kwds=_fit_kwds(method),
        )
    result = DistributedModel(1, **settings, **METHODS[method]).fit(
        iter(pairs), fit_kwds=_fit_kwds(method)
    )
    assert result.solver == "shardfit"
    # The old code ignored them (the offset: 0.49 off on x2's coefficient).
    np.testing.assert_allclose(result.params_array, expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("method", ["average", "average_regularized"])
def test_wls_init_kwds_weights_reach_every_partition_fit(data, method) -> None:
    settings = {"model_class": sm.WLS, "init_kwds": {"weights": data["w"]}}
    pairs = [(data["y"], data["X"])]
    expected = _per_partition_reference(1, pairs, method, settings)
    result = DistributedModel(1, **settings, **METHODS[method]).fit(
        iter(pairs), fit_kwds=_fit_kwds(method)
    )
    unweighted = _per_partition_reference(1, pairs, method, {"model_class": sm.WLS})
    assert np.max(np.abs(expected - unweighted)) > 0.01  # the weights matter
    np.testing.assert_allclose(result.params_array, expected, rtol=0, atol=1e-10)


def test_whole_data_init_kwds_with_several_partitions_fail_like_statsmodels(data) -> None:
    settings = {
        "model_class": sm.GLM,
        "init_kwds": {"family": sm.families.Poisson(), "offset": 0.5 * data["X"][:, 2]},
    }
    pairs = [(data["yp"][r], data["X"][r]) for r in _split(N, [100, 200])]
    with pytest.raises(ValueError, match="offset is not the same length as endog"):
        _quiet(smd.DistributedModel(2, **settings).fit, iter(pairs), fit_kwds={"alpha": 0.05})
    message = r"partition arrays#0: offset has shape \(300,\).*100 rows"
    with pytest.raises(DesignError, match=message):
        DistributedModel(2, **settings).fit(iter(pairs), fit_kwds={"alpha": 0.05})


@pytest.mark.parametrize("method", list(METHODS))
def test_exposure_with_a_non_log_link_is_refused_like_statsmodels(data, method) -> None:
    rows = _split(N, [100, 200])
    yb = (data["yp"] > 1).astype(float)
    pairs = [(yb[r], data["X"][r]) for r in rows]
    settings = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Binomial()}}

    def exposure():
        return ({"exposure": data["w"][r]} for r in rows)

    with pytest.raises(ValueError, match="exposure can only be used with the log link"):
        smd.DistributedModel(2, **settings, **METHODS[method]).fit(
            iter(pairs), fit_kwds=_fit_kwds(method), init_kwds_generator=exposure()
        )
    # The old code fitted it (an offset of log(exposure) on the logit scale).
    with pytest.raises(ValueError, match=r"partition arrays#0's exposure: exposure can only be"):
        DistributedModel(2, **settings, **METHODS[method]).fit(
            iter(pairs), fit_kwds=_fit_kwds(method), init_kwds_generator=exposure()
        )
    frame = pd.DataFrame(data["X"][:, 1:], columns=["a", "b", "c", "d"])
    frame["y"], frame["e"] = yb, data["w"]
    message = "exposure='e': exposure can only be used with the log link"
    with pytest.raises(ValueError, match=message):
        DistributedModel(
            2, formula="y ~ a + b", model="glm", family="binomial", exposure="e", method=method
        ).fit(shardfit.from_pandas(frame, 2), fit_kwds=_fit_kwds(method))


@pytest.mark.parametrize("method", list(METHODS))
def test_rows_statsmodels_drops_for_missing_values_are_counted(data, method) -> None:
    X, y = data["X"].copy(), data["y"].copy()
    X[[3, 50, 210], 2] = np.nan
    y[[7, 250]] = np.nan
    pairs = [(y[r], X[r]) for r in _split(N, [100, 100, 100])]
    settings = {"init_kwds": {"missing": "drop"}, **METHODS[method]}
    expected = _quiet(
        smd.DistributedModel(3, **settings).fit, iter(pairs), fit_kwds=_fit_kwds(method)
    ).params
    result = _quiet(DistributedModel(3, **settings).fit, iter(pairs), fit_kwds=_fit_kwds(method))
    np.testing.assert_allclose(result.params_array, expected, rtol=0, atol=1e-12)
    # The old code reported nobs=300 and no dropped rows.
    assert (result.nobs, result.rows_read, result.rows_dropped) == (295, 300, {"missing": 5})
    assert "5 of the 300 rows read were not used (missing: 5)" in str(result.summary())


# -- results ------------------------------------------------------------------------------
def test_results_attributes_against_statsmodels(data) -> None:
    rows = _split(N, [90, 210])
    offset = 0.5 * data["X"][:, 2]
    pairs = [(data["yp"][r], data["X"][r]) for r in rows]
    settings = {"model_class": sm.GLM, "init_kwds": {"family": sm.families.Poisson()}}

    def offsets():
        return ({"offset": offset[r]} for r in rows)

    theirs = _quiet(
        smd.DistributedModel(2, **settings).fit,
        iter(pairs),
        fit_kwds={"alpha": 0.02},
        init_kwds_generator=offsets(),
    )
    ours = DistributedModel(2, **settings).fit(
        iter(pairs), fit_kwds={"alpha": 0.02}, init_kwds_generator=offsets()
    )
    np.testing.assert_allclose(ours.params, theirs.params, rtol=0, atol=1e-12)
    new = np.random.default_rng(1).standard_normal((6, 5))
    new_offset = np.linspace(-1, 1, 6)
    for kwds in ({}, {"offset": new_offset}, {"exposure": np.exp(new_offset)}):
        np.testing.assert_allclose(
            ours.predict(new, **kwds), theirs.predict(new, **kwds), rtol=1e-13
        )
        np.testing.assert_allclose(
            ours.predict(new, which="linear", **kwds),
            theirs.predict(new, which="linear", **kwds),
            rtol=1e-13,
        )
    with pytest.raises(ValueError, match="'which' parameter"):
        ours.predict(new, which="var_unscaled")
    # Inference: statsmodels' RegularizedResults has none; ours says why.
    for name in ("bse", "tvalues", "pvalues", "conf_int", "cov_params"):
        assert not hasattr(theirs, name)
        with pytest.raises(AttributeError, match=f"no '{name}': .*carries no covariance"):
            getattr(ours, name)
    with pytest.raises(ValueError):  # statsmodels' dummy model cannot predict
        _ = theirs.fittedvalues
    for name in ("fittedvalues", "resid"):
        with pytest.raises(AttributeError, match=r"call predict\(exog\)"):
            getattr(ours, name)
    with pytest.raises(AttributeError, match="has no attribute 'no_such'"):
        _ = ours.no_such
    # summary: statsmodels' raises NotImplementedError; ours tabulates the estimate
    with pytest.raises(NotImplementedError):
        theirs.summary()
    table = ours.summary().coefficients
    np.testing.assert_allclose(table["coef"].to_numpy(), theirs.params, rtol=0, atol=1e-12)
    assert ours.nobs == N and ours.partitions == 2 and ours.family == "poisson"


def test_ols_results_predict_like_statsmodels(data) -> None:
    pairs = [(data["y"][r], data["X"][r]) for r in _split(N, [50, 250])]
    theirs = smd.DistributedModel(2).fit(iter(pairs), fit_kwds={"alpha": 0.05})
    ours = DistributedModel(2).fit(iter(pairs), fit_kwds={"alpha": 0.05})
    new = data["X"][:7] + 0.25
    np.testing.assert_allclose(ours.predict(new), theirs.predict(new), rtol=1e-13)
    np.testing.assert_allclose(ours.predict(new, which="mean"), theirs.predict(new), rtol=1e-13)


# -- guards (matched before this review) ---------------------------------------------------
@pytest.mark.parametrize("method", list(METHODS))
def test_join_and_fit_kwds_per_method_equal_statsmodels(data, method) -> None:
    pairs = [(data["y"][r], data["X"][r]) for r in _split(N, [60, 100, 140])]
    grid = (
        [{}]
        if method == "average"
        else [
            {"L1_wt": 0.5, "maxiter": 5},
            {"cnvrg_tol": 1e-3},
            {"zero_tol": 1e-2},
            {"L1_wt": 0.0},
        ]
    )
    for extra in grid:
        for threshold in (0.05, 0.3):
            fit_kwds = _fit_kwds(method, **extra)
            join = {"join_kwds": {"threshold": threshold}}
            expected = _quiet(
                smd.DistributedModel(3, **join, **METHODS[method]).fit,
                iter(pairs),
                fit_kwds=dict(fit_kwds),
            ).params
            result = _quiet(
                DistributedModel(3, **join, **METHODS[method]).fit,
                iter(pairs),
                fit_kwds=dict(fit_kwds),
            )
            assert result.solver == "shardfit" and result.threshold == threshold
            np.testing.assert_allclose(result.params_array, expected, rtol=0, atol=1e-10)


ESTIMATION_KWDS = [{"score_kwds": {}}, {"hess_kwds": {"observed": False}}]


@pytest.mark.parametrize("estimation_kwds", ESTIMATION_KWDS)
def test_estimation_and_join_kwds_reach_statsmodels(data, estimation_kwds) -> None:
    yb = (data["yp"] > 1).astype(float)
    pairs = [(yb[r], data["X"][r]) for r in _split(N, [100, 100, 100])]
    settings = {
        "model_class": sm.GLM,
        "init_kwds": {"family": sm.families.Binomial()},
        "estimation_kwds": estimation_kwds,
        "join_kwds": {"threshold": 0.05},
    }
    fit_kwds = {"alpha": 0.02, "L1_wt": 0.5}
    expected = smd.DistributedModel(3, **settings).fit(iter(pairs), fit_kwds=dict(fit_kwds))
    for solver in ("auto", "statsmodels"):
        result = DistributedModel(3, solver=solver, **settings).fit(
            iter(pairs), fit_kwds=dict(fit_kwds)
        )
        assert result.solver == "statsmodels" and result.threshold == 0.05
        np.testing.assert_allclose(result.params_array, expected.params, rtol=0, atol=1e-14)


@pytest.mark.parametrize("sizes", [[300], [40, 260], [4, 96, 200], [3, 12, 25, 40, 60, 70, 90]])
@pytest.mark.parametrize("method", list(METHODS))
def test_unequal_partitions_a_tiny_one_and_a_constant_column(data, sizes, method) -> None:
    X = data["X"].copy()
    rows = _split(N, sizes)
    X[rows[-1], 4] = 2.0  # constant within the last partition
    pairs = [(data["y"][r], X[r]) for r in rows]
    expected = _quiet(
        smd.DistributedModel(len(sizes), **METHODS[method]).fit,
        iter(pairs),
        fit_kwds=_fit_kwds(method),
    ).params
    result = _quiet(
        DistributedModel(len(sizes), **METHODS[method]).fit, iter(pairs), fit_kwds=_fit_kwds(method)
    )
    scale = np.max(np.abs(expected))
    np.testing.assert_allclose(result.params_array, expected, rtol=0, atol=1e-9 * scale)
    assert result.nobs == N and result.partitions == len(sizes)
