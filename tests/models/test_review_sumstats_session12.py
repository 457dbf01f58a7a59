"""Review of the summary-statistic models (session 12): every number is checked against
the same loss on all rows in memory (``jax.grad``), ``scipy.optimize.minimize`` or a
hand-written optimizer step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

jax = pytest.importorskip("jax")

import scipy.optimize  # noqa: E402

import shardfit  # noqa: E402
from shardfit.errors import DesignError, ReadError  # noqa: E402
from shardfit.models._sumstats_testing import GaussianModel  # noqa: E402

jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

ROWS = 102


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(12)
    return pd.DataFrame({"x": rng.normal(2.0, 1.5, ROWS), "w": rng.uniform(0.5, 2.0, ROWS)})


def _memory(model, frame):
    """The model's loss on all rows at once, and its value and gradient as NumPy."""
    data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
    loss = jax.jit(lambda p: model.loss(model.partial_sumstats(p, data)))
    both = jax.jit(jax.value_and_grad(loss))

    def value_and_grad(p):
        value, grad = both(jnp.asarray(p, dtype=jnp.float64))
        return float(value), np.asarray(grad)

    return loss, value_and_grad


class _Moments(shardfit.SumstatsModel):
    """A (2, 3) block of statistics, a non-linear loss: 6 statistics > 3 parameters
    takes reverse mode, and the scalar-statistic model below forward mode."""

    param_names = ("a", "b", "c")

    def partial_sumstats(self, p, d):
        r = d["x"] - p[0] - p[1] * d["w"]
        return jnp.stack(
            [
                jnp.stack([jnp.sum(r), jnp.sum(r**2), jnp.sum(jnp.exp(p[2] * d["w"]))]),
                jnp.stack([jnp.sum(d["w"] * r), jnp.sum(jnp.tanh(r)), jnp.sum(d["w"])]),
            ]
        )

    def loss(self, s):
        return (
            jnp.log(s[0, 1] / s[1, 2])
            + (s[0, 0] / s[1, 2]) ** 2
            + s[1, 1] ** 2 / 1e3
            + 1e-3 * s[0, 2]
        )


class _OneStat(shardfit.SumstatsModel):
    param_names = ("a", "b", "c")

    def partial_sumstats(self, p, d):
        return jnp.sum((d["x"] - p[0] - p[1] * d["w"]) ** 2 + jnp.exp(p[2] * d["w"]))

    def loss(self, s):
        return jnp.sqrt(s)


@pytest.mark.parametrize("cls", [_Moments, _OneStat])
@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_gradient_equals_jax_grad_in_memory(frame, cls, nparts) -> None:
    rows = -(-ROWS // nparts)
    model = cls(frame, ["x", "w"], partition_rows=rows)
    assert model.source.npartitions == nparts
    params = np.array([0.4, 0.7, -0.3])
    _, reference = _memory(model, frame)
    want_loss, want_grad = reference(params)
    loss, grad = model.loss_and_grad(params, backend="serial")
    np.testing.assert_allclose(loss, want_loss, rtol=1e-13)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-12)


# -- bug: per-row values (not sums) were silently added row by row ---------------------


class _PerRow(shardfit.SumstatsModel):
    """Forgets the sum: returns one value per row."""

    param_names = ("a",)

    def partial_sumstats(self, p, d):
        return (d["x"] - p[0]) ** 2

    def loss(self, s):
        return jnp.sum(jnp.sqrt(s))


def test_per_row_statistics_are_refused_naming_the_partition(frame) -> None:
    model = _PerRow(frame, ["x"], partition_rows=ROWS // 2)  # two partitions of 51 rows
    # In memory the loss is sum |x - a|; the old code added row i of partition 0 to row
    # i of partition 1 and returned sum_i sqrt(r_i² + r_{i+51}²) without a word.
    in_memory = float(np.sum(np.abs(frame["x"].to_numpy() - 1.0)))
    assert float(_memory(model, frame)[0](jnp.array([1.0]))) == pytest.approx(in_memory)
    with pytest.raises(DesignError, match=r"partition DataFrame\[0:51\].*per-row values"):
        model.loss_and_grad([1.0], backend="serial")
    with pytest.raises(DesignError, match=r"partition DataFrame\[0:51\].*\(51,\) for 51 rows"):
        model.scan([(0.0, 2.0)], 3, seed=1, backend="serial")


class _TupleStats(shardfit.SumstatsModel):
    param_names = ("a",)

    def partial_sumstats(self, p, d):
        return jnp.sum(d["x"] - p[0]), jnp.sum((d["x"] - p[0]) ** 2)

    def loss(self, s):
        return s[1] - s[0]


def test_tuple_statistics_are_refused_naming_the_partition(frame) -> None:
    model = _TupleStats(frame, ["x"], partition_rows=40)
    # The old scan stacked the tuple's two arrays of 3 points into shape (2, 3) and
    # returned 2 losses for 3 points; loss_and_grad failed with an AttributeError.
    for call in (
        lambda: model.scan([(0.0, 1.0)], 3, seed=1, backend="serial"),
        lambda: model.loss_and_grad([1.0], backend="serial"),
    ):
        with pytest.raises(DesignError, match=r"partition DataFrame\[0:34\].*tuple, not one"):
            call()


class _VectorLoss(shardfit.SumstatsModel):
    param_names = ("a",)

    def partial_sumstats(self, p, d):
        return jnp.stack([jnp.sum(d["x"] - p[0]), jnp.sum((d["x"] - p[0]) ** 2)])

    def loss(self, s):
        return s[1:]  # shape (1,), not a scalar


def test_loss_of_shape_one_is_refused(frame) -> None:
    model = _VectorLoss(frame, ["x"], partition_rows=40)
    # The old scan returned losses of shape (3, 1) for 3 points, loss_at a float.
    for call in (
        lambda: model.scan([(0.0, 1.0)], 3, seed=1, backend="serial"),
        lambda: model.loss_at([1.0], backend="serial"),
    ):
        with pytest.raises(ValueError, match=r"_VectorLoss.loss must return a scalar.*\(1,\)"):
            call()


# -- bug: Adam / gradient descent stepped on through a NaN loss ------------------------


class _LogLoss(shardfit.SumstatsModel):
    param_names = ("a", "b")

    def partial_sumstats(self, p, d):
        return jnp.stack([jnp.sum(d["x"]) * p[0], jnp.sum(d["w"]) * p[1]])

    def loss(self, s):
        return jnp.log(s[0]) + s[1] ** 2  # NaN for a < 0 (the sum of x is > 0)


@pytest.mark.parametrize(("method", "name"), [("gd", "gradient descent"), ("adam", "adam")])
def test_first_order_method_stops_at_a_nan_loss(frame, method, name) -> None:
    model = _LogLoss(frame, ["x", "w"], partition_rows=40)
    x0, rate = np.array([0.01, 0.1]), 0.05
    _, reference = _memory(model, frame)
    grad = reference(x0)[1]
    # one step by hand: gradient descent, or Adam's first step (m̂ / sqrt(v̂) = sign g)
    step = grad if method == "gd" else grad / (np.abs(grad) + 1e-8)
    x1 = x0 - rate * step
    assert np.isnan(reference(x1)[0])
    # The old code kept stepping for maxiter steps of NaN losses and returned x0 (gd:
    # loss 157.7, "maxiter reached") as if it were an optimum.
    with pytest.raises(FloatingPointError, match=rf"{name} step 1: the loss is nan") as info:
        model.fit(x0, method=method, learning_rate=rate, maxiter=50, backend="serial")
    shown = str(info.value).split(" at [")[1].split("]")[0]
    np.testing.assert_allclose([float(v) for v in shown.split(",")], x1, rtol=1e-12)


def test_adam_and_gd_trajectories_equal_hand_written(frame) -> None:
    model = GaussianModel(frame, partition_rows=17)
    _, reference = _memory(model, frame)
    for method, rate in (("adam", 0.05), ("gd", 2e-3)):
        x, m, v, history = np.zeros(2), np.zeros(2), np.zeros(2), []
        for t in range(1, 21):
            value, g = reference(x)
            history.append(value)
            if method == "adam":
                m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
                g = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
            x = x - rate * g
        history.append(reference(x)[0])
        result = model.fit(
            np.zeros(2), method=method, learning_rate=rate, maxiter=20, tol=0.0, backend="serial"
        )
        assert (result.iterations, result.npasses) == (20, 21)
        np.testing.assert_allclose(result.loss_history, history, rtol=1e-12)
        best = int(np.argmin(history))
        assert result.loss == pytest.approx(history[best], rel=1e-12)


# -- bug: a None pair (multigrad's "None for an unbounded parameter") was refused -----


def test_bounds_with_none_pairs_and_fixed_parameters_match_scipy(frame) -> None:
    model = GaussianModel(frame, partition_rows=17)
    _, reference = _memory(model, frame)
    cases = [
        ([None, (0.7, 3.0)], [(None, None), (0.7, 3.0)], [1.0, 0.7]),
        ([(1.0, 1.0), None], [(1.0, 1.0), (None, None)], [1.0, 0.0]),
        ([(2.5, None), (-1.0, 1.0)], [(2.5, None), (-1.0, 1.0)], [2.6, 0.0]),
    ]
    for ours, scipys, x0 in cases:
        # the old code raised "bounds must be 2 (low, high) pairs" on a None pair, and
        # "maxiter must be an int" on a NumPy integer
        got = model.fit(x0, bounds=ours, tol=1e-10, maxiter=np.int64(100), backend="serial")
        want = scipy.optimize.minimize(
            reference, np.array(x0), jac=True, method="L-BFGS-B", bounds=scipys,
            options={"gtol": 1e-10, "ftol": 0.0},
        )  # fmt: skip
        assert got.converged and want.success
        np.testing.assert_allclose(got.params, want.x, rtol=0, atol=1e-8)
        assert (got.iterations, got.npasses) == (want.nit, want.nfev)
        lows = np.array([-np.inf if b[0] is None else b[0] for b in scipys])
        highs = np.array([np.inf if b[1] is None else b[1] for b in scipys])
        assert ((got.params >= lows) & (got.params <= highs)).all()
    assert got.params[0] == 2.5  # the mean (1.9) is below the bound: it binds
    scanned = model.scan([(0.0, 4.0), (-1.0, 1.0)], np.int64(4), seed=3, backend="serial")
    assert scanned.points.shape == (4, 2)


# -- bug: a scan could not be saved ------------------------------------------------------


def test_scan_equals_in_memory_and_round_trips_as_json(frame, tmp_path) -> None:
    model = GaussianModel(frame, partition_rows=17)
    loss, _ = _memory(model, frame)
    scanned = model.scan([(0.0, 4.0), (-1.0, 1.0)], 9, seed=11, backend="serial")
    again = model.scan([(0.0, 4.0), (-1.0, 1.0)], 9, seed=11, backend="serial")
    assert np.array_equal(scanned.points, again.points)
    assert (scanned.points[:, 0] >= 0).all() and (scanned.points[:, 0] <= 4).all()
    assert (scanned.points[:, 1] >= -1).all() and (scanned.points[:, 1] <= 1).all()
    want = [float(loss(jnp.asarray(p))) for p in scanned.points]
    np.testing.assert_allclose(scanned.losses, want, rtol=1e-13)
    # the old SumstatsScanResult had no save/load
    with_nan = shardfit.SumstatsScanResult(
        scanned.points, np.append(scanned.losses[:-1], np.nan), scanned.param_names
    )
    loaded = shardfit.SumstatsScanResult.load(with_nan.save(tmp_path / "scan.json"))
    assert np.array_equal(loaded.points, with_nan.points)
    assert np.array_equal(loaded.losses, with_nan.losses, equal_nan=True)
    assert loaded.param_names == ("mu", "log_sigma")
    assert loaded.best_index == with_nan.best_index == int(np.nanargmin(with_nan.losses))
    fit_file = tmp_path / "fit.json"
    model.fit([2.0, 0.0], backend="serial").save(fit_file)
    with pytest.raises(ReadError, match="shardfit-sumstats-scan"):
        shardfit.SumstatsScanResult.load(fit_file)
