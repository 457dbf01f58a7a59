"""Leverages and influence measures of ill-conditioned designs, against exact rationals.

``x2 = 1e4 x1 + 1e-3 noise`` makes the design's condition number about 3e10. A leverage
``w x'Hx`` with ``H`` the explicit inverse of ``X'WX`` loses about ``cond**2 * eps`` to
cancellation: 1e-3 relative for OLS and WLS from ``normalized_cov``, 0.9 relative for a
Poisson GLM from the pseudo-inverse of its summed Gram. As squared norms
``w |R^{-T} x|^2`` in the orthonormal basis of a factor of ``sqrt(W) X`` they lose about
``cond * eps``. The references are computed with :class:`fractions.Fraction` from the
same float64 data (for the GLM at shardfit's estimates): exact, so the tolerance
measures shardfit alone. statsmodels is no reference there; well-conditioned designs
still equal it.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

import shardfit
from exact_cases import N, fractions, gram, inverse
from exact_cases import collinear_frame as _data
from shardfit.data.memory import from_pandas


def _exact_leverages(
    design: np.ndarray, weights: np.ndarray
) -> tuple[list[Fraction], list[list[Fraction]]]:
    """``w_i x_i' (X'WX)^-1 x_i`` exactly, and ``(X'WX)^-1``."""
    X = [fractions(row) for row in design]
    w = fractions(weights)
    p = len(X[0])
    inverted = inverse(gram(X, w))
    hat = [
        wi * sum(row[a] * inverted[a][b] * row[b] for a in range(p) for b in range(p))
        for wi, row in zip(w, X, strict=True)
    ]
    return hat, inverted


def _exact_linear(frame: pd.DataFrame, weighted: bool) -> dict[str, np.ndarray]:
    """statsmodels' influence measures of the exact least-squares fit (square roots and
    the F distribution in float64 from exact arguments)."""
    design = np.column_stack([np.ones(N), frame["x1"], frame["x2"]])
    weights = frame["w"].to_numpy() if weighted else np.ones(N)
    hat, inverted = _exact_leverages(design, weights)
    X = [fractions(row) for row in design]
    w = fractions(weights)
    y = fractions(frame["y_lin"].to_numpy())
    xty = [sum(wi * row[a] * yi for wi, row, yi in zip(w, X, y, strict=True)) for a in range(3)]
    beta = [sum(inverted[a][b] * xty[b] for b in range(3)) for a in range(3)]
    resid = [yi - sum(row[a] * beta[a] for a in range(3)) for row, yi in zip(X, y, strict=True)]
    ssr = sum(wi * e * e for wi, e in zip(w, resid, strict=True))
    df_resid = N - 3
    scale = ssr / df_resid
    # squared studentized residuals w e^2 / (scale (1 - h)), exactly
    stud2 = [wi * e * e / (scale * (1 - h)) for wi, e, h in zip(w, resid, hat, strict=True)]
    sign = np.sign([float(e) for e in resid])
    cooks = [s2 * h / (1 - h) / 3 for s2, h in zip(stud2, hat, strict=True)]
    # leave-one-out: (ssr - w e^2 / (1 - h)) / (df_resid - 1)
    ext2 = [
        wi * e * e / ((ssr - wi * e * e / (1 - h)) / (df_resid - 1) * (1 - h))
        for wi, e, h in zip(w, resid, hat, strict=True)
    ]
    dffits2 = [t2 * h / (1 - h) for t2, h in zip(ext2, hat, strict=True)]
    floats = {name: np.array([float(v) for v in values]) for name, values in
              {"hat": hat, "cooks": cooks}.items()}  # fmt: skip
    return {
        "hat": floats["hat"],
        "studentized": sign * np.sqrt([float(v) for v in stud2]),
        "cooks": floats["cooks"],
        "cooks_pvalue": stats.f.sf(floats["cooks"], 3, df_resid),
        "studentized_external": sign * np.sqrt([float(v) for v in ext2]),
        "dffits": sign * np.sqrt([float(v) for v in dffits2]),
    }


def _linear_fit(frame: pd.DataFrame, weighted: bool) -> Any:
    if weighted:
        model = shardfit.wls("y_lin ~ x1 + x2", from_pandas(frame, 3), weights="w")
    else:
        model = shardfit.ols("y_lin ~ x1 + x2", from_pandas(frame, 3))
    return model.fit(backend="serial")


@pytest.fixture(scope="module", params=[False, True], ids=["ols", "wls"])
def linear_case(request: pytest.FixtureRequest) -> tuple[Any, pd.DataFrame, dict]:
    frame = _data(0)
    return _linear_fit(frame, request.param), frame, _exact_linear(frame, request.param)


@pytest.mark.parametrize(
    "kind", ["hat", "studentized", "cooks", "cooks_pvalue", "studentized_external", "dffits"]
)
def test_linear_influence_of_an_ill_conditioned_design(linear_case: tuple, kind: str) -> None:
    """Was 1e-3 (hat) off exact arithmetic from ``x' normalized_cov x``."""
    fit, frame, exact = linear_case
    assert fit.condition_number > 1e10
    values = fit.influence(frame, kind=kind).to_numpy()
    np.testing.assert_allclose(values, exact[kind], rtol=1e-7, atol=0)


@pytest.mark.parametrize("kind", ["hat", "studentized", "cooks"])
def test_poisson_influence_of_an_ill_conditioned_design(kind: str) -> None:
    """Was 0.9 relative (hat) off exact arithmetic: the pseudo-inverse of the summed
    Gram truncated the design's smallest singular value."""
    frame = _data(1)
    fit = shardfit.poisson("y_count ~ x1 + x2", from_pandas(frame, 3)).fit(backend="serial")
    design = np.column_stack([np.ones(N), frame["x1"], frame["x2"]])
    mu = np.exp(design @ fit.params.to_numpy())
    hat, _ = _exact_leverages(design, mu)  # canonical link: Hessian weights are mu
    h = np.array([float(v) for v in hat])
    pearson = (frame["y_count"].to_numpy() - mu) / np.sqrt(mu)
    studentized = pearson / np.sqrt(1 - h)
    exact = {
        "hat": h,
        "studentized": studentized,
        "cooks": studentized**2 * h / (1 - h) / 3,
    }[kind]
    values = fit.influence(frame, kind=kind).to_numpy()
    np.testing.assert_allclose(values, exact, rtol=1e-7, atol=0)


def test_well_conditioned_leverages_still_equal_statsmodels() -> None:
    frame = _data(2, collinear=False)
    exog = sm.add_constant(frame[["x1", "x2"]].to_numpy())
    ols = _linear_fit(frame, weighted=False)
    reference = sm.OLS(frame["y_lin"].to_numpy(), exog).fit().get_influence()
    for kind, attribute in [("hat", "hat_matrix_diag"), ("dffits", "dffits")]:
        expected = getattr(reference, attribute)
        expected = expected[0] if isinstance(expected, tuple) else expected
        np.testing.assert_allclose(ols.influence(frame, kind=kind), expected, rtol=1e-10)
    poisson = shardfit.poisson("y_count ~ x1 + x2", from_pandas(frame, 3)).fit(backend="serial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        glm = sm.GLM(frame["y_count"].to_numpy(), exog, family=sm.families.Poisson()).fit()
        expected = glm.get_influence().hat_matrix_diag
    np.testing.assert_allclose(poisson.influence(frame, kind="hat"), expected, rtol=1e-10)


def test_well_conditioned_linear_leverages_read_normalized_cov() -> None:
    """No extra pass for a well-conditioned linear fit: ``w x' normalized_cov x`` as
    before, to the last bits."""
    frame = _data(3, collinear=False)
    fit = _linear_fit(frame, weighted=True)
    design = np.column_stack([np.ones(N), frame["x1"], frame["x2"]])
    expected = frame["w"].to_numpy() * np.einsum("ij,jk,ik->i", design, fit.normalized_cov, design)
    np.testing.assert_allclose(fit.influence(frame, kind="hat"), expected, rtol=1e-13)


def test_ill_conditioned_leverages_of_other_rows_use_the_fits_inverse() -> None:
    """Rows other than the fitted ones (another count) keep ``H = normalized_cov``, as
    documented: the leverages are the fit's (here within its 1e-3 cancellation), not
    those of the rows passed, which are about twice as large."""
    frame = _data(0)
    fit = _linear_fit(frame, weighted=False)
    design = np.column_stack([np.ones(N), frame["x1"], frame["x2"]])
    half = N // 2
    of_fit = np.array([float(v) for v in _exact_leverages(design, np.ones(N))[0][:half]])
    own = np.array([float(v) for v in _exact_leverages(design[:half], np.ones(half))[0]])
    values = fit.influence(frame.iloc[:half], kind="hat").to_numpy()
    np.testing.assert_allclose(values, of_fit, rtol=1e-2)
    assert np.all(np.abs(values / own - 1) > 0.1)
