"""A structured encoder for the common formula shapes, bypassing formulaic's pandas path.

formulaic materializes a design through pandas, one term at a time, and a one-hot
block of 200 levels becomes 200 dense float columns; on 250k rows that is most of the
cost of a least-squares pass. For terms that are

- the intercept,
- numeric factors (plain columns, or expressions such as ``np.log(x)``, ``I(x**2)``,
  ``scale(x)``: evaluated by formulaic, numeric only) and their products, or
- one treatment-coded categorical variable times any numeric factors (``C(g)``,
  ``g``, ``C(g, contr.treatment('b'))``, ``g:x``),

this encoder builds a dense block for numeric terms and a sparse CSC block for
categorical ones directly from level codes. It is used only when, on a frame holding
every level, it reproduces formulaic's columns (names and values) exactly; any other
formula goes through formulaic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["FastEncoder", "SplitDesign"]

_SIMPLE_CATEGORICAL = re.compile(r"^(?:C\(\s*)?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class SplitDesign:
    """A design matrix held as a dense block and a sparse block.

    Attributes
    ----------
    dense : numpy.ndarray
        ``(n, kd)`` Fortran-ordered values of the dense columns.
    dense_index, sparse_index : numpy.ndarray
        Positions of the dense and sparse columns in the design.
    sparse : scipy.sparse.csc_matrix
        ``(n, ks)`` values of the sparse columns.
    """

    dense: np.ndarray
    dense_index: np.ndarray
    sparse: sp.csc_matrix
    sparse_index: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dense.shape[0], self.dense.shape[1] + self.sparse.shape[1])

    def toarray(self) -> np.ndarray:
        """The full design as a dense array."""
        out = np.zeros(self.shape)
        out[:, self.dense_index] = self.dense
        if self.sparse.shape[1]:
            out[:, self.sparse_index] = self.sparse.toarray()
        return out

    def take_rows(self, rows: np.ndarray) -> SplitDesign:
        """The design of a subset of rows (a boolean mask or indices)."""
        return SplitDesign(
            np.asfortranarray(self.dense[rows]),
            self.dense_index,
            sp.csc_matrix(self.sparse.tocsr()[rows]),
            self.sparse_index,
        )

    def finite_rows(self) -> np.ndarray:
        """Rows whose every value is finite."""
        n = self.dense.shape[0]
        # Column sums are finite when every value is (the usual case), at a fraction
        # of the cost of a per-value mask; an overflowing sum only sends us the slow way.
        if np.isfinite(self.dense.sum(axis=0)).all() and np.isfinite(self.sparse.data).all():
            return np.ones(n, dtype=bool)
        finite = np.isfinite(self.dense).all(axis=1)
        bad = ~np.isfinite(self.sparse.data)
        if bad.any():
            csr = self.sparse.tocsr()
            rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
            finite[rows[~np.isfinite(csr.data)]] = False
        return finite


@dataclass(frozen=True)
class _Term:
    columns: tuple[int, ...]
    numeric: tuple[str, ...]  # numeric factor expressions multiplied in order
    categorical: str | None  # variable name
    level_columns: tuple[int, ...] = ()  # per level code: offset of its column, -1 none


@dataclass(frozen=True)
class FastEncoder:
    """A plan mapping raw columns and level codes to design columns."""

    terms: tuple[_Term, ...]
    expressions: tuple[str, ...]  # numeric factors that are not plain columns
    width: int

    @classmethod
    def build(cls, spec: Any) -> FastEncoder | None:
        """A plan for ``spec`` (a DesignSpec), or ``None`` if its terms are not covered."""
        try:
            return cls._build(spec)
        except _Unsupported:
            return None

    @classmethod
    def _build(cls, spec: Any) -> FastEncoder:
        specs = spec.formulaic_specs()
        rhs = specs.rhs if spec.has_formula_response else specs
        plain = set(spec.formula_columns) - set(spec.levels)
        terms: list[_Term] = []
        expressions: list[str] = []
        position = 0
        for structure in rhs.structure:
            width = len(structure.columns)
            columns = tuple(range(position, position + width))
            position += width
            if str(structure.term) == "1":
                terms.append(_Term(columns, (), None))
                continue
            if len(structure.scoped_terms) != 1:
                raise _Unsupported
            numeric: list[str] = []
            categorical: tuple[str, bool, Any] | None = None
            for scoped in structure.scoped_terms[0].factors:
                expression = str(scoped.factor)
                kind, state = rhs.encoder_state.get(expression, (None, {}))
                if str(kind).endswith("CATEGORICAL"):
                    if categorical is not None:
                        raise _Unsupported  # categorical x categorical
                    categorical = (expression, bool(scoped.reduced), state)
                else:
                    numeric.append(expression)
                    if expression not in plain and expression not in expressions:
                        expressions.append(expression)
            if categorical is None:
                if width != 1:
                    raise _Unsupported
                terms.append(_Term(columns, tuple(numeric), None))
                continue
            expression, reduced, state = categorical
            variable, level_columns, names = _categorical_columns(
                expression, reduced, state, spec.levels
            )
            if len(names) != width:
                raise _Unsupported
            terms.append(_Term(columns, tuple(numeric), variable, tuple(level_columns)))
        encoder = cls(tuple(terms), tuple(expressions), position)
        encoder._check_against_formulaic(spec)
        return encoder

    def _check_against_formulaic(self, spec: Any) -> None:
        frame = spec.skeleton_frame()
        rng = np.random.default_rng(0)
        for name in frame.columns:  # vary numeric values so products are checked
            if name not in spec.levels:
                frame[name] = frame[name].to_numpy() * rng.uniform(0.5, 1.5, len(frame))
        from shardfit.design.transforms import apply_context

        specs = spec.formulaic_specs()
        rhs = specs.rhs if spec.has_formula_response else specs
        expected = np.asarray(rhs.get_model_matrix(frame, context=apply_context()), dtype=float)
        arrays: dict[str, Any] = {}
        for name in spec.formula_columns:
            if name in spec.levels:
                arrays[name] = np.asarray(frame[name].cat.codes, dtype=np.int64)
            else:
                arrays[name] = frame[name].to_numpy(dtype=np.float64)
        got = self.encode(spec, arrays, len(frame)).toarray()
        if got.shape != expected.shape or not np.array_equal(got, expected, equal_nan=True):
            raise _Unsupported

    def encode(self, spec: Any, arrays: dict[str, Any], n: int) -> SplitDesign:
        """Encode ``n`` rows given raw numeric arrays and level codes (-1: no level)."""
        values = dict(arrays)
        if self.expressions:
            values.update(_evaluate(spec, self.expressions, arrays, n))
        dense_terms = [term for term in self.terms if term.categorical is None]
        # Filled column by column in Fortran order: the BLAS products read it that way,
        # and it avoids a stack-then-transpose copy of the whole block.
        dense = np.empty((n, len(dense_terms)), order="F")
        dense_index = [term.columns[0] for term in dense_terms]
        for j, term in enumerate(dense_terms):
            _product(term.numeric, values, out=dense[:, j])
        sparse_blocks: list[sp.csc_matrix] = []
        sparse_index: list[int] = []
        for term in self.terms:
            if term.categorical is None:
                continue
            product = None
            for expression in term.numeric:
                factor = np.asarray(values[expression], dtype=np.float64)
                product = factor if product is None else product * factor
            codes = values[term.categorical]
            lookup = np.asarray(term.level_columns, dtype=np.int64)
            column_of_row = np.where(codes >= 0, lookup[np.maximum(codes, 0)], -1)
            rows = np.flatnonzero(column_of_row >= 0)
            data = np.ones(rows.size) if product is None else product[rows]
            block = sp.csc_matrix((data, (rows, column_of_row[rows])), shape=(n, len(term.columns)))
            sparse_blocks.append(block)
            sparse_index.extend(term.columns)
        sparse = sp.hstack(sparse_blocks, format="csc") if sparse_blocks else sp.csc_matrix((n, 0))
        return SplitDesign(
            dense,
            np.asarray(dense_index, dtype=np.intp),
            sp.csc_matrix(sparse),
            np.asarray(sparse_index, dtype=np.intp),
        )


class _Unsupported(Exception):
    pass


def _product(expressions: tuple[str, ...], values: dict[str, Any], *, out: np.ndarray) -> None:
    """``out[:] =`` the product of the numeric factors (1 for none)."""
    if not expressions:
        out.fill(1.0)
        return
    np.copyto(out, np.asarray(values[expressions[0]], dtype=np.float64))
    for expression in expressions[1:]:
        np.multiply(out, np.asarray(values[expression], dtype=np.float64), out=out)


def _categorical_columns(
    expression: str, reduced: bool, state: dict[str, Any], levels: dict[str, list[Any]]
) -> tuple[str, list[int], list[str]]:
    """The variable of a treatment-coded factor and each level's column offset."""
    match = _SIMPLE_CATEGORICAL.match(expression)
    if match is None or match.group(1) not in levels:
        raise _Unsupported
    variable = match.group(1)
    if expression not in (variable, f"C({variable})") and not expression.startswith(
        f"C({variable},"
    ):
        raise _Unsupported
    contrasts_state = state.get("contrasts")
    contrasts = getattr(contrasts_state, "contrasts", None)
    if type(contrasts).__name__ != "TreatmentContrasts":
        raise _Unsupported
    factor_levels = list(getattr(contrasts_state, "levels", []))
    if factor_levels != list(levels[variable]):
        raise _Unsupported
    base = getattr(contrasts, "base", None)
    base_index = 0
    if base is not None and type(base).__name__ != "Sentinel":  # formulaic UNSET: first level
        if base not in factor_levels:
            raise _Unsupported
        base_index = factor_levels.index(base)
    offsets: list[int] = []
    names: list[str] = []
    for code, level in enumerate(factor_levels):
        if reduced and code == base_index:
            offsets.append(-1)
            continue
        offsets.append(len(names))
        names.append(str(level))
    return variable, offsets, names


def _evaluate(
    spec: Any, expressions: tuple[str, ...], arrays: dict[str, Any], n: int
) -> dict[str, np.ndarray]:
    """Numeric factor expressions through formulaic (numeric columns only)."""
    from formulaic import Formula

    from shardfit.design.transforms import apply_context

    frame = pd.DataFrame(
        {
            name: arrays[name]
            for name in spec.formula_columns
            if name not in spec.levels and name in arrays
        },
        index=pd.RangeIndex(n),
    )
    matrix = Formula("0 + " + " + ".join(expressions)).get_model_matrix(
        frame, context=apply_context(), na_action="ignore", transform_state=spec.formulaic_state()
    )
    out: dict[str, np.ndarray] = {}
    for expression in expressions:
        out[expression] = np.asarray(matrix[expression], dtype=np.float64)
    return out
