"""Checkpoints: each partition's statistic saved as it completes, for resuming a pass.

A pass with ``checkpoint=PATH`` keeps its statistics in ``PATH/<key>/`` where the key
hashes the source's fingerprint (paths, sizes, modification times of every
partition), the task's fingerprint (what it computes: design spec, parameters) and
the pass name. A rerun of the same pass finds the statistics already there and
computes only the missing partitions; any change of data, task or pass gives a new
key, so a stale statistic is never reused.

Statistics are stored with :mod:`shardfit.engine.serialize` (JSON + ``.npz``, never
pickle), one pair of files per partition written atomically, so a pass killed at
any moment leaves only complete statistics (and perhaps a hidden ``.tmp`` file,
removed by a later run once it is ten minutes old).

Tasks should define ``fingerprint() -> str`` naming everything that changes their
result. Without it the fingerprint hashes the task's qualified name and ``repr``,
which is right for dataclasses of plain values and wrong for objects whose repr
shows a memory address (a warning says so).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shardfit.data.partition import Source
from shardfit.engine.retries import task_name
from shardfit.engine.serialize import read_state, save_object, save_state

__all__ = ["CheckpointStore", "checkpoint_key", "task_fingerprint"]

#: Age after which a checkpoint's temporary file is taken for a crashed writer's.
STALE_SECONDS = 600.0


def task_fingerprint(task: Callable[..., Any]) -> str:
    """What identifies a task's computation: ``task.fingerprint()`` if it has one.

    Otherwise a hash of its qualified name and, for non-functions, its ``repr``.
    """
    method = getattr(task, "fingerprint", None)
    if callable(method):
        return str(method())
    if hasattr(task, "__code__"):  # a plain function: its name is its identity
        return task_name(task)
    text = f"{task_name(task)}:{task!r}"
    if " at 0x" in text:
        warnings.warn(
            f"the checkpoint key of task {task_name(task)} uses a repr with a memory "
            "address, so a rerun will not find its checkpoint; give the task a "
            "fingerprint() method",
            stacklevel=3,
        )
    return text


def checkpoint_key(source: Source, task: Callable[..., Any], pass_name: str) -> str:
    """The directory name of a pass's checkpoint."""
    digest = hashlib.sha256()
    for part in (source.fingerprint(), task_fingerprint(task), pass_name):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


class CheckpointStore:
    """Saved statistics of one pass, one pair of files per partition.

    Parameters
    ----------
    root : str or Path
        The checkpoint directory the user gave (created if missing).
    source : Source
        The data of the pass.
    task : callable
        The task of the pass.
    pass_name : str
        The pass name.
    """

    def __init__(
        self, root: str | Path, *, source: Source, task: Callable[..., Any], pass_name: str
    ) -> None:
        self.key = checkpoint_key(source, task, pass_name)
        self.directory = Path(root) / self.key
        self.directory.mkdir(parents=True, exist_ok=True)
        self._keys = [partition.key for partition in source.partitions]
        self._remove_stale_temporaries()
        about = self.directory / "pass.json"
        if not about.exists():
            # For people looking at the directory; never read back.
            save_state(
                about.with_suffix(""),
                {
                    "pass": pass_name,
                    "source": source.name,
                    "task": task_name(task),
                    "npartitions": source.npartitions,
                },
            )

    def _remove_stale_temporaries(self) -> None:
        # A writer killed between creating its temporary file and renaming it leaves
        # the temporary behind. Only old ones are removed: under MPI other ranks may
        # be writing theirs right now.
        cutoff = time.time() - STALE_SECONDS
        for path in self.directory.glob(".*.tmp"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass

    def _stem(self, index: int) -> Path:
        return self.directory / f"part-{index:06d}"

    def load(self, index: int) -> Any | None:
        """The saved statistic of partition ``index``, or ``None``."""
        stem = self._stem(index)
        if not stem.with_suffix(".json").exists():
            return None
        state, meta = read_state(stem)
        if meta.get("partition") != self._keys[index]:
            return None  # another source layout hashed alike: never trust it
        return state["value"]

    def load_many(self, indices: Iterable[int]) -> dict[int, Any]:
        """The saved statistics among ``indices``, by index."""
        found = {}
        for index in indices:
            value = self.load(index)
            if value is not None:
                found[index] = value
        return found

    def save(self, index: int, statistic: Any) -> None:
        """Save partition ``index``'s statistic (atomically)."""
        save_object(self._stem(index), statistic, meta={"partition": self._keys[index]})

    def __len__(self) -> int:
        return sum(1 for _ in self.directory.glob("part-*.json"))
