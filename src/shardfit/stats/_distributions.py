"""The tail probabilities and quantiles that inference needs, from :mod:`scipy.special`.

``scipy.stats`` takes about 0.7 s to import (its hundred distributions and tests),
a third of a small ``shardfit fit`` on the command line, where p-values need only
these few functions. ``scipy.stats``' own methods compute them with the same
:mod:`scipy.special` functions (``t.sf(x, df)`` is ``stdtr(df, -x)``, ``f.sf`` is
``fdtrc``...), so the numbers are the same bits; what those methods add, and what is
repeated here, is their handling of the edges: NaN for invalid degrees of freedom or
probabilities outside ``[0, 1]``, a survival probability of 1 at or below the support's
lower end, and the support's ends as the quantiles of 0 and 1
(tests/stats/test_distributions_as_scipy_stats.py checks each against ``scipy.stats``).

Objects that hand out a ``scipy.stats`` distribution (``dist`` of a test's result)
import it when asked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

__all__ = ["chi2_sf", "f_sf", "norm_ppf", "norm_sf", "t_ppf", "t_sf"]


def _out(values: np.ndarray) -> Any:
    """A NumPy scalar for scalar input, as ``scipy.stats``' methods return."""
    return values[()] if values.ndim == 0 else values


def _positive(*dfs: Any) -> np.ndarray:
    """Whether degrees of freedom are valid (> 0; NaN is not)."""
    valid = np.asarray(True)
    for df in dfs:
        valid = valid & (np.asarray(df, dtype=np.float64) > 0)
    return valid


def _ends(values: np.ndarray, x: np.ndarray, lower: float) -> np.ndarray:
    """``scipy.stats``' survival function at the support's ends: 1 at or below
    ``lower`` and 0 at ``inf``, whatever the special function gives there."""
    return np.where(x <= lower, 1.0, np.where(x == np.inf, 0.0, values))


def t_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.t.sf(x, df)``."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        values = _ends(special.stdtr(df, -x), x, -np.inf)
        return _out(np.where(_positive(df), values, np.nan))


def t_ppf(q: Any, df: Any) -> Any:
    """``scipy.stats.t.ppf(q, df)``: ``-inf`` at 0 and ``inf`` at 1 (``stdtrit`` gives
    ``inf`` at 0)."""
    q = np.asarray(q, dtype=np.float64)
    valid = _positive(df)
    with np.errstate(invalid="ignore"):
        inner = special.stdtrit(df, np.clip(q, 0.0, 1.0))
        values = np.where((q > 0) & (q < 1), inner, np.nan)
        values = np.where(q == 0, -np.inf, np.where(q == 1, np.inf, values))
        return _out(np.where(valid, values, np.nan))


def norm_sf(x: Any) -> Any:
    """``scipy.stats.norm.sf(x)``."""
    return _out(special.ndtr(-np.asarray(x, dtype=np.float64)))


def norm_ppf(q: Any) -> Any:
    """``scipy.stats.norm.ppf(q)`` (``ndtri`` gives the ends and NaN outside)."""
    return _out(special.ndtri(np.asarray(q, dtype=np.float64)))


def f_sf(x: Any, dfn: Any, dfd: Any) -> Any:
    """``scipy.stats.f.sf(x, dfn, dfd)`` (``fdtrc`` gives NaN below 0)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        inner = special.fdtrc(dfn, dfd, np.maximum(x, 0.0))
        values = np.where(np.isnan(x), np.nan, _ends(inner, x, 0.0))
        return _out(np.where(_positive(dfn, dfd), values, np.nan))


def chi2_sf(x: Any, df: Any) -> Any:
    """``scipy.stats.chi2.sf(x, df)`` (``chdtrc`` gives NaN below 0)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        inner = special.chdtrc(df, np.maximum(x, 0.0))
        values = np.where(np.isnan(x), np.nan, _ends(inner, x, 0.0))
        return _out(np.where(_positive(df), values, np.nan))
