"""Test and benchmark helpers for the engine (not public API).

They live in the package, not under ``tests/``, because spawned workers, Dask
workers started by the ``dask worker`` command and ``mpiexec`` ranks must all import
them by name. Rows are generated from a seed and the partition index, which is a
description, so partitions stay small and are "read" on the worker like real ones.
Tasks that fail, die or count their calls do so through marker files, which every
process (and every retry) sees.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]

from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.errors import ReadError, UnseenLevelError

__all__ = [
    "CacheInfoTask",
    "CachedGramTask",
    "FlakyTask",
    "GramStat",
    "GramTask",
    "KillOnceTask",
    "RaisingTask",
    "SeededPartition",
    "TrivialTask",
    "count_markers",
    "run_mpiexec_script",
    "seeded_source",
]


@dataclass(frozen=True)
class SeededPartition(Partition):
    """Rows drawn from ``default_rng([seed, index])``, columns of wildly mixed scale.

    The mixed scales (1e-4 to 1e4) make float64 sums depend on their order, so a
    bitwise comparison of two passes really checks the merge order.
    """

    seed: int
    index: int
    nrows: int
    ncols: int

    @property
    def key(self) -> str:
        """``"seeded-{seed}-{index}"``."""
        return f"seeded-{self.seed}-{self.index}"

    def values(self) -> np.ndarray:
        """The rows as a float64 array (generated here, on the worker)."""
        rng = np.random.default_rng([self.seed, self.index])
        scale = 10.0 ** rng.uniform(-4, 4, size=self.ncols)
        return rng.standard_normal((self.nrows, self.ncols)) * scale

    def read(self, columns: Any = None) -> ReadResult:
        """The rows as an Arrow table with columns ``x0``, ``x1``, ..."""
        array = self.values()
        table = pa.table({f"x{j}": array[:, j] for j in range(self.ncols)})
        if columns is not None:
            table = table.select(list(columns))
        return ReadResult(table=table, nbytes=array.nbytes)


def seeded_source(npartitions: int, *, nrows: int = 50, ncols: int = 3, seed: int = 0) -> Source:
    """A source of ``npartitions`` seeded partitions."""
    partitions = tuple(SeededPartition(seed, i, nrows, ncols) for i in range(npartitions))
    schema = pa.schema([(f"x{j}", pa.float64()) for j in range(ncols)])
    return Source(name=f"seeded({seed})", partitions=partitions, schema=schema)


@dataclass
class GramStat:
    """Column sums and the Gram matrix ``X'X`` of some rows; merge adds (in float64)."""

    xtx: np.ndarray
    xsum: np.ndarray
    nrows: int
    nbytes: int = 0

    @classmethod
    def of(cls, array: np.ndarray) -> GramStat:
        """The statistic of the rows of ``array``."""
        return cls(array.T @ array, array.sum(axis=0), array.shape[0], array.nbytes)

    def merge(self, other: GramStat) -> GramStat:
        """Add the sums (associative up to rounding; the engine fixes the order)."""
        if self.xtx.shape != other.xtx.shape:
            raise ValueError(f"cannot merge Gram matrices {self.xtx.shape} and {other.xtx.shape}")
        return GramStat(
            self.xtx + other.xtx,
            self.xsum + other.xsum,
            self.nrows + other.nrows,
            self.nbytes + other.nbytes,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON scalars and arrays (see :mod:`shardfit.engine.serialize`)."""
        return {"xtx": self.xtx, "xsum": self.xsum, "nrows": self.nrows, "nbytes": self.nbytes}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_state`."""
        return cls(state["xtx"], state["xsum"], int(state["nrows"]), int(state["nbytes"]))

    def digest(self) -> bytes:
        """Every bit of the statistic, for bitwise comparisons."""
        return self.xtx.tobytes() + self.xsum.tobytes() + str(self.nrows).encode()


def _marker(directory: str | None, prefix: str) -> None:
    if directory is not None:
        (Path(directory) / f"{prefix}.{uuid.uuid4().hex}").touch()


def count_markers(directory: str | Path, prefix: str = "") -> int:
    """How many markers whose name starts with ``prefix`` are in ``directory``."""
    return sum(1 for path in Path(directory).iterdir() if path.name.startswith(prefix))


def _values(partition: Partition) -> np.ndarray:
    assert isinstance(partition, SeededPartition)
    return partition.values()


@dataclass(frozen=True)
class GramTask:
    """Compute :class:`GramStat`; optionally leave a marker per call, or sleep first."""

    marker_dir: str | None = None
    delay: float = 0.0

    def __call__(self, partition: Partition) -> GramStat:
        _marker(self.marker_dir, f"computed-{partition.key}")
        if self.delay:
            time.sleep(self.delay)
        return GramStat.of(_values(partition))

    def fingerprint(self) -> str:
        """Markers and delays do not change the statistic."""
        return "GramTask/1"


@dataclass(frozen=True)
class TrivialTask:
    """Return a 1x1 Gram of zeros at once: measures the engine's own overhead."""

    def __call__(self, partition: Partition) -> GramStat:
        return GramStat(np.zeros((1, 1)), np.zeros(1), 0)


@dataclass(frozen=True)
class KillOnceTask:
    """SIGKILL the worker's own process on the first attempt at partition ``index``."""

    marker_dir: str
    index: int

    def __call__(self, partition: Partition) -> GramStat:
        flag = Path(self.marker_dir) / f"killed-{self.index}"
        if getattr(partition, "index", None) == self.index and not flag.exists():
            flag.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return GramTask(self.marker_dir)(partition)


@dataclass(frozen=True)
class FlakyTask:
    """Raise ``RuntimeError`` on the first ``failures`` attempts at every partition."""

    marker_dir: str
    failures: int

    def __call__(self, partition: Partition) -> GramStat:
        prefix = f"attempt-{partition.key}"
        _marker(self.marker_dir, prefix)
        if count_markers(self.marker_dir, prefix + ".") <= self.failures:
            raise RuntimeError(f"flaky failure on {partition.key}")
        return GramStat.of(_values(partition))


class _Unpicklable(Exception):
    def __init__(self, message: str, *, handle: Any) -> None:
        super().__init__(message)
        self.handle = handle


@dataclass(frozen=True)
class RaisingTask:
    """Raise on partition ``index``: ``kind`` is "value", "read", "unseen",
    "unpicklable" or "interrupt"; other partitions compute normally (slowly with
    ``delay``, leaving markers in ``marker_dir``)."""

    kind: str
    index: int = 0
    marker_dir: str | None = None
    delay: float = 0.0

    def __call__(self, partition: Partition) -> GramStat:
        if getattr(partition, "index", None) != self.index:
            return GramTask(self.marker_dir, self.delay)(partition)
        _marker(self.marker_dir, f"attempt-{partition.key}")
        if self.kind == "value":
            raise ValueError(f"bad value in {partition.key}")
        if self.kind == "read":
            raise ReadError(f"malformed line in partition {partition.key} (line 3)")
        if self.kind == "unseen":
            raise UnseenLevelError(f"unseen level 'z' in partition {partition.key}")
        if self.kind == "unpicklable":
            raise _Unpicklable(f"lock in {partition.key}", handle=lambda: None)
        if self.kind == "interrupt":
            raise KeyboardInterrupt
        raise AssertionError(f"unknown kind {self.kind!r}")


@dataclass(frozen=True)
class CachedGramTask:
    """Gram of the partition's rows, taken from a partition cache when present.

    ``marker_dir`` receives one ``encoded-*`` marker per cache miss; ``delay`` makes
    each call take at least that long, as real tasks do.
    """

    cache: Any  # a shardfit.engine.cache.CacheRef
    marker_dir: str | None = None
    delay: float = 0.0

    def __call__(self, partition: Partition) -> GramStat:
        if self.delay:
            time.sleep(self.delay)

        def encode() -> dict[str, np.ndarray]:
            _marker(self.marker_dir, f"encoded-{partition.key}")
            return {"X": _values(partition)}

        design = self.cache.get_or_compute(partition.key, encode)
        return GramStat.of(np.asarray(design["X"]))


@dataclass(frozen=True)
class CacheInfoTask:
    """Return the worker's counts for a partition cache, and its process id."""

    cache_id: str

    def __call__(self, partition: Partition) -> dict[str, int]:
        from shardfit.engine.cache import cache_info

        return {**cache_info(self.cache_id), "pid": os.getpid()}


def run_mpiexec_script(
    script: str, folder: Path, *, ranks: int = 2, timeout: float = 120.0
) -> tuple[list[dict[str, Any]], str]:
    """Run ``script`` (Python source) under ``mpiexec -n ranks`` with ``folder`` as its
    argument; return each rank's report (``folder / f"rank{r}.json"``, which the
    script writes; ``{}`` where a rank wrote none) and the end of the run's stderr.

    ``-m mpi4py`` aborts every rank on an uncaught exception; a run still going after
    ``timeout`` seconds (ranks left waiting in a collective) is killed with its
    process group, and stderr says so.
    """
    mpiexec = Path(sys.executable).parent / "mpiexec"
    path = folder / "mpi_script.py"
    path.write_text(script)
    command = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(path)]
    with subprocess.Popen(
        [*command, str(folder)],
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ,
        start_new_session=True,
    ) as launched:
        try:
            _, stderr = launched.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(launched.pid, signal.SIGKILL)
            _, stderr = launched.communicate()
            stderr = f"the mpiexec run hung and was killed after {timeout:.0f} s\n" + stderr
    reports = []
    for rank in range(ranks):
        report = folder / f"rank{rank}.json"
        reports.append(json.loads(report.read_text()) if report.exists() else {})
    return reports, stderr[-3000:]
