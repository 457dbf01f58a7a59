"""Tables, text and JSON of a :class:`~shardfit.engine.profile.Profile`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from shardfit.engine.profile import PassProfile, Profile, TaskProfile

__all__ = ["phase_names", "profile_dict", "summary_text", "tasks_frame"]

#: The engine's own phases, in the order tables show them; others follow by name.
ENGINE_PHASES = ("load", "read", "encode", "cache_load", "cache_spill")
#: Shorter column titles for the text table.
_TITLES = {"cache_load": "cache", "cache_spill": "spill"}


def phase_names(phases: Iterable[dict[str, float]]) -> list[str]:
    """Every phase in ``phases``, engine phases first, ``compute`` last."""
    seen = {name for one in phases for name in one} - {"compute"}
    own = sorted(seen - set(ENGINE_PHASES))
    return [name for name in ENGINE_PHASES if name in seen] + own + ["compute"]


def tasks_frame(tasks: Sequence[TaskProfile]) -> pd.DataFrame:
    """One row per task (see :meth:`Profile.to_frame`)."""
    import pandas as pd

    phases = phase_names(task.phases for task in tasks)
    counts = sorted({name for task in tasks for name in task.counts})
    rows = []
    for task in tasks:
        row: dict[str, Any] = {
            "pass_index": task.pass_index,
            "pass": task.pass_name,
            "partition": task.partition,
            "key": task.key,
            "worker": task.worker,
            "rows": task.rows,
            "elapsed": task.elapsed,
            "attempts": task.attempts,
        }
        for name in phases:
            row[name] = task.compute if name == "compute" else task.phases.get(name, 0.0)
        for name in counts:
            row[name] = task.counts.get(name, 0)
        row.update(
            rss_start=task.rss_start,
            rss_end=task.rss_end,
            peak_rss=task.peak_rss,
            peak_scope=task.peak_scope,
            from_checkpoint=task.from_checkpoint,
            ok=task.ok,
        )
        rows.append(row)
    columns = [
        "pass_index",
        "pass",
        "partition",
        "key",
        "worker",
        "rows",
        "elapsed",
        "attempts",
        *phases,
        *counts,
        "rss_start",
        "rss_end",
        "peak_rss",
        "peak_scope",
        "from_checkpoint",
        "ok",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("rows", "rss_start", "rss_end", "peak_rss"):
        frame[name] = frame[name].astype("Int64")  # missing stays missing, not NaN floats
    return frame


def profile_dict(prof: Profile) -> dict[str, Any]:
    """Everything in ``prof`` as JSON-ready values."""
    return {
        "format": "shardfit-profile",
        "version": 1,
        "wall": prof.wall,
        "driver": {
            "rss_start": prof.driver_rss_start,
            "peak_rss": prof.driver_peak_rss,
            "peak_scope": prof.driver_peak_scope,
            "phases": dict(prof.driver_phases),
        },
        "passes": [asdict(one) for one in prof.passes],
        "tasks": [{**asdict(task), "compute": task.compute} for task in prof.tasks],
    }


def _size(nbytes: int | None) -> str:
    if nbytes is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _table(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Columns aligned: the first ``left`` to the left, the others to the right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = []
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if j < left else cell.rjust(width)
            for j, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return lines


def _pass_row(one: PassProfile, phases: list[str]) -> list[str]:
    hits, misses = one.counts.get("cache_hit", 0), one.counts.get("cache_miss", 0)
    peak = _size(one.peak_rss) + ("*" if one.peak_scope == "process" and one.peak_rss else "")
    return [
        str(one.index),
        one.name + ("" if one.ok else " (failed)"),
        str(one.partitions),
        "-" if one.rows is None else f"{one.rows:,}",
        f"{one.wall:.3f}",
        f"{one.task_seconds:.3f}",
        f"{one.task_max:.3f}",
        f"{one.busy:.0%}",
        *(f"{one.phases.get(name, 0.0):.3f}" for name in phases),
        f"{hits}/{misses}" if hits or misses else "-",
        peak,
    ]


def summary_text(prof: Profile) -> str:
    """The text table of :meth:`Profile.summary`."""
    passes, tasks = prof.passes, prof.tasks
    wall = prof.wall or 0.0
    in_passes = sum(one.wall for one in passes)
    driver = max(0.0, wall - in_passes)
    parts = [f"{name.replace('_', ' ')} {s:.3f} s" for name, s in prof.driver_phases.items()]
    other = max(0.0, driver - sum(prof.driver_phases.values()))
    detail = ", ".join([*parts, f"other {other:.3f} s"])
    lines = [
        f"Profile: {len(passes)} passes, {len(tasks)} tasks, wall {wall:.3f} s: "
        f"{in_passes:.3f} s in passes, {driver:.3f} s in the driver ({detail})",
        f"Driver peak RSS {_size(prof.driver_peak_rss)}",
    ]
    if not passes:
        lines.append("No pass ran inside the profile.")
        return "\n".join(lines)
    backends = sorted({one.backend for one in passes})
    lines[-1] += f"; backend: {', '.join(backends)}"
    phases = phase_names(one.phases for one in passes)
    header = [
        "#",
        "pass",
        "parts",
        "rows",
        "wall s",
        "task s",
        "max s",
        "busy",
        *(_TITLES.get(name, name) for name in phases),
        "hit/miss",
        "peak RSS",
    ]
    lines.append("")
    lines.extend(_table(header, [_pass_row(one, phases) for one in passes], left=2))
    lines.append("")
    total = sum(one.task_seconds for one in passes)
    if total > 0:
        shares = ", ".join(
            f"{name} {sum(one.phases.get(name, 0.0) for one in passes):.3f} s "
            f"({sum(one.phases.get(name, 0.0) for one in passes) / total:.0%})"
            for name in phases
        )
        lines.append(f"Task time {total:.3f} s: {shares}")
    slowest = max(passes, key=lambda one: one.wall)
    lines.append(f"Slowest pass: #{slowest.index} {slowest.name} ({slowest.wall:.3f} s wall)")
    computed = [task for task in tasks if not task.from_checkpoint]
    if computed:
        task = max(computed, key=lambda task: task.elapsed)
        lines.append(
            f"Slowest partition: {task.partition} ({task.key}) in #{task.pass_index} "
            f"{task.pass_name}, {task.elapsed:.3f} s on {task.worker}"
        )
    measured = [task for task in tasks if task.peak_rss is not None]
    if measured:
        task = max(measured, key=lambda task: task.peak_rss or 0)
        scope = " (process-wide: tasks shared the process)" if task.peak_scope == "process" else ""
        lines.append(
            f"Largest worker peak: {_size(task.peak_rss)}{scope}, partition {task.partition} "
            f"({task.key}) in #{task.pass_index} {task.pass_name} on {task.worker}"
        )
    if any(one.peak_scope == "process" and one.peak_rss for one in passes):
        lines.append("* peak of the whole worker process, not of each task alone")
    return "\n".join(lines)
