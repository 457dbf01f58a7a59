"""Exact elastic-net GLMs by IRLS passes reach scikit-learn's optimum (issue 7):
the binomial objective of LogisticRegression(penalty="elasticnet", solver="saga") to
1e-5 relative, the ridge Poisson of PoissonRegressor to 1e-6."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, PoissonRegressor

import shardfit

COLUMNS = ["x0", "x1", "x2", "x3"]
FORMULA = "y ~ " + " + ".join(COLUMNS)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261130)
    n = 500
    X = rng.standard_normal((n, 4)) * [1, 2, 0.5, 3] + [0, 1, 0, -2]
    frame = pd.DataFrame(X, columns=COLUMNS)
    eta = -0.5 + frame.x0 - 0.5 * frame.x1 + 0.3 * frame.x3
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    frame["count"] = rng.poisson(np.exp(0.2 + 0.3 * frame.x0 - 0.1 * frame.x1)).astype(float)
    frame["w"] = rng.uniform(0.5, 2.0, n)
    return frame


def _logistic_objective(X, y, w, b0, b, alpha, rho) -> float:
    eta = b0 + X @ b
    loss = np.average(np.logaddexp(0, eta) - y * eta, weights=w)
    return float(loss + alpha * (rho * np.abs(b).sum() + (1 - rho) / 2 * b @ b))


@pytest.mark.parametrize(("alpha", "rho", "weighted"), [(0.02, 0.5, False), (0.005, 1.0, True)])
def test_binomial_reaches_saga_objective(frame, alpha, rho, weighted) -> None:
    X, y = frame[COLUMNS].to_numpy(), frame["y"].to_numpy()
    w = frame["w"].to_numpy() if weighted else np.ones(len(y))
    result = shardfit.elastic_net(
        FORMULA,
        shardfit.from_pandas(frame, 3),
        alpha=alpha,
        l1_ratio=rho,
        family="binomial",
        weights="w" if weighted else None,
        backend="serial",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga's slow convergence at this tolerance
        reference = LogisticRegression(
            penalty="elasticnet",
            solver="saga",
            l1_ratio=rho,
            C=1 / (alpha * w.sum()),
            tol=1e-12,
            max_iter=200_000,
        ).fit(X, y, sample_weight=w)
    ours = _logistic_objective(X, y, w, result.intercept_, result.coef_, alpha, rho)
    theirs = _logistic_objective(X, y, w, reference.intercept_[0], reference.coef_[0], alpha, rho)
    assert ours <= theirs * (1 + 1e-5)
    assert ours == pytest.approx(theirs, rel=1e-5)
    np.testing.assert_allclose(result.coef_, reference.coef_[0], atol=1e-4)
    mean = result.predict(frame.head(10))
    np.testing.assert_allclose(mean, reference.predict_proba(X[:10])[:, 1], atol=1e-4)


def test_poisson_ridge_equals_poisson_regressor(frame) -> None:
    X, y = frame[COLUMNS].to_numpy(), frame["count"].to_numpy()
    result = shardfit.elastic_net(
        "count ~ " + " + ".join(COLUMNS),
        frame,
        alpha=0.05,
        l1_ratio=0.0,
        family="poisson",
        backend="serial",
    )
    reference = PoissonRegressor(alpha=0.05, tol=1e-12, max_iter=10_000).fit(X, y)
    scale = np.max(np.abs(reference.coef_))  # relative to the largest coefficient
    np.testing.assert_allclose(result.coef_, reference.coef_, rtol=0, atol=1e-6 * scale)
    assert result.intercept_ == pytest.approx(reference.intercept_, rel=1e-6)


def test_binomial_path_with_cross_validation(frame) -> None:
    result = shardfit.elastic_net(
        FORMULA, frame, family="binomial", cv=3, n_alphas=8, backend="serial"
    )
    assert result.cv_mse.shape == (8, 3)
    curve = result.cv_curve["mean"]
    assert result.alpha_ == curve.idxmin()
    # the largest alpha of the grid zeroes every penalized coefficient, the next does not
    assert np.all(result.path_array[0] == 0)
    assert np.any(result.path_array[1] != 0)
    # each path point is the exact fit at its alpha
    single = shardfit.elastic_net(
        FORMULA, frame, family="binomial", alpha=float(result.alphas[4]), backend="serial"
    )
    np.testing.assert_allclose(single.coef_, result.path_array[4], atol=1e-7)


def test_unpenalized_poisson_with_exposure_equals_statsmodels(frame) -> None:
    import statsmodels.api as sm

    exposure = np.linspace(0.5, 3.0, len(frame))
    data = frame.assign(t=exposure)
    result = shardfit.elastic_net(
        "count ~ " + " + ".join(COLUMNS),
        shardfit.from_pandas(data, 4),
        alpha=0.0,
        family="poisson",
        exposure="t",
        backend="threads",
        workers=2,
    )
    X = sm.add_constant(frame[COLUMNS].to_numpy())
    reference = sm.GLM(
        frame["count"].to_numpy(), X, family=sm.families.Poisson(), exposure=exposure
    ).fit(tol=1e-12)
    np.testing.assert_allclose(result.params.to_numpy(), reference.params, rtol=1e-7)


def test_separated_data_warn_without_a_penalty(frame) -> None:
    separated = frame.assign(y=(frame.x0 > 0).astype(float))
    with pytest.warns(UserWarning, match="IRLS did not converge in 5 passes"):
        shardfit.elastic_net(
            FORMULA, separated, alpha=0.0, family="binomial", max_iter=5, backend="serial"
        )


def test_cached_passes_on_processes_equal_serial(frame) -> None:
    """The path's later IRLS passes read the encoded partitions from the workers'
    cache (some spilled to disk: the cache holds only a few kilobytes in memory), and
    give the serial, uncached path."""
    source = shardfit.from_pandas(frame, 5)
    kwargs = {"family": "binomial", "cv": 3, "n_alphas": 6, "weights": "w"}
    serial = shardfit.elastic_net(FORMULA, source, backend="serial", **kwargs)
    # 100 rows x 5 columns a partition: 8 kB holds one entry in memory, not two.
    spread = shardfit.elastic_net(
        FORMULA, source, backend="processes", workers=2, cache_bytes=8_000, **kwargs
    )
    np.testing.assert_allclose(spread.path_array, serial.path_array, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(spread.cv_mse, serial.cv_mse, rtol=1e-10)
    assert spread.alpha_ == serial.alpha_
    assert spread.passes == serial.passes
