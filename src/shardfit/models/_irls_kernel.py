"""Compiled inner loops of an IRLS step on a dense design: the centred, weighted copy
of a row block and its Gram.

An IRLS pass needs ``sqrt(w) (X - shift)`` and its Gram. In NumPy the copy is two
passes per column over row-sized data (subtract, then multiply) plus a temporary;
here it is one loop that reads each column once and writes a block that stays in
cache, whose Gram :func:`add_upper_gram` then accumulates (OpenBLAS's ``dsyrk`` is
tuned for wide matrices, not blocks of ~11 columns). The row quantities themselves
(``mu``, the weights, the deviance) stay in NumPy: its vectorized ``exp`` and ``log``
beat a scalar compiled loop, measured 8–11 ms against 6.6 ms for 250k rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["add_upper_gram", "centred_weighted"]


@njit(cache=True, nogil=True)
def centred_weighted(
    dense: np.ndarray, shift: np.ndarray, sqrt_w: np.ndarray, start: int, rows: int, out: np.ndarray
) -> None:  # pragma: no cover - compiled; tests/models/test_glm_*.py run it
    """``out[i, j] = (dense[start + i, j] - shift[j]) * sqrt_w[i]`` for ``i < rows``.

    ``dense`` and ``out`` are whole Fortran arrays (sliced here, not by the caller: a
    contiguous column slice lets the loop vectorize, 2.5x faster than passing views).
    """
    for j in range(dense.shape[1]):
        s = shift[j]
        column = dense[start : start + rows, j]
        target = out[:rows, j]
        for i in range(rows):
            target[i] = (column[i] - s) * sqrt_w[i]


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def add_upper_gram(block: np.ndarray, rows: int, upper: np.ndarray) -> None:  # pragma: no cover
    """``upper += triu(block[:rows].T @ block[:rows])`` for a Fortran ``block``.

    Dot products of column pairs, four at a time over one column's reads; the sums
    may be reassociated (SIMD lanes), never assume away NaN or inf. For the narrow
    blocks of an IRLS pass (tens of columns, thousands of rows) this is about twice
    as fast as OpenBLAS's ``dsyrk``, which is tuned for wide matrices.
    """
    k = block.shape[1]
    for j in range(k):
        cj = block[:rows, j]
        col = j
        while col + 3 < k:
            c0 = block[:rows, col]
            c1 = block[:rows, col + 1]
            c2 = block[:rows, col + 2]
            c3 = block[:rows, col + 3]
            s0 = s1 = s2 = s3 = 0.0
            for i in range(rows):
                x = cj[i]
                s0 += x * c0[i]
                s1 += x * c1[i]
                s2 += x * c2[i]
                s3 += x * c3[i]
            upper[j, col] += s0
            upper[j, col + 1] += s1
            upper[j, col + 2] += s2
            upper[j, col + 3] += s3
            col += 4
        while col < k:
            c0 = block[:rows, col]
            s0 = 0.0
            for i in range(rows):
                s0 += cj[i] * c0[i]
            upper[j, col] += s0
            col += 1
