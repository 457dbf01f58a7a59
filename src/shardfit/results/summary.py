"""A text summary of a linear fit, laid out like statsmodels' regression summary.

Three blocks: the model and data (with the rows read, dropped by reason, and skipped:
out of core, what happened to the rows is part of the answer), the coefficient table,
and notes (covariance, aliased columns, the condition number). The coefficient table
is also a DataFrame (:meth:`Summary.as_frame`) and an HTML table in notebooks.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CONDITION_WARNING", "Summary", "linear_summary"]

#: Above this condition number of the design the notes warn of collinearity. The
#: number is statsmodels' (of the raw, unscaled design), so it also grows with the
#: columns' units; 1e5 keeps it quiet for ordinary data with a few large columns.
CONDITION_WARNING = 1e5

_WIDTH = 78
_HALF = _WIDTH // 2


@dataclass(frozen=True, eq=False)
class Summary:
    """A fit's summary: print it, or take the coefficients as a DataFrame.

    Attributes
    ----------
    title : str
    left, right : tuple of (label, value) pairs
        The two columns of the header block.
    coefficients : pandas.DataFrame
        ``coef``, ``std err``, ``t`` or ``z``, ``P>|t|`` or ``P>|z|``, and the interval
        bounds, indexed by design column.
    notes : tuple of str
    """

    title: str
    left: tuple[tuple[str, str], ...]
    right: tuple[tuple[str, str], ...]
    coefficients: pd.DataFrame
    notes: tuple[str, ...]

    def as_frame(self) -> pd.DataFrame:
        """The coefficient table (a copy)."""
        return self.coefficients.copy()

    def as_text(self) -> str:
        """The summary as fixed-width text."""
        lines = [self.title.center(_WIDTH).rstrip(), "=" * _WIDTH]
        rows = max(len(self.left), len(self.right))
        for i in range(rows):
            left = _pair(self.left[i]) if i < len(self.left) else ""
            right = _pair(self.right[i]) if i < len(self.right) else ""
            lines.append(f"{left:<{_HALF}}{right}".rstrip())
        lines.append("=" * _WIDTH)
        lines.extend(_coefficient_lines(self.coefficients))
        lines.append("=" * _WIDTH)
        if self.notes:
            lines.append("Notes:")
            for number, note in enumerate(self.notes, start=1):
                lines.extend(_wrap(f"[{number}] {note}"))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        def cells(pairs: tuple[tuple[str, str], ...], i: int) -> str:
            if i >= len(pairs):
                return "<th></th><td></td>"
            label, value = pairs[i]
            return f"<th>{html.escape(label)}</th><td>{html.escape(value)}</td>"

        rows = max(len(self.left), len(self.right))
        header = "".join(
            f"<tr>{cells(self.left, i)}{cells(self.right, i)}</tr>" for i in range(rows)
        )
        table = self.coefficients.to_html(float_format=_cell, na_rep="NA")
        notes = "".join(f"<li>{html.escape(note)}</li>" for note in self.notes)
        return (
            f"<div><h4>{html.escape(self.title)}</h4><table>{header}</table>{table}"
            + (f"<ol>{notes}</ol>" if notes else "")
            + "</div>"
        )


def linear_summary(results: Any, *, alpha: float = 0.05) -> Summary:
    """Build the summary of an OLS or WLS fit.

    Parameters
    ----------
    results : LinearResults
    alpha : float
        The coefficients' intervals are at level ``1 - alpha``.

    Returns
    -------
    Summary
    """
    if not 0 < alpha < 1:
        raise ValueError(f"The 'alpha' parameter of summary must be in (0, 1). Got {alpha!r}.")
    model = "WLS" if results.weighted else "OLS"
    dropped = sum(results.rows_dropped.values())
    left = [
        ("Dep. Variable:", _response(results)),
        ("Model:", model),
        ("Method:", f"Least Squares ({results.method_used})"),
        ("Data:", _clip(results.data_name or "-", _HALF - 18)),
        ("No. Observations:", f"{results.nobs:,}"),
        ("Rows read:", f"{results.rows_read:,}"),
        ("Rows dropped:", f"{dropped:,}"),
        ("Rows skipped:", f"{results.rows_skipped:,}"),
        ("Df Residuals:", _integer(results.df_resid)),
        ("Df Model:", _integer(results.df_model)),
        ("Covariance Type:", results.cov_type),
    ]
    if results.n_groups is not None:
        left.append(("No. Clusters:", f"{results.n_groups:,}"))
    right = [
        ("R-squared:", _fixed(results.rsquared, 4)),
        ("Adj. R-squared:", _fixed(results.rsquared_adj, 4)),
        ("F-statistic:", _general(results.fvalue)),
        ("Prob (F-statistic):", _pvalue_header(results.f_pvalue)),
        ("Log-Likelihood:", _general(results.llf)),
        ("AIC:", _general(results.aic)),
        ("BIC:", _general(results.bic)),
        ("Cond. No.:", _general(results.condition_number, 3)),
    ]
    if not results.k_constant:
        right[0] = ("R-squared (uncentered):", right[0][1])
        right[1] = ("Adj. R-squared (uncentered):", right[1][1])
    return Summary(
        title=f"{model} Regression Results",
        left=tuple(left),
        right=tuple(right),
        coefficients=_coefficients(results, alpha),
        notes=tuple(_notes(results, dropped)),
    )


def _coefficients(results: Any, alpha: float) -> pd.DataFrame:
    letter = "t" if results.use_t else "z"
    bounds = results.conf_int(alpha)
    return pd.DataFrame(
        {
            "coef": results.params.to_numpy(),
            "std err": results.bse.to_numpy(),
            letter: results.tvalues.to_numpy(),
            f"P>|{letter}|": results.pvalues.to_numpy(),
            f"[{alpha / 2:g}": bounds[0].to_numpy(),
            f"{1 - alpha / 2:g}]": bounds[1].to_numpy(),
        },
        index=list(results.names),
    )


def _notes(results: Any, dropped: int) -> list[str]:
    notes = [_covariance_note(results)]
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
    if results.method_used == "qr":
        notes.append("Solved from the TSQR factor of the design, not from its Gram.")
    cond = results.condition_number
    if not math.isnan(cond) and cond > CONDITION_WARNING:  # inf (singular) included
        notes.append(
            f"The design's condition number is {_general(cond, 3)}: columns are nearly "
            "collinear or on very different scales, so small changes in the data can move "
            "the estimates a lot."
        )
    return notes


def _covariance_note(results: Any) -> str:
    cov = results.cov_type
    if cov == "nonrobust":
        return "Standard errors assume that the errors are uncorrelated with equal variance."
    options = (getattr(results, "extra", None) or {}).get("cov_kwds", {})
    if cov == "cluster":
        groups = options.get("groups", [])
        if len(groups) == 2:
            return (
                f"Standard errors are robust to correlation within clusters of "
                f"{groups[0]!r} and of {groups[1]!r} (two-way; inference with "
                f"{results.n_groups:,} clusters, the fewer) and to heteroscedasticity."
            )
        return (
            f"Standard errors are robust to correlation within {results.n_groups:,} clusters "
            "and to heteroscedasticity."
        )
    if cov == "HAC":
        return (
            "Standard errors are robust to heteroscedasticity and autocorrelation "
            f"(HAC{_hac_detail(options)}; rows taken in time order as read)."
        )
    if cov == "hac-panel":
        key = "groups" if "groups" in options else "time"
        runs = (
            f"each run of consecutive rows of one {options[key]!r} value"
            if key == "groups"
            else f"each run of rows of non-decreasing {options[key]!r}"
        )
        count = f"; {results.n_groups:,} runs" if results.n_groups is not None else ""
        return (
            "Standard errors are robust to heteroscedasticity and to autocorrelation "
            f"within {runs}, in the order read (HAC-Panel{_hac_detail(options)}{count})."
        )
    if cov == "hac-groupsum":
        return (
            "Driscoll and Kraay standard errors: the scores are summed within each value "
            f"of {options.get('time')!r}, then HAC over those values in sorted order "
            f"(HAC-Groupsum{_hac_detail(options)})."
        )
    return f"Standard errors are heteroscedasticity-robust ({cov})."


def _hac_detail(options: dict[str, Any]) -> str:
    """``", 4 lags, bartlett kernel, without small-sample correction"`` of a HAC-type
    covariance's recorded options (``nlags``: the automatic lag of ``maxlags=None``)."""
    lags = options.get("maxlags")
    automatic = lags is None and "nlags" in options
    if automatic:
        lags = options["nlags"]
    kernel = options.get("kernel", "bartlett")
    detail = ""
    if lags is not None:
        detail = f", {lags} lags{' (automatic)' if automatic else ''}, {kernel} kernel"
    if "use_correction" in options:
        # statsmodels' note says it too: the correction scales every standard error.
        correction = options["use_correction"]
        if correction in (True, False):
            detail += f", {'with' if correction else 'without'} small-sample correction"
        else:
            detail += f", {correction!r} small-sample correction"
    return detail


def _response(results: Any) -> str:
    spec = results.spec
    names = tuple(getattr(spec, "response_names", ()) or ())
    if not names or names[0] == "__y__":  # shardfit.OLS's internal column, as statsmodels' "y"
        return "y"
    return _clip(names[0], _HALF - 18)


# -- formatting --------------------------------------------------------------------
def _pair(pair: tuple[str, str]) -> str:
    label, value = pair
    # A value too long for its half (a data path) is clipped, so it never runs into
    # the right-hand column.
    value = _clip(value, max(_HALF - 3 - len(label), 8))
    space = max(1, _HALF - 2 - len(label) - len(value))
    return f"{label}{' ' * space}{value}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _wrap(text: str) -> list[str]:
    import textwrap

    return textwrap.wrap(text, _WIDTH, subsequent_indent="    ")


def _finite(value: float) -> bool:
    return value is not None and math.isfinite(float(value))


def _fixed(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "NA"


def _general(value: float, digits: int = 6) -> str:
    if not _finite(value):
        return "NA" if value is None or math.isnan(value) else ("inf" if value > 0 else "-inf")
    return f"{value:.{digits}g}"


def _integer(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:g}"


def _pvalue_header(value: float) -> str:
    if not _finite(value):
        return "NA"
    return f"{value:.3g}" if value >= 1e-300 else "0"


def _cell(value: float) -> str:
    """A table cell: 4 decimals in the usual range, scientific outside it."""
    if not _finite(value):
        return "NA"
    magnitude = abs(value)
    if magnitude == 0 or 1e-4 <= magnitude < 1e7:
        return f"{value:.4f}"
    return f"{value:.4e}"


def _pcell(value: float) -> str:
    return f"{value:.3f}" if _finite(value) else "NA"


def _coefficient_lines(frame: pd.DataFrame) -> list[str]:
    names = [str(name) for name in frame.index]
    label_width = min(max([len(n) for n in names] + [4]), 30)
    columns = list(frame.columns)
    texts = {
        column: [(_pcell if column.startswith("P>") else _cell)(v) for v in frame[column]]
        for column in columns
    }
    widths = {c: max(len(c), *(len(t) for t in texts[c])) + 2 for c in columns}
    # Spread any room left in the 78 columns over the numbers, as statsmodels does.
    room = _WIDTH - label_width - sum(widths.values())
    for i, column in enumerate(columns):
        widths[column] += max(room, 0) // len(columns) + (i < max(room, 0) % len(columns))
    header = " " * label_width + "".join(f"{c:>{widths[c]}}" for c in columns)
    lines = [header, "-" * max(_WIDTH, len(header))]
    for i, name in enumerate(names):
        label = _clip(name, label_width)
        cells = "".join(f"{texts[c][i]:>{widths[c]}}" for c in columns)
        lines.append(f"{label:<{label_width}}{cells}")
    return lines
