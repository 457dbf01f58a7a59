"""The Newey-West (HAC) lag window as a mergeable statistic of consecutive rows.

HAC's meat is ``S = G_0 + sum_{l=1}^{L} k_l (G_l + G_l')`` with ``G_l = sum_t s_t
s_{t-l}'`` over the scores ``s_t`` in the order the rows are read (statsmodels'
``S_hac_simple``; ``k_l`` the kernel weights). Lags cross partition boundaries, so a
piece of consecutive rows keeps, besides its own sums, its first and last ``L``
scores: merging it with the piece that follows adds the products of the left piece's
last rows with the right piece's first rows (every pair less than ``L + 1`` rows
apart straddling the boundary) and keeps the outer head and tail. The engine merges
adjacent pieces only, left before right (:func:`~shardfit.engine.merge.tree_merge`),
and a partition's blocks in row order, which is what this needs. Memory is
``O(L x columns)`` per piece.

Two panel variants of statsmodels' ``get_robustcov_results`` build on it:

- ``cov_type="hac-panel"`` (``cov_nw_panel``): HAC within each run of consecutive rows
  of one group (a new run where the group value changes, or, by ``time``, where the
  time value decreases), summed over the runs. :class:`PanelLagWindow` is a lag
  window that also knows the key of its first and last rows, and pairs rows across a
  boundary only when the run goes on across it.
- ``cov_type="hac-groupsum"`` (Driscoll and Kraay, ``cov_nw_groupsum``): the scores
  summed within each time value, then HAC over the time values in sorted order.
  :class:`TimeScoreSums` keeps a sum per time value (merged by addition), at most
  :data:`MAX_TIME_VALUES` of them.

:class:`HacOptions` reads and checks the options of the three, shared by OLS/WLS and
GLMs, and :func:`hac_middle` turns a merged statistic into the sandwich's middle with
statsmodels' small-sample correction and inference degrees of freedom.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from shardfit.errors import DesignError

__all__ = [
    "AUTO_LAGS_RULE",
    "HAC_COV_TYPES",
    "HAC_KERNELS",
    "MAX_TIME_VALUES",
    "HacMiddle",
    "HacOptions",
    "LagWindow",
    "PanelLagWindow",
    "TimeScoreSums",
    "auto_maxlags",
    "hac_middle",
    "kernel_weights",
]

Kernel = Literal["bartlett", "uniform"]
HAC_KERNELS: tuple[str, ...] = ("bartlett", "uniform")
#: The covariances built on the lag window.
HAC_COV_TYPES: tuple[str, ...] = ("HAC", "hac-panel", "hac-groupsum")
#: The most distinct time values ``cov_type="hac-groupsum"`` keeps a score sum for
#: (each is a row of ``k`` floats on every worker and the driver): beyond it the fit
#: is refused naming the column, rather than growing without bound.
MAX_TIME_VALUES = 100_000
#: statsmodels' automatic lag (``S_hac_simple`` with ``nlags=None``), ``n`` the rows
#: of the scores: the observations for ``"HAC"``, the time values for
#: ``"hac-groupsum"``.
AUTO_LAGS_RULE = "floor(4 (n / 100)^(2/9))"


def auto_maxlags(periods: int) -> int:
    """statsmodels' ``S_hac_simple`` lag when ``nlags`` is None:
    ``int(np.floor(4 * (periods / 100.0) ** (2.0 / 9.0)))``."""
    return int(np.floor(4 * (periods / 100.0) ** (2.0 / 9.0)))


def kernel_weights(kernel: str, maxlags: int) -> np.ndarray:
    """``(maxlags + 1,)`` weights of lags ``0..maxlags``: statsmodels'
    ``weights_bartlett`` (``1 - l / (L + 1)``) or ``weights_uniform`` (ones)."""
    if kernel == "bartlett":
        return 1 - np.arange(maxlags + 1) / (maxlags + 1.0)
    if kernel == "uniform":
        return np.ones(maxlags + 1)
    raise ValueError(f"HAC kernel must be one of {HAC_KERNELS}; got {kernel!r}")


def _cross_lags(tail: np.ndarray, head: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum k_{d+j} head_j tail_d'`` over the pairs straddling a boundary (``tail``
    the rows before it, in order; ``head`` the rows after it), at most ``L`` apart."""
    # Pair (tail row d from the end, d = 1.., head row j = 0..) is d + j apart:
    # sum_{j,d} k_{d+j} b_j a_d' = B' W A with W[j, d] = k_{d+j} (0 past L).
    maxlags = weights.size - 1
    if not (tail.shape[0] and head.shape[0]):
        return np.zeros((head.shape[1], tail.shape[1]))
    distance = np.arange(head.shape[0])[:, None] + np.arange(1, tail.shape[0] + 1)[None, :]
    w = np.where(distance <= maxlags, weights[np.minimum(distance, maxlags)], 0.0)
    return head.T @ (w @ tail[::-1])


def _window_arrays(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of a saved lag window (``to_state``): kernel weights, Gram, lag sums,
    and the head and tail rows as ``(rows, k)`` (an empty one saves as ``(0,)``)."""
    k = np.asarray(state["gram"]).shape[0]
    arrays = {n: np.asarray(state[n], dtype=np.float64) for n in ("weights", "gram", "lagged")}
    for name in ("head", "tail"):
        arrays[name] = np.asarray(state[name], dtype=np.float64).reshape(-1, k)
    return arrays


@dataclass(frozen=True)
class LagWindow:
    """HAC sums of a run of consecutive rows' scores, mergeable with the next run.

    Attributes
    ----------
    weights : numpy.ndarray
        ``(L + 1,)`` kernel weights of lags ``0..L``.
    nrows : int
        Rows in the run.
    gram : numpy.ndarray
        ``G_0 = sum_t s_t s_t'``.
    lagged : numpy.ndarray
        ``sum_{l=1}^{L} k_l sum_t s_t s_{t-l}'`` over pairs inside the run (later row
        on the left).
    head, tail : numpy.ndarray
        The run's first and last ``min(nrows, L)`` scores (the same rows when the run
        has ``L`` rows or fewer).
    """

    weights: np.ndarray
    nrows: int
    gram: np.ndarray
    lagged: np.ndarray
    head: np.ndarray
    tail: np.ndarray

    @property
    def maxlags(self) -> int:
        return self.weights.size - 1

    @classmethod
    def of_scores(cls, scores: np.ndarray, weights: np.ndarray) -> LagWindow:
        """The statistic of ``scores`` (``(n, k)``, rows in order)."""
        n, k = scores.shape
        maxlags = weights.size - 1
        lagged = np.zeros((k, k))
        for lag in range(1, min(maxlags, n - 1) + 1):
            lagged += weights[lag] * (scores[lag:].T @ scores[:-lag])
        edge = min(n, maxlags)
        return cls(
            weights=weights,
            nrows=n,
            gram=scores.T @ scores,
            lagged=lagged,
            head=scores[:edge].copy(),
            tail=scores[n - edge :].copy(),
        )

    def merge(self, other: LagWindow) -> LagWindow:
        """This run followed by ``other``."""
        maxlags = self.maxlags
        lagged = self.lagged + other.lagged
        lagged = lagged + _cross_lags(self.tail, other.head, self.weights)
        head = self.head
        if self.nrows < maxlags:  # all of this run, then the start of the next
            head = np.vstack([self.head, other.head[: maxlags - self.nrows]])
        tail = other.tail
        if other.nrows < maxlags:  # the end of this run, then all of the next
            keep = maxlags - other.nrows
            tail = np.vstack(
                [self.tail[self.tail.shape[0] - min(keep, self.tail.shape[0]) :], other.tail]
            )
        return LagWindow(
            weights=self.weights,
            nrows=self.nrows + other.nrows,
            gram=self.gram + other.gram,
            lagged=lagged,
            head=head,
            tail=tail,
        )

    @property
    def meat(self) -> np.ndarray:
        """``S = G_0 + L + L'`` with ``L`` the weighted lag sums."""
        return self.gram + self.lagged + self.lagged.T

    def to_state(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "nrows": self.nrows,
            "gram": self.gram,
            "lagged": self.lagged,
            "head": self.head,
            "tail": self.tail,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LagWindow:
        return cls(nrows=int(state["nrows"]), **_window_arrays(state))


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python one (keys compare, hash and save as such)."""
    return value.item() if hasattr(value, "item") else value


PanelBy = Literal["groups", "time"]


def _run_ids(keys: np.ndarray, by: PanelBy) -> np.ndarray:
    """Each row's run number (from 0): statsmodels' ``get_robustcov_results`` starts a
    run where ``groups[t] != groups[t - 1]``, or where ``time[t] < time[t - 1]``."""
    if keys.size == 0:
        return np.zeros(0, dtype=np.intp)
    new = keys[1:] != keys[:-1] if by == "groups" else keys[1:] < keys[:-1]
    return np.concatenate([[0], np.cumsum(np.asarray(new, dtype=bool))]).astype(np.intp)


def _continues(last: Any, first: Any, by: PanelBy) -> bool:
    """Whether a run ending on key ``last`` goes on into a row of key ``first``."""
    return bool(last == first) if by == "groups" else not bool(first < last)


@dataclass(frozen=True)
class PanelLagWindow:
    """HAC sums within runs of one group, of consecutive rows, mergeable with the next.

    statsmodels' ``S_nw_panel``: ``G_0 + sum_l k_l (G_l + G_l')`` with ``G_l`` summing
    ``s_t s_{t-l}'`` over the pairs of rows ``l`` apart **in the same run**. A piece
    keeps the key of its first and last rows and the first and last ``L`` scores of
    its first and last runs only: the next piece's rows pair with them only when the
    run goes on across the boundary.

    Attributes
    ----------
    weights : numpy.ndarray
        ``(L + 1,)`` kernel weights of lags ``0..L``.
    by : {"groups", "time"}
        How runs are told apart: a change of group, or a decrease of time.
    nrows, runs : int
        Rows and runs in the piece.
    first, last : object
        The key (group or time value) of the first and last rows (None when empty).
    gram, lagged : numpy.ndarray
        As :class:`LagWindow`'s, pairs within runs only.
    head, tail : numpy.ndarray
        The first ``min(L, len)`` scores of the first run and the last ``min(L,
        len)`` of the last run.
    """

    weights: np.ndarray
    by: PanelBy
    nrows: int
    runs: int
    first: Any
    last: Any
    gram: np.ndarray
    lagged: np.ndarray
    head: np.ndarray
    tail: np.ndarray

    @property
    def maxlags(self) -> int:
        return self.weights.size - 1

    @classmethod
    def of_scores(
        cls, scores: np.ndarray, keys: np.ndarray, weights: np.ndarray, by: PanelBy
    ) -> PanelLagWindow:
        """The statistic of ``scores`` (``(n, k)``, rows in order) with each row's
        group or time value ``keys``."""
        n, k = scores.shape
        keys = np.asarray(keys)
        maxlags = weights.size - 1
        run = _run_ids(keys, by)
        lagged = np.zeros((k, k))
        for lag in range(1, min(maxlags, n - 1) + 1):
            # One product per lag over the pairs of one run (not a loop over runs).
            same = (run[lag:] == run[:-lag]).astype(np.float64)
            lagged += weights[lag] * (scores[lag:].T @ (scores[:-lag] * same[:, None]))
        if n == 0:
            empty = np.zeros((0, k))
            return cls(weights, by, 0, 0, None, None, np.zeros((k, k)), lagged, empty, empty)
        runs = int(run[-1]) + 1
        first_len = int(np.count_nonzero(run == 0))
        last_len = int(np.count_nonzero(run == run[-1]))
        return cls(
            weights=weights,
            by=by,
            nrows=n,
            runs=runs,
            first=_plain(keys[0]),
            last=_plain(keys[-1]),
            gram=scores.T @ scores,
            lagged=lagged,
            head=scores[: min(first_len, maxlags)].copy(),
            tail=scores[n - min(last_len, maxlags) :].copy(),
        )

    def merge(self, other: PanelLagWindow) -> PanelLagWindow:
        """This piece followed by ``other``."""
        if other.nrows == 0:
            return self
        if self.nrows == 0:
            return other
        maxlags = self.maxlags
        joined = _continues(self.last, other.first, self.by)
        lagged = self.lagged + other.lagged
        head, tail = self.head, other.tail
        if joined:
            lagged = lagged + _cross_lags(self.tail, other.head, self.weights)
            if self.runs == 1 and self.nrows < maxlags:  # the first run goes on
                head = np.vstack([self.head, other.head[: maxlags - self.nrows]])
            if other.runs == 1 and other.nrows < maxlags:  # the last run began before
                keep = min(maxlags - other.nrows, self.tail.shape[0])
                tail = np.vstack([self.tail[self.tail.shape[0] - keep :], other.tail])
        return PanelLagWindow(
            weights=self.weights,
            by=self.by,
            nrows=self.nrows + other.nrows,
            runs=self.runs + other.runs - int(joined),
            first=self.first,
            last=other.last,
            gram=self.gram + other.gram,
            lagged=lagged,
            head=head,
            tail=tail,
        )

    @property
    def meat(self) -> np.ndarray:
        """statsmodels' ``S_nw_panel``."""
        return self.gram + self.lagged + self.lagged.T

    def to_state(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "by": self.by,
            "nrows": self.nrows,
            "runs": self.runs,
            # A list: a saved None or value comes back as itself.
            "ends": [self.first, self.last],
            "gram": self.gram,
            "lagged": self.lagged,
            "head": self.head,
            "tail": self.tail,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PanelLagWindow:
        first, last = state["ends"]
        return cls(
            by=state["by"],
            nrows=int(state["nrows"]),
            runs=int(state["runs"]),
            first=first,
            last=last,
            **_window_arrays(state),
        )


def _too_many_times(column: str, cap: int, found: int) -> DesignError:
    return DesignError(
        f"cov_type='hac-groupsum': the time column {column!r} has more than {cap:,} "
        f"distinct values ({found:,} found so far); a score sum is kept in memory for "
        "each. Group the times into coarser periods, or raise "
        "shardfit.models.hac.MAX_TIME_VALUES"
    )


@dataclass(frozen=True)
class TimeScoreSums:
    """Per-time-value sums of the scores, and the decreases of time in the order read.

    statsmodels' ``S_hac_groupsum`` sums the scores within each time value before HAC
    over the time values; its inference degrees of freedom count the runs of
    non-decreasing time (``len(np.nonzero(time[1:] < time[:-1])[0]) + 1``, minus
    one), which a piece keeps as its internal decreases and its first and last time.

    Attributes
    ----------
    column : str
        The time column (named in errors).
    cap : int
        The most distinct time values (see :data:`MAX_TIME_VALUES`).
    keys : tuple
        The time values seen, in first-seen order.
    sums : numpy.ndarray
        ``(len(keys), k)`` score sums.
    nrows, decreases : int
        Rows, and rows whose time is below the previous row's.
    first, last : object
        The first and last rows' time (None when empty).
    """

    column: str
    cap: int
    keys: tuple[Any, ...]
    sums: np.ndarray
    nrows: int
    decreases: int
    first: Any
    last: Any

    @classmethod
    def of_scores(
        cls, scores: np.ndarray, times: np.ndarray, column: str, cap: int
    ) -> TimeScoreSums:
        """The statistic of ``scores`` (``(n, k)``, rows in order) at ``times``."""
        times = np.asarray(times)
        keys, inverse = np.unique(times, return_inverse=True)
        if keys.size > cap:
            raise _too_many_times(column, cap, int(keys.size))
        sums = np.zeros((keys.size, scores.shape[1]))
        np.add.at(sums, np.asarray(inverse).ravel(), scores)
        n = times.size
        return cls(
            column=column,
            cap=cap,
            keys=tuple(_plain(key) for key in keys),
            sums=sums,
            nrows=n,
            decreases=int(np.count_nonzero(times[1:] < times[:-1])) if n else 0,
            first=_plain(times[0]) if n else None,
            last=_plain(times[-1]) if n else None,
        )

    def merge(self, other: TimeScoreSums) -> TimeScoreSums:
        """This piece followed by ``other`` (sums by time value added)."""
        if other.nrows == 0 and not other.keys:
            return self
        if self.nrows == 0 and not self.keys:
            return other
        index = {key: i for i, key in enumerate(self.keys)}
        new_keys = [key for key in other.keys if key not in index]
        if len(self.keys) + len(new_keys) > self.cap:
            raise _too_many_times(self.column, self.cap, len(self.keys) + len(new_keys))
        for offset, key in enumerate(new_keys):
            index[key] = len(self.keys) + offset
        sums = np.vstack([self.sums, np.zeros((len(new_keys), self.sums.shape[1]))])
        rows = np.array([index[key] for key in other.keys], dtype=np.intp)
        if rows.size:
            np.add.at(sums, rows, other.sums)
        step_down = int(bool(other.first < self.last))
        return TimeScoreSums(
            column=self.column,
            cap=self.cap,
            keys=self.keys + tuple(new_keys),
            sums=sums,
            nrows=self.nrows + other.nrows,
            decreases=self.decreases + other.decreases + step_down,
            first=self.first,
            last=other.last,
        )

    @property
    def runs(self) -> int:
        """Runs of non-decreasing time (statsmodels' ``n_groups`` of hac-groupsum)."""
        return self.decreases + 1

    def sorted_sums(self) -> np.ndarray:
        """The sums in increasing time order (statsmodels' ``group_sums`` rows)."""
        try:
            order = sorted(range(len(self.keys)), key=lambda i: self.keys[i])
        except TypeError as error:
            raise DesignError(
                f"cov_type='hac-groupsum': the values of the time column {self.column!r} "
                f"cannot be ordered ({error})"
            ) from error
        return self.sums[order]

    def to_state(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "cap": self.cap,
            "keys": list(self.keys),
            "sums": self.sums,
            "nrows": self.nrows,
            "decreases": self.decreases,
            "ends": [self.first, self.last],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TimeScoreSums:
        first, last = state["ends"]
        return cls(
            column=state["column"],
            cap=int(state["cap"]),
            keys=tuple(state["keys"]),
            sums=np.asarray(state["sums"], dtype=np.float64),
            nrows=int(state["nrows"]),
            decreases=int(state["decreases"]),
            first=first,
            last=last,
        )


# -- options ------------------------------------------------------------------------------
# statsmodels' use_correction values of hac-panel ("c" and "clu" are its spellings of
# "cluster" in cov_nw_panel) and hac-groupsum (only "c" in cov_nw_groupsum: there "clu"
# silently applies none, so it is refused here rather than given a meaning).
_PANEL_CORRECTIONS = {"hac": "hac", "cluster": "cluster", "c": "cluster", "clu": "cluster"}
_GROUPSUM_CORRECTIONS = {"hac": "hac", "cluster": "cluster", "c": "cluster"}


@dataclass(frozen=True)
class HacOptions:
    """The checked options of ``cov_type`` ``"HAC"``, ``"hac-panel"`` or
    ``"hac-groupsum"`` (see :meth:`parse`).

    Attributes
    ----------
    cov_type : str
        One of :data:`HAC_COV_TYPES`.
    maxlags : int or None
        The highest lag, or None for statsmodels' automatic one
        (:func:`auto_maxlags`; ``"HAC"`` and ``"hac-groupsum"`` only).
    kernel : {"bartlett", "uniform"}
        The kernel weights.
    correction : bool or {"hac", "cluster"}
        ``"HAC"``: True multiplies by ``n / (n - k)``. The panel ones: False (none),
        ``"hac"`` (``n / (n - k)``) or ``"cluster"`` (``G / (G - 1) (n - 1) / (n -
        k)``).
    by : {"groups", "time"} or None
        The key column's role (``"hac-groupsum"``: always ``"time"``).
    column : str or None
        The key column.
    """

    cov_type: str
    maxlags: int | None
    kernel: str
    correction: bool | str
    by: PanelBy | None = None
    column: str | None = None

    @classmethod
    def parse(cls, cov_type: str, cov_kwds: dict[str, Any] | None) -> HacOptions:
        """Check ``cov_kwds`` as statsmodels' ``get_robustcov_results`` reads them for
        ``cov_type`` (``maxlags`` is required, as there; None is its automatic lag
        for ``"HAC"`` and ``"hac-groupsum"``; ``kernel`` or its other name
        ``weights_func``, by name), with column names for ``groups`` and ``time``.

        Raises
        ------
        ValueError
            An unknown, missing or invalid option, named.
        """
        kwds = dict(cov_kwds or {})
        if "maxlags" not in kwds:
            raise ValueError(
                f"cov_type={cov_type!r} needs cov_kwds={{'maxlags': L}} with L a "
                "non-negative integer (the highest lag)"
                + (
                    f"; maxlags=None takes statsmodels' automatic lag, {AUTO_LAGS_RULE}"
                    if cov_type != "hac-panel"
                    else ""
                )
            )
        maxlags = kwds.pop("maxlags")
        if maxlags is None and cov_type == "hac-panel":
            # statsmodels' cov_nw_panel has no automatic lag (weights_func(None) fails):
            # the right one depends on the periods per unit, not on the rows.
            raise ValueError(
                "cov_type='hac-panel' needs maxlags as a non-negative integer (statsmodels "
                "has no automatic lag for it); got maxlags=None"
            )
        if maxlags is not None and (
            isinstance(maxlags, bool) or not isinstance(maxlags, int | np.integer) or maxlags < 0
        ):
            raise ValueError(
                f"cov_type={cov_type!r} needs cov_kwds={{'maxlags': L}} with L a "
                f"non-negative integer (the highest lag); got maxlags={maxlags!r}"
            )
        kernel = _kernel(kwds)
        by: PanelBy | None = None
        column: str | None = None
        correction: bool | str
        if cov_type == "HAC":
            correction = kwds.pop("use_correction", False)
            if not isinstance(correction, bool | np.bool_):
                raise ValueError(
                    f"cov_kwds 'use_correction' must be True or False; got {correction!r}"
                )
            correction = bool(correction)
        else:
            if cov_type == "hac-panel":
                given = [name for name in ("groups", "time") if name in kwds]
                if len(given) != 1:
                    raise ValueError(
                        "cov_type='hac-panel' needs cov_kwds with one of 'groups' (a run "
                        "of equal values is one unit's series) or 'time' (a new unit "
                        f"where time decreases), a column name; got {sorted(given)}"
                    )
                by = "groups" if given[0] == "groups" else "time"
                default, allowed = "hac", _PANEL_CORRECTIONS
            else:
                if "time" not in kwds:
                    raise ValueError("cov_type='hac-groupsum' needs cov_kwds={'time': column_name}")
                by = "time"
                default, allowed = "cluster", _GROUPSUM_CORRECTIONS
            column = kwds.pop(by)
            if not isinstance(column, str):
                raise ValueError(
                    f"cov_kwds {by!r} of cov_type={cov_type!r} must be a column name; got "
                    f"{type(column).__name__}"
                )
            raw = kwds.pop("use_correction", default)
            if raw is False or raw is None:
                correction = False
            elif isinstance(raw, str) and raw in allowed:
                correction = allowed[raw]
            else:
                # statsmodels would apply no correction for True (or any other value)
                # without saying so: refused, so the number asked for is the one given.
                raise ValueError(
                    f"cov_kwds 'use_correction' of cov_type={cov_type!r} must be False, "
                    f"'hac' or 'cluster' (as statsmodels; not a bool); got {raw!r}"
                )
        if kwds:
            raise ValueError(f"unknown cov_kwds for cov_type={cov_type!r}: {sorted(kwds)}")
        return cls(
            cov_type=cov_type,
            maxlags=None if maxlags is None else int(maxlags),
            kernel=kernel,
            correction=correction,
            by=by,
            column=column,
        )

    def nlags(self, periods: int) -> int:
        """The lag used with ``periods`` rows of scores (``maxlags``, or statsmodels'
        automatic one when it is None)."""
        return auto_maxlags(periods) if self.maxlags is None else self.maxlags

    def weights(self, periods: int) -> np.ndarray:
        """The kernel weights of lags ``0..nlags(periods)``."""
        return kernel_weights(self.kernel, self.nlags(periods))

    def cov_kwds(self, nlags: int | None) -> dict[str, Any]:
        """The options as recorded in the results (``extra["cov_kwds"]``): as given,
        plus ``nlags``, the lag used, when ``maxlags`` was None (statsmodels keeps
        ``maxlags=None`` there and does not record the lag it chose)."""
        record: dict[str, Any] = {}
        if self.by is not None:
            record[self.by] = self.column
        record["maxlags"] = self.maxlags
        if self.maxlags is None and nlags is not None:
            record["nlags"] = nlags
        record["kernel"] = self.kernel
        record["use_correction"] = self.correction
        return record


def _kernel(kwds: dict[str, Any]) -> str:
    """The kernel's name from ``kernel`` or ``weights_func`` (statsmodels renames the
    first to the second); a callable is refused: workers need a name."""
    if "kernel" in kwds and "weights_func" in kwds:
        raise ValueError("give cov_kwds 'kernel' or 'weights_func', not both")
    name = "kernel" if "kernel" in kwds else "weights_func"
    kernel = kwds.pop(name, "bartlett")
    if kernel not in HAC_KERNELS:
        raise ValueError(
            f"cov_kwds {name!r} must be one of {HAC_KERNELS} (by name); got {kernel!r}"
        )
    return str(kernel)


@dataclass(frozen=True)
class HacMiddle:
    """The sandwich's middle of a HAC-type covariance and what goes with it."""

    meat: np.ndarray
    correction: float
    n_groups: int | None
    df_inference: float | None
    nlags: int
    bartlett: bool

    @property
    def positive(self) -> bool:
        """Whether the meat is positive semi-definite by construction: Bartlett's is,
        the uniform kernel's need not be (unless no lags)."""
        return self.bartlett or self.nlags == 0


def hac_middle(
    statistic: LagWindow | PanelLagWindow | TimeScoreSums,
    options: HacOptions,
    nobs: int,
    k_params: int,
    stacklevel: int = 1,
) -> HacMiddle:
    """The meat, small-sample factor, clusters and inference degrees of freedom of a
    merged HAC-type statistic, as statsmodels' ``get_robustcov_results``.

    - ``"HAC"`` (``cov_hac_simple``): ``n / (n - k)`` when ``use_correction``.
    - ``"hac-panel"`` (``cov_nw_panel``, ``groupidx`` the runs): ``"hac"`` ``n / (n -
      k)``, ``"cluster"`` ``G / (G - 1) (n - 1) / (n - k)`` with ``G`` the runs;
      inference with ``G - 1`` degrees of freedom (``adjust_df``).
    - ``"hac-groupsum"`` (``cov_nw_groupsum``): ``"cluster"`` with ``G`` the distinct
      time values (``len(np.unique(time))``), ``"hac"`` ``n / (n - k)``; inference
      with the runs of non-decreasing time minus one degrees of freedom.

    ``k`` is the design's columns (aliased ones included: statsmodels' exog).
    ``stacklevel`` places a warning (integer times with gaps; with the automatic
    lag, integer times not starting at 0, whose lag statsmodels sizes from ``max +
    1`` periods) as :func:`warnings.warn` does, counted from the caller.

    Raises
    ------
    DesignError
        A ``"cluster"`` correction with fewer than 2 groups.
    """
    hac_factor = nobs / (nobs - k_params)
    bartlett = options.kernel == "bartlett"
    if isinstance(statistic, TimeScoreSums):
        sums = statistic.sorted_sums()
        periods = sums.shape[0]
        nlags = options.nlags(periods)
        window = LagWindow.of_scores(sums, kernel_weights(options.kernel, nlags))
        correction = 1.0
        if options.correction == "hac":
            correction = hac_factor
        elif options.correction == "cluster":
            correction = _cluster_factor(periods, nobs, k_params, "distinct time values")
        _warn_time_gaps(statistic, stacklevel + 2)
        if options.maxlags is None:
            _warn_statsmodels_periods(statistic, nobs, nlags, stacklevel + 2)
        return HacMiddle(
            window.meat, correction, statistic.runs, float(statistic.runs - 1), nlags, bartlett
        )
    if isinstance(statistic, PanelLagWindow):
        correction = 1.0
        if options.correction == "hac":
            correction = hac_factor
        elif options.correction == "cluster":
            correction = _cluster_factor(statistic.runs, nobs, k_params, "runs of one group")
        return HacMiddle(
            statistic.meat,
            correction,
            statistic.runs,
            float(statistic.runs - 1),
            statistic.maxlags,
            bartlett,
        )
    correction = hac_factor if options.correction else 1.0
    return HacMiddle(statistic.meat, correction, None, None, statistic.maxlags, bartlett)


def _cluster_factor(groups: int, nobs: int, k_params: int, what: str) -> float:
    if groups < 2:
        raise DesignError(
            f"use_correction='cluster' needs at least 2 groups ({what}); found {groups}"
        )
    return groups / (groups - 1.0) * ((nobs - 1.0) / (nobs - k_params))


def _integer_keys(statistic: TimeScoreSums) -> bool:
    """Whether the time values are Python integers (not bools): statsmodels' codes."""
    keys = statistic.keys
    return bool(keys) and all(isinstance(k, int) and not isinstance(k, bool) for k in keys)


def _warn_statsmodels_periods(
    statistic: TimeScoreSums, nobs: int, nlags: int, stacklevel: int
) -> None:
    """Integer times without gaps that do not start at 0, with the automatic lag:
    statsmodels' ``group_sums`` (a ``bincount``, unless the largest time exceeds
    ``2 n``) counts the periods from 0, empty ones included, and sizes its automatic
    lag from ``max + 1`` periods. The leading empty periods change no product, but
    the lag can differ (times 1..27: 28 periods, lag 3, where the 27 periods here
    give 2). Say so, with statsmodels' lag, rather than differ silently."""
    keys = statistic.keys
    if not _integer_keys(statistic) or min(keys) <= 0:
        return
    if max(keys) - min(keys) + 1 != len(keys):
        return  # the gaps' warning says it already
    periods = max(keys) + 1 if max(keys) <= 2 * nobs else len(keys)
    theirs = auto_maxlags(periods)
    if theirs != nlags:
        warnings.warn(
            f"cov_type='hac-groupsum' with maxlags=None: the time column "
            f"{statistic.column!r} holds the integers {min(keys):,}..{max(keys):,}, "
            f"{len(keys):,} periods, whose automatic lag is {nlags}; statsmodels counts "
            f"the periods from 0 ({periods:,}, the first {min(keys):,} empty) and takes "
            f"{theirs}. Pass maxlags={theirs} for statsmodels' number, or code the times "
            "0..T-1",
            UserWarning,
            stacklevel=stacklevel,
        )


def _warn_time_gaps(statistic: TimeScoreSums, stacklevel: int) -> None:
    """Integer times with gaps: statsmodels' ``group_sums`` (a ``bincount``) puts a
    zero row at each missing integer, which changes which periods are ``l`` apart;
    here the distinct values are consecutive periods. Say so."""
    keys = statistic.keys
    if not _integer_keys(statistic):
        return
    span = max(keys) - min(keys) + 1
    if span != len(keys):
        warnings.warn(
            f"cov_type='hac-groupsum': the time column {statistic.column!r} has "
            f"{len(keys):,} distinct integer values spanning {span:,}; the distinct values "
            "are taken as consecutive periods in sorted order (statsmodels, which expects "
            "times coded 0..T-1 with every period present, would insert empty periods)",
            UserWarning,
            stacklevel=stacklevel,
        )
