"""Saving and loading fitted results as one JSON document (never pickle).

The document::

    {"format": "shardfit-results", "version": 1, "kind": "LinearResults",
     "shardfit_version": "0.1.0", "fields": {"names": {"__tuple__": [...]}, ...}}

``fields`` holds every dataclass field of the results. Values JSON has no type for
are tagged objects with one key:

- ``{"__ndarray__": {"dtype": "float64", "shape": [p, p], "data": [...]}}``: an array,
  flattened in C order (dtypes float64, int64 and bool only);
- ``{"__float__": "nan"}`` (or ``"inf"``, ``"-inf"``): a non-finite float, so the file
  is standard JSON; inside array data the bare strings are used;
- ``{"__tuple__": [...]}``: a tuple;
- ``{"__design_spec__": {...}}``: the design spec, :meth:`DesignSpec.to_dict`.

Finite floats are written with Python's shortest round-tripping ``repr``, so a loaded
result is equal bitwise to the saved one, and predicts identical numbers. Loading only
parses JSON: no code runs. But a formula is Python code that prediction evaluates, so
predict only with results files from a trusted source.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from shardfit.data.convert import write_atomically
from shardfit.design.spec import DesignSpec
from shardfit.errors import ReadError, ShardfitError

__all__ = ["FORMAT", "VERSION", "load_results", "save_results"]

FORMAT = "shardfit-results"
VERSION = 1
_DTYPES = ("float64", "int64", "bool")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_TAGS = ("__ndarray__", "__float__", "__tuple__", "__design_spec__")


def _kinds() -> dict[str, type]:
    """Results classes by name (imported late: the results modules import this one)."""
    from shardfit.results.glm import GLMResults
    from shardfit.results.linear import LinearResults
    from shardfit.results.negbin import NegativeBinomialResults
    from shardfit.results.regularized import DistributedResults, ElasticNetResults
    from shardfit.results.svd import SVDResults

    return {
        "LinearResults": LinearResults,
        "GLMResults": GLMResults,
        "DistributedResults": DistributedResults,
        "ElasticNetResults": ElasticNetResults,
        "SVDResults": SVDResults,
        "NegativeBinomialResults": NegativeBinomialResults,
    }


def save_results(results: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``results`` to ``path`` as a JSON document (atomically).

    Parameters
    ----------
    results : LinearResults, GLMResults, NegativeBinomialResults, ...
    path : str or path
        The file to write, conventionally ``*.json``; replaced if it exists.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    kind = type(results).__name__
    if kind not in _kinds():
        raise TypeError(f"save_results saves {sorted(_kinds())}. Got {kind}.")
    from shardfit import __version__

    document = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "shardfit_version": __version__,
        "fields": {
            item.name: _encode(getattr(results, item.name), item.name) for item in fields(results)
        },
    }
    text = json.dumps(document, allow_nan=False, separators=(",", ":")) + "\n"
    target = Path(path)
    write_atomically(target, text=text)
    return target


def load_results(path: str | os.PathLike[str]) -> Any:
    """Read results written by :func:`save_results`.

    Raises
    ------
    ReadError
        The file is not JSON (a binary file included), not a shardfit results
        document, of a format version this shardfit does not read, has fields the
        results class does not know, or damaged fields (an array that is not one or
        has the wrong shape, a design spec that does not rebuild); it names the file.
    """
    where = os.fspath(path)
    try:
        with open(where, encoding="utf-8") as handle:
            document = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        # A binary file (a pickle, an .npz) fails as text before it fails as JSON.
        raise ReadError(f"{where} is not a shardfit results file (not JSON: {error})") from error
    except RecursionError as error:
        # Valid JSON nested deeper than Python's stack (a hostile or garbled file).
        raise ReadError(
            f"{where} is not a shardfit results file (JSON nested too deeply)"
        ) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ReadError(f"{where} is not a shardfit results file (no format {FORMAT!r})")
    version = document.get("version")
    # type(): JSON's true and 1.0 equal 1 in Python, but no shardfit wrote them.
    if type(version) is not int or version != VERSION:
        from shardfit import __version__

        raise ReadError(
            f"{where} has results format version {version!r} (written by shardfit "
            f"{document.get('shardfit_version', '?')}); shardfit {__version__} reads "
            f"version {VERSION} only"
        )
    kind = document.get("kind")
    cls = _kinds().get(str(kind))
    if cls is None:
        raise ReadError(f"{where} holds results of kind {kind!r}; known: {sorted(_kinds())}")
    saved = document.get("fields")
    if not isinstance(saved, dict):
        raise ReadError(f"{where}: 'fields' of {kind} is not a JSON object ({saved!r:.60})")
    known = {item.name for item in fields(cls)}
    if set(saved) - known:
        raise ReadError(f"{where}: fields unknown to {kind}: {sorted(set(saved) - known)!r}")
    try:
        values = {name: _decode(value) for name, value in saved.items()}
        _check_values(cls, values)
        return cls(**values)
    # A damaged design spec raises DesignError (a ShardfitError) from DesignSpec; a
    # number too large for a float (1e999 is inf, but 10**400 is an int) OverflowError;
    # a deeply nested value RecursionError.
    except (
        TypeError,
        ValueError,
        KeyError,
        AttributeError,
        OverflowError,
        RecursionError,
        ShardfitError,
    ) as error:
        raise ReadError(f"{where}: cannot rebuild {kind}: {error}") from error


def _check_values(cls: type, values: dict[str, Any]) -> None:
    """Refuse decoded values of the wrong kind or shape (a hand-edited or damaged file),
    which would otherwise load and fail later, far from the file, or give wrong numbers.

    Raises
    ------
    ValueError
        Naming the field: a value not of its field's type (an array field that is not
        an array, ``nobs`` that is text...), a spec that is not a design spec, arrays
        whose shapes disagree with the column names, or column names that are not the
        design spec's columns (the file's estimates would be labelled, and predict
        with, other columns).
    """
    for item in fields(cls):
        if item.name not in values:
            continue  # a missing required field is the constructor's TypeError
        value = values[item.name]
        annotation = str(item.type)
        if "np.ndarray" in annotation and not isinstance(value, np.ndarray):
            if not (value is None and "None" in annotation):
                raise ValueError(f"field {item.name!r} is not an array ({type(value).__name__})")
        if item.name == "spec" and value is not None and not isinstance(value, DesignSpec):
            raise ValueError(f"field 'spec' is not a design spec ({type(value).__name__})")
        if item.name == "spec" and value is not None:
            _check_spec(value)
        if not _has_type(value, annotation):
            raise ValueError(
                f"field {item.name!r} is not {_DESCRIBED.get(annotation, annotation)} "
                f"({value!r:.60})"
            )
    names = values.get("names")
    if not isinstance(names, tuple) or not all(isinstance(name, str) for name in names):
        raise ValueError("field 'names' is not a tuple of column names")
    p = len(names)
    k = _length(values.get("singular_values_array"))
    m = _length(values.get("alphas"))
    expected = {
        "params_array": (p,),
        "cov_array": (p, p),
        "normalized_cov": (p, p),
        "hessian": (p, p),
        "coef_array": (p,),
        "path_array": (m, p),
        "path_intercepts": (m,),
        "components_array": (k, p),
        "mean_array": (p,),
    }
    for name, shape in expected.items():
        array = values.get(name)
        if isinstance(array, np.ndarray) and array.shape != shape:
            raise ValueError(
                f"field {name!r} has shape {array.shape}; {p} column names need {shape}"
            )
    factor = values.get("cov_factor")
    if isinstance(factor, np.ndarray) and (factor.ndim != 2 or len(factor) != p):
        raise ValueError(
            f"field 'cov_factor' has shape {factor.shape}; {p} column names need ({p}, m)"
        )
    cv_mse = values.get("cv_mse")
    if isinstance(cv_mse, np.ndarray) and (cv_mse.ndim != 2 or len(cv_mse) != m):
        raise ValueError(f"field 'cv_mse' has shape {cv_mse.shape}; {m} alphas need ({m}, K)")
    freq = values.get("sum_freq_weights")
    if freq is not None and not (np.isfinite(freq) and freq > 0):
        # A GLM's df_resid, scale and bic come from it.
        raise ValueError(f"field 'sum_freq_weights' is {freq!r}, not a finite number > 0")
    _check_extra_params(cls, values, names)
    const_idx = values.get("const_idx")
    if const_idx is not None and not 0 <= const_idx < p:
        raise ValueError(f"field 'const_idx' is {const_idx}, not a column of the {p}")
    spec = values.get("spec")
    if isinstance(spec, DesignSpec) and spec.column_names:
        design = spec.column_names
        intercept = values.get("intercept_name")
        if "coef_array" in values and intercept is not None:
            # An elastic net's names leave out the (unpenalized) intercept column.
            design = tuple(name for name in design if name != intercept)
        # Parameters after the design's columns (a negative binomial's "alpha").
        design = tuple(design) + tuple(getattr(cls, "extra_param_names", ()))
        if names != design:
            raise ValueError(
                f"field 'names' {list(names)!r:.120} is not the design spec's columns "
                f"{list(design)!r:.120}"
            )


def _check_extra_params(cls: type, values: dict[str, Any], names: tuple[str, ...]) -> None:
    """Refuse a fit with parameters after the design's columns (a negative binomial's
    ``alpha``) whose ``rank`` is not the design's column count, or whose ``alpha`` is
    not a finite number > 0: predictions take the first ``rank`` parameters as the
    coefficients, and ``df_model``, aic and bic count ``rank``."""
    extra = tuple(getattr(cls, "extra_param_names", ()))
    if not extra:
        return
    design = len(names) - len(extra)
    rank = values.get("rank")
    if isinstance(rank, int) and rank != design:
        raise ValueError(
            f"field 'rank' is {rank}; the {design} design columns of 'names' (then "
            f"{list(extra)}) need {design}"
        )
    params = values.get("params_array")
    if "alpha" in extra and isinstance(params, np.ndarray) and params.shape == (len(names),):
        # Its place after the design's columns (a design column may be named alpha too).
        alpha = float(params[design + extra.index("alpha")])
        if not (np.isfinite(alpha) and alpha > 0):
            raise ValueError(f"field 'params_array' has alpha = {alpha!r}, not a number > 0")


def _check_spec(spec: DesignSpec) -> None:
    """Refuse a design spec whose fields are not of their types (``formula: 5``), which
    :meth:`DesignSpec.from_dict` takes as they come and prediction meets far later."""
    for item in fields(spec):
        if item.name.startswith("_"):
            continue
        value = getattr(spec, item.name)
        if not _has_type(value, str(item.type)):
            described = _DESCRIBED.get(str(item.type), str(item.type))
            raise ValueError(f"design spec field {item.name!r} is not {described} ({value!r:.60})")


# What a field's annotation means in a message.
_DESCRIBED = {
    "int": "an integer",
    "int | None": "an integer or null",
    "float": "a number",
    "float | None": "a number or null",
    "bool": "true or false",
    "str": "text",
    "str | None": "text or null",
    "tuple[str, ...]": "a list of text",
    "tuple[float, ...]": "a list of numbers",
    "dict[str, int]": "an object of integers",
    "dict[str, float]": "an object of numbers",
    "dict[str, Any]": "an object",
    "dict[str, list[Any]]": "an object of lists",
    "dict[str, dict[str, Any]]": "an object of objects",
}


def _is_int(value: Any) -> bool:
    # 64-bit: counts and indices; 10**400 would load and overflow in the first float().
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _is_number(value: Any) -> bool:
    # A float field written from an integer (sum_weights of unweighted rows) is an int.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_type(value: Any, annotation: str) -> bool:
    """Whether ``value`` fits the simple annotation of a results field (``True`` for
    annotations not checked here: ``Any`` and the arrays, checked by the caller)."""
    base, optional = annotation, False
    if annotation.endswith(" | None"):
        base, optional = annotation[: -len(" | None")], True
    if value is None:
        return optional or base in ("Any", "np.ndarray")
    checks = {
        "int": _is_int,
        "float": _is_number,
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "tuple[str, ...]": lambda v: isinstance(v, tuple) and all(isinstance(x, str) for x in v),
        "tuple[float, ...]": lambda v: isinstance(v, tuple) and all(map(_is_number, v)),
        "dict[str, int]": lambda v: isinstance(v, dict) and all(map(_is_int, v.values())),
        "dict[str, float]": lambda v: isinstance(v, dict) and all(map(_is_number, v.values())),
        "dict[str, Any]": lambda v: isinstance(v, dict),
        "dict[str, list[Any]]": lambda v: (
            isinstance(v, dict) and all(isinstance(x, list) for x in v.values())
        ),
        "dict[str, dict[str, Any]]": lambda v: (
            isinstance(v, dict) and all(isinstance(x, dict) for x in v.values())
        ),
    }
    check = checks.get(base)
    return check is None or bool(check(value))


def _length(array: Any) -> int | None:
    return len(array) if isinstance(array, np.ndarray) and array.ndim >= 1 else None


def _encode(value: Any, where: str) -> Any:
    """A JSON-safe form of ``value`` (see the module notes)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else {"__float__": repr(number)}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": _encode_array(value, where)}
    if isinstance(value, DesignSpec):
        return {"__design_spec__": _encode(value.to_dict(), f"{where}.spec")}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(item, where) for item in value]}
    if isinstance(value, list):
        return [_encode(item, where) for item in value]
    if isinstance(value, dict):
        if not all(isinstance(key, str) and key not in _TAGS for key in value):
            raise TypeError(f"cannot save {where}: dict keys must be str (and not a tag)")
        return {key: _encode(item, f"{where}[{key!r}]") for key, item in value.items()}
    raise TypeError(f"cannot save {where}: values of type {type(value).__name__} have no JSON form")


def _encode_array(array: np.ndarray, where: str) -> dict[str, Any]:
    dtype = array.dtype.name
    if dtype not in _DTYPES:
        raise TypeError(f"cannot save {where}: arrays of dtype {dtype} (saved: {_DTYPES})")
    flat = array.ravel(order="C").tolist()
    if dtype == "float64":
        flat = [v if math.isfinite(v) else repr(v) for v in flat]
    return {"dtype": dtype, "shape": list(array.shape), "data": flat}


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "__float__":
            if inner not in ("nan", "inf", "-inf"):
                raise ValueError(f"{{'__float__': {inner!r}}} is not nan, inf or -inf")
            return _NONFINITE[inner]
        if tag == "__tuple__":
            if not isinstance(inner, list):
                # A string would become a tuple of its characters.
                raise ValueError(f"{{'__tuple__': {inner!r:.40}}} does not hold a list")
            return tuple(_decode(item) for item in inner)
        if tag == "__ndarray__":
            return _decode_array(inner)
        if tag == "__design_spec__":
            return DesignSpec.from_dict(_decode(inner))
    return {key: _decode(item) for key, item in value.items()}


def _decode_array(data: dict[str, Any]) -> np.ndarray:
    if not isinstance(data, dict) or not {"dtype", "shape", "data"} <= set(data):
        raise ValueError("an '__ndarray__' is not an object of dtype, shape and data")
    dtype, shape, flat = data["dtype"], data["shape"], data["data"]
    if dtype not in _DTYPES:
        raise ValueError(f"array dtype {dtype!r} is not one of {_DTYPES}")
    if not (isinstance(shape, list) and all(_is_int(n) and n >= 0 for n in shape)):
        raise ValueError(f"array shape {shape!r:.40} is not a list of sizes")
    if not isinstance(flat, list) or len(flat) != math.prod(shape):
        raise ValueError(f"array data does not hold the {math.prod(shape)} values of shape {shape}")
    if dtype == "float64":
        if not all(_is_number(v) or (isinstance(v, str) and v in _NONFINITE) for v in flat):
            raise ValueError("float64 array data holds values that are not numbers")
        flat = [_NONFINITE[v] if isinstance(v, str) else float(v) for v in flat]
    elif dtype == "int64":
        if not all(map(_is_int, flat)):
            raise ValueError("int64 array data holds values that are not 64-bit integers")
    elif not all(isinstance(v, bool) for v in flat):
        raise ValueError("bool array data holds values that are not true or false")
    return np.asarray(flat, dtype=dtype).reshape(shape)
