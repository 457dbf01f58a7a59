"""A design matrix kept on disk: encode once, fit many times.

:func:`write_design` learns a formula's design in a schema pass, then encodes every
partition where it is read and writes it as one Parquet part file: the response, the
design columns (named as the design names them: ``C(g)[T.b]``, ``x1:x3``) and the
weights and offset when given. Encoding (parsing text, looking up levels, evaluating
transforms and interactions) is then done once; :func:`shardfit.OLS` and
:func:`shardfit.GLM` fit the stored columns as they are, with no formula, and
:func:`open_design` reopens the store in a later session. Layout::

    design/
        part-00000.parquet   # written by the worker that read partition 0
        part-00001.parquet
        ...
        _design.json         # written last: the spec, the columns, the row counts

The parts are written under hidden temporary names and renamed, and the manifest is
written last, so a store without ``_design.json`` is incomplete and refused. Rows
dropped for missing values are counted in the manifest, except the rows missing only
the response (a fit-only column): they are stored with a null response (manifest
version 2), so fits from the store drop and count them as fits from the data do, and
predictions from the store give them a value, as predictions from the data do. Every
part keeps ``partition_row``, the row's 0-based position in its source partition, and
the manifest has the rows read from each partition, so a stored row knows its position
in the source:
the row number predictions from the raw data give it (0-based over the rows the reader
yields, malformed lines it skipped not counted). :meth:`StoredColumns.to_pandas` indexes
rows by it, predictions from a store (``fit.predict(store.source())`` or the store's
folder, ``shardfit predict fit.json DIR``) number their rows by it, with no prediction
for the rows the store dropped, as predictions from the raw data, and errors in a fit
from a store name it. With Dask or MPI, ``out`` must be a folder every worker can write
(a shared file system); one write at a time may use a folder (a lock file says so).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shardfit.data.convert import write_atomically
from shardfit.data.parquet import ParquetPartition, read_parquet
from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.data.resolve import as_source
from shardfit.design.fast_encoder import SplitDesign
from shardfit.design.materialize import encode_partition
from shardfit.design.schema import learn_design
from shardfit.design.spec import DesignSpec
from shardfit.errors import DesignError, ReadError
from shardfit.stats.column_summary import DEFAULT_MAX_LEVELS

__all__ = [
    "DesignStore",
    "StoredColumns",
    "StoredPartition",
    "check_groups",
    "numbered_as_source",
    "open_design",
    "source_counts",
    "stored_column",
    "stored_design",
    "write_design",
]

MANIFEST = "_design.json"
#: Made (exclusively) while a write runs: a second write into the folder is refused.
_LOCK = ".writing"
_FORMAT = "shardfit-design"
# Version 2 may hold rows whose response is null (rows missing only the response, kept
# for predictions): a reader of version 1 would fit them, so it must refuse them.
_VERSION = 2
#: Versions open_design reads (version 1 stores hold complete rows only).
_READABLE = (1, 2)
# Plain encoding and LZ4: measured on a 150k x 229 design (20 numeric columns, the
# rest dummies), 0.7 s to write and 0.3 s to read back, where pyarrow's defaults
# (dictionary encoding, Snappy) took 1.5 s and 3.3 s, for 26 MB against 30 MB.
_PARQUET = {"use_dictionary": False, "compression": "lz4"}
# Decoded bytes of a row group (a fit's task): bounded worker memory for any part size.
_GROUP_BYTES = 32 * 2**20
#: Names of the stored columns that are not design columns.
ROW, WEIGHTS, OFFSET = "partition_row", "__weights__", "__offset__"
#: The key of :attr:`Source.meta` that holds a store's folder (a source of stored rows).
STORE_META = "design_store"
#: ... and the store's counts of the rows read from its source, dropped and skipped.
STORE_COUNTS = "design_store_rows"


@dataclass(frozen=True)
class StoredColumns:
    """Some columns of a :class:`DesignStore`: its response (``store.y``) or its design
    (``store.X``), as :func:`shardfit.OLS` and :func:`shardfit.GLM` take them.

    Attributes
    ----------
    store : DesignStore
        The store the columns are in.
    names : tuple of str
        The columns.
    """

    store: DesignStore
    names: tuple[str, ...]

    def plain_design(self) -> dict[str, Any]:
        """The plain-columns design of a model of these columns, as ``learn_design``
        (and the models that call it) take it: the columns, which are mostly zeros,
        the known intercept, and no summary pass looking for one."""
        constant = self.store.constant
        return {
            "x_columns": self.names,
            "sparse_x": tuple(c for c in self.store.sparse_columns if c in self.names),
            "x_constant": constant if constant in self.names else None,
            "find_constant": False,
        }

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return (self.store.rows_written, len(self.names))

    def _shardfit_source(self) -> Source:
        # as_source's hook: the store's rows (where predict and resid read these
        # columns by name, with whatever else the model needs from the store).
        return self.store.source()

    def to_pandas(self) -> Any:
        """The columns in memory, as a DataFrame indexed by source row (small stores)."""
        import pandas as pd

        store = self.store
        starts = np.concatenate([[0], np.cumsum(store.part_rows)[:-1]]).astype(np.int64)
        frames = []
        for start, name in zip(starts, store.files, strict=True):
            table = pq.read_table(store.path / name, columns=[ROW, *self.names])
            frame = table.to_pandas()
            frame.index = pd.Index(frame.pop(ROW).to_numpy() + start)
            frames.append(frame)
        return pd.concat(frames) if frames else pd.DataFrame(columns=list(self.names))


@dataclass(frozen=True)
class StoredPartition(ParquetPartition):
    """Row groups of a store's part file that know which rows of the source they hold.

    Attributes (besides :class:`~shardfit.data.parquet.ParquetPartition`'s)
    ----------
    source_name : str
        The data the store was written from, as errors name it.
    source_first : int
        The position in the source (0-based, over all its partitions) of row 0 of the
        source partition this part was written from.
    span : tuple of (int, int), optional
        Set for predictions: the rows ``[lo, hi)`` of the source partition this
        partition stands for. It then reads ``hi - lo`` rows, the stored ones where
        they were and null rows for those the store dropped, so a prediction's row
        number (its partition's first row plus its position) is the source's, and a
        dropped row gets no prediction, as from the raw data.
    skipped : int
        Malformed rows the source's reader skipped in that partition (reported with
        ``span``, once per source partition).
    """

    source_name: str = ""
    source_first: int = 0
    span: tuple[int, int] | None = None
    skipped: int = 0

    @property
    def key(self) -> str:
        """The row groups' key, with the source rows a prediction partition stands for."""
        base = super().key
        return base if self.span is None else f"{base}@rows{self.span[0]}:{self.span[1]}"

    def read(
        self, columns: Sequence[str] | None = None, *, dictionary: Sequence[str] = ()
    ) -> ReadResult:
        """The stored rows; with ``span``, spread over the source partition's rows."""
        if self.span is None:
            return super().read(columns, dictionary=dictionary)
        wanted = list(self.columns if columns is None else columns)
        result = super().read(list(dict.fromkeys([*wanted, ROW])), dictionary=dictionary)
        lo, hi = self.span
        at = np.asarray(result.table.column(ROW).to_numpy(), dtype=np.int64) - lo
        index = np.full(hi - lo, -1, dtype=np.int64)
        index[at] = np.arange(at.size)
        taken = result.table.select(wanted).take(pa.array(index, mask=index < 0))
        return ReadResult(taken, skipped_rows=self.skipped, nbytes=result.nbytes)

    def source_row(self, row: int) -> int:
        """The source position (0-based) of row ``row`` of this partition."""
        if self.span is not None:
            return self.source_first + self.span[0] + row
        stored = super().read([ROW]).table.column(ROW)
        return self.source_first + int(stored[row].as_py())

    def locate(self, row: int) -> str:
        """``"row 1234 (0-based) of data.csv, ..."``: the row as predictions number it."""
        stored = super().locate(row)
        try:
            at = self.source_row(row)
        except (IndexError, OSError, ReadError, pa.ArrowException):
            return stored
        return (
            f"row {at} (0-based, as predict numbers the rows) of {self.source_name}; "
            f"stored in the design store {os.path.dirname(self.path)}, {stored}"
        )


@dataclass(frozen=True)
class DesignStore:
    """A design written by :func:`write_design` (see the module notes).

    Attributes
    ----------
    path : pathlib.Path
        The store's folder.
    spec : DesignSpec
        The design: encode new data the same way with ``write_design(..., spec=spec)``.
    response : str
        The stored response column (the formula's left-hand side).
    columns : tuple of str
        The design columns, in the design's order.
    files : tuple of str
        Part files in row order, one per source partition.
    sparse_columns : tuple of str
        The design columns that are mostly zeros (from categorical terms): stored
        densely, read back as sparse columns, so products follow their structure.
    group_rows : int
        Rows per Parquet row group of a part (about 32 MiB of the design): a fit reads
        one row group per task, so a worker's memory does not grow with a part.
    part_rows : tuple of int
        Rows read from each source partition (stored or not).
    has_weights, has_offset : bool
        Whether ``__weights__`` (prior weights) and ``__offset__`` (the offset, with
        ``log(exposure)`` added) are stored.
    has_response : bool
        Whether the response is stored: ``False`` for new data without it, encoded
        with an earlier store's ``spec`` to predict on (its ``y`` column is NaN).
    rows_read, rows_written, rows_skipped : int
        Rows read from the source, rows stored, malformed rows the reader skipped.
    rows_dropped : dict of str to int
        Rows not stored, by reason (``"missing"``, ``"nonfinite"``).
    source_name : str
        The data the store was written from (its source's name).
    part_skipped : tuple of int
        Malformed rows skipped in each source partition (empty: a store written before
        they were kept, whose ``rows_skipped`` are reported with its first partition).
    rows_without_response : int
        Stored rows (counted in ``rows_written``) whose response is null: rows missing
        only the response or the weight (whose stored weight is null too). Fits from
        the store drop them (and report them among the rows dropped for missing
        values, as a fit from the data does); predictions
        from the store give them a value, as predictions from the data do.
    part_without_response : tuple of int
        ... in each part (empty: a version-1 store, which has none).
    """

    path: Path
    spec: DesignSpec
    response: str
    columns: tuple[str, ...]
    files: tuple[str, ...]
    sparse_columns: tuple[str, ...] = ()
    group_rows: int = 65_536
    part_rows: tuple[int, ...] = ()
    has_weights: bool = False
    has_offset: bool = False
    has_response: bool = True
    rows_read: int = 0
    rows_written: int = 0
    rows_skipped: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    source_name: str = "the data"
    part_skipped: tuple[int, ...] = ()
    rows_without_response: int = 0
    part_without_response: tuple[int, ...] = ()

    @property
    def constant(self) -> str | None:
        """The design's intercept column, if it has one."""
        index = self.spec.intercept_index()
        return None if index is None else self.spec.column_names[index]

    @property
    def y(self) -> StoredColumns:
        """The response column."""
        if not self.has_response:
            lacking = sorted(self.spec.fit_only_columns - set(self.spec.extra_columns))
            raise DesignError(
                f"the design store {self.path} holds no response {self.response!r}: its "
                f"data had no {lacking} (new data encoded with spec= to predict on); fit "
                "a store written from data with the response"
            )
        return StoredColumns(self, (self.response,))

    @property
    def X(self) -> StoredColumns:
        """The design columns."""
        return StoredColumns(self, self.columns)

    @property
    def weights(self) -> StoredColumns:
        """The prior weights stored by ``write_design(weights=...)``."""
        if not self.has_weights:
            raise DesignError(
                f"the design store {self.path} has no weights (write_design(weights=))"
            )
        return StoredColumns(self, (WEIGHTS,))

    @property
    def offset(self) -> StoredColumns:
        """The offset (with ``log(exposure)``) stored by ``write_design(offset=, exposure=)``."""
        if not self.has_offset:
            raise DesignError(f"the design store {self.path} has no offset (write_design(offset=))")
        return StoredColumns(self, (OFFSET,))

    def _shardfit_source(self) -> Source:
        # as_source's hook: predict(store), resid(store) read the store's rows.
        return self.source()

    def source(self, *, partition_rows: int | None = None, source_rows: bool = False) -> Source:
        """The stored rows as a Parquet source (one partition per row group by default).

        Parameters
        ----------
        partition_rows : int, optional
            Rows per partition (whole row groups).
        source_rows : bool
            Number the rows as the source the store was written from: each partition
            reads the source rows it stands for, null where the store dropped a row
            (what predictions read, so their row numbers are the source's). Without
            it, the stored rows only (what fits read); their errors still name the
            source row.
        """
        if not self.files:
            raise DesignError(f"the design store {self.path} holds no rows")
        files = [self.path / name for name in self.files]
        parquet = read_parquet(files, partition_rows=partition_rows or self.group_rows)
        partitions = self._partitions(parquet.partitions, source_rows)
        # Named as the store in summaries and errors; meta marks it for check_groups.
        counts = {"read": self.rows_read, "dropped": self.rows_dropped}
        return replace(
            parquet,
            partitions=partitions,
            name=f"the design store {self.path}",
            meta={
                **parquet.meta,
                STORE_META: str(self.path),
                STORE_COUNTS: {**counts, "skipped": self.rows_skipped},
            },
        )

    def _partitions(
        self, parquet: Sequence[Partition], source_rows: bool
    ) -> tuple[StoredPartition, ...]:
        """``parquet``'s partitions as :class:`StoredPartition` s of their source rows."""
        index = {name: k for k, name in enumerate(self.files)}
        firsts = np.cumsum([0, *self.part_rows]).tolist()
        skipped = list(self.part_skipped) or [self.rows_skipped] + [0] * len(self.files)
        by_part: dict[int, list[ParquetPartition]] = {}
        for partition in parquet:
            assert isinstance(partition, ParquetPartition)
            by_part.setdefault(index[os.path.basename(partition.path)], []).append(partition)
        out: list[StoredPartition] = []
        for k, group in sorted(by_part.items()):
            spans: list[tuple[int, int] | None] = [None] * len(group)
            if source_rows:
                spans = list(_spans(group, self.part_rows[k]))
            for j, (partition, span) in enumerate(zip(group, spans, strict=True)):
                fields = {f: getattr(partition, f) for f in partition.__dataclass_fields__}
                if span is not None:
                    fields["num_rows"] = span[1] - span[0]
                out.append(
                    StoredPartition(
                        **fields,
                        source_name=self.source_name,
                        source_first=int(firsts[k]),
                        span=span,
                        skipped=skipped[k] if j == 0 else 0,
                    )
                )
        return tuple(out)

    def summary(self) -> str:
        """One line for people."""
        dropped = sum(self.rows_dropped.values())
        return (
            f"stored {self.rows_written:,} rows x {len(self.columns)} design columns in "
            f"{len(self.files)} part{'s' * (len(self.files) != 1)} at {self.path} "
            f"({self.rows_read:,} read, {dropped:,} dropped, {self.rows_skipped:,} skipped"
            + (
                f"; {self.rows_without_response:,} stored without a response, to predict)"
                if self.rows_without_response
                else ")"
            )
        )


def _spans(group: Sequence[ParquetPartition], rows: int) -> list[tuple[int, int]]:
    """The source partition's rows ``[lo, hi)`` each of ``group`` (the partitions of the
    part written from it, in order) stands for: from its first stored row (0 for the
    first) to the next one's; the last runs to ``rows``, the rows read from it."""
    starts = [_first_stored(partition) for partition in group]
    held = [j for j, start in enumerate(starts) if start is not None]
    spans = [(0, 0)] * len(group)
    if not held:  # every row of the source partition was dropped
        return [(0, rows), *spans[1:]]
    for n, j in enumerate(held):
        lo = 0 if n == 0 else int(starts[j] or 0)
        hi = int(starts[held[n + 1]] or 0) if n + 1 < len(held) else rows
        spans[j] = (lo, hi)
    return spans


def _first_stored(partition: ParquetPartition) -> int | None:
    """``partition_row`` of the partition's first row (its row group's minimum: rows are
    stored in order), ``None`` when it has none."""
    if partition.num_rows == 0:
        return None
    with pq.ParquetFile(partition.path) as pf:
        group = pf.metadata.row_group(partition.row_groups[0])
        column = group.column(pf.schema_arrow.get_field_index(ROW))
        stats = column.statistics
        if stats is not None and stats.has_min_max:
            return int(stats.min)
        first = pf.read_row_group(partition.row_groups[0], columns=[ROW]).column(0)
        return int(first[0].as_py())


def numbered_as_source(source: Source) -> Source:
    """A design store's rows, numbered as the rows of the data it was written from.

    ``source`` is returned as it is unless it reads a design store: the store's own
    source (``store.source()``) or its folder (or some of its part files) read as
    Parquet, as ``shardfit predict fit.json DIR`` reads it. Predictions from it then
    number their rows as predictions from the raw data do, and the rows the store
    dropped get none.
    """
    folder = source.meta.get(STORE_META)
    chosen: set[str] | None = None
    if folder is None:
        files = source.meta.get("files") if source.meta.get("format") == "parquet" else None
        if not isinstance(files, list) or not files:
            return source
        parents = {os.path.dirname(os.path.abspath(f)) for f in files}
        if len(parents) != 1 or not (Path(next(iter(parents))) / MANIFEST).is_file():
            return source
        folder = parents.pop()
        chosen = {os.path.basename(f) for f in files}
    store = open_design(str(folder))
    numbered = store.source(source_rows=True)
    if chosen is None or chosen == set(store.files):
        return numbered
    kept = tuple(p for p in numbered.partitions if os.path.basename(p.path) in chosen)
    return replace(numbered, partitions=kept)


@dataclass(frozen=True)
class _PartWritten:
    """What one partition's task wrote."""

    file: str
    rows_read: int
    rows_written: int
    skipped: int
    dropped: dict[str, int]
    without_response: int = 0  # stored rows whose response is null (counted in rows_written)

    @property
    def nrows(self) -> int:  # progress displays count rows read
        return self.rows_read


@dataclass(frozen=True)
class _WritePart:
    """Encode one partition with ``spec`` and write it as ``folder/part-NNNNN.parquet``."""

    spec: DesignSpec
    folder: str
    missing: Literal["drop", "raise"]
    names: tuple[str, ...]  # partition key -> part file name, in source order
    keys: tuple[str, ...]
    group_rows: int
    need_response: bool = True  # False: data to predict on, without the response
    unseen: Literal["raise", "zero"] = "raise"

    def __call__(self, partition: Partition) -> _PartWritten:
        chunk = encode_partition(
            self.spec,
            partition,
            missing=self.missing,
            unseen=self.unseen,
            need_response=self.need_response,
            structured=True,
        )
        name = self.names[self.keys.index(partition.key)]
        rows = chunk.row_index.astype(np.int64)
        y = np.full(chunk.nrows, np.nan) if chunk.y is None else chunk.y
        y_null = np.zeros(chunk.nrows, dtype=bool)
        design = _design_columns(chunk.X, chunk.nrows)
        weights, offset = chunk.weights, chunk.offset
        dropped = dict(chunk.dropped)
        extra = self._without_response(partition, chunk)
        if extra is not None:
            # Rows missing only the response: stored with a null one, so a fit from the
            # store drops them as a fit from the data does (and counts them there, not
            # here), while predictions from the store give them a value.
            rows, merged = _merge_rows(chunk, extra)
            y = merged(y, None)
            y_null = merged(y_null, np.ones(extra.nrows, dtype=bool))
            design = [
                merged(a, b)
                for a, b in zip(design, _design_columns(extra.X, extra.nrows), strict=True)
            ]
            weights = None if weights is None else merged(weights, extra.weights)
            offset = None if offset is None else merged(offset, extra.offset)
            dropped["missing"] -= extra.nrows
        columns: dict[str, Any] = {ROW: pa.array(rows)}
        columns[_response_name(self.spec)] = pa.array(
            np.asarray(y, dtype=np.float64), mask=y_null if y_null.any() else None
        )
        for column, values in zip(self.spec.column_names, design, strict=True):
            columns[column] = pa.array(values)
        if weights is not None:
            # Null, not NaN, for the rows without a response (a weighted svd(store.X)
            # drops them as the fits do).
            columns[WEIGHTS] = pa.array(weights, mask=y_null if y_null.any() else None)
        if offset is not None:
            columns[OFFSET] = pa.array(offset)
        table = pa.table(columns)
        write_atomically(
            Path(self.folder) / name, table=table, row_group_size=self.group_rows, **_PARQUET
        )
        return _PartWritten(
            file=name,
            rows_read=chunk.rows_read,
            rows_written=int(rows.size),
            skipped=chunk.skipped_rows,
            dropped=dropped,
            without_response=int(y_null.sum()),
        )

    def _without_response(self, partition: Partition, chunk: Any) -> Any:
        """The encoded rows (a ``DesignChunk``) that ``chunk`` dropped only because a
        fit-only column (the response) is missing; ``None`` when there are none.

        Such rows have every value a prediction needs: predictions from the raw data
        give them one. They are encoded as predictions encode them (without the
        response), only when ``chunk`` dropped rows for missing values.
        """
        # The weights too: predictions read none, so a row missing (or with a bad) weight
        # gets a prediction from the data; stored, its null response keeps fits off it.
        spec = _unweighted(self.spec)
        fit_only = sorted(
            self.spec.fit_only_columns | set(self.spec.raw_columns) - set(spec.raw_columns)
        )
        if not (
            self.need_response
            and self.missing == "drop"
            and fit_only
            and chunk.dropped.get("missing", 0) > 0
        ):
            return None
        table = partition.read(fit_only).table
        if table.num_rows != chunk.rows_read:  # not the rows encoded: keep them dropped
            return None
        absent = np.zeros(table.num_rows, dtype=bool)
        for column in table.columns:
            absent |= np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            if pa.types.is_floating(column.type):
                absent |= np.isnan(column.to_numpy(zero_copy_only=False).astype(np.float64))
        if not absent.any():
            return None
        predicted = encode_partition(
            spec,
            partition,
            missing="drop",
            unseen=self.unseen,
            need_response=False,
            structured=True,
        )
        # Rows a prediction keeps, missing the response, and not kept by the fit (a row
        # missing the response never is): those missing a predictor stay dropped.
        take = absent[predicted.row_index] & ~np.isin(predicted.row_index, chunk.row_index)
        if not take.any():
            return None
        X = predicted.X
        return replace(
            predicted,
            X=X.take_rows(take) if isinstance(X, SplitDesign) else X[take],
            y=None,
            weights=None,  # stored null: a fit drops the row for its null response anyway
            offset=None if predicted.offset is None else predicted.offset[take],
            row_index=predicted.row_index[take],
            extras={},
        )


def _merge_rows(chunk: Any, extra: Any) -> tuple[np.ndarray, Any]:
    """The rows of ``chunk`` and ``extra`` (two ``DesignChunk`` s of one partition,
    without common rows) in partition order, and a function merging a column of each
    (``None``: NaN for ``extra``'s rows)."""
    rows = np.concatenate([chunk.row_index, extra.row_index]).astype(np.int64)
    order = np.argsort(rows, kind="stable")
    first = chunk.nrows

    def merged(a: np.ndarray, b: np.ndarray | None) -> np.ndarray:
        a = np.asarray(a)
        b = np.full(extra.nrows, np.nan) if b is None else np.asarray(b, dtype=a.dtype)
        both = np.empty(first + extra.nrows, dtype=a.dtype)
        both[:first], both[first:] = a, b
        return both[order]

    return rows[order], merged


def _design_columns(X: Any, rows: int) -> list[np.ndarray]:
    """The design's columns as contiguous float64 vectors.

    A :class:`~shardfit.design.fast_encoder.SplitDesign` gives its dense columns as
    they are and its sparse (dummy) columns scattered into zeros: 0.1 s for 150k x 229,
    where making the whole design dense first took 5 s.
    """
    if not isinstance(X, SplitDesign):
        block = np.asfortranarray(X, dtype=np.float64)
        return [block[:, j] for j in range(block.shape[1])]
    out: list[np.ndarray] = [np.empty(0)] * (X.dense_index.size + X.sparse_index.size)
    for k, j in enumerate(X.dense_index):
        out[j] = np.ascontiguousarray(X.dense[:, k])
    csc = X.sparse
    for k, j in enumerate(X.sparse_index):
        column = np.zeros(rows)
        lo, hi = csc.indptr[k], csc.indptr[k + 1]
        column[csc.indices[lo:hi]] = csc.data[lo:hi]
        out[j] = column
    return out


def _response_name(spec: DesignSpec) -> str:
    return spec.response_names[0] if spec.response_names else "y"


def _check_names(spec: DesignSpec) -> None:
    taken = {ROW, WEIGHTS, OFFSET, _response_name(spec)}
    clash = [name for name in spec.column_names if name in taken]
    if clash:
        raise DesignError(
            f"the design column(s) {clash} would overwrite a stored column of the same name "
            f"({', '.join(sorted(taken))}); rename the data's column"
        )


def write_design(
    formula: str,
    data: Any,
    out: str | Path,
    *,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = DEFAULT_MAX_LEVELS,
    spec: DesignSpec | None = None,
    unseen: Literal["raise", "zero"] = "raise",
    backend: Any = None,
    workers: int | None = None,
    progress: bool = False,
) -> DesignStore:
    """Encode ``formula``'s design on ``data``, partition by partition, into a store on disk.

    Parameters
    ----------
    formula : str
        A formula with a response, e.g. ``"y ~ x1 + C(g) + x1:x3"``. Formula strings are
        code (formulaic evaluates them as Python): never pass an untrusted one.
    data : Source, path, glob, DataFrame, ...
        Anything :func:`shardfit.as_source` accepts.
    out : str or path-like
        A new or empty folder (made if missing; its parent must exist). Left empty
        when writing fails (and without a manifest, so open_design refuses it).
    weights, offset, exposure : str, optional
        Columns stored alongside: prior weights, and the offset (plus
        ``log(exposure)``) of a GLM.
    missing : {"drop", "raise"}
        Rows with a missing value in a column the design reads are dropped and counted,
        or raise naming partition, row and column. With ``"drop"``, rows missing only
        the response or the weight (columns predictions do not read) are stored with a
        null response and weight (``rows_without_response``): fits from the store drop
        them, predictions from it give them a value.
    max_levels : int
        The most levels a categorical may have.
    spec : DesignSpec, optional
        Encode with this design (``store.spec`` of an earlier store, say for new data
        to predict on) instead of learning one; a level it never saw raises. Data
        without the response gives a store without it (``has_response=False``): its
        ``X`` to predict on, as ``fit.predict(new.X.to_pandas())``.
    unseen : {"raise", "zero"}
        With ``spec``, a level the design never saw raises naming partition, row and
        column, or is encoded as zeros in that column's dummies (as ``predict``'s
        ``unseen="zero"``).
    backend, workers, progress
        Where the passes run (see :func:`shardfit.ols`).

    Returns
    -------
    DesignStore
        Fit it with ``shardfit.OLS(store.y, store.X)`` or ``shardfit.GLM(store.y,
        store.X, family)``; reopen it with :func:`open_design`.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd, shardfit
    >>> frame = pd.DataFrame({"y": [1.0, 2.0, 4.0, 3.5], "x": [0.0, 1.0, 2.0, 3.0],
    ...                       "g": ["a", "b", "a", "b"]})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     store = shardfit.write_design("y ~ x + C(g)", frame, pathlib.Path(folder) / "d")
    ...     store.columns
    ('Intercept', 'C(g)[T.b]', 'x')
    """
    from shardfit.engine import map_partitions, session

    if unseen not in ("raise", "zero"):
        raise ValueError(f"The 'unseen' parameter must be 'raise' or 'zero'. Got {unseen!r}.")
    source = as_source(data)
    folder = Path(out)
    given = spec is not None
    # One session for the passes. Under MPI every rank runs this call: rank 0 alone
    # takes the folder (its lock), writes the manifest and cleans up after a failure;
    # every rank gets the parts' counts (allgather) and waits for the manifest, so
    # each returns an equal store that a following read on any rank finds complete.
    root = taken = False
    try:
        with session(backend, workers=workers, partitions=source.npartitions) as sess:
            root = sess.is_root
            sess.on_root(lambda: _prepare(folder))
            taken = True
            if spec is None:
                spec = learn_design(
                    formula,
                    source,
                    weights=weights,
                    offset=offset,
                    exposure=exposure,
                    missing=missing,
                    max_levels=max_levels,
                    backend=sess,
                    progress=progress,
                    needs_response=True,
                ).spec
            if not spec.has_response:
                raise DesignError(
                    f"formula {formula!r} has no response (write_design needs y ~ ...)"
                )
            _check_names(spec)
            # New data to predict on may lack the response (only with a given spec: a
            # design is learned from data with it).
            need_response = not (given and _lacks_response(spec, source))
            # ... and then its weights: predictions need none (a store written with
            # weights= gave a spec that made such data fail on "unknown column 'w'").
            encoding = spec if need_response else _without_weights(spec, source)
            keys = tuple(p.key for p in source.partitions)
            names = tuple(f"part-{i:05d}.parquet" for i in range(len(keys)))
            group_rows = max(1024, _GROUP_BYTES // (8 * (len(spec.column_names) + 4)))
            task = _WritePart(
                encoding, str(folder), missing, names, keys, group_rows, need_response, unseen
            )
            parts = map_partitions(
                task, source, backend=sess, progress=progress, pass_name="store", allgather=True
            )
            assert parts is not None
            store = _store_of(folder, encoding, parts, group_rows, source.name)
            store = replace(store, spec=spec, has_response=need_response)

            def finish() -> None:
                write_atomically(folder / MANIFEST, text=json.dumps(_manifest(store), indent=1))
                (folder / _LOCK).unlink()

            sess.on_root(finish)
    except BaseException:
        # After the session closed, so no worker still writes into the folder; a
        # folder this call did not take (it was not new or empty) is left alone.
        if root and taken:
            _clean(folder)
        raise
    return store


def _lacks_response(spec: DesignSpec, source: Source) -> bool:
    """Whether ``source`` has none of the columns only a fit reads (the response)."""
    response = spec.fit_only_columns - set(spec.extra_columns)
    return bool(response) and not response & set(source.columns)


def _without_weights(spec: DesignSpec, source: Source) -> DesignSpec:
    """``spec`` reading no weights when ``source`` (data to predict on) lacks them."""
    return spec if spec.weights in source.columns else _unweighted(spec)


def _unweighted(spec: DesignSpec) -> DesignSpec:
    """``spec`` reading no weights, as predictions encode (unless the formula reads
    the weights' column too)."""
    name = spec.weights
    if name is None or name in spec.formula_columns:
        return spec
    raw = tuple(c for c in spec.raw_columns if c != name)
    return replace(spec, weights=None, raw_columns=raw)


def _prepare(folder: Path) -> Path:
    """Make ``folder`` (new or empty) and take it: a lock file made exclusively, so a
    second write into it, even one that found it empty at the same moment, is refused
    before it writes (or, failing, cleans) anything."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        busy = (folder / _LOCK).exists() and not (folder / MANIFEST).exists()
        raise FileExistsError(
            f"write_design needs a new or empty folder; {folder} is not"
            + (
                f" (it holds {_LOCK}: another write_design is writing there, or one was "
                "killed; remove the folder once no write runs)"
                if busy
                else ""
            )
        )
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"cannot make {folder}: no such folder {folder.parent}")
    folder.mkdir(exist_ok=True)
    try:
        (folder / _LOCK).open("x").close()
    except FileExistsError:
        raise FileExistsError(
            f"write_design needs a new or empty folder; another write_design has just "
            f"started writing into {folder}"
        ) from None
    return folder


def _clean(folder: Path) -> None:
    """Remove what a failed write left (the folder's files and its lock)."""
    for entry in folder.iterdir() if folder.is_dir() else ():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)


def _store_of(
    folder: Path, spec: DesignSpec, parts: list[_PartWritten], group_rows: int, source_name: str
) -> DesignStore:
    dropped: dict[str, int] = {}
    for part in parts:
        for reason, count in part.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
    return DesignStore(
        path=folder,
        spec=spec,
        response=_response_name(spec),
        columns=tuple(spec.column_names),
        files=tuple(part.file for part in parts),
        sparse_columns=tuple(
            name for name, dense in zip(spec.column_names, spec.dense_columns()) if not dense
        ),
        group_rows=group_rows,
        part_rows=tuple(part.rows_read for part in parts),
        has_weights=spec.weights is not None,
        has_offset=spec.offset is not None or spec.exposure is not None,
        rows_read=sum(part.rows_read for part in parts),
        rows_written=sum(part.rows_written for part in parts),
        rows_skipped=sum(part.skipped for part in parts),
        rows_dropped=dropped,
        source_name=source_name,
        part_skipped=tuple(part.skipped for part in parts),
        rows_without_response=sum(part.without_response for part in parts),
        part_without_response=tuple(part.without_response for part in parts),
    )


def _manifest(store: DesignStore) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "version": _VERSION,
        "spec": store.spec.to_dict(),
        "response": store.response,
        "columns": list(store.columns),
        "files": list(store.files),
        "part_rows": list(store.part_rows),
        "sparse_columns": list(store.sparse_columns),
        "group_rows": store.group_rows,
        "has_weights": store.has_weights,
        "has_offset": store.has_offset,
        "has_response": store.has_response,
        "rows_read": store.rows_read,
        "rows_written": store.rows_written,
        "rows_skipped": store.rows_skipped,
        "rows_dropped": store.rows_dropped,
        "source_name": store.source_name,
        "part_skipped": list(store.part_skipped),
        "rows_without_response": store.rows_without_response,
        "part_without_response": list(store.part_without_response),
    }


def open_design(path: str | Path) -> DesignStore:
    """Reopen a store written by :func:`write_design` (JSON and Parquet; no pickle).

    Raises
    ------
    shardfit.errors.ReadError
        No manifest (the write did not finish), a damaged manifest or another format, a
        part file missing, or part files whose rows differ from the manifest's.
    """
    folder = Path(path)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ReadError(
            f"{folder} is not a complete design store: it has no {MANIFEST} (written last, "
            "so a write that failed or is still running has none)"
        )
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReadError(
            f"{manifest} is damaged ({error}); write the store again with write_design"
        ) from error
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ReadError(f"{manifest} is not a shardfit design store's manifest")
    if data.get("version") not in _READABLE:
        raise ReadError(
            f"{manifest} is not a "
            + " or ".join(f"version-{v}" for v in _READABLE)
            + f" shardfit design store (it says version {data.get('version')!r}): write "
            "the store again with write_design, or use the shardfit that wrote it"
        )
    try:
        store = _store_from(folder, data)
    except (KeyError, TypeError, ValueError, AttributeError, DesignError) as error:
        raise ReadError(
            f"{manifest} is damaged ({type(error).__name__}: {error}); write the store "
            "again with write_design"
        ) from error
    missing = [name for name in store.files if not (folder / name).is_file()]
    if missing:
        raise ReadError(f"the design store {folder} lacks the part file(s) {missing[:5]}")
    _check_part_rows(store)
    return store


def _check_part_rows(store: DesignStore) -> None:
    """The parts' rows (from their footers, not their data) must be the manifest's."""
    rows = []
    for name in store.files:
        try:
            rows.append(pq.ParquetFile(store.path / name).metadata.num_rows)
        except (OSError, pa.ArrowException) as error:
            raise ReadError(
                f"the part file {store.path / name} of the design store is damaged "
                f"({error}); write the store again with write_design"
            ) from error
    if sum(rows) != store.rows_written:
        raise ReadError(
            f"the part files of the design store {store.path} hold {sum(rows):,} rows where "
            f"its {MANIFEST} says {store.rows_written:,}: a part was replaced or the "
            "manifest edited; write the store again with write_design"
        )


def _store_from(folder: Path, data: dict[str, Any]) -> DesignStore:
    return DesignStore(
        path=folder,
        spec=DesignSpec.from_dict(data["spec"]),
        response=data["response"],
        columns=tuple(data["columns"]),
        files=tuple(data["files"]),
        part_rows=tuple(int(n) for n in data["part_rows"]),
        sparse_columns=tuple(data["sparse_columns"]),
        group_rows=int(data["group_rows"]),
        has_weights=bool(data["has_weights"]),
        has_offset=bool(data["has_offset"]),
        has_response=bool(data.get("has_response", True)),  # absent: an earlier store
        rows_read=int(data["rows_read"]),
        rows_written=int(data["rows_written"]),
        rows_skipped=int(data["rows_skipped"]),
        rows_dropped={str(k): int(v) for k, v in data["rows_dropped"].items()},
        # Absent from stores written before they were kept.
        source_name=str(data.get("source_name", "the data the store was written from")),
        part_skipped=tuple(int(n) for n in data.get("part_skipped", ())),
        # Absent from version-1 stores, which hold complete rows only.
        rows_without_response=int(data.get("rows_without_response", 0)),
        part_without_response=tuple(int(n) for n in data.get("part_without_response", ())),
    )


def source_counts(
    source: Source, read: int, dropped: dict[str, int], skipped: int
) -> tuple[int, dict[str, int], int]:
    """A fit's rows read, dropped and skipped, counted from the original data when
    ``source`` is a design store's (the rows the store dropped when it was written are
    reported, as a fit of the formula on the data reports them)."""
    counts = source.meta.get(STORE_COUNTS)
    if not isinstance(counts, dict):
        return read, dropped, skipped
    total = dict(counts["dropped"])
    # The fit's own: the stored rows without a response (dropped as missing, as a fit
    # from the data drops them; the store's counts leave them out).
    for reason, count in dropped.items():
        total[reason] = total.get(reason, 0) + count
    return int(counts["read"]), total, int(counts["skipped"]) + skipped


def check_groups(source: Source, groups: str | None) -> None:
    """Refuse cluster ``groups`` that a design store (``source``) does not hold, saying
    why: a store keeps the response, the design columns, weights and offset only."""
    folder = source.meta.get(STORE_META)
    if groups is None or folder is None or groups in source.columns:
        return
    raise DesignError(
        f"cov_kwds={{'groups': {groups!r}}}: the design store {folder} does not hold "
        f"{groups!r}; a store keeps only the response, the design columns, weights and "
        "offset. Fit the formula on the data for a cluster covariance "
        "(shardfit.ols(formula, data).fit(cov_type='cluster', ...))"
    )


def stored_column(columns: StoredColumns | None, role: str) -> str | None:
    """The stored column a model's ``weights=`` or ``offset=`` names (``store.weights``,
    ``store.offset``): the one passed, never another of the store's."""
    if columns is None:
        return None
    if len(columns.names) != 1:
        raise DesignError(f"{role} must be one stored column (store.{role}); got {columns.names}")
    return columns.names[0]


def stored_design(endog: Any, exog: Any, **columns: Any) -> DesignStore | None:
    """The store when a model gets ``store.y`` and ``store.X`` (``None`` for arrays).

    ``columns`` are the model's other column arguments (``weights=store.weights``,
    ``offset=store.offset``), which must come from the same store.
    """
    given = {"endog": endog, "exog": exog, **columns}
    stored = {name: v for name, v in given.items() if isinstance(v, StoredColumns)}
    if not stored:
        return None
    if not (isinstance(endog, StoredColumns) and isinstance(exog, StoredColumns)):
        raise DesignError(
            "a design store's columns go together: pass store.y as endog and store.X as exog"
        )
    store = exog.store
    others = [name for name, v in stored.items() if v.store.path != store.path]
    if others:
        raise DesignError(f"{', '.join(others)} come(s) from another design store than exog")
    loose = [name for name, v in given.items() if v is not None and name not in stored]
    if loose:
        raise DesignError(
            f"with a design store, {', '.join(loose)} must be the store's own columns "
            "(store.weights, store.offset), stored by write_design(weights=, offset=)"
        )
    if len(endog.names) != 1:
        raise DesignError("endog must be one column (store.y)")
    if isinstance(columns.get("exposure"), StoredColumns):
        # Silently dropped before: the fit had no offset at all.
        raise DesignError(
            "exposure=store.offset: a design store's offset already holds log(exposure) "
            "(write_design(exposure=)); pass it as offset=store.offset"
        )
    return store
