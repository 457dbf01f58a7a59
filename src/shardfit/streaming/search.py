"""Parallel model search over featurizer and learner parameters, into a crash-safe store.

:func:`search` expands a space (:mod:`shardfit.streaming.space`) into configurations,
skips those the store already holds, groups the rest into units of work
(:func:`~shardfit.streaming.policy.plan_units`: configurations sharing a featurizer)
and runs the units on an engine backend. A unit reads the rows once, in order, hashes
each batch once and feeds every configuration it owns with progressive validation
(:class:`~shardfit.streaming.progressive.Tracker`). The driver alone writes the
store: one transaction per finished unit, so a killed search keeps whole units and a
rerun resumes.

With ``halving``, the search runs in rungs: after ``min_rows``, ``min_rows·factor``,
… rows, the configurations still running are ranked by their progressive score so far
and the best ``1/factor`` continue (their learners travel back to the workers and go
on from where they were); the others are recorded as ``"dropped"``. A search with
halving that is killed resumes by restarting the configurations not yet recorded, and
keeps at each checkpoint as many as the uninterrupted search kept (counted from the
whole space), so it records the same rows and scores as a search never killed.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shardfit.data.partition import Source
from shardfit.data.resolve import as_source
from shardfit.engine.session import session
from shardfit.streaming.hashing import HashingFeaturizer
from shardfit.streaming.persist import dump_model
from shardfit.streaming.policy import next_checkpoint, plan_units, survivors
from shardfit.streaming.progressive import (
    METRICS,
    Tracker,
    applicable_scorings,
    check_scoring,
    default_scoring,
    summarize,
)
from shardfit.streaming.space import Config, build_learner, expand
from shardfit.streaming.store import Record, ResultStore, StoreError, open_store
from shardfit.streaming.stream import check_columns, check_takes_weights, warn_skipped
from shardfit.streaming.units import RunUnit, Unit, expand_coef, run_units

__all__ = ["SearchSummary", "search"]


@dataclass
class SearchSummary:
    """What a :func:`search` run did.

    Attributes
    ----------
    store : Path
        The results store (open it with :func:`shardfit.open_store`).
    configurations : int
        Configurations in the space.
    skipped : int
        Already in the store (a resumed search).
    fitted : int
        Recorded by this run as done.
    dropped : int
        Recorded by this run as dropped by successive halving.
    seconds : float
        Wall time of the run.
    rows_skipped : int
        Malformed lines the reader skipped in the partitions this run read (CSV with
        ``on_bad_lines="skip"``; a warning says so), counted once however many units
        and rungs read them.
    """

    store: Path
    configurations: int
    skipped: int
    fitted: int = 0
    dropped: int = 0
    seconds: float = 0.0
    rungs: list[dict[str, int]] = field(default_factory=list)
    rows_skipped: int = 0

    def best(self, n: int = 5) -> list[Any]:
        """The ``n`` best configurations in the store (see ``ResultStore.best``)."""
        with open_store(self.store) as store:
            return store.best(n)


def _record(
    config: Config,
    tracker: Tracker,
    seconds: float,
    *,
    scoring: str,
    drop: float,
    status: str,
    allow_pickle: bool,
) -> Record:
    expand_coef(tracker)
    result = summarize(tracker, scoring=scoring, drop=drop)
    featurizer = HashingFeaturizer(**config.featurizer)
    model = dump_model(featurizer, tracker.estimator, allow_pickle=allow_pickle)
    curve = {name: result.curve[name].tolist() for name in result.curve.columns}
    return Record(
        key=config.key,
        params=config.params,
        status=status,
        score=result.score,
        benchmark=result.benchmark_score,
        improvement=result.improvement,
        scores=result.scores,
        benchmark_scores=result.benchmark_scores,
        rows=result.rows,
        seconds=seconds,
        curve=curve,
        model=model,
    )


# Settings a store may lack because older versions did not record them, and the value
# those versions always ran with: a missing one is compared as that value (a store from
# before sample weights was unweighted). A missing setting with no such value (older
# versions halved without recording it) cannot be checked: the search resumes, warns,
# and records it from then on.
_IMPLIED_WHEN_MISSING: dict[str, Any] = {"weights": None}


def _canonical_classes(classes: Any) -> list[Any]:
    """The two labels as the learners take them: sorted, ``None`` as ``[0, 1]``.

    Progressive validation's default is ``[0, 1]`` and every learner sorts its labels
    (the larger is the positive class), so ``None``, ``[0, 1]`` and ``[1, 0]`` fit and
    score the same models and must not make a resumed search refuse its own store.
    """
    return np.unique(np.asarray([0, 1] if classes is None else classes)).tolist()


def _canonical_halving(halving: Mapping[str, int] | None) -> dict[str, int] | None:
    """Halving with its default factor filled in (``None``: no halving)."""
    if halving is None:
        return None
    return {"min_rows": int(halving["min_rows"]), "factor": int(halving.get("factor", 2))}


def _canonical_setting(name: str, value: Any) -> Any:
    if name == "classes":
        return _canonical_classes(value)
    if name == "halving" and isinstance(value, Mapping):
        return _canonical_halving(value)
    return value


def _check_settings(store: ResultStore, settings: dict[str, Any], resume: bool) -> None:
    old = store.meta()
    if old and len(store) and not resume:
        raise StoreError(
            f"the results store {store.path} already holds {len(store)} configuration(s); pass "
            "resume=True to continue that search, or choose another store"
        )
    if not old or not len(store):
        return
    recorded = {k: _canonical_setting(k, v) for k, v in old.items()}
    for name, value in _IMPLIED_WHEN_MISSING.items():
        recorded.setdefault(name, value)
    differing = [k for k, v in settings.items() if k in recorded and recorded[k] != v]
    if differing:
        name = differing[0]
        raise StoreError(
            f"the results store {store.path} was written by a search with {name}="
            f"{recorded[name]!r}, not {settings[name]!r}; resuming would mix incomparable "
            "scores. Use another store (or the same settings)."
        )
    unchecked = [k for k in settings if k not in recorded]
    if unchecked:
        warnings.warn(
            f"the results store {store.path} was written by an older version that did not "
            f"record {', '.join(unchecked)}; resuming without checking that this search "
            "uses the same (recorded from now on)",
            UserWarning,
            stacklevel=3,
        )


def _progress_bar(enabled: bool, total: int, done: int) -> tuple[Callable[[int], None], Any]:
    if not enabled:
        return (lambda n: None), None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]search"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("configurations"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    bar.start()
    task = bar.add_task("search", total=total, completed=done)
    return (lambda n: bar.advance(task, n)), bar


def search(
    space: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    data: Any,
    *,
    target: str,
    store: str | Path,
    weights: str | None = None,
    batch_rows: int = 1000,
    drop: float = 0.7,
    scoring: str | None = None,
    classes: Any = None,
    backend: Any = None,
    workers: int | None = None,
    unit_configs: int | None = None,
    units: int | None = None,
    halving: Mapping[str, int] | None = None,
    n_iter: int | None = None,
    random_state: int = 0,
    resume: bool = True,
    allow_pickle: bool = False,
    max_store_bytes: int | None = None,
    progress: bool = False,
) -> SearchSummary:
    """Fit every configuration of a search space on a stream, in parallel, into a store.

    Parameters
    ----------
    space : mapping or list of mappings
        ``{"featurizer": {...}, "learner": {"estimator": "ftrl", ...}}`` with lists as
        choices and ``scipy.stats`` distributions to sample (see
        :mod:`shardfit.streaming.space`).
    data : Source, path, DataFrame, Table, …
        Anything :func:`shardfit.as_source` accepts.
    target : str
        The target column.
    store : str or Path
        The SQLite results store (created if missing).
    weights : str, optional
        A column of non-negative sample weights, as in :func:`shardfit.stream_fit`:
        every learner gets them and every score is weighted by them.
    batch_rows : int, default 1000
        Rows per batch of progressive validation.
    drop : float, default 0.7
        Leading fraction of scored batches left out of each mean score.
    scoring : str, optional
        Ranking metric (``log_loss``, ``squared_error``, ``accuracy``, ``auc``); by
        default that of the first configuration's learner.
    classes : array-like, optional
        The classifiers' two labels (default ``[0, 1]``).
    backend, workers
        Where units run, as for :func:`shardfit.run_pass` (not ``mpi``).
    unit_configs : int, optional
        At most this many configurations per unit (default: all those sharing a
        featurizer, split to give every worker two units or more).
    units : int, optional
        Cut the configurations into this many units instead; ``units=workers`` makes
        each worker read each batch exactly once, with one resume point per worker.
    halving : mapping, optional
        ``{"min_rows": R, "factor": F}``: successive halving, keeping the best ``1/F``
        of the running configurations after ``R``, ``R·F``, ``R·F²``… rows. ``R`` must be
        a multiple of ``batch_rows``.
    n_iter : int, optional
        Configurations to draw from a space with distributions.
    random_state : int, default 0
        Seeds those draws.
    resume : bool, default True
        Skip the configurations already in the store; with ``False`` a non-empty store is
        an error. A store written with other data or settings (``target``, ``weights``,
        ``batch_rows``, ``drop``, ``scoring``, ``classes``, ``halving``) is refused.
        Settings are compared as the learners use them: ``classes=None`` is ``[0, 1]``
        and the labels' order does not matter; halving's ``factor`` defaults to 2. A
        setting that an older version did not record is compared with the value that
        version always used (no ``weights``); where there is none (``halving``) the
        search resumes with a warning and records it.
    allow_pickle : bool, default False
        Store learners outside the pickle-free list (see :mod:`shardfit.streaming.persist`)
        as pickles.
    max_store_bytes : int, optional
        Limit the store's size; beyond it writes fail as on a full disk.
    progress : bool, default False
        A progress bar of configurations on standard error.

    Returns
    -------
    SearchSummary

    Raises
    ------
    StoreFullError
        A write failed for lack of space; what was saved before is intact and a rerun
        resumes.
    """
    started = time.perf_counter()
    # Refused first, on every rank alike (each runs the script), before any rank
    # creates or writes the store: the ranks would all write the one SQLite file.
    sess = session(backend, workers=workers)
    if sess.name == "mpi":
        raise ValueError(
            "search does not run under MPI (backend='mpi'): every rank would run every "
            "configuration and write the same store; use backend='processes' or 'dask'"
        )
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ValueError(
            f"The 'batch_rows' parameter of search must be an int >= 1. Got {batch_rows!r}."
        )
    if not isinstance(drop, int | float) or not 0 <= drop < 1:
        raise ValueError(f"The 'drop' parameter of search must be in [0, 1). Got {drop!r}.")
    for name, flag in (("resume", resume), ("allow_pickle", allow_pickle)):
        # A string such as "false" (from a config file) is truthy: it would resume a
        # search or unpickle models the caller meant to refuse.
        if not isinstance(flag, bool | np.bool_):
            raise ValueError(f"The {name!r} parameter of search must be a bool. Got {flag!r}.")
    for name, count in (("n_iter", n_iter), ("unit_configs", unit_configs)):
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1
        ):
            raise ValueError(
                f"The {name!r} parameter of search must be an int >= 1. Got {count!r}."
            )
    configs = expand(space, n_iter=n_iter, random_state=random_state)
    source = as_source(data)
    learners = [build_learner(config.learner) for config in configs]
    for config, learner in zip(configs, learners, strict=True):
        columns = list(HashingFeaturizer(**config.featurizer).fit().columns)
        check_columns(source, columns, target, weights)
        if weights is not None:
            check_takes_weights(learner)
        # Checks the classes for this learner now, not in a worker after the store's
        # settings were written.
        Tracker(learner, batch_rows=batch_rows, classes=classes)
    scoring = check_scoring(scoring or _common_scoring(learners))
    for config, learner in zip(configs, learners, strict=True):
        # A metric a learner cannot be scored by is NaN for every batch: its
        # configurations would be stored unranked, as stream_fit refuses to do.
        applicable = applicable_scorings(learner)
        if scoring not in applicable:
            raise ValueError(
                f"scoring={scoring!r} does not apply to configuration {config.key} "
                f"({type(learner).__name__} {config.learner}), which progressive validation "
                f"scores by {', '.join(map(repr, applicable))}"
            )
    min_rows, factor = _halving(halving, batch_rows)
    if units is not None and (isinstance(units, bool) or not isinstance(units, int) or units < 1):
        raise ValueError(f"The 'units' parameter of search must be an int >= 1. Got {units!r}.")
    settings = {
        "data": source.fingerprint(),
        "target": target,
        "weights": weights,
        "batch_rows": batch_rows,
        "drop": float(drop),
        "scoring": scoring,
        "classes": _canonical_classes(classes),
        "halving": _canonical_halving(halving),
    }
    with open_store(store, create=True, max_bytes=max_store_bytes) as db:
        _check_settings(db, settings, resume)
        db.set_meta(settings)
        done = db.finished()
        todo = [c for c in configs if c.key not in done]
        summary = SearchSummary(Path(store), len(configs), len(configs) - len(todo))
        skipped: dict[int, int] = {}
        advance, bar = _progress_bar(progress, len(configs), summary.skipped)
        try:
            if todo:
                with sess:
                    _run(
                        sess, todo, source, db, summary, advance,
                        target=target, weights=weights, batch_rows=batch_rows, drop=float(drop),
                        scoring=scoring,
                        classes=classes, unit_configs=unit_configs, units=units, min_rows=min_rows,
                        factor=factor, allow_pickle=allow_pickle, skipped=skipped,
                        total=len(configs),
                    )  # fmt: skip
        finally:
            if bar is not None:
                bar.stop()
    summary.rows_skipped = sum(skipped.values())
    warn_skipped(source, summary.rows_skipped, "no configuration learned them")
    summary.seconds = time.perf_counter() - started
    return summary


def _common_scoring(learners: Sequence[Any]) -> str:
    names = {default_scoring(learner) for learner in learners}
    if len(names) > 1:
        raise ValueError(
            f"the learners of this space are scored differently by default ({sorted(names)}); "
            "pass scoring= to rank them by one metric"
        )
    return names.pop()


def _halving(halving: Mapping[str, int] | None, batch_rows: int) -> tuple[int | None, int]:
    if halving is None:
        return None, 2
    unknown = set(halving) - {"min_rows", "factor"}
    if unknown:
        raise ValueError(f"halving takes min_rows and factor; got {sorted(unknown)}")
    min_rows = halving.get("min_rows")
    factor = halving.get("factor", 2)
    if not isinstance(min_rows, int) or min_rows < batch_rows or min_rows % batch_rows:
        raise ValueError(
            f"halving's min_rows must be a positive multiple of batch_rows ({batch_rows}). "
            f"Got {min_rows!r}."
        )
    if not isinstance(factor, int) or factor < 2:
        raise ValueError(f"halving's factor must be an int >= 2. Got {factor!r}.")
    return min_rows, factor


def _run(
    sess: Any,
    todo: list[Config],
    source: Source,
    db: ResultStore,
    summary: SearchSummary,
    advance: Callable[[int], None],
    *,
    target: str,
    weights: str | None,
    batch_rows: int,
    drop: float,
    scoring: str,
    classes: Any,
    unit_configs: int | None,
    units: int | None,
    min_rows: int | None,
    factor: int,
    allow_pickle: bool,
    skipped: dict[int, int],
    total: int,
) -> None:
    by_key = {c.key: c for c in todo}
    trackers: dict[str, Tracker | None] = dict.fromkeys(by_key)
    seconds: dict[str, float] = dict.fromkeys(by_key, 0.0)
    active = list(todo)
    start, rung = 0, 0
    higher = METRICS[scoring]
    # Configurations the uninterrupted search runs in the current rung: all of the
    # space at first. A resumed search runs only those not yet recorded (the survivors
    # of the rung it was killed in), and must keep as many as that search kept, not a
    # 1/factor share of its own smaller set, which would drop survivors again.
    planned = total
    while active:
        stop = None
        if min_rows is not None and len(active) > 1:
            stop = next_checkpoint(rung, min_rows=min_rows, factor=factor)
        task = RunUnit(source, target, batch_rows, classes, start, stop, weights)
        work = [
            Unit(i, group, tuple(trackers[c.key] for c in group))
            for i, group in enumerate(
                plan_units(active, workers=sess.nworkers, unit_configs=unit_configs, units=units)
            )
        ]
        ended = stop is None
        for unit, result in run_units(sess, task, work):
            skipped.update(result.skipped)
            for key, tracker, spent in zip(result.keys, result.trackers, result.seconds):
                trackers[key] = tracker
                seconds[key] += spent
            if stop is not None and result.rows < stop - start:
                ended = True  # the data ran out before the checkpoint
            if stop is None:  # final rung: record each unit as it finishes
                db.save(
                    _record(
                        c,
                        trackers[c.key],
                        seconds[c.key],
                        scoring=scoring,
                        drop=drop,
                        status="done",
                        allow_pickle=allow_pickle,
                    )
                    for c in unit.configs
                )
                summary.fitted += len(unit.configs)
                advance(len(unit.configs))
                for c in unit.configs:
                    trackers[c.key] = None  # saved: free the learner
        if stop is None:
            return
        if ended:
            db.save(
                _record(
                    c,
                    trackers[c.key],
                    seconds[c.key],
                    scoring=scoring,
                    drop=drop,
                    status="done",
                    allow_pickle=allow_pickle,
                )
                for c in active
            )
            summary.fitted += len(active)
            advance(len(active))
            return
        scores = {}
        for c in active:
            tracker = trackers[c.key]
            assert tracker is not None
            scores[c.key] = summarize(tracker, scoring=scoring, drop=drop).score
        if any(score == score for score in scores.values()):  # else no one is dropped
            planned = max(1, math.ceil(planned / factor))
        kept, dropped = survivors(scores, factor=factor, higher_is_better=higher, keep=planned)
        db.save(
            _record(
                by_key[k],
                trackers[k],
                seconds[k],
                scoring=scoring,
                drop=drop,  # type: ignore[arg-type]
                status="dropped",
                allow_pickle=allow_pickle,
            )
            for k in dropped
        )
        summary.rungs.append({"rows": stop, "configurations": len(active), "kept": len(kept)})
        summary.dropped += len(dropped)
        advance(len(dropped))
        for k in dropped:
            trackers[k] = None  # free the learner
        active = [by_key[k] for k in kept]
        start, rung = stop, rung + 1
