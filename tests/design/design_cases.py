from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def make_frame(rng: np.random.Generator, n: int = 600) -> pd.DataFrame:
    """Numeric, categorical (string and int-coded) columns; level 'e' only after row 300."""
    g = rng.choice(list("abcde"), n).astype(object)
    g[:300] = np.where(g[:300] == "e", "a", g[:300])
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "x2": rng.uniform(1.0, 5.0, n),
            "x3": rng.normal(3.0, 2.0, n),
            "x4": rng.normal(100.0, 0.01, n),
            "g": pd.array(g, dtype="str"),
            "h": rng.integers(0, 4, n),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )


FORMULA = "y ~ x1 + np.log(x2) + C(g) + x1:x3 + center(x1) + scale(x4) + C(h):x2"


def parquet_parts(frame: pd.DataFrame, folder: Path, parts: int) -> list[str]:
    """``frame`` as ``parts`` Parquet files in the new ``folder`` (as many partitions,
    and as many part files in a store written from them)."""
    folder.mkdir()
    paths = []
    for k, rows in enumerate(np.array_split(np.arange(len(frame)), parts)):
        path = folder / f"part{k}.parquet"
        frame.iloc[rows].to_parquet(path, index=False)
        paths.append(str(path))
    return paths


def quiet(call, *args, **kwargs):
    """``call(*args, **kwargs)`` without the "k rows have no prediction" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return call(*args, **kwargs)


def row_group_parquet(frame: pd.DataFrame, folder: Path, rows: int, groups: int) -> str:
    """``frame`` as one Parquet file of ``groups`` row groups of ``rows`` rows (the
    partitions of a source read from it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "data.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=rows)
    assert pq.ParquetFile(path).metadata.num_row_groups == groups
    return str(path)


def logit_predicts_as_formulaic(
    frame: pd.DataFrame, path: str, formula: str, new: pd.DataFrame, folder: Path
) -> Any:
    """Fit ``formula`` by ``shardfit.logit`` from ``path``, compare with statsmodels' GLM
    on formulaic's matrix of the whole ``frame`` (params to 1e-8), save and load the
    results, and compare their predictions on ``new`` with formulaic's matrix of
    ``new`` (the state learned on all rows) times statsmodels' params. Returns the
    loaded results and formulaic's matrices."""
    import statsmodels.api as sm
    from formulaic import model_matrix

    import shardfit

    matrices = model_matrix(formula, frame)
    reference = sm.GLM(
        matrices.lhs.to_numpy()[:, 0], matrices.rhs.to_numpy(), family=sm.families.Binomial()
    ).fit(tol=1e-12)
    fit = shardfit.logit(formula, shardfit.read_parquet(path)).fit(backend="serial")
    np.testing.assert_allclose(np.asarray(fit.params), reference.params, rtol=1e-8, atol=1e-10)
    loaded = type(fit).load(fit.save(folder / "logit.json"))
    assert loaded.spec.transform_state == fit.spec.transform_state
    predicted = np.asarray(loaded.predict(new, backend="serial"))
    design = matrices.model_spec.rhs.get_model_matrix(new).to_numpy()
    np.testing.assert_allclose(predicted, 1 / (1 + np.exp(-(design @ reference.params))), rtol=1e-8)
    return loaded, matrices
