"""A worker-local cache of encoded partitions, for estimators that make many passes.

An IRLS or gradient fit reads and encodes every partition on every pass; the encoded
design of a partition does not change between passes. The estimator opens a
:class:`PartitionCache` on its session and puts its picklable :attr:`~PartitionCache.ref`
in the task; the task asks ``ref.get_or_compute(partition.key, encode)``::

    with session(backend) as sess, PartitionCache(sess) as cache:
        for step in range(max_iter):
            gram = run_pass(IrlsTask(beta, cache=cache.ref), source, backend=sess)

Values are dicts of NumPy arrays. Each worker process keeps them in memory up to
``max_bytes`` (default: 64 MiB, or a quarter of the machine's memory divided by the
processes that hold a cache if that is less; the threads backend shares one cache).
Entries that do not fit go to worker-local disk, one file per entry (a JSON header
naming each array's dtype, shape and offset, then the arrays' bytes, 64-byte aligned),
and come back memory-mapped read-only, mapped anew for each task: they live in the OS
page cache, and a worker's resident memory holds only its in-memory entries and the
partitions its task is using, so peak RSS stays flat in the number of rows. One file
and one mapping per entry, not one ``.npy`` file per array: a GLM partition holds ten
arrays, and opening and mapping ten files cost 2 ms a partition and pass (10% of an
IRLS pass at 5M rows of the ``glm_logit`` benchmark, where 14 of 20 partitions spill).
Nothing is evicted: first come, first kept in memory. Arrays handed out are
read-only, so a task cannot corrupt the cache. An entry that cannot be written (a full
disk) is not kept: later passes read and encode that partition again.

Cleanup is unconditional: leaving the ``with`` block (normally, on an error, on
``KeyboardInterrupt``) drops the entries in every worker (a broadcast through the
backend: the process pool's pipes, ``Client.run`` on Dask, each rank under MPI) and
deletes the cache's own directory ``shardfit-cache-<id>`` in the workers' temporary
directory, which holds every spill file; on local backends the driver deletes it as
well, which also covers workers killed before they could clean up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import mmap
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from shardfit._measure import count, phase

__all__ = ["CacheRef", "PartitionCache", "cache_info", "drop_cache", "get_or_compute"]

#: Share of the machine's memory all workers' in-memory caches may use together...
DEFAULT_MEMORY_FRACTION = 0.25
#: ...and the most one process keeps in memory by default: the rest is spilled, so
#: memory does not grow with the data (the page cache serves spilled entries).
DEFAULT_MAX_BYTES = 64 * 2**20

Encoded = dict[str, np.ndarray]


def total_memory() -> int:
    """Bytes of physical memory on this machine."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@dataclass(frozen=True)
class CacheRef:
    """What a task needs to use a partition cache on a worker (small, picklable).

    Attributes
    ----------
    cache_id : str
        Names the cache; unique per :class:`PartitionCache`.
    max_bytes : int
        In-memory bound per worker process.
    spill_root : str or None
        Parent of the spill directory; the worker's temporary directory when ``None``.
    """

    cache_id: str
    max_bytes: int
    spill_root: str | None = None

    @property
    def spill_dir(self) -> Path:
        """This cache's directory for spilled entries (on the worker)."""
        root = self.spill_root or tempfile.gettempdir()
        return Path(root) / f"shardfit-cache-{self.cache_id}"

    def get_or_compute(self, key: str, compute: Callable[[], Encoded]) -> Encoded:
        """See :func:`get_or_compute`."""
        return get_or_compute(self, key, compute)


@dataclass
class _Store:
    """One cache's entries in one process.

    ``lock`` is held while an entry is written to disk, and by :func:`drop_cache`,
    so a drop waits for a spill in progress and no spill starts after a drop
    (a task still running when the cache is closed, on Dask or in a thread).
    """

    memory: dict[str, Encoded] = field(default_factory=dict)
    # Spilled entries by key: their file. Each get maps it anew, and the mapping ends
    # when the task drops the arrays, so a worker's resident memory holds the
    # in-memory entries plus the partitions in use, not every page read.
    spilled: dict[str, Path] = field(default_factory=dict)
    nbytes: int = 0
    hits: int = 0
    misses: int = 0
    unspilled: int = 0  # entries that could not be written (no room on disk)
    dropped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_lock = threading.Lock()  # guards _stores
_stores: dict[str, _Store] = {}


def _entry_path(ref: CacheRef, key: str) -> Path:
    # Partition keys contain '/', ':' and '@'; a hash makes a safe file name.
    return ref.spill_dir / (hashlib.sha256(key.encode()).hexdigest()[:40] + ".entry")


#: Spill files start with this, then the header's length (8 bytes, little endian).
_MAGIC = b"SHARDFIT-CACHE-1"
_ALIGN = 64


def _frozen(value: Encoded) -> Encoded:
    out = {}
    for name, array in value.items():
        array = np.asarray(array)
        if array.flags.writeable:
            array = array.view()
            array.flags.writeable = False
        out[name] = array
    return out


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def _load_spilled(path: Path) -> Encoded | None:
    """The entry in ``path``, its arrays read-only views of one new mapping (unmapped
    when the last of them is dropped); ``None`` when there is no such file."""
    try:
        with open(path, "rb") as file:
            head = file.read(len(_MAGIC) + 8)
            if len(head) < len(_MAGIC) + 8 or not head.startswith(_MAGIC):
                raise ValueError(f"{path} is not a shardfit cache entry")
            length = int.from_bytes(head[len(_MAGIC) :], "little")
            layout = json.loads(file.read(length))
            mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    except (FileNotFoundError, NotADirectoryError):
        return None
    start = _aligned(len(_MAGIC) + 8 + length)
    out: Encoded = {}
    for item in layout:
        dtype, shape = np.dtype(item["dtype"]), tuple(item["shape"])
        order = "F" if item["fortran"] else "C"
        if math.prod(shape) == 0:
            array = np.empty(shape, dtype=dtype, order=order)
            array.flags.writeable = False
        else:  # read-only: the mapping is
            array = np.ndarray(
                shape, dtype=dtype, buffer=mapping, offset=start + item["offset"], order=order
            )
        out[item["name"]] = array
    return out


def _spill(ref: CacheRef, key: str, value: Encoded) -> Path:
    """Write ``value`` to its entry file (see the module notes) and return the path."""
    final = _entry_path(ref, key)
    ref.spill_dir.mkdir(parents=True, exist_ok=True)
    arrays, layout, offset = [], [], 0
    for name, array in value.items():
        if array.dtype.hasobject:
            raise TypeError(f"a partition cache holds no Python objects (array {name!r})")
        fortran = bool(array.flags.f_contiguous and not array.flags.c_contiguous)
        if not (array.flags.c_contiguous or fortran):
            array = np.ascontiguousarray(array)
        offset = _aligned(offset)
        layout.append(
            {
                "name": name,
                "dtype": array.dtype.str,
                "shape": list(array.shape),
                "fortran": fortran,
                "offset": offset,  # from the start of the data, after the header
            }
        )
        arrays.append(array.T if fortran else array)  # C order: its bytes as they lie
        offset += array.nbytes
    header = json.dumps(layout).encode()
    prefix = _MAGIC + len(header).to_bytes(8, "little") + header
    start = _aligned(len(prefix))
    # Write a private file and rename it into place: another worker (same machine)
    # may be spilling the same partition, and readers must never see half of one.
    descriptor, staging = tempfile.mkstemp(prefix=".staging-", dir=ref.spill_dir)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(prefix)
            position = len(prefix)
            for item, array in zip(layout, arrays):
                target = start + item["offset"]
                file.write(bytes(target - position))
                array.tofile(file)
                position = target + array.nbytes
        os.replace(staging, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise
    return final


def get_or_compute(cache: CacheRef, key: str, compute: Callable[[], Encoded]) -> Encoded:
    """Return the cached value for partition ``key``, computing it on a miss.

    Parameters
    ----------
    cache : CacheRef
        The cache (from :attr:`PartitionCache.ref`, carried by the task).
    key : str
        The partition's key.
    compute : callable
        Returns the value, a dict of NumPy arrays (e.g. an encoded design).

    Returns
    -------
    dict of str to numpy.ndarray
        Read-only arrays, in memory or memory-mapped from the spill directory.
    """
    with _lock:
        store = _stores.setdefault(cache.cache_id, _Store())
    with store.lock, phase("cache_load"):
        found = store.memory.get(key)
        if found is None and not store.dropped:
            # Ours, or spilled by another worker on this machine.
            path = store.spilled.get(key, _entry_path(cache, key))
            found = _load_spilled(path)
            if found is not None:
                store.spilled[key] = path
        if found is not None:
            store.hits += 1
            count("cache_hit")  # for a profiled task (shardfit.profile)
            return found
    count("cache_miss")
    value = compute()
    if not isinstance(value, dict) or not all(
        isinstance(array, np.ndarray) for array in value.values()
    ):
        raise TypeError("a partition cache holds dicts of NumPy arrays")
    size = sum(array.nbytes for array in value.values())
    with store.lock:
        store.misses += 1
        if store.dropped:  # closed while this task ran: use the value, keep nothing
            return value
        if store.nbytes + size <= cache.max_bytes:
            store.nbytes += size
            store.memory[key] = _frozen(value)
            return store.memory[key]
        try:
            with phase("cache_spill"):
                store.spilled[key] = _spill(cache, key, value)
            count("cache_spill")
        except OSError:
            # No room (or no place) for it on the worker's disk: this task uses the
            # value, and a later pass reads and encodes the partition again. Slower,
            # never wrong; counted in cache_info.
            store.unspilled += 1
        return _frozen(value)  # this task uses the computed arrays; later ones map


def drop_cache(cache_id: str, spill_root: str | None = None) -> None:
    """Forget cache ``cache_id`` in this process and delete its spill directory.

    The id stays marked as dropped, so a task still running with it computes
    without storing anything.
    """
    with _lock:
        store = _stores.setdefault(cache_id, _Store())
    with store.lock:
        store.dropped = True
        store.memory.clear()
        store.spilled.clear()
        store.nbytes = 0
        shutil.rmtree(CacheRef(cache_id, 0, spill_root).spill_dir, ignore_errors=True)


def cache_info(cache_id: str) -> dict[str, int]:
    """Counts for cache ``cache_id`` in this process (for tests and reports)."""
    with _lock:
        store = _stores.get(cache_id, _Store())
    with store.lock:
        return {
            "memory": len(store.memory),
            "spilled": len(store.spilled),
            "nbytes": store.nbytes,
            "hits": store.hits,
            "misses": store.misses,
            "unspilled": store.unspilled,
        }


class PartitionCache:
    """A partition cache for the passes run on one session, dropped on exit.

    Parameters
    ----------
    session : Session
        The open session the passes run on (a fresh pool per pass would lose the
        cached values, so a cache needs a session).
    max_bytes : int or None
        In-memory bound per worker process (the rest is spilled to local files); see
        the module notes for the default.
    """

    def __init__(self, session: Any, *, max_bytes: int | None = None) -> None:
        from shardfit.engine.session import Session

        if not isinstance(session, Session):
            raise TypeError("PartitionCache needs a shardfit session (engine.session(...))")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"The 'max_bytes' parameter must be >= 0. Got {max_bytes!r}.")
        self._session = session
        self._max_bytes = max_bytes
        self._ref: CacheRef | None = None

    @property
    def ref(self) -> CacheRef:
        """The picklable handle to give tasks (only inside the ``with`` block)."""
        if self._ref is None:
            raise RuntimeError("use the PartitionCache in a `with` block before taking its ref")
        return self._ref

    def __enter__(self) -> Self:
        backend = self._session.open().backend
        # The passes that read this cache go back to the workers holding each
        # partition; the first one places them freely (see Backend.pin_partitions).
        backend.pin_partitions(True)
        max_bytes = self._max_bytes
        if max_bytes is None:
            share = int(DEFAULT_MEMORY_FRACTION * total_memory() / backend.cache_processes)
            max_bytes = min(share, DEFAULT_MAX_BYTES)
        # Under MPI every rank makes this object: they must agree on the id.
        cache_id = backend.share(uuid.uuid4().hex)
        spill_root = tempfile.gettempdir() if backend.shares_filesystem else None
        self._ref = CacheRef(cache_id, max_bytes, spill_root)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop the cache everywhere and delete its files (idempotent)."""
        ref, self._ref = self._ref, None
        if ref is None:
            return
        self._session.backend.pin_partitions(False)
        try:
            if self._session.backend.is_open:
                self._session.backend.broadcast(drop_cache, ref.cache_id, ref.spill_root)
        finally:
            drop_cache(ref.cache_id, ref.spill_root)
