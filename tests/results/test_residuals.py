"""``results.resid(data, kind=...)`` equals statsmodels' residual attributes.

Every case fits shardfit on several in-memory partitions (serial backend) and
statsmodels on the same frame, then compares each residual kind with statsmodels'
attribute of that name: linear ``resid``, ``wresid``, ``resid_pearson``; GLM
``resid_response``, ``resid_pearson``, ``resid_deviance``, ``resid_working``,
``resid_anscombe`` and ``resid_anscombe_unscaled``. Rows missing a value get NaN as in
``predict``; Parquet files on disk are read on the processes backend; ``out=`` writes
part files equal to the in-memory Series.
"""

from __future__ import annotations

import json
import warnings
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

import shardfit
from shardfit.errors import DesignError
from shardfit.results.prediction_output import MANIFEST

RTOL = 1e-10
ATOL = 1e-12
LINEAR_KINDS = {"response": "resid", "weighted": "wresid", "pearson": "resid_pearson"}
GLM_KINDS = {
    "response": "resid_response",
    "pearson": "resid_pearson",
    "deviance": "resid_deviance",
    "working": "resid_working",
    "anscombe": "resid_anscombe",
    "anscombe_unscaled": "resid_anscombe_unscaled",
}
PARTS = 4


def _frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(-1, 1, size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    shift = pd.Series(g).map({"a": 0.0, "b": 0.3, "c": -0.2}).to_numpy()
    eta = 0.2 + 0.5 * x1 - 0.4 * x2 + shift
    trials = rng.integers(1, 30, size=n).astype(float)
    exposure = rng.uniform(0.5, 4.0, size=n)
    offset = rng.normal(scale=0.2, size=n)
    mu = np.exp(eta)
    frame = pd.DataFrame(
        {
            "x1": x1,
            "x2": x2,
            "g": g,
            "w": rng.uniform(0.3, 3.0, size=n),
            "trials": trials,
            "t": exposure,
            "off": offset,
            "y": 1.0 + 2.0 * x1 - x2 + shift + rng.normal(size=n),
            "yb": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float),
            "prop": rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))) / trials,
            "count": rng.poisson(mu * exposure * np.exp(offset)).astype(float),
            "pos": rng.gamma(shape=2.0, scale=mu / 2.0),
            "nb": rng.negative_binomial(2, 2 / (2 + mu)).astype(float),
            "tw": rng.poisson(mu) * rng.gamma(2.0, 0.5, size=n),
        }
    )
    # A shuffled, non-default index: values are matched by label, not position.
    frame.index = pd.Index(rng.permutation(np.arange(1000, 1000 + n)), name="id")
    return frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame()


Case = tuple[Callable[[Any], Any], Callable[[pd.DataFrame], Any], dict[str, str]]

RHS = "x1 + x2 + C(g)"


def _cases() -> dict[str, Case]:
    fam = sm.families
    return {
        "ols": (
            lambda data: shardfit.ols(f"y ~ {RHS}", data),
            lambda df: smf.ols(f"y ~ {RHS}", df).fit(),
            LINEAR_KINDS,
        ),
        "wls": (
            lambda data: shardfit.wls(f"y ~ {RHS}", data, weights="w"),
            lambda df: smf.wls(f"y ~ {RHS}", df, weights=df["w"]).fit(),
            LINEAR_KINDS,
        ),
        "ols-log-response": (
            lambda data: shardfit.ols(f"np.log(pos) ~ {RHS}", data),
            lambda df: smf.ols(f"np.log(pos) ~ {RHS}", df).fit(),
            LINEAR_KINDS,
        ),
        "binomial-01": (
            lambda data: shardfit.logit(f"yb ~ {RHS}", data),
            lambda df: smf.glm(f"yb ~ {RHS}", df, family=fam.Binomial()).fit(),
            GLM_KINDS,
        ),
        "binomial-proportions": (
            lambda data: shardfit.glm(f"prop ~ {RHS}", data, family="binomial", weights="trials"),
            lambda df: smf.glm(
                f"prop ~ {RHS}", df, family=fam.Binomial(), var_weights=df["trials"]
            ).fit(),
            GLM_KINDS,
        ),
        "poisson-offset-exposure": (
            lambda data: shardfit.poisson(f"count ~ {RHS}", data, offset="off", exposure="t"),
            lambda df: smf.glm(
                f"count ~ {RHS}", df, family=fam.Poisson(), offset=df["off"], exposure=df["t"]
            ).fit(),
            GLM_KINDS,
        ),
        "gamma-log": (
            lambda data: shardfit.glm(f"pos ~ {RHS}", data, family="gamma", link="log"),
            lambda df: smf.glm(f"pos ~ {RHS}", df, family=fam.Gamma(fam.links.Log())).fit(),
            GLM_KINDS,
        ),
        "tweedie": (
            lambda data: shardfit.glm(f"tw ~ {RHS}", data, family="tweedie", var_power=1.5),
            lambda df: smf.glm(f"tw ~ {RHS}", df, family=fam.Tweedie(var_power=1.5)).fit(),
            GLM_KINDS,
        ),
        "negative-binomial": (
            lambda data: shardfit.glm(f"nb ~ {RHS}", data, family="negative_binomial", alpha=0.7),
            lambda df: smf.glm(f"nb ~ {RHS}", df, family=fam.NegativeBinomial(alpha=0.7)).fit(),
            GLM_KINDS,
        ),
        "gaussian-weights": (
            lambda data: shardfit.glm(f"y ~ {RHS}", data, weights="w"),
            lambda df: smf.glm(f"y ~ {RHS}", df, var_weights=df["w"]).fit(),
            GLM_KINDS,
        ),
        "inverse-gaussian-log": (
            lambda data: shardfit.glm(f"pos ~ {RHS}", data, family="inverse_gaussian", link="log"),
            lambda df: smf.glm(
                f"pos ~ {RHS}", df, family=fam.InverseGaussian(fam.links.Log())
            ).fit(),
            GLM_KINDS,
        ),
    }


CASES = _cases()


def _assert_matches(got: pd.Series, expected: Any, name: str) -> None:
    values, reference = got.to_numpy(), np.asarray(expected)
    assert got.name == name
    if name != "resid_deviance":
        np.testing.assert_allclose(values, reference, rtol=RTOL, atol=ATOL)
        return
    # sqrt(w d(y, mu)): d cancels to rounding (~1e-16) where y is near mu, so
    # statsmodels' own formula on mu one ulp apart differs by 3e-12 at a residual of
    # 1.7e-4 (Tweedie). The deviance contributions themselves agree to rounding, and
    # the residuals away from zero to RTOL.
    np.testing.assert_allclose(values**2, reference**2, rtol=RTOL, atol=1e-14)
    clear = np.abs(reference) > 1e-3
    assert clear.mean() > 0.95
    np.testing.assert_allclose(values[clear], reference[clear], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", list(CASES))
def test_every_kind_equals_statsmodels(frame: pd.DataFrame, case: str) -> None:
    build, reference, kinds = CASES[case]
    ours = build(shardfit.from_pandas(frame, PARTS)).fit(backend="serial")
    theirs = reference(frame)
    for kind, attribute in kinds.items():
        # From the frame: indexed by its labels, in its order.
        got = ours.resid(frame, kind=kind)
        assert got.index.equals(frame.index)
        _assert_matches(got, getattr(theirs, attribute), attribute)
        # From a source of several partitions: 0-based positions named "row".
        parts = ours.resid(shardfit.from_pandas(frame, PARTS), kind=kind)
        assert parts.index.equals(pd.Index(np.arange(len(frame)), name="row"))
        np.testing.assert_array_equal(parts.to_numpy(), got.to_numpy())
    # statsmodels' attribute names are kinds too.
    first = next(iter(kinds.values()))
    np.testing.assert_array_equal(
        ours.resid(frame, kind=first).to_numpy(), ours.resid(frame).to_numpy()
    )
    # fittedvalues: predict on the same rows.
    np.testing.assert_allclose(
        ours.predict(frame), np.asarray(theirs.fittedvalues), rtol=RTOL, atol=ATOL
    )


def test_anscombe_scaled_alias(frame: pd.DataFrame) -> None:
    build, reference, _ = CASES["gamma-log"]
    ours = build(frame).fit(backend="serial")
    theirs = reference(frame)
    got = ours.resid(frame, kind="resid_anscombe_scaled")
    _assert_matches(got, theirs.resid_anscombe_scaled, "resid_anscombe")


def test_arrays_fit_takes_endog_and_exposure(frame: pd.DataFrame) -> None:
    """A fit on arrays (shardfit.OLS / shardfit.GLM) takes the arrays again."""
    X = sm.add_constant(frame[["x1", "x2"]].to_numpy())
    ours = shardfit.OLS(frame["y"].to_numpy(), X, weights=frame["w"].to_numpy()).fit(
        backend="serial"
    )
    theirs = sm.WLS(frame["y"].to_numpy(), X, weights=frame["w"].to_numpy()).fit()
    got = ours.resid(X, kind="pearson", endog=frame["y"], weights=frame["w"])
    _assert_matches(got, theirs.resid_pearson, "resid_pearson")
    with pytest.raises(DesignError, match=r"response column '__y__'.*endog="):
        ours.resid(X)

    counts = frame["count"].to_numpy()
    glm = shardfit.GLM(counts, X, "poisson", exposure=frame["t"].to_numpy(), npartitions=3)
    ours_glm = glm.fit(backend="serial")
    theirs_glm = sm.GLM(counts, X, family=sm.families.Poisson(), exposure=frame["t"]).fit()
    got = ours_glm.resid(X, kind="deviance", endog=counts, exposure=frame["t"])
    _assert_matches(got, theirs_glm.resid_deviance, "resid_deviance")
    with pytest.raises(DesignError, match=r"exposure column '__exposure__'.*exposure="):
        ours_glm.resid(X, endog=counts)


def test_rows_with_missing_values_get_nan(frame: pd.DataFrame) -> None:
    holes = frame.copy()
    holes.loc[holes.index[[3, 50]], "x1"] = np.nan  # a predictor
    holes.loc[holes.index[[7, 51, 399]], "count"] = np.nan  # the response
    holes.loc[holes.index[90], "t"] = np.nan  # the exposure
    build, reference, kinds = CASES["poisson-offset-exposure"]
    ours = build(shardfit.from_pandas(holes, PARTS)).fit(backend="serial")
    theirs = reference(holes)  # missing="drop": the 6 rows are left out
    assert theirs.nobs == len(holes) - 6
    for kind, attribute in kinds.items():
        with pytest.warns(UserWarning, match=r"resid: 6 of 400 rows .* no residual"):
            got = ours.resid(holes, kind=kind)
        assert got.index.equals(holes.index)
        assert got.isna().sum() == 6
        # NaN exactly where predict (or the response) has none; the rest is statsmodels'.
        expected = pd.Series(
            np.asarray(getattr(theirs, attribute)), theirs.fittedvalues.index, name=attribute
        )
        pd.testing.assert_index_equal(got.dropna().index, expected.index)
        _assert_matches(got.dropna(), expected, attribute)
    with pytest.warns(UserWarning):
        predicted = ours.predict(holes)
    with pytest.warns(UserWarning, match="3 of 400 rows"):
        resid = ours.resid(holes.assign(count=holes["count"].fillna(0.0)), kind="response")
    np.testing.assert_array_equal(np.isnan(resid.to_numpy()), np.isnan(predicted))


def _write_parts(frame: pd.DataFrame, folder: Path, parts: int) -> list[Path]:
    folder.mkdir()
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        path = folder / f"part-{i}.parquet"
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, path)
        paths.append(path)
    return paths


def test_parquet_files_on_processes_backend_and_out(frame: pd.DataFrame, tmp_path: Path) -> None:
    """Files on disk read by worker processes; out= writes part files equal to the Series."""
    holes = frame.copy()
    holes.loc[holes.index[[5, 300]], "count"] = np.nan
    _write_parts(holes, tmp_path / "data", 3)
    files = str(tmp_path / "data" / "*.parquet")
    build, reference, _ = CASES["poisson-offset-exposure"]
    ours = build(files).fit(backend="serial")
    theirs = reference(holes.reset_index(drop=True))
    with pytest.warns(UserWarning, match="2 of 400 rows"):
        got = ours.resid(files, kind="deviance", backend="processes", workers=2)
    assert got.index.equals(pd.Index(np.arange(len(holes)), name="row"))
    pd.testing.assert_series_equal(
        got.dropna(),
        theirs.resid_deviance.rename("resid_deviance").rename_axis("row"),
        check_exact=False,
        rtol=RTOL,
        atol=ATOL,
    )

    out = tmp_path / "resid.parquet"
    with pytest.warns(UserWarning, match="2 of 400 rows"):
        written = ours.resid(files, kind="deviance", out=out, backend="serial")
    assert written.columns == ("row", "resid_deviance")
    assert (written.rows_read, written.rows_written) == (400, 398)
    assert written.rows_dropped == {"missing": 2}
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["columns"] == ["row", "resid_deviance"]
    back = pd.read_parquet(out)
    assert len(written.files) == 3
    series = back.set_index("row")["resid_deviance"]
    # The same numbers as the Series, bit for bit, at the same rows.
    pd.testing.assert_series_equal(series, got.dropna(), check_exact=True)


def test_linear_out_matches_series(frame: pd.DataFrame, tmp_path: Path) -> None:
    build, reference, _ = CASES["wls"]
    ours = build(frame).fit(backend="serial")
    series = ours.resid(frame, kind="pearson")
    written = ours.resid(
        shardfit.from_pandas(frame, PARTS), kind="wresid", out=tmp_path / "r", backend="serial"
    )
    back = pd.read_parquet(tmp_path / "r")
    assert list(back.columns) == ["row", "wresid"]
    np.testing.assert_array_equal(back["row"], np.arange(len(frame)))
    theirs = reference(frame)
    np.testing.assert_allclose(back["wresid"], theirs.wresid, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(
        back["wresid"] / np.sqrt(ours.scale), series.to_numpy(), rtol=1e-14, atol=0
    )
    assert written.rows_written == len(frame)


def test_missing_response_column_is_named(frame: pd.DataFrame) -> None:
    build, _, _ = CASES["poisson-offset-exposure"]
    ours = build(frame).fit(backend="serial")
    with pytest.raises(DesignError, match=r"response column 'count'"):
        ours.resid(frame.drop(columns="count"))
    with pytest.raises(DesignError, match=r"exposure column 't'"):
        ours.resid(frame.drop(columns="t"))
    wls = CASES["wls"][0](frame).fit(backend="serial")
    with pytest.raises(DesignError, match=r"weights column 'w'"):
        wls.resid(frame.drop(columns="w"), kind="weighted")
    with pytest.raises(ValueError, match=r"'kind' parameter of a GLM's resid.*'deviance'"):
        ours.resid(frame, kind="wresid")
    with pytest.raises(ValueError, match=r"'kind' parameter of a linear model's resid"):
        wls.resid(frame, kind="deviance")


def test_predict_still_needs_no_response(frame: pd.DataFrame) -> None:
    """predict reads predictors (and the offsets) only, as before."""
    build, _, _ = CASES["poisson-offset-exposure"]
    ours = build(frame).fit(backend="serial")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predicted = ours.predict(frame.drop(columns=["count", "w"]))
    assert np.isfinite(predicted).all()
