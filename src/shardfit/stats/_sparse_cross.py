"""Compiled (numba) cross products of a sparse block with itself and a dense block.

For a sparse block ``S`` (``n x ks``, any values), a dense block ``D`` (``n x kd``),
a response ``y``, row scales ``r`` and weights ``w``, one pass over the rows gives

- ``S_r' D``, ``S_r' S_r`` and ``S_r' y`` with ``S_r = diag(r) S`` (the rows of ``D``
  and ``y`` come scaled from the caller),
- ``S' w``, and
- ``D' r`` and ``D' y`` (the dense row is in hand anyway),

where SciPy and BLAS would need a sparse-dense product (with a copy of ``D`` into C
order), a sparse-sparse product, a row-scaled copy of ``S`` and four more passes over
the rows. A one-hot block has one value per factor per row, so the pass costs a few
products per row whatever the number of levels. ``S`` is read in CSR form, rows in
order, so every output entry is summed in row order: deterministic, the same bits in
every process. (SciPy sums ``S' D`` in that order too, so its entries are bitwise
what SciPy gives.) Blocks too small to repay numba's start-up go through SciPy and
BLAS instead (:data:`COMPILED_MIN_ROWS`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

__all__ = ["COMPILED_MIN_ROWS", "SparseCross", "sparse_cross"]

#: Blocks of at least this many rows go through the compiled pass; smaller ones through
#: SciPy and BLAS (the same products, to rounding). The first compiled call in a
#: process costs about half a second (importing numba, loading the cached machine
#: code), which only large blocks repay; small fits never import numba. The choice
#: depends on the block alone, so every backend takes the same path for the same data.
COMPILED_MIN_ROWS = 32_768


class SparseCross(NamedTuple):
    """The products of one pass (see the module notes)."""

    sd: np.ndarray  # (ks, kd) S_r' D
    ss: np.ndarray  # (ks, ks) S_r' S_r, symmetric
    sy: np.ndarray  # (ks,) S_r' y (zeros without a response)
    sw: np.ndarray  # (ks,) S' w
    dr: np.ndarray  # (kd,) D' r
    dy: np.ndarray  # (kd,) D' y (zeros without a response)


def _cross_loops(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    dense: np.ndarray,
    response: np.ndarray,
    row_scale: np.ndarray,
    weights: np.ndarray,
    ks: int,
    scaled: bool,
    weighted: bool,
    with_response: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n, kd = dense.shape
    sd = np.zeros((ks, kd))
    ss = np.zeros((ks, ks))
    sy = np.zeros(ks)
    sw = np.zeros(ks)
    dr = np.zeros(kd)
    dy = np.zeros(kd)
    row = np.empty(kd)  # the dense row, gathered once (the block may be column-major)
    for i in range(n):
        r = row_scale[i] if scaled else 1.0
        yi = response[i] if with_response else 0.0
        for c in range(kd):
            row[c] = dense[i, c]
        for c in range(kd):
            dr[c] += row[c] * r
        if with_response:
            for c in range(kd):
                dy[c] += row[c] * yi
        start, stop = indptr[i], indptr[i + 1]
        if start == stop:
            continue
        w = weights[i] if weighted else 1.0
        for a in range(start, stop):
            ja = indices[a]
            va = data[a] * r
            for c in range(kd):
                sd[ja, c] += va * row[c]
            if with_response:
                sy[ja] += va * yi
            sw[ja] += data[a] * w
            for b in range(start, stop):
                ss[ja, indices[b]] += va * (data[b] * r)
    return sd, ss, sy, sw, dr, dy


_COMPILED: list[Callable[..., Any]] = []


def _cross() -> Callable[..., Any]:
    """:func:`_cross_loops` compiled (numba is imported on first use only)."""
    if not _COMPILED:
        from numba import njit

        _COMPILED.append(njit(cache=True)(_cross_loops))
    return _COMPILED[0]


def sparse_cross(
    dense: np.ndarray,
    sparse: sp.spmatrix,
    response: np.ndarray | None = None,
    row_scale: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    *,
    compiled: bool | None = None,
) -> SparseCross:
    """The products of ``S_r = diag(row_scale) @ sparse`` with ``dense``, itself and
    ``response``, and ``sparse' weights``, ``dense' row_scale``, ``dense' response``.

    ``sparse`` is any SciPy sparse matrix (CSR is read as it is, other formats are
    converted); duplicate or explicit zero entries count as SciPy counts them.
    ``row_scale`` and ``weights`` default to ones; the products with the response
    are zeros without one. ``dense`` may be in either memory order. ``compiled``
    chooses the compiled pass or SciPy (default: by :data:`COMPILED_MIN_ROWS`).
    """
    n = dense.shape[0]
    csr = sparse if sp.isspmatrix_csr(sparse) else sp.csr_matrix(sparse)
    if csr.shape[0] != n:
        raise ValueError(f"the sparse block has {csr.shape[0]} rows, the dense block {n}")
    if not (n >= COMPILED_MIN_ROWS if compiled is None else compiled):
        return _scipy_cross(dense, csr, response, row_scale, weights)
    empty = np.zeros(0)
    return SparseCross(
        *_cross()(
            csr.indptr,
            csr.indices,
            np.asarray(csr.data, dtype=np.float64),
            np.asarray(dense, dtype=np.float64),
            empty if response is None else np.asarray(response, dtype=np.float64),
            empty if row_scale is None else np.asarray(row_scale, dtype=np.float64),
            empty if weights is None else np.asarray(weights, dtype=np.float64),
            csr.shape[1],
            row_scale is not None,
            weights is not None,
            response is not None,
        )
    )


def _scipy_cross(
    dense: np.ndarray,
    csr: sp.csr_matrix,
    response: np.ndarray | None,
    row_scale: np.ndarray | None,
    weights: np.ndarray | None,
) -> SparseCross:
    """:func:`sparse_cross` through SciPy's sparse products and BLAS."""
    n, kd = dense.shape
    ks = csr.shape[1]
    dense = np.asarray(dense, dtype=np.float64)
    data = np.asarray(csr.data, dtype=np.float64)
    if row_scale is not None:
        data = data * np.repeat(np.asarray(row_scale, dtype=np.float64), np.diff(csr.indptr))
    scaled = sp.csr_matrix((data, csr.indices, csr.indptr), shape=csr.shape)
    by_columns = scaled.T  # (ks, n), rows of S_r' in CSR
    ones = np.ones(n)
    return SparseCross(
        sd=np.asarray(by_columns @ dense).reshape(ks, kd),
        ss=(by_columns @ scaled).toarray(),
        sy=np.zeros(ks) if response is None else by_columns @ response,
        sw=csr.T @ (ones if weights is None else np.asarray(weights, dtype=np.float64)),
        dr=dense.T @ (ones if row_scale is None else row_scale),
        dy=np.zeros(kd) if response is None else dense.T @ response,
    )
