"""Stacked ensemble: shardfit's cross-fitting on shared memory vs scikit-learn's stacking.

Data: ``shardfit simulate logit`` (``x1``–``x3`` and their products and squares as
columns), read into memory before the clock. The stack: logistic regression, a depth-8
tree, a 30-tree random forest and a KNN classifier, 5 stratified shuffled folds, a
logistic final estimator. The "parameters" compared are the final estimator's
coefficients (one per base estimator, plus the intercept): equal when the same fits
ran on the same rows.

- reference: scikit-learn ``StackingClassifier``, ``n_jobs=1``;
- peer: the same with ``n_jobs=2`` (joblib's processes);
- shardfit: ``StackingEnsembleClassifier`` on a warm 2-worker ``processes`` session.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.case import Case, DataSpec, Mode, Outcome, Problem, Tool

__all__ = ["CASES", "make_data"]

QUICK_ROWS = (2_000,)  # a smoke run: the stack fits 2 layers x 4 models x folds
FULL_ROWS = (200_000,)
COLUMNS = ["x1", "x2", "x3", "x1_x2", "x1_x3", "x2_x3", "x1_sq", "x2_sq", "x3_sq"]
NAMES = ("lr", "tree", "forest", "knn")


def make_data(rows: int) -> DataSpec:
    """``shardfit simulate logit --seed 0`` at ``rows``."""
    return DataSpec("logit", rows, seed=0)


def _estimators() -> list[tuple[str, Any]]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.tree import DecisionTreeClassifier

    return [
        ("lr", LogisticRegression(max_iter=1000)),
        ("tree", DecisionTreeClassifier(max_depth=8, random_state=0)),
        ("forest", RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0)),
        ("knn", KNeighborsClassifier(n_neighbors=15)),
    ]


def _cv() -> Any:
    from sklearn.model_selection import StratifiedKFold

    return StratifiedKFold(5, shuffle=True, random_state=0)


def _params(final: Any) -> dict[str, float]:
    params = {name: float(c) for name, c in zip(NAMES, final.coef_.ravel(), strict=True)}
    params["intercept"] = float(final.intercept_[0])
    return params


class _InMemory:
    """Reads the columns into NumPy before the clock starts."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import pyarrow.parquet as pq

        table = pq.read_table(problem.parquet, columns=[*COLUMNS, "y"])
        self.X = np.column_stack([table[c].to_numpy() for c in COLUMNS]).astype(np.float64)
        self.y = table["y"].to_numpy()
        self.outcome = outcome

    def close(self) -> None:
        pass


class SklearnStacking(_InMemory):
    """scikit-learn's ``StackingClassifier`` with ``n_jobs`` workers."""

    n_jobs = 1

    def fit(self) -> dict[str, float]:
        from sklearn.ensemble import StackingClassifier
        from sklearn.linear_model import LogisticRegression

        model = StackingClassifier(
            _estimators(), final_estimator=LogisticRegression(), cv=_cv(), n_jobs=self.n_jobs
        ).fit(self.X, self.y)
        return _params(model.final_estimator_)


class SklearnStacking2(SklearnStacking):
    n_jobs = 2


class ShardfitStacking(_InMemory):
    """``StackingEnsembleClassifier`` on a warm 2-worker ``processes`` session."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        super().__init__(problem, outcome)
        from shardfit.engine import session

        started = time.perf_counter()
        self.session = session("processes", workers=2).open()
        self._fit(self.X[:500], self.y[:500])  # start and warm the workers (imports)
        outcome.startup_seconds = time.perf_counter() - started
        outcome.notes.append("processes, 2 workers, warmed by a 500-row fit")

    def _fit(self, X: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.linear_model import LogisticRegression

        import shardfit

        return shardfit.StackingEnsembleClassifier(
            _estimators(), final_estimator=LogisticRegression(), cv=_cv(), backend=self.session
        ).fit(X, y)

    def fit(self) -> dict[str, float]:
        return _params(self._fit(self.X, self.y).final_estimator_)

    def close(self) -> None:
        self.session.close()


def _once(rows: int, mode: Mode, repeats: int) -> tuple[int, str]:
    return 1, ("1 repeat (slow)" if repeats > 1 else "")


CASES: dict[str, Case] = {
    "stacking": Case(
        name="stacking",
        description="stacked ensemble (4 classifiers, 5 folds) vs scikit-learn StackingClassifier",
        make_data=make_data,
        sizes={"quick": QUICK_ROWS, "full": FULL_ROWS},
        tools=(
            Tool("StackingClassifier n_jobs=1", "reference", SklearnStacking, plan=_once),
            Tool("StackingClassifier n_jobs=2", "peer", SklearnStacking2, rtol=1e-9),
            Tool("shardfit StackingEnsembleClassifier", "shardfit", ShardfitStacking, rtol=1e-9),
        ),
        references=("StackingClassifier n_jobs=1",),
        goals="faster than scikit-learn's StackingClassifier(n_jobs=2) with equal numbers",
    ),
}
