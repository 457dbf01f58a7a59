"""The elastic-net path solvers behind :func:`~shardfit.models.elastic_net.elastic_net`.

:class:`GaussianPath` works on per-fold Gram statistics alone (no data): each training
set's centred problem is the total minus its fold, each held-out mean squared error a
quadratic form in its fold's statistic. :class:`GlmPath` drives IRLS passes, one per
step for the full-data model and every fold's model at once. Both solve each penalized
quadratic problem exactly with :func:`~shardfit.models._elastic_net_cd.solve_enet_gram`
and warm-start along the path (largest penalty first).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from shardfit.data.partition import Source
from shardfit.engine import run_pass
from shardfit.engine.cache import CacheRef
from shardfit.errors import DesignError
from shardfit.models._elastic_net_cd import solve_enet_gram
from shardfit.models.elastic_net_tasks import IrlsTask
from shardfit.stats.transform import ColumnTransform

__all__ = ["GaussianPath", "GlmPath", "check_folds", "check_weight", "geometric_grid"]


def check_weight(sum_weights: float, nobs: int) -> None:
    """Refuse a fit whose rows all weigh 0: the objective is 0/0."""
    if not sum_weights > 0:
        raise DesignError(
            f"the weights of the {nobs:,} rows fitted sum to {sum_weights!r}: the elastic "
            "net needs rows of positive weight (check the weights column)"
        )


def check_folds(test_weights: Any, train_weights: Any, nobs: int) -> None:
    """Refuse cross-validation folds without rows (or without weight).

    An empty fold has no held-out loss: averaged in as NaN, it made every penalty's
    mean loss NaN and the choice fall on the largest penalty (all coefficients zero).
    """
    test = np.asarray(test_weights, dtype=np.float64)
    train = np.asarray(train_weights, dtype=np.float64)
    k = test.size
    empty = np.flatnonzero(~(test > 0)).tolist()
    if empty:
        raise DesignError(
            f"cross-validation fold(s) {empty} of {k} hold no rows of positive weight: the "
            f"{nobs:,} rows fitted are assigned to the {k} folds by a hash of partition and "
            "row, so small data can leave a fold empty; pass a smaller cv"
        )
    if not np.all(train > 0):
        alone = np.flatnonzero(~(train > 0)).tolist()
        raise DesignError(
            f"the training rows of cross-validation fold(s) {alone} "
            "have no positive weight (every weighted row is in that fold); pass a smaller cv"
        )


def geometric_grid(alpha_max: float, n_alphas: int, eps: float) -> np.ndarray:
    if alpha_max <= np.finfo(np.float64).resolution:
        return np.full(n_alphas, np.finfo(np.float64).resolution)
    return np.geomspace(alpha_max, alpha_max * eps, num=n_alphas)


class GaussianPath:
    """The Gaussian path and cross-validation from per-fold Gram statistics."""

    def __init__(
        self, grams: Any, transform: ColumnTransform, intercept: int | None, standardize: bool
    ) -> None:
        self.folds = grams
        total = grams[0]
        for gram in grams[1:]:
            total = total.merge(gram)
        self.total = total
        self.p = transform.p
        self.shift = np.asarray(transform.shift)
        self.scale = np.asarray(transform.scale)
        self.intercept = intercept
        self.standardize = standardize
        self.penalized = [j for j in range(self.p) if j != intercept]
        self.index = [*self.penalized, self.p]  # penalized columns and the response
        self.nobs = int(total.totals.nobs)
        check_weight(float(total.totals.sum_weights), self.nobs)

    def _problem(
        self, cross: np.ndarray, sums: np.ndarray, sw: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
        """``Q``, ``q`` (original units, centred if there is an intercept), column
        scales for the penalty, the response mean and the column means."""
        if sw <= 0:
            raise DesignError("a training set of the cross-validation has no rows")
        idx = self.index
        c = cross[np.ix_(idx, idx)]
        s = sums[idx]
        mean_z = s / sw
        if self.intercept is not None:
            c = c - sw * np.outer(mean_z, mean_z)
        d = self.scale[idx]
        c = c * np.outer(d, d) / sw
        means = mean_z * d + self.shift[idx]
        Q, q = c[:-1, :-1], c[:-1, -1]
        penalty_scale = np.sqrt(np.clip(np.diag(Q), 0, None)) if self.standardize else None
        if penalty_scale is None:
            penalty_scale = np.ones(q.size)
        else:
            penalty_scale = np.where(penalty_scale > 0, penalty_scale, 1.0)
        return Q, q, penalty_scale, float(means[-1]), means[:-1]

    def grid(
        self, alpha: Any, alphas: Any, l1_ratio: float, n_alphas: int, eps: float
    ) -> np.ndarray:
        if alpha is not None:
            return np.array([float(alpha)])
        if alphas is not None and not isinstance(alphas, int):
            return np.sort(np.asarray(alphas, dtype=np.float64))[::-1]
        count = alphas if isinstance(alphas, int) else n_alphas
        if l1_ratio == 0:
            raise ValueError("the alpha grid needs l1_ratio > 0; pass alphas=[...]")
        _, q, d, _, _ = self._problem(
            self.total.cross, self.total.totals.sums, self.total.totals.sum_weights
        )
        # No penalized column (``y ~ 1``): a grid of the smallest penalty, as for GLMs.
        top = float(np.max(np.abs(q / d))) if q.size else 0.0
        return geometric_grid(top / l1_ratio, count, eps)

    def _path(
        self, problem: tuple[Any, ...], grid: np.ndarray, l1_ratio: float, tol: float
    ) -> tuple[np.ndarray, np.ndarray]:
        Q, q, d, ybar, xbar = problem
        Qs = Q / np.outer(d, d)
        qs = q / d
        k = q.size
        coefs = np.zeros((grid.size, k))
        intercepts = np.zeros(grid.size)
        start = np.zeros(k)
        for i, a in enumerate(grid):
            b, _ = solve_enet_gram(
                Qs, qs, np.full(k, a * l1_ratio), np.full(k, a * (1 - l1_ratio)), start, tol=tol
            )
            start = b
            coefs[i] = b / d
            intercepts[i] = ybar - xbar @ coefs[i] if self.intercept is not None else 0.0
        return coefs, intercepts

    def _mse(self, fold: Any, coefs: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
        """Held-out (weighted) mean squared error of each path point on one fold."""
        idx = self.index
        cross = fold.cross[np.ix_(idx, idx)]
        sums = fold.totals.sums[idx]
        sw = fold.totals.sum_weights
        if sw <= 0:
            return np.full(coefs.shape[0], np.nan)
        t, s = self.shift[idx], self.scale[idx]
        out = np.empty(coefs.shape[0])
        for i, (b, b0) in enumerate(zip(coefs, intercepts)):
            # residual = c0 + a'z in the transformed columns of the fold
            a = np.append(-b * s[:-1], s[-1])
            c0 = t[-1] - b0 - t[:-1] @ b
            out[i] = (a @ cross @ a + 2 * c0 * (a @ sums) + c0 * c0 * sw) / sw
        return out

    def run(
        self, grid: np.ndarray, l1_ratio: float, tol: float, max_iter: int, cv: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        totals = self.total.totals
        full = self._problem(self.total.cross, totals.sums, totals.sum_weights)
        path, intercepts = self._path(full, grid, l1_ratio, tol)
        if not cv:
            return path, intercepts, None
        check_folds(
            [fold.totals.sum_weights if fold.totals.nobs else 0.0 for fold in self.folds],
            [totals.sum_weights - fold.totals.sum_weights for fold in self.folds],
            self.nobs,
        )
        losses = np.empty((grid.size, len(self.folds)))
        for f, fold in enumerate(self.folds):
            train = self._problem(
                self.total.cross - fold.cross,
                totals.sums - fold.totals.sums,
                totals.sum_weights - fold.totals.sum_weights,
            )
            coefs, b0 = self._path(train, grid, l1_ratio, tol)
            losses[:, f] = self._mse(fold, coefs, b0)
        return path, intercepts, losses


class GlmPath:
    """The GLM path by IRLS passes, each pass serving every cross-validation model."""

    def __init__(
        self,
        spec: Any,
        transform: ColumnTransform,
        intercept: int | None,
        standardize: bool,
        family: Any,
        folds: int,
        missing: str,
        source: Source,
        options: dict[str, Any],
        cache: CacheRef | None = None,
    ) -> None:
        self.spec, self.transform, self.intercept = spec, transform, intercept
        self.cache = cache
        self.standardize, self.family, self.folds = standardize, family, folds
        self.missing, self.source, self.options = missing, source, options
        self.p = transform.p
        self.models = 1 + (folds if folds > 1 else 0)
        self.passes = 0
        self.shift = np.asarray(transform.shift[: self.p])
        self.scale = np.asarray(transform.scale[: self.p])
        self.penalized = np.array([j != intercept for j in range(self.p)])
        first = self._pass(np.zeros((self.models, self.p)), moments=True)
        self.nobs = int(first.nobs)
        check_weight(float(first.sum_weights[0]), self.nobs)
        if folds > 1:
            check_folds(first.test_weights[1:], first.sum_weights[1:], self.nobs)
        sw = first.sum_weights[:, None]  # per model: all rows, then each training set
        mean = first.sums / sw
        # glmnet's standardization, per model (cv.glmnet standardizes each fold's fit by
        # its training rows): the weighted population sd, or without an intercept (the
        # columns are not centred) the root mean square.
        spread = first.squares / sw - (mean**2 if intercept is not None else 0.0)
        sd = np.sqrt(np.clip(spread, 0, None))[:, : self.p]
        # Penalty weight of |gamma_j|, the z-space coefficient (z_j = (x_j - shift_j) /
        # scale_j, so gamma_j = scale_j b_j): the penalty is on the original coefficient,
        # |b_j| = |gamma_j| / scale_j, or on the standardized column's, sd(x_j) |b_j| =
        # sd(z_j) |gamma_j|.
        factor = np.tile(1.0 / self.scale, (self.models, 1))
        if standardize:
            factor = np.where(sd > 0, sd, factor)
        self.factor = np.where(self.penalized, factor, 0.0)  # (models, p)
        self.start = np.zeros((self.models, self.p))
        if intercept is not None:
            ybar = float(np.clip(mean[0, -1], 1e-10, None))
            if family.name == "binomial":
                ybar = min(ybar, 1 - 1e-10)
            self.start[:, intercept] = float(family.link(np.array([ybar]))[0])

    def _pass(self, params: np.ndarray, moments: bool = False) -> Any:
        self.passes += 1
        task = IrlsTask(
            self.spec,
            self.transform,
            self.family,
            params,
            self.folds,
            self.missing,  # type: ignore[arg-type]
            cache=self.cache,
            moments=moments,
        )
        return run_pass(task, self.source, pass_name="enet-irls", **self.options)

    def grid(
        self, alpha: Any, alphas: Any, l1_ratio: float, n_alphas: int, eps: float
    ) -> np.ndarray:
        if alpha is not None:
            return np.array([float(alpha)])
        if alphas is not None and not isinstance(alphas, int):
            return np.sort(np.asarray(alphas, dtype=np.float64))[::-1]
        if l1_ratio == 0:
            raise ValueError("the alpha grid needs l1_ratio > 0; pass alphas=[...]")
        count = alphas if isinstance(alphas, int) else n_alphas
        stat = self._pass(self.start)
        if self.intercept is not None and (
            self.spec.offset is not None or self.spec.exposure is not None
        ):
            # glmnet's lambda_max is the gradient at the intercept-only fit. Without an
            # offset that fit is link(ybar); with one it is not (Poisson with exposure:
            # log(sum y / sum exposure)), so IRLS on the intercept alone finds it: with
            # every other coefficient 0, each step is the intercept's weighted mean of
            # the working response.
            i = self.intercept
            for _ in range(100):
                new = stat.target[:, i] / stat.cross[:, i, i]
                step = float(np.max(np.abs(new - self.start[:, i])))
                self.start[:, i] = new
                stat = self._pass(self.start)
                if step <= 1e-13 * max(1.0, float(np.max(np.abs(new)))):
                    break
        gradient = (stat.cross[0] @ self.start[0] - stat.target[0]) / stat.sum_weights[0]
        ratio = np.abs(gradient[self.penalized]) / self.factor[0, self.penalized]
        return geometric_grid(float(np.max(ratio)) / l1_ratio if ratio.size else 0.0, count, eps)

    def _objective(self, stat: Any, params: np.ndarray, a: float, l1_ratio: float) -> np.ndarray:
        penalty = a * (
            l1_ratio * np.sum(np.abs(params) * self.factor, axis=1)
            + (1 - l1_ratio) / 2 * np.sum((params * self.factor) ** 2, axis=1)
        )
        return stat.deviance / (2 * stat.sum_weights) + penalty

    def run(
        self, grid: np.ndarray, l1_ratio: float, tol: float, max_iter: int, cv: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        params = self.start.copy()
        path = np.zeros((grid.size, self.p))
        losses = np.zeros((grid.size, self.folds)) if cv else None
        unconverged = []
        for i, a in enumerate(grid):
            l1 = a * l1_ratio * self.factor
            l2 = a * (1 - l1_ratio) * self.factor**2  # per model (row), per coefficient
            good = params.copy()  # last accepted coefficients of each model
            good_objective = np.full(self.models, np.inf)
            for _ in range(max_iter):
                stat = self._pass(params)
                objective = self._objective(stat, params, a, l1_ratio)
                new = params.copy()
                change = 0.0
                for m in range(self.models):
                    if objective[m] > good_objective[m] * (1 + 1e-12):
                        new[m] = (params[m] + good[m]) / 2  # step halving
                        change = np.inf
                        continue
                    good[m], good_objective[m] = params[m], objective[m]
                    Q = stat.cross[m] / stat.sum_weights[m]
                    q = stat.target[m] / stat.sum_weights[m]
                    new[m], _ = solve_enet_gram(Q, q, l1[m], l2[m], params[m], tol=tol)
                    scale = max(1.0, float(np.max(np.abs(new[m]))))
                    change = max(change, float(np.max(np.abs(new[m] - params[m]))) / scale)
                if losses is not None:
                    losses[i] = stat.test_deviance[1:] / np.where(
                        stat.test_weights[1:] > 0, stat.test_weights[1:], np.nan
                    )
                params = new
                if change <= max(tol, 1e-12) * 100:
                    break
            else:
                unconverged.append(float(a))
            path[i] = params[0]
        if unconverged:
            warnings.warn(
                f"IRLS did not converge in {max_iter} passes for {len(unconverged)} of "
                f"{grid.size} penalties (largest {max(unconverged):.4g}); the data may be "
                "separable or the penalty too small: raise max_iter or alpha",
                UserWarning,
                stacklevel=3,
            )
        coefs = path[:, self.penalized] / self.scale[self.penalized]
        intercepts = np.zeros(grid.size)
        if self.intercept is not None:
            intercepts = path[:, self.intercept] - coefs @ self.shift[self.penalized]
        return coefs, intercepts, losses
