"""The exceptions shardfit raises.

One base class, :class:`ShardfitError`, and a few subclasses by what went wrong.
Data errors locate themselves: they name the partition, the file and line or row,
and the column, in the form
``"{what} in partition {key} ({location}), column {col}: {detail}"``.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = [
    "BackendError",
    "ConvergenceError",
    "DesignError",
    "MissingDataError",
    "PartitionTaskError",
    "ReadError",
    "ResponseError",
    "SchemaError",
    "ShardfitError",
    "UnseenLevelError",
]


class ShardfitError(Exception):
    """Base class of every error shardfit raises on purpose."""


class ReadError(ShardfitError):
    """A source could not be read: a missing file, a malformed line, a bad value."""


class SchemaError(ShardfitError):
    """Column summaries disagree or exceed a limit (types, categorical cardinality)."""


class DesignError(ShardfitError):
    """A formula or design spec cannot be built or does not match a partition."""


class UnseenLevelError(DesignError):
    """A categorical value at predict time that the design spec never saw."""


class MissingDataError(DesignError):
    """A missing or non-finite value where ``missing="raise"`` was asked for."""

    @classmethod
    def at(cls, partition_key: str, location: str, column: str, value: object) -> MissingDataError:
        """The error for ``value`` (a null, NaN or infinity) at ``location`` of a
        partition's ``column``, named as the user would write it (``null``, ``NaN``,
        ``inf``), not as Python's ``None`` or ``nan``."""
        if value is None:
            shown = "null"
        elif isinstance(value, float) and value != value:
            shown = "NaN"
        elif isinstance(value, float):
            shown = "inf" if value > 0 else "-inf"
        else:
            shown = repr(value)
        return cls(
            f"missing value in partition {partition_key} ({location}), column {column!r}: "
            f"{shown} (pass missing='drop' to drop such rows and count them)"
        )


class BackendError(ShardfitError):
    """A backend could not be started or lost its workers beyond recovery."""


class PartitionTaskError(ShardfitError):
    """A task failed on a partition after all its retries.

    Attributes
    ----------
    key : str
        The key of the partition that failed.
    remote_traceback : str
        The traceback of the original exception, as text, from the worker.
    """

    def __init__(self, message: str, *, key: str, remote_traceback: str = "") -> None:
        super().__init__(message)
        self.key = key
        self.remote_traceback = remote_traceback

    def __reduce__(self) -> tuple[Any, ...]:
        # The default rebuilds from ``args`` alone, which lack the keyword-only
        # arguments: without this it does not survive pickle (between MPI ranks, say).
        rebuild = functools.partial(
            PartitionTaskError, key=self.key, remote_traceback=self.remote_traceback
        )
        return (rebuild, self.args, self.__dict__)

    def __str__(self) -> str:
        base = super().__str__()
        if self.remote_traceback:
            return f"{base}\n\nOriginal traceback (from the worker):\n{self.remote_traceback}"
        return base


class ConvergenceError(ShardfitError):
    """An iterative estimator failed to converge and the caller asked for an error."""


class ResponseError(DesignError):
    """A response value outside the model family's support (e.g. a negative count),
    named with its partition, row and value."""
