"""Engine benchmarks: per-partition overhead per backend, and Gram-pass speed-up.

Run ``python benchmarks/engine_overhead.py`` (add ``--quick`` for a smoke run).

1. Overhead: a warm session (pool or cluster already started, startup reported
   apart) runs a trivial task on many partitions; overhead is the pass's wall time
   divided by the number of partitions. Goals: under 5 ms on processes, under 20 ms
   on Dask. MPI is measured by re-running this script under ``mpiexec -n 2``.
2. Speed-up: a Gram pass (16 partitions of 250,000 x 50 float64 rows generated on
   the worker) with 1 and then 2 worker processes, each with one BLAS thread.
   Goal: 1.7x or better on 2 cores. The same task is also timed on a bare
   ``multiprocessing`` pool: its speed-up is what the machine allows at that moment
   (on a shared machine, much less than 2x), so the ratio of the two speed-ups is
   the engine's own share.

Shaped like scikit-learn's asv benchmarks: ``make_data`` and ``make_task`` build the
inputs, the ``time_*`` functions measure.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from shardfit.data.partition import Source
from shardfit.engine import run_pass, session, tree_merge
from shardfit.engine._testing import GramTask, TrivialTask, seeded_source


def make_data(npartitions: int, *, nrows: int, ncols: int) -> Source:
    """Partitions described by a seed; rows are generated where the task runs."""
    return seeded_source(npartitions, nrows=nrows, ncols=ncols, seed=1)


def make_task(kind: str) -> Any:
    """The task: "trivial" (engine overhead only) or "gram" (real work)."""
    return TrivialTask() if kind == "trivial" else GramTask()


def time_overhead(backend: str, workers: int, npartitions: int, repeats: int) -> dict[str, Any]:
    """Startup seconds and best per-partition milliseconds of a trivial pass."""
    source = make_data(npartitions, nrows=1, ncols=1)
    task = make_task("trivial")
    start = time.perf_counter()
    with session(backend, workers=workers) as sess:
        run_pass(task, source, backend=sess, pass_name="warm-up")  # workers import here
        startup = time.perf_counter() - start
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run_pass(task, source, backend=sess)
            best = min(best, time.perf_counter() - start)
    return {
        "backend": backend,
        "workers": workers,
        "partitions": npartitions,
        "startup_s": round(startup, 3),
        "per_partition_ms": round(1000 * best / npartitions, 3),
    }


def time_gram(workers: int, npartitions: int, nrows: int, repeats: int) -> float:
    """Best wall seconds of a Gram pass on the processes backend."""
    source = make_data(npartitions, nrows=nrows, ncols=50)
    with session("processes", workers=workers) as sess:
        run_pass(make_task("trivial"), source, backend=sess)  # start the workers
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run_pass(make_task("gram"), source, backend=sess)
            best = min(best, time.perf_counter() - start)
    return best


def _one_blas_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def time_gram_bare(workers: int, npartitions: int, nrows: int, repeats: int) -> float:
    """Best wall seconds of the same Gram work on a bare spawn ``multiprocessing.Pool``."""
    source = make_data(npartitions, nrows=nrows, ncols=50)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_one_blas_thread) as pool:
        pool.map(make_task("trivial"), source.partitions, chunksize=1)  # start the workers
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            tree_merge(pool.map(make_task("gram"), source.partitions, chunksize=1))
            best = min(best, time.perf_counter() - start)
    return best


def time_mpi(ranks: int, npartitions: int, repeats: int) -> dict[str, Any] | None:
    """Run the overhead measurement under ``mpiexec -n ranks``; rank 0 reports."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        return None
    command = [str(mpiexec), "-n", str(ranks), sys.executable, __file__, "--mpi-rank"]
    command += ["--partitions", str(npartitions), "--repeats", str(repeats)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mpi_rank(npartitions: int, repeats: int) -> None:
    from mpi4py import MPI

    figures = time_overhead("mpi", MPI.COMM_WORLD.Get_size(), npartitions, repeats)
    if MPI.COMM_WORLD.Get_rank() == 0:
        print(json.dumps(figures))


def main() -> None:
    """Run every benchmark and print a table and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--mpi-rank", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--partitions", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.mpi_rank:
        _mpi_rank(args.partitions, args.repeats)
        return
    npartitions, repeats = (100, 1) if args.quick else (args.partitions, args.repeats)
    rows = []
    for backend in ("serial", "threads", "processes", "dask"):
        workers = 1 if backend == "serial" else 2
        rows.append(time_overhead(backend, workers, npartitions, repeats))
    mpi = time_mpi(2, npartitions, repeats)
    if mpi is not None:
        rows.append(mpi)
    print(f"{'backend':<10} {'workers':>7} {'startup s':>10} {'ms/partition':>13}")
    for row in rows:
        print(
            f"{row['backend']:<10} {row['workers']:>7} {row['startup_s']:>10.3f} "
            f"{row['per_partition_ms']:>13.3f}"
        )
    gram_rows = 20_000 if args.quick else 250_000
    one, two = time_gram(1, 16, gram_rows, repeats), time_gram(2, 16, gram_rows, repeats)
    bare_one = time_gram_bare(1, 16, gram_rows, repeats)
    bare_two = time_gram_bare(2, 16, gram_rows, repeats)
    print(f"Gram pass, 16 x {gram_rows:,} x 50 float64:")
    print(f"  processes backend: 1 worker {one:.2f} s, 2 workers {two:.2f} s, {one / two:.2f}x")
    print(
        f"  bare mp.Pool:      1 worker {bare_one:.2f} s, 2 workers {bare_two:.2f} s, "
        f"{bare_one / bare_two:.2f}x"
    )
    print(f"  load average {os.getloadavg()[0]:.2f} on {len(os.sched_getaffinity(0))} cores")
    gram = {"one_s": one, "two_s": two, "speedup": one / two}
    gram |= {"bare_one_s": bare_one, "bare_two_s": bare_two, "bare_speedup": bare_one / bare_two}
    summary = {"overhead": rows, "gram": gram}
    print(json.dumps({"cores": len(os.sched_getaffinity(0)), **summary}))


if __name__ == "__main__":
    main()
