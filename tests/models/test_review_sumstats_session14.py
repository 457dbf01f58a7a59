"""Review of the summary-statistic models (session 14): partitions of very different
sizes (one row, none), float32 and integer columns, the scan's Latin hypercube,
projected Adam, aux of a fitted point, and the errors for a NaN loss under L-BFGS-B and
for a null, each against the same loss on all rows in memory (``jax.value_and_grad``),
``scipy.optimize.minimize`` or ``scipy.stats.qmc``."""

from __future__ import annotations

import ast
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

jax = pytest.importorskip("jax")

import scipy.optimize  # noqa: E402
from scipy.stats import qmc  # noqa: E402

import shardfit  # noqa: E402
from shardfit.errors import MissingDataError  # noqa: E402
from shardfit.models._sumstats_testing import GaussianModel  # noqa: E402

jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def _memory(model, frame):
    """``value_and_grad`` of the model's loss on all rows of ``frame`` at once."""
    data = {c: jnp.asarray(frame[c].to_numpy(dtype=np.float64)) for c in model.columns}
    both = jax.jit(jax.value_and_grad(lambda p: model.loss(model.partial_sumstats(p, data))))

    def value_and_grad(p):
        value, grad = both(jnp.asarray(p, dtype=jnp.float64))
        return float(value), np.asarray(grad)

    return value_and_grad


class _SqrtLoss(shardfit.SumstatsModel):
    """NaN for b < 0 (the sum of x is > 0): L-BFGS-B's first line search steps there."""

    param_names = ("a", "b")

    def partial_sumstats(self, p, d):
        return jnp.stack([jnp.sum((d["x"] - p[0]) ** 2), jnp.sum(d["x"]) * p[1]])

    def loss(self, s):
        return jnp.sqrt(s[1]) + s[0]


def test_lbfgs_nan_loss_names_the_point_where_the_loss_is_nan() -> None:
    frame = pd.DataFrame({"x": np.random.default_rng(2).uniform(0.5, 2.0, 100)})
    model = _SqrtLoss(frame, ["x"], partition_rows=30)
    reference = _memory(model, frame)
    tried = []

    def traced(p):
        tried.append(np.array(p))
        return reference(p)

    x0 = np.array([1.0, 0.01])
    want = scipy.optimize.minimize(
        traced, x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-8, "ftol": 0.0}
    )
    # scipy returns its start with the NaN of a later trial point: the loss at the
    # start is finite (24.2)
    assert np.isnan(want.fun) and np.array_equal(want.x, x0)
    assert np.isfinite(reference(x0)[0])
    first_nan = next(p for p in tried if np.isnan(reference(p)[0]))
    with pytest.raises(FloatingPointError, match="the loss is nan at") as info:
        model.fit(x0, backend="serial")
    # The old message said "the loss is nan at [1.0, 0.01]", where it is 24.2.
    shown = np.array(ast.literal_eval(re.search(r"at (\[[^\]]*\])", str(info.value)).group(1)))
    np.testing.assert_allclose(shown, first_nan, rtol=1e-8)
    assert np.isnan(reference(shown)[0])
    assert "stopped at [1.0, 0.01]" in str(info.value)


def test_null_error_names_the_row_and_no_missing_option() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(2.0, 1.5, 60), "w": rng.uniform(0.5, 2.0, 60)})
    frame.loc[20, "x"] = np.nan  # read as a null
    where = r"partition DataFrame\[18:27\].*row 20.*'x'"
    with pytest.raises(MissingDataError, match=where) as info:
        GaussianModel(frame, partition_rows=9).loss_and_grad([0.3, 0.1], backend="serial")
    # The old message said "pass missing='drop'", an option SumstatsModel does not take.
    assert "missing='drop'" not in str(info.value)
    with pytest.raises(TypeError):
        GaussianModel(frame, partition_rows=9, missing="drop")  # type: ignore[call-arg]
    # what the message says to do instead: drop the rows
    kept = frame.dropna().reset_index(drop=True)
    got = GaussianModel(kept, partition_rows=9).loss_and_grad([0.3, 0.1], backend="serial")
    want = _memory(GaussianModel(kept), kept)([0.3, 0.1])
    assert got[0] == pytest.approx(want[0], rel=1e-12)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


# -- no bug: checked ------------------------------------------------------------------

SIZES = [1, 0, 50, 3, 200, 1]


@pytest.fixture(scope="module")
def uneven(tmp_path_factory):
    """Six Parquet files of 1, 0, 50, 3, 200 and 1 rows, one partition each."""
    rng = np.random.default_rng(14)
    folder = tmp_path_factory.mktemp("uneven")
    frames, paths = [], []
    for i, n in enumerate(SIZES):
        part = pd.DataFrame({"x": rng.normal(2.0, 1.5, n), "w": rng.uniform(0.5, 2.0, n)})
        paths.append(folder / f"p{i}.parquet")
        pq.write_table(pa.Table.from_pandas(part, preserve_index=False), paths[-1])
        frames.append(part)
    return [str(p) for p in paths], pd.concat(frames, ignore_index=True)


def test_empty_and_one_row_partitions_equal_jax_grad_on_every_backend(uneven) -> None:
    paths, frame = uneven
    model = GaussianModel(shardfit.as_source(paths))
    assert model.source.npartitions == len(SIZES)
    reference = _memory(model, frame)
    points = [np.array([0.3, -0.2]), np.array([2.0, 0.4]), np.array([-1.0, 1.0])]
    serial = [model.loss_and_grad(p, backend="serial") for p in points]
    for (value, grad), p in zip(serial, points):
        want = reference(p)
        assert value == pytest.approx(want[0], rel=1e-12)
        np.testing.assert_allclose(grad, want[1], rtol=1e-12)
    with shardfit.session("processes", workers=2) as sess:
        for (value, grad), p in zip(serial, points):
            got = model.loss_and_grad(p, backend=sess)
            assert got[0] == value and np.array_equal(got[1], grad)
        scanned = model.scan([(0.0, 4.0), (-1.0, 1.0)], 9, seed=3, backend=sess)
    again = model.scan([(0.0, 4.0), (-1.0, 1.0)], 9, seed=3, backend="serial")
    assert np.array_equal(scanned.points, again.points)
    assert np.array_equal(scanned.losses, again.losses)


def test_float32_and_integer_columns_are_read_as_float64(tmp_path) -> None:
    rng = np.random.default_rng(3)
    x32 = rng.normal(2.0, 1.5, 50).astype(np.float32)
    w = rng.integers(1, 4, 50).astype(np.int32)
    path = tmp_path / "f32.parquet"
    pq.write_table(pa.table({"x": x32, "w": w}), path, row_group_size=7)
    model = GaussianModel(str(path))
    assert model.source.npartitions == 8
    frame = pd.DataFrame({"x": x32.astype(np.float64), "w": w.astype(np.float64)})
    for p in ([0.3, 0.1], [2.0, 0.5]):
        got = model.loss_and_grad(p, backend="serial")
        want = _memory(model, frame)(p)
        assert got[0] == pytest.approx(want[0], rel=1e-12)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)


def test_scan_points_are_scipys_latin_hypercube() -> None:
    rng = np.random.default_rng(6)
    frame = pd.DataFrame({"x": rng.normal(2.0, 1.5, 90), "w": rng.uniform(0.5, 2.0, 90)})
    model = GaussianModel(frame, partition_rows=13)
    reference = _memory(model, frame)
    low, high = np.array([0.0, -1.0]), np.array([5.0, 2.0])
    for seed in (0, 7, 123):
        scanned = model.scan(list(zip(low, high)), 17, seed=seed, backend="serial")
        # (qmc.LatinHypercube(seed=int), the legacy keyword, draws other points)
        want = qmc.scale(qmc.LatinHypercube(d=2, rng=seed).random(17), low, high)
        assert np.array_equal(scanned.points, want)
        np.testing.assert_allclose(scanned.losses, [reference(p)[0] for p in want], rtol=1e-12)


def test_lbfgs_and_bfgs_reach_the_same_optimum_as_scipy() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame({"x": rng.normal(2.0, 1.5, 300), "w": rng.uniform(0.5, 2.0, 300)})
    model = GaussianModel(frame, partition_rows=37)
    reference = _memory(model, frame)
    got = model.fit([0.1, 0.1], backend="serial")
    assert got.converged
    for method in ("BFGS", "L-BFGS-B"):
        want = scipy.optimize.minimize(
            reference, [0.1, 0.1], jac=True, method=method, options={"gtol": 1e-10}
        )
        np.testing.assert_allclose(got.params, want.x, rtol=0, atol=1e-8)
    mu = np.average(frame.x, weights=frame.w)
    sigma = np.sqrt(np.average((frame.x - mu) ** 2, weights=frame.w))
    np.testing.assert_allclose(got.params, [mu, np.log(sigma)], rtol=0, atol=1e-8)


def test_adam_with_bounds_equals_a_hand_written_projected_loop() -> None:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"x": rng.normal(2.0, 1.5, 80), "w": rng.uniform(0.5, 2.0, 80)})
    model = GaussianModel(frame, partition_rows=11)
    reference = _memory(model, frame)
    low, high = np.array([-np.inf, 0.05]), np.array([1.2, 0.05])  # b fixed, a capped
    x, m, v, history = np.array([0.0, 0.05]), np.zeros(2), np.zeros(2), []
    for t in range(1, 41):
        value, g = reference(x)
        history.append(value)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        step = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        x = np.clip(x - 0.1 * step, low, high)
    history.append(reference(x)[0])
    got = model.fit(
        [0.0, 0.05], method="adam", bounds=[(None, 1.2), (0.05, 0.05)],
        learning_rate=0.1, maxiter=40, tol=0.0, backend="serial",
    )  # fmt: skip
    # It stops once a sits on its cap (the mean, 2, is above it) with the gradient
    # pointing out: the projected gradient is 0 <= tol, the box's optimum.
    assert got.converged and got.npasses < len(history)
    np.testing.assert_allclose(got.loss_history, history[: got.npasses], rtol=1e-12)
    assert got.params.tolist() == [1.2, 0.05]


class _AuxAtPoint(shardfit.SumstatsModel):
    """The loss's aux is the summed statistics: it must be those of the fitted point."""

    param_names = ("a", "b")
    loss_has_aux = True

    def partial_sumstats(self, p, d):
        r = d["x"] - p[0] - p[1] * d["w"]
        return jnp.stack([jnp.sum(r**2), jnp.sum(jnp.ones_like(r))])

    def loss(self, s):
        return s[0] / s[1], {"stats": s}


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
def test_fit_keeps_the_aux_of_the_returned_point(method) -> None:
    rng = np.random.default_rng(10)
    frame = pd.DataFrame({"x": rng.normal(2.0, 1.5, 70), "w": rng.uniform(0.5, 2.0, 70)})
    model = _AuxAtPoint(frame, ["x", "w"], partition_rows=9)
    data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
    both = jax.value_and_grad(lambda p: model.loss(model.partial_sumstats(p, data)), has_aux=True)
    got = model.fit([0.0, 0.0], method=method, learning_rate=0.05, maxiter=60, backend="serial")
    (value, aux), _ = both(jnp.asarray(got.params))
    assert got.loss == pytest.approx(float(value), rel=1e-12)
    np.testing.assert_allclose(got.aux["stats"], np.asarray(aux["stats"]), rtol=1e-12)
