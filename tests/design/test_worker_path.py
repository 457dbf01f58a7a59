"""What a worker does to encode a partition for least squares, and what it needs.

A worker process encodes with the structured encoder's plan shipped with the design
(never building formulaic's spec; arithmetic factors such as ``I(x ** 2)``, and
``scale(x)`` with its learned state, through NumPy), checks numeric columns for NaN and inf through
their products with the weights when the fit is weighted, and imports neither
pandas nor formulaic. The levels-only schema pass reads joined row groups.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shardfit.data.parquet import read_parquet
from shardfit.design.fast_encoder import SplitDesign
from shardfit.design.materialize import encode_partition
from shardfit.design.schema import learn_design
from shardfit.engine import session
from shardfit.models.linear_tasks import CenteredGramTask
from shardfit.stats.centered_gram import CenteredGram

FORMULA = "y ~ x1 + x2 + C(g)"
N = 600


def _table(rng: np.random.Generator) -> pa.Table:
    # Level "z" only in the last rows: a later row group adds a level.
    g = np.array(["a", "b", "c"])[rng.integers(0, 3, N)].astype(object)
    g[-5:] = "z"
    return pa.table(
        {
            "x1": rng.normal(3.0, 2.0, N),
            "x2": rng.normal(size=N),
            "g": pa.array(list(g), type=pa.string()),
            "w": rng.uniform(0.5, 2.0, N),
            "y": rng.normal(size=N),
        }
    )


@pytest.fixture
def parquet(tmp_path, rng: np.random.Generator):
    path = tmp_path / "data.parquet"
    pq.write_table(_table(rng), path, row_group_size=100)  # 6 row groups
    return read_parquet(str(path))


def test_levels_pass_on_a_session_reads_joined_row_groups(parquet) -> None:
    plain = learn_design(FORMULA, parquet, summaries="levels", backend="serial")
    with session("serial") as sess:
        joined = learn_design(FORMULA, parquet, summaries="levels", backend=sess)
    assert plain.spec.levels == joined.spec.levels == {"g": ["a", "b", "c", "z"]}
    assert joined.spec.to_json() == plain.spec.to_json()
    assert len(plain.partitions) == 6 and len(joined.partitions) == 1
    assert joined.partitions[0].rows == N


def test_weighted_probe_keeps_dot_products_and_drops_nonfinite_rows(rng, tmp_path) -> None:
    table = _table(rng)
    x1 = table.column("x1").to_numpy().copy()
    w = table.column("w").to_numpy().copy()
    w[7] = 0.0
    x1[7] = np.inf  # 0 * inf is NaN: still found
    x1[9] = np.nan
    bad = table.set_column(0, "x1", pa.array(x1)).set_column(3, "w", pa.array(w))
    for data, dropped in ((table, 0), (bad, 2)):
        source = read_parquet_of(data, tmp_path / f"probe{dropped}.parquet")
        spec = learn_design(FORMULA, source, weights="w", backend="serial").spec
        chunk = encode_partition(spec, source.partitions[0], structured=True)
        assert chunk.dropped["missing"] == dropped
        assert (7 in chunk.row_index, 9 in chunk.row_index) == (not dropped, not dropped)
        assert isinstance(chunk.X, SplitDesign)
        kept_w = chunk.weights
        columns = chunk.X.dense_columns()
        expected = [float((np.ones(chunk.nrows) if c is None else c) @ kept_w) for c in columns]
        np.testing.assert_array_equal(chunk.X.weighted_sums(kept_w), expected)
        assert chunk.X.finite_rows().all()


def read_parquet_of(table: pa.Table, path):
    pq.write_table(table, path)
    return read_parquet(str(path))


def test_centred_gram_takes_other_weights_than_the_encoders(parquet) -> None:
    """The weighted sums the encoder took serve only its own weights (IRLS weights,
    for one, are others)."""
    spec = learn_design(FORMULA, parquet, weights="w", backend="serial").spec
    chunk = encode_partition(spec, parquet.partitions[0], structured=True)
    assert chunk.X._known_weighted is not None  # taken by the encoder
    dense, intercept = spec.dense_columns(), spec.intercept_index()
    other = np.linspace(0.1, 3.0, chunk.nrows)
    for weights in (chunk.weights, other):
        got = CenteredGram.of_chunk(chunk.X, chunk.y, weights, dense, intercept)
        reference = CenteredGram.of_chunk(chunk.X.toarray(), chunk.y, weights, dense, intercept)
        np.testing.assert_allclose(got.center, reference.center, rtol=1e-15, atol=0)


def test_blocks_of_a_string_column_code_as_its_dictionary(rng, tmp_path) -> None:
    """Plain string columns (an Arrow table in memory) and dictionary-encoded ones
    (Parquet) give the same codes, unseen levels included."""
    from shardfit.data.memory import from_arrow

    table = _table(rng)
    source = from_arrow(table, npartitions=1)
    spec = learn_design(FORMULA, source, backend="serial").spec
    other = table.set_column(2, "g", pa.array(["b", None, "q"] * (N // 3), type=pa.string()))
    for i, data in enumerate((table, other)):
        plain = encode_partition(
            spec, from_arrow(data, npartitions=1).partitions[0], unseen="zero", structured=True
        )
        coded = encode_partition(
            spec,
            read_parquet_of(data, tmp_path / f"s{i}.parquet").partitions[0],
            unseen="zero",
            structured=True,
        )
        np.testing.assert_array_equal(plain.X.toarray(), coded.X.toarray())
        assert plain.dropped == coded.dropped


_CHILD = """
import hashlib, pickle, sys
task, partition = pickle.load(open(sys.argv[1], "rb"))
core = task(partition).core
digest = hashlib.sha256(core.cross.tobytes() + core.sums.tobytes()).hexdigest()
print(core.nobs, digest, "pandas" in sys.modules, "formulaic" in sys.modules)
"""


@pytest.mark.parametrize(
    "formula",
    [FORMULA, "y ~ x1 + I(x1 ** 2) + np.log(x2 ** 2 + 1) + I(x1 / 2):x2 + scale(x2) + C(g)"],
    ids=["columns", "arithmetic-expressions"],
)
def test_a_worker_encodes_parquet_without_pandas_or_formulaic(parquet, tmp_path, formula) -> None:
    import cloudpickle

    learned = learn_design(formula, parquet, summaries="levels", weights="w", backend="serial")
    spec = learned.spec
    task = CenteredGramTask(spec, spec.dense_columns(), spec.intercept_index(), "drop")
    blob = tmp_path / "task.pkl"
    blob.write_bytes(cloudpickle.dumps((task, parquet.partitions[-1])))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(blob)], capture_output=True, text=True, check=True
    )
    # The same statistic, bit for bit, as this process (which built formulaic's spec).
    here = task(parquet.partitions[-1]).core
    digest = hashlib.sha256(here.cross.tobytes() + here.sums.tobytes()).hexdigest()
    assert out.stdout.split() == ["100", digest, "False", "False"]


_GLM_CHILD = """
import hashlib, pickle, sys
task, partition = pickle.load(open(sys.argv[1], "rb"))
first = task(partition).first
digest = hashlib.sha256(first.gram.cross.tobytes() + first.gram.sums.tobytes()).hexdigest()
print(first.nobs, digest, "pandas" in sys.modules, "formulaic" in sys.modules)
"""


def test_a_worker_takes_a_glm_first_step_without_pandas_or_formulaic(rng, tmp_path) -> None:
    """The GLM's prepare task reads the design's dense-column flags, which a pickled
    spec carries: a cold worker does not import formulaic and pandas (~0.6 s of its
    first task) to work them out."""
    import cloudpickle

    from shardfit.models.families import Binomial
    from shardfit.models.glm_tasks import FirstStep, PrepareTask

    table = _table(rng)
    table = table.set_column(4, "y", pa.array((table["y"].to_numpy() > 0).astype(float)))
    pq.write_table(table, tmp_path / "binary.parquet", row_group_size=100)
    parquet = read_parquet(str(tmp_path / "binary.parquet"))
    formula = "y ~ x1 + I(x1 ** 2) + x2 + C(g)"
    spec = learn_design(formula, parquet, summaries="levels", backend="serial").spec
    flags = spec.dense_columns()
    assert flags.count(False) == 3  # the levels of g: sparse columns
    task = PrepareTask(spec, Binomial(), "drop", None, FirstStep(None, flags, 0))
    blob = tmp_path / "task.pkl"
    blob.write_bytes(cloudpickle.dumps((task, parquet.partitions[-1])))
    out = subprocess.run(
        [sys.executable, "-c", _GLM_CHILD, str(blob)], capture_output=True, text=True, check=True
    )
    here = task(parquet.partitions[-1]).first
    digest = hashlib.sha256(here.gram.cross.tobytes() + here.gram.sums.tobytes()).hexdigest()
    assert out.stdout.split() == ["100", digest, "False", "False"]
