"""Optimizers and Latin-hypercube scans for summary-statistic models.

Every loss-and-gradient evaluation is one pass over the data; one backend session is
opened for the whole optimization, so a process pool or Dask cluster starts once.
Under MPI every rank runs the same loop on the same (broadcast) numbers, so all ranks
take identical steps and return identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any, Literal

import numpy as np

from shardfit.engine.session import session
from shardfit.results.sumstats import SumstatsFitResult, SumstatsScanResult

__all__ = ["fit", "scan"]

Method = Literal["lbfgs", "adam", "gd"]
_DEFAULT_MAXITER = {"lbfgs": 200, "adam": 1000, "gd": 1000}


def _bounds(bounds: Sequence[Any] | None, nparams: int, *, finite: bool) -> np.ndarray:
    """``bounds`` as a (nparams, 2) array, ``None`` entries as infinities."""
    if bounds is None:
        if finite:
            raise ValueError("a scan needs bounds: one (low, high) pair per parameter")
        return np.tile([-np.inf, np.inf], (nparams, 1))
    # None for a whole pair leaves that parameter unbounded (as multigrad's param_bounds).
    pairs = [(None, None) if pair is None else pair for pair in bounds]
    if len(pairs) != nparams or not all(
        isinstance(pair, (tuple, list, np.ndarray)) and len(pair) == 2 for pair in pairs
    ):
        raise ValueError(
            f"bounds must be {nparams} (low, high) pairs, one per parameter; got {bounds!r}"
        )
    out = np.array(
        [
            [-np.inf if lo is None else float(lo), np.inf if hi is None else float(hi)]
            for lo, hi in pairs
        ]
    )
    # low == high fixes a parameter, as scipy.optimize.minimize allows.
    if not (out[:, 0] <= out[:, 1]).all():
        raise ValueError(f"each bound needs low <= high; got {bounds!r}")
    if finite and not np.isfinite(out).all():
        raise ValueError(f"a scan needs finite bounds; got {bounds!r}")
    return out


def _projected(grad: np.ndarray, x: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The gradient without the components that point out of the box at its faces."""
    out = grad.copy()
    out[(x <= box[:, 0]) & (grad > 0)] = 0.0
    out[(x >= box[:, 1]) & (grad < 0)] = 0.0
    return out


def fit(
    objective: Any,
    params0: Any,
    *,
    method: Method = "lbfgs",
    bounds: Sequence[Any] | None = None,
    maxiter: int | None = None,
    tol: float = 1e-8,
    learning_rate: float = 0.01,
    backend: Any = None,
    workers: int | None = None,
) -> SumstatsFitResult:
    """Minimize a summary-statistic model's loss, one pass per evaluation.

    Parameters
    ----------
    objective : SumstatsModel or SumstatsGroup
    params0 : array-like of shape (nparams,)
        The starting point (inside ``bounds``).
    method : {"lbfgs", "adam", "gd"}
        ``"lbfgs"``: L-BFGS-B (:func:`scipy.optimize.minimize` with the exact
        gradient); ``"adam"``: Adam (Kingma & Ba, 2015) with bias correction;
        ``"gd"``: gradient descent with a fixed step. Adam and gradient descent
        project each step onto ``bounds``.
    bounds : sequence of (low, high) or None
        One pair per parameter; ``None`` for an open side, or instead of a pair for
        an unbounded parameter; ``low == high`` fixes the parameter (as in
        :func:`scipy.optimize.minimize`).
    maxiter : int, optional
        Iterations at most (default 200 for L-BFGS-B, 1000 otherwise).
    tol : float
        Stop when the largest component of the (projected) gradient is at most
        ``tol`` (L-BFGS-B's ``gtol``; it also stops, converged, when the loss no
        longer decreases in float64: near the optimum of a loss ``f`` with curvature
        ``h`` that is within about ``sqrt(2 * ulp(f) / h)`` of it. That includes a
        line search that fails there because every loss it tries is within rounding,
        about ``2e-13`` relative, of the current one: SciPy's "ABNORMAL" stop, which
        SciPy reports as unsuccessful, counts as converged; its message is kept).
    learning_rate : float
        The step size of Adam and gradient descent.
    backend, workers
        Where the passes run, as for :func:`shardfit.run_pass`; one session is kept
        open for the whole optimization (and a group with ``comms`` splits the MPI
        communicator once for it, freeing the split at the end).

    Returns
    -------
    SumstatsFitResult
        For Adam and gradient descent, the point where the projected gradient met
        ``tol`` (``converged``), or, when none did in ``maxiter`` steps, the point of
        lowest loss evaluated (not converged). With aux outputs
        declared (``loss_has_aux``, ``sumstats_has_aux``), its ``aux`` and
        ``sumstats_aux`` are those of the returned point.

    Raises
    ------
    DesignError
        The statistics or their Jacobian are not finite at a point the optimizer
        tried (the message names the partition); ``bounds`` can keep it away.
    FloatingPointError
        The loss was not finite where L-BFGS-B stopped, or (Adam and gradient
        descent, which have no line search to step back) the loss or its gradient
        was not finite at a point they reached; the message gives the step and point.
    ValueError
        Bad options, ``params0`` of the wrong shape or outside ``bounds``.
    """
    if method not in _DEFAULT_MAXITER:
        raise ValueError(f"method must be 'lbfgs', 'adam' or 'gd'; got {method!r}")
    maxiter = _DEFAULT_MAXITER[method] if maxiter is None else maxiter
    if isinstance(maxiter, bool) or not isinstance(maxiter, Integral) or maxiter < 1:
        raise ValueError(f"maxiter must be an int >= 1; got {maxiter!r}")
    maxiter = int(maxiter)
    if not tol >= 0 or not learning_rate > 0:
        raise ValueError(f"need tol >= 0 and learning_rate > 0; got {tol!r}, {learning_rate!r}")
    x0 = objective.check_params(params0)
    box = _bounds(bounds, objective.nparams, finite=False)
    if ((x0 < box[:, 0]) | (x0 > box[:, 1])).any():
        raise ValueError(f"params0 {x0.tolist()} is outside the bounds {box.tolist()}")
    history: list[float] = []
    # The aux of the points evaluated, by point, for the one the optimizer returns:
    # kept only for the latest and the lowest loss, between which it chooses.
    seen: dict[bytes, Any] = {}
    best: list[Any] = [np.inf, b""]
    # The first point whose loss was not finite, and that loss: L-BFGS-B reports the
    # last loss it saw with its last accepted point, where the loss was finite.
    nonfinite: list[tuple[np.ndarray, float]] = []
    # _bound: a group with comms splits the MPI communicator once for the whole fit.
    with session(backend, workers=workers) as sess, objective._bound(sess):

        def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
            x = np.asarray(x, dtype=np.float64)
            point = objective._evaluate_in(x, sess, grad=True)
            history.append(point.loss)
            if not nonfinite and not np.isfinite(point.loss):
                nonfinite.append((x.copy(), point.loss))
            key = x.tobytes()
            if point.loss < best[0]:
                best[:] = [point.loss, key]
            for old in [k for k in seen if k != best[1]]:
                del seen[old]
            seen[key] = (point.aux, point.sumstats_aux)
            return point.loss, point.grad

        if method == "lbfgs":
            params, loss, grad, iterations, converged, message = _lbfgs(
                evaluate, x0, box, maxiter, tol, nonfinite
            )
        else:
            params, loss, grad, iterations, converged, message = _first_order(
                evaluate, x0, box, maxiter, tol, learning_rate, adam=method == "adam"
            )
        final = seen.get(np.asarray(params, dtype=np.float64).tobytes())
        if final is None:
            # Not one of the points kept (it should be): one more pass for its aux.
            point = objective._evaluate_in(params, sess, grad=False)
            final = (point.aux, point.sumstats_aux)
    return SumstatsFitResult(
        params=params,
        param_names=objective.param_names,
        loss=loss,
        grad=grad,
        iterations=iterations,
        npasses=len(history),
        loss_history=np.array(history),
        converged=converged,
        method=method,
        message=message,
        aux=final[0],
        sumstats_aux=final[1],
    )


def _lbfgs(
    evaluate: Any,
    x0: np.ndarray,
    box: np.ndarray,
    maxiter: int,
    tol: float,
    nonfinite: list[tuple[np.ndarray, float]],
) -> Any:
    from scipy.optimize import minimize

    bounds = [(None if np.isinf(lo) else lo, None if np.isinf(hi) else hi) for lo, hi in box]
    # ftol 0: stop on the gradient, not on a relative change of the loss, which on a
    # loss of large magnitude (a sum over many rows) stops short of the optimum.
    options = {"maxiter": maxiter, "gtol": tol, "ftol": 0.0}
    tried: list[tuple[bytes, float]] = []

    def recorded(x: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = evaluate(x)
        tried.append((np.asarray(x, dtype=np.float64).tobytes(), float(value)))
        return value, grad

    res = minimize(recorded, x0, jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    if not np.isfinite(res.fun):
        # L-BFGS-B stops on a non-finite loss ("ABNORMAL"): as Adam, say so. Its res.fun
        # is the last loss evaluated but res.x its last accepted point (the start, say),
        # where the loss was finite: name the point where the loss was not.
        where, value = nonfinite[0] if nonfinite else (np.asarray(res.x), float(res.fun))
        raise FloatingPointError(
            f"the loss is {value} at {where.tolist()}, a point L-BFGS-B tried (it stopped "
            f"at {np.asarray(res.x).tolist()}: {res.message}); the summed statistics were "
            "finite there, so loss() returned it: check loss(), or keep the parameters "
            "where it is defined with bounds"
        )
    grad = np.asarray(res.jac, dtype=np.float64)
    converged = bool(res.success) or float(np.max(np.abs(_projected(grad, res.x, box)))) <= tol
    if not converged and _flat_line_search(res, tried):
        converged = True
    return (
        np.asarray(res.x, dtype=np.float64),
        float(res.fun),
        grad,
        int(res.nit),
        converged,
        str(res.message),
    )


# How far (relative to the loss) the losses of L-BFGS-B's last line search may differ
# from the loss where it stopped for that search to count as flat: about a thousand
# roundings of float64, far below any step a correct gradient would make along a
# slope, far above the rounding noise of a loss summed over many rows near its optimum
# (observed up to ~1e-14).
_FLAT = 1024 * float(np.finfo(np.float64).eps)


def _flat_line_search(res: Any, tried: list[tuple[bytes, float]]) -> bool:
    """Whether L-BFGS-B stopped because its line search met a loss flat to rounding.

    With ``ftol=0`` L-BFGS-B stops, converged, when the loss does not decrease at
    all; when rounding makes it rise by an ulp instead, the line search fails
    ("ABNORMAL") at the same point, and SciPy reports ``success=False`` although no
    float64 step could lower the loss. That is the case when every loss it tried after
    its last accepted point is within :data:`_FLAT` (relative) of the loss there; a
    wrong gradient or a real failure tries steps whose losses differ by more.
    """
    if "ABNORMAL" not in str(res.message) or not np.isfinite(res.fun):
        return False
    # Every evaluation since the point was first reached is a trial of its line
    # searches (or the point again: SciPy evaluates it after each failed trial).
    here = np.asarray(res.x, dtype=np.float64).tobytes()
    first = next((i for i, (x, _) in enumerate(tried) if x == here), None)
    after = np.array([value for x, value in tried[(first or 0) + 1 :] if x != here])
    if first is None or not after.size:
        return False
    scale = max(abs(float(res.fun)), float(np.max(np.abs(after))))
    return bool(np.all(np.abs(after - float(res.fun)) <= _FLAT * scale))


def _first_order(
    evaluate: Any,
    x0: np.ndarray,
    box: np.ndarray,
    maxiter: int,
    tol: float,
    learning_rate: float,
    *,
    adam: bool,
) -> Any:
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    x = x0.copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    converged = False
    steps = 0
    while True:
        value, grad = evaluate(x)
        if not (np.isfinite(value) and np.isfinite(grad).all()):
            # Without a line search a non-finite loss cannot be stepped back from, and a
            # non-finite gradient poisons every later step (Adam's moments): stop and say
            # where, rather than return a point the user would take for an optimum.
            method = "adam" if adam else "gradient descent"
            raise FloatingPointError(
                f"{method} step {steps}: the loss is {value} and its gradient "
                f"{np.asarray(grad).tolist()} at {x.tolist()}; the summed statistics were "
                "finite there, so loss() made it: check loss(), lower learning_rate, or "
                "keep the parameters where the loss is defined with bounds"
            )
        if best is None or value < best[0]:
            best = (value, x.copy(), grad)
        if float(np.max(np.abs(_projected(grad, x, box)))) <= tol:
            # The point that meets the criterion is returned, not the lowest loss seen:
            # near the optimum that can be another point (the loss differs by rounding,
            # or along a direction of high curvature) whose gradient is above tol, and
            # converged must describe the point returned.
            best = (value, x.copy(), grad)
            converged = True
            break
        if steps == maxiter:
            break
        steps += 1
        if adam:
            m = beta1 * m + (1 - beta1) * grad
            v = beta2 * v + (1 - beta2) * grad**2
            step = (m / (1 - beta1**steps)) / (np.sqrt(v / (1 - beta2**steps)) + eps)
        else:
            step = grad
        x = np.clip(x - learning_rate * step, box[:, 0], box[:, 1])
    assert best is not None  # the first evaluation is finite, or raised
    message = "gradient below tol" if converged else "maxiter reached"
    return best[1], best[0], best[2], steps, converged, message


def scan(
    objective: Any,
    bounds: Sequence[Any],
    n: int,
    *,
    seed: int | None = None,
    backend: Any = None,
    workers: int | None = None,
) -> SumstatsScanResult:
    """The loss at ``n`` Latin-hypercube points of ``bounds``, in one pass per model.

    Each partition evaluates its statistics at all ``n`` points at once (``jax.vmap``),
    so a partition holds ``n × k`` statistics (``k`` per point): choose ``n`` so that
    fits in memory.

    Parameters
    ----------
    objective : SumstatsModel or SumstatsGroup
    bounds : sequence of (low, high)
        Finite bounds, one pair per parameter.
    n : int
        The number of points.
    seed : int, optional
        Seeds :class:`scipy.stats.qmc.LatinHypercube` (same seed, same points).
    backend, workers
        As for :func:`fit`.

    Returns
    -------
    SumstatsScanResult
        A point whose statistics are not finite gets a non-finite loss.

    Raises
    ------
    DesignError
        Every point's statistics are non-finite in a partition whose columns hold a
        NaN or infinity (the message names the column and row): the data, not the
        parameters, are the cause.
    """
    from scipy.stats import qmc

    if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
        raise ValueError(f"n must be an int >= 1; got {n!r}")
    n = int(n)
    box = _bounds(bounds, objective.nparams, finite=True)
    generator = np.random.default_rng(seed)
    try:
        sampler = qmc.LatinHypercube(d=objective.nparams, rng=generator)
    except TypeError:  # SciPy < 1.15 calls it seed
        sampler = qmc.LatinHypercube(d=objective.nparams, seed=generator)
    unit = sampler.random(n)
    # qmc.scale's formula, which also takes a fixed parameter (low == high).
    points = box[:, 0] + unit * (box[:, 1] - box[:, 0])
    with session(backend, workers=workers) as sess, objective._bound(sess):
        losses = objective._losses_in(points, sess)
    return SumstatsScanResult(points=points, losses=losses, param_names=objective.param_names)
