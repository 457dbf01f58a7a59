"""The SQLite results store: pickle-free models, best(n) alone, real full-disk failures."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.naive_bayes import MultinomialNB

from shardfit import FTRLClassifier, HashingFeaturizer, StoreFullError, open_store
from shardfit.data.simulate import simulate_table
from shardfit.streaming.persist import PickleNotAllowedError, dump_model
from shardfit.streaming.store import Record, StoreError

FEATURIZER = HashingFeaturizer(["x1", "x2", "x3"], n_features=2**18, degree=2)


@pytest.fixture(scope="module")
def batch():
    table = simulate_table("logit", 3000, seed=4)
    return table, FEATURIZER.transform(table), table.column("y").to_numpy()


def _record(key: str, score: float, model=None, *, blob_bytes: int = 0) -> Record:
    if model is None:
        model = ("linear", '{"learner": "none"}', b"x" * blob_bytes)
    return Record(
        key=key,
        params={"featurizer": {"degree": 2}, "learner": {"alpha": score}},
        status="done",
        score=score,
        benchmark=0.6,
        improvement=(0.6 - score) / 0.6,
        scores={"log_loss": score, "auc": float("nan")},
        benchmark_scores={"log_loss": 0.6},
        rows=3000,
        seconds=0.1,
        curve={"batch": [1, 2], "log_loss": [score, score]},
        model=model,
    )


def _filled_store(path, n: int = 6):
    with open_store(path, create=True) as store:
        store.set_meta({"scoring": "log_loss"})
        store.save(_record(f"k{i}", 0.5 + 0.01 * ((i * 7) % n)) for i in range(n))


def test_store_is_wal_and_ranks_without_reading_models(tmp_path) -> None:
    path = tmp_path / "s.db"
    _filled_store(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # Make every model but the best unreadable: best(n) must not touch them.
        conn.execute("UPDATE models SET format = 'garbage', spec = '{' WHERE key != 'k0'")
    with open_store(path) as store:
        best = store.best(3)
        assert [r.key for r in best] == ["k0", "k1", "k2"]
        assert [r.score for r in best] == pytest.approx([0.5, 0.51, 0.52])
        assert best[0].improvement == pytest.approx((0.6 - 0.5) / 0.6)
        assert np.isnan(best[0].scores["auc"])
        assert list(best[1].curve()["log_loss"]) == pytest.approx([0.51, 0.51])
        assert len(store) == 6 and list(store.results()["key"][:2]) == ["k0", "k1"]
    with pytest.raises(StoreError, match="no results store"):
        open_store(tmp_path / "missing.db")


def test_linear_models_round_trip_without_pickle(tmp_path, batch) -> None:
    table, X, y = batch
    ftrl = FTRLClassifier(alpha=1e-4).partial_fit(X, y)
    sgd = SGDClassifier(loss="log_loss", random_state=0).partial_fit(X, y, classes=[0, 1])
    path = tmp_path / "m.db"
    with open_store(path, create=True) as store:
        store.save([
            _record("ftrl", 0.5, dump_model(FEATURIZER, ftrl)),
            _record("sgd", 0.6, dump_model(FEATURIZER, sgd)),
        ])  # fmt: skip
        blob = store._conn.execute("SELECT blob FROM models WHERE key='ftrl'").fetchone()[0]
        assert b"pickle" not in blob and len(blob) < 20_000  # 10 touched columns of 2**18
    with open_store(path) as store:
        for key, original in (("ftrl", ftrl), ("sgd", sgd)):
            pipeline = store.model(key)
            np.testing.assert_array_equal(
                pipeline.predict_proba(table), original.predict_proba(X), err_msg=key
            )
        again = store.model("ftrl").named_steps["learner"]
        again.partial_fit(X, y)  # a loaded learner goes on learning as the original would
        np.testing.assert_array_equal(again.coef_, ftrl.partial_fit(X, y).coef_)


def test_other_estimators_need_the_pickle_opt_in(tmp_path, batch) -> None:
    _, X, y = batch
    nb = MultinomialNB().partial_fit(abs(X), y, classes=[0, 1])
    with pytest.raises(PickleNotAllowedError, match="allow_pickle=True"):
        dump_model(FEATURIZER, nb)
    path = tmp_path / "p.db"
    with open_store(path, create=True) as store:
        store.save([_record("nb", 0.5, dump_model(FEATURIZER, nb, allow_pickle=True))])
        with pytest.raises(PickleNotAllowedError, match="stored as a pickle"):
            store.model("nb")
        learner = store.model("nb", allow_pickle=True).named_steps["learner"]
        np.testing.assert_array_equal(learner.predict_proba(abs(X)), nb.predict_proba(abs(X)))


def test_a_full_store_raises_and_keeps_what_was_saved(tmp_path) -> None:
    path = tmp_path / "full.db"
    _filled_store(path)
    with open_store(path) as store:
        before = [(r.key, r.score) for r in store.best(6)]
    # A limit just above the current size: SQLite itself reports the database full.
    size = path.stat().st_size  # closing the last connection folded the WAL in
    with open_store(path, max_bytes=size + 8192) as store:
        with pytest.raises(StoreFullError, match=r"no space left.*6 configuration\(s\) saved"):
            store.save([_record("big1", 0.1, blob_bytes=200_000), _record("big2", 0.2)])
        assert len(store) == 6  # the failed transaction left nothing behind
    with open_store(path) as store:
        assert [(r.key, r.score) for r in store.best(6)] == before
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        store.save([_record("big1", 0.1, blob_bytes=200_000)])  # room again: it works
        assert store.best(1)[0].key == "big1"


_FSIZE_CHILD = """
import resource, signal, sys
from shardfit import StoreFullError, open_store
sys.path.insert(0, {tests!r})
from test_store import _record
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write (EFBIG) instead of dying
limit = {limit}
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
with open_store({path!r}) as store:
    try:
        store.save([_record("big", 0.1, blob_bytes=3_000_000)])
    except StoreFullError as error:
        print(error)
        sys.exit(3)
sys.exit(0)
"""


def test_a_real_write_failure_in_a_child_process(tmp_path) -> None:
    path = tmp_path / "fsize.db"
    _filled_store(path)
    with sqlite3.connect(path) as conn:  # fold the WAL into the database first
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    limit = path.stat().st_size + 500_000
    code = textwrap.dedent(_FSIZE_CHILD).format(
        tests=str(__import__("pathlib").Path(__file__).parent), limit=limit, path=str(path)
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "no space left" in done.stdout and "6 configuration(s) saved before" in done.stdout
    with open_store(path) as store:
        assert len(store) == 6 and store.best(1)[0].key == "k0"
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
