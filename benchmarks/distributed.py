"""Case family ``distributed``: the one-shot debiased lasso and the exact elastic-net path.

``debiased_lasso``
    statsmodels' ``DistributedModel`` (its default: the debiased lasso, ``alpha`` below)
    and shardfit's ``DistributedModel`` on the same 8 partitions of the ``linreg`` design
    (229 columns, built densely from Parquet by :class:`benchmarks.design.DenseDesign`).
    statsmodels runs sequentially (its default); shardfit on a warm ``processes`` session
    and serially. Estimates must agree to 1e-6. Coefficients whose node-wise weight is 0
    (a design column all zero within one partition: a rare level of the 200-level
    factor) are NaN in both and left out of the comparison; the notes count them.
``elastic_net``
    The elastic-net path (``l1_ratio=0.5``, 100 alphas) with 10-fold cross-validation:
    shardfit's ``elastic_net`` from Parquet (one pass over the data for the whole path
    and every fold) against scikit-learn's ``ElasticNetCV`` on the same design in memory
    with the same folds (``PredefinedSplit`` of :func:`shardfit.cv_folds`): with a tight
    tolerance (the reference) and with its default ``tol=1e-4`` (the peer as users run
    it). The notes give the chosen alpha.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import psutil

from benchmarks.case import Case, DataSpec, Mode, Outcome, Problem, Skip, Tool
from benchmarks.limits import ReadParquet
from benchmarks.report import READ_TOOL
from shardfit.data.simulate import default_formula

__all__ = ["CASES"]

PARTITIONS = 8
ALPHA = 0.05  # the debiased lasso's penalty (statsmodels' fit_kwds={"alpha": ...})
FOLDS = 10
L1_RATIO = 0.5
GB = 1e9


def make_data(rows: int) -> DataSpec:
    """``shardfit simulate linreg --seed 0`` at ``rows``."""
    return DataSpec("linreg", rows, seed=0)


def _dense(problem: Problem) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The dense design, the response and the column names, read from the Parquet file."""
    import pyarrow.parquet as pq

    from benchmarks.design import DenseDesign, parquet_levels, parse_formula

    terms = parse_formula(problem.formula)
    path = str(problem.parquet)
    design = DenseDesign(terms, parquet_levels(path, terms.categorical))
    table = pq.read_table(path, columns=terms.columns())
    return design.matrix(table), design.response(table), design.names


def _pairs(X: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(y[rows], X[rows]) for rows in np.array_split(np.arange(len(y)), PARTITIONS)]


def _finite(names: list[str], params: Any, outcome: Outcome) -> dict[str, float]:
    values = np.asarray(params, dtype=np.float64)
    nan = int(np.isnan(values).sum())
    note = f"{nan} of {values.size} coefficients NaN (columns all zero in a partition)"
    if note not in outcome.notes:
        outcome.notes.append(note)
    return {n: float(v) for n, v in zip(names, values) if np.isfinite(v)}


# -- debiased lasso ------------------------------------------------------------------------
class StatsmodelsDebiased:
    """statsmodels ``DistributedModel(8).fit(pairs, fit_kwds={"alpha": ALPHA})``."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import statsmodels.base.distributed_estimation  # noqa: F401 - before the clock

        self.problem, self.outcome = problem, outcome
        outcome.notes.append(f"{PARTITIONS} partitions, sequential, alpha={ALPHA}")

    def fit(self) -> dict[str, float]:
        import warnings

        from statsmodels.base.distributed_estimation import DistributedModel

        X, y, names = _dense(self.problem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # its 1/0 for the NaN columns
            results = DistributedModel(PARTITIONS).fit(
                iter(_pairs(X, y)), fit_kwds={"alpha": ALPHA}
            )
        return _finite(names, results.params, self.outcome)

    def close(self) -> None:
        pass


class ShardfitDebiased:
    """shardfit ``DistributedModel(8, alpha=ALPHA)`` on the same pairs (warm or serial)."""

    def __init__(self, problem: Problem, outcome: Outcome, *, warm: bool) -> None:
        import pyarrow.parquet  # noqa: F401 - imported before the clock starts, as the peer's

        import benchmarks.design  # noqa: F401
        from shardfit import DistributedModel
        from shardfit.engine import session

        self.problem, self.outcome = problem, outcome
        self.session: Any = "serial"
        started = time.perf_counter()
        if warm:
            self.session = session().open()
            outcome.notes.append(f"{self.session.name}, {self.session.nworkers} workers")
        else:
            outcome.notes.append("serial")
        # A tiny fit first, so that module imports (here and in the workers) are start-up.
        rng = np.random.default_rng(0)
        tiny = [(rng.standard_normal(20), rng.standard_normal((20, 3))) for _ in range(2)]
        DistributedModel(2, alpha=0.1).fit(iter(tiny), backend=self.session)
        if warm:
            outcome.startup_seconds = time.perf_counter() - started

    def fit(self) -> dict[str, float]:
        import warnings

        from shardfit import DistributedModel

        X, y, names = _dense(self.problem)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the NaN columns: in the notes
            results = DistributedModel(PARTITIONS, alpha=ALPHA).fit(
                iter(_pairs(X, y)), backend=self.session
            )
        return _finite(names, results.params, self.outcome)

    def close(self) -> None:
        if not isinstance(self.session, str):
            self.session.close()


def _warm(problem: Problem, outcome: Outcome) -> ShardfitDebiased:
    return ShardfitDebiased(problem, outcome, warm=True)


def _serial(problem: Problem, outcome: Outcome) -> ShardfitDebiased:
    return ShardfitDebiased(problem, outcome, warm=False)


# -- elastic net ---------------------------------------------------------------------------
class SklearnElasticNetCV:
    """``ElasticNetCV(l1_ratio, cv=PredefinedSplit(shardfit's folds))`` on the dense design."""

    def __init__(self, problem: Problem, outcome: Outcome, *, tol: float) -> None:
        import sklearn.linear_model  # noqa: F401 - imported before the clock starts

        import benchmarks.design  # noqa: F401
        import shardfit

        self.problem, self.outcome, self.tol = problem, outcome, tol
        source = shardfit.read_parquet(str(problem.parquet))
        # The folds shardfit assigns: by partition key and row position as read.
        self.folds = np.concatenate(
            [
                shardfit.cv_folds(part.key, np.arange(part.read(["y"]).table.num_rows), FOLDS)
                for part in source.partitions
            ]
        )
        outcome.notes.append(f"tol={tol:g}, {FOLDS} folds (shardfit's), in memory")

    def fit(self) -> dict[str, float]:
        from sklearn.linear_model import ElasticNetCV
        from sklearn.model_selection import PredefinedSplit

        X, y, names = _dense(self.problem)
        model = ElasticNetCV(
            l1_ratio=L1_RATIO, cv=PredefinedSplit(self.folds), tol=self.tol, max_iter=100_000
        ).fit(X[:, 1:], y)
        self.outcome.notes[1:] = [f"alpha={model.alpha_:.6g}"]
        return {
            "Intercept": float(model.intercept_),
            **dict(zip(names[1:], map(float, model.coef_))),
        }

    def close(self) -> None:
        pass


class ShardfitElasticNet:
    """``shardfit.elastic_net(formula, parquet, l1_ratio, cv=10)`` on a warm session."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import pandas as pd

        import shardfit
        from shardfit.engine import session

        self.problem, self.outcome = problem, outcome
        started = time.perf_counter()
        self.session = session().open()
        # A tiny fit first, so that module imports (here and in the workers) are start-up.
        tiny = pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20.0) % 3})
        shardfit.elastic_net(
            "y ~ x", shardfit.from_pandas(tiny, 2), alpha=0.1, backend=self.session
        )
        outcome.startup_seconds = time.perf_counter() - started
        outcome.notes.append(f"{self.session.name}, {self.session.nworkers} workers")

    def fit(self) -> dict[str, float]:
        import shardfit

        results = shardfit.elastic_net(
            self.problem.formula,
            shardfit.read_parquet(str(self.problem.parquet)),
            l1_ratio=L1_RATIO,
            cv=FOLDS,
            backend=self.session,
        )
        self.outcome.notes[1:] = [f"alpha={results.alpha_:.6g}, {results.passes} passes"]
        return {str(k): float(v) for k, v in results.params.items()}

    def close(self) -> None:
        self.session.close()


def _tight(problem: Problem, outcome: Outcome) -> SklearnElasticNetCV:
    return SklearnElasticNetCV(problem, outcome, tol=1e-10)


def _default(problem: Problem, outcome: Outcome) -> SklearnElasticNetCV:
    return SklearnElasticNetCV(problem, outcome, tol=1e-4)


# -- plans ---------------------------------------------------------------------------------
def _every(rows: int, mode: Mode, repeats: int) -> tuple[int, str]:
    return repeats, ""


def _once_above(limit: int, skip: int | None = None, why: str = "") -> Any:
    def plan(rows: int, mode: Mode, repeats: int) -> tuple[int, str]:
        if skip is not None and rows > skip:
            raise Skip(why)
        if rows > limit:
            return 1, "1 repeat (time budget)"
        return repeats, ""

    return plan


def _in_memory(copies: float, skip: int | None = None, why: str = "") -> Any:
    """Skip where ``copies`` dense copies of the design would not fit in free memory."""

    def plan(rows: int, mode: Mode, repeats: int) -> tuple[int, str]:
        need = rows * 230 * 8 * copies
        available = psutil.virtual_memory().available
        if need > 0.9 * available:
            raise Skip(f"in memory it needs ~{need / GB:.0f} GB; {available / GB:.0f} GB available")
        return _once_above(100_000, skip, why)(rows, mode, repeats)

    return plan


FORMULA = default_formula("linreg")
#: --quick: the 20 numeric columns and the 10-level factor (30 design columns, not 229).
#: statsmodels' debiased lasso runs a node-wise lasso per column and partition in
#: Python (9 s at 229 columns); the accuracy check is the same. 20,000 rows: the file
#: the linear cases' --quick runs simulate already.
QUICK_FORMULA = FORMULA.replace(" + C(g200)", "")
QUICK_ROWS = (20_000,)

CASES: dict[str, Case] = {
    "debiased_lasso": Case(
        name="debiased_lasso",
        description="one-shot debiased lasso on 8 partitions of linreg vs statsmodels",
        make_data=make_data,
        formula=FORMULA,
        quick_formula=QUICK_FORMULA,
        sizes={"quick": QUICK_ROWS, "full": (10_000, 100_000)},
        tools=(
            Tool(READ_TOOL, "limit", ReadParquet),
            Tool(
                "statsmodels DistributedModel (debiased)",
                "reference",
                StatsmodelsDebiased,
                requires=("statsmodels",),
                plan=_once_above(10_000),
            ),
            Tool(
                "shardfit DistributedModel (processes)", "shardfit", _warm, rtol=1e-6, plan=_every
            ),
            Tool("shardfit DistributedModel (serial)", "shardfit", _serial, rtol=1e-6, plan=_every),
        ),
        references=("statsmodels DistributedModel (debiased)",),
        goals="≥ 20× faster than statsmodels' DistributedModel at equal estimates (issue 7).",
    ),
    "elastic_net": Case(
        name="elastic_net",
        description="exact elastic-net path with 10-fold CV from one pass vs ElasticNetCV",
        make_data=make_data,
        formula=FORMULA,
        quick_formula=QUICK_FORMULA,
        # scikit-learn's CV at 1M rows and 229 columns takes several minutes per fit.
        sizes={"quick": QUICK_ROWS, "full": (500_000, 5_000_000)},
        tools=(
            Tool(READ_TOOL, "limit", ReadParquet),
            Tool(
                "scikit-learn ElasticNetCV (tol=1e-10)",
                "reference",
                _tight,
                requires=("sklearn",),
                plan=_in_memory(3, skip=500_000, why="time budget: the tight reference"),
            ),
            Tool(
                "scikit-learn ElasticNetCV (default tol)",
                "peer",
                _default,
                requires=("sklearn",),
                exact=False,
                plan=_in_memory(3),
            ),
            Tool(
                "shardfit elastic_net (one pass)",
                "shardfit",
                ShardfitElasticNet,
                rtol=1e-6,
                plan=_every,
            ),
        ),
        references=("scikit-learn ElasticNetCV (tol=1e-10)",),
        goals=(
            "the exact path with 10-fold CV from one pass over 5M rows faster than "
            "scikit-learn's ElasticNetCV on the same data in memory (issue 7)."
        ),
    ),
}
