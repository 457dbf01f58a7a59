"""The MPI backend: every rank of an ``mpiexec -n K`` job computes its share.

The program runs on every rank (SPMD). Rank ``r`` of ``K`` computes the partitions
``i`` with ``i % K == r``, reading them itself; the statistics are gathered to rank 0
with their indices, put in partition order and tree-merged there, so the answer is
bitwise the one every other backend gives. Rank 0 gets it; the others get ``None``,
or the same value with ``allreduce=True`` (a broadcast from rank 0).

A failure on any rank is raised on every rank (the failed outcome with the lowest
partition index is broadcast), so no rank waits forever for a collective the others
left. A rank that dies takes the job with it: MPI does not survive lost ranks.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from shardfit.engine.backends.base import Backend, Job
from shardfit.engine.retries import Outcome, outcome_error, run_task
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
            # remote=True: a failure may have to travel to the other ranks.
            yield run_task(
                job.task,
                job.partitions[index],
                index,
                job.retries,
                remote=True,
                measure=job.measure,
            )

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
        gathered = comm.gather((results, failure), root=0)
        verdict: Outcome | None = None
        ordered: list[Any] | None = None
        if gathered is not None:  # rank 0
            failures = [fail for _, fail in gathered if fail is not None]
            if failures:
                verdict = min(failures, key=lambda outcome: outcome.index)
            else:
                merged: dict[int, Any] = {}
                for part, _ in gathered:
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
