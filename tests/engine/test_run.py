"""run_pass and map_partitions: ordered, bitwise-identical passes on every local backend."""

from __future__ import annotations

import os

import numpy as np
import pytest

from shardfit.engine import PartitionCache, map_partitions, run_pass, session
from shardfit.engine._testing import CachedGramTask, GramStat, GramTask, seeded_source


@pytest.mark.parametrize(
    ("backend", "workers"),
    [("serial", None), ("threads", 1), ("threads", 2), ("threads", 4)]
    + [("processes", n) for n in (1, 2, 4)],
)
def test_bitwise_equal_across_local_backends(source, reference, backend, workers, isolated_tmp):
    result = run_pass(GramTask(), source, backend=backend, workers=workers)
    assert result.digest() == reference
    assert result.nrows == sum(p.nrows for p in source.partitions)


def test_map_partitions_keeps_partition_order(source, shared_pool):
    # Two workers finish in varying order; the list is still in partition order.
    results = map_partitions(GramTask(), source, backend=shared_pool)
    expected = [GramStat.of(p.values()).digest() for p in source.partitions]
    assert [r.digest() for r in results] == expected


def test_lambda_tasks_run_on_processes(shared_pool):
    source = seeded_source(4, nrows=5)
    assert map_partitions(lambda p: p.index * 10, source, backend=shared_pool) == [
        0,
        10,
        20,
        30,
    ]


def test_blas_environment_is_left_alone(source, isolated_tmp, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    run_pass(GramTask(), source, backend="processes", workers=2)
    assert "OMP_NUM_THREADS" not in os.environ


def test_single_partition_source(shared_pool):
    source = seeded_source(1, nrows=3)
    result = run_pass(GramTask(), source, backend=shared_pool)
    np.testing.assert_array_equal(result.xtx, GramStat.of(source.partitions[0].values()).xtx)


def test_task_must_be_callable(source):
    with pytest.raises(TypeError, match="The task must be callable"):
        run_pass("gram", source, backend="serial")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, "The 'retries' parameter must be an int >= 0. Got -1"),
        ({"retries": 1.5}, "The 'retries' parameter must be an int >= 0"),
        ({"pass_name": ""}, "The 'pass_name' parameter must be a non-empty str"),
        ({"workers": 0}, "The 'workers' parameter must be a positive int or None. Got 0"),
        ({"backend": "serial", "workers": 3}, "serial backend must be None or 1. Got 3"),
        ({"progress": "yes"}, "The 'progress' parameter must be a bool"),
    ],
)
def test_parameters_are_validated(source, kwargs, message):
    options = {"backend": "serial", **kwargs}
    with pytest.raises(ValueError, match=message):
        run_pass(GramTask(), source, **options)


class _CtrlC:
    """A progress callback that interrupts the driver, as Ctrl-C would, mid-pass."""

    def __init__(self, after: int) -> None:
        self.after = after

    def __call__(self, event) -> None:
        if event.done == self.after:
            raise KeyboardInterrupt


@pytest.mark.parametrize("backend", ["threads", "processes", "dask"])
def test_driver_interrupt_leaves_no_process_or_file(source, tmp_path, backend, isolated_tmp):
    with pytest.raises(KeyboardInterrupt):
        with session(backend, workers=2) as sess, PartitionCache(sess, max_bytes=0) as cache:
            task = CachedGramTask(cache.ref, delay=0.05)
            run_pass(task, source, backend=sess, progress=_CtrlC(after=3))
    # isolated_tmp checks that no worker and no spill file is left.
