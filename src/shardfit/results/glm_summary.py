"""A text summary of a GLM fit, laid out like statsmodels' ``GLMResults.summary()``.

Reuses the linear summary's layout (:class:`~shardfit.results.summary.Summary`): the
model and data with what happened to the rows, the coefficient table (z statistics),
and notes (covariance, convergence, separation, aliased columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np

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

__all__ = ["glm_summary"]


def glm_summary(results: Any, *, alpha: float = 0.05) -> Summary:
    """Build the summary of a GLM fit.

    Parameters
    ----------
    results : GLMResults
    alpha : float
        The coefficients' intervals are at level ``1 - alpha``.

    Returns
    -------
    Summary
    """
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter of summary must be in (0, 1). Got {alpha!r}.")
    dropped = sum(results.rows_dropped.values())
    family = results.family
    left = [
        ("Dep. Variable:", _response(results)),
        ("Model:", "GLM"),
        ("Model Family:", type(family).__name__),
        ("Link Function:", type(family.link).__name__),
        ("Method:", f"IRLS ({results.method_used})"),
        ("Data:", _clip(results.data_name or "-", _HALF - 18)),
        ("No. Iterations:", f"{results.iterations}"),
        ("Rows read:", f"{results.rows_read:,}"),
        ("Rows dropped:", f"{dropped:,}"),
        ("Rows skipped:", f"{results.rows_skipped:,}"),  # as the linear summary's header
        ("Covariance Type:", results.cov_type),
    ]
    if results.n_groups is not None:
        left.append(("No. Clusters:", f"{results.n_groups:,}"))
    right = [
        ("No. Observations:", f"{results.nobs:,}"),
        ("Df Residuals:", _integer(results.df_resid)),
        ("Df Model:", _integer(results.df_model)),
        ("Scale:", _general(results.scale, 5)),
        ("Log-Likelihood:", _general(results.llf)),
        ("Deviance:", _general(results.deviance)),
        ("Null deviance:", _general(results.null_deviance)),
        ("Pearson chi2:", _general(results.pearson_chi2, 3)),
        ("Pseudo R-squ. (CS):", _general(results.pseudo_rsquared("cs"), 4)),
        ("AIC:", _general(results.aic)),
        ("BIC (llf):", _general(results.bic)),
    ]
    if results.sum_freq_weights is not None:
        # Df Residuals count the frequencies, No. Observations the rows (statsmodels').
        right.insert(1, ("Sum freq. weights:", _integer(results.sum_freq_weights)))
    return Summary(
        title="Generalized Linear Model Regression Results",
        left=tuple(left),
        right=tuple(right),
        coefficients=_coefficients(results, alpha),
        notes=tuple(_notes(results, dropped)),
    )


def _notes(results: Any, dropped: int) -> list[str]:
    notes = [_covariance_note(results)]
    if results.cov_type == "nonrobust":
        notes[0] = "Standard errors from the inverse Fisher information times the scale."
    if not results.converged:
        notes.append(
            f"IRLS did NOT converge in {results.iterations} iterations: the estimates are "
            "not the maximum-likelihood ones."
        )
    if results.separated_terms:
        fitted = (
            "probabilities are numerically 0 or 1"
            if results.family_name == "binomial"
            else "means are numerically 0"
        )
        notes.append(
            f"Separation: {results.boundary_rows:,} fitted {fitted} and the coefficients "
            f"of {', '.join(results.separated_terms)} diverge; their estimates and "
            "standard errors are meaningless."
        )
    if dropped:
        reasons = ", ".join(
            f"{reason}: {n:,}" for reason, n in sorted(results.rows_dropped.items()) if n
        )
        notes.append(
            f"{dropped:,} of the {results.rows_read:,} rows read were not used ({reasons})."
        )
    if results.rows_skipped:
        notes.append(f"{results.rows_skipped:,} malformed rows were skipped by the reader.")
    aliased = [name for name, value in zip(results.names, results.params_array) if np.isnan(value)]
    if aliased:
        notes.append(
            f"{len(aliased)} column(s) collinear with earlier ones were dropped and are "
            f"reported as NA: {', '.join(aliased)}."
        )
    return notes
