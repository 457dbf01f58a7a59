"""Estimators for testing stacked ensembles on real worker processes.

They live in the package (not in tests/) so that worker processes started with
``spawn`` and Dask workers can import them by name.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

__all__ = [
    "FailingRegressor",
    "InterruptingRegressor",
    "KillingRegressor",
    "PidRegressor",
    "ProbeRegressor",
    "SleepingRegressor",
]


class ProbeRegressor(RegressorMixin, BaseEstimator):
    """Predicts the training mean and records how its input arrived.

    Attributes
    ----------
    input_type_ : str
        The class name of ``X`` as ``fit`` received it.
    input_file_ : str or None
        The file ``X`` is mapped from (``None`` when not memory-mapped).
    input_writeable_ : bool
        Whether ``X`` could be written.
    fit_pid_ : int
        The process that fitted it.
    """

    def fit(self, X: Any, y: Any) -> ProbeRegressor:
        self.input_type_ = type(X).__name__
        self.input_file_ = getattr(X, "filename", None)
        self.input_writeable_ = bool(np.asarray(X).flags.writeable)
        self.fit_pid_ = os.getpid()
        self.mean_ = float(np.mean(y))
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(np.asarray(X).shape[0], self.mean_)


class FailingRegressor(RegressorMixin, BaseEstimator):
    """Raises ``ValueError`` when fitted on exactly ``fail_rows`` rows (picks a fold)."""

    def __init__(self, fail_rows: int = -1) -> None:
        self.fail_rows = fail_rows

    def fit(self, X: Any, y: Any) -> FailingRegressor:
        if X.shape[0] == self.fail_rows:
            raise ValueError(f"refusing to fit {X.shape[0]} rows")
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(np.asarray(X).shape[0], self.mean_)


class KillingRegressor(RegressorMixin, BaseEstimator):
    """SIGKILLs the process fitting it, when that is a worker (never the driver)."""

    def fit(self, X: Any, y: Any) -> KillingRegressor:
        if multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("KillingRegressor must be fitted in a worker process")

    def predict(self, X: Any) -> np.ndarray:  # pragma: no cover - never fitted
        return np.zeros(np.asarray(X).shape[0])


class InterruptingRegressor(RegressorMixin, BaseEstimator):
    """Raises ``KeyboardInterrupt`` in ``fit``, as Ctrl-C in the middle of a fit."""

    def fit(self, X: Any, y: Any) -> InterruptingRegressor:
        raise KeyboardInterrupt

    def predict(self, X: Any) -> np.ndarray:  # pragma: no cover - never fitted
        return np.zeros(np.asarray(X).shape[0])


class SleepingRegressor(RegressorMixin, BaseEstimator):
    """Sleeps ``seconds`` in ``fit``, then predicts the training mean: a slow fit to
    interrupt from outside."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds

    def fit(self, X: Any, y: Any) -> SleepingRegressor:
        time.sleep(self.seconds)
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(np.asarray(X).shape[0], self.mean_)


class PidRegressor(RegressorMixin, BaseEstimator):
    """Predicts the id of the process that predicts: shows where prediction ran."""

    def fit(self, X: Any, y: Any) -> PidRegressor:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(np.asarray(X).shape[0], float(os.getpid()))
