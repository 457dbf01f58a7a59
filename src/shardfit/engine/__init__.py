"""Running tasks on every partition and merging their statistics.

- :func:`run_pass` / :func:`map_partitions`: one pass of a task over a source, merged
  along a fixed tree in partition order (bitwise the same on every backend).
- :func:`session`: keep one backend (process pool, Dask client) across passes.
- Backends by name in :data:`BACKENDS`: ``serial``, ``threads``, ``processes`` (the
  default), ``dask``, ``mpi``; :func:`resolve_backend` also takes a scheduler
  address, a ``distributed.Client`` or an mpi4py communicator.
- ``checkpoint=`` on a pass (:class:`CheckpointStore`), saved without pickle through
  ``to_state``/``from_state`` (:mod:`shardfit.engine.serialize`).
- :class:`PartitionCache`: worker-local cache of encoded partitions for iterative fits.
- Progress: :class:`ProgressEvent`, :class:`RichProgress`.
"""

from shardfit.engine.backends import BACKENDS, Backend, resolve_backend
from shardfit.engine.cache import CacheRef, PartitionCache, get_or_compute
from shardfit.engine.checkpoint import CheckpointStore, task_fingerprint
from shardfit.engine.merge import tree_merge
from shardfit.engine.progress import ProgressEvent, ProgressReporter, RichProgress
from shardfit.engine.run import map_partitions, run_pass
from shardfit.engine.serialize import Stateful, register_class
from shardfit.engine.session import Session, session

__all__ = [
    "BACKENDS",
    "Backend",
    "CacheRef",
    "CheckpointStore",
    "PartitionCache",
    "ProgressEvent",
    "ProgressReporter",
    "RichProgress",
    "Session",
    "Stateful",
    "get_or_compute",
    "map_partitions",
    "register_class",
    "resolve_backend",
    "run_pass",
    "session",
    "task_fingerprint",
    "tree_merge",
]
