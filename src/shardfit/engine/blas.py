"""One BLAS thread where results must not depend on the machine's thread settings.

Multi-threaded BLAS splits some reductions (``X'y`` with many rows, ``A'A``) across
threads, so the same product can round differently with 1, 2 or 16 threads. Worker
processes of the local pool, Dask workers started by a LocalCluster (which sets
``OMP_NUM_THREADS=1``) and MPI ranks rarely share the driver's thread count, so
partition statistics, merges and the final solve run with one BLAS thread: that is
what makes a fit bitwise identical on every backend. Parallelism comes from running
partitions on several workers instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits

__all__ = ["single_threaded_blas"]


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS (and OpenMP) thread pools to one thread inside the block."""
    with threadpool_limits(limits=1):
        yield
