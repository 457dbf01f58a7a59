"""One BLAS thread where results must not depend on the machine's thread settings.

Multi-threaded BLAS splits some reductions (``X'w`` over many rows, ``A'A``) across
threads, so the same product can round differently with 1, 2 or 16 threads. Worker
processes of the local pool, Dask workers started by a LocalCluster (which sets
``OMP_NUM_THREADS=1``) and MPI ranks rarely share the driver's thread count, so
every task, every merge and the final solve of an estimator run with one BLAS
thread: that is what makes a fit bitwise identical on every backend. Parallelism
comes from running partitions on several workers instead.

Thread pools are per process, so the limit is reference-counted: concurrent tasks
on the threads backend (or a multi-threaded Dask worker) share one limit, and the
original setting comes back when the last of them leaves.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController, threadpool_limits

__all__ = ["limit_process_to_one_thread", "single_threaded_blas"]

_lock = threading.Lock()
_depth = 0
_limiter: Any = None
# Set in a process whose BLAS is one thread for good (a ``processes`` worker): then a
# task skips the limit, which costs ~1.8 ms (threadpoolctl walks the loaded
# libraries), a tenth of a typical IRLS task.
_always_one = False
# The libraries found by threadpoolctl's walk, reused while no module was imported
# since (a BLAS or OpenMP runtime arrives with an import): finding them costs ~2.4 ms,
# setting the limit on known ones ~0.03 ms. Tasks on the serial, threads and Dask
# backends each take the limit, so a pass of 100 partitions saved ~0.24 s.
_controller: ThreadpoolController | None = None
_modules_seen = -1


def _limit_to_one() -> Any:
    """``threadpool_limits(limits=1)``, from the cached walk of loaded libraries."""
    global _controller, _modules_seen
    if _controller is None or len(sys.modules) != _modules_seen:
        _controller = ThreadpoolController()
        _modules_seen = len(sys.modules)
    return _controller.limit(limits=1)


def limit_process_to_one_thread() -> None:
    """Limit this process's BLAS (and OpenMP) pools to one thread for good."""
    global _always_one
    threadpool_limits(limits=1)
    _always_one = True


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS (and OpenMP) thread pools of this process to one thread inside."""
    global _depth, _limiter
    if _always_one:
        yield
        return
    with _lock:
        if _depth == 0:
            _limiter = _limit_to_one()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _limiter is not None:
                _limiter.restore_original_limits()
                _limiter = None
