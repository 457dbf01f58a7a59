"""Spark MLlib peer: ``LinearRegression(solver="normal")`` on ``local[2]``.

The JVM starts when the estimator is built (``SparkSession.getOrCreate``); that time is
reported apart. Each fit reads the Parquet file, expands the formula with ``RFormula``
(string columns one-hot encoded; ``alphabetDesc`` order makes the dropped level the
first in sorted order, as in treatment coding) and fits by the normal equations with
no regularization (``weightCol`` for WLS). The driver gets 2 GB of heap.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.case import Outcome, Problem
from benchmarks.design import parse_formula

__all__ = ["NormalSolver", "local_session"]


class NormalSolver:
    """Spark MLlib ``LinearRegression`` with the normal-equation solver."""

    def __init__(self, problem: Problem, outcome: Outcome) -> None:
        self.problem = problem
        self.terms = parse_formula(problem.formula)
        self.spark = local_session(problem, outcome, "shardfit-bench")

    def fit(self) -> dict[str, float]:
        from pyspark.ml.feature import RFormula
        from pyspark.ml.regression import LinearRegression

        terms, weights = self.terms, self.problem.weights
        frame = self.spark.read.parquet(str(self.problem.parquet)).select(*terms.columns(weights))
        rhs = " + ".join([*terms.numeric, *terms.categorical])
        formula = RFormula(
            formula=f"{terms.response} ~ {rhs}", stringIndexerOrderType="alphabetDesc"
        )
        prepared = formula.fit(frame).transform(frame)
        estimator = LinearRegression(
            solver="normal",
            regParam=0.0,
            elasticNetParam=0.0,
            fitIntercept=True,
            featuresCol="features",
            labelCol="label",
            **({"weightCol": weights} if weights else {}),
        )
        model = estimator.fit(prepared)
        names = _feature_names(prepared.schema["features"].metadata, terms.categorical)
        params = {"Intercept": float(model.intercept)}
        params.update(zip(names, (float(v) for v in model.coefficients.toArray())))
        return params

    def close(self) -> None:
        self.spark.stop()


def local_session(problem: Problem, outcome: Outcome, name: str) -> Any:
    """A ``local[2]`` SparkSession on loopback with a 2 GB driver; its start (the JVM) is
    recorded as the outcome's start-up time."""
    from pyspark.sql import SparkSession

    started = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .appName(name)
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "2g")
        .config("spark.local.dir", str(problem.scratch))
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    outcome.startup_seconds = time.perf_counter() - started
    return spark


def _feature_names(metadata: dict, categorical: tuple[str, ...]) -> list[str]:
    """formulaic's names of RFormula's feature vector (``g10_b`` -> ``C(g10)[T.b]``)."""
    attrs = metadata["ml_attr"]["attrs"]
    indexed = sorted((attr["idx"], attr["name"]) for group in attrs.values() for attr in group)
    names = []
    for _, name in indexed:
        for column in categorical:
            if name.startswith(column + "_"):
                name = f"C({column})[T.{name[len(column) + 1 :]}]"
                break
        names.append(name)
    return names
