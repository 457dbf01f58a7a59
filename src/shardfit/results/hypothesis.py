"""Wald tests of linear restrictions ``R beta = q`` (statsmodels' ``t_test``/``f_test``).

Restrictions are strings such as ``"x1 = x2, x3 = 0"`` (parsed by formulaic against the
column names), a matrix ``R`` (with ``q`` zero or given), or an ``(R, q)`` pair.
``t_test`` tests each row alone with the results' distribution (t with the inference
degrees of freedom, or normal for robust covariances); ``f_test`` always gives an F
statistic with ``J`` and the inference degrees of freedom, as statsmodels does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["FTestResult", "TTestResult", "f_test", "restriction", "t_test"]


def restriction(
    names: tuple[str, ...], r_matrix: Any, q: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(R, q)`` from a string, a matrix, or an ``(R, q)`` pair."""
    from formulaic.utils.constraints import LinearConstraints

    if isinstance(r_matrix, str | list | dict):
        constraints = LinearConstraints.from_spec(r_matrix, variable_names=list(names))
        matrix = np.asarray(constraints.constraint_matrix, dtype=np.float64)
        values = np.asarray(constraints.constraint_values, dtype=np.float64)
        return matrix, values
    if isinstance(r_matrix, tuple) and len(r_matrix) == 2 and q is None:
        r_matrix, q = r_matrix
    matrix = np.atleast_2d(np.asarray(r_matrix, dtype=np.float64))
    if matrix.shape[1] != len(names):
        raise ValueError(
            f"restriction matrix has {matrix.shape[1]} columns; the model has {len(names)}"
        )
    values = np.zeros(matrix.shape[0]) if q is None else np.asarray(q, dtype=np.float64).ravel()
    return matrix, values


@dataclass(frozen=True)
class TTestResult:
    """One test per restriction row: effect ``R beta``, its standard error, t and p.

    The arrays have statsmodels' ``ContrastResults`` shapes: ``(J,)`` for ``J``
    restrictions, except that a single restriction gives ``sd`` and ``tvalue`` of
    shape ``(1, 1)`` and a 0-d ``pvalue``, as there (code written against statsmodels
    indexes them that way). ``distribution`` is ``"t"`` or ``"norm"``.
    """

    effect: np.ndarray
    sd: np.ndarray
    tvalue: np.ndarray
    pvalue: np.ndarray
    df_denom: float | None
    q: np.ndarray
    distribution: str

    @property
    def statistic(self) -> np.ndarray:
        """The t (or z) statistics (statsmodels' name for ``tvalue``)."""
        return self.tvalue

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(J, 2)`` intervals for the effects."""
        if self.distribution == "t":
            crit = stats.t.ppf(1 - alpha / 2, self.df_denom)
        else:
            crit = stats.norm.ppf(1 - alpha / 2)
        sd = np.ravel(self.sd)
        return np.column_stack([self.effect - crit * sd, self.effect + crit * sd])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """The tests as a table."""
        ci = self.conf_int(alpha)
        return pd.DataFrame(
            {
                "coef": self.effect,
                "std err": np.ravel(self.sd),
                "t" if self.distribution == "t" else "z": np.ravel(self.tvalue),
                "P>|t|" if self.distribution == "t" else "P>|z|": np.ravel(self.pvalue),
                "Conf. Int. Low": ci[:, 0],
                "Conf. Int. Upp.": ci[:, 1],
            },
            index=[f"c{i}" for i in range(len(self.effect))],
        )


@dataclass(frozen=True)
class FTestResult:
    """A joint Wald test: F statistic, its p-value and degrees of freedom."""

    fvalue: float
    pvalue: float
    df_num: float
    df_denom: float

    def __repr__(self) -> str:
        return (
            f"<F test: F={self.fvalue:.6g}, p={self.pvalue:.6g}, "
            f"df_denom={self.df_denom:g}, df_num={self.df_num:g}>"
        )


def _kept(results: Any, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    params = np.asarray(results.params_array)
    cov = np.asarray(results.cov_array)
    finite = np.isfinite(params)
    if np.any(matrix[:, ~finite] != 0):
        raise ValueError("a restriction involves an aliased (dropped) coefficient")
    return matrix[:, finite], params[finite], cov[np.ix_(finite, finite)]


def t_test(results: Any, r_matrix: Any, q: Any = None) -> TTestResult:
    """Each restriction alone, with the results' distribution."""
    matrix, values = restriction(results.names, r_matrix, q)
    matrix, params, cov = _kept(results, matrix)
    effect = matrix @ params
    sd = np.sqrt(np.einsum("ij,jk,ik->i", matrix, cov, matrix))
    tvalue = (effect - values) / sd
    df = results.df_inference if results.use_t else None
    if df is not None:
        pvalue = 2 * stats.t.sf(np.abs(tvalue), df)
    else:
        pvalue = 2 * stats.norm.sf(np.abs(tvalue))
    if effect.size == 1:  # statsmodels' shapes for one restriction (see TTestResult)
        sd, tvalue, pvalue = sd.reshape(1, 1), tvalue.reshape(1, 1), pvalue.reshape(())
    return TTestResult(effect, sd, tvalue, pvalue, df, values, "t" if df is not None else "norm")


def f_test(results: Any, r_matrix: Any, q: Any = None) -> FTestResult:
    """The restrictions jointly: ``F = (Rb-q)' (R C R')^{-1} (Rb-q) / J``."""
    matrix, values = restriction(results.names, r_matrix, q)
    matrix, params, cov = _kept(results, matrix)
    diff = matrix @ params - values
    middle = matrix @ cov @ matrix.T
    statistic = float(diff @ np.linalg.pinv(middle) @ diff) / matrix.shape[0]
    df_num = float(matrix.shape[0])  # a float, as in statsmodels
    df_denom = results.df_inference
    return FTestResult(
        fvalue=statistic,
        pvalue=float(stats.f.sf(statistic, df_num, df_denom)),
        df_num=df_num,
        df_denom=df_denom,
    )
