"""shardfit: fit models to data of any size, partition by partition, with in-memory answers.

The public names below are imported on first use, so a worker process that only
needs, say, the engine and one source does not pay for the whole library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # data
    "Partition": "shardfit.data.partition",
    "ReadResult": "shardfit.data.partition",
    "Source": "shardfit.data.partition",
    "as_source": "shardfit.data.resolve",
    "from_arrays": "shardfit.data.memory",
    "from_arrow": "shardfit.data.memory",
    "from_pandas": "shardfit.data.memory",
    "from_dask": "shardfit.data.dask_source",
    "read_csv": "shardfit.data.csv",
    "read_hdf5": "shardfit.data.hdf5",
    "read_npy": "shardfit.data.npy",
    "read_parquet": "shardfit.data.parquet",
    "read_zarr": "shardfit.data.zarr_source",
    "simulate": "shardfit.data.simulate",
    "convert": "shardfit.data.convert",
    # engine
    "run_pass": "shardfit.engine.run",
    "map_partitions": "shardfit.engine.run",
    "session": "shardfit.engine.session",
    "Session": "shardfit.engine.session",
    "PartitionCache": "shardfit.engine.cache",
    "resolve_backend": "shardfit.engine.backends",
    "ProgressEvent": "shardfit.engine.progress",
    "RichProgress": "shardfit.engine.progress",
    "register_class": "shardfit.engine.serialize",
    "profile": "shardfit.engine.profile",
    "Profile": "shardfit.engine.profile",
    "phase": "shardfit.engine.profile",
    # design
    "DesignSpec": "shardfit.design.spec",
    "LearnedDesign": "shardfit.design.schema",
    "dmatrices": "shardfit.design.dmatrices",
    "dmatrix": "shardfit.design.dmatrices",
    "DesignStore": "shardfit.design.store",
    "open_design": "shardfit.design.store",
    "write_design": "shardfit.design.store",
    "learn_design": "shardfit.design.schema",
    "schema_pass": "shardfit.design.schema",
    # models and results
    "OLS": "shardfit.models.linear",
    "DistributedModel": "shardfit.models.distributed",
    "DistributedResults": "shardfit.results.regularized",
    "ElasticNetResults": "shardfit.results.regularized",
    "cv_folds": "shardfit.models.elastic_net_tasks",
    "elastic_net": "shardfit.models.elastic_net",
    "LinearModel": "shardfit.models.linear",
    "ols": "shardfit.models.linear",
    "wls": "shardfit.models.linear",
    "svd": "shardfit.models.svd",
    "SVDResults": "shardfit.results.svd",
    "LinearResults": "shardfit.results.linear",
    "GLM": "shardfit.models.glm",
    "GeneralizedLinearModel": "shardfit.models.glm",
    "glm": "shardfit.models.glm",
    "logit": "shardfit.models.glm",
    "poisson": "shardfit.models.glm",
    "GLMResults": "shardfit.results.glm",
    "MarginalEffects": "shardfit.results.margeff",
    "negativebinomial": "shardfit.models.negbin",
    "NegativeBinomial": "shardfit.models.negbin",
    "NegativeBinomialModel": "shardfit.models.negbin",
    "NegativeBinomialResults": "shardfit.results.negbin",
    "SumstatsModel": "shardfit.models.sumstats",
    "SumstatsGroup": "shardfit.models.sumstats",
    "SumstatsFitResult": "shardfit.results.sumstats",
    "SumstatsScanResult": "shardfit.results.sumstats",
    "Family": "shardfit.models.families",
    "Link": "shardfit.models.links",
    "get_family": "shardfit.models.families",
    "load_results": "shardfit.results.io",
    "save_results": "shardfit.results.io",
    "PredictionResults": "shardfit.results.predict",
    "PredictionOutput": "shardfit.results.predict",
    "StackingEnsembleClassifier": "shardfit.models.ensemble",
    "StackingEnsembleRegressor": "shardfit.models.ensemble",
    # streaming and model search
    "HashingFeaturizer": "shardfit.streaming.hashing",
    "FTRLClassifier": "shardfit.streaming.learners",
    "FTRLRegressor": "shardfit.streaming.learners",
    "stream_fit": "shardfit.streaming.stream",
    "StreamResult": "shardfit.streaming.progressive",
    "search": "shardfit.streaming.search",
    "open_store": "shardfit.streaming.store",
    "StoreError": "shardfit.streaming.store",
    "StoreFullError": "shardfit.streaming.store",
    # errors
    "BackendError": "shardfit.errors",
    "ConvergenceError": "shardfit.errors",
    "DesignError": "shardfit.errors",
    "MissingDataError": "shardfit.errors",
    "PartitionTaskError": "shardfit.errors",
    "ReadError": "shardfit.errors",
    "ResponseError": "shardfit.errors",
    "SchemaError": "shardfit.errors",
    "ShardfitError": "shardfit.errors",
    "UnseenLevelError": "shardfit.errors",
}

__all__ = [
    "GLM",
    "OLS",
    "BackendError",
    "ConvergenceError",
    "DesignError",
    "DesignSpec",
    "DesignStore",
    "DistributedModel",
    "DistributedResults",
    "ElasticNetResults",
    "FTRLClassifier",
    "FTRLRegressor",
    "Family",
    "GLMResults",
    "GeneralizedLinearModel",
    "HashingFeaturizer",
    "LearnedDesign",
    "LinearModel",
    "LinearResults",
    "Link",
    "MarginalEffects",
    "MissingDataError",
    "NegativeBinomial",
    "NegativeBinomialModel",
    "NegativeBinomialResults",
    "Partition",
    "PartitionCache",
    "PartitionTaskError",
    "PredictionOutput",
    "PredictionResults",
    "Profile",
    "ProgressEvent",
    "ReadError",
    "ReadResult",
    "ResponseError",
    "RichProgress",
    "SVDResults",
    "SchemaError",
    "Session",
    "ShardfitError",
    "Source",
    "StackingEnsembleClassifier",
    "StackingEnsembleRegressor",
    "StoreError",
    "StoreFullError",
    "StreamResult",
    "SumstatsFitResult",
    "SumstatsGroup",
    "SumstatsModel",
    "SumstatsScanResult",
    "UnseenLevelError",
    "__version__",
    "as_source",
    "convert",
    "cv_folds",
    "dmatrices",
    "dmatrix",
    "elastic_net",
    "from_arrays",
    "from_arrow",
    "from_dask",
    "from_pandas",
    "get_family",
    "glm",
    "learn_design",
    "load_results",
    "logit",
    "map_partitions",
    "negativebinomial",
    "ols",
    "open_design",
    "open_store",
    "phase",
    "poisson",
    "profile",
    "read_csv",
    "read_hdf5",
    "read_npy",
    "read_parquet",
    "read_zarr",
    "register_class",
    "resolve_backend",
    "run_pass",
    "save_results",
    "schema_pass",
    "search",
    "session",
    "simulate",
    "stream_fit",
    "svd",
    "wls",
    "write_design",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'shardfit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from shardfit.data.convert import convert
    from shardfit.data.csv import read_csv
    from shardfit.data.dask_source import from_dask
    from shardfit.data.hdf5 import read_hdf5
    from shardfit.data.memory import from_arrays, from_arrow, from_pandas
    from shardfit.data.npy import read_npy
    from shardfit.data.parquet import read_parquet
    from shardfit.data.partition import Partition, ReadResult, Source
    from shardfit.data.resolve import as_source
    from shardfit.data.simulate import simulate
    from shardfit.data.zarr_source import read_zarr
    from shardfit.design.dmatrices import dmatrices, dmatrix
    from shardfit.design.schema import LearnedDesign, learn_design, schema_pass
    from shardfit.design.spec import DesignSpec
    from shardfit.engine.backends import resolve_backend
    from shardfit.engine.cache import PartitionCache
    from shardfit.engine.profile import Profile, phase, profile
    from shardfit.engine.progress import ProgressEvent, RichProgress
    from shardfit.engine.run import map_partitions, run_pass
    from shardfit.engine.serialize import register_class
    from shardfit.engine.session import Session, session
    from shardfit.errors import (
        BackendError,
        ConvergenceError,
        DesignError,
        MissingDataError,
        PartitionTaskError,
        ReadError,
        ResponseError,
        SchemaError,
        ShardfitError,
        UnseenLevelError,
    )
    from shardfit.models.distributed import DistributedModel
    from shardfit.models.elastic_net import elastic_net
    from shardfit.models.elastic_net_tasks import cv_folds
    from shardfit.models.ensemble import StackingEnsembleClassifier, StackingEnsembleRegressor
    from shardfit.models.families import Family, get_family
    from shardfit.models.glm import GLM, GeneralizedLinearModel, glm, logit, poisson
    from shardfit.models.linear import OLS, LinearModel, ols, wls
    from shardfit.models.links import Link
    from shardfit.models.negbin import NegativeBinomial, NegativeBinomialModel, negativebinomial
    from shardfit.models.sumstats import SumstatsGroup, SumstatsModel
    from shardfit.models.svd import svd
    from shardfit.results.glm import GLMResults
    from shardfit.results.io import load_results, save_results
    from shardfit.results.linear import LinearResults
    from shardfit.results.margeff import MarginalEffects
    from shardfit.results.negbin import NegativeBinomialResults
    from shardfit.results.predict import PredictionOutput, PredictionResults
    from shardfit.results.regularized import DistributedResults, ElasticNetResults
    from shardfit.results.sumstats import SumstatsFitResult, SumstatsScanResult
    from shardfit.results.svd import SVDResults
    from shardfit.streaming.hashing import HashingFeaturizer
    from shardfit.streaming.learners import FTRLClassifier, FTRLRegressor
    from shardfit.streaming.progressive import StreamResult
    from shardfit.streaming.search import search
    from shardfit.streaming.store import StoreError, StoreFullError, open_store
    from shardfit.streaming.stream import stream_fit
