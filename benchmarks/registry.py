"""Every benchmark case by name: a plain dict. Later issues add their cases here.

A placeholder has ``pending`` set; the runner lists it as skipped with that reason.
"""

from __future__ import annotations

from benchmarks.case import Case
from benchmarks.design_store import CASES as DESIGN_STORE
from benchmarks.distributed import CASES as DISTRIBUTED
from benchmarks.ensemble import CASES as ENSEMBLE
from benchmarks.glm import CASES as GLM
from benchmarks.linear import CASES as LINEAR
from benchmarks.streaming import CASES as STREAMING
from benchmarks.svd import CASES as SVD

__all__ = ["CASES"]


def _pending(name: str, description: str, issue: int) -> Case:
    return Case(name, description, pending=f"not implemented yet (issue {issue})")


CASES: dict[str, Case] = {
    **LINEAR,
    **GLM,
    **DISTRIBUTED,
    **STREAMING,
    **ENSEMBLE,
    **SVD,
    **DESIGN_STORE,
}
