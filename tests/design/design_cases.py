from __future__ import annotations

import warnings
from pathlib import Path

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
