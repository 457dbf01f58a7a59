"""The learned design: what turns a partition's rows into model-matrix columns.

A :class:`DesignSpec` separates configuration (the formula, the weight and offset
columns) from state learned in the schema pass (categorical levels, transform
state, the output column names). It serializes to JSON and rebuilds formulaic's
``ModelSpecs`` from that JSON alone, so a saved model predicts on new data with
exactly the columns it was fitted with.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from shardfit.errors import DesignError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DesignSpec"]

_SPEC_VERSION = 1


@dataclass(frozen=True)
class DesignSpec:
    """A design learned from data, applied identically to every partition.

    Attributes
    ----------
    formula : str or None
        A formulaic formula; ``None`` for a plain-columns design.
    x_columns : tuple of str
        For a plain-columns design, the predictor columns in order (no intercept
        is added, as with ``statsmodels.OLS(y, X)``); empty for a formula.
    response : str or None
        For a plain-columns design, the response column.
    levels : dict of str to list
        Categorical variable -> its levels in encoding order (sorted by value).
    numeric_fill : dict of str to float
        A finite value seen in each numeric column (used to rebuild the spec).
    transform_state : dict
        Finalized state of ``center``/``scale``/``standardize`` by expression.
    column_names : tuple of str
        The design-matrix columns, in order.
    response_names : tuple of str
        The response columns (one for ``y ~ ...``; none without a left side).
    weights, offset, exposure : str or None
        Columns read alongside the formula's variables.
    raw_columns : tuple of str
        Every source column a partition must read for this design.
    formula_columns : tuple of str
        The source columns the formula reads.
    extra_columns : tuple of str
        Columns read and checked for missing values but not encoded (cluster ids).
    numeric_levels : tuple of str
        Columns of numbers that the formula reads both through ``C()`` (with the
        levels in ``levels``) and as numbers (``k`` in ``C(k):x + k``): formulaic
        gets their values, not categoricals.
    sparse_x : tuple of str
        For a plain-columns design, the columns that are mostly zeros (the dummies of
        a design store): products use their sparse structure, as for a formula's
        categorical columns.
    x_constant : str or None
        For a plain-columns design, its constant (intercept) column when known
        beforehand (a design store's ``Intercept``).
    """

    formula: str | None
    x_columns: tuple[str, ...] = ()
    response: str | None = None
    levels: dict[str, list[Any]] = field(default_factory=dict)
    numeric_fill: dict[str, float] = field(default_factory=dict)
    transform_state: dict[str, dict[str, Any]] = field(default_factory=dict)
    column_names: tuple[str, ...] = ()
    response_names: tuple[str, ...] = ()
    weights: str | None = None
    offset: str | None = None
    exposure: str | None = None
    raw_columns: tuple[str, ...] = ()
    formula_columns: tuple[str, ...] = ()
    extra_columns: tuple[str, ...] = ()
    numeric_levels: tuple[str, ...] = ()
    sparse_x: tuple[str, ...] = ()
    x_constant: str | None = None
    _formulaic: list[Any] = field(default_factory=list, compare=False, repr=False)
    _fast: list[Any] = field(default_factory=list, compare=False, repr=False)

    # -- construction -------------------------------------------------------------
    def with_formulaic(self) -> DesignSpec:
        """Build formulaic's spec once (on a skeleton frame) and fill the column names.

        Refitting the same design (same formula, levels and state) in a process reuses
        the spec built the first time.
        """
        if self.formula is None:
            return self
        key = self.to_json()
        known = _WITH_FORMULAIC.get(key)
        if known is not None:
            return known
        specs = self.formulaic_specs()
        rhs = specs.rhs if self.has_formula_response else specs
        column_names = tuple(rhs.column_names)
        response_names = tuple(specs.lhs.column_names) if self.has_formula_response else ()
        spec = _replace(self, column_names=column_names, response_names=response_names)
        spec._formulaic.append(specs)
        _WITH_FORMULAIC[key] = spec
        while len(_WITH_FORMULAIC) > _BUILT_KEEP:
            del _WITH_FORMULAIC[next(iter(_WITH_FORMULAIC))]
        return spec

    @property
    def has_formula_response(self) -> bool:
        # "~ x" has no left-hand side: formulaic reads it as the right-hand side alone.
        formula = str(self.formula or "").strip()
        return "~" in formula and not formula.startswith("~")

    @property
    def has_response(self) -> bool:
        """Whether the design yields a response vector."""
        return self.has_formula_response or self.response is not None

    def formulaic_specs(self) -> Any:
        """formulaic's ``ModelSpecs`` for this design (built lazily, cached per process)."""
        if self._formulaic:
            return self._formulaic[0]
        if self.formula is None:
            raise DesignError("a plain-columns design has no formulaic spec")
        from formulaic import Formula
        from formulaic.errors import DataMismatchWarning

        from shardfit.design.transforms import apply_context

        skeleton = self.skeleton_frame()
        try:
            # The skeleton holds every level the data has: a level outside a C() call's
            # levels= is in the data, where formulaic would encode it as zeros.
            with warnings.catch_warnings():
                warnings.simplefilter("error", category=DataMismatchWarning)
                matrices = Formula(self.formula).get_model_matrix(
                    skeleton,
                    context=apply_context(),
                    transform_state=self.formulaic_state(),
                    na_action="ignore",
                )
        except DesignError:
            raise
        except DataMismatchWarning as error:
            raise outside_levels_error(str(self.formula), error) from error
        except Exception as error:
            raise DesignError(f"cannot build the design of {self.formula!r}: {error}") from error
        specs = matrices.model_spec
        self._formulaic.append(specs)
        return specs

    def fast_encoder(self) -> Any:
        """The structured encoder for this design, or ``None`` (cached per process)."""
        if not self._fast:
            from shardfit.design.fast_encoder import FastEncoder

            self._fast.append(FastEncoder.build(self) if self.formula is not None else None)
        return self._fast[0]

    def skeleton_frame(self) -> pd.DataFrame:
        """A small frame with every level of every categorical (rebuilds the spec)."""
        import pandas as pd

        nrows = max([2, *(len(levels) for levels in self.levels.values())])
        data: dict[str, Any] = {}
        for name in self.formula_columns:
            if name in self.levels:
                levels = self.levels[name]
                if not levels:
                    raise DesignError(f"categorical column {name!r} has no levels in the data")
                values = [levels[i % len(levels)] for i in range(nrows)]
                if name in self.numeric_levels:  # C() learns the sorted values itself
                    data[name] = np.asarray(values)
                else:
                    data[name] = pd.Categorical(values, categories=levels)
            else:
                data[name] = np.full(nrows, self.numeric_fill.get(name, 1.0), dtype=np.float64)
        return pd.DataFrame(data)

    def formulaic_state(self) -> dict[str, dict[str, Any]]:
        """A fresh copy of the transform state to hand to formulaic (which mutates it)."""
        return {key: dict(value) for key, value in self.transform_state.items()}

    @cached_property
    def fit_only_columns(self) -> frozenset[str]:
        """Columns only a fit reads: the response and the extra (identifier) columns."""
        extras = set(self.extra_columns) - set(self.formula_columns)
        if self.response is not None:
            return frozenset({self.response} | extras)
        if self.has_formula_response:
            from formulaic import Formula

            lhs = Formula(str(self.formula)).lhs.required_variables
            return frozenset({str(v) for v in lhs} | extras)
        return frozenset(extras)

    def dense_columns(self) -> tuple[bool, ...]:
        """Per design column: ``False`` if its term involves a categorical factor.

        Categorical-derived columns are mostly zeros, so cross-products use their
        sparse structure; the rest are centred, scaled and multiplied densely.
        """
        if self.formula is None:
            return tuple(name not in self.sparse_x for name in self.column_names)
        known = self.__dict__.get("_dense_flags")
        if known is not None:  # shipped with a pickled spec (see __getstate__)
            return known
        specs = self.formulaic_specs()
        rhs = specs.rhs if self.has_formula_response else specs
        categorical = {
            name
            for name, (kind, _state) in rhs.encoder_state.items()
            if str(kind).endswith("CATEGORICAL")
        }
        dense: list[bool] = []
        for structure in rhs.structure:
            is_dense = not any(str(factor) in categorical for factor in structure.term.factors)
            dense.extend([is_dense] * len(structure.columns))
        flags = tuple(dense)
        self.__dict__["_dense_flags"] = flags
        return flags

    def intercept_index(self) -> int | None:
        """Position of the formula's intercept column (or a plain-columns design's
        known constant), ``None`` without one."""
        if self.formula is not None and "Intercept" in self.column_names:
            return self.column_names.index("Intercept")
        if self.formula is None and self.x_constant in self.column_names:
            return self.column_names.index(self.x_constant)
        return None

    # -- serialization --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the spec (no formulaic objects, no pickle)."""
        out: dict[str, Any] = {"version": _SPEC_VERSION}
        for item in fields(self):
            if item.name.startswith("_"):
                continue
            value = getattr(self, item.name)
            if item.name in ("numeric_levels", "sparse_x", "x_constant") and not value:
                continue  # left out when empty: earlier specs' JSON and fingerprints hold
            if item.name == "levels":
                value = {name: _levels_to_json(levels) for name, levels in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DesignSpec:
        """Inverse of :meth:`to_dict`."""
        if data.get("version") != _SPEC_VERSION:
            raise DesignError(f"unsupported design spec version {data.get('version')!r}")
        kwargs: dict[str, Any] = {}
        for item in fields(cls):
            if item.name.startswith("_") or item.name not in data:
                continue
            value = data[item.name]
            if item.name == "levels":
                value = {name: _levels_from_json(levels) for name, levels in value.items()}
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[item.name] = value
        return cls(**kwargs)

    def to_json(self) -> str:
        """The spec as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DesignSpec:
        """Rebuild a spec saved with :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def fingerprint(self) -> str:
        """A short hash of the spec (for checkpoint keys)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:24]

    def __getstate__(self) -> dict[str, Any]:
        # Ship the spec to workers as its JSON, with the structured encoder's plan
        # (plain tuples), the fit-only columns and the dense-column flags worked out
        # here: a worker encoding with the plan never builds formulaic's spec, nor
        # imports formulaic or pandas (~50 MB and ~0.6 s of a cold worker's first
        # task). Without a plan, each process rebuilds formulaic's spec once instead
        # of unpickling formulaic internals.
        state: dict[str, Any] = {"json": self.to_json()}
        if self.formula is not None:
            try:
                state["fast"] = self.fast_encoder()
                state["fit_only"] = sorted(self.fit_only_columns)
                state["dense"] = list(self.dense_columns())
            except Exception:  # a worker meets (and reports) it when encoding
                state.pop("fast", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        text = state["json"]
        rebuilt = DesignSpec.from_json(text)
        for item in fields(DesignSpec):
            object.__setattr__(self, item.name, getattr(rebuilt, item.name))
        # A worker unpickles the task of every pass (and Dask every task): equal specs
        # share one set of lazily built formulaic spec and encoder plan per process,
        # so they are built once per process, not once per pass (~0.1 s each).
        caches = _BUILT_BY_JSON.pop(text, None) or ([], [])
        _BUILT_BY_JSON[text] = caches  # most recently used last
        while len(_BUILT_BY_JSON) > _BUILT_KEEP:
            del _BUILT_BY_JSON[next(iter(_BUILT_BY_JSON))]
        if "fast" in state and not caches[1]:
            caches[1].append(state["fast"])
        object.__setattr__(self, "_formulaic", caches[0])
        object.__setattr__(self, "_fast", caches[1])
        if "fit_only" in state:
            self.__dict__["fit_only_columns"] = frozenset(state["fit_only"])
        if "dense" in state:
            self.__dict__["_dense_flags"] = tuple(bool(flag) for flag in state["dense"])


#: Per process: a spec's JSON -> its (formulaic spec, encoder plan) cache lists.
_BUILT_BY_JSON: dict[str, tuple[list[Any], list[Any]]] = {}
_BUILT_KEEP = 8
#: Per process: a learned spec's JSON -> the same spec with formulaic's spec built.
_WITH_FORMULAIC: dict[str, DesignSpec] = {}


def outside_levels_error(formula: str, warning: Warning) -> DesignError:
    """The error for data values outside the levels a ``C()`` call of ``formula``
    names (formulaic only warns and encodes them as zeros; patsy raises)."""
    outside = re.search(r"\{.*\}", str(warning))
    return DesignError(
        f"values {outside.group(0) if outside else ''} of the data are not among the "
        f"levels given in {formula!r} (C(..., levels=[...])); add them to levels= or "
        "drop those rows before fitting"
    )


def _replace(spec: DesignSpec, **changes: Any) -> DesignSpec:
    values = {item.name: getattr(spec, item.name) for item in fields(spec)}
    values.update(changes)
    values["_formulaic"] = []
    values["_fast"] = []
    return DesignSpec(**values)


def _levels_to_json(levels: list[Any]) -> dict[str, Any]:
    if all(isinstance(level, bool) for level in levels):
        kind = "bool"
    elif all(isinstance(level, int) and not isinstance(level, bool) for level in levels):
        kind = "int"
    elif all(isinstance(level, float) for level in levels):
        kind = "float"
    else:
        kind = "str"
        levels = [str(level) for level in levels]
    return {"kind": kind, "values": list(levels)}


def _levels_from_json(data: dict[str, Any]) -> list[Any]:
    convert = {"bool": bool, "int": int, "float": float, "str": str}[data["kind"]]
    return [convert(value) for value in data["values"]]
