"""Every benchmark case by name: a plain dict. Later issues add their cases here.

A placeholder has ``pending`` set; the runner lists it as skipped with that reason.
"""

from __future__ import annotations

from benchmarks.case import Case
from benchmarks.linear import CASES as LINEAR

__all__ = ["CASES"]


def _pending(name: str, description: str, issue: int) -> Case:
    return Case(name, description, pending=f"not implemented yet (issue {issue})")


CASES: dict[str, Case] = {
    **LINEAR,
    "glm_logit": _pending("glm_logit", "logistic GLM on logit with the full quadratic formula", 6),
    "debiased_lasso": _pending(
        "debiased_lasso", "one-shot debiased lasso on 8 partitions vs statsmodels", 7
    ),
    "elastic_net": _pending(
        "elastic_net", "exact elastic-net path with 10-fold CV vs ElasticNetCV", 7
    ),
    "streaming_logit": _pending(
        "streaming_logit", "streaming hashed logistic learner vs Vowpal Wabbit and SGD", 8
    ),
}
