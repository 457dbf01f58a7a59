"""Units of search work: configurations that share one read of the stream, on one worker.

:class:`RunUnit` is the engine task: given a :class:`Unit` (configurations, and their
trackers when continuing a halving rung), it reads rows ``start:stop`` once, hashes each
chunk once and feeds every configuration's :class:`~shardfit.streaming.progressive.Tracker`.
Units are handed to a backend as the engine hands it partitions: the backend only needs
a stable ``key`` from them. Learners travel back compacted (only the touched
coordinates), which keeps the results of hashed models small.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import scipy.sparse as sp

from shardfit.data.partition import Source
from shardfit.engine.backends import Job
from shardfit.engine.retries import outcome_error
from shardfit.streaming.hashing import HashingFeaturizer
from shardfit.streaming.progressive import Tracker
from shardfit.streaming.space import Config, build_learner
from shardfit.streaming.stream import check_labels, chunk_rows_for, featurize, iter_chunks

__all__ = ["RunUnit", "Unit", "UnitResult", "expand_coef", "run_units"]


@dataclass(frozen=True)
class Unit:
    """Configurations run together on one worker (duck-typed as a partition for the engine).

    The engine needs only a stable ``key`` from what it hands to a task.
    """

    index: int
    configs: tuple[Config, ...]
    trackers: tuple[Tracker | None, ...]

    @property
    def key(self) -> str:
        return f"search unit {self.index} ({len(self.configs)} configurations)"

    def locate(self, row: int) -> str:  # pragma: no cover - part of the partition duck type
        return self.key

    def fingerprint(self) -> str:  # pragma: no cover - units are never checkpointed
        return self.key


@dataclass(frozen=True)
class UnitResult:
    """What a unit gives back: its configurations' trackers, seconds and the rows read."""

    keys: tuple[str, ...]
    trackers: tuple[Tracker, ...]
    seconds: tuple[float, ...]
    rows: int  # rows read in this run
    # Malformed lines the reader skipped, by partition position (see iter_chunks).
    skipped: dict[int, int] = field(default_factory=dict)


def compact(tracker: Tracker) -> None:
    """Shrink a scikit-learn linear model's dense coefficients before it travels."""
    est = tracker.estimator
    if hasattr(est, "sparsify") and hasattr(est, "coef_") and not sp.issparse(est.coef_):
        est.sparsify()


def expand_coef(tracker: Tracker) -> None:
    """Undo :func:`compact` before learning or saving."""
    est = tracker.estimator
    if hasattr(est, "densify") and sp.issparse(getattr(est, "coef_", None)):
        est.densify()


@dataclass(frozen=True)
class RunUnit:
    """The task: stream rows ``start:stop`` through every configuration of a unit."""

    source: Source
    target: str
    batch_rows: int
    classes: Any
    start: int
    stop: int | None
    weights: str | None = None  # the sample-weight column

    def __call__(self, unit: Unit) -> UnitResult:
        # One featurizer per distinct featurizer configuration: each chunk is hashed once
        # for all the configurations that share it.
        featurizers: dict[str, HashingFeaturizer] = {}
        for config in unit.configs:
            if config.featurizer_key not in featurizers:
                featurizers[config.featurizer_key] = HashingFeaturizer(**config.featurizer)
        columns = list(dict.fromkeys(c for f in featurizers.values() for c in f.columns))
        trackers = []
        for config, tracker in zip(unit.configs, unit.trackers):
            if tracker is None:
                tracker = Tracker(
                    build_learner(config.learner), batch_rows=self.batch_rows, classes=self.classes
                )
            expand_coef(tracker)
            trackers.append(tracker)
        seconds = [0.0] * len(trackers)
        users = {key: [i for i, c in enumerate(unit.configs) if c.featurizer_key == key]
                 for key in featurizers}  # fmt: skip
        rows = 0
        skipped: dict[int, int] = {}
        chunks = iter_chunks(
            self.source,
            columns,
            self.target,
            chunk_rows=chunk_rows_for(self.batch_rows),
            start=self.start,
            stop=self.stop,
            skipped=skipped,
            weights=self.weights,
        )
        for chunk in chunks:
            # The classifiers share the classes: check the labels once per chunk.
            classifier = next((t for t in trackers if t.classifier), None)
            if classifier is not None:
                check_labels(classifier, chunk, self.target)
            for key, featurizer in featurizers.items():
                began = time.perf_counter()
                X = featurize(featurizer, chunk)
                share = (time.perf_counter() - began) / len(users[key])
                for i in users[key]:
                    began = time.perf_counter()
                    trackers[i].feed(X, chunk.y, chunk.w)
                    seconds[i] += share + time.perf_counter() - began
            rows += chunk.table.num_rows
        for tracker in trackers:
            compact(tracker)
        keys = tuple(c.key for c in unit.configs)
        return UnitResult(keys, tuple(trackers), tuple(seconds), rows, skipped)


def run_units(sess: Any, task: RunUnit, units: list[Unit]) -> Iterator[tuple[Unit, UnitResult]]:
    """Yield each unit's result as it finishes (raising the first failure)."""
    # No retries: on the serial and threads backends a unit's trackers are the driver's
    # own objects, so a second attempt would learn some batches twice.
    job = Job(
        task=task,
        partitions=tuple(units),  # type: ignore[arg-type]
        indices=tuple(range(len(units))),
        retries=0,
        name="search",
    )
    outcomes = sess.backend.run(job)
    try:
        for outcome in outcomes:
            if not outcome.ok:
                raise outcome_error(outcome, key=units[outcome.index].key, task=task)
            yield units[outcome.index], outcome.value
    finally:
        outcomes.close()
