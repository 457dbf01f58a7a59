"""RESULTS.md: the machine, the load, every measurement, and shardfit's ratios.

Ratios are per case and size, within one run: ``× read`` divides a median by the median
of pyarrow reading the needed columns from Parquet into NumPy (the physical limit);
``× shardfit`` divides it by shardfit's default fit (``method="auto"``). A shardfit
figure's best peer is the fastest peer whose parameters passed the accuracy check
(exact peers only: naive averaging answers a different question).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import psutil

__all__ = ["Measurement", "machine", "render"]

READ_TOOL = "pyarrow read Parquet → NumPy"
LIBRARIES = (
    "shardfit",
    "numpy",
    "scipy",
    "pyarrow",
    "pandas",
    "formulaic",
    "statsmodels",
    "dask",
    "distributed",
    "pyspark",
    "psutil",
)


@dataclass
class Measurement:
    """One (case, tool, rows): its times or why it did not run."""

    case: str
    tool: str
    role: str
    rows: int
    times: list[float] = field(default_factory=list)
    peak_rss: int | None = None
    largest_rss: int | None = None
    cpu_seconds: float | None = None
    startup_seconds: float | None = None
    load: float | None = None
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None
    accuracy: float | None = None
    accuracy_ok: bool | None = None  # None: not checked
    exact: bool = True
    params: dict[str, float] | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    def row(self) -> dict[str, Any]:
        """A JSON-ready record (parameters left out)."""
        record = {k: v for k, v in self.__dict__.items() if k != "params"}
        record["median"] = self.median
        return record


def machine() -> dict[str, Any]:
    """Cores, memory, CPU, BLAS and library versions of this machine."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "memory_gb": psutil.virtual_memory().total / 1e9,
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "versions": versions,
        "java": _java(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = ", ".join(
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
            for p in threadpool_info()
            if p.get("user_api") == "blas"
        )
    except ImportError:
        info["blas"] = "unknown"
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _java() -> str:
    java = shutil.which("java")
    if not java:
        return "not installed"
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).splitlines()[0] if done.returncode == 0 else "broken"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _bytes(value: int | None) -> str:
    if value is None:
        return "–"
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "–"
    return f"{value / base:.2f}"


def _rate(rows: int, seconds: float | None) -> str:
    if not seconds:
        return "–"
    rate = rows / seconds
    return f"{rate / 1e6:.2f}M" if rate >= 1e6 else f"{rate / 1e3:.0f}k"


def _accuracy(m: Measurement) -> str:
    if m.accuracy is None:
        return "reference" if "reference" in m.notes else "–"
    text = f"{m.accuracy:.1e}"
    if m.accuracy_ok is None:
        return f"{text} (approx.)"
    return text if m.accuracy_ok else f"**{text} FAIL**"


def _median_of(ms: Iterable[Measurement], tool: str, case: str, rows: int) -> float | None:
    for m in ms:
        if (m.tool, m.case, m.rows) == (tool, case, rows):
            return m.median
    return None


def best_peer(
    ms: Sequence[Measurement], case: str, rows: int, names: Sequence[str] | None = None
) -> Measurement | None:
    """The fastest other tool doing the same job: among ``names`` when given, else the
    exact peers and references that passed their accuracy check."""
    if names:
        peers = [m for m in ms if (m.case, m.rows) == (case, rows) and m.tool in names and m.median]
    else:
        peers = [
            m
            for m in ms
            if m.case == case
            and m.rows == rows
            and m.role in ("peer", "reference")
            and m.exact
            and m.median is not None
            and m.accuracy_ok is not False
        ]
    return min(peers, key=lambda m: m.median or 0.0, default=None)


def render(ms: Sequence[Measurement], meta: dict[str, Any]) -> str:
    """The whole RESULTS.md."""
    info = meta["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    lines = [
        "# shardfit benchmarks",
        "",
        f"Written by `{meta['command']}` on {meta['date']} in {meta['wall_seconds']:.0f} s.",
        *([meta["parts"]] if meta.get("parts") else []),
        "",
        f"**Machine**: {info['cores']} cores ({info['cpu']}), "
        f"{info['memory_gb']:.1f} GB memory, BLAS {info['blas']}; Python {info['python']}, "
        f"{versions}; {info['java']}.",
        "",
        f"**Load** (1-minute average; other engineers' tests share the machine): "
        f"{meta['load_start']:.2f} at the start, {meta['load_end']:.2f} at the end; "
        "per measurement in the `load` column.",
        "",
        f"**Timing**: median of {meta['repeats']} repeats unless `n` says otherwise; each "
        "(case, tool, size) runs in a child process of its own. `peak RSS` is the peak of "
        "the summed resident memory of that child and all its descendants (workers, JVM), "
        "sampled every 50 ms; `largest` is the peak of its largest single process "
        "(`wait4`'s `ru_maxrss`). `startup` (cluster, JVM) is reported apart and not in "
        "the median: `shardfit auto` and `shardfit qr` likewise open the default backend's "
        "session (`processes`, 2 workers) once and fit on it, while `shardfit auto, one "
        "call` is the plain `ols(...).fit()` that starts and stops its pool every time. "
        "`1st s` is the first repeat, in a fresh process (allocator and JIT cold); the "
        "median of a limit is thus a warm read. Data files sit in the page cache. At "
        "each size the pyarrow read runs first and shardfit right after it (then the "
        "peers), so `× limit` compares two measurements of the same machine state.",
        "",
        "**Accuracy**: max over parameters of |p − p_ref| / |p_ref| against the case's "
        "reference at that size (statsmodels in memory where it fits, else the exact NumPy "
        "streamed QR); checked against each tool's tolerance; naive averaging is reported "
        "only.",
        "",
    ]
    lines += _shardfit_table(ms, meta.get("goals", {}), meta.get("compare", {}))
    lines += _full_table(ms)
    lines += _skips(ms)
    if meta.get("generated"):
        lines += ["", "## Data generated (`shardfit simulate`)", ""]
        lines += [
            f"- {g['kind']} {g['rows']:,} rows, {g['format']}: {g['bytes'] / 1e9:.2f} GB "
            f"in {g['seconds']:.1f} s"
            for g in meta["generated"]
        ]
    lines += [*meta.get("remarks", []), ""]
    return "\n".join(lines)


def _shardfit_table(
    ms: Sequence[Measurement], goals: dict[str, str], compare: dict[str, dict[str, Any]]
) -> list[str]:
    rows = [m for m in ms if m.role == "shardfit" and m.median is not None]
    if not rows:
        return []
    lines = [
        "## shardfit against the limit and its peers",
        "",
        "`× limit`: shardfit's time over the case's physical limit (the pyarrow read of "
        "the columns it needs) in the same run; `best exact peer ÷ shardfit`: how many "
        "times longer the fastest other tool took: a peer or reference that matched the "
        "reference, or for streaming the tools doing the same job.",
        "",
    ]
    for case in dict.fromkeys(m.case for m in rows):
        if goals.get(case):
            lines.append(f"- Goals for `{case}`: {goals[case]}")
    lines += [
        "",
        "| case | tool | rows | median s | peak RSS | × limit | best exact peer | "
        "best exact peer ÷ shardfit |",
        "|---|---|--:|--:|--:|--:|---|--:|",
    ]
    for m in rows:
        read = _median_of(ms, READ_TOOL, m.case, m.rows)
        best = best_peer(ms, m.case, m.rows, compare.get(m.case, {}).get(m.tool))
        best_text = f"{best.tool} ({_seconds(best.median)} s)" if best else "–"
        lines.append(
            f"| {m.case} | {m.tool} | {m.rows:,} | {_seconds(m.median)} | "
            f"{_bytes(m.peak_rss)} | {_ratio(m.median, read)} | "
            f"{best_text} | {_ratio(best.median if best else None, m.median)} |"
        )
    return [*lines, ""]


def _case_shardfit(ms: Sequence[Measurement], case: str, rows: int) -> float | None:
    """The median of the case's first shardfit tool at ``rows`` (its headline figure)."""
    for m in ms:
        if (m.case, m.rows, m.role) == (case, rows, "shardfit") and m.median is not None:
            return m.median
    return None


def _full_table(ms: Sequence[Measurement]) -> list[str]:
    lines = [
        "## Every measurement",
        "",
        "| case | tool | role | rows | n | median s | 1st s | rows/s | peak RSS | largest | "
        "startup s | × read | × shardfit | accuracy | load | notes |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for m in ms:
        if m.skipped:
            continue
        read = _median_of(ms, READ_TOOL, m.case, m.rows)
        own = _case_shardfit(ms, m.case, m.rows)
        notes = "; ".join([*m.notes, *([f"**error**: {m.error}"] if m.error else [])])
        lines.append(
            f"| {m.case} | {m.tool} | {m.role} | {m.rows:,} | {len(m.times)} | "
            f"{_seconds(m.median)} | {_seconds(m.times[0] if m.times else None)} | "
            f"{_rate(m.rows, m.median)} | {_bytes(m.peak_rss)} | "
            f"{_bytes(m.largest_rss)} | {_seconds(m.startup_seconds)} | "
            f"{_ratio(m.median, read)} | {_ratio(m.median, own)} | {_accuracy(m)} | "
            f"{'–' if m.load is None else f'{m.load:.1f}'} | {notes.replace('|', '/')} |"
        )
    return [*lines, ""]


def _skips(ms: Sequence[Measurement]) -> list[str]:
    skipped = [m for m in ms if m.skipped]
    if not skipped:
        return []
    lines = ["## Skipped", ""]
    for m in skipped:
        size = f" at {m.rows:,} rows" if m.rows else ""
        lines.append(f"- {m.case} / {m.tool}{size}: {m.skipped}")
    return lines
