"""The threads backend: a thread pool in this process.

Useful when the task releases the GIL (NumPy, Arrow and LAPACK mostly do) and the
partitions are cheap to read. Threads share this process's memory, so a partition
cache here is one cache, bounded once.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from shardfit.engine.backends.base import Backend, Job, cpu_count
from shardfit.engine.retries import Outcome, run_task

__all__ = ["ThreadsBackend"]


class ThreadsBackend(Backend):
    """Run tasks on a pool of threads.

    Parameters
    ----------
    workers : int or None
        Threads; one per core when ``None``.
    """

    name = "threads"

    def __init__(self, *, workers: int | None = None) -> None:
        super().__init__()
        self._workers = workers or cpu_count()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def nworkers(self) -> int:
        """The number of threads."""
        return self._workers

    @property
    def cache_processes(self) -> int:
        """One: the threads share one cache."""
        return 1

    def open(self) -> None:
        """Start the thread pool."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="shardfit")
        super().open()

    def close(self) -> None:
        """Wait for running tasks and stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        super().close()

    def run(self, job: Job) -> Generator[Outcome, None, None]:
        """Submit every partition and yield outcomes in completion order."""
        if self._executor is None:
            self.open()
        assert self._executor is not None
        pending: set[Future[Outcome]] = {
            self._executor.submit(
                run_task,
                job.task,
                job.partitions[index],
                index,
                job.retries,
                remote=False,
                measure=job.measure,
                shared=True,  # tasks share this process: its peak memory, flagged
            )
            for index in job.indices
        }
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    # A KeyboardInterrupt raised by the task surfaces here.
                    yield future.result()
        finally:
            # Threads cannot be killed: drop the queued work and wait for the running
            # tasks, so nothing of this pass runs on after it (e.g. into a closed cache).
            for future in pending:
                future.cancel()
            wait(pending)
