"""shardfit.profile(): per-task time, phases and peak memory, per pass, on real backends."""

from __future__ import annotations

import contextvars
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shardfit
from shardfit.data.partition import Partition
from shardfit.engine import run_pass, session
from shardfit.engine._testing import GramStat, GramTask, seeded_source

MB = 10**6
BIG = 200 * MB  # what partition 1 allocates


@dataclass(frozen=True)
class AllocTask:
    """Read the partition; on partition ``big`` allocate and touch ``nbytes``; nap in a
    ``nap`` phase (``long_nap`` seconds on partition 0, 0.05 s elsewhere)."""

    big: int
    nbytes: int
    long_nap: float = 0.2

    def __call__(self, partition: Partition) -> GramStat:
        values = np.asarray(partition.read().table.to_pandas())
        if partition.index == self.big:  # type: ignore[attr-defined]
            block = np.ones(self.nbytes // 8)  # np.ones writes every page: all resident
            assert block.sum() == self.nbytes // 8
            del block
        with shardfit.phase("nap"):
            time.sleep(self.long_nap if partition.index == 0 else 0.05)  # type: ignore[attr-defined]
        return GramStat.of(values)


@pytest.fixture(scope="module")
def pool():
    with session("processes", workers=2) as sess:
        # Workers started, so a profile sees no ``backend_start`` whichever test is first.
        run_pass(GramTask(), seeded_source(2, nrows=4, ncols=1), backend=sess)
        yield sess


def test_peak_memory_is_per_task_and_phases_are_timed(pool) -> None:
    source = seeded_source(6, nrows=200, ncols=3, seed=1)
    with shardfit.profile() as prof:
        run_pass(AllocTask(big=1, nbytes=BIG), source, backend=pool, pass_name="alloc")
        run_pass(AllocTask(big=-1, nbytes=0), source, backend=pool, pass_name="after")
    one, after = prof.passes
    tasks = {task.partition: task for task in prof.tasks if task.pass_index == 0}
    assert one.name == "alloc" and one.partitions == 6 and one.rows == 1200
    assert all(task.peak_scope == "task" for task in prof.tasks)
    big = tasks[1]
    assert big.peak_rss >= BIG
    assert big.peak_rss - big.rss_start >= 0.95 * BIG  # the task's own growth
    others = [task for index, task in tasks.items() if index != 1]
    assert max(task.peak_rss for task in others) < big.peak_rss - 150 * MB
    assert one.peak_rss == big.peak_rss
    # The reset works: the next pass runs on both workers, partition 1's included, and
    # no task inherits its peak.
    later = [task for task in prof.tasks if task.pass_index == 1]
    assert big.worker in {task.worker for task in later}
    assert len({task.worker for task in later}) == 2
    assert after.peak_rss < big.peak_rss - 150 * MB
    # Time: partition 0 naps 0.2 s inside its "nap" phase; reading is timed too.
    assert tasks[0].elapsed >= 0.2 and 0.2 <= tasks[0].phases["nap"] <= tasks[0].elapsed
    assert all(0.05 <= task.phases["nap"] <= task.elapsed for task in others)
    assert all(task.phases["read"] > 0 for task in tasks.values())
    assert one.task_seconds == pytest.approx(sum(t.elapsed for t in tasks.values()), rel=1e-12)
    assert one.task_max == max(t.elapsed for t in tasks.values())
    assert one.phases["nap"] == pytest.approx(sum(t.phases["nap"] for t in tasks.values()))
    assert 0 < one.busy <= 1.0
    assert one.wall >= 0.2 + 0.05  # partition 0 and another one on the same worker


@pytest.fixture(scope="module")
def glm_data(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(3)
    n = 3000
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    g = rng.choice(["a", "b", "c"], size=n)
    eta = 0.3 + 0.8 * x1 - 0.5 * x2 + 0.4 * (g == "b")
    table = pa.table(
        {
            "x1": x1,
            "x2": x2,
            "g": g,
            "y": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(float),
            "z": 1 + x1 - 2 * x2 + rng.normal(size=n),
        }
    )
    path = tmp_path_factory.mktemp("profile") / "d.parquet"
    pq.write_table(table, path, row_group_size=1000)  # 3 partitions
    return path, n


def test_ols_and_logit_fits_are_profiled_pass_by_pass(glm_data, pool) -> None:
    path, n = glm_data
    data = shardfit.read_parquet(path)
    assert data.npartitions == 3
    with shardfit.profile() as outer:
        with shardfit.profile() as prof:
            ols = shardfit.ols("z ~ x1 + x2 + C(g)", data).fit(backend=pool)
        logit = shardfit.logit("y ~ x1 + x2 + C(g)", data).fit(backend=pool)
    assert ols.nobs == n and logit.nobs == n
    # The inner profile saw the OLS fit only; the outer one both fits.
    names = [one.name for one in prof.passes]
    assert names == ["schema", "ls-gram"]
    glm_names = [name for name, _ in logit.extra["passes"]]
    assert [one.name for one in outer.passes] == names + glm_names
    assert len(glm_names) >= 4 and glm_names[1] == "glm-prepare"
    assert all(one.partitions == 3 and one.rows == n for one in outer.passes)
    first = outer.passes[:2] + outer.passes[2:4]  # schema + first data pass of each fit
    assert all(one.phases.get("read", 0) > 0 for one in first)
    assert outer.passes[1].phases["encode"] > 0 and outer.passes[3].phases["encode"] > 0
    # IRLS passes read the partition cache: hits everywhere, no reading, no encoding.
    prepare, irls = outer.passes[3], outer.passes[4:]
    assert prepare.counts.get("cache_miss") == 3
    for one in irls:
        assert one.name.startswith("glm-irls")
        assert one.counts.get("cache_hit") == 3 and "cache_miss" not in one.counts
        assert "read" not in one.phases and "encode" not in one.phases
    # The pass wall times agree with the GLM's own record (which adds the merge).
    for one, (_, seconds) in zip(outer.passes[2:], logit.extra["passes"]):
        assert one.wall <= seconds
    assert outer.driver_peak_rss >= outer.driver_rss_start > 0
    assert set(outer.driver_phases) == {"merge"}  # the pool was open before the block
    assert outer.wall >= sum(one.wall for one in outer.passes)

    frame = outer.to_frame()
    assert len(frame) == 3 * len(outer.passes)
    assert list(frame["partition"].iloc[:3]) == [0, 1, 2]
    assert set(frame["worker"]) == {task.worker for task in outer.tasks}
    assert frame.groupby("pass_index")["rows"].sum().tolist() == [n] * len(outer.passes)
    summed = frame[["load", "read", "encode", "cache_load", "compute"]].sum(axis=1)
    np.testing.assert_allclose(summed, frame["elapsed"], rtol=1e-9)
    text = outer.summary()
    assert "glm-irls" in text and "Slowest pass" in text and "Largest worker peak" in text
    assert text.count("\n") > len(outer.passes)


def test_to_json_round_trips_as_plain_json(glm_data, tmp_path) -> None:
    path, n = glm_data
    with shardfit.profile() as prof:
        shardfit.ols("z ~ x1", shardfit.read_parquet(path)).fit(backend="serial")
    written = prof.to_json(tmp_path / "profile.json")
    loaded = json.loads(written.read_text())
    assert loaded["format"] == "shardfit-profile"
    assert [p["name"] for p in loaded["passes"]] == [p.name for p in prof.passes]
    assert len(loaded["tasks"]) == len(prof.tasks)
    assert sum(t["rows"] for t in loaded["tasks"] if t["pass_name"] == "ls-gram") == n
    assert loaded["driver"]["peak_rss"] == prof.driver_peak_rss


@pytest.mark.parametrize("backend", ["serial", "threads"])
def test_local_backends_are_profiled(backend) -> None:
    source = seeded_source(3, nrows=100, ncols=2, seed=2)
    with shardfit.profile() as prof:
        task = AllocTask(big=1, nbytes=100 * MB, long_nap=0.0)
        run_pass(task, source, backend=backend, workers=None if backend == "serial" else 2)
    (one,) = prof.passes
    assert one.partitions == 3 and one.rows == 300 and one.backend.startswith(backend)
    tasks = {task.partition: task for task in prof.tasks}
    assert all(task.phases["read"] > 0 for task in tasks.values())
    assert tasks[1].peak_rss - tasks[1].rss_start >= 0.95 * 100 * MB
    # The driver's peak survives the per-task resets (serial runs tasks in the driver).
    assert prof.driver_peak_rss >= tasks[1].peak_rss
    # The pass started and stopped its backend and merged, all driver time.
    assert set(prof.driver_phases) == {"backend_start", "merge", "backend_stop"}
    assert sum(prof.driver_phases.values()) + one.wall <= prof.wall
    if backend == "serial":
        assert all(task.peak_scope == "task" for task in tasks.values())
        assert tasks[2].peak_rss < tasks[1].peak_rss - 80 * MB  # reset before partition 2
    else:  # threads share one process: its peak, an upper bound, flagged
        assert all(task.peak_scope == "process" for task in tasks.values())
        assert one.peak_scope == "process" and "process-wide" in prof.summary()


@pytest.mark.parametrize("threads", [1, 2])
def test_dask_local_cluster_is_profiled(threads) -> None:
    from distributed import Client, LocalCluster

    source = seeded_source(4, nrows=100, ncols=2, seed=3)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=threads, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
        shardfit.profile() as prof,
    ):
        run_pass(AllocTask(big=2, nbytes=100 * MB, long_nap=0.0), source, backend=client)
        addresses = set(client.scheduler_info()["workers"])
    tasks = {task.partition: task for task in prof.tasks}
    assert {task.worker for task in tasks.values()} <= addresses
    # Tasks side by side in a worker's threads: the process's peak, flagged.
    scope = "task" if threads == 1 else "process"
    assert all(task.peak_scope == scope for task in tasks.values())
    assert tasks[2].peak_rss - tasks[2].rss_start >= 0.95 * 100 * MB
    assert prof.passes[0].rows == 400 and prof.passes[0].workers == 2 * threads


def test_nested_and_concurrent_profiles_see_their_own_passes() -> None:
    source = seeded_source(2, nrows=20, ncols=2, seed=4)
    seen: dict[str, list[str]] = {}

    def fit(name: str) -> None:
        with shardfit.profile() as prof:
            for _ in range(3):
                run_pass(GramTask(), source, backend="serial", pass_name=name)
        seen[name] = [one.name for one in prof.passes]

    with shardfit.profile() as outer:
        threads = [
            threading.Thread(target=contextvars.copy_context().run, args=(fit, name))
            for name in ("left", "right")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        run_pass(GramTask(), source, backend="serial", pass_name="own")
        # A thread not run in the block's context is not this profile's.
        stranger = threading.Thread(
            target=run_pass, args=(GramTask(), source), kwargs={"backend": "serial"}
        )
        stranger.start()
        stranger.join()
    assert seen == {"left": ["left"] * 3, "right": ["right"] * 3}
    # Threads run in copies of the outer block's context, so the outer profile sees them.
    assert sorted(one.name for one in outer.passes) == ["left"] * 3 + ["own"] + ["right"] * 3


def test_nothing_is_measured_outside_a_profile() -> None:
    from shardfit.engine.retries import run_task

    source = seeded_source(1, nrows=10, ncols=2, seed=5)
    task = AllocTask(big=-1, nbytes=0, long_nap=0.0)
    assert run_task(task, source.partitions[0], 0, 0, remote=False).usage is None
    usage = run_task(task, source.partitions[0], 0, 0, remote=False, measure=True).usage
    assert usage is not None and usage.counts["rows_read"] == 10 and usage.phases["read"] > 0
    with shardfit.phase("outside"):  # a no-op, not an error
        pass


def test_cli_fit_profile_prints_the_table(glm_data) -> None:
    path, n = glm_data
    args = [str(path), "y ~ x1 + x2 + C(g)", "--family", "binomial", "--backend", "serial"]
    done = subprocess.run(
        [sys.executable, "-m", "shardfit", "fit", *args, "--profile"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    summary, _, table = done.stdout.partition("Profile: ")
    assert "Generalized Linear Model" in summary or "coef" in summary
    assert "glm-prepare" in table and "glm-irls" in table and "peak RSS" in table
    rows = [line for line in table.splitlines() if "glm-irls" in line and "3,000" in line]
    assert rows and all(f"{n:,}" in line for line in rows)


def test_checkpointed_partitions_are_listed_not_measured(tmp_path) -> None:
    source = seeded_source(3, nrows=30, ncols=2, seed=6)
    task = AllocTask(big=-1, nbytes=0, long_nap=0.0)
    with shardfit.profile() as prof:
        for _ in range(2):
            run_pass(task, source, backend="serial", checkpoint=tmp_path / "ck")
    first, second = prof.passes
    assert first.rows == second.rows == 90 and first.task_seconds > 0
    assert second.task_seconds == 0 and second.phases == {"compute": 0.0}
    rerun = [task for task in prof.tasks if task.pass_index == 1]
    assert all(t.from_checkpoint and t.peak_rss is None and t.worker == "" for t in rerun)
