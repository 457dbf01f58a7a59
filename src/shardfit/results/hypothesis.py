"""Wald tests of linear restrictions ``R beta = q`` (statsmodels' ``t_test``/``f_test``).

Restrictions are strings such as ``"x1 = x2, x3 = 0"`` (parsed by formulaic against the
column names), a matrix ``R`` (with ``q`` zero or given), or an ``(R, q)`` pair.
``t_test`` tests each row alone with the results' distribution (t with the inference
degrees of freedom, or normal for robust covariances); ``f_test`` always gives an F
statistic with ``J`` and the inference degrees of freedom, as statsmodels does;
``wald_test`` gives that F where the results use t, else the chi2 statistic with ``J``
degrees of freedom (statsmodels' ``wald_test``). ``J`` is the rank of ``R C R'``, which is
below the number of restrictions when the covariance is singular there (a cluster-robust
covariance from fewer clusters than coefficients), as in statsmodels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "FTestResult",
    "TTestResult",
    "WaldTestResult",
    "f_test",
    "restriction",
    "t_test",
    "wald_test",
]


def restriction(
    names: tuple[str, ...], r_matrix: Any, q: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(R, q)`` from a string, a matrix, or an ``(R, q)`` pair."""
    from formulaic.utils.constraints import LinearConstraints

    if isinstance(r_matrix, str | list | dict):
        try:
            constraints = LinearConstraints.from_spec(r_matrix, variable_names=list(names))
        except KeyError as error:  # formulaic's bare KeyError('x') for an unknown name
            raise ValueError(
                f"the restriction {r_matrix!r} names {error.args[0]!r}, which is not a "
                f"coefficient of the model; its coefficients: {list(names)}"
            ) from None
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

    @property
    def statistic(self) -> float:
        """The F statistic (statsmodels' ``ContrastResults.statistic``)."""
        return self.fvalue

    @property
    def distribution(self) -> str:
        """``"F"``, as statsmodels' ``f_test`` result says."""
        return "F"

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


def t_test(results: Any, r_matrix: Any, q: Any = None, *, use_t: bool | None = None) -> TTestResult:
    """Each restriction alone, with the results' distribution (Student's t where
    ``use_t``, default the results', else the normal, as statsmodels' ``use_t``)."""
    if use_t is not None and not isinstance(use_t, bool | np.bool_):
        raise ValueError(f"The 'use_t' parameter must be True, False or None. Got {use_t!r}.")
    matrix, values = restriction(results.names, r_matrix, q)
    matrix, params, cov = _kept(results, matrix)
    effect = matrix @ params
    sd = np.sqrt(np.einsum("ij,jk,ik->i", matrix, cov, matrix))
    tvalue = (effect - values) / sd
    df = results.df_inference if (results.use_t if use_t is None else use_t) else None
    if df is not None:
        pvalue = 2 * stats.t.sf(np.abs(tvalue), df)
    else:
        pvalue = 2 * stats.norm.sf(np.abs(tvalue))
    if effect.size == 1:  # statsmodels' shapes for one restriction (see TTestResult)
        sd, tvalue, pvalue = sd.reshape(1, 1), tvalue.reshape(1, 1), pvalue.reshape(())
    return TTestResult(effect, sd, tvalue, pvalue, df, values, "t" if df is not None else "norm")


def _wald(results: Any, r_matrix: Any, q: Any) -> tuple[float, float]:
    """The Wald statistic ``(Rb-q)' (R C R')^+ (Rb-q)`` and the rank of ``R C R'``."""
    matrix, values = restriction(results.names, r_matrix, q)
    matrix, params, cov = _kept(results, matrix)
    diff = matrix @ params - values
    middle = matrix @ cov @ matrix.T
    # statsmodels' degrees of freedom: the rank of R C R' (pinv ignores its null space),
    # not the number of rows, so a cluster covariance of rank G - 1 < J gives its F.
    rank = float(np.linalg.matrix_rank(middle))
    return float(diff @ np.linalg.pinv(middle) @ diff), rank


def f_test(results: Any, r_matrix: Any, q: Any = None) -> FTestResult:
    """The restrictions jointly: ``F = (Rb-q)' (R C R')^+ (Rb-q) / J``, ``J`` the rank of
    ``R C R'`` (the number of restrictions unless the covariance is singular there)."""
    chi2, df_num = _wald(results, r_matrix, q)
    statistic = chi2 / df_num
    df_denom = results.df_inference
    return FTestResult(
        fvalue=statistic,
        pvalue=float(stats.f.sf(statistic, df_num, df_denom)),
        df_num=df_num,
        df_denom=df_denom,
    )


@dataclass(frozen=True)
class WaldTestResult:
    """A joint Wald test as statsmodels' ``wald_test`` gives it: an F statistic
    (``distribution="F"``, ``df_num`` and ``df_denom``) or a chi2 statistic
    (``distribution="chi2"`` with ``df_num`` degrees of freedom, which statsmodels
    puts in ``df_denom``: so does this, as code written for statsmodels reads it)."""

    statistic: float
    pvalue: float
    df_num: float
    df_denom: float | None
    distribution: str

    @property
    def fvalue(self) -> float:
        """The F statistic (``distribution="F"`` only)."""
        if self.distribution != "F":
            raise AttributeError("a chi2 Wald test has no fvalue; use .statistic")
        return self.statistic

    def __repr__(self) -> str:
        df = f"df_denom={self.df_denom:g}, " if self.distribution == "F" else ""
        return (
            f"<Wald test ({self.distribution}): statistic={self.statistic:.6g}, "
            f"p={self.pvalue:.6g}, {df}df_num={self.df_num:g}>"
        )


def wald_test(
    results: Any, r_matrix: Any, q: Any = None, *, use_f: bool | None = None
) -> WaldTestResult:
    """The restrictions jointly: an F test where ``use_f`` (default: the results'
    ``use_t``), else the chi2 statistic with ``J`` degrees of freedom."""
    chi2, df_num = _wald(results, r_matrix, q)
    if use_f is None:
        use_f = bool(results.use_t)
    if use_f:
        fvalue, df_denom = chi2 / df_num, results.df_inference
        pvalue = float(stats.f.sf(fvalue, df_num, df_denom))
        return WaldTestResult(fvalue, pvalue, df_num, df_denom, "F")
    return WaldTestResult(chi2, float(stats.chi2.sf(chi2, df_num)), df_num, df_num, "chi2")
