"""The worker side of summary-statistic models: read a partition, evaluate the model's
compiled ``partial_sumstats`` (value, Jacobian or a vmapped scan) and return a
statistic that merges by addition.

JAX is imported here only when a task runs (and by :func:`require_jax`), with 64-bit
floats enabled, so that workers of other estimators never load it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shardfit.data.partition import Partition
from shardfit.errors import DesignError, MissingDataError

__all__ = ["SumstatsPartial", "SumstatsTask", "cached", "describe", "require_jax"]

_JAX_MISSING = (
    'differentiable summary-statistic models need JAX: pip install "shardfit[jax]" '
    '(or pip install "jax>=0.4.30")'
)
# Compiled per-partition functions, by (model token, what they compute). A worker that
# serves many passes of one fit (a session) compiles once per partition shape.
_COMPILED: dict[tuple[str, str], Callable[..., Any]] = {}
_MAX_COMPILED = 64


def cached(key: tuple[str, str], build: Callable[[], Any]) -> Any:
    """``build()`` once per ``key`` in this process (compiled JAX functions)."""
    found = _COMPILED.get(key)
    if found is None:
        if len(_COMPILED) >= _MAX_COMPILED:
            _COMPILED.clear()
        found = _COMPILED[key] = build()
    return found


def require_jax() -> tuple[Any, Any]:
    """Import JAX with 64-bit floats enabled and return ``(jax, jax.numpy)``.

    Raises
    ------
    ImportError
        JAX is not installed; the message says how to install it.
    """
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as error:  # pragma: no cover - exercised only without JAX
        raise ImportError(_JAX_MISSING) from error
    # float64 everywhere: sums over many partitions in float32 would lose digits.
    jax.config.update("jax_enable_x64", True)
    return jax, jnp


@dataclass
class SumstatsPartial:
    """Summed statistics (and their Jacobian) of some partitions.

    ``merge`` adds them elementwise: associative (up to rounding, which the engine's
    fixed merge tree makes reproducible) and refuses operands of different shapes.
    """

    values: np.ndarray
    jac: np.ndarray | None
    nrows: int
    #: With ``sumstats_has_aux``: each partition's aux (NumPy leaves), in partition
    #: order. Aux is not summed: merging concatenates (the merge tree keeps the left
    #: operand's partitions first).
    aux: list[Any] | None = None

    def merge(self, other: SumstatsPartial) -> SumstatsPartial:
        if self.values.shape != other.values.shape:
            raise ValueError(
                f"cannot merge summary statistics of shapes {self.values.shape} and "
                f"{other.values.shape}: partial_sumstats must return one shape for every "
                "partition"
            )
        jac = None if self.jac is None or other.jac is None else self.jac + other.jac
        aux = None if self.aux is None or other.aux is None else self.aux + other.aux
        return SumstatsPartial(self.values + other.values, jac, self.nrows + other.nrows, aux)

    @property
    def nbytes(self) -> int:
        return int(self.values.nbytes + (0 if self.jac is None else self.jac.nbytes))


def _read(partition: Partition, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """The partition's columns as float64 arrays; nulls and text are refused by name."""
    table = partition.read(list(columns)).table
    data: dict[str, np.ndarray] = {}
    for name in columns:
        column = table.column(name)
        if column.null_count:
            values = column.to_pylist()
            row = next(i for i, value in enumerate(values) if value is None)
            # Not MissingDataError.at: its hint (missing='drop') names an option that
            # summary-statistic models do not have.
            raise MissingDataError(
                f"missing value in partition {partition.key} ({partition.locate(row)}), "
                f"column {name!r}: null (NaN in a pandas float column is read as null); "
                "summary-statistic models have no missing= option: drop or fill such "
                "rows in the data before building the model"
            )
        try:
            data[name] = np.asarray(column.to_numpy(), dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise DesignError(
                f"column {name!r} of partition {partition.key} is not numeric "
                f"({column.type}): summary-statistic models read float64 columns"
            ) from error
    return data


def _compile(model: Any, mode: str) -> Callable[..., Any]:
    """The jitted per-partition function of ``model`` for ``mode`` (cached per process)."""
    return cached((model._token, mode), lambda: _build(model, mode))  # type: ignore[no-any-return]


class _StatisticsError(Exception):
    """``partial_sumstats`` returned something that cannot be summed over partitions."""


def describe(value: Any) -> str:
    """``value`` in words for an error: an array by its shape (not a tracer's type)."""
    shape = getattr(value, "shape", None)
    if shape is not None:
        return f"an array of shape {tuple(shape)}"
    if isinstance(value, tuple):
        return f"a tuple of {len(value)} items"
    return f"a {type(value).__name__}"


def _checked(stats: Callable[..., Any], has_aux: bool = False) -> Callable[..., Any]:
    """``stats`` that refuses, when traced, outputs that would be summed wrongly.

    Two mistakes would otherwise go unnoticed: a tuple or dict of statistics (NumPy
    turns it into one array with the points of a scan on the wrong axis), and
    per-row values instead of sums (partitions of equal size add them row by row,
    without any error). The checks run once per compilation, not per call.

    The returned function always gives ``(statistics, aux)``: with ``has_aux`` (the
    model's ``sumstats_has_aux``) ``stats`` must return exactly such a pair, whose
    first item is one array (only it is checked and summed; ``aux`` is any pytree);
    without it, ``aux`` is ``None`` and a tuple is refused as above.
    """
    jax, jnp = require_jax()

    def split(out: Any) -> tuple[Any, Any]:
        if not has_aux:
            return out, None
        if not isinstance(out, tuple) or len(out) != 2:
            raise _StatisticsError(
                f"partial_sumstats returned {describe(out)}, not a pair: with "
                "sumstats_has_aux = True it must return (sumstats, aux)"
            )
        return out

    def checked(params: Any, data: dict[str, Any]) -> tuple[Any, Any]:
        out, aux = split(stats(params, data))
        if not jax.tree_util.treedef_is_leaf(jax.tree_util.tree_structure(out)):
            hint = (
                "(declare sumstats_has_aux = True on the model to return (sumstats, aux))"
                if isinstance(out, tuple) and not has_aux
                else ""
            )
            raise _StatisticsError(
                f"partial_sumstats returned a {type(out).__name__}, not one array "
                "of statistics: return a single jax.Array (jnp.stack or jnp.concatenate the "
                f"statistics) {hint}".rstrip()
            )
        out = jnp.asarray(out)
        if data:
            rows = next(iter(data.values())).shape[0]
            # The same function on one more row: statistics summed over the rows keep
            # their shape; a shape that follows the row count is per-row values.
            bigger = {k: jax.ShapeDtypeStruct((rows + 1,), v.dtype) for k, v in data.items()}
            try:
                shape = jax.eval_shape(
                    lambda p, d: jnp.asarray(split(stats(p, d))[0]),
                    jax.ShapeDtypeStruct(params.shape, params.dtype),
                    bigger,
                ).shape
            except Exception:  # it may need exactly this row count (aux): no verdict
                shape = out.shape
            if shape != out.shape:
                raise _StatisticsError(
                    f"partial_sumstats returned shape {out.shape} for {rows} rows but "
                    f"{shape} for {rows + 1}: its shape follows the number of rows, so "
                    "these are per-row values, not statistics that add up over "
                    "partitions; sum over the rows (of any fixed shape)"
                )
        return out, aux

    return checked


def _build(model: Any, mode: str) -> Callable[..., Any]:
    jax, _ = require_jax()
    stats = _checked(model.partial_sumstats, bool(getattr(model, "sumstats_has_aux", False)))
    if mode == "value":
        return jax.jit(stats)
    if mode == "scan":
        return jax.jit(jax.vmap(stats, in_axes=(0, None)))

    def value_and_jac(params: Any, data: Any) -> Any:
        # Forward mode costs one sweep per parameter, reverse mode one per statistic:
        # take the cheaper (the shapes are static under jit).
        nstats = jax.eval_shape(stats, params, data)[0].size

        def both(p: Any) -> Any:
            # aux rides along undifferentiated (has_aux), as in jax.jacfwd(has_aux=True)
            value, aux = stats(p, data)
            return value, (value, aux)

        diff = jax.jacfwd if params.size <= nstats else jax.jacrev
        jac, (value, aux) = diff(both, has_aux=True)(params)
        return value, jac, aux

    return jax.jit(value_and_jac)


def _non_finite_data(data: dict[str, np.ndarray], partition: Partition) -> str | None:
    """Where the first NaN or infinity of the columns read is, for an error message
    (``None`` when every value is finite).

    A NaN stored as a value (Parquet, Arrow, NumPy; not a null, which :func:`_read`
    refuses by name) reaches ``partial_sumstats`` and makes its statistics NaN: the
    message then names the column and row to fix instead of the model.
    """
    for name, values in data.items():
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argmax(bad))
            return (
                f"column {name!r} holds {float(values[row])!r} at {partition.locate(row)} "
                f"({int(bad.sum())} non-finite values in this partition)"
            )
    return None


def _check_finite(
    array: np.ndarray,
    what: str,
    partition: Partition,
    data: dict[str, np.ndarray] | None = None,
) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), array.shape) if array.ndim else ()
        where = None if data is None else _non_finite_data(data, partition)
        cause = (
            f"{where}: drop or fill such rows in the data before building the model, or "
            "mask them in partial_sumstats"
            if where
            else "check partial_sumstats and the data"
        )
        raise DesignError(
            f"non-finite {what} in partition {partition.key}: {int(bad.sum())} of "
            f"{array.size} values (first at index {tuple(int(i) for i in first)}: "
            f"{array[first]!r}); {cause}"
        )


@dataclass(frozen=True)
class SumstatsTask:
    """Runs on a worker: one partition's statistics (``mode``: value, jac or scan).

    ``model`` is a :class:`~shardfit.models.sumstats.SumstatsModel` (it travels without
    its source); ``params`` is one point, or the points of a scan.
    """

    model: Any
    params: np.ndarray
    mode: str

    def __call__(self, partition: Partition) -> SumstatsPartial:
        _, jnp = require_jax()
        raw = _read(partition, self.model.columns)
        data = {name: jnp.asarray(col) for name, col in raw.items()}
        nrows = len(next(iter(data.values()))) if data else 0
        try:
            out = _compile(self.model, self.mode)(jnp.asarray(self.params), data)
        except _StatisticsError as error:
            raise DesignError(f"partition {partition.key}: {error}") from None
        # Aux goes back as NumPy (picklable, no JAX needed to merge it), one entry per
        # partition; None when the model declares none.
        aux = None
        if getattr(self.model, "sumstats_has_aux", False):
            jax, _ = require_jax()
            aux = [jax.tree_util.tree_map(np.asarray, out[-1])]
        values = np.asarray(out[0], dtype=np.float64)
        if self.mode == "jac":
            jac = np.asarray(out[1], dtype=np.float64)
            _check_finite(values, "summary statistics", partition, raw)
            _check_finite(jac, "Jacobian of the summary statistics", partition, raw)
            return SumstatsPartial(values, jac, nrows, aux)
        if self.mode == "value":
            _check_finite(values, "summary statistics", partition, raw)
        elif values.size and (~np.isfinite(values.reshape(len(self.params), -1))).any(axis=1).all():
            # A scan keeps non-finite values: those points simply get a non-finite loss.
            # But when every point has a non-finite statistic here and the data hold a
            # NaN, the data are the cause, and every loss of the scan would be NaN.
            where = _non_finite_data(raw, partition)
            if where is not None:
                raise DesignError(
                    f"non-finite summary statistics at every point of the scan in "
                    f"partition {partition.key}: {where}: drop or fill such rows in the "
                    "data before building the model, or mask them in partial_sumstats"
                )
        return SumstatsPartial(values, None, nrows, aux)
