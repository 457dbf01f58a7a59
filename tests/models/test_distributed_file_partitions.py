"""``DistributedModel(K)`` on files says when the files' partitions are not ``K``.

statsmodels splits its data into ``K`` blocks and fits each; files keep their own
partitions (a Parquet file's row groups), so ``DistributedModel(3)`` on three files of
three row groups each fitted nine partitions silently, 0.24 off statsmodels on the
three files. It now warns, naming both counts and how to read the files as ``K``
partitions; read so, it equals statsmodels.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from statsmodels.base import distributed_estimation as smd

import shardfit
from shardfit.models.distributed import DistributedModel


def test_files_read_as_other_than_k_partitions_warn_and_k_partitions_equal_statsmodels(
    tmp_path,
) -> None:
    rng = np.random.default_rng(11)
    n, k = 180, 3
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["y"] = 1 + frame.x1 - 0.5 * frame.x2 + rng.normal(size=n)
    blocks = np.array_split(np.arange(n), k)
    for number, rows in enumerate(blocks):
        table = pa.Table.from_pandas(frame.iloc[rows], preserve_index=False)
        pq.write_table(table, tmp_path / f"part{number}.parquet", row_group_size=20)
    pattern = str(tmp_path / "*.parquet")
    x1, x2, y = (frame[name].to_numpy() for name in ("x1", "x2", "y"))
    pairs = [
        (y[rows], np.column_stack([np.ones(rows.size), x1[rows], x2[rows]])) for rows in blocks
    ]
    expected = smd.DistributedModel(k).fit(iter(pairs), fit_kwds={"alpha": 0.05}).params
    model = DistributedModel(k, formula="y ~ x1 + x2")
    with pytest.warns(UserWarning, match=r"partitions=3, but .* read as 9 partitions"):
        loose = model.fit(pattern, fit_kwds={"alpha": 0.05})
    assert np.abs(loose.params.to_numpy() - expected).max() > 1e-3  # another answer
    # One partition a file: statsmodels' three blocks, and no warning.
    source = shardfit.read_parquet(pattern, partition_rows=10_000)
    assert source.npartitions == k
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = model.fit(source, fit_kwds={"alpha": 0.05})
    np.testing.assert_allclose(result.params.to_numpy(), expected, rtol=0, atol=1e-10)
