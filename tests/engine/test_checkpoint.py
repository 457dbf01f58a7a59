"""Checkpoints: a pass killed midway resumes, computing only what is missing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from shardfit.engine import run_pass, task_fingerprint
from shardfit.engine._testing import GramTask, RaisingTask, count_markers, seeded_source
from shardfit.engine.checkpoint import CheckpointStore, checkpoint_key

from .conftest import wait_until

DRIVER = """
import sys
from shardfit.engine import run_pass
from shardfit.engine._testing import GramTask, seeded_source

if __name__ == "__main__":
    checkpoint, markers = sys.argv[1:3]
    source = seeded_source(11, nrows=40, ncols=3, seed=7)
    task = GramTask(marker_dir=markers, delay=0.3)
    run_pass(task, source, backend="processes", workers=2, checkpoint=checkpoint)
"""


def _saved(checkpoint: Path) -> int:
    return sum(1 for _ in checkpoint.glob("*/part-*.json"))


def test_driver_killed_midway_resumes_from_checkpoint(source, reference, tmp_path, isolated_tmp):
    checkpoint, first, second = tmp_path / "ckpt", tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(script), str(checkpoint), str(first)], start_new_session=True
    )
    try:
        assert wait_until(lambda: _saved(checkpoint) >= 4, timeout=60)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and its workers, mid-pass
        driver.wait()
    saved = _saved(checkpoint)
    assert 4 <= saved < source.npartitions

    task = GramTask(marker_dir=str(second))  # resumed on another backend: same answer
    result = run_pass(task, source, backend="threads", workers=2, checkpoint=checkpoint)
    assert result.digest() == reference
    assert count_markers(second, "computed-") == source.npartitions - saved
    # A third run computes nothing.
    again = run_pass(task, source, backend="serial", checkpoint=checkpoint)
    assert again.digest() == reference
    assert count_markers(second, "computed-") == source.npartitions - saved


def test_failed_pass_keeps_what_it_finished(source, reference, tmp_path, isolated_tmp):
    failing = RaisingTask("value", index=9, marker_dir=str(tmp_path))
    with pytest.raises(Exception, match="seeded-7-9"):
        run_pass(failing, source, backend="serial", retries=0, checkpoint=tmp_path / "c")
    store = CheckpointStore(tmp_path / "c", source=source, task=failing, pass_name="pass")
    assert len(store) == 9
    assert not list((tmp_path / "c").glob("*/.*.tmp"))
    # Same fingerprint class of result, different task: a new key, nothing reused.
    assert checkpoint_key(source, failing, "pass") != checkpoint_key(source, GramTask(), "pass")


def test_key_depends_on_source_task_and_pass(source):
    other = seeded_source(source.npartitions, nrows=40, ncols=3, seed=8)
    keys = {
        checkpoint_key(source, GramTask(), "pass"),
        checkpoint_key(other, GramTask(), "pass"),
        checkpoint_key(source, GramTask(), "irls-3"),
        checkpoint_key(source, RaisingTask("value"), "pass"),
    }
    assert len(keys) == 4
    # fingerprint() ignores what does not change the result (markers, delays).
    assert checkpoint_key(source, GramTask(delay=1.0), "pass") == checkpoint_key(
        source, GramTask(), "pass"
    )


def _module_function(partition):  # pragma: no cover - only fingerprinted
    return partition


class _AddressRepr:
    def __call__(self, partition):  # pragma: no cover - only fingerprinted
        return partition


def test_task_fingerprints():
    assert task_fingerprint(GramTask()) == "GramTask/1"
    assert task_fingerprint(_module_function).endswith("test_checkpoint._module_function")
    assert "RaisingTask(kind='value'" in task_fingerprint(RaisingTask("value"))
    with pytest.warns(UserWarning, match="give the task a fingerprint"):
        task_fingerprint(_AddressRepr())


@dataclass
class _NoState:
    total: float

    def merge(self, other: _NoState) -> _NoState:
        return _NoState(self.total + other.total)


def _no_state_task(partition) -> _NoState:
    return _NoState(float(np.sum(partition.values())))


def test_statistic_without_to_state_is_a_clear_error(source, tmp_path):
    with pytest.raises(TypeError, match="_NoState has no to_state"):
        run_pass(_no_state_task, source, backend="serial", checkpoint=tmp_path)


def test_stale_temporaries_of_a_killed_writer_are_removed(source, tmp_path):
    store = CheckpointStore(tmp_path, source=source, task=GramTask(), pass_name="p")
    stale, fresh = store.directory / ".part-000001.json.a.tmp", store.directory / ".b.tmp"
    stale.touch()
    fresh.touch()
    os.utime(stale, (1_000_000, 1_000_000))
    CheckpointStore(tmp_path, source=source, task=GramTask(), pass_name="p")
    assert not stale.exists() and fresh.exists()
