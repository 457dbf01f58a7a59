"""Streaming fit: drive a ``partial_fit`` estimator through a source's batches, in order.

:func:`stream_fit` reads the partitions of a source one after another (only the
featurizer's columns and the target), cuts the rows into batches of ``batch_rows``
whatever the partition sizes, hashes them with the featurizer and feeds an estimator
with progressive validation (:mod:`shardfit.streaming.progressive`). Memory holds one
partition and one chunk of batches at a time, never the data set.

:func:`iter_chunks` is the reading half, shared with :func:`shardfit.search`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shardfit.data.partition import Partition, Source
from shardfit.data.resolve import as_source
from shardfit.errors import DesignError, MissingDataError, ResponseError, SchemaError
from shardfit.streaming.progressive import (
    StreamResult,
    Tracker,
    applicable_scorings,
    check_scoring,
    default_scoring,
    summarize,
)

__all__ = [
    "Chunk",
    "check_columns",
    "check_labels",
    "check_takes_weights",
    "iter_chunks",
    "stream_fit",
]

# Rows hashed and learned per call: large enough that per-call overheads vanish,
# small enough to keep memory bounded (a whole number of batches).
_CHUNK_TARGET_ROWS = 65_536


@dataclass(frozen=True)
class Chunk:
    """Rows of consecutive batches, and where each run of them came from.

    Attributes
    ----------
    table : pyarrow.Table
        The columns asked for.
    y : numpy.ndarray
        The target.
    segments : tuple of (Partition, int, int)
        ``(partition, first row in it, rows)`` in order, covering the table.
    w : numpy.ndarray or None
        The rows' sample weights, when a weight column was read.
    """

    table: pa.Table
    y: np.ndarray
    segments: tuple[tuple[Partition, int, int], ...]
    w: np.ndarray | None = None

    def locate(self, row: int) -> str:
        """Where row ``row`` of the chunk is stored (partition and row or line)."""
        for partition, first, count in self.segments:
            if row < count:
                return f"partition {partition.key} ({partition.locate(first + row)})"
            row -= count
        return f"row {row} past the chunk"  # pragma: no cover - callers pass valid rows


def check_columns(
    source: Source, columns: Sequence[str], target: str, weights: str | None = None
) -> None:
    """Raise naming the column if the target, a feature or the weights are not in the
    source."""
    known = source.columns
    for role, column in (("target", target), ("weight", weights)):
        if column is not None and column not in known:
            raise SchemaError(
                f"the {role} column {column!r} is not in {source.name}; it has {', '.join(known)}"
            )
    if weights is not None and weights == target:
        raise DesignError(f"the weight column {weights!r} is also the target column")
    for column in columns:
        if column not in known:
            raise DesignError(
                f"the feature column {column!r} is not in {source.name}; it has {', '.join(known)}"
            )
    if target in columns:
        raise DesignError(f"the target column {target!r} is also a feature column")


def _target(
    table: pa.Table, target: str, partition: Partition, first: int, role: str = "target"
) -> np.ndarray:
    """The target (or weight) of one partition's rows as float64, checked for type and
    missing values; a weight also for sign."""
    column = table.column(target)
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
        need = "0/1 labels or values" if role == "target" else "non-negative numbers"
        raise SchemaError(
            f"the {role} column {target!r} in partition {partition.key} has type {kind}; "
            f"streaming learners need a numeric {role} ({need})"
        )
    if column.null_count:
        row = int(np.flatnonzero(np.asarray(column.is_null()))[0])
        raise MissingDataError(
            f"missing {role} in partition {partition.key} ({partition.locate(first + row)}), "
            f"column {target!r}"
        )
    y = column.to_numpy().astype(np.float64, copy=False)
    bad = ~np.isfinite(y) if role == "target" else ~(np.isfinite(y) & (y >= 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "non-finite" if role == "target" else "negative or non-finite"
        raise MissingDataError(
            f"{what} {role} {y[row]} in partition {partition.key} "
            f"({partition.locate(first + row)}), column {target!r}"
        )
    return y


def iter_chunks(
    source: Source,
    columns: Sequence[str],
    target: str,
    *,
    chunk_rows: int,
    start: int = 0,
    stop: int | None = None,
    skipped: dict[int, int] | None = None,
    weights: str | None = None,
) -> Iterator[Chunk]:
    """Yield the rows ``start:stop`` of ``source`` in chunks of ``chunk_rows`` rows.

    Chunk boundaries depend only on row numbers, never on partition sizes, so every
    consumer sees the same batches from any partitioning of the same rows. The rows
    the reader skipped (malformed CSV lines with ``on_bad_lines="skip"``) in each
    partition read are set in ``skipped``, by partition position, when a dict is
    given: keyed, so reading a partition again (another range, another unit of a
    search) does not count its lines twice. With ``weights``, each chunk has the rows'
    weights (``Chunk.w``).
    """
    names = list(dict.fromkeys([*columns, target, *([weights] if weights else [])]))
    pending: list[_Piece] = []
    npending = 0
    offset = 0  # global index of the first row of the current partition
    for position, partition in enumerate(source.partitions):
        if stop is not None and offset >= stop:
            break
        read = partition.read(names)
        table = read.table
        if skipped is not None:
            skipped[position] = read.skipped_rows
        nrows = table.num_rows
        lo = max(start - offset, 0)
        hi = nrows if stop is None else min(nrows, stop - offset)
        offset += nrows
        if hi <= lo:
            continue
        table = table.slice(lo, hi - lo)
        y = _target(table, target, partition, lo)
        w = _target(table, weights, partition, lo, role="weight") if weights else None
        pending.append((table, y, w, partition, lo))
        npending += hi - lo
        while npending >= chunk_rows:
            chunk, pending = _take(pending, chunk_rows)
            npending -= chunk_rows
            yield chunk
    if npending:
        chunk, _ = _take(pending, npending)
        yield chunk


# A partition's rows not yet in a chunk: table, target, weights, partition, first row.
_Piece = tuple[pa.Table, np.ndarray, np.ndarray | None, Partition, int]


def _take(pending: list[_Piece], rows: int) -> tuple[Chunk, list[_Piece]]:
    """Cut the first ``rows`` rows off the pending pieces."""
    tables, ys, ws, segments = [], [], [], []
    rest = list(pending)
    need = rows
    while need:
        table, y, w, partition, first = rest.pop(0)
        n = min(need, table.num_rows)
        tables.append(table.slice(0, n))
        ys.append(y[:n])
        if w is not None:
            ws.append(w[:n])
        segments.append((partition, first, n))
        if n < table.num_rows:
            tail = None if w is None else w[n:]
            rest.insert(0, (table.slice(n), y[n:], tail, partition, first + n))
        need -= n
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    w_all = np.concatenate(ws) if ws else None
    return Chunk(table, np.concatenate(ys), tuple(segments), w_all), rest


def check_labels(tracker: Tracker, chunk: Chunk, target: str) -> None:
    """Refuse a classifier's label that is not one of its two classes, naming where.

    Checked before any batch of the chunk is learned: scikit-learn's ``partial_fit``
    would refuse it too, but without saying which row (and a multiclass target is
    not scored by the binary progressive metrics).
    """
    if not tracker.classifier:
        return
    unknown = ~np.isin(chunk.y, tracker.classes)
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise ResponseError(
            f"the target {target!r} is {chunk.y[row]:g} in {chunk.locate(row)}, not one of "
            f"the classes {tracker.classes.tolist()}; streaming classifiers are binary: "
            "pass classes= with the target's two labels"
        )


def chunk_rows_for(batch_rows: int) -> int:
    """A whole number of batches near :data:`_CHUNK_TARGET_ROWS` rows."""
    return batch_rows * max(1, math.ceil(_CHUNK_TARGET_ROWS / batch_rows))


def featurize(featurizer: Any, chunk: Chunk) -> Any:
    """Hash a chunk, turning a missing-value error into one that names the file row."""
    try:
        return featurizer.transform(chunk.table)
    except MissingDataError as error:
        row = getattr(error, "row", None)
        if row is None:
            raise
        raise MissingDataError(f"{error} — in {chunk.locate(row)}") from error


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(
            f"The {name!r} parameter of stream_fit must be an int >= {low}. Got {value!r} instead."
        )
    return int(value)


def stream_fit(
    estimator: Any,
    featurizer: Any,
    data: Any,
    *,
    target: str,
    weights: str | None = None,
    batch_rows: int = 1000,
    drop: float = 0.7,
    scoring: str | None = None,
    classes: Any = None,
    progress: bool = False,
) -> StreamResult:
    """Learn from a stream of batches with progressive validation.

    Each batch is scored by the estimator as trained on the batches before it, then
    learned with ``partial_fit``; a null benchmark (the running mean of the target) is
    scored the same way. The result holds the progressive curve, the mean scores after
    dropping the leading ``drop`` fraction of batches, the benchmark's and the relative
    improvement.

    Parameters
    ----------
    estimator : object with ``partial_fit``
        Any scikit-learn streaming estimator (``SGDClassifier``, ``SGDRegressor``,
        ``PassiveAggressiveClassifier``, ``MultinomialNB``…) or a
        :class:`~shardfit.FTRLClassifier` / :class:`~shardfit.FTRLRegressor`
        (which take a compiled path). Trained in place. Classifiers must be binary.
    featurizer : transformer
        Maps a pyarrow Table of rows to a matrix, e.g. :class:`~shardfit.HashingFeaturizer`
        (its ``columns`` are the columns read).
    data : Source, path, DataFrame, Table, …
        Anything :func:`shardfit.as_source` accepts; partitions are read in order.
    target : str
        The target column (numeric: 0/1 labels for a classifier).
    weights : str, optional
        A column of non-negative sample weights: passed to ``partial_fit`` as
        ``sample_weight`` (the estimator must take it), and weighting every
        progressive metric and the benchmark's running mean, as
        ``sklearn.metrics``' ``sample_weight`` does. A missing, negative or non-finite
        weight raises naming partition and row. A batch whose weights are all zero
        is not passed to a scikit-learn estimator's ``partial_fit`` (which refuses
        one); FTRL learns it as rows without loss. Scoring starts after the first
        batch of non-zero weight (before it the benchmark's weighted mean is
        undefined and the model has learned nothing).
    batch_rows : int, default 1000
        Rows per batch; batches do not depend on how the data are partitioned.
    drop : float, default 0.7
        Leading fraction of scored batches left out of the mean scores.
    scoring : {"log_loss", "squared_error", "accuracy", "auc"}, optional
        The metric of ``result.score``; by default log-loss for classifiers with
        ``predict_proba``, accuracy for other classifiers and squared error for
        regressors. A regressor takes only ``"squared_error"``, a classifier without
        ``predict_proba`` only ``"accuracy"`` or ``"auc"``.
    classes : array-like, optional
        A classifier's two labels (default ``[0, 1]``).
    progress : bool, default False
        Show a progress bar (rows) on standard error.

    Returns
    -------
    StreamResult
        ``rows`` counts the rows learned, ``rows_skipped`` the malformed rows the reader
        skipped (a warning says so).

    Raises
    ------
    ValueError
        A bad parameter, or a ``scoring`` the estimator cannot be scored by.
    SchemaError
        The target column is missing or not numeric.
    DesignError
        A feature column is missing.
    MissingDataError
        A missing or non-finite target or feature value (names partition and row).
    ResponseError
        A classifier's target value that is not one of its two ``classes`` (names
        partition and row).
    """
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(
            f"stream_fit needs an estimator with partial_fit; {type(estimator).__name__} has none"
        )
    batch_rows = _check_int("batch_rows", batch_rows, 1)
    if not isinstance(drop, int | float) or not 0 <= drop < 1:
        raise ValueError(f"The 'drop' parameter of stream_fit must be in [0, 1). Got {drop!r}.")
    scoring = check_scoring(scoring or default_scoring(estimator))
    applicable = applicable_scorings(estimator)
    if scoring not in applicable:
        # The metric would be NaN for every batch: say so rather than return NaN.
        raise ValueError(
            f"scoring={scoring!r} does not apply to {type(estimator).__name__}, which "
            f"progressive validation scores by {', '.join(map(repr, applicable))} "
            "(log-loss and squared error of a classifier need predict_proba)"
        )
    if weights is not None:
        check_takes_weights(estimator)
    source = as_source(data)
    columns = list(getattr(featurizer, "columns", ()))
    check_columns(source, columns, target, weights)
    tracker = Tracker(estimator, batch_rows=batch_rows, classes=classes)
    skipped: dict[int, int] = {}
    chunks = iter_chunks(
        source,
        columns,
        target,
        chunk_rows=chunk_rows_for(batch_rows),
        skipped=skipped,
        weights=weights,
    )
    with _progress(progress) as advance:
        for chunk in chunks:
            check_labels(tracker, chunk, target)
            tracker.feed(featurize(featurizer, chunk), chunk.y, chunk.w)
            advance(chunk.table.num_rows)
    warn_skipped(source, sum(skipped.values()), f"{tracker.rows:,} rows were learned")
    result = summarize(tracker, scoring=scoring, drop=float(drop))
    return dataclasses.replace(result, rows_skipped=sum(skipped.values()))


def check_takes_weights(estimator: Any) -> None:
    """Refuse weights for an estimator whose ``partial_fit`` has no ``sample_weight``
    (they would be left out of the fit but not of the scores)."""
    try:
        parameters = inspect.signature(estimator.partial_fit).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return
    if "sample_weight" not in parameters and not any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    ):
        raise TypeError(
            f"weights= needs an estimator whose partial_fit takes sample_weight; "
            f"{type(estimator).__name__}'s does not"
        )


def warn_skipped(source: Source, count: int, detail: str) -> None:
    """Warn that the reader skipped ``count`` malformed rows of ``source`` (if any)."""
    if count:
        warnings.warn(
            f"the reader skipped {count:,} malformed row(s) of {source.name} "
            f"(on_bad_lines='skip'); {detail}",
            UserWarning,
            stacklevel=3,
        )


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar counting rows on standard error, or nothing."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]stream_fit"),
        TextColumn("{task.completed:,} rows"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("rows", total=None)
    with bar:
        yield lambda n: bar.advance(task, n)
