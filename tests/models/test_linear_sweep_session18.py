"""Session 18 differential sweep of OLS/WLS against statsmodels in memory.

A random sweep (formulas with and without an intercept, an implicit constant,
interactions, categoricals, missing values dropped, weights, 1 to 7 partitions, every
covariance) found restriction strings naming an interaction's coefficient
(``"x1:x2 = 0"``) failing to parse, where statsmodels tests them, and no way to give
new observations weights in ``get_prediction`` (statsmodels' ``weights=``, which its
WLS ``get_prediction()`` takes from the fit). The parametrized test keeps the most
valuable combinations the sweep found agreeing that the other tests do not cover.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit

RTOL = 1e-9


def _frame(seed: int, rows: int = 240, *, missing: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows) * 1e3,
            "x2": rng.normal(size=rows) + 50,
            "x3": rng.exponential(size=rows) + 0.1,
            "g": rng.choice(list("abcd"), rows),
            "h": rng.choice(["p", "q", "r"], rows),
            "w": rng.uniform(0.2, 3, rows),
            "cl1": rng.integers(0, 11, rows),
            "cl2": rng.integers(0, 7, rows),
        }
    )
    frame["y"] = (
        1 + 2e-3 * frame.x1 - frame.x2 + 0.7 * (frame.g == "b") + rng.normal(size=rows) * frame.x3
    )
    if missing:
        for column in ("x1", "y", "x2"):
            frame.loc[rng.choice(rows, 4, replace=False), column] = np.nan
    return frame


def _used(frame: pd.DataFrame, formula: str, weighted: bool) -> pd.DataFrame:
    """The rows statsmodels' missing="drop" keeps, numbered from 0 (cluster and HAC
    arguments must line up with them)."""
    columns = [c for c in ("y", "x1", "x2", "x3", "g", "h") if c in formula.replace("np.", "")]
    return frame.dropna(subset=columns + (["w"] if weighted else [])).reset_index(drop=True)


def _statsmodels(formula: str, used: pd.DataFrame, weighted: bool, cov_type: str, kwds):
    model = smf.wls(formula, used, weights=used["w"]) if weighted else smf.ols(formula, used)
    return model.fit(cov_type=cov_type, cov_kwds=kwds)


# -- the fix: interaction names in restriction strings ---------------------------------


def test_restrictions_naming_interactions_match_statsmodels() -> None:
    """``t_test("x1:x2 = 0")`` raised "Unknown operator ':'" (formulaic's parser reads
    ``:`` as an operator); statsmodels' patsy matches the names first and tests it."""
    frame = _frame(3, missing=False)
    formula = "y ~ x1 * x2 + C(h)"
    ours = shardfit.ols(formula, shardfit.from_pandas(frame, 3)).fit(backend="serial")
    theirs = smf.ols(formula, frame).fit()
    single = "x1:x2 = 0"
    joint = "x1:x2 = 0, x1 - 1000 * x1:x2 = C(h)[T.q]"
    t_ours, t_theirs = ours.t_test(single), theirs.t_test(single)
    np.testing.assert_allclose(np.ravel(t_ours.effect), np.ravel(t_theirs.effect), rtol=RTOL)
    np.testing.assert_allclose(np.ravel(t_ours.sd), np.ravel(t_theirs.sd), rtol=RTOL)
    np.testing.assert_allclose(np.ravel(t_ours.tvalue), np.ravel(t_theirs.tvalue), rtol=RTOL)
    f_ours, f_theirs = ours.f_test(joint), theirs.f_test(joint)
    np.testing.assert_allclose(f_ours.fvalue, float(np.squeeze(f_theirs.fvalue)), rtol=RTOL)
    np.testing.assert_allclose(f_ours.pvalue, float(f_theirs.pvalue), rtol=RTOL)
    assert f_ours.df_num == f_theirs.df_num == 2
    w_ours = ours.wald_test(joint, use_f=False)
    w_theirs = theirs.wald_test(joint, use_f=False, scalar=True)
    np.testing.assert_allclose(w_ours.statistic, float(w_theirs.statistic), rtol=RTOL)
    # cov_params takes the string too: the variance of x1:x2 - x1.
    np.testing.assert_allclose(
        ours.cov_params(r_matrix="x1:x2 = x1"),
        float(np.squeeze(theirs.t_test("x1:x2 = x1").sd)) ** 2,
        rtol=RTOL,
    )


def test_interaction_of_a_categorical_in_a_restriction() -> None:
    """A categorical-by-numeric interaction's name (``C(g)[a]:x1``, with ``:`` after
    brackets) and a name that prefixes another (``x1`` of ``x1:x2``) both resolve."""
    frame = _frame(4, missing=False)
    formula = "y ~ np.log(x3) + C(g):x1 + C(h)"
    ours = shardfit.ols(formula, frame).fit(backend="serial", cov_type="HC1")
    theirs = smf.ols(formula, frame).fit(cov_type="HC1")
    hypothesis = "C(g)[a]:x1 = C(g)[b]:x1, C(g)[c]:x1 = 0"
    np.testing.assert_allclose(
        ours.f_test(hypothesis).fvalue,
        float(np.squeeze(theirs.f_test(hypothesis).fvalue)),
        rtol=RTOL,
    )


# -- combinations the sweep found agreeing, not covered elsewhere -------------------------

SWEEP = [
    # (formula, weighted, npartitions, cov_type, cov_kwds)
    ("y ~ 0 + x1 + x2", True, 4, "HC3", None),  # uncentred R2, robust Wald F with no constant
    ("y ~ x1 + x2 + x3 - 1", False, 7, "cluster", {"groups": ["cl1", "cl2"]}),
    ("y ~ 0 + C(g) + x1", True, 3, "HC2", None),  # implicit constant: robust fvalue NaN
    ("y ~ 0 + C(g) + x1", False, 2, "nonrobust", None),
    (
        "y ~ x1 * x2 + C(h)",
        True,
        5,
        "HAC",
        {"maxlags": 3, "kernel": "uniform", "use_correction": True},
    ),
    ("y ~ np.log(x3) + C(g):x1 + C(h)", True, 6, "cluster", {"groups": "cl1"}),
    ("y ~ x1 + x2 + C(g)", True, 1, "HAC", {"maxlags": 2}),
]


def _their_kwds(cov_kwds, used: pd.DataFrame):
    if cov_kwds is None:
        return None
    groups = cov_kwds.get("groups")
    if groups is None:
        return dict(cov_kwds)
    return {"groups": used[groups].to_numpy()}


@pytest.mark.parametrize(("formula", "weighted", "npartitions", "cov_type", "cov_kwds"), SWEEP)
def test_sweep_combinations_match_statsmodels(
    formula: str, weighted: bool, npartitions: int, cov_type: str, cov_kwds
) -> None:
    frame = _frame(11)
    source = shardfit.from_pandas(frame, npartitions)
    model = (
        shardfit.wls(formula, source, weights="w") if weighted else shardfit.ols(formula, source)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rows dropped for missing values
        ours = model.fit(backend="serial", cov_type=cov_type, cov_kwds=cov_kwds)
    used = _used(frame, formula, weighted)
    theirs = _statsmodels(formula, used, weighted, cov_type, _their_kwds(cov_kwds, used))
    names = list(ours.params.index)  # patsy orders terms otherwise: compare by name
    assert sorted(names) == sorted(theirs.params.index)
    for attribute in ("params", "bse", "tvalues"):
        np.testing.assert_allclose(
            getattr(ours, attribute)[names].to_numpy(),
            getattr(theirs, attribute)[names].to_numpy(),
            rtol=RTOL,
            err_msg=attribute,
        )
    # A p-value in the far tail (1e-60) magnifies t's last digits about t**2 times
    # (statsmodels' own params carry ~1e-11 here, shardfit's 1e-16 against exact
    # rational arithmetic): 1e-7.
    np.testing.assert_allclose(
        ours.pvalues[names].to_numpy(), theirs.pvalues[names].to_numpy(), rtol=1e-7
    )
    cov = theirs.cov_params().loc[names, names].to_numpy()
    np.testing.assert_allclose(
        ours.cov_params().loc[names, names].to_numpy(), cov, atol=RTOL * np.abs(cov).max(), rtol=0
    )
    np.testing.assert_allclose(
        ours.conf_int(0.1).loc[names].to_numpy(),
        theirs.conf_int(0.1).loc[names].to_numpy(),
        rtol=RTOL,
    )
    for attribute in (
        "nobs", "df_model", "df_resid", "k_constant", "rsquared", "rsquared_adj", "ess",
        "ssr", "centered_tss", "uncentered_tss", "mse_model", "mse_resid", "mse_total",
        "llf", "aic", "bic", "condition_number", "fvalue",
    ):  # fmt: skip
        np.testing.assert_allclose(
            getattr(ours, attribute), getattr(theirs, attribute), rtol=RTOL, err_msg=attribute
        )
    np.testing.assert_allclose(ours.f_pvalue, theirs.f_pvalue, rtol=1e-7)  # NaN: both
    assert ours.use_t == theirs.use_t
    # Prediction on rows of the data: means, standard errors and both intervals.
    new = used.iloc[:9]
    ours_frame = ours.get_prediction(new).summary_frame(alpha=0.1)
    theirs_frame = theirs.get_prediction(new).summary_frame(alpha=0.1)
    np.testing.assert_allclose(
        ours_frame.to_numpy(), theirs_frame[ours_frame.columns].to_numpy(), rtol=RTOL
    )


# -- get_prediction(weights=...): statsmodels' intervals for weighted new observations ----


def test_weighted_prediction_intervals_match_statsmodels() -> None:
    """A WLS fit's ``get_prediction()`` in statsmodels gives each training row's
    observation interval the variance ``scale / w``; shardfit had no ``weights`` (unit
    weight only), so its ``obs_ci_*`` differed wherever ``w != 1``."""
    frame = _frame(7)
    formula = "y ~ x1 + C(g)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rows dropped for missing values
        ours = shardfit.wls(formula, shardfit.from_pandas(frame, 4), weights="w").fit(
            backend="serial", cov_type="HC1"
        )
        # The rows with a response: those missing a predictor get no prediction, which
        # leaves the rows of the fit.
        rows = frame[frame["y"].notna()]
        got = ours.get_prediction(rows, weights="w").summary_frame(alpha=0.1)
        by_array = ours.get_prediction(rows, weights=rows["w"].to_numpy())
    used = _used(frame, formula, weighted=True)
    theirs = smf.wls(formula, used, weights=used["w"]).fit(cov_type="HC1")
    expected = theirs.get_prediction().summary_frame(alpha=0.1)  # the fit's weights
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=RTOL)
    # The kept rows keep the frame's labels: those of statsmodels' rows.
    assert list(got.index) == list(frame.dropna(subset=["y", "x1", "g", "w"]).index)
    np.testing.assert_allclose(by_array.se_obs, theirs.get_prediction().se_obs, rtol=RTOL)
    # One number for every new row, as statsmodels' weights=2.0.
    new = used.iloc[:6]
    np.testing.assert_allclose(
        ours.get_prediction(new, weights=2.0).summary_frame().to_numpy(),
        theirs.get_prediction(new, weights=2.0).summary_frame().to_numpy(),
        rtol=RTOL,
    )


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ("v", "no column 'v'"),
        (np.ones(3), r"one weight per row of data \(12 rows\)"),
        (-1.0, "the weight of row 0 is -1 .*finite and positive"),
    ],
)
def test_prediction_weights_refused_clearly(weights, message: str) -> None:
    frame = _frame(8, rows=12, missing=False)
    fit = shardfit.ols("y ~ x1", frame).fit(backend="serial")
    with pytest.raises(ValueError, match=message):
        fit.get_prediction(frame, weights=weights)


@pytest.mark.parametrize("method", ["qr", "gram"])
def test_empty_and_fully_dropped_partitions_with_hac(method: str) -> None:
    """An empty partition and one whose every response is missing, between others:
    HAC's lags pair the rows kept across them, as statsmodels' on the rows it keeps;
    the QR path takes its shifts from the first partition with complete rows."""
    from linear_cases import cut_source

    rng = np.random.default_rng(9)
    rows = 90
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=rows),
            "x2": rng.normal(size=rows) + 20,
            "g": rng.choice(list("abc"), rows),
            "w": rng.uniform(0.3, 2, rows),
        }
    )
    frame["y"] = frame.x1 - frame.x2 + rng.normal(size=rows)
    frame.loc[0:29, "y"] = np.nan  # the first non-empty partition: every row dropped
    used = frame.dropna().reset_index(drop=True)
    formula = "y ~ x1 + C(g) + x2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = shardfit.wls(formula, cut_source(frame, [0, 0, 30, 60]), weights="w").fit(
            backend="serial", method=method, cov_type="HAC", cov_kwds={"maxlags": 3}
        )
    theirs = smf.wls(formula, used, weights=used["w"]).fit(cov_type="HAC", cov_kwds={"maxlags": 3})
    names = list(theirs.params.index)
    np.testing.assert_allclose(ours.bse[names].to_numpy(), theirs.bse.to_numpy(), rtol=RTOL)
    np.testing.assert_allclose(ours.fvalue, theirs.fvalue, rtol=RTOL)
    assert ours.nobs == theirs.nobs == 60
    assert ours.rows_dropped == {"missing": 30}
