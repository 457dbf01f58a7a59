"""``shardfit fit`` and ``shardfit predict`` as programs, checked against statsmodels."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from cli_cases import run_shardfit

from shardfit.cli.fit_cmd import parse_cov
from shardfit.cli.main import main
from shardfit.data.simulate import default_formula, simulate_table
from shardfit.results.io import load_results

FORMULA = default_formula("linreg")  # the full 229-column design


@pytest.fixture(scope="module")
def reference():
    frame = simulate_table("linreg", 20_000, seed=0).to_pandas()
    return frame, smf.ols(FORMULA, frame).fit()


def test_fit_then_predict_as_programs(tmp_path, reference) -> None:
    frame, fitted = reference
    data = tmp_path / "X.parquet"
    done = run_shardfit(
        "simulate", "linreg", "--rows", "20000", "--out", str(data), "--chunk-rows", "7000"
    )
    assert done.returncode == 0, done.stderr

    result = tmp_path / "r.json"
    done = run_shardfit("fit", str(data), FORMULA, "--out", str(result), "--backend", "serial")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when standard error is not a terminal
    summary = done.stdout
    assert "OLS Regression Results" in summary and "X.parquet" in summary
    r_squared = re.search(r"R-squared:\s+(\S+)", summary).group(1)
    assert r_squared == f"{fitted.rsquared:.4f}"
    assert re.search(r"No. Observations:\s+20,000", summary)
    assert f"saved the results to {result}" in summary
    assert json.loads(result.read_text())["format"] == "shardfit-results"

    out = tmp_path / "preds"
    done = run_shardfit(
        "predict",
        str(result),
        str(data),
        "--out",
        str(out),
        "--interval",
        "confidence",
        "--backend",
        "serial",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote 20,000 predictions for 20,000 rows (0 dropped) to ")
    # One part file per partition (a Parquet row group each).
    assert "(3 part files; columns row, predicted, mean_se, mean_ci_lower" in done.stdout
    table = pd.read_parquet(out)
    np.testing.assert_array_equal(table["row"], np.arange(20_000))
    # atol: a few predictions are near zero, where 1e-10 relative is below rounding.
    np.testing.assert_allclose(table["predicted"], fitted.predict(frame), rtol=1e-10, atol=1e-12)
    expected = fitted.get_prediction(frame).summary_frame()
    np.testing.assert_allclose(table["mean_se"], expected["mean_se"], rtol=1e-9)

    done = run_shardfit("predict", str(result), str(data), "--out", str(out), "--backend", "serial")
    assert done.returncode == 2 and "--overwrite" in done.stderr


def test_cov_option() -> None:
    assert parse_cov("hc1") == ("HC1", None)
    assert parse_cov("cluster:firm") == ("cluster", {"groups": "firm"})
    for bad in ("HC4", "cluster", "HC1:x"):
        with pytest.raises(Exception, match="cluster"):
            parse_cov(bad)


def test_fit_reports_bad_options(tmp_path, capsys) -> None:
    data = tmp_path / "d.parquet"
    simulate_table("linreg", 200, seed=1).to_pandas().to_parquet(data)
    status = main(["fit", str(data), "y ~ x1", "--backend", "serial", "--scheduler", "tcp://h:1"])
    assert status == 2
    assert "--scheduler runs on Dask" in capsys.readouterr().err
    status = main(["fit", str(data), "y ~ x1 + nothere", "--backend", "serial"])
    assert status == 2
    assert "nothere" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["fit", str(data), "y ~ x1", "--cov", "HC9"])


def test_csv_options_read_what_the_extension_would_not(tmp_path, capsys) -> None:
    """--delimiter, --null-values, --column-type, --skip-bad-lines: read_csv's options
    on the command line (a ';' file could not be read by any command before)."""
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"x": rng.normal(size=400), "g": rng.choice(list("ab"), 400)})
    frame["y"] = 1 + 2 * frame["x"] + (frame["g"] == "b") + rng.normal(size=400)
    text = frame.to_csv(sep=";", index=False, float_format="%.17g").splitlines()
    text[5] = "-;a;1.0"  # a missing x, written as "-"
    text[9] = "1;2"  # a malformed line
    path = tmp_path / "semi.txt"
    path.write_text("\n".join(text) + "\n")
    saved = tmp_path / "r.json"
    args = ["fit", str(path), "y ~ x + g", "--backend", "serial", "--out", str(saved)]
    csv = ["--delimiter", ";", "--null-values", "-", "--skip-bad-lines"]
    assert main([*args, *csv, "--column-type", "x=float64"]) == 0
    out = capsys.readouterr().out
    assert "1 of the 399 rows read were not used (missing: 1)" in out
    assert "1 malformed rows were skipped by the reader" in out
    kept = frame.drop(index=[4, 8])  # lines 6 and 10 of the file (1: the header)
    reference = smf.ols("y ~ x + g", kept).fit()
    result = load_results(saved)
    assert result.nobs == len(kept)
    ours = result.params.loc[reference.params.index].to_numpy()
    np.testing.assert_allclose(ours, reference.params.to_numpy(), rtol=1e-9)
    assert main(["schema", str(path), *csv]) == 0
    done = run_shardfit("fit", str(path), "y ~ x", "--backend", "serial")
    assert done.returncode == 2  # as a comma-separated file it has one column


def test_key_picks_one_table_of_an_hdf5_file(tmp_path, capsys) -> None:
    import h5py

    rng = np.random.default_rng(11)
    path = tmp_path / "two.h5"
    frames = {}
    with h5py.File(path, "w") as f:
        for name, slope in (("first", 2.0), ("second", -3.0)):
            x = rng.normal(size=300)
            y = 1.0 + slope * x + rng.normal(size=300)
            group = f.create_group(name)
            group.create_dataset("x", data=x, chunks=(100,))
            group.create_dataset("y", data=y, chunks=(100,))
            frames[name] = pd.DataFrame({"x": x, "y": y})
    saved = tmp_path / "r.json"
    argv = ["fit", str(path), "y ~ x", "--key", "/second", "--backend", "serial"]
    assert main([*argv, "--out", str(saved)]) == 0
    expected = smf.ols("y ~ x", frames["second"]).fit()
    np.testing.assert_allclose(load_results(saved).params, expected.params.to_numpy(), rtol=1e-12)
    capsys.readouterr()
    assert main(["fit", str(path), "y ~ x", "--backend", "serial"]) == 2  # two tables
    assert "/first" in capsys.readouterr().err
    assert main([*argv, "--delimiter", ";"]) == 2
    assert "--delimiter reads CSV data, but" in capsys.readouterr().err
    csv = tmp_path / "d.csv"
    frames["first"].to_csv(csv, index=False)
    assert main(["fit", str(csv), "y ~ x", "--key", "/x"]) == 2
    assert "--key names a key in HDF5 data" in capsys.readouterr().err
