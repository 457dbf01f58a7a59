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

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from shardfit.engine import run_pass, session
from shardfit.errors import DesignError
from shardfit.results.margeff_tasks import Kind, MargeffStatistic, MargeffTask, row_effects
from shardfit.results.prediction_tasks import _predictor_spec
from shardfit.results.summary import Summary

__all__ = ["MarginalEffects", "get_margeff"]

#: statsmodels' names of the methods, the first column of its tables.
METHOD_NAMES = {"dydx": "dy/dx", "eyex": "d(lny)/d(lnx)", "dyex": "dy/d(lnx)", "eydx": "d(lny)/dx"}
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
    margeff_cov : numpy.ndarray
        Their covariance ``J V J'``.
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
        The rows averaged over (``at="overall"``) or whose means were taken.
    rows_read : int
        The rows read from ``data``.
    rows_dropped : dict of str to int
        Rows of ``data`` dropped, by reason (the rows the fit dropped, dropped again).
    """

    margeff: np.ndarray
    margeff_se: np.ndarray
    margeff_cov: np.ndarray
    names: tuple[str, ...]
    margeff_options: dict[str, str]
    dummy_idx: tuple[int, ...] | None
    count_idx: tuple[int, ...] | None
    model_name: str
    endog_name: str
    nobs: int
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def tvalues(self) -> np.ndarray:
        """``margeff / margeff_se`` (``z`` statistics)."""
        return self.margeff / self.margeff_se

    @property
    def pvalues(self) -> np.ndarray:
        """Two-sided p-values of :attr:`tvalues` under the standard normal."""
        return 2 * stats.norm.sf(np.abs(self.tvalues))

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(k, 2)`` normal confidence intervals at level ``1 - alpha``."""
        _check_alpha(alpha)
        q = stats.norm.ppf(1 - alpha / 2)
        return np.column_stack(
            [self.margeff - q * self.margeff_se, self.margeff + q * self.margeff_se]
        )

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """The effects' table with statsmodels' column names (its ``Cont. Int. Hi.``
        spelling included), indexed by design column."""
        bounds = self.conf_int(alpha)
        columns = {
            METHOD_NAMES[self.margeff_options["method"]]: self.margeff,
            "Std. Err.": self.margeff_se,
            "z": self.tvalues,
            "Pr(>|z|)": self.pvalues,
            "Conf. Int. Low": bounds[:, 0],
            "Cont. Int. Hi.": bounds[:, 1],
        }
        return pd.DataFrame(columns, index=list(self.names))

    def summary(self, alpha: float = 0.05) -> Summary:
        """A text table like statsmodels' (``print`` it; ``.as_frame()`` the table)."""
        bounds = self.conf_int(alpha)
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
    backend: Any = None,
    workers: int | None = None,
    unseen: Literal["raise", "zero"] = "raise",
    progress: bool = False,
) -> MarginalEffects:
    """Marginal effects of a fitted logit, probit or Poisson GLM, as statsmodels'
    ``DiscreteResults.get_margeff`` (see the module notes).

    Parameters
    ----------
    results : GLMResults
        A fit with the binomial family and the logit or probit link, or the Poisson
        family and the log link, without weights or frequency weights (statsmodels'
        discrete models have neither) and without aliased columns.
    at : {"overall", "mean", "zero"}
        Average of the rows' effects, or the effect at the column means or at zero.
        statsmodels' ``"median"`` and ``"all"`` are refused.
    method : {"dydx", "eyex", "dyex", "eydx"}
        ``dy/dx``, elasticities ``d(ln y)/d(ln x)``, and the semi-elasticities
        ``dy/d(ln x)`` and ``d(ln y)/dx``.
    atexog : dict, optional
        Design column (position or name) -> value set in every row before ``at``
        applies, as statsmodels' dict (its array form is not taken: pass the rows as
        ``data``).
    dummy, count : bool
        Discrete changes for 0/1 columns (``F(x_j = 1) - F(x_j = 0)``) and for
        columns of non-negative whole numbers (``(F(x_j + 1) - F(x_j - 1)) / 2``),
        as statsmodels; not with ``dyex``/``eyex`` or ``at="zero"``.
    data : DataFrame, pyarrow.Table, Source, path or glob
        The rows the model was fitted on (GLM results do not hold their data), with
        every column the fit read; the rows the fit dropped (missing values) are
        dropped again. Other rows give the effects averaged over them (or at their
        means), with a warning: statsmodels' ``atexog`` array. The constant column is
        then still the fit's (its intercept), but dummy and count columns are found
        from these rows.
    with_offset : bool
        ``False`` (statsmodels): effects of the mean at exposure 1, and a fit with an
        offset is refused, as statsmodels refuses it; ``True``: at each row's own
        offset and exposure (``at="overall"`` only).
    backend, workers, unseen, progress
        As for ``results.predict``.

    Returns
    -------
    MarginalEffects
    """
    at, method = _check_options(at, method, dummy, count, with_offset, atexog)
    kind, model_name = _model_kind(results)
    _check_offset(results, with_offset)
    params = np.asarray(results.params_array, dtype=np.float64)
    if data is None:
        raise ValueError(
            "get_margeff needs data=: the rows the model was fitted on (shardfit's "
            "results do not keep a reference to the fit's data, which may be larger "
            "than memory)"
        )
    from shardfit.results.predict import _source, predict_backend

    source, _ = _source(results, data, check=False)
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
    )
    options = {"progress": progress, "allreduce": True, "pass_name": "margeff"}
    with session(predict_backend(backend, source), workers=workers) as sess:
        summary: MargeffStatistic = run_pass(task, source, backend=sess, **options)
        if summary.nobs == 0:
            raise DesignError(f"no rows of {source.name!r} have every value the model needs")
        nonconstant = _nonconstant(results, summary)
        dummy_idx = _dummy_columns(summary) if dummy else ()
        count_idx = _count_columns(summary) if count else ()
        if at == "overall" and (dummy or count):
            task = replace(task, effects=True, dummy_idx=dummy_idx, count_idx=count_idx)
            summary = run_pass(task, source, backend=sess, **options)
    if summary.nobs != results.nobs:
        warnings.warn(
            f"get_margeff: {summary.nobs:,} rows of {source.name!r} have every value the "
            f"model needs, where the fit had {results.nobs:,}: the effects are those of "
            "these rows, not of the fit's (and dummy and count columns are found from "
            "these rows)",
            UserWarning,
            stacklevel=3,
        )
    if at == "overall":
        assert summary.effects is not None and summary.jacobian is not None
        effects = summary.effects / summary.nobs
        jacobian = summary.jacobian / summary.nobs
    else:
        row = _evaluation_row(at, summary, nonconstant, columns)
        effects, jacobian = row_effects(kind, method, row, params, None, dummy_idx, count_idx)  # type: ignore[arg-type]
    cov = np.asarray(results.cov_array, dtype=np.float64)
    margeff_cov = (jacobian @ cov @ jacobian.T)[np.ix_(nonconstant, nonconstant)]
    return MarginalEffects(
        margeff=effects[nonconstant],
        margeff_se=np.sqrt(np.diag(margeff_cov)),
        margeff_cov=margeff_cov,
        names=tuple(name for name, keep in zip(results.names, nonconstant) if keep),
        margeff_options={"method": method, "at": at},
        dummy_idx=(dummy_idx or None) if dummy else None,
        count_idx=(count_idx or None) if count else None,
        model_name=model_name,
        endog_name=_endog_name(results),
        nobs=summary.nobs,
        rows_read=summary.rows_read,
        rows_dropped=summary.dropped,
    )


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
    if at in ("median", "all"):
        raise NotImplementedError(
            f"get_margeff(at={at!r}) is not supported out of core ("
            + (
                "a median of every column needs the sorted data"
                if at == "median"
                else "it returns one row of effects per observation; at='overall' averages them"
            )
            + "); use at='overall', 'mean' or 'zero'"
        )
    if at not in ("overall", "mean", "zero"):
        raise ValueError(f"The 'at' parameter must be 'overall', 'mean' or 'zero'. Got {at!r}.")
    if method not in METHOD_NAMES:
        raise ValueError(
            f"The 'method' parameter must be one of {list(METHOD_NAMES)}. Got {method!r}."
        )
    if dummy or count:
        # statsmodels' rules for discrete changes.
        if method in ("dyex", "eyex"):
            raise ValueError(f"method={method!r} is not allowed with dummy=True or count=True")
        if at == "zero":
            raise ValueError("at='zero' is not allowed with dummy=True or count=True")
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
