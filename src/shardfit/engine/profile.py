"""A profile of where time and memory went, pass by pass and partition by partition.

``with shardfit.profile() as prof:`` collects every pass that runs inside the block,
from any fit, on any backend: the engine's driver loop (:mod:`shardfit.engine.run`)
asks :func:`record_pass` for a recorder, and when a profile is active the pass's
workers measure each task (:func:`~shardfit.engine.retries.run_task` with
``measure=True``: phases and peak resident memory, see :mod:`shardfit._measure`) and
the outcomes are recorded here. Outside a profile nothing is measured.

Active profiles live in a context variable: nested profiles each receive the passes
run inside them, and profiles opened in two threads each see their own thread's
passes. A pass run in a thread started inside the block is collected only if the
thread runs in a copy of the block's context (``contextvars.copy_context().run``).

Under MPI each rank measures its own partitions and the ranks exchange the records at
the end of each pass (a collective), so every rank's profile holds the whole pass;
every rank must open the profile, as every rank runs the same program.

The tables, text summary and JSON are in :mod:`shardfit.engine.profile_report`.
"""

from __future__ import annotations

import threading
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from shardfit._measure import PeakWatch, phase, reset_peak, rss

if TYPE_CHECKING:
    import pandas as pd

    from shardfit.engine.backends.base import Backend
    from shardfit.engine.retries import Outcome

__all__ = [
    "PassProfile",
    "Profile",
    "TaskProfile",
    "note_driver",
    "phase",
    "profile",
    "record_pass",
]

_active: ContextVar[tuple[Profile, ...]] = ContextVar("shardfit_profiles", default=())


@dataclass(frozen=True)
class TaskProfile:
    """One partition's task in one pass.

    Attributes
    ----------
    pass_index : int
        The pass's position in the profile.
    pass_name : str
        The pass's name (``ls-qr``, ``glm-irls-...``).
    partition : int
        The partition's position in the source.
    key : str
        The partition's key.
    worker : str
        Where the task ran (a Dask worker address, or ``host:pid``); empty for a
        partition loaded from a checkpoint.
    rows : int or None
        Rows the statistic reports, else the rows the task read (``None`` when
        neither is known).
    elapsed : float
        Seconds in the task on its worker, over all attempts.
    attempts : int
        How many times the task was called.
    phases : dict of str to float
        Seconds per phase (``load``: unpickling the task and partition on a
        ``processes`` worker, which imports the task's modules the first time;
        ``read``, ``encode``, ``cache_load``, ``cache_spill``, a task's own); the rest
        of ``elapsed`` is ``compute``.
    counts : dict of str to int
        Events such as ``cache_hit``, ``cache_miss``, ``cache_spill``.
    rss_start, rss_end, peak_rss : int or None
        The worker process's resident bytes before, after, and at the peak of the task.
    peak_scope : str
        ``"task"``: the peak covers this task alone; ``"process"``: the process's peak
        (threads, Dask workers with several threads, no ``/proc``), an upper bound.
    from_checkpoint : bool
        Loaded from a checkpoint rather than computed (nothing measured).
    ok : bool
        Whether the task succeeded.
    """

    pass_index: int
    pass_name: str
    partition: int
    key: str
    worker: str
    rows: int | None
    elapsed: float
    attempts: int
    phases: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    rss_start: int | None = None
    rss_end: int | None = None
    peak_rss: int | None = None
    peak_scope: str = "task"
    from_checkpoint: bool = False
    ok: bool = True

    @property
    def compute(self) -> float:
        """Seconds of the task outside every named phase."""
        return max(0.0, self.elapsed - sum(self.phases.values()))


@dataclass(frozen=True)
class PassProfile:
    """One pass: its wall time, its tasks' time by phase, its workers' peak memory.

    Attributes
    ----------
    index : int
        The pass's position in the profile.
    name : str
        The pass's name.
    backend : str
        The backend that ran it, e.g. ``"processes (2 workers)"``.
    workers : int
        Tasks the backend can run at once.
    wall : float
        Seconds from dispatching the first task to receiving the last (the merge and
        the estimator's own step are driver time, outside passes).
    partitions : int
        Partitions in the pass (computed or loaded from a checkpoint).
    rows : int or None
        Rows over the partitions (``None`` when the statistics do not say).
    task_seconds, task_max : float
        Total and longest task time on the workers.
    phases : dict of str to float
        Task seconds per phase over the partitions, ``compute`` included.
    counts : dict of str to int
        Events over the partitions (cache hits, misses, spills).
    peak_rss : int or None
        The largest worker peak resident memory of the pass.
    peak_scope : str
        ``"process"`` if any task's peak was process-wide, else ``"task"``.
    busy : float
        ``task_seconds / (wall * workers)``: how much of the workers' time the tasks
        used (the rest: dispatch, transfers, idle workers, stragglers).
    ok : bool
        Whether every task succeeded.
    """

    index: int
    name: str
    backend: str
    workers: int
    wall: float
    partitions: int
    rows: int | None
    task_seconds: float
    task_max: float
    phases: dict[str, float]
    counts: dict[str, int]
    peak_rss: int | None
    peak_scope: str
    busy: float
    ok: bool


def _pass_of(
    index: int,
    name: str,
    backend: str,
    workers: int,
    wall: float,
    tasks: list[TaskProfile],
    ok: bool,
) -> PassProfile:
    """Sum ``tasks`` into a :class:`PassProfile`."""
    phases: dict[str, float] = {}
    counts: dict[str, int] = {}
    for task in tasks:
        for key, seconds in task.phases.items():
            phases[key] = phases.get(key, 0.0) + seconds
        for key, n in task.counts.items():
            counts[key] = counts.get(key, 0) + n
    phases["compute"] = sum(task.compute for task in tasks)
    rows = [task.rows for task in tasks]
    peaks = [task.peak_rss for task in tasks if task.peak_rss is not None]
    seconds = sum(task.elapsed for task in tasks)
    process_wide = any(t.peak_scope == "process" for t in tasks if t.peak_rss is not None)
    return PassProfile(
        index=index,
        name=name,
        backend=backend,
        workers=workers,
        wall=wall,
        partitions=len(tasks),
        rows=None if any(r is None for r in rows) else sum(rows),  # type: ignore[arg-type]
        task_seconds=seconds,
        task_max=max((task.elapsed for task in tasks), default=0.0),
        phases=phases,
        counts=counts,
        peak_rss=max(peaks) if peaks else None,
        peak_scope="process" if process_wide else "task",
        busy=seconds / (wall * workers) if wall > 0 and workers > 0 else 0.0,
        ok=ok,
    )


class PassRecorder:
    """Collects one pass's outcomes for the profiles active when it started."""

    def __init__(self, profiles: tuple[Profile, ...], name: str, backend: Backend) -> None:
        self._profiles = profiles
        self._name = name
        self._backend = backend.describe()
        self._gather = backend.gather_tasks
        self._workers = backend.nworkers
        self._tasks: list[TaskProfile] = []
        self._started = time.perf_counter()

    def add(self, key: str, value: Any, outcome: Outcome | None, *, index: int) -> None:
        """Record partition ``index`` (``outcome=None``: loaded from a checkpoint)."""
        rows = getattr(value, "nrows", None) if outcome is None or outcome.ok else None
        usage = outcome.usage if outcome is not None else None
        if rows is None and usage is not None:
            rows = usage.counts.get("rows_read")  # a statistic that does not count rows
        task = TaskProfile(
            pass_index=-1,
            pass_name=self._name,
            partition=index,
            key=key,
            worker=outcome.worker if outcome is not None else "",
            rows=int(rows) if rows is not None else None,
            # "load" (unpickling the task on a processes worker) precedes the task's clock.
            elapsed=(outcome.elapsed + (usage.phases.get("load", 0.0) if usage else 0.0))
            if outcome is not None
            else 0.0,
            attempts=outcome.attempts if outcome is not None else 0,
            from_checkpoint=outcome is None,
            ok=outcome is None or outcome.ok,
        )
        if usage is not None:
            task = replace(
                task,
                phases=dict(usage.phases),
                counts=dict(usage.counts),
                rss_start=usage.rss_start,
                rss_end=usage.rss_end,
                peak_rss=usage.peak_rss,
                peak_scope=usage.peak_scope,
            )
        self._tasks.append(task)

    def finish(self, *, ok: bool, gather: bool = True) -> None:
        """The pass ended: give it to every profile.

        ``gather``: collect the tasks of every process first (MPI ranks each run their
        own share; see :meth:`Backend.gather_tasks`). Off when this process is leaving
        the pass by an exception, since the other processes may never get there.
        """
        wall = time.perf_counter() - self._started
        tasks = self._gather(self._tasks) if gather else self._tasks
        tasks = sorted(tasks, key=lambda task: task.partition)
        for prof in self._profiles:
            prof._add_pass(self._name, self._backend, self._workers, wall, tasks, ok)


#: The longest a profiled pass waits for starting workers before its clock starts.
_READY_TIMEOUT = 120.0


def record_pass(name: str, backend: Backend, *, computing: bool = True) -> PassRecorder | None:
    """A recorder for a pass starting now, or ``None`` when no profile is active.

    When the pass will run tasks (``computing``; not when a checkpoint has every
    partition), workers still starting (the processes backend spawns them without
    waiting) are waited for first and counted as ``backend_start``: otherwise their
    start, one or two seconds, showed as the first pass's wall time.
    """
    profiles = _active.get()
    if not profiles:
        return None
    started = time.perf_counter()
    if computing and backend.wait_ready(_READY_TIMEOUT):
        note_driver("backend_start", time.perf_counter() - started)
    return PassRecorder(profiles, name, backend)


def note_driver(name: str, seconds: float) -> None:
    """Add ``seconds`` of driver work ``name`` (``backend_start``, ``merge``...) to the
    active profiles."""
    for prof in _active.get():
        prof._note(name, seconds)


class Profile:
    """Where the time and memory of the passes run inside a ``with`` block went.

    Make one with :func:`profile`. Inside the block every pass of every fit is
    measured on its workers; after it, read:

    - :attr:`passes`: one :class:`PassProfile` per pass, in the order they ran;
    - :attr:`tasks`: one :class:`TaskProfile` per partition and pass;
    - :meth:`to_frame`: the tasks as a pandas DataFrame;
    - :meth:`summary`: a text table of where the time and memory went;
    - :meth:`to_json`: all of it as JSON;
    - :attr:`wall`, :attr:`driver_peak_rss`: the block's wall time and the driver
      process's peak resident memory during it;
    - :attr:`driver_phases`: seconds the driver spent starting and stopping backends
      (``backend_start``, ``backend_stop``) and merging statistics (``merge``).

    Measuring resets the kernel's peak-memory mark of the processes it measures
    (Linux ``clear_refs``), so ``getrusage``'s ``ru_maxrss`` read in them afterwards
    covers only the time since the last task.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._passes: list[PassProfile] = []
        self._tasks: list[TaskProfile] = []
        self._token: Token[tuple[Profile, ...]] | None = None
        self._watch: PeakWatch | None = None
        self._started = 0.0
        self.wall: float | None = None
        self.driver_rss_start: int | None = None
        self.driver_peak_rss: int | None = None
        self.driver_peak_scope = "process"
        self.driver_phases: dict[str, float] = {}

    def _note(self, name: str, seconds: float) -> None:
        with self._lock:
            self.driver_phases[name] = self.driver_phases.get(name, 0.0) + seconds

    def __enter__(self) -> Self:
        if self._token is not None:
            raise RuntimeError("this profile is already in use; make a new one")
        self._token = _active.set((*_active.get(), self))
        # The driver's peak during the block: reset the mark (open watches, such as an
        # outer profile's, keep what came before) and watch from here.
        self.driver_peak_scope = "task" if reset_peak() else "process"
        self.driver_rss_start, _ = rss()
        self._watch = PeakWatch().start()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.wall = time.perf_counter() - self._started
        assert self._watch is not None and self._token is not None
        self.driver_peak_rss = self._watch.stop()
        _active.reset(self._token)

    def _add_pass(
        self, name: str, backend: str, workers: int, wall: float, tasks: list[TaskProfile], ok: bool
    ) -> None:
        with self._lock:
            index = len(self._passes)
            mine = [replace(task, pass_index=index) for task in tasks]
            self._passes.append(_pass_of(index, name, backend, workers, wall, mine, ok))
            self._tasks.extend(mine)

    @property
    def passes(self) -> list[PassProfile]:
        """One entry per pass, in the order the passes ran."""
        with self._lock:
            return list(self._passes)

    @property
    def tasks(self) -> list[TaskProfile]:
        """One entry per partition and pass, by pass then partition."""
        with self._lock:
            return list(self._tasks)

    def to_frame(self) -> pd.DataFrame:
        """The tasks as a DataFrame, one row per partition and pass.

        Columns: ``pass_index``, ``pass``, ``partition``, ``key``, ``worker``,
        ``rows``, ``elapsed``, ``attempts``, one column of seconds per phase (``read``,
        ``encode``, ..., ``compute``), one per count (``cache_hit``, ...), ``rss_start``,
        ``rss_end``, ``peak_rss`` (bytes), ``peak_scope``, ``from_checkpoint``, ``ok``.
        """
        from shardfit.engine.profile_report import tasks_frame

        return tasks_frame(self.tasks)

    def summary(self) -> str:
        """A text table: each pass's wall time, rows, task time by phase, busy share
        and worker peak memory, then the slowest pass and partition and the largest
        worker peak."""
        from shardfit.engine.profile_report import summary_text

        return summary_text(self)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready lists and numbers."""
        from shardfit.engine.profile_report import profile_dict

        return profile_dict(self)

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON to ``path`` (no pickle) and return the path."""
        import json

        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    def __repr__(self) -> str:
        return f"<Profile {len(self._passes)} passes, {len(self._tasks)} tasks>"


def profile() -> Profile:
    """Profile every pass run inside a ``with`` block: time and memory, where they went.

    Returns
    -------
    Profile
        A context manager; read its :attr:`~Profile.passes`, :attr:`~Profile.tasks`,
        :meth:`~Profile.to_frame`, :meth:`~Profile.summary` or
        :meth:`~Profile.to_json` after the block.

    Examples
    --------
    >>> import numpy as np, pandas as pd, shardfit
    >>> x = np.arange(30.0)
    >>> frame = pd.DataFrame({"x": x, "y": 2 * x + np.sin(x)})
    >>> data = shardfit.from_pandas(frame, npartitions=3)
    >>> with shardfit.profile() as prof:
    ...     fit = shardfit.ols("y ~ x", data).fit(backend="serial")
    >>> [(p.name, p.partitions, p.rows) for p in prof.passes]
    [('ls-gram', 3, 30)]
    >>> print(prof.summary())  # doctest: +SKIP
    """
    return Profile()
