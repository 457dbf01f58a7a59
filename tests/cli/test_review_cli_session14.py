"""Session 14's command-line review: each bug found, run as a real ``shardfit`` subprocess.

The numbers are compared with statsmodels fitted in memory on the same file read by
pandas; the data files written by the tests are compared with pandas' reading of them,
so a command that damaged its own input fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from cli_cases import one_line_error, run_serial

from shardfit.results.io import load_results


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(14)
    n = 200
    x = rng.normal(size=n).round(6)
    g = rng.choice(["a", "b", "c"], size=n)
    y = (1.0 + 2.0 * x + (g == "b") * 0.5 + rng.normal(size=n)).round(6)
    return pd.DataFrame({"x": x, "g": g, "y": y})


def test_predict_out_holding_the_data_never_deletes_it(tmp_path: Path, frame) -> None:
    """``predict RESULTS DIR --out DIR --overwrite``, DIR holding a Spark/Dask-style
    ``part-0.parquet``, deleted the data (predict's own parts are ``part-*`` too) and then
    failed reading it. It must refuse, leave the data as it was, and predicting into
    another directory must still give statsmodels' fitted values."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    fitted = run_serial("fit", "d.csv", "y ~ x + C(g)", "--out", "r.json", cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    (tmp_path / "data").mkdir()
    frame.to_parquet(tmp_path / "data" / "part-0.parquet", index=False)

    for data in ("data", "data/*.parquet", "data/part-0.parquet"):
        result = run_serial("predict", "r.json", data, "--out", "data", "--overwrite", cwd=tmp_path)
        one_line_error(result, "--out data", "part-0.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "data" / "part-0.parquet"), frame)

    result = run_serial("predict", "r.json", "data", "--out", "preds", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    predicted = pd.read_parquet(tmp_path / "preds").sort_values("row")["predicted"]
    reference = smf.ols("y ~ x + C(g)", frame).fit().fittedvalues
    np.testing.assert_allclose(predicted.to_numpy(), reference.to_numpy(), rtol=1e-10)


def test_fit_out_naming_the_data_file_is_refused(tmp_path: Path, frame) -> None:
    """``fit d.csv ... --out ./d.csv`` replaced the data with the results JSON (status 0)."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    before = (tmp_path / "d.csv").read_bytes()
    result = run_serial("fit", "d.csv", "y ~ x + C(g)", "--out", "./d.csv", cwd=tmp_path)
    one_line_error(result, "--out ./d.csv", "d.csv")
    assert (tmp_path / "d.csv").read_bytes() == before
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "d.csv"), frame)


def test_fit_out_that_is_a_directory_fails_before_the_fit(tmp_path: Path, frame) -> None:
    """``fit --out DIR`` ran the whole fit, printed it, then failed naming a temp file
    (``Is a directory: '.DIR.123-abc.tmp' -> 'DIR'``); a file name there still saves
    statsmodels' numbers."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "results").mkdir()
    result = run_serial("fit", "d.csv", "y ~ x + C(g)", "--out", "results", cwd=tmp_path)
    one_line_error(result, "results", "directory")
    assert result.stdout == ""  # refused before the fit: no summary
    assert ".tmp" not in result.stderr

    result = run_serial("fit", "d.csv", "y ~ x + C(g)", "--out", "results/r.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = load_results(tmp_path / "results" / "r.json")
    reference = smf.ols("y ~ x + C(g)", frame).fit()
    names = list(reference.params.index)
    np.testing.assert_allclose(saved.params[names], reference.params, rtol=1e-10)
    np.testing.assert_allclose(saved.bse[names], reference.bse, rtol=1e-10)
    assert saved.nobs == reference.nobs


@pytest.mark.parametrize("option", ["--var-power", "--nb-alpha"])
def test_a_zero_glm_option_without_family_is_refused(tmp_path: Path, frame, option) -> None:
    """``--var-power 0`` / ``--nb-alpha 0`` without ``--family`` were silently ignored
    (a falsy value passed the "GLM option without --family" check), where 1 is refused."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    for value in ("1", "0"):
        result = run_serial("fit", "d.csv", "y ~ x", option, value, cwd=tmp_path)
        one_line_error(result, option, "--family")
