"""Review of ``shardfit.profile()`` as a user profiling real fits: profiling changes no
number, failed and retried passes stay readable, and under MPI every rank's profile
shows the whole pass (each rank once saw only its own share of the partitions)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shardfit
from shardfit.engine import run_pass, session
from shardfit.engine._testing import FlakyTask, GramTask, seeded_source
from shardfit.errors import PartitionTaskError

MPIEXEC = Path(sys.executable).parent / "mpiexec"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 1500
    data = pd.DataFrame(rng.standard_normal((n, 3)), columns=["x1", "x2", "x3"])
    data["g"] = rng.choice(list("abc"), n)
    data["y"] = data.x1 - 0.5 * data.x2 + rng.standard_normal(n)
    data["yb"] = (data.y > 0).astype(float)
    return data


def _fits(source, frame: pd.DataFrame, backend: str) -> dict[str, np.ndarray]:
    ols = shardfit.ols("y ~ x1 + x2 + C(g)", source).fit(backend=backend)
    logit = shardfit.logit("yb ~ x1 + x2 + x3", source).fit(backend=backend)
    pca = shardfit.svd("0 + x1 + x2 + x3 + C(g)", source, center=True, backend=backend)
    enet = shardfit.elastic_net("y ~ x1 + x2 + x3", source, l1_ratio=0.5, cv=3, backend=backend)
    model = shardfit.DistributedModel(3, formula="y ~ x1 + x2 + x3")
    dist = model.fit(frame, fit_kwds={"alpha": 0.05}, backend=backend)
    return {
        "ols": np.concatenate([ols.params.to_numpy(), ols.bse.to_numpy()]),
        "predict": np.asarray(ols.predict(frame.head(50))),
        "logit": np.concatenate([logit.params.to_numpy(), logit.bse.to_numpy()]),
        "svd": np.concatenate([pca.singular_values_array, pca.components_array.ravel()]),
        "enet": enet.params.to_numpy(),
        "distributed": np.asarray(dist.params),
    }


@pytest.mark.parametrize("backend", ["serial", "threads"])
def test_profiling_changes_no_number(frame: pd.DataFrame, backend: str) -> None:
    source = shardfit.from_pandas(frame, 3)
    plain = _fits(source, frame, backend)
    with shardfit.profile() as prof:
        profiled = _fits(source, frame, backend)
    for name, values in plain.items():
        assert values.tobytes() == profiled[name].tobytes(), name
    names = {one.name for one in prof.passes}
    assert {"ls-gram", "glm-prepare", "svd-qr", "enet-gram", "distributed"} <= names
    assert all(one.ok and one.rows == len(frame) for one in prof.passes if one.name == "svd-qr")


def test_retried_and_failed_passes_are_recorded(tmp_path) -> None:
    source = seeded_source(4, nrows=25, ncols=2, seed=3)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(PartitionTaskError, match="after 2 attempt"):
        with shardfit.profile() as prof:
            run_pass(FlakyTask(str(tmp_path / "a"), 1), source, backend="serial", pass_name="ok")
            run_pass(FlakyTask(str(tmp_path / "b"), 9), source, backend="serial", retries=1)
    retried, failed = prof.passes
    assert retried.ok and retried.partitions == 4 and retried.rows == 100
    assert [t.attempts for t in prof.tasks if t.pass_index == 0] == [2, 2, 2, 2]
    assert not failed.ok and [(t.attempts, t.ok) for t in prof.tasks if t.pass_index == 1] == [
        (2, False)
    ]
    assert prof.wall is not None and "(failed)" in prof.summary()
    assert json.loads(json.dumps(prof.to_dict()))["passes"][1]["ok"] is False


MPI_SCRIPT = """
import json, os, sys
import shardfit
from shardfit.engine import run_pass, session
from shardfit.engine._testing import GramTask, seeded_source
from mpi4py import MPI
source = seeded_source(6, nrows=40, ncols=3, seed=1)
with shardfit.profile() as prof:
    run_pass(GramTask(), source, backend="mpi", pass_name="gram")
rank = MPI.COMM_WORLD.rank
with open(f"{sys.argv[1]}.{rank}", "w") as handle:
    json.dump({"pid": os.getpid(), "profile": prof.to_dict(), "summary": prof.summary()}, handle)
"""


@pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec not installed (the mpi extra)")
def test_mpi_profile_shows_every_rank(tmp_path) -> None:
    script, out = tmp_path / "prof.py", tmp_path / "out"
    script.write_text(MPI_SCRIPT)
    done = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(script), str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads(Path(f"{out}.{rank}").read_text()) for rank in (0, 1)]
    pids = {str(rank["pid"]) for rank in ranks}
    for rank in ranks:
        (one,) = rank["profile"]["passes"]
        assert (one["name"], one["partitions"], one["rows"]) == ("gram", 6, 240)
        tasks = rank["profile"]["tasks"]
        assert [task["partition"] for task in tasks] == list(range(6))
        assert {task["worker"].rsplit(":", 1)[1] for task in tasks} == pids
        assert "gram" in rank["summary"] and "240" in rank["summary"]


def test_gram_task_rows_are_reference_for_mpi_test() -> None:
    """The MPI test's 240 rows: six seeded partitions of 40 rows, counted independently."""
    source = seeded_source(6, nrows=40, ncols=3, seed=1)
    with shardfit.profile() as prof:
        stat = run_pass(GramTask(), source, backend="serial")
    assert stat.nrows == 240 == prof.passes[0].rows


def test_worker_start_and_task_loading_are_not_hidden_in_pass_time(frame: pd.DataFrame) -> None:
    """Fresh ``processes`` workers spawn and import for a second or two, then unpickling
    the SVD task imports its modules (another second). The profile showed that time as
    the first passes' wall with ~0% busy and a ``backend start`` of a few ms; it now
    counts the start as ``backend_start`` and the unpickling as the tasks' ``load``."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import shardfit.engine.retries"], check=True)
    worker_import = time.perf_counter() - started  # what a worker does before "ready"
    source = shardfit.from_pandas(frame, 2)
    with shardfit.profile() as prof:
        with session("processes", workers=2) as sess:
            # A pass right after the start: nothing on the driver overlaps the start.
            run_pass(GramTask(), seeded_source(2, nrows=10, ncols=2), backend=sess)
            pca = shardfit.svd("0 + x1 + x2 + x3", source, center=True, backend=sess)
    assert prof.driver_phases["backend_start"] >= 0.5 * worker_import, prof.summary()
    serial = shardfit.svd("0 + x1 + x2 + x3", source, center=True, backend="serial")
    assert pca.singular_values_array.tobytes() == serial.singular_values_array.tobytes()
    (one,) = [one for one in prof.passes if one.name == "svd-qr"]
    assert one.phases["load"] > 0 and one.busy > 0.5, prof.summary()
    for task in prof.tasks:
        assert task.elapsed >= sum(task.phases.values()) >= task.phases["load"] > 0
    assert "load" in prof.summary().split("\n\n")[1].splitlines()[0]


def test_cli_fit_profile_is_printed_when_the_fit_fails(tmp_path) -> None:
    """``shardfit fit --profile`` printed nothing of the profile when the fit failed,
    though the passes before the failure are what a user profiling it wants to see."""
    rng = np.random.default_rng(1)
    data = pd.DataFrame(rng.standard_normal((400, 2)), columns=["x1", "x2"])
    data["y"] = (data.x1 > 0).astype(float)
    data.loc[350, "y"] = 5.0  # outside the binomial's support, in the last partition
    path = tmp_path / "bad.parquet"
    data.to_parquet(path, row_group_size=100)
    args = [str(path), "y ~ x1 + x2", "--family", "binomial", "--backend", "serial", "--profile"]
    done = subprocess.run(
        [sys.executable, "-m", "shardfit", "fit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "response outside the support of the binomial family" in done.stderr
    assert "row 350" in done.stderr
    table = done.stderr[done.stderr.index("Profile: 1 passes, 4 tasks") :]
    assert "glm-prepare (failed)" in table and "peak RSS" in table
