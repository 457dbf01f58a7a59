"""The partitions of a distributed fit: statsmodels' ``(endog, exog)`` pairs or a source.

statsmodels' ``data_generator`` gives one partition per pair (the arrays travel with
the partition, as in-memory sources do); data for a formula keeps its own partitions
and learns the design in a schema pass. Either way each partition is wrapped with its
position and its ``init_kwds_generator`` keywords.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from shardfit.data.partition import Source
from shardfit.errors import MissingDataError
from shardfit.models.distributed_tasks import ArraysPartition, FitPartition

__all__ = ["fit_source"]


def fit_source(
    data: Any,
    init_kwds_generator: Iterable[dict[str, Any]] | None,
    *,
    formula: str | None,
    weights: str | None,
    offset: str | None,
    exposure: str | None,
    missing: str,
    backend: Any,
    partitions: int | None = None,
    check_finite: bool = True,
) -> tuple[Source, Any, tuple[str, ...] | None, bool]:
    """The fit's wrapped partitions, design spec (None for arrays), names, and whether
    the results are labelled by them.

    An in-memory frame or table is split into ``partitions`` partitions (statsmodels
    splits its data into that many); a source or path keeps its own partitions.
    ``check_finite=False`` passes arrays with missing values on (to a statsmodels model
    given ``missing="drop"``).
    """
    if formula is not None:
        from shardfit.data.memory import from_arrow, from_pandas
        from shardfit.data.resolve import as_source
        from shardfit.design.schema import learn_design

        if partitions is not None and isinstance(data, pa.Table):
            data = from_arrow(data, partitions)
        elif partitions is not None and hasattr(data, "iloc"):
            data = from_pandas(data, partitions)
        source = as_source(data)
        learned = learn_design(
            formula,
            source,
            weights=weights,
            offset=offset,
            exposure=exposure,
            needs_response=True,
            missing=missing,  # type: ignore[arg-type]
            backend=backend,
        )
        spec = learned.spec
        names: tuple[str, ...] | None = tuple(spec.column_names)
        inner = source.partitions
        labelled = True
        schema, name = source.schema, source.name
    else:
        if isinstance(data, Source | str) or hasattr(data, "columns"):
            raise ValueError(
                "data given as a source, path or frame needs formula=...; statsmodels-"
                "style data is an iterable of (endog, exog) pairs"
            )
        pairs = list(data)
        if not pairs:
            raise ValueError("the data generator gave no partitions")
        inner = tuple(
            _checked(index, _as_1d(endog, index), _as_2d(exog, index), check_finite)
            for index, (endog, exog) in enumerate(pairs)
        )
        spec, names, labelled = None, _names(pairs[0][1]), False
        schema, name = pa.schema([]), "arrays"
    if init_kwds_generator is not None:
        extra = list(init_kwds_generator)
        if len(extra) != len(inner):
            raise ValueError(
                f"init_kwds_generator gave {len(extra)} items for {len(inner)} partitions"
            )
    else:
        extra = [{} for _ in inner]
    wrapped = tuple(
        FitPartition(part, index, dict(kwds))
        for index, (part, kwds) in enumerate(zip(inner, extra))
    )
    return Source(name, wrapped, schema), spec, names, labelled


def _checked(
    index: int, endog: np.ndarray, exog: np.ndarray, check_finite: bool
) -> ArraysPartition:
    """Partition ``index``'s arrays, refused (as statsmodels' models refuse them) when
    their rows disagree or a value is missing or infinite: a NaN would otherwise give
    NaN coefficients, or an SVD failure far from its cause."""
    if endog.shape[0] != exog.shape[0]:
        raise ValueError(
            f"partition {index} of the data generator: endog has {endog.shape[0]} rows, "
            f"exog {exog.shape[0]}"
        )
    for name, values in (("endog", endog[:, None]), ("exog", exog)) if check_finite else ():
        bad = ~np.isfinite(values)
        if bad.any():
            row, column = (int(v) for v in np.argwhere(bad)[0])
            where = "" if name == "endog" else f", column {column}"
            raise MissingDataError(
                f"missing or infinite value in partition {index} of the data generator "
                f"({name} row {row}{where}: {float(values[row, column])}; {int(bad.sum())} such "
                "values); drop or fill those rows first (statsmodels raises too)"
            )
    return ArraysPartition(endog, exog, index)


def _as_1d(values: Any, index: int) -> np.ndarray:
    return _as_float(values, index, "endog").reshape(-1)


def _as_2d(values: Any, index: int) -> np.ndarray:
    array = _as_float(values, index, "exog")
    return array[:, None] if array.ndim == 1 else array


def _as_float(values: Any, index: int, name: str) -> np.ndarray:
    """``values`` as float64, or an error naming the partition, array and column.

    NumPy's own ("could not convert string to float: 'a'") says neither which of the
    generator's pairs nor which column holds the value.
    """
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        array = np.asarray(values, dtype=object)
        column = ""
        if array.ndim == 2:
            names = getattr(values, "columns", None)
            for j in range(array.shape[1]):
                try:
                    np.asarray(array[:, j], dtype=np.float64)
                except (TypeError, ValueError):
                    column = f", column {names[j]!r}" if names is not None else f", column {j}"
                    break
        raise ValueError(
            f"partition {index} of the data generator: {name}{column} is not numeric "
            f"({error}); statsmodels' models need numbers: encode labels (e.g. "
            "pandas.get_dummies) or pass formula=... with a frame"
        ) from error


def _names(exog: Any) -> tuple[str, ...] | None:
    columns = getattr(exog, "columns", None)
    return tuple(str(c) for c in columns) if columns is not None else None
