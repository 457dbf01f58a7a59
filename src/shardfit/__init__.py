"""shardfit: fit models to data of any size, partition by partition, with in-memory answers."""

from shardfit.data import (
    Partition,
    ReadResult,
    Source,
    as_source,
    from_arrays,
    from_arrow,
    from_dask,
    from_pandas,
    read_csv,
    read_hdf5,
    read_npy,
    read_parquet,
    read_zarr,
)
from shardfit.design import (
    DesignSpec,
    LearnedDesign,
    dmatrices,
    dmatrix,
    learn_design,
    schema_pass,
)
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
from shardfit.models.linear import OLS, LinearModel, ols, wls
from shardfit.results.linear import LinearResults

__version__ = "0.1.0"

__all__ = [
    "OLS",
    "BackendError",
    "ConvergenceError",
    "DesignError",
    "DesignSpec",
    "LearnedDesign",
    "LinearModel",
    "LinearResults",
    "MissingDataError",
    "Partition",
    "PartitionTaskError",
    "ReadError",
    "ReadResult",
    "SchemaError",
    "ShardfitError",
    "Source",
    "UnseenLevelError",
    "__version__",
    "as_source",
    "dmatrices",
    "dmatrix",
    "from_arrays",
    "from_arrow",
    "from_dask",
    "from_pandas",
    "learn_design",
    "ols",
    "read_csv",
    "read_hdf5",
    "read_npy",
    "read_parquet",
    "read_zarr",
    "schema_pass",
    "wls",
]
