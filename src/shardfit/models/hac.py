"""The Newey-West (HAC) lag window as a mergeable statistic of consecutive rows.

HAC's meat is ``S = G_0 + sum_{l=1}^{L} k_l (G_l + G_l')`` with ``G_l = sum_t s_t
s_{t-l}'`` over the scores ``s_t`` in the order the rows are read (statsmodels'
``S_hac_simple``; ``k_l`` the kernel weights). Lags cross partition boundaries, so a
piece of consecutive rows keeps, besides its own sums, its first and last ``L``
scores: merging it with the piece that follows adds the products of the left piece's
last rows with the right piece's first rows (every pair less than ``L + 1`` rows
apart straddling the boundary) and keeps the outer head and tail. The engine merges
adjacent pieces only, left before right (:func:`~shardfit.engine.merge.tree_merge`),
and a partition's blocks in row order, which is what this needs. Memory is
``O(L x columns)`` per piece.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["HAC_KERNELS", "LagWindow", "kernel_weights"]

Kernel = Literal["bartlett", "uniform"]
HAC_KERNELS: tuple[str, ...] = ("bartlett", "uniform")


def kernel_weights(kernel: str, maxlags: int) -> np.ndarray:
    """``(maxlags + 1,)`` weights of lags ``0..maxlags``: statsmodels'
    ``weights_bartlett`` (``1 - l / (L + 1)``) or ``weights_uniform`` (ones)."""
    if kernel == "bartlett":
        return 1 - np.arange(maxlags + 1) / (maxlags + 1.0)
    if kernel == "uniform":
        return np.ones(maxlags + 1)
    raise ValueError(f"HAC kernel must be one of {HAC_KERNELS}; got {kernel!r}")


@dataclass(frozen=True)
class LagWindow:
    """HAC sums of a run of consecutive rows' scores, mergeable with the next run.

    Attributes
    ----------
    weights : numpy.ndarray
        ``(L + 1,)`` kernel weights of lags ``0..L``.
    nrows : int
        Rows in the run.
    gram : numpy.ndarray
        ``G_0 = sum_t s_t s_t'``.
    lagged : numpy.ndarray
        ``sum_{l=1}^{L} k_l sum_t s_t s_{t-l}'`` over pairs inside the run (later row
        on the left).
    head, tail : numpy.ndarray
        The run's first and last ``min(nrows, L)`` scores (the same rows when the run
        has ``L`` rows or fewer).
    """

    weights: np.ndarray
    nrows: int
    gram: np.ndarray
    lagged: np.ndarray
    head: np.ndarray
    tail: np.ndarray

    @property
    def maxlags(self) -> int:
        return self.weights.size - 1

    @classmethod
    def of_scores(cls, scores: np.ndarray, weights: np.ndarray) -> LagWindow:
        """The statistic of ``scores`` (``(n, k)``, rows in order)."""
        n, k = scores.shape
        maxlags = weights.size - 1
        lagged = np.zeros((k, k))
        for lag in range(1, min(maxlags, n - 1) + 1):
            lagged += weights[lag] * (scores[lag:].T @ scores[:-lag])
        edge = min(n, maxlags)
        return cls(
            weights=weights,
            nrows=n,
            gram=scores.T @ scores,
            lagged=lagged,
            head=scores[:edge].copy(),
            tail=scores[n - edge :].copy(),
        )

    def merge(self, other: LagWindow) -> LagWindow:
        """This run followed by ``other``."""
        maxlags = self.maxlags
        lagged = self.lagged + other.lagged
        a, b = self.tail, other.head
        if a.shape[0] and b.shape[0]:
            # Pair (tail row d from the end, d = 1.., head row j = 0..) is d + j apart:
            # sum_{j,d} k_{d+j} b_j a_d' = B' W A with W[j, d] = k_{d+j} (0 past L).
            distance = np.arange(b.shape[0])[:, None] + np.arange(1, a.shape[0] + 1)[None, :]
            w = np.where(distance <= maxlags, self.weights[np.minimum(distance, maxlags)], 0.0)
            lagged += b.T @ (w @ a[::-1])
        head = self.head
        if self.nrows < maxlags:  # all of this run, then the start of the next
            head = np.vstack([self.head, other.head[: maxlags - self.nrows]])
        tail = other.tail
        if other.nrows < maxlags:  # the end of this run, then all of the next
            keep = maxlags - other.nrows
            tail = np.vstack(
                [self.tail[self.tail.shape[0] - min(keep, self.tail.shape[0]) :], other.tail]
            )
        return LagWindow(
            weights=self.weights,
            nrows=self.nrows + other.nrows,
            gram=self.gram + other.gram,
            lagged=lagged,
            head=head,
            tail=tail,
        )

    @property
    def meat(self) -> np.ndarray:
        """``S = G_0 + L + L'`` with ``L`` the weighted lag sums."""
        return self.gram + self.lagged + self.lagged.T

    def to_state(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "nrows": self.nrows,
            "gram": self.gram,
            "lagged": self.lagged,
            "head": self.head,
            "tail": self.tail,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LagWindow:
        k = np.asarray(state["gram"]).shape[0]

        def rows(name: str) -> np.ndarray:
            return np.asarray(state[name], dtype=np.float64).reshape(-1, k)

        return cls(
            weights=np.asarray(state["weights"], dtype=np.float64),
            nrows=int(state["nrows"]),
            gram=np.asarray(state["gram"], dtype=np.float64),
            lagged=np.asarray(state["lagged"], dtype=np.float64),
            head=rows("head"),
            tail=rows("tail"),
        )
