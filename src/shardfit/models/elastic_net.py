"""Exact elastic net out of core: Gaussian from one pass, GLMs by IRLS passes.

``elastic_net(formula, data, alpha=None, l1_ratio=0.5, cv=K)`` minimizes
scikit-learn's objectives (so the answers equal ``ElasticNet``/``ElasticNetCV`` and
``LogisticRegression(penalty="elasticnet")`` on the same data in memory):

- Gaussian: ``1/(2 W) sum_i w_i (y_i - b0 - x_i b)^2 + alpha * l1_ratio * |b|_1 +
  alpha * (1 - l1_ratio) / 2 * |b|^2`` with ``W = sum(w)`` (``w = 1`` without weights),
  the intercept ``b0`` unpenalized and found by (weighted) centring, as scikit-learn's
  ``fit_intercept=True`` does. A formula without an intercept (``y ~ 0 + ...``) fits no
  intercept and does not centre.
- GLMs (binomial, Poisson, any family and link of :mod:`shardfit.models.families`):
  ``1/W sum_i w_i l_i(b0, b) + alpha * (l1_ratio |b|_1 + (1 - l1_ratio) / 2 |b|^2``
  where ``l_i`` is half the unit deviance (the negative log-likelihood up to a
  constant); for the logistic model ``alpha = 1 / (C W)`` in scikit-learn's terms
  (``1 / (C n)`` unweighted; scikit-learn's ``sample_weight`` is ``weights`` here).

``standardize=False`` (the default) penalizes the coefficients of the columns as they
are, as scikit-learn does; ``standardize=True`` penalizes those of columns divided by
their (weighted, population) standard deviation, as ``StandardScaler`` followed by the
estimator (refitted per training fold in cross-validation) or glmnet, and reports the
coefficients on the original scale; every family alike. Without an intercept the columns
are not centred and the scale is their root mean square, as glmnet's.

Gaussian: one pass accumulates the Gram statistic of ``[X | y]`` of each fold's rows
(folds: :func:`~shardfit.models.elastic_net_tasks.cv_folds`); every training set's
centred Gram is the total minus its fold, and the held-out mean squared errors follow
from each fold's statistic, so the whole path with K-fold cross-validation is computed
from the p x p statistics alone. The alpha grid is scikit-learn's:
``alpha_max = max_j |x_j' W (y - ybar)| / (W l1_ratio)`` on all rows, ``n_alphas``
values spaced evenly in log scale down to ``eps * alpha_max``; the chosen alpha
minimizes the mean over folds of the held-out MSE (ties: the largest alpha).

GLMs: every IRLS step is one pass (the first reads and encodes, the others read the
workers' partition cache) computing, for the full-data model and for each
fold's model, the weighted Gram and working response at its current coefficients;
coordinate descent solves each penalized weighted least-squares problem, with step
halving when the objective rises, and warm starts along the path.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

import numpy as np

from shardfit.data.partition import Source
from shardfit.data.resolve import as_source
from shardfit.design.schema import LearnedDesign, learn_design
from shardfit.engine import PartitionCache, run_pass, session
from shardfit.engine.blas import single_threaded_blas
from shardfit.errors import DesignError
from shardfit.models.elastic_net_paths import GaussianPath, GlmPath
from shardfit.models.elastic_net_tasks import FoldGramTask
from shardfit.models.linear_tasks import MomentsTask
from shardfit.results.regularized import ElasticNetResults
from shardfit.stats.transform import ColumnTransform

__all__ = ["elastic_net"]


def elastic_net(
    formula: str,
    data: Any,
    *,
    alpha: float | None = None,
    l1_ratio: float = 0.5,
    cv: int | None = None,
    family: Any = "gaussian",
    link: str | None = None,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    alphas: Any = None,
    n_alphas: int = 100,
    eps: float = 1e-3,
    standardize: bool = False,
    tol: float = 1e-10,
    max_iter: int = 50,
    missing: Literal["drop", "raise"] = "drop",
    cache_bytes: int | None = None,
    backend: Any = None,
    workers: int | None = None,
    progress: bool = False,
) -> ElasticNetResults:
    """Fit an elastic net exactly, with its path and K-fold cross-validation.

    Parameters
    ----------
    formula : str
        A formulaic formula, e.g. ``"y ~ x1 + C(g)"``. Formula strings are evaluated
        as Python: never pass one from an untrusted source.
    data : Source, path, glob, pandas.DataFrame or pyarrow.Table
        The data, of any size.
    alpha : float, optional
        The penalty. Without it (and without ``alphas``) the path runs over
        scikit-learn's grid and the penalty is chosen by cross-validation (``cv``), or
        is the smallest of the grid.
    l1_ratio : float
        The L1 share of the penalty, in [0, 1] (the grid needs it > 0).
    cv : int, optional
        The number of cross-validation folds (>= 2). A fold left without rows (small
        data: rows go to folds by a hash) raises a ``DesignError``.
    family, link : str or Family
        ``"gaussian"`` (the default), ``"binomial"``, ``"poisson"``, ... and the link.
    weights : str, optional
        A column of non-negative row weights.
    offset, exposure : str, optional
        Columns of a GLM's offset and exposure (``log(exposure)`` joins the offset).
    alphas : int or array_like, optional
        The path: explicit penalties, or how many (like ``n_alphas``).
    n_alphas, eps : int, float
        The grid's length and ratio of its smallest to largest penalty.
    standardize : bool
        Penalize the coefficients of standardized columns (see the module notes).
    tol : float
        Relative tolerance of the solver's optimality conditions (and of IRLS).
    max_iter : int
        IRLS passes per penalty at most (GLMs).
    missing : {"drop", "raise"}
        Rows missing a value the formula needs.
    cache_bytes : int, optional
        GLMs: in-memory bound per worker of the encoded-partition cache that the IRLS
        passes after the first read (beyond it, partitions spill to local files,
        memory-mapped when used); default 64 MiB (see :mod:`shardfit.engine.cache`).
    backend, workers, progress
        Where the passes run (see :func:`shardfit.engine.run_pass`).

    Returns
    -------
    ElasticNetResults
        ``params``, ``coef_``, ``intercept_``, ``alpha_``, ``alpha_1se`` (glmnet's
        one-standard-error rule), ``path``, ``cv_curve``, ``predict()``, ``summary()``.
    """
    _check(alpha, l1_ratio, cv, n_alphas, eps)
    alphas = _check_alphas(alphas)
    if alpha is not None and alphas is not None:
        raise ValueError(
            "Pass either 'alpha' (one penalty) or 'alphas' (a path), not both: with "
            "alpha given, alphas would be ignored."
        )
    from shardfit.models.families import get_family

    fam = get_family(family, link)
    source = as_source(data)
    folds = cv if cv is not None else 1
    with session(backend, workers=workers, partitions=source.npartitions) as sess:
        learned = learn_design(
            formula,
            source,
            weights=weights,
            offset=offset,
            exposure=exposure,
            needs_response=True,
            missing=missing,
            backend=sess,
            progress=progress,
        )
        if learned.rows_complete == 0:
            raise DesignError(f"no rows of {source.name!r} have every value the model needs")
        spec = learned.spec
        intercept = spec.intercept_index()
        gaussian = fam.name == "gaussian" and fam.link.name == "identity"
        if gaussian and (offset is not None or exposure is not None):
            raise ValueError("offset and exposure apply to GLMs; subtract an offset from y")
        transform = _column_transform(learned, source, intercept, sess, missing, gaussian)
        options = {"backend": sess, "progress": progress, "allreduce": True}
        # The IRLS passes of a GLM's path read the encoded partitions from the workers'
        # cache (the Gaussian path makes one pass and needs none).
        with contextlib.ExitStack() as stack:
            fit: GaussianPath | GlmPath
            if gaussian:
                stats = run_pass(
                    FoldGramTask(spec, transform, folds, missing),
                    source,
                    pass_name="enet-gram",
                    **options,
                )
                fit = GaussianPath(stats.grams, transform, intercept, standardize)
                passes = 1
            else:
                cache = stack.enter_context(PartitionCache(sess, max_bytes=cache_bytes))
                fit = GlmPath(
                    spec,
                    transform,
                    intercept,
                    standardize,
                    fam,
                    folds,
                    missing,
                    source,
                    options,
                    cache.ref,
                )
                passes = 0
            # Small p x p problems: one BLAS thread is faster, and the same everywhere.
            with single_threaded_blas():
                grid = fit.grid(alpha, alphas, l1_ratio, n_alphas, eps)
                path, intercepts, cv_loss = fit.run(grid, l1_ratio, tol, max_iter, folds > 1)
            passes += getattr(fit, "passes", 0)
    if cv_loss is not None:
        best = int(np.argmin(cv_loss.mean(axis=1)))
    else:
        best = grid.size - 1 if alpha is None else 0
    names = [n for j, n in enumerate(spec.column_names) if j != intercept]
    return ElasticNetResults(
        names=tuple(names),
        coef_array=path[best].copy(),
        intercept=float(intercepts[best]),
        alpha=float(grid[best]),
        l1_ratio=float(l1_ratio),
        alphas=grid,
        path_array=path,
        path_intercepts=intercepts,
        cv_mse=cv_loss,
        family=fam.name,
        link=fam.link.name,
        nobs=fit.nobs,
        rows_read=learned.rows,
        rows_skipped=learned.summary.skipped_rows,
        standardize=standardize,
        fit_intercept=intercept is not None,
        intercept_name=spec.column_names[intercept] if intercept is not None else None,
        formula=formula,
        data_name=source.name,
        spec=spec,
        passes=passes + 1,  # the schema pass
        extra={"design_order": list(spec.column_names), "folds": folds},
    )


def _check(alpha: Any, l1_ratio: float, cv: int | None, n_alphas: int, eps: float) -> None:
    if not 0 <= l1_ratio <= 1:
        raise ValueError(f"The 'l1_ratio' parameter must be in [0, 1]. Got {l1_ratio!r}.")
    if alpha is not None and not (np.isscalar(alpha) and float(alpha) >= 0):
        raise ValueError(f"The 'alpha' parameter must be a float >= 0. Got {alpha!r}.")
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, int) or cv < 2):
        raise ValueError(f"The 'cv' parameter must be an int >= 2. Got {cv!r}.")
    if isinstance(n_alphas, bool) or not isinstance(n_alphas, int) or n_alphas < 1:
        raise ValueError(f"The 'n_alphas' parameter must be an int >= 1. Got {n_alphas!r}.")
    if not 0 < eps < 1:
        raise ValueError(f"The 'eps' parameter must be in (0, 1). Got {eps!r}.")


def _check_alphas(alphas: Any) -> Any:
    """``alphas``: a count >= 1, or a non-empty list of finite penalties >= 0 (as
    scikit-learn checks them; a negative penalty is no elastic net)."""
    if alphas is None:
        return None
    if isinstance(alphas, bool):
        raise ValueError(f"The 'alphas' parameter must be an int >= 1 or a list. Got {alphas!r}.")
    if isinstance(alphas, int | np.integer):
        if alphas < 1:
            raise ValueError(f"The 'alphas' parameter must be an int >= 1. Got {alphas!r}.")
        return int(alphas)
    try:
        values = np.asarray(alphas, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"The 'alphas' parameter must be a list of floats: {error}") from error
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"The 'alphas' parameter must be a non-empty 1-D list of penalties. Got {alphas!r}."
        )
    for index, value in enumerate(values):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"alphas[{index}] == {float(value)!r}, must be a finite float >= 0.")
    return values


def _column_transform(
    learned: LearnedDesign,
    source: Source,
    intercept: int | None,
    sess: Any,
    missing: str,
    shift_response: bool,
) -> ColumnTransform:
    """Centre (with an intercept) and scale dense columns by the first partition's moments.

    A reparametrization that keeps the accumulated Gram well conditioned; the results
    are converted back to the original columns.
    """
    spec = learned.spec
    p = len(spec.column_names)
    dense = spec.dense_columns()
    first = next(i for i, counts in enumerate(learned.partitions) if counts.complete > 0)
    sample = Source(source.name, (source.partitions[first],), source.schema)
    moments = run_pass(
        MomentsTask(spec, missing),  # type: ignore[arg-type]
        sample,
        backend=sess,
        pass_name="moments",
        allreduce=True,
    )
    spread = np.where(moments.std > 0, moments.std, 1.0)
    magnitude = np.where(moments.std > 0, spread, np.maximum(np.abs(moments.mean), 1.0))
    shift = np.zeros(p + 1)
    scale = np.ones(p + 1)
    for j in range(p):
        if dense[j] and j != intercept:
            scale[j] = magnitude[j]
            if intercept is not None:
                shift[j] = moments.mean[j]
    if shift_response:
        scale[p] = magnitude[p]
        if intercept is not None:
            shift[p] = moments.mean[p]
    return ColumnTransform(tuple(shift), tuple(scale), dense)
