"""The main loop of a ``processes`` backend worker (runs in the spawned child).

Protocol on the worker's own duplex pipe, one request at a time:

- the worker sends ``("ready", pid)`` once started;
- ``("run", task_blob | None, index, partition_blob, retries, measure)`` →
  ``("done", outcome)``, or ``("raise", error)`` for a ``KeyboardInterrupt`` or
  ``SystemExit`` raised by the task; ``task_blob`` is ``None`` when the worker already
  holds the pass's task (the driver keeps track), so a task is shipped once per
  worker and pass;
- ``("call", fn, args)`` → ``("called", None)`` or ``("called", traceback_text)``;
- ``("stop",)`` or a closed pipe (the driver died) ends the loop.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["worker_main"]

_BLAS_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _limit_threads(threads: int) -> None:
    # Workers share the cores: without a limit each BLAS call would start one
    # thread per core in every worker and oversubscribe the machine.
    for name in _BLAS_VARIABLES:
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return
    if threads == 1:
        from shardfit.engine.blas import limit_process_to_one_thread

        limit_process_to_one_thread()  # and tasks need not limit it again
    else:
        threadpool_limits(threads)


def _reply(conn: Connection, message: tuple[Any, ...]) -> bool:
    """Send ``message``; False when the driver is gone (then the worker just ends)."""
    try:
        conn.send(message)
    except OSError:
        return False
    return True


def worker_main(conn: Connection, threads: int | None) -> None:
    """Serve requests from the driver on ``conn`` until told to stop.

    Parameters
    ----------
    conn : multiprocessing.connection.Connection
        This worker's end of its pipe to the driver.
    threads : int or None
        BLAS/OpenMP threads for this worker; unchanged when ``None``.
    """
    # Ctrl-C reaches the whole process group; the driver alone decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        _limit_threads(threads)
    from shardfit.engine.retries import Outcome, portable, run_task

    if not _reply(conn, ("ready", os.getpid())):
        return
    task: Any = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        op = message[0]
        if op == "stop":
            return
        if op == "call":
            try:
                message[1](*message[2])
                answer = None
            except Exception:
                answer = traceback.format_exc()
            if not _reply(conn, ("called", answer)):
                return
            continue
        _, blob, index, partition_blob, retries, measure = message
        started = time.perf_counter()
        try:
            if blob is not None:
                task = None  # never run a previous pass's task by mistake
                task = pickle.loads(blob)  # safe: the parent's own pipe to its worker
            partition = pickle.loads(partition_blob)  # safe: the parent's own pipe
        except Exception as error:
            # Nothing ran: a task or partition this process cannot import.
            failed = Outcome(index, error=portable(error), traceback=traceback.format_exc())
            if not _reply(conn, ("done", failed)):
                return
            continue
        # Unpickling the task imports its modules: a second or more in a fresh worker.
        loading = time.perf_counter() - started
        try:
            outcome = run_task(task, partition, index, retries, remote=True, measure=measure)
        except BaseException as error:  # KeyboardInterrupt / SystemExit from the task
            if not _reply(conn, ("raise", portable(error))):
                return
            continue
        if outcome.usage is not None:  # a profiled pass: the profile shows it as "load"
            outcome.usage.phases["load"] = loading
        try:
            conn.send(("done", outcome))
        except OSError:
            return  # the driver is gone
        except Exception as error:
            # The statistic does not pickle (nothing was written): say so instead.
            unsent = Outcome(
                index,
                error=portable(error),
                traceback=traceback.format_exc(),
                attempts=outcome.attempts,
            )
            if not _reply(conn, ("done", unsent)):
                return
