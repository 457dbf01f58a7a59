"""The processes backend: spawned workers, survival of SIGKILL, nothing left behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shardfit.engine import run_pass, session
from shardfit.engine._testing import GramTask, KillOnceTask, count_markers
from shardfit.engine.backends import ProcessesBackend
from shardfit.engine.retries import WorkerLostError
from shardfit.errors import PartitionTaskError


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_killed_mid_task_is_survived(source, reference, tmp_path, workers, isolated_tmp):
    task = KillOnceTask(str(tmp_path), index=5)
    result = run_pass(task, source, backend="processes", workers=workers)
    assert (tmp_path / "killed-5").exists()
    assert result.digest() == reference
    # Only the killed partition ran twice; the others were not resubmitted.
    assert count_markers(tmp_path, "computed-") == source.npartitions
    assert multiprocessing.active_children() == []


@dataclass(frozen=True)
class _AlwaysDie:
    index: int

    def __call__(self, partition):
        if partition.index == self.index:
            os.kill(os.getpid(), signal.SIGKILL)
        return GramTask()(partition)


def test_a_partition_that_always_kills_its_worker_fails_after_retries(source, isolated_tmp):
    with pytest.raises(PartitionTaskError, match=r"seeded-7-6 after 2 attempt.*signal 9") as info:
        run_pass(_AlwaysDie(6), source, backend="processes", workers=1, retries=1)
    assert info.value.key == "seeded-7-6"
    assert isinstance(info.value.__cause__, WorkerLostError)


def test_pool_survives_kills_and_failures_across_passes(source, reference, tmp_path, isolated_tmp):
    with session("processes", workers=2) as sess:
        assert run_pass(KillOnceTask(str(tmp_path), 0), source, backend=sess).digest() == reference
        with pytest.raises(PartitionTaskError):
            run_pass(_AlwaysDie(1), source, backend=sess, retries=0)
        assert run_pass(GramTask(), source, backend=sess).digest() == reference


def test_fork_is_refused():
    with pytest.raises(ValueError, match=r"'spawn' or 'forkserver'\. Got 'fork'"):
        ProcessesBackend(start_method="fork")


def test_broadcast_reaches_every_worker(tmp_path, shared_pool):
    (tmp_path / "pids").mkdir()
    shared_pool.backend.broadcast(_touch_pid, str(tmp_path / "pids"))
    pids = {int(p.name) for p in (tmp_path / "pids").iterdir()}
    assert os.getpid() in pids and len(pids) == 3


def _touch_pid(directory: str) -> None:
    (Path(directory) / str(os.getpid())).touch()


def test_script_without_main_guard_gets_a_clear_error(tmp_path, isolated_tmp):
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from shardfit.engine import run_pass\n"
        "from shardfit.engine._testing import GramTask, seeded_source\n"
        "run_pass(GramTask(), seeded_source(3), backend='processes', workers=1)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert "BackendError: worker processes die while starting" in done.stderr
    assert "if __name__ == '__main__':" in done.stderr
