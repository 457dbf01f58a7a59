"""shardfit: fit models to data of any size, partition by partition, with in-memory answers."""

from shardfit.errors import (
    BackendError,
    ConvergenceError,
    DesignError,
    MissingDataError,
    PartitionTaskError,
    ReadError,
    SchemaError,
    ShardfitError,
    UnseenLevelError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ConvergenceError",
    "DesignError",
    "MissingDataError",
    "PartitionTaskError",
    "ReadError",
    "SchemaError",
    "ShardfitError",
    "UnseenLevelError",
    "__version__",
]
