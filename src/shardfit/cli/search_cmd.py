"""``shardfit search CONFIG.toml``: a parallel model search on a stream, into a store.

The configuration file (TOML) names the data, the target, the store and the search
space; paths are relative to the file's folder::

    data = "logit.parquet"
    target = "y"
    store = "models.db"
    weights = "w"            # optional sample-weight column
    batch_rows = 1000        # optional, as the keyword arguments of shardfit.search
    backend = "processes"
    workers = 2

    [halving]                # optional successive halving
    min_rows = 20000
    factor = 2

    [grid.featurizer]
    columns = [["x1", "x2"], ["x1", "x2", "x3"]]
    degree = [1, 2]

    [grid.learner]
    estimator = "ftrl"
    alpha = [0.0001, 0.001]

``[[grid]]`` (an array of tables) gives several spaces. Command-line options override
the file's ``backend``, ``workers`` and ``store`` (``--backend`` alone drops the file's
``workers``: they were the file's backend's).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any

from shardfit.cli.args import positive_int, report_error

__all__ = ["add_parser", "load_config", "run"]

_REQUIRED = ("data", "target", "store", "grid")
_OPTIONAL = {
    "weights",
    "batch_rows",
    "drop",
    "scoring",
    "classes",
    "backend",
    "workers",
    "unit_configs",
    "units",
    "halving",
    "n_iter",
    "random_state",
    "resume",
    "allow_pickle",
    "max_store_bytes",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_strings(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    )


def _is_space(value: Any) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
    )


# key -> (check, what it must be): checked here so a wrong type is reported naming the
# file and the key (TOML has booleans and integers; "false" as a string is truthy).
_TYPES: dict[str, tuple[Any, str]] = {
    "data": (_is_strings, "a path or a list of paths"),
    "target": (lambda v: isinstance(v, str), "a column name (a string)"),
    "store": (lambda v: isinstance(v, str), "a path (a string)"),
    "grid": (_is_space, "a table ([grid.featurizer], [grid.learner]) or an array of tables"),
    "weights": (lambda v: isinstance(v, str), "a column name (a string)"),
    "batch_rows": (_is_int, "an integer"),
    "drop": (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    "scoring": (lambda v: isinstance(v, str), "a metric name (a string)"),
    "classes": (lambda v: isinstance(v, list), "an array of the two labels"),
    "backend": (lambda v: isinstance(v, str), "a backend name (a string)"),
    "workers": (_is_int, "an integer"),
    "unit_configs": (_is_int, "an integer"),
    "units": (_is_int, "an integer"),
    "halving": (lambda v: isinstance(v, dict), "a table (min_rows, factor)"),
    "n_iter": (_is_int, "an integer"),
    "random_state": (_is_int, "an integer"),
    "resume": (lambda v: isinstance(v, bool), "true or false"),
    "allow_pickle": (lambda v: isinstance(v, bool), "true or false"),
    "max_store_bytes": (_is_int, "an integer"),
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and check a search configuration; returns keyword arguments of ``search``."""
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"{path} is not valid TOML: {error}") from error
    missing = [key for key in _REQUIRED if key not in config]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(map(repr, missing))}")
    unknown = set(config) - set(_REQUIRED) - _OPTIONAL
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted([*_REQUIRED, *_OPTIONAL])}"
        )
    for key, value in config.items():
        check, what = _TYPES[key]
        if not check(value):
            raise ValueError(f"{path}: {key!r} must be {what}; got {value!r}")
    base = path.resolve().parent
    data = config.pop("data")
    if isinstance(data, str):
        data = str(base / data) if not Path(data).is_absolute() else data
    elif isinstance(data, list):
        data = [str(base / d) if not Path(d).is_absolute() else d for d in data]
    config["data"] = data
    config["store"] = str(base / config["store"])
    config["space"] = config.pop("grid")
    return config


def add_parser(subparsers: Any) -> None:
    """Add the ``search`` sub-command to ``subparsers``."""
    parser = subparsers.add_parser(
        "search",
        help="search featurizer and learner parameters on a stream, into a SQLite store",
        description=(
            "Fit every configuration of the search space in CONFIG (TOML) with progressive "
            "validation, in parallel, saving scores and models to a SQLite store. A killed "
            "search resumes when run again with the same configuration."
        ),
    )
    parser.add_argument("config", help="the search configuration (TOML)")
    parser.add_argument("--store", default=None, metavar="FILE", help="override the store")
    parser.add_argument("--backend", default=None, help="serial, threads, processes or dask")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N")
    parser.add_argument(
        "-n", "--top", type=positive_int, default=5, help="best configurations shown"
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when standard error is a terminal)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run ``shardfit search``."""
    from shardfit.cli.best_cmd import print_best
    from shardfit.streaming.search import search

    try:
        config = load_config(args.config)
        if args.backend is not None and args.workers is None:
            # The file's worker count went with the file's backend: --backend serial
            # over `workers = 2` would be refused (serial runs one); the new backend
            # takes its own default unless --workers says otherwise.
            config.pop("workers", None)
        for name in ("store", "backend", "workers"):
            if getattr(args, name) is not None:
                config[name] = getattr(args, name)
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        summary = search(progress=progress, **config)
    except (OSError, ValueError, TypeError) as error:
        return report_error(args, error)
    print(
        f"{summary.configurations} configurations: {summary.fitted} fitted, "
        f"{summary.dropped} dropped by halving, {summary.skipped} already in the store; "
        f"{summary.seconds:.1f} s"
        + (f"; {summary.rows_skipped:,} malformed row(s) skipped" if summary.rows_skipped else "")
    )
    print_best(summary.store, args.top, file=sys.stdout)
    return 0
