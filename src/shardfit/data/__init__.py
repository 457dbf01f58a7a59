"""Sources and partitions: where rows come from, cut into pieces a worker reads alone."""

from shardfit.data.csv import read_csv
from shardfit.data.dask_source import from_dask
from shardfit.data.hdf5 import read_hdf5
from shardfit.data.memory import from_arrays, from_arrow, from_pandas
from shardfit.data.npy import read_npy
from shardfit.data.parquet import read_parquet
from shardfit.data.partition import Partition, ReadResult, Source
from shardfit.data.resolve import as_source
from shardfit.data.zarr_source import read_zarr

__all__ = [
    "Partition",
    "ReadResult",
    "Source",
    "as_source",
    "from_arrays",
    "from_arrow",
    "from_dask",
    "from_pandas",
    "read_csv",
    "read_hdf5",
    "read_npy",
    "read_parquet",
    "read_zarr",
]
