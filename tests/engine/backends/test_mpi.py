"""The MPI backend under a real ``mpiexec``: ordered reduction, allreduce, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason="the mpi extra is not installed (issue 3)")

MPIEXEC = Path(sys.executable).parent / "mpiexec"

SCRIPT = """
import json
import sys
from pathlib import Path

from mpi4py import MPI

from shardfit.engine import PartitionCache, map_partitions, run_pass, session
from shardfit.engine._testing import (
    CachedGramTask, GramTask, RaisingTask, count_markers, seeded_source
)
from shardfit.errors import PartitionTaskError, ReadError

out, markers, checkpoint, encoded = (Path(arg) for arg in sys.argv[1:5])
comm = MPI.COMM_WORLD
source = seeded_source(11, nrows=40, ncols=3, seed=7)
report = {}

result = run_pass(GramTask(), source, backend="mpi")
report["root_only"] = None if result is None else result.digest().hex()
report["allreduce"] = run_pass(GramTask(), source, backend="mpi", allreduce=True).digest().hex()
for size in (1, 2):
    if comm.size > size:
        sub = comm.Split(comm.rank // size, comm.rank)
        result = run_pass(GramTask(), source, backend=sub, allreduce=True)
        report[f"size{size}"] = result.digest().hex()
stats = map_partitions(GramTask(), source, backend="mpi", allgather=True)
report["map"] = [stat.digest().hex() for stat in stats]
try:
    run_pass(RaisingTask("read", 5), source, backend="mpi")
except ReadError as error:
    report["read_error"] = str(error)
try:
    run_pass(RaisingTask("value", 6), source, backend="mpi", retries=1)
except PartitionTaskError as error:
    report["task_error"] = [error.key, str(error).splitlines()[0]]
for _ in range(2):  # the second run finds every partition checkpointed
    task = GramTask(marker_dir=str(markers))
    result = run_pass(task, source, backend="mpi", checkpoint=checkpoint, allreduce=True)
comm.Barrier()
report["checkpointed"] = result.digest().hex()
report["computed"] = count_markers(markers, "computed-")
with session("mpi") as sess, PartitionCache(sess, max_bytes=500) as cache:
    for _ in range(2):  # half the entries fit in memory, the rest spill
        result = run_pass(CachedGramTask(cache.ref, str(encoded)), source, backend=sess)
    spill_dir = cache.ref.spill_dir
comm.Barrier()
report["cached"] = None if result is None else result.digest().hex()
report["encoded"] = count_markers(encoded, "encoded-")
report["spill_left"] = spill_dir.exists()
(out / f"rank{comm.rank}.json").write_text(json.dumps(report))
"""


@pytest.mark.parametrize("ranks", [2, 4])
def test_mpiexec_matches_serial_bitwise(ranks, source, reference, tmp_path, isolated_tmp):
    script = tmp_path / "pass.py"
    script.write_text(SCRIPT)
    folders = ("out", "markers", "checkpoint", "encoded")
    for name in folders:
        (tmp_path / name).mkdir()
    command = [str(MPIEXEC), "-n", str(ranks), sys.executable, str(script)]
    command += [str(tmp_path / name) for name in folders]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 0, done.stderr
    reports = [json.loads((tmp_path / "out" / f"rank{r}.json").read_text()) for r in range(ranks)]
    expected = reference.hex()
    assert reports[0]["root_only"] == expected
    assert reports[0]["cached"] == expected
    assert all(report["root_only"] is None for report in reports[1:])
    for report in reports:
        assert report["allreduce"] == expected
        assert report["size1"] == expected
        if ranks == 4:
            assert report["size2"] == expected
        assert report["checkpointed"] == expected
        assert report["computed"] == source.npartitions  # none twice
        assert report["encoded"] == source.npartitions  # each rank keeps its share
        assert report["spill_left"] is False
        assert report["map"][3] == _single(source, 3)
        assert report["read_error"] == "malformed line in partition seeded-7-5 (line 3)"
        key, message = report["task_error"]
        assert key == "seeded-7-6" and "after 2 attempt(s): ValueError" in message


def _single(source, index: int) -> str:
    from shardfit.engine._testing import GramStat

    return GramStat.of(source.partitions[index].values()).digest().hex()
