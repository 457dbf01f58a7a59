"""What each partition computes for predictions (runs on workers).

A task encodes its partition with the fitted design (predictor columns only) and
computes, for each kept design row ``x`` and the non-aliased estimates ``b`` with
their covariance ``C`` (aliased columns, reported as NaN, contribute nothing):

- ``predicted = x'b``;
- ``mean_se = sqrt(x'Cx)``, or ``|x'L|`` when the fit stored a factor ``L`` of ``C``
  (``cov_factor``: ``x'Cx`` from the explicit ``C`` loses ``cond**2 * eps`` to
  cancellation on an ill-conditioned design, ``x'L`` about ``cond * eps``);
  ``mean_ci_* = predicted -/+ q * mean_se``;
- ``obs_ci_* = predicted -/+ q * sqrt(mean_se**2 + scale)``.

A :class:`ResidualModel` reads the response (and the weights) as well and computes
a residual of the fitted model instead (``results.resid(data, kind=...)``): the same
encoding, numbering of rows, dropped-row counts and part files. With an influence
kind (:data:`INFLUENCE`, ``results.influence(data, kind=...)``) it computes a row's
leverage ``h = w x'Hx`` (``H`` the inverse Gram of the fit's weighted design, ``w``
the row's Hessian weight) and from it the studentized residual, Cook's distance and
its p-value, and for a linear fit the externally studentized residual and DFFITS,
whose leave-one-out variance comes from the fit's ``ssr`` and the row's own residual
and leverage (no leave-one-out loop); a GLM's ``H`` comes from one
:class:`GramTask` pass at the final estimates. Where that pass gives the triangular
factor ``R`` of ``sqrt(W) X`` (``H = R^{-1} R^{-T}``), the leverage is the squared norm
``w |R^{-T} x|^2`` (:func:`factor_quadratic_forms`): ``x'Hx`` with ``H`` an explicit
inverse loses about ``cond**2 * eps`` to cancellation (a 0.9-fold GLM leverage, 1e-3 for
a linear fit's, at a condition number of 1e10), the norm about ``cond * eps``.

In memory the values go back to the driver; out of core the worker writes them to
its own Parquet part file and returns only counts.

``predicted`` is summed row by row, so it is bitwise the same for any partitioning
and any backend; ``mean_se`` goes through a BLAS product whose blocking follows the
partition's size, so across partitionings it agrees to the last bit or two.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import scipy.linalg

from shardfit.data.convert import write_atomically
from shardfit.data.partition import Partition
from shardfit.design.materialize import DesignChunk, encode_partition
from shardfit.design.spec import DesignSpec
from shardfit.errors import ReadError
from shardfit.stats._distributions import f_sf, norm_ppf, t_ppf

if TYPE_CHECKING:
    from shardfit.models.families import Family

__all__ = [
    "GLM_INFLUENCE",
    "GLM_RESIDUALS",
    "INFLUENCE",
    "LINEAR_RESIDUALS",
    "CountRows",
    "GramTask",
    "HessianPart",
    "PartPrediction",
    "PredictTask",
    "PredictionModel",
    "ResidualModel",
    "critical_value",
    "factor_quadratic_forms",
    "hessian_factor",
    "hessian_weights",
    "prediction_model",
    "residual_model",
    "residual_values",
    "source_positions",
    "total_counts",
    "value_columns",
    "warn_dropped",
    "write_atomically",
]

Unseen = Literal["raise", "zero"]
#: What a task computes: the mean only, ``mean_se`` too (get_prediction), or intervals.
Outputs = Literal["mean", "mean_se", "confidence", "prediction"]

MEAN_COLUMNS = ("mean_se", "mean_ci_lower", "mean_ci_upper")
OBS_COLUMNS = ("obs_ci_lower", "obs_ci_upper")
# Rows per block of x'Cx: bounds the temporary (block x p) product.
_BLOCK_ROWS = 16_384
#: x'Cx below minus this share of sum |x_i C_ij x_j| is no rounding: C is indefinite.
_INDEFINITE_TOLERANCE = 1e-12


def value_columns(outputs: Outputs) -> tuple[str, ...]:
    """The columns a task with ``outputs`` returns, after ``predicted``."""
    return {
        "mean": (),
        "mean_se": ("mean_se",),
        "confidence": MEAN_COLUMNS,
        "prediction": MEAN_COLUMNS + OBS_COLUMNS,
    }[outputs]


def critical_value(use_t: bool, df: float | None, alpha: float) -> float:
    """The ``1 - alpha/2`` quantile of Student's t with ``df`` (or of the normal)."""
    if use_t:
        return float(t_ppf(1 - alpha / 2, df))
    return float(norm_ppf(1 - alpha / 2))


@dataclass(frozen=True, eq=False)
class PredictionModel:
    """What a worker needs to predict: the design and the non-aliased estimates."""

    spec: DesignSpec
    kept: np.ndarray
    params: np.ndarray
    cov: np.ndarray
    scale: float
    crit: float
    #: A factor ``L`` of ``cov`` (``L L'``, kept rows), or ``None``: ``mean_se`` is then
    #: ``|x'L|``, which keeps its accuracy where ``sqrt(x'Cx)`` cancels.
    cov_factor: np.ndarray | None = None

    #: Whether a task reads the response and weights (residuals) or predictors only.
    needs_response: ClassVar[bool] = False
    #: The pass's name, and the verb of the dropped-rows warning.
    label: ClassVar[str] = "predict"

    def names(self, outputs: Outputs) -> tuple[str, ...]:
        """The value columns a task returns (and writes, after ``row``)."""
        return ("predicted", *value_columns(outputs))

    def chunk_columns(
        self, chunk: DesignChunk, X: np.ndarray, outputs: Outputs
    ) -> dict[str, np.ndarray]:
        """The values of an encoded partition ``chunk`` whose dense design is ``X``."""
        return self.columns(X, outputs, chunk.offset)

    def columns(
        self, X: np.ndarray, outputs: Outputs, offset: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """``predicted`` and the columns of ``outputs`` for design rows ``X`` (plus the
        design's ``offset`` column, when it has one)."""
        Xk = X if self.kept.all() else X[:, self.kept]
        n = Xk.shape[0]
        predicted = np.empty(n)
        variance = np.empty(n) if outputs != "mean" else None
        size = np.zeros(n)  # 0 where x'Cx >= 0 (and with a factor: |x'L|**2)
        for start in range(0, n, _BLOCK_ROWS):
            block = np.ascontiguousarray(Xk[start : start + _BLOCK_ROWS])
            # Row by row with numpy's pairwise sum, not BLAS gemv: each row's sum then
            # does not depend on the rows beside it or on BLAS threads, so predictions
            # are bitwise the same for every partitioning and backend.
            predicted[start : start + _BLOCK_ROWS] = (block * self.params).sum(axis=1)
            if variance is not None and self.cov_factor is not None:
                # |x'L|**2: no cancellation beyond x'L's own (cond * eps, not cond**2).
                variance[start : start + _BLOCK_ROWS] = np.square(block @ self.cov_factor).sum(
                    axis=1
                )
            elif variance is not None:
                values = ((block @ self.cov) * block).sum(axis=1)
                variance[start : start + _BLOCK_ROWS] = values
                # For the negative ones only (rare): the size of the terms x'Cx sums; a
                # negative beyond their rounding means the covariance is indefinite there
                # (a two-way cluster's V1 + V2 - V12, a uniform-kernel HAC).
                negative = np.flatnonzero(values < 0)
                if negative.size:
                    rows = np.abs(block[negative])
                    size[start + negative] = ((rows @ np.abs(self.cov)) * rows).sum(axis=1)
        if offset is not None:
            predicted += offset
        out = {"predicted": predicted}
        if variance is None:
            return out
        # With a positive semi-definite C, x'Cx >= 0 exactly and rounding can leave only
        # a tiny negative where x'Cx is ~0: 0. An indefinite C (two-way cluster,
        # uniform-kernel HAC) can give x'Cx < 0 beyond rounding: NaN, as statsmodels.
        indefinite = variance < -_INDEFINITE_TOLERANCE * size
        mean_se = np.sqrt(np.where(indefinite, np.nan, np.maximum(variance, 0.0)))
        out["mean_se"] = mean_se
        if outputs == "mean_se":
            return out
        out["mean_ci_lower"] = predicted - self.crit * mean_se
        out["mean_ci_upper"] = predicted + self.crit * mean_se
        if outputs == "prediction":
            # NaN where mean_se is (statsmodels' sqrt(x'Cx + scale) stays finite there,
            # but a covariance negative at x says nothing about a new observation).
            obs_se = np.sqrt(mean_se**2 + self.scale)
            out["obs_ci_lower"] = predicted - self.crit * obs_se
            out["obs_ci_upper"] = predicted + self.crit * obs_se
        return out


def prediction_model(results: Any, alpha: float) -> PredictionModel:
    """The worker-side model of ``results`` with intervals at level ``1 - alpha``."""
    if results.spec is None:
        raise ValueError("these results carry no design spec, so they cannot predict")
    params = np.asarray(results.params_array, dtype=np.float64)
    kept = np.isfinite(params)  # aliased columns are NaN and contribute nothing
    cov = np.asarray(results.cov_array, dtype=np.float64)[np.ix_(kept, kept)]
    factor = getattr(results, "cov_factor", None)
    if factor is not None:
        factor = np.ascontiguousarray(np.asarray(factor, dtype=np.float64)[kept])
        if not np.isfinite(factor).all():
            factor = None  # not the fit's kept columns: the covariance decides
    return PredictionModel(
        spec=_predictor_spec(results.spec),
        kept=kept,
        params=params[kept],
        cov=cov,
        scale=float(results.scale),
        # df_resid, as statsmodels' get_prediction (see inference_fields).
        crit=critical_value(bool(results.use_t), results.df_resid, alpha),
        cov_factor=factor,
    )


#: Linear models' residual kinds -> statsmodels' ``RegressionResults`` attribute (the
#: name of the Series and of the part files' column).
LINEAR_RESIDUALS = {"response": "resid", "weighted": "wresid", "pearson": "resid_pearson"}
#: GLMs' residual kinds -> statsmodels' ``GLMResults`` attribute.
GLM_RESIDUALS = {
    "response": "resid_response",
    "pearson": "resid_pearson",
    "deviance": "resid_deviance",
    "working": "resid_working",
    "anscombe": "resid_anscombe",
    "anscombe_unscaled": "resid_anscombe_unscaled",
}

#: Influence measures -> statsmodels' ``OLSInfluence`` / ``GLMInfluence`` attribute
#: (``cooks_distance``, ``dffits`` and ``dffits_internal`` are the first elements of
#: statsmodels' pairs; ``cooks_pvalue`` is ``cooks_distance[1]``, which has no name of
#: its own there).
INFLUENCE = {
    "hat": "hat_matrix_diag",
    "studentized": "resid_studentized",
    "cooks": "cooks_distance",
    "cooks_pvalue": "cooks_pvalue",
    "studentized_external": "resid_studentized_external",
    "dffits": "dffits",
    "dffits_internal": "dffits_internal",
}
#: The kinds statsmodels' ``GLMInfluence`` defines: it has no leave-one-out variance
#: (``resid_studentized_external``) and no ``dffits`` or ``dffits_internal``.
GLM_INFLUENCE = ("hat", "studentized", "cooks", "cooks_pvalue")


@dataclass(frozen=True, eq=False)
class ResidualModel(PredictionModel):
    """What a worker needs for residuals: the fit's whole design (response, weights,
    offset), its estimates and scale, the kind, and the GLM family (``None``: least
    squares)."""

    kind: str = "response"
    family: Family | None = None
    #: Influence kinds: the inverse Gram ``H`` of the kept columns (``w x'Hx`` is a
    #: row's leverage) and statsmodels' ``k_vars`` (design columns, aliased included).
    hat_cov: np.ndarray | None = None
    #: Or, in place of ``hat_cov``, the upper triangular ``R`` with ``R'R = X'WX``
    #: (kept columns): leverages ``w |R^{-T} x|^2`` keep their accuracy where ``x'Hx``
    #: loses ``cond**2 * eps`` (see :func:`factor_quadratic_forms`).
    hat_factor: np.ndarray | None = None
    k_vars: int = 0
    #: The fit's residual degrees of freedom (Cook's p-values, leave-one-out variances)
    #: and a linear fit's (weighted) sum of squared residuals (leave-one-out variances).
    df_resid: float = float("nan")
    ssr: float = float("nan")

    needs_response: ClassVar[bool] = True
    label: ClassVar[str] = "resid"

    @property
    def column(self) -> str:
        """statsmodels' attribute name of this kind (``resid_deviance``...)."""
        if self.kind in INFLUENCE:
            return INFLUENCE[self.kind]
        return (LINEAR_RESIDUALS if self.family is None else GLM_RESIDUALS)[self.kind]

    def names(self, outputs: Outputs) -> tuple[str, ...]:
        return (self.column,)

    def chunk_columns(
        self, chunk: DesignChunk, X: np.ndarray, outputs: Outputs
    ) -> dict[str, np.ndarray]:
        assert chunk.y is not None  # read: needs_response
        eta = self.columns(X, "mean", chunk.offset)["predicted"]
        y = np.asarray(chunk.y, dtype=np.float64)
        if self.kind in INFLUENCE:
            return {self.column: self._influence(X, y, eta, chunk.weights)}
        values = residual_values(self.kind, self.family, y, eta, chunk.weights, self.scale)
        return {self.column: values}

    def _influence(
        self, X: np.ndarray, y: np.ndarray, eta: np.ndarray, weights: np.ndarray | None
    ) -> np.ndarray:
        """The influence measure ``kind`` of the rows (statsmodels' attribute
        :data:`INFLUENCE` names)."""
        Xk = X if self.kept.all() else X[:, self.kept]
        if self.hat_factor is not None:
            quadratic = factor_quadratic_forms(Xk, self.hat_factor)
        else:
            assert self.hat_cov is not None  # influence models carry one of them
            quadratic = np.empty(Xk.shape[0])
            for start in range(0, Xk.shape[0], _BLOCK_ROWS):
                block = np.ascontiguousarray(Xk[start : start + _BLOCK_ROWS])
                quadratic[start : start + _BLOCK_ROWS] = ((block @ self.hat_cov) * block).sum(
                    axis=1
                )
        with np.errstate(divide="ignore", invalid="ignore"):
            hat = hessian_weights(self.family, y, eta, weights) * quadratic
            if self.kind == "hat":
                return hat
            # Pearson residuals over sqrt(scale): a linear fit's resid_pearson already
            # is; a GLM's is not (statsmodels' GLMInfluence divides it).
            pearson = residual_values("pearson", self.family, y, eta, weights, self.scale)
            if self.family is not None:
                pearson = pearson / np.sqrt(self.scale)
            studentized = pearson / np.sqrt(1 - hat)
            if self.kind == "studentized":
                return studentized
            if self.kind in ("cooks", "cooks_pvalue"):
                cooks = studentized**2 * hat / (1 - hat) / self.k_vars
                if self.kind == "cooks":
                    return cooks
                # statsmodels' cooks_distance[1]: F(k_vars, df_resid), for GLMs too.
                return np.asarray(f_sf(cooks, self.k_vars, self.df_resid), dtype=float)
            if self.kind == "dffits_internal":
                return studentized * np.sqrt(hat / (1 - hat))
            # Leave-one-out variance without refitting: deleting row i leaves the sum of
            # squares ssr - e_i^2 / (1 - h_i) on df_resid - 1 degrees of freedom (e the
            # weighted residual), the mse_resid of statsmodels' leave-one-out loop.
            assert self.family is None  # influence_kind refuses these kinds for GLMs
            wresid = residual_values("weighted", None, y, eta, weights, self.scale)
            # The leave-one-out sum of squares is >= 0 exactly; rounding can leave a
            # tiny negative where it is ~0.
            deleted = np.maximum(self.ssr - wresid**2 / (1 - hat), 0.0)
            external = wresid / np.sqrt(deleted / (self.df_resid - 1) * (1 - hat))
            if self.kind == "studentized_external":
                return external
            return external * np.sqrt(hat / (1 - hat))  # dffits


def hessian_weights(
    family: Family | None, y: np.ndarray, eta: np.ndarray, weights: np.ndarray | None
) -> np.ndarray:
    """Each row's weight in the Hessian at the estimates, up to the scale: ``w`` for least
    squares; for a GLM statsmodels' observed-information factor (its
    ``hessian_factor(observed=True)``, what ``get_influence()`` uses), ``w / (g'(mu)^2
    V(mu)) (1 + (y - mu) (V g'' + V' g') / (g' V))``, which is the IRLS weight for a
    canonical link (the bracket is then 1)."""
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    if family is None:
        return w
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.asarray(family.link.inverse(eta), dtype=np.float64)
        deriv = family.link.deriv(mu)
        variance = family.variance(mu)
        curvature = variance * family.link.deriv2(mu) + family.variance_deriv(mu) * deriv
        return w / (deriv**2 * variance) * (1 + (y - mu) / (deriv * variance) * curvature)


def factor_quadratic_forms(X: np.ndarray, factor: np.ndarray) -> np.ndarray:
    """``x' R^{-1} R^{-T} x`` of each row ``x`` of ``X`` as the squared norm
    ``|R^{-T} x|^2``, ``factor`` the upper triangular ``R``.

    The rows ``R^{-T} x`` are coordinates in an orthonormal basis of the design, so the
    sum of their squares has no cancellation: it loses about ``cond * eps`` where
    ``x'Hx`` with the explicit inverse ``H = (R'R)^{-1}`` loses about ``cond**2 * eps``
    (the same reason the robust covariances sum rows ``z' R^{-1}``, see
    :func:`shardfit.models.linear_tasks.orthonormal_rows`). A triangular solve, not a
    product by an explicit ``R^{-1}``: it is backward stable row by row.
    """
    n = X.shape[0]
    out = np.empty(n)
    for start in range(0, n, _BLOCK_ROWS):
        block = np.asarray(X[start : start + _BLOCK_ROWS], dtype=np.float64)
        u = scipy.linalg.solve_triangular(factor, block.T, trans="T", check_finite=False)
        out[start : start + _BLOCK_ROWS] = np.einsum("ij,ij->j", u, u)
    return out


@dataclass(frozen=True, eq=False)
class HessianPart:
    """A partition's piece of ``X'WX`` (kept columns, ``W`` the Hessian weights): the
    upper triangular ``factor`` ``R`` of ``sqrt(W) X`` (``R'R = X'WX``) when no weight
    is negative, else the ``gram`` itself (a non-canonical link's observed information
    can be negative in places); ``rows`` the rows it holds."""

    factor: np.ndarray | None
    gram: np.ndarray | None
    rows: int


@dataclass(frozen=True)
class GramTask:
    """``X'WX`` of a partition's kept columns, ``W`` the Hessian weights at the
    estimates (:func:`hessian_weights`), as a :class:`HessianPart`: combined by
    :func:`hessian_factor`, it gives a fit's leverages."""

    model: ResidualModel
    unseen: Unseen

    def __call__(self, partition: Partition) -> HessianPart:
        chunk = encode_partition(
            self.model.spec, partition, missing="drop", unseen=self.unseen, need_response=True
        )
        X = chunk.X if isinstance(chunk.X, np.ndarray) else chunk.X.toarray()
        Xk = X[:, self.model.kept]
        assert chunk.y is not None  # read: need_response
        eta = self.model.columns(X, "mean", chunk.offset)["predicted"]
        y = np.asarray(chunk.y, dtype=np.float64)
        weights = hessian_weights(self.model.family, y, eta, chunk.weights)
        if np.all(weights >= 0):
            # The factor, not the Gram: forming X'WX squares the condition number.
            factor = _triangular_factor(Xk * np.sqrt(weights)[:, None])
            return HessianPart(factor=factor, gram=None, rows=Xk.shape[0])
        gram = np.asarray((Xk * weights[:, None]).T @ Xk)
        return HessianPart(factor=None, gram=gram, rows=Xk.shape[0])


def _triangular_factor(A: np.ndarray) -> np.ndarray:
    """The upper triangular ``R`` (at most ``A``'s columns square rows) of ``A = QR``."""
    if A.shape[0] == 0:
        return np.zeros((0, A.shape[1]))
    return np.triu(scipy.linalg.qr(A, mode="r", check_finite=False)[0][: A.shape[1]])


def hessian_factor(parts: Sequence[HessianPart], k: int) -> tuple[np.ndarray | None, np.ndarray]:
    """``(R, X'WX)`` of all partitions' :class:`HessianPart`: ``R`` the square upper
    triangular factor of ``sqrt(W) X`` (the partitions' factors stacked and factored
    again, as a tall-skinny QR), ``None`` where a partition has negative weights or the
    factor is singular (then only the Gram, whose pseudo-inverse gives the leverages)."""
    factors = [part.factor for part in parts if part.factor is not None]
    if len(factors) < len(parts):
        gram = np.zeros((k, k))
        for part in parts:
            gram += part.gram if part.gram is not None else part.factor.T @ part.factor
        return None, gram
    stacked = np.vstack([np.zeros((0, k)), *factors])
    r = _triangular_factor(stacked)
    gram = r.T @ r
    if r.shape[0] < k or not np.all(np.abs(np.diag(r)) > 0):
        return None, gram
    return r, gram


def residual_values(
    kind: str,
    family: Family | None,
    y: np.ndarray,
    eta: np.ndarray,
    weights: np.ndarray | None,
    scale: float,
) -> np.ndarray:
    """Residuals of rows with responses ``y`` and linear predictors ``eta`` (offset
    included), as statsmodels' attributes (see :data:`LINEAR_RESIDUALS` and
    :data:`GLM_RESIDUALS`); ``weights`` are the fit's (``var_weights`` for a GLM)."""
    if family is None:  # least squares: the fitted value is eta
        resid = y - eta
        if kind == "response":
            return resid
        # statsmodels' wresid, sqrt(w) y - sqrt(w) x'b, with w = 1 for OLS.
        wresid = resid if weights is None else np.sqrt(weights) * resid
        return wresid if kind == "weighted" else wresid / np.sqrt(scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.asarray(family.link.inverse(eta), dtype=np.float64)
        resid = y - mu
        w = 1.0 if weights is None else weights
        if kind == "response":
            return resid
        if kind == "pearson":
            return resid * np.sqrt(w) / np.sqrt(family.variance(mu))
        if kind == "deviance":
            return family.resid_dev(y, mu, weights)
        if kind == "working":
            return resid * family.link.deriv(mu)
        if kind == "anscombe":
            return family.resid_anscombe(y, mu, weights, scale)
        if kind == "anscombe_unscaled":
            return family.resid_anscombe(y, mu, weights, 1.0)
    raise ValueError(f"unknown residual kind {kind!r}")


def residual_model(results: Any, kind: str, family: Family | None) -> ResidualModel:
    """The worker-side residual model of ``results`` (``family`` ``None``: a linear fit)."""
    base = prediction_model(results, 0.05)
    spec = results.spec
    # Identifier columns (clusters) only serve the covariance: residuals need not read
    # them, nor drop rows where they are missing.
    identifiers = set(spec.extra_columns) - set(spec.formula_columns)
    columns = tuple(name for name in spec.raw_columns if name not in identifiers)
    return ResidualModel(
        spec=replace(spec, raw_columns=columns, extra_columns=()),
        kept=base.kept,
        params=base.params,
        cov=base.cov,
        scale=base.scale,
        crit=base.crit,
        kind=kind,
        family=family,
    )


def _predictor_spec(spec: DesignSpec) -> DesignSpec:
    """The spec reading only predictor columns: new data needs no response or weights."""
    from shardfit.design.formula import analyze_formula

    if spec.formula is None:
        needed = set(spec.x_columns)
    else:
        formula = str(spec.formula)
        rhs = formula.split("~", 1)[1] if spec.has_formula_response else formula
        needed = set(analyze_formula(rhs).variables) & set(spec.formula_columns)
    needed |= {name for name in (spec.offset, spec.exposure) if name}
    columns = tuple(name for name in spec.raw_columns if name in needed)
    return replace(spec, raw_columns=columns, weights=None, extra_columns=())


@dataclass(frozen=True, eq=False)
class PartPrediction:
    """One partition's outcome: counts, and the values (in memory) or the file written."""

    rows_read: int
    dropped: dict[str, int]
    skipped: int
    row_index: np.ndarray | None = None
    values: dict[str, np.ndarray] | None = None
    file: str | None = None
    written: int = 0

    @property
    def nrows(self) -> int:  # progress displays count rows read
        return self.rows_read


@dataclass(frozen=True)
class PredictTask:
    """Encode a partition and predict; write a part file when ``layout`` is given.

    ``layout`` maps a partition key to ``(file name, first row, rows expected)``;
    ``out_dir`` is an absolute directory the workers can see.
    """

    model: PredictionModel
    outputs: Outputs
    unseen: Unseen
    out_dir: str | None = None
    layout: dict[str, tuple[str, int, int]] | None = None

    def __call__(self, partition: Partition) -> PartPrediction:
        chunk = encode_partition(
            self.model.spec,
            partition,
            missing="drop",
            unseen=self.unseen,
            need_response=self.model.needs_response,
        )
        # A structured (split) design is a speed-up of fits; prediction multiplies densely.
        X = chunk.X if isinstance(chunk.X, np.ndarray) else chunk.X.toarray()
        values = self.model.chunk_columns(chunk, X, self.outputs)
        dropped = {reason: n for reason, n in chunk.dropped.items() if n}
        if self.layout is None or self.out_dir is None:
            return PartPrediction(
                chunk.rows_read, dropped, chunk.skipped_rows, chunk.row_index, values
            )
        name, first, expected = self.layout[partition.key]
        if chunk.rows_read != expected:
            raise ReadError(
                f"partition {partition.key} gave {chunk.rows_read} rows where {expected} "
                "were counted before: the data changed while predicting"
            )
        table = pa.table({"row": (first + chunk.row_index).astype(np.int64), **values})
        write_atomically(Path(self.out_dir) / name, table=table)
        return PartPrediction(
            chunk.rows_read, dropped, chunk.skipped_rows, file=name, written=chunk.nrows
        )


@dataclass(frozen=True)
class CountRows:
    """Rows a partition yields when ``columns`` are read (what PredictTask reads)."""

    columns: tuple[str, ...]

    def __call__(self, partition: Partition) -> int:
        return partition.read(list(self.columns)).table.num_rows


def source_positions(parts: Sequence[tuple[Any, int]]) -> np.ndarray:
    """The 0-based positions in the source of the rows each partition kept, in source
    order, from ``(row_index within the partition, rows it read)`` pairs."""
    firsts = np.cumsum([0, *(rows for _, rows in parts)])
    kept = (first + np.asarray(index, np.int64) for first, (index, _) in zip(firsts, parts))
    return np.concatenate([np.zeros(0, np.int64), *kept])


def total_counts(parts: list[PartPrediction]) -> dict[str, Any]:
    """Rows read, dropped by reason, and skipped, over all partitions."""
    dropped: dict[str, int] = {}
    for part in parts:
        for reason, n in part.dropped.items():
            dropped[reason] = dropped.get(reason, 0) + n
    return {
        "read": sum(part.rows_read for part in parts),
        "dropped": dropped,
        "skipped": sum(part.skipped for part in parts),
    }


def warn_dropped(
    counts: dict[str, Any], name: str, *, stacklevel: int = 4, label: str = "predict"
) -> None:
    """Say how many rows got no prediction (``label="resid"``: no residual); nothing is
    dropped without a word.

    The default ``stacklevel`` points at the code calling ``LinearResults.predict``.
    """
    total = sum(counts["dropped"].values())
    if total:
        reasons = ", ".join(f"{reason}: {n:,}" for reason, n in counts["dropped"].items())
        if label == "resid":
            what, hint = "residual", "their values are NaN (.dropna() leaves statsmodels' rows)"
        else:
            what, hint = "prediction", "get_prediction(...).row_labels names the rows kept"
        warnings.warn(
            f"{label}: {total:,} of {counts['read']:,} rows of {name!r} have no {what} "
            f"({reasons}); {hint}",
            UserWarning,
            stacklevel=stacklevel,
        )
