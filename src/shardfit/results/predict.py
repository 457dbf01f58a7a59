"""Predictions of a fitted linear model: in memory for small data, Parquet out of core.

Every partition is encoded on its worker with the design learned at fit time
(``results.spec``; the response, weight and cluster columns are not needed), so new
data gets exactly the fitted columns. For a design row ``x`` (aliased columns, whose
estimates are NaN, contribute nothing):

- ``predicted = x'b``, the mean;
- ``mean_se = sqrt(x' C x)`` with ``C = cov_params()`` (so a robust covariance gives
  robust intervals), computed as ``|x'L|`` from the fit's factor ``L`` of ``C``
  (``results.cov_factor``) when it has one, which keeps its accuracy on an
  ill-conditioned design; ``mean_ci_* = predicted -/+ q * mean_se``;
- ``obs_ci_* = predicted -/+ q * sqrt(mean_se**2 + scale)`` with ``scale = ssr /
  df_resid``: a new observation has unit weight, as in statsmodels' ``get_prediction``
  with new ``exog``, unless ``get_prediction(..., weights=w)`` gives it weight ``w``
  (``scale / w``, statsmodels' ``weights``);
- ``q`` is the ``1 - alpha/2`` quantile of Student's t with the results' inference
  degrees of freedom when ``results.use_t``, else of the standard normal.

Rows missing a predictor (or whose transform gives NaN or inf) get no prediction and
are counted, never dropped silently: a :class:`UserWarning` gives their number, and
:class:`PredictionResults` and
:class:`~shardfit.results.prediction_output.PredictionOutput` carry the counts and
which rows were kept. With ``out=``, see :mod:`shardfit.results.prediction_output`.

:func:`row_values` computes statsmodels' residuals (``results.resid(data, kind=...)``)
of a fit (linear or GLM) on data of any size the same way, reading the response,
weights, offset and exposure columns the fit used as well, and its leverages,
studentized residuals, Cook's distances (and p-values), and a linear fit's externally
studentized residuals and DFFITS, as statsmodels' ``get_influence()``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from shardfit.data.memory import MemoryPartition
from shardfit.data.partition import Source
from shardfit.data.resolve import as_source
from shardfit.design.store import numbered_as_source
from shardfit.engine import map_partitions, session
from shardfit.errors import DesignError
from shardfit.results.prediction_output import PredictionOutput, write_predictions
from shardfit.results.prediction_tasks import (
    GLM_INFLUENCE,
    GLM_RESIDUALS,
    INFLUENCE,
    LINEAR_RESIDUALS,
    GramTask,
    Outputs,
    PartPrediction,
    PredictionModel,
    PredictTask,
    ResidualModel,
    Unseen,
    critical_value,
    hessian_factor,
    prediction_model,
    residual_model,
    source_positions,
    total_counts,
    warn_dropped,
)

__all__ = [
    "PredictionOutput",
    "PredictionResults",
    "StatsmodelsPredictionNames",
    "check_unseen",
    "get_prediction",
    "inference_fields",
    "influence_kind",
    "nan_padded",
    "predict",
    "predict_backend",
    "predict_rows",
    "row_values",
]

Interval = Literal["confidence", "prediction"]


class StatsmodelsPredictionNames:
    """statsmodels' other names for a prediction's numbers, which its users' code
    reads: ``predicted``, ``se``, ``var_pred_mean`` and ``var_pred``, from the class's
    ``predicted_mean`` and ``se_mean``."""

    predicted_mean: np.ndarray
    se_mean: np.ndarray

    @property
    def predicted(self) -> np.ndarray:
        """:attr:`predicted_mean` (statsmodels' name)."""
        return self.predicted_mean

    @property
    def se(self) -> np.ndarray:
        """:attr:`se_mean` (statsmodels' name)."""
        return self.se_mean

    @property
    def var_pred_mean(self) -> np.ndarray:
        """Variance of the predicted mean, ``se_mean**2``."""
        return self.se_mean**2

    @property
    def var_pred(self) -> np.ndarray:
        """:attr:`var_pred_mean` (statsmodels' name)."""
        return self.var_pred_mean


@dataclass(frozen=True, eq=False)
class PredictionResults(StatsmodelsPredictionNames):
    """Predicted means with their standard errors (statsmodels' ``PredictionResults``).

    Attributes
    ----------
    predicted_mean, se_mean : numpy.ndarray
        One value per kept row, in source order.
    var_resid : float or numpy.ndarray
        Variance of a new observation around its mean: ``results.scale``, or ``scale /
        w`` per kept row for ``get_prediction(..., weights=w)``.
    dist : {"t", "norm"}
        Distribution of the intervals; ``df`` is its degrees of freedom for ``"t"``.
    df : float or None
    row_labels : pandas.Index
        The kept rows: a DataFrame's index labels, else 0-based row positions.
    rows_read, rows_skipped : int
        Rows read, and malformed rows the reader skipped.
    rows_dropped : dict of str to int
        Rows without a prediction, by reason (``"missing"``, ``"nonfinite"``).
    alpha : float
        Default level of :meth:`conf_int` and :meth:`summary_frame`.
    """

    predicted_mean: np.ndarray
    se_mean: np.ndarray
    var_resid: float | np.ndarray
    dist: str
    df: float | None
    row_labels: pd.Index
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0
    alpha: float = 0.05

    @property
    def se_obs(self) -> np.ndarray:
        """Standard error of a new observation: ``sqrt(se_mean**2 + var_resid)``."""
        return np.sqrt(self.se_mean**2 + self.var_resid)

    def conf_int(self, obs: bool = False, alpha: float | None = None) -> np.ndarray:
        """``(n, 2)`` intervals for the mean, or for a new observation with ``obs=True``
        (statsmodels' signature: ``conf_int(obs=False, alpha=0.05)``)."""
        level = self.alpha if alpha is None else alpha
        _check_alpha(level)
        q = critical_value(self.dist == "t", self.df, level)
        se = self.se_obs if obs else self.se_mean
        return np.column_stack([self.predicted_mean - q * se, self.predicted_mean + q * se])

    def summary_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """Mean, its standard error and both intervals, with statsmodels' column names."""
        mean_ci = self.conf_int(alpha=alpha)
        obs_ci = self.conf_int(obs=True, alpha=alpha)
        return pd.DataFrame(
            {
                "mean": self.predicted_mean,
                "mean_se": self.se_mean,
                "mean_ci_lower": mean_ci[:, 0],
                "mean_ci_upper": mean_ci[:, 1],
                "obs_ci_lower": obs_ci[:, 0],
                "obs_ci_upper": obs_ci[:, 1],
            },
            index=self.row_labels,
        )


def predict(
    results: Any,
    data: Any,
    *,
    out: str | os.PathLike[str] | None = None,
    interval: Interval | None = None,
    alpha: float = 0.05,
    unseen: Unseen = "raise",
    backend: Any = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> np.ndarray | pd.DataFrame | PredictionOutput:
    """Predict from a fitted linear model on new data of any size.

    Parameters
    ----------
    results : LinearResults
        A fit, or one loaded with :func:`shardfit.results.io.load_results`.
    data : DataFrame, pyarrow.Table, Source, path, glob or ndarray
        Rows with the predictors (the response and weights are not needed). A 2-D
        array is accepted for a plain-columns model (``shardfit.OLS``), its columns
        in the fitted order.
    out : str or path, optional
        A directory to write Parquet part files into, partition by partition on the
        backend, instead of returning the values
        (see :mod:`shardfit.results.prediction_output`).
    interval : {"confidence", "prediction"}, optional
        Add ``mean_se``, ``mean_ci_lower`` and ``mean_ci_upper``; ``"prediction"``
        adds ``obs_ci_lower`` and ``obs_ci_upper`` as well.
    alpha : float
        Intervals at level ``1 - alpha``.
    unseen : {"raise", "zero"}
        A categorical level not seen in the fit raises
        :class:`~shardfit.errors.UnseenLevelError`, or is encoded as all zeros
        (the reference level's columns).
    backend, workers
        Where partitions are encoded (see :func:`shardfit.engine.run_pass`). Without
        ``out``, data that is not a path runs serially unless a backend is given.
    overwrite : bool
        Replace the part files and manifest of an earlier run in ``out``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    numpy.ndarray, pandas.DataFrame or PredictionOutput
        Without ``out`` and ``interval``: one prediction per row of the data in source
        order, NaN for a row that gets none (a missing predictor), as statsmodels'
        ``predict`` on a frame: value ``i`` is row ``i``'s. An array held in memory (8
        bytes a row). Without ``out``, with ``interval``: a DataFrame of ``predicted``
        and the interval columns of the rows that get one, indexed like
        :attr:`PredictionResults.row_labels` (statsmodels' ``summary_frame`` drops
        the others too). With ``out``: what was written. When rows get no
        prediction, a :class:`UserWarning` says how many.

    Raises
    ------
    UnseenLevelError
        A categorical level the fit never saw, with ``unseen="raise"``.
    FileExistsError
        ``out`` holds other files, or an earlier prediction without ``overwrite``.
    """
    _check(interval, alpha, unseen)
    source, labels = _source(results, data)
    model = prediction_model(results, alpha)
    outputs: Outputs = interval or "mean"
    if out is not None:
        return write_predictions(
            model,
            source,
            Path(out),
            outputs=outputs,
            unseen=unseen,
            overwrite=overwrite,
            backend=backend,
            workers=workers,
            progress=progress,
        )
    values, rows, _ = predict_rows(
        model, outputs, unseen, source, data, labels, backend, workers, progress,
        pad=interval is None,
    )  # fmt: skip
    if interval is None:
        return values["predicted"]
    return pd.DataFrame(values, index=rows)


def get_prediction(
    results: Any,
    data: Any,
    *,
    alpha: float = 0.05,
    unseen: Unseen = "raise",
    backend: Any = None,
    workers: int | None = None,
    weights: Any = None,
) -> PredictionResults:
    """Predicted means and their standard errors for data that fits in memory.

    Parameters
    ----------
    results, data, unseen, backend, workers
        As for :func:`predict`.
    alpha : float
        The default level of the returned object's intervals.
    weights : str, float or array_like, optional
        The new observations' weights, as statsmodels' ``get_prediction(exog,
        weights=...)``: a new observation's variance about its mean is ``scale / w``
        (its interval ``obs_ci_*``), where a WLS fit's weights are inverse variances.
        A column of ``data`` (a DataFrame) by name, one positive value for every row,
        or one per row of ``data`` (rows without a prediction included). By default
        a new observation has unit weight, as statsmodels' with new ``exog``
        (statsmodels' ``get_prediction()`` without ``exog`` takes the fit's weights:
        pass ``weights="w"`` with the fitted data for its intervals).

    Returns
    -------
    PredictionResults
        Its ``summary_frame()`` has statsmodels' columns ``mean``, ``mean_se``,
        ``mean_ci_lower``, ``mean_ci_upper``, ``obs_ci_lower`` and ``obs_ci_upper``.

    Raises
    ------
    ValueError
        ``weights`` is not a column of ``data``, has another number of values than
        ``data`` has rows, or holds a value that is not finite and positive (naming
        the row).
    """
    _check(None, alpha, unseen)
    source, labels = _source(results, data)
    model = prediction_model(results, alpha)
    # stacklevel 5: the code calling LinearResults.get_prediction.
    values, positions, counts = _predicted(
        model, "mean_se", unseen, source, backend, workers, False, stacklevel=5
    )
    rows = _row_labels(labels, positions)
    var_resid: float | np.ndarray = float(results.scale)
    if weights is not None:
        var_resid = var_resid / _new_weights(weights, data, counts["read"], positions, rows)
    return PredictionResults(
        predicted_mean=values["predicted"],
        se_mean=values["mean_se"],
        var_resid=var_resid,
        **inference_fields(results, rows, counts, alpha),
    )


def _new_weights(
    weights: Any, data: Any, rows_read: int, positions: np.ndarray, rows: pd.Index
) -> np.ndarray:
    """The kept rows' weights for :func:`get_prediction`, checked."""
    if isinstance(weights, str):
        if not isinstance(data, pd.DataFrame) or weights not in data.columns:
            what = "a pandas DataFrame" if not isinstance(data, pd.DataFrame) else "the data"
            raise ValueError(
                f"get_prediction: weights={weights!r} names a column, and {what} has no "
                f"column {weights!r}; pass the weights as an array (one per row of data)"
            )
        values = pd.to_numeric(data[weights], errors="coerce").to_numpy(dtype=np.float64)
    else:
        values = np.asarray(weights, dtype=np.float64)
        if values.ndim == 0:
            values = np.full(rows_read, float(values))
        elif values.ndim != 1 or values.size != rows_read:
            raise ValueError(
                f"get_prediction: weights has shape {values.shape}; give one weight per "
                f"row of data ({rows_read:,} rows), a column name, or one number"
            )
    kept = values[positions]
    bad = np.flatnonzero(~(np.isfinite(kept) & (kept > 0)))
    if bad.size:
        raise ValueError(
            f"get_prediction: the weight of row {rows[bad[0]]} is {kept[bad[0]]:g} "
            f"({bad.size:,} row(s) in all); weights must be finite and positive (a new "
            "observation's variance is scale / weight)"
        )
    return kept


def row_values(
    results: Any,
    data: Any,
    measure: Literal["resid", "influence"],
    kind: str,
    family: Any,
    *,
    out: str | os.PathLike[str] | None,
    unseen: Unseen,
    backend: Any,
    workers: int | None,
    overwrite: bool,
    progress: bool,
    arrays: dict[str, Any],
) -> pd.Series | PredictionOutput:
    """Residuals (``measure="resid"``) or influence measures of a fitted linear model
    (``family`` ``None``) or GLM on data of any size, as statsmodels'.

    ``LinearResults.resid``/``influence`` and ``GLMResults.resid``/``influence`` call
    this; their docstrings list the kinds. Each partition is encoded with the fit's
    whole design: the response, the weights, the offset and the exposure are read from
    ``data`` under the names the fit used. ``arrays`` holds the ``endog``,
    ``weights``, ``offset`` and ``exposure`` arrays of a fit on arrays
    (``shardfit.OLS(y, X)``, ``shardfit.GLM(y, X, ...)``), ``data`` then being ``X``.

    A linear fit's leverages use its ``normalized_cov`` (the inverse of ``X'WX``); a
    GLM's need one more pass over ``data`` first, on the same session, factoring
    ``sqrt(W) X`` with statsmodels' observed-information weights at the estimates (as
    its ``get_hat_matrix_diag``; ``normalized_cov`` holds the last IRLS step's) into
    ``R`` (a tall-skinny QR), the leverages being ``w |R^{-T} x|^2``. An
    ill-conditioned linear fit (condition number of the unit-norm-column design over
    :data:`LEVERAGE_FACTOR_CONDITION`) takes that pass too, with the fit's weights,
    when ``data`` holds the fit's number of rows: ``x' normalized_cov x`` loses about
    ``cond**2 * eps`` to cancellation (1e-3 relative at a condition number of 1e10),
    the norm about ``cond * eps``. With negative weights (a non-canonical link's
    observed information) the GLM's ``X'WX`` is summed and pseudo-inverted.

    Returns
    -------
    pandas.Series or PredictionOutput
        Without ``out``: one value per row of ``data`` in source order, indexed like
        :func:`predict`'s rows (a DataFrame's index, else 0-based positions named
        ``row``), NaN where a row has none (a missing predictor or response), named as
        statsmodels' attribute. With ``out``: what was written.
    """
    if measure == "resid":
        kind = residual_kind(kind, family)
    else:
        kind = influence_kind(kind, family)
    check_unseen(unseen)
    if results.spec is None:
        raise ValueError(f"these results carry no design spec, so they have no {measure}")
    data = _with_arrays(results.spec, data, arrays)
    model = residual_model(results, kind, family)
    source, labels = _source(results, data, check=False)
    _check_fit_columns(model.spec, source, measure)
    # Part files are written on the default backend, as predict(out=) writes them.
    chosen = backend if out is not None else predict_backend(backend, source)
    with session(chosen, workers=workers) as sess:
        if measure == "influence":
            hat_cov, hat_factor = _hat_cov(results, model, family, source, unseen, sess, progress)
            model = replace(
                model,
                hat_cov=hat_cov,
                hat_factor=hat_factor,
                k_vars=int(np.size(results.params_array)),
                df_resid=float(results.df_resid),
                # A linear fit's (weighted) ssr gives the leave-one-out variances with
                # no extra pass; a GLM has no such kinds (influence_kind refuses them).
                ssr=float(results.ssr) if family is None else float("nan"),
            )
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
        values, rows, _ = predict_rows(
            model, "mean", unseen, source, data, labels, sess, None, progress, pad=True
        )
    return pd.Series(values[model.column], index=rows, name=model.column)


#: Above this condition number of the design with unit-norm columns (read off
#: ``normalized_cov``), a linear fit's leverages come from a factor of the data's
#: ``X'WX`` (one more pass) instead of ``x' normalized_cov x``, whose cancellation
#: loses about ``cond**2 * eps`` (under 1e-10 below this; 1e-3 relative at 5e6).
LEVERAGE_FACTOR_CONDITION = 1e3


def _hat_cov(
    results: Any,
    model: ResidualModel,
    family: Any,
    source: Source,
    unseen: Unseen,
    sess: Any,
    progress: bool,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(H, R)`` of the leverages over the kept columns (see :func:`row_values`):
    ``H`` the inverse of ``X'WX`` (leverages ``w x'Hx``), or ``R`` its upper
    triangular factor (``R'R = X'WX``, leverages ``w |R^{-T} x|^2``, which keep their
    accuracy in an ill-conditioned design) with ``H`` ``None``."""
    if family is None:
        normalized = np.asarray(results.normalized_cov, dtype=np.float64)
        normalized = normalized[np.ix_(model.kept, model.kept)]
        if _unit_norm_condition(normalized) <= LEVERAGE_FACTOR_CONDITION:
            return normalized, None
    grams = map_partitions(
        GramTask(model, unseen),
        source,
        backend=sess,
        progress=progress,
        pass_name="influence",
        allgather=True,
    )
    assert grams is not None
    kept = int(model.kept.sum())
    factor, gram = hessian_factor(grams, kept)
    if family is None and sum(part.rows for part in grams) != int(results.nobs):
        # Not the fitted rows: the leverages are the fit's H's, as documented.
        return normalized, None
    if factor is not None:
        return None, factor
    # statsmodels: pinv of the weighted design; the kept columns have full rank.
    return np.linalg.pinv(gram), None


def _unit_norm_condition(normalized: np.ndarray) -> float:
    """The 2-norm condition number of a design with unit-norm columns whose inverse
    Gram is ``normalized`` (``(X'WX)^-1``): the square root of that of the inverse
    Gram scaled to unit diagonal, up to a factor of the number of columns (van der
    Sluis); ``inf`` where it is not positive definite."""
    if normalized.size == 0:
        return 1.0
    diagonal = np.diag(normalized)
    if not np.all(np.isfinite(normalized)) or not np.all(diagonal > 0):
        return float("inf")
    root = np.sqrt(diagonal)
    singular = np.linalg.svd(normalized / np.outer(root, root), compute_uv=False)
    if singular[-1] <= 0:
        return float("inf")
    return float(np.sqrt(singular[0] / singular[-1]))


def influence_kind(kind: str, family: Any = None) -> str:
    """``kind`` as one of :data:`INFLUENCE`'s keys for a linear fit (``family``
    ``None``), or of :data:`GLM_INFLUENCE` for a GLM; statsmodels' attribute names
    (``"hat_matrix_diag"``, ``"resid_studentized_internal"``,
    ``"resid_studentized_external"``...) are taken for theirs.

    Raises
    ------
    ValueError
        ``kind`` is unknown, or is a linear fit's kind asked of a GLM (statsmodels'
        ``GLMInfluence`` does not define it); the message lists the model's kinds.
    """
    kinds = list(INFLUENCE) if family is None else list(GLM_INFLUENCE)
    aliases = {attribute: name for name, attribute in INFLUENCE.items() if attribute != name}
    aliases["resid_studentized_internal"] = "studentized"
    name = aliases.get(kind, kind) if isinstance(kind, str) else None
    if name in kinds:
        return str(name)
    names = [alias for alias, target in aliases.items() if target in kinds]
    if name in INFLUENCE:  # a linear fit's kind asked of a GLM
        raise ValueError(
            f"influence kind {kind!r} (statsmodels' OLSInfluence.{INFLUENCE[name]}) is not "
            "defined for a GLM: statsmodels' GLMInfluence has no leave-one-out variance "
            f"or DFFITS. The 'kind' parameter of a GLM's influence must be one of {kinds} "
            f"(or statsmodels' attribute names {names})."
        )
    model = "a linear model" if family is None else "a GLM"
    raise ValueError(
        f"The 'kind' parameter of influence must be one of {kinds} for {model} (or "
        f"statsmodels' attribute names {names}). Got {kind!r} instead."
    )


def residual_kind(kind: str, family: Any) -> str:
    """``kind`` as one of the residual kinds of a linear fit (``family`` ``None``) or a
    GLM; statsmodels' attribute names (``"resid_deviance"``, ``"wresid"``) are taken
    for theirs."""
    kinds = LINEAR_RESIDUALS if family is None else GLM_RESIDUALS
    aliases = {attribute: name for name, attribute in kinds.items()}
    if family is not None:
        aliases["resid_anscombe_scaled"] = "anscombe"
    if isinstance(kind, str) and kind in kinds:
        return kind
    if isinstance(kind, str) and kind in aliases:
        return aliases[kind]
    model = "a linear model" if family is None else "a GLM"
    raise ValueError(
        f"The 'kind' parameter of {model}'s resid must be one of {list(kinds)} (or "
        f"statsmodels' attribute names {list(aliases)}). Got {kind!r} instead."
    )


#: The columns shardfit.OLS and shardfit.GLM store their arrays under.
_ARRAY_COLUMNS = {
    "endog": "__y__",
    "weights": "__w__",
    "offset": "__offset__",
    "exposure": "__exposure__",
}


def _with_arrays(spec: Any, data: Any, given: dict[str, Any]) -> Any:
    """``data`` (the fitted ``X``) with the arrays of a fit on arrays added as the
    columns its design reads."""
    given = {role: values for role, values in given.items() if values is not None}
    if not given:
        return data
    fitted = {
        "endog": spec.response,
        "weights": spec.weights,
        "offset": spec.offset,
        "exposure": spec.exposure,
    }
    for role in given:
        if spec.formula is not None or fitted[role] != _ARRAY_COLUMNS[role]:
            where = (
                f"reads its {role} from the data's column {fitted[role]!r}"
                if fitted[role] is not None
                else f"has no {role}"
            )
            raise ValueError(f"resid's {role}= is for a fit on arrays; this fit {where}")
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
    elif isinstance(data, str | os.PathLike | Source) or hasattr(data, "partitions"):
        raise ValueError(
            "resid's endog=/weights=/offset=/exposure= arrays go with the design as an "
            "array or a DataFrame held in memory"
        )
    else:
        array = np.asarray(data, dtype=np.float64)
        array = array.reshape(-1, 1) if array.ndim == 1 else array
        if array.ndim != 2 or array.shape[1] != len(spec.x_columns):
            raise ValueError(
                f"resid needs a 2-D array of the {len(spec.x_columns)} fitted columns "
                f"{list(spec.x_columns)}; got shape {array.shape}"
            )
        frame = pd.DataFrame(array, columns=list(spec.x_columns))
    for role, values in given.items():
        column = np.asarray(values, dtype=np.float64)
        if column.shape != (len(frame),):
            raise ValueError(
                f"resid's {role}= needs one value per row ({len(frame)}); got shape {column.shape}"
            )
        frame[_ARRAY_COLUMNS[role]] = column
    return frame


def _check_fit_columns(spec: Any, source: Source, measure: str = "resid") -> None:
    """Refuse, before any pass, data lacking a column the fit read, naming its role
    (the reader would only say "unknown column") and what asked for it (``measure``:
    ``"resid"`` or ``"influence"``)."""
    roles = {spec.weights: "weights", spec.offset: "offset", spec.exposure: "exposure"}
    for name in spec.fit_only_columns:
        roles[name] = "response"
    if spec.formula is None:
        roles.update({name: "predictor" for name in spec.x_columns})
    absent = [name for name in spec.raw_columns if name not in source.columns]
    if not absent:
        return
    name = absent[0]
    role = roles.get(name, "predictor")
    arrays = {value: role for role, value in _ARRAY_COLUMNS.items()}
    hint = (
        f" This fit is on arrays: pass {measure}(X, {arrays[name]}=...), as to the model."
        if name in arrays
        else ""
    )
    raise DesignError(
        f"{measure} needs the {role} column {name!r} the fit used, which {source.name} lacks"
        f" (absent: {absent[:6]}{'...' if len(absent) > 6 else ''}).{hint}"
    )


def inference_fields(
    results: Any, rows: pd.Index, counts: dict[str, Any], alpha: float
) -> dict[str, Any]:
    """The fields prediction results share: the intervals' distribution and degrees of
    freedom, the kept rows' labels, the row counts and the default level."""
    return {
        "dist": "t" if results.use_t else "norm",
        # statsmodels' get_prediction takes df_resid, not the inference degrees of
        # freedom of a cluster or panel covariance (G - 1), which its t tests take.
        "df": float(results.df_resid) if results.use_t else None,
        "row_labels": rows,
        "rows_read": counts["read"],
        "rows_dropped": counts["dropped"],
        "rows_skipped": counts["skipped"],
        "alpha": alpha,
    }


def predict_rows(
    model: PredictionModel,
    outputs: Outputs,
    unseen: Unseen,
    source: Source,
    data: Any,
    labels: pd.Index | None,
    backend: Any = None,
    workers: int | None = None,
    progress: bool = False,
    *,
    pad: bool = False,
) -> tuple[dict[str, np.ndarray], pd.Index, dict[str, Any]]:
    """Predict every partition and bring the values back: the ``predicted`` and
    ``outputs`` columns of the kept rows in source order, their labels, and the row
    counts (a warning says how many rows got no prediction). With ``pad``, every row
    read, NaN where it got no prediction, so that value ``i`` is row ``i``'s."""
    # stacklevel 6: the code calling LinearResults.predict (through predict and here).
    values, positions, counts = _predicted(
        model, outputs, unseen, source, backend, workers, progress, stacklevel=6
    )
    if pad:
        values = {
            name: nan_padded(column, positions, counts["read"]) for name, column in values.items()
        }
        positions = np.arange(counts["read"])
    return values, _row_labels(labels, positions), counts


def _predicted(
    model: PredictionModel,
    outputs: Outputs,
    unseen: Unseen,
    source: Source,
    backend: Any,
    workers: int | None,
    progress: bool,
    *,
    stacklevel: int,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """:func:`predict_rows`' values of the kept rows, their 0-based positions in the
    source, and the row counts (warning, at ``stacklevel``, of rows without one)."""
    # The source, not ``data``: a Source of files gets the default backend. Every MPI
    # rank returns the predictions (allgather), as every rank's script uses them.
    parts = map_partitions(
        PredictTask(model, outputs, unseen),
        source,
        backend=predict_backend(backend, source),
        workers=workers,
        progress=progress,
        pass_name=model.label,
        allgather=True,
    )
    assert parts is not None
    values, positions, counts = _gather(parts, model.names(outputs))
    warn_dropped(counts, source.name, stacklevel=stacklevel, label=model.label)
    return values, positions, counts


def nan_padded(values: np.ndarray, positions: np.ndarray, rows: int) -> np.ndarray:
    """``values`` of the rows at ``positions`` spread over ``rows`` rows, NaN elsewhere:
    a prediction per row of the data, in place (statsmodels' ``predict`` on a frame
    with missing values), so it lines up with the rows the caller holds."""
    if positions.size == rows:
        return values
    full = np.full(rows, np.nan)
    full[positions] = values
    return full


def _check(interval: str | None, alpha: float, unseen: str) -> None:
    if interval not in (None, "confidence", "prediction"):
        raise ValueError(
            "The 'interval' parameter of predict must be None, 'confidence' or "
            f"'prediction'. Got {interval!r} instead."
        )
    _check_alpha(alpha)
    check_unseen(unseen)


def check_unseen(unseen: str) -> None:
    """Raise unless ``unseen`` is one of predict's two policies."""
    if unseen not in ("raise", "zero"):
        raise ValueError(
            f"The 'unseen' parameter of predict must be 'raise' or 'zero'. Got {unseen!r} instead."
        )


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, float | int) or not 0 < alpha < 1:
        raise ValueError(
            f"The 'alpha' parameter of predict must be a float in (0, 1). Got {alpha!r} instead."
        )


def predict_backend(backend: Any, data: Any) -> Any:
    """``"serial"`` when no backend is given and ``data`` is held in memory, else
    ``backend`` (``None``: the default backend).

    Data in memory (a DataFrame, an array, an Arrow table, a dict, or a
    :class:`~shardfit.data.partition.Source` of in-memory slices, as
    :func:`~shardfit.from_pandas` makes) fits in memory already: starting worker
    processes would cost more than the work. Paths and sources that read files
    (:func:`shardfit.read_parquet`, :func:`shardfit.read_csv`, a design store) or a
    Dask collection may be of any size, so they get the default backend.
    """
    if backend is not None:
        return backend
    dask = sys.modules.get("dask")  # a Dask collection exists only once dask is imported
    if isinstance(data, str | os.PathLike | list | tuple) or (
        dask is not None and dask.is_dask_collection(data)
    ):
        return None
    if isinstance(data, Source) and not all(
        isinstance(partition, MemoryPartition) for partition in data.partitions
    ):
        return None
    return "serial"


def _source(results: Any, data: Any, *, check: bool = True) -> tuple[Source, pd.Index | None]:
    """The data as a source, and the DataFrame's row labels when there is one
    (``check``: refuse data lacking a plain-columns fit's predictors)."""
    spec = results.spec
    if isinstance(data, np.ndarray) and spec is not None and spec.formula is None:
        array = data.reshape(-1, 1) if data.ndim == 1 else data
        if array.ndim != 2 or array.shape[1] != len(spec.x_columns):
            raise ValueError(
                f"predict needs a 2-D array of the {len(spec.x_columns)} fitted columns "
                f"{list(spec.x_columns)}; got shape {data.shape}"
            )
        data = pd.DataFrame(array, columns=list(spec.x_columns))
    labels = data.index if isinstance(data, pd.DataFrame) else None
    # A design store's rows are numbered as those of the data it was written from.
    source = numbered_as_source(as_source(data))
    if check:
        _check_plain_columns(spec, source)
    return source, labels


def _check_plain_columns(spec: Any, source: Source) -> None:
    """A model fitted on columns (arrays, a design store) predicts from those columns:
    raw data without them is refused saying how to make them, before any pass."""
    if spec is None or spec.formula is not None:
        return
    absent = [name for name in spec.x_columns if name not in source.columns]
    if absent:
        raise DesignError(
            f"this model was fitted on the columns {list(spec.x_columns)[:6]}"
            f"{'...' if len(spec.x_columns) > 6 else ''}, and {source.name} lacks "
            f"{absent[:6]}{'...' if len(absent) > 6 else ''}. A model fitted on a design "
            "store predicts from data encoded the same way: shardfit.write_design(formula, "
            "data, out, spec=store.spec), then predict(out_store.X.to_pandas()) or the "
            "store's folder"
        )


def _gather(
    parts: list[PartPrediction], names: tuple[str, ...]
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """Partitions' values joined; kept rows' positions in the source; row counts."""
    values: dict[str, list[np.ndarray]] = {name: [np.empty(0)] for name in names}
    for part in parts:
        for name in names:
            values[name].append((part.values or {})[name])
    joined = {name: np.concatenate(arrays) for name, arrays in values.items()}
    positions = source_positions([(part.row_index, part.rows_read) for part in parts])
    return joined, positions, total_counts(parts)


def _row_labels(labels: pd.Index | None, positions: np.ndarray) -> pd.Index:
    if labels is not None:
        return labels[positions]
    return pd.Index(positions, name="row")
