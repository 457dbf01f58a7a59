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
dropped for missing values are counted in the manifest; every part keeps
``partition_row``, the row's 0-based position in its source partition (the manifest
has the rows read from each, so :meth:`StoredColumns.to_pandas` indexes rows by their
position in the source). With Dask or MPI, ``out`` must be a folder
every worker can write (a shared file system).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shardfit.data.convert import write_atomically
from shardfit.data.parquet import read_parquet
from shardfit.data.partition import Partition, Source
from shardfit.data.resolve import as_source
from shardfit.design.fast_encoder import SplitDesign
from shardfit.design.materialize import encode_partition
from shardfit.design.schema import learn_design
from shardfit.design.spec import DesignSpec
from shardfit.errors import DesignError, ReadError
from shardfit.stats.column_summary import DEFAULT_MAX_LEVELS

__all__ = ["DesignStore", "StoredColumns", "open_design", "stored_design", "write_design"]

MANIFEST = "_design.json"
_FORMAT = "shardfit-design"
_VERSION = 1
# Plain encoding and LZ4: measured on a 150k x 229 design (20 numeric columns, the
# rest dummies), 0.7 s to write and 0.3 s to read back, where pyarrow's defaults
# (dictionary encoding, Snappy) took 1.5 s and 3.3 s, for 26 MB against 30 MB.
_PARQUET = {"use_dictionary": False, "compression": "lz4"}
# Decoded bytes of a row group (a fit's task): bounded worker memory for any part size.
_GROUP_BYTES = 32 * 2**20
#: Names of the stored columns that are not design columns.
ROW, WEIGHTS, OFFSET = "partition_row", "__weights__", "__offset__"


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

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)``."""
        return (self.store.rows_written, len(self.names))

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
    rows_read, rows_written, rows_skipped : int
        Rows read from the source, rows stored, malformed rows the reader skipped.
    rows_dropped : dict of str to int
        Rows not stored, by reason (``"missing"``, ``"nonfinite"``).
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
    rows_read: int = 0
    rows_written: int = 0
    rows_skipped: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def constant(self) -> str | None:
        """The design's intercept column, if it has one."""
        index = self.spec.intercept_index()
        return None if index is None else self.spec.column_names[index]

    @property
    def y(self) -> StoredColumns:
        """The response column."""
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

    def source(self, *, partition_rows: int | None = None) -> Source:
        """The stored rows as a Parquet source (one partition per row group by default)."""
        if not self.files:
            raise DesignError(f"the design store {self.path} holds no rows")
        files = [self.path / name for name in self.files]
        return read_parquet(files, partition_rows=partition_rows or self.group_rows)

    def summary(self) -> str:
        """One line for people."""
        dropped = sum(self.rows_dropped.values())
        return (
            f"stored {self.rows_written:,} rows x {len(self.columns)} design columns in "
            f"{len(self.files)} part{'s' * (len(self.files) != 1)} at {self.path} "
            f"({self.rows_read:,} read, {dropped:,} dropped, {self.rows_skipped:,} skipped)"
        )


@dataclass(frozen=True)
class _PartWritten:
    """What one partition's task wrote."""

    file: str
    rows_read: int
    rows_written: int
    skipped: int
    dropped: dict[str, int]

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

    def __call__(self, partition: Partition) -> _PartWritten:
        chunk = encode_partition(self.spec, partition, missing=self.missing, structured=True)
        name = self.names[self.keys.index(partition.key)]
        columns: dict[str, Any] = {ROW: pa.array(chunk.row_index.astype(np.int64))}
        columns[_response_name(self.spec)] = pa.array(np.asarray(chunk.y, dtype=np.float64))
        design = _design_columns(chunk.X, chunk.nrows)
        for column, values in zip(self.spec.column_names, design, strict=True):
            columns[column] = pa.array(values)
        if chunk.weights is not None:
            columns[WEIGHTS] = pa.array(chunk.weights)
        if chunk.offset is not None:
            columns[OFFSET] = pa.array(chunk.offset)
        table = pa.table(columns)
        write_atomically(
            Path(self.folder) / name, table=table, row_group_size=self.group_rows, **_PARQUET
        )
        return _PartWritten(
            file=name,
            rows_read=chunk.rows_read,
            rows_written=chunk.nrows,
            skipped=chunk.skipped_rows,
            dropped=dict(chunk.dropped),
        )


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
        A new or empty folder (made if missing; its parent must exist). Removed, or
        emptied if it existed, when writing fails.
    weights, offset, exposure : str, optional
        Columns stored alongside: prior weights, and the offset (plus
        ``log(exposure)``) of a GLM.
    missing : {"drop", "raise"}
        Rows with a missing value in a column the design reads are dropped and counted,
        or raise naming partition, row and column.
    max_levels : int
        The most levels a categorical may have.
    spec : DesignSpec, optional
        Encode with this design (``store.spec`` of an earlier store, say for new data
        to predict on) instead of learning one; a level it never saw raises.
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
    from shardfit.engine import map_partitions

    source = as_source(data)
    folder = _prepare(Path(out))
    try:
        if spec is None:
            spec = learn_design(
                formula,
                source,
                weights=weights,
                offset=offset,
                exposure=exposure,
                missing=missing,
                max_levels=max_levels,
                backend=backend,
                workers=workers,
                progress=progress,
                needs_response=True,
            ).spec
        if not spec.has_response:
            raise DesignError(f"formula {formula!r} has no response (write_design needs y ~ ...)")
        _check_names(spec)
        keys = tuple(p.key for p in source.partitions)
        names = tuple(f"part-{i:05d}.parquet" for i in range(len(keys)))
        group_rows = max(1024, _GROUP_BYTES // (8 * (len(spec.column_names) + 4)))
        task = _WritePart(spec, str(folder), missing, names, keys, group_rows)
        parts = map_partitions(
            task, source, backend=backend, workers=workers, progress=progress, pass_name="store"
        )
        assert parts is not None
        store = _store_of(folder, spec, parts, group_rows)
        write_atomically(folder / MANIFEST, text=json.dumps(_manifest(store), indent=1))
    except BaseException:
        _clean(folder)
        raise
    return store


def _prepare(folder: Path) -> Path:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"write_design needs a new or empty folder; {folder} is not")
    if not folder.parent.is_dir():
        raise FileNotFoundError(f"cannot make {folder}: no such folder {folder.parent}")
    folder.mkdir(exist_ok=True)
    return folder


def _clean(folder: Path) -> None:
    """Remove what a failed write left (the folder's files; the folder if it is empty)."""
    for entry in folder.iterdir() if folder.is_dir() else ():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink(missing_ok=True)


def _store_of(
    folder: Path, spec: DesignSpec, parts: list[_PartWritten], group_rows: int
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
        "rows_read": store.rows_read,
        "rows_written": store.rows_written,
        "rows_skipped": store.rows_skipped,
        "rows_dropped": store.rows_dropped,
    }


def open_design(path: str | Path) -> DesignStore:
    """Reopen a store written by :func:`write_design` (JSON and Parquet; no pickle).

    Raises
    ------
    shardfit.errors.ReadError
        No manifest (the write did not finish), another format, or a part file missing.
    """
    folder = Path(path)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        raise ReadError(
            f"{folder} is not a complete design store: it has no {MANIFEST} (written last, "
            "so a write that failed or is still running has none)"
        )
    data = json.loads(manifest.read_text(encoding="utf-8"))
    if data.get("format") != _FORMAT or data.get("version") != _VERSION:
        raise ReadError(f"{manifest} is not a version-{_VERSION} shardfit design store")
    missing = [name for name in data["files"] if not (folder / name).is_file()]
    if missing:
        raise ReadError(f"the design store {folder} lacks the part file(s) {missing[:5]}")
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
        rows_read=int(data["rows_read"]),
        rows_written=int(data["rows_written"]),
        rows_skipped=int(data["rows_skipped"]),
        rows_dropped={str(k): int(v) for k, v in data["rows_dropped"].items()},
    )


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
    return store
