"""Running the ``shardfit`` command in a real subprocess, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys


def run_shardfit(
    *args: str, timeout: float = 240, cwd: str | os.PathLike[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m shardfit ARGS`` (in ``cwd``) with its output captured; never raises
    on a failing command."""
    return subprocess.run(
        [sys.executable, "-m", "shardfit", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
