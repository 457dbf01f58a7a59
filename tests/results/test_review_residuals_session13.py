"""Review of the per-row diagnostics (session 13): ``resid`` and ``influence`` in cases
the first tests leave out, each against statsmodels 0.15 in memory.

- a response transform (``I(y/2)``) and rows dropped for a nonfinite transform;
- robust (HC1, cluster) fits: residuals and influence do not depend on ``cov_type``
  (statsmodels' influence uses the nonrobust normalized covariance), and a cluster
  fit's residuals need no cluster column;
- binomial proportions (trial counts as weights), a probit link and a weighted
  negative binomial with exposure: influence through the observed information;
- results saved with ``save()`` and reloaded with :func:`shardfit.load_results`;
- a Parquet glob and a Dask DataFrame on a real Dask ``LocalCluster``;
- ``shardfit predict --influence ""`` is refused (it wrote predictions, status 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import shardfit
from shardfit.cli.main import main

# np.log of the negative values that the nonfinite-transform test drops, on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in log:RuntimeWarning")

RTOL = 1e-9
ATOL = 1e-12
KINDS = {"hat": "hat_matrix_diag", "studentized": "resid_studentized", "cooks": "cooks_distance"}
RHS = "x1 + x2 + C(g)"


def _frame(n: int = 300, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-1, 1, size=n)
    eta = 0.2 + 0.5 * x1 - 0.4 * x2
    mu = np.exp(eta)
    exposure = rng.uniform(0.5, 4.0, size=n)
    trials = rng.integers(1, 30, size=n).astype(float)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "g": rng.choice(["a", "b", "c"], size=n),
            "w": rng.uniform(0.3, 3.0, size=n),
            "t": exposure,
            "off": rng.normal(scale=0.2, size=n),
            "cl": rng.integers(0, 20, size=n),
            "y": 1.0 + 2.0 * x1 - x2 + rng.normal(size=n),
            "pos": rng.gamma(2.0, mu / 2.0),
            "yb": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float),
            "count": rng.poisson(mu * exposure).astype(float),
            "trials": trials,
            "prop": rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))) / trials,
        }
    )
    frame.index = pd.Index(rng.permutation(np.arange(1000, 1000 + n)), name="id")
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


def _reference(influence: Any, attribute: str, index: pd.Index, full: pd.Index) -> pd.Series:
    """statsmodels' measure of its kept rows ``index``, NaN at the other rows of ``full``."""
    value = getattr(influence, attribute)
    value = np.asarray(value[0] if attribute == "cooks_distance" else value)
    return pd.Series(value, index=index).reindex(full)


def _assert_influence(ours: Any, data: Any, theirs: Any, full: pd.Index, **options: Any) -> None:
    kept = theirs.model.data.row_labels
    for kind, attribute in KINDS.items():
        got = ours.influence(data, kind=kind, **options)
        expected = _reference(theirs.get_influence(), attribute, kept, full)
        np.testing.assert_allclose(
            got.to_numpy(), expected.to_numpy(), rtol=RTOL, atol=ATOL, err_msg=kind
        )


def test_response_transform_resid_and_influence(frame: pd.DataFrame) -> None:
    ours = shardfit.ols(f"I(y / 2) ~ {RHS}", shardfit.from_pandas(frame, 3)).fit(backend="serial")
    theirs = smf.ols(f"I(y / 2) ~ {RHS}", frame).fit()
    np.testing.assert_allclose(ours.resid(frame).to_numpy(), theirs.resid, rtol=RTOL, atol=ATOL)
    _assert_influence(ours, frame, theirs, frame.index)


def test_rows_dropped_for_a_nonfinite_transform(frame: pd.DataFrame) -> None:
    """np.log of a negative predictor or response is NaN: statsmodels drops the rows,
    shardfit gives them NaN and the other rows statsmodels' values."""
    data = frame.assign(x3=frame["x2"] + 1.5)
    data.loc[data.index[:7], "x3"] = -0.5
    data.loc[data.index[7:12], "pos"] = -1.0
    formula = "np.log(pos) ~ np.log(x3) + x1"
    ours = shardfit.ols(formula, data).fit(backend="serial")
    theirs = smf.ols(formula, data).fit()
    assert ours.nobs == theirs.nobs == len(data) - 12
    with pytest.warns(UserWarning, match=r"resid: 12 of 300 rows"):
        got = ours.resid(data, kind="pearson")
    expected = pd.Series(theirs.resid_pearson, index=theirs.resid.index).reindex(data.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=RTOL, atol=ATOL)
    with pytest.warns(UserWarning, match=r"resid: 12 of 300 rows"):
        _assert_influence(ours, data, theirs, data.index)


@pytest.mark.parametrize("cov_type", ["HC1", "cluster"])
def test_robust_fits_use_the_nonrobust_hat(frame: pd.DataFrame, cov_type: str) -> None:
    kwds = {"groups": "cl"} if cov_type == "cluster" else None
    theirs_kwds = {"groups": frame["cl"]} if cov_type == "cluster" else None
    # The cluster column serves the covariance only: residuals do not need it.
    data = frame.drop(columns="cl")
    linear = shardfit.ols(f"y ~ {RHS}", frame).fit(
        backend="serial", cov_type=cov_type, cov_kwds=kwds
    )
    theirs = smf.ols(f"y ~ {RHS}", frame).fit(cov_type=cov_type, cov_kwds=theirs_kwds)
    _assert_influence(linear, data, theirs, frame.index)
    np.testing.assert_allclose(
        linear.resid(data, kind="pearson").to_numpy(), theirs.resid_pearson, rtol=RTOL
    )
    glm = shardfit.poisson(f"count ~ {RHS}", frame, exposure="t", offset="off").fit(
        backend="serial", cov_type=cov_type, cov_kwds=kwds
    )
    theirs = smf.glm(
        f"count ~ {RHS}",
        frame,
        family=sm.families.Poisson(),
        exposure=frame["t"],
        offset=frame["off"],
    ).fit(cov_type=cov_type, cov_kwds=theirs_kwds)
    _assert_influence(glm, data, theirs, frame.index)
    np.testing.assert_allclose(
        glm.resid(data, kind="anscombe").to_numpy(), theirs.resid_anscombe, rtol=RTOL
    )


def _glm_cases(frame: pd.DataFrame) -> dict[str, tuple[Any, Any]]:
    fam = sm.families
    return {
        "binomial-proportions": (
            shardfit.glm(f"prop ~ {RHS}", frame, family="binomial", weights="trials"),
            smf.glm(f"prop ~ {RHS}", frame, family=fam.Binomial(), var_weights=frame["trials"]),
        ),
        "binomial-probit": (
            shardfit.glm(f"yb ~ {RHS}", frame, family="binomial", link="probit"),
            smf.glm(f"yb ~ {RHS}", frame, family=fam.Binomial(fam.links.Probit())),
        ),
        "negative-binomial-weights-exposure": (
            shardfit.glm(
                f"count ~ {RHS}",
                frame,
                family="negative_binomial",
                alpha=0.5,
                weights="w",
                exposure="t",
            ),
            smf.glm(
                f"count ~ {RHS}",
                frame,
                family=fam.NegativeBinomial(alpha=0.5),
                var_weights=frame["w"],
                exposure=frame["t"],
            ),
        ),
        "tweedie-weights": (
            shardfit.glm(f"pos ~ {RHS}", frame, family="tweedie", var_power=1.5, weights="w"),
            smf.glm(
                f"pos ~ {RHS}", frame, family=fam.Tweedie(var_power=1.5), var_weights=frame["w"]
            ),
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "binomial-proportions",
        "binomial-probit",
        "negative-binomial-weights-exposure",
        "tweedie-weights",
    ],
)
def test_saved_and_reloaded_glm(frame: pd.DataFrame, case: str, tmp_path: Path) -> None:
    """What ``save()`` writes carries all resid and influence need (family parameters,
    spec, scale): the reloaded results give statsmodels' values."""
    model, reference = _glm_cases(frame)[case]
    path = model.fit(backend="serial").save(tmp_path / "fit.json")
    loaded = shardfit.load_results(path)
    theirs = reference.fit()
    _assert_influence(loaded, frame, theirs, frame.index)
    for kind in ("pearson", "deviance", "working", "anscombe"):
        np.testing.assert_allclose(
            loaded.resid(frame, kind=kind).to_numpy(),
            np.asarray(getattr(theirs, f"resid_{kind}")),
            rtol=1e-8,
            atol=1e-11,
            err_msg=kind,
        )


def test_saved_and_reloaded_wls_with_hc_covariance(frame: pd.DataFrame, tmp_path: Path) -> None:
    fit = shardfit.wls(f"I(y / 2) ~ {RHS}", frame, weights="w").fit(
        backend="serial", cov_type="HC1"
    )
    loaded = shardfit.load_results(fit.save(tmp_path / "fit.json"))
    # A WLS fit's influence is that of the Gaussian GLM with var_weights.
    theirs = smf.glm(f"I(y / 2) ~ {RHS}", frame, var_weights=frame["w"]).fit()
    _assert_influence(loaded, frame, theirs, frame.index)
    wls = smf.wls(f"I(y / 2) ~ {RHS}", frame, weights=frame["w"]).fit()
    np.testing.assert_allclose(
        loaded.resid(frame, kind="weighted").to_numpy(), wls.wresid, rtol=RTOL, atol=ATOL
    )


def test_dask_cluster_parquet_glob_and_dask_dataframe(frame: pd.DataFrame, tmp_path: Path) -> None:
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    data = frame.reset_index(drop=True)
    data.loc[3, "x1"] = np.nan
    data.loc[10, "count"] = np.nan
    for part in range(3):
        data.iloc[part * 100 : (part + 1) * 100].to_parquet(
            tmp_path / f"part{part}.parquet", index=False
        )
    theirs = smf.glm(
        f"count ~ {RHS}",
        data,
        family=sm.families.Poisson(),
        exposure=data["t"],
        offset=data["off"],
    ).fit()
    kept = theirs.model.data.row_labels
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        glob = str(tmp_path / "*.parquet")
        ours = shardfit.poisson(f"count ~ {RHS}", glob, exposure="t", offset="off").fit(
            backend=client
        )
        for source in (glob, dd.from_pandas(data, npartitions=3)):
            with pytest.warns(UserWarning, match=r"resid: 2 of 300 rows"):
                got = ours.resid(source, kind="deviance", backend=client)
            expected = theirs.resid_deviance.reindex(data.index)
            np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=RTOL, atol=ATOL)
            with pytest.warns(UserWarning, match=r"resid: 2 of 300 rows"):
                got = ours.influence(source, kind="cooks", backend=client)
            expected = _reference(theirs.get_influence(), "cooks_distance", kept, data.index)
            np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=RTOL, atol=ATOL)


def test_cli_empty_influence_kind_is_refused(
    frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--influence ""` was taken for an absent flag: predictions were written, exit 0."""
    data = tmp_path / "data.parquet"
    frame.reset_index(drop=True).to_parquet(data)
    saved = shardfit.ols(f"y ~ {RHS}", frame).fit(backend="serial").save(tmp_path / "fit.json")
    out = tmp_path / "out"
    argv = ["predict", str(saved), str(data), "--out", str(out), "--backend", "serial"]
    assert main([*argv, "--influence", ""]) == 2
    assert "'kind' parameter of influence" in capsys.readouterr().err
    assert not out.exists()
    # A real kind still writes statsmodels' values.
    assert main([*argv, "--influence", "hat"]) == 0
    back = pd.read_parquet(out).sort_values("row")
    theirs = smf.ols(f"y ~ {RHS}", frame).fit().get_influence()
    np.testing.assert_allclose(
        back["hat_matrix_diag"].to_numpy(), theirs.hat_matrix_diag, rtol=RTOL, atol=ATOL
    )
