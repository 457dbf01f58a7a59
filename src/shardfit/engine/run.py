"""Running a task over every partition of a source and merging the results.

:func:`run_pass` is the one entry point estimators use: it maps a task over the
partitions on a backend and merges the statistics along the tree of
:func:`~shardfit.engine.merge.tree_merge`, which depends only on the number of
partitions, so the result is bitwise the same for every backend and worker count.
Statistics are merged as they arrive, whatever order the workers finish in, as soon
as a subtree's two halves are both complete
(:class:`~shardfit.engine.merge.TreeMerger`), so the driver holds a few of them
rather than one per partition (under MPI rank 0 gathers them all, then merges).
:func:`map_partitions` stops before the merge, for estimators that need each
partition's result (per-partition fits).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from shardfit.data.partition import Partition, Source
from shardfit.engine.backends import Job
from shardfit.engine.blas import single_threaded_blas
from shardfit.engine.checkpoint import CheckpointStore
from shardfit.engine.merge import TreeMerger, tree_merge
from shardfit.engine.profile import note_driver, record_pass
from shardfit.engine.progress import ProgressEvent, ProgressReporter, reporter
from shardfit.engine.retries import Outcome, outcome_error
from shardfit.engine.session import Session, session

__all__ = ["map_partitions", "run_pass"]

S = TypeVar("S")

Progress = bool | Callable[[ProgressEvent], Any] | ProgressReporter


def _check(task: Any, retries: int, pass_name: str) -> None:
    if not callable(task):
        raise TypeError(f"The task must be callable (partition -> statistic). Got {task!r}.")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"The 'retries' parameter must be an int >= 0. Got {retries!r} instead.")
    if not isinstance(pass_name, str) or not pass_name:
        raise ValueError(f"The 'pass_name' parameter must be a non-empty str. Got {pass_name!r}.")


@dataclass(frozen=True)
class _Sizes:
    """What progress and profiles read of a statistic merged already: its sizes."""

    nrows: int | None
    nbytes: int | None

    @classmethod
    def of(cls, value: Any) -> _Sizes:
        return cls(getattr(value, "nrows", None), getattr(value, "nbytes", None))


def _execute(
    task: Callable[[Partition], S],
    source: Source,
    sess: Session,
    *,
    retries: int,
    progress: Progress,
    checkpoint: str | Path | None,
    pass_name: str,
    merger: TreeMerger[Any] | None = None,
) -> list[S] | None:
    """Every partition's statistic in order (``None`` on MPI ranks other than 0).

    With ``merger`` (where this process gets every statistic: not under MPI), each
    statistic goes into it as it arrives instead, and the list is empty: the driver
    then holds the subtrees waiting for a sibling, not every partition's statistic.
    """
    backend = sess.open().backend
    mine = list(backend.local_indices(source.npartitions))
    store = (
        CheckpointStore(checkpoint, source=source, task=task, pass_name=pass_name)
        if checkpoint is not None
        else None
    )
    results: dict[int, S] = {}
    done: set[int] = set()

    def keep(index: int, value: S) -> None:  # after reporting and saving the value
        done.add(index)
        if merger is not None:
            merger.add(index, value)
        else:
            results[index] = value

    loaded: dict[int, _Sizes] = {}  # checkpointed partitions, merged as they load
    for index in mine if store is not None else ():
        value = store.load(index) if store is not None else None
        if value is not None:
            loaded[index] = _Sizes.of(value)
            keep(index, value)
    computing = any(index not in done for index in mine)
    recorder = record_pass(pass_name, backend, computing=computing)  # None unless profiling
    job = Job(
        task=task,
        partitions=source.partitions,
        indices=tuple(index for index in mine if index not in done),
        retries=retries,
        name=pass_name,
        measure=recorder is not None,
    )
    show = reporter(progress)

    def report(index: int, value: Any, elapsed: float, count: int, *, checkpointed: bool) -> None:
        event = ProgressEvent(
            pass_name=pass_name,
            index=index,
            key=source.partitions[index].key,
            nrows=getattr(value, "nrows", None),
            nbytes=getattr(value, "nbytes", None),
            elapsed=elapsed,
            done=count,
            total=len(mine),
            from_checkpoint=checkpointed,
        )
        show.update(event)

    failure: Outcome | None = None
    finished = False  # False while leaving by an exception: no collective then
    show.start(pass_name, len(mine))
    try:
        for count, (index, sizes) in enumerate(sorted(loaded.items()), start=1):
            report(index, sizes, 0.0, count, checkpointed=True)
            if recorder is not None:
                recorder.add(source.partitions[index].key, sizes, None, index=index)
        if job.indices:
            outcomes = backend.run(job)
            try:
                for outcome in outcomes:
                    if recorder is not None:
                        key = source.partitions[outcome.index].key
                        recorder.add(key, outcome.value, outcome, index=outcome.index)
                    if not outcome.ok:
                        failure = outcome
                        break
                    if store is not None:
                        store.save(outcome.index, outcome.value)
                    count = len(done) + 1
                    report(outcome.index, outcome.value, outcome.elapsed, count, checkpointed=False)
                    keep(outcome.index, outcome.value)
            finally:
                outcomes.close()  # cancels what is left after a failure or interrupt
        finished = True
    finally:
        show.finish()
        if recorder is not None:
            ok = failure is None and len(done) == len(mine)
            recorder.finish(ok=ok, gather=finished)
    if merger is not None:
        if failure is not None:
            key = source.partitions[failure.index].key
            raise outcome_error(failure, key=key, task=task)
        return []
    return backend.collect(results, failure, job)


def map_partitions(
    task: Callable[[Partition], S],
    source: Source,
    *,
    backend: Any = None,
    workers: int | None = None,
    retries: int = 2,
    progress: Progress = False,
    checkpoint: str | Path | None = None,
    pass_name: str = "map",
    allgather: bool = False,
) -> list[S] | None:
    """Run ``task`` on every partition and return the results in partition order.

    Parameters are those of :func:`run_pass`, except:

    allgather : bool
        Under MPI, give every rank the list (otherwise ranks other than 0 get
        ``None``).

    Returns
    -------
    list
        ``task(partition)`` for each partition, in the source's order.
    """
    _check(task, retries, pass_name)
    with session(backend, workers=workers, partitions=source.npartitions) as sess:
        results = _execute(
            task,
            source,
            sess,
            retries=retries,
            progress=progress,
            checkpoint=checkpoint,
            pass_name=pass_name,
        )
        return sess.backend.share(results) if allgather else results


def run_pass(
    task: Callable[[Partition], S],
    source: Source,
    *,
    backend: Any = None,
    workers: int | None = None,
    retries: int = 2,
    progress: Progress = False,
    checkpoint: str | Path | None = None,
    pass_name: str = "pass",
    allreduce: bool = False,
) -> S:
    """Run ``task`` on every partition of ``source`` and merge the statistics.

    Parameters
    ----------
    task : callable
        Maps a partition to a statistic (an object with ``merge``). It runs where the
        partition is read, so it must pickle: a module-level function or a
        dataclass instance with ``__call__`` (lambdas work on ``processes`` and
        ``dask``, which use cloudpickle). Give it a ``fingerprint()`` method when
        using checkpoints.
    source : Source
        The partitions, in order.
    backend : str, Session, Backend, distributed.Client, mpi4py communicator or None
        Where to run: ``"serial"``, ``"threads"``, ``"processes"`` (the default),
        ``"dask"`` (a LocalCluster for this pass), ``"mpi"``, a Dask scheduler
        address, a client, a communicator, or a :func:`~shardfit.engine.session`
        kept open across passes.
    workers : int or None
        Workers for backends this call starts (``None``: one per core; 2 for Dask).
    retries : int
        Extra attempts for a partition whose task raises (data errors are raised at
        once) or whose worker process dies.
    progress : bool, callable or ProgressReporter
        ``True`` draws a progress bar on a terminal; a callable receives a
        :class:`~shardfit.engine.progress.ProgressEvent` per partition.
    checkpoint : str, Path or None
        A directory keeping each partition's statistic as it completes; a rerun
        computes only the missing partitions. Statistics need ``to_state`` and
        ``from_state`` (:mod:`shardfit.engine.serialize`).
    pass_name : str
        Names the pass in progress displays, task keys and checkpoint keys.
    allreduce : bool
        Under MPI, give every rank the merged result (otherwise ranks other than 0
        get ``None``).

    Returns
    -------
    Statistic
        The merge of every partition's statistic along the fixed balanced tree.

    Raises
    ------
    PartitionTaskError
        A task failed on a partition after its retries (names the partition, carries
        the worker's traceback).
    ReadError, SchemaError, DesignError
        Raised by a task on bad data: re-raised unchanged, without retries.
    BackendError
        The backend could not start or lost its workers beyond recovery.
    """
    _check(task, retries, pass_name)
    with session(backend, workers=workers, partitions=source.npartitions) as sess:
        # Merged as statistics arrive, except under MPI, where rank 0 gathers them.
        local = sess.open().backend.merges_locally
        merger: TreeMerger[Any] | None = TreeMerger(source.npartitions) if local else None
        # One BLAS thread for the merges, which round the same on every backend then;
        # held over the pass, since they happen during it (limiting threads costs
        # ~2 ms a time, as much as a small merge).
        with single_threaded_blas():
            results = _execute(
                task,
                source,
                sess,
                retries=retries,
                progress=progress,
                checkpoint=checkpoint,
                pass_name=pass_name,
                merger=merger,
            )
            started = time.perf_counter()
            if merger is not None:
                # Merged during the pass, so a profile counts it in the pass's wall
                # time (counting it as driver time too would count it twice).
                merged = merger.result()
            elif results is not None:
                merged = tree_merge(results)
            else:
                merged = None
        note_driver("merge", time.perf_counter() - started)  # if profiling
        return sess.backend.share(merged) if allreduce else merged  # type: ignore[return-value]
