"""The coefficient table every results class shares: estimates, their covariance,
standard errors, test statistics, p-values, confidence intervals and Wald tests.

A results class that inherits :class:`CoefficientTable` provides ``names``,
``params_array``, ``cov_array``, ``use_t``, ``df_resid`` and ``df_resid_inference``
(``None`` to use ``df_resid``); the definitions follow statsmodels'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CoefficientTable"]


class CoefficientTable:
    """statsmodels' coefficient-level results, from ``params_array`` and ``cov_array``."""

    names: tuple[str, ...]
    params_array: np.ndarray
    cov_array: np.ndarray
    use_t: bool
    df_resid_inference: float | None

    @property
    def df_resid(self) -> float:  # pragma: no cover - every results class defines it
        raise NotImplementedError

    @property
    def params(self) -> pd.Series:
        """Estimated coefficients (NaN for aliased columns)."""
        return pd.Series(self.params_array, index=list(self.names), name="params")

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the estimates (of the chosen ``cov_type``)."""
        return pd.DataFrame(self.cov_array, index=list(self.names), columns=list(self.names))

    @property
    def bse(self) -> pd.Series:
        """Standard errors."""
        return pd.Series(np.sqrt(np.diag(self.cov_array)), index=list(self.names), name="bse")

    @property
    def tvalues(self) -> pd.Series:
        """``params / bse`` (t statistics, or z where inference is normal)."""
        return pd.Series(
            self.params_array / np.sqrt(np.diag(self.cov_array)), index=list(self.names)
        )

    @property
    def df_inference(self) -> float:
        """Degrees of freedom of the t distribution (and F tests' denominators)."""
        if self.df_resid_inference is not None:
            return float(self.df_resid_inference)
        return float(self.df_resid)

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the t (or z) statistics."""
        t = np.abs(self.tvalues.to_numpy())
        if self.use_t:
            values = 2 * stats.t.sf(t, self.df_inference)
        else:
            values = 2 * stats.norm.sf(t)
        return pd.Series(values, index=list(self.names))

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals at level ``1 - alpha`` (columns 0 and 1, as statsmodels)."""
        if not 0 < alpha < 1:
            raise ValueError(f"The 'alpha' parameter must be in (0, 1). Got {alpha!r}.")
        if self.use_t:
            q = stats.t.ppf(1 - alpha / 2, self.df_inference)
        else:
            q = stats.norm.ppf(1 - alpha / 2)
        bse = self.bse.to_numpy()
        return pd.DataFrame(
            {0: self.params_array - q * bse, 1: self.params_array + q * bse},
            index=list(self.names),
        )

    def t_test(self, r_matrix: Any, q: Any = None) -> Any:
        """Test linear restrictions one by one (strings like ``"x1 = x2"`` or a matrix)."""
        from shardfit.results.hypothesis import t_test

        return t_test(self, r_matrix, q)

    def f_test(self, r_matrix: Any, q: Any = None) -> Any:
        """Joint Wald F test of linear restrictions."""
        from shardfit.results.hypothesis import f_test

        return f_test(self, r_matrix, q)

    def wald_test(self, r_matrix: Any, q: Any = None, *, use_f: bool | None = None) -> Any:
        """Joint Wald test of linear restrictions: F where ``use_f`` (default
        ``use_t``), else chi2, as statsmodels' ``wald_test(..., scalar=True)``."""
        from shardfit.results.hypothesis import wald_test

        return wald_test(self, r_matrix, q, use_f=use_f)
