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

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from shardfit.results.estimates import CoefficientTable
from shardfit.stats._distributions import chi2_sf, f_sf

__all__ = ["CompareLRTestResult", "LinearResults"]


class CompareLRTestResult(NamedTuple):
    """Result of :meth:`LinearResults.compare_lr_test` (statsmodels' named tuple):
    unpacks as ``(statistic, pvalue, df_diff)``."""

    statistic: float
    pvalue: float
    df_diff: float


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
    #: Eigenvalues of the weighted design's ``X'WX``, largest first (``eigenvals``).
    eigenvals_array: np.ndarray | None = None
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

    @property
    def eigenvals(self) -> np.ndarray:
        """Eigenvalues of the weighted design's ``X'WX``, largest first, as statsmodels'
        ``eigenvals``; ``condition_number`` is ``sqrt(eigenvals[0] / eigenvals[-1])``."""
        if self.eigenvals_array is None:
            raise ValueError(
                "eigenvals: these results were saved by a shardfit that did not record "
                "them; refit to get them"
            )
        return self.eigenvals_array.copy()

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
            return fvalue, float(f_sf(fvalue, self.df_model, self.df_resid))
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

    # -- comparing nested models -------------------------------------------------------
    def _nested(self, restricted: Any, test: str) -> None:
        """Refuse a ``restricted`` that cannot be compared with this fit: not a linear
        fit, fitted on another number of rows, or with no fewer residual degrees of
        freedom than this one has (statsmodels compares blindly and returns a negative
        or NaN statistic there)."""
        if not isinstance(restricted, LinearResults):
            raise TypeError(
                f"{test}: 'restricted' must be the results of an OLS/WLS fit "
                f"(LinearResults); got {type(restricted).__name__}"
            )
        if restricted.nobs != self.nobs:
            raise ValueError(
                f"{test}: the models were fitted on different rows: nobs={self.nobs:,} "
                f"(this fit, {self.formula or self.data_name or 'no formula'}) and "
                f"{restricted.nobs:,} (restricted, "
                f"{restricted.formula or restricted.data_name or 'no formula'}); nested "
                "models must be fitted on the same rows (drop rows with missing values "
                "in either model's columns before fitting both)"
            )
        if restricted.weighted != self.weighted:
            raise ValueError(
                f"{test}: one model is weighted (WLS) and the other is not; nested "
                "models must share their weights"
            )
        if not restricted.df_resid > self.df_resid:
            raise ValueError(
                f"{test}: the restricted model must have more residual degrees of freedom "
                f"than this one; got df_resid={restricted.df_resid:g} (restricted) and "
                f"{self.df_resid:g} (this fit). Call it on the larger model: "
                "full.compare_f_test(restricted)"
            )

    def _warn_robust(self, restricted: LinearResults, test: str) -> None:
        # statsmodels warns (InvalidTestWarning) and proceeds: the sums of squares and
        # the likelihood assume homoscedastic errors whatever the cov_type.
        robust = [r.cov_type for r in (self, restricted) if r.cov_type != "nonrobust"]
        if robust:
            warnings.warn(
                f"{test} is likely invalid with a robust covariance (cov_type="
                f"{robust[0]!r}): it compares sums of squares that assume homoscedastic, "
                "uncorrelated errors; proceeding anyway, as statsmodels. A Wald test of "
                "the restrictions (f_test/wald_test) uses the robust covariance",
                UserWarning,
                stacklevel=3,
            )

    def compare_f_test(self, restricted: LinearResults) -> tuple[float, float, float]:
        """F test that the nested ``restricted`` model is correct (statsmodels').

        ``F = (ssr_r - ssr) / df_diff / (ssr / df_resid)`` with ``df_diff =
        df_resid_r - df_resid``, from the two fits' sums of squares (no data).

        Parameters
        ----------
        restricted : LinearResults
            A fit nested in this one, on the same rows (and weights).

        Returns
        -------
        tuple of (float, float, float)
            ``(f_value, p_value, df_diff)``, as statsmodels'.

        Raises
        ------
        ValueError
            The fits have different ``nobs`` or weighting, or ``restricted`` has no
            more residual degrees of freedom than this fit.

        Warns
        -----
        UserWarning
            Either fit has a robust covariance (the test assumes homoscedasticity), as
            statsmodels warns.
        """
        self._nested(restricted, "compare_f_test")
        self._warn_robust(restricted, "compare_f_test")
        df_diff = restricted.df_resid - self.df_resid
        f_value = (restricted.ssr - self.ssr) / df_diff / self.ssr * self.df_resid
        p_value = float(f_sf(f_value, df_diff, self.df_resid))
        return float(f_value), p_value, df_diff

    def compare_lr_test(
        self, restricted: LinearResults, large_sample: bool = False
    ) -> CompareLRTestResult:
        """Likelihood ratio test that the nested ``restricted`` model is correct
        (statsmodels'): ``-2 (llf_r - llf)``, chi2 with ``df_diff`` degrees of freedom.

        Parameters
        ----------
        restricted : LinearResults
            A fit nested in this one, on the same rows (and weights).
        large_sample : bool, default False
            statsmodels' heteroscedasticity-robust version (an LM test from the
            restricted model's residuals and this model's rows) needs a pass over the
            data, which results do not hold: ``True`` raises NotImplementedError.

        Returns
        -------
        CompareLRTestResult
            ``(statistic, pvalue, df_diff)``, as statsmodels' named tuple.

        Raises
        ------
        NotImplementedError
            ``large_sample=True``.
        ValueError
            The fits have different ``nobs`` or weighting, or ``restricted`` has no
            more residual degrees of freedom than this fit.

        Warns
        -----
        UserWarning
            Either fit has a robust covariance, as statsmodels warns.
        """
        if large_sample:
            raise NotImplementedError(
                "compare_lr_test(large_sample=True) is statsmodels' robust LM test, built "
                "from the restricted model's residuals times this model's design row by "
                "row: a pass over the data that the results do not hold. Use "
                "large_sample=False (homoscedastic errors), or a robust Wald test of the "
                "restrictions: wald_test('...') on a fit with a robust cov_type"
            )
        self._nested(restricted, "compare_lr_test")
        self._warn_robust(restricted, "compare_lr_test")
        df_diff = restricted.df_resid - self.df_resid
        statistic = -2.0 * (restricted.llf - self.llf)
        return CompareLRTestResult(statistic, float(chi2_sf(statistic, df_diff)), df_diff)

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
        self,
        data: Any,
        *,
        alpha: float = 0.05,
        unseen: str = "raise",
        backend: Any = None,
        weights: Any = None,
    ) -> Any:
        """Predicted means with standard errors; ``.summary_frame()`` as statsmodels'.

        ``weights`` (a column of ``data``, one number, or one per row of ``data``)
        are the new observations' weights, as statsmodels' ``get_prediction(exog,
        weights=...)``: the intervals for a new observation take its variance as
        ``scale / w`` (by default ``scale``, unit weight). See
        :func:`shardfit.results.predict.get_prediction`.
        """
        from shardfit.results.predict import get_prediction

        return get_prediction(
            self,
            data,
            alpha=alpha,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            weights=weights,
        )

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
