"""The Dask backend: tasks run on a ``distributed`` cluster, next to the data.

Three ways in: an existing :class:`distributed.Client` (used, never closed), a
scheduler address such as ``"tcp://10.0.0.5:8786"`` (a client is opened and closed
with the session; the cluster may be one started with the ``dask scheduler`` and
``dask worker`` commands), or nothing, which starts a ``LocalCluster`` of worker
processes for the session and shuts it down after.

Each partition is one Dask task whose arguments are the task and the partition
*description*: the worker reads the rows and only the statistic travels back. A
task's exceptions are retried on the worker (:func:`~shardfit.engine.retries.run_task`);
a worker that dies is survived by Dask itself, which reruns its tasks elsewhere up
to ``distributed.scheduler.allowed-failures`` times. Partitions go back to the
worker that ran them last pass when it is still there (a loose restriction), so
partition caches keep hitting.

``LocalCluster`` sets ``OMP_NUM_THREADS`` (and MKL/OpenBLAS) in this process's
environment and leaves it; the backend restores the caller's values.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import traceback
import uuid
from collections.abc import Callable, Generator
from typing import Any

from shardfit.engine.backends.base import Backend, Job
from shardfit.engine.retries import Outcome, RemoteTaskError, WorkerLostError, run_task
from shardfit.errors import BackendError

__all__ = ["DaskBackend"]

_NANNY_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MALLOC_TRIM_THRESHOLD_",
)


class _Environment:
    """Remembers variables Dask's nanny overwrites, to put them back."""

    def __init__(self) -> None:
        self._saved = {name: os.environ.get(name) for name in _NANNY_VARIABLES}

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _dask_failure(index: int, error: Exception, future: Any) -> Outcome:
    """The outcome of partition ``index`` whose Dask task erred outside the task."""
    try:
        where = "".join(traceback.format_tb(future.traceback()))
    except Exception:  # the traceback itself did not travel
        where = ""
    # Dask's serialization errors carry whole tracebacks in their message: the
    # summary keeps the first line and the root cause, the traceback keeps it all.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    summary = lines[0] if lines else ""
    if len(lines) > 1 and lines[-1] != summary:
        summary = f"{summary}: {lines[-1]}"
    what = RemoteTaskError(
        f"Dask could not run the task or send its statistic back "
        f"({type(error).__name__}: {summary})"
    )
    details = f"{where}{type(error).__name__}: {error}\n"
    # Not retried: unpickling or pickling the same objects fails the same way again.
    return Outcome(index, error=what, traceback=details, attempts=1)


class DaskBackend(Backend):
    """Run tasks on a Dask ``distributed`` cluster.

    Parameters
    ----------
    client : distributed.Client or None
        A client to use; the caller keeps ownership.
    address : str or None
        A scheduler address (``"tcp://host:port"``) to connect to for the session.
    workers : int or None
        Worker processes of the ``LocalCluster`` started when neither ``client`` nor
        ``address`` is given (2 when ``None``). Not allowed with them.
    timeout : float
        Seconds to wait for the scheduler at ``address``.
    """

    name = "dask"
    shares_filesystem = False

    def __init__(
        self,
        *,
        client: Any = None,
        address: str | None = None,
        workers: int | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__()
        if client is not None and address is not None:
            raise ValueError("give the dask backend a client or an address, not both")
        if workers is not None and (client is not None or address is not None):
            raise ValueError(
                "The 'workers' parameter applies only to the LocalCluster shardfit starts; "
                "an existing Dask cluster keeps its own workers."
            )
        self._given = client
        self._address = address
        self._workers = workers or 2
        self._timeout = timeout
        self._client: Any = client
        self._cluster: Any = None
        self._scratch: str | None = None
        self._affinity: dict[str, str] = {}

    @property
    def client(self) -> Any:
        """The :class:`distributed.Client` in use (opens the backend if needed)."""
        if self._client is None:
            self.open()
        return self._client

    @property
    def nworkers(self) -> int:
        """Worker threads in the cluster now (before connecting: as configured, or 1)."""
        if self._client is None:
            return self._workers if self._address is None else 1
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        return max(1, sum(int(info.get("nthreads", 1)) for info in workers))

    @property
    def cache_processes(self) -> int:
        """Worker processes in the cluster now."""
        return max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))

    def open(self) -> None:
        """Connect to, or start, the cluster."""
        if self._client is not None:
            super().open()
            return
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as error:  # pragma: no cover - a core dependency
            raise BackendError("the dask backend needs dask[distributed]") from error
        if self._address is not None:
            try:
                self._client = Client(self._address, timeout=self._timeout)
            except OSError as error:
                raise BackendError(
                    f"cannot reach the Dask scheduler at {self._address}: {error}"
                ) from error
        else:
            environment = _Environment()
            # Scheduler and worker scratch space in a directory of ours, removed on close.
            self._scratch = tempfile.mkdtemp(prefix="shardfit-dask-")
            try:
                with dask.config.set({"temporary-directory": self._scratch}):
                    self._cluster = LocalCluster(
                        n_workers=self._workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=":0",
                        local_directory=self._scratch,
                    )
                self._client = Client(self._cluster)
            except BaseException:
                self._shutdown()
                raise
            finally:
                environment.restore()
        super().open()

    def close(self) -> None:
        """Close what :meth:`open` started (a given client is left open)."""
        if self._given is None:
            self._shutdown()
        super().close()

    def _shutdown(self) -> None:
        environment = _Environment()
        try:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            # Restarted workers re-set the variables: restore the caller's once more.
            environment.restore()
            self._client = self._cluster = None
            if self._scratch is not None:
                shutil.rmtree(self._scratch, ignore_errors=True)
                self._scratch = None

    def run(self, job: Job) -> Generator[Outcome, None, None]:
        """Submit one Dask task per partition; yield outcomes as they complete."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        client = self.client
        alive = set(client.scheduler_info(n_workers=-1)["workers"])
        prefix = f"shardfit-{job.name}-{uuid.uuid4().hex[:12]}"
        futures = {}
        for index in job.indices:
            partition = job.partitions[index]
            where = self._affinity.get(partition.key) if self.pinned else None
            placement: dict[str, Any] = {}
            if where in alive:
                placement = {"workers": [where], "allow_other_workers": True}
            future = client.submit(
                run_task,
                job.task,
                partition,
                index,
                job.retries,
                measure=job.measure,
                key=f"{prefix}-{index}",
                pure=False,
                **placement,
            )
            futures[future] = index
        pending = set(futures)
        try:
            for future in as_completed(futures):
                pending.discard(future)
                index = futures[future]
                try:
                    outcome = future.result()
                except KilledWorker as error:
                    # Dask already reran it on other workers; each attempt died.
                    outcome = Outcome(index, error=WorkerLostError(str(error)), attempts=1)
                except Exception as error:
                    # run_task returns the task's own errors; what reaches here is Dask's:
                    # the task could not be unpickled where it ran, or its statistic could
                    # not be sent back. Name the partition like any other failure.
                    outcome = _dask_failure(index, error, future)
                else:
                    self._affinity[job.partitions[index].key] = outcome.worker
                yield outcome
        finally:
            if pending:
                client.cancel(list(pending))

    def _forget_placement(self) -> None:
        self._affinity.clear()

    def broadcast(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` on every worker (``Client.run``), then here."""
        self.client.run(fn, *args)
        fn(*args)

    def describe(self) -> str:
        """Where the cluster is."""
        if self._given is not None:
            return f"dask (client {self._given.scheduler.address})"
        if self._address is not None:
            return f"dask ({self._address})"
        return f"dask (LocalCluster, {self._workers} workers)"
