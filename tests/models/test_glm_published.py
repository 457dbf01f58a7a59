"""GLM fits equal values published by R and Stata on classic datasets.

The references are R's ``glm`` (with MASS's ``negative.binomial`` and statmod's
``tweedie`` families) and Stata's ``glm``, as recorded in statsmodels' test suite
(``statsmodels/genmod/tests/results/results_glm.py``), plus R's own documented
``example(glm)``. The numbers are embedded here as literals: none comes from a
statsmodels fit. The data are statsmodels' datasets and the CSV files shipped next to
``results_glm.py``.

Only quantities whose definition matches shardfit's are asserted directly. Where R or
Stata define a quantity differently, the test recomputes it with their definition from
shardfit's fit (said at each place):

* R's AIC for the Gamma and inverse Gaussian families uses the dispersion
  ``deviance / n`` (not the Pearson estimate that shardfit's ``llf`` uses, like
  statsmodels') and counts the dispersion as a parameter.
* Stata's log-likelihood for the Gamma and inverse Gaussian families is the one at
  dispersion 1.
* R's standard errors for the negative binomial (``negative.binomial(theta)``) use the
  Pearson dispersion; shardfit, like statsmodels, fixes the scale at 1.

Tolerances follow the printed digits, except where the reference's own IRLS stopped
short of full convergence: R's ``glm.fit`` stops when the relative change of the
deviance is below 1e-8 and takes the covariance from the weights of its last step
(evaluated at the previous iterate). An emulation of R's ``glm.fit`` reproduces the
published R numbers to their printed digits in these cases (Poisson, logit, negative
binomial, Tweedie). Stata's recorded estimates show gaps of the same kind on the slowly
converging non-canonical fits (Stata's own stopping rule; not emulated here). In every
case statsmodels' converged fit shows the same gap as shardfit's (the two agree with
each other to ~1e-12), so the gaps are the references'. Deviances and log-likelihoods,
flat at the optimum, still match to 1e-9 or better there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels
import statsmodels.api as sm
from scipy import stats

import shardfit
from shardfit.data.memory import from_pandas

# The CSV files statsmodels ships with its R/Stata reference results.
RESULTS_DIR = Path(statsmodels.__file__).parent / "genmod" / "tests" / "results"


def _fit(formula: str, frame: pd.DataFrame, npartitions: int = 3, **options):
    model = shardfit.glm(formula, from_pandas(frame, npartitions), **options)
    return model.fit(backend="serial")


def _values(series: pd.Series, names: list[str]) -> np.ndarray:
    """The entries of ``series`` in the reference's column order."""
    return series.loc[names].to_numpy()


def _mu(result, frame: pd.DataFrame, names: list[str], inverse_link) -> np.ndarray:
    """Fitted means from the design written out here (independent of shardfit's links)."""
    design = frame.assign(Intercept=1.0)[names].to_numpy(dtype=np.float64)
    return inverse_link(design @ _values(result.params, names))


def _r_aic_gamma(y: np.ndarray, mu: np.ndarray, deviance: float, rank: int) -> float:
    """R's ``Gamma()$aic`` plus ``2 * rank``: dispersion ``deviance / n``, counted."""
    dispersion = deviance / len(y)
    loglike = stats.gamma.logpdf(y, 1 / dispersion, scale=mu * dispersion).sum()
    return -2 * loglike + 2 * (rank + 1)


def _r_aic_inverse_gaussian(y: np.ndarray, deviance: float, rank: int) -> float:
    """R's ``inverse.gaussian()$aic`` plus ``2 * rank`` (dispersion ``deviance / n``)."""
    n = len(y)
    dispersion = deviance / n
    return n * (np.log(dispersion * 2 * np.pi) + 1) + 3 * np.log(y).sum() + 2 + 2 * rank


def _stata_llf_gamma(y: np.ndarray, mu: np.ndarray) -> float:
    """Stata's Gamma log-likelihood: the one at dispersion 1 (an exponential)."""
    return float(-(y / mu + np.log(mu)).sum())


def _stata_llf_inverse_gaussian(y: np.ndarray, mu: np.ndarray) -> float:
    """Stata's inverse Gaussian log-likelihood: the one at dispersion 1."""
    return float(-0.5 * ((y - mu) ** 2 / (y * mu**2) + np.log(2 * np.pi * y**3)).sum())


# -- Poisson -----------------------------------------------------------------------------


def test_dobson_poisson_equals_rs_documented_example() -> None:
    """R's ``example(glm)``: Dobson (1990), ``glm(counts ~ outcome + treatment,
    family = poisson())``. R prints residual deviance 5.129141 on 4 df, null deviance
    10.58145 on 8 df, AIC 56.76132. The model is the independence model of a balanced
    3x3 table, so the fit is also known in closed form (row totals 63, 40, 47; column
    totals 50; 150 in all), which the test asserts to machine precision."""
    frame = pd.DataFrame(
        {
            "counts": [18, 17, 15, 20, 10, 20, 25, 13, 12],
            "outcome": [1, 2, 3] * 3,  # gl(3, 1, 9)
            "treatment": [1] * 3 + [2] * 3 + [3] * 3,  # gl(3, 3)
        }
    )
    result = _fit("counts ~ C(outcome) + C(treatment)", frame, family="poisson")
    names = ["Intercept", "C(outcome)[T.2]", "C(outcome)[T.3]"]
    # R's printed values (7 significant digits).
    np.testing.assert_allclose(
        _values(result.params, names), [3.044522, -0.4542553, -0.2929871], rtol=1e-6
    )
    np.testing.assert_allclose(result.deviance, 5.129141, rtol=1e-6)
    np.testing.assert_allclose(result.null_deviance, 10.58145, rtol=1e-6)
    np.testing.assert_allclose(result.aic, 56.76132, rtol=1e-6)
    assert result.df_resid == 4
    # R's summary: standard errors 0.1709, 0.2022, 0.1927, 0.2000, 0.2000.
    np.testing.assert_allclose(
        result.bse.to_numpy(), [0.1709, 0.2022, 0.1927, 0.2000, 0.2000], rtol=3e-4
    )
    # Closed form: mu_ij = r_i c_j / N; var(log mu_11) = 1/r_1 + 1/c_1 - 1/N,
    # var(log(r_k / r_1)) = 1/r_1 + 1/r_k.
    rows, cols, total = np.array([63.0, 40.0, 47.0]), np.array([50.0, 50.0, 50.0]), 150.0
    mu = np.outer(cols, rows).ravel() / total  # treatment-major, as the rows above
    y = frame["counts"].to_numpy(dtype=np.float64)
    deviance = 2 * np.sum(y * np.log(y / mu))
    null_deviance = 2 * np.sum(y * np.log(y / y.mean()))
    llf = np.sum(stats.poisson.logpmf(y, mu))
    np.testing.assert_allclose(
        result.params.to_numpy(),
        [np.log(21.0), np.log(40 / 63), np.log(47 / 63), 0.0, 0.0],
        rtol=1e-12,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        result.bse.to_numpy(),
        np.sqrt([1 / 63 + 1 / 50 - 1 / 150, 1 / 63 + 1 / 40, 1 / 63 + 1 / 47, 0.04, 0.04]),
        rtol=1e-8,  # the covariance uses the last step's weights (3e-9, as statsmodels)
    )
    np.testing.assert_allclose(result.deviance, deviance, rtol=1e-12)
    np.testing.assert_allclose(result.null_deviance, null_deviance, rtol=1e-12)
    np.testing.assert_allclose(result.llf, llf, rtol=1e-12)
    np.testing.assert_allclose(result.aic, -2 * llf + 10, rtol=1e-12)


@pytest.fixture(scope="module")
def cpunish() -> pd.DataFrame:
    """statsmodels' capital punishment data (17 US states, executions in 1997)."""
    data = sm.datasets.cpunish.load_pandas()
    frame = data.exog.copy()
    frame["LN_VC100k96"] = np.log(frame["VC100k96"])  # the reference logs this column
    frame["EXECUTIONS"] = data.endog
    frame["E"] = 100.0
    return frame


CPUNISH_TERMS = ["INCOME", "PERPOVERTY", "PERBLACK", "LN_VC100k96", "SOUTH", "DEGREE"]
CPUNISH_FORMULA = "EXECUTIONS ~ " + " + ".join(CPUNISH_TERMS)


def test_cpunish_poisson_equals_rs_published_values(cpunish) -> None:
    """R glm, poisson(), as recorded in statsmodels' results_glm.Cpunish (the
    reference's exog: the six columns with VC100k96 logged, then the constant)."""
    result = _fit(CPUNISH_FORMULA, cpunish, family="poisson")
    names = [*CPUNISH_TERMS, "Intercept"]
    # 7 significant digits.
    np.testing.assert_allclose(
        _values(result.params, names),
        [
            2.611017e-04,
            7.781801e-02,
            -9.493111e-02,
            2.969349e-01,
            2.301183e00,
            -1.872207e01,
            -6.801480e00,
        ],
        rtol=1e-6,
    )
    # R's covariance comes from its last IRLS step's weights (see the module
    # docstring): 2e-6..8e-6 above R's printed values.
    np.testing.assert_allclose(
        _values(result.bse, names),
        [
            5.187132e-05,
            7.940193e-02,
            2.291926e-02,
            4.375164e-01,
            4.283826e-01,
            4.283961e00,
            4.146850e00,
        ],
        rtol=2e-5,
    )
    np.testing.assert_allclose(result.deviance, 18.591641759528944, rtol=1e-12)
    np.testing.assert_allclose(result.null_deviance, 136.57281747225, rtol=1e-12)
    np.testing.assert_allclose(result.llf, -31.92732869482515, rtol=1e-12)
    np.testing.assert_allclose(result.aic, 77.8546573896503, rtol=1e-12)
    # Depends on the estimates to first order: R's stopping point shows (4e-8).
    np.testing.assert_allclose(result.pearson_chi2, 24.75374835, rtol=2e-7)
    assert result.df_resid == 10
    assert result.scale == 1.0


def test_cpunish_poisson_exposure_on_17_partitions_equals_rs_published_values(
    cpunish,
) -> None:
    """R glm with ``offset = log(100)``, as recorded in statsmodels'
    results_glm.Cpunish_offset: one row per partition, the exposure shifts only the
    intercept (by -log 100)."""
    result = _fit(CPUNISH_FORMULA, cpunish, npartitions=17, family="poisson", exposure="E")
    names = ["Intercept", *CPUNISH_TERMS]
    np.testing.assert_allclose(
        _values(result.params, names),
        [
            -1.140665e01,
            2.611017e-04,
            7.781801e-02,
            -9.493111e-02,
            2.969349e-01,
            2.301183e00,
            -1.872207e01,
        ],
        rtol=1e-6,
    )
    # 4 significant digits.
    np.testing.assert_allclose(
        _values(result.bse, names),
        [4.147e00, 5.187e-05, 7.940e-02, 2.292e-02, 4.375e-01, 4.284e-01, 4.284e00],
        rtol=3e-4,
    )
    np.testing.assert_allclose(result.deviance, 18.591641759528944, rtol=1e-12)
    np.testing.assert_allclose(result.llf, -31.92732869482515, rtol=1e-12)


# -- Gamma -------------------------------------------------------------------------------


def test_scotvote_gamma_inverse_equals_r_and_stata_published_values() -> None:
    """R glm, Gamma() (canonical inverse link), as recorded in statsmodels'
    results_glm.Scotvote, on statsmodels' Scotland data (the seven columns, then the
    constant); its log-likelihood is Stata's."""
    data = sm.datasets.scotland.load_pandas()
    frame = data.exog.copy()
    frame["YES"] = data.endog
    terms = list(data.exog.columns)
    result = _fit("YES ~ " + " + ".join(terms), frame, family="gamma")
    names = [*terms, "Intercept"]
    # 7 significant digits.
    np.testing.assert_allclose(
        _values(result.params, names),
        [
            4.961768e-05,
            2.034423e-03,
            -7.181429e-05,
            1.118520e-04,
            -1.467515e-07,
            -5.186831e-04,
            -2.42717498e-06,
            -1.776527e-02,
        ],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        _values(result.bse, names),
        [
            1.621577e-05,
            5.320802e-04,
            2.711664e-05,
            4.057691e-05,
            1.236569e-07,
            2.402534e-04,
            7.460253e-07,
            1.147922e-02,
        ],
        rtol=1e-6,
    )
    np.testing.assert_allclose(result.deviance, 0.087388516417, rtol=1e-10)
    np.testing.assert_allclose(result.null_deviance, 0.536072, rtol=1e-6)
    # 1.1e-7 off, beyond the printed digits: statsmodels' fit and an emulation of R's
    # glm.fit give shardfit's value, and so does the recorded scale (0.003584283 * 24).
    np.testing.assert_allclose(result.pearson_chi2, 0.0860228056, rtol=2e-7)
    # R's dispersion is the Pearson chi2 over df_resid, as shardfit's scale.
    np.testing.assert_allclose(result.scale, 0.003584283, rtol=1e-6)
    assert result.df_resid == 24
    y = frame["YES"].to_numpy(dtype=np.float64)
    mu = _mu(result, frame, names, lambda eta: 1 / eta)
    np.testing.assert_allclose(
        _r_aic_gamma(y, mu, result.deviance, len(names)), 182.947045954721, rtol=1e-12
    )
    np.testing.assert_allclose(_stata_llf_gamma(y, mu), -163.5539382, rtol=1e-8)


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    """Stata's cancer data (``stata_cancer_glm.csv``): survival time, age, drug 1-3."""
    frame = pd.read_csv(RESULTS_DIR / "stata_cancer_glm.csv")
    frame["drug2"] = (frame["drug"] == 2).astype(np.float64)
    frame["drug3"] = (frame["drug"] == 3).astype(np.float64)
    return frame


# Stata's recorded fit stopped short (its stopping rule): estimates off by up to 2.6e-5
# (log) and 1.4e-5 (identity), its standard errors by up to 1.7e-5 (identity), its
# Pearson scale by 8e-7 (log); statsmodels shows the same gaps.
CANCER_CASES = {
    "log": {
        "inverse_link": np.exp,
        "params": [-0.04477778, 0.57437126, 1.05210726, 4.64604002],
        "bse": [0.0147328, 0.19694727, 0.19772507, 0.83534671],
        "params_rtol": 6e-5,
        "bse_rtol": 1e-6,
        "deviance": 16.174635536991005,
        "scale": 0.31805268736385695,
        "aic_r": 331.89022395372069,
        "llf_stata": -173.6866032285836,
    },
    "identity": {
        "inverse_link": lambda eta: eta,
        "params": [-0.5369833, 6.47296332, 16.20336802, 38.96617431],
        "bse": [0.13341238, 2.1349966, 3.87411875, 8.19235553],
        "params_rtol": 3e-5,
        "bse_rtol": 4e-5,
        "deviance": 15.093762327607557,
        "scale": 0.29512089119443752,
        "aic_r": 328.39209118952965,
        "llf_stata": -173.1461666245201,
    },
}


@pytest.mark.parametrize("link", sorted(CANCER_CASES))
def test_cancer_gamma_equals_stata_and_r_published_values(cancer, link) -> None:
    """Stata glm, family(gamma) link(log | identity), as recorded in statsmodels'
    results_glm.CancerLog / CancerIdentity (exog: age, drug 2, drug 3, constant);
    the AIC and null deviance are R's."""
    case = CANCER_CASES[link]
    result = _fit("studytime ~ age + drug2 + drug3", cancer, family="gamma", link=link)
    names = ["age", "drug2", "drug3", "Intercept"]
    np.testing.assert_allclose(
        _values(result.params, names), case["params"], rtol=case["params_rtol"]
    )
    np.testing.assert_allclose(_values(result.bse, names), case["bse"], rtol=case["bse_rtol"])
    np.testing.assert_allclose(result.deviance, case["deviance"], rtol=1e-9)
    np.testing.assert_allclose(result.null_deviance, 27.92207137420696, rtol=1e-12)
    # The reference's scale is Stata's Pearson dispersion (chi2 / df_resid).
    np.testing.assert_allclose(result.scale, case["scale"], rtol=2e-6)
    np.testing.assert_allclose(result.pearson_chi2 / result.df_resid, result.scale, rtol=1e-12)
    y = cancer["studytime"].to_numpy(dtype=np.float64)
    mu = _mu(result, cancer, names, case["inverse_link"])
    np.testing.assert_allclose(
        _r_aic_gamma(y, mu, result.deviance, len(names)), case["aic_r"], rtol=1e-10
    )
    # Flat at the optimum (dispersion does not move the estimates), so Stata's earlier
    # stop does not show.
    np.testing.assert_allclose(_stata_llf_gamma(y, mu), case["llf_stata"], rtol=1e-10)


# -- inverse Gaussian --------------------------------------------------------------------


def test_inverse_gaussian_canonical_equals_stata_and_r_published_values() -> None:
    """Hardin and Hilbe's simulated inverse Gaussian data (``inv_gaussian.csv``, the
    first 5000 rows), canonical link 1/mu**2: Stata's estimates and log-likelihood and
    R's deviances and AIC, as recorded in statsmodels' results_glm.InvGauss."""
    frame = pd.read_csv(RESULTS_DIR / "inv_gaussian.csv").iloc[:5000]
    result = _fit("xig ~ x1 + x2", frame, family="inverse_gaussian")
    names = ["x1", "x2", "Intercept"]
    np.testing.assert_allclose(
        _values(result.params, names), [0.4519770, -0.2508288, 1.0359574], rtol=1e-6
    )
    # 7 significant digits; 1.0e-6 on the second (a last-digit rounding of Stata's).
    np.testing.assert_allclose(
        _values(result.bse, names), [0.03148291, 0.02237211, 0.03429943], rtol=2e-6
    )
    np.testing.assert_allclose(result.deviance, 1423.943980407997, rtol=1e-12)
    np.testing.assert_allclose(result.null_deviance, 1520.673165475461, rtol=1e-12)
    np.testing.assert_allclose(result.pearson_chi2, 1432.771536, rtol=1e-6)
    np.testing.assert_allclose(result.scale, 0.2867266359127567, rtol=2e-6)
    assert result.df_resid == 4997
    y = frame["xig"].to_numpy(dtype=np.float64)
    mu = _mu(result, frame, names, lambda eta: 1 / np.sqrt(eta))
    np.testing.assert_allclose(
        _r_aic_inverse_gaussian(y, result.deviance, len(names)), 5059.41911646446, rtol=1e-12
    )
    # Off by 5.3e-8 (2e-4 absolute), beyond the printed digits; statsmodels' fit gives
    # the same, and so does this formula at the published estimates (-3877.700148): the
    # gap is in the published number (the medpar fits below match it to 1e-9), not in
    # the fit.
    np.testing.assert_allclose(_stata_llf_inverse_gaussian(y, mu), -3877.700354, rtol=1e-7)


# Stata's recorded fits stopped short on these slowly converging fits (shardfit takes
# 18 and 22 iterations): estimates off by up to 4.3e-5 (log) and 9.2e-5 (identity),
# standard errors by 1.6e-5 and 1.2e-4, Pearson scale by 9e-6 and 1e-5; statsmodels
# shows the same gaps. Deviances agree to 1e-9.
MEDPAR_CASES = {
    "log": {
        "inverse_link": np.exp,
        "params": [0.09927544, -0.19161722, 1.05712336],
        "bse": [0.00600728, 0.02632126, 0.04915765],
        "params_rtol": 1e-4,
        "bse_rtol": 4e-5,
        "deviance": 304.27188306012789,
        "scale": 0.10240599519220173,
        "aic_r": 18545.836421595981,
        "llf_stata": -12162.72308108797,
    },
    "identity": {
        "inverse_link": lambda eta: eta,
        "params": [0.44538838, -1.05872706, 2.83947966],
        "bse": [0.02586783, 0.13830023, 0.20834864],
        "params_rtol": 2e-4,
        "bse_rtol": 3e-4,
        "deviance": 305.33661191013988,
        "scale": 0.10115387793455666,
        "aic_r": 18558.677276882016,
        "llf_stata": -12163.25544543151,
    },
}


@pytest.fixture(scope="module")
def medpar() -> pd.DataFrame:
    """Hilbe's medpar1 data (``stata_medpar1_glm.csv``, 3676 stays): length of stay,
    DRG codes and admission type (type 3 against types 1 and 2)."""
    frame = pd.read_csv(RESULTS_DIR / "stata_medpar1_glm.csv")
    frame["type3"] = (frame["admitype"] == "type3").astype(np.float64)
    return frame


@pytest.mark.parametrize("link", sorted(MEDPAR_CASES))
def test_medpar_inverse_gaussian_equals_stata_and_r_published_values(medpar, link) -> None:
    """Stata glm, family(igaussian) link(log | identity), as recorded in statsmodels'
    results_glm.InvGaussLog / InvGaussIdentity (exog: codes, type 3, constant); the
    AIC and null deviance are R's."""
    case = MEDPAR_CASES[link]
    result = _fit("los ~ codes + type3", medpar, family="inverse_gaussian", link=link)
    names = ["codes", "type3", "Intercept"]
    np.testing.assert_allclose(
        _values(result.params, names), case["params"], rtol=case["params_rtol"]
    )
    np.testing.assert_allclose(_values(result.bse, names), case["bse"], rtol=case["bse_rtol"])
    np.testing.assert_allclose(result.deviance, case["deviance"], rtol=2e-9)
    np.testing.assert_allclose(result.null_deviance, 335.1539777981053, rtol=1e-12)
    np.testing.assert_allclose(result.scale, case["scale"], rtol=3e-5)
    assert result.df_resid == 3673
    y = medpar["los"].to_numpy(dtype=np.float64)
    mu = _mu(result, medpar, names, case["inverse_link"])
    np.testing.assert_allclose(
        _r_aic_inverse_gaussian(y, result.deviance, len(names)), case["aic_r"], rtol=1e-9
    )
    np.testing.assert_allclose(_stata_llf_inverse_gaussian(y, mu), case["llf_stata"], rtol=1e-9)


# -- binomial ----------------------------------------------------------------------------


def test_lbw_logit_equals_r_and_stata_published_values() -> None:
    """Hosmer and Lemeshow's low birth weight data (``stata_lbw_glm.csv``, 189 births),
    logit: the values recorded in statsmodels' results_glm.Lbw (R's glm(low ~ age +
    lwt + race_black + race_other + smoke + ptl + ht + ui, family=binomial) and
    Stata)."""
    frame = pd.read_csv(RESULTS_DIR / "stata_lbw_glm.csv")
    frame["race_black"] = (frame["race"] == "black").astype(np.float64)
    frame["race_other"] = (frame["race"] == "other").astype(np.float64)
    terms = ["age", "lwt", "race_black", "race_other", "smoke", "ptl", "ht", "ui"]
    result = _fit("low ~ " + " + ".join(terms), frame, family="binomial")
    names = [*terms, "Intercept"]
    # 8 digits after the point: 1e-7 on the smallest (-0.01515082).
    np.testing.assert_allclose(
        _values(result.params, names),
        [
            -0.02710031,
            -0.01515082,
            1.26264728,
            0.86207916,
            0.92334482,
            0.54183656,
            1.83251780,
            0.75851348,
            0.46122388,
        ],
        rtol=3e-7,
    )
    # R's covariance is from its last IRLS step's weights (6e-6..1.6e-5 below; an
    # emulation of glm.fit gives the published digits).
    np.testing.assert_allclose(
        _values(result.bse, names),
        [
            0.036449917,
            0.006925765,
            0.526405169,
            0.439146744,
            0.400820976,
            0.346246857,
            0.691623875,
            0.459373871,
            1.204574885,
        ],
        rtol=3e-5,
    )
    np.testing.assert_allclose(result.deviance, 201.4479911325021, rtol=1e-12)
    np.testing.assert_allclose(result.null_deviance, 234.671996193219, rtol=1e-12)
    np.testing.assert_allclose(result.llf, -100.7239955662511, rtol=1e-12)
    np.testing.assert_allclose(result.aic, 219.447991133, rtol=1e-11)
    np.testing.assert_allclose(result.pearson_chi2, 182.023342493558, rtol=2e-9)
    assert result.df_resid == 180


# -- negative binomial -------------------------------------------------------------------


def test_committee_negative_binomial_equals_rs_published_values() -> None:
    """R glm, MASS's negative.binomial(theta = 1) (statsmodels' alpha = 1), as recorded
    in statsmodels' results_glm.Committee, on statsmodels' committee data (exog: SIZE,
    SUBS, log STAFF, PRESTIGE, BILLS103, SUBS * log STAFF, constant).

    R's summary uses the Pearson dispersion for this family; shardfit (like statsmodels)
    fixes the scale at 1, so R's standard errors are shardfit's times
    ``sqrt(pearson_chi2 / df_resid)``. R's log-likelihood and AIC are at dispersion 1
    and count no dispersion parameter, as shardfit's."""
    data = sm.datasets.committee.load_pandas()
    frame = data.exog.copy()
    frame["LN_STAFF"] = np.log(frame["STAFF"])
    frame["SUBS_LN_STAFF"] = frame["SUBS"] * frame["LN_STAFF"]
    frame["BILLS104"] = data.endog
    terms = ["SIZE", "SUBS", "LN_STAFF", "PRESTIGE", "BILLS103", "SUBS_LN_STAFF"]
    result = _fit("BILLS104 ~ " + " + ".join(terms), frame, family="negative_binomial", alpha=1.0)
    names = [*terms, "Intercept"]
    # R stopped on its relative deviance criterion along a flat direction (SUBS and
    # SUBS * log STAFF are nearly collinear): its estimates are up to 2e-4 off
    # (PRESTIGE), while the deviance agrees to 1e-8. An emulation of R's glm.fit
    # reproduces the published estimates to 2e-7.
    np.testing.assert_allclose(
        _values(result.params, names),
        [-0.0268147, 1.25103364, 2.91070663, -0.34799563, 0.00659808, -0.31303026, -6.44847076],
        rtol=5e-4,
    )
    dispersion = result.pearson_chi2 / result.df_resid
    np.testing.assert_allclose(dispersion, 0.38528595746569905, rtol=1e-4)
    np.testing.assert_allclose(
        _values(result.bse, names) * np.sqrt(dispersion),
        [
            1.99956263e-02,
            4.76820254e-01,
            6.48362654e-01,
            4.17956107e-01,
            1.41512690e-03,
            1.07770186e-01,
            1.99557656e00,
        ],
        rtol=1e-4,
    )
    np.testing.assert_allclose(result.deviance, 5.615520158267981, rtol=2e-8)
    np.testing.assert_allclose(result.null_deviance, 27.81104693643434, rtol=1e-12)
    np.testing.assert_allclose(result.llf, -101.33286676188968, rtol=1e-9)
    np.testing.assert_allclose(result.aic, 216.66573352377935, rtol=1e-9)
    assert result.scale == 1.0
    assert result.df_resid == 13


# -- Tweedie -----------------------------------------------------------------------------

# R's summary of statmod's tweedie(var.power, link.power) fits of EXECUTIONS ~ INCOME +
# SOUTH - 1 (statsmodels' results_glm.CpunishTweediePower15 / Power2 / Log1). R's
# standard errors use the Pearson dispersion, as shardfit's scale. For var.power 1.5
# R's own stopping point shows: estimates 2e-6 off, the INCOME standard error 6e-5 (its
# last step's weights); the other two converge in a few steps and agree to ~1e-10.
CPUNISH_TWEEDIE_CASES = {
    "power 1.5, identity": {
        "var_power": 1.5,
        "link": "identity",
        "params": [0.0000471043, 6.4721324886],
        "bse": [0.0000246888, 3.5288126173],
        "deviance": 36.087307138233,
        "rtol": (5e-6, 1.5e-4),
    },
    "power 2, identity": {
        "var_power": 2.0,
        "link": "identity",
        "params": [4.72472244209477e-05, 6.43243456540827],
        "bse": [1.86839521185429e-05, 3.83231672422612],
        "deviance": 15.7840685407599,
        "rtol": (1e-10, 1e-9),
    },
    "power 1, log": {
        "var_power": 1.0,
        "link": "log",
        "params": [1.65700638623525e-05, 1.54257997850499],
        "bse": [1.81044999017907e-05, 0.725739640176733],
        "deviance": 95.0325613464258,
        "rtol": (1e-10, 1e-10),
    },
}


@pytest.mark.parametrize("case", sorted(CPUNISH_TWEEDIE_CASES))
def test_cpunish_tweedie_equals_rs_published_values(cpunish, case) -> None:
    ref = CPUNISH_TWEEDIE_CASES[case]
    result = _fit(
        "EXECUTIONS ~ INCOME + SOUTH - 1",
        cpunish,
        family="tweedie",
        link=ref["link"],
        var_power=ref["var_power"],
    )
    names = ["INCOME", "SOUTH"]
    assert list(result.params.index) == names
    params_rtol, bse_rtol = ref["rtol"]
    np.testing.assert_allclose(_values(result.params, names), ref["params"], rtol=params_rtol)
    np.testing.assert_allclose(_values(result.bse, names), ref["bse"], rtol=bse_rtol)
    np.testing.assert_allclose(result.deviance, ref["deviance"], rtol=1e-11)
    assert result.df_resid == 15


def test_fair_tweedie_log_equals_rs_published_values() -> None:
    """R glm, statmod's tweedie(var.power = 1.5, link.power = 0) of affairs ~
    rate_marriage + age + yrs_married - 1 on statsmodels' Fair data (6366 rows), as
    recorded in statsmodels' results_glm.FairTweedieLog15."""
    data = sm.datasets.fair.load_pandas()
    frame = data.exog.copy()
    frame["affairs"] = data.endog
    result = _fit(
        "affairs ~ rate_marriage + age + yrs_married - 1",
        frame,
        family="tweedie",
        link="log",
        var_power=1.5,
    )
    names = ["rate_marriage", "age", "yrs_married"]
    # R stopped 1.5e-5 short on the estimates, 3.9e-5 on the standard errors (its
    # stopping rule and last-step weights; an emulation of glm.fit gives R's digits).
    np.testing.assert_allclose(
        _values(result.params, names),
        [-0.389168171340452, 0.0670222370664611, -0.0970852004566712],
        rtol=5e-5,
    )
    np.testing.assert_allclose(
        _values(result.bse, names),
        [0.0323435784513691, 0.0063805300018014, 0.00893580175352525],
        rtol=1e-4,
    )
    np.testing.assert_allclose(result.deviance, 20741.82, rtol=3e-7)  # 7 digits printed
    assert result.df_resid == 6363
