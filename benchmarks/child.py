"""One measurement, in a process of its own: ``python -m benchmarks.child SPEC.json``.

Builds the tool's estimator (not timed; start-up such as a JVM or a cluster is reported
apart), calls ``fit`` ``repeats`` times, timing each call, and writes the times, the
parameters of the last fit and the notes to the JSON file the spec names.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str]) -> int:
    # Imported here, not at the top: worker processes a tool spawns import this module
    # again (multiprocessing's spawn re-runs the main module), and should carry what
    # the tool itself imports, not every case's peers and their libraries.
    import importlib

    from benchmarks.case import Outcome, problem_for

    spec = json.loads(Path(argv[0]).read_text())
    result_path = Path(spec["result"])
    # The case's own module where the runner names it (--quick), else the registry.
    cases = importlib.import_module(spec.get("module", "benchmarks.registry")).CASES
    case = cases[spec["case"]]
    tool = case.tool(spec["tool"])
    files = {fmt: Path(path) for fmt, path in spec["files"].items()}
    problem = problem_for(
        case, spec["rows"], files, Path(spec["scratch"]), spec.get("mode", "full")
    )
    outcome = Outcome()
    record: dict[str, object] = {"load_at_start": os.getloadavg()[0]}
    try:
        started = time.perf_counter()
        estimator = tool.make_estimator(problem, outcome)
        record["setup_seconds"] = time.perf_counter() - started
        times: list[float] = []
        params = None
        try:
            for _ in range(spec["repeats"]):
                started = time.perf_counter()
                params = estimator.fit()
                times.append(time.perf_counter() - started)
                print(f"{tool.name}: {times[-1]:.3f} s", flush=True)
        finally:
            estimator.close()
        record.update(times=times, params=params)
    except Exception as error:  # reported in RESULTS.md, not hidden
        traceback.print_exc()
        record["error"] = f"{type(error).__name__}: {error}"
    record.update(startup_seconds=outcome.startup_seconds, notes=outcome.notes)
    result_path.write_text(json.dumps(record))
    return 1 if "error" in record else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
