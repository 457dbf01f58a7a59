"""Results of a generalized linear model, with statsmodels' ``GLMResults`` names.

Computed from the merged statistics of the fit (no data). Definitions follow
statsmodels (``var_weights`` for the weights):

- ``df_model = rank - 1`` (statsmodels subtracts 1 whether or not there is a
  constant), ``df_resid = wnobs - rank``, where ``wnobs`` is the sum of the
  ``freq_weights`` (each row counts that many times), or ``nobs`` without them;
- ``scale`` is 1 for the binomial, Poisson and negative binomial families, else
  Pearson's chi2 over ``df_resid``;
- ``llf`` is the family's log-likelihood at the estimated scale (Gaussian with the
  identity link: at ``deviance / nobs``, the concentrated likelihood); a binomial
  proportion with trial counts as weights has the binomial log-likelihood of its
  counts, as in R and statsmodels' two-column form (not statsmodels' ``var_weights``
  number, which adds ``n log C(1, y)`` where the counts' ``log C(n, n y)`` belongs);
- ``llnull`` is the constant-only model's (with the offset) at the fit's scale, the
  Gaussian's too, as statsmodels; ``pseudo_rsquared("cs" | "mcf")`` as there;
- ``aic = -2 llf + 2 (df_model + 1)``; ``bic = bic_llf = -2 llf + (df_model + 1)
  log(nobs)`` (statsmodels' ``bic_llf``, its ``bic`` since 0.14);
  ``bic_deviance = deviance - df_resid log(nobs)`` is statsmodels' older ``bic``;
- inference uses the normal distribution (``z`` statistics), as statsmodels' GLM,
  or Student's t with ``fit(use_t=True)``;
- ``scale`` follows ``fit(scale=...)`` (``"X2"``, ``"dev"`` or a number) when given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardfit.results.estimates import CoefficientTable

__all__ = ["GLMResults"]


@dataclass(frozen=True, eq=False)
class GLMResults(CoefficientTable):
    """Estimates of a GLM fit, labelled by design column.

    Build it with :func:`shardfit.glm`, :func:`shardfit.logit`,
    :func:`shardfit.poisson` or :func:`shardfit.GLM`.
    """

    names: tuple[str, ...]
    params_array: np.ndarray
    normalized_cov: np.ndarray
    cov_array: np.ndarray
    nobs: int
    rank: int
    family_name: str
    link_name: str
    scale: float
    deviance: float
    null_deviance: float
    pearson_chi2: float
    llf: float
    converged: bool
    iterations: int
    deviance_history: tuple[float, ...] = ()
    family_params: dict[str, float] = field(default_factory=dict)
    cov_type: str = "nonrobust"
    use_t: bool = False
    df_resid_inference: float | None = None
    const_idx: int | None = None
    data_name: str = ""
    formula: str | None = None
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0
    n_groups: int | None = None
    weighted: bool = False
    method_used: str = "gram"
    separated_terms: tuple[str, ...] = ()
    boundary_rows: int = 0
    spec: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The constant-only model's log-likelihood (with the offset), statsmodels' llnull.
    llnull: float = float("nan")
    #: ``(p, m)`` factor ``L`` of ``cov_array`` (``L L'``; NaN rows for aliased columns),
    #: or ``None``. Prediction standard errors are ``|x'L|``, which keep their accuracy
    #: on an ill-conditioned design where ``sqrt(x'Cx)`` loses ``cond**2 * eps`` to
    #: cancellation; without it (a plain robust sandwich, older files) they are that.
    cov_factor: np.ndarray | None = None
    #: The sum of the frequency weights of a fit with ``freq_weights`` (statsmodels'
    #: ``wnobs``), or ``None`` (none given; older files).
    sum_freq_weights: float | None = None

    # -- the model --------------------------------------------------------------------
    @property
    def family(self) -> Any:
        """The fitted :class:`~shardfit.models.families.Family` (with its link)."""
        from shardfit.models.families import get_family

        return get_family(self.family_name, self.link_name, **self.family_params)

    @property
    def fit_history(self) -> dict[str, Any]:
        """``{"deviance": [...], "iteration": n}`` like statsmodels' (the deviance
        history starts with ``inf``; entries are divided by the previous scale)."""
        return {"deviance": list(self.deviance_history), "iteration": self.iterations}

    # -- fit measures ------------------------------------------------------------------
    @property
    def wnobs(self) -> float:
        """statsmodels' ``model.wnobs``: the sum of the frequency weights, or ``nobs``
        (the rows) without them."""
        return float(self.nobs if self.sum_freq_weights is None else self.sum_freq_weights)

    @property
    def df_model(self) -> float:
        """``rank - 1``."""
        return float(self.rank - 1)

    @property
    def df_resid(self) -> float:
        """``wnobs - rank`` (``nobs - rank`` without frequency weights)."""
        return float(self.wnobs - self.rank)

    @property
    def aic(self) -> float:
        """``-2 llf + 2 (df_model + 1)``."""
        return -2 * self.llf + 2 * (self.df_model + 1)

    @property
    def bic_llf(self) -> float:
        """``-2 llf + (df_model + 1) log(df_model + df_resid + 1)``, statsmodels': the
        log of ``wnobs`` (the rows, or the sum of the frequency weights)."""
        return -2 * self.llf + (self.df_model + 1) * np.log(self.df_model + self.df_resid + 1)

    @property
    def bic(self) -> float:
        """Schwarz's criterion from the log-likelihood (:attr:`bic_llf`)."""
        return self.bic_llf

    @property
    def bic_deviance(self) -> float:
        """``deviance - df_resid log(wnobs)`` (statsmodels' ``bic`` before 0.14)."""
        return self.deviance - (self.wnobs - self.df_model - 1) * np.log(self.wnobs)

    def pseudo_rsquared(self, kind: str = "cs") -> float:
        """McFadden's (``"mcf"``: ``1 - llf / llnull``) or Cox and Snell's (``"cs"``:
        ``1 - exp(2 (llnull - llf) / nobs)``) pseudo R-squared, as statsmodels'."""
        key = kind.lower()
        if key.startswith("mcf"):
            return float(1 - self.llf / self.llnull)
        if key.startswith("cox") or key in ("cs", "lr"):
            return float(1 - np.exp((self.llnull - self.llf) * (2 / self.nobs)))
        raise ValueError(f"The 'kind' parameter must be 'cs' or 'mcf'. Got {kind!r}.")

    # -- summary, prediction, save and load -------------------------------------------
    def summary(self, *, alpha: float = 0.05) -> Any:
        """A text table like statsmodels' (``print`` it; ``.as_frame()`` for the table)."""
        from shardfit.results.glm_summary import glm_summary

        return glm_summary(self, alpha=alpha)

    def predict(
        self,
        data: Any,
        *,
        which: str = "mean",
        out: Any = None,
        interval: str | None = None,
        alpha: float = 0.05,
        unseen: str = "raise",
        backend: Any = None,
        workers: int | None = None,
        overwrite: bool = False,
        progress: bool = False,
        offset: Any = None,
        exposure: Any = None,
    ) -> Any:
        """Predict the mean (``which="mean"``) or the linear predictor (``"linear"``),
        with ``interval="confidence"`` their standard errors and intervals too.

        The offset (and exposure) columns of the fit are read from ``data`` and added
        to the linear predictor; ``offset=``/``exposure=`` arrays stand in for them where
        a DataFrame lacks them, and a fit on arrays takes them (0 and 1 if not given).
        See :func:`shardfit.results.glm_predict.predict_glm`.
        """
        from shardfit.results.glm_predict import predict_glm

        return predict_glm(
            self,
            data,
            which=which,  # type: ignore[arg-type]
            out=out,
            interval=interval,  # type: ignore[arg-type]
            alpha=alpha,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
            offset=offset,
            exposure=exposure,
        )

    def get_prediction(
        self,
        data: Any,
        *,
        which: str | None = None,
        alpha: float = 0.05,
        unseen: str = "raise",
        backend: Any = None,
        offset: Any = None,
        exposure: Any = None,
    ) -> Any:
        """Predictions with standard errors; ``.summary_frame()`` as statsmodels'
        (``which`` as there: the mean by default, whose frame names its columns
        ``mean...``; ``"mean"`` or ``"linear"`` given, ``predicted``, ``se``, ``ci_*``;
        see :func:`shardfit.results.glm_predict.get_prediction_glm`)."""
        from shardfit.results.glm_predict import get_prediction_glm

        return get_prediction_glm(
            self,
            data,
            which=which,  # type: ignore[arg-type]
            alpha=alpha,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            offset=offset,
            exposure=exposure,
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
        offset: Any = None,
        exposure: Any = None,
    ) -> Any:
        """Residuals of the fit on ``data`` (the training data, or any other), out of core.

        statsmodels keeps its residuals as attributes; shardfit, fitting data of any
        size, computes them from ``data`` on request, partition by partition, with
        ``mu`` the fitted mean (offset and ``log(exposure)`` included), ``w`` the
        weights (statsmodels' ``var_weights``), ``V`` the family's variance function
        and ``g`` the link:

        ====================  ===========================  =============================
        ``kind``              statsmodels                  value
        ====================  ===========================  =============================
        "response"            ``resid_response``           ``y - mu``
        "pearson"             ``resid_pearson``            ``(y - mu) sqrt(w / V(mu))``
        "deviance"            ``resid_deviance``           ``sign(y - mu) sqrt(w d(y, mu))``
        "working"             ``resid_working``            ``(y - mu) g'(mu)``
        "anscombe"            ``resid_anscombe``           the family's, over
                              (``resid_anscombe_scaled``)  ``sqrt(scale)``
        "anscombe_unscaled"   ``resid_anscombe_unscaled``  the family's
        ====================  ===========================  =============================

        ``d`` is the family's unit deviance. statsmodels' names are accepted as
        ``kind`` too. Its ``fittedvalues`` (``mu``) are :meth:`predict` on the same
        data.

        Parameters
        ----------
        data : DataFrame, pyarrow.Table, Source, path, glob or ndarray
            Rows with the columns the fit read: predictors, the response, and the
            weights, offset and exposure columns when the fit had them, under the
            fit's names (a formula's left-hand side is evaluated). For a fit on arrays
            (:func:`shardfit.GLM`), the ``X`` array or DataFrame, with ``endog=`` and
            the other arrays the fit had.
        kind : {"response", "pearson", "deviance", "working", "anscombe", \
"anscombe_unscaled"}
            Which residuals (see the table).
        out : str or path, optional
            Write Parquet part files (columns ``row`` and the statsmodels name, e.g.
            ``resid_deviance``) and a manifest instead of returning the values, as
            :meth:`predict` does (:mod:`shardfit.results.prediction_output`).
        unseen, backend, workers, overwrite, progress
            As for :meth:`predict`.
        endog, weights, offset, exposure : array_like, optional
            For a fit on arrays: the response and the weights, offset and exposure it
            was fitted with, one value per row of ``data``.

        Returns
        -------
        pandas.Series or PredictionOutput
            One residual per row of ``data`` in source order, indexed by a DataFrame's
            index (else 0-based positions named ``row``) and named as statsmodels'
            attribute; NaN where a row has none (a missing predictor, response,
            weight, offset or exposure: a :class:`UserWarning` says how many).
            ``.dropna()`` leaves the rows statsmodels' ``missing="drop"`` keeps. With
            ``out``: what was written.

        Raises
        ------
        DesignError
            ``data`` lacks a column the fit read (the response, the exposure...),
            naming it.

        Examples
        --------
        >>> res = shardfit.poisson("n ~ x", frame, exposure="t").fit()  # doctest: +SKIP
        >>> res.resid(frame, kind="deviance")  # sm_res.resid_deviance  # doctest: +SKIP
        """
        from shardfit.results.predict import row_values

        return row_values(
            self,
            data,
            "resid",
            kind,
            self.family,
            out=out,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
            arrays={"endog": endog, "weights": weights, "offset": offset, "exposure": exposure},
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
        offset: Any = None,
        exposure: Any = None,
    ) -> Any:
        """Per-row influence measures on ``data``, as statsmodels' ``get_influence()``.

        statsmodels computes them from its data in memory (``res.get_influence()``,
        :class:`~statsmodels.stats.outliers_influence.GLMInfluence`); shardfit
        computes them from ``data`` on request, partition by partition, in two passes
        (``X'WX`` at the estimates, then the rows), with ``x`` a row's design (kept
        columns), ``H = (X'WX)^-1`` over the rows of ``data``, ``W`` statsmodels'
        observed-information weights ``w_i = v_i / (g'(mu)^2 V(mu)) (1 + (y - mu)
        (V g'' + V' g') / (g' V))`` (``v`` the ``var_weights``; the bracket is 1 for
        a canonical link, leaving the IRLS weight), ``r`` the Pearson residual and
        ``k`` the number of design columns (aliased ones included):

        ===============  ==========================  ==================================
        ``kind``         statsmodels                 value
        ===============  ==========================  ==================================
        "hat"            ``hat_matrix_diag``         ``h = w x'Hx``
        "studentized"    ``resid_studentized``       ``r / sqrt(scale (1 - h))``
        "cooks"          ``cooks_distance[0]``       ``c = studentized**2 h / (1 - h) /
                                                     k``
        "cooks_pvalue"   ``cooks_distance[1]``       ``F(c; k, df_resid)``, ``F`` the F
                                                     distribution's survival function
        ===============  ==========================  ==================================

        ``data`` should be the rows the model was fitted on: leverages are relative
        to the Gram of the rows given. statsmodels' attribute names are accepted as
        ``kind`` too. statsmodels' ``GLMInfluence`` has no externally studentized
        residuals (no leave-one-out variance) and no DFFITS, so neither has this: the
        linear models' kinds ``"studentized_external"``, ``"dffits"`` and
        ``"dffits_internal"`` raise a ValueError.

        Parameters
        ----------
        data : DataFrame, pyarrow.Table, Source, path, glob or ndarray
            The rows the model was fitted on, with the columns the fit read (as for
            :meth:`resid`).
        kind : {"hat", "studentized", "cooks", "cooks_pvalue"}
            Which measure (see the table).
        out : str or path, optional
            Write Parquet part files (columns ``row`` and the statsmodels name, e.g.
            ``cooks_distance``; ``cooks_pvalue`` for Cook's p-values) and a manifest
            instead of returning the values.
        unseen, backend, workers, overwrite, progress
            As for :meth:`predict`.
        endog, weights, offset, exposure : array_like, optional
            For a fit on arrays: the response and the weights, offset and exposure it
            was fitted with, one value per row of ``data``.

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
            ``kind`` is none of the above (a linear model's kind included), listing
            them.

        Examples
        --------
        >>> res = shardfit.poisson("n ~ x", frame, exposure="t").fit()  # doctest: +SKIP
        >>> res.influence(frame, kind="cooks")  # doctest: +SKIP
        """
        from shardfit.results.predict import row_values

        if self.sum_freq_weights is not None:
            # Its X'WX would be summed over the rows of ``data`` without their
            # frequencies: leverages and Cook's distances of another model.
            raise NotImplementedError(
                "influence measures of a fit with freq_weights are not supported (they "
                "would ignore the frequencies); refit on the expanded rows"
            )

        return row_values(
            self,
            data,
            "influence",
            kind,
            self.family,
            out=out,
            unseen=unseen,  # type: ignore[arg-type]
            backend=backend,
            workers=workers,
            overwrite=overwrite,
            progress=progress,
            arrays={"endog": endog, "weights": weights, "offset": offset, "exposure": exposure},
        )

    def get_margeff(
        self,
        at: str = "overall",
        method: str = "dydx",
        atexog: dict[Any, float] | None = None,
        dummy: bool = False,
        count: bool = False,
        *,
        data: Any = None,
        with_offset: bool = False,
        out: Any = None,
        overwrite: bool = False,
        backend: Any = None,
        workers: int | None = None,
        unseen: str = "raise",
        progress: bool = False,
    ) -> Any:
        """Marginal effects of a logit, probit or Poisson fit with delta-method standard
        errors, as statsmodels' ``get_margeff`` (``at="overall"``, ``"mean"``,
        ``"median"``, ``"zero"`` or ``"all"``; methods ``dydx``, ``eyex``, ``dyex``,
        ``eydx``; ``dummy``/``count`` discrete changes), computed from ``data=``, the
        rows the model was fitted on, partition by partition. ``at="all"`` gives each
        row's effects (no standard errors, as statsmodels), written to ``out=`` (a
        directory of Parquet part files) unless ``data`` is in memory. See
        :func:`shardfit.results.margeff.get_margeff`.

        Returns
        -------
        MarginalEffects or PredictionOutput
            ``margeff``, ``margeff_se``, ``summary_frame()``... as statsmodels'
            ``DiscreteMargins``; with ``out``, what was written.
        """
        from shardfit.results.margeff import get_margeff

        return get_margeff(
            self,
            at,
            method,
            atexog,
            dummy,
            count,
            data=data,
            with_offset=with_offset,
            out=out,
            overwrite=overwrite,
            backend=backend,
            workers=workers,
            unseen=unseen,  # type: ignore[arg-type]
            progress=progress,
        )

    def save(self, path: Any) -> Any:
        """Save as one JSON document (no pickle); returns the path written."""
        from shardfit.results.io import save_results

        return save_results(self, path)

    @classmethod
    def load(cls, path: Any) -> GLMResults:
        """Load results written by :meth:`save`."""
        from shardfit.results.io import load_results

        loaded = load_results(path)
        if not isinstance(loaded, cls):
            raise TypeError(f"{path} holds {type(loaded).__name__}, not {cls.__name__}")
        return loaded
