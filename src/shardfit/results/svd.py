"""Results of :func:`shardfit.svd`: singular values, components, explained variance.

Sign convention (deterministic, equal to scikit-learn's ``PCA`` since 1.5, which calls
``svd_flip(u, vt, u_based_decision=False)``): each row of ``Vt`` is multiplied by the
sign of its entry of largest absolute value (the first such entry on a tie), so that
entry is positive; the scores and left singular vectors follow the same signs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SVDResults", "sign_flip"]


def sign_flip(vt: np.ndarray) -> np.ndarray:
    """``vt`` with each row's largest-``|.|`` entry made positive (in place; returned)."""
    if vt.size:
        biggest = np.argmax(np.abs(vt), axis=1)
        signs = np.sign(vt[np.arange(vt.shape[0]), biggest])
        signs[signs == 0] = 1.0
        vt *= signs[:, None]
    return vt


@dataclass(frozen=True, eq=False)
class SVDResults:
    """The SVD (or, centred, the PCA) of a design matrix computed by :func:`shardfit.svd`.

    With ``Z = sqrt(w) * (X - mean)`` (``mean = 0`` uncentred, ``w = 1`` unweighted)
    and its thin SVD ``Z = U diag(s) Vt``: ``singular_values`` are ``s`` (decreasing),
    ``components`` is ``Vt``. There are ``min(nobs, p)`` components.

    Attributes
    ----------
    names : tuple of str
        The design's column names.
    singular_values_array, components_array : numpy.ndarray
        ``s`` and ``Vt`` (rows are components).
    nobs : int
        Rows used.
    sum_weights : float
        ``sum(w)`` over the rows used (``nobs`` unweighted).
    mean_array : numpy.ndarray or None
        The (weighted) column means subtracted, when centred.
    center, weighted : bool
        How the SVD was computed.
    tolerance : float
        Singular values at or below it count as zero (see :attr:`rank`).
    rows_read, rows_skipped : int
        Rows read from the source; malformed rows its reader skipped.
    rows_dropped : dict of str to int
        Rows left out, by reason (``"missing"``: a value the design needs is missing).
    formula, data_name : str
    spec : DesignSpec
        The learned design, applied to new data by :meth:`transform`.
    """

    names: tuple[str, ...]
    singular_values_array: np.ndarray
    components_array: np.ndarray
    nobs: int
    sum_weights: float
    mean_array: np.ndarray | None
    center: bool
    weighted: bool
    tolerance: float
    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)
    rows_skipped: int = 0
    formula: str = ""
    data_name: str = ""
    spec: Any = None

    # --- the decomposition -------------------------------------------------------------

    @property
    def column_names(self) -> list[str]:
        """The design's columns, in order."""
        return list(self.names)

    @property
    def component_names(self) -> list[str]:
        """``"PC1"``, ``"PC2"``, ...: one per component."""
        return [f"PC{i + 1}" for i in range(self.singular_values_array.size)]

    @property
    def singular_values(self) -> np.ndarray:
        """``s``, decreasing."""
        return self.singular_values_array.copy()

    @property
    def components(self) -> pd.DataFrame:
        """``Vt``: rows ``PC1``..., columns the design's columns."""
        return pd.DataFrame(
            self.components_array, index=self.component_names, columns=self.column_names
        )

    @property
    def mean(self) -> pd.Series | None:
        """The (weighted) column means subtracted before the SVD; ``None`` uncentred."""
        if self.mean_array is None:
            return None
        return pd.Series(self.mean_array, index=self.column_names, name="mean")

    @property
    def explained_variance(self) -> np.ndarray:
        """``s**2 / (n - 1)``, as scikit-learn's ``PCA.explained_variance_``.

        ``n`` is ``nobs``, or ``sum(w)`` with weights (frequency-weight meaning: integer
        weights give the PCA of the data with each row repeated ``w`` times).
        Uncentred (``center=False``) nothing is subtracted, so this is not a variance:
        it is the sum of squares about zero along each component over ``n - 1`` (the
        first component mostly measures the columns' means); use ``center=True`` for
        PCA.
        """
        n = self.sum_weights if self.weighted else float(self.nobs)
        s2 = self.singular_values_array**2
        return s2 / (n - 1.0) if n > 1 else np.full_like(s2, np.nan)

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """Each component's share of the total variance of all columns (``sum(s**2)``;
        uncentred, of the total sum of squares about zero).

        Computed from ``s / s_max``, so it stays exact where ``s**2`` itself would
        overflow or underflow (columns of size 1e155 or 1e-160).
        """
        s = self.singular_values_array
        if not s.size or not s[0] > 0:
            return np.full(s.shape, np.nan)
        s2 = (s / s[0]) ** 2
        return s2 / float(s2.sum())

    @property
    def rank(self) -> int:
        """Numerical rank: singular values above :attr:`tolerance`.

        The tolerance is NumPy's ``matrix_rank`` default (as MATLAB's ``rank``),
        ``s_max * max(nobs, p) * eps``, except that when centring ``s_max`` is replaced
        by the largest uncentred column norm if that is larger: each column's mean is
        rounded to a float before it is subtracted, which can lift a zero singular
        value (a constant column, an affine combination of columns) to about ``eps``
        times that norm.
        """
        return int(np.count_nonzero(self.singular_values_array > self.tolerance))

    @property
    def null_components(self) -> list[str]:
        """Components whose singular value is numerically zero (directions of no
        variance: a duplicated column, a constant column when centred)."""
        return self.component_names[self.rank :]

    @property
    def condition_number(self) -> float:
        """``s_max / s_min`` over all components (``inf`` when rank-deficient)."""
        s = self.singular_values_array
        if not s.size:
            return float("nan")
        if s[-1] <= self.tolerance:
            return float("inf")
        return float(s[0] / s[-1])

    def null_columns(self, threshold: float = 0.01) -> dict[str, list[str]]:
        """For each null component, the columns with ``|loading| > threshold``: the
        columns a linear combination of which is (numerically) zero or constant."""
        vt = self.components_array
        names = self.column_names
        return {
            pc: [names[j] for j in np.flatnonzero(np.abs(vt[i]) > threshold)]
            for i, pc in zip(range(self.rank, vt.shape[0]), self.null_components)
        }

    # --- reporting ---------------------------------------------------------------------

    def summary(self, *, max_components: int = 20) -> str:
        """A text table of the components' singular values and variances."""
        kind = "PCA (centred" + (", weighted)" if self.weighted else ")") if self.center else "SVD"
        if not self.center and self.weighted:
            kind += " (weighted)"
        p = len(self.names)
        dropped = sum(self.rows_dropped.values())
        lines = [
            f"{kind} of {self.formula!r} on {self.data_name}",
            f"rows used: {self.nobs:,} of {self.rows_read:,} read"
            + (f" ({dropped:,} dropped for missing values)" if dropped else "")
            + (f"; {self.rows_skipped:,} malformed lines skipped" if self.rows_skipped else ""),
            f"design columns: {p}; components: {self.singular_values_array.size}; "
            f"rank: {self.rank} (tolerance {self.tolerance:.3g}); "
            f"condition number: {self.condition_number:.4g}",
            "",
            f"{'component':<10} {'singular value':>16} {'explained var':>14} "
            f"{'ratio':>8} {'cumulative':>10}",
        ]
        ratio = self.explained_variance_ratio
        cumulative = np.cumsum(ratio)
        variance = self.explained_variance
        for i, name in enumerate(self.component_names[:max_components]):
            lines.append(
                f"{name:<10} {self.singular_values_array[i]:>16.6g} {variance[i]:>14.6g} "
                f"{ratio[i]:>8.4f} {cumulative[i]:>10.4f}"
            )
        if len(self.component_names) > max_components:
            lines.append(f"... {len(self.component_names) - max_components} more")
        for pc, columns in self.null_columns().items():
            lines.append(f"{pc} is numerically zero: a combination of {', '.join(columns)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        kind = "PCA" if self.center else "SVD"
        return (
            f"<SVDResults {kind}: {self.nobs:,} rows x {len(self.names)} columns, rank {self.rank}>"
        )

    # --- scores out of core ------------------------------------------------------------

    def transform(
        self,
        data: Any,
        *,
        n_components: int | None = None,
        out: str | os.PathLike[str] | None = None,
        unseen: str = "raise",
        backend: Any = None,
        workers: int | None = None,
        progress: bool = False,
    ) -> pd.DataFrame | Path:
        """Scores ``(X - mean) @ Vt[:k].T`` of new data, partition by partition.

        Parameters
        ----------
        data : Source, path, glob, pandas.DataFrame or pyarrow.Table
            Rows with the columns the formula reads (weights are not needed).
        n_components : int, optional
            ``k``: the leading components to project on (default all).
        out : str or path, optional
            A directory (new, or empty) where each partition's worker writes
            ``part-NNNNN.parquet`` with the column ``row`` (the row's 0-based position
            in the data) and ``PC1``...; then ``_manifest.json``. The directory is
            removed (or emptied, if it existed) when any partition fails.
        unseen : {"raise", "zero"}
            A categorical level not seen when fitting raises, or encodes as zeros.
        backend, workers, progress
            Where the pass runs (see :func:`shardfit.engine.run_pass`). Without ``out``,
            data that is not a path runs serially unless a backend is given, as
            linear ``predict`` does.

        Returns
        -------
        pandas.DataFrame or pathlib.Path
            The scores indexed by row position (rows missing a needed value are
            dropped, counted, and a warning says how many), or ``out``.
        """
        from shardfit.results.svd_scores import compute_scores

        k = self._n_components(n_components, self.singular_values_array.size)
        return compute_scores(
            self, data, k, unit=False, out=out, unseen=unseen,
            backend=_scores_backend(backend, data, out), workers=workers, progress=progress,
        )  # fmt: skip

    def left_singular_vectors(
        self,
        data: Any,
        *,
        n_components: int | None = None,
        out: str | os.PathLike[str] | None = None,
        unseen: str = "raise",
        backend: Any = None,
        workers: int | None = None,
        progress: bool = False,
    ) -> pd.DataFrame | Path:
        """``U`` of the thin SVD, ``sqrt(w) * scores / s``, partition by partition.

        On the data the SVD was computed from, these are the columns of ``U`` with
        ``Z = U diag(s) Vt``. Only components of nonzero singular value (at most
        :attr:`rank`) have one. With weights, ``data`` needs the weight column.
        Parameters and return as :meth:`transform`.
        """
        from shardfit.results.svd_scores import compute_scores

        k = self._n_components(n_components, self.rank)
        return compute_scores(
            self, data, k, unit=True, out=out, unseen=unseen,
            backend=_scores_backend(backend, data, out), workers=workers, progress=progress,
        )  # fmt: skip

    def _n_components(self, n_components: int | None, most: int) -> int:
        if n_components is None:
            return most
        if (
            isinstance(n_components, bool)  # True is an int: it once meant 1 component
            or not isinstance(n_components, int | np.integer)
            or not 1 <= n_components <= most
        ):
            raise ValueError(
                f"The 'n_components' parameter must be an int in [1, {most}]. Got {n_components!r}."
            )
        return int(n_components)

    # --- persistence -------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write to ``path`` as JSON (see :func:`shardfit.results.io.save_results`);
        :func:`shardfit.load_results` reads it back bitwise."""
        from shardfit.results.io import save_results

        return save_results(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SVDResults:
        """Read results written by :meth:`save` (as every other results class can).

        Raises
        ------
        ReadError
            The file is not a shardfit results file, or a damaged one.
        TypeError
            The file holds another kind of results.
        """
        from shardfit.results.io import load_results

        loaded = load_results(path)
        if not isinstance(loaded, cls):
            raise TypeError(f"{path} holds {type(loaded).__name__}, not {cls.__name__}")
        return loaded


def _scores_backend(backend: Any, data: Any, out: str | os.PathLike[str] | None) -> Any:
    """Where a scores pass runs: as linear ``predict`` chooses, serially for data that is
    not a path when no backend is given and nothing is written (so a script without
    ``if __name__ == "__main__":`` can score a DataFrame), else ``backend``."""
    if out is not None:
        return backend
    from shardfit.results.predict import predict_backend

    return predict_backend(backend, data)
