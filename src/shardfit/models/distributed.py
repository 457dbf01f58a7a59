"""Distributed estimation: fit every partition, then join (averaging or debiasing).

``DistributedModel`` has statsmodels' constructor and ``fit`` signature
(``statsmodels.base.distributed_estimation.DistributedModel``), so code written for
statsmodels moves over by changing the import; the per-partition fits run on any
shardfit backend through :func:`~shardfit.engine.run.map_partitions`. Methods:

``"debiased"`` (default)
    Per partition a lasso (elastic net) fit, the gradient of its penalized loss, and
    node-wise lasso regressions for that partition's share of the variables; the join
    averages and debiases with the approximate inverse covariance (Lee, Liu, Sun &
    Taylor 2015), then zeroes coefficients below ``threshold``.
``"average"``
    The mean of unregularized per-partition fits.
``"average_regularized"``
    The mean of per-partition elastic-net fits.

These approximate the full-data estimate (they are not exact). With the default
``solver="auto"``, least squares (statsmodels' ``OLS``/``WLS``) and GLMs of the
shardfit families run shardfit's solvers, which reproduce statsmodels' coordinate
descent step for step on the partition's Gram matrix (equal estimates, far faster);
any other statsmodels model class runs statsmodels itself on each partition.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np

from shardfit.data.partition import Source
from shardfit.engine import map_partitions, session
from shardfit.models.distributed_data import fit_source
from shardfit.models.distributed_join import indefinite_variables, join_average, join_debiased
from shardfit.models.distributed_tasks import Counted, FitOptions, PartitionFit
from shardfit.results.regularized import DistributedResults

__all__ = ["DistributedModel"]

Method = Literal["debiased", "average", "average_regularized"]
_METHODS = ("debiased", "average", "average_regularized")
# statsmodels' per-partition functions and joins, by name, and the method they make.
_SM_ESTIMATION = {
    "_est_regularized_debiased": "debiased",
    "_est_unregularized_naive": "average",
    "_est_regularized_naive": "average_regularized",
}
_SM_JOIN = {"_join_debiased": "debiased", "_join_naive": "average"}
_FAST_KWDS = {"ols": {"weights"}, "glm": {"family", "offset", "exposure", "var_weights"}}
_FAST_FIT_KWDS = {"alpha", "L1_wt", "maxiter", "cnvrg_tol", "zero_tol"}
# GLM.fit keywords an unregularized fit (statsmodels' _est_unregularized_naive passes
# fit_kwds to mod.fit) runs in shardfit's IRLS; OLS.fit ignores them (pinv), as here.
_IRLS_FIT_KWDS = {"maxiter", "tol", "atol", "rtol", "tol_criterion", "method"}


class DistributedModel:
    """Fit a model on each partition and join the estimates.

    Parameters
    ----------
    partitions : int, optional
        The number of partitions ``K`` (statsmodels' first argument); it sets each
        partition's share ``ceil(p / K)`` of node-wise regressions. Default: the number
        of partitions of the data.
    model_class : statsmodels model class, optional
        Fit this class on every partition (``init_kwds`` passed to it). statsmodels'
        ``OLS``, ``WLS`` and ``GLM`` (shardfit families) use shardfit's solvers unless
        ``solver="statsmodels"``.
    init_kwds : dict, optional
        Keywords for ``model_class``, given to every partition's model as statsmodels
        does (per-row arrays, e.g. a GLM ``offset``, must then fit the partition: with
        several partitions pass them through ``init_kwds_generator``). ``OLS`` ignores
        ``weights`` (with a warning), as statsmodels' ``OLS`` does: use ``WLS``.
    estimation_method, join_method : callable, optional
        statsmodels' ``_est_*`` and ``_join_*`` functions select the method by name;
        other callables (statsmodels' signatures) run as given, with statsmodels.
    estimation_kwds, join_kwds : dict, optional
        Keywords for them (``join_kwds={"threshold": t}`` as in statsmodels).
    results_class, results_kwds
        Accepted for statsmodels compatibility; results are always
        :class:`~shardfit.results.regularized.DistributedResults`.
    model : {"ols", "glm"}
        The model when ``model_class`` is not given.
    family : str or Family, optional
        The GLM family (``"binomial"``, ``"poisson"``, ...); ``link`` its link name.
    method : {"debiased", "average", "average_regularized"}, optional
        Overrides ``estimation_method``/``join_method``; default ``"debiased"``.
    alpha : float or array_like, optional
        The penalty weight (statsmodels' ``fit_regularized(alpha=...)``); required by
        the regularized methods unless ``fit_kwds`` gives it.
    L1_wt : float
        The L1 share of the elastic-net penalty (1: lasso).
    threshold : float
        Joined coefficients smaller in absolute value are set to zero.
    formula : str, optional
        A formulaic formula for data given as a source, path or DataFrame (formula
        strings are evaluated as Python: never pass one from an untrusted source).
    weights : str, optional
        A column of weights for formula data (WLS weights; GLM variance weights).
    offset, exposure : str, optional
        Columns of a GLM's offset and exposure (``log(exposure)`` joins the offset).
    missing : {"drop", "raise"}
        Rows missing a value the formula needs.
    solver : {"auto", "shardfit", "statsmodels"}
        Who fits each partition (see above).

    Notes
    -----
    The penalized objective per partition is statsmodels':
    ``-loglike / n + alpha * ((1 - L1_wt) * |b|^2 / 2 + L1_wt * |b|_1)`` (with
    ``scale=1``), minimized by statsmodels' coordinate descent (``maxiter=50``,
    ``cnvrg_tol=1e-10``; ``fit_kwds`` may change them). A GLM with ``L1_wt=0`` (pure
    ridge) is minimized with BFGS from zero, as statsmodels' ``GLM.fit_regularized``
    does then (``maxiter`` and ``cnvrg_tol`` do not apply).
    """

    def __init__(
        self,
        partitions: int | None = None,
        model_class: Any = None,
        init_kwds: dict[str, Any] | None = None,
        estimation_method: Callable[..., Any] | None = None,
        estimation_kwds: dict[str, Any] | None = None,
        join_method: Callable[..., Any] | None = None,
        join_kwds: dict[str, Any] | None = None,
        results_class: Any = None,
        results_kwds: dict[str, Any] | None = None,
        *,
        model: Literal["ols", "glm"] = "ols",
        family: Any = None,
        link: str | None = None,
        method: Method | None = None,
        alpha: Any = None,
        L1_wt: float = 1.0,
        threshold: float = 0.0,
        formula: str | None = None,
        weights: str | None = None,
        offset: str | None = None,
        exposure: str | None = None,
        missing: Literal["drop", "raise"] = "drop",
        solver: Literal["auto", "shardfit", "statsmodels"] = "auto",
    ) -> None:
        self.partitions = partitions
        self.model_class = model_class
        self.init_kwds = dict(init_kwds or {})
        for name, value in (
            ("estimation_method", estimation_method),
            ("join_method", join_method),
            ("results_class", results_class),
        ):
            if value is not None and not callable(value):
                raise TypeError(
                    f"The '{name}' parameter must be a callable (statsmodels' "
                    f"_est_regularized_debiased, ...) or None. Got {value!r}; to name the "
                    "method, pass method='debiased', 'average' or 'average_regularized'."
                )
        self.estimation_method = estimation_method
        self.estimation_kwds = dict(estimation_kwds or {})
        self.join_method = join_method
        self.join_kwds = dict(join_kwds or {})
        self.results_class = results_class
        self.results_kwds = dict(results_kwds or {})
        self.model = model
        self.family = family
        self.link = link
        self.method = method
        self.alpha = alpha
        self.L1_wt = L1_wt
        self.threshold = threshold
        self.formula = formula
        self.weights = weights
        self.offset = offset
        self.exposure = exposure
        self.missing = missing
        self.solver = solver

    # -- fit -----------------------------------------------------------------------------
    def fit(
        self,
        data: Any,
        fit_kwds: dict[str, Any] | None = None,
        parallel_method: str = "sequential",
        parallel_backend: Any = None,
        init_kwds_generator: Iterable[dict[str, Any]] | None = None,
        *,
        backend: Any = None,
        workers: int | None = None,
        progress: bool = False,
    ) -> DistributedResults:
        """Fit every partition and join.

        Parameters
        ----------
        data : iterable of (endog, exog), Source, path, DataFrame or Arrow table
            statsmodels' ``data_generator`` (one partition per pair), or data for
            ``formula`` (its partitions are the fit's partitions).
        fit_kwds : dict, optional
            statsmodels' ``fit_regularized`` keywords (``alpha``, ``L1_wt``,
            ``maxiter``, ``cnvrg_tol``, ``zero_tol``); they override the constructor's.
        parallel_method : {"sequential", "joblib"}
            statsmodels' choice; without ``backend``, ``"sequential"`` runs serially and
            ``"joblib"`` on local processes.
        parallel_backend
            Accepted for statsmodels compatibility and ignored: pass a shardfit backend
            (e.g. a Dask client) as ``backend``.
        init_kwds_generator : iterable of dict, optional
            Per-partition model keywords (e.g. ``{"weights": w}`` for WLS).
        backend, workers
            A shardfit backend (``"serial"``, ``"processes"``, ``"dask"``, a Dask
            client, a session, ...) and its worker count.
        progress : bool
            Show a progress bar.

        Returns
        -------
        DistributedResults
        """
        method = self._method()
        fit_kwds = {} if fit_kwds is None else dict(fit_kwds)
        if parallel_method not in ("sequential", "joblib"):
            raise ValueError(
                "The 'parallel_method' parameter must be 'sequential' or 'joblib'. "
                f"Got {parallel_method!r}."
            )
        if backend is None:
            backend = "serial" if parallel_method == "sequential" else None
        with session(backend, workers=workers) as sess:
            return self._fit(sess, method, data, fit_kwds, init_kwds_generator, progress)

    def _fit(
        self,
        sess: Any,
        method: Method,
        data: Any,
        fit_kwds: dict[str, Any],
        init_kwds_generator: Iterable[dict[str, Any]] | None,
        progress: bool,
    ) -> DistributedResults:
        source, spec, names, labelled = fit_source(
            data,
            init_kwds_generator,
            formula=self.formula,
            weights=self.weights,
            offset=self.offset,
            exposure=self.exposure,
            missing=self.missing,
            backend=sess,
            partitions=self.partitions
            if isinstance(self.partitions, int) and not isinstance(self.partitions, bool)
            else None,
            # statsmodels models given missing="drop" drop rows with missing values
            check_finite=self.init_kwds.get("missing") != "drop",
        )
        k = self.partitions if self.partitions is not None else source.npartitions
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"The 'partitions' parameter must be an int >= 1. Got {k!r}.")
        if k != source.npartitions and _files_or_source(data):
            # Files keep their own partitions (a Parquet file's row groups), where
            # statsmodels splits data into K blocks: its answer is another one. (A
            # generator of pairs is fitted pair by pair in both.)
            warnings.warn(
                f"partitions={k}, but {source.name} is read as {source.npartitions} "
                f"partitions, one fit each; partitions sets only each one's share of "
                f"node-wise regressions. statsmodels fits {k} blocks: for its answer, "
                f"read the data as {k} partitions (read_parquet(..., partition_rows=) "
                "or one file each) or pass a DataFrame",
                UserWarning,
                stacklevel=3,
            )
        alpha = fit_kwds.get("alpha", self.alpha)
        l1_wt = float(fit_kwds.get("L1_wt", self.L1_wt))
        custom = self._custom_estimation()
        if method != "average" and alpha is None and not custom:
            raise ValueError(
                f"method={method!r} needs the penalty: pass alpha=... "
                "(or fit_kwds={'alpha': ...})"
            )
        solver, family, sm_estimation = self._solver(method, source, fit_kwds)
        if solver == "shardfit" and family is not None and family.link.name != "log":
            # statsmodels' GLM raises the same: log(exposure) is an offset on the log scale
            given = [f"exposure={self.exposure!r}"] if self.exposure is not None else []
            given += ["init_kwds['exposure']"] if "exposure" in self.init_kwds else []
            given += [
                f"partition {partition.key}'s exposure"
                for partition in source.partitions
                if "exposure" in getattr(partition, "init_kwds", {})
            ][:1]
            if given:
                raise ValueError(
                    f"{given[0]}: exposure can only be used with the log link function "
                    f"(statsmodels' GLM raises the same); the {family.name} family here "
                    f"has the {family.link.name} link. Pass log(exposure) as an offset if "
                    "that is what you mean"
                )
        ignored = self._ignored_kwds(source) if solver == "shardfit" else ()
        options = FitOptions(
            method=method,
            model="glm" if family is not None else "ols",
            family=family,
            alpha=0.0 if alpha is None else alpha,
            l1_wt=l1_wt,
            partitions=k,
            maxiter=int(fit_kwds.get("maxiter", 50)),
            cnvrg_tol=float(fit_kwds.get("cnvrg_tol", 1e-10)),
            zero_tol=fit_kwds.get("zero_tol"),
            irls={key: fit_kwds[key] for key in _IRLS_FIT_KWDS - {"method"} if key in fit_kwds}
            if method == "average"
            else {},
        )
        task = PartitionFit(
            options=options,
            spec=spec,
            missing=self.missing,
            sm_model_class=self._statsmodels_class() if solver == "statsmodels" else None,
            sm_init_kwds=self.init_kwds,
            sm_estimation=sm_estimation,
            sm_estimation_kwds=self.estimation_kwds,
            # statsmodels' functions get fit_kwds as given, with the penalty they need
            sm_fit_kwds=fit_kwds
            if method == "average" or custom
            else {"alpha": alpha, "L1_wt": l1_wt, **fit_kwds},
            # statsmodels fits model_class(endog, exog, **init_kwds) on every partition:
            # its weights, offset or exposure apply to each partition's fit here too.
            fast_init_kwds={key: v for key, v in self.init_kwds.items() if key != "family"}
            if solver == "shardfit"
            else {},
            ignored_kwds=ignored,
        )
        # Every rank (under MPI) gets every partition's result and joins alike.
        parts = map_partitions(
            task, source, backend=sess, progress=progress, pass_name="distributed", allgather=True
        )
        assert parts is not None
        counted: list[Counted] = parts
        params = self._join(method, [part.value for part in counted])
        dropped: dict[str, int] = {}
        for part in counted:
            for reason, n in part.dropped.items():
                dropped[reason] = dropped.get(reason, 0) + n
        p = params.size
        if names is None or len(names) != p:
            names = tuple(f"x{j}" for j in range(p))
        notes = [
            f"partition {partition.key}: {note}"
            for partition, part in zip(source.partitions, counted)
            for note in part.notes
        ]
        if notes:
            # statsmodels warns in each partition's fit; the workers' warnings do not
            # travel back, so the driver reports every partition's at once.
            warnings.warn(
                "some partition fits are unreliable: " + "; ".join(notes),
                UserWarning,
                stacklevel=3,
            )
        if method == "debiased" and (self.join_method is None or self._named_join()):
            self._check_inverse_hessian(counted, source, names)
        if np.isnan(params).any():
            missing = [names[j] for j in np.flatnonzero(np.isnan(params))]
            warnings.warn(
                f"{len(missing)} coefficient(s) are NaN ({', '.join(missing[:5])}"
                f"{', ...' if len(missing) > 5 else ''}): a column is all zero in a "
                "partition that fits it (its node-wise regression has no residual), as "
                "statsmodels would give; use fewer, larger partitions",
                UserWarning,
                stacklevel=3,
            )
        mean_family, mean_link, known = (
            (
                None if family is None else family.name,
                None if family is None else family.link.name,
                True,
            )
            if solver == "shardfit"
            else self._statsmodels_mean()
        )
        return DistributedResults(
            names=tuple(names),
            params_array=params,
            method=method if self.join_method is None or self._named_join() else "custom",
            model=self._model_name(solver, family),
            family=mean_family,
            link=mean_link,
            extra={} if known else {"mean": "unknown"},
            alpha=alpha if alpha is None or np.ndim(alpha) == 0 else list(np.asarray(alpha, float)),
            l1_wt=l1_wt,
            threshold=float(self.join_kwds.get("threshold", self.threshold)),
            partitions=k,
            solver=solver,
            labelled=labelled,
            formula=self.formula,
            data_name=source.name,
            spec=spec,
            nobs=sum(part.nobs for part in counted),
            rows_read=sum(part.rows_read for part in counted),
            rows_dropped=dropped,
            rows_skipped=sum(part.skipped for part in counted),
        )

    # -- helpers -------------------------------------------------------------------------
    def _ignored_kwds(self, source: Source) -> tuple[str, ...]:
        """Model keywords statsmodels' class ignores: ``OLS`` ignores ``weights``.

        statsmodels' ``OLS(endog, exog, weights=w)`` warns ("Weights are not supported
        in OLS and will be ignored") and fits unweighted; fitting WLS instead would give
        another answer (0.05 off on ordinary data). Warn here, where the workers'
        warnings do not reach, and fit unweighted as statsmodels does.
        """
        cls = self.model_class
        if cls is None or f"{cls.__module__}.{cls.__qualname__}" != (
            "statsmodels.regression.linear_model.OLS"
        ):
            return ()
        given = "weights" in self.init_kwds or any(
            "weights" in getattr(partition, "init_kwds", {}) for partition in source.partitions
        )
        if given:
            warnings.warn(
                "model_class=OLS ignores weights, as statsmodels' OLS does (it warns "
                "'Weights are not supported in OLS and will be ignored'); the fit is "
                "unweighted. Use model_class=WLS for weighted least squares",
                UserWarning,
                stacklevel=4,
            )
        return ("weights",)

    @staticmethod
    def _check_inverse_hessian(
        counted: list[Counted], source: Source, names: tuple[str, ...]
    ) -> None:
        """Warn when the joined approximate inverse Hessian is not positive definite.

        statsmodels' ``_calc_approx_inv_cov`` uses it as it is (as does the join here,
        so the estimates stay equal); the warning names the variables whose debiasing
        cannot be trusted and the partitions that fitted their node-wise rows.
        """
        smallest, flagged = indefinite_variables([part.value for part in counted])
        if not flagged:
            return
        keys = [partition.key for partition in source.partitions]
        listed = ", ".join(f"{names[j]} (partition {keys[owner]})" for j, owner in flagged)
        warnings.warn(
            "the debiased estimate cannot be trusted: the approximate inverse Hessian "
            "assembled from the partitions' node-wise regressions is not positive "
            f"definite (smallest eigenvalue of its symmetric part {smallest:.3g}; "
            "statsmodels' _calc_approx_inv_cov uses it unchecked, as here), so the "
            f"debiasing step of {listed} may point uphill. The partitions likely differ "
            "in distribution (shuffle rows across partitions) or columns are nearly "
            "collinear (raise alpha, drop a column, or use method='average_regularized')",
            UserWarning,
            stacklevel=4,
        )

    def _method(self) -> Method:
        if self.method is not None:
            if self.method not in _METHODS:
                raise ValueError(
                    f"The 'method' parameter must be one of {_METHODS}. Got {self.method!r}."
                )
            return self.method
        name = getattr(self.estimation_method, "__name__", None)
        if self.estimation_method is None:
            return "debiased"
        if name in _SM_ESTIMATION and _is_statsmodels(self.estimation_method):
            return _SM_ESTIMATION[name]  # type: ignore[return-value]
        return "debiased"  # a custom callable: its join decides what its output means

    def _named_join(self) -> bool:
        name = getattr(self.join_method, "__name__", None)
        return name in _SM_JOIN and _is_statsmodels(self.join_method)

    def _join(self, method: Method, parts: list[Any]) -> np.ndarray:
        threshold = float(self.join_kwds.get("threshold", self.threshold))
        if self.join_method is not None and not self._named_join():
            return np.asarray(self.join_method(parts, **self.join_kwds), dtype=np.float64)
        if method == "debiased":
            return join_debiased(parts, threshold)
        return join_average(parts, threshold)

    def _custom_estimation(self) -> bool:
        return self.estimation_method is not None and not (
            getattr(self.estimation_method, "__name__", None) in _SM_ESTIMATION
            and _is_statsmodels(self.estimation_method)
        )

    def _solver(
        self, method: Method, source: Source, fit_kwds: dict[str, Any]
    ) -> tuple[str, Any, Any]:
        """Who fits the partitions, the shardfit family (GLMs), statsmodels' function."""
        if self.solver not in ("auto", "shardfit", "statsmodels"):
            raise ValueError(
                "The 'solver' parameter must be 'auto', 'shardfit' or 'statsmodels'. "
                f"Got {self.solver!r}."
            )
        fast_model, family = self._fast_model()
        extra_keys = set()
        for partition in source.partitions:
            extra_keys |= set(getattr(partition, "init_kwds", {}))
        fast = (
            fast_model is not None
            and not self._custom_estimation()
            and set(self.init_kwds) <= _FAST_KWDS[fast_model]
            # a per-partition family is statsmodels' business (the fast fit has one)
            and extra_keys <= _FAST_KWDS[fast_model] - {"family"}
            and _fast_fit_kwds(method, fit_kwds)
            and not self.estimation_kwds  # score_kwds, hess_kwds: statsmodels' own
        )
        if self.solver == "shardfit" and not fast:
            raise ValueError(
                "solver='shardfit' fits OLS, WLS and binomial and Poisson GLMs with "
                "statsmodels' estimation methods and fit_kwds "
                f"{sorted(_FAST_FIT_KWDS)}; use solver='statsmodels' for this model"
            )
        if self.solver == "statsmodels" or not fast:
            return "statsmodels", None, self._sm_estimation(method)
        return "shardfit", family, None

    def _statsmodels_class(self) -> Any:
        if self.model_class is not None:
            return self.model_class
        from statsmodels.regression.linear_model import OLS

        return OLS

    def _fast_model(self) -> tuple[str | None, Any]:
        from shardfit.models.families import get_family

        cls = self.model_class
        if cls is None:
            if self.model == "ols":
                return "ols", None
            if self.model != "glm":
                raise ValueError(
                    f"The 'model' parameter must be 'ols' or 'glm'. Got {self.model!r}."
                )
            if self.family is None:
                raise ValueError("model='glm' needs a family (e.g. family='binomial')")
            family = get_family(self.family, self.link)
            if family.free_scale:
                raise ValueError(
                    f"model='glm' runs families with a fixed scale (binomial, poisson); "
                    f"got {family.name!r} (use model='ols' for least squares)"
                )
            return "glm", family
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name in (
            "statsmodels.regression.linear_model.OLS",
            "statsmodels.regression.linear_model.WLS",
        ):
            return "ols", None
        if name == "statsmodels.genmod.generalized_linear_model.GLM":
            family = _from_statsmodels_family(self.init_kwds.get("family"))
            return ("glm", family) if family is not None else (None, None)
        return None, None

    def _sm_estimation(self, method: Method) -> Callable[..., Any]:
        if self._custom_estimation():
            return self.estimation_method  # type: ignore[return-value]
        from statsmodels.base import distributed_estimation as sm

        return {
            "debiased": sm._est_regularized_debiased,
            "average": sm._est_unregularized_naive,
            "average_regularized": sm._est_regularized_naive,
        }[method]

    def _statsmodels_mean(self) -> tuple[str | None, str | None, bool]:
        """The family and link names of the mean a statsmodels class predicts, and
        whether it is known (statsmodels' ``predict`` gives the mean, not ``X b``)."""
        from shardfit.models.families import get_family

        cls = self._statsmodels_class()
        module = str(getattr(cls, "__module__", ""))
        name = getattr(cls, "__qualname__", "")
        if module == "statsmodels.genmod.generalized_linear_model" and name == "GLM":
            from statsmodels.genmod.families import Gaussian

            try:
                family = get_family(self.init_kwds.get("family") or Gaussian())
            except (ValueError, TypeError):
                return None, None, False
            return family.name, family.link.name, True
        discrete = {"Logit": ("binomial", "logit"), "Probit": ("binomial", "probit")}
        discrete["Poisson"] = ("poisson", "log")
        if module == "statsmodels.discrete.discrete_model" and name in discrete:
            return (*discrete[name], True)
        # Linear models (OLS, WLS, GLS, GLSAR, QuantReg, RLM) predict X b.
        linear = module.startswith(("statsmodels.regression.", "statsmodels.robust."))
        return None, None, linear

    def _model_name(self, solver: str, family: Any) -> str:
        if solver == "statsmodels":
            cls = self._statsmodels_class()
            return getattr(cls, "__name__", str(cls))
        return "glm" if family is not None else "ols"


def _fast_fit_kwds(method: Method, fit_kwds: dict[str, Any]) -> bool:
    """Whether shardfit's solvers run ``fit_kwds`` exactly as statsmodels would.

    The regularized methods take ``fit_regularized``'s coordinate-descent keywords;
    ``"average"`` takes ``GLM.fit``'s IRLS keywords too (any other ``fit`` keyword,
    e.g. ``method="newton"`` or ``start_params``, runs statsmodels itself).
    """
    if method != "average":
        return set(fit_kwds) <= _FAST_FIT_KWDS
    if not set(fit_kwds) <= _FAST_FIT_KWDS | _IRLS_FIT_KWDS:
        return False
    irls_method = fit_kwds.get("method", "IRLS")
    criterion = fit_kwds.get("tol_criterion", "deviance")
    return (
        isinstance(irls_method, str)
        and irls_method.lower() == "irls"
        and criterion in ("deviance", "params")
    )


def _is_statsmodels(function: Any) -> bool:
    return str(getattr(function, "__module__", "")).startswith("statsmodels.")


def _from_statsmodels_family(family: Any) -> Any:
    """The shardfit family equal to a statsmodels family object, or None."""
    if family is None:
        return None
    from shardfit.models.families import get_family

    name = type(family).__name__.lower()
    link = type(getattr(family, "link", None)).__name__.lower()
    # Families with a free scale (Gaussian, Gamma) score and debias with an estimated
    # scale in statsmodels; those run statsmodels itself.
    known = {"binomial": "binomial", "poisson": "poisson"}
    if name not in known or type(family).__module__.split(".")[0] != "statsmodels":
        return None
    try:
        return get_family(known[name], link)
    except (ValueError, TypeError):
        return None


def _files_or_source(data: Any) -> bool:
    """Whether ``data`` keeps partitions of its own: a path, a list of paths or a
    Source (not a frame split into ``partitions``, nor a generator of pairs)."""
    from shardfit.data.partition import Source

    if isinstance(data, str | os.PathLike | Source):
        return True
    return (
        isinstance(data, list | tuple)
        and bool(data)
        and all(isinstance(item, str | os.PathLike) for item in data)
    )
