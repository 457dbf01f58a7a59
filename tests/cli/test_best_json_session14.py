"""``shardfit best STORE --json`` writes valid JSON for a configuration with no score.

A configuration whose batches all had zero weight has a NaN score (no batch was scored);
``json.dumps`` wrote it as ``NaN``, which is not JSON: strict parsers (``jq``, other
languages, ``json.loads`` with ``parse_constant`` refusing it) rejected the line.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from cli_cases import run_shardfit

from shardfit import open_store, search


def _strict(line: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(line, parse_constant=refuse)


def test_best_json_writes_null_for_a_configuration_never_scored(tmp_path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=400), "y": rng.integers(0, 2, 400)})
    frame["w"] = 0.0  # no batch has weight: nothing is learned or scored
    data = tmp_path / "data.parquet"
    frame.to_parquet(data)
    store = tmp_path / "models.db"
    space = {"featurizer": {"columns": [["x1"]]}, "learner": {"estimator": "ftrl"}}
    search(space, str(data), target="y", store=store, batch_rows=100, weights="w",
           backend="serial")  # fmt: skip
    with open_store(store) as db:
        (result,) = db.best(5)
    assert np.isnan(result.score)
    done = run_shardfit("best", str(store), "--json")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    record = _strict(line)
    assert record["score"] is None and record["benchmark"] is None
    assert record["key"] == result.key and record["rows"] == 400
