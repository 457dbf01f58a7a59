"""Writing predictions out of core: one Parquet part file per partition, then a manifest.

Layout of the output directory::

    preds.parquet/
        part-00000.parquet   # written by the worker that read partition 0
        part-00001.parquet
        ...
        _manifest.json       # written by the driver last: marks the output complete

Every part file has the columns ``row`` (the row's 0-based position in the source;
rows dropped for missing predictors are absent), ``predicted``, and with an interval
its columns. Files are written to hidden temporary names and renamed, so a reader never
sees half a file; a run that fails leaves no manifest. Readers of Parquet directories
(pyarrow, pandas, Spark, shardfit) skip names starting with ``_`` or ``.``, and read
the parts in name order, which is row order. Residuals (``results.resid(data,
out=...)``) are written the same way, their one value column named as statsmodels'
attribute (``resid_deviance``...) in place of ``predicted``.

``row`` needs each partition's first row. Parquet and in-memory partitions know their
row counts; for other sources (CSV) a first pass reads the predictor columns to count
them, so such sources are read twice (convert them to Parquet to read once).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shardfit.data.memory import MemoryPartition
from shardfit.data.parquet import ParquetPartition
from shardfit.data.partition import Partition, Source
from shardfit.engine import map_partitions, session
from shardfit.errors import ReadError
from shardfit.results.prediction_tasks import (
    CountRows,
    Outputs,
    PredictionModel,
    PredictTask,
    Unseen,
    total_counts,
    warn_dropped,
    write_atomically,
)

__all__ = ["MANIFEST", "PredictionOutput", "part_layout", "write_predictions"]

MANIFEST = "_manifest.json"
_FORMAT = "shardfit-predictions"


@dataclass(frozen=True)
class PredictionOutput:
    """What an out-of-core predict wrote (also saved as ``_manifest.json``).

    Attributes
    ----------
    path : pathlib.Path
        The output directory.
    files : tuple of str
        Part-file names in row order, one per partition (empty ones included).
    columns : tuple of str
        Columns of every part file.
    rows_read, rows_written, rows_skipped : int
        Rows read from the source, predictions written, malformed rows skipped.
    rows_dropped : dict of str to int
        Rows without a prediction, by reason.
    """

    path: Path
    files: tuple[str, ...]
    columns: tuple[str, ...]
    rows_read: int
    rows_written: int
    rows_dropped: dict[str, int]
    rows_skipped: int


def write_predictions(
    model: PredictionModel,
    source: Source,
    out: Path,
    *,
    outputs: Outputs,
    unseen: Unseen,
    overwrite: bool,
    backend: Any,
    workers: int | None,
    progress: bool,
) -> PredictionOutput:
    """Predict every partition of ``source`` on the backend, each worker writing its part."""
    keys = [partition.key for partition in source.partitions]
    if len(set(keys)) != len(keys):
        raise ReadError(f"source {source.name!r} has duplicate partition keys")
    columns = ("row", *model.names(outputs))
    # One session for both passes: workers start once.
    with session(backend, workers=workers) as sess:
        # Only the root prepares the directory; under MPI, sharing its verdict makes
        # every rank wait for it before writing.
        sess.on_root(lambda: _prepare_directory(out, overwrite))
        names, layout = part_layout(source, model.spec.raw_columns, sess, progress)
        task = PredictTask(model, outputs, unseen, str(out.resolve()), layout)
        # Every MPI rank gets the parts' counts (allgather: a few numbers each, the
        # values are in the files), so every rank returns the same PredictionOutput.
        parts = map_partitions(
            task, source, backend=sess, progress=progress, pass_name=model.label, allgather=True
        )
        assert parts is not None
        counts = total_counts(parts)
        output = PredictionOutput(
            path=out,
            files=tuple(names),
            columns=columns,
            rows_read=counts["read"],
            rows_written=sum(part.written for part in parts),
            rows_dropped=counts["dropped"],
            rows_skipped=counts["skipped"],
        )
        manifest = {
            "format": _FORMAT,
            "version": 1,
            "source": source.name,
            "files": list(names),
            "columns": list(columns),
            "rows_read": output.rows_read,
            "rows_written": output.rows_written,
            "rows_dropped": output.rows_dropped,
            "rows_skipped": output.rows_skipped,
        }

        def finish() -> None:
            write_atomically(out / MANIFEST, text=json.dumps(manifest, indent=2) + "\n")

        # The root writes the manifest; the other ranks wait for it, so that none
        # returns (and reads the output) before it is complete.
        sess.on_root(finish)
    warn_dropped(counts, source.name, stacklevel=5, label=model.label)
    return output


def _prepare_directory(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"predict writes a directory of part files; {out} is a file")
    out.mkdir(parents=True, exist_ok=True)
    entries = list(out.iterdir())
    others = sorted(p.name for p in entries if not _is_ours(p.name))
    if others:
        raise FileExistsError(
            f"output directory {out} holds files predict did not write ({others[:3]}); "
            "choose an empty or new directory"
        )
    if entries and not overwrite:
        raise FileExistsError(
            f"output directory {out} holds an earlier prediction; pass overwrite=True "
            "(CLI: --overwrite) to replace it, or choose another directory"
        )
    # The manifest goes first, so an interrupted overwrite never looks complete.
    for path in sorted(entries, key=lambda p: p.name != MANIFEST):
        path.unlink()


#: A part file predict writes (``part-00000.parquet``: no more, no less), and the
#: hidden temporary of a part file or of the manifest (``write_atomically``'s).
_OUR_PART = re.compile(r"part-\d{5,}\.parquet")
_OUR_TEMPORARY = re.compile(
    rf"\.(part-\d{{5,}}\.parquet|{re.escape(MANIFEST)})\.\d+-[0-9a-f]{{8}}\.tmp"
)


def _is_ours(name: str) -> bool:
    """Part files, the manifest, and temporary files of either, by their exact names:
    Spark's ``part-00000-<uuid>-c000.snappy.parquet`` and other tools' data files
    are not, so an overwrite never deletes a dataset that predict did not write."""
    return (
        name == MANIFEST
        or _OUR_PART.fullmatch(name) is not None
        or _OUR_TEMPORARY.fullmatch(name) is not None
    )


def part_layout(
    source: Source, columns: tuple[str, ...], sess: Any, progress: bool
) -> tuple[list[str], dict[str, tuple[str, int, int]]]:
    """The part file of each partition (``part-00000.parquet``..., in source order,
    which is row order) and, by partition key, ``(file, first row in the source,
    rows)``: what a task writing its partition's rows needs to number them."""
    width = max(5, len(str(source.npartitions - 1)))
    files = [f"part-{i:0{width}d}.parquet" for i in range(source.npartitions)]
    rows = _row_counts(source, columns, sess, progress)
    firsts = np.cumsum([0, *rows[:-1]]).tolist()
    layout = {
        part.key: (files[i], int(firsts[i]), int(rows[i]))
        for i, part in enumerate(source.partitions)
    }
    return files, layout


def _row_counts(source: Source, columns: tuple[str, ...], sess: Any, progress: bool) -> list[int]:
    """Rows per partition, from metadata where known, else by reading ``columns``."""
    known = [_known_rows(partition) for partition in source.partitions]
    if all(count is not None for count in known):
        return [int(count) for count in known if count is not None]
    counted = map_partitions(
        CountRows(columns),
        source,
        backend=sess,
        progress=progress,
        pass_name="count-rows",
        allgather=True,
    )
    return [int(count) for count in counted or []]


def _known_rows(partition: Partition) -> int | None:
    if isinstance(partition, MemoryPartition):
        return partition.stop - partition.start
    if isinstance(partition, ParquetPartition):
        return partition.num_rows
    return None
