"""The distinct values of a column, learned out of core, and the knots of
``cr``/``cs``/``cc(x, df=...)`` placed at their percentiles.

formulaic places a cubic regression spline's inner knots at equally spaced
percentiles of the *distinct* values of ``x`` within the bounds
(``numpy.unique``, then ``numpy.nanpercentile``). No fixed-size summary gives those
exactly, but the set of distinct values merges exactly: each partition keeps the
sorted distinct finite values of its column (``numpy.unique``) in the schema pass,
and the partitions' sets merge by sorted union (``numpy.union1d``). The merged
array is the one ``numpy.unique`` gives on the whole column, so formulaic's own knot
placement applied to it gives its knots bit for bit, whatever the partitioning.

The merged set is capped at :data:`MAX_DISTINCT` values (8 MB of float64): a
column with more distinct values is refused, naming it, with the ways around (give
the knots, or use ``bs(x, df=...)``, whose quantile knots are learned exactly
without holding the values). Once a merge passes the cap the values are dropped,
so the memory used stays bounded.

``-0.0`` is recorded as ``+0.0`` (they are equal, and ``numpy.unique`` keeps either),
so the knots do not depend on which one a partition held.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

import numpy as np

from shardfit.errors import DesignError

__all__ = ["MAX_DISTINCT", "DistinctValues", "cubic_inner_knots"]

#: The most distinct values of ``x`` a ``cr``/``cs``/``cc(x, df=...)`` call may have.
MAX_DISTINCT = 1_000_000


@dataclass(frozen=True)
class DistinctValues:
    """The sorted distinct values of a column's rows seen so far, or, once there are
    more than :data:`MAX_DISTINCT` of them, only a lower bound on their count.

    Attributes
    ----------
    values : numpy.ndarray or None
        Sorted distinct float64 values; ``None`` once over the cap.
    count : int
        How many distinct values (at least this many when ``values`` is ``None``).
    """

    values: np.ndarray | None
    count: int

    @classmethod
    def of(cls, values: np.ndarray) -> DistinctValues:
        """The distinct values of ``values`` (already finite and within the bounds)."""
        distinct = np.unique(np.asarray(values, dtype=np.float64) + 0.0)  # -0.0 -> +0.0
        return cls._capped(distinct)

    @classmethod
    def _capped(cls, distinct: np.ndarray) -> DistinctValues:
        if distinct.size > MAX_DISTINCT:
            return cls(None, int(distinct.size))
        return cls(distinct, int(distinct.size))

    @property
    def over_cap(self) -> bool:
        """Whether there are more distinct values than :data:`MAX_DISTINCT`."""
        return self.values is None

    def merge(self, other: DistinctValues) -> DistinctValues:
        """The sorted union of both operands' values (exact)."""
        if self.values is None or other.values is None:
            return DistinctValues(None, max(self.count, other.count))
        return DistinctValues._capped(np.union1d(self.values, other.values))


def _column_text(key: str) -> str:
    """The expression a spline call's key applies to (``x`` in ``cr(x, df=4)``)."""
    try:
        call = ast.parse(key, mode="eval").body
    except SyntaxError:
        return key
    if isinstance(call, ast.Call) and call.args:
        return ast.unparse(call.args[0])
    return key


def _inner_knot_count(key: str, df: int, constraints: Any, cyclic: bool) -> int:
    """How many inner knots formulaic's ``cubic_spline`` places for ``df``: ``df - 2``
    plus one per constraint, plus one when cyclic (with its check of ``df``)."""
    if constraints is None:
        n_constraints = 0
    elif isinstance(constraints, str):  # "center": one constraint, learned later
        n_constraints = 1
    else:
        n_constraints = int(np.atleast_2d(np.asarray(constraints, dtype=np.float64)).shape[0])
    min_df = 2 if not cyclic and n_constraints == 0 else 1
    if df < min_df:
        raise DesignError(f"{key}: 'df'={df} must be greater than or equal to {min_df}")
    return df - 2 + n_constraints + (1 if cyclic else 0)


def cubic_inner_knots(
    key: str,
    distinct: DistinctValues | None,
    arguments: dict[str, Any],
    lower_bound: float,
    upper_bound: float,
) -> list[float]:
    """The inner knots formulaic places for ``cr``/``cs``/``cc(x, df=...)`` given the
    distinct values of ``x`` over all rows, computed by formulaic's own function.

    Parameters
    ----------
    key : str
        The call (``cr(x, df=4)``), named in errors.
    distinct : DistinctValues or None
        The merged distinct finite values of ``x`` within the bounds (``None``: no
        rows).
    arguments : dict
        The call's arguments (``df``, ``constraints``, ``cyclic``).
    lower_bound, upper_bound : float
        The bounds (given, or learned from all rows).

    Raises
    ------
    DesignError
        If ``x`` has more than :data:`MAX_DISTINCT` distinct values, or too few to
        place the knots.
    """
    from formulaic.transforms.cubic_spline import _get_all_sorted_knots

    if distinct is not None and distinct.over_cap:
        raise DesignError(
            f"{key}: column {_column_text(key)!r} has more than {MAX_DISTINCT:,} distinct "
            f"values (at least {distinct.count:,}); formulaic places the knots of "
            f"{arguments['kind']}(x, df=...) at percentiles of the distinct values, which "
            "shardfit learns out of core only up to that many. Give the interior knots "
            f"({arguments['kind']}(x, knots=[...])) or use bs(x, df=...) (exact quantile "
            "knots for any number of values)"
        )
    n_inner = _inner_knot_count(
        key, arguments["df"], arguments.get("constraints"), bool(arguments.get("cyclic"))
    )
    values = np.array([], dtype=np.float64) if distinct is None else distinct.values
    try:
        # formulaic keeps the values within the bounds, takes numpy.unique (the merged
        # set already is) and numpy.nanpercentile: the same call on the same array.
        knots = _get_all_sorted_knots(
            values, lower_bound, upper_bound, n_inner_knots=n_inner, inner_knots=None
        )
    except ValueError as error:
        raise DesignError(f"{key}: {error}") from error
    return [float(k) for k in knots[1:-1]]
