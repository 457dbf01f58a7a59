"""Least squares against NIST's certified values (StRD), the independent reference
for the digits a least-squares solver keeps: from the easy Norris to Filip's
tenth-degree polynomial and Wampler5's nearly uninformative fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nist_strd import Certified, datasets

import shardfit
from shardfit.cli.main import main
from shardfit.data.memory import from_pandas
from shardfit.errors import DesignError

CASES = {case.name: case for case in datasets()}

# Relative tolerances (params, bse and residual SD, R-squared), a little above what
# TSQR keeps on each problem; the certified values are exact to 15 digits. Filip and
# Wampler4-5 are as hard as least squares in double precision gets: their estimates
# are sensitive to ~1e8 (Filip) and to the size of the residuals (Wampler5) times the
# rounding unit, and the best one can do is 7-8 and 6-7 digits.
TOLERANCES = {
    "Norris": (1e-11, 1e-12, 1e-14),
    "Pontius": (1e-11, 5e-12, 1e-14),
    "NoInt1": (1e-13, 1e-12, 1e-14),
    "NoInt2": (1e-13, 1e-12, 1e-14),
    "Filip": (5e-7, 3e-7, 2e-9),
    "Wampler1": (5e-9, None, 1e-14),
    "Wampler2": (1e-11, None, 1e-14),
    "Wampler3": (5e-9, 1e-12, 1e-14),
    "Wampler4": (3e-7, 1e-12, 1e-14),
    "Wampler5": (2e-5, 1e-12, 1e-12),
}


def _check(case: Certified, result, tolerances) -> None:
    params_tol, spread_tol, r2_tol = tolerances
    np.testing.assert_allclose(result.params, case.params, rtol=params_tol, atol=0)
    if spread_tol is None:  # an exact fit: certified zero residuals and standard errors
        assert np.sqrt(result.scale) < 1e-9 * np.abs(case.frame.y).max()
        assert np.all(np.asarray(result.bse) < 1e-9)
    else:
        np.testing.assert_allclose(result.bse, case.bse, rtol=spread_tol, atol=0)
        np.testing.assert_allclose(np.sqrt(result.scale), case.resid_sd, rtol=spread_tol)
    np.testing.assert_allclose(result.rsquared, case.rsquared, rtol=r2_tol)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("method", ["auto", "qr"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_certified_values(name: str, method: str, partitions: int) -> None:
    case = CASES[name]
    source = from_pandas(case.frame, partitions)
    result = shardfit.ols(case.formula, source).fit(backend="serial", method=method)
    _check(case, result, TOLERANCES[name])
    assert result.nobs == len(case.frame)


@pytest.mark.parametrize("name", ["Norris", "Pontius", "Filip", "Wampler4"])
def test_gaussian_glm_certified_values(name: str) -> None:
    """The same problems as a Gaussian GLM (IRLS, scale from Pearson's chi2)."""
    case = CASES[name]
    result = shardfit.glm(case.formula, from_pandas(case.frame, 2), family="gaussian").fit(
        backend="serial"
    )
    params_tol, spread_tol, _ = TOLERANCES[name]
    np.testing.assert_allclose(result.params, case.params, rtol=params_tol, atol=0)
    np.testing.assert_allclose(result.bse, case.bse, rtol=spread_tol, atol=0)
    np.testing.assert_allclose(np.sqrt(result.scale), case.resid_sd, rtol=spread_tol)


def test_auto_takes_tsqr_for_a_nearly_exact_fit() -> None:
    """Pontius (1 - R2 = 1e-7) is well conditioned, but the Gram would give its
    residual sum of squares as a difference and lose 9 digits of the standard errors."""
    case = CASES["Pontius"]
    auto = shardfit.ols(case.formula, case.frame).fit(backend="serial")
    assert auto.method_used == "qr"
    gram = shardfit.ols(case.formula, case.frame).fit(backend="serial", method="gram")
    gram_error = np.max(np.abs(np.asarray(gram.bse) / np.asarray(case.bse) - 1))
    auto_error = np.max(np.abs(np.asarray(auto.bse) / np.asarray(case.bse) - 1))
    assert gram_error > 100 * auto_error, (gram_error, auto_error)
    # A fit that is not nearly exact stays on the Gram (one pass).
    norris = CASES["NoInt1"]
    assert shardfit.ols(norris.formula, norris.frame).fit(backend="serial").method_used == "gram"


def test_auto_takes_tsqr_for_a_nearly_exact_weighted_fit() -> None:
    """The same rule with weights (1 - R2 ~ 2e-10): against statsmodels' WLS, which
    computes the residuals directly."""
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(8)
    n = 3000
    frame = pd.DataFrame(
        {"x1": rng.normal(10, 2, n), "x2": rng.uniform(0, 5, n), "w": rng.uniform(0.2, 4, n)}
    )
    noise = rng.normal(0, 1e-4, n) / np.sqrt(frame.w)
    frame["y"] = 3 + 2 * frame.x1 - 1.5 * frame.x2 + noise
    reference = smf.wls("y ~ x1 + x2", frame, weights=frame.w).fit()
    source = from_pandas(frame, 3)
    auto = shardfit.wls("y ~ x1 + x2", source, weights="w").fit(backend="serial")
    assert auto.method_used == "qr"
    np.testing.assert_allclose(auto.bse, reference.bse, rtol=1e-10)
    np.testing.assert_allclose(auto.ssr, reference.ssr, rtol=1e-10)
    gram = shardfit.wls("y ~ x1 + x2", source, weights="w").fit(backend="serial", method="gram")
    assert abs(gram.ssr / reference.ssr - 1) > 1e-9  # what the Gram alone would give


def test_filip_with_rs_tolerance_drops_the_last_power() -> None:
    """R's ``lm`` (tol 1e-7) calls Filip rank deficient; ``rank_tol=1e-7`` agrees."""
    case = CASES["Filip"]
    with pytest.raises(DesignError, match=r"\['I\(x \*\* 10\)'\] is collinear"):
        shardfit.ols(case.formula, case.frame).fit(backend="serial", rank_tol=1e-7)
    with pytest.warns(UserWarning, match=r"I\(x \*\* 10\)"):
        dropped = shardfit.ols(case.formula, case.frame).fit(
            backend="serial", rank_tol=1e-7, rank_deficient="drop"
        )
    assert np.isnan(dropped.params["I(x ** 10)"])
    assert np.isfinite(dropped.params.drop("I(x ** 10)")).all()


@pytest.mark.parametrize("bad", [-1e-9, 1.0, float("nan")])
def test_rank_tol_is_checked(bad: float) -> None:
    case = CASES["Norris"]
    with pytest.raises(ValueError, match="rank_tol"):
        shardfit.ols(case.formula, case.frame).fit(backend="serial", rank_tol=bad)
    with pytest.raises(ValueError, match="rank_tol"):
        shardfit.glm(case.formula, case.frame).fit(backend="serial", rank_tol=bad)


def test_cli_rank_tol(tmp_path, capsys) -> None:
    case = CASES["Filip"]
    data = tmp_path / "filip.csv"
    case.frame.to_csv(data, index=False)
    assert main(["fit", str(data), case.formula, "--backend", "serial"]) == 0
    out = capsys.readouterr().out
    assert "I(x ** 10)" in out and "-4.0296e-05" in out
    code = main(["fit", str(data), case.formula, "--backend", "serial", "--rank-tol", "1e-7"])
    assert code != 0
    assert "I(x ** 10)" in capsys.readouterr().err
