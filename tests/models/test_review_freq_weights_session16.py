"""Review of GLM ``freq_weights`` (session 16) against statsmodels in memory.

Fixed: :func:`shardfit.GLM` took a ``freq_weights`` (or ``weights``, ``offset``,
``exposure``) array of the wrong length or shape with pandas' message ("Length of
values (9) does not match length of index (10)", naming neither the argument nor
``endog``), and refused a zero frequency naming the internal column ``'__freq__'``.
Now both name the argument (and the position).

The guard test pins the measures the first freq_weights tests do not compare:
tvalues, pvalues, conf_int with ``use_t``, ``bic_deviance``, both pseudo R-squared,
``fit(scale="X2")``, an F test, residuals (statsmodels' carry no ``sqrt(freq)``),
predictions, and agreement with the expanded rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.errors import DesignError

RTOL = 1e-7


def _arrays(n: int = 40, seed: int = 16) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    X = sm.add_constant(rng.normal(size=(n, 2)))
    y = rng.poisson(np.exp(X @ [0.3, 0.4, -0.2])).astype(float)
    return y, X, rng.integers(1, 5, size=n).astype(float)


def test_array_lengths_and_bad_frequencies_name_the_argument() -> None:
    y, X, f = _arrays()
    with pytest.raises(ValueError, match="freq weights not the same length"):
        sm.GLM(y, X, sm.families.Poisson(), freq_weights=f[:-1])
    with pytest.raises(ValueError, match=r"freq_weights has shape \(39,\); endog has 40 rows"):
        shardfit.GLM(y, X, "poisson", freq_weights=f[:-1])
    with pytest.raises(ValueError, match=r"freq_weights has shape \(40, 2\)"):
        shardfit.GLM(y, X, "poisson", freq_weights=np.column_stack([f, f]))
    with pytest.raises(ValueError, match=r"offset has shape \(39,\); endog has 40 rows"):
        shardfit.GLM(y, X, "poisson", offset=np.zeros(39))
    bad = f.copy()
    bad[3] = 0.0
    with pytest.raises(DesignError, match=r"freq_weights\[3\] is 0\.0; .* \(1 such values\)"):
        shardfit.GLM(y, X, "poisson", freq_weights=bad)
    # A missing frequency still drops its row, and a scalar applies to every row (as
    # statsmodels' freq_weights=np.full(n, 2.0)): the same numbers as statsmodels.
    holes = f.copy()
    holes[3] = np.nan
    got = shardfit.GLM(y, X, "poisson", freq_weights=holes, npartitions=2).fit(backend="serial")
    keep = ~np.isnan(holes)
    ref = sm.GLM(y[keep], X[keep], sm.families.Poisson(), freq_weights=holes[keep]).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=RTOL)
    assert got.rows_dropped == {"missing": 1} and got.df_resid == ref.df_resid
    got = shardfit.GLM(y, X, "poisson", freq_weights=2.0).fit(backend="serial")
    ref = sm.GLM(y, X, sm.families.Poisson(), freq_weights=np.full(40, 2.0)).fit()
    assert got.df_resid == ref.df_resid == 77
    np.testing.assert_allclose(got.bse, ref.bse, rtol=RTOL)


def test_guard_inference_residuals_and_expanded_rows() -> None:
    y, X, f = _arrays(n=50, seed=61)
    rng = np.random.default_rng(62)
    yg = rng.gamma(2.0, np.exp(X @ [0.3, 0.4, -0.2]) / 2)
    gamma = sm.families.Gamma(sm.families.links.Log())
    ref = sm.GLM(yg, X, gamma, freq_weights=f).fit(use_t=True)
    got = shardfit.GLM(yg, X, gamma, freq_weights=f, npartitions=3).fit(
        backend="serial", use_t=True
    )
    for name in ("tvalues", "pvalues", "bic_deviance", "llf", "scale"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=RTOL, err_msg=name)
    np.testing.assert_allclose(got.conf_int(), ref.conf_int(), rtol=RTOL)
    for kind in ("cs", "mcf"):  # cs divides by the rows (nobs), as statsmodels'
        assert got.pseudo_rsquared(kind) == pytest.approx(ref.pseudo_rsquared(kind), rel=RTOL)
    R = np.eye(3)[1:]
    assert float(got.f_test(R).fvalue) == pytest.approx(float(ref.f_test(R).fvalue), rel=RTOL)
    assert float(got.f_test(R).pvalue) == pytest.approx(float(ref.f_test(R).pvalue), rel=RTOL)
    for kind in ("pearson", "deviance", "working"):
        np.testing.assert_allclose(
            got.resid(X, kind=kind, endog=yg).to_numpy(),
            getattr(ref, f"resid_{kind}"),
            rtol=1e-9,
            atol=1e-12,
        )
    frame = got.get_prediction(X[:5]).summary_frame()
    np.testing.assert_allclose(
        frame.to_numpy(), ref.get_prediction(X[:5]).summary_frame().to_numpy(), rtol=1e-9
    )
    # Poisson (scale 1), quasi-Poisson scale "X2": statsmodels' numbers, which for the
    # plain fit are the expanded rows' too.
    idx = np.repeat(np.arange(len(y)), f.astype(int))
    expanded = sm.GLM(y[idx], X[idx], sm.families.Poisson()).fit()
    got = shardfit.GLM(y, pd.DataFrame(X), "poisson", freq_weights=f).fit(backend="serial")
    for name in ("params", "bse", "llf", "deviance", "aic", "bic", "df_resid"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(expanded, name), rtol=RTOL, err_msg=name
        )
    ref = sm.GLM(y, X, sm.families.Poisson(), freq_weights=f).fit(scale="X2")
    got = shardfit.GLM(y, X, "poisson", freq_weights=f).fit(backend="serial", scale="X2")
    np.testing.assert_allclose(got.bse, ref.bse, rtol=RTOL)
    assert got.scale == pytest.approx(ref.scale, rel=RTOL)
