"""``get_margeff(at="median")`` and ``get_margeff(at="all")`` against statsmodels.

The references are statsmodels' ``Logit``, ``Probit`` and ``Poisson`` on a design
built by hand in NumPy (shardfit's column order), their ``get_margeff`` evaluated at
shardfit's estimates and covariance: the fits are compared on their own (estimates
to 1e-9, the covariance with statsmodels' ``GLM``'s, whose expected information a
probit GLM uses where ``Probit`` uses the observed), so what each test compares is
the margins. The medians are compared bit for bit with ``np.median`` of the design's
columns: an odd and an even row count, tied values (a rounded column, a dummy, a
count, a categorical's columns), one row the fit drops (a missing ``x1``), and
several partitionings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.data.memory import MemoryPartition
from shardfit.data.partition import Source

NAMES = ["Intercept", "x1", "x2", "d", "k", "C(g)[T.b]", "C(g)[T.c]"]
FORMULA = "y ~ x1 + x2 + d + k + C(g)"
COUNT_FORMULA = "n ~ x1 + x2 + d + k + C(g)"
METHODS = ("dydx", "eyex", "dyex", "eydx")
RTOL = 1e-9
FIT = {"backend": "serial", "tol": 1e-14, "maxiter": 100}


def _frame(nrows: int) -> pd.DataFrame:
    rng = np.random.default_rng(17)
    df = pd.DataFrame(
        {
            "x1": rng.normal(size=nrows),
            "x2": np.round(rng.uniform(0.5, 3.0, size=nrows), 1),  # ties
            "d": (rng.uniform(size=nrows) < 0.4).astype(float),
            "k": rng.poisson(2.0, size=nrows).astype(float),
            "g": rng.choice(["a", "b", "c"], size=nrows),
        }
    )
    eta = -0.2 + 0.7 * df.x1 - 0.4 * df.x2 + 0.5 * df.d + 0.1 * df.k + 0.3 * (df.g == "b")
    df["y"] = (rng.uniform(size=nrows) < 1 / (1 + np.exp(-eta))).astype(float)
    df["n"] = rng.poisson(np.exp(0.1 + 0.3 * df.x1 - 0.2 * df.x2 + 0.1 * df.k)).astype(float)
    df.loc[7, "x1"] = np.nan  # dropped by the fit, and again by get_margeff
    return df


def _design(df: pd.DataFrame) -> pd.DataFrame:
    """The encoded design of the rows the fit keeps, built by hand."""
    kept = df.dropna()
    X = pd.DataFrame({"Intercept": 1.0}, index=kept.index)
    for name in ("x1", "x2", "d", "k"):
        X[name] = kept[name]
    X["C(g)[T.b]"] = (kept.g == "b").astype(float)
    X["C(g)[T.c]"] = (kept.g == "c").astype(float)
    return X


@pytest.fixture(scope="module", params=[201, 200], ids=["even-200-kept", "odd-199-kept"])
def case(request: pytest.FixtureRequest) -> dict:
    """The frame (one row dropped by the fits: an even or an odd count kept), its
    hand-built design, and per model (statsmodels results, shardfit results)."""
    df = _frame(request.param)
    X = _design(df)
    fits = {}
    for model, sm_class, formula, response in (
        ("logit", sm.Logit, FORMULA, "y"),
        ("probit", sm.Probit, FORMULA, "y"),
        ("poisson", sm.Poisson, COUNT_FORMULA, "n"),
    ):
        if model == "probit":
            ours = shardfit.glm(formula, df, family="binomial", link="probit").fit(**FIT)
            family = sm.families.Binomial(sm.families.links.Probit())
            glm_cov = (
                sm.GLM(df[response].loc[X.index], X, family=family).fit(tol=1e-14).cov_params()
            )
            np.testing.assert_allclose(ours.cov_array, glm_cov, rtol=1e-6)
        else:
            fit = shardfit.logit if model == "logit" else shardfit.poisson
            ours = fit(formula, df).fit(**FIT)
        assert list(ours.names) == NAMES
        theirs = sm_class(df[response].loc[X.index], X).fit(disp=0, tol=1e-14, maxiter=100)
        np.testing.assert_allclose(ours.params_array, theirs.params, rtol=1e-9)
        # statsmodels' margins at shardfit's estimates and covariance (see the notes).
        theirs._results.params = np.asarray(ours.params_array, dtype=float)
        theirs._results.normalized_cov_params = np.asarray(ours.cov_array, dtype=float)
        fits[model] = (theirs, ours)
    return {"frame": df, "X": X, "fits": fits}


def _bits(values: np.ndarray) -> bytes:
    return np.ascontiguousarray(values, dtype=np.float64).tobytes()


def _with_empty_partition(df: pd.DataFrame) -> Source:
    """Three partitions, the middle one without rows."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    bounds = [(0, 60), (60, 60), (60, table.num_rows)]
    parts = tuple(
        MemoryPartition(table.slice(a, b - a), name="frame", start=a, stop=b, index=i)
        for i, (a, b) in enumerate(bounds)
    )
    meta = {"format": "memory", "nrows": table.num_rows}
    return Source(name="frame", partitions=parts, schema=table.schema, meta=meta)


@pytest.mark.parametrize("model", ["logit", "probit", "poisson"])
def test_median_effects_and_standard_errors_match_statsmodels(case, model):
    theirs, ours = case["fits"][model]
    medians = np.median(case["X"].to_numpy(), axis=0)
    for method in METHODS:
        margins = ours.get_margeff(at="median", method=method, data=case["frame"])
        reference = theirs.get_margeff(at="median", method=method)
        assert margins.margeff_options == {"method": method, "at": "median"}
        assert margins.names == tuple(NAMES[1:])
        assert _bits(margins.exog_at) == _bits(medians)
        np.testing.assert_allclose(margins.margeff, reference.margeff, rtol=RTOL, atol=1e-300)
        np.testing.assert_allclose(margins.margeff_se, reference.margeff_se, rtol=RTOL)
        np.testing.assert_allclose(margins.margeff_cov, reference.margeff_cov, rtol=1e-8)


def test_median_is_np_median_for_every_partitioning(case, tmp_path):
    _, ours = case["fits"]["logit"]
    df = case["frame"]
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=37)
    medians = _bits(np.median(case["X"].to_numpy(), axis=0))
    results = []
    for data in (df, shardfit.from_pandas(df, 23), _with_empty_partition(df), path):
        margins = ours.get_margeff(at="median", method="eyex", data=data, backend="serial")
        assert _bits(margins.exog_at) == medians
        results.append(_bits(margins.margeff) + _bits(margins.margeff_se))
    assert len(set(results)) == 1  # the same row: the same numbers, bit for bit


def test_crowded_cells_are_refined_and_ties_resolved_at_once(case, monkeypatch):
    """With cells of at most 3 values collected, the searches refine the histograms
    (``x1``) and resolve tied cells from their extremes (``x2``, ``d``, ``k``...)."""
    monkeypatch.setattr("shardfit.design.quantiles.COLLECT_LIMIT", 3)
    _, ours = case["fits"]["logit"]
    events: list[str] = []
    margins = ours.get_margeff(
        at="median",
        data=shardfit.from_pandas(case["frame"], 4),
        progress=lambda event: events.append(event.pass_name),
    )
    assert _bits(margins.exog_at) == _bits(np.median(case["X"].to_numpy(), axis=0))
    # One pass per level at most (three), not one per column; each reads 4 partitions.
    assert 4 <= events.count("medians") <= 12 and events.count("margeff") == 4


def test_median_with_atexog_matches_statsmodels(case):
    theirs, ours = case["fits"]["poisson"]
    margins = ours.get_margeff(at="median", atexog={"x2": 1.55}, data=case["frame"])
    reference = theirs.get_margeff(at="median", atexog={2: 1.55})
    medians = np.median(case["X"].assign(x2=1.55).to_numpy(), axis=0)
    assert _bits(margins.exog_at) == _bits(medians)
    np.testing.assert_allclose(margins.margeff, reference.margeff, rtol=RTOL)
    np.testing.assert_allclose(margins.margeff_se, reference.margeff_se, rtol=RTOL)


def test_median_with_dummy_or_count_is_refused_as_statsmodels(case):
    theirs, ours = case["fits"]["logit"]
    for option in ("dummy", "count"):
        with pytest.raises(ValueError, match="median not allowed for discrete"):
            theirs.get_margeff(at="median", **{option: True})
        with pytest.raises(ValueError, match="at='median' is not allowed with dummy"):
            ours.get_margeff(at="median", data=case["frame"], **{option: True})


@pytest.mark.parametrize("model", ["logit", "probit", "poisson"])
def test_all_in_memory_matches_statsmodels(case, model):
    theirs, ours = case["fits"][model]
    options = [{"method": method} for method in METHODS]
    options += [{"method": m, "dummy": True, "count": True} for m in ("dydx", "eydx")]
    options += [{"method": "dydx", "dummy": True}, {"method": "eydx", "count": True}]
    for option in options:
        margins = ours.get_margeff(at="all", data=case["frame"], **option)
        reference = theirs.get_margeff(at="all", **option)
        assert margins.margeff.shape == reference.margeff.shape == (len(case["X"]), 6)
        np.testing.assert_allclose(margins.margeff, reference.margeff, rtol=RTOL, atol=1e-300)
        assert list(margins.row_labels) == list(case["X"].index)  # row 7 dropped
        assert margins.margeff_se is None and margins.margeff_cov is None
        if option.get("dummy"):
            assert [NAMES[j] for j in margins.dummy_idx] == ["d", "C(g)[T.b]", "C(g)[T.c]"]
    # No inference per row, as statsmodels.
    with pytest.raises(ValueError, match="Only margeff are available"):
        reference.summary_frame()
    with pytest.raises(ValueError, match="Only margeff are available"):
        margins.summary_frame()


def test_all_out_writes_each_rows_effects(case, tmp_path):
    theirs, ours = case["fits"]["logit"]
    path = tmp_path / "rows.parquet"
    pq.write_table(
        pa.Table.from_pandas(case["frame"], preserve_index=False), path, row_group_size=50
    )
    out = tmp_path / "effects"
    written = ours.get_margeff(
        at="all", method="eydx", dummy=True, count=True, data=path, out=out, backend="serial"
    )
    assert isinstance(written, shardfit.PredictionOutput)
    assert written.columns == ("row", *(f"eydx_{name}" for name in NAMES[1:]))
    assert written.rows_written == len(case["X"]) and written.rows_dropped == {"missing": 1}
    frame = pd.read_parquet(out)
    assert list(frame["row"]) == list(case["X"].index)
    reference = theirs.get_margeff(at="all", method="eydx", dummy=True, count=True)
    np.testing.assert_allclose(frame.iloc[:, 1:].to_numpy(), reference.margeff, rtol=RTOL)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        ours.get_margeff(at="all", data=path, out=out, backend="serial")


def test_errors_are_clear(case, tmp_path):
    theirs, ours = case["fits"]["logit"]
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(case["frame"], preserve_index=False), path)
    with pytest.raises(ValueError, match=r"at='all'.*pass out="):
        ours.get_margeff(at="all", data=path, backend="serial")
    with pytest.raises(ValueError, match="not a valid option"):
        theirs.get_margeff(at="middle")
    with pytest.raises(ValueError, match=r"'at' parameter must be one of .*'median'.*'middle'"):
        ours.get_margeff(at="middle", data=case["frame"])
    with pytest.raises(ValueError, match="out= is for get_margeff"):
        ours.get_margeff(at="median", data=case["frame"], out=tmp_path / "x")
    with pytest.raises(ValueError, match="with_offset=True"):
        ours.get_margeff(at="all", data=case["frame"], with_offset=True)


def test_median_on_processes_backend(tmp_path):
    df = _frame(201)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=40)
    ours = shardfit.logit(FORMULA, df).fit(**FIT)
    X = _design(df)
    margins = ours.get_margeff(at="median", data=path, backend="processes", workers=2)
    serial = ours.get_margeff(at="median", data=df)
    assert _bits(margins.exog_at) == _bits(np.median(X.to_numpy(), axis=0))
    assert _bits(margins.margeff) == _bits(serial.margeff)
