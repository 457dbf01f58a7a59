"""Checkpoints: each partition's statistic saved as it completes, for resuming a pass.

A pass with ``checkpoint=PATH`` keeps its statistics in ``PATH/<key>/`` where the key
hashes the source's fingerprint (paths, sizes, modification times of every
partition), the task's fingerprint (what it computes: design spec, parameters) and
the pass name, and the shardfit version that wrote it. A rerun of the same pass finds
the statistics already there and computes only the missing partitions; any change
of data, task, pass or shardfit version gives a new key, so a stale statistic is
never reused (``pass.json`` in the directory records what the key was made of).

A checkpoint directory that cannot be created or used (a file in its place, a full
disk, no permission) is reported in a :class:`CheckpointWarning` and the pass goes
on without it, as it does when a single statistic cannot be saved.

Statistics are stored with :mod:`shardfit.engine.serialize` (JSON + ``.npz``, never
pickle), one pair of files per partition written atomically, so a pass killed at
any moment leaves only complete statistics (and perhaps a hidden ``.tmp`` file,
removed by a later run once it is ten minutes old).

Tasks should define ``fingerprint() -> str`` naming everything that changes their
result. Without it the fingerprint of a function covers its name, code, defaults and
closure; of a dataclass, its name, ``repr`` and a digest of its fields (arrays by
their bytes); of other objects, their name and ``repr``, which is wrong for objects
whose repr shows a memory address (a warning says so).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import time
import types
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from shardfit.data.partition import Source
from shardfit.engine.retries import task_name
from shardfit.engine.serialize import CorruptStateError, read_state, save_object, save_state

__all__ = ["CheckpointStore", "CheckpointWarning", "checkpoint_key", "task_fingerprint"]

#: Age after which a checkpoint's temporary file is taken for a crashed writer's.
STALE_SECONDS = 600.0

#: The layout of a checkpoint directory; part of every key (with the shardfit version).
CHECKPOINT_FORMAT = "shardfit-checkpoint/2"


class CheckpointWarning(UserWarning):
    """A checkpoint file that could not be used; its partition is computed again."""


def task_fingerprint(task: Callable[..., Any]) -> str:
    """What identifies a task's computation: ``task.fingerprint()`` if it has one.

    Otherwise: for a function, a digest of its code, default arguments and the
    values its closure captured, then its qualified name (two lambdas of a module,
    or two closures over different parameters, share a name but not a result); for
    ``functools.partial``, its function's fingerprint and arguments; for other
    objects, their qualified name and ``repr``, plus a digest of their fields where
    ``repr`` hides digits (NumPy arrays print 8 significant digits, long ones only
    their ends). Values reached through a function's globals are not included.
    """
    method = getattr(task, "fingerprint", None)
    if callable(method):
        return str(method())
    if isinstance(task, types.FunctionType):  # a plain function: its name and its code
        described = _describe(task)
        text = f"{_digest(described)}:{task_name(task)}"
    elif isinstance(task, functools.partial):
        described = _describe(task)
        text = f"functools.partial({task_name(task.func)}):{_digest(described)}"
    else:
        described = text = f"{task_name(task)}:{task!r}"
        if dataclasses.is_dataclass(task):
            text += f":{_digest(_describe(task))}"
    if " at 0x" in described:
        warnings.warn(
            f"the checkpoint key of task {task_name(task)} uses a repr with a memory "
            "address, so a rerun will not find its checkpoint; give the task a "
            "fingerprint() method",
            stacklevel=3,
        )
    return text


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _describe(value: Any, seen: frozenset[int] = frozenset()) -> str:
    """Text that changes whenever ``value`` does, where ``repr`` may not (arrays,
    functions, closures); the same in every process and run."""
    if id(value) in seen:  # a recursive closure or a self-referencing container
        return "<cycle>"
    inner = seen | {id(value)}
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        data = np.ascontiguousarray(value).tobytes()
        return f"ndarray[{value.dtype.str}{value.shape}]:{hashlib.sha256(data).hexdigest()}"
    if isinstance(value, types.FunctionType):
        return _describe_function(value, inner)
    if isinstance(value, functools.partial):
        parts = (value.func, value.args, value.keywords)
        return "partial(" + ",".join(_describe(part, inner) for part in parts) + ")"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__}[" + ",".join(_describe(v, inner) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{key!r}:{_describe(item, inner)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, set | frozenset):  # printed in an order that varies by process
        return f"{type(value).__name__}(" + ",".join(sorted(map(repr, value))) + ")"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (
            f"{field.name}={_describe(getattr(value, field.name), inner)}"
            for field in dataclasses.fields(value)
        )
        return f"{task_name(type(value))}(" + ",".join(fields) + ")"
    return repr(value)


def _describe_code(code: types.CodeType) -> str:
    return f"{code.co_code.hex()}|{code.co_names}|" + ",".join(map(_describe_const, code.co_consts))


def _describe_const(const: Any) -> str:
    # Nested functions' code objects print with an address, and frozensets (``x in
    # {"a", "b"}``) in an order that changes with the hash seed of each process.
    if isinstance(const, types.CodeType):
        return _describe_code(const)
    if isinstance(const, tuple):
        return "(" + ",".join(map(_describe_const, const)) + ")"
    if isinstance(const, frozenset):
        return "frozenset(" + ",".join(sorted(map(_describe_const, const))) + ")"
    return repr(const)


def _describe_function(function: types.FunctionType, seen: frozenset[int]) -> str:
    cells = []
    for cell in function.__closure__ or ():
        try:
            cells.append(_describe(cell.cell_contents, seen))
        except ValueError:  # an empty cell (a name assigned after the function)
            cells.append("<empty>")
    parts = (
        task_name(function),
        _describe_code(function.__code__),
        _describe(function.__defaults__, seen),
        _describe(function.__kwdefaults__, seen),
        ",".join(cells),
    )
    return "function(" + ";".join(parts) + ")"


def _writer_version() -> str:
    """The shardfit version whose statistics a checkpoint holds.

    Part of the key: a statistic's meaning (what a row count includes, how a column is
    encoded) may change between releases while its saved layout does not, and a
    resumed fit must not merge statistics of two releases.
    """
    import shardfit  # here, not at the top: shardfit imports this module

    return f"{CHECKPOINT_FORMAT};shardfit {shardfit.__version__}"


def _key_parts(source: Source, task: Callable[..., Any], pass_name: str) -> dict[str, str]:
    return {
        "source": source.fingerprint(),
        "task": task_fingerprint(task),
        "pass": pass_name,
        "version": _writer_version(),
    }


def _key_of(parts: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for part in parts.values():
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


def checkpoint_key(source: Source, task: Callable[..., Any], pass_name: str) -> str:
    """The directory name of a pass's checkpoint.

    A digest of the source's fingerprint, the task's fingerprint, the pass name and
    the shardfit version, so that a change of any of them finds a new directory.
    """
    return _key_of(_key_parts(source, task, pass_name))


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
        parts = _key_parts(source, task, pass_name)
        self.key = _key_of(parts)
        self.directory = Path(root) / self.key
        self._keys = [partition.key for partition in source.partitions]
        #: False when the directory could not be created: nothing is loaded or saved.
        self.usable = True
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            # A path that is a file, a full disk, a read-only mount: the pass does not
            # need its checkpoint (see save), and an error here would lose the passes
            # a fit has already made (a later pass's directory is created mid-fit).
            self.usable = False
            warnings.warn(
                f"cannot use checkpoint directory {Path(root)} for pass {pass_name!r} "
                f"({error}); the pass goes on without a checkpoint, and a rerun "
                "computes it again",
                CheckpointWarning,
                stacklevel=3,
            )
            return
        self._remove_stale_temporaries()
        about = self.directory / "pass.json"
        if not about.exists():
            # For people looking at the directory (which of two runs differs in what);
            # never read back. A full disk is reported by the first partition's save
            # (see save), not here.
            with contextlib.suppress(OSError):
                save_state(
                    about.with_suffix(""),
                    {
                        "pass": pass_name,
                        "source": source.name,
                        "task": task_name(task),
                        "npartitions": source.npartitions,
                        "key_parts": parts,
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
        """The saved statistic of partition ``index``, or ``None``.

        A damaged file (truncated by a full disk or a copy, edited, or naming an
        untrusted class) is reported in a warning naming it and taken as missing:
        the partition is computed again and its files replaced. Raising instead
        would stop a resumable job for a statistic it can recompute, and under MPI
        would leave the other ranks waiting in the next collective.
        """
        stem = self._stem(index)
        if not self.usable or not stem.with_suffix(".json").exists():
            return None
        try:
            state, meta = read_state(stem)
            value = state["value"]
        except (CorruptStateError, KeyError, TypeError) as error:
            warnings.warn(
                f"checkpoint of partition {self._keys[index]} cannot be read, so the "
                f"partition is computed again and its files replaced: {error}",
                CheckpointWarning,
                stacklevel=2,
            )
            return None
        if meta.get("partition") != self._keys[index]:
            return None  # another source layout hashed alike: never trust it
        return value

    def load_many(self, indices: Iterable[int]) -> dict[int, Any]:
        """The saved statistics among ``indices``, by index."""
        found = {}
        for index in indices:
            value = self.load(index)
            if value is not None:
                found[index] = value
        return found

    def save(self, index: int, statistic: Any) -> None:
        """Save partition ``index``'s statistic (atomically).

        A file system that refuses the write (full, over quota, gone read-only) gets
        a warning, and the pass goes on: its result does not need the checkpoint,
        which only spares a rerun this partition. A statistic that cannot be saved
        at all (no ``to_state``) raises ``TypeError``.
        """
        if not self.usable:  # already reported once, when the directory failed
            return
        try:
            save_object(self._stem(index), statistic, meta={"partition": self._keys[index]})
        except OSError as error:
            warnings.warn(
                f"could not checkpoint partition {self._keys[index]} in {self.directory} "
                f"({error}); the pass goes on, and a rerun computes this partition again",
                CheckpointWarning,
                stacklevel=2,
            )

    def __len__(self) -> int:
        if not self.usable:
            return 0
        return sum(1 for _ in self.directory.glob("part-*.json"))
