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

import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shardfit.data.resolve import as_source
from shardfit.engine.backends.mpi import MPIBackend
from shardfit.engine.retries import portable
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

    @contextmanager
    def _bound(self, sess: Session) -> Iterator[Any]:
        """Prepare ``sess`` for many evaluations (a group splits its communicator
        here); a plain model needs nothing."""
        yield None

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
            A partition's statistics or their Jacobian are not finite (the message
            names the partition, and the column and row of the first NaN or infinity
            its data hold, if any), or ``partial_sumstats`` did not return
            ``(sumstats, aux)`` when ``sumstats_has_aux`` is declared (the message
            names the partition), or a column is missing or not numeric.
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

    Members may read different sources. By default each evaluation makes one pass
    per member, one after another, on the same backend session. Under MPI the
    members can instead run side by side, each on its own sub-communicator (a subset
    of the ranks), as multigrad's ``OnePointGroup`` does with a main communicator:
    pass the main communicator as ``backend=`` (or ``"mpi"`` for ``COMM_WORLD``) and
    give ``comms``.

    Parameters
    ----------
    models : sequence of SumstatsModel
        At least one; all with the same ``param_names``.
    comms : None, "split" or sequence of communicators, optional
        Where each member's passes run under an MPI backend:

        - ``None`` (default): every member on the whole communicator, in turn.
        - ``"split"``: the communicator given as ``backend=`` is split into one
          sub-communicator per member, ranks divided as evenly as possible in rank
          order (5 ranks, 2 members: ranks 0-2 and 3-4). With more members than
          ranks, member ``m`` runs on rank ``m % size`` alone, so a rank runs
          several members in turn. The split is made once per fit, scan or
          :meth:`loss_and_grad` call and freed when it ends.
        - a sequence with one entry per member: on each rank, that member's
          sub-communicator if this rank belongs to it, else ``None`` (or
          ``MPI.COMM_NULL``), as multigrad's ``split_subcomms`` hands out. Each
          must hold only ranks of the main communicator, and every member at least
          one rank. They stay the caller's: the group does not free them.

        Each member's statistics are summed over its own ranks only; its loss,
        gradient and aux are then gathered over the main communicator, and every
        rank adds them up in member order, so every rank gets the same numbers,
        bitwise those of ``comms=None`` and of a serial run. An error in any
        member (a bad partition, named in the message) is raised on every rank,
        with a note naming the member.

        On a backend other than MPI, ``"split"`` changes nothing (the members run in
        turn): a script written for ``mpiexec`` runs unchanged, with the same
        numbers, serially or on processes. Explicit communicators there are
        refused with a ``ValueError``, since they can only mean MPI ranks.

    Raises
    ------
    TypeError
        ``models`` is empty or holds something other than a SumstatsModel, or
        ``comms`` is not one of the forms above.
    ValueError
        The models' ``param_names`` differ, or ``comms`` has the wrong length.
    """

    def __init__(
        self, models: Sequence[SumstatsModel], *, comms: str | Sequence[Any] | None = None
    ) -> None:
        self.models = tuple(models)
        if not self.models or not all(isinstance(m, SumstatsModel) for m in self.models):
            raise TypeError("SumstatsGroup needs a non-empty sequence of SumstatsModel")
        names = {m.param_names for m in self.models}
        if len(names) != 1:
            raise ValueError(f"the models of a group must share param_names; got {sorted(names)}")
        self.param_names = self.models[0].param_names
        self.comms = _check_comms(comms, len(self.models))
        # The sub-sessions of the splits now in use, by id of the main backend; set
        # by _bound for the length of a fit, a scan or one evaluation.
        self._splits: dict[int, _Split] = {}

    @property
    def loss_has_aux(self) -> bool:  # type: ignore[override]
        """Whether a member's loss has aux; the group's aux is then a tuple of the
        members' aux (``None`` for members without)."""
        return any(m.loss_has_aux for m in self.models)

    @contextmanager
    def _bound(self, sess: Session) -> Iterator[_Split | None]:
        """Split the session's communicator for the members (once, even if nested),
        and free the split when the outermost ``with`` ends."""
        if self.comms is not None and not isinstance(sess.open().backend, MPIBackend):
            if self.comms != "split":
                # Communicators name MPI ranks: on another backend they cannot be
                # honoured, and ignoring them would hide a wrong backend= choice.
                raise ValueError(
                    f"SumstatsGroup(comms=[...]) needs an MPI backend (backend= a "
                    f"communicator or 'mpi'); got the {sess.name!r} backend. Use "
                    "comms='split' (which is ignored off MPI) or comms=None"
                )
        if self.comms is None or not isinstance(sess.backend, MPIBackend):
            yield None
            return
        key = id(sess.backend)
        found = self._splits.get(key)
        if found is not None:
            yield found
            return
        split = _Split.make(sess.backend.comm, self.comms, len(self.models))
        self._splits[key] = split
        try:
            yield split
        finally:
            del self._splits[key]
            split.close()

    def _combined(self, sess: Session, run: Callable[[SumstatsModel, Session], Any]) -> list[Any]:
        """``run(member, session)`` for every member, in member order, on every rank:
        in turn on ``sess``, or each on its sub-communicator and then gathered."""
        with self._bound(sess) as split:
            if split is None:
                return [run(m, sess) for m in self.models]
            return split.run_members(self.models, run)

    def _evaluate_in(self, params: np.ndarray, sess: Session, *, grad: bool) -> _Point:
        points = self._combined(sess, lambda m, s: m._evaluate_in(params, s, grad=grad))
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
        for losses in self._combined(sess, lambda m, s: m._losses_in(points, s)):
            total = total + losses
        return total


def _is_comm(value: Any) -> bool:
    # Only if mpi4py is loaded: a communicator cannot exist otherwise.
    loaded = sys.modules.get("mpi4py.MPI")
    return loaded is not None and isinstance(value, loaded.Comm)


def _check_comms(comms: Any, nmembers: int) -> str | tuple[Any, ...] | None:
    """``comms`` checked for form: None, "split", or one communicator-or-None per member."""
    if comms is None or (isinstance(comms, str) and comms == "split"):
        return comms  # type: ignore[no-any-return]
    if isinstance(comms, str):
        raise ValueError(f"comms must be None, 'split' or a sequence; got {comms!r}")
    if not isinstance(comms, Sequence):
        raise TypeError(
            f"comms must be None, 'split' or a sequence of one communicator (or None) per "
            f"member; got {comms!r}"
        )
    if len(comms) != nmembers:
        raise ValueError(f"comms must have one entry per member ({nmembers}); got {len(comms)}")
    for index, comm in enumerate(comms):
        if comm is not None and not _is_comm(comm):
            raise TypeError(
                f"comms[{index}] must be an mpi4py communicator or None; got {type(comm).__name__}"
            )
    return tuple(comms)


def _even_split(size: int, nmembers: int) -> list[list[int]]:
    """The main ranks of each member: contiguous blocks as even as possible, or with
    more members than ranks, member ``m`` on rank ``m % size``."""
    if nmembers > size:
        return [[m % size] for m in range(nmembers)]
    return [[r for r in range(size) if r * nmembers // size == m] for m in range(nmembers)]


class _Split:
    """The members' sub-sessions on this rank, and how to combine their results."""

    def __init__(
        self,
        comm: Any,
        sessions: dict[int, Session],
        ranks: list[list[int]],
        owned: list[Any],
    ) -> None:
        self.comm = comm
        #: Member index to its sub-session, for the members this rank runs.
        self.sessions = sessions
        #: Each member's ranks in the main communicator (for messages).
        self.ranks = ranks
        self._owned = owned

    @classmethod
    def make(cls, comm: Any, comms: str | tuple[Any, ...], nmembers: int) -> _Split:
        from mpi4py import MPI

        if comms == "split":
            ranks = _even_split(int(comm.Get_size()), nmembers)
            rank = int(comm.Get_rank())
            # One Split serves every member: each rank is in exactly one block.
            blocks = sorted({tuple(r) for r in ranks})
            color = next(i for i, block in enumerate(blocks) if rank in block)
            sub = comm.Split(color, rank)
            sessions = {
                m: Session(MPIBackend(comm=sub), owned=True).open()
                for m, members in enumerate(ranks)
                if rank in members
            }
            return cls(comm, sessions, ranks, [sub])
        mine = [None if c is None or c == MPI.COMM_NULL else c for c in comms]
        claimed: list[tuple[int, ...] | None] = []
        main_group = comm.Get_group()
        try:
            for sub in mine:
                if sub is None:
                    claimed.append(None)
                    continue
                group = sub.Get_group()
                try:
                    translated = MPI.Group.Translate_ranks(
                        group, list(range(group.Get_size())), main_group
                    )
                finally:
                    group.Free()
                claimed.append(tuple(int(r) for r in translated))
        finally:
            main_group.Free()
        # Checked from gathered facts, so every rank reaches the same verdict.
        everyone = comm.allgather(claimed)
        ranks = []
        for m in range(nmembers):
            holders = [r for r, seen in enumerate(everyone) if seen[m] is not None]
            views = {everyone[r][m] for r in holders}
            if not holders:
                raise ValueError(f"comms: member {m} has a communicator on no rank")
            members = next(iter(views))
            if len(views) != 1 or MPI.UNDEFINED in members or sorted(members) != holders:
                raise ValueError(
                    f"comms[{m}] must be one sub-communicator of the main communicator "
                    f"(backend=), given on exactly its ranks and None elsewhere; ranks "
                    f"{holders} passed communicators of main ranks {sorted(views)}"
                )
            ranks.append(sorted(members))
        sessions = {
            m: Session(MPIBackend(comm=sub), owned=True).open()
            for m, sub in enumerate(mine)
            if sub is not None
        }
        return cls(comm, sessions, ranks, [])

    def run_members(
        self, models: Sequence[SumstatsModel], run: Callable[[SumstatsModel, Session], Any]
    ) -> list[Any]:
        """Run this rank's members (in member order, so that ranks sharing two
        members never wait on each other crosswise), then gather every member's
        result, or the first member's error, to every rank."""
        results: dict[int, Any] = {}
        errors: dict[int, BaseException] = {}
        for m, sub in sorted(self.sessions.items()):
            try:
                value = run(models[m], sub)
            except Exception as error:  # raised on every rank below, not here alone
                error.add_note(
                    f"(in member {m} of the group, {type(models[m]).__name__}, on ranks "
                    f"{self.ranks[m]})"
                )
                errors[m] = error
                continue  # a later member's ranks may still wait for this rank
            if int(sub.backend.comm.Get_rank()) == 0:
                results[m] = value  # one copy per member: its ranks all hold it
        sent = {m: portable(error) for m, error in errors.items()}
        gathered = self.comm.allgather((results, sent))
        failures = {m: e for _, sent_by in gathered for m, e in sent_by.items()}
        if failures:
            first = min(failures)
            # A rank that saw the error raises its own (with its traceback).
            raise errors.get(first, failures[first])
        merged: dict[int, Any] = {}
        for part, _ in gathered:
            merged.update(part)
        return [merged[m] for m in range(len(models))]

    def close(self) -> None:
        """Free the communicators this split made (not the caller's)."""
        for sub in self.sessions.values():
            sub.close()
        for comm in self._owned:
            comm.Free()
        self._owned = []
