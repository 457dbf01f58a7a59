"""Session 15's command-line review: each bug found, run as a real ``shardfit`` subprocess,
and the Adam optimizer's ``converged`` of :func:`shardfit.sumstats` fits.

The numbers are compared with statsmodels fitted in memory on the same file read by
pandas, NumPy's SVD, or closed forms.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from cli_cases import one_line_error, run_serial, run_shardfit

from shardfit.errors import DesignError
from shardfit.models.linear import ols
from shardfit.results.io import load_results


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(15)
    n = 200
    x = rng.normal(size=n).round(6)
    z = rng.normal(size=n).round(6)
    g = rng.choice(["a", "b", "c"], size=n)
    y = (1.0 + 2.0 * x - 0.5 * z + (g == "b") * 0.5 + rng.normal(size=n)).round(6)
    return pd.DataFrame({"x": x, "z": z, "g": g, "y": y})


def _same_fit(path: Path, reference) -> None:
    saved = load_results(path)
    np.testing.assert_allclose(saved.params[reference.params.index], reference.params, rtol=1e-10)
    np.testing.assert_allclose(saved.bse[reference.params.index], reference.bse, rtol=1e-10)


# 1. predict with a results file that is not there ------------------------------------


def test_predict_missing_results_file_names_it_in_one_line(tmp_path: Path, frame) -> None:
    """Before: ``shardfit predict: error: [Errno 2] No such file or directory: 'nosuch.json'``."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    result = run_serial("predict", "nosuch.json", "d.csv", "--out", "p", cwd=tmp_path)
    line = one_line_error(result, "results file nosuch.json", "No such file or directory")
    assert line.startswith("shardfit predict: error: cannot read the results file")
    assert "Errno" not in line
    assert not (tmp_path / "p").exists()
    (tmp_path / "folder.json").mkdir()
    result = run_serial("predict", "folder.json", "d.csv", "--out", "p", cwd=tmp_path)
    assert "Errno" not in one_line_error(result, "results file folder.json", "directory")


# 2. an existing output file is refused without --overwrite ---------------------------


def test_fit_refuses_an_existing_out_unless_overwrite(tmp_path: Path, frame) -> None:
    """Before: ``fit --out r.json`` replaced an earlier r.json silently (status 0)."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    first = run_serial("fit", "d.csv", "y ~ x", "--out", "r.json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_serial("fit", "d.csv", "y ~ x + z + C(g)", "--out", "r.json", cwd=tmp_path)
    one_line_error(again, "cannot save the results to r.json", "exists", "--overwrite")
    assert again.stdout == ""  # refused before the fit
    _same_fit(tmp_path / "r.json", smf.ols("y ~ x", frame).fit())  # untouched
    replaced = run_serial(
        "fit", "d.csv", "y ~ x + z + C(g)", "--out", "r.json", "--overwrite", cwd=tmp_path
    )
    assert replaced.returncode == 0, replaced.stderr
    _same_fit(tmp_path / "r.json", smf.ols("y ~ x + z + C(g)", frame).fit())
    # --overwrite never lets --out replace the data itself.
    before = (tmp_path / "d.csv").read_bytes()
    onto = run_serial("fit", "d.csv", "y ~ x", "--out", "d.csv", "--overwrite", cwd=tmp_path)
    one_line_error(onto, "--out d.csv", "data file")
    assert (tmp_path / "d.csv").read_bytes() == before


def test_svd_and_schema_refuse_an_existing_file_unless_overwrite(tmp_path: Path, frame) -> None:
    """Before: ``svd --out`` and ``schema --json`` replaced an existing file silently."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "pca.json").write_text("keep me")
    refused = run_serial("svd", "d.csv", "0 + x + z", "--out", "pca.json", cwd=tmp_path)
    one_line_error(refused, "cannot save the results to pca.json", "exists", "--overwrite")
    assert (tmp_path / "pca.json").read_text() == "keep me"
    done = run_serial("svd", "d.csv", "0 + x + z", "--out", "pca.json", "--overwrite", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    expected = np.linalg.svd(frame[["x", "z"]].to_numpy(), compute_uv=False)
    saved = load_results(tmp_path / "pca.json")
    np.testing.assert_allclose(saved.singular_values_array, expected, rtol=1e-10)

    (tmp_path / "spec.json").write_text("keep me")
    refused = run_serial("schema", "d.csv", "y ~ x + C(g)", "--json", "spec.json", cwd=tmp_path)
    one_line_error(refused, "cannot save the design spec to spec.json", "--overwrite")
    assert refused.stdout == ""
    assert (tmp_path / "spec.json").read_text() == "keep me"
    done = run_serial(
        "schema", "d.csv", "y ~ x + C(g)", "--json", "spec.json", "--overwrite", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert "C(g)[T.b]" in json.dumps(spec) and "C(g)[T.c]" in json.dumps(spec)


# 3. the library's Python hints are shown as the command's flags ----------------------


def test_rank_deficient_error_names_the_flag(tmp_path: Path, frame) -> None:
    """Before: ``pass rank_deficient='drop' to drop them``, a keyword no CLI user can type.
    Python users keep the keyword; the flag it names fits as statsmodels does."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    formula = "y ~ x + I(2 * x) + z"
    result = run_serial("fit", "d.csv", formula, cwd=tmp_path)
    line = one_line_error(result, "rank deficient", "pass --rank-deficient drop")
    assert "rank_deficient=" not in line
    with pytest.raises(DesignError, match="pass rank_deficient='drop'"):
        ols(formula, frame).fit(backend="serial")
    dropped = run_serial(
        "fit", "d.csv", formula, "--rank-deficient", "drop", "--out", "r.json", cwd=tmp_path
    )
    assert dropped.returncode == 0, dropped.stderr
    saved = load_results(tmp_path / "r.json")
    reference = smf.ols("y ~ x + z", frame).fit()
    np.testing.assert_allclose(saved.params[["Intercept", "x", "z"]], reference.params, rtol=1e-10)
    assert np.isnan(saved.params["I(2 * x)"])


def test_missing_unseen_and_csv_hints_name_the_flags(tmp_path: Path, frame) -> None:
    """``missing='drop'``, ``unseen='zero'`` and ``column_types={...}`` were shown to CLI
    users; each flag named then does what it says (predictions checked in closed form)."""
    with_nan = frame.copy()
    with_nan.loc[7, "x"] = np.nan
    with_nan.to_csv(tmp_path / "nan.csv", index=False)
    result = run_serial("fit", "nan.csv", "y ~ x", "--missing", "raise", cwd=tmp_path)
    line = one_line_error(result, "missing value", "column 'x'", "pass --missing drop")
    assert "missing=" not in line

    frame.to_csv(tmp_path / "d.csv", index=False)
    assert (
        run_serial("fit", "d.csv", "y ~ x + C(g)", "--out", "r.json", cwd=tmp_path).returncode == 0
    )
    new = pd.DataFrame({"x": [0.5, -1.0], "g": ["a", "zz"], "y": [0.0, 0.0]})
    new.to_csv(tmp_path / "new.csv", index=False)
    result = run_serial("predict", "r.json", "new.csv", "--out", "p", cwd=tmp_path)
    line = one_line_error(result, "'zz'", "pass --unseen zero")
    assert "unseen=" not in line
    done = run_serial(
        "predict", "r.json", "new.csv", "--out", "p", "--unseen", "zero", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    b = smf.ols("y ~ x + C(g)", frame).fit().params
    predicted = pd.read_parquet(tmp_path / "p").sort_values("row")["predicted"].to_numpy()
    # Level 'a' is the baseline; the unseen level is all zeros: the baseline too.
    np.testing.assert_allclose(predicted, b["Intercept"] + b["x"] * new["x"], rtol=1e-10)

    (tmp_path / "bad.csv").write_text("x,y\n1,2\n2,3.5\n3,oops\n4,9\n")
    result = run_serial("fit", "bad.csv", "y ~ x", "--column-type", "y=float64", cwd=tmp_path)
    line = one_line_error(result, "line 4", "--column-type y=string", "--skip-bad-lines")
    assert "column_types=" not in line and "on_bad_lines=" not in line


def test_exposure_with_another_link_names_the_flags(tmp_path: Path, frame) -> None:
    counts = frame.assign(n=(np.abs(frame["y"]) * 3).round(), e=1.0 + np.abs(frame["z"]))
    counts.to_csv(tmp_path / "c.csv", index=False)
    result = run_serial(
        "fit", "c.csv", "n ~ x", "--family", "poisson", "--link", "identity",
        "--exposure", "e", cwd=tmp_path,
    )  # fmt: skip
    line = one_line_error(result, "--exposure e needs the log link", "--link log", "--offset")
    assert "exposure=" not in line and "offset=" not in line


# 4. warnings: one line, no source file -----------------------------------------------


def test_a_warning_is_one_line_without_source_paths(tmp_path: Path, frame) -> None:
    """Before: ``/.../shardfit/models/linear.py:454: UserWarning: the design is ...``
    followed by the source line of the ``warn`` call."""
    frame.to_csv(tmp_path / "d.csv", index=False)
    done = run_serial("fit", "d.csv", "y ~ x + I(2 * x)", "--rank-deficient", "drop", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        "warning: the design is rank deficient: ['I(2 * x)'] is collinear with earlier "
        "columns (or all zero in the 200 rows used); dropped (reported as NaN)"
    ]
    separated = pd.DataFrame({"x": np.arange(40.0), "y": (np.arange(40) > 20).astype(float)})
    separated.to_csv(tmp_path / "sep.csv", index=False)
    done = run_serial("fit", "sep.csv", "y ~ x", "--family", "binomial", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: perfect or quasi-complete separation")
    assert ".py" not in done.stderr and "Warning:" not in done.stderr


# 5. Adam's converged describes the point it returns ----------------------------------


def test_adam_converged_only_when_the_returned_point_meets_tol() -> None:
    """Before: Adam stopped at a point whose gradient met ``tol`` but returned the
    lowest loss seen, another point, with ``converged=True`` and a gradient of 2.2e-6
    there (tol 1e-6)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    import shardfit

    class TwoCurvatures(shardfit.SumstatsModel):
        """``100 mean((x - a)^2) + mean((z - b)^2)``: minimized at the means, gradient
        ``(200 (a - mean x), 2 (b - mean z))`` in closed form."""

        param_names = ("a", "b")

        def partial_sumstats(self, p, d):
            return jnp.stack(
                [
                    jnp.sum((d["x"] - p[0]) ** 2),
                    jnp.sum((d["z"] - p[1]) ** 2),
                    jnp.sum(jnp.ones_like(d["x"])),
                ]
            )

        def loss(self, s):
            return (100.0 * s[0] + s[1]) / s[2]

    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(1, 1, 60), "z": rng.normal(-1, 1, 60)})
    model = TwoCurvatures(data, ["x", "z"], partition_rows=20)
    tol = 1e-6
    got = model.fit(
        [0.0, 0.0], method="adam", learning_rate=0.01, maxiter=5000, tol=tol, backend="serial"
    )
    mean_x, mean_z = data["x"].mean(), data["z"].mean()
    exact = np.array([200 * (got.params[0] - mean_x), 2 * (got.params[1] - mean_z)])
    np.testing.assert_allclose(got.grad, exact, rtol=1e-6, atol=1e-12)
    assert got.converged and got.message == "gradient below tol"
    assert np.max(np.abs(exact)) <= tol * (1 + 1e-6)
    np.testing.assert_allclose(got.params, [mean_x, mean_z], rtol=0, atol=tol)
    loss = 100 * np.mean((data["x"] - got.params[0]) ** 2) + np.mean(
        (data["z"] - got.params[1]) ** 2
    )
    assert got.loss == pytest.approx(loss, rel=1e-12)

    # Stopped by maxiter: the lowest loss seen, not converged (its gradient is above tol).
    short = model.fit(
        [0.0, 0.0], method="adam", learning_rate=0.01, maxiter=50, tol=tol, backend="serial"
    )
    assert not short.converged and short.message == "maxiter reached"
    assert short.loss == short.loss_history.min()
    assert np.max(np.abs(short.grad)) > tol


def test_a_design_store_with_a_formula_is_refused(tmp_path: Path, frame) -> None:
    """The store's part files hold encoded columns: fitting a formula on them as raw
    data ignored the store's weights (it exited 0)."""
    frame.assign(w=np.linspace(0.5, 2.0, len(frame))).to_parquet(tmp_path / "d.parquet")
    made = run_serial(
        "design", "d.parquet", "y ~ x + C(g)", "--out", "store", "--weights", "w", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    one_line_error(
        run_serial("fit", "store", "y ~ x", cwd=tmp_path), "store is a design store", "FORMULA"
    )
    fitted = run_serial("fit", "store", "--out", "r.json", cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    weighted = frame.assign(w=np.linspace(0.5, 2.0, len(frame)))
    reference = smf.wls("y ~ x + C(g)", weighted, weights=weighted["w"]).fit()
    params = load_results(tmp_path / "r.json").params
    np.testing.assert_allclose(params, reference.params[params.index], rtol=1e-10)


def test_influence_without_a_column_names_influence(tmp_path: Path, frame) -> None:
    fit = ols("y ~ x + z", frame).fit(backend="serial")
    with pytest.raises(DesignError, match=r"^influence needs the predictor column 'z'"):
        fit.influence(frame.drop(columns="z"), kind="cooks")
    with pytest.raises(DesignError, match=r"^resid needs the predictor column 'z'"):
        fit.resid(frame.drop(columns="z"))


def test_backend_on_the_command_line_drops_the_files_workers(tmp_path: Path) -> None:
    """`workers = 2` belongs to the file's backend: `--backend serial` over it was
    refused ("must be None or 1")."""
    from shardfit.data.simulate import simulate

    simulate("logit", 2000, tmp_path / "logit.parquet", seed=2)
    (tmp_path / "search.toml").write_text(
        'data = "logit.parquet"\ntarget = "y"\nstore = "models.db"\nbatch_rows = 500\n'
        'backend = "processes"\nworkers = 2\n\n[grid.featurizer]\ncolumns = [["x1", "x2"]]\n'
        'n_features = 256\n\n[grid.learner]\nestimator = "ftrl"\nalpha = [0.01]\n'
    )
    result = run_shardfit(
        "search", "search.toml", "--backend", "serial", "--no-progress", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "1 configurations: 1 fitted" in result.stdout
