"""Peers of the logistic GLM case: Spark MLlib's IRLS GLM and dask-ml's Newton solver.

Both fit the same model as ``default_formula("logit")``: the intercept, ``x1``–``x3``,
their pairwise products and their squares. Neither speaks formulaic, so they read the
simulator's precomputed product and square columns (``x1_x2`` … ``x3_sq``), which hold
exactly the values the formula builds, and their coefficients are renamed to formulaic's
term names for the accuracy check.
"""

from __future__ import annotations

from benchmarks.case import Outcome, Problem
from benchmarks.peers.dask_peer import LocalDask

__all__ = ["DaskMLLogistic", "SparkGLM"]

#: Column of the simulated data -> formulaic's name of the same design column.
FEATURES = {
    "x1": "x1",
    "x2": "x2",
    "x3": "x3",
    "x1_x2": "x1:x2",
    "x1_x3": "x1:x3",
    "x2_x3": "x2:x3",
    "x1_sq": "I(x1 ** 2)",
    "x2_sq": "I(x2 ** 2)",
    "x3_sq": "I(x3 ** 2)",
}


class SparkGLM:
    """Spark MLlib ``GeneralizedLinearRegression(family="binomial")`` (IRLS), ``local[2]``.

    The JVM starts when the estimator is built; that time is reported apart.
    """

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        from benchmarks.peers.spark_peer import local_session

        self.problem = problem
        self.spark = local_session(problem, outcome, "shardfit-bench-glm")

    def fit(self) -> dict[str, float]:
        from pyspark.ml.feature import VectorAssembler
        from pyspark.ml.regression import GeneralizedLinearRegression

        columns = list(FEATURES)
        frame = self.spark.read.parquet(str(self.problem.parquet)).select(*columns, "y")
        prepared = VectorAssembler(inputCols=columns, outputCol="features").transform(frame)
        estimator = GeneralizedLinearRegression(
            family="binomial",
            link="logit",
            maxIter=100,
            tol=1e-10,
            regParam=0.0,
            featuresCol="features",
            labelCol="y",
        )
        model = estimator.fit(prepared)
        params = {"Intercept": float(model.intercept)}
        params.update(
            (FEATURES[c], float(v)) for c, v in zip(columns, model.coefficients.toArray())
        )
        return params

    def close(self) -> None:
        self.spark.stop()


class DaskMLLogistic(LocalDask):
    """dask-ml ``LogisticRegression(solver="newton", penalty="none")`` on a 2-worker
    LocalCluster, from the Parquet data as Dask arrays."""

    def fit(self) -> dict[str, float]:
        import dask.dataframe as dd
        from dask_ml.linear_model import LogisticRegression

        columns = list(FEATURES)
        frame = dd.read_parquet(str(self.problem.parquet), columns=[*columns, "y"])
        X = frame[columns].to_dask_array(lengths=True)
        y = frame["y"].to_dask_array(lengths=True)
        model = LogisticRegression(
            penalty="none", solver="newton", fit_intercept=True, max_iter=100, tol=1e-10
        )
        model.fit(X, y)
        params = {"Intercept": float(model.intercept_)}
        params.update((FEATURES[c], float(v)) for c, v in zip(columns, model.coef_.ravel()))
        return params
