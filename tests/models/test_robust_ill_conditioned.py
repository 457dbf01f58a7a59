"""Robust covariances of ill-conditioned designs, against exact rational arithmetic.

``x2 = 1e4 x1 + 1e-3 noise`` makes the design's condition number about 1e11. The plain
sandwich ``B M B`` (``B`` the inverse Gram, ``M`` the sum of ``s_i z_i z_i'``) loses
``cond**2 * eps``: a NaN intercept standard error for OLS HC3, 0.6-fold for a Poisson
GLM's cluster covariance. Summed in the orthonormal basis of the fit's factor it loses
``cond * eps``. The references are computed with :class:`fractions.Fraction` from the
same float64 data (for the GLM, at shardfit's estimates, which equal statsmodels' to
1e-7): exact, so the tolerance measures shardfit alone. statsmodels itself is 1e-2 to
1e-4 off here, so it is not the reference.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import shardfit
from exact_cases import N, collinear_frame, fractions, gram, inverse
from shardfit.data.memory import from_pandas


def _sandwich_bse(
    bread: list[list[Fraction]], meat: list[list[Fraction]], correction: Fraction
) -> np.ndarray:
    p = len(bread)
    left = [[sum(bread[a][k] * meat[k][b] for k in range(p)) for b in range(p)] for a in range(p)]
    return np.array(
        [
            math.sqrt(float(correction * sum(left[j][k] * bread[k][j] for k in range(p))))
            for j in range(p)
        ]
    )


def _meat(
    X: list[list[Fraction]], scores: list[Fraction], groups: np.ndarray | None
) -> tuple[list[list[Fraction]], Fraction]:
    """``sum_i s_i**2 x_i x_i'`` or, by cluster, ``sum_g S_g S_g'`` with ``S_g`` the
    sum of ``s_i x_i`` and statsmodels' small-sample correction."""
    p = len(X[0])
    if groups is None:
        return gram(X, [s * s for s in scores]), Fraction(1)
    sums: dict[int, list[Fraction]] = {}
    for row, s, g in zip(X, scores, groups, strict=True):
        total = sums.setdefault(int(g), [Fraction(0)] * p)
        for a in range(p):
            total[a] += s * row[a]
    meat = [[sum(t[a] * t[b] for t in sums.values()) for b in range(p)] for a in range(p)]
    n, k = len(X), len(X[0])
    return meat, Fraction(len(sums), len(sums) - 1) * Fraction(n - 1, n - k)


def _exact_linear(frame: pd.DataFrame, weighted: bool, kind: str) -> np.ndarray:
    design = np.column_stack([np.ones(N), frame["x1"], frame["x2"]])
    X = [fractions(row) for row in design]
    y = fractions(frame["y_lin"].to_numpy())
    w = fractions(frame["w"].to_numpy()) if weighted else [Fraction(1)] * N
    bread = inverse(gram(X, w))
    xty = [sum(wi * row[a] * yi for wi, row, yi in zip(w, X, y, strict=True)) for a in range(3)]
    beta = [sum(bread[a][b] * xty[b] for b in range(3)) for a in range(3)]
    scores = []
    for wi, row, yi in zip(w, X, y, strict=True):
        score = wi * (yi - sum(row[a] * beta[a] for a in range(3)))
        if kind == "HC3":  # (HC2's square root of 1 - h is not a Fraction)
            h = wi * sum(row[a] * bread[a][b] * row[b] for a in range(3) for b in range(3))
            score = score / (1 - h)
        scores.append(score)
    groups = frame["g"].to_numpy() if kind == "cluster" else None
    meat, correction = _meat(X, scores, groups)
    return _sandwich_bse(bread, meat, correction)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("kind", ["HC0", "HC3", "cluster"])
def test_linear_robust_bse_of_an_ill_conditioned_design(kind: str, weighted: bool) -> None:
    frame = collinear_frame(0, groups=True)
    exact = _exact_linear(frame, weighted, kind)
    model = (
        shardfit.wls("y_lin ~ x1 + x2", from_pandas(frame, 3), weights="w")
        if weighted
        else shardfit.ols("y_lin ~ x1 + x2", from_pandas(frame, 3))
    )
    kwds = {"groups": "g"} if kind == "cluster" else None
    fit = model.fit(backend="serial", cov_type=kind, cov_kwds=kwds)
    np.testing.assert_allclose(fit.bse.to_numpy(), exact, rtol=2e-5)


@pytest.mark.parametrize("kind", ["HC0", "cluster"])
def test_poisson_robust_bse_of_an_ill_conditioned_design(kind: str) -> None:
    frame = collinear_frame(1, groups=True)
    kwds = {"groups": "g"} if kind == "cluster" else None
    fit = shardfit.poisson("y_count ~ x1 + x2", from_pandas(frame, 3)).fit(
        backend="serial", cov_type=kind, cov_kwds=kwds
    )
    design = np.column_stack([np.ones(N), frame["x1"], frame["x2"]])
    mu = np.exp(design @ fit.params.to_numpy())
    X = [fractions(row) for row in design]
    means = fractions(mu)
    bread = inverse(gram(X, means))  # the canonical link: observed = expected
    scores = [y - m for y, m in zip(fractions(frame["y_count"].to_numpy()), means, strict=True)]
    groups = frame["g"].to_numpy() if kind == "cluster" else None
    meat, correction = _meat(X, scores, groups)
    exact = _sandwich_bse(bread, meat, correction)
    np.testing.assert_allclose(fit.bse.to_numpy(), exact, rtol=2e-5)
