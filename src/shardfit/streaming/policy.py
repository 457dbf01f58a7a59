"""Search policies as pure functions: how to split work, which configurations survive.

Kept apart from execution so they can be tested without a backend.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from shardfit.streaming.space import Config

__all__ = ["next_checkpoint", "plan_units", "survivors"]


def plan_units(
    configs: Sequence[Config],
    *,
    workers: int,
    unit_configs: int | None = None,
    units: int | None = None,
) -> list[tuple[Config, ...]]:
    """Group configurations into units of work, each run by one worker in one read.

    By default configurations sharing a featurizer go together (each batch is read and
    hashed once for all of them); groups larger than ``unit_configs`` are split, and the
    largest groups are halved until there are at least ``2 * workers`` units (so the
    workers stay busy and a killed search has finished units to keep), as long as a
    group has more than one configuration.

    With ``units``, the configurations (ordered by featurizer) are cut into that many
    units of near-equal size instead: ``units=workers`` gives each worker one unit, so
    it reads each batch exactly once, at the price of coarser resume points.

    Returns
    -------
    list of tuple of Config
        In a stable order (by featurizer, then configuration key).
    """
    ordered = sorted(configs, key=lambda c: (c.featurizer_key, c.key))
    if units is not None:
        count = max(1, min(units, len(ordered)))
        size, extra = divmod(len(ordered), count)
        bounds = [0]
        for i in range(count):
            bounds.append(bounds[-1] + size + (1 if i < extra else 0))
        return [tuple(ordered[a:b]) for a, b in itertools.pairwise(bounds)]
    groups: dict[str, list[Config]] = {}
    for config in ordered:
        groups.setdefault(config.featurizer_key, []).append(config)
    planned: list[list[Config]] = []
    for group in groups.values():
        size = len(group) if unit_configs is None else max(1, unit_configs)
        planned.extend(group[i : i + size] for i in range(0, len(group), size))
    while len(planned) < 2 * workers:
        largest = max(range(len(planned)), key=lambda i: len(planned[i]), default=None)
        if largest is None or len(planned[largest]) < 2:
            break
        unit = planned.pop(largest)
        half = math.ceil(len(unit) / 2)
        planned[largest:largest] = [unit[:half], unit[half:]]
    return [tuple(unit) for unit in planned]


def next_checkpoint(rung: int, *, min_rows: int, factor: int) -> int:
    """The rows seen at the end of halving rung ``rung`` (0-based): ``min_rows·factorʳ``."""
    return min_rows * factor**rung


def survivors(
    scores: Mapping[str, float],
    *,
    factor: int,
    higher_is_better: bool,
    keep: int | None = None,
) -> tuple[list[str], list[str]]:
    """Keep the best ``ceil(n / factor)`` configurations at a checkpoint.

    Ties are broken by key, and NaN scores rank last, so the choice is deterministic.
    When no configuration has a score yet (every batch so far had zero weight, say),
    none is dropped: a choice by key would drop configurations on no evidence.

    ``keep``: how many to keep instead (at least 1, at most all). A resumed search
    passes the count the uninterrupted search kept at this checkpoint: its running
    configurations are those survivors (or fewer), so none of them may be dropped
    again for being compared among fewer.

    Returns
    -------
    (kept, dropped) : lists of keys, best first / in ranking order
    """

    def rank(key: str) -> tuple[bool, float, str]:
        value = scores[key]
        bad = value != value  # NaN
        return (bad, -value if higher_is_better else value, key) if not bad else (True, 0.0, key)

    ordered = sorted(scores, key=rank)
    if all(scores[key] != scores[key] for key in ordered):  # all NaN
        return ordered, []
    if keep is None:
        keep = math.ceil(len(ordered) / factor)
    keep = min(max(1, keep), len(ordered))
    return ordered[:keep], ordered[keep:]
