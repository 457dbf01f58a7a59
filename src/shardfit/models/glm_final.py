"""The last passes of a GLM fit (run on workers), from the partition cache.

- :class:`FinalTask` evaluates the fit at the final coefficients: log-likelihood at
  the final scale, null deviance and the null model's log-likelihood (statsmodels'
  ``llnull``), fitted probabilities at 0 or 1, and for robust
  covariances statsmodels' observed-information Gram (the bread) and the score outer
  products (the meat), per-cluster score sums (one- or two-way), HAC's lag window
  of the scores in the order read (:class:`~shardfit.models.hac.LagWindow`), the
  panel's within runs of one group (:class:`~shardfit.models.hac.PanelLagWindow`),
  or the scores' sums by time value (:class:`~shardfit.models.hac.TimeScoreSums`);
- :class:`NullTask` is one IRLS step of the constant-only model with the offset (its
  deviance is the null deviance when the model has an offset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from shardfit.data.partition import Partition
from shardfit.design.materialize import encode_partition
from shardfit.design.spec import DesignSpec
from shardfit.engine.cache import CacheRef
from shardfit.errors import ShardfitError
from shardfit.models.families import Family
from shardfit.models.glm_tasks import (
    BOUNDARY_EPS,
    Missing,
    _Block,
    _block,
    _cached_arrays,
    _check_chunk,
    _Coefficients,
    _mean,
    _to_arrays,
    _transformed_weighted,
)
from shardfit.models.hac import LagWindow, PanelLagWindow, TimeScoreSums
from shardfit.models.linear_tasks import (
    ClusterScores,
    TwoWayClusterScores,
    _cluster_scores,
    _kept_order_rows,
    _two_way_scores,
    hac_statistic,
    orthonormal_rows,
)
from shardfit.stats.gram import weighted_gram
from shardfit.stats.transform import ColumnTransform

__all__ = ["FinalStatistic", "FinalTask", "NullStatistic", "NullTask", "concentrated_llf"]

#: The HAC-type statistics of the scores (see :mod:`shardfit.models.hac`).
HacStatistic = LagWindow | PanelLagWindow | TimeScoreSums


def concentrated_llf(family: Family) -> bool:
    """Whether statsmodels concentrates the scale out of the log-likelihood (the
    Gaussian with the identity link: ``llf`` and ``llnull`` at ``deviance / nobs``)."""
    return family.name == "gaussian" and family.link.name == "identity"


# -- the final pass ----------------------------------------------------------------------
@dataclass(frozen=True)
class FinalStatistic:
    """Fit measures at the final coefficients, and the robust covariance's pieces."""

    nobs: int
    loglike: float
    deviance: float
    null_deviance: float
    boundary: int
    hessian: np.ndarray | None
    meat: np.ndarray | None
    clusters: ClusterScores | TwoWayClusterScores | None
    #: The null model's log-likelihood at the final scale (statsmodels' ``llnull``).
    null_loglike: float = 0.0
    #: HAC's lag window of the scores (rows in the order read), hac-panel's, or
    #: hac-groupsum's score sums by time value; ``None`` for other covariances.
    window: HacStatistic | None = None

    @property
    def nrows(self) -> int:
        return self.nobs

    def merge(self, other: FinalStatistic) -> FinalStatistic:
        """This run of partitions followed by ``other`` (the lag window pairs this
        run's last rows with ``other``'s first: the engine merges adjacent runs, left
        before right)."""

        def add(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
            return None if a is None or b is None else a + b

        return FinalStatistic(
            nobs=self.nobs + other.nobs,
            loglike=self.loglike + other.loglike,
            deviance=self.deviance + other.deviance,
            null_deviance=self.null_deviance + other.null_deviance,
            boundary=self.boundary + other.boundary,
            hessian=add(self.hessian, other.hessian),
            meat=add(self.meat, other.meat),
            clusters=(
                None
                if self.clusters is None or other.clusters is None
                else self.clusters.merge(other.clusters)
            ),
            null_loglike=self.null_loglike + other.null_loglike,
            window=(
                None
                if self.window is None or other.window is None
                else self.window.merge(other.window)
            ),
        )


@dataclass(frozen=True)
class FinalTask:
    """Log-likelihood, null deviance and robust pieces at the final ``beta``.

    ``scale`` is the final scale (log-likelihood and scores use it); ``null_mu`` the
    fitted mean of the constant-only model, or None when an offset makes that model
    need its own fit (then ``null_beta``, its intercept, is used with the offset).
    ``cov_type`` ``"HC0"`` (or ``"HC1"``–``"HC3"``, the same sandwich in statsmodels'
    GLM), ``"cluster"`` (``groups`` one column, or two for two-way clustering) or
    ``"HAC"`` (``hac_weights``: the kernel weights of lags ``0..maxlags``),
    ``"hac-panel"`` (also ``hac_column``, the group or time column as ``hac_by``
    says) or ``"hac-groupsum"`` (``hac_column`` the time column, at most
    ``time_cap`` distinct values) adds the observed-information Gram and the meat's
    pieces (in the transformed columns, kept ones only, order of ``kept``).
    """

    spec: DesignSpec
    family: Family
    transform: ColumnTransform
    missing: Missing
    cache: CacheRef | None
    beta: np.ndarray
    scale: float
    loglike_scale: float
    null_mu: float | None
    null_beta: float | None
    kept: tuple[bool, ...]
    cov_type: str
    groups: str | tuple[str, ...] | None
    centred: tuple[float, int] | None = None  # see :func:`~.glm_tasks.centring`
    # R^{-1} of the last IRLS Gram (kept columns): robust pieces of an ill-conditioned
    # design are summed in its orthonormal basis (see linear_tasks.RobustTask).
    r_inv: np.ndarray | None = None
    freq_weights: str | None = None  # the column of frequency weights
    hac_weights: tuple[float, ...] | None = None  # HAC's kernel weights of lags 0..L
    hac_column: str | None = None  # hac-panel's group or time column, hac-groupsum's time
    hac_by: Literal["groups", "time"] | None = None
    time_cap: int | None = None  # hac-groupsum's most distinct times

    def __call__(self, partition: Partition) -> FinalStatistic:
        family = self.family
        groups: np.ndarray | list[np.ndarray] | None = None
        if self.cov_type == "cluster" or self.hac_column is not None:
            # Cluster ids (and hac-panel's groups, hac-groupsum's times) may be text:
            # read them with the design (not cached).
            chunk = encode_partition(self.spec, partition, missing=self.missing, structured=True)
            _check_chunk(chunk, family, partition, self.spec, freq_weights=self.freq_weights)
            if self.hac_column is not None:
                groups = chunk.extras[self.hac_column]
            elif self.groups is None:
                raise ShardfitError("cluster covariance needs groups")
            elif isinstance(self.groups, tuple):
                groups = [chunk.extras[name] for name in self.groups]
            else:
                groups = chunk.extras[self.groups]
            arrays = _to_arrays(chunk, self.spec, self.freq_weights)
        else:
            arrays = _cached_arrays(
                self.spec, family, self.missing, self.cache, partition, self.freq_weights
            )
        return self.evaluate(_block(arrays), groups)

    def evaluate(
        self,
        block: _Block,
        groups: np.ndarray | list[np.ndarray] | None = None,
        mu: np.ndarray | None = None,
        deviance: float | None = None,
    ) -> FinalStatistic:
        """The statistic of one partition's encoded rows (an IRLS pass that may be the
        last calls this on the block it holds, with the ``mu`` and deviance it
        computed at ``beta``: see :class:`~.glm_tasks.IrlsTask`)."""
        family = self.family
        if mu is None:
            transform = self.transform
            coef = _Coefficients.of(self.beta, transform.dense, self.centred, transform.shift)
            _, mu = _mean(family, block, coef, 0.0)
        w = block.weights
        y = block.y
        per_row = 1.0 if w is None else w
        if deviance is None:
            unit = family.unit_deviance_given(y, mu, binary=block.binary)
            deviance = float(np.sum(unit * per_row))
        if self.null_mu is not None:
            null_deviance = family.null_deviance_at(y, w, self.null_mu, binary=block.binary)
            null_mu = np.full(y.shape, self.null_mu)
        else:
            null_eta = np.full(y.shape, float(self.null_beta or 0.0))
            if block.offset is not None:
                null_eta = null_eta + block.offset
            null_mu = family.link.inverse(null_eta)
            null_unit = family.unit_deviance_given(y, null_mu, binary=block.binary)
            null_deviance = float(np.sum(null_unit * per_row))
        boundary = 0
        if family.name == "binomial":
            boundary = int(np.count_nonzero((mu < BOUNDARY_EPS) | (mu > 1 - BOUNDARY_EPS)))
        elif family.support == "y >= 0":
            # Counts (and Tweedie's compound Poisson): a mean sinks to 0 where every
            # response of a level or region is 0, and its coefficient to -inf.
            boundary = int(np.count_nonzero(mu < BOUNDARY_EPS))
        hessian = meat = clusters = window = None
        if self.cov_type != "nonrobust":
            hessian, meat, clusters, window = self._robust(block, mu, groups)
        # A fitted mean outside the family's range (a negative Poisson mean under the
        # identity link) makes log(mu) nan, as in statsmodels; NumPy's warning would
        # come once per pass (an IRLS pass expected to be the last evaluates this too),
        # so the driver reports a non-finite llf once, in its own words.
        # statsmodels' log-likelihood is sum(freq * loglike_obs(var_weights)): the
        # variance weights enter each row's density, the frequencies count the rows
        # (the deviances above are already weighted by both).
        var_w, freq = block.var_weights, block.freq
        with np.errstate(divide="ignore", invalid="ignore"):
            loglike = family.loglike_given_deviance(
                y, mu, var_w, self.loglike_scale, deviance, binary=block.binary, freq=freq
            )
            # statsmodels' llnull is at the fit's scale, the Gaussian's too (its llf
            # alone is concentrated).
            null_loglike = family.loglike_given_deviance(
                y, null_mu, var_w, self.scale, null_deviance, binary=block.binary, freq=freq
            )
        return FinalStatistic(
            nobs=block.nrows,
            loglike=loglike,
            deviance=deviance,
            null_deviance=null_deviance,
            boundary=boundary,
            hessian=hessian,
            meat=meat,
            clusters=clusters,
            null_loglike=float(null_loglike),
            window=window,
        )

    def _robust(
        self, block: _Block, mu: np.ndarray, groups: np.ndarray | list[np.ndarray] | None
    ) -> tuple[
        np.ndarray,
        np.ndarray | None,
        ClusterScores | TwoWayClusterScores | None,
        HacStatistic | None,
    ]:
        """statsmodels' observed information and the meat's pieces of its scores
        (``score_obs``), in transformed kept columns: the Gram of the scores, their
        sums by cluster, or their lag window (``groups``: the cluster ids, or
        hac-panel's groups or times, or hac-groupsum's times)."""
        family = self.family
        w = np.ones(block.nrows) if block.weights is None else block.weights
        deriv = family.link.deriv(mu)
        variance = family.variance(mu)
        score = (block.y - mu) / deriv / variance * w / self.scale
        eim = w / (deriv**2 * variance)
        tmp = variance * family.link.deriv2(mu) + family.variance_deriv(mu) * deriv
        tmp = score * self.scale * tmp / w
        oim = eim * (1 + tmp) / self.scale
        plain_d, plain_s, order = self._kept(block, np.ones(block.nrows))
        if self.r_inv is not None:
            u = orthonormal_rows(self.r_inv, plain_d, plain_s, order)
            plain_d, plain_s = u, sp.csc_matrix((u.shape[0], 0))
            order = np.arange(u.shape[1], dtype=np.intp)
        if np.all(oim >= 0):
            hessian = weighted_gram(plain_d, plain_s, np.sqrt(oim), order)
        else:
            # The observed information can be negative in places (non-canonical links).
            hessian = _signed_gram(plain_d, plain_s, oim, order)
        if self.cov_type == "cluster":
            assert groups is not None
            if isinstance(groups, list):
                two_way = _two_way_scores(groups, score, plain_d, plain_s, order)
                return hessian, None, two_way, None
            return hessian, None, _cluster_scores(groups, score, plain_d, plain_s, order), None
        if self.cov_type in ("HAC", "hac-panel", "hac-groupsum"):
            # statsmodels' cov_hac_simple, cov_nw_panel or cov_nw_groupsum on
            # score_obs, rows in the order read (the partition cache keeps each
            # partition's rows in order). Frequency weights are refused with them
            # before any pass (see glm._check_freq_weights).
            rows = _kept_order_rows(plain_d, plain_s, order)
            window = hac_statistic(
                self.cov_type,
                rows * score[:, None],
                groups if isinstance(groups, np.ndarray) else None,
                self.hac_weights,
                self.hac_by,
                self.hac_column,
                self.time_cap,
            )
            return hessian, None, None, window
        root = np.abs(score)
        if block.freq is not None:
            # A row of frequency f stands for f rows of score s / f each: the meat takes
            # f (s / f)**2 = s**2 / f, as statsmodels' sandwich (which divides its
            # scores by sqrt(freq_weights)) and the fit of the expanded rows do.
            root = root / np.sqrt(block.freq)
        return hessian, weighted_gram(plain_d, plain_s, root, order), None, None

    def _kept(
        self, block: _Block, factor: np.ndarray
    ) -> tuple[np.ndarray, sp.csc_matrix, np.ndarray]:
        """``factor`` times the transformed kept columns, dense and sparse, and each
        block column's position among the kept columns."""
        dense, sparse = _transformed_weighted(block, self.transform, factor)
        kept = np.asarray(self.kept, dtype=bool)
        position = np.full(kept.size, -1)
        position[kept] = np.arange(int(kept.sum()))
        dense_cols = np.flatnonzero(self.transform.dense)
        sparse_cols = self.transform.sparse_index
        dense = np.asfortranarray(dense[:, kept[dense_cols]])
        sparse = sp.csc_matrix(sparse[:, np.flatnonzero(kept[sparse_cols])])
        order = np.concatenate(
            [position[dense_cols[kept[dense_cols]]], position[sparse_cols[kept[sparse_cols]]]]
        )
        return dense, sparse, order.astype(np.intp)


def _signed_gram(
    dense: np.ndarray, sparse: sp.csc_matrix, factor: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """``Z' diag(factor) Z`` for a factor of any sign."""
    full = np.hstack([dense, sparse.toarray()]) if sparse.shape[1] else dense
    block = full.T @ (full * factor[:, None])
    out = np.zeros_like(block)
    out[np.ix_(order, order)] = block
    return out


# -- the constant-only model with an offset ------------------------------------------------
@dataclass(frozen=True)
class NullStatistic:
    """Sums of one IRLS step of the constant-only model (merge: addition)."""

    nobs: int
    sum_w: float
    sum_wz: float
    deviance: float
    pearson_chi2: float

    @property
    def nrows(self) -> int:
        return self.nobs

    def merge(self, other: NullStatistic) -> NullStatistic:
        return NullStatistic(
            nobs=self.nobs + other.nobs,
            sum_w=self.sum_w + other.sum_w,
            sum_wz=self.sum_wz + other.sum_wz,
            deviance=self.deviance + other.deviance,
            pearson_chi2=self.pearson_chi2 + other.pearson_chi2,
        )


@dataclass(frozen=True)
class NullTask:
    """One IRLS step of ``y ~ 1`` with the model's offset, at intercept ``beta0``."""

    spec: DesignSpec
    family: Family
    missing: Missing
    cache: CacheRef | None
    beta0: float
    freq_weights: str | None = None  # the column of frequency weights

    def __call__(self, partition: Partition) -> NullStatistic:
        arrays = _cached_arrays(
            self.spec, self.family, self.missing, self.cache, partition, self.freq_weights
        )
        block = _block(arrays)
        family = self.family
        offset = np.zeros(block.nrows) if block.offset is None else block.offset
        eta = self.beta0 + offset
        mu = family.link.inverse(eta)
        w = np.ones(block.nrows) if block.weights is None else block.weights
        deriv = family.link.deriv(mu)
        variance = family.variance(mu)
        irls_w = w / (deriv**2 * variance)
        resid = block.y - mu
        z = eta + deriv * resid - offset
        return NullStatistic(
            nobs=block.nrows,
            sum_w=float(irls_w.sum()),
            sum_wz=float(irls_w @ z) if block.nrows else 0.0,
            deviance=float((family.unit_deviance(block.y, mu) * w).sum()),
            pearson_chi2=float((resid**2 * w / variance).sum()),
        )
