"""Mergeable statistics."""

from shardfit.stats.base import Statistic
from shardfit.stats.column_summary import (
    CategoricalSummary,
    NumericSummary,
    TableSummary,
    summarize_table,
)
from shardfit.stats.exact_sum import ExactSum, exact_sum, exact_sum_of_squares

__all__ = [
    "CategoricalSummary",
    "ExactSum",
    "NumericSummary",
    "Statistic",
    "TableSummary",
    "exact_sum",
    "exact_sum_of_squares",
    "summarize_table",
]
