"""Differentiable summary-statistic models: sum per-partition statistics, differentiate
through the sum with JAX.

The user subclasses :class:`SumstatsModel` and writes two functions:

- ``partial_sumstats(params, data)``: the *additive* summary statistics of one
  partition's rows (counts, sums, a histogram...), a JAX array;
- ``loss(sumstats)``: a scalar computed from the statistics summed over every
  partition.

One pass (:meth:`SumstatsModel.loss_and_grad`) returns each partition's statistics
``s_i(θ)`` and their Jacobian ``∂s_i/∂θ``; the engine sums both in its fixed tree
order, and the driver applies the chain rule ``∇L = (∂L/∂S)ᵀ Σ_i ∂s_i/∂θ``. The
gradient is exact (to rounding), and bitwise the same on every backend and worker
count.

Memory and communication: each partition sends back ``k`` statistics and a ``k × p``
Jacobian (``k`` statistics, ``p`` parameters), independent of its number of rows.
This is the right tool when the loss depends on the data only through such sums
(likelihoods of exponential families, moments, binned/histogram statistics) and
``k × p`` is small; for a loss that is a sum over rows of a per-row term, ``k = 1``
works too (the statistic is the partial loss itself).

JAX is optional (``pip install "shardfit[jax]"``): this module imports it only when a
model is used, and turns on 64-bit floats (``jax_enable_x64``) in every process that
evaluates a model, so that statistics are computed and summed in float64.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shardfit.data.resolve import as_source
from shardfit.engine.run import run_pass
from shardfit.engine.session import Session, session
from shardfit.errors import DesignError
from shardfit.models.sumstats_tasks import (
    SumstatsPartial,
    SumstatsTask,
    cached,
    describe,
    require_jax,
)

if TYPE_CHECKING:
    from shardfit.results.sumstats import SumstatsFitResult, SumstatsScanResult

__all__ = ["SumstatsGroup", "SumstatsModel", "require_jax"]


@dataclass(frozen=True)
class _Point:
    """One evaluation: the loss, its gradient (if asked for) and the aux outputs."""

    loss: float
    grad: np.ndarray | None
    aux: Any = None
    sumstats_aux: Any = None


def _numpy_tree(tree: Any) -> Any:
    """``tree`` with its JAX arrays as NumPy arrays (picklable, usable without JAX)."""
    jax, _ = require_jax()
    return jax.tree_util.tree_map(np.asarray, tree)


class _Objective:
    """What the optimizers need: loss and gradient, and losses of many points."""

    param_names: tuple[str, ...]
    loss_has_aux: bool = False

    def _evaluate_in(self, params: np.ndarray, sess: Session, *, grad: bool) -> _Point:
        raise NotImplementedError

    def _loss_and_grad_in(self, params: np.ndarray, sess: Session) -> tuple[float, np.ndarray]:
        point = self._evaluate_in(params, sess, grad=True)
        assert point.grad is not None
        return point.loss, point.grad

    def _loss_in(self, params: np.ndarray, sess: Session) -> float:
        return self._evaluate_in(params, sess, grad=False).loss

    def _losses_in(self, points: np.ndarray, sess: Session) -> np.ndarray:
        raise NotImplementedError

    @property
    def nparams(self) -> int:
        """The number of parameters."""
        return len(self.param_names)

    def check_params(self, params: Any) -> np.ndarray:
        """``params`` as a finite float64 vector of length :attr:`nparams`.

        Raises
        ------
        ValueError
            For a wrong shape (the message lists the parameter names) or a
            non-finite value.
        """
        array = np.asarray(params, dtype=np.float64)
        if array.shape != (self.nparams,):
            raise ValueError(
                f"params must have shape ({self.nparams},), one value for each of "
                f"{list(self.param_names)}; got shape {array.shape}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"params must be finite; got {array.tolist()}")
        return array

    def loss_and_grad(self, params: Any, *, backend: Any = None, workers: int | None = None) -> Any:
        """The loss and its exact gradient at ``params``, from one pass over the data.

        Parameters
        ----------
        params : array-like of shape (nparams,)
        backend : str, Session, distributed.Client, communicator or None
            Where the pass runs, as for :func:`shardfit.run_pass` (``"serial"``,
            ``"processes"``, ``"dask"``, ``"mpi"``, a client or an open session).
        workers : int or None
            Workers for a backend this call starts.

        Returns
        -------
        (loss, grad) or ((loss, aux), grad)
            ``loss`` a float, ``grad`` a numpy.ndarray of shape (nparams,). With
            ``loss_has_aux``, ``((loss, aux), grad)`` as
            ``jax.value_and_grad(..., has_aux=True)`` returns, ``aux`` the second
            output of ``loss`` (its arrays as NumPy); the gradient is of the loss only.

        Raises
        ------
        ValueError
            ``params`` of the wrong shape or not finite; ``loss`` not a scalar, or
            not a ``(loss, aux)`` pair when ``loss_has_aux`` is declared.
        DesignError
            A partition's statistics or their Jacobian are not finite, or
            ``partial_sumstats`` did not return ``(sumstats, aux)`` when
            ``sumstats_has_aux`` is declared (the message names the partition), or a
            column is missing or not numeric.
        MissingDataError
            A null in a column read (named with its partition and row).

        Notes
        -----
        Each call opens its own backend unless given an open
        :func:`shardfit.session`: for many calls (an optimizer of your own), open one
        session and pass it, or use :meth:`fit`, which does.
        """
        x = self.check_params(params)
        with session(backend, workers=workers) as sess:
            point = self._evaluate_in(x, sess, grad=True)
        if self.loss_has_aux:
            return (point.loss, point.aux), point.grad
        return point.loss, point.grad

    def loss_at(self, params: Any, *, backend: Any = None, workers: int | None = None) -> Any:
        """The loss at ``params`` (one pass, no gradient; see :meth:`loss_and_grad`).

        Returns
        -------
        float, or (float, aux) with ``loss_has_aux``
        """
        x = self.check_params(params)
        with session(backend, workers=workers) as sess:
            point = self._evaluate_in(x, sess, grad=False)
        return (point.loss, point.aux) if self.loss_has_aux else point.loss

    def grad(self, params: Any, *, backend: Any = None, workers: int | None = None) -> Any:
        """The gradient of the loss at ``params`` (one pass; see :meth:`loss_and_grad`).

        Returns
        -------
        numpy.ndarray, or (numpy.ndarray, aux) with ``loss_has_aux`` (as
        ``jax.grad(..., has_aux=True)``)
        """
        out, grad = self.loss_and_grad(params, backend=backend, workers=workers)
        return (grad, out[1]) if self.loss_has_aux else grad

    def fit(
        self,
        params0: Any,
        *,
        method: Literal["lbfgs", "adam", "gd"] = "lbfgs",
        bounds: Sequence[Any] | None = None,
        maxiter: int | None = None,
        tol: float = 1e-8,
        learning_rate: float = 0.01,
        backend: Any = None,
        workers: int | None = None,
    ) -> SumstatsFitResult:
        """Minimize the loss from ``params0``, one pass per evaluation.

        The parameters are those of :func:`shardfit.models.sumstats_optimize.fit`.

        Returns
        -------
        SumstatsFitResult
        """
        from shardfit.models.sumstats_optimize import fit

        return fit(
            self,
            params0,
            method=method,
            bounds=bounds,
            maxiter=maxiter,
            tol=tol,
            learning_rate=learning_rate,
            backend=backend,
            workers=workers,
        )

    def scan(
        self,
        bounds: Sequence[Any],
        n: int,
        *,
        seed: int | None = None,
        backend: Any = None,
        workers: int | None = None,
    ) -> SumstatsScanResult:
        """The loss at ``n`` Latin-hypercube points of ``bounds`` (one pass per model).

        The parameters are those of :func:`shardfit.models.sumstats_optimize.scan`.

        Returns
        -------
        SumstatsScanResult
        """
        from shardfit.models.sumstats_optimize import scan

        return scan(self, bounds, n, seed=seed, backend=backend, workers=workers)


class SumstatsModel(_Objective):
    """A model whose loss depends on the data only through additive summary statistics.

    Subclass it, set :attr:`param_names` and define :meth:`partial_sumstats` and
    :meth:`loss` with JAX operations (``jax.numpy``), so they can be differentiated.

    Auxiliary outputs (as JAX's ``has_aux``, multigrad's ``sumstats_func_has_aux``
    and ``loss_func_has_aux``) are declared with class attributes, like
    :attr:`param_names`, since they fix the form of the two methods:

    - :attr:`sumstats_has_aux`: ``partial_sumstats`` returns ``(sumstats, aux)``.
      Only ``sumstats`` is summed over partitions and differentiated; each
      partition's ``aux`` is gathered to the driver, a list in partition order
      (``aux`` must be a pytree of arrays), and passed to ``loss`` as
      ``loss(sumstats, sumstats_aux)``, as a constant (no gradient flows through it,
      as JAX treats ``has_aux`` outputs). :meth:`sumstats` returns the pair
      ``(sumstats, sumstats_aux)``.
    - :attr:`loss_has_aux`: ``loss`` returns ``(loss, aux)``; the gradient is of
      ``loss`` only (``jax.value_and_grad(..., has_aux=True)``), and
      :meth:`loss_and_grad` returns ``((loss, aux), grad)``, :meth:`loss_at`
      ``(loss, aux)`` and :meth:`grad` ``(grad, aux)``. A fit keeps the aux of the
      point it returns (:attr:`SumstatsFitResult.aux
      <shardfit.SumstatsFitResult.aux>`); a scan keeps only the losses.

    Parameters
    ----------
    data : Source, path, DataFrame, Table, ndarray...
        Anything :func:`shardfit.as_source` accepts.
    columns : sequence of str
        The columns ``partial_sumstats`` reads; each is given to it as a float64 array.
    aux : any, optional
        Auxiliary data (targets, bin edges, constants) for the two methods, as
        ``self.aux``. It travels to every worker with the model: keep it small.
    partition_rows : int, optional
        As for :func:`shardfit.as_source`.

    Notes
    -----
    A model is treated as immutable once built: workers compile ``partial_sumstats``
    once per model (and partition shape) and reuse it across the passes of a fit, so
    attributes changed later may not be seen. Build a new model instead. The model
    travels to workers without its data (workers read their own partitions); its
    class must be importable there (defined in a module, not in ``__main__``, for
    the ``dask`` backend).

    Each pass sends back, per partition, ``k`` statistics and a ``k × p`` Jacobian
    (``p`` parameters): memory and traffic are independent of the partition's rows.
    """

    #: The parameters' names, in the order of the params vector (required).
    param_names: tuple[str, ...] = ()
    #: ``partial_sumstats`` returns ``(sumstats, aux)``; ``aux`` is gathered per
    #: partition (not summed) and given to ``loss`` as its second argument.
    sumstats_has_aux: bool = False
    #: ``loss`` returns ``(loss, aux)``; only ``loss`` is differentiated.
    loss_has_aux: bool = False

    def __init__(
        self,
        data: Any,
        columns: Sequence[str],
        *,
        aux: Any = None,
        partition_rows: int | None = None,
    ) -> None:
        require_jax()
        if not self.param_names or not all(isinstance(n, str) for n in self.param_names):
            raise TypeError(
                f"{type(self).__name__} must set param_names, a tuple of parameter names"
            )
        self.param_names = tuple(self.param_names)
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise TypeError(f"columns must be a sequence of column names; got {columns!r}")
        self.source = as_source(data, partition_rows=partition_rows)
        missing = [c for c in columns if c not in self.source.columns]
        if missing:
            raise DesignError(
                f"columns {missing} are not in {self.source.name!r} (it has {self.source.columns})"
            )
        self.columns = tuple(columns)
        self.aux = aux
        self._token = uuid.uuid4().hex

    def __getstate__(self) -> dict[str, Any]:
        # Workers read their own partitions: the source stays on the driver.
        state = dict(self.__dict__)
        state.pop("source", None)
        return state

    def partial_sumstats(self, params: Any, data: dict[str, Any]) -> Any:
        """The summary statistics of one partition's rows (override this).

        Parameters
        ----------
        params : jax.Array of shape (nparams,)
        data : dict of str to jax.Array
            Each of :attr:`columns`, float64, for this partition's rows (possibly 0).

        Returns
        -------
        jax.Array, or (jax.Array, aux) with :attr:`sumstats_has_aux`
            Statistics that add up over partitions (any fixed shape); with
            :attr:`sumstats_has_aux`, also ``aux``, a pytree of arrays of this
            partition that is gathered, not summed.
        """
        raise NotImplementedError(f"{type(self).__name__} must define partial_sumstats")

    def loss(self, sumstats: Any, sumstats_aux: Any = None) -> Any:
        """The scalar loss of the statistics summed over all partitions (override this).

        It takes statistics, not params: the loss at params is :meth:`loss_at`.

        Parameters
        ----------
        sumstats : jax.Array
            The statistics summed over every partition.
        sumstats_aux : list, optional
            Passed only with :attr:`sumstats_has_aux`: each partition's aux, in
            partition order (a constant: not differentiated). A subclass without
            sumstats aux may define ``loss(self, sumstats)``.

        Returns
        -------
        jax.Array of shape (), or (jax.Array, aux) with :attr:`loss_has_aux`
        """
        raise NotImplementedError(f"{type(self).__name__} must define loss")

    def sumstats(self, params: Any, *, backend: Any = None, workers: int | None = None) -> Any:
        """The statistics at ``params`` summed over every partition (one pass).

        Returns
        -------
        numpy.ndarray, or (numpy.ndarray, list) with :attr:`sumstats_has_aux`
            The summed statistics; with :attr:`sumstats_has_aux` also each
            partition's aux (NumPy arrays), in partition order.
        """
        x = self.check_params(params)
        with session(backend, workers=workers) as sess:
            merged = self._pass(x, "value", sess)
        return (merged.values, merged.aux) if self.sumstats_has_aux else merged.values

    # -- used by the optimizers and groups, inside an open session --

    def _pass(self, x: np.ndarray, mode: str, sess: Session) -> SumstatsPartial:
        task = SumstatsTask(self, x, mode)
        return run_pass(
            task, self.source, backend=sess, allreduce=True, pass_name=f"sumstats-{mode}"
        )

    def _loss_fns(self) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
        """The loss compiled: with its gradient, vmapped over points, and alone.

        Each takes ``(sumstats, sumstats_aux)`` and gives ``(loss, aux)`` (``aux``
        ``None`` without :attr:`loss_has_aux`); the vmapped one gives the losses only.
        """

        def build() -> tuple[Callable[..., Any], ...]:
            jax, jnp = require_jax()
            name = type(self).__name__

            def scalar_loss(sumstats: Any, sumstats_aux: Any) -> tuple[Any, Any]:
                out = (
                    self.loss(sumstats, sumstats_aux)
                    if self.sumstats_has_aux
                    else self.loss(sumstats)
                )
                aux = None
                if self.loss_has_aux:
                    if not isinstance(out, tuple) or len(out) != 2:
                        raise ValueError(
                            f"{name}.loss returned {describe(out)}, not a pair: "
                            "with loss_has_aux = True it must return (loss, aux)"
                        )
                    out, aux = out
                # Checked when traced: a loss of shape (1,) would pass through float()
                # and, vmapped in a scan, give losses of shape (n, 1).
                out = jnp.asarray(out)
                if out.shape != ():
                    raise ValueError(
                        f"{name}.loss must return a scalar; it returned shape {out.shape}"
                    )
                return out, aux

            return (
                jax.jit(jax.value_and_grad(scalar_loss, has_aux=True)),
                jax.jit(jax.vmap(lambda s, a: scalar_loss(s, a)[0])),
                jax.jit(scalar_loss),
            )

        return cached((self._token, "loss"), build)  # type: ignore[no-any-return]

    def _evaluate_in(self, params: np.ndarray, sess: Session, *, grad: bool) -> _Point:
        if not grad:
            merged = self._pass(params, "value", sess)
            value, aux = self._loss_fns()[2](merged.values, merged.aux)
            return _Point(float(value), None, _numpy_tree(aux), merged.aux)
        merged = self._pass(params, "jac", sess)
        (value, aux), dloss = self._loss_fns()[0](merged.values, merged.aux)
        dloss = np.asarray(dloss, dtype=np.float64)
        # Chain rule through the sum: contract dL/dS with dS/dθ over the stats' axes.
        gradient = np.asarray(np.tensordot(dloss, merged.jac, axes=dloss.ndim), dtype=np.float64)
        return _Point(float(value), gradient, _numpy_tree(aux), merged.aux)

    def _losses_in(self, points: np.ndarray, sess: Session) -> np.ndarray:
        merged = self._pass(points, "scan", sess)
        # Each partition's scan aux has the points on its leading axis, as the stats.
        return np.asarray(self._loss_fns()[1](merged.values, merged.aux), dtype=np.float64)


class SumstatsGroup(_Objective):
    """Models sharing one parameter vector; the loss is the sum of their losses.

    Members may read different sources; each evaluation makes one pass per member,
    all on the same backend session.

    Parameters
    ----------
    models : sequence of SumstatsModel
        At least one; all with the same ``param_names``.
    """

    def __init__(self, models: Sequence[SumstatsModel]) -> None:
        self.models = tuple(models)
        if not self.models or not all(isinstance(m, SumstatsModel) for m in self.models):
            raise TypeError("SumstatsGroup needs a non-empty sequence of SumstatsModel")
        names = {m.param_names for m in self.models}
        if len(names) != 1:
            raise ValueError(f"the models of a group must share param_names; got {sorted(names)}")
        self.param_names = self.models[0].param_names

    @property
    def loss_has_aux(self) -> bool:  # type: ignore[override]
        """Whether a member's loss has aux; the group's aux is then a tuple of the
        members' aux (``None`` for members without)."""
        return any(m.loss_has_aux for m in self.models)

    def _evaluate_in(self, params: np.ndarray, sess: Session, *, grad: bool) -> _Point:
        points = [m._evaluate_in(params, sess, grad=grad) for m in self.models]
        loss = 0.0
        for point in points:
            loss = loss + point.loss
        gradient = None
        if grad:
            gradient = np.zeros(self.nparams)
            for point in points:
                gradient = gradient + point.grad
        aux = tuple(p.aux for p in points) if self.loss_has_aux else None
        has_stats_aux = any(m.sumstats_has_aux for m in self.models)
        stats_aux = tuple(p.sumstats_aux for p in points) if has_stats_aux else None
        return _Point(float(loss), gradient, aux, stats_aux)

    def _losses_in(self, points: np.ndarray, sess: Session) -> np.ndarray:
        total = np.zeros(len(points))
        for model in self.models:
            total = total + model._losses_in(points, sess)
        return total
