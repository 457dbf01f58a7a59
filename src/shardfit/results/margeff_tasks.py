"""What each partition computes for average marginal effects (runs on workers).

For a binary (logit, probit) or Poisson model the mean of a row is ``F(eta)``,
``eta = x'b`` (statsmodels' discrete models evaluate marginal effects without the
offset or exposure; ``with_offset`` adds the row's own). With ``f = F'`` and the
method's scaling ``g = f`` (``dy``) or ``g = f / F`` (``ey``), the effect of column
``j`` at a row is ``E_j = g(eta) b_j s_j``, ``s_j = x_j`` for the ``ex`` methods and 1
otherwise, and its derivative with respect to the estimates is

    dE_j / db_l = g'(eta) x_l b_j s_j + g(eta) s_j [j == l],

so summing over rows needs ``sum g``, ``sum g' x`` (``dydx``, ``eydx``) or
``sum g x`` and ``X' diag(g') X`` (``dyex``, ``eyex``): a partition returns the sums
of ``E`` and of its ``p x p`` Jacobian, which merge by addition. Dummy (0/1) and
count columns may instead get statsmodels' discrete changes: ``F(x | x_j = 1) -
F(x | x_j = 0)`` and ``(F(x | x_j + 1) - F(x | x_j - 1)) / 2`` (their logs' for
``eydx``), whose Jacobian rows are the same differences of ``f x / F^ey``.

Every partition also returns each design column's sum, minimum, maximum and whether
all its values are whole numbers: statsmodels' constant (zero variance), dummy and
count columns, and the column means of ``at="mean"``. For ``at="median"`` it returns
too, per column, the histogram of the top bits of the order-preserving keys of
:mod:`shardfit.design.quantiles` (the machinery of the spline knots), from which the
driver locates the middle ranks; :class:`MedianTask` passes then gather the values
(or finer histograms) around them, so the medians are exactly ``np.median``'s.

For ``at="all"`` each row's effects are written out (or brought back) by the
prediction writer: :class:`MargeffRows` is the worker-side model
(:func:`each_row_effects`, statsmodels' per-row ``_derivative_exog``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from scipy import special

from shardfit.data.partition import Partition
from shardfit.design.materialize import DesignChunk, encode_partition
from shardfit.design.quantiles import (
    LEVEL_BITS,
    KeyHistogram,
    Request,
    merge_gathered,
    monotone_keys,
)
from shardfit.design.spec import DesignSpec
from shardfit.errors import DesignError
from shardfit.results.prediction_tasks import Outputs, PredictionModel

__all__ = [
    "MargeffFitRows",
    "MargeffRows",
    "MargeffStatistic",
    "MargeffTask",
    "MedianGathered",
    "MedianTask",
    "each_row_effects",
    "row_effects",
]

Kind = Literal["logit", "probit", "poisson"]
Method = Literal["dydx", "eyex", "dyex", "eydx"]


def _mean_and_derivatives(kind: Kind, eta: np.ndarray) -> tuple[np.ndarray, ...]:
    """``F(eta)``, ``f = F'`` and ``f'`` in closed form (no clipping: statsmodels'
    discrete models evaluate them unclipped)."""
    if kind == "logit":
        mean = special.expit(eta)
        density = mean * (1 - mean)
        return mean, density, density * (1 - 2 * mean)
    if kind == "probit":
        density = np.exp(-0.5 * eta**2) / np.sqrt(2 * np.pi)
        return special.ndtr(eta), density, -eta * density
    mean = np.exp(eta)
    return mean, mean, mean


def _scaled(kind: Kind, eta: np.ndarray, ey: bool) -> tuple[np.ndarray, np.ndarray]:
    """``g`` and ``g'`` of the module notes: ``f`` and ``f'``, or for the ``ey``
    methods ``f / F`` and its derivative ``f' / F - (f / F)**2``."""
    mean, density, slope = _mean_and_derivatives(kind, eta)
    if not ey:
        return density, slope
    if kind == "poisson":  # f / F = 1 exactly
        return np.ones_like(eta), np.zeros_like(eta)
    ratio = density / mean
    return ratio, slope / mean - ratio**2


def row_effects(
    kind: Kind,
    method: Method,
    X: np.ndarray,
    params: np.ndarray,
    offset: np.ndarray | None,
    dummy_idx: tuple[int, ...] = (),
    count_idx: tuple[int, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """The sums over the rows of ``X`` of the marginal effects (``p``) and of their
    Jacobian with respect to ``params`` (``p x p``), as the module notes define them.

    ``offset`` (or ``None``) is added to ``x'b``. The columns of ``dummy_idx`` and
    ``count_idx`` get statsmodels' discrete changes instead of derivatives.
    """
    ey = method.startswith("ey")
    ex = method.endswith("ex")

    def linear(Z: np.ndarray) -> np.ndarray:
        eta = Z @ params
        return eta if offset is None else eta + offset

    eta = linear(X)
    g, slope = _scaled(kind, eta, ey)
    if ex:
        weighted = X * g[:, None]
        effects = params * weighted.sum(axis=0)
        jacobian = params[:, None] * ((X * slope[:, None]).T @ X)
        jacobian[np.diag_indices_from(jacobian)] += weighted.sum(axis=0)
    else:
        effects = params * g.sum()
        jacobian = np.outer(params, slope @ X)
        jacobian[np.diag_indices_from(jacobian)] += g.sum()

    def level(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean (its log for ``ey``) at rows ``Z`` and its gradient's row sum."""
        mean, density, _ = _mean_and_derivatives(kind, linear(Z))
        gradient = density / mean if ey else density
        return (np.log(mean) if ey else mean), gradient @ Z

    changes = [(j, 0.0, 1.0, False) for j in dummy_idx]
    changes += [(j, -1.0, 1.0, True) for j in count_idx]
    for j, low, high, half in changes:
        Z0, Z1 = X.copy(), X.copy()
        if half:  # a count: one down and one up from each row's own value
            Z0[:, j] += low
            Z1[:, j] += high
        else:  # a dummy: 0 and 1 in place of each row's value
            Z0[:, j] = low
            Z1[:, j] = high
        level0, gradient0 = level(Z0)
        level1, gradient1 = level(Z1)
        divisor = 2.0 if half else 1.0
        effects[j] = (level1 - level0).sum() / divisor
        jacobian[j] = (gradient1 - gradient0) / divisor
    return effects, jacobian


def each_row_effects(
    kind: Kind,
    method: Method,
    X: np.ndarray,
    params: np.ndarray,
    offset: np.ndarray | None,
    dummy_idx: tuple[int, ...] = (),
    count_idx: tuple[int, ...] = (),
) -> np.ndarray:
    """The marginal effects at each row of ``X`` (``n x p``), as statsmodels'
    ``_derivative_exog`` at ``at="all"``: ``g(eta) b_j s_j`` (module notes), and for
    the columns of ``dummy_idx`` and ``count_idx`` each row's discrete change."""
    eta = X @ params
    if offset is not None:
        eta = eta + offset
    g, _slope = _scaled(kind, eta, method.startswith("ey"))
    effects = g[:, None] * params[None, :]
    if method.endswith("ex"):
        effects *= X

    def level(Z: np.ndarray) -> np.ndarray:
        linear = Z @ params if offset is None else Z @ params + offset
        mean = _mean_and_derivatives(kind, linear)[0]
        return np.log(mean) if method.startswith("ey") else mean

    for j in dummy_idx:  # F(x | x_j = 1) - F(x | x_j = 0)
        Z = X.copy()
        Z[:, j] = 0.0
        low = level(Z)
        Z[:, j] = 1.0
        effects[:, j] = level(Z) - low
    for j in count_idx:  # (F(x | x_j + 1) - F(x | x_j - 1)) / 2
        Z = X.copy()
        Z[:, j] -= 1.0
        low = level(Z)
        Z[:, j] += 2.0
        effects[:, j] = (level(Z) - low) / 2
    return effects


@dataclass(frozen=True, eq=False)
class MargeffStatistic:
    """A partition's (or merged partitions') sums: rows, the design columns' sums,
    minima, maxima and whole-number flags, and, when effects were asked for, the sums
    of the effects and of their Jacobian; for ``at="median"``, each column's
    histogram of its keys' top :data:`~shardfit.design.quantiles.LEVEL_BITS` bits."""

    nobs: int
    column_sum: np.ndarray
    column_min: np.ndarray
    column_max: np.ndarray
    whole: np.ndarray
    effects: np.ndarray | None = None
    jacobian: np.ndarray | None = None
    rows_read: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    histograms: tuple[KeyHistogram, ...] | None = None

    @property
    def nrows(self) -> int:  # progress displays count rows read
        return self.rows_read

    def merge(self, other: MargeffStatistic) -> MargeffStatistic:
        """Both operands' rows: sums added, extremes and whole-number flags combined."""
        dropped = dict(self.dropped)
        for reason, n in other.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
        return MargeffStatistic(
            nobs=self.nobs + other.nobs,
            column_sum=self.column_sum + other.column_sum,
            column_min=np.fmin(self.column_min, other.column_min),
            column_max=np.fmax(self.column_max, other.column_max),
            whole=self.whole & other.whole,
            effects=None if self.effects is None else self.effects + other.effects,
            jacobian=None if self.jacobian is None else self.jacobian + other.jacobian,
            rows_read=self.rows_read + other.rows_read,
            dropped=dropped,
            histograms=(
                None
                if self.histograms is None or other.histograms is None
                else tuple(a.merge(b) for a, b in zip(self.histograms, other.histograms))
            ),
        )


@dataclass(frozen=True, eq=False)
class MargeffTask:
    """Encode a partition with the fit's design (dropping the rows the fit dropped)
    and return its :class:`MargeffStatistic`; ``effects`` ``False``: the column
    summaries only (``at="mean"``/``"zero"``, or the pass finding dummy columns).

    ``atexog`` holds ``(column, value)`` pairs set in every row before the effects
    (statsmodels' ``atexog`` dict), after the column summaries. ``median``: the
    statistic carries each column's key histogram too (``at="median"``); ``names``
    (the design's columns) name a column in errors.
    """

    spec: DesignSpec
    need_response: bool
    kind: Kind
    method: Method
    params: np.ndarray
    effects: bool
    with_offset: bool = False
    dummy_idx: tuple[int, ...] = ()
    count_idx: tuple[int, ...] = ()
    atexog: tuple[tuple[int, float], ...] = ()
    unseen: Literal["raise", "zero"] = "raise"
    median: bool = False
    names: tuple[str, ...] = ()

    def __call__(self, partition: Partition) -> MargeffStatistic:
        chunk, X = _dense_design(self.spec, partition, self.unseen, self.need_response)
        p = X.shape[1]
        empty = X.shape[0] == 0
        statistic = MargeffStatistic(
            nobs=X.shape[0],
            column_sum=X.sum(axis=0),
            # NaN for no rows: fmin/fmax in the merge then keep the other side's.
            column_min=np.full(p, np.nan) if empty else X.min(axis=0),
            column_max=np.full(p, np.nan) if empty else X.max(axis=0),
            whole=np.all(X % 1.0 == 0, axis=0),
            rows_read=chunk.rows_read,
            dropped={reason: n for reason, n in chunk.dropped.items() if n},
            histograms=_key_histograms(X, self.names, partition) if self.median else None,
        )
        if not self.effects:
            return statistic
        for column, value in self.atexog:
            X[:, column] = value
        offset = chunk.offset if self.with_offset else None
        effects, jacobian = row_effects(
            self.kind, self.method, X, self.params, offset, self.dummy_idx, self.count_idx
        )
        return MargeffStatistic(
            **{
                name: getattr(statistic, name)
                for name in ("nobs", "column_sum", "column_min", "column_max", "whole")
            },
            effects=effects,
            jacobian=jacobian,
            rows_read=statistic.rows_read,
            dropped=statistic.dropped,
            histograms=statistic.histograms,
        )


def _column_keys(X: np.ndarray, j: int, names: tuple[str, ...], partition: Partition) -> np.ndarray:
    """Column ``j``'s order-preserving keys; NaN (a transform's, such as ``np.log`` of
    a negative: missing values are dropped before) has no place in an order and
    ``np.median`` would return NaN, so it is refused, naming where."""
    column = X[:, j]
    bad = np.isnan(column)
    if bad.any():
        name = names[j] if j < len(names) else f"column {j}"
        raise DesignError(
            f"get_margeff(at='median'): the design column {name!r} is NaN in "
            f"{int(bad.sum())} rows of partition {partition.key} (first: its row "
            f"{int(np.flatnonzero(bad)[0])}), so it has no median"
        )
    return monotone_keys(column)


def _key_histograms(
    X: np.ndarray, names: tuple[str, ...], partition: Partition
) -> tuple[KeyHistogram, ...]:
    """Each column's histogram of its keys' top bits (the first level of the search)."""
    return tuple(
        KeyHistogram.of(_column_keys(X, j, names, partition), 64 - LEVEL_BITS)
        for j in range(X.shape[1])
    )


#: What one cell request gathers: the values or finer histogram, and the least and
#: greatest key in the cell (``None``: no key there).
Gathered = tuple[Any, int | None, int | None]


@dataclass(frozen=True, eq=False)
class MedianGathered:
    """What a median pass merges: per design column, per request of its
    :class:`~shardfit.design.quantiles.RankSearch`, what the partitions gathered."""

    found: dict[int, dict[Request, Gathered]]
    rows_read: int = 0

    @property
    def nrows(self) -> int:  # progress displays count rows read
        return self.rows_read

    def merge(self, other: MedianGathered) -> MedianGathered:
        """Both operands' values and histograms merged, extremes combined."""
        found = {j: dict(cells) for j, cells in self.found.items()}
        for j, cells in other.found.items():
            mine = found.setdefault(j, {})
            for request, (values, low, high) in cells.items():
                if request not in mine:
                    mine[request] = (values, low, high)
                    continue
                values0, low0, high0 = mine[request]
                lows = [k for k in (low0, low) if k is not None]
                highs = [k for k in (high0, high) if k is not None]
                mine[request] = (
                    merge_gathered(values0, values),
                    min(lows) if lows else None,
                    max(highs) if highs else None,
                )
        return MedianGathered(found, self.rows_read + other.rows_read)


def _dense_design(
    spec: DesignSpec,
    partition: Partition,
    unseen: Literal["raise", "zero"],
    need_response: bool,
) -> tuple[DesignChunk, np.ndarray]:
    """A partition's encoded chunk (rows with a missing value dropped) and its design
    as a dense float array."""
    chunk = encode_partition(
        spec, partition, missing="drop", unseen=unseen, need_response=need_response
    )
    X = chunk.X if isinstance(chunk.X, np.ndarray) else chunk.X.toarray()
    return chunk, np.asarray(X, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class MedianTask:
    """Encode a partition as :class:`MargeffTask` does and gather, per design column,
    what its rank search requests: the keys of a histogram cell or the histogram of
    their next bits, with the cell's least and greatest key (when they are equal the
    driver knows every value of the cell without refining further: ties, dummies)."""

    spec: DesignSpec
    need_response: bool
    requests: tuple[tuple[int, tuple[Request, ...]], ...]
    unseen: Literal["raise", "zero"] = "raise"
    names: tuple[str, ...] = ()

    def __call__(self, partition: Partition) -> MedianGathered:
        chunk, X = _dense_design(self.spec, partition, self.unseen, self.need_response)
        found: dict[int, dict[Request, Gathered]] = {}
        for j, requests in self.requests:
            keys = _column_keys(X, j, self.names, partition)
            cells: dict[Request, Gathered] = {}
            for request in requests:
                inside = request.select(keys)
                low = int(inside.min()) if inside.size else None
                high = int(inside.max()) if inside.size else None
                cells[request] = (request.gather(keys), low, high)
            found[j] = cells
        return MedianGathered(found, chunk.rows_read)


@dataclass(frozen=True, eq=False)
class MargeffRows(PredictionModel):
    """The worker-side model of ``get_margeff(at="all")`` for the prediction writer
    (:func:`shardfit.results.prediction_output.write_predictions`) and the in-memory
    gather: each row's effects (:func:`each_row_effects`) of the design columns
    ``effect_idx``, in columns ``output_names`` (``dydx_x1``...). The base class's
    covariance fields are unused (statsmodels gives no standard errors per row).

    This class reads the predictors only; :class:`MargeffFitRows` the fit's whole
    design, so the rows the fit dropped (a missing response) are dropped again.
    """

    kind: Kind = "logit"
    method: Method = "dydx"
    effect_idx: tuple[int, ...] = ()
    output_names: tuple[str, ...] = ()
    dummy_idx: tuple[int, ...] = ()
    count_idx: tuple[int, ...] = ()
    atexog: tuple[tuple[int, float], ...] = ()

    needs_response: ClassVar[bool] = False
    label: ClassVar[str] = "margeff"

    def names(self, outputs: Outputs) -> tuple[str, ...]:
        return self.output_names

    def chunk_columns(
        self, chunk: DesignChunk, X: np.ndarray, outputs: Outputs
    ) -> dict[str, np.ndarray]:
        X = np.array(X, dtype=np.float64)  # a copy: atexog is set in it
        for column, value in self.atexog:
            X[:, column] = value
        effects = each_row_effects(
            self.kind, self.method, X, self.params, None, self.dummy_idx, self.count_idx
        )
        return {
            name: np.ascontiguousarray(effects[:, j])
            for name, j in zip(self.output_names, self.effect_idx)
        }


@dataclass(frozen=True, eq=False)
class MargeffFitRows(MargeffRows):
    """:class:`MargeffRows` reading the fit's whole design (response included)."""

    needs_response: ClassVar[bool] = True
