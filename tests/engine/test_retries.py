"""Failures: retries on every backend, clear errors after them, data errors unchanged."""

from __future__ import annotations

import pytest

from shardfit.engine import run_pass
from shardfit.engine._testing import FlakyTask, RaisingTask, count_markers
from shardfit.engine.retries import RemoteTaskError
from shardfit.errors import PartitionTaskError, ReadError, UnseenLevelError


def test_flaky_task_succeeds_within_its_retries(source, reference, tmp_path, local_backend):
    task = FlakyTask(str(tmp_path), failures=2)
    result = run_pass(task, source, backend=local_backend, retries=2)
    assert result.digest() == reference
    assert count_markers(tmp_path, "attempt-") == 3 * source.npartitions


def test_failure_after_retries_names_partition_and_keeps_traceback(source, tmp_path, local_backend):
    task = RaisingTask("value", index=4, marker_dir=str(tmp_path))
    with pytest.raises(PartitionTaskError, match="failed on partition seeded-7-4 after 3") as info:
        run_pass(task, source, backend=local_backend, retries=2)
    error = info.value
    assert error.key == "seeded-7-4"
    assert 'raise ValueError(f"bad value in' in error.remote_traceback
    assert "Original traceback (from the worker)" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert str(error.__cause__) == "bad value in seeded-7-4"
    assert count_markers(tmp_path, "attempt-seeded-7-4") == 3


@pytest.mark.parametrize(
    ("kind", "error_type", "message"),
    [
        ("read", ReadError, "malformed line in partition seeded-7-2 (line 3)"),
        ("unseen", UnseenLevelError, "unseen level 'z' in partition seeded-7-2"),
    ],
)
def test_data_errors_are_raised_unchanged_without_retries(
    source, tmp_path, local_backend, kind, error_type, message
):
    task = RaisingTask(kind, index=2, marker_dir=str(tmp_path))
    with pytest.raises(error_type) as info:
        run_pass(task, source, backend=local_backend, retries=2)
    assert type(info.value) is error_type
    assert str(info.value) == message
    assert count_markers(tmp_path, "attempt-") == 1
    assert any("seeded-7-2" in note for note in info.value.__notes__)


def test_unpicklable_exception_comes_back_as_text(source, shared_pool):
    with pytest.raises(PartitionTaskError, match="_Unpicklable: lock in seeded-7-0") as info:
        run_pass(RaisingTask("unpicklable"), source, backend=shared_pool, retries=0)
    assert isinstance(info.value.__cause__, RemoteTaskError)
    assert "_Unpicklable" in info.value.remote_traceback


@pytest.mark.parametrize(
    ("backend", "workers"), [("serial", None), ("threads", 2), ("processes", 2)]
)
def test_keyboard_interrupt_in_a_task_stops_the_pass_cleanly(
    source, tmp_path, backend, workers, isolated_tmp
):
    task = RaisingTask("interrupt", index=3, marker_dir=str(tmp_path), delay=0.05)
    with pytest.raises(KeyboardInterrupt):
        run_pass(task, source, backend=backend, workers=workers)
    # Not retried, and the pass stopped: not every partition was computed.
    assert count_markers(tmp_path, "attempt-") == 1
    assert count_markers(tmp_path, "computed-") < source.npartitions - 1


def _unpicklable_statistic(partition):
    return lambda: partition  # a local lambda: standard pickle refuses it


def test_statistic_that_cannot_travel_back_is_reported(source, shared_pool):
    with pytest.raises(PartitionTaskError, match=r"seeded-7-\d+ after 1 attempt.*pickle"):
        run_pass(_unpicklable_statistic, source, backend=shared_pool, retries=0)
