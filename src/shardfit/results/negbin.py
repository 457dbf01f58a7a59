"""Results of a negative binomial (NB2) fit with ``alpha`` estimated, with statsmodels'
``NegativeBinomialResults`` names.

Computed from the merged sums of the fit (no data). Definitions follow statsmodels:

- ``params`` are the coefficients then ``alpha``; the covariance is the inverse of
  minus the Hessian in ``(beta, alpha)`` at the estimates (``cov_type="nonrobust"``),
  or the sandwich of the per-row (``"HC0"``) or per-cluster (``"cluster"``) scores
  (see :mod:`shardfit.models.negbin`); ``normalized_cov_params`` is the nonrobust one
  whatever ``cov_type``; inference uses the normal distribution unless ``use_t``;
- ``df_model = rank - 1`` and ``df_resid = nobs - rank`` (``alpha`` not counted);
- ``aic = -2 (llf - (df_model + k_constant + k_extra))`` and ``bic = -2 llf +
  log(nobs) (df_model + k_constant + k_extra)`` with ``k_extra = 1`` (``alpha``);
- ``llnull`` is the constant-only NB2 model's (offset kept, ``alpha`` estimated);
  ``prsquared = 1 - llf / llnull``, ``llr = 2 (llf - llnull)`` on ``df_model`` degrees
  of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from shardfit.results.estimates import CoefficientTable
from shardfit.stats._distributions import chi2_sf

__all__ = ["NegativeBinomialResults"]


@dataclass(frozen=True, eq=False)
class NegativeBinomialResults(CoefficientTable):
    """Estimates of an NB2 fit, labelled by design column then ``"alpha"``.

    Build it with :func:`shardfit.negativebinomial`.
    """

    names: tuple[str, ...]
    params_array: np.ndarray
    cov_array: np.ndarray
    normalized_cov: np.ndarray
    hessian: np.ndarray
    nobs: int
    rank: int
    k_constant: int
    llf: float
    llnull: float
    converged: bool
    iterations: int
    llf_history: tuple[float, ...] = ()
    alpha_at_boundary: bool = False
    null_converged: bool = True
    data_name: str = ""
    formula: str | None = None
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0
    spec: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    cov_type: str = "nonrobust"
    use_t: bool = False
    df_resid_inference: float | None = None
    scale: float = 1.0
    #: The clusters of ``cov_type="cluster"`` (else ``None``).
    n_groups: int | None = None
    #: ``alpha``, counted by aic and bic (statsmodels' ``k_extra``).
    k_extra: int = 1
    #: The parameters after the design's columns (a results file's names are checked
    #: against the design spec's columns plus these).
    extra_param_names: ClassVar[tuple[str, ...]] = ("alpha",)

    # -- the dispersion ----------------------------------------------------------------
    @property
    def alpha(self) -> float:
        """The estimated ``alpha`` (``Var(y) = mu + alpha mu**2``)."""
        return float(self.params_array[-1])

    @property
    def theta(self) -> float:
        """``1 / alpha``: R's ``glm.nb`` ``theta``."""
        return 1.0 / self.alpha

    @property
    def lnalpha(self) -> float:
        """``log(alpha)``, statsmodels' ``lnalpha``."""
        return float(np.log(self.alpha))

    @property
    def lnalpha_std_err(self) -> float:
        """Delta-method standard error of ``log(alpha)``: ``bse[alpha] / alpha``."""
        return float(np.sqrt(self.cov_array[-1, -1]) / self.alpha)

    # -- fit measures ------------------------------------------------------------------
    @property
    def df_model(self) -> float:
        """``rank - 1``."""
        return float(self.rank - 1)

    @property
    def df_resid(self) -> float:
        """``nobs - rank``."""
        return float(self.nobs - self.rank)

    @property
    def aic(self) -> float:
        """``-2 (llf - (df_model + k_constant + k_extra))``."""
        return -2 * (self.llf - (self.df_model + self.k_constant + self.k_extra))

    @property
    def bic(self) -> float:
        """``-2 llf + log(nobs) (df_model + k_constant + k_extra)``."""
        return -2 * self.llf + np.log(self.nobs) * (self.df_model + self.k_constant + self.k_extra)

    @property
    def prsquared(self) -> float:
        """McFadden's pseudo R-squared ``1 - llf / llnull``."""
        return float(1 - self.llf / self.llnull)

    @property
    def llr(self) -> float:
        """Likelihood-ratio statistic ``2 (llf - llnull)``."""
        return float(2 * (self.llf - self.llnull))

    @property
    def llr_pvalue(self) -> float:
        """Its chi2 p-value on ``df_model`` degrees of freedom."""
        return float(chi2_sf(self.llr, self.df_model))

    @property
    def mle_retvals(self) -> dict[str, Any]:
        """``{"converged": ..., "iterations": ...}`` like statsmodels'."""
        return {"converged": self.converged, "iterations": self.iterations}

    # -- summary and prediction ---------------------------------------------------------
    def summary(self, *, alpha: float = 0.05) -> Any:
        """A text table like statsmodels' ``NegativeBinomialResults.summary()``
        (``print`` it; ``.as_frame()`` for the coefficient table)."""
        from shardfit.results.summary import (
            _HALF,
            Summary,
            _clip,
            _coefficients,
            _covariance_note,
            _general,
            _integer,
            _response,
        )

        if not 0 < alpha < 1:
            raise ValueError(f"The 'alpha' parameter of summary must be in (0, 1). Got {alpha!r}.")
        dropped = sum(self.rows_dropped.values())
        left = [
            ("Dep. Variable:", _response(self)),
            ("Model:", "NegativeBinomial"),
            ("Method:", "MLE (Newton)"),
            ("Data:", _clip(self.data_name or "-", _HALF - 18)),
            ("converged:", str(self.converged)),
            ("No. Iterations:", f"{self.iterations}"),
            ("Rows read:", f"{self.rows_read:,}"),
            ("Rows dropped:", f"{dropped:,}"),
            ("Covariance Type:", self.cov_type),
        ]
        if self.n_groups is not None:
            left.append(("No. Clusters:", f"{self.n_groups:,}"))
        right = [
            ("No. Observations:", f"{self.nobs:,}"),
            ("Df Residuals:", _integer(self.df_resid)),
            ("Df Model:", _integer(self.df_model)),
            ("Pseudo R-squ.:", _general(self.prsquared, 4)),
            ("Log-Likelihood:", _general(self.llf)),
            ("LL-Null:", _general(self.llnull)),
            ("LLR p-value:", _general(self.llr_pvalue, 4)),
            ("AIC:", _general(self.aic)),
            ("BIC:", _general(self.bic)),
        ]
        notes = [
            "Standard errors from the inverse of minus the Hessian (observed information)."
            if self.cov_type == "nonrobust"
            else _covariance_note(self)
            + " Sandwich of the scores in (beta, alpha) with the observed information."
        ]
        if not self.converged and not self.alpha_at_boundary:
            notes.append(
                f"Newton's method did NOT converge in {self.iterations} iterations: the "
                "estimates are not the maximum-likelihood ones."
            )
        if self.alpha_at_boundary:
            notes.append(
                "alpha went to 0 (no overdispersion): the coefficients are the Poisson "
                "model's and the inference for alpha is not valid."
            )
        if dropped:
            notes.append(f"{dropped:,} of the {self.rows_read:,} rows read were not used.")
        return Summary(
            title="NegativeBinomial Regression Results",
            left=tuple(left),
            right=tuple(right),
            coefficients=_coefficients(self, alpha),
            notes=tuple(notes),
        )

    def predict(
        self,
        data: Any,
        *,
        which: str = "mean",
        backend: Any = None,
        workers: int | None = None,
        offset: Any = None,
        exposure: Any = None,
        **options: Any,
    ) -> Any:
        """Predict the mean ``exp(x'beta + offset)`` (``which="mean"``) or the linear
        predictor (``"linear"``) for new data of any size.

        The GLM prediction machinery does the work
        (:func:`shardfit.results.glm_predict.predict_glm`: offset and exposure
        columns read from ``data`` or given as arrays, ``out=`` for Parquet output,
        ``interval="confidence"`` from the coefficients' covariance block); the
        coefficients are ``beta``, ``alpha`` plays no part in the mean.
        """
        from shardfit.results.glm_predict import predict_glm

        return predict_glm(
            self._beta_view(),
            data,
            which=which,  # type: ignore[arg-type]
            backend=backend,
            workers=workers,
            offset=offset,
            exposure=exposure,
            **options,
        )

    def get_prediction(
        self,
        data: Any,
        *,
        which: str = "mean",
        alpha: float = 0.05,
        unseen: str = "raise",
        backend: Any = None,
        offset: Any = None,
        exposure: Any = None,
    ) -> Any:
        """Predictions with standard errors and confidence intervals, as statsmodels'
        ``NegativeBinomialResults.get_prediction(exog, exposure=, offset=)``.

        Parameters
        ----------
        data : pandas.DataFrame, array or source
            The rows to predict (in memory: the result holds one value per row); a
            formula fit reads its offset and exposure columns from it.
        which : {"mean", "linear"}
            The mean ``exp(x'beta + offset)`` or the linear predictor.
        alpha : float
            The default level ``1 - alpha`` of ``summary_frame``'s intervals.
        unseen : {"raise", "zero"}
            A categorical level the fit did not see: raise, or encode it as all zeros.
        backend : optional
            Where the prediction pass runs.
        offset, exposure : array_like, optional
            For a fit on arrays (or data lacking the fit's columns): one value per row.

        Returns
        -------
        GLMPredictionResults
            ``summary_frame(alpha=)``: the linear predictor's ``se = sqrt(x'Cx)``, ``C``
            the coefficients' block of :meth:`cov_params` (robust when the fit's
            ``cov_type`` is), and ``eta -/+ q se``; on the mean scale the delta method's
            ``se = mu sqrt(x'Cx)`` and the linear interval's endpoints through ``exp``
            (statsmodels' ``get_prediction_monotonic``). The columns are statsmodels':
            ``predicted``, ``se``, ``ci_lower``, ``ci_upper`` whatever ``which``.
        """
        from shardfit.results.glm_predict import get_prediction_glm

        return get_prediction_glm(
            self._beta_view(),
            data,
            which=which,  # type: ignore[arg-type]
            alpha=alpha,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            offset=offset,
            exposure=exposure,
        )

    def _beta_view(self) -> _BetaView:
        from shardfit.models.families import NegativeBinomial

        k = self.rank
        return _BetaView(
            spec=self.spec,
            params_array=np.asarray(self.params_array[:k]),
            cov_array=np.asarray(self.cov_array[:k, :k]),
            family=NegativeBinomial(alpha=self.alpha),
            use_t=self.use_t,
            df_resid=self.df_resid,
        )

    def save(self, path: Any) -> Any:
        """Save as one JSON document (no pickle); returns the path written."""
        from shardfit.results.io import save_results

        return save_results(self, path)

    @classmethod
    def load(cls, path: Any) -> NegativeBinomialResults:
        """Load results written by :meth:`save`."""
        from shardfit.results.io import load_results

        loaded = load_results(path)
        if not isinstance(loaded, cls):
            raise TypeError(f"{path} holds {type(loaded).__name__}, not {cls.__name__}")
        return loaded

    def __repr__(self) -> str:
        params = pd.Series(self.params_array, index=list(self.names))
        return f"<NegativeBinomialResults nobs={self.nobs} llf={self.llf:.6g}>\n{params}"


@dataclass(frozen=True)
class _BetaView:
    """What the GLM prediction code reads of a results object: the coefficients
    (without ``alpha``), their covariance block and the log link."""

    spec: Any
    params_array: np.ndarray
    cov_array: np.ndarray
    family: Any
    scale: float = 1.0
    use_t: bool = False
    df_inference: float = np.inf
    df_resid: float = np.inf  # the predictions' t degrees of freedom (unused: use_t off)
    cov_factor: Any = None
