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


def run_serial(*args: str, cwd: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
    """:func:`run_shardfit` of ``ARGS --backend serial`` in ``cwd``."""
    return run_shardfit(*args, "--backend", "serial", cwd=cwd, timeout=300)


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line of a command that failed with status 2 and no traceback, holding
    each of ``words``."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
