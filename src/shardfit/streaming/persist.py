"""Saving fitted streaming models without pickle: class name, JSON parameters, arrays.

A model is a featurizer plus a learner. The built-in learners
(:class:`~shardfit.FTRLClassifier`, :class:`~shardfit.FTRLRegressor`) and
scikit-learn's linear streaming learners (``SGDClassifier``, ``SGDRegressor``,
``PassiveAggressiveClassifier``, ``PassiveAggressiveRegressor``, ``Perceptron``) are
written as their registered name, ``get_params()`` as JSON and their fitted arrays
(coefficients stored sparse: hashed models touch few of their columns) in an ``.npz``
blob read back with ``allow_pickle=False``. Any other estimator can only be saved as a
pickle when the caller opts in (``allow_pickle=True``) on both saving and loading,
because loading a pickle runs whatever code it names.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

import numpy as np
from sklearn.linear_model import (
    PassiveAggressiveClassifier,
    PassiveAggressiveRegressor,
    Perceptron,
    SGDClassifier,
    SGDRegressor,
)

from shardfit.errors import ShardfitError
from shardfit.streaming.hashing import HashingFeaturizer
from shardfit.streaming.learners import FTRLClassifier, FTRLRegressor
from shardfit.streaming.space import restore_json_params

__all__ = ["PickleNotAllowedError", "dump_model", "load_model"]

# name -> (class, fitted attributes besides the coefficients)
_SKLEARN_LINEAR: dict[str, type] = {
    "SGDClassifier": SGDClassifier,
    "SGDRegressor": SGDRegressor,
    "PassiveAggressiveClassifier": PassiveAggressiveClassifier,
    "PassiveAggressiveRegressor": PassiveAggressiveRegressor,
    "Perceptron": Perceptron,
}
_BUILTIN: dict[str, type] = {"FTRLClassifier": FTRLClassifier, "FTRLRegressor": FTRLRegressor}
_LINEAR_ATTRS = ("intercept_", "classes_", "t_", "n_features_in_", "n_iter_")


class PickleNotAllowedError(ShardfitError):
    """A model that can only be saved (or loaded) as a pickle, without the opt-in."""


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as files:
        return {name: files[name] for name in files.files}


def _sparse(prefix: str, dense: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """Store the non-zero entries of ``dense`` with its shape."""
    flat = dense.reshape(-1)
    index = np.flatnonzero(flat)
    out[f"{prefix}.shape"] = np.array(dense.shape, dtype=np.int64)
    out[f"{prefix}.index"] = index.astype(np.int64)
    out[f"{prefix}.value"] = flat[index]


def _dense(prefix: str, arrays: dict[str, np.ndarray]) -> np.ndarray:
    shape = tuple(int(s) for s in arrays[f"{prefix}.shape"])
    dense = np.zeros(int(np.prod(shape)), dtype=np.float64)
    dense[arrays[f"{prefix}.index"]] = arrays[f"{prefix}.value"]
    return dense.reshape(shape)


def _json_params(estimator: Any) -> str:
    params = estimator.get_params(deep=False)
    try:
        return json.dumps(params, sort_keys=True)
    except TypeError as error:
        raise PickleNotAllowedError(
            f"the parameters of {type(estimator).__name__} are not all JSON values "
            f"({error}); pass allow_pickle=True to store it as a pickle"
        ) from None


def dump_model(
    featurizer: HashingFeaturizer, learner: Any, *, allow_pickle: bool = False
) -> tuple[str, str, bytes]:
    """Serialize a fitted featurizer and learner.

    Returns
    -------
    format : str
        ``"linear"`` (no pickle) or ``"pickle"``.
    spec : str
        JSON: the featurizer's and learner's class names and parameters.
    blob : bytes
        The arrays (an ``.npz``), or the pickle.

    Raises
    ------
    PickleNotAllowedError
        For a learner outside the list in the module notes, unless ``allow_pickle``.
    """
    name = type(learner).__name__
    kind = "builtin" if type(learner) in _BUILTIN.values() else None
    if type(learner) in _SKLEARN_LINEAR.values() and not getattr(learner, "average", False):
        kind = "sklearn"
    if kind is None:
        if not allow_pickle:
            raise PickleNotAllowedError(
                f"{name} is not one of the learners saved without pickle "
                f"({', '.join([*_BUILTIN, *_SKLEARN_LINEAR])}, without averaging); pass "
                "allow_pickle=True to store it as a pickle (loading it will need the same)"
            )
        spec = json.dumps({"featurizer": featurizer.get_params(), "learner": name})
        return "pickle", spec, pickle.dumps(learner, protocol=pickle.HIGHEST_PROTOCOL)
    arrays: dict[str, np.ndarray] = {}
    if kind == "builtin" and hasattr(learner, "state_a_"):
        _sparse("state_a_", learner.state_a_, arrays)
        _sparse("state_n_", learner.state_n_, arrays)
        _sparse("state_last_", learner._last(), arrays)
    elif kind == "sklearn" and hasattr(learner, "coef_"):
        coef = learner.coef_
        _sparse("coef_", coef.toarray() if hasattr(coef, "toarray") else np.asarray(coef), arrays)
    for attr in _LINEAR_ATTRS:
        if kind == "builtin" and attr == "intercept_":
            continue  # computed from the state
        if attr in learner.__dict__:
            arrays[attr] = np.asarray(getattr(learner, attr))
    spec = json.dumps(
        {
            "featurizer": featurizer.get_params(),
            "learner": name,
            "params": json.loads(_json_params(learner)),
        },
        sort_keys=True,
    )
    return "linear", spec, _pack(arrays)


def load_model(fmt: str, spec: str, blob: bytes, *, allow_pickle: bool = False) -> Any:
    """Rebuild a pipeline (featurizer, learner) from :func:`dump_model`'s output.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Steps ``featurizer`` and ``learner``; ``predict`` takes rows (a Table or
        DataFrame).
    """
    from sklearn.pipeline import Pipeline

    meta = json.loads(spec)
    featurizer = HashingFeaturizer(**meta["featurizer"])
    if fmt == "pickle":
        if not allow_pickle:
            raise PickleNotAllowedError(
                f"this model ({meta['learner']}) was stored as a pickle, which runs code when "
                "loaded; pass allow_pickle=True if you trust the store"
            )
        learner = pickle.loads(blob)  # safe: only with the caller's explicit allow_pickle=True
        return Pipeline([("featurizer", featurizer), ("learner", learner)])
    if fmt != "linear":
        raise ShardfitError(f"unknown model format {fmt!r}")
    classes = {**_BUILTIN, **_SKLEARN_LINEAR}
    cls = classes.get(meta["learner"])
    if cls is None:
        raise ShardfitError(f"unknown learner {meta['learner']!r} in the store")
    learner = cls(**restore_json_params(meta["params"]))
    arrays = _unpack(blob)
    if "state_a_.shape" in arrays:
        learner.state_a_ = _dense("state_a_", arrays)
        learner.state_n_ = _dense("state_n_", arrays)
        if "state_last_.shape" in arrays:  # absent from stores written before it existed
            learner.state_last_ = _dense("state_last_", arrays)
    if "coef_.shape" in arrays:
        learner.coef_ = _dense("coef_", arrays)
    for attr in _LINEAR_ATTRS:
        if attr in arrays:
            value = arrays[attr]
            if attr == "t_":
                value = float(value)
            elif attr in ("n_features_in_", "n_iter_"):
                value = int(value)
            setattr(learner, attr, value)
    return Pipeline([("featurizer", featurizer), ("learner", learner)])
