"""``results.influence(data, kind=...)`` equals statsmodels' ``get_influence()``.

Every case fits shardfit on four in-memory partitions (serial backend) and
statsmodels on the same frame, then compares ``hat_matrix_diag``,
``resid_studentized`` and ``cooks_distance[0]`` with statsmodels' influence object:
``OLSInfluence`` for OLS, ``GLMInfluence`` (observed information, its default) for
GLMs. statsmodels gives WLS no ``get_influence``: its reference is the Gaussian GLM
with ``var_weights``, whose ``GLMInfluence`` has the weighted leverages. Rows missing
a value get NaN as ``resid``'s do; Parquet files are read on the processes backend.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.outliers_influence import OLSInfluence

import shardfit
from shardfit.cli.main import main

# statsmodels' own notes on its references (Gamma's inverse link, an aliased column).
pytestmark = [
    pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.DomainWarning"),
    pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient"),
]

RTOL = 1e-9
ATOL = 1e-12
PARTS = 4
KINDS = {"hat": "hat_matrix_diag", "studentized": "resid_studentized", "cooks": "cooks_distance"}
RHS = "x1 + x2 + C(g)"


def _frame(n: int = 300, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-1, 1, size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    shift = pd.Series(g).map({"a": 0.0, "b": 0.3, "c": -0.2}).to_numpy()
    eta = 0.2 + 0.5 * x1 - 0.4 * x2 + shift
    mu = np.exp(eta)
    exposure = rng.uniform(0.5, 4.0, size=n)
    offset = rng.normal(scale=0.2, size=n)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "g": g,
            "w": rng.uniform(0.3, 3.0, size=n),
            "t": exposure,
            "off": offset,
            "y": 1.0 + 2.0 * x1 - x2 + shift + rng.normal(size=n),
            "yb": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float),
            "count": rng.poisson(mu * exposure * np.exp(offset)).astype(float),
            "pos": rng.gamma(shape=2.0, scale=mu / 2.0),
        }
    )
    frame.index = pd.Index(rng.permutation(np.arange(500, 500 + n)), name="id")
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


Case = tuple[Callable[[Any], Any], Callable[[pd.DataFrame], Any]]


def _cases() -> dict[str, Case]:
    fam = sm.families
    return {
        "ols": (
            lambda data: shardfit.ols(f"y ~ {RHS}", data),
            lambda df: smf.ols(f"y ~ {RHS}", df).fit().get_influence(),
        ),
        "wls": (
            lambda data: shardfit.wls(f"y ~ {RHS}", data, weights="w"),
            lambda df: smf.glm(f"y ~ {RHS}", df, var_weights=df["w"]).fit().get_influence(),
        ),
        "binomial": (
            lambda data: shardfit.logit(f"yb ~ {RHS}", data),
            lambda df: smf.glm(f"yb ~ {RHS}", df, family=fam.Binomial()).fit().get_influence(),
        ),
        "poisson-offset-exposure": (
            lambda data: shardfit.poisson(f"count ~ {RHS}", data, offset="off", exposure="t"),
            lambda df: (
                smf.glm(
                    f"count ~ {RHS}", df, family=fam.Poisson(), offset=df["off"], exposure=df["t"]
                )
                .fit()
                .get_influence()
            ),
        ),
        "gamma-weights": (
            lambda data: shardfit.glm(f"pos ~ {RHS}", data, family="gamma", weights="w"),
            lambda df: (
                smf.glm(f"pos ~ {RHS}", df, family=fam.Gamma(), var_weights=df["w"])
                .fit()
                .get_influence()
            ),
        ),
        # A non-canonical link: statsmodels' leverage uses the observed information.
        "gamma-log-weights": (
            lambda data: shardfit.glm(
                f"pos ~ {RHS}", data, family="gamma", link="log", weights="w"
            ),
            lambda df: (
                smf.glm(f"pos ~ {RHS}", df, family=fam.Gamma(fam.links.Log()), var_weights=df["w"])
                .fit()
                .get_influence()
            ),
        ),
    }


CASES = _cases()


def _reference(influence: Any, attribute: str) -> np.ndarray:
    value = getattr(influence, attribute)
    return np.asarray(value[0] if attribute == "cooks_distance" else value)


@pytest.mark.parametrize("case", list(CASES))
def test_every_measure_equals_statsmodels(frame: pd.DataFrame, case: str) -> None:
    build, reference = CASES[case]
    ours = build(shardfit.from_pandas(frame, PARTS)).fit(backend="serial")
    theirs = reference(frame)
    for kind, attribute in KINDS.items():
        got = ours.influence(shardfit.from_pandas(frame, PARTS), kind=kind)
        assert got.name == attribute
        assert got.index.equals(pd.Index(np.arange(len(frame)), name="row"))
        np.testing.assert_allclose(
            got.to_numpy(), _reference(theirs, attribute), rtol=RTOL, atol=ATOL
        )
    # statsmodels' names are kinds too; a frame's values come indexed by its labels.
    by_name = ours.influence(frame, kind="cooks_distance")
    assert by_name.index.equals(frame.index)
    np.testing.assert_allclose(by_name.to_numpy(), got.to_numpy(), rtol=1e-13)


def test_wls_is_not_ols_influence_of_wls(frame: pd.DataFrame) -> None:
    """The weighted leverages sum to the rank; statsmodels' OLSInfluence applied to WLS
    results takes sqrt(w) x'Hx (what the WLS reference above is not)."""
    ours = shardfit.wls(f"y ~ {RHS}", frame, weights="w").fit(backend="serial")
    hat = ours.influence(frame, kind="hat").to_numpy()
    np.testing.assert_allclose(hat.sum(), ours.rank, rtol=1e-10)
    wls = smf.wls(f"y ~ {RHS}", frame, weights=frame["w"]).fit()
    naive = OLSInfluence(wls).hat_matrix_diag
    np.testing.assert_allclose(naive, np.sqrt(frame["w"].to_numpy()) * hat / frame["w"], rtol=1e-9)


def test_aliased_column(frame: pd.DataFrame) -> None:
    """A duplicated column (NaN estimate) adds nothing to the leverage; Cook's distance
    divides by all design columns, as statsmodels' k_vars."""
    data = frame.assign(x3=2.0 * frame["x1"])
    with pytest.warns(UserWarning, match="rank deficient"):
        ours = shardfit.ols(f"y ~ {RHS} + x3", data).fit(backend="serial", rank_deficient="drop")
    assert np.isnan(ours.params_array).sum() == 1
    theirs = smf.ols(f"y ~ {RHS} + x3", data).fit().get_influence()
    for kind, attribute in KINDS.items():
        np.testing.assert_allclose(
            ours.influence(data, kind=kind).to_numpy(),
            _reference(theirs, attribute),
            rtol=RTOL,
            atol=ATOL,
        )


def test_rows_with_missing_values_get_nan(frame: pd.DataFrame) -> None:
    holes = frame.copy()
    holes.loc[holes.index[[3, 50]], "x1"] = np.nan
    holes.loc[holes.index[[7, 299]], "count"] = np.nan
    holes.loc[holes.index[90], "t"] = np.nan
    build, reference = CASES["poisson-offset-exposure"]
    ours = build(shardfit.from_pandas(holes, PARTS)).fit(backend="serial")
    theirs = reference(holes)  # missing="drop"
    for kind, attribute in KINDS.items():
        with pytest.warns(UserWarning, match=r"resid: 5 of 300 rows"):
            got = ours.influence(holes, kind=kind)
        assert got.index.equals(holes.index)
        assert got.isna().sum() == 5
        np.testing.assert_allclose(
            got.dropna().to_numpy(), _reference(theirs, attribute), rtol=RTOL, atol=ATOL
        )


def test_parquet_files_on_processes_backend(frame: pd.DataFrame, tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, folder / f"part-{i}.parquet")
    files = str(folder / "*.parquet")
    build, reference = CASES["gamma-log-weights"]
    ours = build(files).fit(backend="serial")
    theirs = reference(frame.reset_index(drop=True))
    got = ours.influence(files, kind="cooks", backend="processes", workers=2)
    np.testing.assert_allclose(
        got.to_numpy(), _reference(theirs, "cooks_distance"), rtol=RTOL, atol=ATOL
    )


def test_unknown_kind_is_refused(frame: pd.DataFrame) -> None:
    ours = shardfit.ols(f"y ~ {RHS}", frame).fit(backend="serial")
    with pytest.raises(ValueError, match=r"kind.*influence.*'hat'"):
        ours.influence(frame, kind="dfbetas")


def test_cli_writes_residuals_and_influence(frame: pd.DataFrame, tmp_path: Path) -> None:
    """`shardfit predict RESULTS DATA --resid KIND` (the real program) and
    `--influence KIND` write part files equal to statsmodels' values."""
    data = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data)
    build, _ = CASES["poisson-offset-exposure"]
    saved = build(str(data)).fit(backend="serial").save(tmp_path / "fit.json")
    theirs_fit = smf.glm(
        f"count ~ {RHS}",
        frame,
        family=sm.families.Poisson(),
        offset=frame["off"],
        exposure=frame["t"],
    ).fit()
    out = tmp_path / "deviance"
    command = [sys.executable, "-m", "shardfit", "predict", str(saved), str(data)]
    done = subprocess.run(
        [*command, "--resid", "deviance", "--out", str(out), "--backend", "serial"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 300 residuals for 300 rows" in done.stdout
    back = pd.read_parquet(out).sort_values("row")
    np.testing.assert_allclose(
        back["resid_deviance"].to_numpy(), theirs_fit.resid_deviance, rtol=1e-10, atol=ATOL
    )

    out = tmp_path / "cooks"
    argv = ["predict", str(saved), str(data), "--influence", "cooks", "--out", str(out)]
    assert main([*argv, "--backend", "serial"]) == 0
    back = pd.read_parquet(out).sort_values("row")
    np.testing.assert_allclose(
        back["cooks_distance"].to_numpy(),
        theirs_fit.get_influence().cooks_distance[0],
        rtol=RTOL,
        atol=ATOL,
    )
    # A prediction's options do not go with residuals.
    assert main([*argv, "--backend", "serial", "--interval", "confidence"]) == 2
