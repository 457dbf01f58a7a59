"""Run one measurement in its own process tree and record what that tree used.

The runner starts a small launcher (``python -c``), which starts the child in a new
session and waits for it with ``os.wait4``. The launcher is small on purpose: a child
forked from a large process would count the parent's pages, up to its ``exec``, in its
own peak. Two memory figures come back:

``peak_rss``
    The peak of the sum of resident memory over the child and all its descendants
    (Dask workers, shardfit's worker processes, Spark's JVM), sampled every 50 ms with
    psutil. Pages shared between processes count once per process.
``largest_rss``
    ``ru_maxrss`` from ``wait4``: the peak of the largest single process in the tree.

On a timeout, or when the child ends, the launcher kills what is left of the child's
process group (workers it failed to stop), and nothing else.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ChildRun", "run_child"]

_LAUNCHER = r"""
import json, os, signal, subprocess, sys, time
import psutil

timeout, log, argv = float(sys.argv[1]), sys.argv[2], sys.argv[3:]
started = time.perf_counter()
with open(log, "ab") as out:
    child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
root = psutil.Process(child.pid)
peak, timed_out = 0, False
while True:
    pid, status, usage = os.wait4(child.pid, os.WNOHANG)
    if pid:
        break
    total = 0
    try:
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    peak = max(peak, total)
    if not timed_out and time.perf_counter() - started > timeout:
        timed_out = True
        os.killpg(child.pid, signal.SIGKILL)
    time.sleep(0.05)
seconds = time.perf_counter() - started
try:
    os.killpg(child.pid, signal.SIGKILL)  # leftovers of the child's own process group
except (ProcessLookupError, PermissionError):
    pass
print(json.dumps({
    "returncode": os.waitstatus_to_exitcode(status),
    "seconds": seconds,
    "peak_rss": peak,
    "largest_rss": usage.ru_maxrss * 1024,
    "cpu_seconds": usage.ru_utime + usage.ru_stime,
    "timed_out": timed_out,
}))
"""


@dataclass(frozen=True)
class ChildRun:
    """What one child process tree used."""

    returncode: int
    seconds: float
    peak_rss: int  # bytes, sum over the tree
    largest_rss: int  # bytes, largest single process (ru_maxrss)
    cpu_seconds: float  # of the child and the descendants it waited for
    timed_out: bool


def run_child(argv: list[str], *, timeout: float, log: Path, env: dict[str, str]) -> ChildRun:
    """Run ``argv`` under the launcher; its output goes to ``log``."""
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(timeout), str(log), *argv],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return ChildRun(**json.loads(done.stdout.strip().splitlines()[-1]))
