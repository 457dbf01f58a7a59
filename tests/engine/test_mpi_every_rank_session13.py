"""Every public call returns the same result on every MPI rank, under a real ``mpiexec``.

Under MPI every rank runs the user's script, so a call whose result the script uses
must give it to every rank, not only to rank 0: a stacked ensemble's fit and parallel
predict, linear predict (in memory and written to files), elastic-net and distributed
predict, SVD scores, and writing a design store. One ``mpiexec -n 2`` run holds every
check (each rank writes what it got to a file); each test compares every rank's
result with an independent reference computed here (scikit-learn, statsmodels,
NumPy). Also: predict chooses the default backend for out-of-core data (a Source of
Parquet files), and a missing column is named in predict's error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shardfit.engine._testing import run_mpiexec_script

pytest.importorskip("mpi4py", reason="the mpi extra is not installed")

MPIEXEC = Path(sys.executable).parent / "mpiexec"
RANKS = 2
N = 240

SCRIPT = """
import json
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from mpi4py import MPI
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.tree import DecisionTreeClassifier

import shardfit
from shardfit.models import ensemble_jobs
from shardfit.models.distributed import DistributedModel
from shardfit.models.ensemble import StackingEnsembleClassifier
from shardfit.results.prediction_output import MANIFEST

warnings.simplefilter("ignore")
folder = Path(sys.argv[1])
comm = MPI.COMM_WORLD
frame = pd.read_parquet(folder / "frame.parquet")
X = np.load(folder / "X.npy")
labels = np.load(folder / "labels.npy")
report = {}


def check(name, fn):
    # An error is recorded, not raised: the later checks still run, in step on every
    # rank (a call that fails on one rank only fails its test).
    try:
        report[name] = fn()
    except Exception as error:
        report[name] = {"error": f"{type(error).__name__}: {error}", "tb": traceback.format_exc()}


def ensemble():
    # Small blocks, so that predict runs as a pass over several row blocks.
    ensemble_jobs.PREDICT_BLOCK_BYTES = 8 * X.shape[1] * 50
    model = StackingEnsembleClassifier(
        [("lr", LogisticRegression(max_iter=1000)),
         ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))],
        final_estimator=LogisticRegression(max_iter=1000),
        cv=StratifiedKFold(3),
        backend="mpi",
    ).fit(X, labels)
    return {"proba": model.predict_proba(X).tolist(), "classes": model.classes_.tolist()}


def ols():
    fit = shardfit.ols("y ~ x1 + x2", frame).fit(backend="mpi")
    predicted = fit.predict(frame, backend="mpi")
    prediction = fit.get_prediction(frame, backend="mpi")
    return {"predicted": np.asarray(predicted).tolist(), "se": prediction.se_mean.tolist()}


def predict_out():
    fit = shardfit.ols("y ~ x1 + x2", frame).fit(backend="mpi")
    out = folder / "predictions"
    written = fit.predict(frame, out=out, backend="mpi")
    manifest = (out / MANIFEST).is_file()  # right after the call, on every rank
    table = pd.concat([pd.read_parquet(out / name) for name in written.files])
    return {
        "rows_read": written.rows_read,
        "rows_written": written.rows_written,
        "manifest": manifest,
        "row": table["row"].tolist(),
        "predicted": table["predicted"].tolist(),
    }


def enet():
    fit = shardfit.elastic_net("y ~ x1 + x2", frame, alpha=0.05, backend="mpi")
    return {"predicted": np.asarray(fit.predict(frame, backend="mpi")).tolist()}


def distributed():
    data = shardfit.from_pandas(frame, npartitions=2)
    model = DistributedModel(2, formula="y ~ x1 + x2", method="average", alpha=0.0)
    fit = model.fit(data, backend="mpi")
    return {"predicted": np.asarray(fit.predict(frame, backend="mpi")).tolist()}


def scores():
    fit = shardfit.svd("0 + x1 + x2", frame, center=True, backend="mpi")
    return {"scores": fit.transform(frame, backend="mpi").to_numpy().tolist()}


def store():
    data = shardfit.from_pandas(frame, npartitions=3)
    written = shardfit.write_design("y ~ x1 + x2", data, folder / "store", backend="mpi")
    reopened = shardfit.open_design(str(folder / "store"))  # right after, on every rank
    stores = comm.allgather(written)
    return {
        "equal_on_ranks": all(other == stores[0] for other in stores),
        "rows_written": written.rows_written,
        "columns": list(written.columns),
        "files": list(written.files),
        "X": reopened.X.to_pandas().to_numpy().tolist(),
        "y": np.asarray(reopened.y.to_pandas()).ravel().tolist(),
    }


for name, fn in [("ensemble", ensemble), ("ols", ols), ("predict_out", predict_out),
                 ("enet", enet), ("distributed", distributed), ("scores", scores),
                 ("store", store)]:
    check(name, fn)
    # After each check: a run that hangs later still reports the checks done.
    (folder / f"rank{comm.rank}.json").write_text(json.dumps(report))
"""


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261313)
    frame = pd.DataFrame({"x1": rng.normal(size=N), "x2": rng.uniform(-1, 2, N)})
    frame["y"] = 1.0 + frame.x1 - 2.0 * frame.x2 + rng.normal(size=N)
    return frame


def _classification() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=N, n_features=5, n_informative=3, n_classes=3, random_state=13
    )
    return X, np.array(["a", "b", "c"])[y]


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Every rank's results of one ``mpiexec -n 2`` run of :data:`SCRIPT` (and its
    stderr, for the failure message of a check that did not report)."""
    if not MPIEXEC.exists():
        pytest.skip("mpiexec not installed")
    folder = tmp_path_factory.mktemp("mpi_every_rank")
    _frame().to_parquet(folder / "frame.parquet", index=False)
    X, labels = _classification()
    np.save(folder / "X.npy", X)
    np.save(folder / "labels.npy", labels)
    ranks, stderr = run_mpiexec_script(SCRIPT, folder, ranks=RANKS)
    return [{"report": report, "stderr": stderr} for report in ranks]


def _each_rank(reports: list[dict], name: str) -> list[dict]:
    results = []
    for rank, run in enumerate(reports):
        result = run["report"].get(name)
        assert result is not None, f"rank {rank} reported no {name!r}: {run['stderr']}"
        assert "error" not in result, f"rank {rank}: {result.get('tb', result)}"
        results.append(result)
    return results


def _design(frame: pd.DataFrame) -> np.ndarray:
    return np.column_stack([np.ones(len(frame)), frame.x1, frame.x2])


def test_stacked_ensemble_fit_and_parallel_predict_on_every_rank(reports) -> None:
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier

    X, labels = _classification()
    reference = StackingClassifier(
        [
            ("lr", LogisticRegression(max_iter=1000)),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ],
        final_estimator=LogisticRegression(max_iter=1000),
        cv=StratifiedKFold(3),
    ).fit(X, labels)
    expected = reference.predict_proba(X)
    for result in _each_rank(reports, "ensemble"):
        assert result["classes"] == ["a", "b", "c"]
        np.testing.assert_allclose(np.array(result["proba"]), expected, rtol=0, atol=1e-10)


def test_linear_predict_in_memory_on_every_rank(reports) -> None:
    import statsmodels.api as sm

    frame = _frame()
    fit = sm.OLS(frame.y.to_numpy(), _design(frame)).fit()
    prediction = fit.get_prediction(_design(frame))
    for result in _each_rank(reports, "ols"):
        assert len(result["predicted"]) == N  # was [] on rank 1: parts or []
        np.testing.assert_allclose(result["predicted"], prediction.predicted_mean, atol=1e-10)
        np.testing.assert_allclose(result["se"], prediction.se_mean, rtol=1e-9)


def test_predictions_written_to_files_count_on_every_rank(reports) -> None:
    import statsmodels.api as sm

    frame = _frame()
    expected = sm.OLS(frame.y.to_numpy(), _design(frame)).fit().predict(_design(frame))
    for result in _each_rank(reports, "predict_out"):
        # Rank 1 got rows_read == rows_written == 0 before, and could return before
        # rank 0 had written the manifest.
        assert (result["rows_read"], result["rows_written"]) == (N, N)
        assert result["manifest"] is True
        assert result["row"] == list(range(N))
        np.testing.assert_allclose(result["predicted"], expected, atol=1e-10)


def test_elastic_net_and_distributed_predict_on_every_rank(reports) -> None:
    from sklearn.linear_model import ElasticNet

    frame = _frame()
    x = frame[["x1", "x2"]].to_numpy()
    enet = ElasticNet(alpha=0.05, l1_ratio=0.5, tol=1e-12, max_iter=100_000)
    expected = enet.fit(x, frame.y.to_numpy()).predict(x)
    for result in _each_rank(reports, "enet"):
        np.testing.assert_allclose(result["predicted"], expected, atol=1e-8)
    # "average" with alpha=0: the mean of the partitions' least-squares fits.
    design = _design(frame)
    halves = np.array_split(np.arange(N), 2)
    params = np.mean(
        [np.linalg.lstsq(design[rows], frame.y.to_numpy()[rows])[0] for rows in halves], axis=0
    )
    for result in _each_rank(reports, "distributed"):
        np.testing.assert_allclose(result["predicted"], design @ params, atol=1e-10)


def test_svd_scores_in_memory_on_every_rank(reports) -> None:
    frame = _frame()
    centered = frame[["x1", "x2"]].to_numpy() - frame[["x1", "x2"]].to_numpy().mean(axis=0)
    u, s, _ = np.linalg.svd(centered, full_matrices=False)
    expected = u * s
    for result in _each_rank(reports, "scores"):
        got = np.array(result["scores"])
        signs = np.sign(np.sum(got * expected, axis=0))  # a component's sign is arbitrary
        np.testing.assert_allclose(got * signs, expected, atol=1e-9)


def test_write_design_on_every_rank(reports, tmp_path) -> None:
    import shardfit

    frame = _frame()
    serial = shardfit.write_design(
        "y ~ x1 + x2", shardfit.from_pandas(frame, npartitions=3), tmp_path / "s", backend="serial"
    )
    for result in _each_rank(reports, "store"):
        assert result["equal_on_ranks"] is True
        assert result["rows_written"] == N
        assert result["columns"] == list(serial.columns) == ["Intercept", "x1", "x2"]
        assert result["files"] == list(serial.files)
        # The store read back on each rank right after the call: the data's own columns.
        np.testing.assert_array_equal(np.array(result["X"]), _design(frame))
        np.testing.assert_array_equal(result["y"], frame.y.to_numpy())


def test_parquet_source_predicts_on_the_default_backend(tmp_path) -> None:
    """A Source of Parquet files is out of core: predict runs on the default backend
    (it ran serially, on one core, like a DataFrame), with statsmodels' numbers."""
    import statsmodels.api as sm

    import shardfit

    frame = _frame()
    for k, rows in enumerate(np.array_split(np.arange(N), 3)):
        frame.iloc[rows].to_parquet(tmp_path / f"part{k}.parquet", index=False)
    fit = shardfit.ols("y ~ x1 + x2", frame).fit(backend="serial")
    source = shardfit.read_parquet(str(tmp_path / "*.parquet"))
    in_memory = shardfit.from_pandas(frame, npartitions=3)
    with shardfit.profile() as prof:
        predicted = fit.predict(source, workers=2)
        enet = shardfit.elastic_net("y ~ x1 + x2", frame, alpha=0.05, backend="serial")
        enet_predicted = enet.predict(source)
        from_memory = fit.predict(in_memory)
    backends = [p.backend for p in prof.passes if p.name == "predict"]
    assert len(backends) == 3
    assert backends[0].startswith("processes") and backends[1].startswith("processes")
    assert backends[2].startswith("serial")  # in-memory slices stay on this core
    expected = sm.OLS(frame.y.to_numpy(), _design(frame)).fit().predict(_design(frame))
    np.testing.assert_allclose(np.asarray(predicted), expected, atol=1e-10)
    np.testing.assert_allclose(np.asarray(from_memory), expected, atol=1e-10)
    np.testing.assert_allclose(
        np.asarray(enet_predicted), np.asarray(enet.predict(frame)), rtol=0, atol=0
    )


@pytest.mark.parametrize("model", ["elastic_net", "distributed"])
def test_missing_column_is_named(model) -> None:
    """A formula's multi-letter column (and an exposure column) missing from new data is
    named whole in predict's error, with the partition."""
    import shardfit
    from shardfit.models.distributed import DistributedModel

    frame = _frame().assign(size=lambda f: f.x2, expo=1.5)
    frame["c"] = np.random.default_rng(5).poisson(np.exp(0.3 * frame.x1) * frame.expo)
    if model == "elastic_net":
        fit = shardfit.elastic_net(
            "c ~ x1 + size", frame, alpha=0.05, family="poisson", exposure="expo",
            backend="serial",
        )  # fmt: skip
    else:
        fit = DistributedModel(
            2, formula="c ~ x1 + size", model="glm", family="poisson", exposure="expo",
            method="average", alpha=0.0,
        ).fit(shardfit.from_pandas(frame, npartitions=2), backend="serial")  # fmt: skip
    for column in ("size", "expo"):
        with pytest.raises(shardfit.ReadError, match=rf"unknown column '{column}' in partition"):
            fit.predict(frame.drop(columns=[column]))
