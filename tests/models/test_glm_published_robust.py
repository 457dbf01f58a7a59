"""GLM robust covariances and weighted GLMs equal values published by Stata and R.

References (embedded here as literals; none comes from a statsmodels fit):

* Stata ``glm ..., family(poisson)`` on the capital punishment data, plain and with
  ``[aweight=fweight]``, nonrobust, ``vce(robust)`` and ``vce(cluster id)`` (recorded
  in statsmodels' ``genmod/tests/results/results_glm_poisson_weights.py`` by
  ``poisson_weights_v2.do``);
* Stata ``poisson accident yr_con op_75_79`` on the ships data, with and without
  ``exposure(service)``, ``vce(robust)`` and ``vce(cluster ship)`` (statsmodels'
  ``discrete/tests/results/results_count_robust_cluster.py``);
* Stata ``glm grade gpa tuce psi, family(binomial) vce(robust)`` on Spector's data
  (statsmodels' ``discrete/tests/results/results_glm_logit_constrained.py``,
  ``results_noconstraint_robust``);
* R ``glm(..., weights = w, control = glm.control(epsilon = 1e-25, maxit = 100))``
  with prior weights, Tweedie (statmod), Gamma and Gaussian families with the log link
  (statsmodels' ``genmod/tests/results/res_R_var_weight.py``, written by
  ``test_get_R_tweedie_var_weight.R``).

The data are statsmodels' datasets and the CSV files shipped next to those results.

Definitions matched here:

* shardfit's ``weights`` are statsmodels' ``var_weights``: R's prior ``weights`` and
  Stata's ``aweight``. Stata rescales aweights to sum to the number of rows, which
  changes a fixed-scale (Poisson) fit's covariance, so the Stata cases pass
  ``fweight / sum(fweight) * 17`` (the sandwich covariances do not depend on that
  scaling; the nonrobust one does). Stata's ``fweight``/``pweight`` fits (frequency and
  sampling weights) are not shardfit's notion and are not compared.
* shardfit's ``"HC0"`` is the sandwich with no small-sample factor; Stata's
  ``vce(robust)`` after ML fits (``glm``, ``poisson``) multiplies it by ``n / (n - 1)``,
  applied here to shardfit's covariance.
* shardfit's ``"cluster"`` multiplies the sandwich by ``G / (G - 1) * (n - 1) / (n - k)``
  (statsmodels' default); Stata's ``vce(cluster)`` after ML fits by ``G / (G - 1)``
  alone, so shardfit's covariance is multiplied here by ``(n - k) / (n - 1)``.
* R's fits ran to ``epsilon = 1e-25``; shardfit runs to the same point
  (``tol=0, rtol=1e-25``: at the default ``tol=1e-8`` the slowly converging Gaussian
  log-link fit stops 3e-6 short, as statsmodels' default fit does).

Tolerances follow the printed digits, except where Stata's own stopping point shows:
Stata's ``glm`` estimates on the capital punishment data are ~1e-6 (relative) from the
converged ones, and statsmodels' converged fit shows the same gap (1.05e-6 on the
unweighted estimates, 3.5e-7 on the cluster-robust standard errors). Covariances are
compared element-wise relative to ``sqrt(cov_ii * cov_jj)`` (a correlation-scale error),
since the small off-diagonal entries carry only the absolute precision of the fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels
import statsmodels.api as sm

import shardfit
from shardfit.data.memory import from_pandas

STATSMODELS_DIR = Path(statsmodels.__file__).parent


def _fit(
    formula: str,
    frame: pd.DataFrame,
    *,
    npartitions: int = 3,
    fit_options: dict | None = None,
    **options,
):
    model = shardfit.glm(formula, from_pandas(frame, npartitions), **options)
    return model.fit(backend="serial", **(fit_options or {}))


def _values(series: pd.Series, names: list[str]) -> np.ndarray:
    """The entries of ``series`` in the reference's column order."""
    return series.loc[names].to_numpy()


def _cov(result, names: list[str]) -> np.ndarray:
    return result.cov_params().loc[names, names].to_numpy()


def _assert_cov_close(actual: np.ndarray, desired: np.ndarray, tol: float) -> None:
    """``|actual_ij - desired_ij| <= tol * sqrt(desired_ii * desired_jj)``."""
    desired = np.asarray(desired, dtype=np.float64)
    sd = np.sqrt(np.diag(desired))
    error = np.abs(actual - desired) / np.outer(sd, sd)
    assert np.max(error) <= tol, f"covariance off by {np.max(error):.3g} (scaled) > {tol:g}"


def _stata_factor(cov_type: str, nobs: int, n_groups: int | None, k_params: int) -> float:
    """What turns shardfit's covariance into Stata's after an ML fit (module docstring)."""
    if cov_type == "HC0":
        return nobs / (nobs - 1)  # Stata's vce(robust): n / (n - 1)
    if cov_type == "cluster":
        assert n_groups is not None
        # shardfit: G/(G-1) (n-1)/(n-k); Stata's vce(cluster): G/(G-1).
        return (nobs - k_params) / (nobs - 1)
    return 1.0


def _fit_options(cov_type: str, groups: str | None) -> dict:
    if cov_type == "cluster":
        return {"cov_type": "cluster", "cov_kwds": {"groups": groups}}
    return {"cov_type": cov_type}


# -- Stata glm, Poisson, capital punishment data ------------------------------------------


@pytest.fixture(scope="module")
def cpunish() -> pd.DataFrame:
    """statsmodels' capital punishment data (17 US states) as ``poisson_weights_v2.do``
    builds it: VC100k96 logged, the weights ``fweight`` (1,1,1,2,2,2,3,3,3,...) and the
    cluster ``id = (_n - mod(_n, 2)) / 2`` (nine clusters, rows 1 | 2,3 | ... | 16,17)."""
    data = sm.datasets.cpunish.load_pandas()
    frame = data.exog.copy()
    frame["LN_VC100k96"] = np.log(frame["VC100k96"])
    frame["EXECUTIONS"] = data.endog
    fweight = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 1, 1, 1, 2, 2, 2, 3, 3], dtype=np.float64)
    # Stata's aweights, rescaled to sum to the number of rows as Stata does.
    frame["aweight"] = fweight / fweight.sum() * len(frame)
    frame["id"] = np.arange(1, len(frame) + 1) // 2
    return frame


CPUNISH_TERMS = ["INCOME", "PERPOVERTY", "PERBLACK", "LN_VC100k96", "SOUTH", "DEGREE"]
CPUNISH_FORMULA = "EXECUTIONS ~ " + " + ".join(CPUNISH_TERMS)
CPUNISH_NAMES = [*CPUNISH_TERMS, "Intercept"]  # Stata's order, _cons last

# Stata's estimates (params_table[:, 0]), the same for every vce.
CPUNISH_PARAMS = {
    "none": [
        0.00026110166569,
        0.07781804809828,
        -0.09493110013466,
        0.29693462055586,
        2.3011832004524,
        -18.722067603077,
        -6.8014789919532,
    ],
    "aweight": [
        0.00025343868829,
        0.09081422305585,
        -0.09416451429381,
        0.27652273809507,
        2.239890838384,
        -18.842583191417,
        -6.5630017977417,
    ],
}

# results_glm_poisson_weights.py: results_poisson_{none,aweight}_{hc1,clu1} and
# results_poisson_aweight_nonrobust (params_table[:, 1] and cov = e(V)).
CPUNISH_CASES = {
    "none, vce(robust)": {
        "weights": None,
        "cov_type": "HC0",
        "bse": [
            3.534474167e-05,
            0.09819599835909,
            0.01944446025221,
            0.34917491559373,
            0.45717041903387,
            4.5006120067298,
            3.48445447794,
        ],
        "cov": [
            [1.249250764e-09, 2.158351725e-06, 1.068227835e-07, -5.170410321e-06,
             -5.047866044e-07, -1.662944527e-05, -4.339679838e-05],
            [2.158351725e-06, 0.00964245409374, 8.635335196e-05, -0.00640596402935,
             -0.00524426268669, 0.23390140895418, -0.22653903184676],
            [1.068227835e-07, 8.635335196e-05, 0.0003780870345, -0.00382751790532,
             -0.0064534643179, -0.05137117620883, 0.02948709519544],
            [-5.170410321e-06, -0.00640596402935, -0.00382751790532, 0.12192312167989,
             0.0907733380116, 0.89729289134262, -0.69004336039169],
            [-5.047866044e-07, -0.00524426268669, -0.0064534643179, 0.0907733380116,
             0.20900479203961, 0.93952111535021, -0.75843860743141],
            [-1.662944527e-05, 0.23390140895418, -0.05137117620883, 0.89729289134262,
             0.93952111535021, 20.25550843512, -12.691830440798],
            [-4.339679838e-05, -0.22653903184676, 0.02948709519544, -0.69004336039169,
             -0.75843860743141, -12.691830440798, 12.141423008836],
        ],
    },
    "none, vce(cluster id)": {
        "weights": None,
        "cov_type": "cluster",
        "bse": [
            4.098448535e-05,
            0.11602998752167,
            0.02432927475974,
            0.31774950884716,
            0.54874508731474,
            2.8106198749749,
            3.1571598785659,
        ],
        "cov": [
            [1.679728039e-09, 4.034336761e-06, 1.735749447e-07, -5.093610363e-06,
             -4.552211884e-06, 1.563785418e-05, -9.230028034e-05],
            [4.034336761e-06, 0.01346295800428, 0.00110922683659, -0.01950093608551,
             -0.02957572460439, 0.08545644123676, -0.23518641056668],
            [1.735749447e-07, 0.00110922683659, 0.00059191361033, -0.00720622811203,
             -0.01195031391163, -0.04317371228367, 0.03351736744645],
            [-5.093610363e-06, -0.01950093608551, -0.00720622811203, 0.10096475037261,
             0.13375578883899, 0.49763538443989, -0.27357574414228],
            [-4.552211884e-06, -0.02957572460439, -0.01195031391163, 0.13375578883899,
             0.30112117085206, 0.65342245458316, -0.47102547759356],
            [1.563785418e-05, 0.08545644123676, -0.04317371228367, 0.49763538443989,
             0.65342245458316, 7.8995840816039, -6.5824964755966],
            [-9.230028034e-05, -0.23518641056668, 0.03351736744645, -0.27357574414228,
             -0.47102547759356, -6.5824964755966, 9.9676584988266],
        ],
    },
    "aweight, nonrobust": {
        "weights": "aweight",
        "cov_type": "nonrobust",
        "bse": [
            5.594520811e-05,
            0.09018031800722,
            0.02501975991718,
            0.53816281293549,
            0.50630271729905,
            5.2065333302747,
            4.5075460479893,
        ],
        "cov": [
            [3.12986631e-09, 2.467206465e-06, 1.706246053e-07, -3.176637541e-07,
             -6.238332985e-06, -0.00010954424563, -0.000120350676],
            [2.467206465e-06, 0.00813248975588, 0.00032161167774, -0.00128998199687,
             -0.01831266258952, 0.14012008775466, -0.21862639048575],
            [1.706246053e-07, 0.00032161167774, 0.00062598838631, -0.00690661599067,
             -0.00759732903266, -0.03651168891971, 0.03689627396044],
            [-3.176637541e-07, -0.00128998199687, -0.00690661599067, 0.28961921322663,
             0.04817967329131, 0.52320524326798, -1.8618850102603],
            [-6.238332985e-06, -0.01831266258952, -0.00759732903266, 0.04817967329131,
             0.2563424415444, 0.86118714295143, -0.05787604759173],
            [-0.00010954424563, 0.14012008775466, -0.03651168891971, 0.52320524326798,
             0.86118714295143, 27.107989319261, -7.0873136260377],
            [-0.000120350676, -0.21862639048575, 0.03689627396044, -1.8618850102603,
             -0.05787604759173, -7.0873136260377, 20.317971374744],
        ],
    },
    "aweight, vce(robust)": {
        "weights": "aweight",
        "cov_type": "HC0",
        "bse": [
            2.98866597e-05,
            0.08414617969118,
            0.01946961498728,
            0.36112179485206,
            0.4309885345485,
            4.5147658917496,
            3.3999612612367,
        ],
        "cov": [
            [8.932124278e-10, 1.512127962e-06, 1.877263788e-07, -4.562869239e-06,
             -2.023379829e-06, -1.228516761e-05, -2.423071544e-05],
            [1.512127962e-06, 0.00708057955662, 0.00028427703202, -0.00195495117479,
             -0.00596332288528, 0.2002206183531, -0.1867826510868],
            [1.877263788e-07, 0.00028427703202, 0.00037906590775, -0.00453407701816,
             -0.00623061980468, -0.04659404972537, 0.02694184589718],
            [-4.562869239e-06, -0.00195495117479, -0.00453407701816, 0.13040895071718,
             0.08362596918255, 0.89260578257483, -0.82275604425296],
            [-2.023379829e-06, -0.00596332288528, -0.00623061980468, 0.08362596918255,
             0.18575111691226, 1.0698498854982, -0.64859219982256],
            [-1.228516761e-05, 0.2002206183531, -0.04659404972537, 0.89260578257483,
             1.0698498854982, 20.383111057306, -12.482192460764],
            [-2.423071544e-05, -0.1867826510868, 0.02694184589718, -0.82275604425296,
             -0.64859219982256, -12.482192460764, 11.55973657791],
        ],
    },
    "aweight, vce(cluster id), 17 partitions": {
        "weights": "aweight",
        "cov_type": "cluster",
        # One row per partition: every two-row cluster spans two partitions.
        "npartitions": 17,
        "bse": [
            2.93670276e-05,
            0.09800194027665,
            0.02511206083893,
            0.36749499887001,
            0.51564197481271,
            3.2292740757119,
            3.193826081147,
        ],
        "cov": [
            [8.624223101e-10, 2.413510691e-06, 3.123995891e-07, -4.358439015e-06,
             -8.084672085e-06, -4.785328653e-06, -3.652286809e-05],
            [2.413510691e-06, 0.00960438029799, 0.00106422375754, -0.00911884619892,
             -0.03121758372723, 0.06803953530995, -0.1771575604842],
            [3.123995891e-07, 0.00106422375754, 0.00063061559958, -0.00844230553012,
             -0.01177586448603, -0.05361546061038, 0.03844868195581],
            [-4.358439015e-06, -0.00911884619892, -0.00844230553012, 0.13505257419447,
             0.1405885311093, 0.86184257188684, -0.74146699290197],
            [-8.084672085e-06, -0.03121758372723, -0.01177586448603, 0.1405885311093,
             0.26588664618875, 0.75712244813928, -0.35118919402768],
            [-4.785328653e-06, 0.06803953530995, -0.05361546061038, 0.86184257188684,
             0.75712244813928, 10.428211056065, -8.3518020609031],
            [-3.652286809e-05, -0.1771575604842, 0.03844868195581, -0.74146699290197,
             -0.35118919402768, -8.3518020609031, 10.200525036615],
        ],
    },
}  # fmt: skip


@pytest.mark.parametrize("case", list(CPUNISH_CASES))
def test_cpunish_poisson_robust_equals_statas_published_values(cpunish, case) -> None:
    """Stata ``glm executions income perpoverty perblack LN_VC100k96 south degree
    [aweight=fweight], family(poisson) vce(...)``."""
    ref = CPUNISH_CASES[case]
    cov_type = ref["cov_type"]
    result = _fit(
        CPUNISH_FORMULA,
        cpunish,
        npartitions=ref.get("npartitions", 3),
        fit_options=_fit_options(cov_type, "id"),
        family="poisson",
        weights=ref["weights"],
    )
    assert result.nobs == 17
    if cov_type == "cluster":
        assert result.n_groups == 9
    factor = _stata_factor(cov_type, 17, result.n_groups, len(CPUNISH_NAMES))
    # Stata's stopping point: 1.1e-6 (unweighted) and 1.3e-6 (aweight) from the
    # converged estimates, which statsmodels' fit also gives.
    np.testing.assert_allclose(
        _values(result.params, CPUNISH_NAMES),
        CPUNISH_PARAMS[ref["weights"] or "none"],
        rtol=2e-6,
    )
    # Measured: bse 2.9e-7..4.3e-7, covariance 5.9e-7..8.5e-7 (scaled; twice the
    # standard errors' relative error, as a variance); statsmodels' fit is off by the
    # same amounts.
    np.testing.assert_allclose(
        _values(result.bse, CPUNISH_NAMES) * np.sqrt(factor), ref["bse"], rtol=1e-6
    )
    _assert_cov_close(_cov(result, CPUNISH_NAMES) * factor, ref["cov"], 2e-6)


# -- Stata poisson, ships data ------------------------------------------------------------


@pytest.fixture(scope="module")
def ships() -> pd.DataFrame:
    """McCullagh and Nelder's ship damage data (``ships.csv`` next to statsmodels'
    ``results_count_robust_cluster.py``), rows with a missing value dropped (34 rows
    of 5 ships), as statsmodels' test and Stata's ``N = 34`` have it."""
    path = STATSMODELS_DIR / "discrete" / "tests" / "results" / "ships.csv"
    return pd.read_csv(path, index_col=False).dropna()


SHIPS_NAMES = ["yr_con", "op_75_79", "Intercept"]

# Stata's poisson estimates: without and with exposure(service).
SHIPS_PARAMS = {
    False: [-0.02172061893549, 0.22148585072024, 2.2697077143215],
    True: [0.30633819450439, 0.35592229608495, -6.974712802772],
}

# results_count_robust_cluster.py: results_poisson_{hc1,clu} and
# results_poisson_exposure_{hc1,clu}.
SHIPS_CASES = {
    "vce(robust)": {
        "exposure": False,
        "cov_type": "HC0",
        "bse": [0.19233713248134, 0.55301404772037, 0.66532523368388],
        "cov": [
            [0.03699357253114, -0.01521223175214, -0.09585501859714],
            [-0.01521223175214, 0.30582453697607, -0.1649339692102],
            [-0.09585501859714, -0.1649339692102, 0.44265766657651],
        ],
    },
    "vce(cluster ship)": {
        "exposure": False,
        "cov_type": "cluster",
        "bse": [0.19933709357097, 0.11093628220713, 1.1048569901548],
        "cov": [
            [0.03973527687332, 0.00976206273414, -0.21171095768584],
            [0.00976206273414, 0.01230685870994, -0.06297293767114],
            [-0.21171095768584, -0.06297293767114, 1.2207089686939],
        ],
    },
    "exposure(service) vce(robust)": {
        "exposure": True,
        "cov_type": "HC0",
        "bse": [0.09144457613957, 0.16103531267836, 0.2558675415017],
        "cov": [
            [0.00836211050535, 0.00098797681063, -0.01860743122756],
            [0.00098797681063, 0.02593237192942, -0.02395236210603],
            [-0.01860743122756, -0.02395236210603, 0.06546819879413],
        ],
    },
    "exposure(service) vce(cluster ship)": {
        "exposure": True,
        "cov_type": "cluster",
        "bse": [0.03817694295902, 0.09213163536669, 0.0968656626603],
        "cov": [
            [0.0014574789737, -0.00277745275086, 0.00108765624666],
            [-0.00277745275086, 0.00848823823534, -0.00469929607507],
            [0.00108765624666, -0.00469929607507, 0.00938295660262],
        ],
    },
}


@pytest.mark.parametrize("case", list(SHIPS_CASES))
def test_ships_poisson_robust_equals_statas_published_values(ships, case) -> None:
    """Stata ``poisson accident yr_con op_75_79 [, exposure(service)] vce(...)`` (a
    Poisson MLE is the Poisson GLM). The ships are contiguous, so clusters straddle the
    three partitions' boundaries."""
    ref = SHIPS_CASES[case]
    cov_type = ref["cov_type"]
    result = _fit(
        "accident ~ yr_con + op_75_79",
        ships,
        fit_options=_fit_options(cov_type, "ship"),
        family="poisson",
        exposure="service" if ref["exposure"] else None,
    )
    assert result.nobs == 34
    if cov_type == "cluster":
        assert result.n_groups == 5
    factor = _stata_factor(cov_type, 34, result.n_groups, len(SHIPS_NAMES))
    # Stata's ML fit converged tightly: measured 1.5e-11 (params), 6e-12 (bse), 1.2e-11
    # (covariance, scaled).
    np.testing.assert_allclose(
        _values(result.params, SHIPS_NAMES), SHIPS_PARAMS[ref["exposure"]], rtol=1e-10
    )
    np.testing.assert_allclose(
        _values(result.bse, SHIPS_NAMES) * np.sqrt(factor), ref["bse"], rtol=1e-10
    )
    _assert_cov_close(_cov(result, SHIPS_NAMES) * factor, ref["cov"], 1e-10)


# -- Stata glm, binomial, Spector's data --------------------------------------------------


def test_spector_logit_robust_equals_statas_published_values() -> None:
    """Stata ``glm grade gpa tuce psi, family(binomial) vce(robust)``
    (results_glm_logit_constrained.results_noconstraint_robust), 32 students."""
    data = sm.datasets.spector.load_pandas()
    frame = data.exog.copy()
    frame["GRADE"] = data.endog
    result = _fit(
        "GRADE ~ GPA + TUCE + PSI", frame, fit_options={"cov_type": "HC0"}, family="binomial"
    )
    names = ["GPA", "TUCE", "PSI", "Intercept"]
    assert result.nobs == 32
    factor = _stata_factor("HC0", 32, None, len(names))
    # Measured 1.2e-7 (Stata's stopping point) and 1.3e-7, covariance 2.6e-7 (scaled);
    # statsmodels' fit shows the same gaps (it equals shardfit's to 4e-14).
    np.testing.assert_allclose(
        _values(result.params, names),
        [2.8261124216999, 0.09515765001172, 2.3786875040587, -13.021345912635],
        rtol=5e-7,
    )
    np.testing.assert_allclose(
        _values(result.bse, names) * np.sqrt(factor),
        [1.287827879216, 0.1198091371814, 0.97985082470462, 5.2807513766642],
        rtol=5e-7,
    )
    _assert_cov_close(
        _cov(result, names) * factor,
        [
            [1.6585006464861, 0.00630184631279, 0.20368998146717, -5.7738061195745],
            [0.00630184631279, 0.01435422935215, 0.01997066738212, -0.34768562593344],
            [0.20368998146717, 0.01997066738212, 0.96010763867432, -1.5315997267117],
            [-5.7738061195745, -0.34768562593344, -1.5315997267117, 27.886335102141],
        ],
        5e-7,
    )


# -- R glm with prior weights --------------------------------------------------------------


def _fair() -> pd.DataFrame:
    """statsmodels' Fair data (6366 women), affairs as ``fair``; weights 1, every 5th
    row 5, every 13th row 3 (R's ``seq(1, n, 5)`` then ``seq(1, n, 13)``)."""
    data = sm.datasets.fair.load_pandas()
    frame = data.exog.copy()
    frame["fair"] = data.endog
    frame["w"] = _r_weights(len(frame))
    return frame


def _cancer() -> pd.DataFrame:
    """Stata's cancer data (``stata_cancer_glm.csv``), drug as dummies, R's weights."""
    path = STATSMODELS_DIR / "genmod" / "tests" / "results" / "stata_cancer_glm.csv"
    frame = pd.read_csv(path)
    frame["drug2"] = (frame["drug"] == 2).astype(np.float64)
    frame["drug3"] = (frame["drug"] == 3).astype(np.float64)
    frame["w"] = _r_weights(len(frame))
    return frame


def _cpunish_income_thousands() -> pd.DataFrame:
    """The capital punishment data with INCOME in thousands and the R script's weights."""
    data = sm.datasets.cpunish.load_pandas()
    frame = data.exog.copy()
    frame["EXECUTIONS"] = data.endog
    frame["INCOME"] = frame["INCOME"] / 1000
    frame["w"] = np.array([1, 2, 3, 4, 5, 4, 3, 2, 1, 2, 3, 4, 5, 4, 3, 2, 1], dtype=np.float64)
    return frame


def _r_weights(rows: int) -> np.ndarray:
    weights = np.ones(rows)
    weights[::5] = 5.0
    weights[::13] = 3.0
    return weights


# res_R_var_weight.py (R 3.5.1, printed with 20 digits; deviances with 6 decimals).
R_WEIGHTED_CASES = {
    "tweedie(var.power = 1.55, link.power = 0)": {
        "frame": _fair,
        "formula": "fair ~ age + yrs_married",
        "options": {"family": "tweedie", "link": "log", "var_power": 1.55},
        "names": ["Intercept", "age", "yrs_married"],
        "params": [
            0.74699331283637337986,
            -0.031592165334818379796,
            -0.021959412079720488226,
        ],
        "bse": [0.25438368514036091561, 0.011629899831763365614, 0.011034604276375996681],
        "deviance": 45399.238887,
    },
    "Gamma(link = 'log')": {
        "frame": _cancer,
        "formula": "studytime ~ age + drug2 + drug3",
        "options": {"family": "gamma", "link": "log"},
        "names": ["Intercept", "age", "drug2", "drug3"],
        "params": [
            4.3171222692811204169,
            -0.038835175525200764379,
            0.54097404989168318412,
            1.0560051456310013407,
        ],
        "bse": [
            0.80693035378427380166,
            0.013827354415809251648,
            0.18432033392178892584,
            0.186384917449112536,
        ],
        "deviance": 28.440959,
    },
    "gaussian(link = 'log')": {
        "frame": _cpunish_income_thousands,
        "formula": "EXECUTIONS ~ INCOME + SOUTH - 1",
        "options": {"family": "gaussian", "link": "log"},
        "names": ["INCOME", "SOUTH"],
        "params": [0.019083886775238277644, 0.93993818789790006818],
        "bse": [0.021677622811348211396, 0.82525357389082676374],
        "deviance": 1248.273065,
    },
}


@pytest.mark.parametrize("case", list(R_WEIGHTED_CASES))
def test_weighted_glm_equals_rs_published_values(case) -> None:
    """R ``glm(..., weights = w)``: prior weights, statsmodels' ``var_weights`` and
    shardfit's ``weights``. R's standard errors use the Pearson dispersion
    ``sum(w (y - mu)^2 / V(mu)) / df_resid``, as shardfit's scale."""
    ref = R_WEIGHTED_CASES[case]
    result = _fit(
        ref["formula"],
        ref["frame"](),
        fit_options={"tol": 0.0, "rtol": 1e-25},  # R's epsilon = 1e-25
        weights="w",
        **ref["options"],
    )
    assert result.converged
    names = ref["names"]
    assert list(result.params.index) == names
    # Measured: params 9e-10..3e-9, bse 2e-11..1.2e-8 (statsmodels' fit at R's
    # tolerance shows the same).
    np.testing.assert_allclose(_values(result.params, names), ref["params"], rtol=1e-8)
    np.testing.assert_allclose(_values(result.bse, names), ref["bse"], rtol=5e-8)
    np.testing.assert_allclose(result.deviance, ref["deviance"], rtol=0, atol=5e-7)
