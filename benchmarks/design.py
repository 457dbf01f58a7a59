"""A dense, treatment-coded design matrix in NumPy, for peers and limits that need one.

Peers such as Dask and statsmodels' ``DistributedModel`` take arrays, not formulas, so
the suite builds for them the design shardfit and statsmodels build from the formula:
an intercept, the numeric columns, and one column per non-reference level of each
``C(name)`` term (levels sorted, the first is the reference), named as formulaic names
them so parameters compare by name. Only formulas of that simple shape are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = ["DenseDesign", "Terms", "levels_of", "parquet_levels", "parse_formula"]

_CATEGORICAL = re.compile(r"^C\((\w+)\)$")
_NAME = re.compile(r"^\w+$")


@dataclass(frozen=True)
class Terms:
    """The columns a simple main-effects formula uses."""

    response: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    def columns(self, weights: str | None = None) -> list[str]:
        """Every column to read, the response and weights included."""
        extra = [weights] if weights else []
        return [*self.numeric, *self.categorical, self.response, *extra]


def parse_formula(formula: str) -> Terms:
    """Split ``"y ~ x1 + x2 + C(g)"`` into its response, numeric and categorical terms."""
    response, _, rhs = (part.strip() for part in formula.partition("~"))
    numeric: list[str] = []
    categorical: list[str] = []
    for term in (t.strip() for t in rhs.split("+")):
        if match := _CATEGORICAL.match(term):
            categorical.append(match.group(1))
        elif _NAME.match(term):
            numeric.append(term)
        else:
            raise ValueError(f"the dense design supports names and C(name) only, not {term!r}")
    return Terms(response, tuple(numeric), tuple(categorical))


def levels_of(values: Iterable[Iterable[str]]) -> tuple[str, ...]:
    """The sorted union of several partitions' levels (formulaic's order)."""
    union: set[str] = set()
    for part in values:
        union.update(part)
    return tuple(sorted(union))


def parquet_levels(path: str, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Levels of the categorical columns of a Parquet file, read with pyarrow."""
    table = pq.read_table(path, columns=list(names))
    return {name: tuple(sorted(pc.unique(table[name]).to_pylist())) for name in names}


@dataclass(frozen=True)
class DenseDesign:
    """Builds ``X`` (float64, C order) and ``y`` for a main-effects formula."""

    terms: Terms
    levels: Mapping[str, tuple[str, ...]]

    @property
    def names(self) -> list[str]:
        """Column names, as formulaic gives them."""
        names = ["Intercept", *self.terms.numeric]
        for name in self.terms.categorical:
            names += [f"C({name})[T.{level}]" for level in self.levels[name][1:]]
        return names

    @property
    def width(self) -> int:
        return len(self.names)

    def matrix(self, table: pa.Table | Mapping[str, object]) -> np.ndarray:
        """The design of a table's rows (a pyarrow table or a pandas frame)."""
        numeric = [_float(table[name]) for name in self.terms.numeric]
        n = len(numeric[0]) if numeric else len(table[self.terms.response])
        X = np.zeros((n, self.width))
        X[:, 0] = 1.0
        for j, column in enumerate(numeric, start=1):
            X[:, j] = column
        offset = 1 + len(numeric)
        rows = np.arange(n)
        for name in self.terms.categorical:
            levels = self.levels[name]
            codes = _codes(table[name], levels)
            hit = codes > 0  # code 0 is the reference level
            X[rows[hit], offset + codes[hit] - 1] = 1.0
            offset += len(levels) - 1
        return X

    def response(self, table: pa.Table | Mapping[str, object]) -> np.ndarray:
        return _float(table[self.terms.response])


def _float(column: object) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray | pa.Array):
        return np.asarray(column.to_numpy(), dtype=np.float64)
    return np.asarray(column, dtype=np.float64)


def _codes(column: object, levels: tuple[str, ...]) -> np.ndarray:
    """Integer codes of ``column`` in ``levels``; an unknown level is an error."""
    if isinstance(column, pa.ChunkedArray | pa.Array):
        codes = pc.index_in(column, value_set=pa.array(levels)).to_numpy(zero_copy_only=False)
        if np.isnan(codes.astype(np.float64)).any():
            raise ValueError("a level outside the known levels")
        return codes.astype(np.intp)
    import pandas as pd

    codes = pd.Categorical(column, categories=list(levels)).codes
    if (codes < 0).any():
        raise ValueError("a level outside the known levels")
    return codes.astype(np.intp)
