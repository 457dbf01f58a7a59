"""single_threaded_blas: one thread in every BLAS pool inside, the original counts
after, including pools of libraries loaded after its first use (it reuses
threadpoolctl's walk of the loaded libraries until a module is imported).

Each check runs in a fresh interpreter that loads only NumPy's (and SciPy's) OpenBLAS,
and reads the counts in the thread that set them: with an OpenMP runtime loaded too
(scikit-learn loads libgomp), or from another thread, threadpoolctl's reading of
OpenBLAS's count is not the count in force (measured: a limit set in one thread slows
every thread's products, yet another thread reads the old count).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any


def _run(body: str) -> Any:
    script = textwrap.dedent(
        """
        import json
        import numpy
        from threadpoolctl import threadpool_info, threadpool_limits
        from shardfit.engine.blas import single_threaded_blas

        def threads():
            return sorted({i["num_threads"] for i in threadpool_info()})

        threadpool_limits(limits=2)
        """
    ) + textwrap.dedent(body)
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_one_thread_inside_and_the_original_counts_after() -> None:
    seen = _run(
        """
        seen = [threads()]
        for _ in range(3):  # the second and later entries reuse the cached walk
            with single_threaded_blas():
                seen.append(threads())
            seen.append(threads())
        print(json.dumps(seen))
        """
    )
    assert seen == [[2], [1], [2], [1], [2], [1], [2]]


def test_nested_entries_restore_once_the_outermost_leaves() -> None:
    # (Not across threads: OpenBLAS reports its count per calling thread.)
    seen = _run(
        """
        seen = []
        with single_threaded_blas():
            with single_threaded_blas():
                seen.append(threads())
            seen.append(threads())  # the outer entry still holds the limit
        seen.append(threads())
        print(json.dumps(seen))
        """
    )
    assert seen == [[1], [1], [2]]


def test_a_library_loaded_after_the_first_use_is_limited_too() -> None:
    # scipy's wheels bring their own OpenBLAS, loaded by `import scipy.linalg`: a
    # walk cached before that import would leave it at its two threads.
    libraries, inside, after = _run(
        """
        with single_threaded_blas():
            pass
        import scipy.linalg  # a second OpenBLAS
        threadpool_limits(limits=2)
        libraries = len(threadpool_info())
        with single_threaded_blas():
            inside = threads()
        print(json.dumps([libraries, inside, threads()]))
        """
    )
    assert libraries >= 2
    assert inside == [1]
    assert after == [2]
