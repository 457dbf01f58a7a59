"""``python -m benchmarks run``: generate the data, run every measurement, write RESULTS.md.

For each selected case and size, every tool runs in a child process of its own (see
:mod:`benchmarks.measure`), after the data it needs has been simulated once into the
scratch folder. Then each tool's parameters are compared with the case's reference, and
the report is written. The exit status is 1 if an accuracy check failed, a measurement
failed or timed out; skips (a peer not installed, too big for memory) are printed with
their reason and do not fail the run.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.case import Case, DataSpec, Format, Mode, Skip, Tool
from benchmarks.data import DataStore
from benchmarks.measure import run_child
from benchmarks.registry import CASES
from benchmarks.report import READ_TOOL, Measurement, machine, render

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_REPEATS = {"quick": 1, "full": 3}
DEFAULT_TIMEOUT = {"quick": 300.0, "full": 1200.0}


def _missing(tool: Tool) -> str | None:
    """Why a tool cannot run here, or None."""
    for need in tool.requires:
        if need.startswith("cmd:"):
            if shutil.which(need[4:]) is None:
                return f"the {need[4:]!r} command is not on PATH"
        else:
            try:
                found = importlib.util.find_spec(need) is not None
            except ModuleNotFoundError:
                found = False
            if not found:
                return f"{need} is not installed (pip install -e '.[bench]')"
    return None


def _selected(case: Case, patterns: Sequence[str], core: bool = False) -> list[Tool]:
    """The tools to run, in the order they run: the pyarrow read, then shardfit's
    tools, then the others as the case lists them. The read and shardfit run back to
    back because ``× limit`` divides one by the other, and this machine's speed drifts
    over the minutes peers take (the same IRLS step measured 4.7 and 9.6 ms within an
    hour): adjacent, both see the same machine.

    ``core`` keeps the read, shardfit's tools and the case's first reference: what
    checks shardfit's accuracy, without the peers (the test suite's smoke run)."""
    tools = list(case.tools)
    if patterns:
        tools = [t for t in tools if any(p.lower() in t.name.lower() for p in patterns)]
    if core:
        first = case.references[:1]
        tools = [t for t in tools if t.name == READ_TOOL or t.role == "shardfit" or t.name in first]

    def rank(tool: Tool) -> int:
        return 0 if tool.name == READ_TOOL else 1 if tool.role == "shardfit" else 2

    return sorted(tools, key=rank)  # stable: the case's order within each rank


def _reference(ms: list[Measurement], case: Case) -> Measurement | None:
    """The first of the case's references that gave parameters."""
    return next(
        (
            m
            for name in case.references
            for m in ms
            if m.tool == name and m.params is not None and not m.error
        ),
        None,
    )


def _accuracy(ms: list[Measurement], case: Case) -> None:
    """Compare each measurement's parameters with the first reference that ran."""
    reference = _reference(ms, case)
    if reference is None:
        return
    ref = reference.params or {}
    reference.notes.append("reference")  # the report marks it by this note
    for m in ms:
        if m is reference or m.params is None:
            continue
        if set(m.params) != set(ref):
            m.error = f"parameter names differ from {reference.tool}'s"
            m.accuracy_ok = False
            continue
        m.accuracy = max(abs(m.params[k] - v) / abs(v) for k, v in ref.items() if v != 0)
        tool = case.tool(m.tool)
        m.accuracy_ok = (m.accuracy <= tool.rtol) if tool.exact else None


def _measure(
    case: Case,
    tool: Tool,
    rows: int,
    *,
    mode: Mode,
    repeats: int,
    store: DataStore,
    timeout: float,
    reference: str | None,
) -> Measurement:
    m = Measurement(case.name, tool.name, tool.role, rows, exact=tool.exact)
    reason = _missing(tool)
    try:
        if reason:
            raise Skip(reason)
        if tool.plan is not None:
            repeats, note = tool.plan(rows, mode, repeats)
            if note:
                m.notes.append(note)
    except Skip as skip:
        m.skipped = str(skip) or reason
        print(f"  {tool.name}: skipped: {m.skipped}", flush=True)
        return m
    # A second reference costs minutes in --full; --quick runs it as a cross-check.
    if tool.role == "reference" and reference is not None and mode == "full":
        m.skipped = f"not needed: {reference} is the reference at this size"
        print(f"  {tool.name}: skipped: {m.skipped}", flush=True)
        return m
    assert case.make_data is not None
    spec = case.make_data(rows)
    files = {fmt: str(store.path(spec, fmt)) for fmt in tool.needs}
    work = Path(tempfile.mkdtemp(prefix="child-", dir=store.root))
    try:
        spec_file, result_file, log = work / "spec.json", work / "result.json", work / "log.txt"
        spec_file.write_text(
            json.dumps(
                {
                    "case": case.name,
                    "tool": tool.name,
                    "rows": rows,
                    "files": files,
                    "scratch": str(work),
                    "repeats": repeats,
                    "result": str(result_file),
                    "mode": mode,
                    # --quick: the child imports only the module defining the case, not
                    # every case's (a second per child); --full imports the registry as
                    # before, so that its memory figures stay comparable.
                    **({"module": case.make_data.__module__} if mode == "quick" else {}),
                }
            )
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        run = run_child(
            [sys.executable, "-m", "benchmarks.child", str(spec_file)],
            timeout=timeout,
            log=log,
            env=env,
        )
        m.peak_rss, m.largest_rss, m.cpu_seconds = run.peak_rss, run.largest_rss, run.cpu_seconds
        record = json.loads(result_file.read_text()) if result_file.exists() else {}
        m.times = record.get("times") or []
        m.params = record.get("params")
        m.startup_seconds = record.get("startup_seconds")
        m.load = record.get("load_at_start")
        m.notes += record.get("notes") or []
        if run.timed_out:
            m.error = f"timed out after {timeout:.0f} s"
        elif record.get("error") or run.returncode != 0:
            m.error = record.get("error") or f"exit status {run.returncode}"
        if m.error:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print("\n".join(f"    | {line}" for line in tail), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = f"{m.median:.3f} s" if m.median is not None else "no time"
    rss = f"{m.peak_rss / 2**20:.0f} MiB" if m.peak_rss else "?"
    status = f" ERROR {m.error}" if m.error else ""
    print(f"  {tool.name}: {median} (n={len(m.times)}), peak RSS {rss}{status}", flush=True)
    return m


def _print_accuracy(done: list[Measurement]) -> None:
    for m in done:
        if m.accuracy is not None:
            verdict = {True: "ok", False: "FAIL", None: "not checked"}
            print(f"  accuracy {m.tool}: {m.accuracy:.2e} ({verdict[m.accuracy_ok]})")


def _concurrently(
    groups: list[tuple[Case, int, list[Tool]]],
    *,
    jobs: int,
    store: DataStore,
    measure: Callable[[Case, Tool, int], Measurement],
) -> list[list[Measurement]]:
    """``--quick --jobs N``: every (case, size, tool) measured, ``jobs`` child processes
    at a time, then each group's accuracy checked as in a sequential run.

    The data are simulated first, here, so that no two measurements write the same
    file. Each measurement still runs in a child process of its own; ``reference``
    (which only --full uses, to skip second references) is not passed."""
    files: dict[tuple[DataSpec, Format], None] = {}
    for case, rows, tools in groups:
        assert case.make_data is not None
        for tool in tools:
            if _missing(tool) is None:
                files.update(dict.fromkeys((case.make_data(rows), fmt) for fmt in tool.needs))
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda file: store.path(*file), files))  # each file by one thread
        futures = [
            [pool.submit(measure, case, tool, rows) for tool in tools]
            for case, rows, tools in groups
        ]
        results = [[future.result() for future in group] for group in futures]
    for (case, rows, _), done in zip(groups, results):
        print(f"{case.name} at {rows:,} rows: done", flush=True)
        _accuracy(done, case)
        _print_accuracy(done)
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the benchmarks and write the results")
    size = run.add_mutually_exclusive_group()
    size.add_argument(
        "--quick",
        dest="mode",
        action="store_const",
        const="quick",
        help="small sizes, one repeat: a smoke test (the default)",
    )
    size.add_argument(
        "--full",
        dest="mode",
        action="store_const",
        const="full",
        help="2M and 10M rows, 3 repeats (about 30 minutes)",
    )
    run.set_defaults(mode="quick")
    run.add_argument(
        "--only", action="append", default=[], metavar="CASE[,CASE]", help="run only these cases"
    )
    run.add_argument(
        "--tools",
        action="append",
        default=[],
        metavar="TEXT[,TEXT]",
        help="run only tools whose name contains one of these",
    )
    run.add_argument(
        "--core",
        action="store_true",
        help="only the read, shardfit's tools and each case's reference (no other peers)",
    )
    run.add_argument("--rows", help="comma-separated sizes instead of the mode's")
    run.add_argument("--repeats", type=int, help="repeats per measurement")
    run.add_argument("--timeout", type=float, help="seconds allowed per measurement")
    run.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="--quick only: measurements run this many at a time (a smoke run's figures "
        "mean nothing; its checks are the same); --full measures one at a time",
    )
    run.add_argument("--scratch", type=Path, help="folder for the data (default: temporary)")
    run.add_argument("--keep", action="store_true", help="keep the data afterwards")
    run.add_argument("--out", type=Path, help="the results file (default: by mode)")
    commands.add_parser("list", help="list the cases and their tools")
    combine = commands.add_parser(
        "combine", help="one RESULTS.md from several runs' RESULTS.json (e.g. case by case)"
    )
    combine.add_argument("parts", type=Path, nargs="+", help="RESULTS.json files, in order")
    combine.add_argument("--out", type=Path, required=True, help="the RESULTS.md to write")
    again = commands.add_parser("render", help="rewrite a RESULTS.md from its RESULTS.json")
    again.add_argument("json", type=Path, help="the RESULTS.json a run wrote")
    return parser


def _render_again(path: Path) -> int:
    saved = json.loads(path.read_text())
    fields = set(Measurement.__dataclass_fields__)
    ms = [
        Measurement(**{k: v for k, v in row.items() if k in fields})
        for row in saved["measurements"]
    ]
    # Goals and comparisons as the registry states them now.
    meta = {**saved["meta"], **_case_meta([m.case for m in ms])}
    path.with_suffix(".md").write_text(render(ms, meta))
    print(f"wrote {path.with_suffix('.md')}")
    return 0


def _case_meta(names: Sequence[str]) -> dict[str, Any]:
    """Goals and comparisons of the named cases, from the registry."""
    known = [CASES[n] for n in dict.fromkeys(names) if n in CASES]
    return {
        "goals": {case.name: case.goals for case in known if case.goals},
        "compare": {case.name: dict(case.compare) for case in known if case.compare},
    }


def _combine(parts: Sequence[Path], out: Path) -> int:
    """Concatenate runs' measurements; the header names every run, its date and load."""
    fields = set(Measurement.__dataclass_fields__)
    measurements: list[Measurement] = []
    metas = []
    for path in parts:
        saved = json.loads(path.read_text())
        metas.append(saved["meta"])
        measurements += [
            Measurement(**{k: v for k, v in row.items() if k in fields})
            for row in saved["measurements"]
        ]
    first, last = metas[0], metas[-1]
    runs = "; ".join(
        f"`{m['command']}` ({m['date']}, {m['wall_seconds']:.0f} s, load "
        f"{m['load_start']:.1f}→{m['load_end']:.1f})"
        for m in metas
    )
    meta = {
        **first,
        "command": "python -m benchmarks combine " + " ".join(str(p) for p in parts),
        "date": last["date"],
        "wall_seconds": sum(m["wall_seconds"] for m in metas),
        "load_end": last["load_end"],
        "parts": f"Combined from {len(metas)} runs on this machine: {runs}.",
        **_case_meta([m.case for m in measurements]),
        "generated": [g for m in metas for g in m.get("generated", [])],
    }
    out.write_text(render(measurements, meta))
    out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "measurements": [m.row() for m in measurements]}, indent=1)
    )
    print(f"wrote {out} from {len(metas)} runs")
    return 0


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _list() -> int:
    for case in CASES.values():
        status = f"  [{case.pending}]" if case.pending else ""
        print(f"{case.name}: {case.description}{status}")
        for tool in case.tools:
            print(f"    {tool.role:<9} {tool.name}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        return _list()
    if args.command == "render":
        return _render_again(args.json)
    if args.command == "combine":
        return _combine(args.parts, args.out)
    mode: Mode = args.mode
    names = _split(args.only) or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
        return 2
    if args.jobs < 1 or (args.jobs > 1 and mode != "quick"):
        print("--jobs is for --quick runs (a number from 1); --full measures one at a time")
        return 2
    repeats = args.repeats or DEFAULT_REPEATS[mode]
    timeout = args.timeout or DEFAULT_TIMEOUT[mode]
    sizes = [int(float(r)) for r in args.rows.split(",")] if args.rows else None
    out = args.out or HERE / ("RESULTS.md" if mode == "full" else "RESULTS-quick.md")

    if args.scratch:
        args.scratch.mkdir(parents=True, exist_ok=True)
        root = args.scratch / "shardfit-bench-data"
        root.mkdir(exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="shardfit-bench-"))
    store = DataStore(root)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    info = machine()
    print(
        f"{info['cores']} cores, {info['memory_gb']:.1f} GB; load {load_start:.2f}; data in {root}"
    )
    measurements: list[Measurement] = []
    # The sequential run passes each case's reference as it is measured.
    measure = functools.partial(
        _measure, mode=mode, repeats=repeats, store=store, timeout=timeout, reference=None
    )
    try:
        if args.jobs > 1:
            groups = [
                (CASES[name], rows, _selected(CASES[name], _split(args.tools), args.core))
                for name in names
                if not CASES[name].pending
                for rows in sizes or CASES[name].sizes[mode]
            ]
            done_groups = iter(_concurrently(groups, jobs=args.jobs, store=store, measure=measure))
        for name in names:
            case = CASES[name]
            if case.pending:
                print(f"{name}: skipped: {case.pending}")
                measurements.append(Measurement(name, "(all)", "-", 0, skipped=case.pending))
                continue
            if args.jobs > 1:
                measurements += [m for _ in sizes or case.sizes[mode] for m in next(done_groups)]
                continue
            for rows in sizes or case.sizes[mode]:
                print(f"{name} at {rows:,} rows", flush=True)
                done: list[Measurement] = []
                for tool in _selected(case, _split(args.tools), args.core):
                    reference = _reference(done, case)
                    done.append(
                        measure(case, tool, rows, reference=reference.tool if reference else None)
                    )
                _accuracy(done, case)
                _print_accuracy(done)
                measurements += done
    finally:
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            if args.scratch:
                print(f"removed {root}")

    meta = {
        **_case_meta(names),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "wall_seconds": time.perf_counter() - started,
        "machine": info,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
        "repeats": repeats,
        "generated": [
            {
                "kind": g.spec.kind,
                "rows": g.spec.rows,
                "format": g.format,
                "seconds": g.seconds,
                "bytes": g.bytes,
            }
            for g in store.generated
        ],
    }
    out.write_text(render(measurements, meta))
    out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "measurements": [m.row() for m in measurements]}, indent=1)
    )
    failed = [m for m in measurements if m.error or m.accuracy_ok is False]
    print(
        f"wrote {out} in {meta['wall_seconds']:.0f} s; "
        f"{len(failed)} failure(s)"
        + "".join(
            f"\n  {m.case} / {m.tool} at {m.rows:,}: {m.error or f'accuracy {m.accuracy:.2e}'}"
            for m in failed
        )
    )
    return 1 if failed else 0
