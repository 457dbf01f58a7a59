"""Code review of session 16's design transforms (splines, poly) and marginal effects.

Two bugs, each compared with formulaic in memory (and statsmodels on its matrix):

- ``poly(x, 2, True)`` (``raw`` positional), ``poly(x, 2, raw=1)`` and any ``raw`` that
  is not the literal ``raw=True`` went through the learning passes, where the call
  records no state, and the schema pass failed with ``KeyError: '_shardfit_sums'``.
- A spline's learned bounds kept the sign of a ``-0.0`` minimum or maximum as the
  first partition holding a zero had it: the saved state differed between two
  partitionings of the same rows (``-0.0`` vs ``0.0``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from formulaic import model_matrix

import shardfit


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ poly(x, 2, True) + z",  # raw as the third positional argument
        "y ~ poly(x, 2, raw=1) + center(z)",  # a true constant other than True
        "y ~ poly(x, 3, 1 == 1) + z",  # an expression: evaluated by formulaic
    ],
)
def test_raw_poly_however_spelled_matches_statsmodels(tmp_path, formula: str) -> None:
    rng = np.random.default_rng(16)
    frame = pd.DataFrame({"x": rng.normal(size=240), "z": rng.normal(size=240)})
    frame["y"] = frame.x - 0.5 * frame.x**2 + 0.2 * frame.z + rng.normal(size=240)
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=50)  # 5 partitions

    ours = shardfit.ols(formula, str(path)).fit(backend="serial")

    matrices = model_matrix(formula, frame)
    reference = sm.OLS(matrices.lhs.to_numpy()[:, 0], matrices.rhs.to_numpy()).fit()
    assert list(ours.names) == list(matrices.rhs.columns)
    np.testing.assert_allclose(ours.params_array, reference.params, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.asarray(ours.bse), reference.bse, rtol=1e-10)


def test_spline_bounds_at_signed_zeros_do_not_depend_on_partitioning(tmp_path) -> None:
    x = np.array([-0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.5, 1.5, 2.5, 3.5])
    frame = pd.DataFrame({"x": x, "y": np.sin(x) + np.arange(10) / 20})
    formula = "y ~ bs(x, df=4)"
    states = []
    for name, order in [("first", np.arange(10)), ("zero_first", np.roll(np.arange(10), -3))]:
        path = tmp_path / f"{name}.parquet"
        table = pa.Table.from_pandas(frame.iloc[order], preserve_index=False)
        pq.write_table(table, path, row_group_size=3)  # -0.0 and 0.0 in other partitions
        fit = shardfit.ols(formula, str(path)).fit(backend="serial")
        states.append(fit.spec.transform_state)
        reference = sm.OLS(*(m.to_numpy() for m in model_matrix(formula, frame.iloc[order]))).fit()
        np.testing.assert_allclose(fit.params_array, np.ravel(reference.params), rtol=1e-10)

    # The same state, bit for bit (the sign of zero included), whatever the partitioning.
    assert repr(states[0]) == repr(states[1])
    expected = model_matrix(formula, frame).model_spec.rhs.transform_state["bs(x, df=4)"]
    assert states[0]["bs(x, df=4)"]["knots"] == expected["knots"]  # -0.0 == 0.0 for ==
    assert np.signbit(states[0]["bs(x, df=4)"]["lower_bound"]) == np.False_
