"""Adversarial review of the elastic net (session 14) against scikit-learn in memory.

A GLM elastic net must refuse what :func:`shardfit.glm` refuses (a response outside the
family's support, an exposure <= 0): the IRLS passes otherwise ran on impossible
likelihoods and returned numbers with at most a misleading convergence warning.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, PoissonRegressor

import shardfit
from shardfit.errors import DesignError, ResponseError


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20260714)
    n = 300
    frame = pd.DataFrame(rng.standard_normal((n, 2)), columns=["x0", "x1"])
    eta = 0.5 + frame.x0 - 0.4 * frame.x1
    frame["y01"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    frame["ypm"] = 2 * frame["y01"] - 1  # scikit-learn's -1/+1 class labels
    frame["count"] = rng.poisson(np.exp(0.2 + 0.3 * frame.x0)).astype(float)
    frame["expo"] = rng.uniform(0.5, 2.0, n)
    return frame


def test_binomial_labels_outside_zero_one_are_refused(frame) -> None:
    # scikit-learn reads -1/+1 as two classes; a binomial GLM needs 0/1 (or proportions).
    # Before the fix shardfit fitted them: coefficients ~1e-13 and intercept -23.03
    # (log(1e-10)), with only "IRLS did not converge ... separable" as a hint.
    with pytest.raises(ResponseError, match=r"binomial family.*DataFrame.*row \d+.*-1\.0"):
        shardfit.elastic_net(
            "ypm ~ x0 + x1",
            shardfit.from_pandas(frame, 3),
            alpha=0.01,
            family="binomial",
            backend="serial",
        )
    # Coded 0/1, the same data give scikit-learn's logistic elastic net on the labels.
    result = shardfit.elastic_net(
        "y01 ~ x0 + x1",
        shardfit.from_pandas(frame, 3),
        alpha=0.01,
        l1_ratio=0.5,
        family="binomial",
        backend="serial",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # saga's slow convergence at this tolerance
        reference = LogisticRegression(
            solver="saga", l1_ratio=0.5, C=1 / (0.01 * len(frame)), tol=1e-13, max_iter=300_000
        ).fit(frame[["x0", "x1"]].to_numpy(), frame["ypm"].to_numpy())
    np.testing.assert_allclose(result.coef_, reference.coef_[0], rtol=0, atol=1e-8)
    assert result.intercept_ == pytest.approx(reference.intercept_[0], abs=1e-8)


def test_negative_poisson_response_is_refused_in_cross_validation(frame) -> None:
    bad = frame.assign(count=frame["count"].where(frame.index != 250, -1.0))
    with pytest.raises(ResponseError, match=r"poisson family.*row 250.*-1\.0"):
        shardfit.elastic_net(
            "count ~ x0 + x1",
            shardfit.from_pandas(bad, 3),
            family="poisson",
            cv=3,
            n_alphas=5,
            backend="serial",
        )


def test_zero_exposure_is_refused_not_fitted_as_all_zeros(frame) -> None:
    # Before the fix: coefficients 0, intercept 0 (NaN deviances), RuntimeWarnings only.
    bad = frame.assign(expo=frame["expo"].where(frame.index != 5, 0.0))
    with pytest.raises(DesignError, match=r"row 5.*'expo' holds 0\.0"):
        shardfit.elastic_net(
            "count ~ x0 + x1",
            shardfit.from_pandas(bad, 3),
            alpha=0.01,
            l1_ratio=0.0,
            family="poisson",
            exposure="expo",
            backend="serial",
        )
    # Valid exposures (all 1): the ridge Poisson fit is scikit-learn's PoissonRegressor.
    result = shardfit.elastic_net(
        "count ~ x0 + x1",
        frame.assign(expo=1.0),
        alpha=0.01,
        l1_ratio=0.0,
        family="poisson",
        exposure="expo",
        backend="serial",
    )
    reference = PoissonRegressor(alpha=0.01, tol=1e-14, max_iter=10_000, solver="newton-cholesky")
    reference.fit(frame[["x0", "x1"]].to_numpy(), frame["count"].to_numpy())
    np.testing.assert_allclose(result.coef_, reference.coef_, rtol=0, atol=1e-10)
    assert result.intercept_ == pytest.approx(reference.intercept_, abs=1e-10)
