"""Running a task over every partition of a source and merging the results."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shardfit.data.partition import Partition, Source
from shardfit.engine.merge import tree_merge

__all__ = ["run_pass"]

S = TypeVar("S")


def run_pass(
    task: Callable[[Partition], S],
    source: Source,
    *,
    backend: Any = None,
    workers: int | None = None,
    retries: int = 2,
    progress: bool = False,
    checkpoint: str | None = None,
    pass_name: str = "pass",
) -> S:
    """Run ``task`` on every partition of ``source`` and merge the statistics.

    Parameters
    ----------
    task : callable
        Maps a partition to a statistic; must be picklable (a module-level function,
        or a dataclass instance with ``__call__``) to run on worker processes.
    source : Source
        The partitions, in order.
    backend, workers, retries, progress, checkpoint
        Where and how to run; see the engine documentation.
    pass_name : str
        Names the pass in progress displays and checkpoint keys.

    Returns
    -------
    Statistic
        The merge of every partition's statistic along the fixed balanced tree.
    """
    results = [task(partition) for partition in source.partitions]
    return tree_merge(results)
