"""``shardfit.svd``: one-pass TSQR SVD/PCA equals NumPy's SVD and scikit-learn's PCA of
the in-memory design, on every backend and partitioning, bitwise across backends.

Tolerances. NumPy's SVD of ``X`` and ours (SVD of the merged TSQR factor) are both
backward stable: each is the exact SVD of ``X + E`` with ``||E|| ~ c eps ||X||``, so
by Weyl's theorem each singular value moves by at most about ``c eps s_max`` (``c``
grows slowly with p and the merge depth: a few tens here). Relative to ``s_max`` that
is ~1e-14; we assert 1e-12 (small singular values are compared relative to
``s_max``, the only honest scale for them). A right singular vector moves by about
``eps s_max / gap`` (gap to the nearest other singular value); the fixtures check
their gaps exceed ``s_max / 100``, so 1e-12 on components holds with margin.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA

import shardfit
from shardfit.errors import DesignError, PartitionTaskError

SEED_FORMULA = "0 + a + b + c + d + d:c + a:b + a:c + C(cat1)"
NUMERIC_FORMULA = "0 + a + b + c + d + d:c + a:b + a:c"
RTOL = 1e-12
PARTITIONS = (1, 3, 17)
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def _frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.standard_normal((rows, 4)), columns=list("abcd"))
    # Unequal spreads, so the singular values are well separated.
    frame["b"] = 0.5 * frame["a"] + 2.0 * frame["b"]
    frame["c"] *= 3.0
    frame["a"] *= 1.5
    frame["d"] *= 0.3
    frame["cat1"] = rng.integers(0, 5, rows)
    frame["w"] = rng.uniform(0.5, 2.0, rows)
    return frame


def _flip(vt: np.ndarray) -> np.ndarray:
    """scikit-learn's sign convention, written out independently."""
    vt = vt.copy()
    for row in vt:
        j = int(np.argmax(np.abs(row)))
        if row[j] < 0:
            row *= -1
    return vt


def _assert_singular_values(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=RTOL * expected[0])
    big = expected > 1e-3 * expected[0]
    np.testing.assert_allclose(actual[big], expected[big], rtol=RTOL)


def _assert_gaps(s: np.ndarray) -> None:
    gaps = np.diff(s[::-1])
    assert gaps.min() > s[0] / 100, "fixture's singular values too close for the tolerance"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _frame(2400, seed=7)


@pytest.fixture(scope="module")
def design(frame: pd.DataFrame) -> np.ndarray:
    return shardfit.dmatrix(NUMERIC_FORMULA, frame).to_numpy()


@pytest.fixture(scope="module")
def pca(design: np.ndarray) -> PCA:
    return PCA(svd_solver="full").fit(design)


def test_uncentred_equals_numpy_svd(frame: pd.DataFrame, design: np.ndarray) -> None:
    _, s, vt = np.linalg.svd(design, full_matrices=False)
    _assert_gaps(s)
    result = shardfit.svd(NUMERIC_FORMULA, shardfit.from_pandas(frame, 3), backend="serial")
    _assert_singular_values(result.singular_values, s)
    np.testing.assert_allclose(result.components.to_numpy(), _flip(vt), rtol=0, atol=RTOL)
    assert result.mean is None
    assert result.rank == design.shape[1]
    assert result.condition_number == pytest.approx(s[0] / s[-1], rel=1e-12)
    assert result.column_names == list(shardfit.dmatrix(NUMERIC_FORMULA, frame.head()).columns)
    assert list(result.components.index) == [f"PC{i}" for i in range(1, 8)]


@pytest.mark.parametrize("npartitions", PARTITIONS)
def test_pca_equals_sklearn_on_every_backend(
    frame: pd.DataFrame, pca: PCA, npartitions: int, processes, dask_client
) -> None:
    _assert_gaps(pca.singular_values_)
    source = shardfit.from_pandas(frame, npartitions)
    results = {
        name: shardfit.svd(NUMERIC_FORMULA, source, center=True, backend=backend)
        for name, backend in (("serial", "serial"), ("processes", processes), ("dask", dask_client))
    }
    serial = results["serial"]
    _assert_singular_values(serial.singular_values, pca.singular_values_)
    np.testing.assert_allclose(serial.components.to_numpy(), pca.components_, rtol=0, atol=RTOL)
    np.testing.assert_allclose(serial.explained_variance, pca.explained_variance_, rtol=RTOL)
    np.testing.assert_allclose(
        serial.explained_variance_ratio, pca.explained_variance_ratio_, rtol=RTOL
    )
    np.testing.assert_allclose(serial.mean.to_numpy(), pca.mean_, rtol=RTOL, atol=1e-15)
    assert serial.nobs == len(frame)
    for name in ("processes", "dask"):
        other = results[name]
        assert np.array_equal(other.singular_values_array, serial.singular_values_array), name
        assert np.array_equal(other.components_array, serial.components_array), name
        assert np.array_equal(other.mean_array, serial.mean_array), name


def test_seed_formula_with_categorical(frame: pd.DataFrame) -> None:
    design = shardfit.dmatrix(SEED_FORMULA, frame)
    assert design.shape[1] == 12  # as the seed's patsy design: 7 numeric, 5 dummies
    source = shardfit.from_pandas(frame, 3)
    raw = shardfit.svd(SEED_FORMULA, source, backend="serial")
    _, s, vt = np.linalg.svd(design.to_numpy(), full_matrices=False)
    _assert_singular_values(raw.singular_values, s)
    np.testing.assert_allclose(raw.components_array, _flip(vt), rtol=0, atol=RTOL)
    assert raw.rank == 12
    # Centred, the five dummies sum to a constant: one zero singular value, reported.
    pca = PCA(svd_solver="full").fit(design.to_numpy())
    centred = shardfit.svd(SEED_FORMULA, source, center=True, backend="serial")
    _assert_singular_values(centred.singular_values, pca.singular_values_)
    big = pca.singular_values_ > 1e-3 * pca.singular_values_[0]
    np.testing.assert_allclose(
        centred.components_array[big], pca.components_[big], rtol=0, atol=RTOL
    )
    assert centred.rank == 11
    assert centred.null_components == ["PC12"]
    assert centred.null_columns() == {"PC12": [f"C(cat1)[{k}]" for k in range(5)]}
    assert centred.condition_number == math.inf
    assert "PC12 is numerically zero: a combination of C(cat1)[0]" in centred.summary()


def test_weighted_equals_numpy_on_scaled_rows(frame: pd.DataFrame, design: np.ndarray) -> None:
    w = frame["w"].to_numpy()
    root = np.sqrt(w)[:, None]
    source = shardfit.from_pandas(frame, 3)
    raw = shardfit.svd(NUMERIC_FORMULA, source, weights="w", backend="serial")
    _, s, vt = np.linalg.svd(root * design, full_matrices=False)
    _assert_singular_values(raw.singular_values, s)
    np.testing.assert_allclose(raw.components_array, _flip(vt), rtol=0, atol=RTOL)
    centred = shardfit.svd(NUMERIC_FORMULA, source, weights="w", center=True, backend="serial")
    mean = (w @ design) / w.sum()
    _, s, vt = np.linalg.svd(root * (design - mean), full_matrices=False)
    _assert_singular_values(centred.singular_values, s)
    np.testing.assert_allclose(centred.components_array, _flip(vt), rtol=0, atol=RTOL)
    np.testing.assert_allclose(centred.mean.to_numpy(), mean, rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(centred.explained_variance, s**2 / (w.sum() - 1), rtol=RTOL)


def test_integer_weights_are_repeated_rows(frame: pd.DataFrame) -> None:
    small = frame.head(300).copy()
    small["w"] = np.random.default_rng(3).integers(1, 4, len(small)).astype(float)
    repeated = small.loc[small.index.repeat(small["w"].astype(int))]
    pca = PCA(svd_solver="full").fit(shardfit.dmatrix(NUMERIC_FORMULA, repeated).to_numpy())
    result = shardfit.svd(NUMERIC_FORMULA, small, weights="w", center=True, backend="serial")
    np.testing.assert_allclose(result.explained_variance, pca.explained_variance_, rtol=1e-11)
    np.testing.assert_allclose(
        result.explained_variance_ratio, pca.explained_variance_ratio_, rtol=1e-11
    )
    np.testing.assert_allclose(result.components_array, pca.components_, rtol=0, atol=1e-11)


def test_far_from_zero_centred_stays_accurate() -> None:
    """Means 1e6, spread 1: centring inside the QR (the R of [1 | X]) keeps ~1e-10."""
    rng = np.random.default_rng(11)
    rows = 1500
    raw = rng.standard_normal((rows, 3)) @ np.array([[1.0, 0.3, 0.0], [0, 1, 0.5], [0, 0, 2]])
    values = 1e6 + raw
    frame = pd.DataFrame(values, columns=["a", "b", "c"])
    # The reference centres exactly (rational arithmetic), then rounds once.
    exact = np.empty_like(values)
    for j in range(3):
        column = [Fraction(v) for v in values[:, j]]
        mean = sum(column, Fraction(0)) / rows
        exact[:, j] = [float(v - mean) for v in column]
    _, s, vt = np.linalg.svd(exact, full_matrices=False)
    result = shardfit.svd(
        "0 + a + b + c", shardfit.from_pandas(frame, 5), center=True, backend="serial"
    )
    # Backward error ~ eps * 1e6 * sqrt(rows) against centred s ~ sqrt(rows): ~1e-10.
    np.testing.assert_allclose(result.singular_values, s, rtol=1e-9)
    np.testing.assert_allclose(result.components_array, _flip(vt), rtol=0, atol=1e-8)
    assert result.rank == 3
    # The normal equations (the textbook one-pass alternative) lose everything here.
    gram = values.T @ values - rows * np.outer(values.mean(0), values.mean(0))
    naive = np.sqrt(np.abs(np.linalg.eigvalsh(gram)))[::-1]
    assert np.max(np.abs(naive / s - 1)) > 1e-4


def test_rank_deficient_columns_give_zero_singular_values(frame: pd.DataFrame) -> None:
    data = frame.assign(k=3.0)
    duplicated = shardfit.svd("0 + a + b + I(2 * a)", data, backend="serial")
    assert duplicated.rank == 2
    assert duplicated.singular_values[2] < 1e-13 * duplicated.singular_values[0]
    assert duplicated.null_columns() == {"PC3": ["a", "I(2 * a)"]}
    constant = shardfit.svd("0 + a + b + k", data, center=True, backend="serial")
    assert constant.rank == 2
    assert constant.singular_values[2] <= constant.tolerance
    assert constant.null_columns() == {"PC3": ["k"]}
    np.testing.assert_allclose(constant.explained_variance_ratio.sum(), 1.0, rtol=1e-14)


def test_missing_values_dropped_and_counted(frame: pd.DataFrame, design: np.ndarray) -> None:
    holes = frame.copy()
    rows = [0, 5, 799, 800, 1601, 2399]
    holes.loc[rows, "a"] = np.nan
    holes.loc[[10, 11], "cat1"] = None
    result = shardfit.svd(NUMERIC_FORMULA, shardfit.from_pandas(holes, 3), backend="serial")
    assert result.nobs == len(frame) - len(rows)
    assert result.rows_dropped == {"missing": len(rows)}
    assert result.rows_read == len(frame)
    assert f"({len(rows)} dropped for missing values)" in result.summary()
    keep = np.setdiff1d(np.arange(len(frame)), rows)
    _, s, _ = np.linalg.svd(design[keep], full_matrices=False)
    _assert_singular_values(result.singular_values, s)
    with pytest.raises(DesignError, match="missing value in partition"):
        shardfit.svd(NUMERIC_FORMULA, holes, missing="raise", backend="serial")


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_non_positive_weight_raises_naming_partition_and_row(
    frame: pd.DataFrame, bad: float
) -> None:
    data = frame.copy()
    data.loc[805, "w"] = bad
    source = shardfit.from_pandas(data, 3)
    key = source.partitions[1].key
    with pytest.raises(
        (DesignError, PartitionTaskError), match=r"(non-positive|negative) weight in partition"
    ) as info:
        shardfit.svd(NUMERIC_FORMULA, source, weights="w", backend="serial")
    assert f"partition {key}" in str(info.value)
    assert "(row 805 of DataFrame)" in str(info.value)
    assert repr(bad) in str(info.value)


def test_csv_in_chunks_with_checkpoint(frame: pd.DataFrame, design: np.ndarray, tmp_path) -> None:
    """The seed's setting: a CSV read in byte ranges; a checkpointed rerun is identical."""
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    source = shardfit.read_csv(path, partition_bytes=path.stat().st_size // 4)
    assert source.npartitions >= 4
    checkpoint = str(tmp_path / "checkpoint")
    first = shardfit.svd(
        NUMERIC_FORMULA, source, center=True, checkpoint=checkpoint, backend="serial"
    )
    # CSV text round-trips float64 exactly (shortest repr), so the reference is unchanged.
    pca = PCA(svd_solver="full").fit(design)
    _assert_singular_values(first.singular_values, pca.singular_values_)
    np.testing.assert_allclose(first.components_array, pca.components_, rtol=0, atol=RTOL)
    assert len(list((tmp_path / "checkpoint").rglob("*"))) >= source.npartitions
    again = shardfit.svd(
        NUMERIC_FORMULA, source, center=True, checkpoint=checkpoint, backend="serial"
    )
    assert np.array_equal(again.singular_values_array, first.singular_values_array)
    assert np.array_equal(again.components_array, first.components_array)


MPI_SCRIPT = """
import json, sys
import shardfit
result = shardfit.svd(sys.argv[3], shardfit.read_csv(sys.argv[1], partition_bytes=40000),
                      center=True, weights="w", backend="mpi")
from mpi4py import MPI
if MPI.COMM_WORLD.rank == 0:
    with open(sys.argv[2], "w") as handle:
        json.dump({"s": result.singular_values_array.tolist(),
                   "vt": result.components_array.tolist()}, handle)
"""


@pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec not installed (the mpi extra)")
def test_mpiexec_two_ranks_bitwise(frame: pd.DataFrame, tmp_path) -> None:
    path, script, out = tmp_path / "data.csv", tmp_path / "svd.py", tmp_path / "out.json"
    frame.to_csv(path, index=False)
    script.write_text(MPI_SCRIPT)
    completed = subprocess.run(
        # ``-m mpi4py`` aborts every rank when one raises, instead of hanging.
        [str(MPIEXEC), "-n", "2", sys.executable, "-m", "mpi4py", str(script), str(path),
         str(out), SEED_FORMULA],
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    got = json.loads(out.read_text())
    source = shardfit.read_csv(path, partition_bytes=40000)
    assert source.npartitions > 3
    serial = shardfit.svd(SEED_FORMULA, source, center=True, weights="w", backend="serial")
    # JSON floats round-trip exactly (shortest repr): equal arrays mean bitwise equal.
    assert np.array_equal(np.array(got["s"]), serial.singular_values_array)
    assert np.array_equal(np.array(got["vt"]), serial.components_array)


def test_save_and_load_round_trip(frame: pd.DataFrame, tmp_path) -> None:
    result = shardfit.svd(SEED_FORMULA, frame, center=True, weights="w", backend="serial")
    loaded = shardfit.load_results(result.save(tmp_path / "pca.json"))
    assert isinstance(loaded, shardfit.SVDResults)
    assert np.array_equal(loaded.singular_values_array, result.singular_values_array)
    assert np.array_equal(loaded.components_array, result.components_array)
    assert np.array_equal(loaded.mean_array, result.mean_array)
    assert loaded.rank == result.rank and loaded.tolerance == result.tolerance
    assert loaded.summary() == result.summary()
    head = frame.head(50)
    pd.testing.assert_frame_equal(
        loaded.transform(head, backend="serial"), result.transform(head, backend="serial")
    )


def test_bad_arguments() -> None:
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match="right-hand-side formula"):
        shardfit.svd("y ~ a", data, backend="serial")
    with pytest.raises(ValueError, match="'missing' parameter"):
        shardfit.svd("a", data, missing="keep", backend="serial")  # type: ignore[arg-type]
