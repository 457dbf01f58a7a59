"""HAC (Newey-West) and two-way cluster covariances of OLS/WLS against statsmodels.

HAC's lags cross partition boundaries: the partitions here include one shorter than
``maxlags``, an empty one, and rows dropped for a missing value (statsmodels'
``missing="drop"`` computes HAC on the rows left, consecutive).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from linear_cases import cut_source

import shardfit
from shardfit.models.hac import LagWindow, kernel_weights

RTOL = 1e-9


def _frame(n: int = 240, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e = np.zeros(n)
    for t in range(1, n):  # AR(1) errors: the lag terms matter
        e[t] = 0.7 * e[t - 1] + rng.normal()
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.gamma(2.0, size=n)})
    df["y"] = 1.0 + 2.0 * df.x1 - 0.5 * df.x2 + e
    df["w"] = rng.uniform(0.5, 2.0, n)
    df["g1"] = rng.integers(0, 9, n)
    df["g2"] = rng.choice(list("abcdefg"), n)
    df.loc[[i for i in (17, 101, 102) if i < n], "x2"] = np.nan  # dropped: lags skip them
    return df


# Several partitions: one of 2 rows (< maxlags), an empty one, and the rest.
CUTS = [50, 52, 52, 130, 131, 200]


def _design(df: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    kept = df.dropna()
    return kept.y.to_numpy(), sm.add_constant(kept[["x1", "x2"]]), kept


def _assert_same(ours, theirs) -> None:
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=RTOL)
    np.testing.assert_allclose(ours.cov_params(), theirs.cov_params(), rtol=RTOL, atol=0)
    np.testing.assert_allclose(ours.tvalues, theirs.tvalues, rtol=RTOL)
    np.testing.assert_allclose(ours.pvalues, theirs.pvalues, rtol=RTOL)
    np.testing.assert_allclose(ours.params, theirs.params, rtol=RTOL)
    assert ours.use_t == theirs.use_t


@pytest.mark.parametrize(
    ("maxlags", "kernel", "use_correction", "cuts"),
    [
        (4, "bartlett", False, CUTS),
        (4, "bartlett", False, []),  # one partition
        (3, "uniform", True, CUTS),
        (0, "bartlett", False, CUTS),  # HC0
        (60, "bartlett", True, CUTS),  # a lag longer than several partitions
    ],
)
def test_ols_hac_matches_statsmodels(maxlags, kernel, use_correction, cuts):
    df = _frame()
    y, X, _ = _design(df)
    kwds = {"maxlags": maxlags, "kernel": kernel, "use_correction": use_correction}
    theirs = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds=kwds)
    ours = shardfit.ols("y ~ x1 + x2", cut_source(df, cuts)).fit(
        backend="serial", cov_type="HAC", cov_kwds=kwds
    )
    _assert_same(ours, theirs)
    assert ours.cov_type == "HAC"
    assert "HAC" in str(ours.summary())


def test_wls_hac_with_t_matches_statsmodels():
    df = _frame(seed=5)
    y, X, kept = _design(df)
    kwds = {"maxlags": 5}
    theirs = sm.WLS(y, X, weights=kept.w.to_numpy()).fit(cov_type="HAC", cov_kwds=kwds, use_t=True)
    ours = shardfit.wls("y ~ x1 + x2", cut_source(df, CUTS), weights="w").fit(
        backend="serial", cov_type="HAC", cov_kwds=kwds, use_t=True
    )
    _assert_same(ours, theirs)


def test_hac_ill_conditioned_design_in_orthonormal_basis():
    # Above the robust-basis condition number (1e4) the lag window sums rows in the
    # fit's orthonormal basis.
    df = _frame(seed=7)
    rng = np.random.default_rng(0)
    df["x3"] = df.x1 + 1e-4 * rng.normal(size=len(df))
    kept = df.dropna()
    X = sm.add_constant(kept[["x1", "x2", "x3"]])
    kwds = {"maxlags": 3}
    theirs = sm.OLS(kept.y.to_numpy(), X).fit(cov_type="HAC", cov_kwds=kwds)
    ours = shardfit.ols("y ~ x1 + x2 + x3", cut_source(df, CUTS)).fit(
        backend="serial", method="qr", cov_type="HAC", cov_kwds=kwds
    )
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=1e-7)
    # Two-way cluster sums in that basis too (statsmodels' own rounding, cond**2 * eps,
    # is about 1e-8 here).
    groups = {"groups": _two_way(kept)}
    theirs = sm.OLS(kept.y.to_numpy(), X).fit(cov_type="cluster", cov_kwds=groups)
    ours = shardfit.ols("y ~ x1 + x2 + x3", cut_source(df, CUTS)).fit(
        backend="serial", method="qr", cov_type="cluster", cov_kwds={"groups": ["g1", "g2"]}
    )
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=1e-7)


def test_lag_window_merge_is_statsmodels_s_hac_for_any_split():
    from statsmodels.stats.sandwich_covariance import S_hac_simple

    rng = np.random.default_rng(11)
    x = rng.normal(size=(23, 3))
    weights = kernel_weights("bartlett", 5)
    for cuts in ([], [1], [2, 2, 3], [0, 4, 9, 10, 11, 23], [22]):
        pieces = np.split(x, cuts)
        merged = LagWindow.of_scores(pieces[0], weights)
        for piece in pieces[1:]:
            merged = merged.merge(LagWindow.of_scores(piece, weights))
        np.testing.assert_allclose(merged.meat, S_hac_simple(x, nlags=5), rtol=1e-13)
        again = LagWindow.from_state(merged.to_state())
        np.testing.assert_array_equal(again.tail, x[-5:])


def _two_way(kept: pd.DataFrame) -> np.ndarray:
    return np.column_stack([kept.g1.to_numpy(), pd.factorize(kept.g2)[0]])


@pytest.mark.parametrize("weighted", [False, True])
def test_two_way_cluster_matches_statsmodels(weighted):
    df = _frame(seed=9)
    y, X, kept = _design(df)
    groups = {"groups": _two_way(kept)}
    if weighted:
        theirs = sm.WLS(y, X, weights=kept.w.to_numpy()).fit(cov_type="cluster", cov_kwds=groups)
        model = shardfit.wls("y ~ x1 + x2", cut_source(df, CUTS), weights="w")
    else:
        theirs = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds=groups)
        model = shardfit.ols("y ~ x1 + x2", cut_source(df, CUTS))
    ours = model.fit(backend="serial", cov_type="cluster", cov_kwds={"groups": ["g1", "g2"]})
    _assert_same(ours, theirs)
    assert ours.df_resid_inference == theirs.df_resid_inference == 6  # min(9, 7) - 1


def test_two_way_cluster_with_t_and_hac_on_processes():
    df = _frame(seed=13)
    y, X, kept = _design(df)
    source = cut_source(df, CUTS)
    theirs = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": _two_way(kept)}, use_t=True)
    ours = shardfit.ols("y ~ x1 + x2", source).fit(
        backend="processes",
        workers=2,
        cov_type="cluster",
        cov_kwds={"groups": ("g1", "g2")},
        use_t=True,
    )
    _assert_same(ours, theirs)
    kwds = {"maxlags": 6}
    theirs = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds=kwds)
    ours = shardfit.ols("y ~ x1 + x2", source).fit(
        backend="processes", workers=2, cov_type="HAC", cov_kwds=kwds
    )
    _assert_same(ours, theirs)


@pytest.mark.parametrize(
    ("cov_type", "cov_kwds", "message"),
    [
        ("HAC", None, "maxlags"),
        ("HAC", {"maxlags": -1}, "non-negative"),
        ("HAC", {"maxlags": 2, "kernel": "parzen"}, "kernel"),
        ("HAC", {"maxlags": 2, "groups": "g1"}, "unknown cov_kwds"),
        ("cluster", {"groups": ["g1", "g2", "x1"]}, "no more than two"),
        ("cluster", {"groups": ["g1", "g1"]}, "two different columns"),
    ],
)
def test_refusals_name_the_option(cov_type, cov_kwds, message):
    model = shardfit.ols("y ~ x1 + x2", cut_source(_frame(n=30), []))
    with pytest.raises(ValueError, match=message):
        model.fit(backend="serial", cov_type=cov_type, cov_kwds=cov_kwds)


def test_cli_hac_and_two_way_cluster(tmp_path, capsys):
    from shardfit.cli.fit_cmd import parse_cov
    from shardfit.cli.main import main

    assert parse_cov("hac:3") == ("HAC", {"maxlags": 3})
    assert parse_cov("cluster:g1,g2") == ("cluster", {"groups": ["g1", "g2"]})
    df = _frame(n=80, seed=17)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    y, X, _ = _design(df)
    theirs = sm.OLS(y, X).fit(cov_type="HAC", cov_kwds={"maxlags": 3})
    status = main(["fit", str(path), "y ~ x1 + x2", "--cov", "HAC:3", "--backend", "serial"])
    out = capsys.readouterr().out
    assert status == 0 and "HAC" in out
    assert f"{theirs.bse['x1']:.4f}" in out  # 0.1606


def test_summary_and_results_file_say_the_covariance_options(tmp_path):
    df = _frame()
    hac = shardfit.ols("y ~ x1 + x2", df).fit(
        backend="serial", cov_type="HAC", cov_kwds={"maxlags": 4}
    )
    text = " ".join(str(hac.summary()).split())
    assert "heteroscedasticity and autocorrelation (HAC, 4 lags, bartlett kernel" in text
    loaded = shardfit.load_results(hac.save(tmp_path / "hac.json"))
    assert loaded.extra["cov_kwds"] == {"maxlags": 4, "kernel": "bartlett", "use_correction": False}
    np.testing.assert_array_equal(loaded.bse, hac.bse)
    two = shardfit.ols("y ~ x1 + x2", df).fit(
        backend="serial", cov_type="cluster", cov_kwds={"groups": ["g1", "g2"]}
    )
    text = " ".join(str(two.summary()).split())
    assert "within clusters of 'g1' and of 'g2' (two-way" in text
