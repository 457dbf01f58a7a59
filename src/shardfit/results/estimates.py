"""The coefficient table every results class shares: estimates, their covariance,
standard errors, test statistics, p-values, confidence intervals and Wald tests.

A results class that inherits :class:`CoefficientTable` provides ``names``,
``params_array``, ``cov_array``, ``normalized_cov`` (the unscaled covariance),
``scale``, ``cov_type``, ``use_t``, ``df_resid`` and ``df_resid_inference`` (``None`` to
use ``df_resid``); the definitions follow statsmodels'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shardfit.stats._distributions import norm_ppf, norm_sf, t_ppf, t_sf

__all__ = ["CoefficientTable"]


class CoefficientTable:
    """statsmodels' coefficient-level results, from ``params_array`` and ``cov_array``."""

    names: tuple[str, ...]
    params_array: np.ndarray
    cov_array: np.ndarray
    normalized_cov: np.ndarray
    use_t: bool
    df_resid_inference: float | None

    @property
    def df_resid(self) -> float:  # pragma: no cover - every results class defines it
        raise NotImplementedError

    @property
    def params(self) -> pd.Series:
        """Estimated coefficients (NaN for aliased columns)."""
        return pd.Series(self.params_array, index=list(self.names), name="params")

    @property
    def normalized_cov_params(self) -> pd.DataFrame:
        """The unscaled covariance (statsmodels' name): ``(X'WX)^-1``, which times
        :attr:`scale` is the nonrobust covariance (NaN rows and columns for aliased
        columns). Whatever the ``cov_type``, as in statsmodels."""
        return pd.DataFrame(self.normalized_cov, index=list(self.names), columns=list(self.names))

    def cov_params(
        self,
        r_matrix: Any = None,
        column: Any = None,
        scale: float | None = None,
        cov_p: Any = None,
        other: Any = None,
    ) -> Any:
        """Covariance of the estimates, or of linear combinations of them (statsmodels').

        Parameters
        ----------
        r_matrix : array_like or str, optional
            Rows ``R``: returns ``R C R'`` (``R C other'`` with ``other``), a float for
            one row given as a 1-D array, else an array. A string such as ``"x1 = x2"``
            names the rows as in :meth:`t_test`.
        column : int, str or sequence of them, optional
            Positions (or names) of coefficients: their sub-block, a float for one.
            Not together with ``r_matrix`` or ``other``.
        scale : float, optional
            Use ``normalized_cov_params * scale`` as ``C``; only for the nonrobust
            covariance (a robust one has no scale to replace).
        cov_p : array_like, optional
            Use this ``(k, k)`` matrix as ``C``.
        other : array_like, optional
            Right-hand rows, with ``r_matrix``.

        Returns
        -------
        pandas.DataFrame, numpy.ndarray or float
            Without arguments (or with only ``scale``/``cov_p``), the labelled ``(k, k)``
            covariance of the chosen ``cov_type``.
        """
        if column is not None and (r_matrix is not None or other is not None):
            raise ValueError("cov_params: give 'column' alone, without 'r_matrix' or 'other'")
        if other is not None and r_matrix is None:
            raise ValueError("cov_params: 'other' goes with 'r_matrix'")
        matrix = self._covariance(scale, cov_p)
        if column is not None:
            positions = self._positions(column, "column")
            if positions.ndim == 0:
                return float(matrix[positions, positions])
            labels = [self.names[i] for i in positions]
            return pd.DataFrame(matrix[np.ix_(positions, positions)], index=labels, columns=labels)
        if r_matrix is not None:
            left = self._rows(r_matrix, "r_matrix")
            right = left if other is None else self._rows(other, "other")
            product = left @ matrix @ right.T
            return float(product) if product.ndim == 0 else product
        return pd.DataFrame(matrix, index=list(self.names), columns=list(self.names))

    def _covariance(self, scale: float | None, cov_p: Any) -> np.ndarray:
        """``C`` of :meth:`cov_params`: ``cov_p``, the normalized one times ``scale``, or
        the covariance of the fit's ``cov_type``."""
        k = len(self.names)
        if cov_p is not None:
            if scale is not None:
                raise ValueError("cov_params: give 'scale' or 'cov_p', not both")
            matrix = np.asarray(cov_p, dtype=np.float64)
            if matrix.shape != (k, k):
                raise ValueError(
                    f"cov_params: 'cov_p' has shape {matrix.shape}; the model has {k} coefficients"
                )
            return matrix
        if scale is None:
            return self.cov_array
        cov_type = getattr(self, "cov_type", "nonrobust")
        if cov_type != "nonrobust":
            # statsmodels ignores scale here and returns the robust covariance unchanged.
            raise ValueError(
                f"cov_params: 'scale' rescales the nonrobust covariance; this fit's is "
                f"cov_type={cov_type!r}, which has no scale to replace"
            )
        return self.normalized_cov * float(scale)

    def _positions(self, column: Any, what: str) -> np.ndarray:
        """Integer positions (0-d for one) of coefficients given by position or name."""
        items = np.asarray(column, dtype=object)
        names = list(self.names)
        k = len(names)

        def position(item: Any) -> int:
            if isinstance(item, str):
                if item not in names:
                    raise ValueError(
                        f"{what}: {item!r} is not a coefficient of the model; its "
                        f"coefficients: {names}"
                    )
                return names.index(item)
            if isinstance(item, bool | np.bool_) or not isinstance(item, int | np.integer):
                raise ValueError(f"{what}: expected positions or names; got {item!r}")
            if not -k <= int(item) < k:
                raise ValueError(
                    f"{what}: position {int(item)} is out of range for {k} coefficients"
                )
            return int(item) % k

        if items.ndim == 0:
            return np.asarray(position(items.item()))
        if items.ndim != 1:
            raise ValueError(
                f"{what}: expected one position or a 1-D sequence; got shape {items.shape}"
            )
        return np.asarray([position(item) for item in items], dtype=np.intp)

    def _rows(self, rows: Any, what: str) -> np.ndarray:
        """A restriction matrix as a 1-D or 2-D float array with one column per coefficient."""
        if isinstance(rows, str):
            from shardfit.results.hypothesis import restriction

            return restriction(self.names, rows)[0]
        matrix = np.asarray(rows, dtype=np.float64)
        if matrix.ndim not in (1, 2) or matrix.shape[-1] != len(self.names):
            raise ValueError(
                f"cov_params: '{what}' has shape {matrix.shape}; it needs 1 or 2 dimensions, "
                f"the last of {len(self.names)} (one per coefficient)"
            )
        return matrix

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
            values = 2 * t_sf(t, self.df_inference)
        else:
            values = 2 * norm_sf(t)
        return pd.Series(values, index=list(self.names))

    def conf_int(self, alpha: float = 0.05, cols: Any = None) -> pd.DataFrame:
        """Confidence intervals at level ``1 - alpha`` (columns 0 and 1, as statsmodels).

        ``cols`` (positions or names of coefficients) keeps those rows only, in that
        order, as statsmodels' ``conf_int(alpha, cols)`` of 0.14 (gone in 0.15)."""
        if not 0 < alpha < 1:
            raise ValueError(f"The 'alpha' parameter must be in (0, 1). Got {alpha!r}.")
        if self.use_t:
            q = t_ppf(1 - alpha / 2, self.df_inference)
        else:
            q = norm_ppf(1 - alpha / 2)
        bse = self.bse.to_numpy()
        frame = pd.DataFrame(
            {0: self.params_array - q * bse, 1: self.params_array + q * bse},
            index=list(self.names),
        )
        if cols is None:
            return frame
        return frame.iloc[np.atleast_1d(self._positions(cols, "cols"))]

    def t_test(
        self,
        r_matrix: Any,
        q: Any = None,
        *,
        use_t: bool | None = None,
        cov_p: Any = None,
    ) -> Any:
        """Test linear restrictions one by one (strings like ``"x1 = x2"`` or a matrix).

        Parameters
        ----------
        r_matrix : str, array_like or (R, q) tuple
            The restrictions ``R beta = q``.
        q : array_like, optional
            Their right-hand sides (zero by default).
        use_t : bool, optional
            Student's t (``True``) or the normal; default the fit's, as statsmodels'.
        cov_p : array_like, optional
            A ``(k, k)`` covariance to use instead of the fit's (statsmodels').

        Returns
        -------
        TTestResult
        """
        from shardfit.results.hypothesis import t_test

        return t_test(self, r_matrix, q, use_t=use_t, cov_p=cov_p)

    def f_test(self, r_matrix: Any, q: Any = None, *, cov_p: Any = None, invcov: Any = None) -> Any:
        """Joint Wald F test of linear restrictions.

        Parameters
        ----------
        r_matrix : str, array_like or (R, q) tuple
            The restrictions ``R beta = q``.
        q : array_like, optional
            Their right-hand sides (zero by default).
        cov_p : array_like, optional
            A ``(k, k)`` covariance to use instead of the fit's (statsmodels').
        invcov : array_like, optional
            The ``(J, J)`` inverse of the restrictions' covariance ``R C R'``, used as
            given (statsmodels'); the numerator degrees of freedom are then ``J``.

        Returns
        -------
        FTestResult
        """
        from shardfit.results.hypothesis import f_test

        return f_test(self, r_matrix, q, cov_p=cov_p, invcov=invcov)

    def wald_test(
        self,
        r_matrix: Any,
        q: Any = None,
        *,
        cov_p: Any = None,
        invcov: Any = None,
        use_f: bool | None = None,
        df_constraints: float | None = None,
        scalar: bool | None = None,
    ) -> Any:
        """Joint Wald test of linear restrictions: F where ``use_f`` (default
        ``use_t``), else chi2, as statsmodels' ``wald_test(..., scalar=True)``.

        ``cov_p`` and ``invcov`` are as in :meth:`f_test`; ``df_constraints``
        replaces the number of restrictions ``J`` (statsmodels'). ``scalar`` is
        accepted as statsmodels' (code passes ``scalar=True`` to silence its
        FutureWarning); the statistics here are always scalars, so ``False`` is
        refused."""
        from shardfit.results.hypothesis import wald_test

        if scalar is not None and not scalar:
            raise ValueError(
                "wald_test: scalar=False (statsmodels' deprecated 2-D statistic) is not "
                "supported; the statistic is always a scalar (omit 'scalar' or pass True)"
            )

        return wald_test(
            self,
            r_matrix,
            q,
            use_f=use_f,
            cov_p=cov_p,
            invcov=invcov,
            df_constraints=df_constraints,
        )

    def wald_test_terms(
        self,
        skip_single: bool = False,
        extra_constraints: Any = None,
        combine_terms: Any = None,
        scalar: bool = True,
    ) -> Any:
        """A joint Wald test per term that all its coefficients are zero
        (statsmodels' ``wald_test_terms``), from the estimates and their covariance.

        Terms are the formula's (a categorical's dummies together, an interaction's
        columns together; named and ordered as statsmodels' patsy ``design_info``),
        or one per column for a fit without a formula. Each test is an F test where
        the fit uses Student's t (``use_t``: OLS/WLS with the nonrobust covariance),
        else a chi2 test (robust covariances, GLMs), as statsmodels'.

        Parameters
        ----------
        skip_single : bool, default False
            Leave out terms of one column (statsmodels': without a formula, every
            column).
        extra_constraints : list of (str, restriction), optional
            More tests: a name and a restriction as :meth:`wald_test` takes it.
        combine_terms : list of str, optional
            For each string, one joint test of the columns of every term whose name
            contains it (``"g"`` combines ``C(g)`` and ``C(g):x``).
        scalar : bool, default True
            Accepted as statsmodels'; ``False`` (array statistics) is refused.

        Returns
        -------
        WaldTestTermsResult
            ``.table`` (``statistic``, ``pvalue``, ``df_constraint`` and, for F,
            ``df_denom``), ``.summary_frame()`` with statsmodels' display names, and
            its text.

        Raises
        ------
        ValueError
            A ``combine_terms`` string matches no term, or a term involves an aliased
            coefficient (naming the term).
        """
        from shardfit.results.hypothesis import wald_test_terms

        return wald_test_terms(
            self,
            skip_single=skip_single,
            extra_constraints=extra_constraints,
            combine_terms=combine_terms,
            scalar=scalar,
        )
