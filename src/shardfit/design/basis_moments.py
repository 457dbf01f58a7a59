"""Orthogonal ``poly()`` and centred cubic splines, learned out of core pass by pass.

Both states are sums over all rows of values that depend on state learned before:

- ``poly(x, degree)``: formulaic's monic three-term recurrence
  ``P_0 = 1``, ``P_{k+1} = (x - alpha_k) P_k - (norms2_k / norms2_{k-1}) P_{k-1}``
  keeps ``alpha_k = sum(x P_k**2) / sum(P_k**2)`` (``k < degree``) and
  ``norms2_k = sum(P_k**2)`` (``k <= degree``). ``alpha_0`` and ``norms2_0`` are the
  mean and the count of ``x`` (the schema pass); pass ``k`` evaluates ``P_k`` on each
  row with the state known so far and sums ``P_k**2`` and ``x P_k**2``. Degree ``d``
  takes ``d`` passes; all the calls of a formula advance in the same passes.
- ``cr``/``cs``/``cc(..., constraints="center")``: formulaic's constraint is the
  column means of the unconstrained basis over all rows, one pass once the knots are
  known.

The sums are exact (:class:`~shardfit.stats.exact_sum.ExactSum`) and rounded once, so
the state is bitwise the same for any partitioning; it equals formulaic's
``numpy.sum`` in memory to within its rounding. Rows count as for ``center()``: every
row whose ``x`` is finite, also rows the fit drops for a missing response (formulaic
learns before dropping). Where formulaic in memory would give NaN (a NaN ``x`` in
the centred spline's mean, or an out-of-bounds ``x`` with ``extrapolation="na"``),
those rows are left out here.

The finalized state is JSON-safe (string keys, lists): the appliers hand formulaic its
own types (integer keys, an array of constraints).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from formulaic.utils.stateful_transforms import stateful_transform

from shardfit.errors import DesignError
from shardfit.stats.exact_sum import ExactSum

__all__ = [
    "POLY_KEY",
    "advance_moments",
    "apply_poly",
    "centering_request",
    "finalize_poly",
    "formulaic_cubic_state",
    "learn_poly",
    "merge_moments",
    "merge_poly",
    "moment_sums_in",
    "moments_context",
    "pending_moments",
]

#: Key of ``poly()``'s schema-pass summary in a learned state.
POLY_KEY = "_shardfit_poly"
_PENDING_KEY = "_shardfit_moments"
_FOUND_KEY = "_shardfit_moment_sums"


def _column(data: Any, call: str = "poly()") -> np.ndarray:
    """``data`` as a float64 vector (a one-column matrix flattened); ``call`` names the
    transform in the error for a wider matrix."""
    values = np.asarray(data, dtype=np.float64)
    if values.ndim > 1:
        if values.shape[1] != 1:
            raise DesignError(
                f"{call} applies to one column at a time; got {values.shape[1]} columns"
            )
        values = values[:, 0]
    return values


def _formulaic_poly() -> Any:
    from formulaic.transforms import TRANSFORMS

    return TRANSFORMS["poly"]


def _degree(degree: Any) -> int:
    value = int(degree)
    if value < 0:
        raise DesignError(f"poly(): degree must be >= 0, got {degree!r}")
    return value


# -- poly: schema pass ----------------------------------------------------------------


@stateful_transform
def learn_poly(
    x: Any,
    degree: int = 1,
    raw: bool = False,
    _state: dict = {},  # noqa: B006 - formulaic replaces it with the factor's state
) -> Any:
    """``poly()`` in the schema pass: the count and exact sum of the finite ``x``
    (``norms2_0`` and ``alpha_0``); ``raw=True`` learns nothing."""
    if raw:
        return _formulaic_poly()(x, degree, raw=True)
    values = _column(x)
    finite = values[np.isfinite(values)]
    _state[POLY_KEY] = {
        "degree": _degree(degree),
        "n": int(finite.size),
        "sum": ExactSum.of(finite).numerator,
    }
    return values


def merge_poly(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Two partitions' ``poly()`` summaries added (exact integers)."""
    return {**mine, "n": mine["n"] + theirs["n"], "sum": mine["sum"] + theirs["sum"]}


def finalize_poly(key: str, learned: dict[str, Any]) -> dict[str, Any]:
    """The state after the schema pass: ``alpha_0``, ``norms2_0`` and, for degree 1
    and up, the request for the first recurrence pass."""
    n = learned["n"]
    if n == 0:
        raise DesignError(f"{key}: no finite values of x to learn the polynomial basis from")
    norm0 = float(n)
    # formulaic: numpy.sum(x * P_0**2) / numpy.sum(P_0**2), two sums then a division.
    alpha0 = ExactSum(learned["sum"]).value() / norm0
    alpha = {"0": alpha0} if learned["degree"] >= 1 else {}
    return _poly_state(learned["degree"], alpha, {"0": norm0})


def _poly_state(degree: int, alpha: dict[str, float], norms2: dict[str, float]) -> dict[str, Any]:
    if len(norms2) > degree:  # norms2_0 .. norms2_degree known: done
        return {"alpha": alpha, "norms2": norms2}
    return {_PENDING_KEY: {"kind": "poly", "degree": degree, "alpha": alpha, "norms2": norms2}}


def _recurrence(x: np.ndarray, alpha: dict[str, float], norms2: dict[str, float]) -> np.ndarray:
    """``P_k`` on ``x``, ``k = len(norms2)``, with formulaic's floating-point steps."""
    k = len(norms2)
    previous, current = np.zeros_like(x), np.ones_like(x)
    for i in range(1, k + 1):
        following = (x - alpha[str(i - 1)]) * current
        if i >= 2:
            following -= (norms2[str(i - 1)] / norms2[str(i - 2)]) * previous
        previous, current = current, following
    return current


@stateful_transform
def _moments_poly(
    x: Any,
    degree: int = 1,
    raw: bool = False,
    _state: dict = {},  # noqa: B006
) -> Any:
    request = _state.get(_PENDING_KEY)
    values = _column(x)
    if raw or not request:
        return values
    finite = values[np.isfinite(values)]
    p = _recurrence(finite, request["alpha"], request["norms2"])
    squares = p * p
    weighted = finite * squares
    if not (np.isfinite(squares).all() and np.isfinite(weighted).all()):
        raise DesignError(
            f"poly(x, {degree}): the orthogonal polynomial of degree {len(request['norms2'])} "
            "overflows float64 on these values of x; rescale x (or lower the degree)"
        )
    _state[_FOUND_KEY] = {
        "n": int(finite.size),
        "sums": [ExactSum.of(squares).numerator, ExactSum.of(weighted).numerator],
    }
    return values


@stateful_transform
def apply_poly(
    x: Any,
    degree: int = 1,
    raw: bool = False,
    _state: dict = {},  # noqa: B006
) -> Any:
    """formulaic's ``poly()`` with the state learned over all rows."""
    if raw:
        return _formulaic_poly()(x, degree, raw=True)
    if "alpha" not in _state:
        raise DesignError(
            "poly() was applied without learned state; "
            "build the design with shardfit.design.learn_design first"
        )
    state = {
        "alpha": {int(k): float(v) for k, v in _state["alpha"].items()},
        "norms2": {int(k): float(v) for k, v in _state["norms2"].items()},
    }
    return _formulaic_poly()(x, degree, _state=state)


# -- centred cubic splines --------------------------------------------------------------


def centering_request(state: dict[str, Any], extrapolation: str) -> dict[str, Any]:
    """A finalized cubic spline state (knots known, no constraints yet) with the
    request for the pass that learns its centering constraint."""
    return {**state, _PENDING_KEY: {"kind": "center", "extrapolation": extrapolation}}


def formulaic_cubic_state(state: dict[str, Any]) -> dict[str, Any]:
    """The state as formulaic's cubic spline reads it (constraints as an array)."""
    constraints = state.get("constraints")
    if constraints is None or isinstance(constraints, np.ndarray):
        return state
    return {**state, "constraints": np.atleast_2d(np.asarray(constraints, dtype=np.float64))}


def _moments_cubic(kind: str) -> Any:
    @stateful_transform
    def moments(x: Any, *args: Any, _state: dict = {}, **kwargs: Any) -> Any:  # noqa: B006
        from formulaic.transforms.cubic_spline import _get_free_cubic_spline_matrix

        values = _column(x, f"{kind}()")
        request = _state.get(_PENDING_KEY)
        if not request:
            return values
        low, high = float(_state["lower_bound"]), float(_state["upper_bound"])
        inputs = values[np.isfinite(values)]
        # formulaic takes the means of the free basis on x as it evaluates it: clipped
        # under "clip", NaN (left out here) outside the bounds under "na".
        if request["extrapolation"] == "clip":
            inputs = np.clip(inputs, low, high)
        elif request["extrapolation"] == "na":
            inputs = inputs[(inputs >= low) & (inputs <= high)]
        knots = np.asarray(_state["knots"], dtype=np.float64)
        width = knots.size - (1 if _state["cyclic"] else 0)
        basis = (
            _get_free_cubic_spline_matrix(inputs, knots, cyclic=bool(_state["cyclic"]))
            if inputs.size
            else np.zeros((0, width))
        )
        _state[_FOUND_KEY] = {
            "n": int(inputs.size),
            "sums": [ExactSum.of(basis[:, j]).numerator for j in range(width)],
        }
        return values

    moments.__name__ = f"_moments_{kind}"
    return moments


# -- the passes -----------------------------------------------------------------------


def _passthrough(x: Any, *args: Any, _state: dict = {}, **kwargs: Any) -> Any:  # noqa: B006
    return _column(x, "a learned transform")


def moments_context() -> dict[str, Any]:
    """formulaic evaluation context whose ``poly`` and cubic splines sum what their
    pending request asks for; the other learned transforms pass ``x`` through."""
    passthrough = stateful_transform(_passthrough)
    return {
        "center": passthrough,
        "scale": passthrough,
        "standardize": passthrough,
        "bs": passthrough,
        "poly": _moments_poly,
        "cr": _moments_cubic("cr"),
        "cs": _moments_cubic("cs"),
        "cc": _moments_cubic("cc"),
    }


def pending_moments(final: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The states whose next sums a moments pass must gather (empty: all learned)."""
    return {key: dict(state) for key, state in final.items() if _PENDING_KEY in state}


def moment_sums_in(transform_state: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What one partition's moments pass summed, by call."""
    return {key: state[_FOUND_KEY] for key, state in transform_state.items() if _FOUND_KEY in state}


def merge_moments(
    left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Two partitions' sums added, call by call (exact integers)."""
    merged = dict(left)
    for key, found in right.items():
        mine = merged.get(key)
        merged[key] = (
            found
            if mine is None
            else {
                "n": mine["n"] + found["n"],
                "sums": [a + b for a, b in zip(mine["sums"], found["sums"], strict=True)],
            }
        )
    return merged


def advance_moments(
    final: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Each pending state advanced by one pass's merged sums."""
    advanced = dict(final)
    for key, state in final.items():
        request = state.get(_PENDING_KEY)
        if request is None:
            continue
        sums = found.get(key, {"n": 0, "sums": None})
        if request["kind"] == "poly":
            advanced[key] = _advance_poly(key, request, sums)
        else:
            advanced[key] = _centered(key, state, sums)
    return advanced


def _advance_poly(key: str, request: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    k = len(request["norms2"])
    if not found["n"]:
        raise DesignError(f"{key}: no finite values of x to learn the polynomial basis from")
    squares, weighted = found["sums"]
    norm = ExactSum(squares).value()
    _check_not_degenerate(key, request, k, norm)
    norms2 = {**request["norms2"], str(k): norm}
    alpha = dict(request["alpha"])
    if k < request["degree"]:
        alpha[str(k)] = ExactSum(weighted).value() / norm
    return _poly_state(request["degree"], alpha, norms2)


#: ``norms2_k / norms2_{k-1}`` (k >= 2) at or below this fraction of the mean square
#: of ``x`` is rounding noise (seen near 1e-31): ``P_k`` vanishes on every row.
_DEGENERATE_RATIO = 1e-24


def _check_not_degenerate(key: str, request: dict[str, Any], k: int, norm: float) -> None:
    """Refuse ``poly(x, degree)`` when ``x`` takes at most ``k <= degree`` distinct
    values: the monic ``P_k`` is then zero on every row (up to rounding), so
    ``norms2_k`` is zero or noise. formulaic gives NaN columns (a zero norm: every row
    dropped) or unit-norm rounding noise; here a zero norm would divide by zero."""
    norms2, alpha = request["norms2"], request["alpha"]
    if k == 1:
        # P_1 = x - mean, the mean rounded once from the exact sum: exactly zero on
        # every row of a constant column, and only there.
        degenerate = norm == 0.0
    else:
        mean_square = alpha["0"] ** 2 + norms2["1"] / norms2["0"]
        degenerate = norm / norms2[str(k - 1)] <= _DEGENERATE_RATIO * mean_square
    if not degenerate:
        return
    distinct = (
        "is constant" if k == 1 else f"takes at most {k} distinct values (to float64 precision)"
    )
    raise DesignError(
        f"{key}: x {distinct}, so its orthogonal polynomial of "
        f"degree {k} is zero on every row; poly() of degree {request['degree']} needs "
        f"at least {request['degree'] + 1} distinct values (formulaic gives NaN or "
        "rounding noise for that column): lower the degree or drop the term"
    )


def _centered(key: str, state: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
    n = found["n"]
    if not n:
        raise DesignError(f"{key}: no finite values of x to center the spline basis on")
    # The column means, each rounded once from the exact sum.
    means = [float(ExactSum(total).fraction() / n) for total in found["sums"]]
    out = {name: value for name, value in state.items() if name != _PENDING_KEY}
    out["constraints"] = [means]
    return out
