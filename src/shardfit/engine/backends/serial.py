"""The serial backend: every partition in the calling thread, one after another."""

from __future__ import annotations

from collections.abc import Generator

from shardfit.engine.backends.base import Backend, Job
from shardfit.engine.retries import Outcome, run_task

__all__ = ["SerialBackend"]


class SerialBackend(Backend):
    """Run tasks one at a time in this thread: for debugging, profiling and tiny data.

    Parameters
    ----------
    workers : int or None
        Must be ``None`` or 1.
    """

    name = "serial"

    def __init__(self, *, workers: int | None = None) -> None:
        super().__init__()
        if workers not in (None, 1):
            raise ValueError(
                f"The 'workers' parameter of the serial backend must be None or 1. "
                f"Got {workers!r} instead."
            )

    @property
    def nworkers(self) -> int:
        """One."""
        return 1

    def run(self, job: Job) -> Generator[Outcome, None, None]:
        """Run the partitions in order, here."""
        for index in job.indices:
            yield run_task(
                job.task,
                job.partitions[index],
                index,
                job.retries,
                remote=False,
                measure=job.measure,
            )
