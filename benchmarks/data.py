"""Benchmark data: written by ``shardfit simulate`` into a scratch folder, once per run.

:class:`DataStore` keeps one file per (data set, size, format). A file already in the
folder is reused (``simulate`` writes atomically, so a present file is complete), which
lets ``--scratch DIR --keep`` carry data from one run to the next.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.case import DataSpec, Format

__all__ = ["DataStore", "Generated"]

#: Rows per Parquet row group (``simulate``'s default); smaller files get 4 row groups so
#: that even ``--quick`` fits on several partitions.
ROW_GROUP_ROWS = 250_000


@dataclass(frozen=True)
class Generated:
    """One file the run simulated."""

    spec: DataSpec
    format: Format
    path: Path
    seconds: float
    bytes: int


@dataclass
class DataStore:
    """Simulated files under ``root``, generated on first use."""

    root: Path
    generated: list[Generated] = field(default_factory=list)
    _paths: dict[tuple[DataSpec, str], Path] = field(default_factory=dict)

    def path(self, spec: DataSpec, fmt: Format) -> Path:
        """The file of ``spec`` in ``fmt``, simulated now if the run has none yet."""
        key = (spec, fmt)
        if key in self._paths:
            return self._paths[key]
        path = self.root / f"{spec.kind}-{spec.rows}-seed{spec.seed}.{fmt}"
        if not path.exists():
            chunk = min(ROW_GROUP_ROWS, max(1, math.ceil(spec.rows / 4)))
            command = [
                sys.executable,
                "-m",
                "shardfit",
                "simulate",
                spec.kind,
                "--rows",
                str(spec.rows),
                "--seed",
                str(spec.seed),
                "--out",
                str(path),
                "--format",
                fmt,
                "--chunk-rows",
                str(chunk),
                "--no-progress",
            ]
            print(f"  simulating {spec.kind} {spec.rows:,} rows as {fmt} ...", flush=True)
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
            self.generated.append(Generated(spec, fmt, path, seconds, path.stat().st_size))
        self._paths[key] = path
        return path
