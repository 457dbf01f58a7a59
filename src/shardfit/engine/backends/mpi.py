"""The MPI backend: every rank of an ``mpiexec -n K`` job computes its share.

The program runs on every rank (SPMD). Rank ``r`` of ``K`` computes the partitions
``i`` with ``i % K == r``, reading them itself; the statistics are gathered to rank 0
with their indices, put in partition order and tree-merged there, so the answer is
bitwise the one every other backend gives. Rank 0 gets it; the others get ``None``,
or the same value with ``allreduce=True`` (a broadcast from rank 0).

A failure on any rank is raised on every rank (the failed outcome with the lowest
partition index is broadcast), so no rank waits forever for a collective the others
left. That includes what would otherwise leave one rank alone: a task that raises
``KeyboardInterrupt`` or ``SystemExit``, and a statistic that cannot be pickled to
travel to rank 0 (or unpickled there). A rank that dies takes the job with it: MPI
does not survive lost ranks.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Generator, Sequence
from typing import Any

from shardfit.engine.backends.base import Backend, Job
from shardfit.engine.retries import Outcome, RemoteTaskError, outcome_error, run_task
from shardfit.errors import BackendError

__all__ = ["MPIBackend"]


class MPIBackend(Backend):
    """Run a pass across the ranks of an MPI communicator.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm or None
        The communicator (``MPI.COMM_WORLD`` when ``None``).
    workers : int or None
        If given, must equal the communicator's size (``mpiexec -n`` decides).
    """

    name = "mpi"
    shares_filesystem = False
    merges_locally = False

    def __init__(self, *, comm: Any = None, workers: int | None = None) -> None:
        super().__init__()
        self._comm = comm
        self._requested = workers

    @property
    def comm(self) -> Any:
        """The communicator (opens the backend if needed)."""
        if self._comm is None:
            self.open()
        return self._comm

    @property
    def nworkers(self) -> int:
        """The number of ranks."""
        return int(self.comm.Get_size())

    @property
    def is_root(self) -> bool:
        """Whether this is rank 0."""
        return int(self.comm.Get_rank()) == 0

    def open(self) -> None:
        """Take ``MPI.COMM_WORLD`` unless a communicator was given."""
        if self._comm is None:
            try:
                from mpi4py import MPI
            except ImportError as error:
                raise BackendError(
                    "the mpi backend needs mpi4py and an MPI library (pip install 'shardfit[mpi]')"
                ) from error
            self._comm = MPI.COMM_WORLD
        if self._requested is not None and self._requested != self.nworkers:
            raise ValueError(
                f"The 'workers' parameter of the mpi backend must be None or the number of "
                f"ranks ({self.nworkers}, set by mpiexec -n). Got {self._requested!r} instead."
            )
        super().open()

    def local_indices(self, npartitions: int) -> Sequence[int]:
        """This rank's partitions: every ``size``-th one from ``rank``."""
        return range(int(self.comm.Get_rank()), npartitions, self.nworkers)

    def run(self, job: Job) -> Generator[Outcome, None, None]:
        """Run this rank's partitions in order."""
        for index in job.indices:
            try:
                # remote=True: a failure may have to travel to the other ranks.
                outcome = run_task(
                    job.task,
                    job.partitions[index],
                    index,
                    job.retries,
                    remote=True,
                    measure=job.measure,
                )
            except (KeyboardInterrupt, SystemExit) as error:
                # run_task lets these through. Escaping on this rank alone would leave
                # the others waiting in collect() forever; as a fatal outcome, every
                # rank raises it there, with a note naming the partition.
                outcome = Outcome(
                    index, error=error, traceback=traceback.format_exc(), fatal=True, attempts=1
                )
            yield outcome

    def share(self, value: Any) -> Any:
        """Broadcast rank 0's ``value`` to every rank."""
        return self.comm.bcast(value, root=0)

    def gather_tasks(self, tasks: list[Any]) -> list[Any]:
        """Every rank's task records, so that each rank's profile shows the whole pass.

        A collective, like :meth:`collect`: every rank runs the same program, so every
        rank opens the profile and reaches this call.
        """
        return [task for part in self.comm.allgather(tasks) for task in part]

    def broadcast(self, fn: Any, *args: Any) -> None:
        """Every rank runs the same program, so each calls ``fn`` for itself."""
        fn(*args)

    def collect(
        self,
        results: dict[int, Any],
        failure: Outcome | None,
        job: Job,
    ) -> list[Any] | None:
        """Gather every rank's statistics to rank 0, in order; raise failures everywhere."""
        comm = self.comm
        # Pickled here, not inside gather: a statistic that cannot be pickled raised on
        # this rank alone and left every other rank waiting in gather or bcast forever.
        payload = _pickled(results, failure, job)
        gathered = comm.gather(payload, root=0)
        verdict: Outcome | None = None
        ordered: list[Any] | None = None
        if gathered is not None:  # rank 0
            parts = [_unpickled(data, rank, job) for rank, data in enumerate(gathered)]
            failures = [fail for _, fail in parts if fail is not None]
            if failures:
                verdict = min(failures, key=lambda outcome: outcome.index)
            else:
                merged: dict[int, Any] = {}
                for part, _ in parts:
                    merged.update(part)
                ordered = [merged[index] for index in range(len(job.partitions))]
        verdict = comm.bcast(verdict, root=0)
        if verdict is not None:
            key = job.partitions[verdict.index].key
            raise outcome_error(verdict, key=key, task=job.task)
        return ordered

    def describe(self) -> str:
        """The communicator size."""
        return f"mpi ({self.nworkers} ranks)"


def _travel_failure(index: int, what: str, error: BaseException) -> Outcome:
    """A failed outcome for partition ``index`` whose statistic could not travel."""
    message = f"its statistic could not be {what} ({type(error).__name__}: {error})"
    details = "".join(traceback.format_exception(error))
    # Not retried: pickling the same objects fails the same way again.
    return Outcome(index, error=RemoteTaskError(message), traceback=details, attempts=1)


def _pickled(results: dict[int, Any], failure: Outcome | None, job: Job) -> bytes:
    """This rank's ``(results, failure)`` as bytes; when a statistic cannot be pickled,
    a failure naming the first such partition in its place."""
    try:
        return pickle.dumps((results, failure), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        culprit: tuple[int, BaseException] | None = None
        for index in sorted(results):  # the rare path: find which partition it was
            try:
                pickle.dumps(results[index], protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as inner:
                culprit = (index, inner)
                break
        if culprit is None:  # the failure itself (run_task made its error portable)
            index = failure.index if failure is not None else min(results, default=0)
            culprit = (index, error)
        outcome = _travel_failure(culprit[0], "pickled to travel to rank 0", culprit[1])
        if failure is not None and failure.index < outcome.index:
            outcome = failure
        return pickle.dumps(({}, outcome), protocol=pickle.HIGHEST_PROTOCOL)


def _unpickled(data: bytes, rank: int, job: Job) -> tuple[dict[int, Any], Outcome | None]:
    """Rank ``rank``'s ``(results, failure)`` back from :func:`_pickled`, or a failure
    when its bytes do not unpickle on rank 0 (a class rank 0 cannot import).

    Safe to unpickle: the bytes come from the ranks of this job, as the objects of any
    ``comm.gather`` do.
    """
    try:
        results, failure = pickle.loads(data)  # safe: bytes from this job's own ranks
    except Exception as error:
        # Which of its partitions failed is unknown without the bytes: name its first
        # (rank r computes partitions r, r + size, ...).
        index = min(rank, len(job.partitions) - 1)
        return {}, _travel_failure(index, "unpickled on rank 0", error)
    return results, failure
