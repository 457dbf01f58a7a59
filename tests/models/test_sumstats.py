"""Differentiable summary-statistic models (capability 5): loss and gradient equal the
same computation on all rows in memory, fits equal the closed-form MLE, and results
are bitwise the same on every backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

jax = pytest.importorskip("jax")

import shardfit  # noqa: E402
from shardfit.errors import DesignError, ReadError  # noqa: E402
from shardfit.models._sumstats_testing import GaussianModel, HistogramModel  # noqa: E402

jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

ROWS = 1200
EDGES = np.linspace(-4.0, 8.0, 13)
WIDTH = 0.4
TRUE_SHIFT_SCALE = np.array([0.5, 1.5])
START = np.array([1.0, 0.2])


def _partition_rows(nparts: int) -> int:
    rows = -(-ROWS // nparts)
    assert -(-ROWS // rows) == nparts
    return rows


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261201)
    return pd.DataFrame({"x": rng.normal(2.0, 1.5, ROWS), "w": rng.uniform(0.5, 2.0, ROWS)})


@pytest.fixture(scope="module")
def mle(frame) -> np.ndarray:
    x, w = frame["x"].to_numpy(), frame["w"].to_numpy()
    mu = np.sum(w * x) / np.sum(w)
    return np.array([mu, 0.5 * np.log(np.sum(w * (x - mu) ** 2) / np.sum(w))])


def _in_memory(model, frame):
    """The model's loss on all rows at once, as a JAX function of params."""
    data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
    return lambda p: model.loss(model.partial_sumstats(p, data))


def _target(frame) -> np.ndarray:
    y = TRUE_SHIFT_SCALE[0] + TRUE_SHIFT_SCALE[1] * frame["x"].to_numpy()
    from scipy.stats import norm

    cdf = norm.cdf((EDGES[None, :] - y[:, None]) / WIDTH)
    return (cdf[:, 1:] - cdf[:, :-1]).sum(axis=0) / len(y)


def _histogram(data, frame, **options) -> HistogramModel:
    aux = {"edges": EDGES, "width": WIDTH, "target": _target(frame)}
    return HistogramModel(data, ["x"], aux=aux, **options)


@pytest.fixture(scope="module")
def gaussians(frame) -> dict[int, GaussianModel]:
    return {k: GaussianModel(frame, partition_rows=_partition_rows(k)) for k in (1, 3, 17)}


@pytest.mark.parametrize("nparts", [1, 3, 17])
def test_gaussian_gradient_and_fit(gaussians, frame, mle, nparts) -> None:
    model = gaussians[nparts]
    assert model.source.npartitions == nparts
    loss, grad = model.loss_and_grad(START, backend="serial")
    full = _in_memory(model, frame)
    np.testing.assert_allclose(loss, float(full(jnp.asarray(START))), rtol=1e-12)
    np.testing.assert_allclose(grad, np.asarray(jax.grad(full)(jnp.asarray(START))), rtol=1e-12)
    step = 1e-6
    central = [
        (model.loss_at(START + e, backend="serial") - model.loss_at(START - e, backend="serial"))
        / (2 * step)
        for e in np.eye(2) * step
    ]
    np.testing.assert_allclose(grad, central, rtol=1e-6)
    np.testing.assert_allclose(model.grad(START, backend="serial"), grad, rtol=0, atol=0)
    stats = model.sumstats(START, backend="serial")
    np.testing.assert_allclose(stats[0], frame["w"].sum(), rtol=1e-13)

    result = model.fit(np.zeros(2), backend="serial")
    assert result.converged, result.message
    np.testing.assert_allclose(result.params, mle, rtol=0, atol=1e-8)
    assert result.grad_norm <= 1e-6
    assert result.npasses == len(result.loss_history) >= result.iterations
    assert result.loss == pytest.approx(float(full(jnp.asarray(mle))), rel=1e-13)


def test_histogram_model(frame) -> None:
    model = _histogram(frame, frame, partition_rows=_partition_rows(3))
    params = np.array([0.0, 1.0])
    loss, grad = model.loss_and_grad(params, backend="serial")
    full = _in_memory(model, frame)
    np.testing.assert_allclose(loss, float(full(jnp.asarray(params))), rtol=1e-12)
    np.testing.assert_allclose(grad, np.asarray(jax.grad(full)(jnp.asarray(params))), rtol=1e-11)
    assert model.loss_at(TRUE_SHIFT_SCALE, backend="serial") < 1e-20
    result = model.fit(params, bounds=[(-2, 2), (0.2, 4)], tol=1e-12, backend="serial")
    np.testing.assert_allclose(result.params, TRUE_SHIFT_SCALE, atol=1e-5)
    assert result.loss < 1e-12


@pytest.mark.parametrize(("method", "rate"), [("adam", 0.05), ("gd", 1e-4)])
def test_first_order_methods_reach_the_optimum(gaussians, mle, method, rate) -> None:
    model = gaussians[1]
    optimum = model.loss_at(mle, backend="serial")
    result = model.fit(
        np.zeros(2), method=method, learning_rate=rate, maxiter=600, tol=1e-5, backend="serial"
    )
    assert result.converged, result.message
    assert abs(result.loss - optimum) <= 1e-8 * abs(optimum)
    np.testing.assert_allclose(result.params, mle, atol=1e-6)
    assert result.loss_history[0] > result.loss_history[-1]


def test_bounds_hold_for_adam(gaussians, mle) -> None:
    result = gaussians[1].fit(
        np.zeros(2), method="adam", bounds=[(None, 1.0), (None, None)], maxiter=150,
        learning_rate=0.05, backend="serial",
    )  # fmt: skip
    assert result.params[0] == 1.0 < mle[0]


def test_scan_matches_single_evaluations(gaussians) -> None:
    model = gaussians[3]
    scanned = model.scan([(0.0, 4.0), (-1.0, 1.0)], 16, seed=5, backend="serial")
    again = model.scan([(0.0, 4.0), (-1.0, 1.0)], 16, seed=5, backend="serial")
    assert np.array_equal(scanned.points, again.points)
    # a Latin hypercube: one point in each of 16 strata of every axis
    assert sorted(np.floor(scanned.points[:, 0] / 4 * 16).astype(int)) == list(range(16))
    singles = [model.loss_at(point, backend="serial") for point in scanned.points]
    np.testing.assert_allclose(scanned.losses, singles, rtol=1e-13)
    # vmapped and single evaluations may differ in the last bit, not in the ranking
    assert scanned.best_loss == scanned.losses.min()
    assert np.array_equal(scanned.best_params, scanned.points[int(np.argmin(singles))])


def test_group_adds_losses_and_gradients(gaussians, frame) -> None:
    hist = _histogram(frame, frame)
    gauss = gaussians[3]
    # share params: both models read (a, b); different sources and columns
    group = shardfit.SumstatsGroup([gauss, _Renamed(hist)])
    params = np.array([0.3, 0.8])
    loss, grad = group.loss_and_grad(params, backend="serial")
    parts = [m.loss_and_grad(params, backend="serial") for m in group.models]
    assert loss == parts[0][0] + parts[1][0]
    assert np.array_equal(grad, parts[0][1] + parts[1][1])
    scanned = group.scan([(0.0, 1.0), (0.5, 1.0)], 4, seed=1, backend="serial")
    singles = [group.loss_at(p, backend="serial") for p in scanned.points]
    np.testing.assert_allclose(scanned.losses, singles, rtol=1e-13)
    result = group.fit(params, backend="serial", tol=1e-7)
    assert result.converged and result.grad_norm <= 1e-5


class _Renamed(HistogramModel):
    """The histogram model with the Gaussian's parameter names (a group shares them)."""

    param_names = ("mu", "log_sigma")

    def __init__(self, other: HistogramModel) -> None:
        self.__dict__.update(other.__dict__)
        self.param_names = type(self).param_names


class _SquaredError(shardfit.SumstatsModel):
    """One scalar statistic, the partial loss itself (reverse mode: 1 statistic < 2 params)."""

    param_names = ("a", "b")

    def partial_sumstats(self, params, data):
        return jnp.sum((data["x"] - params[0] - params[1] * data["w"]) ** 2)

    def loss(self, sumstats):
        return sumstats


def test_scalar_statistic_is_least_squares(frame) -> None:
    model = _SquaredError(frame, ["x", "w"], partition_rows=_partition_rows(3))
    params = np.array([0.5, -0.25])
    loss, grad = model.loss_and_grad(params, backend="serial")
    full = _in_memory(model, frame)
    np.testing.assert_allclose(loss, float(full(jnp.asarray(params))), rtol=1e-12)
    np.testing.assert_allclose(grad, np.asarray(jax.grad(full)(jnp.asarray(params))), rtol=1e-12)
    design = np.column_stack([np.ones(ROWS), frame["w"].to_numpy()])
    exact = np.linalg.lstsq(design, frame["x"].to_numpy(), rcond=None)[0]
    result = model.fit(params, backend="serial", tol=1e-9)
    assert result.converged, result.message
    # The loss (~2.7e3, curvature ~2.4e3) stops decreasing in float64 within
    # sqrt(2 ulp / curvature) ~ 2e-8 of the optimum: that is as close as any minimizer
    # of this loss value gets (observed 1.2e-9).
    np.testing.assert_allclose(result.params, exact, rtol=0, atol=1e-8)


def test_errors(frame, gaussians) -> None:
    model = gaussians[3]
    with pytest.raises(ValueError, match=r"shape \(2,\).*'mu', 'log_sigma'.*got shape \(3,\)"):
        model.loss_and_grad([1.0, 2.0, 3.0], backend="serial")
    with pytest.raises(ValueError, match="finite"):
        model.loss_at([np.nan, 0.0], backend="serial")
    bad = frame.copy()
    bad.loc[500, "x"] = np.inf
    broken = GaussianModel(bad, partition_rows=_partition_rows(3))
    with pytest.raises(DesignError, match=r"non-finite summary statistics in partition "
                       r"DataFrame\[400:800\]"):  # fmt: skip
        broken.loss_and_grad(START, backend="serial")
    with pytest.raises(DesignError, match=r"partition DataFrame\[400:800\]"):
        broken.loss_at(START, backend="serial")
    with pytest.raises(DesignError, match="not in"):
        GaussianModel(frame[["x"]])
    with pytest.raises(ValueError, match="bounds"):
        model.scan([(0.0, 1.0)], 4)


def test_save_and_load(gaussians, tmp_path) -> None:
    result = gaussians[1].fit(np.zeros(2), backend="serial")
    path = result.save(tmp_path / "fit.json")
    loaded = shardfit.SumstatsFitResult.load(path)
    assert np.array_equal(loaded.params, result.params)
    assert np.array_equal(loaded.loss_history, result.loss_history)
    assert (loaded.loss, loaded.converged, loaded.param_names) == (
        result.loss,
        result.converged,
        ("mu", "log_sigma"),
    )
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ReadError):
        shardfit.SumstatsFitResult.load(tmp_path / "bad.json")


# -- real backends, on a Parquet file of 6 row groups ---------------------------------


@pytest.fixture(scope="module")
def parquet(frame, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sumstats") / "data.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=200)
    return path


@pytest.fixture(scope="module")
def serial_numbers(parquet, frame):
    model = GaussianModel(shardfit.read_parquet(parquet))
    assert model.source.npartitions == 6
    hist = _histogram(shardfit.read_parquet(parquet), frame)
    return model.loss_and_grad(START, backend="serial"), hist.loss_and_grad(
        [0.0, 1.0], backend="serial"
    )


def _same(got, want) -> None:
    assert got[0] == want[0]
    assert np.array_equal(got[1], want[1])


def test_processes_backend_bitwise(parquet, frame, serial_numbers) -> None:
    model = GaussianModel(shardfit.read_parquet(parquet))
    hist = _histogram(shardfit.read_parquet(parquet), frame)
    with shardfit.session("processes", workers=2) as sess:
        _same(model.loss_and_grad(START, backend=sess), serial_numbers[0])
        _same(hist.loss_and_grad([0.0, 1.0], backend=sess), serial_numbers[1])
        fitted = model.fit(np.zeros(2), backend=sess)
    serial_fit = model.fit(np.zeros(2), backend="serial")
    assert np.array_equal(fitted.params, serial_fit.params)
    assert np.array_equal(fitted.loss_history, serial_fit.loss_history)


def test_dask_local_cluster_bitwise(parquet, serial_numbers) -> None:
    from distributed import Client, LocalCluster

    model = GaussianModel(shardfit.read_parquet(parquet))
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        _same(model.loss_and_grad(START, backend=client), serial_numbers[0])


MPIEXEC = Path(sys.executable).parent / "mpiexec"
MPI_SCRIPT = """
import json, sys
import shardfit
from shardfit.models._sumstats_testing import GaussianModel
model = GaussianModel(shardfit.read_parquet(sys.argv[1]))
loss, grad = model.loss_and_grad([1.0, 0.2], backend="mpi")
fitted = model.fit([0.0, 0.0], backend="mpi")
from mpi4py import MPI
with open(f"{sys.argv[2]}.{MPI.COMM_WORLD.rank}", "w") as handle:
    json.dump({"loss": loss, "grad": grad.tolist(), "params": fitted.params.tolist()}, handle)
"""


@pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec not installed (the mpi extra)")
def test_mpiexec_two_ranks(parquet, serial_numbers, tmp_path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(MPI_SCRIPT)
    out = tmp_path / "out.json"
    completed = subprocess.run(
        [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(script), str(parquet),
         str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    serial_fit = GaussianModel(shardfit.read_parquet(parquet)).fit([0.0, 0.0], backend="serial")
    for rank in (0, 1):  # every rank gets the same numbers and takes the same steps
        got = json.loads(Path(f"{out}.{rank}").read_text())
        _same((got["loss"], np.array(got["grad"])), serial_numbers[0])
        assert np.array_equal(np.array(got["params"]), serial_fit.params)


def test_jax_is_imported_only_when_used() -> None:
    code = (
        "import sys, shardfit\n"
        "cls = shardfit.SumstatsModel\n"
        "assert 'jax' not in sys.modules, 'jax imported by shardfit'\n"
        "sys.modules['jax'] = None  # as if JAX were not installed\n"
        "from shardfit.models._sumstats_testing import GaussianModel\n"
        "import pandas as pd\n"
        "try:\n"
        "    GaussianModel(pd.DataFrame({'x': [1.0], 'w': [1.0]}))\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert 'pip install "shardfit[jax]"' in completed.stdout
