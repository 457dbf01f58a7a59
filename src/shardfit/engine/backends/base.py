"""The backend contract: run a task on some partitions, yield outcomes as they finish.

A backend only executes. Ordering, merging, checkpoints and progress live in
:mod:`shardfit.engine.run`, so that adding a backend touches one module here and
cannot change an answer: the driver stores outcomes by partition index and merges
along a tree that depends only on the number of partitions.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from shardfit.data.partition import Partition
from shardfit.engine.retries import Outcome, outcome_error

__all__ = ["Backend", "Job", "cpu_count"]


def cpu_count() -> int:
    """The cores this process may use (its affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Job:
    """One pass's work for a backend.

    Attributes
    ----------
    task : callable
        Maps a partition to a statistic.
    partitions : tuple of Partition
        Every partition of the source (indices refer to this tuple).
    indices : tuple of int
        The partitions to run, in order.
    retries : int
        Extra attempts for a task that raises.
    name : str
        The pass name, for task keys and messages.
    measure : bool
        Whether workers record each task's phases and peak memory (a profiled pass).
    """

    task: Callable[[Partition], Any]
    partitions: tuple[Partition, ...]
    indices: tuple[int, ...]
    retries: int
    name: str
    measure: bool = False


class Backend(ABC):
    """Runs tasks on partitions somewhere, and can reach every worker it uses.

    Backends are created unopened (cheap, picklable settings) and started by
    :meth:`open`; :class:`~shardfit.engine.session.Session` owns that life cycle.
    """

    #: The registry name.
    name: ClassVar[str]
    #: Whether workers see the driver's files (then the driver may clean worker files).
    shares_filesystem: ClassVar[bool] = True
    #: Whether this process receives every statistic of a pass, so that it can merge
    #: them as they arrive (False under MPI: ranks gather theirs to rank 0 at the end).
    merges_locally: ClassVar[bool] = True

    def __init__(self) -> None:
        self.is_open = False
        self._pins = 0

    def open(self) -> None:
        """Start workers, pools or connections (idempotent)."""
        self.is_open = True

    def close(self) -> None:
        """Stop what :meth:`open` started (idempotent); leaves no process behind."""
        self.is_open = False

    @property
    @abstractmethod
    def nworkers(self) -> int:
        """How many tasks can run at once."""

    @property
    def cache_processes(self) -> int:
        """How many processes hold a partition cache (divides the memory bound)."""
        return self.nworkers

    @property
    def is_root(self) -> bool:
        """Whether this process receives the merged result (False on MPI ranks > 0)."""
        return True

    def local_indices(self, npartitions: int) -> Sequence[int]:
        """The partitions this process is responsible for (all, except under MPI)."""
        return range(npartitions)

    @abstractmethod
    def run(self, job: Job) -> Generator[Outcome, None, None]:
        """Run ``job.task`` on ``job.indices`` and yield outcomes as they complete.

        Closing the generator early (an error, an interrupt) cancels what is left
        and leaves the backend usable for the next pass.
        """

    def broadcast(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` once in every worker process (and here where they are one)."""
        fn(*args)

    def pin_partitions(self, on: bool) -> None:
        """Open (``on``) or close a stretch of passes that read worker-local partition
        caches (:class:`~shardfit.engine.cache.PartitionCache`); they may nest.

        While one is open, a backend that can (``processes``, ``dask``) sends each
        partition back to the worker that ran it last, whose cache holds it. Outside,
        and at the start of the outermost one (a new cache holds nothing anywhere),
        partitions go to whichever worker is free: where a partition ran in an earlier
        fit is no reason to send it there, and following it kept one fit's uneven
        placement (3 partitions to 1 after a slow first task) in every later pass.
        """
        self._pins = max(0, self._pins + (1 if on else -1))
        if self._pins == (1 if on else 0):
            self._forget_placement()

    @property
    def pinned(self) -> bool:
        """Whether passes now follow where each partition ran last."""
        return self._pins > 0

    def _forget_placement(self) -> None:
        """Drop what the backend knows of where partitions ran (none here)."""
        return None

    def share(self, value: Any) -> Any:
        """Give every process the root's ``value`` (identity, except under MPI)."""
        return value

    def wait_ready(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, until the workers :meth:`open` started can
        take tasks (here they can at once); return whether there was anything to wait for.

        A profiled pass calls it first, so that the workers' start counts as the
        driver's ``backend_start`` rather than as the first pass's wall time.
        """
        return False

    def gather_tasks(self, tasks: list[Any]) -> list[Any]:
        """Every process's task records of a profiled pass (here, all are local)."""
        return tasks

    def collect(
        self,
        results: dict[int, Any],
        failure: Outcome | None,
        job: Job,
    ) -> list[Any] | None:
        """Return every partition's statistic in order, or raise the pass's failure.

        Under MPI this is where ranks exchange results; elsewhere it only orders.
        """
        if failure is not None:
            key = job.partitions[failure.index].key
            raise outcome_error(failure, key=key, task=job.task)
        return [results[index] for index in range(len(job.partitions))]

    def describe(self) -> str:
        """A short description for messages and reports."""
        return f"{self.name} ({self.nworkers} workers)"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}{'' if self.is_open else ' closed'}>"
