"""A checkpoint of a CSV fit is reused only when the file is parsed the same way: the
same bytes with other null markers (or bad-line handling) are other rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import shardfit


def _write(path) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    x = rng.normal(size=200)
    y = 1.0 + 2.0 * x + rng.normal(size=200)
    y[::10] = -999.0  # a sentinel some readers of the file call missing
    frame = pd.DataFrame({"x": x, "y": y})
    frame.to_csv(path, index=False, float_format="%.17g")
    return frame


def test_other_null_values_do_not_reuse_the_checkpoint(tmp_path) -> None:
    path = tmp_path / "data.csv"
    frame = _write(path)
    folder = tmp_path / "checkpoints"
    plain = shardfit.ols("y ~ x", shardfit.read_csv(str(path), partition_rows=50))
    first = plain.fit(backend="serial", checkpoint=str(folder))
    assert first.nobs == 200
    source = shardfit.read_csv(str(path), partition_rows=50, null_values=["-999"])
    second = shardfit.ols("y ~ x", source).fit(backend="serial", checkpoint=str(folder))
    reference = smf.ols("y ~ x", frame[frame["y"] != -999.0]).fit()
    assert second.nobs == reference.nobs == 180
    np.testing.assert_allclose(second.params.to_numpy(), reference.params.to_numpy(), rtol=1e-12)
    # The same parsing again resumes from the first fit's statistics: same bits.
    again = plain.fit(backend="serial", checkpoint=str(folder))
    np.testing.assert_array_equal(again.params.to_numpy(), first.params.to_numpy())
