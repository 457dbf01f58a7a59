"""Stateful transforms (``center``, ``scale``, ``standardize``) learned out of core.

formulaic's own transforms learn their state (a mean, a standard deviation) from the
data they are first applied to, which for shardfit would be one partition. Here the
state is learned in two steps: on each partition a *learning* transform records exact
sums (:class:`~shardfit.stats.exact_sum.ExactSum`) in the state dict, the sums merge
across partitions, and :func:`finalize_state` turns them into formulaic's state
(``{"ddof", "center", "scale"}``). The *applying* transforms then use that state on
every partition, so every partition, whatever the partitioning, is transformed by
bitwise the same mean and scale.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
from formulaic.transforms.contrasts import UNSET, TreatmentContrasts
from formulaic.utils.stateful_transforms import stateful_transform

from shardfit.errors import DesignError
from shardfit.stats.exact_sum import ExactSum

__all__ = [
    "MERGEABLE_TRANSFORMS",
    "apply_context",
    "finalize_state",
    "learning_context",
    "merge_learned_state",
]

MERGEABLE_TRANSFORMS = ("center", "scale", "standardize")
_LEARN_KEY = "_shardfit_sums"


def _as_float_column(data: Any) -> np.ndarray:
    values = np.asarray(data, dtype=np.float64)
    if values.ndim > 1:
        if values.shape[1] != 1:
            raise DesignError("scale()/center() apply to one column at a time")
        values = values[:, 0]
    return values


@stateful_transform
def _learn_scale(
    data: Any,
    center: bool | float = True,
    scale: bool | float = True,
    ddof: float = 1,
    _state: dict = {},  # noqa: B006 - formulaic replaces it with the factor's state
) -> np.ndarray:
    values = _as_float_column(data)
    finite = values[np.isfinite(values)]
    _state[_LEARN_KEY] = {
        "center": center if isinstance(center, bool) else float(center),
        "scale": scale if isinstance(scale, bool) else float(scale),
        "ddof": float(ddof),
        "n": int(finite.size),
        "sum": ExactSum.of(finite).to_state()["numerator"],
        "sumsq": ExactSum.of_squares(finite).to_state()["numerator"],
    }
    return values


@stateful_transform
def _learn_center(data: Any, _state: dict = {}) -> np.ndarray:  # noqa: B006
    return _learn_scale(data, scale=False, _state=_state)


@stateful_transform
def _learn_standardize(
    data: Any,
    center: bool | float = True,
    rescale: bool | float = True,
    ddof: float = 0,
    _state: dict = {},  # noqa: B006
) -> np.ndarray:
    # formulaic's (and patsy's) standardize(): ``rescale=`` and the population
    # standard deviation (ddof=0), where scale() divides by n - 1.
    return _learn_scale(data, center=center, scale=rescale, ddof=ddof, _state=_state)


@stateful_transform
def _apply_scale(
    data: Any,
    center: bool | float = True,
    scale: bool | float = True,
    ddof: float = 1,
    _state: dict = {},  # noqa: B006
) -> np.ndarray:
    if "ddof" not in _state:
        raise DesignError(
            "a stateful transform was applied without learned state; "
            "build the design with shardfit.design.learn_design first"
        )
    values = _as_float_column(data)
    if _state["center"] is not None:
        values = values - _state["center"]
    if _state["scale"] is not None:
        values = values / _state["scale"]
    return values


@stateful_transform
def _apply_center(data: Any, _state: dict = {}) -> np.ndarray:  # noqa: B006
    return _apply_scale(data, scale=False, _state=_state)


@stateful_transform
def _apply_standardize(
    data: Any,
    center: bool | float = True,
    rescale: bool | float = True,
    ddof: float = 0,
    _state: dict = {},  # noqa: B006
) -> np.ndarray:
    return _apply_scale(data, _state=_state)


class _Treatment(TreatmentContrasts):
    """patsy's ``Treatment``, usable both called and bare.

    formulaic's patsy-compatible ``Treatment`` is a function, so ``C(g, Treatment)``
    (patsy's commonest spelling, where statsmodels users pass the class) reached
    formulaic as a custom contrast matrix and failed with "tuple index out of range".
    A subclass of ``TreatmentContrasts`` is what ``C()`` instantiates when given a
    class; ``__new__`` returns a plain ``TreatmentContrasts`` so the fast encoder's
    check of the contrasts' type, and every other use, see formulaic's own class.
    """

    def __new__(cls, reference: Any = UNSET) -> TreatmentContrasts:  # type: ignore[misc]
        return TreatmentContrasts(base=reference)


def learning_context() -> dict[str, Any]:
    """formulaic evaluation context whose transforms record mergeable sums."""
    return {
        "center": _learn_center,
        "scale": _learn_scale,
        "standardize": _learn_standardize,
        "Treatment": _Treatment,
    }


def apply_context() -> dict[str, Any]:
    """formulaic evaluation context whose transforms apply finalized state."""
    return {
        "center": _apply_center,
        "scale": _apply_scale,
        "standardize": _apply_standardize,
        "Treatment": _Treatment,
    }


def merge_learned_state(
    left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Merge two partitions' learned sums, key by key (exact integer addition)."""
    merged = {key: dict(value) for key, value in left.items()}
    for key, state in right.items():
        if key not in merged:
            merged[key] = dict(state)
            continue
        mine = merged[key][_LEARN_KEY]
        theirs = state[_LEARN_KEY]
        merged[key] = {
            _LEARN_KEY: {
                **mine,
                "n": mine["n"] + theirs["n"],
                "sum": hex(int(mine["sum"], 16) + int(theirs["sum"], 16)),
                "sumsq": hex(int(mine["sumsq"], 16) + int(theirs["sumsq"], 16)),
            }
        }
    return merged


def finalize_state(learned: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Turn merged sums into formulaic's ``{"ddof", "center", "scale"}`` state.

    The mean and the standard deviation are computed in exact rational arithmetic
    and rounded once, so they do not depend on how the rows were partitioned.
    """
    final: dict[str, dict[str, Any]] = {}
    for key, state in learned.items():
        sums = state[_LEARN_KEY]
        n = sums["n"]
        total = ExactSum.from_state({"numerator": sums["sum"]}).fraction()
        total_sq = ExactSum.from_state({"numerator": sums["sumsq"]}).fraction()
        ddof = Fraction(sums["ddof"])
        center_arg, scale_arg = sums["center"], sums["scale"]
        if center_arg is True:
            if n == 0:
                raise DesignError(f"{key}: no finite values to learn a mean from")
            center: Fraction | None = total / n
        elif center_arg is False:
            center = None
        else:
            center = Fraction(center_arg)
        if scale_arg is True:
            if n - ddof <= 0:
                raise DesignError(f"{key}: too few finite values ({n}) to learn a scale")
            c = center or Fraction(0)
            # sum((x - c)**2) = S2 - 2 c S1 + n c**2, exactly.
            sum_sq_dev = total_sq - 2 * c * total + n * c * c
            variance = sum_sq_dev / (n - ddof)
            scale: float | None = float(np.sqrt(float(variance)))
        elif scale_arg is False:
            scale = None
        else:
            scale = float(scale_arg)
        final[key] = {
            "ddof": float(sums["ddof"]),
            "center": None if center is None else float(center),
            "scale": scale,
        }
    return final
