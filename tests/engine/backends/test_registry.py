"""resolve_backend: names, addresses, clients, communicators, and clear errors."""

from __future__ import annotations

import pytest

from shardfit.engine import BACKENDS, resolve_backend, session
from shardfit.engine.backends import (
    DaskBackend,
    MPIBackend,
    ProcessesBackend,
    SerialBackend,
    ThreadsBackend,
    cpu_count,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, ProcessesBackend),
        ("serial", SerialBackend),
        ("threads", ThreadsBackend),
        ("Processes", ProcessesBackend),
        ("dask", DaskBackend),
        ("mpi", MPIBackend),
        ("tcp://127.0.0.1:8786", DaskBackend),
    ],
)
def test_names_and_addresses(given, expected):
    assert type(resolve_backend(given)) is expected


def test_default_is_one_worker_per_core():
    assert resolve_backend(None).nworkers == cpu_count()
    assert resolve_backend("threads", workers=3).nworkers == 3


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(
        ValueError,
        match=r"Unknown backend 'spark'. Use one of 'dask', 'mpi', "
        r"'processes', 'serial', 'threads', a Dask scheduler address",
    ):
        resolve_backend("spark")
    with pytest.raises(ValueError, match="Unknown backend 3 of type int"):
        resolve_backend(3)


def test_cli_options():
    backend = resolve_backend(None, scheduler="tcp://10.0.0.5:8786")
    assert isinstance(backend, DaskBackend) and "10.0.0.5" in backend.describe()
    with pytest.raises(ValueError, match="needs backend='dask', not 'threads'"):
        resolve_backend("threads", scheduler="tcp://10.0.0.5:8786")


def test_backend_instances_pass_through_and_stay_the_callers():
    backend = ThreadsBackend(workers=2)
    assert resolve_backend(backend) is backend
    backend.open()
    with session(backend) as sess:
        assert not sess.owned
    assert backend.is_open
    backend.close()


def test_client_is_recognised(dask_commands_cluster):
    # (Communicators are recognised in test_mpi.py: MPI only starts under mpiexec.)
    from distributed import Client

    with Client(dask_commands_cluster) as client:
        backend = resolve_backend(client)
        assert isinstance(backend, DaskBackend) and backend.client is client
        with pytest.raises(ValueError, match="applies only to the LocalCluster"):
            resolve_backend(client, workers=2)


def test_registry_is_a_plain_dict():
    assert set(BACKENDS) == {"serial", "threads", "processes", "dask", "mpi"}
