"""A command-line user's review: bugs found in ``shardfit`` commands, each pinned here.

Every command runs in-process through :func:`shardfit.cli.main.main` on the serial
backend; numbers are compared with statsmodels fitted in memory on the same file read
by pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from shardfit.cli.main import main
from shardfit.results.io import load_results


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    """Exit status (argparse's SystemExit included), standard output and error."""
    try:
        status = main(list(argv))
    except SystemExit as stop:
        status = int(stop.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n = 240
    x = rng.normal(size=n).round(6)
    z = rng.normal(size=n).round(6)
    y = (1.0 + 2.0 * x - 0.5 * z + rng.normal(size=n)).round(6)
    return pd.DataFrame({"x": x, "z": z, "y": y})


def _assert_same_fit(path, reference) -> None:
    saved = load_results(path)
    np.testing.assert_allclose(saved.params[reference.params.index], reference.params, rtol=1e-10)
    np.testing.assert_allclose(saved.bse[reference.params.index], reference.bse, rtol=1e-10)
    assert saved.nobs == reference.nobs


def test_tsv_stays_tab_separated_when_a_csv_option_is_given(tmp_path, capsys, frame) -> None:
    # Before: any CSV option (--null-values here) read a .tsv with commas, so the
    # header became one column 'x\tz\ty' and the fit failed with "not columns".
    text = frame.astype(object)
    text.loc[[3, 50], "x"] = "NA"
    path = tmp_path / "d.tsv"
    text.to_csv(path, sep="\t", index=False)
    reference = smf.ols("y ~ x + z", pd.read_csv(path, sep="\t").dropna()).fit()
    assert reference.nobs == 238

    out = tmp_path / "r.json"
    status, _, err = _run(
        capsys,
        "fit",
        str(path),
        "y ~ x + z",
        "--null-values",
        "NA",
        "--backend",
        "serial",
        "--out",
        str(out),
    )
    assert status == 0, err
    _assert_same_fit(out, reference)

    # A shell passes '\t' as two characters: it means a tab.
    status, stdout, err = _run(
        capsys, "fit", str(path), "y ~ x + z", "--delimiter", "\\t", "--backend", "serial"
    )
    assert status == 0, err
    assert f"{reference.rsquared:.4f}" in stdout


def test_null_values_leave_an_empty_field_missing(tmp_path, capsys, frame) -> None:
    # Before: --null-values=-999 stopped "" from being missing, so a numeric column
    # with one empty cell became text and the fit had a dummy per distinct number.
    text = frame.astype(object)
    text.loc[[4, 9, 100], "x"] = ""
    text.loc[[7, 60], "x"] = "-999"
    path = tmp_path / "holes.csv"
    text.to_csv(path, index=False)
    data = pd.read_csv(path, na_values=["-999"])
    assert data.x.isna().sum() == 5
    reference = smf.ols("y ~ x + z", data.dropna()).fit()

    out = tmp_path / "r.json"
    status, stdout, err = _run(
        capsys,
        "fit",
        str(path),
        "y ~ x + z",
        "--null-values=-999",
        "--backend",
        "serial",
        "--out",
        str(out),
    )
    assert status == 0, err
    assert "was read as text" not in err
    _assert_same_fit(out, reference)
    assert "Rows dropped:                       5" in stdout


def test_schema_user_errors_exit_2_with_one_line(tmp_path, capsys, frame) -> None:
    # Before: a bad --backend or an unwritable --json ended in a Python traceback
    # (exit 1), and --workers 0 / --max-levels 0 were accepted.
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    status, _, err = _run(capsys, "schema", str(path), "--backend", "nosuch")
    assert status == 2
    assert err.startswith("shardfit schema: error: Unknown backend 'nosuch'")
    assert "Traceback" not in err

    missing = tmp_path / "no" / "spec.json"
    status, stdout, err = _run(
        capsys, "schema", str(path), "y ~ x", "--json", str(missing), "--backend", "serial"
    )
    assert status == 2
    assert err.startswith("shardfit schema: error:") and str(missing) in err
    assert "Traceback" not in err
    assert stdout == ""  # refused before the pass over the data (session 14)

    for option in ("--workers", "--max-levels"):
        status, _, err = _run(capsys, "schema", str(path), option, "0")
        assert status == 2
        assert f"argument {option}: expected a whole number >= 1, got '0'" in err


def test_demo_bad_numbers_and_backend_exit_2(capsys) -> None:
    # Before: --partition-rows 0 and --workers 0 ended in tracebacks (exit 1).
    for option in ("--rows", "--partition-rows", "--workers"):
        status, _, err = _run(capsys, "demo", option, "0")
        assert status == 2
        assert f"argument {option}: expected a whole number >= 1, got '0'" in err
    status, _, err = _run(capsys, "demo", "--rows", "500", "--backend", "nosuch")
    assert status == 2
    assert err.startswith("shardfit demo: error: Unknown backend 'nosuch'")


def test_fit_out_into_a_missing_folder_fails_before_the_fit(tmp_path, capsys, frame) -> None:
    # Before: the fit ran, printed its summary, then failed naming a temporary file
    # ('/x/no/.r.json.1234-abcd.tmp') the user never asked for.
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "no" / "r.json"
    status, stdout, err = _run(
        capsys, "fit", str(path), "y ~ x", "--backend", "serial", "--out", str(out)
    )
    assert status == 2
    assert stdout == ""
    assert err.strip() == (
        f"shardfit fit: error: cannot save the results to {out}: no such folder {out.parent}"
    )


def test_text_response_error_says_how_to_find_the_token(tmp_path, capsys) -> None:
    # Before: "holds labels (string)" and nothing on which line made it text.
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\n2,3.5\n3,oops\n4,9\n5,11\n")
    status, _, err = _run(capsys, "fit", str(path), "y ~ x", "--backend", "serial")
    assert status == 2
    assert "response column 'y' holds labels (string)" in err
    assert "--column-type y=float64" in err
    status, _, err = _run(
        capsys, "fit", str(path), "y ~ x", "--backend", "serial", "--column-type", "y=float64"
    )
    assert status == 2
    assert f"(file {path}, line 4), column 'y': cannot parse 'oops' as double" in err


def test_predict_alpha_without_an_interval_is_refused(tmp_path, capsys, frame) -> None:
    # Before: --alpha without --interval was accepted and silently ignored.
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    saved = tmp_path / "r.json"
    status, _, err = _run(
        capsys, "fit", str(path), "y ~ x + z", "--backend", "serial", "--out", str(saved)
    )
    assert status == 0, err
    status, _, err = _run(
        capsys, "predict", str(saved), str(path), "--out", str(tmp_path / "p0"), "--alpha", "0.1"
    )
    assert status == 2
    assert err.strip() == (
        "shardfit predict: error: --alpha sets the level of an interval; add "
        "--interval confidence (or prediction)"
    )
    assert not (tmp_path / "p0").exists()

    out = tmp_path / "p1"
    status, _, err = _run(
        capsys, "predict", str(saved), str(path), "--out", str(out), "--interval", "prediction",
        "--alpha", "0.1", "--backend", "serial", "--partition-rows", "70",
    )  # fmt: skip
    assert status == 0, err
    expected = smf.ols("y ~ x + z", frame).fit().get_prediction(frame).summary_frame(alpha=0.1)
    table = pd.read_parquet(out).sort_values("row")
    assert table["row"].tolist() == list(range(len(frame)))
    for ours, theirs in [("predicted", "mean"), *((c, c) for c in expected.columns[1:])]:
        np.testing.assert_allclose(table[ours], expected[theirs], rtol=1e-10, err_msg=ours)


def test_a_csv_option_on_parquet_data_is_refused_by_name(tmp_path, capsys, frame) -> None:
    # Before: --column-type (any CSV option) parsed the Parquet file's bytes as CSV
    # and printed them in a "Cannot read the header line" error.
    path = tmp_path / "d.parquet"
    frame.to_parquet(path)
    argv = ["fit", str(path), "y ~ x", "--backend", "serial", "--column-type", "x=float64"]
    status, stdout, err = _run(capsys, *argv, "--skip-bad-lines")
    assert status == 2 and stdout == ""
    assert err.strip() == (
        f"shardfit fit: error: --column-type, --skip-bad-lines are CSV options, but {path} is "
        "Parquet data; leave --column-type, --skip-bad-lines out"
    )
    status, _, err = _run(capsys, "schema", str(tmp_path), "--delimiter", ";")
    assert status == 2
    assert f"--delimiter is a CSV option, but {tmp_path} is a directory, read as Parquet" in err
    saved = tmp_path / "r.json"  # without the option the same file fits as statsmodels does
    status, _, err = _run(capsys, *argv[:5], "--out", str(saved))
    assert status == 0, err
    _assert_same_fit(saved, smf.ols("y ~ x", frame).fit())


def test_a_file_without_rows_says_so(tmp_path, capsys) -> None:
    # Before: "(0 rows read, all dropped for missing values)" for a header-only file.
    path = tmp_path / "header.csv"
    path.write_text("x,y\n")
    for family in ([], ["--family", "poisson"]):
        status, _, err = _run(capsys, "fit", str(path), "y ~ x", "--backend", "serial", *family)
        assert status == 2
        assert err.strip() == (
            f"shardfit fit: error: no rows of {str(path)!r} have every value the model needs "
            "(it has no rows)"
        )
    path.write_text("x,y\n1,\n2,NA\n")
    status, _, err = _run(capsys, "fit", str(path), "y ~ x", "--backend", "serial")
    assert status == 2
    assert "(2 rows read, all dropped for missing values)" in err


def test_schema_prints_the_data_as_it_is(tmp_path, capsys) -> None:
    # Before: names, types and levels went through rich markup: a level "[red]b[/red]"
    # printed as "b", "[bold]a" as "a", the type date32[day] as "date32", and a column
    # named "x[/]" crashed the table with a MarkupError traceback. A column with no
    # values showed min inf, max -inf and mean 0; dates showed as day numbers.
    path = tmp_path / "odd [data].csv"
    path.write_text("x[/],g,empty\n1,[bold]a,\n2,[red]b[/red],\n4,[c],\n")
    rows = _schema_rows(capsys, path)
    x = pd.Series([1, 2, 4])
    assert rows["x[/]"] == ["int64", "3", "0", "1", "4", f"{x.mean():.6g}", f"{x.std():.6g}"]
    assert rows["g"][-1] == "3 levels: [bold]a, [c], [red]b[/red]"
    assert rows["empty"] == ["double", "0", "3", "", "", "", ""]

    path = tmp_path / "dates.csv"
    path.write_text("d\n2020-01-01\n2020-01-02\n2020-01-04\n")
    dates = pd.read_csv(path, parse_dates=["d"]).d  # mean 2020-01-02 08:00, std 1.53 days
    assert _schema_rows(capsys, path)["d"] == [
        "date32[day]", "3", "0", "2020-01-01", "2020-01-04",
        dates.mean().isoformat(), f"{dates.std() / pd.Timedelta(days=1):.6g} days",
    ]  # fmt: skip


def _schema_rows(capsys, path) -> dict[str, list[str]]:
    """The cells of ``shardfit schema PATH``'s table by column name."""
    status, out, err = _run(capsys, "schema", str(path), "--backend", "serial")
    assert status == 0, err
    assert out.startswith(f"{path}: 3 rows in 1 partition")
    lines = [line.split("│")[1:-1] for line in out.splitlines() if line.startswith("│")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in lines}


def test_best_prints_column_names_as_they_are(tmp_path, capsys) -> None:
    # Before: a searched column named "z[/]" crashed `shardfit best` (and the table
    # at the end of `shardfit search`) with a rich MarkupError traceback.
    rng = np.random.default_rng(3)
    n = 400
    data = pd.DataFrame({"[red]x": rng.normal(size=n), "z[/]": rng.normal(size=n)})
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-data["[red]x"]))).astype(int)
    data.to_csv(tmp_path / "w.csv", index=False)
    (tmp_path / "s.toml").write_text(
        'data = "w.csv"\ntarget = "y"\nstore = "m.db"\nbatch_rows = 200\nbackend = "serial"\n'
        '[grid.featurizer]\ncolumns = [["[red]x", "z[/]"]]\n'
        '[grid.learner]\nestimator = "ftrl"\nalpha = [0.001]\n'
    )
    status, out, err = _run(capsys, "search", str(tmp_path / "s.toml"))
    assert status == 0, err
    status, out, err = _run(capsys, "best", str(tmp_path / "m.db"), "-n", "1")
    assert status == 0, err
    assert "columns=['[red]x', 'z[/]'] alpha=0.001 estimator=ftrl" in out
