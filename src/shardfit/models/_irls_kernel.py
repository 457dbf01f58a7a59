"""Compiled inner loop of an IRLS step: the centred, weighted copy of the design.

An IRLS pass needs ``sqrt(w) (X - shift)`` for the Gram. In NumPy that is two passes
per column over row-sized data (subtract, then multiply) plus a temporary; here it is
one loop that reads each column once and writes a block that ``dsyrk`` then reads
from cache. (The row quantities themselves, ``mu``, the weights, the deviance, stay
in NumPy: its vectorized ``exp`` and ``log`` beat a scalar compiled loop, measured
8–11 ms against 6.6 ms for 250k rows.)
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["centred_weighted"]


@njit(cache=True, nogil=True)
def centred_weighted(
    dense: np.ndarray, shift: np.ndarray, sqrt_w: np.ndarray, start: int, out: np.ndarray
) -> None:  # pragma: no cover - compiled; tests/models/test_glm_*.py run it
    """``out[:, j] = (dense[start + i, j] - shift[j]) * sqrt_w[start + i]`` for the
    ``i < out.shape[0]`` rows from ``start``."""
    m = out.shape[0]
    for j in range(dense.shape[1]):
        s = shift[j]
        for i in range(m):
            out[i, j] = (dense[start + i, j] - s) * sqrt_w[start + i]
