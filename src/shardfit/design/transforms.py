"""Stateful transforms (``center``, ``scale``, ``standardize``, the splines
``bs``, ``cr``/``cs``, ``cc``, and orthogonal ``poly``) learned out of core.

formulaic's own transforms learn their state (a mean, a standard deviation) from the
data they are first applied to, which for shardfit would be one partition. Here the
state is learned in two steps: on each partition a *learning* transform records exact
sums (:class:`~shardfit.stats.exact_sum.ExactSum`) in the state dict, the sums merge
across partitions, and :func:`finalize_state` turns them into formulaic's state
(``{"ddof", "center", "scale"}``). The *applying* transforms then use that state on
every partition, so every partition, whatever the partitioning, is transformed by
bitwise the same mean and scale.

The splines learn their bounds (the minimum and maximum of ``x``, unless given) and,
for ``bs(x, df=...)``, interior knots at quantiles of ``x``; for ``cr``/``cs``/``cc(x,
df=...)``, at percentiles of the distinct values of ``x``, which the schema pass
collects whole (:mod:`shardfit.design.distinct_values`, up to a cap). The learning transforms
record the count, the extremes and a histogram of the values' order-preserving keys
(:mod:`shardfit.design.quantiles`); when knots are quantiles, further passes
(:func:`spline_searches`, :func:`select_context`) find the exact order statistics,
and :func:`finalize_state` computes the knots with NumPy's interpolation formula and
hands them to formulaic's own transform, which records its state exactly as it does
in memory. The applying transforms are formulaic's own, refusing to run without
learned state (they would otherwise learn from one partition).

Orthogonal ``poly()`` and the centering constraint of ``cr``/``cs``/``cc(...,
constraints="center")`` need sums over all rows of values that depend on state
learned before (the recurrence's earlier coefficients, the knots): after
:func:`finalize_state` their state carries a pending request, and the moments passes
of :mod:`shardfit.design.basis_moments` complete it.

Which rows count: as for ``center``/``scale``, every row whose ``x`` is finite, also
rows that the fit drops for a missing value in another column (the response, another
predictor). That is what formulaic's ``model_matrix(formula, df)`` and statsmodels'
``ols(formula, df, missing="drop")`` do in memory: both learn a transform's state
before dropping incomplete rows (not ``model_matrix(formula, df.dropna())``). Rows
whose ``x`` is NaN or infinite never count (formulaic's ``nanquantile`` skips NaN;
shardfit treats infinity as missing).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
from formulaic.transforms.contrasts import UNSET, TreatmentContrasts
from formulaic.utils.stateful_transforms import stateful_transform

from shardfit.design.basis_moments import (
    POLY_KEY,
    _column,
    apply_poly,
    centering_request,
    finalize_poly,
    formulaic_cubic_state,
    learn_poly,
    merge_poly,
)
from shardfit.errors import DesignError
from shardfit.stats.exact_sum import ExactSum

__all__ = [
    "MERGEABLE_TRANSFORMS",
    "SPLINE_TRANSFORMS",
    "apply_context",
    "finalize_state",
    "found_in",
    "learning_context",
    "merge_found",
    "merge_learned_state",
    "select_context",
    "select_state",
    "spline_searches",
]

MERGEABLE_TRANSFORMS = ("center", "scale", "standardize")
#: Spline transforms learned out of core (``cr``/``cs``/``cc`` with ``knots=`` or
#: ``df=``, optionally ``constraints=``).
SPLINE_TRANSFORMS = ("bs", "cr", "cs", "cc")
_LEARN_KEY = "_shardfit_sums"
_SPLINE_KEY = "_shardfit_spline"
_SELECT_KEY = "_shardfit_select"
_FOUND_KEY = "_shardfit_found"


@stateful_transform
def _learn_scale(
    data: Any,
    center: bool | float = True,
    scale: bool | float = True,
    ddof: float = 1,
    _state: dict = {},  # noqa: B006 - formulaic replaces it with the factor's state
) -> np.ndarray:
    values = _column(data, "center()/scale()/standardize()")
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
    values = _column(data, "center()/scale()/standardize()")
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


# -- splines --------------------------------------------------------------------------

_EXTRAPOLATIONS = ("raise", "clip", "na", "zero", "extend")


def _spline_arguments(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments that shape its state, checked as formulaic checks them."""
    if args.get("df") is not None and args.get("knots") is not None:
        raise DesignError(f"{kind}(): you cannot specify both `df` and `knots`")
    extrapolation = args.get("extrapolation")
    extrapolation = str(getattr(extrapolation, "value", extrapolation))
    if extrapolation not in _EXTRAPOLATIONS:
        raise DesignError(f"{kind}(): unknown extrapolation {extrapolation!r}")
    knots = args.get("knots")
    out = {
        "kind": kind,
        "df": None if args.get("df") is None else int(args["df"]),
        "knots": None if knots is None else [float(k) for k in knots],
        "lower_bound": args.get("lower_bound"),
        "upper_bound": args.get("upper_bound"),
        "extrapolation": extrapolation,
    }
    if kind == "bs":
        out["degree"] = int(args["degree"])
        out["include_intercept"] = bool(args["include_intercept"])
    else:
        out["cyclic"] = kind == "cc"
        if args.get("df") is None and args.get("knots") is None:
            raise DesignError(f"{kind}(): must specify either 'df' or 'knots'")
        out["constraints"] = _constraints_argument(kind, args.get("constraints"))
    return out


def _constraints_argument(kind: str, constraints: Any) -> str | list[list[float]] | None:
    """``"center"`` (learned: the means of the basis over all rows), a given array
    of constraints (as nested lists), or ``None``."""
    if constraints is None:
        return None
    if isinstance(constraints, str):
        if constraints != "center":
            raise DesignError(
                f"{kind}(): constraints must be 'center' or an array, got {constraints!r}"
            )
        return constraints
    return np.atleast_2d(np.asarray(constraints, dtype=np.float64)).tolist()


def _quantile_count(arguments: dict[str, Any]) -> int:
    """How many interior knots are quantiles of x (``bs(x, df=...)``), else 0."""
    if arguments["kind"] != "bs" or not arguments["df"]:
        return 0
    nknots = arguments["df"] - arguments["degree"] - (1 if arguments["include_intercept"] else 0)
    if nknots < 0:
        minimum = arguments["degree"] + (1 if arguments["include_intercept"] else 0)
        raise DesignError(f"bs(): invalid value for `df`: it must be greater than {minimum}")
    return nknots


def _spline_population(values: np.ndarray, arguments: dict[str, Any]) -> np.ndarray:
    """The values formulaic takes quantiles of: the finite ones, within the bounds
    given when extrapolation clips, NaNs or zeroes the values outside them."""
    finite = values[np.isfinite(values)]
    if arguments["extrapolation"] in ("clip", "na", "zero"):
        return _cubic_population(finite, arguments)
    return finite


def _takes_distinct(arguments: dict[str, Any]) -> bool:
    """Whether the call's knots are percentiles of the distinct values of x
    (``cr``/``cs``/``cc(x, df=...)``)."""
    return arguments["kind"] != "bs" and arguments["df"] is not None


def _cubic_population(finite: np.ndarray, arguments: dict[str, Any]) -> np.ndarray:
    """The finite values formulaic's cubic splines place knots among: those within
    the bounds given, whatever the extrapolation (``_get_all_sorted_knots`` keeps
    ``lower_bound <= x <= upper_bound``). Bounds not given are x's extremes, so they
    exclude nothing."""
    low, high = arguments["lower_bound"], arguments["upper_bound"]
    inside = np.ones(finite.size, dtype=bool)
    if low is not None:
        inside &= finite >= low
    if high is not None:
        inside &= finite <= high
    return finite[inside]


def _learn_spline(kind: str, data: Any, args: dict[str, Any], state: dict) -> np.ndarray:
    from shardfit.design.distinct_values import DistinctValues
    from shardfit.design.quantiles import LEVEL_BITS, KeyHistogram, monotone_keys

    values = _column(data, f"{kind}()")
    arguments = _spline_arguments(kind, args)
    finite = values[np.isfinite(values)]
    low, high = arguments["lower_bound"], arguments["upper_bound"]
    if arguments["extrapolation"] == "raise" and (
        (low is not None and bool((finite < low).any()))
        or (high is not None and bool((finite > high).any()))
    ):
        raise DesignError(
            f"{kind}(): some values extend beyond the bounds ({low}, {high}); pass "
            "extrapolation= to say how to treat them (as formulaic requires)"
        )
    population = _spline_population(values, arguments)
    learned: dict[str, Any] = {
        "arguments": arguments,
        "n": int(population.size),
        # + 0.0 makes -0.0 +0.0: the extremes merge with min()/max(), which keep
        # whichever zero came first, so the learned bounds would otherwise depend on
        # the partitioning (in their sign only; both are equal numbers).
        "min": float(finite.min()) + 0.0 if finite.size else np.inf,
        "max": float(finite.max()) + 0.0 if finite.size else -np.inf,
        "histogram": None,
    }
    if _quantile_count(arguments):
        learned["histogram"] = KeyHistogram.of(monotone_keys(population), 64 - LEVEL_BITS)
    if _takes_distinct(arguments):
        learned["distinct"] = DistinctValues.of(_cubic_population(finite, arguments))
    state[_SPLINE_KEY] = learned
    return values


@stateful_transform
def _learn_bs(
    x: Any,
    df: int | None = None,
    knots: Any = None,
    degree: int = 3,
    include_intercept: bool = False,
    lower_bound: float | None = None,
    upper_bound: float | None = None,
    extrapolation: str = "raise",
    _state: dict = {},  # noqa: B006
) -> np.ndarray:
    arguments = dict(locals())
    arguments.pop("x"), arguments.pop("_state")
    return _learn_spline("bs", x, arguments, _state)


def _cubic_learner(kind: str) -> Any:
    @stateful_transform
    def learn(
        x: Any,
        df: int | None = None,
        knots: Any = None,
        lower_bound: float | None = None,
        upper_bound: float | None = None,
        constraints: Any = None,
        extrapolation: str = "extend",
        _state: dict = {},  # noqa: B006
    ) -> np.ndarray:
        arguments = dict(locals())
        arguments.pop("x"), arguments.pop("_state")
        return _learn_spline(kind, x, arguments, _state)

    return learn


def _select_spline(x: Any, *args: Any, _state: dict = {}, **kwargs: Any) -> np.ndarray:  # noqa: B006
    """A spline call in the order-statistics pass: gather what ``_state`` requests."""
    from shardfit.design.quantiles import monotone_keys

    values = _column(x, "a spline")
    requests = _state.get(_SELECT_KEY)
    if requests:
        keys = monotone_keys(_spline_population(values, requests["arguments"]))
        _state[_FOUND_KEY] = {request: request.gather(keys) for request in requests["requests"]}
    return values


_select_spline_transform = stateful_transform(_select_spline)


@stateful_transform
def _apply_bs(x: Any, *args: Any, _state: dict = {}, **kwargs: Any) -> Any:  # noqa: B006
    from formulaic.transforms.basis_spline import basis_spline

    _require_state(_state, "bs")
    return basis_spline(x, *args, _state=_state, **kwargs)


def _cubic_applier(kind: str) -> Any:
    from formulaic.transforms import TRANSFORMS

    formulaic_transform = TRANSFORMS[kind]

    @stateful_transform
    def apply(x: Any, *args: Any, _state: dict = {}, **kwargs: Any) -> Any:  # noqa: B006
        _require_state(_state, kind)
        return formulaic_transform(x, *args, _state=formulaic_cubic_state(_state), **kwargs)

    return apply


def _require_state(state: dict, kind: str) -> None:
    # Without learned knots formulaic would learn them from this partition alone.
    if "knots" not in state:
        raise DesignError(
            f"{kind}() was applied without learned state; "
            "build the design with shardfit.design.learn_design first"
        )


def spline_searches(learned: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per spline call whose knots are quantiles, a :class:`RankSearch` for the order
    statistics they interpolate between (from the schema pass's merged histogram)."""
    from shardfit.design.quantiles import RankSearch, linear_ranks

    searches: dict[str, Any] = {}
    for key, state in learned.items():
        spline = state.get(_SPLINE_KEY)
        if spline is None:
            continue
        nknots = _quantile_count(spline["arguments"])
        if not nknots:
            continue
        n = spline["n"]
        if n == 0:
            raise DesignError(f"{key}: no finite values of x (within the bounds) to place knots at")
        _gamma, previous, following = linear_ranks(n, _probabilities(nknots))
        ranks = tuple(sorted({*previous.tolist(), *following.tolist()}))
        searches[key] = RankSearch(ranks, spline["histogram"])
    return searches


def _probabilities(nknots: int) -> np.ndarray:
    # formulaic: numpy.nanquantile(x, numpy.linspace(0, 1, nknots + 2))[1:-1]
    return np.linspace(0, 1, nknots + 2)[1:-1]


def select_state(
    learned: dict[str, dict[str, Any]], searches: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The transform state that makes :func:`select_context`'s transforms gather what
    each search requests next."""
    return {
        key: {
            _SELECT_KEY: {
                "arguments": learned[key][_SPLINE_KEY]["arguments"],
                "requests": search.requests(),
            }
        }
        for key, search in searches.items()
        if not search.done
    }


def merge_found(
    left: dict[str, dict[Any, Any]], right: dict[str, dict[Any, Any]]
) -> dict[str, dict[Any, Any]]:
    """Merge two partitions' gathered values and histograms, request by request."""
    from shardfit.design.quantiles import merge_gathered

    merged = {key: dict(value) for key, value in left.items()}
    for key, found in right.items():
        mine = merged.setdefault(key, {})
        for request, value in found.items():
            mine[request] = value if request not in mine else merge_gathered(mine[request], value)
    return merged


def found_in(transform_state: dict[str, dict[str, Any]]) -> dict[str, dict[Any, Any]]:
    """What the select transforms gathered, by call."""
    return {key: state[_FOUND_KEY] for key, state in transform_state.items() if _FOUND_KEY in state}


def learning_context() -> dict[str, Any]:
    """formulaic evaluation context whose transforms record mergeable sums."""
    return {
        "poly": learn_poly,
        "center": _learn_center,
        "scale": _learn_scale,
        "standardize": _learn_standardize,
        "bs": _learn_bs,
        "cr": _cubic_learner("cr"),
        "cs": _cubic_learner("cs"),
        "cc": _cubic_learner("cc"),
        "Treatment": _Treatment,
    }


def select_context() -> dict[str, Any]:
    """formulaic evaluation context whose splines gather order-statistic requests."""
    return {
        **learning_context(),
        **{kind: _select_spline_transform for kind in SPLINE_TRANSFORMS},
    }


def apply_context() -> dict[str, Any]:
    """formulaic evaluation context whose transforms apply finalized state."""
    return {
        "poly": apply_poly,
        "center": _apply_center,
        "scale": _apply_scale,
        "standardize": _apply_standardize,
        "bs": _apply_bs,
        "cr": _cubic_applier("cr"),
        "cs": _cubic_applier("cs"),
        "cc": _cubic_applier("cc"),
        "Treatment": _Treatment,
    }


def merge_learned_state(
    left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Merge two partitions' learned sums, key by key (exact integer addition)."""
    merged = {key: dict(value) for key, value in left.items()}
    for key, state in right.items():
        if not merged.get(key):
            merged[key] = dict(state)
            continue
        if not state:  # a call that learns nothing (poly(x, 2, True)): empty state
            continue
        if _SPLINE_KEY in state:
            merged[key] = {
                _SPLINE_KEY: _merged_spline(merged[key][_SPLINE_KEY], state[_SPLINE_KEY])
            }
            continue
        if POLY_KEY in state:
            merged[key] = {POLY_KEY: merge_poly(merged[key][POLY_KEY], state[POLY_KEY])}
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


def _merged_spline(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    histograms = [h for h in (mine["histogram"], theirs["histogram"]) if h is not None]
    merged: dict[str, Any] = {}
    if "distinct" in mine or "distinct" in theirs:
        both = [d for d in (mine.get("distinct"), theirs.get("distinct")) if d is not None]
        merged["distinct"] = both[0].merge(both[1]) if len(both) == 2 else next(iter(both), None)
    return {
        **merged,
        "arguments": mine["arguments"],
        "n": mine["n"] + theirs["n"],
        "min": min(mine["min"], theirs["min"]),
        "max": max(mine["max"], theirs["max"]),
        "histogram": (
            histograms[0].merge(histograms[1])
            if len(histograms) == 2
            else next(iter(histograms), None)
        ),
    }


def _finalized_spline(key: str, spline: dict[str, Any], search: Any) -> dict[str, Any]:
    """formulaic's own state for the call, computed by formulaic's transform from the
    bounds and interior knots learned over all rows."""
    from formulaic.transforms import TRANSFORMS

    from shardfit.design.quantiles import linear_quantiles, linear_ranks

    arguments = spline["arguments"]
    kind = arguments["kind"]
    low, high = arguments["lower_bound"], arguments["upper_bound"]
    if (low is None or high is None) and spline["min"] > spline["max"]:
        raise DesignError(f"{key}: no finite values of x to learn the spline's bounds from")
    # formulaic: float(numpy.nanmin(x)) / float(numpy.nanmax(x)) unless given.
    low = float(spline["min"]) if low is None else low
    high = float(spline["max"]) if high is None else high
    knots = arguments["knots"]
    if _takes_distinct(arguments):
        from shardfit.design.distinct_values import cubic_inner_knots

        knots = cubic_inner_knots(key, spline.get("distinct"), arguments, low, high)
    nknots = _quantile_count(arguments)
    if nknots:
        gamma, previous, following = linear_ranks(spline["n"], _probabilities(nknots))
        values = search.values
        quantiles = linear_quantiles(
            gamma, [values[int(r)] for r in previous], [values[int(r)] for r in following]
        )
        knots = quantiles.tolist()
    state: dict[str, Any] = {}
    options: dict[str, Any] = {"knots": knots, "lower_bound": low, "upper_bound": high}
    if kind == "bs":
        options.update(degree=arguments["degree"], include_intercept=arguments["include_intercept"])
    # The two-value input below lies within the bounds; extrapolation does not enter
    # the state.
    options["extrapolation"] = "clip"
    constraints = arguments.get("constraints")
    if isinstance(constraints, list):
        options["constraints"] = np.asarray(constraints, dtype=np.float64)
    try:
        TRANSFORMS[kind](np.array([low, high], dtype=np.float64), _state=state, **options)
    except ValueError as error:
        raise DesignError(f"{key}: {error}") from error
    if isinstance(state.get("constraints"), np.ndarray):  # JSON-safe, as saved
        state["constraints"] = state["constraints"].tolist()
    if constraints == "center":
        # The constraint is the basis's column means over all rows: one more pass,
        # now that the knots are known (shardfit.design.basis_moments).
        return centering_request(state, arguments["extrapolation"])
    return state


def finalize_state(
    learned: dict[str, dict[str, Any]], searches: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """Turn merged sums into formulaic's ``{"ddof", "center", "scale"}`` state, and
    spline summaries (with their finished order-statistic ``searches``) into
    formulaic's spline state (bounds and knots).

    ``poly()`` (degree 1 and up) and centred cubic splines come out with a pending
    request: :func:`shardfit.design.basis_moments.advance_moments` completes them.

    The mean and the standard deviation are computed in exact rational arithmetic
    and rounded once, so they do not depend on how the rows were partitioned.
    """
    final: dict[str, dict[str, Any]] = {}
    for key, state in learned.items():
        if _SPLINE_KEY in state:
            final[key] = _finalized_spline(key, state[_SPLINE_KEY], (searches or {}).get(key))
            continue
        if POLY_KEY in state:
            final[key] = finalize_poly(key, state[POLY_KEY])
            continue
        if _LEARN_KEY not in state:
            # A call that learned nothing (poly(x, 2, True), raw powers): no state, as
            # formulaic records none.
            final[key] = {}
            continue
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
