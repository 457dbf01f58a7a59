"""``predict(out=DIR, overwrite=True)`` never deletes files predict did not write.

Any ``part-*`` name counted as an earlier prediction's part file, so an overwrite into
a Spark or Dask dataset's folder (``part-00000-<uuid>-c000.snappy.parquet``) deleted
its data. Only predict's own names (``part-00000.parquet``, the manifest, their hidden
temporaries) are replaced now; anything else is refused, naming it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

import shardfit


@pytest.fixture()
def fitted():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=120)})
    frame["y"] = 1 + 2 * frame.x + rng.normal(size=120)
    return frame, shardfit.ols("y ~ x", frame).fit(backend="serial")


def test_an_overwrite_refuses_a_folder_holding_another_tools_part_files(fitted, tmp_path):
    frame, fit = fitted
    spark = tmp_path / "spark"
    spark.mkdir()
    data = spark / "part-00000-5f1c2e-c000.snappy.parquet"
    frame.to_parquet(data)
    before = data.read_bytes()
    with pytest.raises(FileExistsError, match=r"did not write.*part-00000-5f1c2e"):
        fit.predict(frame, out=spark, overwrite=True, backend="serial")
    assert data.read_bytes() == before  # the dataset is untouched


def test_an_earlier_or_interrupted_prediction_is_replaced(fitted, tmp_path):
    frame, fit = fitted
    out = tmp_path / "predictions"
    fit.predict(frame, out=out, backend="serial")
    (out / "_manifest.json").unlink()  # as a write killed before its manifest leaves it
    fit.predict(frame, out=out, overwrite=True, backend="serial")
    written = pd.read_parquet(out).sort_values("row")
    expected = smf.ols("y ~ x", frame).fit().fittedvalues
    np.testing.assert_allclose(written["predicted"], expected, rtol=1e-12)
