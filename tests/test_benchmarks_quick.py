"""``python -m benchmarks run --quick --core`` as a smoke test: every case runs, and
shardfit's accuracies hold against each case's reference.

Not a timing: the figures of a quick run on a shared CI machine mean nothing. What it
checks is that every case still runs end to end (data generation, child processes,
shardfit's tools and the reference) and that every exact tool matches its reference
within the tolerance the case sets; the runner exits non-zero otherwise. The other
peers (Dask, scikit-learn's variants, statsmodels' naive DistributedModel) run in every
benchmark run, not here: they took half of this test's 3.5 minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(900)
def test_quick_benchmarks_run_and_match_their_references(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    # Two measurements at a time (each still in a child process of its own): a child
    # mostly waits on one core for its imports and its workers', and the checks do not
    # depend on timing.
    command = [sys.executable, "-m", "benchmarks", "run", "--quick", "--core", "--jobs", "2"]
    done = subprocess.run(
        [*command, "--scratch", str(tmp_path), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    saved = json.loads(out.with_suffix(".json").read_text())
    measured = [m for m in saved["measurements"] if not m.get("skipped")]
    assert any(m["role"] == "shardfit" for m in measured)
    for m in measured:
        assert not m.get("error"), m
        assert m.get("accuracy_ok") is not False, m
    # Every exact shardfit figure was checked against a reference in the same run.
    checked = [m for m in measured if m["role"] == "shardfit" and m.get("accuracy") is not None]
    assert checked, "no shardfit figure was compared with a reference"
    assert "ratio" in out.read_text() or "×" in out.read_text()
