"""The results store of a model search: one SQLite file, crash-safe, queryable.

Written by the search driver alone, read by anyone (``open_store(path).best(5)``, also
while a search runs). SQLite in WAL mode with ``synchronous=FULL``: each finished unit
of work (its configurations' scores, curves and models) is one transaction, so a
killed search leaves whole units or nothing, and a rerun skips what is recorded. When
a write fails for lack of space (a full disk, a file-size limit, or the store's own
``max_bytes``), the transaction is rolled back, :class:`StoreFullError` says how many
configurations are safe, and everything committed before stays readable.

Tables: ``meta`` (what the search was run on, to refuse resuming a different one),
``results`` (one row per configuration: parameters, scores), ``curves`` and ``models``
(blobs, read only for the configurations asked for).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shardfit.errors import ShardfitError
from shardfit.streaming.progressive import METRICS

__all__ = ["ResultStore", "StoreError", "StoreFullError", "StoredResult", "open_store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    score REAL,
    benchmark REAL,
    improvement REAL,
    scores TEXT NOT NULL,
    benchmark_scores TEXT NOT NULL,
    rows INTEGER NOT NULL,
    seconds REAL NOT NULL,
    finished REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_score ON results (status, score);
CREATE TABLE IF NOT EXISTS curves (key TEXT PRIMARY KEY, curve TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    key TEXT PRIMARY KEY, format TEXT NOT NULL, spec TEXT NOT NULL, blob BLOB NOT NULL
);
"""

# The columns each table must have (a store written by another version of the schema,
# or another program's database, is refused before anything is written to it).
_COLUMNS_OF = {
    "meta": ("name", "value"),
    "results": (
        "key", "params", "status", "score", "benchmark", "improvement", "scores",
        "benchmark_scores", "rows", "seconds", "finished",
    ),
    "curves": ("key", "curve"),
    "models": ("key", "format", "spec", "blob"),
}  # fmt: skip
# The store's format, kept in SQLite's ``user_version`` (0: written before it was set,
# the same layout). A store of a later format is refused rather than misread.
_FORMAT = 1

# SQLite primary result codes meaning "no room to write".
_SQLITE_FULL = 13
_SQLITE_IOERR = 10


class StoreError(ShardfitError):
    """The results store cannot be opened, read or written."""


class StoreFullError(StoreError):
    """A write to the results store failed for lack of space; what was saved is intact."""


@dataclass(frozen=True)
class Record:
    """What the search writes for one configuration."""

    key: str
    params: Mapping[str, Any]
    status: str  # "done", or "dropped" by successive halving
    score: float
    benchmark: float
    improvement: float
    scores: Mapping[str, float]
    benchmark_scores: Mapping[str, float]
    rows: int
    seconds: float
    curve: Mapping[str, list[float]]
    model: tuple[str, str, bytes] | None  # (format, spec, blob) of persist.dump_model


@dataclass(frozen=True)
class StoredResult:
    """One configuration's scores, read without its model.

    Attributes
    ----------
    key : str
        The configuration's identifier (a hash of its parameters).
    params : dict
        ``{"featurizer": {...}, "learner": {...}}``.
    status : str
        ``"done"``, or ``"dropped"`` (stopped early by successive halving).
    score, benchmark, improvement : float
        The progressive score (the search's metric), the running-mean benchmark's, and
        the relative improvement.
    scores, benchmark_scores : dict
        Every metric.
    rows : int
        Rows learned.
    """

    key: str
    params: dict[str, Any]
    status: str
    score: float
    benchmark: float
    improvement: float
    scores: dict[str, float]
    benchmark_scores: dict[str, float]
    rows: int
    seconds: float
    store_path: str

    def model(self, *, allow_pickle: bool = False) -> Any:
        """Load this configuration's fitted pipeline (featurizer, learner)."""
        with open_store(self.store_path) as store:
            return store.model(self.key, allow_pickle=allow_pickle)

    def curve(self) -> pd.DataFrame:
        """The progressive curve, one row per scored batch."""
        with open_store(self.store_path) as store:
            return store.curve(self.key)


def _nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _is_full(error: sqlite3.Error) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_FULL, _SQLITE_IOERR)
    text = str(error).lower()
    return "full" in text or "disk i/o" in text  # pragma: no cover - Python < 3.11


class ResultStore:
    """An open results store; use :func:`open_store`.

    Parameters
    ----------
    path : str or Path
        The SQLite file.
    create : bool
        Create it when missing (the search does); otherwise a missing file is an error.
    max_bytes : int, optional
        Refuse to grow the file beyond about this size (SQLite's ``max_page_count``):
        a write that would exceed it fails as a full disk would.
    """

    def __init__(
        self, path: str | Path, *, create: bool = False, max_bytes: int | None = None
    ) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no results store at {self.path}")
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=60.0)
            # Before any pragma that writes (WAL mode changes the file).
            self._check_layout(create=create)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA busy_timeout=60000")
            if max_bytes is not None:
                page = self._conn.execute("PRAGMA page_size").fetchone()[0]
                self._conn.execute(f"PRAGMA max_page_count={max(1, int(max_bytes) // page)}")
            if create:
                # executescript would commit on its own; one statement at a time instead.
                statements = [part for part in _SCHEMA.split(";") if part.strip()]
                statements.append(f"PRAGMA user_version={_FORMAT}")
                self._write(
                    lambda c: [c.execute(statement) for statement in statements],
                    what="create the tables",
                )
        except sqlite3.DatabaseError as error:
            if isinstance(error, sqlite3.OperationalError) and _is_full(error):
                raise StoreFullError(
                    f"cannot create the results store {self.path}: {error}"
                ) from error
            raise StoreError(f"cannot open the results store {self.path}: {error}") from error

    # --- plumbing --------------------------------------------------------------------

    def _check_layout(self, *, create: bool) -> None:
        """Refuse a file that is not a results store this version can read and write.

        Another program's SQLite database would otherwise get the store's tables added
        (and be switched to WAL mode); a store of another layout would fail only when
        the first finished unit is saved, after its work was done.
        """
        conn = self._conn
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        ours = [n for n in names if n in _COLUMNS_OF]
        if names and not ours:
            raise StoreError(
                f"{self.path} is an SQLite database but not a shardfit results store (it has "
                f"the table(s) {', '.join(sorted(names))}); choose another file for the store"
            )
        if not create and "results" not in names:
            raise StoreError(f"{self.path} is not a shardfit results store (no results table)")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > _FORMAT:
            raise StoreError(
                f"the results store {self.path} has format {version}, written by a newer "
                f"shardfit; this version reads format {_FORMAT} (upgrade shardfit, or use "
                "another store)"
            )
        for table in ours:
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            lacking = [c for c in _COLUMNS_OF[table] if c not in have]
            if lacking:
                raise StoreError(
                    f"the results store {self.path} has another layout: its table {table!r} "
                    f"lacks the column(s) {', '.join(lacking)} (written by another version "
                    "of shardfit?); use another store"
                )

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, action: Any, *, what: str) -> None:
        """Run ``action(connection)`` in one transaction; roll back on any failure."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            action(conn)
            conn.execute("COMMIT")
        except BaseException as error:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # SQLite already rolled back on a full disk
            if isinstance(error, sqlite3.Error) and _is_full(error):
                saved = self._count_safely()
                raise StoreFullError(
                    f"could not {what} in the results store {self.path}: no space left "
                    f"({error}). Nothing of this write was kept; the {saved} configuration(s) "
                    "saved before are intact. Free some space (or raise the limit) and run "
                    "the search again: it resumes where it stopped."
                ) from error
            if isinstance(error, sqlite3.Error):
                raise StoreError(f"could not {what} in {self.path}: {error}") from error
            raise

    def _count_safely(self) -> int | str:
        try:
            return int(self._conn.execute("SELECT count(*) FROM results").fetchone()[0])
        except sqlite3.Error:
            return "?"

    # --- metadata --------------------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """What the search that wrote the store was run on (empty for a new store)."""
        rows = self._conn.execute("SELECT name, value FROM meta").fetchall()
        return {name: json.loads(value) for name, value in rows}

    def set_meta(self, values: Mapping[str, Any]) -> None:
        """Record (or replace) metadata entries, in one transaction."""

        def action(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()],
            )

        self._write(action, what="record the search settings")

    @property
    def scoring(self) -> str:
        """The metric the configurations are ranked by."""
        return str(self.meta().get("scoring", "log_loss"))

    # --- writing ---------------------------------------------------------------------

    def save(self, records: Iterable[Record]) -> None:
        """Write the records of one unit of work in one transaction (all or nothing)."""
        records = list(records)
        now = time.time()

        def action(conn: sqlite3.Connection) -> None:
            for r in records:
                conn.execute(
                    "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        r.key,
                        json.dumps(r.params, sort_keys=True),
                        r.status,
                        _nan(r.score),
                        _nan(r.benchmark),
                        _nan(r.improvement),
                        json.dumps({k: _nan(v) for k, v in r.scores.items()}),
                        json.dumps({k: _nan(v) for k, v in r.benchmark_scores.items()}),
                        int(r.rows),
                        float(r.seconds),
                        now,
                    ),
                )
                conn.execute(
                    "INSERT OR REPLACE INTO curves VALUES (?, ?)",
                    (r.key, json.dumps(r.curve)),
                )
                if r.model is not None:
                    conn.execute(
                        "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)", (r.key, *r.model)
                    )

        self._write(action, what=f"save {len(records)} configuration(s)")

    # --- reading ---------------------------------------------------------------------

    def finished(self) -> set[str]:
        """Keys of the configurations recorded (done or dropped)."""
        return {k for (k,) in self._conn.execute("SELECT key FROM results")}

    def __len__(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM results").fetchone()[0])

    def _result(self, row: tuple[Any, ...]) -> StoredResult:
        key, params, status, score, bench, gain, scores, bscores, rows, seconds = row
        nan = float("nan")
        return StoredResult(
            key=key,
            params=json.loads(params),
            status=status,
            score=nan if score is None else score,
            benchmark=nan if bench is None else bench,
            improvement=nan if gain is None else gain,
            scores={k: nan if v is None else v for k, v in json.loads(scores).items()},
            benchmark_scores={k: nan if v is None else v for k, v in json.loads(bscores).items()},
            rows=rows,
            seconds=seconds,
            store_path=str(self.path),
        )

    _COLUMNS = (
        "key, params, status, score, benchmark, improvement, scores, benchmark_scores, "
        "rows, seconds"
    )

    def best(self, n: int = 5, *, include_dropped: bool = False) -> list[StoredResult]:
        """The ``n`` best configurations by the search's metric, without loading models.

        Parameters
        ----------
        n : int
            How many.
        include_dropped : bool
            Also rank configurations stopped early by successive halving (their scores
            cover fewer rows).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"The 'n' parameter of best must be an int >= 1. Got {n!r}.")
        order = "DESC" if METRICS.get(self.scoring, False) else "ASC"
        where = "" if include_dropped else "WHERE status = 'done'"
        rows = self._conn.execute(
            f"SELECT {self._COLUMNS} FROM results {where} "
            f"ORDER BY score IS NULL, score {order}, key LIMIT ?",
            (n,),
        ).fetchall()
        return [self._result(row) for row in rows]

    def results(self) -> pd.DataFrame:
        """Every configuration's scores (no models), best first."""
        rows = [self._result(r) for r in self._conn.execute(f"SELECT {self._COLUMNS} FROM results")]
        frame = pd.DataFrame(
            [
                {
                    "key": r.key,
                    "status": r.status,
                    "score": r.score,
                    "benchmark": r.benchmark,
                    "improvement": r.improvement,
                    "rows": r.rows,
                    "seconds": r.seconds,
                    "params": r.params,
                }
                for r in rows
            ],
            columns=[
                "key",
                "status",
                "score",
                "benchmark",
                "improvement",
                "rows",
                "seconds",
                "params",
            ],
        )
        ascending = not METRICS.get(self.scoring, False)
        return frame.sort_values(["score", "key"], ascending=[ascending, True]).reset_index(
            drop=True
        )

    def model(self, key: str, *, allow_pickle: bool = False) -> Any:
        """Load one configuration's fitted pipeline (only that model is read)."""
        from shardfit.streaming.persist import load_model

        row = self._conn.execute(
            "SELECT format, spec, blob FROM models WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no model stored for configuration {key!r} in {self.path}")
        return load_model(row[0], row[1], bytes(row[2]), allow_pickle=allow_pickle)

    def curve(self, key: str) -> pd.DataFrame:
        """One configuration's progressive curve."""
        row = self._conn.execute("SELECT curve FROM curves WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StoreError(f"no curve stored for configuration {key!r} in {self.path}")
        return pd.DataFrame(json.loads(row[0]))


def open_store(
    path: str | Path, *, create: bool = False, max_bytes: int | None = None
) -> ResultStore:
    """Open a search's results store (SQLite).

    Parameters
    ----------
    path : str or Path
        The file :func:`shardfit.search` wrote.
    create : bool, default False
        Create an empty store if there is none.
    max_bytes : int, optional
        A size limit for writes (see :class:`ResultStore`).

    Returns
    -------
    ResultStore
        Use ``best(n)``, ``results()``, ``model(key)``; close it (or use ``with``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     with open_store(pathlib.Path(folder) / "s.db", create=True) as store:
    ...         len(store), store.best(3)
    (0, [])
    """
    return ResultStore(path, create=create, max_bytes=max_bytes)
