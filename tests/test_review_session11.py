"""Review of the design store, weighted streaming, weighted stacking and convert's
dialects (session 11): each case against scikit-learn, statsmodels, NumPy or pandas."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from sklearn.linear_model import Ridge, SGDClassifier, SGDRegressor
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

import shardfit
from shardfit import FTRLClassifier, HashingFeaturizer, stream_fit
from shardfit.data.simulate import simulate_table
from shardfit.errors import DesignError, ReadError

BATCH = 200


# --- weighted streaming ------------------------------------------------------------


@pytest.fixture(scope="module")
def stream_frame() -> pd.DataFrame:
    data = simulate_table("logit", 2_000, seed=3).to_pandas()
    rng = np.random.default_rng(5)
    data["w"] = rng.choice([0.5, 1.0, 3.0], size=len(data))
    data["yr"] = 2.0 * data["x1"] + rng.normal(size=len(data))
    data.loc[: BATCH - 1, "w"] = 0.0  # the first batch has no weight
    data.loc[3 * BATCH : 4 * BATCH - 1, "w"] = 0.0  # nor has batch 3
    in_five = (data.index >= 5 * BATCH) & (data.index < 6 * BATCH)
    data.loc[in_five & (data["y"] == 1), "w"] = 0.0  # batch 5: no positive weight
    return data


def _replay(model, frame, featurizer, target, classifier):
    """Learn and score batch by batch as progressive validation does, with scikit-learn's
    weighted metrics; a batch without weight is not learned (partial_fit refuses it) and
    nothing is scored before the first batch of non-zero weight was learned."""
    X, y, w = featurizer.transform(frame), frame[target].to_numpy(), frame["w"].to_numpy()
    rows, learned = [], False
    for b, start in enumerate(range(0, len(frame), BATCH)):
        part = slice(start, start + BATCH)
        yb, wb = y[part], w[part]
        if b and learned:
            if wb.sum() > 0:
                mean = np.average(y[:start], weights=w[:start])
                bench = np.full(len(yb), mean)
                if classifier:
                    p = model.predict_proba(X[part])[:, 1]
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # one class of weight: NaN
                        auc = roc_auc_score(yb, p, sample_weight=wb)
                        bench_auc = roc_auc_score(yb, bench, sample_weight=wb)
                    row = {
                        "log_loss": log_loss(yb, p, sample_weight=wb, labels=[0, 1]),
                        "accuracy": accuracy_score(yb, (p >= 0.5).astype(int), sample_weight=wb),
                        "auc": auc,
                        "benchmark_log_loss": log_loss(yb, bench, sample_weight=wb, labels=[0, 1]),
                        "benchmark_auc": bench_auc,
                        "benchmark_accuracy": accuracy_score(
                            yb, (bench >= 0.5).astype(int), sample_weight=wb
                        ),
                    }
                else:
                    p = model.predict(X[part])
                    row = {
                        "squared_error": np.average((p - yb) ** 2, weights=wb),
                        "benchmark_squared_error": np.average((bench - yb) ** 2, weights=wb),
                    }
            else:
                row = {}
            rows.append({"batch": b, "weight": wb.sum(), **row})
        if wb.any():
            extra = {"classes": [0, 1]} if classifier else {}
            model.partial_fit(X[part], yb, sample_weight=wb, **extra)
            learned = True
    return pd.DataFrame(rows).set_index("batch")


def _weighted_mean(expected: pd.DataFrame, name: str) -> float:
    ok = expected[name].notna() & (expected["weight"] > 0)
    return float(np.average(expected.loc[ok, name], weights=expected.loc[ok, "weight"]))


def test_weighted_stream_with_batches_of_zero_weight_equals_a_replay(stream_frame) -> None:
    # Before: scikit-learn's partial_fit refused the batch of zero weight ("Sample
    # weights must contain at least one non-zero number") and stream_fit crashed.
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**10, degree=1)

    def model() -> SGDClassifier:
        return SGDClassifier(loss="log_loss", random_state=0, learning_rate="adaptive", eta0=0.01)

    result = stream_fit(
        model(), featurizer, stream_frame, target="y", weights="w", batch_rows=BATCH, drop=0.0
    )
    expected = _replay(model(), stream_frame, featurizer, "y", classifier=True)
    curve = result.curve.set_index("batch").loc[expected.index]
    for name in ("log_loss", "accuracy", "auc", "benchmark_log_loss", "benchmark_auc"):
        np.testing.assert_allclose(curve[name], expected[name], rtol=1e-11, err_msg=name)
    assert result.curve.set_index("batch").loc[1, ["log_loss", "benchmark_log_loss"]].isna().all()
    for name in ("log_loss", "accuracy", "auc"):
        assert result.scores[name] == pytest.approx(_weighted_mean(expected, name), rel=1e-11)
        bench = _weighted_mean(expected, f"benchmark_{name}")
        assert result.benchmark_scores[name] == pytest.approx(bench, rel=1e-11)


def test_weighted_regressor_stream_with_a_leading_zero_weight_batch(stream_frame) -> None:
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**10, degree=1)
    result = stream_fit(
        SGDRegressor(random_state=0), featurizer, stream_frame, target="yr", weights="w",
        batch_rows=BATCH, drop=0.0,
    )  # fmt: skip
    expected = _replay(SGDRegressor(random_state=0), stream_frame, featurizer, "yr", False)
    curve = result.curve.set_index("batch").loc[expected.index]
    for name in ("squared_error", "benchmark_squared_error"):
        np.testing.assert_allclose(curve[name], expected[name], rtol=1e-11, err_msg=name)
    # Before: the benchmark of batch 1 (no weight before it) was NaN and made the
    # benchmark's squared error NaN for the whole stream.
    bench = _weighted_mean(expected, "benchmark_squared_error")
    assert result.benchmark_score == pytest.approx(bench, rel=1e-11)
    assert result.score == pytest.approx(_weighted_mean(expected, "squared_error"), rel=1e-11)


def test_ftrl_stream_scores_from_the_first_weighted_batch(stream_frame) -> None:
    # The fast path (progressive_fit) learns the rows of zero weight as nothing: its
    # curve, scores and benchmark are those of the replay, with the benchmark's AUC NaN
    # where no positive row has weight (roc_auc_score's NaN; it was 0.5).
    featurizer = HashingFeaturizer(["x1", "x2"], n_features=2**10, degree=1)
    result = stream_fit(
        FTRLClassifier(), featurizer, stream_frame, target="y", weights="w", batch_rows=BATCH,
        drop=0.0,
    )  # fmt: skip
    expected = _replay(FTRLClassifier(), stream_frame, featurizer, "y", classifier=True)
    curve = result.curve.set_index("batch").loc[expected.index]
    for name in ("log_loss", "auc", "benchmark_log_loss", "benchmark_auc"):
        np.testing.assert_allclose(curve[name], expected[name], rtol=1e-11, err_msg=name)
    assert np.isnan(curve.loc[5, "benchmark_auc"]) and np.isnan(curve.loc[5, "auc"])
    bench = _weighted_mean(expected, "benchmark_log_loss")
    assert result.benchmark_scores["log_loss"] == pytest.approx(bench, rel=1e-11)
    assert result.improvement == pytest.approx(
        (result.benchmark_score - result.score) / result.benchmark_score, rel=1e-12
    )


# --- the design store ----------------------------------------------------------------


@pytest.fixture(scope="module")
def store_data(tmp_path_factory) -> tuple[pd.DataFrame, str]:
    rng = np.random.default_rng(11)
    n = 400
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.choice(["a", "b", "c"], n),
            "cl": rng.integers(0, 20, n),
        }
    )
    frame.loc[n - 15 :, "g"] = "d"  # a level only the last partition has
    eta = 0.3 + frame["x"] + 0.5 * (frame["g"] == "b")
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    frame.loc[[3, 150], "x"] = np.nan  # dropped rows, counted
    folder = tmp_path_factory.mktemp("store_data")
    for i in range(4):
        frame.iloc[i * 100 : (i + 1) * 100].to_csv(folder / f"p{i}.csv", index=False)
    return frame, str(folder / "p*.csv")


def test_a_store_fits_a_logit_and_ols_as_statsmodels_and_refuses_clusters_clearly(
    store_data, tmp_path
) -> None:
    import statsmodels.api as sm

    frame, files = store_data
    formula = "y ~ 0 + x + C(g)"
    store = shardfit.write_design(formula, files, tmp_path / "s", backend="serial")
    assert store.rows_dropped == {"missing": 2} and store.rows_written == 398
    logit = shardfit.GLM(store.y, store.X, "binomial").fit(backend="serial")
    expected = smf.glm(formula, frame, family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(logit.params[expected.params.index], expected.params, rtol=1e-9)
    np.testing.assert_allclose(logit.bse[expected.params.index], expected.bse, rtol=1e-8)
    for name in ("df_model", "df_resid", "deviance", "null_deviance", "llf", "llnull"):
        assert getattr(logit, name) == pytest.approx(getattr(expected, name), rel=1e-10), name
    # The rows the store dropped are the fit's (before: 398 read, none dropped).
    missing = int(frame[["x", "y"]].isna().any(axis=1).sum())
    assert (logit.rows_read, logit.rows_dropped) == (len(frame), {"missing": missing})
    ols = shardfit.OLS(store.y, store.X).fit(backend="serial", cov_type="HC1")
    reference = smf.ols(formula, frame).fit(cov_type="HC1")
    for name in ("rsquared", "rsquared_adj", "df_model", "fvalue"):
        expected_value = pytest.approx(getattr(reference, name), rel=1e-10, nan_ok=True)
        assert getattr(ols, name) == expected_value, name
    np.testing.assert_allclose(ols.bse[reference.bse.index], reference.bse, rtol=1e-9)
    assert (ols.rows_read, ols.rows_dropped, ols.nobs) == (400, {"missing": 2}, reference.nobs)
    # Before: "columns ['cl'] are not in '4 Parquet files'", as if the data lacked it.
    for model in (shardfit.OLS(store.y, store.X), shardfit.GLM(store.y, store.X, "binomial")):
        with pytest.raises(DesignError, match=r"design store .* does not hold 'cl'.*formula"):
            model.fit(backend="serial", cov_type="cluster", cov_kwds={"groups": "cl"})


def test_a_damaged_manifest_is_refused_naming_it(store_data, tmp_path) -> None:
    import shutil

    frame, files = store_data
    store = shardfit.write_design("y ~ x + C(g)", files, tmp_path / "s", backend="serial")
    moved = tmp_path / "moved"
    shutil.move(str(store.path), moved)  # a store is relative to its folder
    fit = shardfit.OLS(*(lambda s: (s.y, s.X))(shardfit.open_design(moved))).fit(backend="serial")
    expected = smf.ols("y ~ x + C(g)", frame).fit()
    np.testing.assert_allclose(fit.params[expected.params.index], expected.params, rtol=1e-10)
    manifest = moved / "_design.json"
    text = manifest.read_text()
    # Before: json.JSONDecodeError, KeyError and AttributeError, naming no file; and a
    # manifest whose rows disagree with the parts opened as a store of 5 rows.
    damaged = {
        "truncated": text[: len(text) // 2],
        "no spec": json.dumps({k: v for k, v in json.loads(text).items() if k != "spec"}),
        "a list": "[1, 2]",
        "wrong rows": json.dumps({**json.loads(text), "rows_written": 5}),
    }
    for content in damaged.values():
        manifest.write_text(content)
        with pytest.raises(ReadError, match=r"_design\.json"):
            shardfit.open_design(moved)
        manifest.write_text(text)
    assert shardfit.open_design(moved).X.shape == (398, 5)
    part = moved / "part-00002.parquet"
    part.write_bytes(part.read_bytes()[:100])  # truncated: its footer is gone
    with pytest.raises(ReadError, match=r"part-00002\.parquet .*damaged"):
        shardfit.open_design(moved)


# --- stacking with sample weights ------------------------------------------------------


def test_weighted_stacking_regressor_equals_scikit_learn_and_refuses_zero_weights() -> None:
    from sklearn.datasets import make_regression
    from sklearn.ensemble import StackingRegressor
    from sklearn.linear_model import LinearRegression
    from sklearn.model_selection import KFold
    from sklearn.tree import DecisionTreeRegressor

    X, y = make_regression(120, 4, noise=5.0, random_state=0)
    w = np.random.default_rng(0).uniform(0, 3, 120)
    w[:15] = 0.0
    layer = [("ridge", Ridge()), ("tree", DecisionTreeRegressor(max_depth=3, random_state=0))]
    cv = KFold(4, shuffle=True, random_state=0)
    ours = shardfit.StackingEnsembleRegressor(
        [layer], cv=cv, final_estimator=LinearRegression(), backend="serial"
    ).fit(X, y, sample_weight=w)
    theirs = StackingRegressor(layer, final_estimator=LinearRegression(), cv=cv)
    theirs.fit(X, y, sample_weight=w)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12)
    # Before: every fold's fit failed, was retried, and a PartitionTaskError came back.
    message = "at least one non-zero number"
    with pytest.raises(ValueError, match=message):
        StackingRegressor(layer, cv=cv).fit(X, y, sample_weight=np.zeros(120))
    with pytest.raises(ValueError, match=message):
        shardfit.StackingEnsembleRegressor([layer], cv=cv, backend="serial").fit(
            X, y, sample_weight=np.zeros(120)
        )


def test_new_data_without_the_response_is_encoded_to_predict_as_statsmodels(
    store_data, tmp_path
) -> None:
    frame, files = store_data
    formula = "np.log(y + 10) ~ x + C(g)"
    store = shardfit.write_design(formula, files, tmp_path / "s", backend="serial")
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    new = frame.drop(columns="y").iloc[::7].reset_index(drop=True)
    new.loc[2, "x"] = np.nan
    # Before: "unknown column 'y'": new data had to carry a response to be encoded.
    scored = shardfit.write_design(formula, new, tmp_path / "n", spec=store.spec, backend="serial")
    assert scored.rows_dropped == {"missing": 1}
    assert not shardfit.open_design(scored.path).has_response
    X = scored.X.to_pandas()
    expected = smf.ols(formula, frame).fit().predict(new)
    assert len(X) == new["x"].notna().sum()  # rows missing x are dropped and counted
    np.testing.assert_allclose(fit.predict(X), expected[X.index], rtol=1e-12)
    with pytest.raises(DesignError, match=r"holds no response .*\['y'\]"):
        shardfit.OLS(scored.y, scored.X)


def test_cli_fit_of_a_store_with_family_hc1_and_out_and_refused_options(
    store_data, tmp_path, capsys
) -> None:
    import statsmodels.api as sm

    from shardfit.cli.main import main
    from shardfit.results.io import load_results

    frame, files = store_data
    store = tmp_path / "store"
    assert main(["design", files, "y ~ x + C(g)", "--out", str(store), "--backend", "serial"]) == 0
    saved = tmp_path / "logit.json"
    argv = ["fit", str(store), "--family", "binomial", "--cov", "HC1", "--out", str(saved)]
    assert main([*argv, "--backend", "serial"]) == 0
    result = load_results(saved)
    expected = smf.glm("y ~ x + C(g)", frame, family=sm.families.Binomial()).fit(cov_type="HC1")
    names = list(result.params.index)
    np.testing.assert_allclose(result.params, expected.params[names], rtol=1e-9)
    np.testing.assert_allclose(result.bse, expected.bse[names], rtol=1e-8)
    capsys.readouterr()
    # Before: --partition-rows and --column-type were silently ignored for a store.
    for option in (["--partition-rows", "50"], ["--column-type", "x=float64"]):
        assert main(["fit", str(store), *option, "--backend", "serial"]) == 2
        assert f"{option[0]}: a design store is read as written" in capsys.readouterr().err
    assert main(["fit", str(store), "--cov", "cluster:cl", "--backend", "serial"]) == 2
    assert "does not hold 'cl'" in capsys.readouterr().err


def test_a_store_with_exposure_fits_poisson_as_statsmodels_and_refuses_exposure_of_it(
    tmp_path,
) -> None:
    import statsmodels.api as sm

    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"x": rng.normal(size=300), "t": rng.uniform(1, 3, 300)})
    frame["c"] = rng.poisson(frame["t"] * np.exp(0.2 + 0.5 * frame["x"]))
    store = shardfit.write_design("c ~ x", frame, tmp_path / "s", exposure="t", backend="serial")
    expected = smf.glm("c ~ x", frame, family=sm.families.Poisson(), exposure=frame["t"]).fit()
    fit = shardfit.GLM(store.y, store.X, "poisson", offset=store.offset).fit(backend="serial")
    np.testing.assert_allclose(fit.params[expected.params.index], expected.params, rtol=1e-10)
    # Before: exposure=store.offset was dropped without a word (intercept 0.877 for 0.176).
    with pytest.raises(DesignError, match=r"pass it as offset=store\.offset"):
        shardfit.GLM(store.y, store.X, "poisson", exposure=store.offset)
    # Before: any stored column given as offset= fitted the store's offset instead.
    as_offset = shardfit.GLM(store.y, store.X, "poisson", offset=store.y).fit(backend="serial")
    reference = smf.glm("c ~ x", frame, family=sm.families.Poisson(), offset=frame["c"]).fit()
    np.testing.assert_allclose(
        as_offset.params[reference.params.index], reference.params, rtol=1e-9
    )


def test_unseen_levels_in_new_data_as_the_error_suggests(store_data, tmp_path) -> None:
    from shardfit.errors import MissingDataError, UnseenLevelError

    frame, files = store_data
    formula = "y ~ x + C(g)"
    store = shardfit.write_design(formula, files, tmp_path / "s", backend="serial")
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    new = pd.DataFrame({"x": [0.5, -1.0], "y": [1.0, 0.0], "g": ["zz", "b"]})
    with pytest.raises(UnseenLevelError, match="unseen='zero'"):
        shardfit.write_design(formula, new, tmp_path / "n", spec=store.spec, backend="serial")
    assert list((tmp_path / "n").iterdir()) == []  # nothing written
    # Before: write_design had no unseen= (the error's advice could not be followed).
    scored = shardfit.write_design(
        formula, new, tmp_path / "n", spec=store.spec, unseen="zero", backend="serial"
    )
    params = smf.ols(formula, frame).fit().params
    expected = [
        params["Intercept"] + 0.5 * params["x"],  # no level: every dummy 0
        params["Intercept"] - 1.0 * params["x"] + params["C(g)[T.b]"],
    ]
    np.testing.assert_allclose(fit.predict(scored.X.to_pandas()), expected, rtol=1e-10)
    with pytest.raises(MissingDataError):
        bad = frame.assign(x=np.nan)
        shardfit.write_design(formula, bad, tmp_path / "m", missing="raise", backend="serial")
    assert list((tmp_path / "m").iterdir()) == []


def test_a_store_fitted_model_given_raw_data_says_how_to_encode_it(tmp_path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=80), "g": rng.choice(["a", "b"], size=80)})
    frame["y"] = frame.x + (frame.g == "b") + rng.normal(size=80)
    store = shardfit.write_design("y ~ x + C(g)", frame, tmp_path / "s", backend="serial")
    fit = shardfit.OLS(store.y, store.X).fit(backend="serial")
    with pytest.raises(shardfit.DesignError, match=r"lacks \['Intercept', 'C\(g\)\[T\.b\]'\]"):
        fit.predict(frame)
    new = shardfit.write_design(
        "y ~ x + C(g)", frame.iloc[:10], tmp_path / "n", spec=store.spec, backend="serial"
    )
    expected = smf.ols("y ~ x + C(g)", frame).fit().predict(frame.iloc[:10])
    got = np.asarray(fit.predict(new.X.to_pandas()))
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-12)
