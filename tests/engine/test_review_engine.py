"""Review of the engine as a user of long jobs on flaky machines sees it: damaged or
unwritable checkpoints, checkpoint keys of closures and array-valued tasks, and errors
Dask raises outside the task. References: statsmodels' OLS on the frame in memory, and
NumPy sums of the seeded partitions' rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.engine import run_pass
from shardfit.engine._testing import GramStat, GramTask, seeded_source
from shardfit.engine.checkpoint import CheckpointWarning
from shardfit.errors import PartitionTaskError

FORMULA = "y ~ x1 + x2 + C(g)"
MPIEXEC = Path(sys.executable).parent / "mpiexec"


@pytest.fixture(scope="module")
def csv_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(20261201)
    n = 300
    frame = pd.DataFrame(
        {
            "x1": rng.standard_normal(n) * 1e3,
            "x2": rng.uniform(size=n),
            "g": rng.choice(["a", "b", "c"], n),
        }
    )
    frame["y"] = 1 + 2 * frame.x1 - frame.x2 + (frame.g == "b") + rng.standard_normal(n)
    path = tmp_path_factory.mktemp("data") / "rows.csv"
    frame.to_csv(path, index=False, float_format="%.17g")
    return path, frame


def _statsmodels(frame: pd.DataFrame, names: pd.Index) -> np.ndarray:
    """statsmodels' OLS coefficients on the frame in memory, in shardfit's order."""
    return smf.ols(FORMULA, frame).fit().params[names].to_numpy()


def _fit(path: Path, **options: Any) -> shardfit.LinearResults:
    source = shardfit.read_csv(path, partition_rows=60)
    return shardfit.ols(FORMULA, source).fit(backend="serial", method="qr", **options)


def _damage_truncate_json(part: Path) -> None:
    text = part.read_text()
    part.write_text(text[: len(text) // 2])


def _damage_truncate_npz(part: Path) -> None:
    npz = part.with_suffix(".npz")
    npz.write_bytes(npz.read_bytes()[:100])


def _damage_lose_npz(part: Path) -> None:
    part.with_suffix(".npz").unlink()


def _damage_forge_class(part: Path) -> None:
    document = json.loads(part.read_text())
    document["body"]["value"]["__object__"] = "os:system"
    part.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "damage",
    [_damage_truncate_json, _damage_truncate_npz, _damage_lose_npz, _damage_forge_class],
)
def test_damaged_checkpoint_file_is_reported_and_recomputed(csv_data, tmp_path, damage):
    # A copy cut short, a lost file or an edited class path: the partition is named in
    # a warning and computed again (it used to stop the job with a bare JSONDecodeError,
    # BadZipFile or FileNotFoundError naming no partition), and its files are replaced.
    path, frame = csv_data
    fresh = _fit(path)
    expected = _statsmodels(frame, fresh.params.index)
    np.testing.assert_allclose(fresh.params.values, expected, rtol=1e-9)
    _fit(path, checkpoint=str(tmp_path))
    parts = sorted(tmp_path.glob("*/part-000002.json"))
    assert len(parts) == 1
    damage(parts[0])
    with pytest.warns(CheckpointWarning, match=r"partition rows\.csv#.* computed again"):
        resumed = _fit(path, checkpoint=str(tmp_path))
    assert resumed.params.values.tobytes() == fresh.params.values.tobytes()
    assert resumed.bse.values.tobytes() == fresh.bse.values.tobytes()
    with warnings.catch_warnings():  # the damaged files were replaced by good ones
        warnings.simplefilter("error", CheckpointWarning)
        again = _fit(path, checkpoint=str(tmp_path))
    assert again.params.values.tobytes() == fresh.params.values.tobytes()


FULL_DISK_SCRIPT = """
import resource, signal, sys, warnings
import shardfit
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then writes past the limit fail: EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))
if __name__ == "__main__":
    source = shardfit.read_csv(sys.argv[1], partition_rows=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = shardfit.ols("y ~ x1 + x2 + C(g)", source).fit(
            backend="serial", method="qr", checkpoint=sys.argv[2]
        )
    print(fit.params.values.tobytes().hex())
    print(sum("could not checkpoint partition" in str(w.message) for w in caught))
"""


def test_checkpoint_that_cannot_be_written_warns_and_the_fit_finishes(csv_data, tmp_path):
    # The file system refuses the statistic files (here a file-size limit, as a quota
    # or a full disk would): the fit used to die with an OSError after computing the
    # partition; the checkpoint only spares a rerun, so the fit goes on with a warning.
    path, frame = csv_data
    fresh = _fit(path)
    expected = _statsmodels(frame, fresh.params.index)
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(path), str(tmp_path / "checkpoint")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    params_hex, warned = done.stdout.split()
    params = np.frombuffer(bytes.fromhex(params_hex))
    np.testing.assert_allclose(params, expected, rtol=1e-9)
    assert params.tobytes() == fresh.params.values.tobytes()
    assert int(warned) == shardfit.read_csv(path, partition_rows=60).npartitions  # each warns


def _scaled_task(scale: float):
    def task(partition):
        return GramStat.of(partition.values() * scale)

    return task


@dataclass(frozen=True)
class ScaledTask:
    """A task whose parameter is an array (its repr shows 8 significant digits)."""

    scale: np.ndarray

    def __call__(self, partition):
        return GramStat.of(partition.values() * self.scale)


def _numpy_reference(source, scale) -> np.ndarray:
    rows = np.vstack([partition.values() for partition in source.partitions]) * scale
    return rows.T @ rows


@pytest.mark.parametrize(
    ("first", "second", "scale"),
    [
        (_scaled_task(1.0), _scaled_task(2.0), 2.0),
        (lambda p: GramStat.of(p.values()), lambda p: GramStat.of(p.values() * 3.0), 3.0),
        (
            ScaledTask(np.array([1.0, 1.0, 1.0])),
            ScaledTask(np.array([1.0, 1.0 + 1e-9, 1.0])),
            np.array([1.0, 1.0 + 1e-9, 1.0]),
        ),
    ],
    ids=["closure", "lambda", "array-field"],
)
def test_checkpoint_is_not_reused_by_a_different_task_of_the_same_name(
    tmp_path, first, second, scale
):
    # Two closures (or lambdas, or dataclasses whose arrays print alike) used to get
    # the same checkpoint key, so the second pass silently returned the first's result.
    source = seeded_source(4, nrows=20, ncols=3, seed=3)
    run_pass(first, source, backend="serial", checkpoint=tmp_path, pass_name="scaled")
    result = run_pass(second, source, backend="serial", checkpoint=tmp_path, pass_name="scaled")
    expected = _numpy_reference(source, scale)
    np.testing.assert_allclose(result.xtx, expected, rtol=1e-12)
    fresh = run_pass(second, source, backend="serial")
    assert result.digest() == fresh.digest()
    # The same task again finds its own checkpoint.
    assert len(list(tmp_path.glob("*/part-*.json"))) == 2 * source.npartitions
    run_pass(second, source, backend="serial", checkpoint=tmp_path, pass_name="scaled")
    assert len(list(tmp_path.glob("*/part-*.json"))) == 2 * source.npartitions


def test_dask_error_outside_the_task_names_the_partition(dask_client):
    # A statistic Dask cannot send back (here a weak reference) used to reach the
    # caller as Dask's bare TypeError, naming no partition; the processes backend
    # names it, and now Dask does too.
    source = seeded_source(3, nrows=10, ncols=2, seed=5)
    keys = {partition.key for partition in source.partitions}
    with pytest.raises(PartitionTaskError, match=r"cannot pickle 'weakref") as info:
        run_pass(weakref.ref, source, backend=dask_client, retries=0)
    assert info.value.key in keys
    assert f"partition {info.value.key}" in str(info.value)
    # The cluster still serves passes afterwards.
    result = run_pass(GramTask(), source, backend=dask_client)
    expected = _numpy_reference(source, 1.0)
    np.testing.assert_allclose(result.xtx, expected, rtol=1e-12)


MPI_SCRIPT = """
import sys
from mpi4py import MPI
import shardfit
source = shardfit.read_csv(sys.argv[1], partition_rows=60)
fit = shardfit.ols("y ~ x1 + x2 + C(g)", source).fit(
    backend="mpi", method="qr", checkpoint=sys.argv[2]
)
with open(f"{sys.argv[2]}-rank{MPI.COMM_WORLD.rank}.hex", "w") as out:
    out.write(fit.params.values.tobytes().hex())
"""


@pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec in the environment")
def test_damaged_checkpoint_on_one_mpi_rank_does_not_stop_the_job(csv_data, tmp_path):
    # Rank 1 owns partitions 1 and 3; a damaged file of partition 3 used to raise on
    # rank 1 alone, before the collective the other rank was waiting in.
    path, frame = csv_data
    fresh = _fit(path).params
    expected = _statsmodels(frame, fresh.index)
    checkpoint = tmp_path / "checkpoint"
    _fit(path, checkpoint=str(checkpoint))
    (part,) = checkpoint.glob("*/part-000003.json")
    _damage_truncate_json(part)
    script = tmp_path / "mpi_fit.py"
    script.write_text(textwrap.dedent(MPI_SCRIPT))
    command = [str(MPIEXEC), "-n", "2", sys.executable, str(script), str(path), str(checkpoint)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, env=os.environ)
    assert done.returncode == 0, done.stderr
    for rank in (0, 1):
        params = np.frombuffer(bytes.fromhex(Path(f"{checkpoint}-rank{rank}.hex").read_text()))
        np.testing.assert_allclose(params, expected, rtol=1e-9)
        assert params.tobytes() == fresh.values.tobytes()
    assert "computed again" in done.stderr


@dataclass(frozen=True)
class LateFirstTask:
    """GramTask, with the first partitions slowest: they arrive last."""

    def __call__(self, partition):
        time.sleep(0.002 * max(0, 8 - partition.index))
        return GramStat.of(partition.values())


def test_driver_holds_a_few_statistics_not_one_per_partition():
    # Every partition's statistic used to stay in the driver until the pass ended:
    # 200 partitions of a 160-column Gram (200 kB each) peaked at 40 MB, where the
    # design promises memory that does not grow with the rows. Merged on arrival
    # along the same tree, the driver holds about log2(200) of them.
    source = seeded_source(200, nrows=2, ncols=160, seed=4)
    run_pass(GramTask(), seeded_source(2, nrows=2, ncols=160), backend="serial")  # imports
    tracemalloc.start()
    try:
        result = run_pass(GramTask(), source, backend="serial")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(result.xtx, _numpy_reference(source, 1.0), rtol=1e-9, atol=1e-6)
    assert peak < 25 * result.xtx.nbytes, peak / result.xtx.nbytes
    # Merging on arrival keeps the fixed tree: scrambled arrivals, the same bits.
    small = seeded_source(13, nrows=30, ncols=3, seed=6)
    arrived: list[int] = []
    threaded = run_pass(
        LateFirstTask(),
        small,
        backend="threads",
        workers=4,
        progress=lambda event: arrived.append(event.index),
    )
    assert arrived != sorted(arrived)  # the order really was scrambled
    serial = run_pass(GramTask(), small, backend="serial")
    assert threaded.digest() == serial.digest()
    np.testing.assert_allclose(serial.xtx, _numpy_reference(small, 1.0), rtol=1e-12)


def test_a_checkpoint_of_missing_drop_is_not_reused_by_missing_raise(tmp_path) -> None:
    # The tasks' checkpoint keys hold missing=: a run that drops rows must not answer a
    # run that asks to be told about them.
    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0) * 2.0 + np.sin(np.arange(40))})
    frame.loc[3, "x"] = np.nan
    data = shardfit.from_pandas(frame, 4)
    dropped = shardfit.ols("y ~ x", data).fit(backend="serial", checkpoint=str(tmp_path))
    assert dropped.nobs == 39
    with pytest.raises(shardfit.MissingDataError, match="'x'"):
        shardfit.ols("y ~ x", data, missing="raise").fit(backend="serial", checkpoint=str(tmp_path))
    for center in (False, True):
        shardfit.svd("0 + x + y", data, center=center, backend="serial", checkpoint=str(tmp_path))
        with pytest.raises(shardfit.MissingDataError, match="'x'"):
            shardfit.svd(
                "0 + x + y",
                data,
                center=center,
                missing="raise",
                backend="serial",
                checkpoint=str(tmp_path),
            )


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_file_rewritten_with_its_old_mtime_is_not_answered_from_a_checkpoint(
    tmp_path, suffix
) -> None:
    # cp -p, rsync -a and tar x put the old modification time back on new contents of
    # the same size; the status-change time still moves, and the checkpoint key with it.
    frame = pd.DataFrame({"x": np.arange(1.0, 41.0), "y": np.arange(40.0) % 7})
    path = tmp_path / f"data{suffix}"

    def write(data: pd.DataFrame) -> None:
        data.to_csv(path, index=False) if suffix == ".csv" else data.to_parquet(path)

    write(frame)
    first = shardfit.ols("y ~ x", str(path)).fit(backend="serial", checkpoint=str(tmp_path / "c"))
    old = os.stat(path)
    changed = frame.assign(y=(np.arange(40.0) * 3) % 7)  # same digits' width: same size
    time.sleep(0.01)
    write(changed)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    if os.stat(path).st_size != old.st_size:
        pytest.skip("the rewrite changed the file's size (not the case under test)")
    again = shardfit.ols("y ~ x", str(path)).fit(backend="serial", checkpoint=str(tmp_path / "c"))
    expected = smf.ols("y ~ x", changed).fit()
    np.testing.assert_allclose(again.params, expected.params, rtol=1e-10)
    assert not np.allclose(first.params, again.params)
