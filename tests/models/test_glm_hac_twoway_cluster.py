"""HAC (Newey-West) and two-way cluster covariances of GLMs against statsmodels.

statsmodels' GLM takes both from ``get_robustcov_results``: ``score_obs`` and the
inverse observed Hessian (both at the fit's scale, so a Gamma's sandwich scales with
its Pearson scale), HAC with ``n / (n - k)`` under ``use_correction``, two-way
``V_1 + V_2 - V_12`` with ``min(G) - 1`` inference degrees of freedom. HAC's lags cross
partition boundaries: the partitions include one shorter than ``maxlags``, an empty
one, and a row dropped for a missing value (statsmodels' ``missing="drop"`` takes the
rows left as consecutive).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from linear_cases import cut_source

import shardfit
from shardfit.errors import DesignError

RTOL = 1e-8
# Several partitions: one of 2 rows (< maxlags), an empty one, and the rest.
CUTS = [50, 52, 52, 130, 131, 200]
FAMILIES = {
    "poisson": lambda: sm.families.Poisson(),
    "binomial": lambda: sm.families.Binomial(),
    "gamma": lambda: sm.families.Gamma(sm.families.links.Log()),
}


def _frame(family: str, n: int = 240, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e = np.zeros(n)
    for t in range(1, n):  # AR(1) latent errors: the lag terms matter
        e[t] = 0.7 * e[t - 1] + rng.normal(scale=0.5)
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.gamma(2.0, size=n)})
    df["off"] = rng.uniform(-0.3, 0.3, n)
    eta = 0.2 + 0.5 * df.x1 - 0.2 * df.x2 + e + df.off
    if family == "poisson":
        df["y"] = rng.poisson(np.exp(eta)).astype(float)
    elif family == "binomial":
        df["y"] = (rng.logistic(size=n) < eta).astype(float)
    else:
        df["y"] = rng.gamma(5.0, np.exp(eta) / 5.0)
    df["w"] = rng.uniform(0.5, 2.0, n)
    df["g1"] = rng.integers(0, 9, n)
    df["g2"] = rng.choice(list("abcdefg"), n)
    df.loc[[i for i in (17, 101) if i < n], "x2"] = np.nan  # dropped: lags skip them
    return df


def _statsmodels(df, family, weighted, offset, columns=("x1", "x2"), **fit):
    kept = df.dropna()
    model = sm.GLM(
        kept.y.to_numpy(),
        sm.add_constant(kept[list(columns)].to_numpy()),
        FAMILIES[family](),
        var_weights=kept.w.to_numpy() if weighted else None,
        offset=kept.off.to_numpy() if offset else None,
    )
    if fit.get("cov_type") == "cluster":
        fit["cov_kwds"] = {"groups": np.column_stack([kept.g1, pd.factorize(kept.g2)[0]])}
    with warnings.catch_warnings():  # "cov_type not fully supported with var_weights"
        warnings.simplefilter("ignore")
        return model.fit(**fit)


def _ours(df, family, weighted, offset, cuts, formula="y ~ x1 + x2", **fit):
    model = shardfit.glm(
        formula,
        cut_source(df, cuts),
        family=family,
        link="log" if family == "gamma" else None,
        weights="w" if weighted else None,
        offset="off" if offset else None,
    )
    return model.fit(**{"backend": "serial", **fit})


def _assert_same(ours, theirs, rtol: float = RTOL) -> None:
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-9)
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=rtol)
    np.testing.assert_allclose(ours.cov_params(), theirs.cov_params(), rtol=rtol, atol=0)
    np.testing.assert_allclose(ours.pvalues, theirs.pvalues, rtol=rtol)
    assert ours.use_t == theirs.use_t


@pytest.mark.parametrize(
    ("family", "weighted", "offset", "cuts", "kwds"),
    [
        ("poisson", False, False, CUTS, {"maxlags": 4}),
        ("poisson", True, True, [], {"maxlags": 3, "kernel": "uniform", "use_correction": True}),
        ("binomial", True, False, CUTS, {"maxlags": 3}),
        ("binomial", False, True, CUTS, {"maxlags": 0}),  # HC0
        ("gamma", True, True, CUTS, {"maxlags": 4, "use_correction": True}),
        ("gamma", False, False, CUTS, {"maxlags": 60}),  # longer than several partitions
    ],
)
def test_glm_hac_matches_statsmodels(family, weighted, offset, cuts, kwds):
    df = _frame(family)
    theirs = _statsmodels(df, family, weighted, offset, cov_type="HAC", cov_kwds=dict(kwds))
    ours = _ours(df, family, weighted, offset, cuts, cov_type="HAC", cov_kwds=kwds)
    _assert_same(ours, theirs)
    assert ours.cov_type == "HAC" and ours.n_groups is None
    if family == "gamma":  # a free scale: the sandwich is at the fit's scale
        np.testing.assert_allclose(ours.scale, theirs.scale, rtol=1e-10)
        assert abs(ours.scale - 1) > 0.1  # 1.39 and 1.14


@pytest.mark.parametrize(
    ("family", "weighted", "offset", "cuts", "use_t"),
    [
        ("poisson", False, False, CUTS, False),
        ("binomial", True, True, [], False),
        ("gamma", True, True, CUTS, True),
    ],
)
def test_glm_two_way_cluster_matches_statsmodels(family, weighted, offset, cuts, use_t):
    df = _frame(family, seed=9)
    theirs = _statsmodels(df, family, weighted, offset, cov_type="cluster", use_t=use_t)
    ours = _ours(
        df,
        family,
        weighted,
        offset,
        cuts,
        cov_type="cluster",
        cov_kwds={"groups": ["g1", "g2"]},
        use_t=use_t,
    )
    _assert_same(ours, theirs)
    assert ours.df_resid_inference == theirs.df_resid_inference == 6  # min(9, 7) - 1
    assert ours.n_groups == 7
    np.testing.assert_allclose(ours.conf_int().to_numpy(), np.asarray(theirs.conf_int()), rtol=RTOL)


def test_glm_hac_with_t_and_ill_conditioned_design():
    # use_t: t with df_resid (no cluster df). A nearly collinear x3 takes the
    # orthonormal basis (condition number 2.4e4, above 1e4), where the score rows and
    # the observed information are summed as z_i' R^{-1}. statsmodels' own sandwich
    # rounds to about cond**2 * eps there: exact rational arithmetic at these
    # estimates puts its HAC standard errors 9.6e-8 off, ours 6e-12.
    df = _frame("poisson", seed=7)
    df["x3"] = df.x1 + 1e-4 * np.random.default_rng(0).normal(size=len(df))
    columns = ("x1", "x2", "x3")
    kwds = {"maxlags": 5}
    theirs = _statsmodels(
        df, "poisson", True, False, columns, cov_type="HAC", cov_kwds=kwds, use_t=True
    )
    ours = _ours(
        df,
        "poisson",
        True,
        False,
        CUTS,
        formula="y ~ x1 + x2 + x3",
        method="qr",
        cov_type="HAC",
        cov_kwds=kwds,
        use_t=True,
    )
    _assert_same(ours, theirs, rtol=1e-6)
    theirs = _statsmodels(df, "poisson", True, False, columns, cov_type="cluster")
    ours = _ours(
        df,
        "poisson",
        True,
        False,
        CUTS,
        formula="y ~ x1 + x2 + x3",
        method="qr",
        cov_type="cluster",
        cov_kwds={"groups": ["g1", "g2"]},
    )
    _assert_same(ours, theirs, rtol=1e-6)


def test_glm_hac_and_two_way_on_processes(tmp_path):
    df = _frame("poisson", seed=13)
    source = cut_source(df, CUTS)
    model = shardfit.glm("y ~ x1 + x2", source, family="poisson", offset="off")
    theirs = _statsmodels(df, "poisson", False, True, cov_type="HAC", cov_kwds={"maxlags": 6})
    ours = model.fit(backend="processes", workers=2, cov_type="HAC", cov_kwds={"maxlags": 6})
    _assert_same(ours, theirs)
    # The summary and the results file say the options.
    text = " ".join(str(ours.summary()).split())
    assert "heteroscedasticity and autocorrelation (HAC, 6 lags, bartlett kernel" in text
    loaded = shardfit.load_results(ours.save(tmp_path / "hac.json"))
    assert loaded.extra["cov_kwds"] == {"maxlags": 6, "kernel": "bartlett", "use_correction": False}
    np.testing.assert_array_equal(loaded.bse, ours.bse)
    two = model.fit(backend="serial", cov_type="cluster", cov_kwds={"groups": ("g1", "g2")})
    _assert_same(two, _statsmodels(df, "poisson", False, True, cov_type="cluster"))
    text = " ".join(str(two.summary()).split())
    assert "within clusters of 'g1' and of 'g2' (two-way; inference with 7 clusters" in text
    assert two.extra["cov_kwds"] == {"groups": ["g1", "g2"]}


def test_glm_refusals():
    df = _frame("poisson", n=40)
    model = shardfit.glm("y ~ x1", df, family="poisson", freq_weights="w")
    with pytest.raises(ValueError, match="cov_type='HAC' with freq_weights='w' is not supported"):
        model.fit(backend="serial", cov_type="HAC", cov_kwds={"maxlags": 2})
    with pytest.raises(ValueError, match="cov_type='cluster' with freq_weights"):
        model.fit(backend="serial", cov_type="cluster", cov_kwds={"groups": ["g1", "g2"]})
    plain = shardfit.glm("y ~ x1", df, family="poisson")
    with pytest.raises(ValueError, match="maxlags"):
        plain.fit(backend="serial", cov_type="HAC")
    with pytest.raises(ValueError, match="no more than two"):
        plain.fit(backend="serial", cov_type="cluster", cov_kwds={"groups": ["g1", "g2", "x1"]})
    df["one"] = 1
    with pytest.raises(DesignError, match="at least 2 clusters in each column; found 9 and 1"):
        plain.fit(backend="serial", cov_type="cluster", cov_kwds={"groups": ["g1", "one"]})


def test_cli_glm_hac_and_two_way_cluster(tmp_path, capsys):
    from shardfit.cli.main import main

    df = _frame("poisson", n=120, seed=17)
    path = tmp_path / "d.parquet"
    df.to_parquet(path)
    for cov, fit in (
        ("HAC:4", {"cov_type": "HAC", "cov_kwds": {"maxlags": 4}}),
        ("cluster:g1,g2", {"cov_type": "cluster"}),
    ):
        theirs = _statsmodels(df, "poisson", False, False, **fit)
        argv = ["fit", str(path), "y ~ x1 + x2", "--family", "poisson", "--cov", cov]
        status = main([*argv, "--backend", "serial"])
        out = capsys.readouterr().out
        assert status == 0, out
        assert f"{theirs.bse[1]:.4f}" in out
