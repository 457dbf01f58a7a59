"""Results of fitting and scanning summary-statistic models, saved as JSON (never pickle).

A saved fit (scan) is one JSON document::

    {"format": "shardfit-sumstats-fit" ("-scan"), "version": 1, "fields": {...}}

Arrays are lists of floats written with Python's shortest round-tripping ``repr``,
so a loaded result equals the saved one bitwise; non-finite floats are the strings
``"nan"``, ``"inf"`` and ``"-inf"``. Loading only parses JSON: no code runs.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shardfit.errors import ReadError

__all__ = ["SumstatsFitResult", "SumstatsScanResult"]

_FORMAT = "shardfit-sumstats-fit"
_SCAN_FORMAT = "shardfit-sumstats-scan"
_VERSION = 1
_ARRAYS = ("params", "grad", "loss_history")


def _to_json(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _from_json(value: float | str) -> float:
    """A number as :func:`_to_json` wrote it; anything else (``"1.5"``, ``true``,
    ``null``, an integer too large for a float) is a ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r:.40} is not a number")
    if isinstance(value, str) and value not in ("nan", "inf", "-inf"):
        raise ValueError(f"{value!r:.40} is not a number (nor nan, inf or -inf)")
    try:
        return float(value)
    except OverflowError as error:
        raise ValueError(f"{value!r:.40} is too large for a float") from error


def _floats(saved: dict[str, Any], name: str) -> np.ndarray:
    """The list of numbers ``saved[name]`` as a float array (a string would otherwise
    become the array of its digits)."""
    values = saved[name]
    if not isinstance(values, list):
        raise ValueError(f"field {name!r} is not a list of numbers")
    return np.array([_from_json(v) for v in values], dtype=np.float64)


def _typed(saved: dict[str, Any], name: str, kind: type) -> Any:
    """``saved[name]`` when it is of ``kind`` (``bool("false")`` would be ``True``)."""
    value = saved[name]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(f"field {name!r} is not {kind.__name__} ({value!r:.40})")
    return value


def _names(saved: dict[str, Any]) -> tuple[str, ...]:
    names = saved["param_names"]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ValueError("field 'param_names' is not a list of text")
    return tuple(names)


def _read_document(where: str, fmt: str) -> dict[str, Any]:
    """The ``fields`` of the JSON document ``where`` of format ``fmt``; any reason it is
    not one is a :class:`ReadError` naming the file."""
    try:
        document = json.loads(Path(where).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise ReadError(f"{where} is not a readable {fmt} document: {error}") from error
    if (
        not isinstance(document, dict)
        or document.get("format") != fmt
        or type(document.get("version")) is not int
        or document.get("version") != _VERSION
    ):
        raise ReadError(f"{where} is not a {fmt} document of version {_VERSION}")
    saved = document.get("fields")
    if not isinstance(saved, dict):
        raise ReadError(f"{where} is not a readable {fmt} document: 'fields' is not an object")
    return saved


def _write(target: Path, document: dict[str, Any]) -> Path:
    """Write ``document`` atomically (a reader never sees half a file)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target


@dataclass(frozen=True)
class SumstatsFitResult:
    """The outcome of :meth:`SumstatsModel.fit <shardfit.SumstatsModel.fit>`.

    Attributes
    ----------
    params : numpy.ndarray
        The parameters found. For Adam and gradient descent: the point where the
        stopping rule was met, or, when it was not, the lowest loss seen.
    param_names : tuple of str
    loss : float
        The loss at ``params``.
    grad : numpy.ndarray
        The gradient at ``params``.
    iterations : int
        Optimizer iterations (steps) taken.
    npasses : int
        Passes over the data (each evaluates the loss and gradient once).
    loss_history : numpy.ndarray
        The loss at each evaluation, in order.
    converged : bool
        Whether the stopping rule was met before ``maxiter``; for Adam and gradient
        descent, at ``params`` (the largest component of the projected gradient there
        is at most ``tol``).
    method : str
        ``"lbfgs"``, ``"adam"`` or ``"gd"``.
    message : str
        Why the optimizer stopped.
    aux : any
        With ``loss_has_aux``: the aux output of ``loss`` at ``params`` (NumPy
        arrays); ``None`` otherwise. For a group, a tuple of the members' aux.
    sumstats_aux : list or None
        With ``sumstats_has_aux``: each partition's aux output of
        ``partial_sumstats`` at ``params``, in partition order; ``None`` otherwise.

    Notes
    -----
    :meth:`save` writes neither ``aux`` nor ``sumstats_aux`` (they are arbitrary
    user pytrees, and a result file is plain JSON): a loaded result has ``None``.
    """

    params: np.ndarray
    param_names: tuple[str, ...]
    loss: float
    grad: np.ndarray
    iterations: int
    npasses: int
    loss_history: np.ndarray
    converged: bool
    method: str
    message: str = ""
    aux: Any = field(default=None, compare=False)
    sumstats_aux: Any = field(default=None, compare=False)

    @property
    def grad_norm(self) -> float:
        """The largest absolute gradient component at ``params``."""
        return float(np.max(np.abs(self.grad))) if self.grad.size else 0.0

    @property
    def params_dict(self) -> dict[str, float]:
        """``params`` by name."""
        return {name: float(value) for name, value in zip(self.param_names, self.params)}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the result to ``path`` as JSON (without ``aux`` and ``sumstats_aux``);
        returns the path."""
        fields_ = {
            "params": [_to_json(float(v)) for v in self.params],
            "param_names": list(self.param_names),
            "loss": _to_json(self.loss),
            "grad": [_to_json(float(v)) for v in self.grad],
            "iterations": self.iterations,
            "npasses": self.npasses,
            "loss_history": [_to_json(float(v)) for v in self.loss_history],
            "converged": self.converged,
            "method": self.method,
            "message": self.message,
        }
        document = {"format": _FORMAT, "version": _VERSION, "fields": fields_}
        return _write(Path(path), document)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SumstatsFitResult:
        """Read a result written by :meth:`save`.

        Raises
        ------
        ReadError
            The file is not such a document or is of another format version.
        """
        where = os.fspath(path)
        saved = _read_document(where, _FORMAT)
        try:
            result = cls(
                params=_floats(saved, "params"),
                param_names=_names(saved),
                loss=_from_json(saved["loss"]),
                grad=_floats(saved, "grad"),
                iterations=_typed(saved, "iterations", int),
                npasses=_typed(saved, "npasses", int),
                loss_history=_floats(saved, "loss_history"),
                converged=_typed(saved, "converged", bool),
                method=_typed(saved, "method", str),
                message=_typed(saved, "message", str),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ReadError(f"{where} is not a readable {_FORMAT} document: {error}") from error
        p = len(result.params)
        if len(result.param_names) != p or len(result.grad) not in (0, p):
            # params_dict would silently drop names (zip), grad_norm mix parameters.
            raise ReadError(
                f"{where}: {p} params, {len(result.param_names)} param_names and "
                f"{len(result.grad)} grad values (all must be equal)"
            )
        return result


@dataclass(frozen=True)
class SumstatsScanResult:
    """The outcome of :meth:`SumstatsModel.scan <shardfit.SumstatsModel.scan>`.

    Attributes
    ----------
    points : numpy.ndarray of shape (n, nparams)
        The Latin hypercube sample, in draw order.
    losses : numpy.ndarray of shape (n,)
        The loss at each point (non-finite where the statistics were).
    param_names : tuple of str
    """

    points: np.ndarray
    losses: np.ndarray
    param_names: tuple[str, ...] = field(default=())

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the scan to ``path`` as JSON (bitwise round trip); returns the path."""
        fields_ = {
            "points": [[_to_json(float(v)) for v in row] for row in self.points],
            "losses": [_to_json(float(v)) for v in self.losses],
            "param_names": list(self.param_names),
        }
        document = {"format": _SCAN_FORMAT, "version": _VERSION, "fields": fields_}
        return _write(Path(path), document)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SumstatsScanResult:
        """Read a scan written by :meth:`save`.

        Raises
        ------
        ReadError
            The file is not such a document, is of another format version, or its
            points and losses do not match in number.
        """
        where = os.fspath(path)
        saved = _read_document(where, _SCAN_FORMAT)
        try:
            names = _names(saved)
            rows = saved["points"]
            if not isinstance(rows, list) or not all(
                isinstance(row, list) and len(row) == len(names) for row in rows
            ):
                raise ValueError(f"field 'points' is not a list of {len(names)}-number lists")
            points = np.array(
                [[_from_json(v) for v in row] for row in rows], dtype=np.float64
            ).reshape(-1, len(names))
            losses = _floats(saved, "losses")
        except (KeyError, TypeError, ValueError) as error:
            raise ReadError(
                f"{where} is not a readable {_SCAN_FORMAT} document: {error}"
            ) from error
        if len(points) != len(losses):
            raise ReadError(f"{where}: {len(points)} points but {len(losses)} losses")
        return cls(points=points, losses=losses, param_names=names)

    @property
    def best_index(self) -> int:
        """The index of the smallest finite loss."""
        finite = np.where(np.isfinite(self.losses), self.losses, np.inf)
        return int(np.argmin(finite))

    @property
    def best_params(self) -> np.ndarray:
        """The point with the smallest finite loss."""
        return self.points[self.best_index]

    @property
    def best_loss(self) -> float:
        """The smallest finite loss."""
        return float(self.losses[self.best_index])
