"""``shardfit best STORE -n 5``: the best configurations of a search, without loading models."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import IO, Any

from shardfit.cli.args import positive_int

__all__ = ["add_parser", "print_best", "run"]


def _short(params: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in sorted(params.get("featurizer", {}).items())]
    parts += [f"{k}={v}" for k, v in sorted(params.get("learner", {}).items())]
    return " ".join(parts)


def _json_number(value: float | None) -> float | None:
    """``value``, or ``None`` (JSON's null) for NaN and infinities: a configuration with
    no scored batch has a NaN score, and ``NaN`` is not JSON (``json.loads`` in other
    languages, ``jq``, refuse the line)."""
    return None if value is None or not math.isfinite(value) else value


def print_best(store: str | Path, n: int, *, file: IO[str], as_json: bool = False) -> None:
    """Print the ``n`` best configurations of ``store`` (a table, or JSON lines)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from shardfit.streaming.store import open_store

    with open_store(store) as db:
        scoring = db.scoring
        best = db.best(n)
    if as_json:
        for r in best:
            record = {
                "key": r.key,
                "score": _json_number(r.score),
                "benchmark": _json_number(r.benchmark),
                "improvement": _json_number(r.improvement),
                "rows": r.rows,
                "params": r.params,
            }
            print(json.dumps(record, sort_keys=True, allow_nan=False), file=file)
        return
    table = Table(title=f"best {len(best)} by progressive {scoring}", header_style="bold")
    for heading in ("rank", "key", scoring, "benchmark", "improvement", "rows", "parameters"):
        table.add_column(heading, justify="left" if heading in ("key", "parameters") else "right")
    for rank, r in enumerate(best, start=1):
        table.add_row(
            str(rank),
            r.key,
            f"{r.score:.6g}",
            f"{r.benchmark:.6g}",
            f"{r.improvement:.2%}",
            f"{r.rows:,}",
            escape(_short(r.params)),  # column names are data, not rich markup
        )
    Console(file=file, width=160).print(table)


def add_parser(subparsers: Any) -> None:
    """Add the ``best`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "best",
        help="show the best configurations of a search store",
        description="Show the N best configurations in a search's SQLite store; models "
        "are not loaded.",
    )
    parser.add_argument("store", help="the SQLite store written by `shardfit search`")
    parser.add_argument("-n", type=positive_int, default=5, help="how many (default 5)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit best``."""
    print_best(args.store, args.n, file=sys.stdout, as_json=args.json)
    return 0
