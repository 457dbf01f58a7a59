"""Results of exact linear least squares, with statsmodels' names and meanings.

Everything here is computed from the small merged statistics (no data): the
estimates and their covariance, sums of squares, and the degrees of freedom. The
definitions follow statsmodels' ``RegressionResults`` (for WLS, the weighted ones):

- ``k_constant`` is 1 with an intercept column, or when a constant lies in the column
  space (e.g. ``0 + C(g)``), else 0;
- ``df_model = rank - k_constant``, ``df_resid = nobs - rank``;
- with a constant, ``rsquared = 1 - ssr / centered_tss``, otherwise ``1 - ssr /
  uncentered_tss``; ``rsquared_adj = 1 - (nobs - k_constant) / df_resid * (1 - R2)``;
- ``llf = -nobs/2 (1 + log(2 pi ssr / nobs)) + 1/2 sum(log w)``, ``aic = -2 llf + 2
  (df_model + k_constant)``, ``bic = -2 llf + log(nobs) (df_model + k_constant)``;
- inference uses Student's t with ``df_resid`` for ``cov_type="nonrobust"`` and the
  normal distribution for robust covariances (statsmodels' default ``use_t``), unless
  ``fit(use_t=...)`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import stats

from shardfit.results.estimates import CoefficientTable

__all__ = ["LinearResults"]


@dataclass(frozen=True, eq=False)
class LinearResults(CoefficientTable):
    """Estimates of an OLS or WLS fit, labelled by design column.

    Build it with :func:`shardfit.ols`, :func:`shardfit.wls` or :class:`shardfit.OLS`.
    """

    names: tuple[str, ...]
    params_array: np.ndarray
    normalized_cov: np.ndarray
    cov_array: np.ndarray
    nobs: int
    rank: int
    k_constant: int
    ssr: float
    centered_tss: float
    uncentered_tss: float
    sum_log_weights: float
    cov_type: str = "nonrobust"
    use_t: bool = True
    df_resid_inference: float | None = None
    condition_number: float = float("nan")
    method_used: str = "gram"
    const_idx: int | None = None
    weighted: bool = False
    data_name: str = ""
    formula: str | None = None
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0
    n_groups: int | None = None
    spec: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``(p, m)`` factor ``L`` of ``cov_array`` (``L L'``; NaN rows for aliased columns),
    #: or ``None``. Prediction standard errors are ``|x'L|``, which keep their accuracy
    #: on an ill-conditioned design where ``sqrt(x'Cx)`` loses ``cond**2 * eps`` to
    #: cancellation; without it (a plain robust sandwich, older files) they are that.
    cov_factor: np.ndarray | None = None

    # -- degrees of freedom and sums of squares -----------------------------------
    @property
    def df_model(self) -> float:
        """``rank - k_constant``."""
        return float(self.rank - self.k_constant)

    @property
    def df_resid(self) -> float:
        """``nobs - rank``."""
        return float(self.nobs - self.rank)

    @property
    def ess(self) -> float:
        """Explained sum of squares (centred with a constant)."""
        total = self.centered_tss if self.k_constant else self.uncentered_tss
        return total - self.ssr

    @property
    def rsquared(self) -> float:
        """Coefficient of determination (uncentred without a constant)."""
        total = self.centered_tss if self.k_constant else self.uncentered_tss
        return 1.0 - self.ssr / total

    @property
    def rsquared_adj(self) -> float:
        """Adjusted R-squared."""
        return 1.0 - (self.nobs - self.k_constant) / self.df_resid * (1.0 - self.rsquared)

    @property
    def mse_resid(self) -> float:
        """``ssr / df_resid``."""
        return self.ssr / self.df_resid

    @property
    def mse_model(self) -> float:
        """``ess / df_model``."""
        return self.ess / self.df_model

    @property
    def mse_total(self) -> float:
        """Total sum of squares over ``df_resid + df_model``."""
        total = self.centered_tss if self.k_constant else self.uncentered_tss
        return total / (self.df_resid + self.df_model)

    @property
    def scale(self) -> float:
        """Residual variance estimate ``ssr / df_resid``."""
        return self.mse_resid

    @cached_property
    def _f_test_all(self) -> tuple[float, float]:
        if self.cov_type == "nonrobust":
            fvalue = self.mse_model / self.mse_resid
            return fvalue, float(stats.f.sf(fvalue, self.df_model, self.df_resid))
        # Robust: Wald F test that every non-constant coefficient is zero.
        if self.k_constant and self.const_idx is None:
            return float("nan"), float("nan")
        keep = [
            i
            for i in range(len(self.names))
            if i != self.const_idx and np.isfinite(self.params_array[i])
        ]
        if not keep:
            return float("nan"), float("nan")
        restriction = np.eye(len(self.names))[keep]
        test = self.f_test(restriction)
        return float(test.fvalue), float(test.pvalue)

    @property
    def fvalue(self) -> float:
        """F statistic of the regression (robust Wald F for robust covariances)."""
        return self._f_test_all[0]

    @property
    def f_pvalue(self) -> float:
        """p-value of :attr:`fvalue`."""
        return self._f_test_all[1]

    @property
    def llf(self) -> float:
        """Gaussian log-likelihood (with ``1/2 sum(log w)`` for WLS)."""
        nobs2 = self.nobs / 2.0
        value = -np.log(self.ssr) * nobs2 - (1 + np.log(np.pi / nobs2)) * nobs2
        return float(value + 0.5 * self.sum_log_weights)

    @property
    def aic(self) -> float:
        """Akaike information criterion."""
        return -2 * self.llf + 2 * (self.df_model + self.k_constant)

    @property
    def bic(self) -> float:
        """Bayesian information criterion."""
        return -2 * self.llf + np.log(self.nobs) * (self.df_model + self.k_constant)

    # -- summary, prediction, save and load -----------------------------------------
    def summary(self, *, alpha: float = 0.05) -> Any:
        """A text table like statsmodels' (``print`` it; ``.as_frame()`` for the coefficients)."""
        from shardfit.results.summary import linear_summary

        return linear_summary(self, alpha=alpha)

    def predict(
        self,
        data: Any,
        *,
        out: Any = None,
        interval: str | None = None,
        alpha: float = 0.05,
        unseen: str = "raise",
        backend: Any = None,
        workers: int | None = None,
        overwrite: bool = False,
        progress: bool = False,
    ) -> Any:
        """Predict on new data: an array in memory, or Parquet part files with ``out=``.

        See :func:`shardfit.results.predict.predict` for the parameters.
        """
        from shardfit.results.predict import predict

        return predict(
            self,
            data,
            out=out,
            interval=interval,  # type: ignore[arg-type]
            alpha=alpha,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
        )

    def get_prediction(
        self, data: Any, *, alpha: float = 0.05, unseen: str = "raise", backend: Any = None
    ) -> Any:
        """Predicted means with standard errors; ``.summary_frame()`` as statsmodels'."""
        from shardfit.results.predict import get_prediction

        return get_prediction(self, data, alpha=alpha, unseen=unseen, backend=backend)  # type: ignore[arg-type]

    def resid(
        self,
        data: Any,
        *,
        kind: str = "response",
        out: Any = None,
        unseen: str = "raise",
        backend: Any = None,
        workers: int | None = None,
        overwrite: bool = False,
        progress: bool = False,
        endog: Any = None,
        weights: Any = None,
    ) -> Any:
        """Residuals of the fit on ``data`` (the training data, or any other), out of core.

        statsmodels keeps its residuals as attributes; shardfit, fitting data of any
        size, computes them from ``data`` on request, partition by partition:

        ============  ===================  ======================================
        ``kind``      statsmodels          value
        ============  ===================  ======================================
        "response"    ``resid``            ``y - x'b``
        "weighted"    ``wresid``           ``sqrt(w) (y - x'b)`` (``w = 1``: OLS)
        "pearson"     ``resid_pearson``    ``wresid / sqrt(scale)``
        ============  ===================  ======================================

        statsmodels' names are accepted as ``kind`` too. Its ``fittedvalues`` are
        :meth:`predict` on the same data.

        Parameters
        ----------
        data : DataFrame, pyarrow.Table, Source, path, glob or ndarray
            Rows with the columns the fit read: predictors, the response and the
            weights (WLS), under the fit's names (a formula's left-hand side is
            evaluated, ``np.log(y) ~ x`` included). For a fit on arrays
            (:func:`shardfit.OLS`), the ``X`` array or DataFrame, with ``endog=``.
        kind : {"response", "weighted", "pearson"}
            Which residuals (see the table).
        out : str or path, optional
            Write Parquet part files (columns ``row`` and the statsmodels name, e.g.
            ``resid_pearson``) and a manifest instead of returning the values, as
            :meth:`predict` does (:mod:`shardfit.results.prediction_output`).
        unseen, backend, workers, overwrite, progress
            As for :meth:`predict`.
        endog, weights : array_like, optional
            For a fit on arrays: the response and the weights it was fitted with, one
            value per row of ``data``.

        Returns
        -------
        pandas.Series or PredictionOutput
            One residual per row of ``data`` in source order, indexed by a DataFrame's
            index (else 0-based positions named ``row``) and named as statsmodels'
            attribute; NaN where a row has none (a missing predictor, response or
            weight: a :class:`UserWarning` says how many). ``.dropna()`` leaves the
            rows statsmodels' ``missing="drop"`` keeps. With ``out``: what was
            written.

        Raises
        ------
        DesignError
            ``data`` lacks a column the fit read (the response...), naming it.

        Examples
        --------
        >>> res = shardfit.wls("y ~ x", frame, weights="w").fit()  # doctest: +SKIP
        >>> res.resid(frame, kind="pearson")  # sm_res.resid_pearson  # doctest: +SKIP
        """
        from shardfit.results.predict import row_values

        return row_values(
            self,
            data,
            "resid",
            kind,
            None,
            out=out,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
            arrays={"endog": endog, "weights": weights},
        )

    def influence(
        self,
        data: Any,
        *,
        kind: str = "hat",
        out: Any = None,
        unseen: str = "raise",
        backend: Any = None,
        workers: int | None = None,
        overwrite: bool = False,
        progress: bool = False,
        endog: Any = None,
        weights: Any = None,
    ) -> Any:
        """Per-row influence measures on ``data``, as statsmodels' ``get_influence()``.

        statsmodels computes them from its data in memory (``res.get_influence()``,
        :class:`~statsmodels.stats.outliers_influence.OLSInfluence`); shardfit
        computes them from ``data`` on request, partition by partition, with ``x`` a
        row's design (kept columns), ``H = normalized_cov`` (``(X'WX)^-1`` of the
        fit), ``w`` the row's weight (1 for OLS), ``r`` the Pearson residual
        (``resid(kind="pearson")``), ``e`` the weighted residual
        (``resid(kind="weighted")``), ``k`` the number of design columns (aliased
        ones included), ``ssr`` and ``df_resid`` the fit's, and ``F`` the F
        distribution's survival function:

        ======================  ==============================  =========================
        ``kind``                statsmodels                     value
        ======================  ==============================  =========================
        "hat"                   ``hat_matrix_diag``             ``h = w x'Hx``
        "studentized"           ``resid_studentized``           ``r / sqrt(1 - h)``
                                (``_internal``)
        "cooks"                 ``cooks_distance[0]``           ``c = studentized**2 h /
                                                                (1 - h) / k``
        "cooks_pvalue"          ``cooks_distance[1]``           ``F(c; k, df_resid)``
        "studentized_external"  ``resid_studentized_external``  ``e / sqrt(s2 (1 - h))``
        "dffits"                ``dffits[0]``                   ``studentized_external
                                                                sqrt(h / (1 - h))``
        "dffits_internal"       ``dffits_internal[0]``          ``studentized
                                                                sqrt(h / (1 - h))``
        ======================  ==============================  =========================

        ``s2 = (ssr - e**2 / (1 - h)) / (df_resid - 1)`` is the residual variance of
        the fit without the row, statsmodels' ``sigma2_not_obsi`` from its
        leave-one-out loop: here from the fit's ``ssr``, with no extra pass.

        For OLS these are statsmodels' ``OLSInfluence``. statsmodels gives WLS no
        ``get_influence``; these are the weighted leverages it gives a Gaussian
        ``GLM(..., var_weights=w)`` (``OLSInfluence`` applied to WLS results would
        take ``sqrt(w) x'Hx`` and the unweighted residual); the externally
        studentized residuals and DFFITS are ``OLSInfluence``'s of the whitened OLS
        (``sqrt(w) y`` on ``sqrt(w) X``). ``data`` should be the rows the model was
        fitted on (``H`` and ``ssr`` are the fit's). statsmodels' attribute names are
        accepted as ``kind`` too. In an ill-conditioned design (columns scaled to unit
        norm, condition number over 1e3) ``x'Hx`` would lose ``cond**2 * eps`` to
        cancellation, so one more pass over ``data`` factors ``sqrt(w) X`` into ``R``
        and ``h = w |R^{-T} x|^2`` (when ``data`` holds the fit's number of rows).

        Parameters
        ----------
        data : DataFrame, pyarrow.Table, Source, path, glob or ndarray
            The rows the model was fitted on, with the columns the fit read (as for
            :meth:`resid`).
        kind : {"hat", "studentized", "cooks", "cooks_pvalue", \
"studentized_external", "dffits", "dffits_internal"}
            Which measure (see the table).
        out : str or path, optional
            Write Parquet part files (columns ``row`` and the statsmodels name, e.g.
            ``cooks_distance``; ``cooks_pvalue`` for Cook's p-values) and a manifest
            instead of returning the values.
        unseen, backend, workers, overwrite, progress
            As for :meth:`predict`.
        endog, weights : array_like, optional
            For a fit on arrays: the response and the weights it was fitted with, one
            value per row of ``data``.

        Returns
        -------
        pandas.Series or PredictionOutput
            One value per row of ``data`` in source order, indexed as :meth:`resid`'s
            and named as statsmodels' attribute; NaN where a row has none (a missing
            value: a :class:`UserWarning` says how many). With ``out``: what was
            written.

        Raises
        ------
        DesignError
            ``data`` lacks a column the fit read, naming it.
        ValueError
            ``kind`` is none of the above, listing them.

        Examples
        --------
        >>> res = shardfit.ols("y ~ x", frame).fit()  # doctest: +SKIP
        >>> res.influence(frame, kind="hat")  # doctest: +SKIP
        >>> res.influence(frame, kind="dffits")  # doctest: +SKIP
        """
        from shardfit.results.predict import row_values

        return row_values(
            self,
            data,
            "influence",
            kind,
            None,
            out=out,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
            arrays={"endog": endog, "weights": weights},
        )

    def save(self, path: Any) -> Any:
        """Save as one JSON document (no pickle); returns the path written."""
        from shardfit.results.io import save_results

        return save_results(self, path)

    @classmethod
    def load(cls, path: Any) -> LinearResults:
        """Load results written by :meth:`save`."""
        from shardfit.results.io import load_results

        loaded = load_results(path)
        if not isinstance(loaded, cls):
            raise TypeError(f"{path} holds {type(loaded).__name__}, not {cls.__name__}")
        return loaded
