"""The README's code blocks run as written and give the numbers it promises.

Each ```python block of README.md is found by a line that only it contains (so the
test follows the README when text around it moves), run with ``exec`` as a script
(``__name__ == "__main__"``) in ``tmp_path``, after a setup that writes the files the
block names (small generated data: a few thousand rows). Its variables are then
compared with an independent reference (statsmodels, scikit-learn, formulaic, NumPy).

Backend: the README's blocks leave ``backend`` out, so they run on the default
``processes`` backend. The first block (the headline WLS fit) runs that way, so the
guard the README asks for is exercised; the others run with the default set to
``serial`` (``shardfit.engine.backends.DEFAULT_BACKEND``, read on every call: the same
code, no worker start-up), or ``threads`` for the blocks that pass ``workers=2``,
which keeps the module under a minute on 2 cores. Results are bitwise the same on
every backend (tested in tests/engine).

Blocks not run here, and why:

* the profile's printed table (a ```` ``` ```` block of output, not code);
* the TOML search configuration runs below through ``shardfit search`` (``main``), with
  ``--backend serial --workers 1`` as the README's overrides (its ``workers = 2`` is
  refused by the serial backend);
* the Sumstats block needs JAX (the ``jax`` extra): skipped, with that reason, where
  JAX is not installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _python_blocks() -> list[tuple[int, str]]:
    """Every ```python block of the README, with the line its fence opens on."""
    text = README.read_text(encoding="utf-8")
    return [
        (text[: match.start()].count("\n") + 1, match.group(1))
        for match in re.finditer(r"```python\n(.*?)\n```", text, re.S)
    ]


def _block(marker: str) -> tuple[int, str]:
    """The one README python block containing ``marker``."""
    found = [(line, code) for line, code in _python_blocks() if marker in code]
    assert len(found) == 1, f"{len(found)} README python blocks contain {marker!r}"
    return found[0]


def _run(marker: str) -> dict[str, Any]:
    """Run the README block containing ``marker`` as a script; return its variables."""
    line, code = _block(marker)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(code, f"README.md:{line}", "exec"), namespace)
    return namespace


@pytest.fixture
def serial_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``backend=None`` mean ``serial`` for the blocks run in this test (why: see
    the module docstring)."""
    monkeypatch.setattr("shardfit.engine.backends.DEFAULT_BACKEND", "serial")


@pytest.fixture
def threads_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """For blocks that pass ``workers=2`` (the serial backend refuses 2 workers)."""
    monkeypatch.setattr("shardfit.engine.backends.DEFAULT_BACKEND", "threads")


def _linear_frame(rows: int, seed: int) -> pd.DataFrame:
    """y on x1, log(x2), a 4-level g, x1·x3 with weights w and 30 clusters firm."""
    rng = np.random.default_rng(seed)
    x1, x3, x4 = rng.normal(size=(3, rows))
    x2 = rng.uniform(0.5, 3.0, rows)
    g = rng.choice(list("abcd"), rows)
    w = rng.uniform(0.5, 2.0, rows)
    y = (
        1.0
        + 0.5 * x1
        - np.log(x2)
        + 0.3 * (g == "b")
        + 0.2 * x1 * x3
        + 0.1 * x4
        + rng.normal(size=rows) / np.sqrt(w)
    )
    firm = rng.integers(0, 30, rows)
    return pd.DataFrame(
        {"y": y, "x1": x1, "x2": x2, "x3": x3, "x4": x4, "g": g, "w": w, "firm": firm}
    )


def _binary_frame(rows: int, seed: int) -> pd.DataFrame:
    """A 0/1 y from a logistic model in x1, x2, x1·x2 and x3², plus a categorical g."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=(3, rows))
    eta = 0.2 + 0.5 * x1 - 0.4 * x2 + 0.3 * x1 * x2 - 0.2 * x3**2
    g = rng.choice(list("abc"), rows)
    y = (rng.uniform(size=rows) < 1.0 / (1.0 + np.exp(-eta))).astype(np.int64)
    return pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "g": g, "y": y})


def _write_parts(frames: list[pd.DataFrame], folder: Path, suffix: str = "parquet") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        path = folder / f"part{i}.{suffix}"
        if suffix == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)


def _read_parts(folder: Path) -> pd.DataFrame:
    return pd.concat(
        [pd.read_parquet(path) for path in sorted(folder.glob("*.parquet"))], ignore_index=True
    )


def test_wls_cluster_predict_save_on_processes(tmp_path, monkeypatch) -> None:
    """Linear models block: the default (processes) backend, as the README runs it."""
    import statsmodels.formula.api as smf

    import shardfit

    frames = [_linear_frame(2_000, seed) for seed in range(2)]
    _write_parts(frames, tmp_path / "data")
    _write_parts([_linear_frame(500, 9).drop(columns="y")], tmp_path / "new")
    monkeypatch.chdir(tmp_path)

    ns = _run('shardfit.wls("y ~ x1 + np.log(x2) + C(g) + x1:x3"')

    data = pd.concat(frames, ignore_index=True)
    reference = smf.wls("y ~ x1 + np.log(x2) + C(g) + x1:x3", data, weights=data["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": data["firm"]}
    )
    results = ns["results"]
    names = list(reference.params.index)
    np.testing.assert_allclose(results.params[names], reference.params, rtol=1e-9)
    np.testing.assert_allclose(results.bse[names], reference.bse, rtol=1e-9)
    # predict(out=) writes part files and a manifest; columns as the README lists them
    predicted = _read_parts(tmp_path / "preds")
    assert (tmp_path / "preds" / "_manifest.json").is_file()
    assert list(predicted.columns) == [
        "row", "predicted", "mean_se", "mean_ci_lower", "mean_ci_upper",
        "obs_ci_lower", "obs_ci_upper",
    ]  # fmt: skip
    new = pd.read_parquet(tmp_path / "new" / "part0.parquet")
    frame = reference.get_prediction(new).summary_frame(alpha=0.05)
    np.testing.assert_allclose(predicted["predicted"], frame["mean"], rtol=1e-9)
    np.testing.assert_allclose(predicted["obs_ci_upper"], frame["obs_ci_upper"], rtol=1e-9)
    loaded = shardfit.load_results("fit.json")
    np.testing.assert_array_equal(loaded.params, results.params)
    assert json.loads(Path("fit.json").read_text(encoding="utf-8"))  # JSON, not pickle


def test_glm_logit_predict_resid_poisson(tmp_path, monkeypatch, serial_default) -> None:
    import statsmodels.api as sm
    import statsmodels.formula.api as smf

    frames = [_binary_frame(3_000, seed) for seed in range(2)]
    _write_parts(frames, tmp_path / "data")
    new = _binary_frame(400, 7).drop(columns="y")
    _write_parts([new], tmp_path / "new")
    rng = np.random.default_rng(3)
    policies = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, 3_000),
            "region": rng.choice(["n", "s", "e", "w"], 3_000),
            "years": rng.uniform(0.5, 3.0, 3_000),
        }
    )
    eta = -2.0 + 0.01 * policies["age"] + 0.2 * (policies["region"] == "s")
    policies["claims"] = rng.poisson(policies["years"] * np.exp(eta))
    policies.to_csv(tmp_path / "policies.csv", index=False)
    monkeypatch.chdir(tmp_path)

    # the block's last line fits and drops the Poisson result: fit it again to compare
    ns = _run('shardfit.logit("y ~ x1 * x2 + I(x3**2)", "data/*.parquet")')

    data = pd.concat(frames, ignore_index=True)
    reference = smf.glm("y ~ x1 * x2 + I(x3**2)", data, family=sm.families.Binomial()).fit()
    fit = ns["fit"]
    # formulaic names I(x3**2) as 'I(x3 ** 2)' and orders it before x1:x2: compare by value
    np.testing.assert_allclose(
        fit.params[["Intercept", "x1", "x2", "x1:x2"]],
        reference.params[["Intercept", "x1", "x2", "x1:x2"]],
        rtol=1e-7,
    )
    np.testing.assert_allclose(fit.params["I(x3 ** 2)"], reference.params["I(x3 ** 2)"], rtol=1e-7)
    np.testing.assert_allclose(fit.llf, reference.llf, rtol=1e-10)
    probabilities = _read_parts(tmp_path / "probabilities")
    expected = reference.get_prediction(new).summary_frame()
    np.testing.assert_allclose(probabilities["predicted"], expected["mean"], rtol=1e-9)
    np.testing.assert_allclose(probabilities["mean_se"], expected["mean_se"], rtol=1e-7)
    deviance = _read_parts(tmp_path / "deviance")
    # part files in partition order, rows in data order: statsmodels' resid_deviance
    np.testing.assert_allclose(
        deviance["resid_deviance"].to_numpy(), reference.resid_deviance, rtol=1e-8
    )

    import shardfit

    poisson = shardfit.poisson("claims ~ age + C(region)", "policies.csv", exposure="years").fit()
    counts = pd.read_csv(tmp_path / "policies.csv")
    expected = smf.glm(
        "claims ~ age + C(region)", counts, family=sm.families.Poisson(), exposure=counts["years"]
    ).fit()
    np.testing.assert_allclose(poisson.params[expected.params.index], expected.params, rtol=1e-8)


def test_elastic_net_and_distributed_model(tmp_path, monkeypatch, serial_default) -> None:
    from formulaic import model_matrix
    from statsmodels.base.distributed_estimation import DistributedModel

    _write_parts([_linear_frame(2_000, seed) for seed in range(2)], tmp_path / "data")
    small = _linear_frame(1_600, 11)
    small.to_parquet(tmp_path / "small.parquet", index=False)
    monkeypatch.chdir(tmp_path)

    # the per-partition lasso fits stop at maxiter=50, as statsmodels' do: the README says
    # shardfit warns once, naming the partitions
    with pytest.warns(UserWarning, match="did not converge in maxiter=50"):
        ns = _run("shardfit.elastic_net(")

    enet = ns["enet"]
    assert enet.alpha_ > 0
    assert list(enet.params.index)[:3] == ["Intercept", "x1", "x2"]
    # "moving over is a change of import": statsmodels' DistributedModel on the same 8
    # slices of formulaic's design gives the same estimate
    y, X = model_matrix("y ~ x1 + x2 + C(g)", small)
    y, X = np.asarray(y).ravel(), np.asarray(X)
    rows = len(y) // 8

    def pieces():
        for k in range(8):
            yield y[k * rows : (k + 1) * rows], X[k * rows : (k + 1) * rows]

    reference = DistributedModel(8).fit(pieces(), fit_kwds={"alpha": 0.05})
    np.testing.assert_allclose(np.asarray(ns["debiased"].params), reference.params, atol=1e-10)


def test_search_configuration_and_best(tmp_path, monkeypatch, capsys) -> None:
    """The TOML block through ``shardfit search``, then ``shardfit best -n 5 --json``."""
    from shardfit.cli.main import main

    # 2 batches of the configuration's batch_rows = 10000: scoring starts after the first
    _write_parts([_binary_frame(10_000, seed) for seed in range(2)], tmp_path / "clicks")
    text = README.read_text(encoding="utf-8")
    (config,) = re.findall(r"```toml\n(.*?)\n```", text, re.S)
    (tmp_path / "search.toml").write_text(config + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    assert (
        main(["search", "search.toml", "--backend", "serial", "--workers", "1", "--no-progress"])
        == 0
    )
    capsys.readouterr()
    assert main(["best", "models.db", "-n", "5", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    best = [json.loads(line) for line in lines]
    assert len(best) == 5  # 8 configurations: 2 column sets x 2 degrees x 2 alphas
    scores = [row["score"] for row in best]
    assert scores == sorted(scores)  # log-loss: lower is better
    for row in best:
        assert row["rows"] == 20_000
        np.testing.assert_allclose(
            row["improvement"], (row["benchmark"] - row["score"]) / row["benchmark"], rtol=1e-12
        )


def test_stream_fit(tmp_path, monkeypatch) -> None:
    _write_parts([_binary_frame(10_000, seed) for seed in range(2)], tmp_path / "clicks")
    monkeypatch.chdir(tmp_path)

    ns = _run("shardfit.stream_fit(")

    fitted = ns["fitted"]
    y = pd.concat([pd.read_parquet(p) for p in sorted(Path("clicks").glob("*.parquet"))])["y"]
    assert fitted.score < fitted.benchmark_score < np.log(2)  # better than the running mean
    np.testing.assert_allclose(
        fitted.improvement,
        (fitted.benchmark_score - fitted.score) / fitted.benchmark_score,
        rtol=1e-12,
    )
    assert 0.3 < y.mean() < 0.7


def test_svd_pca(tmp_path, monkeypatch, serial_default) -> None:
    from formulaic import model_matrix

    import shardfit

    rng = np.random.default_rng(5)
    frames = []
    for _ in range(2):
        a, b, c, d = rng.normal(size=(4, 2_000))
        frames.append(
            pd.DataFrame(
                {"a": a, "b": b + a, "c": c, "d": d, "cat1": rng.choice(list("pqr"), 2_000)}
            )
        )
    _write_parts(frames, tmp_path / "big")
    monkeypatch.chdir(tmp_path)

    ns = _run("shardfit.svd(formula")

    pca = ns["pca"]
    design = model_matrix(ns["formula"], pd.concat(frames, ignore_index=True))
    centred = np.asarray(design) - np.asarray(design).mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    np.testing.assert_allclose(pca.singular_values[:-1], singular[:-1], rtol=1e-12)
    # all dummies of cat1 with no intercept sum to 1: constant once centred, rank p - 1
    assert pca.rank == centred.shape[1] - 1
    assert next(iter(pca.null_columns().values())) == [f"C(cat1)[{x}]" for x in "pqr"]
    scores = _read_parts(tmp_path / "scores")
    assert [c for c in scores.columns if c.startswith("PC")] == ["PC1", "PC2", "PC3"]
    loaded = shardfit.load_results("pca.json")
    np.testing.assert_array_equal(loaded.singular_values, pca.singular_values)


def test_profile(tmp_path, monkeypatch, threads_default) -> None:
    import statsmodels.formula.api as smf

    import shardfit

    # the README's file name; 20,000 rows in 4 row groups instead of 1M
    shardfit.simulate("logit", 20_000, tmp_path / "logit-1000000-seed0.parquet", chunk_rows=5_000)
    monkeypatch.chdir(tmp_path)

    ns = _run("with shardfit.profile() as prof:")

    prof, fit = ns["prof"], ns["fit"]
    frame = prof.to_frame()
    assert set(frame["rows"].groupby(frame["pass_index"]).sum()) == {20_000}  # every pass
    assert len(prof.passes) == frame["pass_index"].nunique() == fit.iterations + 1
    saved = json.loads(Path("profile.json").read_text(encoding="utf-8"))
    assert saved
    data = pd.read_parquet("logit-1000000-seed0.parquet")
    reference = smf.logit(ns["formula"], data).fit(disp=0)
    np.testing.assert_allclose(fit.params, reference.params[fit.params.index], rtol=1e-7)


def test_stacking_ensemble(threads_default) -> None:
    from sklearn.model_selection import cross_val_predict

    ns = _run("shardfit.StackingEnsembleClassifier(")

    model, X, y = ns["model"], ns["X"], ns["y"]
    proba = model.predict_proba(X[:3])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert 0.8 < model.score(X, y) <= 1.0
    # "two layers equal the stack built by hand with cross_val_predict"
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    first = [LogisticRegression(), DecisionTreeClassifier(random_state=0)]
    layer1 = np.hstack(
        [cross_val_predict(e, X, y, cv=cv, method="predict_proba")[:, 1:] for e in first]
    )
    features1 = np.hstack([layer1, X])  # passthrough=True: each layer's output, then X
    knn = KNeighborsClassifier(n_neighbors=15)
    layer2 = cross_val_predict(knn, features1, y, cv=cv, method="predict_proba")[:, 1:]
    final = LogisticRegression().fit(np.hstack([layer2, X]), y)
    test1 = np.hstack([clone(e).fit(X, y).predict_proba(X[:3])[:, 1:] for e in first] + [X[:3]])
    test2 = clone(knn).fit(features1, y).predict_proba(test1)[:, 1:]
    np.testing.assert_allclose(proba, final.predict_proba(np.hstack([test2, X[:3]])), atol=1e-12)


def test_sumstats_normal(tmp_path, monkeypatch) -> None:
    pytest.importorskip("jax", reason="the Sumstats block needs the 'jax' extra")
    import shardfit

    monkeypatch.chdir(tmp_path)
    ns = _run("class Normal(shardfit.SumstatsModel):")  # passes backend="serial" itself

    x = ns["frame"]["x"].to_numpy()
    params = ns["result"].params_dict
    assert ns["result"].converged
    np.testing.assert_allclose(params["mu"], x.mean(), rtol=1e-7)
    np.testing.assert_allclose(params["log_sigma"], np.log(x.std()), rtol=1e-7)
    loss, grad = ns["loss"], ns["grad"]
    n, ss = len(x), np.sum(x**2)
    np.testing.assert_allclose(loss, 0.5 * ss + 0.5 * np.log(2 * np.pi) * n, rtol=1e-12)
    np.testing.assert_allclose(grad, [-x.sum(), n - ss], rtol=1e-12)
    assert np.all(np.abs(np.asarray(ns["best"]) - [x.mean(), np.log(x.std())]) < [1.0, 0.5])
    loaded = shardfit.SumstatsFitResult.load("normal.json")
    assert loaded.params_dict == params


def test_dmatrices_from_csv(tmp_path, monkeypatch, serial_default) -> None:
    from formulaic import model_matrix

    frames = [_linear_frame(1_500, seed) for seed in range(2)]
    _write_parts(frames, tmp_path / "data", suffix="csv")
    monkeypatch.chdir(tmp_path)

    ns = _run("shardfit.dmatrices(")

    data = pd.concat(frames, ignore_index=True)
    reference = model_matrix("y ~ x1 + np.log(x2) + C(g) + x1:x3 + scale(x4)", data)
    np.testing.assert_allclose(ns["y"].to_numpy(), data["y"].to_numpy(), rtol=1e-15)
    assert list(ns["X"].columns) == list(reference.rhs.columns)
    np.testing.assert_allclose(ns["X"].to_numpy(), np.asarray(reference.rhs), rtol=1e-12)


def test_write_design_then_ols(tmp_path, monkeypatch, serial_default) -> None:
    import statsmodels.formula.api as smf

    import shardfit

    frames = [_linear_frame(1_500, seed) for seed in range(2)]
    _write_parts(frames, tmp_path / "data", suffix="csv")
    monkeypatch.chdir(tmp_path)

    ns = _run("shardfit.write_design(")

    data = pd.concat(frames, ignore_index=True)
    reference = smf.ols("y ~ x1 + np.log(x2) + C(g) + x1:x3", data).fit()
    fit = ns["fit"]
    np.testing.assert_allclose(fit.params[reference.params.index], reference.params, rtol=1e-10)
    np.testing.assert_allclose(fit.bse[reference.params.index], reference.bse, rtol=1e-10)
    reopened = shardfit.open_design("design/")
    assert reopened.rows_written == len(data)
