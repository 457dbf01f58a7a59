"""Predictions of a fitted GLM: the mean or the linear predictor, in memory or Parquet.

The linear part ``x'b`` is the linear models' (same encoding, same row-by-row sums, so
bitwise the same on every backend); the fit's offset and exposure columns are read
from the new data and added (``log(exposure)``), and ``which="mean"`` applies the
inverse link. Out of core (``out=``) each worker writes its partition's part file, as
:mod:`shardfit.results.prediction_output` describes.

Standard errors and confidence intervals follow statsmodels' ``get_prediction``: on
the linear scale ``se = sqrt(x'Cx)`` and ``eta -/+ q se``; on the mean scale the
delta method's ``se = |d mu / d eta| sqrt(x'Cx)`` and the linear interval's endpoints
mapped through the inverse link (so the interval stays inside the mean's range, a
probability's in [0, 1]). Where the inverse link decreases (the inverse and inverse
squared links) the mapped endpoints swap; statsmodels reports them in that order,
shardfit as lower and upper. ``sqrt(x'Cx)`` is computed as ``|x'L|`` from the fit's
factor ``L`` of ``C`` (``results.cov_factor``) when it has one: on an ill-conditioned
design the explicit ``C`` loses ``cond**2 * eps`` to cancellation, ``L`` about
``cond * eps``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from shardfit.data.partition import Source
from shardfit.data.resolve import as_source
from shardfit.design.store import OFFSET, STORE_META, numbered_as_source
from shardfit.errors import DesignError
from shardfit.models.links import Link
from shardfit.results.predict import (
    StatsmodelsPredictionNames,
    _check,
    _check_alpha,
    _source,
    inference_fields,
    predict_rows,
)
from shardfit.results.prediction_output import PredictionOutput, write_predictions
from shardfit.results.prediction_tasks import (
    Outputs,
    PredictionModel,
    critical_value,
    prediction_model,
)

__all__ = ["GLMPredictionModel", "GLMPredictionResults", "get_prediction_glm", "predict_glm"]

Which = Literal["mean", "linear"]


@dataclass(frozen=True, eq=False)
class GLMPredictionModel(PredictionModel):
    """A prediction model that maps the linear predictor through the inverse link."""

    link: Link | None = None
    which: Which = "mean"

    def columns(
        self, X: np.ndarray, outputs: Outputs, offset: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        linear = super().columns(X, outputs, offset)
        if self.which == "linear" or self.link is None:
            return linear
        return _on_mean_scale(self.link, linear)


def _on_mean_scale(link: Link, linear: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The mean's columns from the linear predictor's (see the module notes)."""
    eta = linear["predicted"]
    out = {"predicted": np.asarray(link.inverse(eta), dtype=np.float64)}
    if "mean_se" in linear:
        out["mean_se"] = np.abs(link.inverse_deriv(eta)) * linear["mean_se"]
    if "mean_ci_lower" in linear:
        ends = link.inverse(linear["mean_ci_lower"]), link.inverse(linear["mean_ci_upper"])
        out["mean_ci_lower"] = np.asarray(np.minimum(*ends), dtype=np.float64)
        out["mean_ci_upper"] = np.asarray(np.maximum(*ends), dtype=np.float64)
    return out


@dataclass(frozen=True, eq=False)
class GLMPredictionResults(StatsmodelsPredictionNames):
    """Predictions of a GLM with their standard errors (statsmodels' ``get_prediction``).

    Attributes
    ----------
    linear, se_linear : numpy.ndarray
        The linear predictor (offset included) and its standard error, one value per
        kept row in source order.
    link : Link
        The fit's link.
    which : {"mean", "linear"}
        The scale of :attr:`predicted_mean`, :meth:`conf_int` and :meth:`summary_frame`.
    dist : {"norm", "t"}
        Distribution of the intervals; ``df`` its degrees of freedom for ``"t"``.
    df : float or None
    row_labels : pandas.Index
        The kept rows: a DataFrame's index labels, else 0-based row positions.
    rows_read, rows_skipped : int
    rows_dropped : dict of str to int
        Rows without a prediction, by reason.
    alpha : float
        Default level of :meth:`conf_int` and :meth:`summary_frame`.
    """

    linear: np.ndarray
    se_linear: np.ndarray
    link: Link
    which: Which
    dist: str
    df: float | None
    row_labels: pd.Index
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0
    alpha: float = 0.05
    generic_names: bool = False  # which= was given: statsmodels' predicted, se, ci_*

    def _columns(self, alpha: float | None) -> dict[str, np.ndarray]:
        level = self.alpha if alpha is None else alpha
        _check_alpha(level)
        q = critical_value(self.dist == "t", self.df, level)
        linear = {
            "predicted": self.linear,
            "mean_se": self.se_linear,
            "mean_ci_lower": self.linear - q * self.se_linear,
            "mean_ci_upper": self.linear + q * self.se_linear,
        }
        return linear if self.which == "linear" else _on_mean_scale(self.link, linear)

    @property
    def predicted_mean(self) -> np.ndarray:
        """The prediction: the mean, or the linear predictor with ``which="linear"``."""
        return self._columns(None)["predicted"]

    @property
    def se_mean(self) -> np.ndarray:
        """Standard error of :attr:`predicted_mean` (the delta method's on the mean)."""
        return self._columns(None)["mean_se"]

    def conf_int(self, alpha: float | None = None) -> np.ndarray:
        """``(n, 2)`` confidence intervals of :attr:`predicted_mean`."""
        columns = self._columns(alpha)
        return np.column_stack([columns["mean_ci_lower"], columns["mean_ci_upper"]])

    def summary_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """``mean``, ``mean_se``, ``mean_ci_lower`` and ``mean_ci_upper`` by row, as
        statsmodels' ``get_prediction(...).summary_frame()``; with ``which`` given
        (``"linear"`` or ``"mean"``) its names there: ``predicted``, ``se``,
        ``ci_lower`` and ``ci_upper``."""
        columns = self._columns(alpha)
        order = ["predicted", "mean_se", "mean_ci_lower", "mean_ci_upper"]
        if self.which == "linear" or self.generic_names:
            names = ["predicted", "se", "ci_lower", "ci_upper"]
        else:
            names = ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
        frame = {name: columns[key] for name, key in zip(names, order)}
        return pd.DataFrame(frame, index=self.row_labels)


def predict_glm(
    results: Any,
    data: Any,
    *,
    which: Which = "mean",
    out: str | os.PathLike[str] | None = None,
    interval: Literal["confidence"] | None = None,
    alpha: float = 0.05,
    unseen: Literal["raise", "zero"] = "raise",
    backend: Any = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    offset: Any = None,
    exposure: Any = None,
) -> np.ndarray | pd.DataFrame | PredictionOutput:
    """Predict from a fitted GLM on new data of any size.

    Parameters
    ----------
    results : GLMResults
    data : DataFrame, pyarrow.Table, Source, path, glob or ndarray
        Rows with the predictors, and the offset/exposure columns if the fit had them.
    which : {"mean", "linear"}
        The mean ``g^{-1}(x'b + offset)`` or the linear predictor ``x'b + offset``.
    interval : {"confidence"}, optional
        Add ``mean_se``, ``mean_ci_lower`` and ``mean_ci_upper`` (see the module notes;
        a GLM has no interval for a new observation).
    alpha : float
        Intervals at level ``1 - alpha``.
    out, unseen, backend, workers, overwrite, progress
        As for :func:`shardfit.results.predict.predict`.
    offset, exposure : array_like, optional
        For a fit on arrays (:func:`shardfit.GLM`) with an offset or exposure: one
        value per row of ``data``; left out, an offset of 0 and an exposure of 1, as
        in statsmodels. A formula fit reads its offset and exposure columns from
        ``data``, or, where a DataFrame lacks them, from these arrays; data lacking
        them with neither given raises :class:`~shardfit.errors.DesignError` naming
        the column (it is not taken as 0 or 1).

    Returns
    -------
    numpy.ndarray, pandas.DataFrame or PredictionOutput
        One prediction per row of the data in source order, NaN for a row that gets
        none (a missing predictor), as statsmodels' ``predict`` on a frame; with
        ``interval`` a DataFrame of ``predicted`` and the interval columns of the rows
        that get one; with ``out`` what was written.
    """
    _check_options(which, unseen, alpha)
    if interval not in (None, "confidence"):
        raise ValueError(
            "The 'interval' parameter of a GLM's predict must be None or 'confidence' (a "
            f"GLM has no interval for a new observation). Got {interval!r} instead."
        )
    source, labels = _source(results, _with_offsets(results, data, offset, exposure))
    _check_offset_columns(results.spec, source)
    model = _model(results, which, alpha)
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


def get_prediction_glm(
    results: Any,
    data: Any,
    *,
    which: Which | None = None,
    alpha: float = 0.05,
    unseen: Literal["raise", "zero"] = "raise",
    backend: Any = None,
    workers: int | None = None,
    offset: Any = None,
    exposure: Any = None,
) -> GLMPredictionResults:
    """Predictions with standard errors for data that fits in memory.

    Parameters are those of :func:`predict_glm`, but ``which`` defaults to ``None``,
    the mean, as statsmodels' ``get_prediction``; ``alpha`` is the default level of
    the returned object's intervals.

    Returns
    -------
    GLMPredictionResults
        Its ``summary_frame()`` has statsmodels' columns: ``mean``, ``mean_se``,
        ``mean_ci_lower`` and ``mean_ci_upper`` by default; ``predicted``, ``se``,
        ``ci_lower`` and ``ci_upper`` when ``which`` is given (``"linear"``, or
        ``"mean"``: the same values as the default, under these names, as statsmodels
        0.15 names them).
    """
    named = which is not None
    which = "mean" if which is None else which
    _check_options(which, unseen, alpha)
    source, labels = _source(results, _with_offsets(results, data, offset, exposure))
    _check_offset_columns(results.spec, source)
    model = _model(results, "linear", alpha)
    values, rows, counts = predict_rows(
        model, "mean_se", unseen, source, data, labels, backend, workers
    )
    return GLMPredictionResults(
        linear=values["predicted"],
        se_linear=values["mean_se"],
        link=results.family.link,
        which=which,
        **inference_fields(results, rows, counts, alpha),
        generic_names=named,
    )


#: The columns :func:`shardfit.GLM` stores array offsets and exposures under.
_ARRAY_COLUMNS = {"offset": "__offset__", "exposure": "__exposure__"}


def _with_offsets(results: Any, data: Any, offset: Any, exposure: Any) -> Any:
    """``data`` with the offset and exposure arrays given to predict as the columns the
    fit's design reads: for a fit on arrays its internal columns (0 and 1 where not
    given, as statsmodels' ``predict``); for a formula fit the offset and exposure
    columns it was fitted with, where the new data lacks them."""
    spec = results.spec
    given = {"offset": offset, "exposure": exposure}
    internal = (
        spec is not None
        and spec.formula is None
        and any(getattr(spec, kind) == column for kind, column in _ARRAY_COLUMNS.items())
    )
    if not internal:
        return _with_formula_offsets(spec, data, given)
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
    elif _stored_rows(data):
        return _with_stored_offsets(spec, data, given)
    else:
        try:
            array = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                "a GLM fitted on arrays predicts on an array or a DataFrame of its "
                f"columns, or a design store's rows; got {type(data).__name__}"
            ) from error
        frame = pd.DataFrame(array.reshape(len(array), -1), columns=list(spec.x_columns))
    for kind, column in _ARRAY_COLUMNS.items():
        if getattr(spec, kind) != column:
            if given[kind] is not None:
                raise ValueError(f"predict's {kind}= is given, but this fit has no {kind}")
            continue
        default = 0.0 if kind == "offset" else 1.0
        values = given[kind]
        frame[column] = _per_row(
            kind, np.full(len(frame), default) if values is None else values, len(frame)
        )
    return frame


def _stored_rows(data: Any) -> bool:
    """Whether ``data`` are rows on disk or a Source (a design store, its columns, its
    folder or source), not an array of the fitted columns."""
    return (
        isinstance(data, str | os.PathLike)
        or hasattr(data, "partitions")
        or hasattr(type(data), "_shardfit_source")
    )


def _with_stored_offsets(spec: Any, data: Any, given: dict[str, Any]) -> Source:
    """A GLM fitted on a design store's columns with ``offset=store.offset`` reads the
    offset from the store's ``__offset__`` column: ``data`` (a store, its folder or its
    source) must hold it, and offset=/exposure= arrays are not taken with it."""
    source = numbered_as_source(as_source(data))  # a store's folder: the store itself
    needed = [
        (kind, column) for kind, column in _ARRAY_COLUMNS.items() if getattr(spec, kind) == column
    ]
    folder = source.meta.get(STORE_META)
    arrays = [
        kind
        for kind, values in given.items()
        if values is not None and not _same_stored_offset(kind, values, folder)
    ]
    if arrays:
        raise ValueError(
            f"predict's {', '.join(arrays)}= go(es) with an array or a DataFrame of the "
            f"fitted columns; {source.name} is read from disk, and a fit on a design "
            f"store's columns reads its offset from the store's column {OFFSET!r}"
        )
    absent = [column for _, column in needed if column not in source.columns]
    if absent:
        kinds = " and ".join(kind for kind, column in needed if column in absent)
        raise DesignError(
            f"this GLM was fitted with an {kinds} given as an array or a design store's "
            f"column {absent[0]!r}, which {source.name} lacks: predict on a design store "
            f"written with write_design(..., offset=/exposure=, spec=store.spec), or on "
            f"an array or DataFrame of the fitted columns with predict's {kinds}= arrays"
        )
    return source


def _same_stored_offset(kind: str, values: Any, folder: Any) -> bool:
    """Whether ``values`` is ``store.offset`` of the store being predicted on (what
    the prediction reads anyway, so it may be passed as the fit was)."""
    if kind != "offset" or folder is None or getattr(values, "names", None) != (OFFSET,):
        return False
    try:
        return os.path.samefile(values.store.path, folder)
    except (AttributeError, OSError):
        return False


def _per_row(kind: str, values: Any, rows: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (rows,):
        raise ValueError(
            f"predict's {kind}= needs one value per row ({rows}); got shape {array.shape}"
        )
    return array


def _with_formula_offsets(spec: Any, data: Any, given: dict[str, Any]) -> Any:
    """A formula fit reads its offset and exposure from the data's columns; arrays
    given as ``offset=``/``exposure=`` (statsmodels' way) stand in for absent ones."""
    if all(values is None for values in given.values()):
        return data
    frame = None
    for kind, values in given.items():
        if values is None:
            continue
        column = None if spec is None else getattr(spec, kind)
        if column is None:
            raise ValueError(f"predict's {kind}= is given, but this fit has no {kind}")
        if not isinstance(data, pd.DataFrame):
            raise ValueError(
                f"predict's {kind}= goes with a DataFrame; for other data put the {kind} "
                f"in its column {column!r}, which this fit reads"
            )
        if column in data.columns:
            raise ValueError(
                f"predict's {kind}= is given, and the data has this fit's {kind} column "
                f"{column!r} as well; give one of them"
            )
        frame = data.copy() if frame is None else frame
        frame[column] = _per_row(kind, values, len(frame))
    return data if frame is None else frame


def _check_offset_columns(spec: Any, source: Any) -> None:
    """Refuse, before any pass, new data that lacks the offset or exposure column of a
    formula fit, naming it (the reader would only say "unknown column")."""
    if spec is None or spec.formula is None:
        return
    for kind in ("offset", "exposure"):
        column = getattr(spec, kind)
        if column is not None and column not in source.columns:
            unit = "np.zeros(len(data))" if kind == "offset" else "np.ones(len(data))"
            raise DesignError(
                f"this GLM was fitted with the {kind} column {column!r}, which "
                f"{source.name} lacks. Add the column to the data, or pass predict's "
                f"{kind}= one value per row of a DataFrame (as statsmodels' "
                f"predict({kind}=...)); {kind}={unit} predicts at "
                + ("no offset" if kind == "offset" else "a unit exposure")
            )


def _model(results: Any, which: Which, alpha: float) -> GLMPredictionModel:
    base = prediction_model(results, alpha)
    shared = {item.name: getattr(base, item.name) for item in fields(base)}
    return GLMPredictionModel(**shared, link=results.family.link, which=which)


def _check_options(which: str, unseen: str, alpha: float) -> None:
    if which not in ("mean", "linear"):
        raise ValueError(
            f"The 'which' parameter of predict must be 'mean' or 'linear'. Got {which!r} instead."
        )
    _check(None, alpha, unseen)
