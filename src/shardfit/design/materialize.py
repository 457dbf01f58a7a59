"""Turning one partition's rows into design-matrix arrays with a learned spec."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from shardfit._measure import phase
from shardfit.data.partition import Partition, ReadResult, read_labels
from shardfit.design.fast_encoder import SplitDesign
from shardfit.design.spec import DesignSpec, outside_levels_error
from shardfit.errors import DesignError, MissingDataError, UnseenLevelError
from shardfit.stats.column_summary import numeric_values, to_numpy

__all__ = ["BLOCK_ROWS", "DesignChunk", "encode_blocks", "encode_partition", "encode_table"]

MissingPolicy = Literal["drop", "raise"]
UnseenPolicy = Literal["raise", "zero"]


@dataclass(frozen=True)
class DesignChunk:
    """The encoded design of one partition.

    Attributes
    ----------
    key : str
        The partition's key.
    X : numpy.ndarray or SplitDesign
        ``(rows, p)`` float64 design matrix, columns as ``spec.column_names``
        (a SplitDesign only when asked for with ``structured=True``).
    y : numpy.ndarray or None
        ``(rows,)`` response, when the design has one.
    weights, offset : numpy.ndarray or None
        Per-row weights and offset (``log(exposure)`` is added to the offset).
    row_index : numpy.ndarray
        The kept rows' positions within the partition (0-based).
    rows_read : int
        Rows read from storage for this partition.
    dropped : dict of str to int
        Rows dropped, by reason (``"missing"``: a missing or non-finite input;
        ``"nonfinite"``: a transform produced NaN or inf).
    skipped_rows : int
        Malformed rows the reader skipped.
    extras : dict of str to numpy.ndarray
        The kept rows' values of the spec's extra columns (fits only).
    """

    key: str
    X: np.ndarray | SplitDesign
    y: np.ndarray | None
    weights: np.ndarray | None
    offset: np.ndarray | None
    row_index: np.ndarray
    rows_read: int
    dropped: dict[str, int] = field(default_factory=dict)
    skipped_rows: int = 0
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def nrows(self) -> int:
        """Rows kept."""
        return int(self.row_index.shape[0])


def encode_partition(
    spec: DesignSpec,
    partition: Partition,
    *,
    missing: MissingPolicy = "drop",
    unseen: UnseenPolicy = "raise",
    need_response: bool = True,
    structured: bool = False,
) -> DesignChunk:
    """Read ``partition`` and encode it with ``spec``.

    With ``structured=True`` the design may come back as a
    :class:`~shardfit.design.fast_encoder.SplitDesign` (dense and sparse blocks), which
    the least-squares statistics multiply through its structure.
    """
    result = read_labels(partition, _columns_to_read(spec, need_response), tuple(spec.levels))
    with phase("encode"):  # of a profiled task (shardfit.profile)
        return encode_table(
            spec,
            result,
            partition=partition,
            missing=missing,
            unseen=unseen,
            need_response=need_response,
            structured=structured,
        )


def _plain_design(
    spec: DesignSpec, columns: list[np.ndarray], rows: int, *, structured: bool
) -> np.ndarray | SplitDesign:
    """A plain-columns design: one Fortran block, or (``structured``, with
    ``spec.sparse_x``) a :class:`SplitDesign` whose mostly-zero columns are sparse.

    Each column is copied once (no masked copies stacked, then transposed); a sparse
    one is reduced to its non-zeros: a design store's 209 dummies of 125k rows take
    1 MB instead of 210 MB, and their products follow the sparse structure.
    """
    flags = spec.dense_columns()
    if not (structured and spec.sparse_x):
        X = np.empty((rows, len(columns)), order="F")
        for j, values in enumerate(columns):
            X[:, j] = values
        return X
    dense_index = np.array([j for j, dense in enumerate(flags) if dense], dtype=np.intp)
    sparse_index = np.array([j for j, dense in enumerate(flags) if not dense], dtype=np.intp)
    dense = np.empty((rows, dense_index.size), order="F")
    for k, j in enumerate(dense_index):
        dense[:, k] = columns[j]
    rows_of, values, indptr = [], [], [0]
    for j in sparse_index:
        nonzero = np.flatnonzero(columns[j])
        rows_of.append(nonzero)
        values.append(np.asarray(columns[j], dtype=np.float64)[nonzero])
        indptr.append(indptr[-1] + nonzero.size)
    sparse = sp.csc_matrix(
        (
            np.concatenate(values) if values else np.empty(0),
            np.concatenate(rows_of) if rows_of else np.empty(0, dtype=np.intp),
            np.asarray(indptr, dtype=np.intp),
        ),
        shape=(rows, sparse_index.size),
    )
    return SplitDesign(dense, dense_index, sparse, sparse_index)


def _columns_to_read(spec: DesignSpec, need_response: bool) -> list[str]:
    """The raw columns to read; without the response and other fit-only columns when
    they are not needed (predict)."""
    if need_response:
        return list(spec.raw_columns)
    return [c for c in spec.raw_columns if c not in spec.fit_only_columns]


#: Rows encoded at a time by :func:`encode_blocks`: the transient arrays of a block
#: (columns, dense design, products) stay in the tens of megabytes whatever the
#: partition's size, and a block's dense part fits in a large cache.
BLOCK_ROWS = 65_536


def encode_blocks(
    spec: DesignSpec,
    partition: Partition,
    *,
    missing: MissingPolicy = "drop",
    unseen: UnseenPolicy = "raise",
    need_response: bool = True,
    structured: bool = False,
    block_rows: int = BLOCK_ROWS,
) -> Iterator[DesignChunk]:
    """Read ``partition`` once and encode it ``block_rows`` rows at a time.

    The blocks are zero-copy slices of the table read, encoded in order; a task
    folds each block into its statistic, so its memory is bounded by the block
    rather than the partition. Row positions and error locations are the
    partition's. The reader's skipped-row count goes with the first block.
    """
    result = read_labels(partition, _columns_to_read(spec, need_response), tuple(spec.levels))
    table = result.table
    starts = range(0, max(table.num_rows, 1), block_rows)
    for start in starts:
        block = ReadResult(
            table.slice(start, block_rows),
            skipped_rows=result.skipped_rows if start == 0 else 0,
        )
        with phase("encode"):  # not across the yield: the caller's time is not encoding
            chunk = encode_table(
                spec,
                block,
                partition=partition,
                missing=missing,
                unseen=unseen,
                need_response=need_response,
                structured=structured,
                row_offset=start,
            )
        yield chunk


def encode_table(
    spec: DesignSpec,
    result: ReadResult,
    *,
    partition: Partition,
    missing: MissingPolicy = "drop",
    unseen: UnseenPolicy = "raise",
    need_response: bool = True,
    structured: bool = False,
    row_offset: int = 0,
) -> DesignChunk:
    """Encode rows already read (see :func:`encode_partition`).

    ``row_offset`` is the position of the table's first row within the partition
    (when it is a block of it): row positions and error locations count from the
    partition's start.
    """
    table = result.table
    where = _Locator(partition, row_offset)
    rows_read = table.num_rows
    skip_response = spec.fit_only_columns if not need_response else set()
    present = [name for name in spec.raw_columns if name not in skip_response]
    bad = np.zeros(rows_read, dtype=bool)
    arrays: dict[str, Any] = {}
    totals: dict[str, float] = {}  # sums of the numeric columns found finite
    weighted: dict[str, float] = {}  # their dot products with the weights, when so found
    identifiers = set(spec.extra_columns) - set(spec.formula_columns)
    probe = _weights_probe(spec, table, present, identifiers, partition)
    unseen_in: list[tuple[str, Any, np.ndarray]] = []  # columns holding an unseen level
    for name in present:
        column = table.column(name)
        if name in identifiers:
            is_missing = np.asarray(to_numpy(column.is_null()), dtype=bool)
            if pa.types.is_floating(column.type):
                is_missing |= np.isnan(numeric_values(column))
            arrays[name] = to_numpy(column)
        elif name in spec.levels:
            codes, is_missing, is_unseen = _level_codes(column, spec.levels[name])
            if is_unseen.any() and unseen == "raise":
                unseen_in.append((name, column, is_unseen))
            arrays[name] = (codes, is_unseen)
        else:
            values = _as_float(column, name=name, partition=partition)
            dot = None if probe is None or name == spec.weights else _finite_dot(values, probe)
            if dot is not None:
                # Finite with non-negative finite weights: no value is NaN or inf (0 * inf
                # is NaN), and the weighted mean needs this product anyway.
                is_missing = np.zeros(values.shape, dtype=bool)
                weighted[name] = dot
            else:
                is_missing, total = _nonfinite_and_sum(values)
                if total is not None:
                    totals[name] = total
            arrays[name] = values
        if is_missing.any():
            if missing == "raise":
                row = int(np.flatnonzero(is_missing)[0])
                raise MissingDataError.at(
                    partition.key, where.locate(row), name, column[row].as_py()
                )
            bad |= is_missing
    keep = ~bad
    # Checked on the kept rows only: the schema pass learns no level that only rows
    # dropped for a missing predictor have (formulaic's levels), so those rows may hold
    # one.
    for name, column, is_unseen in unseen_in:
        kept_unseen = np.flatnonzero(is_unseen & keep)
        if kept_unseen.size:
            row = int(kept_unseen[0])
            raise UnseenLevelError(
                f"unseen level in partition {partition.key} ({where.locate(row)}), "
                f"column {name!r}: {column[row].as_py()!r} is not among the "
                f"{len(spec.levels[name])} levels learned when the design was built (first: "
                f"{spec.levels[name][:5]!r}); pass unseen='zero' to encode it as all zeros"
            )
    row_index = np.flatnonzero(keep)
    dropped = {"missing": int(bad.sum())}

    weights = _checked_weights(spec, arrays, keep, where, row_index)
    offset = _offset(spec, arrays, keep)
    if spec.formula is None:
        columns = [arrays[c] if keep.all() else arrays[c][keep] for c in spec.x_columns]
        X = _plain_design(spec, columns, int(keep.sum()), structured=structured)
        y = arrays[spec.response][keep] if spec.response is not None and need_response else None
    else:
        try:
            X, y = _formula_arrays(
                spec,
                arrays,
                keep,
                need_response=need_response,
                unseen=unseen,
                totals=totals,
                weighted=weighted,
            )
        except DesignError as error:
            if not str(error).startswith(_ENCODE_FAILED):
                raise
            raise _located_encode_error(error, spec, where) from error
        if isinstance(X, SplitDesign) and not structured:
            X = X.toarray()

    finite = X.finite_rows() if isinstance(X, SplitDesign) else np.isfinite(X).all(axis=1)
    if y is not None:
        finite &= np.isfinite(y)
    if not finite.all():
        if missing == "raise":
            position = int(np.flatnonzero(~finite)[0])
            row = int(row_index[position])
            row_values = (
                X.take_rows(np.array([position])).toarray()[0]
                if isinstance(X, SplitDesign)
                else X[position]
            )
            bad_columns = [
                spec.column_names[j] for j in np.flatnonzero(~np.isfinite(row_values))
            ] or list(spec.response_names)
            raise MissingDataError(
                f"non-finite design value in partition {partition.key} "
                f"({where.locate(row)}), column {bad_columns[0]!r}: a transform produced "
                "NaN or inf from finite inputs"
            )
        dropped["nonfinite"] = int((~finite).sum())
        X = X.take_rows(finite) if isinstance(X, SplitDesign) else X[finite]
        row_index = row_index[finite]
        y = y[finite] if y is not None else None
        weights = weights[finite] if weights is not None else None
        offset = offset[finite] if offset is not None else None
    extras = {
        name: _extra_values(arrays[name], name in spec.levels)[row_index]
        for name in spec.extra_columns
        if name in arrays
    }
    return DesignChunk(
        key=partition.key,
        extras=extras,
        X=X,
        y=y,
        weights=weights,
        offset=offset,
        row_index=row_index + row_offset if row_offset else row_index,
        rows_read=rows_read,
        dropped=dropped,
        skipped_rows=result.skipped_rows,
    )


_ENCODE_FAILED = "cannot encode with"
_OUTSIDE_BOUNDS = "extend beyond upper and/or lower bounds"


def _located_encode_error(error: DesignError, spec: DesignSpec, where: _Locator) -> DesignError:
    """formulaic's evaluation error with the partition it happened in and, for a spline
    evaluated outside the bounds it learned (new data at predict time), those bounds:
    formulaic's message names neither."""
    message = f"partition {where.key}: {error}"
    if _OUTSIDE_BOUNDS in message:
        bounds = [
            f"{key}: [{state['lower_bound']!r}, {state['upper_bound']!r}]"
            for key, state in spec.transform_state.items()
            if "lower_bound" in state and "upper_bound" in state
        ]
        message += (
            f"; the bounds learned when the design was built are {'; '.join(bounds)}. "
            "Values outside them need extrapolation= in the formula (clip, na, zero, "
            "extend), set when fitting"
        )
    return DesignError(message)


@dataclass(frozen=True)
class _Locator:
    """Where a row of a block is, in its partition's terms."""

    partition: Partition
    row_offset: int

    @property
    def key(self) -> str:
        return self.partition.key

    def locate(self, row: int) -> str:
        return self.partition.locate(self.row_offset + row)


def _weights_probe(
    spec: DesignSpec,
    table: pa.Table,
    present: list[str],
    identifiers: set[str],
    partition: Partition,
) -> np.ndarray | None:
    """The weights column when every value is finite and non-negative (then a finite
    dot product of a column with it proves the column finite), else ``None``."""
    name = spec.weights
    if name is None or name not in present or name in spec.levels or name in identifiers:
        return None
    values = _as_float(table.column(name), name=name, partition=partition)
    if not values.size:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.isfinite(values.sum()) or values.min() < 0:
            return None
    return values


def _finite_dot(values: np.ndarray, weights: np.ndarray) -> float | None:
    """``values @ weights`` when finite, else ``None``."""
    with np.errstate(over="ignore", invalid="ignore"):
        dot = float(values @ weights)
    return dot if np.isfinite(dot) else None


def _nonfinite(values: np.ndarray) -> np.ndarray:
    """Mask of NaN and infinite values; a finite sum (the usual case) proves there are
    none without building the mask value by value."""
    return _nonfinite_and_sum(values)[0]


def _nonfinite_and_sum(values: np.ndarray) -> tuple[np.ndarray, float | None]:
    """:func:`_nonfinite`, and the sum of the values when it is finite (the structured
    encoder's column sums reuse it rather than read the column again)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = values.sum()
        if np.isfinite(total):
            return np.zeros(values.shape, dtype=bool), total
    return ~np.isfinite(values), None


def _extra_values(array: Any, categorical: bool) -> np.ndarray:
    """An extra column's values: level codes for a categorical, raw values otherwise."""
    if categorical:
        return np.asarray(array[0])  # (codes, unseen) pair; codes identify the level
    return np.asarray(array)


def _as_float(column: pa.ChunkedArray, *, name: str, partition: Partition) -> np.ndarray:
    dtype = column.type
    if not (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_boolean(dtype)
        or pa.types.is_null(dtype)
    ):
        raise DesignError(
            f"column {name!r} in partition {partition.key} has type {dtype}, where the design "
            "expects numbers (the schema pass saw it as numeric)"
        )
    return numeric_values(column)


def _level_codes(
    column: pa.ChunkedArray, levels: list[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes into ``levels`` (-1 for missing or unseen), and masks of both."""
    if pa.types.is_dictionary(column.type):
        return _dictionary_level_codes(column, levels)
    # Here, not at import: dictionary columns (Parquet's) never need it.
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # Coded through a dictionary of the distinct values, matched in Python.
        return _dictionary_level_codes(pc.dictionary_encode(column), levels)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    is_null = np.asarray(to_numpy(column.is_null()), dtype=bool)
    if pa.types.is_floating(column.type):
        is_null |= np.asarray(to_numpy(pc.is_nan(column).fill_null(False)))
    value_set = pa.array(levels)
    if value_set.type != column.type:
        try:
            value_set = value_set.cast(column.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            column = column.cast(value_set.type)
    index = pc.index_in(column, value_set=value_set)
    codes = np.asarray(to_numpy(index.fill_null(-1)), dtype=np.int64)
    is_unseen = (codes < 0) & ~is_null
    return codes, is_null, is_unseen


def _dictionary_codes(dictionary: pa.Array, levels: list[Any]) -> np.ndarray:
    """Each dictionary entry's code into ``levels`` (-1: missing or unseen).

    A dictionary of strings (Parquet's, a few hundred entries at most) is matched in
    Python, which needs no Arrow array of the levels (building one would import
    pandas in a worker that has no other use for it); others through
    :func:`_level_codes`."""
    if pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type):
        lookup = {level: code for code, level in enumerate(levels) if isinstance(level, str)}
        return np.array([lookup.get(v, -1) for v in dictionary.to_pylist()], dtype=np.int64)
    return _level_codes(dictionary, levels)[0]


def _dictionary_level_codes(
    column: pa.ChunkedArray | pa.Array, levels: list[Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_level_codes` of a dictionary-encoded column: each chunk's dictionary is
    matched against the levels once, and its codes are mapped through that."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    codes_parts, null_parts = [], []
    for chunk in chunks:
        dictionary_codes = _dictionary_codes(chunk.dictionary, levels)
        indices = to_numpy(chunk.indices)
        if chunk.null_count == 0 and dictionary_codes.size:
            # No nulls (the usual case): one gather, no masks.
            codes_parts.append(dictionary_codes.take(indices))
            null_parts.append(np.zeros(len(chunk), dtype=bool))
            continue
        is_null = np.asarray(to_numpy(chunk.is_null()), dtype=bool)
        mapped = np.full(len(chunk), -1, dtype=np.int64)
        valid = ~is_null
        if dictionary_codes.size:
            mapped[valid] = dictionary_codes[indices[valid].astype(np.intp)]
        codes_parts.append(mapped)
        null_parts.append(is_null)
    codes = np.concatenate(codes_parts) if codes_parts else np.empty(0, dtype=np.int64)
    is_null = np.concatenate(null_parts) if null_parts else np.empty(0, dtype=bool)
    return codes, is_null, (codes < 0) & ~is_null


def _checked_weights(
    spec: DesignSpec,
    arrays: dict[str, Any],
    keep: np.ndarray,
    partition: _Locator,
    row_index: np.ndarray,
) -> np.ndarray | None:
    if spec.weights is None:
        return None
    weights = arrays[spec.weights][keep]
    negative = weights < 0
    if negative.any():
        row = int(row_index[int(np.flatnonzero(negative)[0])])
        raise DesignError(
            f"negative weight in partition {partition.key} ({partition.locate(row)}), "
            f"column {spec.weights!r}: {float(weights[negative][0])!r}"
        )
    return weights


def _offset(spec: DesignSpec, arrays: dict[str, Any], keep: np.ndarray) -> np.ndarray | None:
    offset = None
    if spec.offset is not None:
        offset = arrays[spec.offset][keep].copy()
    if spec.exposure is not None:
        exposure = arrays[spec.exposure][keep]
        with np.errstate(divide="ignore", invalid="ignore"):
            log_exposure = np.log(exposure)
        offset = log_exposure if offset is None else offset + log_exposure
    return offset


def _formula_arrays(
    spec: DesignSpec,
    arrays: dict[str, Any],
    keep: np.ndarray,
    *,
    need_response: bool,
    unseen: UnseenPolicy,
    totals: dict[str, float] | None = None,
    weighted: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    nkeep = int(keep.sum())
    encoder = spec.fast_encoder()
    if encoder is not None and nkeep:
        return _fast_arrays(
            spec,
            encoder,
            arrays,
            keep,
            need_response=need_response,
            totals=totals or {},
            weighted=weighted or {},
        )
    # formulaic's path (the structured encoder's plan does not cover the formula).
    import pandas as pd

    from shardfit.design.transforms import apply_context

    specs = spec.formulaic_specs()
    frame: dict[str, Any] = {}
    unseen_rows: dict[str, np.ndarray] = {}
    for name in spec.formula_columns:
        if name not in arrays:
            continue  # a response column not read at predict time
        if name in spec.levels:
            codes, is_unseen = arrays[name]
            codes = codes[keep]
            if unseen == "zero" and is_unseen[keep].any():
                if name in spec.numeric_levels:
                    raise UnseenLevelError(
                        f"column {name!r} has values not among its {len(spec.levels[name])} "
                        "levels learned when the design was built; unseen='zero' cannot "
                        f"encode them because {spec.formula!r} also reads {name!r} as a "
                        "number: predict on rows with known levels"
                    )
                unseen_rows[name] = is_unseen[keep]
                codes = np.where(codes < 0, 0, codes)  # any level; its columns are zeroed below
            if name in spec.numeric_levels:  # the values: formulaic's C() finds the levels
                frame[name] = np.asarray(spec.levels[name])[codes]
            else:
                frame[name] = pd.Categorical.from_codes(codes, categories=spec.levels[name])
        else:
            frame[name] = arrays[name][keep]
    data = pd.DataFrame(frame, index=pd.RangeIndex(nkeep))
    rhs_spec = specs.rhs if spec.has_formula_response else specs
    if nkeep == 0:
        X = np.empty((0, len(spec.column_names)), dtype=np.float64)
        y = np.empty(0, dtype=np.float64) if (spec.has_formula_response and need_response) else None
        return X, y
    # A transform that yields NaN or inf (np.log of a negative) is counted below, row
    # by row; numpy's warning would only repeat that without a location.
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # formulaic warns (and would encode silently) on a level outside the spec;
        # levels were checked above, so any such warning is a bug: make it an error.
        warnings.simplefilter("error", category=_data_mismatch_warning())
        try:
            if spec.has_formula_response and need_response:
                matrices = specs.get_model_matrix(data, context=apply_context())
                X = _dense(matrices.rhs)
                y_frame = _dense(matrices.lhs)
                if y_frame.shape[1] != 1:
                    raise DesignError(
                        f"the response of {spec.formula!r} gives {y_frame.shape[1]} columns "
                        f"({list(spec.response_names)}); use a numeric response column"
                    )
                y = y_frame[:, 0]
            else:
                X = _dense(rhs_spec.get_model_matrix(data, context=apply_context()))
                y = None
        except DesignError:
            raise
        except _data_mismatch_warning() as error:
            # Levels were checked against the spec above: the values fall outside the
            # levels= a C() call of the formula names (patsy raises here too).
            raise outside_levels_error(str(spec.formula), error) from error
        except Exception as error:
            raise DesignError(f"{_ENCODE_FAILED} {spec.formula!r}: {error}") from error
    if X.shape[1] != len(spec.column_names):
        raise DesignError(
            f"partition design has {X.shape[1]} columns where the spec has {len(spec.column_names)}"
        )
    for name, rows in unseen_rows.items():
        columns = rhs_spec.get_variable_indices([name])
        X[np.ix_(rows, columns)] = 0.0
    return X, y


def _fast_arrays(
    spec: DesignSpec,
    encoder: Any,
    arrays: dict[str, Any],
    keep: np.ndarray,
    *,
    need_response: bool,
    totals: dict[str, float],
    weighted: dict[str, float] | None = None,
) -> tuple[SplitDesign, np.ndarray | None]:
    """Encode through the structured encoder; unseen levels (code -1) encode as zeros.
    ``totals`` are sums of numeric columns over all the rows read (used as the dense
    columns' sums when no row was dropped)."""
    nkeep = int(keep.sum())
    every_row = nkeep == keep.size  # the common case: no copy of each column
    kept: dict[str, Any] = {}
    for name in spec.formula_columns:
        if name not in arrays:
            continue
        values = arrays[name][0] if name in spec.levels else arrays[name]
        kept[name] = values if every_row else values[keep]
    X = encoder.encode(
        spec,
        kept,
        nkeep,
        totals=totals if every_row else None,
        weighted=weighted if every_row else None,
        weights=arrays[spec.weights] if every_row and spec.weights in arrays else None,
    )
    y = None
    if spec.has_formula_response and need_response:
        response = spec.response_names[0] if len(spec.response_names) == 1 else None
        if response in kept and response not in spec.levels:
            y = np.asarray(kept[response], dtype=np.float64)
        else:
            import pandas as pd

            from shardfit.design.transforms import apply_context

            frame = pd.DataFrame(
                {n: kept[n] for n in spec.formula_columns if n in kept and n not in spec.levels}
            )
            lhs = spec.formulaic_specs().lhs.get_model_matrix(frame, context=apply_context())
            y_frame = _dense(lhs)
            if y_frame.shape[1] != 1:
                raise DesignError(f"the response of {spec.formula!r} must be one numeric column")
            y = y_frame[:, 0]
    return X, y


def _dense(matrix: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(matrix, dtype=np.float64))


def _data_mismatch_warning() -> type[Warning]:
    from formulaic.errors import DataMismatchWarning

    return DataMismatchWarning
