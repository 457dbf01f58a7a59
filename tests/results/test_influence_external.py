"""The leave-one-out influence kinds equal statsmodels' ``get_influence()``.

``results.influence(data, kind=...)`` with ``"studentized_external"``, ``"dffits"``,
``"dffits_internal"`` (OLS/WLS) and ``"cooks_pvalue"`` (GLMs too) against
statsmodels' ``resid_studentized_external``, ``dffits[0]``, ``dffits_internal[0]``
and ``cooks_distance[1]``, which statsmodels computes with an explicit
leave-one-observation-out loop (its ``sigma2_not_obsi``) where shardfit uses the fit's
``ssr``. statsmodels' WLS results have no ``get_influence``: the reference for WLS is
``OLSInfluence`` of the whitened OLS (``sqrt(w) y`` on ``sqrt(w) X``), whose leverages
and Cook's distances are those of the Gaussian GLM with ``var_weights`` that
tests/results/test_influence.py checks. The frame, the model cases and the
tolerances are test_influence.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.outliers_influence import OLSInfluence
from test_influence import ATOL, CASES, PARTS, RHS, RTOL, _frame

import shardfit
from shardfit.cli.main import main

pytestmark = [
    pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.DomainWarning"),
    pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient"),
]

#: The new linear kinds -> (the Series' name, statsmodels' value from an OLSInfluence).
LINEAR_KINDS = {
    "studentized_external": (
        "resid_studentized_external",
        lambda inf: inf.resid_studentized_external,
    ),
    "dffits": ("dffits", lambda inf: inf.dffits[0]),
    "dffits_internal": ("dffits_internal", lambda inf: inf.dffits_internal[0]),
    "cooks_pvalue": ("cooks_pvalue", lambda inf: inf.cooks_distance[1]),
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


def _whitened_influence(frame: pd.DataFrame) -> OLSInfluence:
    """statsmodels' influence of the WLS fit as the OLS of the whitened data."""
    model = smf.wls(f"y ~ {RHS}", frame, weights=frame["w"]).fit().model
    root = np.sqrt(frame["w"].to_numpy())
    return sm.OLS(root * model.endog, root[:, None] * model.exog).fit().get_influence()


def _check_linear(ours: Any, data: Any, theirs: OLSInfluence, **options: Any) -> None:
    for kind, (name, reference) in LINEAR_KINDS.items():
        got = ours.influence(data, kind=kind, **options)
        assert got.name == name
        np.testing.assert_allclose(
            got.to_numpy(), np.asarray(reference(theirs)), rtol=RTOL, atol=ATOL
        )


def test_ols_equals_statsmodels(frame: pd.DataFrame) -> None:
    ours = shardfit.ols(f"y ~ {RHS}", shardfit.from_pandas(frame, PARTS)).fit(backend="serial")
    theirs = smf.ols(f"y ~ {RHS}", frame).fit().get_influence()
    _check_linear(ours, shardfit.from_pandas(frame, PARTS), theirs)
    # The externally studentized residuals are not the internal ones (a real check).
    external = np.asarray(theirs.resid_studentized_external)
    assert np.abs(external - np.asarray(theirs.resid_studentized)).max() > 1e-3
    # statsmodels' attribute names are kinds too; a frame's values keep its labels.
    by_name = ours.influence(frame, kind="resid_studentized_external")
    assert by_name.index.equals(frame.index)
    np.testing.assert_allclose(by_name.to_numpy(), external, rtol=RTOL, atol=ATOL)


def test_wls_equals_whitened_ols(frame: pd.DataFrame) -> None:
    ours = shardfit.wls(f"y ~ {RHS}", frame, weights="w").fit(backend="serial")
    theirs = _whitened_influence(frame)
    _check_linear(ours, shardfit.from_pandas(frame, PARTS), theirs)
    # The whitened OLS is the reference test_influence.py uses (Gaussian GLM with
    # var_weights) where both are defined: Cook's p-values agree with its.
    glm = smf.glm(f"y ~ {RHS}", frame, var_weights=frame["w"]).fit().get_influence()
    np.testing.assert_allclose(
        ours.influence(frame, kind="cooks_pvalue").to_numpy(),
        glm.cooks_distance[1],
        rtol=RTOL,
        atol=ATOL,
    )


def test_rows_with_missing_values_get_nan(frame: pd.DataFrame) -> None:
    holes = frame.copy()
    holes.loc[holes.index[[4, 120]], "x2"] = np.nan
    holes.loc[holes.index[200], "y"] = np.nan
    ours = shardfit.wls(f"y ~ {RHS}", holes, weights="w").fit(backend="serial")
    theirs = _whitened_influence(holes.dropna(subset=["x2", "y"]))
    with pytest.warns(UserWarning, match=r"resid: 3 of 300 rows"):
        got = ours.influence(holes, kind="dffits")
    assert got.isna().sum() == 3
    np.testing.assert_allclose(got.dropna().to_numpy(), theirs.dffits[0], rtol=RTOL, atol=ATOL)


def test_aliased_column(frame: pd.DataFrame) -> None:
    """A duplicated column (NaN estimate): df_resid counts the rank, Cook's p-values
    the design columns (statsmodels' k_vars)."""
    data = frame.assign(x3=2.0 * frame["x1"])
    with pytest.warns(UserWarning, match="rank deficient"):
        ours = shardfit.ols(f"y ~ {RHS} + x3", data).fit(backend="serial", rank_deficient="drop")
    assert np.isnan(ours.params_array).sum() == 1
    theirs = smf.ols(f"y ~ {RHS} + x3", data).fit().get_influence()
    _check_linear(ours, data, theirs)


@pytest.mark.parametrize("case", ["binomial", "poisson-offset-exposure", "gamma-log-weights"])
def test_glm_cooks_pvalue_equals_statsmodels(frame: pd.DataFrame, case: str) -> None:
    build, reference = CASES[case]
    ours = build(shardfit.from_pandas(frame, PARTS)).fit(backend="serial")
    got = ours.influence(shardfit.from_pandas(frame, PARTS), kind="cooks_pvalue")
    assert got.name == "cooks_pvalue"
    np.testing.assert_allclose(
        got.to_numpy(), reference(frame).cooks_distance[1], rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize(
    "kind", ["studentized_external", "resid_studentized_external", "dffits", "dffits_internal"]
)
def test_glm_refuses_kinds_statsmodels_does_not_define(frame: pd.DataFrame, kind: str) -> None:
    """statsmodels' GLMInfluence has no resid_studentized_external, dffits or
    dffits_internal; the error names the kinds a GLM has."""
    build, reference = CASES["binomial"]
    ours = build(frame).fit(backend="serial")
    theirs = reference(frame)
    assert not hasattr(theirs, kind if kind != "studentized_external" else "resid_" + kind)
    with pytest.raises(ValueError, match=r"not defined for a GLM.*'hat'.*'cooks_pvalue'"):
        ours.influence(frame, kind=kind)


def test_unknown_kind_lists_the_models_kinds(frame: pd.DataFrame) -> None:
    ols = shardfit.ols(f"y ~ {RHS}", frame).fit(backend="serial")
    with pytest.raises(ValueError, match=r"'dffits'.*for a linear model.*Got 'dfbetas'"):
        ols.influence(frame, kind="dfbetas")
    build, _ = CASES["binomial"]
    with pytest.raises(ValueError, match=r"for a GLM \(or") as error:
        build(frame).fit(backend="serial").influence(frame, kind="dfbetas")
    assert "dffits" not in str(error.value)


def test_parquet_files_on_processes_backend(
    frame: pd.DataFrame, tmp_path: Path, processes: Any
) -> None:
    # ``processes``: the module's open 2-worker session (conftest), so that the five
    # calls below share one pool instead of starting one each (most of the test's time).
    folder = tmp_path / "data"
    folder.mkdir()
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(folder / f"part-{k}.parquet", index=False)
    files = str(folder / "*.parquet")
    ours = shardfit.wls(f"y ~ {RHS}", files, weights="w").fit(backend="serial")
    theirs = _whitened_influence(frame.reset_index(drop=True))
    _check_linear(ours, files, theirs, backend=processes)
    out = ours.influence(files, kind="dffits", out=tmp_path / "dffits", backend=processes)
    back = pd.read_parquet(out.path).sort_values("row")
    np.testing.assert_allclose(back["dffits"].to_numpy(), theirs.dffits[0], rtol=RTOL, atol=ATOL)


def test_cli_influence_dffits(frame: pd.DataFrame, tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "data.parquet"
    frame.to_parquet(data, index=False)
    saved = shardfit.ols(f"y ~ {RHS}", str(data)).fit(backend="serial").save(tmp_path / "f.json")
    theirs = smf.ols(f"y ~ {RHS}", frame).fit().get_influence()
    out = tmp_path / "dffits"
    argv = ["predict", str(saved), str(data), "--backend", "serial"]
    assert main([*argv, "--influence", "dffits", "--out", str(out)]) == 0
    assert "wrote 300 influence values" in capsys.readouterr().out
    back = pd.read_parquet(out).sort_values("row")
    np.testing.assert_allclose(back["dffits"].to_numpy(), theirs.dffits[0], rtol=RTOL, atol=ATOL)
    # A GLM's results refuse it at the command line too, naming its kinds.
    build, _ = CASES["binomial"]
    glm = build(str(data)).fit(backend="serial").save(tmp_path / "glm.json")
    refused = ["predict", str(glm), str(data), "--backend", "serial", "--influence", "dffits"]
    assert main([*refused, "--out", str(tmp_path / "no")]) == 2
    assert "not defined for a GLM" in capsys.readouterr().err
