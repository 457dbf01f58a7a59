"""Case family ``glm``: logistic regression by IRLS on the simulated ``logit`` data.

``glm_logit`` fits ``default_formula("logit")``, the full quadratic formula in ``x1,
x2, x3`` (10 design columns: main effects, the three products and the three squares,
built by the formula from the three raw columns), from Parquet.

Tools: the pyarrow read of the four columns (the physical limit), the same IRLS in
plain NumPy on the design already in memory (the compute floor: what the iterations
alone cost with BLAS on every core), statsmodels' GLM in memory (the reference), and
shardfit's ``logit`` on a warm session. shardfit's notes
give its passes: the schema pass, the first data pass (read, encode, cache, and the
first IRLS step), the mean, median and largest later IRLS pass (from the partition
cache) and their ratios to the first.
"""

from __future__ import annotations

import time
from functools import partial

import psutil

from benchmarks.case import Case, DataSpec, Mode, Outcome, Problem, Skip, Tool
from benchmarks.peers import glm_peers
from benchmarks.report import READ_TOOL
from shardfit.data.simulate import default_formula

__all__ = ["CASES", "ShardfitLogit", "make_data", "make_estimator"]

QUICK_ROWS = (50_000,)
FULL_ROWS = (1_000_000, 5_000_000)
COLUMNS = ("x1", "x2", "x3", "y")
#: Peak bytes per row of statsmodels' in-memory GLM with 10 columns (measured at 1M
#: rows: 1.54 GiB).
SM_BYTES_PER_ROW = 1_700
GB = 1e9


def make_data(rows: int) -> DataSpec:
    """The data of this family at ``rows``: ``shardfit simulate logit --seed 0``."""
    return DataSpec("logit", rows, seed=0)


class ReadColumns:
    """pyarrow ``read_table`` of the four raw columns, then NumPy arrays (the case's
    ``pyarrow read Parquet → NumPy``)."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.path = str(problem.parquet)

    def fit(self) -> None:
        import pyarrow.parquet as pq

        table = pq.read_table(self.path, columns=list(COLUMNS))
        arrays = [table[name].to_numpy() for name in COLUMNS]
        assert all(len(a) == table.num_rows for a in arrays)

    def close(self) -> None:
        pass


class InMemoryIRLS:
    """The compute floor of this IRLS: statsmodels' iteration (start values, weights,
    working response, deviance, ``atol=1e-8`` on the deviance) in plain NumPy on the
    10-column design already in memory, ``X' W X`` and ``X beta`` by BLAS with every
    core. Reading the data and building the design are not timed: the time is what
    the iterations alone cost, the part no reading strategy can remove."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import numpy as np
        import pyarrow.parquet as pq

        table = pq.read_table(str(problem.parquet), columns=list(COLUMNS))
        x1, x2, x3, y = (table[name].to_numpy() for name in COLUMNS)
        columns = [np.ones_like(x1), x1, x2, x3, x1 * x2, x1 * x3, x2 * x3, x1**2, x2**2, x3**2]
        self.X = np.asfortranarray(np.column_stack(columns))
        self.y = np.ascontiguousarray(y, dtype=np.float64)
        self.names = [
            "Intercept", "x1", "x2", "x3", "x1:x2", "x1:x3", "x2:x3",
            "I(x1 ** 2)", "I(x2 ** 2)", "I(x3 ** 2)",
        ]  # fmt: skip
        self.outcome = outcome

    def fit(self) -> dict[str, float]:
        import numpy as np
        from scipy.linalg import cho_factor, cho_solve

        X, y = self.X, self.y

        def deviance(mu: np.ndarray) -> float:
            return float(2 * np.sum(-np.log(np.where(y == 1, mu, 1 - mu) + 1e-20)))

        mu = (y + 0.5) / 2
        eta = np.log(mu / (1 - mu))
        dev, old, iterations = deviance(mu), np.inf, 0
        while abs(dev - old) > 1e-8 and iterations < 100:
            w = mu * (1 - mu)
            z = eta + (y - mu) / w
            Xw = X * np.sqrt(w)[:, None]
            beta = cho_solve(cho_factor(Xw.T @ Xw), Xw.T @ (np.sqrt(w) * z))
            eta = X @ beta
            mu = 1 / (1 + np.exp(-eta))
            old, dev = dev, deviance(mu)
            iterations += 1
        note = f"{iterations} iterations, design in memory (not timed)"
        if note not in self.outcome.notes:
            self.outcome.notes.append(note)
        return dict(zip(self.names, (float(b) for b in beta), strict=True))

    def close(self) -> None:
        pass


class KernelFloorIRLS:
    """The floor of shardfit's own IRLS passes: the same compiled step the workers run
    (row quantities, centred weighted copy and Gram, per 8,192-row block of 250,000-row
    partitions), on the design already in memory, the partitions split between two
    threads (the loops release the GIL), with no reading, encoding, cache or engine.
    Its passes are statsmodels' iterations plus one, as shardfit's are: what remains
    of ``total ≤ 4× the read`` once only the passes themselves are counted."""

    PARTITION_ROWS = 250_000

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import numpy as np
        import pyarrow.parquet as pq
        import scipy.sparse as sp

        from shardfit.models import glm_tasks

        table = pq.read_table(str(problem.parquet), columns=list(COLUMNS))
        x1, x2, x3, y = (table[name].to_numpy() for name in COLUMNS)
        design = [np.ones_like(x1), x1, x2, x3, x1 * x2, x1 * x3, x2 * x3, x1**2, x2**2, x3**2]
        self.names = [
            "Intercept", "x1", "x2", "x3", "x1:x2", "x1:x3", "x2:x3",
            "I(x1 ** 2)", "I(x2 ** 2)", "I(x3 ** 2)",
        ]  # fmt: skip
        self.blocks = []
        for a in range(0, len(y), self.PARTITION_ROWS):
            b = min(a + self.PARTITION_ROWS, len(y))
            dense = np.asfortranarray(np.column_stack([c[a:b] for c in design]))
            self.blocks.append(
                glm_tasks._Block(
                    dense=dense,
                    sparse=sp.csc_matrix((b - a, 0)),
                    y=np.ascontiguousarray(y[a:b], dtype=np.float64),
                    weights=None,
                    offset=None,
                    binary=True,
                )
            )
        shift = np.mean([blk.dense.mean(axis=0) for blk in self.blocks], axis=0)
        shift[0] = 0.0  # the intercept column is not centred
        self.shift = np.ascontiguousarray(shift)
        self.y_mean = float(np.mean(y))
        self.outcome = outcome
        # Imports and the compiled loops' first calls before the clock, as the
        # workers of shardfit's session are warmed.
        self._pass(self.blocks[:1], None)

    def _pass(self, blocks: list, coef: object) -> tuple[object, float]:
        import numpy as np

        from shardfit.models import _irls_kernel as kernels
        from shardfit.models import glm_tasks
        from shardfit.models.families import Binomial

        k = self.shift.size + 1
        upper = np.zeros((k, k), order="F")
        rows = glm_tasks.ROW_BLOCK
        z, sqrt_w = np.empty(rows), np.empty(rows)
        scratch = np.empty((kernels.GRAM_SCRATCH_ROWS, k), order="F")
        quantities = glm_tasks._RowQuantities(Binomial(), rows, 0.0, 1.0)
        deviance = 0.0
        for whole in blocks:
            for a, block in whole.row_blocks():
                _, unit, _, _ = quantities.write(block, coef, self.y_mean, sqrt_w, z)
                kernels.add_weighted_gram(
                    whole.dense, self.shift, sqrt_w, a, block.nrows, z, scratch, upper
                )
                deviance += unit
        return upper, deviance

    def fit(self) -> dict[str, float]:
        from concurrent.futures import ThreadPoolExecutor

        import numpy as np
        from threadpoolctl import threadpool_limits

        from shardfit.models import glm_tasks

        halves = [self.blocks[0::2], self.blocks[1::2]]
        coef, old, passes, beta = None, np.inf, 0, None
        p = self.shift.size
        with threadpool_limits(1), ThreadPoolExecutor(2) as pool:
            while passes < 100:
                parts = list(pool.map(self._pass, halves, [coef, coef]))
                passes += 1
                upper = sum(part[0] for part in parts)
                deviance = sum(part[1] for part in parts)
                if abs(deviance - old) <= 1e-8:
                    break
                old = deviance
                cross = np.triu(upper) + np.triu(upper, 1).T
                centred = np.linalg.solve(cross[:p, :p], cross[:p, p])
                beta = centred.copy()
                beta[0] -= self.shift @ centred  # back from the centred columns
                coef = glm_tasks._Coefficients(np.ascontiguousarray(beta), np.empty(0))
        note = f"{passes} passes ({passes - 1} iterations), 2 threads, design in memory"
        if note not in self.outcome.notes:
            self.outcome.notes.append(note)
        assert beta is not None
        return dict(zip(self.names, (float(b) for b in beta), strict=True))

    def close(self) -> None:
        pass


class StatsmodelsGLM:
    """``smf.glm(formula, frame, family=Binomial()).fit()`` (IRLS) on a pandas frame."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import statsmodels.formula.api  # noqa: F401 - imported before the clock starts

        self.path = problem.parquet
        self.formula = problem.formula

    def fit(self) -> dict[str, float]:
        import pandas as pd
        import statsmodels.api as sm
        import statsmodels.formula.api as smf

        frame = pd.read_parquet(self.path, columns=list(COLUMNS))
        model = smf.glm(self.formula, frame, family=sm.families.Binomial())
        del frame
        results = model.fit()
        return {str(k): float(v) for k, v in results.params.items()}

    def close(self) -> None:
        pass


class ShardfitLogit:
    """``shardfit.logit`` from Parquet on a warm session of the default backend."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        import shardfit
        from shardfit.engine import session

        self.shardfit = shardfit
        self.problem = problem
        self.outcome = outcome
        started = time.perf_counter()
        self.session = session().open()
        # Start and warm the workers (imports, compiled kernels, formula parsing) on a
        # 2,000-row sample, one partition a worker, as the peers' clusters are started
        # before their clocks: reported as startup. (Warming one worker only left the
        # other to import while the first fit's reading pass ran: that worker then took
        # one partition of twenty and the first IRLS pass re-encoded the others.)
        sample = next(pq.ParquetFile(problem.parquet).iter_batches(2_000))  # only these rows
        warm = shardfit.from_arrow(
            pa.Table.from_batches([sample]), npartitions=self.session.nworkers
        )
        shardfit.logit(problem.formula, warm).fit(backend=self.session)
        outcome.startup_seconds = time.perf_counter() - started
        outcome.notes.append(
            f"{self.session.name}, {self.session.nworkers} workers, warmed by a 2,000-row "
            "fit, one partition a worker"
        )

    def fit(self) -> dict[str, float]:
        source = self.shardfit.read_parquet(str(self.problem.parquet))
        results = self.shardfit.logit(self.problem.formula, source).fit(backend=self.session)
        passes = results.extra["passes"]
        schema = sum(s for name, s in passes if name == "schema")
        first = sum(s for name, s in passes if name == "glm-prepare")
        irls = [s for name, s in passes if name.startswith("glm-irls")]
        final = [s for name, s in passes if name == "glm-final"]
        mean_irls = sum(irls) / len(irls)
        median_irls = sorted(irls)[len(irls) // 2]
        # The first pass takes the first IRLS step too when the start allows it
        # (the binomial's does): then there is one IRLS pass fewer than iterations + 1.
        folded = len(irls) == results.iterations
        note = (
            f"{results.iterations} iterations ("
            f"{'the first step in the first pass, then ' if folded else ''}{len(irls)} IRLS "
            f"passes{', then a final pass' if final else ', the last one also evaluating the fit'}"
            f"); schema {schema:.2f} s, first pass {first:.2f} s, IRLS pass mean "
            f"{mean_irls:.3f} s ({mean_irls / first:.0%} of the first), median "
            f"{median_irls:.3f} s ({median_irls / first:.0%}), largest {max(irls):.3f} s "
            f"({max(irls) / first:.0%})"
        )
        self.outcome.notes[1:] = [note]  # the last repeat's figures
        return {str(k): float(v) for k, v in results.params.items()}

    def close(self) -> None:
        self.session.close()


def make_estimator() -> partial[ShardfitLogit]:
    """shardfit's estimator of this case."""
    return partial(ShardfitLogit)


def _every(rows: int, mode: Mode, repeats: int) -> tuple[int, str]:
    return repeats, ""


def _once_in_full(rows: int, mode: Mode, repeats: int) -> tuple[int, str]:
    if mode == "full" and rows > 1_000_000:
        raise Skip("time budget: about a minute per million rows; measured at 1M")
    if mode == "full" and repeats > 1:
        return 1, "1 repeat (time budget)"
    return repeats, ""


def _reference(rows: int, mode: Mode, repeats: int) -> tuple[int, str]:
    need = rows * SM_BYTES_PER_ROW
    available = psutil.virtual_memory().available
    if need > 0.9 * available:
        raise Skip(f"in memory it needs ~{need / GB:.0f} GB; {available / GB:.0f} GB available")
    return 1, ""  # the reference: its parameters matter, its time is indicative


CASES: dict[str, Case] = {
    "glm_logit": Case(
        name="glm_logit",
        description="logistic GLM (IRLS) on logit with the full quadratic formula, Parquet",
        make_data=make_data,
        formula=default_formula("logit"),
        sizes={"quick": QUICK_ROWS, "full": FULL_ROWS},
        tools=(
            Tool(READ_TOOL, "limit", ReadColumns, plan=_every),
            Tool("NumPy IRLS, design in memory (BLAS)", "limit", InMemoryIRLS, plan=_every),
            Tool(
                "shardfit IRLS step alone (design in memory, 2 threads)",
                "limit",
                KernelFloorIRLS,
                rtol=1e-7,
                plan=_every,
            ),
            Tool(
                "statsmodels GLM in memory",
                "peer",
                StatsmodelsGLM,
                requires=("statsmodels",),
                plan=_reference,
            ),
            Tool("shardfit logit", "shardfit", make_estimator(), rtol=1e-7, plan=_every),
            Tool(
                "Spark MLlib GLM (IRLS) local[2]",
                "peer",
                glm_peers.SparkGLM,
                requires=("pyspark", "cmd:java"),
                rtol=1e-6,
                plan=_every,
            ),
            Tool(
                "dask-ml LogisticRegression (newton)",
                "peer",
                glm_peers.DaskMLLogistic,
                requires=("dask_ml", "distributed"),
                rtol=1e-6,
                plan=_once_in_full,
            ),
        ),
        references=("statsmodels GLM in memory",),
        goals=(
            "total time ≤ 4× the pyarrow read in the same run; each IRLS iteration after "
            "the first ≤ 20% of the first pass; peak RSS flat in rows (issue 6)."
        ),
    ),
}
