"""Rendering results for a terminal with rich (the CLI's only view code)."""

from __future__ import annotations

from typing import IO, Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shardfit.stats.column_summary import CategoricalSummary, NumericSummary

__all__ = ["render_learned_design", "render_summary"]


def render_learned_design(learned: Any, *, source_name: str, file: IO[str]) -> None:
    """Print the column summaries and design columns of a learned design."""
    render_summary(learned, source_name=source_name, file=file)
    spec = learned.spec
    if spec.formula:
        Console(file=file, width=120).print(
            f"design of [bold]{escape(spec.formula)}[/bold]: {len(spec.column_names)} columns"
        )


def render_summary(statistic: Any, *, source_name: str, file: IO[str]) -> None:
    """Print a schema pass's column summaries (a SchemaStatistic or LearnedDesign)."""
    console = Console(file=file, width=120)
    summary = statistic.summary
    complete = sum(p.complete for p in statistic.partitions)
    dropped = summary.rows - complete
    console.print(
        f"[bold]{escape(source_name)}[/bold]: {summary.rows:,} rows in {summary.partitions:,} "
        f"partition{'' if summary.partitions == 1 else 's'}; {complete:,} complete, "
        f"{dropped:,} with a missing value"
        + (f", {summary.skipped_rows:,} malformed rows skipped" if summary.skipped_rows else "")
    )
    table = Table(show_header=True, header_style="bold")
    for heading in ("column", "type", "count", "missing", "min", "max", "mean", "std / levels"):
        table.add_column(heading, justify="left" if heading in ("column", "type") else "right")
    for name, column in summary.columns.items():
        # Names, types and levels are the data's text, not rich markup: "[red]" or
        # "date32[day]" must print as they are, and "[/]" must not crash the table.
        if isinstance(column, NumericSummary):
            table.add_row(
                escape(name),
                escape(column.dtype),
                f"{column.count:,}",
                f"{column.missing:,}",
                *_numeric_cells(column),
            )
        elif isinstance(column, CategoricalSummary):
            levels = column.sorted_levels()
            shown = ", ".join(map(str, levels[:4])) + (" …" if len(levels) > 4 else "")
            table.add_row(
                escape(name),
                escape(column.dtype),
                f"{column.count:,}",
                f"{column.missing:,}",
                "",
                "",
                "",
                escape(f"{len(levels)} levels" + (f": {shown}" if levels else "")),
            )
    console.print(table)


def _numeric_cells(column: NumericSummary) -> tuple[str, str, str, str]:
    """min, max, mean and std as shown; blank for a column with no values (its
    summary's inf, -inf and 0 are merge identities, not numbers of the data)."""
    if column.count == 0:
        return ("", "", "", "")
    stats = (column.min, column.max, column.mean)
    if column.dtype.startswith("date32"):
        # Days since 1970-01-01: show dates (the spread stays in days).
        low, high = (np.datetime64(int(v), "D") for v in stats[:2])
        mean = np.datetime64(round(stats[2] * 86_400), "s")  # to the second
        return (str(low), str(high), str(mean), f"{column.std:.6g} days")
    shown = [f"{v:.6g}" for v in stats]
    return (shown[0], shown[1], shown[2], f"{column.std:.6g}")
