"""Model search: the seed's 144-configuration grid on 2 workers, resume after SIGKILL, halving."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from scipy.stats import loguniform

from shardfit import HashingFeaturizer, StoreFullError, open_store, search, stream_fit
from shardfit.data.simulate import simulate
from shardfit.streaming.policy import plan_units, survivors
from shardfit.streaming.space import Config, build_learner, expand
from shardfit.streaming.store import StoreError
from streaming.search_cases import kill_after_first_result

# The seed's grid: 2 column sets x 3 sizes x 2 degrees x 3 l1 ratios x 4 alphas = 144.
# Smaller hash tables than the seed's 2**20-2**22 keep the test fast; the shape is the same.
SEED_GRID = {
    "featurizer": {
        "columns": [["x1", "x2"], ["x1", "x2", "x3"]],
        "n_features": [2**10, 2**11, 2**12],
        "degree": [1, 2],
    },
    "learner": {
        "estimator": "ftrl",
        "l1_ratio": [0.15, 0.5, 0.85],
        "alpha": [0.0001, 0.001, 0.01, 0.1],
    },
}
BATCH = 200


@pytest.fixture(scope="module")
def logit_file(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("search") / "logit.parquet"
    simulate("logit", 6000, path, seed=3, chunk_rows=2500)
    return str(path)


@pytest.fixture(scope="module")
def seed_search(logit_file, tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "models.db"
    summary = search(
        SEED_GRID, logit_file, target="y", store=store, batch_rows=BATCH,
        backend="processes", workers=2,
    )  # fmt: skip
    return summary


def test_the_seed_grid_expands_to_144_distinct_configurations() -> None:
    configs = expand(SEED_GRID)
    assert len(configs) == 144 == len({c.key for c in configs})
    assert expand(SEED_GRID)[17].key == configs[17].key  # stable
    # Distributions are sampled, reproducibly.
    space = {"featurizer": {"columns": ["x1", "x2"]}, "learner": {"alpha": loguniform(1e-5, 1)}}
    drawn = expand(space, n_iter=5, random_state=1)
    assert len(drawn) == 5 and all(1e-5 <= c.learner["alpha"] <= 1 for c in drawn)
    assert [c.key for c in drawn] == [c.key for c in expand(space, n_iter=5, random_state=1)]
    with pytest.raises(ValueError, match="needs n_iter"):
        expand(space)
    with pytest.raises(ValueError, match="Unknown learner 'svm'"):
        build_learner({"estimator": "svm"})


def test_units_share_a_featurizer_and_halving_keeps_the_best() -> None:
    configs = expand(SEED_GRID)
    units = plan_units(configs, workers=2)
    assert len(units) == 12 and all(len(u) == 12 for u in units)
    assert all(len({c.featurizer_key for c in unit}) == 1 for unit in units)
    few = [Config({"columns": ["x1"]}, {"alpha": a}) for a in (0.1, 0.2, 0.3)]
    assert [len(u) for u in plan_units(few, workers=2)] == [1, 1, 1]
    assert [len(u) for u in plan_units(configs, workers=2, unit_configs=5)][:3] == [5, 5, 2]
    per_worker = plan_units(configs, workers=2, units=2)
    assert [len(u) for u in per_worker] == [72, 72]
    assert [c.key for u in per_worker for c in u] == [c.key for u in units for c in u]
    kept, dropped = survivors({"a": 0.3, "b": 0.1, "c": float("nan"), "d": 0.2}, factor=2,
                              higher_is_better=False)  # fmt: skip
    assert (kept, dropped) == (["b", "d"], ["a", "c"])
    kept, _ = survivors({"a": 0.3, "b": 0.1, "c": 0.2}, factor=3, higher_is_better=True)
    assert kept == ["a"]


def test_seed_grid_on_two_workers_and_best_equals_refitting_alone(seed_search, logit_file):
    assert (seed_search.configurations, seed_search.fitted, seed_search.skipped) == (144, 144, 0)
    with open_store(seed_search.store) as store:
        assert len(store) == 144
        best = store.best(3)
        scores = store.results()["score"].to_numpy()
    assert [r.score for r in best] == sorted(scores)[:3]
    for record in best:
        featurizer = HashingFeaturizer(**record.params["featurizer"])
        alone = stream_fit(
            build_learner(record.params["learner"]), featurizer, logit_file, target="y",
            batch_rows=BATCH,
        )  # fmt: skip
        assert record.score == alone.score  # bitwise: the same batches in the same order
        assert record.benchmark == alone.benchmark_score
        assert record.rows == 6000
        stored = record.model().named_steps["learner"]
        np.testing.assert_array_equal(stored.coef_, alone.estimator.coef_)
        np.testing.assert_array_equal(stored.intercept_, alone.estimator.intercept_)


def test_serial_and_dask_backends_give_the_same_store(seed_search, logit_file, tmp_path):
    from distributed import Client, LocalCluster

    part = {**SEED_GRID, "learner": {**SEED_GRID["learner"], "alpha": [0.001]}}  # 36 configs
    with open_store(seed_search.store) as store:
        expected = {r.key: r.score for r in store.best(144)}
    serial = search(part, logit_file, target="y", store=tmp_path / "s.db", batch_rows=BATCH,
                    backend="serial")  # fmt: skip
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        # One unit per worker: each worker reads each batch once for its 18 configurations
        # (of several featurizers).
        dask = search(part, logit_file, target="y", store=tmp_path / "d.db", batch_rows=BATCH,
                      backend=client, units=2)  # fmt: skip
    for summary in (serial, dask):
        with open_store(summary.store) as store:
            got = {r.key: r.score for r in store.best(144)}
        assert len(got) == 36 and got == {k: expected[k] for k in got}


_CHILD = """
import sys
from shardfit import search
GRID = {grid!r}
if __name__ == "__main__":
    search(GRID, {data!r}, target="y", store={store!r}, batch_rows=500, unit_configs=1,
           backend="processes", workers=2)
"""
SLOW_GRID = {
    "featurizer": {"columns": [["x1", "x2", "x3"]], "n_features": 2**12, "degree": [1, 2]},
    "learner": {"estimator": "sgd", "loss": "log_loss", "random_state": 0,
                "alpha": [1e-5, 1e-4, 1e-3], "learning_rate": ["optimal", "adaptive"],
                "eta0": 0.01},
}  # fmt: skip


def test_a_killed_search_resumes_and_skips_finished_configurations(tmp_path) -> None:
    data = tmp_path / "logit.parquet"
    simulate("logit", 40_000, data, seed=5, chunk_rows=10_000)
    store = tmp_path / "killed.db"
    script = tmp_path / "run_search.py"
    script.write_text(textwrap.dedent(_CHILD).format(grid=SLOW_GRID, data=str(data),
                                                     store=str(store)))  # fmt: skip
    kill_after_first_result(script, store, poll=0.02)
    with open_store(store) as db:
        assert db._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        saved = {key: when for key, when in db._conn.execute("SELECT key, finished FROM results")}
    assert 1 <= len(saved) < 12
    resumed = search(SLOW_GRID, str(data), target="y", store=store, batch_rows=500,
                     unit_configs=1, backend="serial")  # fmt: skip
    assert resumed.skipped == len(saved) and resumed.fitted == 12 - len(saved)
    fresh = search(SLOW_GRID, str(data), target="y", store=tmp_path / "fresh.db",
                   batch_rows=500, backend="serial")  # fmt: skip
    with open_store(store) as db, open_store(fresh.store) as ref:
        again = dict(db._conn.execute("SELECT key, finished FROM results"))
        assert {k: again[k] for k in saved} == saved  # finished ones were not redone
        assert {r.key: r.score for r in db.best(12)} == {r.key: r.score for r in ref.best(12)}


def test_halving_continues_survivors_exactly(logit_file, tmp_path, seed_search) -> None:
    space = {**SEED_GRID, "featurizer": {**SEED_GRID["featurizer"], "n_features": 2**12}}
    summary = search(space, logit_file, target="y", store=tmp_path / "h.db", batch_rows=BATCH,
                     backend="serial", halving={"min_rows": 400, "factor": 3})  # fmt: skip
    # 48 configurations: 16 after 400 rows, 6 after 1200, 2 after 3600, then to the end.
    assert [r["kept"] for r in summary.rungs] == [16, 6, 2]
    assert (summary.fitted, summary.dropped) == (2, 46)
    with open_store(summary.store) as store, open_store(seed_search.store) as full:
        done = store.best(2)
        dropped = [r for r in store.best(48, include_dropped=True) if r.status == "dropped"]
        reference = {r.key: r for r in full.best(144)}
    assert len(dropped) == 46 and {r.rows for r in dropped} == {400, 1200, 3600}
    for record in done:
        # A survivor learned in pieces (rungs, back and forth between workers) scores
        # exactly as the same configuration learned in one go.
        assert record.rows == 6000
        assert record.score == reference[record.key].score


def test_resume_refuses_other_settings(seed_search, logit_file) -> None:
    with pytest.raises(StoreError, match="batch_rows=200, not 300"):
        search(SEED_GRID, logit_file, target="y", store=seed_search.store, batch_rows=300)
    with pytest.raises(StoreError, match="resume=True"):
        search(SEED_GRID, logit_file, target="y", store=seed_search.store, batch_rows=BATCH,
               resume=False)  # fmt: skip
    again = search(SEED_GRID, logit_file, target="y", store=seed_search.store,
                   batch_rows=BATCH, backend="serial")  # fmt: skip
    assert (again.skipped, again.fitted) == (144, 0)


def test_a_full_store_stops_the_search_and_a_rerun_completes_it(seed_search, logit_file, tmp_path):
    part = {**SEED_GRID, "learner": {**SEED_GRID["learner"], "alpha": [0.001]}}  # 36 configs
    store = tmp_path / "small.db"
    with pytest.raises(StoreFullError, match=r"no space left.*saved before are intact"):
        search(part, logit_file, target="y", store=store, batch_rows=BATCH, backend="serial",
               max_store_bytes=120_000)  # fmt: skip
    with open_store(store) as db:
        assert db._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        saved = {r.key: r.score for r in db.best(36)}
    assert 0 < len(saved) < 36
    done = search(part, logit_file, target="y", store=store, batch_rows=BATCH, backend="serial")
    assert (done.skipped, done.fitted) == (len(saved), 36 - len(saved))
    with open_store(store) as db, open_store(seed_search.store) as full:
        got = {r.key: r.score for r in db.best(36)}
        expected = {r.key: r.score for r in full.best(144)}
    assert {k: got[k] for k in saved} == saved
    assert got == {k: expected[k] for k in got}


def test_malformed_lines_the_reader_skipped_are_counted_once(tmp_path) -> None:
    """Two units and three halving rungs read the partitions again and again: each
    skipped line still counts once, and the survivors learned exactly the good rows."""
    from shardfit import read_csv

    rng = np.random.default_rng(11)
    lines = ["x1,x2,y"] + [
        f"{rng.normal():.6f},{rng.normal():.6f},{int(rng.random() < 0.5)}" for _ in range(3_000)
    ]
    bad = {150: "1.0,2.0,0,extra", 1_400: "only-one", 2_950: "3,4,1,5,6"}
    for line, text in bad.items():
        lines[line] = text
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    source = read_csv(path, on_bad_lines="skip", partition_rows=700)
    assert source.npartitions > 3  # rungs end inside partitions, read again next rung
    space = {
        "featurizer": {"columns": [["x1", "x2"]], "n_features": 2**8, "degree": [1, 2]},
        "learner": {"estimator": "ftrl", "alpha": [0.001, 0.01]},
    }
    with pytest.warns(UserWarning, match="skipped 3 malformed row"):
        summary = search(
            space, source, target="y", store=tmp_path / "s.db", batch_rows=100,
            backend="serial", units=2, halving={"min_rows": 500, "factor": 2},
        )  # fmt: skip
    assert summary.rows_skipped == 3
    with open_store(summary.store) as store:
        best = store.best(1)[0]
    assert best.rows == 3_000 - len(bad)
