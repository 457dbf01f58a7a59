"""Exact rational arithmetic for the ill-conditioned-design tests.

``x2 = 1e4 x1 + 1e-3 noise`` makes a design whose condition number is about 1e11; the
references of the tests that use it are computed with :class:`fractions.Fraction` from
the same float64 data, so their tolerances measure shardfit alone (statsmodels is itself
1e-2 to 1e-4 off on such data).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

N = 150

Matrix = list[list[Fraction]]


def collinear_frame(seed: int, collinear: bool = True, groups: bool = False) -> pd.DataFrame:
    """``N`` rows of ``x1``, ``x2`` (nearly ``1e4 x1``, or independent with
    ``collinear=False``), weights ``w``, with ``groups`` cluster ids ``g``, a linear
    response ``y_lin`` and Poisson counts ``y_count``."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=N) * 0.3
    x2 = 1e4 * x1 + 1e-3 * rng.normal(size=N) if collinear else rng.normal(size=N)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "w": rng.uniform(0.5, 2.0, N)})
    if groups:
        frame["g"] = rng.integers(0, 12, N)
    frame["y_lin"] = 1.0 + x1 + 1e-3 * x2 + rng.normal(size=N)
    frame["y_count"] = rng.poisson(np.exp(0.5 + 0.3 * x1 + 1e-4 * x2)).astype(float)
    return frame


def fractions(values: np.ndarray) -> list[Fraction]:
    """The float64 values, exactly."""
    return [Fraction(float(v)) for v in values]


def design(frame: pd.DataFrame) -> Matrix:
    """The rows ``[1, x1, x2]`` of ``frame``, exactly."""
    rows = np.column_stack([np.ones(len(frame)), frame["x1"], frame["x2"]])
    return [fractions(row) for row in rows]


def inverse(matrix: Matrix) -> Matrix:
    """The inverse, by Gauss-Jordan elimination (exact)."""
    p = len(matrix)
    rows = [row[:] + [Fraction(int(i == j)) for j in range(p)] for i, row in enumerate(matrix)]
    for c in range(p):
        pivot = next(r for r in range(c, p) if rows[r][c] != 0)
        rows[c], rows[pivot] = rows[pivot], rows[c]
        head = rows[c][c]
        rows[c] = [v / head for v in rows[c]]
        for r in range(p):
            if r != c and rows[r][c] != 0:
                factor = rows[r][c]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[c], strict=True)]
    return [row[p:] for row in rows]


def gram(X: Matrix, weights: list[Fraction]) -> Matrix:
    """``X' diag(weights) X``."""
    p = len(X[0])
    return [
        [sum(w * row[a] * row[b] for w, row in zip(weights, X, strict=True)) for b in range(p)]
        for a in range(p)
    ]


def product(a: Matrix, b: Matrix) -> Matrix:
    """``a @ b``."""
    return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in zip(*b)] for row in a]
