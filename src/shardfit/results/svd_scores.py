"""Scores and left singular vectors of an SVD, partition by partition (runs on workers).

Each worker encodes its partition with the design learned when fitting and computes
``(X - mean) @ Vt[:k].T`` (scores), or ``sqrt(w) * scores / s`` (``U``). In memory the
values come back to the driver; with ``out=`` each worker writes its own Parquet part
file (columns ``row`` and ``PC1``...) and the driver writes ``_manifest.json`` last.
A failure anywhere removes what was written (the whole directory, if this call made
it): no half-written output is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from shardfit.data.partition import Partition
from shardfit.data.resolve import as_source
from shardfit.design.materialize import encode_partition
from shardfit.design.spec import DesignSpec
from shardfit.engine import map_partitions, session
from shardfit.errors import DesignError, ReadError
from shardfit.results.prediction_output import MANIFEST, part_layout
from shardfit.results.prediction_tasks import (
    _predictor_spec,
    source_positions,
    write_atomically,
)

__all__ = ["PartScores", "ScoresTask", "check_positive_weights", "compute_scores"]

_FORMAT = "shardfit-svd-scores"


@dataclass(frozen=True, eq=False)
class PartScores:
    """One partition's outcome: counts, and the values (in memory) or the file written."""

    rows_read: int
    dropped: dict[str, int]
    row_index: np.ndarray | None = None
    values: np.ndarray | None = None
    written: int = 0

    @property
    def nrows(self) -> int:  # progress displays count rows read
        return self.rows_read


@dataclass(frozen=True, eq=False)
class ScoresTask:
    """Encode a partition and project it on the leading ``k`` components.

    ``scale`` (``1 / s``) given: left singular vectors, times ``sqrt(w)`` when the
    spec reads weights. ``layout`` maps a partition key to ``(file, first row,
    rows expected)`` when writing to ``out_dir``.
    """

    spec: DesignSpec
    mean: np.ndarray
    vt: np.ndarray
    scale: np.ndarray | None
    names: tuple[str, ...]
    unseen: str
    out_dir: str | None = None
    layout: dict[str, tuple[str, int, int]] | None = None

    def __call__(self, partition: Partition) -> PartScores:
        weighted = self.spec.weights is not None
        chunk = encode_partition(
            self.spec,
            partition,
            missing="drop",
            unseen=self.unseen,  # type: ignore[arg-type]
            need_response=weighted,
        )
        X = chunk.X if isinstance(chunk.X, np.ndarray) else chunk.X.toarray()
        values = (X - self.mean) @ self.vt.T
        if self.scale is not None:
            values *= self.scale
            if weighted:
                assert chunk.weights is not None
                check_positive_weights(chunk.weights, chunk.row_index, partition)
                values *= np.sqrt(chunk.weights)[:, None]
        dropped = {reason: n for reason, n in chunk.dropped.items() if n}
        if self.layout is None or self.out_dir is None:
            return PartScores(chunk.rows_read, dropped, chunk.row_index, values)
        name, first, expected = self.layout[partition.key]
        if chunk.rows_read != expected:
            raise ReadError(
                f"partition {partition.key} gave {chunk.rows_read} rows where {expected} "
                "were counted before: the data changed while writing scores"
            )
        columns = {"row": (first + chunk.row_index).astype(np.int64)}
        columns.update({name: values[:, j] for j, name in enumerate(self.names)})
        write_atomically(Path(self.out_dir) / name, table=pa.table(columns))
        return PartScores(chunk.rows_read, dropped, written=chunk.nrows)


def check_positive_weights(
    weights: np.ndarray, row_index: np.ndarray, partition: Partition
) -> None:
    """Raise on a non-positive (or NaN) weight, naming the partition, the row and the
    value: SVD weights scale rows by ``sqrt(w)``."""
    bad = ~(weights > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DesignError(
            f"non-positive weight in partition {partition.key} "
            f"({partition.locate(int(row_index[i]))}): {float(weights[i])!r} "
            f"({int(bad.sum())} such rows in this block); SVD weights scale rows by sqrt(w) "
            "and must be > 0 (drop such rows first)"
        )


def compute_scores(
    results: Any,
    data: Any,
    k: int,
    *,
    unit: bool,
    out: str | os.PathLike[str] | None,
    unseen: str,
    backend: Any,
    workers: int | None,
    progress: bool,
) -> pd.DataFrame | Path:
    """Scores (``unit=False``) or left singular vectors (``unit=True``) of the leading
    ``k`` components of ``results`` on ``data`` (see :meth:`SVDResults.transform`)."""
    if unseen not in ("raise", "zero"):
        raise ValueError(f"The 'unseen' parameter must be 'raise' or 'zero'. Got {unseen!r}.")
    if results.spec is None:
        raise ValueError("these results carry no design spec, so they cannot transform data")
    source = as_source(data)
    spec = results.spec
    if not (unit and results.weighted):
        spec = _predictor_spec(spec)
    else:
        spec = replace(spec, extra_columns=())
    p = len(results.names)
    mean = np.zeros(p) if results.mean_array is None else np.asarray(results.mean_array)
    scale = 1.0 / results.singular_values_array[:k] if unit else None
    names = tuple(results.component_names[:k])
    task = ScoresTask(spec, mean, results.components_array[:k], scale, names, unseen)
    what = "left singular vectors" if unit else "scores"
    if out is None:
        # Every MPI rank returns the scores (allgather): each rank's script uses them.
        parts = map_partitions(
            task, source, backend=backend, workers=workers, progress=progress, allgather=True
        )
        assert parts is not None
        _warn_dropped(parts, source.name, what)
        index = pd.Index(source_positions([(part.row_index, part.rows_read) for part in parts]))
        values = np.concatenate([part.values for part in parts])  # type: ignore[misc]
        return pd.DataFrame(values, index=index, columns=list(names))
    return _write(task, source, Path(out), spec, backend, workers, progress, what)


def _write(
    task: ScoresTask,
    source: Any,
    out: Path,
    spec: DesignSpec,
    backend: Any,
    workers: int | None,
    progress: bool,
    what: str,
) -> Path:
    created = not out.exists()
    # The outermost directory this call creates: on failure it goes, parents and all.
    made = out
    while not made.parent.exists():
        made = made.parent

    def take() -> None:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FileExistsError(f"{what} are written to a new or empty directory; {out} is not")
        out.mkdir(parents=True, exist_ok=True)

    # Under MPI every rank runs this call: rank 0 alone takes the directory, writes
    # the manifest and cleans up after a failure; every rank gets the parts' counts
    # (allgather) and waits for the manifest, so none returns before it exists.
    root = taken = False
    try:
        with session(backend, workers=workers) as sess:
            root = sess.is_root
            sess.on_root(take)
            taken = True
            files, layout = part_layout(source, spec.raw_columns, sess, progress)
            task = replace(task, out_dir=str(out.resolve()), layout=layout)
            parts = map_partitions(
                task, source, backend=sess, progress=progress, pass_name=what, allgather=True
            )
            assert parts is not None
            _warn_dropped(parts, source.name, what)
            manifest = {
                "format": _FORMAT,
                "version": 1,
                "source": source.name,
                "files": files,
                "columns": ["row", *task.names],
                "rows_read": sum(part.rows_read for part in parts),
                "rows_written": sum(part.written for part in parts),
                "rows_dropped": _dropped(parts),
            }

            def finish() -> None:
                write_atomically(out / MANIFEST, text=json.dumps(manifest, indent=2) + "\n")

            sess.on_root(finish)
    except BaseException:
        # Only what this call took, by the root, after the session closed (no worker
        # still writes there).
        if root and taken:
            if created:
                shutil.rmtree(made, ignore_errors=True)
            else:
                for entry in out.iterdir():
                    entry.unlink(missing_ok=True)
        raise
    return out


def _dropped(parts: list[PartScores]) -> dict[str, int]:
    dropped: dict[str, int] = {}
    for part in parts:
        for reason, n in part.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
    return dropped


def _warn_dropped(parts: list[PartScores], name: str, what: str) -> None:
    """Nothing is dropped without a word."""
    dropped = _dropped(parts)
    total = sum(dropped.values())
    if total:
        read = sum(part.rows_read for part in parts)
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in dropped.items())
        warnings.warn(
            f"{total:,} of {read:,} rows of {name!r} have no {what} ({reasons}); the "
            "result's row positions name the rows kept",
            UserWarning,
            stacklevel=4,
        )
