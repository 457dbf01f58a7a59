"""Shared data and comparison helpers for the linear-model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shardfit.data.partition import Source
from shardfit.data.simulate import default_formula, simulate_table

FORMULA = default_formula("linreg")
SCALARS = (
    "rsquared",
    "rsquared_adj",
    "fvalue",
    "f_pvalue",
    "llf",
    "aic",
    "bic",
    "ssr",
    "ess",
    "centered_tss",
    "mse_resid",
    "df_model",
    "df_resid",
    "nobs",
    "condition_number",
)
VECTORS = ("params", "bse", "tvalues", "pvalues")


def linreg_frame(rows: int = 10_000, seed: int = 1) -> pd.DataFrame:
    frame = simulate_table("linreg", rows, seed=seed).to_pandas()
    frame["cl"] = np.random.default_rng(seed + 2).integers(0, 1000, len(frame))
    return frame


def assert_matches(result, reference, *, rtol: float) -> None:
    """Every statsmodels attribute of the issue, matched by name, to ``rtol``."""
    for name in VECTORS:
        ours, theirs = getattr(result, name), getattr(reference, name)
        np.testing.assert_allclose(
            ours.loc[theirs.index].to_numpy(), theirs.to_numpy(), rtol=rtol, err_msg=name
        )
    for name in SCALARS:
        np.testing.assert_allclose(
            getattr(result, name), getattr(reference, name), rtol=rtol, err_msg=name
        )
    index = reference.params.index
    ours = result.cov_params().loc[index, index].to_numpy()
    theirs = reference.cov_params().to_numpy()
    # Covariance entries near zero: compare on the scale of the matrix.
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=rtol * np.abs(theirs).max())
    np.testing.assert_allclose(
        result.conf_int(0.1).loc[index].to_numpy(),
        reference.conf_int(0.1).to_numpy(),
        rtol=rtol,
    )


def cut_source(df: pd.DataFrame, cuts: list[int]) -> Source:
    """Partitions ``df[cuts[i]:cuts[i+1]]`` in row order (equal cuts: an empty one):
    the row order matters to HAC covariances, whose lags cross partitions."""
    import itertools

    import pyarrow as pa

    from shardfit.data.memory import MemoryPartition

    table = pa.Table.from_pandas(df, preserve_index=False)
    bounds = [0, *cuts, len(df)]
    parts = tuple(
        MemoryPartition(table.slice(a, b - a), name="df", start=a, stop=b, index=i)
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
    )
    return Source("df", parts, table.schema)
