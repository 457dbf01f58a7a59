"""Backends by name, and the resolver from what users pass to an open-able backend."""

from __future__ import annotations

import sys
from typing import Any

from shardfit.engine.backends.base import Backend, Job, cpu_count
from shardfit.engine.backends.dask import DaskBackend
from shardfit.engine.backends.mpi import MPIBackend
from shardfit.engine.backends.processes import ProcessesBackend
from shardfit.engine.backends.serial import SerialBackend
from shardfit.engine.backends.threads import ThreadsBackend

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "Backend",
    "DaskBackend",
    "Job",
    "MPIBackend",
    "ProcessesBackend",
    "SerialBackend",
    "ThreadsBackend",
    "cpu_count",
    "resolve_backend",
]

#: Backend classes by name.
BACKENDS: dict[str, type[Backend]] = {
    "serial": SerialBackend,
    "threads": ThreadsBackend,
    "processes": ProcessesBackend,
    "dask": DaskBackend,
    "mpi": MPIBackend,
}

#: What ``backend=None`` means.
DEFAULT_BACKEND = "processes"

_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")


def _is_instance_of(value: Any, module: str, name: str) -> bool:
    # Only look at modules already imported: a Client or a communicator can only
    # exist if its module is loaded, and importing Dask or MPI here would be slow
    # (and would initialise MPI in processes that never use it).
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(value, getattr(loaded, name))


def _valid() -> str:
    names = ", ".join(repr(name) for name in sorted(BACKENDS))
    return (
        f"one of {names}, a Dask scheduler address such as 'tcp://host:8786', a "
        "distributed.Client, an mpi4py communicator, or a shardfit session"
    )


def resolve_backend(
    backend: Any = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
) -> Backend:
    """Turn what a user passed into an (unopened) backend.

    Parameters
    ----------
    backend : str, Backend, distributed.Client, mpi4py.MPI.Comm or None
        A name from :data:`BACKENDS`, a scheduler address, a client, a communicator,
        or a backend instance (returned as is). ``None`` means ``"processes"``, or
        ``"dask"`` when ``scheduler`` is given.
    workers : int or None
        Workers for the backends that start their own (``None``: one per core).
    scheduler : str or None
        A Dask scheduler address, as the CLI's ``--scheduler`` gives it.

    Returns
    -------
    Backend

    Raises
    ------
    ValueError
        For an unknown name (listing the valid ones) or conflicting arguments.
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)):
        raise ValueError(
            f"The 'workers' parameter must be a positive int or None. Got {workers!r}."
        )
    if workers is not None and workers < 1:
        raise ValueError(
            f"The 'workers' parameter must be a positive int or None. Got {workers!r}."
        )
    if scheduler is not None:
        if backend not in (None, "dask"):
            raise ValueError(f"a Dask scheduler address needs backend='dask', not {backend!r}")
        return DaskBackend(address=scheduler, workers=workers)
    if isinstance(backend, Backend):
        if workers is not None and workers != backend.nworkers:
            raise ValueError("'workers' cannot change the size of an existing backend")
        return backend
    if backend is None:
        backend = DEFAULT_BACKEND
    if isinstance(backend, str):
        name = backend.strip()
        if name.lower() in BACKENDS:
            return BACKENDS[name.lower()](workers=workers)  # type: ignore[call-arg]
        if name.startswith(_SCHEMES):
            return DaskBackend(address=name, workers=workers)
        raise ValueError(f"Unknown backend {backend!r}. Use {_valid()}.")
    if _is_instance_of(backend, "distributed", "Client"):
        return DaskBackend(client=backend, workers=workers)
    if _is_instance_of(backend, "mpi4py.MPI", "Comm"):
        return MPIBackend(comm=backend, workers=workers)
    raise ValueError(
        f"Unknown backend {backend!r} of type {type(backend).__name__}. Use {_valid()}."
    )
