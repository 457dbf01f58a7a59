"""GLM ``freq_weights`` (statsmodels' meaning), alongside ``weights`` (its ``var_weights``).

Every number is compared with ``statsmodels.api.GLM(y, X, family, freq_weights=f,
var_weights=w, offset=o)`` fitted in memory: params, bse, deviance, null deviance,
Pearson chi2, scale, llf, llnull, aic, bic, df_resid (``sum(f) - rank``), df_model,
nobs (the rows) and wnobs (``sum(f)``), for the six families, at one and several
partitions, and HC0 (statsmodels divides its scores by ``sqrt(f)``: the expanded rows'
sandwich). Before, ``freq_weights`` was no parameter at all.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.data.memory import from_pandas
from shardfit.errors import DesignError, MissingDataError
from shardfit.results.glm import GLMResults

RTOL = 1e-7
pytestmark = pytest.mark.filterwarnings(
    "ignore::statsmodels.tools.sm_exceptions.DomainWarning"  # the Gamma's inverse link
)
MEASURES = (
    "params",
    "bse",
    "deviance",
    "null_deviance",
    "pearson_chi2",
    "scale",
    "llf",
    "llnull",
    "aic",
    "bic",
    "df_resid",
    "df_model",
    "nobs",
)
FAMILIES = {
    "gaussian": (sm.families.Gaussian, {}),
    "binomial": (sm.families.Binomial, {}),
    "poisson": (sm.families.Poisson, {}),
    "gamma": (sm.families.Gamma, {}),
    "negative_binomial": (sm.families.NegativeBinomial, {"alpha": 0.7}),
    "tweedie": (sm.families.Tweedie, {"var_power": 1.5}),
}


def _data(family: str, n: int = 90, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.uniform(-1, 1, size=n)
    eta = 0.4 + 0.5 * x1 - 0.3 * x2
    if family == "gaussian":
        y = eta + rng.normal(size=n)
    elif family == "binomial":
        y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float)
    elif family == "gamma":
        y = rng.gamma(2.0, 1 / (2.0 + 0.5 * x1 + 0.3 * x2 + 0.5))  # inverse link > 0
    else:
        y = rng.poisson(np.exp(eta)).astype(float)
    return pd.DataFrame(
        {
            "y": y,
            "x1": x1,
            "x2": x2,
            "f": rng.integers(1, 6, size=n).astype(float),  # frequencies
            "w": rng.uniform(0.5, 2.0, size=n),  # variance weights
            "off": rng.normal(scale=0.1, size=n),
        }
    )


def _statsmodels(
    frame: pd.DataFrame, family: str, *, var: bool, offset: bool, cov_type: str = "nonrobust"
) -> sm.GLM:
    cls, params = FAMILIES[family]
    X = sm.add_constant(frame[["x1", "x2"]].to_numpy())
    return sm.GLM(
        frame["y"].to_numpy(),
        X,
        family=cls(**params),
        freq_weights=frame["f"].to_numpy(),
        var_weights=frame["w"].to_numpy() if var else None,
        offset=frame["off"].to_numpy() if offset else None,
    ).fit(cov_type=cov_type)


def _assert_equal(got: GLMResults, ref: sm.GLM) -> None:
    for name in MEASURES:
        np.testing.assert_allclose(
            np.asarray(getattr(got, name), dtype=float),
            np.asarray(getattr(ref, name), dtype=float),
            rtol=RTOL,
            atol=0,
            err_msg=name,
        )
    assert got.wnobs == pytest.approx(ref.model.wnobs, rel=1e-12)
    assert got.nobs == ref.nobs  # the rows, not the frequencies


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(
    ("var", "offset", "npartitions"), [(False, False, 1), (True, True, 3)], ids=["f", "f+w+off"]
)
def test_arrays_equal_statsmodels(family: str, var: bool, offset: bool, npartitions: int) -> None:
    frame = _data(family)
    ref = _statsmodels(frame, family, var=var, offset=offset)
    cls, params = FAMILIES[family]
    got = shardfit.GLM(
        frame["y"],
        sm.add_constant(frame[["x1", "x2"]].to_numpy()),
        cls(**params),
        freq_weights=frame["f"],
        weights=frame["w"] if var else None,
        offset=frame["off"] if offset else None,
        npartitions=npartitions,
    ).fit(backend="serial")
    _assert_equal(got, ref)
    # The frequencies matter: df_resid counts them (90 rows, frequencies 1 to 5).
    assert got.df_resid == pytest.approx(frame["f"].sum() - 3)


@pytest.mark.parametrize("family", ["poisson", "gamma", "binomial"])
def test_hc0_equals_statsmodels_and_the_expanded_rows(family: str) -> None:
    """statsmodels' HC0 with freq_weights is the expanded rows' HC0 (it divides the
    scores by sqrt(f)); shardfit's equals both."""
    frame = _data(family, seed=5)
    ref = _statsmodels(frame, family, var=True, offset=False, cov_type="HC0")
    cls, params = FAMILIES[family]
    expanded = frame.loc[frame.index.repeat(frame["f"].astype(int))]
    ref_expanded = sm.GLM(
        expanded["y"].to_numpy(),
        sm.add_constant(expanded[["x1", "x2"]].to_numpy()),
        family=cls(**params),
        var_weights=expanded["w"].to_numpy(),
    ).fit(cov_type="HC0")
    got = shardfit.glm(
        "y ~ x1 + x2",
        from_pandas(frame, 4),
        family=cls(**params),
        weights="w",
        freq_weights="f",
    ).fit(cov_type="HC0", backend="serial")
    _assert_equal(got, ref)
    np.testing.assert_allclose(got.bse, ref_expanded.bse, rtol=RTOL)
    with pytest.raises(ValueError, match="cov_type='cluster' with freq_weights='f'"):
        shardfit.glm("y ~ x1 + x2", frame, family=cls(**params), freq_weights="f").fit(
            cov_type="cluster", cov_kwds={"groups": "x1"}, backend="serial"
        )


def test_logit_poisson_options_on_processes(processes) -> None:
    """``freq_weights`` through logit's options on worker processes, and poisson's."""
    frame = _data("binomial", n=120, seed=7)
    got = shardfit.logit("y ~ x1 + x2", from_pandas(frame, 3), freq_weights="f", offset="off").fit(
        backend=processes
    )
    _assert_equal(got, _statsmodels(frame, "binomial", var=False, offset=True))
    counts = _data("poisson", n=120, seed=8)
    got = shardfit.poisson("y ~ x1 + x2", counts, freq_weights="f", weights="w").fit(
        backend="serial"
    )
    _assert_equal(got, _statsmodels(counts, "poisson", var=True, offset=False))


def test_partition_rows_of_a_parquet_file(tmp_path) -> None:
    frame = _data("gamma", n=100, seed=9)
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, row_group_size=25)
    source = shardfit.read_parquet(path, partition_rows=25)
    assert len(source.partitions) == 4
    got = shardfit.glm(
        "y ~ x1 + x2", source, family="gamma", freq_weights="f", weights="w", offset="off"
    ).fit(backend="serial")
    _assert_equal(got, _statsmodels(frame, "gamma", var=True, offset=True))


def test_bad_and_missing_frequencies() -> None:
    """Zero, negative and infinite frequencies raise naming partition, row and column;
    missing ones drop the row (counted), or raise with missing="raise"."""
    frame = _data("poisson", n=60, seed=11)
    source_key = re.escape(from_pandas(frame, 3).partitions[1].key)
    for value in (0.0, -2.0, np.inf):
        bad = frame.copy()
        bad.loc[25, "f"] = value  # partition 1 of 3 (rows 20-39)
        pattern = (
            rf"non-positive or non-finite frequency weight in partition {source_key} "
            rf"\(row 25 of .*\), column 'f': {re.escape(repr(value))}"
        )
        with pytest.raises(DesignError, match=pattern):
            shardfit.poisson("y ~ x1 + x2", from_pandas(bad, 3), freq_weights="f").fit(
                backend="serial"
            )
    holes = frame.copy()
    holes.loc[[4, 25, 50], "f"] = np.nan
    got = shardfit.poisson("y ~ x1 + x2", from_pandas(holes, 3), freq_weights="f").fit(
        backend="serial"
    )
    assert got.rows_dropped == {"missing": 3}
    _assert_equal(got, _statsmodels(holes.dropna(), "poisson", var=False, offset=False))
    with pytest.raises(MissingDataError, match="'f'"):
        shardfit.poisson(
            "y ~ x1 + x2", from_pandas(holes, 3), freq_weights="f", missing="raise"
        ).fit(backend="serial")
    labels = frame.assign(f=frame["f"].astype(str))
    with pytest.raises(DesignError, match="column 'f' holds labels"):
        shardfit.poisson("y ~ x1 + x2", labels, freq_weights="f").fit(backend="serial")


def test_save_load_round_trip_and_old_files(tmp_path) -> None:
    frame = _data("gaussian", seed=13)
    ref = _statsmodels(frame, "gaussian", var=True, offset=False)
    fitted = shardfit.glm("y ~ x1 + x2", frame, weights="w", freq_weights="f").fit(backend="serial")
    path = fitted.save(tmp_path / "fit.json")
    loaded = GLMResults.load(path)
    assert loaded.sum_freq_weights == frame["f"].sum()
    _assert_equal(loaded, ref)
    assert "Sum freq. weights:" in str(loaded.summary())
    # A file written before freq_weights (no such field) loads as unweighted by them.
    document = json.loads(path.read_text())
    del document["fields"]["sum_freq_weights"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document))
    assert GLMResults.load(old).df_resid == len(frame) - 3
    document["fields"]["sum_freq_weights"] = -1.0
    old.write_text(json.dumps(document))
    with pytest.raises(Exception, match="sum_freq_weights"):
        GLMResults.load(old)
    with pytest.raises(NotImplementedError, match="freq_weights"):
        fitted.influence(frame)


def test_no_freq_weights_unchanged() -> None:
    """Without freq_weights the results are as before (wnobs is nobs)."""
    frame = _data("poisson", seed=17)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = shardfit.poisson("y ~ x1 + x2", frame, weights="w").fit(backend="serial")
    ref = sm.GLM(
        frame["y"].to_numpy(),
        sm.add_constant(frame[["x1", "x2"]].to_numpy()),
        family=sm.families.Poisson(),
        var_weights=frame["w"].to_numpy(),
    ).fit()
    _assert_equal(got, ref)
    assert got.sum_freq_weights is None and got.wnobs == len(frame)


def test_cli_freq_weights(tmp_path, capsys) -> None:
    """``shardfit fit DATA FORMULA --family poisson --freq-weights COL --weights COL``."""
    from shardfit.cli.main import main

    frame = _data("poisson", n=80, seed=19)
    path = tmp_path / "d.parquet"
    frame.to_parquet(path, row_group_size=40)
    out = tmp_path / "r.json"
    argv = [str(path), "y ~ x1 + x2", "--freq-weights", "f", "--weights", "w"]
    assert main(["fit", *argv, "--family", "poisson", "--out", str(out)]) == 0
    _assert_equal(GLMResults.load(out), _statsmodels(frame, "poisson", var=True, offset=False))
    assert main(["fit", *argv]) == 2  # least squares has no frequency weights
    assert "--freq-weights is a GLM option" in capsys.readouterr().err
