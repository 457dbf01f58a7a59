"""Killing a real search process mid-run, for the resume tests."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def _results_in(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
    except sqlite3.Error:  # the search is creating it
        return 0


def kill_after_first_result(script: Path, store: Path, *, poll: float = 0.005) -> None:
    """Run ``script`` (a search writing ``store``) in its own process group and SIGKILL
    the group, driver and workers, once ``store`` holds a result."""
    child = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            if _results_in(store) >= 1:
                break
            time.sleep(poll)
        assert child.poll() is None, "the search ended before it could be killed"
        os.killpg(child.pid, signal.SIGKILL)  # the driver and its workers, mid-search
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
