"""Prediction standard errors of ill-conditioned designs, against exact rationals.

``x2 = 1e4 x1 + 1e-3 noise`` makes the design's condition number about 1e10 (5e6 with
unit-norm columns). ``sqrt(x'Cx)`` from the explicit covariance ``C`` loses about
``cond**2 * eps`` to cancellation: 6e-4 relative, even with ``C`` exactly rounded.
From the fit's factor ``L`` of ``C`` (``results.cov_factor``), ``|x'L|`` loses about
``cond * eps``. The references are computed with :class:`fractions.Fraction` from the
same float64 data (for the Poisson GLM at shardfit's estimates): exact, so the
tolerance measures shardfit alone. statsmodels is as far off as ``x'Cx`` here, so it is
not the reference.
"""

from __future__ import annotations

import dataclasses
import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shardfit
from exact_cases import N, design, fractions, gram, inverse, product
from exact_cases import collinear_frame as _data
from shardfit.data.memory import from_pandas
from shardfit.errors import ReadError

#: The factor's error is cond * eps (measured: below 1e-8); x'Cx's is 1e-4 to 1e-3.
RTOL = 1e-7


def _new_rows(seed: int) -> pd.DataFrame:
    """Points near the data's line (where x'Cx cancels most) and a few off it."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=12) * 0.3
    x2 = 1e4 * x1 + 1e-3 * rng.normal(size=12)
    x2[:3] += rng.normal(size=3)  # off the line by 1e3 times the noise
    return pd.DataFrame({"x1": x1, "x2": x2})


def _se(cov: list[list[Fraction]], new: list[list[Fraction]]) -> np.ndarray:
    """``sqrt(x'Cx)`` for each new row, the quadratic form exact."""
    p = len(cov)
    return np.array(
        [
            math.sqrt(float(sum(x[a] * cov[a][b] * x[b] for a in range(p) for b in range(p))))
            for x in new
        ]
    )


def _exact_linear_cov(frame: pd.DataFrame, weighted: bool, kind: str) -> list[list[Fraction]]:
    X = design(frame)
    y = fractions(frame["y_lin"].to_numpy())
    w = fractions(frame["w"].to_numpy()) if weighted else [Fraction(1)] * N
    bread = inverse(gram(X, w))
    xty = [sum(wi * row[a] * yi for wi, row, yi in zip(w, X, y, strict=True)) for a in range(3)]
    beta = [sum(bread[a][b] * xty[b] for b in range(3)) for a in range(3)]
    resid = [yi - sum(row[a] * beta[a] for a in range(3)) for row, yi in zip(X, y, strict=True)]
    if kind == "nonrobust":
        sigma2 = sum(wi * e * e for wi, e in zip(w, resid, strict=True)) / (N - 3)
        return [[v * sigma2 for v in row] for row in bread]
    # HC0: B (sum (w_i e_i)**2 x_i x_i') B.
    meat = gram(X, [(wi * e) ** 2 for wi, e in zip(w, resid, strict=True)])
    return product(product(bread, meat), bread)


def _exact_poisson_cov(frame: pd.DataFrame, params: np.ndarray, kind: str) -> list[list[Fraction]]:
    """At shardfit's estimates (exact IRLS is not finite): ``(X'MX)^{-1}`` with the
    means ``M`` (canonical link: observed = expected information), or the HC0 sandwich
    with the scores ``y - mu``."""
    rows = np.column_stack([np.ones(N), frame["x1"], frame["x2"]])
    mu = np.exp(rows @ params)
    X = design(frame)
    means = fractions(mu)
    bread = inverse(gram(X, means))
    if kind == "nonrobust":
        return bread
    y = fractions(frame["y_count"].to_numpy())
    meat = gram(X, [(yi - m) ** 2 for yi, m in zip(y, means, strict=True)])
    return product(product(bread, meat), bread)


def _old_se(fit: Any, new: pd.DataFrame, **kwargs: Any) -> np.ndarray:
    """The same fit's ``sqrt(x'Cx)`` from its explicit covariance (no factor)."""
    plain = dataclasses.replace(fit, cov_factor=None)
    return plain.get_prediction(new, backend="serial", **kwargs).se_mean


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", ["nonrobust", "HC0"])
def test_linear_prediction_se_of_an_ill_conditioned_design(kind: str, weighted: bool) -> None:
    frame = _data(0)
    new = _new_rows(10)
    model = (
        shardfit.wls("y_lin ~ x1 + x2", from_pandas(frame, 3), weights="w")
        if weighted
        else shardfit.ols("y_lin ~ x1 + x2", from_pandas(frame, 3))
    )
    fit = model.fit(backend="serial", cov_type=kind)
    assert fit.cov_factor is not None and fit.cov_factor.shape[0] == 3
    exact = _se(_exact_linear_cov(frame, weighted, kind), design(new))
    prediction = fit.get_prediction(new, backend="serial")
    np.testing.assert_allclose(prediction.se_mean, exact, rtol=RTOL)
    # predict(interval=...) goes through the same workers' code.
    frame_out = fit.predict(new, interval="confidence", backend="serial")
    np.testing.assert_allclose(frame_out["mean_se"].to_numpy(), exact, rtol=RTOL)
    # The explicit covariance's x'Cx is what was fixed: 1e-4 to 1e-3 off here.
    assert np.max(np.abs(_old_se(fit, new) / exact - 1)) > 1e-5


@pytest.mark.parametrize("kind", ["nonrobust", "HC0"])
def test_poisson_prediction_se_of_an_ill_conditioned_design(kind: str) -> None:
    frame = _data(1)
    new = _new_rows(11)
    # tol=1e-10 (5 iterations): the nonrobust covariance is the last IRLS step's, at
    # the weights of the estimates before the last (as statsmodels'); at the default
    # tol those are 3e-6 off the reference's, computed at the final estimates.
    fit = shardfit.poisson("y_count ~ x1 + x2", from_pandas(frame, 3)).fit(
        backend="serial", cov_type=kind, tol=1e-10
    )
    assert fit.converged
    assert fit.cov_factor is not None
    exact = _se(_exact_poisson_cov(frame, fit.params.to_numpy(), kind), design(new))
    linear = fit.get_prediction(new, which="linear", backend="serial")
    np.testing.assert_allclose(linear.se_mean, exact, rtol=RTOL)
    # The mean's: the delta method on the linear predictor's.
    eta = np.column_stack([np.ones(len(new)), new["x1"], new["x2"]]) @ fit.params.to_numpy()
    mean = fit.get_prediction(new, backend="serial")
    np.testing.assert_allclose(mean.se_mean, np.exp(eta) * exact, rtol=RTOL)
    assert np.max(np.abs(_old_se(fit, new, which="linear") / exact - 1)) > 1e-5


def test_the_factor_round_trips_through_save_and_load(tmp_path: Path) -> None:
    frame = _data(0)
    new = _new_rows(10)
    fit = shardfit.ols("y_lin ~ x1 + x2", from_pandas(frame, 3)).fit(backend="serial")
    path = shardfit.save_results(fit, tmp_path / "fit.json")
    loaded = shardfit.load_results(path)
    np.testing.assert_array_equal(loaded.cov_factor, fit.cov_factor)
    exact = _se(_exact_linear_cov(frame, False, "nonrobust"), design(new))
    np.testing.assert_allclose(loaded.get_prediction(new).se_mean, exact, rtol=RTOL)
    # A file written before the field existed loads, and predicts from x'Cx.
    document = json.loads(path.read_text())
    del document["fields"]["cov_factor"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    loaded_old = shardfit.load_results(old)
    assert loaded_old.cov_factor is None
    np.testing.assert_allclose(
        loaded_old.get_prediction(new).se_mean, _old_se(fit, new), rtol=1e-12
    )
    # A factor whose rows are not the columns is refused, naming the field.
    document = json.loads(path.read_text())
    document["fields"]["cov_factor"]["__ndarray__"].update(shape=[1, 9])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    with pytest.raises(ReadError, match="cov_factor"):
        shardfit.load_results(bad)


def test_aliased_columns_get_nan_rows_and_predictions_match_the_covariance() -> None:
    frame = _data(2)
    frame["x3"] = 2.0 * frame["x1"]  # exactly collinear: dropped
    frame["x2"] = np.random.default_rng(5).normal(size=N)  # well conditioned
    with pytest.warns(UserWarning, match="x3"):
        fit = shardfit.ols("y_lin ~ x1 + x3 + x2", from_pandas(frame, 3)).fit(
            backend="serial", rank_deficient="drop"
        )
    assert np.isnan(fit.params_array[2])
    assert np.isnan(fit.cov_factor[2]).all() and np.isfinite(fit.cov_factor[[0, 1, 3]]).all()
    kept = [0, 1, 3]
    factor = fit.cov_factor[kept]
    np.testing.assert_allclose(factor @ factor.T, fit.cov_array[np.ix_(kept, kept)], rtol=1e-12)
    new = pd.DataFrame({"x1": [0.1, -0.3], "x2": [0.5, 1.0]})
    new["x3"] = 2.0 * new["x1"]
    X = np.column_stack([np.ones(2), new["x1"], new["x2"]])
    cov = fit.cov_array[np.ix_(kept, kept)]
    expected = np.sqrt(np.einsum("ij,jk,ik->i", X, cov, X))
    np.testing.assert_allclose(fit.get_prediction(new).se_mean, expected, rtol=1e-12)
