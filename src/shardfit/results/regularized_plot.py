"""Plots of an elastic-net fit: the coefficient path and the cross-validation curve.

matplotlib is an optional dependency (``pip install "shardfit[plot]"``); it is imported
only when a plot is drawn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["plot_cv", "plot_path"]


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(
            "plotting needs matplotlib, an optional dependency: pip install 'shardfit[plot]'"
        ) from error
    return plt


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    return _pyplot().subplots()[1]


def plot_path(results: Any, ax: Any = None) -> Any:
    """Coefficients against ``log10(alpha)``, one line per term; the chosen alpha dashed.

    Parameters
    ----------
    results : ElasticNetResults
    ax : matplotlib Axes, optional
        Where to draw (a new figure by default).

    Returns
    -------
    matplotlib Axes
    """
    _pyplot()
    ax = _axes(ax)
    x = np.log10(results.alphas)
    for j, name in enumerate(results.names):
        ax.plot(x, results.path_array[:, j], label=name, linewidth=1)
    ax.axvline(np.log10(results.alpha), color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("log10(alpha)")
    ax.set_ylabel("coefficient")
    ax.set_title("Elastic-net path")
    ax.invert_xaxis()  # strongest penalty on the left, as the path is computed
    if len(results.names) <= 12:
        ax.legend(fontsize="small")
    return ax


def plot_cv(results: Any, ax: Any = None) -> Any:
    """Mean held-out loss with one standard error over folds against ``log10(alpha)``.

    Raises
    ------
    ValueError
        The fit had no cross-validation.
    """
    curve = results.cv_curve
    if curve is None:
        raise ValueError("this fit has no cross-validation curve (fit it with cv=K)")
    _pyplot()
    ax = _axes(ax)
    x = np.log10(curve.index.to_numpy())
    mean, err = curve["mean"].to_numpy(), curve["std_error"].to_numpy()
    ax.errorbar(x, mean, yerr=err, fmt="o-", markersize=3, linewidth=1, capsize=2)
    ax.axvline(np.log10(results.alpha), color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("log10(alpha)")
    ax.set_ylabel("held-out MSE" if results.family == "gaussian" else "held-out mean deviance")
    ax.set_title("Cross-validation")
    ax.invert_xaxis()
    return ax
