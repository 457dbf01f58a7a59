"""Sessions: one open backend kept alive across the passes of an iterative fit.

Starting a pool of processes or a Dask ``LocalCluster`` takes from a fraction of a
second to a few seconds; an IRLS fit makes ten passes or more. An estimator opens a
session once and hands it to every :func:`~shardfit.engine.run.run_pass`::

    with session(backend, workers=workers) as sess:
        for step in range(max_iter):
            gram = run_pass(task, source, backend=sess)

``session(existing_session)`` returns a view of it that does not close it on exit
(when it is open), so estimators can always wrap what they were given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

from shardfit.engine.backends import Backend, resolve_backend
from shardfit.engine.profile import note_driver

__all__ = ["Session", "session"]

T = TypeVar("T")


class Session:
    """An open backend and whether this session must close it.

    Parameters
    ----------
    backend : Backend
        The backend to run passes on.
    owned : bool
        Whether :meth:`close` stops the backend (False for a backend or session the
        caller opened and will close).
    """

    def __init__(self, backend: Backend, *, owned: bool) -> None:
        self.backend = backend
        self.owned = owned

    @property
    def name(self) -> str:
        """The backend's registry name."""
        return self.backend.name

    @property
    def nworkers(self) -> int:
        """How many tasks run at once."""
        return self.backend.nworkers

    def open(self) -> Self:
        """Start the backend (idempotent)."""
        if not self.backend.is_open:
            started = time.perf_counter()
            self.backend.open()
            note_driver("backend_start", time.perf_counter() - started)  # if profiling
        return self

    def close(self) -> None:
        """Stop the backend if this session owns it."""
        if self.owned and self.backend.is_open:
            started = time.perf_counter()
            self.backend.close()
            note_driver("backend_stop", time.perf_counter() - started)  # if profiling

    @property
    def is_root(self) -> bool:
        """Whether this process is the root (False on MPI ranks other than 0)."""
        return self.backend.is_root

    def on_root(self, step: Callable[[], T]) -> T:
        """Run ``step`` on the root alone and give every process its value or error.

        ``step`` is work that must happen once (taking an output folder, writing a
        manifest, drawing random folds). Under MPI every rank calls this and waits for
        the root's outcome, so none goes on (or returns) before the root is done, none
        waits forever in a later collective for a root that failed, and all go on with
        the root's value. Elsewhere the one process is the root, and this is
        ``step()``. The backend need not be open (MPI's opens on its first collective).

        Parameters
        ----------
        step : callable
            Called with no arguments, on the root only; its value must pickle.

        Returns
        -------
        object
            ``step()``'s value, on every process.
        """
        from shardfit.engine.retries import portable

        value: Any = None
        error: Exception | None = None
        if self.backend.is_root:
            try:
                value = step()
            except Exception as caught:
                error = caught
        # portable(): an error that does not pickle would fail the broadcast on the
        # root alone and leave the other ranks waiting in it.
        shared, problem = self.backend.share((value, None if error is None else portable(error)))
        if error is not None:
            raise error
        if problem is not None:
            raise problem
        return shared

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Session({self.backend!r}, owned={self.owned})"


def session(
    backend: Any = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    partitions: int | None = None,
) -> Session:
    """Open a backend for several passes (use as a context manager).

    Parameters
    ----------
    backend : str, Backend, Session, distributed.Client, mpi4py communicator or None
        As for :func:`~shardfit.engine.backends.resolve_backend`; a session is
        reused without taking ownership.
    workers : int or None
        Workers for backends that start their own.
    scheduler : str or None
        A Dask scheduler address.
    partitions : int or None
        How many partitions the passes will run over, when known. With no
        ``backend``, ``workers`` or ``scheduler`` given, one partition (or none) runs
        serially in this process: a pool of worker processes would have nothing to
        share out, and starting it (1.5-2 s) costs more than a pass over a partition
        that fits in memory. The numbers are the same bits on every backend.

    Returns
    -------
    Session
        Not yet started: ``with`` (or :meth:`Session.open`) starts it.
    """
    if isinstance(backend, Session):
        if workers is not None or scheduler is not None:
            raise ValueError("'workers' and 'scheduler' cannot change an existing session")
        backend = backend.backend
    if backend is None and workers is None and scheduler is None and partitions is not None:
        backend = "serial" if partitions <= 1 else None
    resolved = resolve_backend(backend, workers=workers, scheduler=scheduler)
    # Whoever opens a backend closes it: one the caller already opened (directly or
    # through an outer session) stays theirs; a closed one is opened and closed here.
    return Session(resolved, owned=not resolved.is_open)
