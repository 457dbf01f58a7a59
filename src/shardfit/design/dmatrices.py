"""Materializing the design of small data, partition by partition (for inspection)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from shardfit.data.resolve import as_source
from shardfit.design.materialize import encode_partition
from shardfit.design.schema import learn_design
from shardfit.design.spec import DesignSpec
from shardfit.errors import DesignError
from shardfit.stats.column_summary import DEFAULT_MAX_LEVELS

__all__ = ["dmatrices", "dmatrix"]


def dmatrices(
    formula: str,
    data: Any,
    *,
    weights: str | None = None,
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = DEFAULT_MAX_LEVELS,
    spec: DesignSpec | None = None,
    unseen: Literal["raise", "zero"] = "raise",
) -> tuple[pd.Series, pd.DataFrame]:
    """The response and design matrix of ``formula`` on ``data``, built partition by partition.

    The design is learned in a schema pass (or taken from ``spec``) and applied to
    every partition, so the result is the same whatever the partitioning. Meant for
    data that fits in memory: for inspection, tests and small fits.

    Parameters
    ----------
    formula : str
        A formulaic formula with a left-hand side, e.g. ``"y ~ x1 + C(g)"``. Formula
        strings are evaluated as Python code: never pass an untrusted one.
    data : Source, path, glob, pandas.DataFrame or pyarrow.Table
        The data.
    weights : str, optional
        A weight column, read and checked alongside (not returned).
    missing : {"drop", "raise"}
        What to do with rows missing a needed value.
    max_levels : int
        The most levels a categorical may have.
    spec : DesignSpec, optional
        A learned design to apply instead of learning one.
    unseen : {"raise", "zero"}
        With ``spec``: a level the spec never saw raises, or is encoded as zeros.

    Returns
    -------
    y : pandas.Series
    X : pandas.DataFrame
        Indexed by the kept rows' positions in the data (0-based, in source order).
    """
    y, X = _materialize(formula, data, weights, missing, max_levels, spec, unseen, response=True)
    assert y is not None
    return y, X


def dmatrix(
    formula: str,
    data: Any,
    *,
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = DEFAULT_MAX_LEVELS,
    spec: DesignSpec | None = None,
    unseen: Literal["raise", "zero"] = "raise",
) -> pd.DataFrame:
    """The design matrix of the right-hand side of ``formula`` (see :func:`dmatrices`)."""
    _, X = _materialize(formula, data, None, missing, max_levels, spec, unseen, response=False)
    return X


def _materialize(
    formula: str,
    data: Any,
    weights: str | None,
    missing: Literal["drop", "raise"],
    max_levels: int,
    spec: DesignSpec | None,
    unseen: Literal["raise", "zero"],
    *,
    response: bool,
) -> tuple[pd.Series | None, pd.DataFrame]:
    source = as_source(data)
    if spec is None:
        spec = learn_design(
            formula,
            source,
            weights=weights,
            missing=missing,
            max_levels=max_levels,
            backend="serial",
        ).spec
    if response and not spec.has_response:
        raise DesignError(f"formula {formula!r} has no response; use dmatrix()")
    X_parts, y_parts, index_parts = [], [], []
    offset = 0
    for partition in source.partitions:
        chunk = encode_partition(
            spec, partition, missing=missing, unseen=unseen, need_response=response
        )
        X_parts.append(chunk.X)
        if chunk.y is not None:
            y_parts.append(chunk.y)
        index_parts.append(chunk.row_index + offset)
        offset += chunk.rows_read
    index = pd.Index(np.concatenate(index_parts), dtype=np.int64)
    X = pd.DataFrame(np.concatenate(X_parts), columns=list(spec.column_names), index=index)
    y = None
    if response:
        name = spec.response_names[0] if spec.response_names else "y"
        y = pd.Series(np.concatenate(y_parts), name=name, index=index)
    return y, X
