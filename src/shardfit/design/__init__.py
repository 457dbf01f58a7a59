"""Formula designs learned in a schema pass, applied identically to every partition."""

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
