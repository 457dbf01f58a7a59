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

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shardfit.stats._distributions import chi2_sf, f_sf, norm_sf, t_sf

__all__ = [
    "ContrastSummary",
    "FTestResult",
    "TTestResult",
    "WaldTestResult",
    "WaldTestTermsResult",
    "f_test",
    "restriction",
    "t_test",
    "wald_test",
    "wald_test_terms",
]


def restriction(
    names: tuple[str, ...], r_matrix: Any, q: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(R, q)`` from a string, a matrix, or an ``(R, q)`` pair."""
    from formulaic.errors import FormulaicError
    from formulaic.utils.constraints import LinearConstraints

    if isinstance(r_matrix, str | list | dict):
        spec: Any = r_matrix
        if isinstance(spec, str):
            spec = _quoted_names(spec, names)
        elif isinstance(spec, list):
            spec = [_quoted_names(item, names) if isinstance(item, str) else item for item in spec]
        try:
            constraints = LinearConstraints.from_spec(spec, variable_names=list(names))
        except KeyError as error:  # formulaic's bare KeyError('x') for an unknown name
            raise ValueError(
                f"the restriction {r_matrix!r} names {error.args[0]!r}, which is not a "
                f"coefficient of the model; its coefficients: {list(names)}"
            ) from None
        except FormulaicError as error:  # not a ValueError: callers catching that missed it
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise ValueError(
                f"the restriction {r_matrix!r} could not be parsed: {reason} (write "
                "restrictions such as 'x1 = x2, x3 = 0' with the coefficient names)"
            ) from error
        matrix = np.asarray(constraints.constraint_matrix, dtype=np.float64)
        values = np.asarray(constraints.constraint_values, dtype=np.float64)
        return _checked(r_matrix, matrix, values)
    if isinstance(r_matrix, tuple) and len(r_matrix) == 2 and q is None:
        r_matrix, q = r_matrix
    matrix = np.atleast_2d(np.asarray(r_matrix, dtype=np.float64))
    if matrix.ndim != 2 or matrix.shape[1] != len(names):
        raise ValueError(
            f"restriction matrix has shape {matrix.shape}; it needs one column per "
            f"coefficient ({len(names)}: {list(names)})"
        )
    values = np.zeros(matrix.shape[0]) if q is None else np.asarray(q, dtype=np.float64).ravel()
    if values.size != matrix.shape[0]:
        raise ValueError(
            f"q has {values.size} values; the restriction matrix has {matrix.shape[0]} rows "
            "(one value per row)"
        )
    return _checked(None, matrix, values)


_IDENTIFIER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _quoted_names(spec: str, names: tuple[str, ...]) -> str:
    """``spec`` with each coefficient name backtick-quoted where it appears whole.

    formulaic's constraint parser reads ``:`` as an operator, so an interaction's
    name (``"x1:x2 = 0"``, ``"C(g)[T.b]:x1 = 0"``) failed to parse, where statsmodels
    (patsy, which matches the known names first) tests it. Quoting a name makes it one
    literal variable, whatever its characters; the longest name matching at a position
    wins (``x1:x2`` before ``x1``), a name must not continue an identifier on either
    side (``x1`` is not matched in ``x11``), and text already in backticks is kept.
    """
    by_length = sorted((name for name in names if name), key=len, reverse=True)
    out: list[str] = []
    i = 0
    while i < len(spec):
        char = spec[i]
        if char == "`":  # already quoted: copy through the closing backtick
            end = spec.find("`", i + 1)
            end = len(spec) - 1 if end < 0 else end
            out.append(spec[i : end + 1])
            i = end + 1
            continue
        before = spec[i - 1] if i else ""
        for name in by_length:
            if not spec.startswith(name, i):
                continue
            after = spec[i + len(name) : i + len(name) + 1]
            if (name[0] in _IDENTIFIER and (before in _IDENTIFIER or before == ".")) or (
                name[-1] in _IDENTIFIER and after and after in _IDENTIFIER
            ):
                continue
            out.append(f"`{name}`")
            i += len(name)
            break
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _checked(spec: Any, matrix: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Refuse a restriction row that involves no coefficient: its effect is 0 with
    standard error 0, so its t is NaN (or, in a joint test, it silently drops out).
    statsmodels refuses such a string ("x1 = x1"): "no variables appear in constraint"."""
    empty = np.flatnonzero(~np.any(matrix != 0, axis=1))
    if empty.size:
        what = f"the restriction {spec!r}" if spec is not None else "the restriction matrix"
        raise ValueError(
            f"{what}: row(s) {empty.tolist()} involve no coefficient (all zero "
            "after moving every term to one side), so there is nothing to test"
        )
    return matrix, values


@dataclass(frozen=True, eq=False)
class ContrastSummary:
    """The table of a :meth:`TTestResult.summary`: print it, or take it as a DataFrame.

    statsmodels' ``ContrastResults.summary()`` table ("Test for Constraints"): one row
    per restriction with ``coef``, ``std err``, ``t`` or ``z``, ``P>|t|`` or ``P>|z|``
    and the interval bounds.

    Attributes
    ----------
    title : str or None
    table : pandas.DataFrame
    """

    title: str | None
    table: pd.DataFrame

    def as_frame(self) -> pd.DataFrame:
        """The table (a copy)."""
        return self.table.copy()

    def as_text(self) -> str:
        """The table as fixed-width text."""
        from shardfit.results.summary import _WIDTH, _coefficient_lines

        lines = [self.title.center(_WIDTH).rstrip()] if self.title else []
        lines.append("=" * _WIDTH)
        lines.extend(_coefficient_lines(self.table))
        lines.append("=" * _WIDTH)
        return "\n".join(lines)

    def as_html(self) -> str:
        """The table as HTML."""
        from shardfit.results.summary import _cell

        caption = f"<h4>{html.escape(self.title)}</h4>" if self.title else ""
        return f"<div>{caption}{self.table.to_html(float_format=_cell, na_rep='NA')}</div>"

    def _repr_html_(self) -> str:
        return self.as_html()

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()


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

    @property
    def dist(self) -> Any:
        """The reference distribution, ``scipy.stats.t`` or ``scipy.stats.norm``."""
        from scipy import stats  # when asked: importing it costs 0.7 s

        return stats.t if self.distribution == "t" else stats.norm

    @property
    def dist_args(self) -> tuple[float, ...]:
        """The arguments of :attr:`dist` besides the statistic: ``(df_denom,)`` for t."""
        return (self.df_denom,) if self.distribution == "t" else ()

    @property
    def c_names(self) -> list[str]:
        """statsmodels' default row names: ``c0``, ``c1``, ..."""
        return [f"c{i}" for i in range(len(self.effect))]

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """``(J, 2)`` intervals for the effects at level ``1 - alpha``."""
        if not 0 < alpha < 1:
            raise ValueError(f"The 'alpha' parameter must be in (0, 1). Got {alpha!r}.")
        crit = self.dist.ppf(1 - alpha / 2, *self.dist_args)
        sd = np.ravel(self.sd)
        return np.column_stack([self.effect - crit * sd, self.effect + crit * sd])

    def _labels(self, xname: Any) -> list[str]:
        if xname is None:
            return self.c_names
        labels = [str(name) for name in xname]
        if len(labels) != len(self.effect):
            raise ValueError(
                f"xname has {len(labels)} names; the test has {len(self.effect)} restrictions"
            )
        return labels

    def summary_frame(self, xname: Any = None, alpha: float = 0.05) -> pd.DataFrame:
        """The tests as a table (statsmodels' ``summary_frame(xname=None, alpha=0.05)``).

        Parameters
        ----------
        xname : sequence of str, optional
            Row names, one per restriction; default ``c0``, ``c1``, ...
        alpha : float, default 0.05
            The intervals' level is ``1 - alpha``.

        Returns
        -------
        pandas.DataFrame
            ``coef``, ``std err``, ``t`` (or ``z``), ``P>|t|`` (or ``P>|z|``),
            ``Conf. Int. Low`` and ``Conf. Int. Upp.``.
        """
        ci = self.conf_int(alpha)
        letter = "t" if self.distribution == "t" else "z"
        return pd.DataFrame(
            {
                "coef": self.effect,
                "std err": np.ravel(self.sd),
                letter: np.ravel(self.tvalue),
                f"P>|{letter}|": np.ravel(self.pvalue),
                "Conf. Int. Low": ci[:, 0],
                "Conf. Int. Upp.": ci[:, 1],
            },
            index=self._labels(xname),
        )

    def summary(
        self, xname: Any = None, alpha: float = 0.05, title: str | None = None
    ) -> ContrastSummary:
        """statsmodels' "Test for Constraints" table.

        Parameters
        ----------
        xname : sequence of str, optional
            Row names, one per restriction; default ``c0``, ``c1``, ...
        alpha : float, default 0.05
            The intervals' level is ``1 - alpha``.
        title : str, optional
            Replaces the title; ``""`` gives none.

        Returns
        -------
        ContrastSummary
            Prints as text; ``as_frame()`` gives the numbers.
        """
        frame = self.summary_frame(xname, alpha)
        # statsmodels' summary labels the bounds by their quantiles, as the fit's table.
        frame.columns = [*frame.columns[:4], f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"]
        if title is None:
            title = "Test for Constraints"
        return ContrastSummary(title or None, frame)

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>\n{self.summary()}"


def _number(value: float | None) -> str:
    """Every digit of a statistic (statsmodels prints their ``repr``); whole degrees of
    freedom without a decimal point."""
    if value is None:
        return "None"
    value = float(value)
    return f"{value:.0f}" if value.is_integer() and abs(value) < 1e15 else repr(value)


def _f_line(fvalue: float, pvalue: float, df_denom: float | None, df_num: float) -> str:
    """statsmodels' one-line text of an F test."""
    return (
        f"<F test: F={_number(fvalue)}, p={_number(pvalue)}, "
        f"df_denom={_number(df_denom)}, df_num={_number(df_num)}>"
    )


class _NoTable:
    """What joint tests share: their text (``summary()``, also their ``str`` and
    ``repr``, as statsmodels'), and statsmodels' answers for their missing
    per-restriction table. Subclasses are dataclasses with ``repr=False``."""

    effect = None  # statsmodels' joint tests carry effect=None

    def summary(self) -> str:
        """The test's one-line text (each joint test writes its own)."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return self.summary()

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """Not available for a joint test (statsmodels raises the same error)."""
        raise NotImplementedError(
            "a joint (F or chi2) test has no confidence interval; use t_test for the "
            "interval of each restriction"
        )

    def summary_frame(self, xname: Any = None, alpha: float = 0.05) -> pd.DataFrame:
        """Not available for a joint test (statsmodels raises the same error)."""
        raise NotImplementedError(
            "a joint (F or chi2) test has no table; use t_test for one row per restriction"
        )


@dataclass(frozen=True, repr=False)
class FTestResult(_NoTable):
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

    @property
    def dist(self) -> Any:
        """``scipy.stats.f``."""
        from scipy import stats  # when asked: importing it costs 0.7 s

        return stats.f

    @property
    def dist_args(self) -> tuple[float, float]:
        """``(df_num, df_denom)``."""
        return (self.df_num, self.df_denom)

    def summary(self) -> str:
        """One line with the statistic, p-value and degrees of freedom (statsmodels')."""
        return _f_line(self.fvalue, self.pvalue, self.df_denom, self.df_num)


def _cov_p(results: Any, cov_p: Any) -> np.ndarray:
    """The covariance a test uses: statsmodels' ``cov_p`` (a ``(k, k)`` matrix that
    replaces the fit's, e.g. another robust covariance), else the fit's."""
    if cov_p is None:
        return np.asarray(results.cov_array)
    k = len(results.names)
    matrix = np.asarray(cov_p, dtype=np.float64)
    if matrix.shape != (k, k):
        raise ValueError(
            f"cov_p has shape {matrix.shape}; it needs ({k}, {k}), one row and column per "
            f"coefficient ({list(results.names)})"
        )
    return matrix


def _kept(
    results: Any, matrix: np.ndarray, cov_p: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    params = np.asarray(results.params_array)
    cov = _cov_p(results, cov_p)
    finite = np.isfinite(params)
    if np.any(matrix[:, ~finite] != 0):
        raise ValueError("a restriction involves an aliased (dropped) coefficient")
    return matrix[:, finite], params[finite], cov[np.ix_(finite, finite)]


def t_test(
    results: Any,
    r_matrix: Any,
    q: Any = None,
    *,
    use_t: bool | None = None,
    cov_p: Any = None,
) -> TTestResult:
    """Each restriction alone, with the results' distribution (Student's t where
    ``use_t``, default the results', else the normal, as statsmodels' ``use_t``);
    ``cov_p`` replaces the fit's covariance, as statsmodels'."""
    if use_t is not None and not isinstance(use_t, bool | np.bool_):
        raise ValueError(f"The 'use_t' parameter must be True, False or None. Got {use_t!r}.")
    matrix, values = restriction(results.names, r_matrix, q)
    matrix, params, cov = _kept(results, matrix, cov_p)
    effect = matrix @ params
    sd = np.sqrt(np.einsum("ij,jk,ik->i", matrix, cov, matrix))
    tvalue = (effect - values) / sd
    df = results.df_inference if (results.use_t if use_t is None else use_t) else None
    if df is not None:
        pvalue = 2 * t_sf(np.abs(tvalue), df)
    else:
        pvalue = 2 * norm_sf(np.abs(tvalue))
    if effect.size == 1:  # statsmodels' shapes for one restriction (see TTestResult)
        sd, tvalue, pvalue = sd.reshape(1, 1), tvalue.reshape(1, 1), pvalue.reshape(())
    return TTestResult(effect, sd, tvalue, pvalue, df, values, "t" if df is not None else "norm")


def _wald(
    results: Any, r_matrix: Any, q: Any, cov_p: Any = None, invcov: Any = None
) -> tuple[float, float]:
    """The Wald statistic ``(Rb-q)' (R C R')^+ (Rb-q)`` and the rank of ``R C R'``; with
    ``invcov`` (statsmodels': the ``(J, J)`` inverse of ``R C R'``, given), ``(Rb-q)'
    invcov (Rb-q)`` and ``J`` the number of restrictions, as there."""
    matrix, values = restriction(results.names, r_matrix, q)
    if invcov is not None and cov_p is not None:
        # statsmodels ignores cov_p when invcov is given; a silent choice hides a mistake.
        raise ValueError("give 'cov_p' or 'invcov', not both (invcov replaces the covariance)")
    matrix, params, cov = _kept(results, matrix, cov_p)
    diff = matrix @ params - values
    if invcov is not None:
        inverse = np.atleast_2d(np.asarray(invcov, dtype=np.float64))
        rows = matrix.shape[0]
        if inverse.shape != (rows, rows):
            raise ValueError(
                f"invcov has shape {inverse.shape}; it needs ({rows}, {rows}), the inverse "
                f"of the covariance of the {rows} restriction(s)"
            )
        return float(diff @ inverse @ diff), float(rows)
    middle = matrix @ cov @ matrix.T
    if np.isnan(middle).any():
        raise ValueError(
            "the covariance of the restrictions has NaN entries (a NaN in cov_p or the "
            "fit's covariance), so there is no Wald statistic"
        )
    # statsmodels' degrees of freedom: the rank of R C R' (pinv ignores its null space),
    # not the number of rows, so a cluster covariance of rank G - 1 < J gives its F.
    rank = float(np.linalg.matrix_rank(middle))
    return float(diff @ np.linalg.pinv(middle) @ diff), rank


def f_test(
    results: Any, r_matrix: Any, q: Any = None, *, cov_p: Any = None, invcov: Any = None
) -> FTestResult:
    """The restrictions jointly: ``F = (Rb-q)' (R C R')^+ (Rb-q) / J``, ``J`` the rank of
    ``R C R'`` (the number of restrictions unless the covariance is singular there);
    ``cov_p`` replaces ``C`` and ``invcov`` replaces ``(R C R')^+`` (then ``J`` is the
    number of restrictions), as statsmodels'."""
    chi2, df_num = _wald(results, r_matrix, q, cov_p, invcov)
    statistic = chi2 / df_num
    df_denom = results.df_inference
    return FTestResult(
        fvalue=statistic,
        pvalue=float(f_sf(statistic, df_num, df_denom)),
        df_num=df_num,
        df_denom=df_denom,
    )


@dataclass(frozen=True, repr=False)
class WaldTestResult(_NoTable):
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

    @property
    def tvalue(self) -> float:
        """The chi2 statistic (statsmodels' alias; ``distribution="chi2"`` only)."""
        if self.distribution == "F":
            raise AttributeError("an F Wald test has no tvalue; use .fvalue or .statistic")
        return self.statistic

    @property
    def dist(self) -> Any:
        """``scipy.stats.f`` or ``scipy.stats.chi2``."""
        from scipy import stats  # when asked: importing it costs 0.7 s

        return stats.f if self.distribution == "F" else stats.chi2

    @property
    def dist_args(self) -> tuple[float, ...]:
        """``(df_num, df_denom)`` for F; ``()`` for chi2, as statsmodels (whose chi2
        degrees of freedom are in ``df_denom``)."""
        return (self.df_num, self.df_denom) if self.distribution == "F" else ()

    def summary(self) -> str:
        """One line with the statistic, p-value and degrees of freedom (statsmodels')."""
        if self.distribution == "F":
            return _f_line(self.statistic, self.pvalue, self.df_denom, self.df_num)
        return (
            f"<Wald test (chi2): statistic={_number(self.statistic)}, "
            f"p-value={_number(self.pvalue)}, df_denom={_number(self.df_denom)}>"
        )


def wald_test(
    results: Any,
    r_matrix: Any,
    q: Any = None,
    *,
    use_f: bool | None = None,
    cov_p: Any = None,
    invcov: Any = None,
    df_constraints: float | None = None,
) -> WaldTestResult:
    """The restrictions jointly: an F test where ``use_f`` (default: the results'
    ``use_t``), else the chi2 statistic with ``J`` degrees of freedom; ``cov_p``,
    ``invcov`` as :func:`f_test`, and ``df_constraints`` replaces ``J``, as
    statsmodels'."""
    chi2, df_num = _wald(results, r_matrix, q, cov_p, invcov)
    if df_constraints is not None:
        df_num = float(df_constraints)
        if not df_num > 0:
            raise ValueError(f"df_constraints must be positive; got {df_constraints!r}")
    if use_f is None:
        use_f = bool(results.use_t)
    if use_f:
        fvalue, df_denom = chi2 / df_num, results.df_inference
        pvalue = float(f_sf(fvalue, df_num, df_denom))
        return WaldTestResult(fvalue, pvalue, df_num, df_denom, "F")
    return WaldTestResult(chi2, float(chi2_sf(chi2, df_num)), df_num, df_num, "chi2")


class WaldTestTermsResult:
    """Joint Wald tests, one per term, as statsmodels' ``WaldTestResults`` (the
    result of ``wald_test_terms``).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per test, indexed by its name, with statsmodels' distribution-neutral
        columns ``statistic``, ``pvalue``, ``df_constraint`` (and ``df_denom`` for F
        tests); :meth:`summary_frame` names them ``F``/``chi2``, ``P>F``/``P>chi2``,
        ``df constraint`` (and ``df denom``), as statsmodels' does.
    distribution : str
        ``"F"`` or ``"chi2"``.
    statistic, pvalues, df_constraints : numpy.ndarray
        The table's columns.
    df_denom : numpy.ndarray
        The denominator degrees of freedom (F tests only, as statsmodels').
    constraints : list of (str, numpy.ndarray)
        Each test's name and restriction matrix (statsmodels keeps them as ``temp``).
    """

    dist_args = None  # statsmodels' WaldTestResults from a table carry dist_args=None

    def __init__(
        self, table: pd.DataFrame, distribution: str, constraints: list[tuple[str, Any]]
    ) -> None:
        self.table = table
        self.distribution = distribution
        self.constraints = constraints
        self.statistic = table["statistic"].to_numpy()
        self.pvalues = table["pvalue"].to_numpy()
        self.df_constraints = table["df_constraint"].to_numpy()
        if distribution == "F":
            self.df_denom = table["df_denom"].to_numpy()

    @property
    def col_names(self) -> list[str]:
        """The :meth:`summary_frame` column names (statsmodels')."""
        names = [self.distribution, f"P>{self.distribution}", "df constraint"]
        return [*names, "df denom"] if self.distribution == "F" else names

    def summary_frame(self) -> pd.DataFrame:
        """The table with statsmodels' display names (``F``, ``P>F``, ``df constraint``,
        ``df denom``; or ``chi2``, ``P>chi2``, ``df constraint``)."""
        return self.table.set_axis(self.col_names, axis=1)

    def __str__(self) -> str:
        return self.summary_frame().to_string()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>\n{self}"


def _term_columns(results: Any) -> tuple[list[tuple[str, np.ndarray]], bool]:
    """Each term's name and coefficient positions, and whether they come from a formula.

    A formula fit's terms are formulaic's, named and ordered as statsmodels' (patsy's)
    ``design_info``: the intercept is ``Intercept``, an interaction is named with its
    factors in patsy's order, and terms come in patsy's column order. A fit without a
    formula has one term per column, named after it, as statsmodels' fit on arrays."""
    names = list(results.names)
    spec = getattr(results, "spec", None)
    if spec is None or getattr(spec, "formula", None) is None:
        return [(name, np.asarray([i])) for i, name in enumerate(names)], False
    from shardfit.design.formula import patsy_column_order

    specs = spec.formulaic_specs()
    rhs = specs.rhs if spec.has_formula_response else specs
    patsy_names = _patsy_term_names(str(spec.formula))
    terms: list[tuple[str, np.ndarray]] = []
    for structure in rhs.structure:
        missing = [column for column in structure.columns if column not in names]
        if missing:
            raise ValueError(
                f"the term {str(structure.term)!r} of {spec.formula!r} has columns "
                f"{missing} that are not coefficients of the fit ({names})"
            )
        factors = _factor_set(str(factor) for factor in structure.term.factors)
        name = patsy_names.get(factors) or ("Intercept" if not factors else str(structure.term))
        positions = np.asarray([names.index(column) for column in structure.columns])
        terms.append((name, positions))
    order = patsy_column_order(rhs, str(spec.formula))
    if order is not None:
        # statsmodels lists the terms in its (patsy's) column order, which groups them
        # by their numeric factors; formulaic sorts them by degree.
        rank = {formulaic: place for place, formulaic in enumerate(order)}
        columns = [spec.column_names.index(results.names[int(p[0])]) for _, p in terms]
        terms = [term for _, term in sorted(zip(columns, terms), key=lambda t: rank[t[0]])]
    return terms, True


def _factor_set(codes: Any) -> frozenset[str]:
    """A term's factors without spaces and without formulaic's intercept ``1``."""
    squashed = ("".join(str(code).split()) for code in codes)
    return frozenset(code for code in squashed if code != "1")


def _patsy_term_names(formula: str) -> dict[frozenset[str], str]:
    """patsy's name of each right-hand-side term (``C(g):x``), keyed by its factors;
    empty without patsy or where patsy cannot parse the formula (formulaic's names
    are used then)."""
    try:
        from patsy import ModelDesc
    except ImportError:
        return {}
    try:
        desc = ModelDesc.from_formula(formula)
    except Exception:  # patsy's errors have no common base besides Exception
        return {}
    return {_factor_set(f.name() for f in term.factors): term.name() for term in desc.rhs_termlist}


def wald_test_terms(
    results: Any,
    skip_single: bool = False,
    extra_constraints: Any = None,
    combine_terms: Any = None,
    scalar: bool = True,
) -> WaldTestTermsResult:
    """A joint Wald test that all coefficients of each term are zero (statsmodels'
    ``wald_test_terms``); see :meth:`CoefficientTable.wald_test_terms`."""
    if not scalar:
        raise ValueError(
            "wald_test_terms: scalar=False (statsmodels' deprecated array statistics) is "
            "not supported; the statistics are always scalars"
        )
    combine = [] if combine_terms is None else list(combine_terms)
    if any(not isinstance(name, str) for name in combine):
        raise ValueError(f"combine_terms must be a list of strings; got {combine_terms!r}")
    extra = [] if extra_constraints is None else list(extra_constraints)
    for item in extra:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ValueError(
                f"extra_constraints must be a list of (name, constraint) pairs; got {item!r}"
            )
    identity = np.eye(len(results.names))
    terms, from_formula = _term_columns(results)
    constraints: list[tuple[str, Any]] = []
    combined: dict[str, list[np.ndarray]] = {name: [] for name in combine}
    for name, positions in terms:
        rows = identity[positions]
        # statsmodels matches combine_terms as substrings of the term names (a formula
        # fit) or of the column names (a fit on arrays).
        for wanted in combine:
            if wanted in name:
                combined[wanted].append(rows)
        # statsmodels' skip_single without a formula skips every column (each is single).
        if skip_single and (rows.shape[0] == 1 or not from_formula):
            continue
        constraints.append((name, rows))
    for wanted in combine:
        if not combined[wanted]:
            raise ValueError(
                f"combine_terms: {wanted!r} is in no term name "
                f"({[name for name, _ in terms]}), so there is nothing to combine"
            )
        constraints.append((wanted, np.vstack(combined[wanted])))
    constraints.extend((str(name), constraint) for name, constraint in extra)
    use_f = bool(results.use_t)
    rows_out = []
    for name, constraint in constraints:
        try:
            test = wald_test(results, constraint, use_f=use_f)
        except ValueError as error:
            raise ValueError(f"wald_test_terms: the test of {name!r}: {error}") from error
        # The rank-adjusted degrees of freedom, as statsmodels (whose chi2 result keeps
        # them in df_denom).
        row = [test.statistic, test.pvalue, int(test.df_num)]
        if use_f:
            row.append(test.df_denom)
        rows_out.append(row)
    columns = ["statistic", "pvalue", "df_constraint"] + (["df_denom"] if use_f else [])
    table = pd.DataFrame(rows_out, index=[name for name, _ in constraints], columns=columns)
    return WaldTestTermsResult(table, "F" if use_f else "chi2", constraints)
