"""MPI folds drawn on the root, streaming under MPI, and Zarr arrays changed since the plan.

- A stacked ensemble under ``mpiexec -n 2`` whose splitter shuffles without a seed:
  every rank runs the script, so each drew its own folds and the fold jobs gathered
  from the ranks did not fit together. The root's folds are now given to every rank;
  every rank's predictions equal scikit-learn's ``StackingClassifier`` fitted here
  with the root's folds.
- ``search(backend="mpi")`` refuses on every rank before any rank creates the store;
  ``stream_fit`` (no backend: each rank streams the data itself) gives every rank the
  result it gives here.
- A Zarr partition refuses an array whose shape changed since the source was planned
  (a shorter array lost rows silently: slicing past its end gives what is there),
  naming the store, the array and the partition.

One ``mpiexec`` run holds the MPI checks (each rank writes what it got to a file).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import zarr

from shardfit.data.zarr_source import read_zarr
from shardfit.engine._testing import run_mpiexec_script
from shardfit.errors import ReadError

MPIEXEC = Path(sys.executable).parent / "mpiexec"
RANKS = 2
N = 180
SEED = 1000  # rank r seeds NumPy's global generator with SEED + r before fitting

SCRIPT = """
import copy
import json
import sys
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from mpi4py import MPI
from sklearn.linear_model import LogisticRegression, SGDRegressor
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.tree import DecisionTreeClassifier

from shardfit.models.ensemble import StackingEnsembleClassifier
from shardfit.streaming.hashing import HashingFeaturizer
from shardfit.streaming.search import search
from shardfit.streaming.stream import stream_fit

warnings.simplefilter("ignore")
folder = Path(sys.argv[1])
comm = MPI.COMM_WORLD
X = np.load(folder / "X.npy")
labels = np.load(folder / "labels.npy")
frame = pd.read_parquet(folder / "frame.parquet")
report = {}


def check(name, fn):
    try:
        report[name] = fn()
    except Exception as error:
        report[name] = {"error": f"{type(error).__name__}: {error}", "tb": traceback.format_exc()}


def ensemble():
    cv = KFold(3, shuffle=True)  # no seed: NumPy's global generator draws the folds
    # Each rank its own global seed, as unrelated processes have: the folds this rank
    # would draw (recorded), then the same state again for the fit.
    np.random.seed(SEED + comm.rank)
    own = [test.tolist() for _, test in copy.deepcopy(cv).split(X, labels)]
    np.random.seed(SEED + comm.rank)
    model = StackingEnsembleClassifier(
        [("lr", LogisticRegression(max_iter=1000)),
         ("tree", DecisionTreeClassifier(max_depth=3, random_state=0))],
        final_estimator=LogisticRegression(max_iter=1000),
        cv=cv,
        backend="mpi",
    ).fit(X, labels)
    return {"own_folds": own, "proba": model.predict_proba(X).tolist()}


def root_error():
    # The split itself raises (on the root, which draws): every rank raises it.
    StackingEnsembleClassifier(
        [("lr", LogisticRegression())], cv=StratifiedKFold(100), backend="mpi"
    ).fit(X, labels)
    return {"returned": True}


def searched():
    space = {"featurizer": {"columns": ["x1", "x2"], "n_features": 64},
             "learner": {"estimator": "ftrl_regressor", "alpha": [0.01, 0.1]}}
    search(space, frame, target="y", store=folder / "search.sqlite", backend="mpi",
           batch_rows=30)
    return {"returned": True}


def streamed():
    result = stream_fit(
        SGDRegressor(random_state=0), HashingFeaturizer(["x1", "x2"], n_features=64),
        frame, target="y", batch_rows=30,
    )
    return {"score": result.score, "rows": result.rows,
            "coef": result.estimator.coef_.tolist(),
            "curve": result.curve["squared_error"].tolist()}


for name, fn in [("ensemble", ensemble), ("root_error", root_error),
                 ("search", searched), ("stream", streamed)]:
    check(name, fn)
    comm.Barrier()  # the ranks in step, as a script's calls are
    (folder / f"rank{comm.rank}.json").write_text(json.dumps(report))
""".replace("SEED", str(SEED))


def _classification() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=N, n_features=5, n_informative=3, n_classes=3, random_state=7
    )
    return X, np.array(["a", "b", "c"])[y]


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(131313)
    frame = pd.DataFrame({"x1": rng.normal(size=N), "x2": rng.uniform(-1, 2, N)})
    frame["y"] = 0.5 + frame.x1 - 2.0 * frame.x2 + rng.normal(scale=0.3, size=N)
    return frame


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every rank's results of one ``mpiexec -n 2`` run of :data:`SCRIPT`."""
    pytest.importorskip("mpi4py", reason="the mpi extra is not installed")
    if not MPIEXEC.exists():
        pytest.skip("mpiexec not installed")
    folder = tmp_path_factory.mktemp("mpi_folds")
    X, labels = _classification()
    np.save(folder / "X.npy", X)
    np.save(folder / "labels.npy", labels)
    _frame().to_parquet(folder / "frame.parquet", index=False)
    ranks, stderr = run_mpiexec_script(SCRIPT, folder, ranks=RANKS)
    return {"ranks": ranks, "stderr": stderr, "folder": folder}


def _each_rank(reports: dict, name: str, *, error: bool = False) -> list[dict]:
    results = []
    for rank, report in enumerate(reports["ranks"]):
        result = report.get(name)
        assert result is not None, f"rank {rank} reported no {name!r}: {reports['stderr']}"
        if not error:
            assert "error" not in result, f"rank {rank}: {result.get('tb', result)}"
        results.append(result)
    return results


def test_unseeded_shuffled_folds_are_the_roots_on_every_rank(reports) -> None:
    from sklearn.ensemble import StackingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    results = _each_rank(reports, "ensemble")
    own = [result["own_folds"] for result in results]
    # The case under test: each rank would have drawn other folds.
    assert own[0] != own[1]
    X, labels = _classification()
    tests = [np.asarray(test) for test in own[0]]
    splits = [(np.setdiff1d(np.arange(N), test), test) for test in tests]
    reference = StackingClassifier(
        [
            ("lr", LogisticRegression(max_iter=1000)),
            ("tree", DecisionTreeClassifier(max_depth=3, random_state=0)),
        ],
        final_estimator=LogisticRegression(max_iter=1000),
        cv=splits,
    ).fit(X, labels)
    expected = reference.predict_proba(X)
    for result in results:
        # Each rank used its own folds before: rank 1's probabilities differed from
        # rank 0's, and neither matched a fit on one set of folds.
        np.testing.assert_allclose(np.array(result["proba"]), expected, rtol=0, atol=1e-10)
    assert results[0]["proba"] == results[1]["proba"]


def test_an_error_drawing_the_folds_on_the_root_is_raised_on_every_rank(reports) -> None:
    for result in _each_rank(reports, "root_error", error=True):
        assert result.get("error", "").startswith("ValueError: n_splits=100 cannot be greater")


def test_search_refuses_mpi_on_every_rank_before_creating_the_store(reports) -> None:
    for result in _each_rank(reports, "search", error=True):
        assert "error" in result, "search ran under MPI"
        assert "search does not run under MPI" in result["error"]
    # Before, every rank created the store and wrote its settings, then refused.
    assert not (reports["folder"] / "search.sqlite").exists()


def test_stream_fit_gives_every_rank_the_serial_result(reports) -> None:
    from sklearn.linear_model import SGDRegressor

    from shardfit.streaming.hashing import HashingFeaturizer
    from shardfit.streaming.stream import stream_fit

    here = stream_fit(
        SGDRegressor(random_state=0),
        HashingFeaturizer(["x1", "x2"], n_features=64),
        _frame(),
        target="y",
        batch_rows=30,
    )
    for result in _each_rank(reports, "stream"):
        assert result["rows"] == N
        assert result["score"] == here.score
        assert result["coef"] == here.estimator.coef_.tolist()
        assert result["curve"] == here.curve["squared_error"].tolist()


# Zarr ----------------------------------------------------------------------------

ROWS = 100


def _write_group(path: Path, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    data = {"a": rng.normal(size=n), "b": np.arange(n, dtype=np.int64)}
    group = zarr.open_group(path, mode="w", zarr_format=3)
    for name, values in data.items():
        group.create_array(name, shape=(n,), chunks=(20,), dtype=values.dtype)[:] = values
    return data


def _write_matrix(path: Path, n: int, rng: np.random.Generator) -> np.ndarray:
    values = rng.normal(size=(n, 3))
    zarr.create_array(path, shape=values.shape, chunks=(20, 3), dtype="f8", overwrite=True)[:] = (
        values
    )
    return values


def _rewrite_keeping_mtime(path: Path, write) -> None:
    """Rewrite the store, putting its metadata documents' modification times back
    (what the fingerprint looked at; their change time moves on regardless)."""
    documents = sorted(path.rglob("zarr.json"))
    times = {doc: os.stat(doc).st_mtime_ns for doc in documents}
    write()
    for doc, mtime in times.items():
        if doc.exists():
            os.utime(doc, ns=(mtime, mtime))


def test_unchanged_zarr_store_reads_equal_to_numpy(tmp_path, rng) -> None:
    data = _write_group(tmp_path / "g.zarr", ROWS, rng)
    matrix = _write_matrix(tmp_path / "m.zarr", ROWS, rng)
    group = read_zarr(tmp_path / "g.zarr", partition_rows=40)
    table = pa.concat_tables([p.read().table for p in group.partitions])
    np.testing.assert_array_equal(table["a"].to_numpy(), data["a"])
    np.testing.assert_array_equal(table["b"].to_numpy(), data["b"])
    whole = read_zarr(tmp_path / "m.zarr", partition_rows=40)
    table = pa.concat_tables([p.read().table for p in whole.partitions])
    np.testing.assert_array_equal(
        np.column_stack([table[c].to_numpy() for c in ("x0", "x1", "x2")]),
        np.asarray(zarr.open_array(tmp_path / "m.zarr", mode="r")[:]),
    )
    np.testing.assert_array_equal(table["x1"].to_numpy(), matrix[:, 1])


@pytest.mark.parametrize("rows_now", [70, 130])
def test_zarr_group_changed_since_the_plan_is_refused_by_name(tmp_path, rng, rows_now) -> None:
    store = tmp_path / "g.zarr"
    _write_group(store, ROWS, rng)
    source = read_zarr(store, partition_rows=40)
    _rewrite_keeping_mtime(store, lambda: _write_group(store, rows_now, rng))
    # The last partition (rows 80:100) of a 70-row array read 0 rows without a word;
    # 130 rows read 80:100 fine and rows 100:130 were in no partition.
    last = source.partitions[-1]
    with pytest.raises(ReadError) as caught:
        last.read()
    message = str(caught.value)
    assert str(store.resolve()) in message
    assert "array a" in message
    assert f"partition {last.key}" in message
    assert f"shape ({ROWS},) then, ({rows_now},) now" in message
    # Every partition refuses, the first (rows 0:40, all present) too.
    with pytest.raises(ReadError, match="changed since the source was planned"):
        source.partitions[0].read(["b"])


@pytest.mark.parametrize("rows_now", [50, 150])
def test_zarr_matrix_changed_since_the_plan_is_refused_by_name(tmp_path, rng, rows_now) -> None:
    store = tmp_path / "m.zarr"
    _write_matrix(store, ROWS, rng)
    source = read_zarr(store, partition_rows=40)
    _rewrite_keeping_mtime(store, lambda: _write_matrix(store, rows_now, rng))
    last = source.partitions[-1]
    with pytest.raises(ReadError) as caught:
        last.read(["x2"])
    message = str(caught.value)
    assert str(store.resolve()) in message
    assert "array /" in message  # the store is the array
    assert f"partition {last.key}" in message
    assert f"shape ({ROWS}, 3) then, ({rows_now}, 3) now" in message
