"""HAC with statsmodels' automatic lag, hac-panel and hac-groupsum (Driscoll-Kraay)
against statsmodels, for OLS, WLS, and Poisson and logit GLMs.

The panel is stacked by unit (each unit's periods in order), as statsmodels expects.
The partitions include a 1-row one, empty ones, and boundaries inside a unit's run and
on a unit boundary: hac-panel's lags must cross a boundary only when the run goes on,
hac-groupsum's per-time sums add across partitions. One row has a missing regressor:
statsmodels is fitted on the rows left, as shardfit's ``missing="drop"``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from linear_cases import cut_source
from statsmodels.stats.sandwich_covariance import S_hac_groupsum, S_nw_panel

import shardfit
from shardfit.errors import DesignError, MissingDataError
from shardfit.models import hac
from shardfit.models.hac import PanelLagWindow, TimeScoreSums, kernel_weights

RTOL = 1e-9
UNITS, PERIODS = 9, 14
# A 1-row partition (13:14), empty ones (5:5, 14:14), boundaries inside runs (5, 13,
# 15, 40, 41, 100) and on unit boundaries (14, 70).
CUTS = [5, 5, 13, 14, 14, 15, 40, 41, 70, 100]


def _panel(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = UNITS * PERIODS
    unit = np.repeat(np.arange(UNITS), PERIODS)
    time = np.tile(np.arange(PERIODS), UNITS)
    shock = rng.normal(size=PERIODS)[time]  # common to a period: cross-unit correlation
    e = np.zeros(n)
    for i in range(n):  # AR(1) within each unit: the lag terms matter
        e[i] = (0.6 * e[i - 1] if time[i] else 0.0) + rng.normal() + shock[i]
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=n) + 0.5 * shock,
            "x2": rng.gamma(2.0, size=n),
            "unit": [f"u{u}" for u in unit],  # text group labels
            "time": time,
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    df["y"] = 1.0 + 2.0 * df.x1 - 0.5 * df.x2 + e
    eta = 0.2 + 0.3 * df.x1 - 0.1 * df.x2 + 0.3 * e
    df["count"] = rng.poisson(np.exp(eta)).astype(float)
    df["yes"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    df.loc[37, "x2"] = np.nan  # dropped; the rows around it become consecutive
    return df


def _statsmodels_kwds(kwds: dict, kept: pd.DataFrame) -> dict:
    """The same options with the columns as statsmodels' arrays (of the rows used)."""
    out = dict(kwds)
    for key in ("groups", "time"):
        if key in out:
            out[key] = (
                pd.factorize(kept[out[key]])[0] if key == "groups" else kept[out[key]].to_numpy()
            )
    return out


def _assert_same(ours, theirs) -> None:
    np.testing.assert_allclose(ours.params, theirs.params, rtol=RTOL)
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=RTOL)
    np.testing.assert_allclose(ours.cov_params(), theirs.cov_params(), rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours.pvalues, theirs.pvalues, rtol=RTOL)
    assert ours.df_resid_inference == getattr(theirs, "df_resid_inference", None)


LINEAR_CASES = [
    # statsmodels' automatic lag: floor(4 (125 / 100)^(2/9)) = 4 of the rows used.
    ("HAC", {"maxlags": None}, False, CUTS),
    ("HAC", {"maxlags": None, "kernel": "uniform", "use_correction": True}, True, []),
    ("hac-panel", {"groups": "unit", "maxlags": 3}, False, CUTS),
    ("hac-panel", {"groups": "unit", "maxlags": 3, "use_correction": "cluster"}, True, CUTS),
    ("hac-panel", {"time": "time", "maxlags": 2, "use_correction": False}, False, []),
    # Longer than most partitions and most of a run.
    ("hac-panel", {"groups": "unit", "maxlags": 12, "kernel": "uniform"}, True, CUTS),
    ("hac-groupsum", {"time": "time", "maxlags": 2}, False, CUTS),
    ("hac-groupsum", {"time": "time", "maxlags": None, "use_correction": "hac"}, True, CUTS),
    (
        "hac-groupsum",
        {"time": "time", "maxlags": 3, "weights_func": "uniform", "use_correction": False},
        False,
        [],
    ),
]


@pytest.mark.parametrize(("cov_type", "kwds", "weighted", "cuts"), LINEAR_CASES)
def test_ols_wls_match_statsmodels(cov_type, kwds, weighted, cuts):
    df = _panel()
    kept = df.dropna()
    X = sm.add_constant(kept[["x1", "x2"]])
    sm_kwds = _statsmodels_kwds(kwds, kept)
    if weighted:
        theirs = sm.WLS(kept.y.to_numpy(), X, weights=kept.w.to_numpy())
        model = shardfit.wls("y ~ x1 + x2", cut_source(df, cuts), weights="w")
    else:
        theirs = sm.OLS(kept.y.to_numpy(), X)
        model = shardfit.ols("y ~ x1 + x2", cut_source(df, cuts))
    # use_t: the t distribution's degrees of freedom (the runs minus one) are compared.
    theirs = theirs.fit(cov_type=cov_type, cov_kwds=sm_kwds, use_t=True)
    ours = model.fit(backend="serial", cov_type=cov_type, cov_kwds=kwds, use_t=True)
    _assert_same(ours, theirs)
    assert ours.cov_type == cov_type
    record = ours.extra["cov_kwds"]
    assert record["maxlags"] == kwds["maxlags"]
    if kwds["maxlags"] is None:
        periods = ours.nobs if cov_type == "HAC" else PERIODS
        assert record["nlags"] == int(np.floor(4 * (periods / 100.0) ** (2.0 / 9.0)))
        assert record["nlags"] == (4 if cov_type == "HAC" else 2)
    if cov_type == "hac-panel":
        assert ours.n_groups == UNITS  # the runs (statsmodels' len(groupidx))


GLM_CASES = [
    ("poisson", "count", "hac-panel", {"groups": "unit", "maxlags": 3}, CUTS),
    ("poisson", "count", "hac-groupsum", {"time": "time", "maxlags": 2}, CUTS),
    ("logit", "yes", "HAC", {"maxlags": None}, CUTS),
    ("logit", "yes", "hac-panel", {"time": "time", "maxlags": 2, "use_correction": "cluster"}, []),
    ("logit", "yes", "hac-groupsum", {"time": "time", "maxlags": None}, CUTS),
]


@pytest.mark.parametrize(("family", "response", "cov_type", "kwds", "cuts"), GLM_CASES)
def test_glm_matches_statsmodels(family, response, cov_type, kwds, cuts):
    df = _panel(seed=5)
    kept = df.dropna()
    X = sm.add_constant(kept[["x1", "x2"]])
    sm_family = sm.families.Poisson() if family == "poisson" else sm.families.Binomial()
    theirs = sm.GLM(kept[response].to_numpy(), X, family=sm_family).fit(
        cov_type=cov_type, cov_kwds=_statsmodels_kwds(kwds, kept), use_t=True
    )
    fitter = shardfit.poisson if family == "poisson" else shardfit.logit
    ours = fitter(f"{response} ~ x1 + x2", cut_source(df, cuts)).fit(
        backend="serial", cov_type=cov_type, cov_kwds=kwds, use_t=True
    )
    _assert_same(ours, theirs)
    assert ("nlags" in ours.extra["cov_kwds"]) == (kwds["maxlags"] is None)


def test_hac_panel_on_processes_matches_statsmodels():
    df = _panel(seed=7)
    kept = df.dropna()
    kwds = {"groups": "unit", "maxlags": 4, "use_correction": "cluster"}
    theirs = sm.OLS(kept.y.to_numpy(), sm.add_constant(kept[["x1", "x2"]])).fit(
        cov_type="hac-panel", cov_kwds=_statsmodels_kwds(kwds, kept)
    )
    ours = shardfit.ols("y ~ x1 + x2", cut_source(df, CUTS)).fit(
        backend="processes", workers=2, cov_type="hac-panel", cov_kwds=kwds
    )
    _assert_same(ours, theirs)
    assert ours.use_t is False and ours.n_groups == UNITS


def test_merged_pieces_are_statsmodels_inner_matrices_for_any_split():
    rng = np.random.default_rng(11)
    x = rng.normal(size=(23, 3))
    groups = np.array([0] * 4 + [1] * 1 + [2] * 9 + [0] * 2 + [3] * 7)  # 0 comes back
    time = np.concatenate([np.arange(4), [2], np.arange(9), [5, 6], np.arange(7)])
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    groupidx = list(zip(starts, [*starts[1:], 23], strict=True))
    weights = kernel_weights("bartlett", 3)
    panel = S_nw_panel(x, weights, groupidx)
    groupsum = S_hac_groupsum(x, time, nlags=3)
    for cuts in ([], [1], [4, 4, 5], [2, 3, 5, 14, 15, 16], [0, 13, 22]):
        pieces = zip(np.split(x, cuts), np.split(groups, cuts), np.split(time, cuts), strict=True)
        window = sums = None
        for xs, gs, ts in pieces:
            w = PanelLagWindow.of_scores(xs, gs, weights, "groups")
            s = TimeScoreSums.of_scores(xs, ts, "time", 100)
            window = w if window is None else window.merge(w)
            sums = s if sums is None else sums.merge(s)
        np.testing.assert_allclose(window.meat, panel, rtol=1e-13)
        assert window.runs == len(groupidx) == 5
        middle = hac.hac_middle(
            sums, hac.HacOptions.parse("hac-groupsum", {"time": "t", "maxlags": 3}), 23, 3
        )
        np.testing.assert_allclose(middle.meat, groupsum, rtol=1e-13)
        # statsmodels' n_groups of hac-groupsum: time decreases at rows 4, 5, 14, 16.
        assert sums.runs == len(np.nonzero(time[1:] < time[:-1])[0]) + 1 == 5
        again = PanelLagWindow.from_state(window.to_state())
        np.testing.assert_array_equal(again.meat, window.meat)
        assert TimeScoreSums.from_state(sums.to_state()).keys == sums.keys


@pytest.mark.parametrize(
    ("cov_type", "cov_kwds", "message"),
    [
        ("hac-panel", {"groups": "unit", "maxlags": 2, "nlags": 2}, r"unknown cov_kwds.*nlags"),
        ("hac-groupsum", {"time": "time", "maxlags": 2, "groups": "unit"}, "unknown cov_kwds"),
        ("hac-panel", {"groups": "unit"}, "needs cov_kwds={'maxlags'"),
        ("hac-panel", {"groups": "unit", "maxlags": None}, "no automatic lag"),
        ("hac-panel", {"groups": "unit", "time": "time", "maxlags": 2}, "one of 'groups'"),
        ("hac-panel", {"groups": "unit", "maxlags": 2, "use_correction": True}, "not a bool"),
        ("hac-groupsum", {"maxlags": 2}, "needs cov_kwds={'time'"),
        ("hac-groupsum", {"time": np.arange(3), "maxlags": 2}, "must be a column name"),
        ("HAC", {"maxlags": 2, "kernel": "parzen"}, "kernel"),
    ],
)
def test_refusals_name_the_option(cov_type, cov_kwds, message):
    model = shardfit.ols("y ~ x1 + x2", cut_source(_panel(), []))
    with pytest.raises(ValueError, match=message):
        model.fit(backend="serial", cov_type=cov_type, cov_kwds=cov_kwds)


def test_missing_column_and_missing_values_as_cluster():
    df = _panel(seed=9)
    with pytest.raises(DesignError, match=r"cov_kwds=\{'time': 'period'\}.*no column 'period'"):
        shardfit.poisson("count ~ x1", cut_source(df, CUTS)).fit(
            backend="serial", cov_type="hac-groupsum", cov_kwds={"time": "period", "maxlags": 1}
        )
    df["unit"] = df["unit"].astype(object)
    df.loc[60, "unit"] = None
    kwds = {"groups": "unit", "maxlags": 2}
    with pytest.raises(MissingDataError, match=r"row 60 of df.*column 'unit'"):
        shardfit.ols("y ~ x1", cut_source(df, CUTS), missing="raise").fit(
            backend="serial", cov_type="hac-panel", cov_kwds=kwds
        )
    # missing="drop" drops the row, as for cluster's groups: statsmodels on the rest.
    ours = shardfit.ols("y ~ x1 + x2", cut_source(df, CUTS)).fit(
        backend="serial", cov_type="hac-panel", cov_kwds=kwds
    )
    kept = df.dropna()
    theirs = sm.OLS(kept.y.to_numpy(), sm.add_constant(kept[["x1", "x2"]])).fit(
        cov_type="hac-panel", cov_kwds=_statsmodels_kwds(kwds, kept)
    )
    _assert_same(ours, theirs)
    assert ours.rows_dropped == {"missing": 2}


def test_too_many_time_values_is_refused_naming_the_column(monkeypatch):
    monkeypatch.setattr(hac, "MAX_TIME_VALUES", 10)  # 14 periods; 13 in one partition
    kwds = {"time": "time", "maxlags": 1}
    for cuts in ([], [20, 40]):  # in one partition, and only once merged
        with pytest.raises(DesignError, match=r"time column 'time' has more than 10 distinct"):
            shardfit.ols("y ~ x1", cut_source(_panel(), cuts)).fit(
                backend="serial", cov_type="hac-groupsum", cov_kwds=kwds
            )


def test_cli_forms_summary_and_saved_options(tmp_path, capsys):
    from shardfit.cli.fit_cmd import parse_cov
    from shardfit.cli.main import main

    assert parse_cov("HAC:auto") == ("HAC", {"maxlags": None})
    assert parse_cov("HAC:3") == ("HAC", {"maxlags": 3})  # unchanged
    assert parse_cov("hac-panel:unit:3") == ("hac-panel", {"groups": "unit", "maxlags": 3})
    groupsum = ("hac-groupsum", {"time": "time", "maxlags": None})
    assert parse_cov("hac-groupsum:time:auto") == groupsum
    df = _panel(seed=13)
    path = tmp_path / "panel.parquet"
    df.to_parquet(path)
    kept = df.dropna()
    theirs = sm.OLS(kept.y.to_numpy(), sm.add_constant(kept[["x1", "x2"]])).fit(
        cov_type="hac-panel", cov_kwds=_statsmodels_kwds({"groups": "unit", "maxlags": 3}, kept)
    )
    args = ["fit", str(path), "y ~ x1 + x2", "--backend", "serial", "--cov"]
    assert main([*args, "hac-panel:unit:3"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{theirs.bse['x1']:.4f}" in out
    assert "within each run of consecutive rows of one 'unit' value" in out
    assert "HAC-Panel, 3 lags, bartlett kernel, 'hac' small-sample correction; 9 runs" in out

    auto = shardfit.ols("y ~ x1 + x2", df).fit(
        backend="serial", cov_type="hac-groupsum", cov_kwds={"time": "time", "maxlags": None}
    )
    text = " ".join(str(auto.summary()).split())
    assert "Driscoll and Kraay" in text and "2 lags (automatic), bartlett kernel" in text
    loaded = shardfit.load_results(auto.save(tmp_path / "auto.json"))
    assert loaded.extra["cov_kwds"] == {
        "time": "time",
        "maxlags": None,
        "nlags": 2,
        "kernel": "bartlett",
        "use_correction": "cluster",
    }
    np.testing.assert_array_equal(loaded.bse, auto.bse)
