"""Does peak memory stay flat as the rows grow? Driver and worker peaks per operation.

For each ``--rows`` size, simulates ``linreg`` and ``logit`` Parquet files with the
same row-group size (so more rows means more partitions, each the same size), then
runs every operation in a fresh child process and polls the child's process tree
with psutil every ``--interval`` seconds: the child's own resident memory is the
driver's, its descendants' (the ``processes`` backend's workers) the workers'. The
table gives each operation's driver peak and largest single-worker peak per size,
and the growth from the smallest to the largest size; growth above ``--tolerance``
is flagged, since a partition-by-partition pass should hold nothing per row.

Predictions load results saved by ``shardfit fit --out`` (the ``cli fit`` rows), so
their peaks do not include a fit.

IRLS fits (GLMs, the binomial elastic net) keep encoded partitions in each worker's
partition cache up to its cap (64 MiB by default; the rest is spilled to disk): their
worker peaks grow until the cache is full, about four 250k-row partitions a worker,
and are flat beyond (measured 304 then 303 MiB at 4M and 8M rows). Sizes below that
point flag them; ``logit.fit(cache_bytes=0)`` shows the fit without the cache.

Usage::

    python -m benchmarks.memory_flat --rows 1000000 4000000 --scratch /tmp/mf
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

MIB = 2**20
LINREG_FORMULA = "y ~ x1 + x2 + x3 + x4 + C(g10)"
LOGIT_FORMULA = "y ~ x1 + x2 + x3"
SVD_FORMULA = "0 + x1 + x2 + x3 + x4 + x5"


@dataclass(frozen=True)
class Peak:
    """Peak resident bytes of one child run."""

    driver: int
    worker: int  # the largest single descendant
    workers_seen: int
    seconds: float


# --------------------------------------------------------------------------- child side
# Each operation runs in ``python -m benchmarks.memory_flat --child OP``: a fresh
# interpreter, so one operation's garbage never inflates another's peak.


def _source(path: str, partition_rows: int) -> Any:
    """A Parquet source cut into ``partition_rows`` partitions (imported in the child)."""
    import shardfit

    return shardfit.read_parquet(path, partition_rows=partition_rows)


def _child(op: str, a: argparse.Namespace) -> None:
    import shardfit
    from shardfit.results.io import load_results

    scratch = Path(a.scratch)
    linreg, logit = a.linreg, a.logit
    kw = {"backend": "processes", "workers": a.workers}
    out = scratch / f"out-{op}-{a.tag}"
    if out.exists():
        shutil.rmtree(out)
    if op == "ols.fit":
        shardfit.ols(LINREG_FORMULA, _source(linreg, a.partition_rows)).fit(**kw)
    elif op == "logit.fit":
        shardfit.logit(LOGIT_FORMULA, _source(logit, a.partition_rows)).fit(**kw)
    elif op == "logit.fit(cache_bytes=0)":
        # Without the IRLS partition cache: what the cache adds to a worker's peak.
        shardfit.logit(LOGIT_FORMULA, _source(logit, a.partition_rows)).fit(cache_bytes=0, **kw)
    elif op == "ols.predict(out)":
        res = load_results(scratch / f"ols-{a.tag}.json")
        res.predict(_source(linreg, a.partition_rows), out=out, interval="prediction", **kw)
    elif op == "logit.predict(out)":
        res = load_results(scratch / f"logit-{a.tag}.json")
        res.predict(_source(logit, a.partition_rows), out=out, interval="confidence", **kw)
    elif op == "ols.influence(out)":
        res = load_results(scratch / f"ols-{a.tag}.json")
        res.influence(_source(linreg, a.partition_rows), kind="cooks", out=out, **kw)
    elif op == "logit.influence(out)":
        res = load_results(scratch / f"logit-{a.tag}.json")
        res.influence(_source(logit, a.partition_rows), kind="cooks", out=out, **kw)
    elif op == "logit.resid(out)":
        res = load_results(scratch / f"logit-{a.tag}.json")
        res.resid(_source(logit, a.partition_rows), kind="deviance", out=out, **kw)
    elif op == "svd":
        shardfit.svd(SVD_FORMULA, _source(linreg, a.partition_rows), center=True, **kw)
    elif op == "svd.transform(out)":
        res = shardfit.svd(SVD_FORMULA, _source(linreg, a.partition_rows), center=True, **kw)
        res.transform(_source(linreg, a.partition_rows), n_components=3, out=out, **kw)
    elif op == "elastic_net(path)":
        shardfit.elastic_net(LINREG_FORMULA, _source(linreg, a.partition_rows), n_alphas=10, **kw)
    elif op == "elastic_net(logit path)":
        shardfit.elastic_net(
            LOGIT_FORMULA, _source(logit, a.partition_rows), family="binomial", n_alphas=5,
            max_iter=20, **kw,
        )  # fmt: skip
    else:
        raise SystemExit(f"unknown operation {op!r}")


# -------------------------------------------------------------------------- parent side


def _watch(argv: list[str], interval: float) -> Peak:
    """Run ``argv`` and poll its process tree until it ends."""
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    root = psutil.Process(child.pid)
    driver = worker = 0
    seen: set[int] = set()
    done = threading.Event()

    def poll() -> None:
        nonlocal driver, worker
        while not done.is_set():
            try:
                driver = max(driver, root.memory_info().rss)
                for proc in root.children(recursive=True):
                    try:
                        rss = proc.memory_info().rss
                    except psutil.Error:
                        continue
                    seen.add(proc.pid)
                    worker = max(worker, rss)
            except psutil.Error:
                pass
            time.sleep(interval)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    output, _ = child.communicate()
    done.set()
    thread.join()
    if child.returncode:
        sys.stderr.write(output.decode(errors="replace")[-3000:])
        raise SystemExit(f"{argv} failed with exit status {child.returncode}")
    return Peak(driver, worker, len(seen), time.perf_counter() - started)


def _data(kind: str, rows: int, scratch: Path, chunk_rows: int) -> Path:
    path = scratch / f"{kind}_{rows}.parquet"
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "shardfit", "simulate", kind, "--rows", str(rows),
             "--out", str(path), "--chunk-rows", str(chunk_rows), "--no-progress"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return path


PY_OPS = (
    "ols.fit",
    "logit.fit",
    "logit.fit(cache_bytes=0)",
    "ols.predict(out)",
    "logit.predict(out)",
    "ols.influence(out)",
    "logit.influence(out)",
    "logit.resid(out)",
    "svd",
    "svd.transform(out)",
    "elastic_net(path)",
    "elastic_net(logit path)",
)
CLI_OPS = ("cli fit ols", "cli fit logit", "cli predict ols", "cli predict logit")


def _cli(op: str, linreg: Path, logit: Path, scratch: Path, tag: str, a: argparse.Namespace):
    common = ["--backend", "processes", "--workers", str(a.workers), "--no-progress",
              "--partition-rows", str(a.partition_rows)]  # fmt: skip
    sf = [sys.executable, "-m", "shardfit"]
    if op == "cli fit ols":
        return [*sf, "fit", str(linreg), LINREG_FORMULA, "--out",
                str(scratch / f"ols-{tag}.json"), "--overwrite", *common]  # fmt: skip
    if op == "cli fit logit":
        return [*sf, "fit", str(logit), LOGIT_FORMULA, "--family", "binomial", "--out",
                str(scratch / f"logit-{tag}.json"), "--overwrite", *common]  # fmt: skip
    kind, data = ("ols", linreg) if op.endswith("ols") else ("logit", logit)
    return [*sf, "predict", str(scratch / f"{kind}-{tag}.json"), str(data), "--out",
            str(scratch / f"cli-pred-{kind}-{tag}"), "--overwrite", "--interval",
            "confidence", *common]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--partition-rows", type=int, default=250_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.02, help="poll seconds")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--only", nargs="*", help="operations to run (default: all)")
    # child mode
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--linreg", help=argparse.SUPPRESS)
    parser.add_argument("--logit", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    if a.child:
        _child(a.child, a)
        return 0

    a.scratch.mkdir(parents=True, exist_ok=True)
    ops = [*CLI_OPS, *PY_OPS]
    if a.only:
        # The CLI fits save the results that the predictions load.
        loads = any(w in op for op in a.only for w in ("predict", "influence", "resid"))
        ops = [op for op in ops if op in a.only or (loads and op.startswith("cli fit"))]
    table: dict[str, dict[int, Peak]] = {op: {} for op in ops}
    for rows in a.rows:
        linreg = _data("linreg", rows, a.scratch, a.partition_rows)
        logit = _data("logit", rows, a.scratch, a.partition_rows)
        tag = str(rows)
        for op in ops:
            if op.startswith("cli"):
                cmd = _cli(op, linreg, logit, a.scratch, tag, a)
            else:
                cmd = [sys.executable, "-m", "benchmarks.memory_flat", "--scratch",
                       str(a.scratch), "--child", op, "--linreg", str(linreg), "--logit",
                       str(logit), "--tag", tag, "--workers", str(a.workers),
                       "--partition-rows", str(a.partition_rows)]  # fmt: skip
            peak = _watch(cmd, a.interval)
            table[op][rows] = peak
            print(
                f"  {op:<26} {rows:>10,} rows: driver {peak.driver / MIB:7.0f} MiB, "
                f"worker {peak.worker / MIB:7.0f} MiB ({peak.seconds:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    first, last = min(a.rows), max(a.rows)
    header = f"{'operation':<26} {'rows':>10} {'driver MiB':>11} {'worker MiB':>11} {'s':>6}"
    print(header)
    print("-" * len(header))
    flagged = []
    for op, by_rows in table.items():
        for rows in sorted(by_rows):
            p = by_rows[rows]
            print(
                f"{op:<26} {rows:>10,} {p.driver / MIB:>11.0f} {p.worker / MIB:>11.0f} "
                f"{p.seconds:>6.1f}"
            )
        if first != last:
            d = by_rows[last].driver / by_rows[first].driver - 1
            w = by_rows[last].worker / max(by_rows[first].worker, 1) - 1
            mark = "  <-- grows" if max(d, w) > a.tolerance else ""
            print(f"{'':<26} {'growth':>10} {d:>+10.0%} {w:>+10.0%}{mark}")
            if mark:
                flagged.append(op)
    if flagged:
        print(f"\ngrows with rows (> {a.tolerance:.0%}): {', '.join(flagged)}")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
