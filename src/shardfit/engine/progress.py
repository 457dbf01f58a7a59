"""Progress events of a pass, and the reporters that receive them.

The engine emits one :class:`ProgressEvent` per partition finished (computed or
found in a checkpoint). Rows and bytes come from the statistic's optional ``nrows``
and ``nbytes`` attributes (``None`` where a statistic has neither). What to do with
events is the caller's choice, through ``run_pass(progress=...)``:

- ``False`` (the default): nothing; library calls are silent;
- ``True``: a rich progress bar on standard error, if it is a terminal;
- a callable: called with each event (in the driver, from one thread);
- a :class:`ProgressReporter`, such as ``RichProgress(force=True)`` from the CLI.

Under MPI each rank reports its own partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["CallbackReporter", "ProgressEvent", "ProgressReporter", "RichProgress", "reporter"]


@dataclass(frozen=True)
class ProgressEvent:
    """One partition of a pass finished.

    Attributes
    ----------
    pass_name : str
        The pass.
    index : int
        The partition's position in the source.
    key : str
        The partition's key.
    nrows, nbytes : int or None
        Rows and bytes the statistic reports, ``None`` when it does not say.
    elapsed : float
        Seconds the task took on its worker (0 for a checkpointed partition).
    done, total : int
        Partitions finished so far and in all, in this process.
    from_checkpoint : bool
        Whether the statistic was loaded from a checkpoint rather than computed.
    """

    pass_name: str
    index: int
    key: str
    nrows: int | None
    nbytes: int | None
    elapsed: float
    done: int
    total: int
    from_checkpoint: bool = False


class ProgressReporter:
    """Receives a pass's events; this base class ignores them (silence)."""

    def start(self, pass_name: str, total: int) -> None:
        """A pass over ``total`` partitions begins."""

    def update(self, event: ProgressEvent) -> None:
        """A partition finished."""

    def finish(self) -> None:
        """The pass ended (successfully or not)."""


class CallbackReporter(ProgressReporter):
    """Passes each event to a function."""

    def __init__(self, callback: Callable[[ProgressEvent], Any]) -> None:
        self.callback = callback

    def update(self, event: ProgressEvent) -> None:
        """Call the callback."""
        self.callback(event)


class RichProgress(ProgressReporter):
    """A rich progress bar on standard error: partitions, rows, bytes, time.

    Parameters
    ----------
    force : bool
        Draw even when standard error is not a terminal (the CLI's choice).
    """

    def __init__(self, *, force: bool = False) -> None:
        self.force = force
        self._progress: Any = None
        self._task: Any = None
        self._rows = 0
        self._bytes = 0

    def start(self, pass_name: str, total: int) -> None:
        """Show the bar, if standard error is a terminal or drawing is forced."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True, force_terminal=True if self.force else None)
        if not console.is_terminal:
            return
        self._rows = self._bytes = 0
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]} rows, {task.fields[size]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(pass_name, total=total, rows=0, size="0 B")

    def update(self, event: ProgressEvent) -> None:
        """Advance the bar."""
        if self._progress is None:
            return
        from rich.filesize import decimal

        self._rows += event.nrows or 0
        self._bytes += event.nbytes or 0
        self._progress.update(
            self._task, completed=event.done, rows=f"{self._rows:,}", size=decimal(self._bytes)
        )

    def finish(self) -> None:
        """Remove the live display."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def reporter(
    progress: bool | Callable[[ProgressEvent], Any] | ProgressReporter,
) -> ProgressReporter:
    """The reporter for ``run_pass``'s ``progress`` argument (see the module notes)."""
    if isinstance(progress, ProgressReporter):
        return progress
    if progress is True:
        return RichProgress()
    if progress is False or progress is None:
        return ProgressReporter()
    if callable(progress):
        return CallbackReporter(progress)
    raise ValueError(
        "The 'progress' parameter must be a bool, a callable taking a ProgressEvent, "
        f"or a ProgressReporter. Got {progress!r} instead."
    )
