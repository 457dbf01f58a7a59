"""GLM from Parquet on the processes and Dask backends equals the serial fit bitwise,
and statsmodels to 1e-7 (issue 6). One model per backend keeps this fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from glm_cases import FORMULA, assert_matches, glm_frame, sm_fit

import shardfit


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory):
    frame = glm_frame("binomial", "probit", rows=3000, seed=8)
    frame["cl"] = np.random.default_rng(8).integers(0, 50, len(frame))
    path = tmp_path_factory.mktemp("glm") / "data.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=500)
    return frame, path


def _fit(path, backend, **options):
    model = shardfit.glm(
        FORMULA,
        shardfit.read_parquet(path),
        family="binomial",
        link="probit",
        weights="w",
        offset="off",
    )
    return model.fit(backend=backend, cov_type="cluster", cov_kwds={"groups": "cl"}, **options)


def _same(a, b) -> None:
    assert np.array_equal(a.params_array, b.params_array)
    assert np.array_equal(a.cov_array, b.cov_array)
    assert (a.deviance, a.llf, a.pearson_chi2, a.iterations) == (
        b.deviance,
        b.llf,
        b.pearson_chi2,
        b.iterations,
    )


@pytest.fixture(scope="module")
def serial(data):
    frame, path = data
    result = _fit(path, "serial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = sm_fit(
            frame,
            "binomial",
            "probit",
            weights=True,
            offset=True,
            cov_type="cluster",
            groups="cl",
        )
    assert shardfit.read_parquet(path).npartitions == 6
    assert_matches(result, reference)
    return result


def test_processes_backend(data, serial) -> None:
    _same(_fit(data[1], "processes", workers=2), serial)


def test_dask_local_cluster(data, serial) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        result = _fit(data[1], client)
    _same(result, serial)


MPIEXEC = Path(sys.executable).parent / "mpiexec"
MPI_SCRIPT = """
import json, sys
import shardfit
from glm_cases import FORMULA
model = shardfit.glm(
    FORMULA, shardfit.read_parquet(sys.argv[1]), family="binomial", link="probit",
    weights="w", offset="off",
)
result = model.fit(backend="mpi", cov_type="cluster", cov_kwds={"groups": "cl"})
from mpi4py import MPI
if MPI.COMM_WORLD.rank == 0:
    with open(sys.argv[2], "w") as handle:
        arrays = {"params": result.params_array.tolist(), "cov": result.cov_array.tolist()}
        json.dump(arrays, handle)
"""


@pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec not installed (the mpi extra)")
def test_mpiexec_two_ranks(data, serial, tmp_path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(MPI_SCRIPT)
    out = tmp_path / "out.json"
    completed = subprocess.run(
        [
            str(MPIEXEC),
            "-n",
            "2",
            sys.executable,
            "-m",
            "mpi4py",
            str(script),
            str(data[1]),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    got = json.loads(out.read_text())
    assert np.array_equal(np.array(got["params"]), serial.params_array)
    assert np.array_equal(np.array(got["cov"]), serial.cov_array)
