"""What each partition computes for a negative binomial (NB2) fit with ``alpha``
estimated (runs on workers).

Every pass reads the partition's encoded design from the session's
:class:`~shardfit.engine.cache.PartitionCache`, filled by the GLM prepare pass
(:class:`~shardfit.models.glm_tasks.PrepareTask`), so no pass after the first reads
or encodes data. :class:`NBTask` returns, at one point ``(beta, alpha)``, the exact
sums over the partition's rows of the NB2 log-likelihood, its score and its Hessian
(statsmodels' ``NegativeBinomial(loglike_method="nb2")`` formulas), or the same for
the Poisson model whose fit gives the start values. Everything returned is a sum over
rows of size ``O(p**2)``; merging is addition.

With ``theta = 1/alpha`` (statsmodels' ``a1``, R's ``theta``) and
``mu = exp(x'beta + offset)``, a row contributes

- ``llf = lgamma(y + theta) - lgamma(theta) - lgamma(y + 1) - theta log1p(alpha mu)
  + y (log(alpha mu) - log1p(alpha mu))``;
- to the score in ``beta``: ``x (y - mu) / (1 + alpha mu)``;
- to the Hessian in ``beta``: ``-x x' mu (1 + alpha y) / (1 + alpha mu)**2``, and in
  ``(beta, alpha)``: ``-x mu (y - mu) / (1 + alpha mu)**2``;
- to the derivatives in ``alpha`` through the two row sums ``u`` and ``v`` of
  :class:`NBStatistic` (the driver combines them with powers of ``alpha``).

``log1p`` is used where statsmodels writes ``log(theta / (theta + mu))``: the same
value, without the cancellation when ``alpha mu`` is small.

For a robust covariance, :class:`NBRobustTask` is one more pass at the estimates: the
per-row scores in ``(beta, alpha)`` (statsmodels' ``score_obs``: ``x (y - mu) / (1 +
alpha mu)`` and ``-u_i / alpha**2``, ``u_i`` the row's term of ``u``) summed as their
outer products (HC0's meat), or summed by cluster
(:class:`~shardfit.models.linear_tasks.ClusterScores`, merged by cluster id across
partitions, so a cluster may span partitions).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy import special

from shardfit.data.partition import Partition
from shardfit.design.materialize import encode_partition
from shardfit.design.spec import DesignSpec
from shardfit.engine.cache import CacheRef
from shardfit.models.families import NegativeBinomial
from shardfit.models.glm_tasks import _Block, _block, _cached_arrays, _check_chunk, _to_arrays
from shardfit.models.linear_tasks import ClusterScores, _sums_by
from shardfit.stats.gram import block_gram, scale_rows
from shardfit.stats.transform import ColumnTransform

__all__ = ["NBRobustStatistic", "NBRobustTask", "NBStatistic", "NBTask"]

Kind = Literal["nb2", "poisson", "poisson-start"]


@dataclass(frozen=True)
class NBStatistic:
    """Sums over rows at one point ``(beta, alpha)``.

    Attributes
    ----------
    nrows : int
        Rows summed.
    llf : float
        The log-likelihood (NB2, or Poisson for the Poisson kinds).
    score : numpy.ndarray
        ``(p,)`` score in ``beta``; for ``"poisson-start"`` the weighted cross
        product ``X' W z`` of IRLS's first step instead.
    info : numpy.ndarray
        ``(p, p)`` minus the Hessian in ``beta`` (``X' W X``, ``W > 0``).
    cross : numpy.ndarray
        ``(p,)`` the Hessian's ``d2 llf / d beta d alpha`` (NB2 only, else zeros).
    u, v : float
        NB2: ``sum(digamma(y + theta) - digamma(theta) - log1p(alpha mu) - (y - mu) /
        (theta + mu))`` and ``sum(trigamma(y + theta) - trigamma(theta) + alpha**2 mu /
        (1 + alpha mu) + alpha**2 (y - mu) / (1 + alpha mu)**2)``, so that ``d llf /
        d alpha = -u / alpha**2`` and ``d2 llf / d alpha2 = 2 u / alpha**3 + v /
        alpha**4``. Poisson kinds: ``u`` is ``sum(((y - mu)**2 / mu - 1) / mu)``
        (statsmodels' moment estimate of ``alpha`` times ``df_resid``), ``v`` 0.
    sum_y, sum_exp_offset : float
        ``sum(y)`` and ``sum(exp(offset))``: the constant-only Poisson fit in closed
        form (the null model's start).
    xw, sum_w : numpy.ndarray, float
        ``X' w`` and ``sum(w)`` with ``w`` the weights of ``info``: whether the constant
        lies in the design's column space (an implicit constant, ``0 + C(g)``).
    llf_abs : float
        The sum of the absolute values of the log-likelihood's terms: its rounding
        error is about ``eps * llf_abs`` (for counts of 1e6, ``lgamma(y + theta) -
        lgamma(y + 1)`` cancels terms of 1e7 each), which the step search allows for.
    """

    nrows: int
    llf: float
    score: np.ndarray
    info: np.ndarray
    cross: np.ndarray
    u: float
    v: float
    sum_y: float
    sum_exp_offset: float
    xw: np.ndarray
    sum_w: float
    llf_abs: float

    def merge(self, other: NBStatistic) -> NBStatistic:
        return NBStatistic(
            nrows=self.nrows + other.nrows,
            llf=self.llf + other.llf,
            score=self.score + other.score,
            info=self.info + other.info,
            cross=self.cross + other.cross,
            u=self.u + other.u,
            v=self.v + other.v,
            sum_y=self.sum_y + other.sum_y,
            sum_exp_offset=self.sum_exp_offset + other.sum_exp_offset,
            xw=self.xw + other.xw,
            sum_w=self.sum_w + other.sum_w,
            llf_abs=self.llf_abs + other.llf_abs,
        )


@dataclass(frozen=True)
class NBTask:
    """One partition's :class:`NBStatistic` at ``beta`` (and ``alpha``).

    Parameters
    ----------
    spec : DesignSpec
    missing : {"drop", "raise"}
    cache : CacheRef or None
        The fit's partition cache (filled by the prepare pass).
    beta : numpy.ndarray or None
        Coefficients in ``spec.column_names`` order (a single intercept with
        ``constant_only``); ``None`` only for ``"poisson-start"``.
    alpha : float
        NB2's dispersion (unused by the Poisson kinds).
    kind : {"nb2", "poisson", "poisson-start"}
        NB2 sums; Poisson sums; or IRLS's first Poisson step from statsmodels' GLM start
        ``mu = (y + mean(y)) / 2``, which needs no coefficients.
    y_mean : float
        ``mean(y)`` over all rows, for ``"poisson-start"``.
    constant_only : bool
        Replace the design by a column of ones (the null model), keeping the offset.
    transform : ColumnTransform, optional
        Centre (with an intercept) and scale the dense columns before any product
        (:func:`shardfit.models.glm._column_transform`, as the GLM): ``beta`` and every
        sum are then in the transformed columns. Raw columns far from zero (x = 1e6 +
        U(0, 10)) made the linear predictor cancel and ``X' W X`` too ill-conditioned
        to solve (the design was declared rank deficient).
    """

    spec: DesignSpec
    missing: Literal["drop", "raise"]
    cache: CacheRef | None
    beta: np.ndarray | None
    alpha: float = 1.0
    kind: Kind = "nb2"
    y_mean: float = 0.0
    constant_only: bool = False
    transform: ColumnTransform | None = None

    def __call__(self, partition: Partition) -> NBStatistic:
        # The family only checks the response's support on a cache miss (y >= 0, as the
        # prepare pass did): alpha's value plays no part in that check.
        arrays = _cached_arrays(self.spec, NegativeBinomial(), self.missing, self.cache, partition)
        block = _block(arrays)
        if self.constant_only:
            block = _Block(
                dense=np.ones((block.nrows, 1), order="F"),
                sparse=sp.csc_matrix((block.nrows, 0)),
                y=block.y,
                weights=None,
                offset=block.offset,
            )
        p = block.dense.shape[1] + block.sparse.shape[1]
        total = _empty(p)
        # Row blocks keep the row-sized temporaries small (one block with sparse columns).
        for _, part in block.row_blocks():
            total = total.merge(self._sums(self._transformed(part)))
        return total

    def _transformed(self, block: _Block) -> _Block:
        """The block with its dense columns centred and scaled (a copy)."""
        if self.transform is None or self.constant_only or not block.dense.shape[1]:
            return block
        flags = np.asarray(self.transform.dense, dtype=bool)
        shift = np.asarray(self.transform.shift[: flags.size])[flags]
        scale = np.asarray(self.transform.scale[: flags.size])[flags]
        dense = np.asfortranarray((block.dense - shift) / scale)
        return replace(block, dense=dense)

    def _order(self) -> np.ndarray:
        """Output position of each column of ``[dense | sparse]``."""
        if self.constant_only:
            return np.zeros(1, dtype=np.intp)
        flags = np.asarray(self.spec.dense_columns(), dtype=bool)
        return np.concatenate([np.flatnonzero(flags), np.flatnonzero(~flags)])

    def _sums(self, block: _Block) -> NBStatistic:
        n = block.nrows
        order = self._order()
        p = order.shape[0]
        if n == 0:
            return _empty(p)
        y = block.y
        offset = np.zeros(n) if block.offset is None else block.offset
        if self.kind == "poisson-start":
            mu = (y + self.y_mean) / 2
            eta = np.log(mu)
            z = eta - offset + (y - mu) / mu
            w = mu
            terms = (y * eta, mu, special.gammaln(y + 1))
            score = _xt(block, order, w * z)
            return NBStatistic(
                n, float(np.sum(terms[0] - terms[1] - terms[2])), score,
                _gram(block, order, w), np.zeros(p), 0.0, 0.0, float(y.sum()),
                float(np.exp(offset).sum()), _xt(block, order, w), float(w.sum()),
                _abs_sum(terms, n),
            )  # fmt: skip
        eta = self._eta(block, order, offset)
        mu = np.exp(eta)
        sums = (float(y.sum()), float(np.exp(offset).sum()))
        if self.kind == "poisson":
            terms = (y * eta, mu, special.gammaln(y + 1))
            resid = y - mu
            u = float(np.sum((resid**2 / mu - 1) / mu))
            return NBStatistic(
                n, float(np.sum(terms[0] - terms[1] - terms[2])), _xt(block, order, resid),
                _gram(block, order, mu), np.zeros(p), u, 0.0, *sums, _xt(block, order, mu),
                float(mu.sum()), _abs_sum(terms, n),
            )  # fmt: skip
        return self._nb2(block, order, y, eta, mu, sums)

    def _eta(self, block: _Block, order: np.ndarray, offset: np.ndarray) -> np.ndarray:
        """The linear predictor ``x'beta + offset`` of the block's rows."""
        assert self.beta is not None
        beta = np.asarray(self.beta, dtype=np.float64)
        eta = block.dense @ beta[order[: block.dense.shape[1]]] + offset
        if block.sparse.shape[1]:
            eta = eta + block.sparse @ beta[order[block.dense.shape[1] :]]
        return eta

    def _nb2(
        self,
        block: _Block,
        order: np.ndarray,
        y: np.ndarray,
        eta: np.ndarray,
        mu: np.ndarray,
        sums: tuple[float, float],
    ) -> NBStatistic:
        alpha = float(self.alpha)
        theta = 1.0 / alpha
        am = alpha * mu
        log1p_am = np.log1p(am)
        one_am = 1.0 + am
        resid = y - mu
        # y log(1 - prob) with prob = theta / (theta + mu): log(alpha mu / (1 + alpha mu)),
        # 0 for y = 0 whatever mu (statsmodels' 0 * log(...) is 0 there too).
        y_term = np.where(y > 0, y * (np.log(alpha) + eta - log1p_am), 0.0)
        parts = (
            special.gammaln(y + theta),
            special.gammaln(theta),
            special.gammaln(y + 1),
            theta * log1p_am,
            y_term,
        )
        llf = float(np.sum(parts[0] - parts[1] - parts[2] - parts[3] + parts[4]))
        llf_abs = _abs_sum(parts, block.nrows)
        dg = special.digamma(y + theta) - special.digamma(theta)
        u = float(np.sum(dg - log1p_am - resid / (theta + mu)))
        tg = special.polygamma(1, y + theta) - special.polygamma(1, theta)
        v = float(np.sum(tg + alpha * am / one_am + alpha**2 * resid / one_am**2))
        score = _xt(block, order, resid / one_am)
        w = mu * (1.0 + alpha * y) / one_am**2
        info = _gram(block, order, w)
        cross = -_xt(block, order, mu * resid / one_am**2)
        return NBStatistic(
            block.nrows, llf, score, info, cross, u, v, *sums, _xt(block, order, w),
            float(w.sum()), llf_abs,
        )  # fmt: skip


@dataclass(frozen=True)
class NBRobustStatistic:
    """The robust covariance's middle from the per-row scores in ``(beta, alpha)``.

    Attributes
    ----------
    nrows : int
        Rows summed.
    meat : numpy.ndarray or None
        ``(p + 1, p + 1)`` ``sum_i s_i s_i'`` (HC0), ``None`` for a cluster covariance.
    clusters : ClusterScores or None
        ``sum_{i in g} s_i`` by cluster id (``cov_type="cluster"``), else ``None``.
    """

    nrows: int
    meat: np.ndarray | None
    clusters: ClusterScores | None

    def merge(self, other: NBRobustStatistic) -> NBRobustStatistic:
        meat = None if self.meat is None or other.meat is None else self.meat + other.meat
        clusters = (
            None
            if self.clusters is None or other.clusters is None
            else self.clusters.merge(other.clusters)
        )
        return NBRobustStatistic(self.nrows + other.nrows, meat, clusters)


@dataclass(frozen=True)
class NBRobustTask:
    """One partition's :class:`NBRobustStatistic` at the estimates.

    Parameters
    ----------
    point : NBTask
        The ``"nb2"`` task at the estimates (``beta`` in its ``transform``'s columns,
        ``alpha``): its design, cache, coefficients and transform.
    groups : str, optional
        The cluster column (read with the design, not cached: ids may be text); ``None``
        for HC0's meat.
    """

    point: NBTask
    groups: str | None = None

    def __call__(self, partition: Partition) -> NBRobustStatistic:
        point = self.point
        family = NegativeBinomial()
        ids: np.ndarray | None = None
        if self.groups is not None:
            chunk = encode_partition(point.spec, partition, missing=point.missing, structured=True)
            _check_chunk(chunk, family, partition, point.spec)
            ids = np.asarray(chunk.extras[self.groups])
            arrays = _to_arrays(chunk, point.spec)
        else:
            arrays = _cached_arrays(point.spec, family, point.missing, point.cache, partition)
        block = _block(arrays)
        k = point._order().shape[0] + 1
        total = NBRobustStatistic(
            0,
            None if ids is not None else np.zeros((k, k)),
            None if ids is None else ClusterScores((), np.zeros((0, k))),
        )
        for first, part in block.row_blocks():
            rows = None if ids is None else ids[first : first + part.nrows]
            total = total.merge(self._scores(point._transformed(part), rows))
        return total

    def _scores(self, block: _Block, ids: np.ndarray | None) -> NBRobustStatistic:
        point = self.point
        order = point._order()
        n = block.nrows
        offset = np.zeros(n) if block.offset is None else block.offset
        mu = np.exp(point._eta(block, order, offset))
        y = block.y
        alpha = float(point.alpha)
        theta = 1.0 / alpha
        resid = y - mu
        # statsmodels' score_obs: in beta x r, in alpha -u_i / alpha**2 (the terms of
        # NBStatistic.u), alpha itself the parameter (not log alpha).
        r = resid / (1.0 + alpha * mu)
        u = (
            special.digamma(y + theta)
            - special.digamma(theta)
            - np.log1p(alpha * mu)
            - resid / (theta + mu)
        )
        a = -u / alpha**2
        if ids is not None:
            keys, inverse = np.unique(ids, return_inverse=True)
            beta_sums = _sums_by(inverse, len(keys), r, block.dense, block.sparse, order)
            alpha_sums = np.bincount(np.ravel(inverse), weights=a, minlength=len(keys))
            plain = tuple(key.item() if hasattr(key, "item") else key for key in keys)
            sums = np.column_stack([beta_sums, alpha_sums])
            return NBRobustStatistic(n, None, ClusterScores(plain, sums))
        p = order.shape[0]
        meat = np.empty((p + 1, p + 1))
        meat[:p, :p] = _gram(block, order, r**2)
        meat[:p, p] = meat[p, :p] = _xt(block, order, r * a)
        meat[p, p] = float(a @ a)
        return NBRobustStatistic(n, meat, None)


def _empty(p: int) -> NBStatistic:
    zeros = np.zeros(p)
    return NBStatistic(0, 0.0, zeros, np.zeros((p, p)), zeros, 0.0, 0.0, 0.0, 0.0, zeros, 0.0, 0.0)


def _abs_sum(terms: tuple[np.ndarray | float, ...], n: int) -> float:
    """``sum |term|`` over the rows of each term (a scalar term counts ``n`` times): the
    size of the log-likelihood's rounding error, in units of ``eps``."""
    return float(sum(np.abs(term).sum() * (n if np.ndim(term) == 0 else 1) for term in terms))


def _xt(block: _Block, order: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``X' values`` in the spec's column order."""
    out = np.empty(order.shape[0])
    parts = [block.dense.T @ values]
    if block.sparse.shape[1]:
        parts.append(block.sparse.T @ values)
    out[order] = np.concatenate(parts)
    return out


def _gram(block: _Block, order: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X' diag(w) X`` (``w > 0``) in the spec's column order."""
    root = np.sqrt(w)
    return block_gram(root[:, None] * block.dense, scale_rows(block.sparse, root), order)
