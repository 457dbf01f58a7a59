"""Formula designs learned in a schema pass, applied identically to every partition.

The names are imported when first used: a worker that only encodes partitions
(:mod:`shardfit.design.materialize`) then loads neither pandas nor formulaic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shardfit.design.dmatrices import dmatrices, dmatrix
    from shardfit.design.materialize import DesignChunk, encode_partition
    from shardfit.design.schema import LearnedDesign, learn_design, schema_pass
    from shardfit.design.spec import DesignSpec

__all__ = [
    "DesignChunk",
    "DesignSpec",
    "LearnedDesign",
    "dmatrices",
    "dmatrix",
    "encode_partition",
    "learn_design",
    "schema_pass",
]

_MODULES = {
    "DesignChunk": "materialize",
    "DesignSpec": "spec",
    "LearnedDesign": "schema",
    "dmatrices": "dmatrices",
    "dmatrix": "dmatrices",
    "encode_partition": "materialize",
    "learn_design": "schema",
    "schema_pass": "schema",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
