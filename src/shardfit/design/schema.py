"""The schema pass: one pass of mergeable column summaries that learns the design.

Per partition it reads only the columns the formula needs, summarizes them
(rows, missing, extremes, mean, categorical levels), and records exact sums for the
stateful transforms (and, for splines, extremes and a histogram of ``x``, or for
``cr``/``cs``/``cc(x, df=...)`` its distinct values, whose percentiles are the knots;
knots at quantiles of ``x`` need one more pass, rarely up to three,
:class:`OrderStatisticTask`; orthogonal
``poly()`` one pass per degree and a spline's centering constraint one pass,
:class:`MomentTask`). Merged in partition order, these give the
:class:`~shardfit.design.spec.DesignSpec` every later pass encodes with.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa

from shardfit.data.partition import Partition, Source, read_labels
from shardfit.data.resolve import as_source
from shardfit.design.spec import DesignSpec
from shardfit.engine import run_pass
from shardfit.errors import DesignError, MissingDataError
from shardfit.stats.column_summary import (
    DEFAULT_MAX_LEVELS,
    CategoricalSummary,
    LabelSummary,
    NumericSummary,
    TableSummary,
    describe_tokens,
    is_categorical_type,
    numeric_values,
    stray_tokens,
    summarize_table,
    to_numpy,
)

if TYPE_CHECKING:
    import pandas as pd

    from shardfit.design.formula import FormulaInfo

# formulaic (and pandas) are imported where a formula is analysed or a stateful
# transform learned, not here: the workers that run SchemaTask never need them
# otherwise.

Summaries = Literal["all", "levels"]

__all__ = [
    "LearnedDesign",
    "MomentSums",
    "MomentTask",
    "OrderStatisticTask",
    "OrderStatistics",
    "PartitionCounts",
    "SchemaStatistic",
    "SchemaTask",
    "learn_design",
    "schema_pass",
]


@dataclass(frozen=True)
class PartitionCounts:
    """Rows read, rows with every needed value present, and rows skipped, per partition."""

    key: str
    rows: int
    complete: int
    skipped: int


@dataclass(frozen=True)
class SchemaStatistic:
    """What the schema pass merges: column summaries, transform sums, row counts."""

    summary: TableSummary
    learned: dict[str, dict[str, Any]]
    partitions: tuple[PartitionCounts, ...]
    # Per categorical column, the levels seen only in rows missing a predictor (rows
    # every design drops): formulaic finds levels after dropping them: no column.
    incomplete_only: dict[str, frozenset[Any]] = field(default_factory=dict)

    def merge(self, other: SchemaStatistic) -> SchemaStatistic:
        """Both operands' rows, left then right."""
        return SchemaStatistic(
            summary=self.summary.merge(other.summary),
            learned=_merged_state(self.learned, other.learned),
            partitions=self.partitions + other.partitions,
            incomplete_only=_merged_incomplete_only(self, other),
        )


def _merged_incomplete_only(
    left: SchemaStatistic, right: SchemaStatistic
) -> dict[str, frozenset[Any]]:
    """The levels that neither operand saw in a complete row: a level one side saw only
    in incomplete rows stays so unless the other side saw it in a complete row."""
    merged: dict[str, frozenset[Any]] = {}
    for name in left.incomplete_only.keys() | right.incomplete_only.keys():
        mine = left.incomplete_only.get(name, frozenset())
        theirs = right.incomplete_only.get(name, frozenset())
        mine_all = _seen_levels(left.summary, name)
        theirs_all = _seen_levels(right.summary, name)
        levels = (mine - theirs_all) | (theirs - mine_all) | (mine & theirs)
        if levels:
            merged[name] = frozenset(levels)
    return merged


def _seen_levels(summary: TableSummary, name: str) -> frozenset[Any]:
    """The levels with rows in ``summary``'s column ``name`` (none if not summarized)."""
    column = summary.columns.get(name)
    if not isinstance(column, CategoricalSummary):
        return frozenset()
    return frozenset(level for level, count in column.levels.items() if count)


@dataclass(frozen=True)
class SchemaTask:
    """Summarize one partition (runs on a worker)."""

    columns: tuple[str, ...]
    categorical: frozenset[str]
    identifiers: frozenset[str]
    max_levels: int
    stateful_factors: tuple[str, ...]
    missing: Literal["drop", "raise"]
    # Columns the source stores as Arrow dictionaries: their order is their levels'.
    dictionaries: frozenset[str] = frozenset()
    # Columns whose missing values drop a row from every design (fit, predict, store):
    # a level only such rows have gets no column. Those not in ``columns`` are read
    # only for their missing values (not summarized).
    predictors: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        return repr(self)

    def __call__(self, partition: Partition) -> SchemaStatistic:
        # Label columns may come back dictionary-encoded (summarized from their codes).
        labels = [c for c in self.columns if c in self.categorical or c not in self.identifiers]
        unread = [name for name in self.predictors if name not in self.columns]
        result = read_labels(partition, [*self.columns, *unread], labels)
        table = result.table
        summary = summarize_table(
            table.select(list(self.columns)) if unread else table,
            categorical=self.categorical,
            identifiers=self.identifiers,
            max_levels=self.max_levels,
            skipped_rows=result.skipped_rows,
            source_schema=getattr(partition, "schema", None),
            dictionaries=self.dictionaries,
        )
        complete = np.ones(table.num_rows, dtype=bool)
        encoded = np.ones(table.num_rows, dtype=bool)  # no predictor missing
        for name in (*self.columns, *unread):
            column = table.column(name)
            labelled = (
                isinstance(summary.columns[name], CategoricalSummary | LabelSummary)
                if name in summary.columns
                else is_categorical_type(column.type)
            )
            if labelled:
                absent = (
                    np.asarray(to_numpy(column.is_null()), dtype=bool)
                    if column.null_count
                    else np.zeros(len(column), dtype=bool)
                )
                if pa.types.is_floating(column.type):
                    absent |= np.isnan(numeric_values(column))
            else:
                absent = ~np.isfinite(numeric_values(column))
            if self.missing == "raise" and absent.any():
                row = int(np.flatnonzero(absent)[0])
                raise MissingDataError.at(
                    partition.key, partition.locate(row), name, column[row].as_py()
                )
            if name in self.predictors:
                encoded &= ~absent
            if name in self.columns:
                complete &= ~absent
        learned: dict[str, dict[str, Any]] = {}
        if self.stateful_factors and table.num_rows:
            # Every row, not only the complete ones: formulaic, patsy and R learn a
            # transform's state before dropping rows that miss other columns; the
            # learning transform itself skips the rows its own input is missing in.
            learned = _learn_transform_sums(self.stateful_factors, table.to_pandas())
        counts = PartitionCounts(
            key=partition.key,
            rows=table.num_rows,
            complete=int(complete.sum()),
            skipped=result.skipped_rows,
        )
        return SchemaStatistic(
            summary=summary,
            learned=learned,
            partitions=(counts,),
            incomplete_only=self._incomplete_only(table, summary, encoded),
        )

    def _incomplete_only(
        self, table: pa.Table, summary: TableSummary, encoded: np.ndarray
    ) -> dict[str, frozenset[Any]]:
        """Per categorical column, the levels this partition has only in rows that miss a
        predictor (``encoded`` is false there)."""
        if encoded.all():
            return {}
        mask = pa.array(encoded)
        found: dict[str, frozenset[Any]] = {}
        for name, column in summary.columns.items():
            if not isinstance(column, CategoricalSummary):
                continue
            kept = CategoricalSummary.of(
                table.column(name).filter(mask), name=name, max_levels=self.max_levels
            )
            only = _seen_levels(summary, name) - kept.levels.keys()
            if only:
                found[name] = frozenset(only)
        return found


@dataclass(frozen=True)
class OrderStatistics:
    """What an order-statistics pass merges: per spline call, per request, the values
    of a histogram bin or the histogram of its next bits."""

    found: dict[str, dict[Any, Any]]

    def merge(self, other: OrderStatistics) -> OrderStatistics:
        """Both operands' gathered values and histograms, request by request."""
        from shardfit.design.transforms import merge_found

        return OrderStatistics(merge_found(self.found, other.found))


@dataclass(frozen=True, eq=False)
class _FactorPass:
    """A pass after the schema pass (runs on a worker): formulaic evaluates the
    stateful factors on a partition's rows, as in the schema pass (so ``x`` is exactly
    the values formulaic sees), with transforms that record in their state, starting
    from ``state``, what the pass gathers."""

    columns: tuple[str, ...]
    stateful_factors: tuple[str, ...]
    state: dict[str, dict[str, Any]]

    def fingerprint(self) -> str:
        """What the pass computes: the columns read, the factors and the state."""
        return repr((self.columns, self.stateful_factors, self.state))

    def _evaluated_state(
        self, context: dict[str, Any], partition: Partition, purpose: str
    ) -> dict[str, Any] | None:
        """The transform state formulaic leaves after evaluating the factors on the
        partition with ``context``'s transforms, or ``None`` for a partition without
        rows."""
        from formulaic import model_matrix

        table = partition.read(list(self.columns)).table
        if not table.num_rows:
            return None
        try:
            matrix = model_matrix(
                "0 + " + " + ".join(self.stateful_factors),
                table.to_pandas(),
                context=context,
                transform_state={key: dict(value) for key, value in self.state.items()},
                na_action="ignore",
            )
        except Exception as error:
            raise DesignError(
                f"cannot evaluate {self.stateful_factors} in partition {partition.key} to "
                f"{purpose}: {error}"
            ) from error
        return dict(matrix.model_spec.transform_state)


@dataclass(frozen=True, eq=False)
class OrderStatisticTask(_FactorPass):
    """Gather, on one partition, what the knot searches of ``bs(x, df=...)`` request
    (the values of a histogram bin, or the histogram of its next bits)."""

    def __call__(self, partition: Partition) -> OrderStatistics:
        from shardfit.design.transforms import found_in, select_context

        state = self._evaluated_state(select_context(), partition, "find the spline knots")
        return OrderStatistics({} if state is None else found_in(state))


def _factor_columns(stateful_factors: tuple[str, ...], columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns the stateful factors read (all ``columns`` if none is named)."""
    from shardfit.design.formula import analyze_formula

    variables = analyze_formula("0 + " + " + ".join(stateful_factors)).variables
    return tuple(name for name in columns if name in variables) or columns


def _knot_searches(
    learned: dict[str, dict[str, Any]],
    stateful_factors: tuple[str, ...],
    columns: tuple[str, ...],
    source: Source,
    *,
    backend: Any,
    workers: int | None,
    progress: bool,
) -> dict[str, Any]:
    """The finished order-statistic searches of every ``bs(x, df=...)`` call: one
    pass, or a few where a histogram bin holding a needed rank is crowded (see
    :mod:`shardfit.design.quantiles`). No pass when no knots are quantiles."""
    from shardfit.design.transforms import select_state, spline_searches

    searches = spline_searches(learned)
    if not searches:
        return {}
    read = _factor_columns(stateful_factors, columns)
    while not all(search.done for search in searches.values()):
        task = OrderStatisticTask(read, stateful_factors, select_state(learned, searches))
        result = run_pass(
            task,
            source,
            backend=backend,
            workers=workers,
            progress=progress,
            pass_name="knots",
            allreduce=True,  # under MPI every rank needs the learned design
        )
        for key, search in searches.items():
            if not search.done:
                search.update(result.found.get(key, {}))
    return searches


@dataclass(frozen=True)
class MomentSums:
    """What a moments pass merges: per call, a count and exact sums (as integers)."""

    found: dict[str, dict[str, Any]]

    def merge(self, other: MomentSums) -> MomentSums:
        """Both operands' counts and sums added, call by call (exact integers)."""
        from shardfit.design.basis_moments import merge_moments

        return MomentSums(merge_moments(self.found, other.found))


@dataclass(frozen=True, eq=False)
class MomentTask(_FactorPass):
    """Sum, on one partition, what the pending ``poly()`` recurrences and spline
    centering constraints request."""

    def __call__(self, partition: Partition) -> MomentSums:
        from shardfit.design.basis_moments import moment_sums_in, moments_context

        state = self._evaluated_state(
            moments_context(), partition, "learn the orthogonal polynomials or spline constraints"
        )
        return MomentSums({} if state is None else moment_sums_in(state))


def _moment_passes(
    final: dict[str, dict[str, Any]],
    stateful_factors: tuple[str, ...],
    columns: tuple[str, ...],
    source: Source,
    *,
    backend: Any,
    workers: int | None,
    progress: bool,
) -> dict[str, dict[str, Any]]:
    """``final`` with every ``poly()`` basis and spline centering constraint learned:
    one pass per degree of the highest ``poly()`` (the calls advance together; a
    centering constraint rides on the first pass). No pass when none is pending."""
    from shardfit.design.basis_moments import advance_moments, pending_moments

    pending = pending_moments(final)
    if not pending:
        return final
    read = _factor_columns(stateful_factors, columns)
    while pending:
        task = MomentTask(read, stateful_factors, pending)
        result = run_pass(
            task,
            source,
            backend=backend,
            workers=workers,
            progress=progress,
            pass_name="moments",
            allreduce=True,  # under MPI every rank needs the learned design
        )
        final = advance_moments(final, result.found)
        pending = pending_moments(final)
    return final


def _merged_state(
    left: dict[str, dict[str, Any]], right: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    if not left and not right:
        return {}
    from shardfit.design.transforms import merge_learned_state

    return merge_learned_state(left, right)


def _learn_transform_sums(factors: tuple[str, ...], frame: pd.DataFrame) -> dict[str, Any]:
    from formulaic import model_matrix

    from shardfit.design.transforms import learning_context

    formula = "0 + " + " + ".join(factors)
    try:
        matrix = model_matrix(formula, frame, context=learning_context(), na_action="ignore")
    except Exception as error:
        raise DesignError(f"cannot evaluate {factors} to learn their state: {error}") from error
    return dict(matrix.model_spec.transform_state)


@dataclass(frozen=True)
class LearnedDesign:
    """A design spec and what the schema pass saw.

    Attributes
    ----------
    spec : DesignSpec
        The learned design.
    summary : TableSummary
        Summaries of the columns the design reads (only the categorical ones, and
        no row counts when none is categorical, with ``summaries="levels"``).
    partitions : tuple of PartitionCounts
        Per partition: rows read, rows complete, rows skipped (complete over the
        summarized columns). With ``summaries="levels"`` on a session, consecutive
        Parquet row groups are summarized together (about one task per worker), so
        these are the joined partitions.
    summaries : {"all", "levels"}
        What the schema pass summarized (see :func:`learn_design`).
    """

    spec: DesignSpec
    summary: TableSummary
    partitions: tuple[PartitionCounts, ...]
    summaries: Summaries = "all"

    @property
    def rows(self) -> int:
        """Rows read."""
        return self.summary.rows

    @property
    def rows_complete(self) -> int | None:
        """Rows with every value the design needs (``None`` when only levels were
        learned: the pass that encodes counts them)."""
        if self.summaries == "levels":
            return None
        return sum(p.complete for p in self.partitions)


def schema_pass(
    source: Source | Any,
    columns: tuple[str, ...] | None = None,
    *,
    categorical: frozenset[str] = frozenset(),
    identifiers: frozenset[str] = frozenset(),
    stateful_factors: tuple[str, ...] = (),
    max_levels: int = DEFAULT_MAX_LEVELS,
    missing: Literal["drop", "raise"] = "drop",
    backend: Any = None,
    workers: int | None = None,
    progress: bool = False,
    predictors: tuple[str, ...] = (),
) -> SchemaStatistic:
    """Summarize ``columns`` (all when ``None``) of ``source`` in one pass.

    Columns of a label type, and those in ``categorical``, get level counts; the
    rest counts, missing, extremes, mean and spread. Summaries merge in partition
    order. ``stateful_factors`` are formula expressions whose ``center``/``scale``
    sums are learned on every row where their input is present (as formulaic and
    statsmodels learn them, before rows missing other columns are dropped).
    ``predictors`` names the columns whose missing values drop a row from every
    design (read too if not in ``columns``): the levels only such rows have are
    recorded in ``incomplete_only``.
    """
    source = as_source(source)
    columns = tuple(source.columns) if columns is None else tuple(columns)
    _check_columns_exist(columns, source)
    task = SchemaTask(
        columns=columns,
        categorical=categorical,
        identifiers=identifiers,
        max_levels=max_levels,
        stateful_factors=stateful_factors,
        missing=missing,
        dictionaries=frozenset(
            item.name for item in source.schema if pa.types.is_dictionary(item.type)
        ),
        predictors=tuple(predictors) if missing == "drop" else (),
    )
    return run_pass(
        task,
        source,
        backend=backend,
        workers=workers,
        progress=progress,
        pass_name="schema",
        allreduce=True,  # under MPI every rank needs the learned design
    )


def learn_design(
    formula: str | None,
    source: Source | Any,
    *,
    x_columns: tuple[str, ...] | None = None,
    response: str | None = None,
    sparse_x: tuple[str, ...] = (),
    x_constant: str | None = None,
    find_constant: bool = True,
    weights: str | None = None,
    offset: str | None = None,
    exposure: str | None = None,
    extra_columns: tuple[str, ...] = (),
    missing: Literal["drop", "raise"] = "drop",
    max_levels: int = DEFAULT_MAX_LEVELS,
    summaries: Summaries = "all",
    backend: Any = None,
    workers: int | None = None,
    progress: bool = False,
    needs_response: bool = False,
) -> LearnedDesign:
    """Run the schema pass over ``source`` and learn the design of ``formula``.

    Parameters
    ----------
    formula : str or None
        A formulaic formula such as ``"y ~ x1 + np.log(x2) + C(g) + x1:x3"``.
        Formula strings are code: they are evaluated as Python, so never pass one
        from an untrusted source. ``None`` for a plain-columns design given by
        ``x_columns`` and ``response``.
    source : Source, path, glob, pandas.DataFrame or pyarrow.Table
        The data.
    x_columns, response : optional
        The predictor columns and the response column of a plain-columns design.
    sparse_x : tuple of str
        Those of ``x_columns`` that are mostly zeros (see :class:`DesignSpec`).
    x_constant, find_constant : optional
        A plain-columns design's known constant column; with ``find_constant=False``
        (the columns are known: a design store) no summary pass looks for one, and
        the schema pass is skipped unless a column holds labels.
    weights, offset, exposure : str, optional
        Columns of per-row weights, offsets, and exposures (``log(exposure)`` is
        added to the offset).
    extra_columns : tuple of str
        Columns read with the design and checked for missing values but not
        encoded (cluster identifiers); :class:`DesignChunk.extras` carries them.
    missing : {"drop", "raise"}
        Drop rows with a missing or non-finite value in any column the design reads
        (counted per partition), or raise naming the first one's location.
    max_levels : int
        The most distinct levels a categorical column may have.
    summaries : {"all", "levels"}
        ``"all"`` summarizes every column the design reads (counts, missing,
        extremes, means, levels, rows with every value present). ``"levels"`` reads
        only the categorical columns, which is all a formula without stateful
        transforms needs: a fit that encodes every row anyway counts missing values
        itself, and a least-squares fit then reads each numeric column once instead
        of twice. Formulas with ``center``/``scale``/``standardize`` and
        plain-column designs always get ``"all"``.
    backend, workers, progress
        Where the pass runs (see :func:`shardfit.engine.run_pass`).
    needs_response : bool
        The caller fits a model: a formula without a left-hand side is refused
        here, before any pass, rather than failing in every partition's task.

    Returns
    -------
    LearnedDesign
    """
    source = as_source(source)
    if missing not in ("drop", "raise"):
        raise ValueError(f"The 'missing' parameter must be 'drop' or 'raise'. Got {missing!r}.")
    if max_levels < 1:
        raise ValueError(f"The 'max_levels' parameter must be >= 1. Got {max_levels!r}.")
    if summaries not in ("all", "levels"):
        raise ValueError(f"The 'summaries' parameter must be 'all' or 'levels'. Got {summaries!r}.")
    extra = [c for c in (weights, offset, exposure) if c is not None]
    identifiers = [c for c in extra_columns if c not in extra]
    if formula is not None:
        from shardfit.design.formula import analyze_formula

        info = analyze_formula(formula)
        if needs_response and not info.has_response:
            raise DesignError(
                f"formula {formula!r} has no response: a model needs one on the left of "
                "'~', as in 'y ~ x1 + x2'"
            )
        formula_columns = _formula_columns(info, source)
        categorical = info.categorical_calls & set(formula_columns)
        stateful = info.stateful_factors
    else:
        if not x_columns:
            raise DesignError("a design needs a formula or x_columns")
        formula_columns = [*x_columns, *([response] if response else [])]
        categorical = frozenset()
        stateful = ()
    raw_columns = tuple(dict.fromkeys([*formula_columns, *extra, *identifiers]))
    _check_columns_exist(raw_columns, source)
    if (formula is None and find_constant) or stateful:
        summaries = "all"  # a plain design's constant column is found from min and max
    types = dict(zip(source.schema.names, source.schema.types))
    numeric_uses = info.numeric_uses if formula is not None else frozenset()
    _check_no_temporal(
        [c for c in formula_columns if c not in categorical or c in numeric_uses], types, source
    )
    # A column of numbers both in C() and read as a number (C(k):x + k): formulaic
    # encodes the bare k as a number on the whole frame, so it gets values, not levels.
    numeric_levels = tuple(
        name
        for name in formula_columns
        if name in categorical and name in numeric_uses and not is_categorical_type(types[name])
    )
    for name in extra:
        if is_categorical_type(types[name]):
            raise DesignError(f"column {name!r} holds labels; weights/offset/exposure need numbers")
    responses = [response] if formula is None and response else []
    if formula is not None and info.has_response:
        factors = (str(f).strip("`") for term in info.parsed.lhs for f in term.factors)
        responses = [name for name in factors if name in types]
    for name in responses:
        if is_categorical_type(types[name]) and name not in categorical:
            raise DesignError(
                f"the response column {name!r} holds labels ({types[name]}), not numbers; "
                "code it as numbers (a binomial response as 0/1) before fitting. If it is "
                "numbers but for a few tokens that made a reader type it as text, give its "
                f"type (column_types={{{name!r}: 'float64'}} when reading a CSV, "
                f"--column-type {name}=float64 on the command line: the reader then names "
                "the line of each such token) or declare them missing (null_values=[...], "
                "--null-values)"
            )
    if summaries == "levels":
        summarized = tuple(
            name
            for name in formula_columns
            if name in categorical or is_categorical_type(types[name])
        )
    else:
        summarized = raw_columns
    if not summarized:  # nothing to learn: skip the pass (rows are counted when encoding)
        statistic = SchemaStatistic(TableSummary(rows=0, columns={}, partitions=0), {}, ())
    else:
        statistic = schema_pass(
            _levels_source(source, backend) if summaries == "levels" else source,
            summarized,
            categorical=frozenset(categorical),
            identifiers=frozenset(c for c in identifiers if c not in formula_columns),
            stateful_factors=stateful,
            max_levels=max_levels,
            missing=missing,
            backend=backend,
            workers=workers,
            progress=progress,
            # formulaic finds levels in the rows it keeps: a level only rows missing a
            # predictor have gets no column (a levels-only pass reads those columns too).
            # Rows missing only the response are not counted out: predictions and design
            # stores encode them.
            predictors=tuple(name for name in formula_columns if name not in responses),
        )
    searches = (
        _knot_searches(
            statistic.learned,
            stateful,
            tuple(formula_columns),
            source,
            backend=backend,
            workers=workers,
            progress=progress,
        )
        if stateful
        else {}
    )
    summary = statistic.summary
    levels: dict[str, list[Any]] = {}
    numeric_fill: dict[str, float] = {}
    for name in formula_columns:
        column = summary.columns.get(name)  # absent: numeric, not summarized ("levels")
        if isinstance(column, CategoricalSummary):
            # formulaic finds levels in the rows it keeps: a level only rows missing a
            # value have gets no column (it would be all zeros, and alias).
            dropped = statistic.incomplete_only.get(name, frozenset())
            levels[name] = [
                level for level in column.sorted_levels() if level not in dropped
            ] or column.sorted_levels()
            if name not in categorical and column.declared is None:
                _warn_numbers_read_as_text(name, column)
        elif isinstance(column, NumericSummary) and column.count:
            numeric_fill[name] = column.mean
    spec = DesignSpec(
        formula=formula,
        x_columns=tuple(x_columns or ()) if formula is None else (),
        response=response if formula is None else None,
        levels=levels,
        numeric_fill=numeric_fill,
        transform_state=(
            _moment_passes(
                _finalized(statistic.learned, searches),
                stateful,
                tuple(formula_columns),
                source,
                backend=backend,
                workers=workers,
                progress=progress,
            )
            if stateful
            else {}
        ),
        column_names=tuple(x_columns or ()) if formula is None else (),
        response_names=(response,) if (formula is None and response) else (),
        weights=weights,
        offset=offset,
        exposure=exposure,
        raw_columns=raw_columns,
        formula_columns=tuple(formula_columns),
        extra_columns=tuple(extra_columns),
        numeric_levels=numeric_levels,
        sparse_x=tuple(sparse_x) if formula is None else (),
        x_constant=x_constant if formula is None else None,
    )
    if formula is not None:
        spec = spec.with_formulaic()
    return LearnedDesign(
        spec=spec, summary=summary, partitions=statistic.partitions, summaries=summaries
    )


def _warn_numbers_read_as_text(name: str, column: CategoricalSummary) -> None:
    """Warn when a text column that enters the formula as a categorical is made of
    numbers but for a few tokens: a reader typed it as text because of them (pyarrow
    and pandas do), and the fit would get a dummy column per number."""
    others = stray_tokens(column.levels)
    if not others:
        return
    shown = describe_tokens(others, column.levels)
    warnings.warn(
        f"column {name!r} was read as text, so it enters the formula as a categorical "
        f"with {len(column.levels):,} levels, but {len(column.levels) - len(others):,} of "
        f"them are numbers; the others: {shown}. If the column is numeric, declare those "
        "tokens missing (null_values=[...] when reading a CSV, --null-values on the "
        f"command line) or give its type (column_types={{{name!r}: 'float64'}}); write "
        f"C({name}) to keep it categorical without this warning.",
        UserWarning,
        stacklevel=2,
    )


def _levels_source(source: Source, backend: Any) -> Source:
    """The source the levels-only schema pass reads: consecutive Parquet row groups
    joined into about one partition per worker. Its tasks read a column or two per
    row group, too little to repay a task each (dispatch, result, merge); the levels
    learned are the same. Other sources are read as they are."""
    from shardfit.data.parquet import coalesce_partitions

    workers = getattr(backend, "nworkers", None)
    if not isinstance(workers, int) or workers < 1:
        return source
    partitions = coalesce_partitions(source.partitions, workers)
    if len(partitions) == len(source.partitions):
        return source
    return Source(source.name, partitions, source.schema, source.meta)


def _finalized(
    learned: dict[str, dict[str, Any]], searches: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    from shardfit.design.transforms import finalize_state

    return finalize_state(learned, searches)


def _formula_columns(info: FormulaInfo, source: Source) -> list[str]:
    from formulaic.transforms import TRANSFORMS

    available = set(source.columns)
    columns = [name for name in source.columns if name in info.variables]
    unknown = sorted(
        name for name in info.variables if name not in available and name not in TRANSFORMS
    )
    functions = [name for name in unknown if name in info.functions]
    if functions:
        raise DesignError(
            f"formula {info.formula!r} calls {functions}, which are neither functions "
            f"formulaic knows (its transforms {sorted(TRANSFORMS)}, NumPy as np.<name>) "
            f"nor columns of {source.name!r}; compute the column before fitting"
        )
    if unknown:
        raise DesignError(
            f"formula {info.formula!r} uses {unknown}, which are not columns of "
            f"{source.name!r} (columns: {source.columns})"
        )
    return columns


def _check_no_temporal(columns: list[str], types: dict[str, pa.DataType], source: Source) -> None:
    """Refuse dates, times and durations in a design before any data is read: as
    numbers their unit (days? microseconds since 1970?) would silently set the scale of
    the coefficient. ``C(column)`` (levels) is allowed."""
    for name in columns:
        kind = types.get(name)
        if kind is not None and pa.types.is_temporal(kind):
            raise DesignError(
                f"column {name!r} of {source.name!r} is a {kind} column; a design needs "
                "numbers: convert it first (for example days since a start date, or its "
                f"year), or write C({name}) to use its values as levels"
            )


def _check_columns_exist(columns: tuple[str, ...], source: Source) -> None:
    missing = [name for name in columns if name not in source.columns]
    if missing:
        raise DesignError(
            f"columns {missing} are not in {source.name!r} (columns: {source.columns})"
        )
