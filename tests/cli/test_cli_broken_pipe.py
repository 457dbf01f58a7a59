"""A reader of the output that goes away (``shardfit fit ... | head``) ends the command
as it ends a Unix tool: silently, with status 141 (128 + SIGPIPE); it said
"error: [Errno 32] Broken pipe" and exited 2."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd


def test_a_closed_stdout_ends_the_command_quietly_with_status_141(tmp_path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "d.csv"
    pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)}).to_csv(data, index=False)
    command = [sys.executable, "-m", "shardfit", "fit", str(data), "y ~ x", "--backend", "serial"]
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    try:
        done = subprocess.run(command, stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == ""
    # With a reader, the same command prints the summary and succeeds.
    whole = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert whole.returncode == 0
    assert "OLS Regression Results" in whole.stdout
