"""NB2 with alpha estimated on arrays (``shardfit.NegativeBinomial(y, X)``, statsmodels'
``NegativeBinomial(y, X, loglike_method="nb2")``) and on the command line
(``shardfit fit DATA FORMULA --family negative_binomial --nb-alpha estimate``, its
``--out`` file predicted by ``shardfit predict``), against statsmodels' numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.cli.main import main


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 500
    df = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "z": rng.uniform(0, 2, n),
            "t": rng.uniform(0.5, 3, n),
            "off": rng.normal(scale=0.2, size=n),
        }
    )
    mu = df.t * np.exp(0.3 + 0.4 * df.x - 0.5 * df.z + df.off)
    df["y"] = rng.negative_binomial(1 / 0.7, 1 / (1 + 0.7 * mu)).astype(float)
    return df


def _newton(model):
    """statsmodels' fit refined by Newton's method to a tight optimum."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = model.fit(disp=0, maxiter=500).params
        res = model.fit(
            start_params=np.asarray(start), method="newton", disp=0, maxiter=100, tol=1e-12
        )
    assert res.mle_retvals["converged"]
    return res


def _assert_matches(res, ref) -> None:
    # statsmodels' names (its params are a bare array when the data are arrays).
    assert list(res.params.index) == list(ref.model.exog_names)
    np.testing.assert_allclose(res.params.to_numpy(), np.asarray(ref.params), rtol=1e-7)
    np.testing.assert_allclose(res.bse.to_numpy(), np.asarray(ref.bse), rtol=1e-6)
    assert res.llf == pytest.approx(ref.llf, rel=1e-10)
    assert res.llnull == pytest.approx(ref.llnull, rel=1e-9)
    assert res.aic == pytest.approx(ref.aic, rel=1e-10)
    assert (res.k_constant, res.df_model, res.df_resid) == (
        ref.k_constant,
        ref.df_model,
        ref.df_resid,
    )


def test_array_api_matches_statsmodels(frame, tmp_path) -> None:
    """Unnamed arrays with the constant in the middle get statsmodels' names (x1,
    const, x2, alpha); offset and exposure arrays; a DataFrame's own names; three
    partitions; a design store's columns give the formula fit; other likelihoods and a
    misshapen offset are refused by name."""
    y = frame.y.to_numpy()
    X = np.column_stack([frame.x, np.ones(len(frame)), frame.z])
    arrays = {"offset": frame.off.to_numpy(), "exposure": frame.t.to_numpy()}
    res = shardfit.NegativeBinomial(y, X, npartitions=3, **arrays).fit(backend="serial")
    ref = _newton(sm.NegativeBinomial(y, X, loglike_method="nb2", **arrays))
    assert ref.model.exog_names == ["x1", "const", "x2", "alpha"]
    _assert_matches(res, ref)

    named = frame[["x", "z"]]  # no constant: k_constant 0, llnull still constant-only
    res = shardfit.NegativeBinomial(frame.y, named, exposure=frame.t, loglike_method="nb2").fit(
        backend="serial"
    )
    _assert_matches(res, _newton(sm.NegativeBinomial(frame.y, named, exposure=frame.t)))

    store = shardfit.write_design(
        "y ~ x + z", frame, tmp_path / "store", exposure="t", backend="serial"
    )
    stored = shardfit.NegativeBinomial(store.y, store.X, offset=store.offset).fit(backend="serial")
    formula = shardfit.negativebinomial("y ~ x + z", frame, exposure="t").fit(backend="serial")
    np.testing.assert_allclose(stored.params.to_numpy(), formula.params.to_numpy(), rtol=1e-12)

    with pytest.raises(ValueError, match="loglike_method='nb1' is not supported"):
        shardfit.NegativeBinomial(y, X, loglike_method="nb1")
    with pytest.raises(ValueError, match=r"offset has shape \(3,\); endog has 500 rows"):
        shardfit.NegativeBinomial(y, X, offset=np.zeros(3))


def test_cli_estimate_fits_saves_predicts_and_refuses(frame, tmp_path, capsys) -> None:
    """``--family negativebinomial --nb-alpha estimate --exposure t --out r.json``: the
    saved fit is statsmodels' ``negativebinomial`` and ``shardfit predict`` gives its
    ``predict(exposure=...)``; GLM-only options are refused in one line."""
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, row_group_size=200)
    out = tmp_path / "r.json"
    base = ["fit", str(path), "y ~ x + z", "--backend", "serial"]
    estimate = ["--family", "negativebinomial", "--nb-alpha", "estimate"]
    assert main([*base, *estimate, "--exposure", "t", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "NegativeBinomial Regression Results" in printed and "alpha" in printed
    saved = shardfit.NegativeBinomialResults.load(out)
    model = smf.negativebinomial("y ~ x + z", frame, exposure=frame.t, loglike_method="nb2")
    ref = _newton(model)
    _assert_matches(saved, ref)

    predicted = tmp_path / "pred"
    assert (
        main(["predict", str(out), str(path), "--out", str(predicted), "--backend", "serial"]) == 0
    )
    values = pd.read_parquet(predicted).sort_values("row")["predicted"].to_numpy()
    np.testing.assert_allclose(values, ref.predict(frame, exposure=frame.t), rtol=1e-7)

    capsys.readouterr()
    for extra, words in (
        (["--weights", "t"], ["--weights", "not used"]),
        (["--cov", "HAC:2"], ["--cov HAC", "not used", "one-way cluster:COL"]),
        (["--cov", "cluster:t,z"], ["--cov cluster", "not used"]),
        (["--freq-weights", "t", "--link", "sqrt"], ["--freq-weights", "--link sqrt"]),
    ):
        assert main([*base, *estimate, *extra]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and all(word in lines[0] for word in words), lines
    assert main([*base, "--family", "poisson", "--nb-alpha", "estimate"]) == 2
    assert "add --family negative_binomial (not --family poisson)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "'estimate'" in " ".join(capsys.readouterr().out.split())


def test_cli_estimate_takes_cluster_covariance(frame, tmp_path) -> None:
    """``--cov cluster:COL`` (and HC0) reach the NB2 fit: statsmodels' cluster-robust
    standard errors, saved with the covariance type and the number of clusters."""
    data = frame.assign(g=(frame.x * 4).round().astype(int).astype(str))
    path = tmp_path / "d.parquet"
    data.to_parquet(path, row_group_size=150)
    model = smf.negativebinomial("y ~ x + z", data, exposure=data.t, loglike_method="nb2")
    start = _newton(model).params
    groups = pd.factorize(data.g)[0]
    for flag, options in (
        ("cluster:g", {"cov_type": "cluster", "cov_kwds": {"groups": groups}}),
        ("HC0", {"cov_type": "HC0"}),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = model.fit(
                start_params=np.asarray(start), method="newton", disp=0, tol=1e-12, **options
            )
        out = tmp_path / f"{flag.split(':')[0]}.json"
        base = ["fit", str(path), "y ~ x + z", "--backend", "serial", "--exposure", "t"]
        estimate = ["--family", "negative_binomial", "--nb-alpha", "estimate"]
        assert main([*base, *estimate, "--cov", flag, "--out", str(out)]) == 0
        saved = shardfit.NegativeBinomialResults.load(out)
        assert saved.cov_type == options["cov_type"]
        np.testing.assert_allclose(saved.bse.to_numpy(), np.asarray(ref.bse), rtol=1e-6)
        if flag.startswith("cluster"):
            assert saved.n_groups == len(set(groups))
