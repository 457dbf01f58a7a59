"""Results of regularized and distributed fits: coefficients (zeros kept), predict, summary.

:class:`DistributedResults` holds the joined estimate of a
:class:`~shardfit.models.distributed.DistributedModel` fit (averaging or one-shot
debiasing: an approximation of the full-data estimate, with no covariance).
:class:`ElasticNetResults` holds an exact elastic-net fit with its regularization path
and cross-validation curve (:func:`~shardfit.models.elastic_net.elastic_net`).
Both predict from a design matrix in memory or, for formula fits, from any source
through the design learned at fit time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from shardfit.results.predict import check_unseen, nan_padded
from shardfit.results.prediction_tasks import _predictor_spec, source_positions
from shardfit.results.summary import Summary

__all__ = ["DistributedResults", "ElasticNetResults", "PredictTask"]


@dataclass(frozen=True)
class PredictTask:
    """Encode a partition with the fit's design: ``(kept rows, eta, rows read)``."""

    spec: Any
    params: np.ndarray
    intercept: float = 0.0
    unseen: str = "raise"

    def __call__(self, partition: Any) -> tuple[np.ndarray, np.ndarray, int]:
        from shardfit.design.materialize import encode_partition

        chunk = encode_partition(
            self.spec,
            partition,
            need_response=False,
            unseen=self.unseen,  # type: ignore[arg-type]
        )
        X = np.asarray(chunk.X, dtype=np.float64)
        eta = X @ self.params + self.intercept
        if chunk.offset is not None:
            eta = eta + chunk.offset
        return chunk.row_index, eta, chunk.rows_read


def _plus_offsets(eta: np.ndarray, spec: Any, exog: Any, offset: Any, exposure: Any) -> np.ndarray:
    """``eta + offset + log(exposure)`` for a design matrix, as statsmodels' GLM
    ``predict(exog, offset=..., exposure=...)``; a formula fit reads them from the data."""
    if offset is None and exposure is None:
        return eta
    if spec is not None and not isinstance(exog, np.ndarray | list):
        raise ValueError(
            "offset= and exposure= go with a design matrix; a formula fit reads "
            "them from the new data's columns"
        )
    for name, values in (("offset", offset), ("exposure", exposure)):
        if values is None:
            continue
        values = np.asarray(values, dtype=np.float64)
        if values.ndim and values.shape != eta.shape:
            raise ValueError(f"{name} has shape {values.shape}; exog has {eta.size} rows")
        eta = eta + (values if name == "offset" else np.log(values))
    return eta


def _inverse_link(family: str | None, link: str | None) -> Any:
    if family is None or (family == "gaussian" and link in (None, "identity")):
        return None
    from shardfit.models.families import get_family

    return get_family(family, link).link.inverse


def _linear_predictor(
    spec: Any,
    params: np.ndarray,
    intercept: float,
    data: Any,
    backend: Any,
    unseen: str = "raise",
) -> np.ndarray:
    check_unseen(unseen)
    if spec is None or isinstance(data, np.ndarray | list):
        X = np.asarray(data, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :] if X.size == params.size else X[:, None]
        if X.shape[1] != params.size:
            raise ValueError(
                f"predict needs {params.size} design columns; got an array with {X.shape[1]}"
            )
        return X @ params + intercept
    from shardfit.data.resolve import as_source
    from shardfit.engine.run import map_partitions
    from shardfit.results.predict import predict_backend

    source = as_source(data)
    # New data needs the predictors (and any offset), not the response or the weights.
    # Every MPI rank returns the predictions (allgather): each rank's script uses them.
    parts = map_partitions(
        PredictTask(_predictor_spec(spec), params, intercept, unseen),
        source,
        backend=predict_backend(backend, source),
        pass_name="predict",
        allgather=True,
    )
    assert parts is not None
    read = sum(part[2] for part in parts)
    kept = sum(part[1].size for part in parts)
    eta = np.concatenate([np.zeros(0), *(eta for _, eta, _ in parts)])
    if kept == read:
        return eta
    warnings.warn(
        f"{read - kept:,} of {read:,} rows have no prediction (a value the design needs "
        "is missing or not finite); they are NaN, in place",
        UserWarning,
        stacklevel=3,
    )
    positions = source_positions([(index, rows) for index, _, rows in parts])
    return nan_padded(eta, positions, read)


@dataclass(frozen=True, eq=False)
class DistributedResults:
    """The joined estimate of a distributed fit.

    Attributes
    ----------
    names : tuple of str
        Design columns.
    params_array : numpy.ndarray
        The joined coefficients (thresholded ones are exactly zero).
    method : str
        ``"debiased"``, ``"average"``, ``"average_regularized"`` or ``"custom"``.
    model : str
        ``"ols"``, ``"glm"``, or the statsmodels class name that was fitted.
    family, link : str or None
        The GLM family and link names.
    alpha : float or list of float
    l1_wt, threshold : float
    partitions : int
    solver : str
        ``"shardfit"`` or ``"statsmodels"``.
    labelled : bool
        Whether :attr:`params` is a labelled Series (formula fits) rather than an array
        (statsmodels-style array data, as statsmodels returns).
    nobs : int
        Rows fitted, over all partitions.
    rows_read : int
        Rows read (``nobs`` plus the dropped ones).
    rows_dropped : dict of str to int
        Rows read but not fitted, by reason (``"missing"``: a value the formula needs is
        missing or not finite; ``"nonfinite"``: a transform made it so).
    rows_skipped : int
        Malformed rows the reader skipped (``on_bad_lines="skip"``), not in ``rows_read``.
    """

    names: tuple[str, ...]
    params_array: np.ndarray
    method: str
    model: str
    family: str | None = None
    link: str | None = None
    alpha: Any = 0.0
    l1_wt: float = 1.0
    threshold: float = 0.0
    partitions: int = 1
    solver: str = "shardfit"
    labelled: bool = False
    formula: str | None = None
    data_name: str = ""
    spec: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    nobs: int = 0
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0

    @property
    def params(self) -> Any:
        """The coefficients: a Series by design column for formula fits, else an array."""
        if self.labelled:
            return pd.Series(self.params_array, index=list(self.names), name="params")
        return self.params_array.copy()

    def __getattr__(self, name: str) -> Any:
        # Only reached for attributes the class does not have. statsmodels users read
        # inference and fitted values off results; a joined estimate has neither, so
        # say why instead of Python's bare "no attribute" (statsmodels' own
        # RegularizedResults has none of these, and its fittedvalues fails on the dummy
        # model it is built with).
        if name in _NO_INFERENCE:
            raise AttributeError(
                f"DistributedResults has no {name!r}: a distributed ({self.method}) "
                "estimate joins per-partition fits and carries no covariance, so no "
                "standard errors, t or p values or confidence intervals (statsmodels' "
                "RegularizedResults has none either)"
            )
        if name in _NO_FITTED:
            raise AttributeError(
                f"DistributedResults has no {name!r}: the fit keeps no data (it was read "
                "partition by partition); call predict(exog) on the data instead "
                "(statsmodels' RegularizedResults.fittedvalues fails too)"
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def predict(
        self,
        exog: Any,
        *,
        linear: bool = False,
        backend: Any = None,
        unseen: str = "raise",
        offset: Any = None,
        exposure: Any = None,
        which: str | None = None,
    ) -> np.ndarray:
        """Predicted means (or the linear predictor with ``linear=True``).

        Parameters
        ----------
        exog : array_like, or data (path, DataFrame, Source) for formula fits
            A design matrix, or new data encoded with the fit's design.
        linear : bool
            Return ``X b`` (plus any offset) rather than the mean.
        backend
            Where formula data is encoded (default ``"serial"``).
        unseen : {"raise", "zero"}
            A categorical level the fit never saw raises, or is encoded as zeros.
        offset, exposure : array_like, optional
            For a design matrix, as statsmodels' GLM ``predict(exog, offset=...,
            exposure=...)``: ``offset + log(exposure)`` joins ``X b``. Formula fits read
            them from the data's columns.
        which : {"mean", "linear"}, optional
            statsmodels' GLM spelling: ``"linear"`` is ``linear=True``.
        """
        if which is not None:
            if which not in ("mean", "linear"):
                raise ValueError(
                    f"The 'which' parameter must be 'mean' or 'linear'. Got {which!r}."
                )
            linear = linear or which == "linear"
        if not linear and self.extra.get("mean") == "unknown":
            # statsmodels' predict gives the model's mean; X b would pass for it silently.
            raise ValueError(
                f"predict does not know the mean function of a {self.model} fit (shardfit "
                "knows OLS/WLS/GLS, GLM families and Logit/Probit/Poisson); pass "
                "linear=True for the linear predictor X @ params"
            )
        eta = _linear_predictor(self.spec, self.params_array, 0.0, exog, backend, unseen)
        eta = _plus_offsets(eta, self.spec, exog, offset, exposure)
        inverse = _inverse_link(self.family, self.link)
        return eta if linear or inverse is None else inverse(eta)

    def summary(self) -> Summary:
        """The coefficients and the settings of the fit."""
        zero = self.params_array == 0
        left = [
            ("Model:", self.model.upper() if self.model in ("ols", "glm") else self.model),
            ("Method:", self.method),
            ("Solver:", self.solver),
            ("Partitions:", f"{self.partitions:,}"),
            ("Data:", self.data_name or "-"),
            ("No. Observations:", f"{self.nobs:,}"),
            ("Rows dropped:", f"{sum(self.rows_dropped.values()):,}"),
        ]
        if self.rows_skipped:
            left.append(("Rows skipped:", f"{self.rows_skipped:,}"))
        if self.family is not None:
            left.insert(1, ("Family:", f"{self.family} ({self.link})"))
        right = [
            ("alpha:", "-" if self.alpha is None else _short(self.alpha)),
            ("L1_wt:", f"{self.l1_wt:g}"),
            ("threshold:", f"{self.threshold:g}"),
            ("Non-zero:", f"{int((~zero).sum())} of {zero.size}"),
        ]
        coefficients = pd.DataFrame({"coef": self.params_array}, index=list(self.names))
        notes = [
            "A distributed estimate joins per-partition fits: it approximates the "
            "full-data estimate and carries no standard errors."
        ]
        dropped = sum(self.rows_dropped.values())
        if dropped:
            reasons = ", ".join(
                f"{reason}: {n:,}" for reason, n in sorted(self.rows_dropped.items()) if n
            )
            notes.append(
                f"{dropped:,} of the {self.rows_read:,} rows read were not used ({reasons})."
            )
        if self.rows_skipped:
            notes.append(
                f"The reader skipped {self.rows_skipped:,} malformed row(s) (on_bad_lines='skip')."
            )
        return Summary(
            title=f"Distributed {self.method} estimate",
            left=tuple(left),
            right=tuple(right),
            coefficients=coefficients,
            notes=tuple(notes),
        )

    def save(self, path: Any) -> Any:
        """Save as one JSON document (no pickle); returns the path written."""
        from shardfit.results.io import save_results

        return save_results(self, path)

    @classmethod
    def load(cls, path: Any) -> Any:
        """Load results written by :meth:`save`."""
        from shardfit.results.io import load_results

        loaded = load_results(path)
        if not isinstance(loaded, cls):
            raise TypeError(f"{path} holds {type(loaded).__name__}, not {cls.__name__}")
        return loaded


# statsmodels' results attributes a distributed estimate cannot have, by reason.
_NO_INFERENCE = frozenset(
    {
        "bse",
        "tvalues",
        "pvalues",
        "zvalues",
        "conf_int",
        "cov_params",
        "normalized_cov_params",
        "t_test",
        "f_test",
        "wald_test",
        "llf",
        "aic",
        "bic",
        "scale",
        "df_model",
        "df_resid",
    }
)
_NO_FITTED = frozenset({"fittedvalues", "resid", "resid_response", "resid_pearson"})


def _short(value: Any) -> str:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return f"{float(array):g}"
    return f"vector ({array.size})"


@dataclass(frozen=True, eq=False)
class ElasticNetResults:
    """An exact elastic-net fit, its regularization path and cross-validation curve.

    Attributes
    ----------
    names : tuple of str
        Penalized design columns (the intercept, if any, is :attr:`intercept`).
    coef_array : numpy.ndarray
        Coefficients at :attr:`alpha` on the original scale of the columns (zeros kept).
    intercept : float
        Unpenalized intercept (0 without one).
    alpha : float
        The chosen (or given) penalty.
    l1_ratio : float
    alphas : numpy.ndarray
        The path's penalties, largest first.
    path_array : numpy.ndarray
        ``(len(alphas), p)`` coefficients along the path (full data).
    path_intercepts : numpy.ndarray
    cv_mse : numpy.ndarray or None
        ``(len(alphas), K)`` held-out loss per fold (mean squared error for the
        Gaussian family, mean deviance for GLMs); None without cross-validation.
    family, link : str
    nobs : int
        Rows fitted.
    rows_read : int
        Rows read; those beyond ``nobs`` were dropped (a value the design needs was
        missing or not finite). 0 when unknown (results saved before it was kept).
    rows_skipped : int
        Malformed rows the reader skipped (``on_bad_lines="skip"``), not in ``rows_read``.
    standardize, fit_intercept : bool
    intercept_name : str or None
        The design's intercept column, reported in :attr:`params`.
    """

    names: tuple[str, ...]
    coef_array: np.ndarray
    intercept: float
    alpha: float
    l1_ratio: float
    alphas: np.ndarray
    path_array: np.ndarray
    path_intercepts: np.ndarray
    cv_mse: np.ndarray | None
    family: str = "gaussian"
    link: str | None = None
    nobs: int = 0
    standardize: bool = False
    fit_intercept: bool = True
    intercept_name: str | None = None
    formula: str | None = None
    data_name: str = ""
    spec: Any = None
    passes: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    rows_read: int = 0
    rows_skipped: int = 0

    @property
    def coef_(self) -> np.ndarray:
        """scikit-learn's name for the penalized coefficients."""
        return self.coef_array.copy()

    @property
    def intercept_(self) -> float:
        """scikit-learn's name for the intercept."""
        return self.intercept

    @property
    def alpha_(self) -> float:
        """scikit-learn's name for the chosen penalty."""
        return self.alpha

    @property
    def params(self) -> pd.Series:
        """Every design coefficient by name, the intercept included (zeros kept)."""
        names = list(self.names)
        values = list(self.coef_array)
        if self.intercept_name is not None:
            names.insert(0, self.intercept_name)
            values.insert(0, self.intercept)
        return pd.Series(values, index=names, name="params")

    @property
    def path(self) -> pd.DataFrame:
        """Coefficients along the path: one row per alpha (index), one column per term."""
        frame = pd.DataFrame(
            self.path_array, index=pd.Index(self.alphas, name="alpha"), columns=list(self.names)
        )
        if self.intercept_name is not None:
            frame.insert(0, self.intercept_name, self.path_intercepts)
        return frame

    @property
    def cv_curve(self) -> pd.DataFrame | None:
        """Mean and standard error over folds of the held-out loss, by alpha."""
        if self.cv_mse is None:
            return None
        k = self.cv_mse.shape[1]
        return pd.DataFrame(
            {
                "mean": self.cv_mse.mean(axis=1),
                "std_error": self.cv_mse.std(axis=1, ddof=1) / np.sqrt(k) if k > 1 else np.nan,
            },
            index=pd.Index(self.alphas, name="alpha"),
        )

    @property
    def alpha_1se(self) -> float | None:
        """glmnet's ``lambda.1se``: the largest penalty whose mean held-out loss is
        within one standard error of the smallest mean (both from :attr:`cv_curve`,
        whose folds count alike, as scikit-learn's; glmnet weights each fold by its
        rows); None without cross-validation. Its coefficients are
        ``path.loc[alpha_1se]``."""
        curve = self.cv_curve
        if curve is None:
            return None
        mean = curve["mean"].to_numpy()
        error = np.nan_to_num(curve["std_error"].to_numpy(), nan=0.0)
        best = int(np.nanargmin(mean))  # the largest penalty among tied minima
        within = mean <= mean[best] + error[best]
        return float(np.max(self.alphas[within]))

    def predict(
        self,
        data: Any,
        *,
        linear: bool = False,
        backend: Any = None,
        unseen: str = "raise",
        offset: Any = None,
        exposure: Any = None,
    ) -> np.ndarray:
        """Predictions for new data (formula fits) or a design matrix without intercept.

        Parameters
        ----------
        data : array_like, or data (path, DataFrame, Source) for formula fits
            The penalized columns (no intercept), or new data encoded with the fit's
            design.
        linear : bool
            Return the linear predictor (plus any offset) rather than the mean.
        backend
            Where formula data is encoded (default ``"serial"``).
        unseen : {"raise", "zero"}
            A categorical level the fit never saw raises, or is encoded as zeros.
        offset, exposure : array_like, optional
            For a design matrix, as statsmodels' GLM ``predict(exog, offset=...,
            exposure=...)``: ``offset + log(exposure)`` joins the linear predictor.
            Formula fits read them from the data's columns.
        """
        # A matrix (array or list of rows) holds the penalized columns, no intercept.
        if self.spec is not None and not isinstance(data, np.ndarray | list):
            full = self.params.to_numpy() if self.intercept_name is not None else self.coef_array
            eta = _linear_predictor(
                self.spec, self._design_params(full), 0.0, data, backend, unseen
            )
        else:
            eta = _linear_predictor(None, self.coef_array, self.intercept, data, backend)
        eta = _plus_offsets(eta, self.spec, data, offset, exposure)
        inverse = _inverse_link(self.family, self.link)
        return eta if linear or inverse is None else inverse(eta)

    def _design_params(self, full: np.ndarray) -> np.ndarray:
        """Coefficients in the design's column order (the intercept where it stands)."""
        order = self.extra.get("design_order")
        if order is None:
            return full
        out = np.zeros(len(order))
        for position, name in enumerate(order):
            out[position] = self.params[name]
        return out

    def summary(self) -> Summary:
        """Coefficients at the chosen alpha, with the path and CV settings."""
        left = [
            ("Family:", self.family + (f" ({self.link})" if self.link else "")),
            ("Method:", "exact coordinate descent"),
            ("Data:", self.data_name or "-"),
            ("No. Observations:", f"{self.nobs:,}"),
            ("Passes over the data:", f"{self.passes:,}"),
        ]
        dropped = max(self.rows_read - self.nobs, 0)
        curve = self.cv_curve
        right = [
            ("alpha:", f"{self.alpha:.6g}"),
            ("l1_ratio:", f"{self.l1_ratio:g}"),
            ("Path length:", f"{self.alphas.size}"),
            ("CV folds:", "-" if self.cv_mse is None else f"{self.cv_mse.shape[1]}"),
            ("Non-zero:", f"{int(np.count_nonzero(self.coef_array))} of {self.coef_array.size}"),
        ]
        if curve is not None:
            right.append(("CV loss at alpha:", f"{float(curve['mean'].min()):.6g}"))
            right.append(("alpha (1 SE rule):", f"{self.alpha_1se:.6g}"))
        notes = [
            "Objective (scikit-learn's): 1/(2 n) ||y - b0 - X b||^2 + alpha * l1_ratio * "
            "||b||_1 + alpha * (1 - l1_ratio) / 2 * ||b||^2"
            if self.family == "gaussian"
            else "Objective: mean negative log-likelihood + alpha * (l1_ratio * ||b||_1 + "
            "(1 - l1_ratio) / 2 * ||b||^2); the intercept is not penalized.",
            "Penalized estimates carry no standard errors.",
        ]
        if self.standardize:
            notes.append(
                "Columns were standardized for the penalty; coefficients are on the original scale."
            )
        if dropped:
            notes.append(
                f"{dropped:,} of the {self.rows_read:,} rows read were not used (a value the "
                "design needs is missing or not finite)."
            )
        if self.rows_skipped:
            notes.append(
                f"The reader skipped {self.rows_skipped:,} malformed row(s) (on_bad_lines='skip')."
            )
        return Summary(
            title="Elastic-net results",
            left=tuple(left),
            right=tuple(right),
            coefficients=pd.DataFrame({"coef": self.params}),
            notes=tuple(notes),
        )

    def plot_path(self, ax: Any = None) -> Any:
        """Plot the coefficients along the path (needs matplotlib: ``shardfit[plot]``)."""
        from shardfit.results.regularized_plot import plot_path

        return plot_path(self, ax=ax)

    def plot_cv(self, ax: Any = None) -> Any:
        """Plot the cross-validation curve (needs matplotlib: ``shardfit[plot]``)."""
        from shardfit.results.regularized_plot import plot_cv

        return plot_cv(self, ax=ax)

    def save(self, path: Any) -> Any:
        """Save as one JSON document (no pickle); returns the path written."""
        from shardfit.results.io import save_results

        return save_results(self, path)

    @classmethod
    def load(cls, path: Any) -> Any:
        """Load results written by :meth:`save`."""
        from shardfit.results.io import load_results

        loaded = load_results(path)
        if not isinstance(loaded, cls):
            raise TypeError(f"{path} holds {type(loaded).__name__}, not {cls.__name__}")
        return loaded
