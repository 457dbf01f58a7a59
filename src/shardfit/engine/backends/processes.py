"""The processes backend (the default): a pool of spawned worker processes.

The pool is shardfit's own rather than :class:`concurrent.futures.ProcessPoolExecutor`
because it has to survive a worker killed mid-task (SIGKILL, the out-of-memory
killer): the executor then breaks as a whole and cannot say which task was lost.
Here each worker has its own pipe and one task at a time, so a death loses exactly
one partition, which is run again on a fresh worker (up to ``retries`` times) while
the other workers carry on. Owning the pool also gives the partition cache what it
needs: a way to reach every worker (:meth:`ProcessesBackend.broadcast`) and
affinity, so partition ``i`` goes back to the worker that cached it last pass.

Workers are started with the ``spawn`` method (safe after JAX, threads or an open
Dask client, where ``fork`` deadlocks), so scripts need ``if __name__ ==
"__main__":``. Each worker limits BLAS/OpenMP to ``threads_per_worker`` threads.
"""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import time
from collections import deque
from collections.abc import Callable, Generator
from multiprocessing.connection import Connection, wait
from typing import Any

from shardfit.engine.backends._worker import worker_main
from shardfit.engine.backends.base import Backend, Job, cpu_count
from shardfit.engine.retries import Outcome, WorkerLostError
from shardfit.errors import BackendError

__all__ = ["ProcessesBackend"]

# Workers that die before saying "ready", in a row, before the pool gives up.
_MAX_START_FAILURES = 3
_JOIN_SECONDS = 5.0
# An idle worker takes a partition another worker ran last pass only from a backlog
# this long: a steal saves the victim one task but costs the thief a cache miss
# (re-reading and re-encoding), which is what the cache exists to avoid.
_STEAL_BACKLOG = 3
_tokens = itertools.count(1)


def _dumps(obj: object) -> bytes:
    # cloudpickle sends lambdas, closures and functions defined in ``__main__``.
    try:
        import cloudpickle  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - cloudpickle comes with Dask
        return pickle.dumps(obj)
    return cloudpickle.dumps(obj)


class _Slot:
    """One worker position: a process, its pipe, and what it is doing."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.ready = False
        self.index: int | None = None  # partition in flight
        self.token: int | None = None  # task this worker holds


class ProcessesBackend(Backend):
    """Run tasks on a pool of spawned worker processes, one per core by default.

    Parameters
    ----------
    workers : int or None
        Worker processes; one per core when ``None``.
    threads_per_worker : int or None
        BLAS/OpenMP threads in each worker (1 by default, as Dask does).
    start_method : {"spawn", "forkserver"}
        How workers start; ``fork`` is refused (it deadlocks after JAX or threads).
    """

    name = "processes"

    def __init__(
        self,
        *,
        workers: int | None = None,
        threads_per_worker: int | None = 1,
        start_method: str = "spawn",
    ) -> None:
        super().__init__()
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(
                "The 'start_method' parameter of the processes backend must be 'spawn' "
                f"or 'forkserver'. Got {start_method!r} instead."
            )
        self._workers = workers or cpu_count()
        self._threads = threads_per_worker
        self._context: Any = multiprocessing.get_context(start_method)
        self._slots = [_Slot(number) for number in range(self._workers)]
        self._affinity: dict[str, int] = {}  # partition key -> slot that last ran it
        self._start_failures = 0

    @property
    def nworkers(self) -> int:
        """The number of worker processes."""
        return self._workers

    def open(self) -> None:
        """Start missing workers (they import in parallel; nothing waits for them here)."""
        for slot in self._slots:
            if slot.process is None:
                self._start(slot)
        super().open()

    def close(self) -> None:
        """Stop every worker: politely, then by force; no process is left behind."""
        for slot in self._slots:
            if slot.process is not None and slot.conn is not None and slot.index is None:
                try:
                    slot.conn.send(("stop",))
                except OSError:
                    pass
        for slot in self._slots:
            self._reap(slot, kill=slot.index is not None)
        super().close()

    def wait_ready(self, timeout: float) -> bool:
        """Wait, at most ``timeout`` seconds, for idle workers still starting (spawning
        and importing: a second or two) to say "ready"; a death is left to :meth:`run`.
        Returns whether any worker was still starting."""
        self.open()  # restarts workers killed at the end of an interrupted pass
        deadline = time.monotonic() + timeout
        starting = [
            slot
            for slot in self._slots
            if slot.conn is not None and not slot.ready and slot.index is None
        ]
        for slot in starting:
            assert slot.conn is not None
            left = deadline - time.monotonic()
            if left <= 0 or not slot.conn.poll(left):
                break
            self._receive(slot, block=False)  # consumes "ready" (or sees the death)
        return bool(starting)

    def _start(self, slot: _Slot) -> None:
        parent, child = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main,
            args=(child, self._threads),
            name=f"shardfit-worker-{slot.number}",
            daemon=True,  # never outlive the driver, even if it is killed
        )
        process.start()
        child.close()  # so the driver sees EOF when the worker dies
        slot.process, slot.conn = process, parent
        slot.ready, slot.index, slot.token = False, None, None

    def _reap(self, slot: _Slot, *, kill: bool) -> None:
        process, conn = slot.process, slot.conn
        if process is not None:
            if kill:
                process.kill()
            process.join(_JOIN_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
        if conn is not None:
            conn.close()
        slot.process, slot.conn = None, None
        slot.ready, slot.index, slot.token = False, None, None

    def _send(self, slot: _Slot, message: tuple[Any, ...]) -> bool:
        assert slot.conn is not None
        try:
            slot.conn.send(message)
        except OSError:  # the worker died before reading: handled as a death
            return False
        return True

    def _receive(self, slot: _Slot, *, block: bool) -> tuple[Any, ...] | None:
        """The next message from ``slot``; ``None`` if the worker died.

        A "ready" notice is consumed on the way; with ``block=False`` it is returned
        when nothing else is waiting, so one slow worker does not hold up the others.
        """
        assert slot.conn is not None
        while True:
            try:
                message = slot.conn.recv()
            except (EOFError, OSError):
                return None
            if message[0] != "ready":
                return message
            slot.ready = True
            self._start_failures = 0
            if not block and not slot.conn.poll():
                return message

    def _replace(self, slot: _Slot) -> str:
        """Restart a dead worker; returns how it died, raises if workers cannot start."""
        assert slot.process is not None
        slot.process.join(_JOIN_SECONDS)
        code = slot.process.exitcode
        how = f"exit code {code}" if code is None or code >= 0 else f"signal {-code}"
        started = slot.ready
        self._reap(slot, kill=True)
        if not started:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                raise BackendError(
                    f"worker processes die while starting ({how}). Scripts that use the "
                    "processes backend must guard their entry point with "
                    "`if __name__ == '__main__':`, and tasks must be importable."
                )
        self._start(slot)
        return how

    def _pick(self, slot: _Slot, queues: dict[int | None, deque[int]]) -> int | None:
        """Choose the next partition for ``slot``: its own, a new one, or a steal."""
        for queue in (queues[slot.number], queues[None]):
            if queue:
                return queue.popleft()
        victim = max(self._slots, key=lambda other: len(queues[other.number]))
        if len(queues[victim.number]) >= _STEAL_BACKLOG:
            return queues[victim.number].pop()
        return None

    def run(self, job: Job) -> Generator[Outcome, None, None]:
        """Dispatch partitions to idle workers and yield outcomes as they arrive."""
        self.open()
        try:
            blob = _dumps(job.task)
        except Exception as error:
            raise BackendError(f"the task cannot be sent to worker processes: {error}") from error
        token = next(_tokens)
        queues: dict[int | None, deque[int]] = {slot.number: deque() for slot in self._slots}
        queues[None] = deque()
        for index in job.indices:
            owner = self._affinity.get(job.partitions[index].key) if self.pinned else None
            queues[owner if owner in queues else None].append(index)
        deaths: dict[int, int] = {}
        remaining = len(job.indices)
        try:
            while remaining:
                for slot in self._slots:
                    if slot.index is None:
                        self._dispatch(slot, job, queues, token, blob)
                busy = [slot for slot in self._slots if slot.index is not None]
                assert busy, "partitions left but none dispatched"
                ready = wait([slot.conn for slot in busy if slot.conn is not None])
                for slot in busy:
                    if slot.conn not in ready:
                        continue
                    running = slot.index
                    assert running is not None
                    message = self._receive(slot, block=False)
                    if message is not None and message[0] == "ready":
                        continue
                    if message is None:
                        outcome = self._lost(slot, running, job, deaths, queues)
                        if outcome is None:
                            continue
                    elif message[0] == "raise":
                        slot.index = None
                        raise message[1]
                    else:
                        outcome = message[1]
                        slot.index = None
                        if outcome.attempts == 0:  # the task did not load there
                            slot.token = None
                        self._affinity[job.partitions[running].key] = slot.number
                    remaining -= 1
                    yield outcome
        finally:
            # An error or interrupt: kill the workers still busy on this pass, so
            # no stale reply reaches the next pass (which restarts them).
            for slot in self._slots:
                if slot.index is not None:
                    self._reap(slot, kill=True)

    def _dispatch(
        self,
        slot: _Slot,
        job: Job,
        queues: dict[int | None, deque[int]],
        token: int,
        blob: bytes,
    ) -> None:
        index = self._pick(slot, queues)
        if index is None:
            return
        partition = job.partitions[index]
        try:
            partition_blob = pickle.dumps(partition)
        except Exception as error:
            raise BackendError(
                f"partition {partition.key} cannot be sent to worker processes: {error}"
            ) from error
        fresh = slot.token != token
        slot.index, slot.token = index, token
        message = ("run", blob if fresh else None, index, partition_blob, job.retries, job.measure)
        if not self._send(slot, message):
            slot.token = None  # the death is noticed when the pipe reports EOF

    def _lost(
        self,
        slot: _Slot,
        index: int,
        job: Job,
        deaths: dict[int, int],
        queues: dict[int | None, deque[int]],
    ) -> Outcome | None:
        """Handle a worker that died running ``index``: rerun it, or give up on it."""
        started = slot.ready
        how = self._replace(slot)
        if not started:  # died while starting: not the partition's fault
            queues[None].appendleft(index)
            return None
        deaths[index] = deaths.get(index, 0) + 1
        if deaths[index] <= job.retries:
            queues[None].appendleft(index)
            return None
        error = WorkerLostError(
            f"the worker process died ({how}) while running it, {deaths[index]} time(s)"
        )
        return Outcome(index, error=error, attempts=deaths[index])

    def _forget_placement(self) -> None:
        self._affinity.clear()

    def broadcast(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` in every live worker, then here.

        Used to drop partition caches. Workers not started yet, or dead, hold
        nothing, so they are skipped; ``fn`` must be importable by the workers.
        """
        sent = [
            slot
            for slot in self._slots
            if slot.conn is not None and slot.index is None and self._send(slot, ("call", fn, args))
        ]
        failures = []
        for slot in sent:
            message = self._receive(slot, block=True)
            if message is None:
                self._reap(slot, kill=True)  # restarted by the next pass
            elif message[1] is not None:
                failures.append(message[1])
        fn(*args)
        if failures:
            raise BackendError(f"a worker failed to run {fn.__qualname__}:\n{failures[0]}")
