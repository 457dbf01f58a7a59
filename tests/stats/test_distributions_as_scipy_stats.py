"""shardfit's tail probabilities and quantiles are ``scipy.stats``' bit for bit, edges
included, without importing ``scipy.stats`` (0.7 s of a small command-line fit)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from shardfit.stats import _distributions as dist

X = np.array(
    [-np.inf, -5.0, -1e-300, -0.0, 0.0, 5e-324, 1e-300, 0.5, 1.0, 2.5, 30.0, 1e10, np.inf, np.nan]
)
Q = np.array([0.0, 1e-300, 0.025, 0.5, 0.975, 1 - 1e-16, 1.0, -0.1, 1.1, np.nan])
DF = [0.5, 1.0, 3.0, 7.5, 100.0, 1e6, np.inf, 0.0, -1.0, np.nan]


def _same(ours, theirs) -> None:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)  # NaN where theirs is NaN, else equal
    # Bit for bit (array_equal calls -0.0 and 0.0 equal).
    same_nan = np.isnan(ours) & np.isnan(theirs)
    assert ((ours.view(np.int64) == theirs.view(np.int64)) | same_nan).all()


@pytest.mark.parametrize("df", DF)
def test_t(df):
    _same(dist.t_sf(X, df), stats.t.sf(X, df))
    _same(dist.t_ppf(Q, df), stats.t.ppf(Q, df))
    assert type(dist.t_sf(2.0, df)) is type(stats.t.sf(2.0, df))


@pytest.mark.parametrize("df", DF)
def test_chi2_and_f(df):
    _same(dist.chi2_sf(X, df), stats.chi2.sf(X, df))
    for other in (1.0, 4.0, 250.0, np.inf, 0.0, np.nan):
        _same(dist.f_sf(X, df, other), stats.f.sf(X, df, other))
        _same(dist.f_sf(X, other, df), stats.f.sf(X, other, df))
    assert float(dist.f_sf(3.2, 2, 40)) == float(stats.f.sf(3.2, 2, 40))


def test_norm():
    _same(dist.norm_sf(X), stats.norm.sf(X))
    _same(dist.norm_ppf(Q), stats.norm.ppf(Q))
    assert type(dist.norm_ppf(0.975)) is type(stats.norm.ppf(0.975))


def test_fitting_and_summarizing_does_not_import_scipy_stats():
    """A linear fit's and a GLM's summaries (p-values, intervals, F and LR tests)."""
    code = (
        "import sys, numpy as np, pandas as pd, shardfit\n"
        "rng = np.random.default_rng(0)\n"
        "df = pd.DataFrame({'x': rng.normal(size=50)})\n"
        "df['y'] = 1 + df.x + rng.normal(size=50)\n"
        "df['c'] = rng.poisson(np.exp(0.3 * df.x))\n"
        "r = shardfit.ols('y ~ x', df).fit(backend='serial')\n"
        "str(r.summary()); r.conf_int(); r.f_test('x = 0'); r.t_test('x = 0')\n"
        "g = shardfit.poisson('c ~ x', df).fit(backend='serial')\n"
        "str(g.summary()); g.conf_int(); g.wald_test('x = 0', scalar=True)\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
