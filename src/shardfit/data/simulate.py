"""Simulated data sets with known generating parameters, written chunk by chunk.

Three models, each with a default formula and its true coefficients named as
formulaic names the design columns, so fits can be checked against the truth:

``linreg``
    ``y = 1.5 + x·β + effect(g10) + effect(g200) + ε`` with ``ε ~ N(0, 1/w)``: 20
    standard-normal columns ``x1``–``x20`` (``x2`` correlated with ``x1``, ``x4`` with
    ``x3``; ``x16``–``x20`` have no effect), a 10-level categorical ``g10``
    (``"a"``–``"j"``), a 200-level categorical ``g200`` (``"L000"``–``"L199"``, with
    Zipf-like frequencies) and a positive weight ``w`` (uniform on 0.5–2), so weighted
    least squares with weights ``w`` is the right model. The default design has
    1 + 20 + 9 + 199 = 229 columns.
``logit``
    ``y ~ Bernoulli(sigmoid(η))`` with ``x1, x2, x3 ~ N(0, 1)`` and η over the
    intercept, the three variables, their pairwise products and their squares, with
    coefficients stepping down evenly from 0.9 (intercept) to 0.1 (``x3²``). The
    products and squares are also written as columns (``x1_x2`` … ``x3_sq``) for
    learners that take columns rather than formulas.
``poisson``
    ``y ~ Poisson(exposure · exp(η))`` with four standard-normal columns ``x1``–``x4``
    (``x4`` has no effect), a 5-level categorical ``region`` and a positive
    ``exposure`` (uniform on 0.5–3); fit with offset ``log(exposure)``.

Row ``i`` depends only on the seed and ``i``: rows are drawn in blocks of
:data:`RNG_BLOCK_ROWS`, block ``b`` of the ``k``-th kind in :data:`KINDS` from
``SeedSequence(seed, spawn_key=(k, b))``. So the data do not depend on ``chunk_rows``,
a short file is a prefix of a long one, and the kinds draw independent streams.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from shardfit.data.convert import (
    atomic_output,
    delimiter_for,
    infer_format,
    open_table_writer,
    progress_bar,
)

__all__ = [
    "KINDS",
    "RNG_BLOCK_ROWS",
    "default_formula",
    "simulate",
    "simulate_table",
    "true_params",
]

Kind = Literal["linreg", "logit", "poisson"]

#: Rows per random-number block; fixed so that the data never depend on chunking.
RNG_BLOCK_ROWS = 65_536

_Columns = dict[str, np.ndarray | pa.Array]


@dataclass(frozen=True)
class _Model:
    """A data-generating model: how to draw one block, its formula and true values."""

    draw: Callable[[np.random.Generator, int], _Columns]
    schema: pa.Schema
    formula: str
    params: dict[str, float]


def _levels_take(levels: pa.Array, codes: np.ndarray) -> pa.Array:
    """Turn integer codes into a string array of level names."""
    return levels.take(pa.array(codes, type=pa.int32()))


# --- linreg ---------------------------------------------------------------------------

_LIN_INTERCEPT = 1.5
_LIN_SIGMA = 1.0
# β_j alternates in sign and grows with j up to x15; x16..x20 are noise columns.
_LIN_BETA = np.array([(-1) ** (j + 1) * 0.1 * j if j <= 15 else 0.0 for j in range(1, 21)])
_G10_LEVELS = pa.array([chr(ord("a") + k) for k in range(10)])
_G10_PROB = np.arange(15, 5, -1) / np.arange(15, 5, -1).sum()
_G10_EFFECT = np.round(0.6 * np.sin(np.arange(10)), 4)
_G200_LEVELS = pa.array([f"L{k:03d}" for k in range(200)])
_G200_PROB = (1 / (np.arange(200) + 10)) / (1 / (np.arange(200) + 10)).sum()
_G200_EFFECT = np.round(0.8 * np.sin(0.37 * np.arange(200)), 4)


def _draw_linreg(rng: np.random.Generator, n: int) -> _Columns:
    x = rng.standard_normal((20, n))
    x[1] = 0.6 * x[0] + 0.8 * x[1]
    x[3] = 0.5 * x[2] + math.sqrt(0.75) * x[3]
    g10 = rng.choice(10, size=n, p=_G10_PROB)
    g200 = rng.choice(200, size=n, p=_G200_PROB)
    w = rng.uniform(0.5, 2.0, size=n)
    noise = rng.standard_normal(n) * (_LIN_SIGMA / np.sqrt(w))
    y = _LIN_INTERCEPT + _LIN_BETA @ x + _G10_EFFECT[g10] + _G200_EFFECT[g200] + noise
    columns: _Columns = {f"x{j + 1}": x[j] for j in range(20)}
    columns["g10"] = _levels_take(_G10_LEVELS, g10)
    columns["g200"] = _levels_take(_G200_LEVELS, g200)
    columns["w"] = w
    columns["y"] = y
    return columns


def _linreg_params() -> dict[str, float]:
    params = {"Intercept": _LIN_INTERCEPT}
    params.update({f"x{j + 1}": float(b) for j, b in enumerate(_LIN_BETA)})
    for levels, effects, name in (
        (_G10_LEVELS, _G10_EFFECT, "g10"),
        (_G200_LEVELS, _G200_EFFECT, "g200"),
    ):
        for level, effect in zip(levels.to_pylist()[1:], effects[1:]):
            params[f"C({name})[T.{level}]"] = float(effect)
    return params


# --- logit ----------------------------------------------------------------------------

# Intercept, x1, x2, x3, x1:x2, x1:x3, x2:x3, x1², x2², x3², stepping from 0.9 to 0.1.
_LOGIT_TERMS = (
    "Intercept",
    "x1",
    "x2",
    "x3",
    "x1:x2",
    "x1:x3",
    "x2:x3",
    "I(x1 ** 2)",
    "I(x2 ** 2)",
    "I(x3 ** 2)",
)
_LOGIT_BETA = np.linspace(0.1, 0.9, 10)[::-1].copy()
_LOGIT_COLUMNS = ("x1", "x2", "x3", "x1_x2", "x1_x3", "x2_x3", "x1_sq", "x2_sq", "x3_sq")


def _draw_logit(rng: np.random.Generator, n: int) -> _Columns:
    x1 = rng.standard_normal(n)
    x2 = rng.standard_normal(n)
    x3 = rng.standard_normal(n)
    features = [x1 * x2, x1 * x3, x2 * x3, x1**2, x2**2, x3**2]
    b = _LOGIT_BETA
    eta = b[0] + b[1] * x1 + b[2] * x2 + b[3] * x3
    for coef, feature in zip(b[4:], features):
        eta = eta + coef * feature
    p = 1 / (1 + np.exp(-eta))
    y = rng.binomial(1, p).astype(np.int64)
    columns: _Columns = dict(zip(_LOGIT_COLUMNS, [x1, x2, x3, *features]))
    columns["y"] = y
    return columns


# --- poisson --------------------------------------------------------------------------

_POIS_INTERCEPT = -0.3
_POIS_BETA = np.array([0.4, -0.25, 0.15, 0.0])
_REGION_LEVELS = pa.array(["central", "east", "north", "south", "west"])
_REGION_PROB = np.array([0.3, 0.25, 0.2, 0.15, 0.1])
_REGION_EFFECT = np.array([0.0, 0.2, -0.3, 0.35, -0.1])


def _draw_poisson(rng: np.random.Generator, n: int) -> _Columns:
    x = rng.standard_normal((4, n))
    region = rng.choice(5, size=n, p=_REGION_PROB)
    exposure = rng.uniform(0.5, 3.0, size=n)
    eta = _POIS_INTERCEPT + _POIS_BETA @ x + _REGION_EFFECT[region]
    y = rng.poisson(exposure * np.exp(eta)).astype(np.int64)
    columns: _Columns = {f"x{j + 1}": x[j] for j in range(4)}
    columns["region"] = _levels_take(_REGION_LEVELS, region)
    columns["exposure"] = exposure
    columns["y"] = y
    return columns


def _poisson_params() -> dict[str, float]:
    params = {"Intercept": _POIS_INTERCEPT}
    params.update({f"x{j + 1}": float(b) for j, b in enumerate(_POIS_BETA)})
    for level, effect in zip(_REGION_LEVELS.to_pylist()[1:], _REGION_EFFECT[1:]):
        params[f"C(region)[T.{level}]"] = float(effect)
    return params


_F = pa.float64()
_MODELS: dict[str, _Model] = {
    "linreg": _Model(
        draw=_draw_linreg,
        schema=pa.schema(
            [pa.field(f"x{j}", _F) for j in range(1, 21)]
            + [("g10", pa.string()), ("g200", pa.string()), ("w", _F), ("y", _F)]
        ),
        formula="y ~ " + " + ".join(f"x{j}" for j in range(1, 21)) + " + C(g10) + C(g200)",
        params=_linreg_params(),
    ),
    "logit": _Model(
        draw=_draw_logit,
        schema=pa.schema([pa.field(name, _F) for name in _LOGIT_COLUMNS] + [("y", pa.int64())]),
        formula="y ~ " + " + ".join(_LOGIT_TERMS[1:]),
        params={term: float(b) for term, b in zip(_LOGIT_TERMS, _LOGIT_BETA)},
    ),
    "poisson": _Model(
        draw=_draw_poisson,
        schema=pa.schema(
            [pa.field(f"x{j}", _F) for j in range(1, 5)]
            + [("region", pa.string()), ("exposure", _F), ("y", pa.int64())]
        ),
        formula="y ~ x1 + x2 + x3 + x4 + C(region)",
        params=_poisson_params(),
    ),
}

#: The model names :func:`simulate` accepts.
KINDS: tuple[str, ...] = tuple(_MODELS)


def _model(kind: str) -> _Model:
    try:
        return _MODELS[kind]
    except KeyError:
        raise ValueError(
            f"The 'kind' parameter of simulate must be one of {', '.join(KINDS)}. "
            f"Got {kind!r} instead."
        ) from None


def true_params(kind: Kind) -> dict[str, float]:
    """The generating coefficients of a simulated model.

    Parameters
    ----------
    kind : {"linreg", "logit", "poisson"}
        The model.

    Returns
    -------
    dict of str to float
        Coefficients keyed by the column names formulaic gives the terms of
        :func:`default_formula` (``"Intercept"``, ``"x1"``, ``"C(g10)[T.b]"``,
        ``"I(x1 ** 2)"``, ``"x1:x2"``…); categorical effects are contrasts with the
        first level, as in formulaic's default treatment coding.

    Examples
    --------
    >>> true_params("logit")["Intercept"]
    0.9
    """
    return dict(_model(kind).params)


def default_formula(kind: Kind) -> str:
    """The formula whose design matches the generating model of ``kind``.

    For ``poisson`` the offset ``log(exposure)`` is not part of the formula; pass it
    to the estimator.

    Examples
    --------
    >>> default_formula("poisson")
    'y ~ x1 + x2 + x3 + x4 + C(region)'
    """
    return _model(kind).formula


def _block(kind: str, seed: int, index: int) -> pa.Table:
    model = _MODELS[kind]
    sequence = np.random.SeedSequence(seed, spawn_key=(KINDS.index(kind), index))
    rng = np.random.Generator(np.random.PCG64(sequence))
    columns = model.draw(rng, RNG_BLOCK_ROWS)
    return pa.Table.from_pydict(columns, schema=model.schema)


def _iter_chunks(
    kind: str, *, seed: int, start: int, stop: int, chunk_rows: int
) -> Iterator[pa.Table]:
    """Yield rows ``start:stop`` as tables of ``chunk_rows`` rows (the last may be short)."""
    pending: list[pa.Table] = []
    npending = 0
    for index in range(start // RNG_BLOCK_ROWS, -(-stop // RNG_BLOCK_ROWS)):
        first = index * RNG_BLOCK_ROWS
        lo, hi = max(start, first) - first, min(stop, first + RNG_BLOCK_ROWS) - first
        pending.append(_block(kind, seed, index).slice(lo, hi - lo))
        npending += hi - lo
        while npending >= chunk_rows:
            combined = pa.concat_tables(pending)
            yield combined.slice(0, chunk_rows)
            pending = [combined.slice(chunk_rows)]
            npending -= chunk_rows
    if npending:
        yield pa.concat_tables(pending)


def _check_int(function: str, name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(
            f"The {name!r} parameter of {function} must be an int in [{low}, inf). "
            f"Got {value!r} instead."
        )


def simulate_table(kind: Kind, rows: int, *, seed: int = 0, start: int = 0) -> pa.Table:
    """Simulate rows ``start`` to ``start + rows`` of a data set, in memory.

    Parameters
    ----------
    kind : {"linreg", "logit", "poisson"}
        The model (see the module documentation).
    rows : int
        How many rows.
    seed : int, default 0
        The seed; the same seed always gives the same rows.
    start : int, default 0
        The index of the first row, so that disjoint ranges tile one data set.

    Returns
    -------
    pyarrow.Table
        The rows, equal to the same rows of a file written by :func:`simulate`.
    """
    model = _model(kind)
    for name, value in (("rows", rows), ("seed", seed), ("start", start)):
        _check_int("simulate_table", name, value, 0)
    chunks = list(
        _iter_chunks(kind, seed=seed, start=start, stop=start + rows, chunk_rows=max(rows, 1))
    )
    return pa.concat_tables(chunks) if chunks else model.schema.empty_table()


def simulate(
    kind: Kind,
    rows: int,
    out: str | os.PathLike[str],
    *,
    seed: int = 0,
    format: Literal["csv", "parquet"] | None = None,
    chunk_rows: int = 250_000,
    progress: bool = False,
) -> Path:
    """Write a simulated data set to a CSV or Parquet file with bounded memory.

    Parameters
    ----------
    kind : {"linreg", "logit", "poisson"}
        The model (see the module documentation).
    rows : int
        How many rows to write.
    out : str or path-like
        The file to write; replaced atomically (the data go to a temporary file
        beside it that is renamed at the end, or removed on failure).
    seed : int, default 0
        The seed. The data depend only on the seed and the row index.
    format : {"csv", "parquet"}, optional
        The file format; by default taken from the extension (``.csv``,
        ``.csv.gz``, ``.csv.bz2``, ``.csv.zst``, ``.parquet``, ``.pq``). A format that
        contradicts the extension (``"csv"`` for ``x.parquet``) is a ValueError.
    chunk_rows : int, default 250_000
        Rows generated and written at a time: the Parquet row-group size. Memory
        grows with it; the data do not depend on it.
    progress : bool, default False
        Show a progress bar on standard error.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pathlib, pyarrow.parquet as pq
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = simulate("logit", 1000, pathlib.Path(folder) / "d.parquet")
    ...     pq.read_metadata(path).num_rows
    1000
    """
    model = _model(kind)
    for name, value, low in (("rows", rows, 0), ("seed", seed, 0), ("chunk_rows", chunk_rows, 1)):
        _check_int("simulate", name, value, low)
    path = Path(out)
    fmt, compression = infer_format(path, format=format)
    with (
        atomic_output(path) as tmp,
        open_table_writer(
            tmp, model.schema, format=fmt, compression=compression, delimiter=delimiter_for(path)
        ) as writer,
        progress_bar(f"simulate {kind}", total=rows, unit="rows", enabled=progress) as advance,
    ):
        for chunk in _iter_chunks(kind, seed=seed, start=0, stop=rows, chunk_rows=chunk_rows):
            writer.write(chunk)
            advance(chunk.num_rows)
    return path
