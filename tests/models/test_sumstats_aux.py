"""Auxiliary outputs of summary-statistic models (``sumstats_has_aux``,
``loss_has_aux``, as JAX's ``has_aux``): loss, gradient and aux equal
``jax.value_and_grad(..., has_aux=True)`` of the same loss on all rows in memory, and
an L-BFGS-B fit lands where ``scipy.optimize.minimize`` does on that loss."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

jax = pytest.importorskip("jax")

import scipy.optimize  # noqa: E402

import shardfit  # noqa: E402
from shardfit.errors import DesignError  # noqa: E402

jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

ROWS = 102
START = np.array([0.3, 0.2, -0.1])


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({"x": rng.normal(2.0, 1.5, ROWS), "w": rng.uniform(0.5, 2.0, ROWS)})


class _Aux(shardfit.SumstatsModel):
    """Weighted least squares of x on (1, w), plus a small quartic term; the
    statistics' aux is per-partition (the max residual and the row count), the loss's
    aux a dict of two numbers derived from the summed statistics; the third parameter
    enters only in :class:`_AuxC`."""

    param_names = ("a", "b", "c")
    sumstats_has_aux = True
    loss_has_aux = True

    def partial_sumstats(self, p, d):
        r = d["x"] - p[0] - p[1] * d["w"]
        stats = jnp.stack([jnp.sum(d["w"] * r**2), jnp.sum(d["w"]), jnp.sum(r**4)])
        aux = {"max_r": jnp.max(jnp.abs(r)), "rows": jnp.sum(jnp.ones_like(r))}
        return stats, aux

    def loss(self, s, sumstats_aux):
        # The aux arrives as a list (one per partition), a constant for the gradient.
        rows = sum(a["rows"] for a in sumstats_aux)
        value = s[0] / s[1] + 1e-3 * s[2] / rows
        return value, {"mse": s[0] / s[1], "rows": rows}


class _AuxC(_Aux):
    """As :class:`_Aux`, with the third parameter in the loss (a quadratic pull)."""

    def partial_sumstats(self, p, d):
        stats, aux = super().partial_sumstats(p, d)
        return jnp.concatenate([stats, (p[2] - 0.25) ** 2 * jnp.sum(d["w"])[None]]), aux

    def loss(self, s, sumstats_aux):
        value, aux = super().loss(s[:3], sumstats_aux)
        return value + s[3] / s[1], aux


class _LossAuxOnly(shardfit.SumstatsModel):
    param_names = ("a", "b", "c")
    loss_has_aux = True

    def partial_sumstats(self, p, d):
        r = d["x"] - p[0] - p[1] * d["w"]
        return jnp.stack([jnp.sum(r**2), jnp.sum(jnp.exp(p[2] * d["w"]))])

    def loss(self, s):
        return jnp.sqrt(s[0]) + 1e-2 * s[1], s[0] * 2.0


def _memory(model, frame, parts):
    """In memory: the model's loss with aux on all rows, value_and_grad(has_aux=True),
    and the per-partition aux computed on each partition's rows."""
    data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
    pieces = [{c: v[lo:hi] for c, v in data.items()} for lo, hi in parts]

    def loss(p):
        stats, _ = model.partial_sumstats(p, data)
        per_partition = [model.partial_sumstats(p, piece)[1] for piece in pieces]
        # aux is a constant for the gradient, as the out-of-core model treats it
        return model.loss(stats, jax.lax.stop_gradient(per_partition))

    both = jax.jit(jax.value_and_grad(loss, has_aux=True))
    stats_aux = jax.jit(lambda p: [model.partial_sumstats(p, piece)[1] for piece in pieces])
    return loss, both, stats_aux


def _parts(nparts):
    rows = -(-ROWS // nparts)
    return rows, [(lo, min(lo + rows, ROWS)) for lo in range(0, ROWS, rows)]


def _assert_tree_close(got, want, rtol=1e-12):
    got_leaves, got_tree = jax.tree_util.tree_flatten(got)
    want_leaves, want_tree = jax.tree_util.tree_flatten(want)
    assert got_tree == want_tree
    for g, w in zip(got_leaves, want_leaves):
        assert isinstance(g, np.ndarray)
        np.testing.assert_allclose(g, np.asarray(w), rtol=rtol, atol=0)


@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_loss_grad_and_aux_equal_value_and_grad_has_aux_in_memory(frame, nparts) -> None:
    rows, parts = _parts(nparts)
    model = _AuxC(frame, ["x", "w"], partition_rows=rows)
    assert model.source.npartitions == nparts == len(parts)
    _, both, stats_aux = _memory(model, frame, parts)
    (want_loss, want_aux), want_grad = both(jnp.asarray(START))
    (loss, aux), grad = model.loss_and_grad(START, backend="serial")
    np.testing.assert_allclose(loss, float(want_loss), rtol=1e-12)
    np.testing.assert_allclose(grad, np.asarray(want_grad), rtol=1e-12)
    _assert_tree_close(aux, want_aux)
    assert float(aux["rows"]) == ROWS
    # the statistics' aux: one per partition, in partition order, not summed
    stats, per_partition = model.sumstats(START, backend="serial")
    assert isinstance(per_partition, list) and len(per_partition) == nparts
    _assert_tree_close(per_partition, stats_aux(jnp.asarray(START)))
    assert [float(a["rows"]) for a in per_partition] == [hi - lo for lo, hi in parts]
    data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
    np.testing.assert_allclose(
        stats, np.asarray(model.partial_sumstats(jnp.asarray(START), data)[0]), rtol=1e-12
    )
    # loss_at and grad follow JAX's has_aux forms: (loss, aux) and (grad, aux)
    value, aux_at = model.loss_at(START, backend="serial")
    np.testing.assert_allclose(value, float(want_loss), rtol=1e-12)
    _assert_tree_close(aux_at, want_aux)
    g, aux_g = model.grad(START, backend="serial")
    np.testing.assert_allclose(g, np.asarray(want_grad), rtol=1e-12)
    _assert_tree_close(aux_g, want_aux)


@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_lbfgs_fit_with_aux_matches_scipy_in_memory(frame, nparts) -> None:
    rows, parts = _parts(nparts)
    model = _AuxC(frame, ["x", "w"], partition_rows=rows)
    loss, both, stats_aux = _memory(model, frame, parts)

    def reference(p):
        (value, _), grad = both(jnp.asarray(p))
        return float(value), np.asarray(grad)

    x0 = np.zeros(3)
    want = scipy.optimize.minimize(
        reference, x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 0.0}
    )
    got = model.fit(x0, tol=1e-10, backend="serial")
    assert got.converged and want.success
    np.testing.assert_allclose(got.params, want.x, rtol=0, atol=1e-8)
    # the aux of the returned point equals the in-memory aux there
    _assert_tree_close(got.aux, loss(jnp.asarray(got.params))[1])
    _assert_tree_close(got.sumstats_aux, stats_aux(jnp.asarray(got.params)))
    assert got.params[2] == pytest.approx(0.25, abs=1e-8)
    # the scan's losses ignore aux; they equal the in-memory loss
    scanned = model.scan([(0.0, 3.0), (-1.0, 1.0), (0.0, 0.5)], 4, seed=2, backend="serial")
    want_losses = [float(loss(jnp.asarray(p))[0]) for p in scanned.points]
    np.testing.assert_allclose(scanned.losses, want_losses, rtol=1e-12)


def test_loss_aux_only_and_adam_keep_the_best_points_aux(frame) -> None:
    model = _LossAuxOnly(frame, ["x", "w"], partition_rows=17)
    data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
    full = lambda p: model.loss(model.partial_sumstats(p, data))  # noqa: E731
    (want_loss, want_aux), want_grad = jax.value_and_grad(full, has_aux=True)(jnp.asarray(START))
    (loss, aux), grad = model.loss_and_grad(START, backend="serial")
    np.testing.assert_allclose(loss, float(want_loss), rtol=1e-12)
    np.testing.assert_allclose(grad, np.asarray(want_grad), rtol=1e-12)
    np.testing.assert_allclose(aux, float(want_aux), rtol=1e-12)
    assert isinstance(model.sumstats(START, backend="serial"), np.ndarray)
    result = model.fit(START, method="adam", learning_rate=0.01, maxiter=30, backend="serial")
    assert result.sumstats_aux is None
    np.testing.assert_allclose(result.aux, float(full(jnp.asarray(result.params))[1]), rtol=1e-12)
    assert result.loss == min(result.loss_history)


# -- declared aux but no tuple: a clear error ---------------------------------------------


class _NoStatsTuple(_Aux):
    def partial_sumstats(self, p, d):
        return super().partial_sumstats(p, d)[0]  # forgets the aux


class _NoLossTuple(_LossAuxOnly):
    def loss(self, s):
        return jnp.sqrt(s[0])  # forgets the aux


class _UndeclaredTuple(_LossAuxOnly):
    def partial_sumstats(self, p, d):
        return super().partial_sumstats(p, d), {"n": jnp.sum(d["w"])}


def test_declared_aux_without_a_tuple_is_refused_naming_the_partition(frame) -> None:
    model = _NoStatsTuple(frame, ["x", "w"], partition_rows=40)
    pattern = (
        r"partition DataFrame\[0:34\]: partial_sumstats returned an array of shape \(3,\), "
        r"not a pair: with sumstats_has_aux = True it must return \(sumstats, aux\)"
    )
    for call in (
        lambda: model.loss_and_grad(START, backend="serial"),
        lambda: model.sumstats(START, backend="serial"),
        lambda: model.scan([(0.0, 1.0)] * 3, 2, seed=1, backend="serial"),
    ):
        with pytest.raises(DesignError, match=pattern):
            call()
    no_pair = r"_NoLossTuple.loss returned an array of shape \(\), not a pair.*\(loss, aux\)"
    with pytest.raises(ValueError, match=no_pair):
        _NoLossTuple(frame, ["x", "w"], partition_rows=40).loss_and_grad(START, backend="serial")
    # a tuple without the declaration is still refused, with a hint
    with pytest.raises(DesignError, match=r"DataFrame\[0:34\].*tuple.*sumstats_has_aux = True"):
        _UndeclaredTuple(frame, ["x", "w"], partition_rows=40).loss_at(START, backend="serial")


def test_processes_backend_equals_serial(frame) -> None:
    model = _AuxC(frame, ["x", "w"], partition_rows=17)
    (loss, aux), grad = model.loss_and_grad(START, backend="serial")
    stats, per_partition = model.sumstats(START, backend="serial")
    with shardfit.session("processes", workers=2) as sess:
        (loss_p, aux_p), grad_p = model.loss_and_grad(START, backend=sess)
        stats_p, per_partition_p = model.sumstats(START, backend=sess)
    assert loss_p == loss and np.array_equal(grad_p, grad)
    _assert_tree_close(aux_p, aux, rtol=0)
    assert np.array_equal(stats_p, stats)
    _assert_tree_close(per_partition_p, per_partition, rtol=0)


def test_group_aux_is_a_tuple_of_members_and_save_leaves_it_out(frame, tmp_path) -> None:
    first = _AuxC(frame, ["x", "w"], partition_rows=40)
    second = _LossAuxOnly(frame, ["x", "w"], partition_rows=17)
    group = shardfit.SumstatsGroup([first, second])
    (loss, aux), grad = group.loss_and_grad(START, backend="serial")
    (loss1, aux1), grad1 = first.loss_and_grad(START, backend="serial")
    (loss2, aux2), grad2 = second.loss_and_grad(START, backend="serial")
    np.testing.assert_allclose(loss, loss1 + loss2, rtol=1e-15)
    np.testing.assert_allclose(grad, grad1 + grad2, rtol=1e-15)
    _assert_tree_close(aux, (aux1, aux2), rtol=0)
    result = first.fit(np.zeros(3), backend="serial")
    loaded = shardfit.SumstatsFitResult.load(result.save(tmp_path / "fit.json"))
    assert loaded.aux is None and loaded.sumstats_aux is None
    assert np.array_equal(loaded.params, result.params) and result.aux is not None
