"""Rendering results for a terminal with rich (the CLI's only view code)."""

from __future__ import annotations

from typing import IO, Any

from rich.console import Console
from rich.table import Table

from shardfit.stats.column_summary import CategoricalSummary, NumericSummary

__all__ = ["render_learned_design", "render_summary"]


def render_learned_design(learned: Any, *, source_name: str, file: IO[str]) -> None:
    """Print the column summaries and design columns of a learned design."""
    render_summary(learned, source_name=source_name, file=file)
    spec = learned.spec
    if spec.formula:
        Console(file=file, width=120).print(
            f"design of [bold]{spec.formula}[/bold]: {len(spec.column_names)} columns"
        )


def render_summary(statistic: Any, *, source_name: str, file: IO[str]) -> None:
    """Print a schema pass's column summaries (a SchemaStatistic or LearnedDesign)."""
    console = Console(file=file, width=120)
    summary = statistic.summary
    complete = sum(p.complete for p in statistic.partitions)
    dropped = summary.rows - complete
    console.print(
        f"[bold]{source_name}[/bold]: {summary.rows:,} rows in {summary.partitions:,} "
        f"partition{'' if summary.partitions == 1 else 's'}; {complete:,} complete, "
        f"{dropped:,} with a missing value"
        + (f", {summary.skipped_rows:,} malformed rows skipped" if summary.skipped_rows else "")
    )
    table = Table(show_header=True, header_style="bold")
    for heading in ("column", "type", "count", "missing", "min", "max", "mean", "std / levels"):
        table.add_column(heading, justify="left" if heading in ("column", "type") else "right")
    for name, column in summary.columns.items():
        if isinstance(column, NumericSummary):
            table.add_row(
                name,
                column.dtype,
                f"{column.count:,}",
                f"{column.missing:,}",
                f"{column.min:.6g}",
                f"{column.max:.6g}",
                f"{column.mean:.6g}",
                f"{column.std:.6g}",
            )
        elif isinstance(column, CategoricalSummary):
            levels = column.sorted_levels()
            shown = ", ".join(map(str, levels[:4])) + (" …" if len(levels) > 4 else "")
            table.add_row(
                name,
                column.dtype,
                f"{column.count:,}",
                f"{column.missing:,}",
                "",
                "",
                "",
                f"{len(levels)} levels: {shown}",
            )
    console.print(table)
