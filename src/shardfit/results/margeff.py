"""Average marginal effects of a binary or Poisson GLM, as statsmodels' ``get_margeff``.

statsmodels' discrete models (``smf.logit``, ``smf.probit``, ``smf.poisson``) compute
marginal effects from their data in memory; shardfit computes the same numbers from
the data partition by partition (:mod:`shardfit.results.margeff_tasks` has the
per-row definitions):

- ``at="overall"``: the average over the fit's rows of each row's effect, and the
  average of its Jacobian ``J`` with respect to the estimates (one pass, two with
  ``dummy``/``count``, whose columns must be found first);
- ``at="mean"``: the effect at the design's column means; ``at="zero"``: at zero, the
  constant columns at 1 (one pass, for the means and the constant columns);
- ``at="median"``: at the design's column medians, exactly ``np.median``'s (bit for
  bit, the mean of the two middle values for an even count): the first pass also
  histograms each column's order-preserving keys (:mod:`shardfit.design.quantiles`,
  as the spline knots), and one more pass (rarely up to three) gathers the values
  around the middle ranks;
- ``at="all"``: each row's effects, without standard errors (statsmodels gives none:
  its ``margeff`` is an ``(nobs, k)`` array and ``margeff_se`` is not set), written
  as Parquet part files to ``out=`` by the prediction writer
  (:mod:`shardfit.results.prediction_output`), or brought back when ``data`` is in
  memory (two passes: the column summaries, for the constant, dummy and count
  columns, then the effects);
- the delta method's covariance ``J V J'``, ``V`` the fit's ``cov_params()`` (robust
  if the fit's is), and normal ``z`` statistics, p-values and intervals.

As statsmodels, effects are reported for the design columns that are not constant
in the fit (its intercept left out; zero variance over the rows for a fit without
one), and are those of the mean at exposure 1: statsmodels' margeff leaves the fit's
exposure out (a Poisson model with an exposure then gives effects on the rate per
unit of exposure) and refuses a fit with an offset ("Margins with offset are not
available"), as this does. ``with_offset=True`` instead averages each row's effect at
its own offset and exposure (effects on each row's expected count).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from shardfit.design.quantiles import KeyHistogram, RankSearch
from shardfit.engine import run_pass, session
from shardfit.errors import DesignError
from shardfit.results.margeff_tasks import (
    Gathered,
    Kind,
    MargeffFitRows,
    MargeffRows,
    MargeffStatistic,
    MargeffTask,
    MedianGathered,
    MedianTask,
    row_effects,
)
from shardfit.results.prediction_output import PredictionOutput, write_predictions
from shardfit.results.prediction_tasks import _predictor_spec
from shardfit.results.summary import Summary
from shardfit.stats._distributions import norm_ppf, norm_sf

__all__ = ["MarginalEffects", "get_margeff"]

#: statsmodels' names of the methods, the first column of its tables.
METHOD_NAMES = {"dydx": "dy/dx", "eyex": "d(lny)/d(lnx)", "dyex": "dy/d(lnx)", "eydx": "d(lny)/dx"}
#: statsmodels' ``at`` options (``_check_margeff_args``).
AT_OPTIONS = ("overall", "mean", "median", "zero", "all")
#: (family, link) -> the statsmodels discrete model with the same likelihood.
MODELS: dict[tuple[str, str], tuple[Kind, str]] = {
    ("binomial", "logit"): ("logit", "Logit"),
    ("binomial", "probit"): ("probit", "Probit"),
    ("poisson", "log"): ("poisson", "Poisson"),
}


@dataclass(frozen=True, eq=False)
class MarginalEffects:
    """Marginal effects with their delta-method standard errors (statsmodels'
    ``DiscreteMargins``).

    Attributes
    ----------
    margeff, margeff_se : numpy.ndarray
        The effects of the non-constant design columns and their standard errors.
        With ``at="all"``: ``margeff`` is ``(nobs, k)``, one row per row kept, and
        ``margeff_se`` is ``None`` (statsmodels computes no standard errors per row).
    margeff_cov : numpy.ndarray or None
        Their covariance ``J V J'`` (``None`` with ``at="all"``).
    names : tuple of str
        The design columns the effects are of (the constant left out).
    margeff_options : dict
        ``{"method": ..., "at": ...}``, as statsmodels'.
    dummy_idx, count_idx : tuple of int or None
        Design column positions treated as dummies or counts (discrete changes), or
        ``None``, as statsmodels'.
    model_name, endog_name : str
        The statsmodels model with this likelihood (``Logit``...) and the response.
    nobs : int
        The rows averaged over (``at="overall"``), whose means or medians were taken,
        or whose effects ``at="all"`` gives.
    rows_read : int
        The rows read from ``data``.
    rows_dropped : dict of str to int
        Rows of ``data`` dropped, by reason (the rows the fit dropped, dropped again).
    exog_at : numpy.ndarray or None
        With ``at="mean"``, ``"median"`` or ``"zero"``: the design row the effects are
        evaluated at (every design column, the constant included, ``atexog`` set), as
        statsmodels' ``_get_margeff_exog`` builds it; else ``None``.
    row_labels : pandas.Index or None
        With ``at="all"``: the labels of the rows of ``margeff`` (the DataFrame's
        index, else 0-based positions named ``row``), as ``get_prediction``'s.
    """

    margeff: np.ndarray
    margeff_se: np.ndarray | None
    margeff_cov: np.ndarray | None
    names: tuple[str, ...]
    margeff_options: dict[str, str]
    dummy_idx: tuple[int, ...] | None
    count_idx: tuple[int, ...] | None
    model_name: str
    endog_name: str
    nobs: int
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    exog_at: np.ndarray | None = None
    row_labels: pd.Index | None = None

    def _inference(self) -> np.ndarray:
        """``margeff_se``, refusing ``at="all"`` as statsmodels' ``_check_at_is_all``."""
        if self.margeff_se is None:
            raise ValueError(
                "Only margeff are available when `at` is 'all'. Please input specific "
                "points if you would like to do inference."
            )
        return self.margeff_se

    @property
    def tvalues(self) -> np.ndarray:
        """``margeff / margeff_se`` (``z`` statistics)."""
        return self.margeff / self._inference()

    @property
    def pvalues(self) -> np.ndarray:
        """Two-sided p-values of :attr:`tvalues` under the standard normal."""
        return 2 * norm_sf(np.abs(self.tvalues))

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(k, 2)`` normal confidence intervals at level ``1 - alpha``."""
        _check_alpha(alpha)
        se = self._inference()
        q = norm_ppf(1 - alpha / 2)
        return np.column_stack([self.margeff - q * se, self.margeff + q * se])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """The effects' table with statsmodels' column names (its ``Cont. Int. Hi.``
        spelling included), indexed by design column."""
        bounds = self.conf_int(alpha)
        columns = {
            METHOD_NAMES[self.margeff_options["method"]]: self.margeff,
            "Std. Err.": self._inference(),
            "z": self.tvalues,
            "Pr(>|z|)": self.pvalues,
            "Conf. Int. Low": bounds[:, 0],
            "Cont. Int. Hi.": bounds[:, 1],
        }
        return pd.DataFrame(columns, index=list(self.names))

    def summary(self, alpha: float = 0.05) -> Summary:
        """A text table like statsmodels' (``print`` it; ``.as_frame()`` the table)."""
        bounds = self.conf_int(alpha)
        assert self.margeff_se is not None  # conf_int refuses at="all"
        table = pd.DataFrame(
            {
                METHOD_NAMES[self.margeff_options["method"]]: self.margeff,
                "std err": self.margeff_se,
                "z": self.tvalues,
                "P>|z|": self.pvalues,
                f"[{alpha / 2:g}": bounds[:, 0],
                f"{1 - alpha / 2:g}]": bounds[:, 1],
            },
            index=list(self.names),
        )
        left = (
            ("Dep. Variable:", self.endog_name),
            ("Method:", self.margeff_options["method"]),
            ("At:", self.margeff_options["at"]),
        )
        right = (("No. Observations:", f"{self.nobs:,}"),)
        notes = []
        discrete = [
            (what, idx) for what, idx in (("dummy", self.dummy_idx), ("count", self.count_idx))
        ]
        for what, idx in discrete:
            if idx:
                notes.append(f"Discrete changes for the {what} columns of the design.")
        return Summary(
            title=f"{self.model_name} Marginal Effects",
            left=left,
            right=right,
            coefficients=table,
            notes=tuple(notes),
        )


def get_margeff(
    results: Any,
    at: str = "overall",
    method: str = "dydx",
    atexog: dict[int | str, float] | None = None,
    dummy: bool = False,
    count: bool = False,
    *,
    data: Any = None,
    with_offset: bool = False,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    backend: Any = None,
    workers: int | None = None,
    unseen: Literal["raise", "zero"] = "raise",
    progress: bool = False,
) -> MarginalEffects | PredictionOutput:
    """Marginal effects of a fitted logit, probit or Poisson GLM, as statsmodels'
    ``DiscreteResults.get_margeff`` (see the module notes).

    Parameters
    ----------
    results : GLMResults
        A fit with the binomial family and the logit or probit link, or the Poisson
        family and the log link, without weights or frequency weights (statsmodels'
        discrete models have neither) and without aliased columns.
    at : {"overall", "mean", "median", "zero", "all"}
        Average of the rows' effects; the effect at the column means, at the column
        medians (exactly ``np.median``'s) or at zero; or each row's effects
        (``at="all"``: no standard errors, as statsmodels).
    method : {"dydx", "eyex", "dyex", "eydx"}
        ``dy/dx``, elasticities ``d(ln y)/d(ln x)``, and the semi-elasticities
        ``dy/d(ln x)`` and ``d(ln y)/dx``.
    atexog : dict, optional
        Design column (position or name) -> value set in every row before ``at``
        applies (so the column's mean or median is that value), as statsmodels'
        dict (its array form is not taken: pass the rows as ``data``).
    dummy, count : bool
        Discrete changes for 0/1 columns (``F(x_j = 1) - F(x_j = 0)``) and for
        columns of non-negative whole numbers (``(F(x_j + 1) - F(x_j - 1)) / 2``),
        as statsmodels; not with ``dyex``/``eyex`` or ``at="median"``/``"zero"``
        (statsmodels' ``_check_discrete_args``).
    data : DataFrame, pyarrow.Table, Source, path or glob
        The rows the model was fitted on (GLM results do not hold their data), with
        every column the fit read; the rows the fit dropped (missing values) are
        dropped again. Other rows give the effects averaged over them (or at their
        means or medians, or theirs with ``at="all"``), with a warning: statsmodels'
        ``atexog`` array. The constant column is then still the fit's (its
        intercept), but dummy and count columns are found from these rows.
    with_offset : bool
        ``False`` (statsmodels): effects of the mean at exposure 1, and a fit with an
        offset is refused, as statsmodels refuses it; ``True``: at each row's own
        offset and exposure (``at="overall"`` only).
    out : str or path, optional
        With ``at="all"``: a directory to write the rows' effects to, as Parquet part
        files (one per partition, written by the workers) and a manifest, as
        ``predict(out=...)``: columns ``row`` (the row's 0-based position in
        ``data``; rows dropped for missing values are absent) and ``<method>_<design
        column>`` (``dydx_x1``...). Needed unless ``data`` is held in memory.
    overwrite : bool
        Replace the part files and manifest of an earlier run in ``out``.
    backend, workers, unseen, progress
        As for ``results.predict``.

    Returns
    -------
    MarginalEffects or PredictionOutput
        What was written, with ``out``; else the effects.

    Raises
    ------
    ValueError
        An unknown ``at`` or ``method``, a combination statsmodels refuses, or
        ``at="all"`` on data not in memory without ``out``.
    """
    at, method = _check_options(at, method, dummy, count, with_offset, atexog)
    kind, model_name = _model_kind(results)
    _check_offset(results, with_offset)
    _check_out(at, out, data)
    params = np.asarray(results.params_array, dtype=np.float64)
    from shardfit.results.predict import _source, predict_backend

    source, labels = _source(results, data, check=False)
    spec, need_response = _spec_for(results.spec, source)
    columns = _atexog_columns(atexog, results.names)
    task = MargeffTask(
        spec=spec,
        need_response=need_response,
        kind=kind,
        method=method,  # type: ignore[arg-type]
        params=params,
        effects=at == "overall" and not (dummy or count),
        with_offset=with_offset,
        atexog=columns,
        unseen=unseen,
        median=at == "median",
        names=tuple(results.names),
    )
    options = {"progress": progress, "allreduce": True, "pass_name": "margeff"}
    # Part files are written on the default backend, as predict(out=) writes them.
    chosen = backend if out is not None else predict_backend(backend, source)
    with session(chosen, workers=workers) as sess:
        summary: MargeffStatistic = run_pass(task, source, backend=sess, **options)
        if summary.nobs == 0:
            raise DesignError(f"no rows of {source.name!r} have every value the model needs")
        nonconstant = _nonconstant(results, summary)
        dummy_idx = _dummy_columns(summary) if dummy else ()
        count_idx = _count_columns(summary) if count else ()
        _warn_other_rows(results, summary, source)
        # The fields every answer shares, at="all"'s included.
        described = {
            "names": tuple(name for name, keep in zip(results.names, nonconstant) if keep),
            "margeff_options": {"method": method, "at": at},
            "dummy_idx": (dummy_idx or None) if dummy else None,
            "count_idx": (count_idx or None) if count else None,
            "model_name": model_name,
            "endog_name": _endog_name(results),
            "nobs": summary.nobs,
            "rows_read": summary.rows_read,
            "rows_dropped": summary.dropped,
        }
        if at == "all":
            rows = MargeffFitRows if need_response else MargeffRows
            model = rows(
                spec=spec,
                kept=np.ones(params.size, dtype=bool),
                params=params,
                cov=np.zeros((0, 0)),
                scale=float("nan"),
                crit=float("nan"),
                kind=kind,
                method=method,  # type: ignore[arg-type]
                effect_idx=tuple(int(j) for j in np.flatnonzero(nonconstant)),
                output_names=tuple(
                    f"{method}_{name}" for name, keep in zip(results.names, nonconstant) if keep
                ),
                dummy_idx=dummy_idx,
                count_idx=count_idx,
                atexog=columns,
            )
            return _all_rows(
                model, source, data, labels, out, overwrite, unseen, sess, progress,
                MarginalEffects(
                    margeff=np.zeros((0, int(nonconstant.sum()))),
                    margeff_se=None,
                    margeff_cov=None,
                    **described,
                ),
            )  # fmt: skip
        if at == "overall" and (dummy or count):
            task = replace(task, effects=True, dummy_idx=dummy_idx, count_idx=count_idx)
            summary = run_pass(task, source, backend=sess, **options)
        medians = _medians(summary, task, source, sess, progress) if at == "median" else None
    if at == "overall":
        assert summary.effects is not None and summary.jacobian is not None
        effects = summary.effects / summary.nobs
        jacobian = summary.jacobian / summary.nobs
        row = None
    else:
        row = medians if medians is not None else _evaluation_row(at, summary, nonconstant, columns)
        effects, jacobian = row_effects(kind, method, row, params, None, dummy_idx, count_idx)  # type: ignore[arg-type]
    cov = np.asarray(results.cov_array, dtype=np.float64)
    margeff_cov = (jacobian @ cov @ jacobian.T)[np.ix_(nonconstant, nonconstant)]
    return MarginalEffects(
        margeff=effects[nonconstant],
        margeff_se=np.sqrt(np.diag(margeff_cov)),
        margeff_cov=margeff_cov,
        **described,
        exog_at=None if row is None else row[0].copy(),
    )


def _warn_other_rows(results: Any, summary: MargeffStatistic, source: Any) -> None:
    if summary.nobs != results.nobs:
        warnings.warn(
            f"get_margeff: {summary.nobs:,} rows of {source.name!r} have every value the "
            f"model needs, where the fit had {results.nobs:,}: the effects are those of "
            "these rows, not of the fit's (and dummy and count columns are found from "
            "these rows)",
            UserWarning,
            stacklevel=4,
        )


def _check_out(at: str, out: Any, data: Any) -> None:
    """``out`` only with ``at="all"``; ``at="all"`` without it only on data in memory
    (its effects are ``nobs x k`` numbers, which need not fit in memory)."""
    from shardfit.results.predict import predict_backend

    if data is None:
        raise ValueError(
            "get_margeff needs data=: the rows the model was fitted on (shardfit's "
            "results do not keep a reference to the fit's data, which may be larger "
            "than memory)"
        )
    if out is not None and at != "all":
        raise ValueError(
            f"out= is for get_margeff(at='all'), which gives one row of effects per "
            f"observation; at={at!r} gives one row of effects"
        )
    # predict_backend names "serial" exactly the data held in memory.
    if at == "all" and out is None and predict_backend(None, data) != "serial":
        raise ValueError(
            "get_margeff(at='all') gives one row of effects per row of data, which is "
            f"read from files ({data!r}) and need not fit in memory: pass out= (a "
            "directory) to write them as Parquet part files, or pass the data as a "
            "DataFrame"
        )


def _all_rows(
    model: MargeffRows,
    source: Any,
    data: Any,
    labels: pd.Index | None,
    out: str | os.PathLike[str] | None,
    overwrite: bool,
    unseen: Literal["raise", "zero"],
    sess: Any,
    progress: bool,
    template: MarginalEffects,
) -> MarginalEffects | PredictionOutput:
    """``at="all"``: each row's effects written to ``out`` by the prediction writer,
    or gathered into ``template`` (data in memory)."""
    from shardfit.results.predict import predict_rows

    with warnings.catch_warnings():
        # The writer's "rows have no prediction" warning: those are the rows the fit
        # dropped (missing values), left out as in statsmodels' (nobs, k) array; other
        # rows than the fit's were warned about already.
        warnings.filterwarnings("ignore", message=r"margeff: .* have no prediction")
        if out is not None:
            return write_predictions(
                model,
                source,
                Path(out),
                outputs="mean",
                unseen=unseen,
                overwrite=overwrite,
                backend=sess,
                workers=None,
                progress=progress,
            )
        values, rows, _counts = predict_rows(
            model, "mean", unseen, source, data, labels, sess, None, progress
        )
    margeff = np.column_stack(
        [np.zeros((len(rows), 0)), *(values[name] for name in model.output_names)]
    )
    return replace(template, margeff=margeff, row_labels=rows)


def _medians(
    summary: MargeffStatistic, task: MargeffTask, source: Any, sess: Any, progress: bool
) -> np.ndarray:
    """The design's column medians, each exactly ``np.median`` of the column (after
    ``atexog``, as statsmodels' ``_get_margeff_exog`` sets it before ``at``), as one
    row.

    ``np.median`` takes the mean of the middle order statistic (odd count) or of the
    two middle ones (even count); here they come from :class:`RankSearch`, started
    from the first pass's histograms. Constant columns (the intercept) and the
    ``atexog`` columns need no search; the others share each further pass. A crowded
    histogram cell whose least and greatest keys are equal (tied values: a dummy's
    ones) is known at once, where the search would refine it bit by bit.
    """
    assert summary.histograms is not None
    n = summary.nobs
    ranks = tuple(sorted({(n - 1) // 2, n // 2}))
    fixed = dict(task.atexog)
    order: dict[int, list[float]] = {}
    searches: dict[int, RankSearch] = {}
    for j, histogram in enumerate(summary.histograms):
        if j in fixed:
            order[j] = [fixed[j]] * len(ranks)
        elif summary.column_min[j] == summary.column_max[j]:
            order[j] = [float(summary.column_min[j])] * len(ranks)
        else:
            searches[j] = RankSearch(ranks, histogram)
    while not all(search.done for search in searches.values()):
        requests = tuple(
            (j, search.requests()) for j, search in searches.items() if not search.done
        )
        median_task = MedianTask(task.spec, task.need_response, requests, task.unseen, task.names)
        found: MedianGathered = run_pass(
            median_task, source, backend=sess, progress=progress, pass_name="medians",
            allreduce=True,
        )  # fmt: skip
        for j, _requests in requests:
            searches[j].update(_resolved(found.found.get(j, {})))
    for j, search in searches.items():
        order[j] = [search.values[rank] for rank in ranks]
    # np.median itself on the middle order statistics: the same mean, the same bits.
    row = np.array([np.median(np.array(order[j])) for j in range(len(summary.histograms))])
    return row[None, :]


def _resolved(cells: dict[Any, Gathered]) -> dict[Any, Any]:
    """A pass's merged gathers for :meth:`RankSearch.update`: a histogram cell whose
    keys are all one key becomes that key's histogram at shift 0 (its exact value)."""
    resolved = {}
    for request, (values, low, high) in cells.items():
        if isinstance(values, KeyHistogram) and low is not None and low == high:
            values = KeyHistogram(
                0, np.array([low], dtype=np.uint64), np.array([values.total], dtype=np.int64)
            )
        resolved[request] = values
    return resolved


def _check_options(
    at: str,
    method: str,
    dummy: bool,
    count: bool,
    with_offset: bool,
    atexog: Any,
) -> tuple[str, str]:
    """``at`` and ``method`` lower-cased (as statsmodels takes them), after refusing
    what this does not compute, saying why."""
    if not isinstance(at, str) or not isinstance(method, str):
        raise ValueError(f"'at' and 'method' must be strings; got {at!r} and {method!r}")
    at, method = at.lower(), method.lower()
    if at not in AT_OPTIONS:
        raise ValueError(f"The 'at' parameter must be one of {list(AT_OPTIONS)}. Got {at!r}.")
    if method not in METHOD_NAMES:
        raise ValueError(
            f"The 'method' parameter must be one of {list(METHOD_NAMES)}. Got {method!r}."
        )
    if dummy or count:
        # statsmodels' rules for discrete changes.
        if method in ("dyex", "eyex"):
            raise ValueError(f"method={method!r} is not allowed with dummy=True or count=True")
        if at in ("median", "zero"):
            raise ValueError(f"at={at!r} is not allowed with dummy=True or count=True")
    if with_offset and at != "overall":
        raise ValueError(
            "with_offset=True averages each row's effect at its own offset: it needs "
            f"at='overall', not at={at!r}"
        )
    if atexog is not None and not isinstance(atexog, dict):
        raise NotImplementedError(
            "get_margeff takes atexog as a dict {design column (position or name): value}; "
            "for effects over other rows, pass them as data="
        )
    return at, method


def _model_kind(results: Any) -> tuple[Kind, str]:
    """The discrete model of ``results``, refusing fits statsmodels' discrete models
    have no counterpart of."""
    key = (results.family_name, results.link_name)
    if key not in MODELS:
        raise NotImplementedError(
            f"get_margeff supports the binomial family with the logit or probit link and "
            f"the Poisson family with the log link (statsmodels' Logit, Probit and "
            f"Poisson); this fit has the {results.family_name} family with the "
            f"{results.link_name} link"
        )
    if results.weighted or results.sum_freq_weights is not None:
        raise NotImplementedError(
            "get_margeff of a fit with weights or freq_weights is not supported "
            "(statsmodels' discrete models have no weights)"
        )
    if not np.isfinite(np.asarray(results.params_array, dtype=np.float64)).all():
        aliased = [n for n, b in zip(results.names, results.params_array) if not np.isfinite(b)]
        raise NotImplementedError(
            f"get_margeff of a fit with aliased columns {aliased} is not supported; refit "
            "without them"
        )
    return MODELS[key]


def _check_offset(results: Any, with_offset: bool) -> None:
    """Refuse a fit with an offset unless ``with_offset``, as statsmodels'
    ``get_margeff`` does (effects at offset 0 are rarely meant; its exposure is left
    out, at 1, and allowed)."""
    offset = getattr(results.spec, "offset", None)
    if offset is not None and not with_offset:
        raise NotImplementedError(
            f"get_margeff of a fit with an offset ({offset!r}) is not available, as in "
            "statsmodels ('Margins with offset are not available'); pass "
            "with_offset=True for the average of each row's effect at its own offset"
        )


def _nonconstant(results: Any, summary: MargeffStatistic) -> np.ndarray:
    """The design columns with effects: statsmodels' non-constant columns of the
    fit's design. With an intercept that is every column but it (another column
    constant in the fit would be aliased with it, and such fits are refused), which
    holds for rows other than the fit's too (a dummy constant in a subgroup keeps its
    effect, as with statsmodels' ``atexog`` array); without one, the columns constant
    over the rows read."""
    const_idx = getattr(results, "const_idx", None)
    if const_idx is not None:
        nonconstant = np.ones(len(results.names), dtype=bool)
        nonconstant[const_idx] = False
    else:
        nonconstant = ~(summary.column_min == summary.column_max)
    if not nonconstant.any():
        raise ValueError(
            "get_margeff: the model has no non-constant design column (a constant-only "
            f"model, {list(results.names)}), so it has no marginal effects"
        )
    return nonconstant


def _spec_for(spec: Any, source: Any) -> tuple[Any, bool]:
    """The design reading ``source``: the fit's whole design (so the rows the fit
    dropped for a missing response or cluster id are dropped again) when ``source``
    has all its columns, else the predictors (and offset/exposure) only."""
    if spec is None:
        raise ValueError("these results carry no design spec, so they have no marginal effects")
    if all(name in source.columns for name in spec.raw_columns):
        return spec, True
    predictors = _predictor_spec(spec)
    absent = [name for name in predictors.raw_columns if name not in source.columns]
    if absent:
        raise DesignError(
            f"get_margeff needs the column {absent[0]!r} the fit used, which "
            f"{source.name} lacks (absent: {absent[:6]}{'...' if len(absent) > 6 else ''})"
        )
    return predictors, False


def _atexog_columns(atexog: dict[Any, float] | None, names: tuple[str, ...]) -> tuple:
    """statsmodels' ``atexog`` dict as ``(position, value)`` pairs (names allowed)."""
    if not atexog:
        return ()
    pairs = []
    for key, value in atexog.items():
        if isinstance(key, str):
            if key not in names:
                raise ValueError(f"atexog names {key!r}, which is not a design column {names}")
            key = names.index(key)
        if not isinstance(key, int | np.integer) or not 0 <= key < len(names):
            raise ValueError(f"atexog key {key!r} is not a design column position")
        if np.ndim(value) != 0:
            raise NotImplementedError(
                "atexog values must be numbers (one value for every row); per-row values "
                "go in data="
            )
        pairs.append((int(key), float(value)))
    return tuple(pairs)


def _dummy_columns(summary: MargeffStatistic) -> tuple[int, ...]:
    """statsmodels' dummies: whole numbers with minimum 0 and maximum 1."""
    mask = summary.whole & (summary.column_min == 0) & (summary.column_max == 1)
    return tuple(int(j) for j in np.flatnonzero(mask))


def _count_columns(summary: MargeffStatistic) -> tuple[int, ...]:
    """statsmodels' counts: non-constant, non-negative whole numbers, not dummies."""
    mask = summary.whole & (summary.column_min != summary.column_max)
    mask &= summary.column_min >= 0
    dummies = set(_dummy_columns(summary))
    return tuple(int(j) for j in np.flatnonzero(mask) if j not in dummies)


def _evaluation_row(
    at: str, summary: MargeffStatistic, nonconstant: np.ndarray, atexog: tuple
) -> np.ndarray:
    """The one row of ``at="mean"`` (the column means, ``atexog`` values set) or
    ``at="zero"`` (zeros, the constant columns 1; statsmodels ignores ``atexog``)."""
    if at == "zero":
        row = np.where(nonconstant, 0.0, 1.0)
    else:
        row = summary.column_sum / summary.nobs
        for column, value in atexog:
            row[column] = value
    return row[None, :]


def _endog_name(results: Any) -> str:
    formula = results.formula or (results.spec.formula if results.spec is not None else None)
    if formula and "~" in str(formula):
        return str(formula).split("~", 1)[0].strip()
    response = getattr(results.spec, "response", None)
    return str(response) if response else "y"


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, float | int) or not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter must be a float in (0, 1). Got {alpha!r}.")
