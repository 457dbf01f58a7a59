"""Where a task's time and memory went: phase timers and peak resident memory.

This is the lowest-level piece of :func:`shardfit.profile`, at the package's top level
(like :mod:`shardfit.errors`) so that every layer may use it: the data layer times
partition reads, the design layer times encoding, the engine's partition cache
counts its hits, and user tasks may time their own steps, all without importing the
engine.

Phases are recorded per thread. The engine's :func:`~shardfit.engine.retries.run_task`
opens a :class:`TaskRecorder` around a task when the pass is profiled; ``phase`` and
``count`` write to the recorder of the calling thread and do nothing (a thread-local
lookup, well under a microsecond) when none is open. Phases nest and are exclusive:
time spent in an inner phase is not counted again in the outer one, so the phases of
a task add up to at most its elapsed time and the rest is reported as ``compute``.

Peak memory on Linux comes from the kernel's high-water mark of resident memory
(``VmHWM`` in ``/proc/self/status``), reset before a task by writing ``5`` to
``/proc/self/clear_refs``: the peak then covers that task alone. Where that is not
possible (another OS, a process where tasks run side by side in threads, a kernel
that refuses the reset) the peak is the process's (``getrusage``'s ``ru_maxrss``, or
``VmHWM`` without the reset) and is flagged with ``peak_scope="process"``. The
reset also lowers what ``getrusage`` reports afterwards, which is why it happens only
in profiled passes; :func:`reset_peak` first folds the mark into every open
:class:`PeakWatch` of the process, so nested and concurrent measurements stay right.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = [
    "PeakWatch",
    "TaskRecorder",
    "TaskUsage",
    "count",
    "in_phase",
    "phase",
    "reset_peak",
    "rss",
]

_local = threading.local()


@dataclass
class TaskUsage:
    """What one task used on its worker (travels back in the task's outcome).

    Attributes
    ----------
    phases : dict of str to float
        Seconds per phase (exclusive of nested phases), e.g. ``read``, ``encode``.
    counts : dict of str to int
        Events counted during the task, e.g. ``cache_hit``, ``cache_miss``.
    rss_start, rss_end : int or None
        Resident bytes of the worker process before and after the task.
    peak_rss : int or None
        Peak resident bytes of the worker process during the task (see ``peak_scope``).
    peak_scope : str
        ``"task"`` when the peak covers this task alone; ``"process"`` when it is the
        process's peak (threads sharing a process, no ``/proc``), an upper bound.
    """

    phases: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    rss_start: int | None = None
    rss_end: int | None = None
    peak_rss: int | None = None
    peak_scope: str = "task"


class TaskRecorder:
    """Collects the phases and counts of the task running in this thread."""

    __slots__ = ("_outer", "_stack", "counts", "phases")

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        # One [name, start, seconds spent in nested phases] per open phase.
        self._stack: list[list] = []
        self._outer: TaskRecorder | None = None

    def __enter__(self) -> TaskRecorder:
        self._outer = getattr(_local, "recorder", None)
        _local.recorder = self
        return self

    def __exit__(self, *exc: object) -> None:
        _local.recorder = self._outer


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time a step of the running task as phase ``name`` (a no-op outside a profile).

    Use it inside a task to see the step's seconds in :func:`shardfit.profile`::

        def task(partition):
            with phase("solve"):
                ...

    Parameters
    ----------
    name : str
        The phase; the engine's own are ``read``, ``encode``, ``cache_load`` and
        ``cache_spill``, and a task's unclaimed time is reported as ``compute``.
    """
    recorder: TaskRecorder | None = getattr(_local, "recorder", None)
    if recorder is None:
        yield
        return
    frame = [name, time.perf_counter(), 0.0]
    recorder._stack.append(frame)
    try:
        yield
    finally:
        recorder._stack.pop()
        spent = time.perf_counter() - frame[1]
        recorder.phases[name] = recorder.phases.get(name, 0.0) + spent - frame[2]
        if recorder._stack:
            recorder._stack[-1][2] += spent  # not the outer phase's own time


def in_phase(name: str) -> bool:
    """Whether the running task is inside a phase ``name`` (False outside a profile)."""
    recorder: TaskRecorder | None = getattr(_local, "recorder", None)
    return recorder is not None and any(frame[0] == name for frame in recorder._stack)


def count(name: str, n: int = 1) -> None:
    """Count ``n`` events ``name`` for the running task (a no-op outside a profile)."""
    recorder: TaskRecorder | None = getattr(_local, "recorder", None)
    if recorder is not None:
        recorder.counts[name] = recorder.counts.get(name, 0) + n


# -- memory -----------------------------------------------------------------------

_LINUX = sys.platform.startswith("linux")
_watch_lock = threading.Lock()
_watches: set[PeakWatch] = set()
# (pid, descriptor) of this process's /proc/self/clear_refs, kept open: opening it
# costs 10 us a task. The pid guards against a forked child writing its parent's.
_clear_refs: tuple[int, int] | None = None


def _status() -> tuple[int, int] | None:
    """``(VmRSS, VmHWM)`` of this process in bytes, or ``None`` without ``/proc``."""
    if not _LINUX:
        return None
    try:
        with open("/proc/self/status", "rb") as file:
            text = file.read()
        hwm = text.index(b"VmHWM:")
        now = text.index(b"VmRSS:")
        return (
            int(text[now + 6 : text.index(b"kB", now)]) * 1024,
            int(text[hwm + 6 : text.index(b"kB", hwm)]) * 1024,
        )
    except (OSError, ValueError):
        return None


def rss() -> tuple[int | None, int | None]:
    """``(resident bytes now, peak resident bytes)`` of this process.

    The peak is ``VmHWM`` on Linux (since the last :func:`reset_peak`), else
    ``ru_maxrss``; the current value is ``None`` where the OS does not say.
    """
    found = _status()
    if found is not None:
        return found
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None, None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return None, peak if sys.platform == "darwin" else peak * 1024  # macOS: bytes


def reset_peak() -> bool:
    """Reset this process's peak-memory mark to its current resident memory.

    Open :class:`PeakWatch` objects keep the peak reached before the reset. Returns
    whether the reset happened (Linux only; a kernel may refuse it).
    """
    global _clear_refs
    if not _LINUX:
        return False
    with _watch_lock:
        if _watches:
            _, peak = rss()
            for watch in _watches:
                watch.fold(peak)
        try:
            if _clear_refs is None or _clear_refs[0] != os.getpid():
                _clear_refs = (os.getpid(), os.open("/proc/self/clear_refs", os.O_WRONLY))
            os.write(_clear_refs[1], b"5")
        except OSError:
            return False
    return True


class PeakWatch:
    """The peak resident memory of this process from :meth:`start` to :meth:`stop`.

    Without a :func:`reset_peak` just before ``start`` the result is the process's
    peak since its last reset, an upper bound.
    """

    def __init__(self) -> None:
        self._peak: int | None = None

    def fold(self, peak: int | None) -> None:
        """Keep ``peak`` if it is higher (called under the module's lock)."""
        if peak is not None and (self._peak is None or peak > self._peak):
            self._peak = peak

    def start(self) -> PeakWatch:
        """Begin watching."""
        with _watch_lock:
            _watches.add(self)
        return self

    def stop(self, peak_now: int | None = None) -> int | None:
        """Stop watching and return the peak (``peak_now``: a fresh reading, if any)."""
        if peak_now is None:
            _, peak_now = rss()
        with _watch_lock:
            _watches.discard(self)
            self.fold(peak_now)
        return self._peak
