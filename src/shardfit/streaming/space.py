"""Search spaces: from a grid or distributions to a list of configurations (pure functions).

A configuration is a featurizer's parameters (:class:`~shardfit.HashingFeaturizer`)
and a learner's (``estimator`` names the class, the rest are its parameters), with a
stable key: a hash of both as canonical JSON. A space is written as::

    {"featurizer": {"columns": [["x1", "x2"], ["x1", "x2", "x3"]], "degree": [1, 2]},
     "learner": {"estimator": "ftrl", "alpha": [1e-4, 1e-3], "l1_ratio": 0.15}}

A list is a choice, a scalar is fixed (``columns`` and ``categorical`` take a list of
names as one value, so their choices are lists of lists), and anything with an ``rvs``
method (a ``scipy.stats`` distribution) is sampled: then ``n_iter`` configurations are
drawn. ``n_iter`` with lists alone draws that many distinct grid points (without
replacement, as scikit-learn's ``ParameterSampler``). A list of such dicts is the union
of their configurations.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.linear_model import (
    PassiveAggressiveClassifier,
    PassiveAggressiveRegressor,
    Perceptron,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.naive_bayes import BernoulliNB, MultinomialNB

from shardfit.streaming.learners import FTRLClassifier, FTRLRegressor

__all__ = ["LEARNERS", "Config", "build_learner", "expand", "restore_json_params"]

#: Learner names a space may use in ``estimator``.
LEARNERS: dict[str, type] = {
    "ftrl": FTRLClassifier,
    "ftrl_classifier": FTRLClassifier,
    "ftrl_regressor": FTRLRegressor,
    "sgd": SGDClassifier,
    "sgd_classifier": SGDClassifier,
    "sgd_regressor": SGDRegressor,
    "passive_aggressive_classifier": PassiveAggressiveClassifier,
    "passive_aggressive_regressor": PassiveAggressiveRegressor,
    "perceptron": Perceptron,
    "multinomial_nb": MultinomialNB,
    "bernoulli_nb": BernoulliNB,
}
_LIST_VALUED = {"columns", "categorical"}
_SECTIONS = ("featurizer", "learner")


def _canonical(value: Any) -> Any:
    """Plain JSON values (NumPy scalars become Python numbers, tuples lists)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class Config:
    """One configuration: featurizer and learner parameters, and its key."""

    featurizer: dict[str, Any]
    learner: dict[str, Any]

    @property
    def params(self) -> dict[str, Any]:
        """``{"featurizer": ..., "learner": ...}``."""
        return {"featurizer": self.featurizer, "learner": self.learner}

    @property
    def key(self) -> str:
        """A stable identifier: a hash of the parameters as canonical JSON."""
        text = json.dumps(self.params, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def featurizer_key(self) -> str:
        """Identifies the featurizer alone (configurations sharing it share hashing)."""
        text = json.dumps(self.featurizer, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _label(key: Any) -> Any:
    """A class label from a JSON object key: ``"1"`` -> 1, ``"0.5"`` -> 0.5, else as is."""
    if not isinstance(key, str):
        return key
    for kind in (int, float):
        try:
            return kind(key)
        except ValueError:
            pass
    return key


def restore_json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Learner parameters as they were before a trip through JSON.

    JSON object keys are strings, so ``class_weight={0: 1.0, 1: 3.0}`` comes back as
    ``{"0": 1.0, "1": 3.0}``, which scikit-learn does not match to the labels 0 and 1
    (streamed targets are numeric, so the labels are numbers again).
    """
    params = dict(params)
    weights = params.get("class_weight")
    if isinstance(weights, Mapping):
        params["class_weight"] = {_label(k): v for k, v in weights.items()}
    return params


#: The seed of a learner whose space sets no ``random_state`` (see :func:`build_learner`).
DEFAULT_RANDOM_STATE = 0


def build_learner(params: Mapping[str, Any]) -> Any:
    """A fresh learner from a configuration's learner parameters.

    A learner that draws random numbers (scikit-learn's SGD, passive-aggressive and
    perceptron shuffle each ``partial_fit`` batch) gets ``random_state=0`` unless the
    space sets one: left to NumPy's global generator, a configuration scored
    differently on every run (0.5436, 0.5435, 0.5425 for one SGD configuration), before
    and after a resume, and the stored model could not be refitted to its scores.
    """
    params = restore_json_params(params)
    name = params.pop("estimator", "ftrl")
    cls = LEARNERS.get(str(name).lower())
    if cls is None:
        raise ValueError(
            f"Unknown learner {name!r}; the 'estimator' of a search space must be one of "
            f"{', '.join(sorted(LEARNERS))}"
        )
    if "random_state" not in params and "random_state" in _init_parameters(cls):
        params["random_state"] = DEFAULT_RANDOM_STATE
    try:
        return cls(**params)
    except TypeError as error:
        raise ValueError(f"bad parameters for {cls.__name__}: {error}") from None


def _init_parameters(cls: type) -> frozenset[str]:
    """The keyword parameters of ``cls``'s constructor."""
    return frozenset(inspect.signature(cls.__init__).parameters)


def _choices(section: str, key: str, value: Any) -> tuple[list[Any] | None, Any]:
    """(choices, distribution): a list of choices, or a distribution to sample."""
    if hasattr(value, "rvs"):
        return None, value
    if key in _LIST_VALUED and section == "featurizer":
        if (
            isinstance(value, list | tuple)
            and value
            and all(isinstance(v, list | tuple) for v in value)
        ):
            return [list(v) for v in value], None
        return [list(value) if isinstance(value, list | tuple) else value], None
    if isinstance(value, list | tuple):
        if not value:
            raise ValueError(f"the search space gives no choice for {section}.{key}")
        return list(value), None
    return [value], None


def _sample_grid(
    axes: list[tuple[str, str, list[Any] | None, Any]], n_iter: int, rng: np.random.Generator
) -> list[Config]:
    """``n_iter`` distinct grid points, drawn without replacement (as ``ParameterSampler``).

    Drawing each list independently would repeat configurations, which then collapse
    into one: fewer than ``n_iter`` would run, silently. A grid smaller than ``n_iter``
    is run whole, with scikit-learn's warning.
    """
    sizes = [len(choices) for _, _, choices, _ in axes]  # type: ignore[arg-type]
    total = math.prod(sizes)
    if total < n_iter:
        warnings.warn(
            f"The total space of parameters {total} is smaller than n_iter={n_iter}. "
            f"Running {total} iterations. For exhaustive searches, leave n_iter unset.",
            UserWarning,
            stacklevel=4,
        )
        n_iter = total
    configs = []
    for flat in rng.choice(total, size=n_iter, replace=False):
        # The grid point of index ``flat`` in itertools.product's order (the last axis
        # varies fastest), without building the grid.
        parts: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
        rest = int(flat)
        for (section, key, choices, _), size in zip(reversed(axes), reversed(sizes)):
            rest, pick = divmod(rest, size)
            assert choices is not None
            parts[section][key] = _canonical(choices[pick])
        configs.append(Config(parts["featurizer"], parts["learner"]))
    return configs


def _expand_one(
    space: Mapping[str, Any], n_iter: int | None, rng: np.random.Generator
) -> list[Config]:
    unknown = set(space) - set(_SECTIONS)
    if unknown:
        raise ValueError(
            f"a search space has the sections 'featurizer' and 'learner'; got {sorted(unknown)}"
        )
    axes: list[tuple[str, str, list[Any] | None, Any]] = []
    for section in _SECTIONS:
        block = space.get(section, {}) or {}
        if not isinstance(block, Mapping):
            raise ValueError(f"the {section!r} section of a search space must be a mapping")
        for key in sorted(block):
            choices, dist = _choices(section, key, block[key])
            axes.append((section, key, choices, dist))
    sampled = any(dist is not None for *_, dist in axes)
    configs = []
    if not sampled and n_iter is None:
        for combo in itertools.product(*[choices for _, _, choices, _ in axes]):
            parts: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
            for (section, key, _, _), value in zip(axes, combo):
                parts[section][key] = _canonical(value)
            configs.append(Config(parts["featurizer"], parts["learner"]))
        return configs
    if n_iter is None:
        raise ValueError("a search space with distributions needs n_iter (how many to draw)")
    if not sampled:
        return _sample_grid(axes, n_iter, rng)
    for _ in range(n_iter):
        parts = {s: {} for s in _SECTIONS}
        for section, key, choices, dist in axes:
            if dist is not None:
                value = dist.rvs(random_state=rng)
            else:
                assert choices is not None
                value = choices[int(rng.integers(len(choices)))]
            parts[section][key] = _canonical(value)
        configs.append(Config(parts["featurizer"], parts["learner"]))
    return configs


def expand(
    space: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    n_iter: int | None = None,
    random_state: int = 0,
) -> list[Config]:
    """The configurations of a search space, without duplicates, in a stable order.

    Parameters
    ----------
    space : mapping or list of mappings
        See the module notes.
    n_iter : int, optional
        How many configurations to draw (per mapping). With distributions, each list is
        drawn from independently (with replacement); a mapping made only of lists is a
        grid, whose points are drawn without replacement, as scikit-learn's
        ``ParameterSampler`` does: ``n_iter`` distinct configurations, or the whole grid
        with a warning when it has fewer.
    random_state : int, default 0
        Seeds the draws.

    Returns
    -------
    list of Config
    """
    rng = np.random.default_rng(random_state)
    spaces = [space] if isinstance(space, Mapping) else list(space)
    if not spaces:
        raise ValueError("the search space is empty")
    seen: dict[str, Config] = {}
    for one in spaces:
        if not isinstance(one, Mapping):
            raise ValueError(f"a search space is a mapping or a list of them; got {one!r}")
        for config in _expand_one(one, n_iter, rng):
            seen.setdefault(config.key, config)
    return list(seen.values())
