"""Review of HAC's automatic lag, hac-panel, hac-groupsum and their ``--cov`` forms.

- ``hac-groupsum`` with ``maxlags=None`` on integer times without gaps that do not
  start at 0 (waves 1..27): statsmodels' ``group_sums`` counts the periods from 0 and
  sizes its automatic lag from 28 periods (lag 3) where the 27 periods give 2, so the
  standard errors differed silently (x1: 0.13556 here, 0.13132 in statsmodels). The
  gaps' warning did not cover it; now a warning gives statsmodels' lag, and that lag
  passed as ``maxlags`` gives statsmodels' numbers.
- ``--cov HAC:²`` (``str.isdigit`` accepts superscripts, ``int`` refuses them) ended in
  argparse's bare "invalid parse_cov value"; now the message gives the form.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.cli.fit_cmd import parse_cov

UNITS, PERIODS = 4, 27  # 108 rows: 27 periods give lag 2, 28 (from 0) give 3


def _panel() -> pd.DataFrame:
    rng = np.random.default_rng(21)
    n = UNITS * PERIODS
    time = np.tile(np.arange(PERIODS), UNITS)
    shock = rng.normal(size=PERIODS)[time]
    e = np.zeros(n)
    for i in range(n):  # AR(1) within each unit, a shock common to a period
        e[i] = (0.6 * e[i - 1] if time[i] else 0.0) + rng.normal() + shock[i]
    df = pd.DataFrame({"x1": rng.normal(size=n) + 0.5 * shock, "x2": rng.gamma(2.0, size=n)})
    df["y"] = 1.0 + 2.0 * df.x1 - 0.5 * df.x2 + e
    df["wave"] = time + 1  # coded 1..27
    return df


def _statsmodels(df: pd.DataFrame, time: np.ndarray, maxlags: int | None):
    X = sm.add_constant(df[["x1", "x2"]])
    return sm.OLS(df.y.to_numpy(), X).fit(
        cov_type="hac-groupsum", cov_kwds={"time": time, "maxlags": maxlags}
    )


def test_groupsum_automatic_lag_of_times_not_from_zero_warns_with_statsmodels_lag():
    df = _panel()
    ours_fit = shardfit.ols("y ~ x1 + x2", df)
    auto = {"time": "wave", "maxlags": None}
    with pytest.warns(UserWarning, match=r"integers 1\.\.27.*lag is 2.*takes 3\. Pass maxlags=3"):
        ours = ours_fit.fit(backend="serial", cov_type="hac-groupsum", cov_kwds=auto)
    assert ours.extra["cov_kwds"]["nlags"] == 2
    # Its number: the 27 periods, as statsmodels' on the times coded 0..26.
    np.testing.assert_allclose(
        ours.bse, _statsmodels(df, df.wave.to_numpy() - 1, None).bse, rtol=1e-9
    )
    theirs = _statsmodels(df, df.wave.to_numpy(), None)  # its lag 3
    assert abs(ours.bse["x1"] / theirs.bse["x1"] - 1) > 0.02  # 0.13556 vs 0.13132
    # The lag the warning names gives statsmodels' numbers.
    fixed = ours_fit.fit(
        backend="serial", cov_type="hac-groupsum", cov_kwds={"time": "wave", "maxlags": 3}
    )
    np.testing.assert_allclose(fixed.bse, theirs.bse, rtol=1e-9)
    # Times from 0 (statsmodels' coding), or a lag given: nothing to say.
    df["period"] = df.wave - 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours_fit = shardfit.ols("y ~ x1 + x2", df)
        ours_fit.fit(
            backend="serial", cov_type="hac-groupsum", cov_kwds={"time": "period", "maxlags": None}
        )
        ours_fit.fit(
            backend="serial", cov_type="hac-groupsum", cov_kwds={"time": "wave", "maxlags": 2}
        )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HAC:²", r"HAC:MAXLAGS \(e\.g\. HAC:4\), or HAC:auto.*got 'HAC:²'"),
        ("hac-panel:unit:²", r"hac-panel:GROUPCOL:MAXLAGS.*got 'hac-panel:unit:²'"),
        ("hac-groupsum:t:³", r"hac-groupsum:TIMECOL:MAXLAGS.*got 'hac-groupsum:t:³'"),
        ("hac-panel:", r"hac-panel:GROUPCOL:MAXLAGS.*got 'hac-panel:'"),
        ("hac-panel:g", r"hac-panel:GROUPCOL:MAXLAGS.*got 'hac-panel:g'"),
        ("hac-groupsum:t:-1", r"hac-groupsum:TIMECOL:MAXLAGS.*got 'hac-groupsum:t:-1'"),
        ("HAC:auto:3", r"HAC:MAXLAGS.*got 'HAC:auto:3'"),
    ],
)
def test_cli_lags_that_are_not_ascii_digits_name_the_form(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_cov(text)


@pytest.mark.parametrize(
    ("cov_type", "ours_kwds"),
    [("cluster", {"groups": "unit"}), ("hac-panel", {"groups": "unit", "maxlags": 2})],
)
def test_prediction_intervals_with_use_t_take_df_resid_as_statsmodels(cov_type, ours_kwds):
    """statsmodels' ``get_prediction`` takes ``df_resid`` (n - k = 105) for its t
    intervals, also where the covariance's own t tests take the clusters' G - 1 = 3:
    shardfit took G - 1 (a 90% mean interval at row 0 of [0.555, 1.383] for hac-panel
    where statsmodels gives [0.600, 1.338])."""
    df = _panel()
    df["unit"] = np.repeat(np.arange(UNITS), PERIODS)
    X = sm.add_constant(df[["x1", "x2"]])
    theirs_kwds = {**ours_kwds, "groups": df.unit.to_numpy()}
    theirs = sm.OLS(df.y.to_numpy(), X).fit(cov_type=cov_type, cov_kwds=theirs_kwds, use_t=True)
    ours = shardfit.ols("y ~ x1 + x2", df).fit(
        backend="serial", cov_type=cov_type, cov_kwds=ours_kwds, use_t=True
    )
    # The t tests keep the covariance's degrees of freedom, as statsmodels'.
    np.testing.assert_allclose(ours.pvalues, theirs.pvalues, rtol=1e-9)
    expected = theirs.get_prediction(X).summary_frame(alpha=0.1)
    got = ours.get_prediction(df).summary_frame(alpha=0.1)
    for column in ("mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-9)


@pytest.mark.parametrize("cov", ["hac-panel:nosuch:2", "hac-groupsum:nosuch:1"])
def test_cli_missing_panel_column_is_named_as_the_flag(tmp_path, capsys, cov):
    """The library's ``cov_kwds={'groups': 'nosuch'} of cov_type='hac-panel'`` is the
    flag ``--cov hac-panel:nosuch`` on the command line, as cluster's is."""
    from shardfit.cli.main import main

    path = tmp_path / "d.csv"
    _panel().to_csv(path, index=False)
    assert main(["fit", str(path), "y ~ x1", "--backend", "serial", "--cov", cov]) == 2
    line = capsys.readouterr().err.strip()
    kind = cov.split(":")[0]
    assert line.startswith(f"shardfit fit: error: --cov {kind}:nosuch: "), line
    assert "has no column 'nosuch'" in line and "cov_kwds" not in line
