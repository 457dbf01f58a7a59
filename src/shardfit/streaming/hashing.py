"""Feature hashing of numeric and categorical columns with interactions, column by column.

:class:`HashingFeaturizer` turns a batch of rows into a SciPy CSR matrix of
``n_features`` columns. Every *term* contributes exactly one entry per row:

- a numeric column ``x`` is the term ``x`` with its value;
- a categorical column ``g`` is the term ``g=<level>`` with value 1 (a signed one-hot
  hash);
- interactions up to ``degree`` are the products of 2..``degree`` factors drawn with
  repetition from the columns, where a numeric column may repeat (``x1^2``,
  ``x1^2*x2``) but a categorical one may not (a level times itself is the level, and two
  levels of one column never occur together).

The hash of a term depends only on the names of its factors (and, for categorical
factors, the level), never on the column order or on the process: each token (``"x1"``,
``"g=a"``) is hashed with MurmurHash3 (``sklearn.utils.murmurhash3_32``, two seeds for
64 bits), once per batch for a numeric column and once per *distinct level* for a
categorical one, and the factors of a term are folded together by a 64-bit mixing
function in sorted-name order. So the hash is the same across processes, runs and
machines, unlike Python's salted ``hash``, and no Python code runs per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations_with_replacement
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import murmurhash3_32

from shardfit.errors import DesignError, MissingDataError

__all__ = ["HashingFeaturizer", "Term", "hash_tokens"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_ONE = np.uint64(1)
_SEED_LO, _SEED_HI = 0x5F3759DF, 0x2545F491


def _mix(h: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: spreads every input bit over the 64 output bits."""
    h = (h ^ (h >> _S30)) * _M1
    h = (h ^ (h >> _S27)) * _M2
    return h ^ (h >> _S31)


def _combine(acc: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Fold one factor's hash into a term's (uint64 arrays; wrapping is intended)."""
    with np.errstate(over="ignore"):
        return _mix(acc * _GOLDEN + h)


def hash_tokens(tokens: Sequence[str], *, seed: int = 0) -> np.ndarray:
    """64-bit stable hashes of strings (MurmurHash3 with two seeds).

    Parameters
    ----------
    tokens : sequence of str
        The strings, e.g. ``["x1", "g=a"]``.
    seed : int, default 0
        Changes every hash (a different hash family); must be in [0, 2**31).

    Returns
    -------
    numpy.ndarray of uint64
    """
    lo = np.fromiter(
        (murmurhash3_32(t, seed=_SEED_LO ^ seed, positive=True) for t in tokens),
        dtype=np.uint64,
        count=len(tokens),
    )
    hi = np.fromiter(
        (murmurhash3_32(t, seed=_SEED_HI ^ seed, positive=True) for t in tokens),
        dtype=np.uint64,
        count=len(tokens),
    )
    return (hi << np.uint64(32)) | lo


@dataclass(frozen=True)
class Term:
    """One term of the hashed design: a product of factors (column names, with repeats).

    Attributes
    ----------
    factors : tuple of str
        Column names, sorted, a numeric column repeated for its power.
    categorical : tuple of str
        The factors that are categorical (each at most once).
    """

    factors: tuple[str, ...]
    categorical: tuple[str, ...]

    @property
    def name(self) -> str:
        """``"x1"``, ``"x1^2"``, ``"g*x1"`` (levels are shown as ``g`` here)."""
        counts: dict[str, int] = {}
        for factor in self.factors:
            counts[factor] = counts.get(factor, 0) + 1
        return "*".join(f if n == 1 else f"{f}^{n}" for f, n in counts.items())


def _column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


class HashingFeaturizer(TransformerMixin, BaseEstimator):
    """Hash numeric and categorical columns and their interactions into a sparse matrix.

    A stateless scikit-learn transformer (``fit`` learns nothing): any batch of any
    source gives the same encoding on any worker, which is what streaming and parallel
    search need.

    Parameters
    ----------
    columns : sequence of str
        The input columns, numeric or categorical.
    n_features : int, default 2**20
        The number of output columns (hash buckets).
    degree : int, default 2
        The highest interaction order: 1 gives the columns alone; 2 adds squares of
        numeric columns and products of pairs, and so on (see the module notes for
        which terms exist).
    categorical : sequence of str, optional
        Columns to treat as categorical whatever their type (e.g. integer codes). By
        default string, dictionary (a pandas ``Categorical``, whatever the type of its
        categories) and boolean columns are categorical and integer and floating-point
        columns numeric.
    alternate_sign : bool, default True
        Give each term a hashed sign, so collisions cancel in expectation, as
        scikit-learn's ``FeatureHasher`` does.
    seed : int, default 0
        Selects the hash family; configurations with different seeds collide
        differently.

    Examples
    --------
    >>> import pandas as pd
    >>> hasher = HashingFeaturizer(["x", "g"], n_features=2**10, degree=2)
    >>> X = hasher.transform(pd.DataFrame({"x": [1.0, 2.0], "g": ["a", "b"]}))
    >>> X.shape, X.nnz  # terms x, g, x^2, g*x: four entries a row
    ((2, 1024), 8)
    """

    def __init__(
        self,
        columns: Sequence[str] = (),
        *,
        n_features: int = 2**20,
        degree: int = 2,
        categorical: Sequence[str] | None = None,
        alternate_sign: bool = True,
        seed: int = 0,
    ) -> None:
        self.columns = columns
        self.n_features = n_features
        self.degree = degree
        self.categorical = categorical
        self.alternate_sign = alternate_sign
        self.seed = seed

    # --- configuration ---------------------------------------------------------------

    def _validate(self) -> None:
        def bad(name: str, what: str, value: object) -> DesignError:
            return DesignError(
                f"The {name!r} parameter of HashingFeaturizer must be {what}. "
                f"Got {value!r} instead."
            )

        if isinstance(self.columns, str) or not all(isinstance(c, str) for c in self.columns):
            raise bad("columns", "a sequence of column names", self.columns)
        if not self.columns:
            raise bad("columns", "a non-empty sequence of column names", self.columns)
        if len(set(self.columns)) != len(self.columns):
            raise bad("columns", "a sequence of distinct names", self.columns)
        n = self.n_features
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= 2**31 - 1:
            raise bad("n_features", "an int in [1, 2**31 - 1]", n)
        d = self.degree
        if isinstance(d, bool) or not isinstance(d, int | np.integer) or not 1 <= d <= 8:
            raise bad("degree", "an int in [1, 8]", d)
        if self.categorical is not None and not set(self.categorical) <= set(self.columns):
            extra = sorted(set(self.categorical) - set(self.columns))
            raise bad("categorical", f"a subset of columns (not {extra})", self.categorical)
        s = self.seed
        if isinstance(s, bool) or not isinstance(s, int | np.integer) or not 0 <= s < 2**31:
            raise bad("seed", "an int in [0, 2**31)", s)

    def _kinds(self, table: pa.Table) -> dict[str, bool]:
        """Column name -> whether it is categorical, checking the columns exist."""
        names = set(table.column_names)
        missing = [c for c in self.columns if c not in names]
        if missing:
            raise DesignError(
                f"HashingFeaturizer: column {missing[0]!r} is not in the data; it has "
                f"{', '.join(table.column_names)}"
            )
        forced = set(self.categorical or ())
        kinds = {}
        for name in self.columns:
            kind = table.schema.field(name).type
            # A dictionary column (a pandas Categorical, a Parquet dictionary) is
            # categorical whatever its values: integer category codes are levels, not
            # quantities.
            if name in forced or pa.types.is_dictionary(kind):
                kinds[name] = True
            elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
                kinds[name] = True
            elif pa.types.is_boolean(kind):
                kinds[name] = True
            elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
                kinds[name] = False
            elif pa.types.is_null(kind):
                kinds[name] = False  # an all-missing column: reported as missing below
            else:
                raise DesignError(
                    f"HashingFeaturizer: column {name!r} has type {kind}, which is neither "
                    "numeric nor categorical (string, boolean, dictionary)"
                )
        return kinds

    def terms(self, categorical: Sequence[str] = ()) -> list[Term]:
        """The terms of the design, in output order.

        Parameters
        ----------
        categorical : sequence of str
            Which columns are categorical (it decides which powers exist).

        Returns
        -------
        list of Term
        """
        self._validate()
        cats = set(categorical) | set(self.categorical or ())
        names = list(self.columns)
        out = []
        for k in range(1, int(self.degree) + 1):
            for combo in combinations_with_replacement(names, k):
                chosen = [c for c in combo if c in cats]
                if len(chosen) != len(set(chosen)):
                    continue  # a categorical column times itself
                factors = tuple(sorted(combo))
                out.append(Term(factors, tuple(sorted(set(chosen)))))
        return out

    def term_indices(
        self, levels: Mapping[str, str] | None = None, *, data: Any = None
    ) -> dict[str, tuple[int, int]]:
        """Column index and sign of each term, for reading learned weights.

        Parameters
        ----------
        levels : mapping of str to str, optional
            For categorical columns, the level to look up (``{"g": "a"}``); terms with a
            categorical column not named here are left out.
        data : pyarrow.Table, pyarrow.Schema, pandas.DataFrame or mapping, optional
            A batch of the data (or its schema): which columns are categorical is read
            from it as :meth:`transform` reads it. Without it only the columns in
            ``categorical`` and in ``levels`` are known to be categorical, and the others
            are taken as numeric: pass ``data`` when a string, boolean or dictionary
            column is left out of ``levels``, so that its terms are left out too.

        Returns
        -------
        dict of str to (int, int)
            Term name (levels written ``g=a``) -> (output column, sign ±1).
        """
        levels = dict(levels or {})
        known = [*levels, *(self.categorical or ())]
        if data is not None:
            self._validate()
            table = data.empty_table() if isinstance(data, pa.Schema) else _as_table(data)
            # A categorical column outside ``levels`` must not pass for a numeric term
            # (``g`` and ``g^2`` would be looked up where no level's entry lies).
            known += [name for name, cat in self._kinds(table).items() if cat]
        result = {}
        for term in self.terms(categorical=known):
            if any(c not in levels for c in term.categorical):
                continue
            tokens = [f"{f}={levels[f]}" if f in levels else f for f in term.factors]
            acc = np.zeros(1, dtype=np.uint64)
            for h in hash_tokens(tokens, seed=int(self.seed)):
                acc = _combine(acc, np.array([h], dtype=np.uint64))
            index, sign = self._index_sign(acc)
            result[Term(tuple(tokens), ()).name] = (int(index[0]), int(sign[0]))
        return result

    def _index_sign(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = ((h >> _ONE) % np.uint64(int(self.n_features))).astype(np.int32)
        if self.alternate_sign:
            sign = 1.0 - 2.0 * (h & _ONE).astype(np.float64)
        else:
            sign = np.ones(h.shape, dtype=np.float64)
        return index, sign

    # --- scikit-learn API ------------------------------------------------------------

    def fit(self, X: Any = None, y: Any = None) -> HashingFeaturizer:
        """Check the parameters; nothing is learned (the transformer is stateless)."""
        self._validate()
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def transform(self, X: Any) -> sp.csr_matrix:
        """Hash a batch of rows.

        Parameters
        ----------
        X : pyarrow.Table, pyarrow.RecordBatch, pandas.DataFrame or mapping of arrays
            The rows, with (at least) the columns of ``columns``.

        Returns
        -------
        scipy.sparse.csr_matrix
            Shape ``(rows, n_features)``, float64, one entry per term and row (entries
            of colliding terms are not summed: SciPy and the learners add them).

        Raises
        ------
        DesignError
            A column is missing or has an unusable type.
        MissingDataError
            A numeric value is missing or not finite, or a categorical value is missing
            (the message names the column and the row of the batch).
        """
        self._validate()
        table = _as_table(X)
        kinds = self._kinds(table)
        nrows = table.num_rows
        numeric: dict[str, np.ndarray] = {}
        level_hash: dict[str, np.ndarray] = {}
        for name in self.columns:
            array = _column(table, name)
            if array.null_count:
                row = int(np.flatnonzero(np.asarray(array.is_null()))[0])
                raise _located(f"column {name!r}, row {row} of the batch: missing value", row)
            if kinds[name]:
                _refuse_nan_level(name, array)
                level_hash[name] = self._hash_levels(name, array)
            else:
                values = array.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
                finite = np.isfinite(values)
                if not finite.all():
                    row = int(np.flatnonzero(~finite)[0])
                    raise _located(
                        f"column {name!r}, row {row} of the batch: value {values[row]} "
                        "is not finite",
                        row,
                    )
                numeric[name] = values
        terms = self.terms(categorical=[c for c, cat in kinds.items() if cat])
        seed = int(self.seed)
        base = dict(zip(self.columns, hash_tokens(list(self.columns), seed=seed)))
        indices = np.empty((nrows, len(terms)), dtype=np.int32)
        data = np.empty((nrows, len(terms)), dtype=np.float64)
        for t, term in enumerate(terms):
            acc: np.ndarray = np.zeros(1, dtype=np.uint64)
            value: np.ndarray | None = None
            for factor in term.factors:
                h = level_hash[factor] if factor in level_hash else np.array([base[factor]])
                acc = _combine(acc, h)
                if factor in numeric:
                    value = numeric[factor] if value is None else value * numeric[factor]
            index, sign = self._index_sign(acc)
            indices[:, t] = index
            if value is None:
                data[:, t] = sign
            else:
                np.multiply(value, sign, out=data[:, t])
        indptr = np.arange(0, nrows * len(terms) + 1, len(terms), dtype=np.int64)
        if indptr[-1] < 2**31:
            indptr = indptr.astype(np.int32)
        return sp.csr_matrix(
            (data.reshape(-1), indices.reshape(-1), indptr),
            shape=(nrows, int(self.n_features)),
        )

    def _hash_levels(self, name: str, array: pa.Array) -> np.ndarray:
        """Per-row hash of ``name=level``, hashing each distinct level once."""
        if not pa.types.is_dictionary(array.type):
            if pa.types.is_boolean(array.type) or not pa.types.is_string(array.type):
                array = pc.cast(array, pa.string())
            array = pc.dictionary_encode(array)
        dictionary = array.dictionary
        if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
            dictionary = pc.cast(dictionary, pa.string())
        levels = [f"{name}={level}" for level in dictionary.to_pylist()]
        hashes = hash_tokens(levels, seed=int(self.seed))
        codes = array.indices.to_numpy(zero_copy_only=False)
        return hashes[codes]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Hash buckets have no names; returns ``hash0`` … ``hash{n-1}`` as FeatureHasher."""
        return np.array([f"hash{i}" for i in range(int(self.n_features))], dtype=object)


def _refuse_nan_level(name: str, array: pa.Array) -> None:
    """A NaN in a floating-point column read as categorical is a missing value, as a
    null is (else it would become the level ``"nan"``)."""
    values = array.dictionary if pa.types.is_dictionary(array.type) else array
    if not pa.types.is_floating(values.type):
        return
    nan = np.isnan(values.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
    if not nan.any():
        return
    if pa.types.is_dictionary(array.type):
        codes = array.indices.to_numpy(zero_copy_only=False)
        row = int(np.flatnonzero(nan[codes])[0]) if nan[codes].any() else None
        if row is None:
            return  # an unused NaN level: no row has it
    else:
        row = int(np.flatnonzero(nan)[0])
    raise _located(f"column {name!r}, row {row} of the batch: missing value (NaN)", row)


def _located(message: str, row: int) -> MissingDataError:
    """A missing-data error that carries the batch row, so callers can name the file row."""
    error = MissingDataError(message)
    error.row = row  # type: ignore[attr-defined]
    return error


def _as_table(X: Any) -> pa.Table:
    """A pyarrow Table from the batch types :meth:`HashingFeaturizer.transform` takes."""
    if isinstance(X, pa.Table):
        return X
    if isinstance(X, pa.RecordBatch):
        return pa.Table.from_batches([X])
    if isinstance(X, Mapping):
        return pa.table(
            {k: pa.array(np.asarray(v)) if not isinstance(v, pa.Array) else v for k, v in X.items()}
        )
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a dependency
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        return pa.Table.from_pandas(X, preserve_index=False)
    raise TypeError(
        "HashingFeaturizer.transform takes a pyarrow Table or RecordBatch, a pandas "
        f"DataFrame or a mapping of column name to array. Got {type(X).__name__}."
    )
