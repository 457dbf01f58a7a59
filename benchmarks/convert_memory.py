"""Peak memory and time of ``shardfit convert`` on a large CSV.

Simulates a ``linreg`` CSV of at least ``--gb`` GiB, converts it to Parquet and back
with ``python -m shardfit convert`` in child processes, and prints each child's peak
resident memory (from ``wait4``'s resource usage), wall and CPU time, and the sizes.
The goal is a peak under 1 GiB whatever the size of the file.

Usage::

    python benchmarks/convert_memory.py --gb 2 --scratch /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from shardfit.data.simulate import simulate

GIB = 2**30
GOAL_BYTES = GIB


@dataclass(frozen=True)
class ChildRun:
    """What one child process used."""

    returncode: int
    seconds: float
    peak_rss: int  # bytes
    cpu_seconds: float
    stdout: str


def make_data(gb: float, scratch: Path, *, kind: str = "linreg") -> tuple[Path, int, float]:
    """Simulate a CSV of at least ``gb`` GiB; return its path, rows and seconds taken."""
    probe = simulate(kind, 20_000, scratch / "probe.csv")
    bytes_per_row = probe.stat().st_size / 20_000
    probe.unlink()
    rows = math.ceil(gb * GIB / bytes_per_row * 1.01)  # 1 % margin: "at least"
    started = time.perf_counter()
    path = simulate(kind, rows, scratch / f"{kind}.csv", progress=sys.stderr.isatty())
    return path, rows, time.perf_counter() - started


# Runs the command and reports its resource usage. A small launcher, because a child
# forked from this (large) process would count our pages, up to its exec, in its peak.
_LAUNCHER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({
    "returncode": os.waitstatus_to_exitcode(status),
    "seconds": time.perf_counter() - started,
    "peak_rss": usage.ru_maxrss * 1024,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
}))
"""


def run_child(argv: list[str]) -> ChildRun:
    """Run ``argv`` and measure it alone with ``os.wait4`` (Linux: ru_maxrss in KiB)."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True, check=True
    )
    *output, report = done.stdout.strip().splitlines()
    return ChildRun(**json.loads(report), stdout="\n".join(output))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="CSV size in GiB (default 2)")
    parser.add_argument("--scratch", type=Path, default=None, help="folder for the files")
    parser.add_argument("--keep", action="store_true", help="keep the files afterwards")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="shardfit-bench-", dir=args.scratch))
    try:
        csv, rows, simulated = make_data(args.gb, scratch)
        parquet = scratch / "linreg.parquet"
        size = csv.stat().st_size
        print(f"simulated {rows:,} rows, {size / GIB:.2f} GiB CSV in {simulated:.1f} s")

        baseline = run_child([sys.executable, "-m", "shardfit", "convert", "--help"])
        print(f"the command's imports alone: peak RSS {baseline.peak_rss / 2**20:.0f} MiB")
        back = scratch / "back.csv"
        met = True
        for src, dst in ((csv, parquet), (parquet, back)):
            result = run_child(
                [sys.executable, "-m", "shardfit", "convert", str(src), str(dst), "--no-progress"]
            )
            if result.returncode != 0:
                print(f"convert failed with status {result.returncode}", file=sys.stderr)
                return 1
            print(result.stdout)
            print(
                f"{src.suffix[1:]} -> {dst.suffix[1:]}: {result.seconds:.1f} s wall, "
                f"{result.cpu_seconds:.1f} s CPU, {size / 2**20 / result.seconds:.0f} MiB/s "
                f"of CSV; peak RSS {result.peak_rss / 2**20:.0f} MiB; output "
                f"{dst.stat().st_size / GIB:.2f} GiB"
            )
            met = met and result.peak_rss < GOAL_BYTES
        print(f"goal peak RSS < {GOAL_BYTES / 2**20:.0f} MiB: {'met' if met else 'NOT met'}")
        return 0 if met else 1
    finally:
        if args.keep:
            print(f"files kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
