"""A structured encoder for the common formula shapes, bypassing formulaic's pandas path.

formulaic materializes a design through pandas, one term at a time, and a one-hot
block of 200 levels becomes 200 dense float columns; on 250k rows that is most of the
cost of a least-squares pass. For terms that are

- the intercept,
- numeric factors (plain columns, or expressions such as ``np.log(x)``, ``I(x**2)``,
  ``scale(x)``: arithmetic ones evaluated by NumPy
  (:mod:`~shardfit.design.expressions`), others by formulaic; numeric only) and their
  products, or
- one treatment-coded categorical variable times any numeric factors (``C(g)``,
  ``g``, ``C(g, contr.treatment('b'))``, ``g:x``),

this encoder builds a dense block for numeric terms and a sparse CSC block for
categorical ones directly from level codes. It is used only when, on a frame holding
every level, it reproduces formulaic's columns (names and values) exactly; any other
formula goes through formulaic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from shardfit.design.expressions import NativeExpression

__all__ = ["FastEncoder", "SplitDesign"]

_SIMPLE_CATEGORICAL = re.compile(r"^(?:C\(\s*)?([A-Za-z_][A-Za-z0-9_]*)")


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
    sparse_rows : scipy.sparse.csr_matrix
        The same values by rows (what the least-squares products read).

    The sparse block may be given in either format; the other one is built the first
    time it is asked for, so a consumer that reads rows never pays for columns. The
    dense block may be given as its columns (:meth:`of_columns`); it is then put
    together only when asked for, so a consumer that transforms the columns anyway
    (:meth:`dense_columns`) writes its block once. Instances are read-only.
    """

    __slots__ = (
        "_column_sums",
        "_columns",
        "_csc",
        "_csr",
        "_dense",
        "_known_sums",
        "_known_weighted",
        "_nrows",
        "_weighted_by",
        "dense_index",
        "sparse_index",
    )

    dense_index: np.ndarray
    sparse_index: np.ndarray

    def __init__(
        self,
        dense: np.ndarray,
        dense_index: np.ndarray,
        sparse: sp.spmatrix,
        sparse_index: np.ndarray,
    ) -> None:
        self._set(dense, None, dense.shape[0], dense_index, sparse, sparse_index)

    @classmethod
    def of_columns(
        cls,
        columns: list[np.ndarray | None],
        nrows: int,
        dense_index: np.ndarray,
        sparse: sp.spmatrix,
        sparse_index: np.ndarray,
        *,
        column_sums: list[float | None] | None = None,
        weighted_sums: list[float | None] | None = None,
        weighted_by: np.ndarray | None = None,
    ) -> SplitDesign:
        """A design whose dense column ``j`` is ``columns[j]`` (a float64 vector of
        ``nrows`` values, or ``None`` for ones), not copied until :attr:`dense` is read.

        ``column_sums[j]``, where given, is ``columns[j].sum()`` already taken;
        ``weighted_sums[j]``, where given, is ``columns[j] @ weighted_by`` (weights
        all finite and non-negative), found finite: so the column is."""
        design = cls.__new__(cls)
        design._set(None, list(columns), nrows, dense_index, sparse, sparse_index)
        if column_sums is not None:
            object.__setattr__(design, "_known_sums", list(column_sums))
        if weighted_sums is not None and weighted_by is not None:
            object.__setattr__(design, "_known_weighted", list(weighted_sums))
            object.__setattr__(design, "_weighted_by", weighted_by)
        return design

    def _set(
        self,
        dense: np.ndarray | None,
        columns: list[np.ndarray | None] | None,
        nrows: int,
        dense_index: np.ndarray,
        sparse: sp.spmatrix,
        sparse_index: np.ndarray,
    ) -> None:
        is_csr = sp.isspmatrix_csr(sparse)
        for name, value in (
            ("_dense", dense),
            ("_columns", columns),
            ("_column_sums", None),
            ("_known_sums", None),
            ("_known_weighted", None),
            ("_weighted_by", None),
            ("_nrows", int(nrows)),
            ("dense_index", dense_index),
            ("sparse_index", sparse_index),
            ("_csr", sparse if is_csr else None),
            ("_csc", None if is_csr else sp.csc_matrix(sparse)),
        ):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"SplitDesign is read-only (cannot set {name!r})")

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)

    @property
    def dense(self) -> np.ndarray:
        """The dense block (Fortran order), put together on first use."""
        if self._dense is None:
            assert self._columns is not None
            # Filled column by column in Fortran order: the BLAS products read it that
            # way, and it avoids a stack-then-transpose copy of the whole block.
            block = np.empty((self._nrows, len(self._columns)), order="F")
            for j, column in enumerate(self._columns):
                if column is None:
                    block[:, j] = 1.0
                else:
                    np.copyto(block[:, j], column)
            object.__setattr__(self, "_dense", block)
        return self._dense  # type: ignore[return-value]

    def dense_columns(self) -> list[np.ndarray | None]:
        """The dense columns as vectors (``None``: a column of ones), without putting
        the block together. They may be read-only views of the data read."""
        if self._columns is not None:
            return list(self._columns)
        return list(self.dense.T)

    def column_sums(self) -> np.ndarray:
        """The sums of the dense columns (``numpy.sum`` of each, kept once taken: the
        finiteness check takes them, and an unweighted mean reuses them)."""
        if self._column_sums is None:
            columns = self.dense_columns()
            known = self._known_sums or [None] * len(columns)
            sums = np.array(
                [
                    float(self._nrows) if c is None else (c.sum() if k is None else k)
                    for c, k in zip(columns, known)
                ],
                dtype=np.float64,
            )
            object.__setattr__(self, "_column_sums", sums)
        return self._column_sums  # type: ignore[return-value]

    def weighted_sums(self, weights: np.ndarray) -> np.ndarray:
        """``x_j @ weights`` of each dense column (ones for ``None``); those the encoder
        took are reused when ``weights`` are the ones it took them with."""
        columns = self.dense_columns()
        by = self._weighted_by
        same = by is not None and (weights is by or np.array_equal(weights, by))
        known = self._known_weighted if same and self._known_weighted else [None] * len(columns)
        ones = np.ones(self._nrows) if any(c is None for c in columns) else None
        return np.array(
            [
                (k if k is not None else float((ones if c is None else c) @ weights))
                for c, k in zip(columns, known)
            ],
            dtype=np.float64,
        )

    def _dense_known_finite(self) -> bool:
        """Whether every dense column is known finite without reading it: each is ones
        or has a finite weighted sum from the encoder (see :meth:`of_columns`)."""
        known = self._known_weighted
        if known is None or self._columns is None:
            return False
        return all(c is None or k is not None for c, k in zip(self._columns, known))

    @property
    def sparse(self) -> sp.csc_matrix:
        """The sparse block by columns (CSC)."""
        if self._csc is None:
            object.__setattr__(self, "_csc", self._csr.tocsc())
        return self._csc  # type: ignore[return-value]

    @property
    def sparse_rows(self) -> sp.csr_matrix:
        """The sparse block by rows (CSR)."""
        if self._csr is None:
            object.__setattr__(self, "_csr", self._csc.tocsr())  # type: ignore[union-attr]
        return self._csr  # type: ignore[return-value]

    def _stored_sparse(self) -> sp.spmatrix:
        """The sparse block in whichever format is at hand (no conversion)."""
        return self._csr if self._csr is not None else self._csc  # type: ignore[return-value]

    @property
    def shape(self) -> tuple[int, int]:
        kd = len(self._columns) if self._dense is None else self._dense.shape[1]  # type: ignore[arg-type]
        return (self._nrows, kd + self._stored_sparse().shape[1])

    def toarray(self) -> np.ndarray:
        """The full design as a dense array."""
        out = np.zeros(self.shape)
        out[:, self.dense_index] = self.dense
        sparse = self._stored_sparse()
        if sparse.shape[1]:
            out[:, self.sparse_index] = sparse.toarray()
        return out

    def take_rows(self, rows: np.ndarray) -> SplitDesign:
        """The design of a subset of rows (a boolean mask or indices)."""
        return SplitDesign(
            np.asfortranarray(self.dense[rows]),
            self.dense_index,
            sp.csr_matrix(self.sparse_rows[rows]),
            self.sparse_index,
        )

    def finite_rows(self) -> np.ndarray:
        """Rows whose every value is finite."""
        n = self._nrows
        sparse = self._stored_sparse()
        # Column sums are finite when every value is (the usual case), at a fraction
        # of the cost of a per-value mask; an overflowing sum only sends us the slow way.
        dense_finite = self._dense_known_finite() or np.isfinite(self.column_sums()).all()
        if dense_finite and np.isfinite(sparse.data).all():
            return np.ones(n, dtype=bool)
        finite = np.isfinite(self.dense).all(axis=1)
        csr = self.sparse_rows
        bad = ~np.isfinite(csr.data)
        if bad.any():
            rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
            finite[rows[bad]] = False
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
    # Those of ``expressions`` NumPy evaluates here (arithmetic on numeric columns);
    # formulaic evaluates the others.
    native: tuple[NativeExpression, ...] = ()

    @classmethod
    def build(cls, spec: Any) -> FastEncoder | None:
        """A plan for ``spec`` (a DesignSpec), or ``None`` if its terms are not covered."""
        try:
            return cls._build(spec)
        except _Unsupported:
            return None

    @classmethod
    def _build(cls, spec: Any) -> FastEncoder:
        if getattr(spec, "numeric_levels", ()):
            raise _Unsupported  # a column both levels and numbers: formulaic encodes it
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
        native = tuple(
            parsed
            for parsed in (
                NativeExpression.parse(e, frozenset(plain), spec.transform_state)
                for e in expressions
            )
            if parsed is not None
        )
        encoder = cls(tuple(terms), tuple(expressions), position, native)
        try:
            encoder._check_against_formulaic(spec)
        except _Unsupported:
            if not native:
                raise
            # NumPy's values differ from formulaic's somewhere: leave every expression
            # to formulaic rather than lose the plan.
            encoder = replace(encoder, native=())
            encoder._check_against_formulaic(spec)
        return encoder

    def _evaluate(self, spec: Any, arrays: dict[str, Any], n: int) -> dict[str, np.ndarray]:
        """The values of the numeric factor expressions: NumPy's for the arithmetic
        ones (no pandas frame), formulaic's for the others."""
        out = {e.text: e.evaluate(arrays, n) for e in self.native}
        rest = tuple(e for e in self.expressions if e not in out)
        if rest:
            out.update(_formulaic_evaluate(spec, rest, arrays, n))
        return out

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
        try:
            got = self.encode(spec, arrays, len(frame)).toarray()
        except Exception as error:
            # A numeric factor the plan cannot evaluate (I(g == "a") reads a categorical
            # column, which the plan holds as level codes): formulaic encodes the design.
            raise _Unsupported from error
        if got.shape != expected.shape or not np.array_equal(got, expected, equal_nan=True):
            raise _Unsupported

    def encode(
        self,
        spec: Any,
        arrays: dict[str, Any],
        n: int,
        *,
        totals: dict[str, float] | None = None,
        weighted: dict[str, float] | None = None,
        weights: np.ndarray | None = None,
    ) -> SplitDesign:
        """Encode ``n`` rows given raw numeric arrays and level codes (-1: no level).

        ``totals`` may give ``arrays[name].sum()`` of some numeric columns, already
        taken by the caller: a dense column that is one of them keeps it as its sum.
        ``weighted`` likewise gives their finite products with ``weights``, all
        finite and non-negative (see :meth:`SplitDesign.of_columns`).
        """
        values = dict(arrays)
        if self.expressions:
            values.update(self._evaluate(spec, arrays, n))
        dense_terms = [term for term in self.terms if term.categorical is None]
        dense_index = [term.columns[0] for term in dense_terms]
        # The dense columns are handed over as vectors (a plain column is the data
        # read, not a copy): the block is written once, by whoever reads it.
        dense_columns = [_product(term.numeric, values, n) for term in dense_terms]
        known = totals or {}
        known_weighted = weighted or {}
        plain = [
            term.numeric[0] if len(term.numeric) == 1 and term.numeric[0] in arrays else None
            for term in dense_terms
        ]
        column_sums = [None if name is None else known.get(name) for name in plain]
        weighted_sums = [None if name is None else known_weighted.get(name) for name in plain]
        # A treatment-coded term puts at most one value in each row, so the sparse block
        # is built by rows directly: row i holds, term by term, the column of its level
        # (a term's columns follow the previous term's, so each row's are sorted).
        term_codes: list[np.ndarray] = []
        lookups: list[np.ndarray] = []
        row_values: list[np.ndarray | None] = []
        sparse_index: list[int] = []
        for term in self.terms:
            if term.categorical is None:
                continue
            product = None
            for expression in term.numeric:
                factor = np.asarray(values[expression], dtype=np.float64)
                product = factor if product is None else product * factor
            # Column of each level code in the whole sparse block, -1 for none.
            lookup = np.asarray(term.level_columns, dtype=np.int64)
            lookups.append(np.where(lookup >= 0, lookup + len(sparse_index), -1))
            term_codes.append(np.asarray(values[term.categorical]))
            row_values.append(product)
            sparse_index.extend(term.columns)
        sparse = _sparse_rows(term_codes, lookups, row_values, n, len(sparse_index))
        return SplitDesign.of_columns(
            dense_columns,
            n,
            np.asarray(dense_index, dtype=np.intp),
            sparse,
            np.asarray(sparse_index, dtype=np.intp),
            column_sums=column_sums,
            weighted_sums=weighted_sums if known_weighted else None,
            weighted_by=weights,
        )


def _sparse_rows(
    codes: list[np.ndarray],
    lookups: list[np.ndarray],
    values: list[np.ndarray | None],
    n: int,
    width: int,
) -> sp.csr_matrix:
    """The ``(n, width)`` CSR block whose row ``i`` holds, term by term, ``values[t][i]``
    (1 for ``None``) at column ``lookups[t][codes[t][i]]``, skipping code -1 and
    column -1."""
    # Code -1 picks the appended -1: no column.
    columns = [np.append(lookup, -1).take(code) for code, lookup in zip(codes, lookups)]
    return _rows_to_csr(columns, values, n, width)


def _rows_to_csr(
    columns: list[np.ndarray], values: list[np.ndarray | None], n: int, width: int
) -> sp.csr_matrix:
    """The ``(n, width)`` CSR matrix whose row ``i`` holds ``values[t][i]`` (1 for
    ``None``) at column ``columns[t][i]`` for each term ``t``, skipping columns < 0."""
    m = len(columns)
    if not m:
        return sp.csr_matrix((n, width))
    index_dtype = np.int32 if max(width, n * m) < 2**31 else np.int64
    present = [column >= 0 for column in columns]
    counts = present[0].astype(index_dtype)
    for mask in present[1:]:
        counts += mask
    indptr = np.empty(n + 1, dtype=index_dtype)
    indptr[0] = 0
    np.cumsum(counts, out=indptr[1:])
    # Interleaved row by row, term by term, then the absent entries dropped.
    interleaved = np.empty(n * m, dtype=index_dtype)
    keep = np.empty(n * m, dtype=bool)
    for t in range(m):
        interleaved[t::m] = columns[t]
        keep[t::m] = present[t]
    indices = interleaved[keep]
    if all(v is None for v in values):
        data = np.ones(indices.size)
    else:
        products = np.empty(n * m)
        for t, v in enumerate(values):
            products[t::m] = 1.0 if v is None else v
        data = products[keep]
    return sp.csr_matrix((data, indices, indptr), shape=(n, width))


class _Unsupported(Exception):
    pass


def _product(expressions: tuple[str, ...], values: dict[str, Any], n: int) -> np.ndarray | None:
    """The product of the numeric factors as a float64 vector of ``n`` values (the
    factor itself when there is one), ``None`` for none (ones)."""
    if not expressions:
        return None
    product = np.asarray(values[expressions[0]], dtype=np.float64)
    if len(expressions) > 1:
        # A new array from the first multiplication (one sweep; copying the first
        # factor and multiplying into the copy took two), never the data read.
        product = np.multiply(product, np.asarray(values[expressions[1]], dtype=np.float64))
        for expression in expressions[2:]:
            np.multiply(product, np.asarray(values[expression], dtype=np.float64), out=product)
    return product.reshape(n)


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


def _formulaic_evaluate(
    spec: Any, expressions: tuple[str, ...], arrays: dict[str, Any], n: int
) -> dict[str, np.ndarray]:
    """Numeric factor expressions through formulaic (numeric columns only)."""
    import pandas as pd
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
