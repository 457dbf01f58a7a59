"""Compiled (numba) inner loops of the online linear learners, on CSR batches.

Two per-coordinate adaptive solvers, both lazy in the sense that a row touches only
its own non-zero coordinates:

FTRL-Proximal (McMahan et al., "Ad click prediction: a view from the trenches",
KDD 2013, algorithm 1), with the weight of coordinate ``i`` computed from the state
``(z_i, n_i)`` when it is needed::

    w_i = 0                                              if |z_i| <= λ1
    w_i = -(z_i - sign(z_i) λ1) / ((β + sqrt(n_i)) / η + λ2)  otherwise

and after a row with gradient ``g_i`` of the loss: ``σ = (sqrt(n_i + g_i²) -
sqrt(n_i)) / η``, ``z_i += g_i - σ w_i``, ``n_i += g_i²``. The penalty is the
per-row elastic net of scikit-learn's SGD (``alpha · (l1_ratio |w|₁ + (1 - l1_ratio)
|w|²/2)`` per row), so after ``t`` rows ``λ1 = t·alpha·l1_ratio`` and ``λ2 =
t·alpha·(1 - l1_ratio)`` (FTRL regularizes the *cumulative* loss).

AdaGrad (Duchi, Hazan & Singer 2011) with a proximal L1 step: ``n_i += g_i²``,
``u = w_i - η g_i / (β + sqrt(n_i))``, ``w_i = sign(u) max(|u| - η λ / (β +
sqrt(n_i)), 0)`` with the per-row penalties, the L2 part in the gradient. The penalty
is scikit-learn's, charged on every row to every coordinate, not only on the rows
where the coordinate is non-zero (else a rare hashed term would be penalized in
proportion to its frequency and converge to another objective). The rows that skip a
coordinate are charged lazily, when it is next touched or read (``last_i`` holds the
row it was last charged at): with its step ``s`` frozen at its last update, the ``k``
penalty-only steps ``w <- S(w (1 - s λ2), s λ1)`` have a closed form (:func:`_catch_up`).
An explicit zero entry of a row is such a row for its coordinate, exactly as an absent
one: a zero feature has no loss gradient, so ``n_i`` does not change.

The intercept is the last coordinate, with feature value 1 and no penalty. Losses
(``loss`` code): 0 logistic on y in {0, 1}; 1 squared; 2 hinge on y in {-1, +1}.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = [
    "adagrad_weights",
    "batch_auc",
    "has_duplicates",
    "margins",
    "progressive",
    "train",
    "weighted_batch_auc",
]

LOG, SQUARED, HINGE = 0, 1, 2
FTRL, ADAGRAD = 0, 1


@njit(cache=True, inline="always")
def _ftrl_weight(z: float, n: float, lam1: float, lam2: float, eta: float, beta: float) -> float:
    if abs(z) <= lam1:
        return 0.0
    shrunk = z - lam1 if z > 0 else z + lam1
    return -shrunk / ((beta + math.sqrt(n)) / eta + lam2)


@njit(cache=True, inline="always")
def _gradient(margin: float, y: float, loss: int) -> float:
    if loss == LOG:
        if margin >= 0:
            return 1.0 / (1.0 + math.exp(-margin)) - y
        e = math.exp(margin)
        return e / (1.0 + e) - y
    if loss == SQUARED:
        return margin - y
    return -y if y * margin < 1.0 else 0.0


@njit(cache=True, inline="always")
def _catch_up(w: float, n: float, gap: float, l1: float, l2: float, eta: float, beta: float):
    """AdaGrad weight ``w`` after ``gap`` rows that charge only the penalty.

    Each such row is the proximal step ``w <- S(w (1 - s l2), s l1)`` with the
    coordinate's step ``s = eta / (beta + sqrt(n))`` (no loss gradient, so ``n`` is
    left as it was). While ``w`` keeps its sign the magnitude follows
    ``m <- c m - d`` (``c = 1 - s l2``, ``d = s l1``), whose k-th term is
    ``c^k m - d (1 - c^k) / (1 - c)``; once it reaches zero it stays there.
    """
    if gap <= 0.0 or w == 0.0 or (l1 == 0.0 and l2 == 0.0):
        return w
    s = eta / (beta + math.sqrt(n))
    c = 1.0 - s * l2
    d = s * l1
    if c <= 0.0:  # a step past zero each row (a huge penalty): replay it row by row
        for _ in range(int(gap)):
            u = w * c
            w = u - d if u > d else (u + d if u < -d else 0.0)
            if w == 0.0:
                break
        return w
    m = abs(w)
    if l2 == 0.0:
        m -= gap * d
    else:
        # c^k - 1 without cancellation when s l2 is tiny; (1 - c^k) / (1 - c) from it
        shrink = math.expm1(gap * math.log1p(-s * l2))
        m = (1.0 + shrink) * m + d * shrink / (s * l2)
    if m <= 0.0:
        return 0.0
    return m if w > 0.0 else -m


@njit(cache=True)
def margins(indptr, indices, data, a, n, last, t, solver, alpha, l1_ratio, eta, beta, intercept):
    """Decision values of every row with the current state (nothing changes)."""
    nrows = indptr.shape[0] - 1
    out = np.empty(nrows)
    bias = a.shape[0] - 1
    lam1 = t * alpha * l1_ratio
    lam2 = t * alpha * (1.0 - l1_ratio)
    l1 = alpha * l1_ratio
    l2 = alpha * (1.0 - l1_ratio)
    w0 = 0.0
    if intercept:
        w0 = _ftrl_weight(a[bias], n[bias], 0.0, 0.0, eta, beta) if solver == FTRL else a[bias]
    for r in range(nrows):
        m = w0
        for k in range(indptr[r], indptr[r + 1]):
            j = indices[k]
            if solver == FTRL:
                m += _ftrl_weight(a[j], n[j], lam1, lam2, eta, beta) * data[k]
            else:
                m += _catch_up(a[j], n[j], t - last[j], l1, l2, eta, beta) * data[k]
        out[r] = m
    return out


@njit(cache=True)
def adagrad_weights(a, n, last, t, alpha, l1_ratio, eta, beta):
    """AdaGrad's weights after ``t`` rows (the pending penalty charged; bias last, as is)."""
    out = a.copy()
    l1 = alpha * l1_ratio
    l2 = alpha * (1.0 - l1_ratio)
    for j in range(a.shape[0] - 1):
        if a[j] != 0.0:
            out[j] = _catch_up(a[j], n[j], t - last[j], l1, l2, eta, beta)
    return out


@njit(cache=True)
def train(
    indptr,
    indices,
    data,
    y,
    sw,
    start,
    stop,
    a,
    n,
    last,
    t,
    solver,
    loss,
    alpha,
    l1_ratio,
    eta,
    beta,
    intercept,
):
    """One pass over rows ``start:stop`` in order, updating ``a``, ``n`` (and AdaGrad's
    ``last``); returns the new t.

    ``sw``, when not empty, holds the rows' sample weights: each scales its row's loss
    gradient, not the per-row penalty (as scikit-learn's SGD weighs samples).
    """
    bias = a.shape[0] - 1
    weighted = sw.shape[0] > 0
    width = 0
    for r in range(start, stop):
        width = max(width, indptr[r + 1] - indptr[r])
    w = np.empty(width)
    for r in range(start, stop):
        t += 1.0
        lo, hi = indptr[r], indptr[r + 1]
        margin = 0.0
        if solver == FTRL:
            lam1 = t * alpha * l1_ratio
            lam2 = t * alpha * (1.0 - l1_ratio)
            for k in range(lo, hi):
                j = indices[k]
                w[k - lo] = _ftrl_weight(a[j], n[j], lam1, lam2, eta, beta)
                margin += w[k - lo] * data[k]
            w0 = _ftrl_weight(a[bias], n[bias], 0.0, 0.0, eta, beta) if intercept else 0.0
            g = _gradient(margin + w0, y[r], loss)
            if weighted:
                g *= sw[r]
            if g == 0.0:
                continue
            for k in range(lo, hi):
                j = indices[k]
                gi = g * data[k]
                sigma = (math.sqrt(n[j] + gi * gi) - math.sqrt(n[j])) / eta
                a[j] += gi - sigma * w[k - lo]
                n[j] += gi * gi
            if intercept:
                sigma = (math.sqrt(n[bias] + g * g) - math.sqrt(n[bias])) / eta
                a[bias] += g - sigma * w0
                n[bias] += g * g
        else:
            l1 = alpha * l1_ratio
            l2 = alpha * (1.0 - l1_ratio)
            for k in range(lo, hi):
                if data[k] == 0.0:
                    # An explicit zero (a numeric 0, or colliding terms that cancel) has
                    # no loss gradient: it is an absent entry, charged only the penalty,
                    # lazily, with n_j left as it is. Updating it here would add the L2
                    # part of the penalty to n_j and shrink its later steps.
                    continue
                j = indices[k]
                if last[j] < t - 1.0:  # charge the rows since j was last touched
                    a[j] = _catch_up(a[j], n[j], t - 1.0 - last[j], l1, l2, eta, beta)
                    last[j] = t - 1.0
                margin += a[j] * data[k]
            w0 = a[bias] if intercept else 0.0
            g = _gradient(margin + w0, y[r], loss)
            if weighted:
                g *= sw[r]
            for k in range(lo, hi):
                if data[k] == 0.0:
                    continue  # as absent (see above)
                j = indices[k]
                last[j] = t
                gi = g * data[k] + l2 * a[j]
                n[j] += gi * gi
                if n[j] == 0.0:
                    # No gradient yet (g == 0: a zero-weight row, a satisfied hinge, an
                    # exact fit): the coordinate has not moved (a[j] == 0) and does not
                    # now. With beta == 0 its step eta / 0 would raise ZeroDivisionError.
                    continue
                step = eta / (beta + math.sqrt(n[j]))
                u = a[j] - step * gi
                shrink = step * l1
                a[j] = u - shrink if u > shrink else (u + shrink if u < -shrink else 0.0)
            if intercept and g != 0.0:
                n[bias] += g * g
                a[bias] -= eta / (beta + math.sqrt(n[bias])) * g
    return t


@njit(cache=True)
def progressive(
    indptr,
    indices,
    data,
    y,
    sw,
    batch_rows,
    a,
    n,
    last,
    t,
    solver,
    loss,
    alpha,
    l1_ratio,
    eta,
    beta,
    intercept,
):
    """Score each batch of ``batch_rows`` rows with the state before training on it.

    Returns the decision values (made before each batch's update) and the new t.
    """
    nrows = indptr.shape[0] - 1
    out = np.empty(nrows)
    for start in range(0, nrows, batch_rows):
        stop = min(start + batch_rows, nrows)
        sub = indptr[start : stop + 1]
        out[start:stop] = margins(
            sub, indices, data, a, n, last, t, solver, alpha, l1_ratio, eta, beta, intercept
        )
        t = train(
            indptr,
            indices,
            data,
            y,
            sw,
            start,
            stop,
            a,
            n,
            last,
            t,
            solver,
            loss,
            alpha,
            l1_ratio,
            eta,
            beta,
            intercept,
        )
    return out, t


@njit(cache=True)
def has_duplicates(indptr, indices, width):
    """Whether some row of a CSR matrix names a column twice (colliding hashed terms).

    One pass over the entries, stamping each column with the row that last named it.
    """
    stamp = np.zeros(width, dtype=np.int64)
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r], indptr[r + 1]):
            j = indices[k]
            if stamp[j] == r + 1:
                return True
            stamp[j] = r + 1
    return False


@njit(cache=True)
def batch_auc(scores, positive, bounds):
    """AUC of each run ``bounds[i]:bounds[i+1]`` (NaN with one class): the share of
    (positive, negative) pairs ranked right, ties counting half. Unit weights keep every
    sum an exact half-integer, so this equals the average-rank formula bit for bit."""
    return weighted_batch_auc(scores, positive, np.ones(scores.shape[0]), bounds)


@njit(cache=True)
def weighted_batch_auc(scores, positive, weights, bounds):
    """:func:`batch_auc` with row weights, as ``roc_auc_score(sample_weight=...)``: the
    weighted share of (positive, negative) pairs ranked right, ties counting half
    (NaN where either class has no weight)."""
    nb = bounds.shape[0] - 1
    out = np.empty(nb)
    for b in range(nb):
        lo, hi = bounds[b], bounds[b + 1]
        s = scores[lo:hi]
        order = np.argsort(s, kind="mergesort")
        below = 0.0  # negative weight strictly below the current tie group
        pairs = 0.0
        w1 = 0.0
        i = 0
        m = hi - lo
        while i < m:
            j = i
            while j + 1 < m and s[order[j + 1]] == s[order[i]]:
                j += 1
            pos = 0.0
            neg = 0.0
            for k in range(i, j + 1):
                r = lo + order[k]
                if positive[r]:
                    pos += weights[r]
                else:
                    neg += weights[r]
            pairs += pos * (below + 0.5 * neg)
            below += neg
            w1 += pos
            i = j + 1
        if w1 == 0.0 or below == 0.0:
            out[b] = np.nan
        else:
            out[b] = pairs / (w1 * below)
    return out
