"""The Dask backend: a LocalCluster made on demand, and a cluster of `dask` commands."""

from __future__ import annotations

import os

import pytest

from shardfit.engine import run_pass, session
from shardfit.engine._testing import GramTask, KillOnceTask, RaisingTask, count_markers
from shardfit.engine.backends import DaskBackend
from shardfit.errors import BackendError, PartitionTaskError, ReadError


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_local_cluster_is_bitwise_equal_and_cleaned_up(
    source, reference, workers, isolated_tmp, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    result = run_pass(GramTask(), source, backend="dask", workers=workers)
    assert result.digest() == reference
    # LocalCluster sets OMP_NUM_THREADS=1 in this process; the backend restores it.
    assert os.environ["OMP_NUM_THREADS"] == "7"


def test_local_cluster_session_serves_many_passes(source, reference, tmp_path, isolated_tmp):
    with session("dask", workers=2) as sess:
        client = sess.backend.client
        for _ in range(3):
            assert run_pass(GramTask(), source, backend=sess).digest() == reference
        with pytest.raises(PartitionTaskError, match="seeded-7-3 after 2 attempt"):
            run_pass(RaisingTask("value", 3), source, backend=sess, retries=1)
        assert run_pass(GramTask(), source, backend=sess).digest() == reference
        assert sess.backend.client is client
    assert client.status == "closed"


def test_cluster_of_dask_commands_by_address(dask_commands_cluster, source, reference):
    result = run_pass(GramTask(), source, backend=dask_commands_cluster)
    assert result.digest() == reference


def test_cluster_of_dask_commands_by_client(dask_commands_cluster, source, reference):
    from distributed import Client

    with Client(dask_commands_cluster) as client:
        assert run_pass(GramTask(), source, backend=client).digest() == reference
        assert client.status == "running"  # a client we were given stays open


def test_killed_dask_worker_is_survived(dask_commands_cluster, source, reference, tmp_path):
    from distributed import Client

    task = KillOnceTask(str(tmp_path), index=2)
    with Client(dask_commands_cluster) as client:
        result = run_pass(task, source, backend=client)
        assert (tmp_path / "killed-2").exists()
        assert result.digest() == reference
        # Let the nanny bring the worker back for the tests that follow.
        client.wait_for_workers(2, timeout=60)
    assert count_markers(tmp_path, "computed-") >= source.npartitions


def test_errors_from_dask_workers(dask_commands_cluster, source, tmp_path):
    with pytest.raises(ReadError, match=r"malformed line in partition seeded-7-1"):
        run_pass(RaisingTask("read", 1), source, backend=dask_commands_cluster)
    with pytest.raises(PartitionTaskError, match="seeded-7-8 after 3 attempt") as info:
        run_pass(RaisingTask("value", 8), source, backend=dask_commands_cluster)
    assert 'raise ValueError(f"bad value in' in info.value.remote_traceback


def test_unreachable_scheduler_is_a_backend_error(source):
    with pytest.raises(
        BackendError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        DaskBackend(address="tcp://127.0.0.1:9", timeout=1).open()


def test_workers_conflicts_with_an_existing_cluster():
    with pytest.raises(ValueError, match="applies only to the LocalCluster"):
        DaskBackend(address="tcp://127.0.0.1:8786", workers=3)
