"""``shardfit fit DATA FORMULA --family ... [--link ...] [--offset COL]`` as a program,
checked against statsmodels (issue 6)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from cli_cases import run_shardfit

from shardfit.results.glm import GLMResults

FORMULA = "y ~ x1 + x2 + C(g)"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(6)
    n = 4000
    columns = {
        "x1": rng.normal(size=n),
        "x2": rng.normal(size=n),
        "g": rng.choice(["a", "b", "c"], size=n),
        "off": rng.uniform(-0.3, 0.3, size=n),
    }
    eta = 0.2 + 0.5 * columns["x1"] - 0.3 * columns["x2"] + columns["off"]
    columns["y"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    table = pa.table(columns)
    path = tmp_path_factory.mktemp("cli-glm") / "d.parquet"
    pq.write_table(table, path, row_group_size=1000)
    return table.to_pandas(), path


def _fit_binomial(path, out, link: str | None):
    args = ["fit", str(path), FORMULA, "--family", "binomial", "--offset", "off"]
    args += ["--link", link] if link else []
    return run_shardfit(*args, "--out", str(out), "--backend", "serial")


@pytest.fixture(scope="module")
def logit_fit(data, tmp_path_factory):
    """``fit --family binomial --offset off --out r.json``: the saved results and the
    finished command, one run for the module (checked in the logit case of
    ``test_fit_binomial_with_link_and_offset``, predicted from in
    ``test_predict_from_glm_results_gives_the_mean``)."""
    out = tmp_path_factory.mktemp("cli-glm-logit") / "r.json"
    return out, _fit_binomial(data[1], out, None)


@pytest.mark.parametrize("link", [None, "probit"])
def test_fit_binomial_with_link_and_offset(data, tmp_path, link, request) -> None:
    frame, path = data
    if link is None:
        out, done = request.getfixturevalue("logit_fit")
    else:
        out = tmp_path / "r.json"
        done = _fit_binomial(path, out, link)
    assert done.returncode == 0, done.stderr
    assert "Generalized Linear Model Regression Results" in done.stdout
    expected_link = "Probit" if link else "Logit"
    assert re.search(rf"Link Function:\s+{expected_link}\s", done.stdout)
    family = sm.families.Binomial(sm.families.links.Probit() if link else None)
    reference = smf.glm(FORMULA, frame, family=family, offset=frame["off"]).fit()
    result = GLMResults.load(out)
    index = reference.params.index
    np.testing.assert_allclose(result.params.loc[index], reference.params, rtol=1e-9)
    np.testing.assert_allclose(result.bse.loc[index], reference.bse, rtol=1e-9)
    np.testing.assert_allclose(result.llf, reference.llf, rtol=1e-12)
    assert f"{reference.deviance:.6g}" in done.stdout


def test_fit_cli_errors(data) -> None:
    _, path = data
    done = run_shardfit("fit", str(path), FORMULA, "--family", "binomal", "--backend", "serial")
    assert done.returncode == 2 and "unknown family 'binomal'" in done.stderr
    done = run_shardfit(
        "fit", str(path), FORMULA, "--family", "poisson", "--link", "logit", "--backend", "serial"
    )
    assert done.returncode == 2 and "'logit' link is not valid for the poisson" in done.stderr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = run_shardfit(
            "fit",
            str(path),
            FORMULA,
            "--family",
            "poisson",
            "--cov",
            "HC4",
            "--backend",
            "serial",
        )
    assert done.returncode == 2 and "expected nonrobust, HC0, HC1, HC2, HC3 or" in done.stderr
    # HC1 is statsmodels' GLM HC1 (the HC0 sandwich): accepted, and said in the summary.
    done = run_shardfit(
        "fit", str(path), FORMULA, "--family", "poisson", "--cov", "HC1", "--backend", "serial"
    )
    assert done.returncode == 0 and "heteroscedasticity-robust (HC1)" in done.stdout


def test_predict_from_glm_results_gives_the_mean(data, logit_fit, tmp_path) -> None:
    """`shardfit predict` on GLM results writes the mean (the inverse link of x'b +
    offset, a probability here), with `--which linear` the linear predictor, with
    `--interval confidence` statsmodels' get_prediction columns; a linear model's
    results refuse `--which`, and results that cannot predict out of core say so."""
    frame, path = data
    saved, fitted = logit_fit
    assert fitted.returncode == 0
    reference = smf.glm(FORMULA, frame, family=sm.families.Binomial(), offset=frame["off"]).fit()
    expected = reference.get_prediction(frame, offset=frame["off"]).summary_frame(alpha=0.1)
    out = tmp_path / "mean"
    done = run_shardfit(
        "predict", str(saved), str(path), "--out", str(out), "--interval", "confidence",
        "--alpha", "0.1", "--backend", "serial",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out).to_pandas().sort_values("row")
    assert table["predicted"].between(0, 1).all()
    for ours, theirs in [("predicted", "mean"), *((c, c) for c in expected.columns[1:])]:
        np.testing.assert_allclose(table[ours], expected[theirs], rtol=1e-9, err_msg=ours)
    linear = tmp_path / "linear"
    done = run_shardfit(
        "predict", str(saved), str(path), "--out", str(linear), "--which", "linear",
        "--backend", "serial",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    eta = pq.read_table(linear).to_pandas().sort_values("row")["predicted"]
    np.testing.assert_allclose(eta, reference.predict(which="linear"), rtol=1e-9, atol=1e-12)
    done = run_shardfit(
        "predict", str(saved), str(path), "--out", str(tmp_path / "p"), "--interval",
        "prediction", "--backend", "serial",
    )  # fmt: skip
    assert done.returncode == 2 and "no interval for a new observation" in done.stderr
    ols = tmp_path / "ols.json"
    assert (
        run_shardfit("fit", str(path), FORMULA, "--out", str(ols), "--backend", "serial").returncode
        == 0
    )
    done = run_shardfit(
        "predict", str(ols), str(path), "--out", str(tmp_path / "o"), "--which", "linear",
        "--backend", "serial",
    )  # fmt: skip
    assert done.returncode == 2
    assert "--which is for GLM and negative binomial results" in done.stderr


def test_glm_options_are_used_or_refused(data, tmp_path) -> None:
    """GLM options without --family are refused (least squares would ignore them);
    --method and --nb-alpha reach the GLM."""
    frame, path = data
    for option in (["--offset", "off"], ["--link", "probit"], ["--nb-alpha", "0.5"]):
        done = run_shardfit("fit", str(path), FORMULA, *option, "--backend", "serial")
        assert done.returncode == 2, option
        assert f"{option[0]} is a GLM option; add --family" in done.stderr
    done = run_shardfit(
        "fit", str(path), FORMULA, "--family", "binomial", "--method", "qr", "--backend", "serial"
    )
    assert done.returncode == 0 and re.search(r"Method:\s+IRLS \(qr\)", done.stdout)
    out = tmp_path / "nb.json"
    counts = frame.assign(y=np.round(np.exp(frame["x1"])))
    counts_path = tmp_path / "counts.parquet"
    pq.write_table(pa.Table.from_pandas(counts, preserve_index=False), counts_path)
    args = ["fit", str(counts_path), FORMULA, "--family", "negative_binomial", "--nb-alpha"]
    done = run_shardfit(*args, "0.5", "--out", str(out), "--backend", "serial")
    assert done.returncode == 0, done.stderr
    family = sm.families.NegativeBinomial(alpha=0.5)
    reference = smf.glm(FORMULA, counts, family=family).fit()
    result = GLMResults.load(out)
    np.testing.assert_allclose(
        result.params.loc[reference.params.index], reference.params, rtol=1e-9
    )
    np.testing.assert_allclose(result.llf, reference.llf, rtol=1e-12)
