"""OLS from CSV, Parquet and pandas on serial, processes, Dask and MPI backends equals
statsmodels to relative 1e-9 and is bitwise the same on every backend (issue 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf
from linear_cases import FORMULA, assert_matches, linreg_frame

import shardfit

RTOL = 1e-9
MPIEXEC = Path(sys.executable).parent / "mpiexec"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return linreg_frame(rows=6000, seed=4)


@pytest.fixture(scope="module")
def reference(frame: pd.DataFrame):
    return smf.wls(FORMULA, frame, weights=frame["w"]).fit(
        cov_type="cluster", cov_kwds={"groups": frame["cl"].to_numpy()}
    )


@pytest.fixture(scope="module")
def files(frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("linreg")
    csv, parquet = folder / "data.csv", folder / "data.parquet"
    frame.to_csv(csv, index=False)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=1000)
    return {"csv": csv, "parquet": parquet}


def _fit(data, backend, **options):
    return shardfit.wls(FORMULA, data, weights="w").fit(
        backend=backend, cov_type="cluster", cov_kwds={"groups": "cl"}, **options
    )


def test_sources_and_backends(frame, reference, files) -> None:
    sources = {
        "pandas": shardfit.from_pandas(frame, 4),
        "csv": shardfit.read_csv(files["csv"], partition_bytes=files["csv"].stat().st_size // 5),
        "parquet": shardfit.read_parquet(files["parquet"]),
    }
    results = {}
    for name, source in sources.items():
        assert source.npartitions >= 4, name
        results[name] = _fit(source, "serial")
        assert_matches(results[name], reference, rtol=RTOL)
    parquet_serial = results["parquet"]
    for backend in ("threads", "processes"):
        result = _fit(sources["parquet"], backend, workers=2)
        assert np.array_equal(result.params_array, parquet_serial.params_array), backend
        assert np.array_equal(result.cov_array, parquet_serial.cov_array), backend


def test_dask_local_cluster(frame, files) -> None:
    from distributed import Client, LocalCluster

    serial = _fit(shardfit.read_parquet(files["parquet"]), "serial")
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        result = _fit(shardfit.read_parquet(files["parquet"]), client)
    assert np.array_equal(result.params_array, serial.params_array)
    assert np.array_equal(result.cov_array, serial.cov_array)


MPI_SCRIPT = """
import json, sys
import numpy as np
import shardfit
from shardfit.data.simulate import default_formula
source = shardfit.read_parquet(sys.argv[1])
result = shardfit.wls(default_formula("linreg"), source, weights="w").fit(
    backend="mpi", cov_type="cluster", cov_kwds={"groups": "cl"}
)
from mpi4py import MPI
if MPI.COMM_WORLD.rank == 0:
    with open(sys.argv[2], "w") as handle:
        arrays = {"params": result.params_array.tolist(), "cov": result.cov_array.tolist()}
        json.dump(arrays, handle)
"""


@pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec not installed (the mpi extra)")
def test_mpiexec_two_ranks(files, tmp_path: Path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(MPI_SCRIPT)
    out = tmp_path / "out.json"
    completed = subprocess.run(
        # ``-m mpi4py`` aborts every rank when one raises, instead of hanging.
        [
            str(MPIEXEC),
            "-n",
            "2",
            sys.executable,
            "-m",
            "mpi4py",
            str(script),
            str(files["parquet"]),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    got = json.loads(out.read_text())
    serial = _fit(shardfit.read_parquet(files["parquet"]), "serial")
    assert np.array_equal(np.array(got["params"]), serial.params_array)
    assert np.array_equal(np.array(got["cov"]), serial.cov_array, equal_nan=True)
