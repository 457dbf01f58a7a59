"""Running one task on one partition, with retries, where the partition is read.

:func:`run_task` is what every backend executes on its workers: it calls the task,
retries it when it raises, and always *returns* an :class:`Outcome` rather than
raising, so a failure travels back to the driver as data (with its traceback as
text, formatted on the worker) instead of through each backend's own, differently
lossy, exception transport. The driver turns a failed outcome into an exception with
:func:`outcome_error`.

Retries happen on the worker, right after the failure, so they behave the same on
every backend (MPI has no scheduler to resubmit to). A worker process that dies is a
different matter, handled by the backends that can survive it (``processes`` and
``dask``) by running the partition again elsewhere.

Data errors (:class:`~shardfit.errors.ReadError`, :class:`~shardfit.errors.SchemaError`,
:class:`~shardfit.errors.DesignError` and their subclasses) are deterministic: the
same bytes give the same error. They are not retried and reach the caller unchanged.
"""

from __future__ import annotations

import gc
import os
import pickle
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shardfit._measure import PeakWatch, TaskRecorder, TaskUsage, reset_peak, rss
from shardfit.data.partition import Partition
from shardfit.engine.blas import single_threaded_blas
from shardfit.errors import DesignError, PartitionTaskError, ReadError, SchemaError

__all__ = [
    "NON_RETRYABLE",
    "Outcome",
    "RemoteTaskError",
    "WorkerLostError",
    "outcome_error",
    "run_task",
    "task_name",
]

#: Exceptions re-raised as they are, without retrying: errors in the input data.
NON_RETRYABLE: tuple[type[BaseException], ...] = (ReadError, SchemaError, DesignError)


class RemoteTaskError(Exception):
    """Stands in for a task's exception that could not be sent back from a worker."""


class WorkerLostError(Exception):
    """The worker process running a partition died (killed, out of memory, crashed)."""


@dataclass
class Outcome:
    """What running a task on one partition gave.

    Attributes
    ----------
    index : int
        The partition's position in the source.
    value : object
        The statistic, when the task succeeded.
    error : BaseException or None
        The last exception, when every attempt failed (a picklable copy, or a
        :class:`RemoteTaskError`, when it came from another process).
    traceback : str
        The last exception's traceback, formatted where it was raised.
    fatal : bool
        Whether ``error`` is a data error, to re-raise unchanged.
    attempts : int
        How many times the task was called.
    elapsed : float
        Seconds spent in the task, over all attempts.
    worker : str
        Where it ran (a Dask worker address, or ``host:pid``); used for affinity.
    usage : TaskUsage or None
        Phases, counts and memory of the task, when the pass was profiled.
    """

    index: int
    value: Any = None
    error: BaseException | None = None
    traceback: str = ""
    fatal: bool = False
    attempts: int = 0
    elapsed: float = 0.0
    worker: str = ""
    usage: TaskUsage | None = None

    @property
    def ok(self) -> bool:
        """Whether the task gave a statistic."""
        return self.error is None


def task_name(task: Callable[..., Any]) -> str:
    """Name a task for messages: its qualified name, or its class's."""
    name = getattr(task, "__qualname__", None) or type(task).__qualname__
    module = getattr(task, "__module__", None) or type(task).__module__
    return f"{module}.{name}"


def worker_identity() -> str:
    """Identify the process running a task: a Dask worker's address, else host:pid."""
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return str(get_worker().address)
        except ValueError:  # not inside a Dask worker
            pass
    return f"{socket.gethostname()}:{os.getpid()}"


def portable(error: BaseException) -> BaseException:
    """Return ``error`` if it survives a pickle round trip, else a stand-in.

    Exceptions with required keyword-only arguments or unpicklable attributes
    break on the way back from a worker; the stand-in keeps type name and message.
    """
    try:
        copy = pickle.loads(pickle.dumps(error))  # safe: bytes made on this line, in memory
    except Exception:
        qualified = f"{type(error).__module__}.{type(error).__qualname__}"
        return RemoteTaskError(f"{qualified}: {error}")
    if type(copy) is not type(error):  # pragma: no cover - defensive
        return RemoteTaskError(f"{type(error).__qualname__}: {error}")
    return copy


def run_task(
    task: Callable[[Partition], Any],
    partition: Partition,
    index: int,
    retries: int,
    *,
    remote: bool = True,
    measure: bool = False,
    shared: bool = False,
) -> Outcome:
    """Call ``task(partition)``, retrying up to ``retries`` times when it raises.

    Parameters
    ----------
    task : callable
        Maps a partition to a statistic.
    partition : Partition
        The partition to read and summarise.
    index : int
        The partition's position, carried back in the outcome.
    retries : int
        Extra attempts after a failure (data errors are never retried).
    remote : bool
        Whether the outcome leaves this process; its error is then made picklable.
    measure : bool
        Record the task's phases and peak memory in ``Outcome.usage`` (profiled
        passes; see :mod:`shardfit._measure`).
    shared : bool
        Whether other tasks may run in this process meanwhile (threads): the peak
        memory is then the process's, flagged as such.

    Returns
    -------
    Outcome
        Never raises for an :class:`Exception`; ``KeyboardInterrupt`` and
        ``SystemExit`` propagate, since they stop the pass rather than a partition.
    """
    if measure:
        return _measured(task, partition, index, retries, remote=remote, shared=shared)
    return _run(task, partition, index, retries, remote=remote)


def _measured(
    task: Callable[[Partition], Any],
    partition: Partition,
    index: int,
    retries: int,
    *,
    remote: bool,
    shared: bool,
) -> Outcome:
    """:func:`_run`, with the task's phases and peak memory in ``Outcome.usage``."""
    # A Dask worker with several threads runs tasks side by side, like ``threads``.
    exclusive = not (shared or _dask_threads() > 1) and reset_peak()
    rss_start, _ = rss()
    watch = PeakWatch().start()
    try:
        with TaskRecorder() as recorder:
            outcome = _run(task, partition, index, retries, remote=remote)
    except BaseException:  # KeyboardInterrupt, SystemExit: stop watching all the same
        watch.stop()
        raise
    rss_end, peak = rss()
    outcome.usage = TaskUsage(
        phases=recorder.phases,
        counts=recorder.counts,
        rss_start=rss_start,
        rss_end=rss_end,
        peak_rss=watch.stop(peak),
        peak_scope="task" if exclusive else "process",
    )
    return outcome


def _dask_threads() -> int:
    """Threads of the Dask worker running this task (0 outside Dask)."""
    if "distributed" not in sys.modules:
        return 0
    from distributed import get_worker

    try:
        return int(get_worker().state.nthreads)
    except (ValueError, AttributeError):  # not inside a Dask worker
        return 0


def _run(
    task: Callable[[Partition], Any],
    partition: Partition,
    index: int,
    retries: int,
    *,
    remote: bool,
) -> Outcome:
    """See :func:`run_task`."""
    elapsed = 0.0
    outcome = Outcome(index=index, worker=worker_identity())
    for attempt in range(1, retries + 2):
        start = time.perf_counter()
        try:
            with single_threaded_blas():  # bitwise the same whatever the worker's threads
                value = task(partition)
        except Exception as error:
            elapsed += time.perf_counter() - start
            outcome.error = portable(error) if remote else error
            outcome.traceback = traceback.format_exc()
            outcome.fatal = isinstance(error, NON_RETRYABLE)
            outcome.attempts = attempt
            if outcome.fatal:
                break
            continue
        outcome.value = value
        outcome.error = None
        outcome.traceback = ""
        outcome.attempts = attempt
        outcome.elapsed = elapsed + time.perf_counter() - start
        _free_young_cycles()
        return outcome
    outcome.elapsed = elapsed
    _free_young_cycles()
    return outcome


def _free_young_cycles() -> None:
    """Collect the reference cycles a task left behind, before the next partition.

    Reading and encoding a partition (pandas frames, formulaic's model matrices)
    leaves a few hundred objects in cycles that hold the partition's arrays. Python
    collects cycles by counting container objects, not bytes, so a worker kept tens
    of partitions' arrays alive: 5M rows of the ``glm_logit`` benchmark measured
    +140 MB of resident memory over 20 partitions, growing with the rows. Collecting
    the young generations takes ~0.2 ms and keeps the worker at one partition's worth.
    """
    gc.collect(1)


def outcome_error(outcome: Outcome, *, key: str, task: Callable[..., Any]) -> BaseException:
    """Build the exception to raise for a failed ``outcome`` on partition ``key``.

    Data errors come back as they were raised (same class and message, with a note
    naming the partition); anything else becomes a
    :class:`~shardfit.errors.PartitionTaskError` chained to the original.
    """
    error = outcome.error
    if error is None:
        raise ValueError("outcome_error needs a failed outcome")
    if outcome.fatal:
        error.add_note(f"(raised by task {task_name(task)} on partition {key}; not retried)")
        return error
    if isinstance(error, WorkerLostError):
        what = str(error)
    else:
        what = f"{type(error).__name__}: {error}"
    if outcome.attempts:
        when = f"after {outcome.attempts} attempt(s)"
    else:
        when = "before running (the worker could not load the task or partition)"
    failure = PartitionTaskError(
        f"task {task_name(task)} failed on partition {key} {when}: {what}",
        key=key,
        remote_traceback=outcome.traceback,
    )
    failure.__cause__ = error
    return failure
