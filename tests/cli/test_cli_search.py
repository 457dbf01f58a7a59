"""``shardfit search CONFIG.toml`` and ``shardfit best STORE`` as commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shardfit import open_store
from shardfit.cli.main import main
from shardfit.data.simulate import simulate

CONFIG = """
data = "logit.parquet"
target = "y"
store = "models.db"
batch_rows = 250
backend = "serial"

[grid.featurizer]
columns = [["x1", "x2"], ["x1", "x2", "x3"]]
n_features = 4096
degree = [1, 2]

[grid.learner]
estimator = "ftrl"
alpha = [0.0001, 0.01]
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_search")
    simulate("logit", 4000, path / "logit.parquet", seed=2)
    (path / "search.toml").write_text(CONFIG)
    return path


def test_search_then_best(folder, capsys) -> None:
    assert main(["search", str(folder / "search.toml"), "--no-progress", "-n", "3"]) == 0
    out = capsys.readouterr().out
    assert "8 configurations: 8 fitted, 0 dropped by halving, 0 already in the store" in out
    assert "best 3 by progressive log_loss" in out
    with open_store(folder / "models.db") as store:
        best = store.best(3)
    assert best[0].key in out
    # The store is read by a separate program, as JSON lines, without loading models.
    done = subprocess.run(
        [sys.executable, "-m", "shardfit", "best", str(folder / "models.db"), "-n", "3", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["key"] for line in lines] == [r.key for r in best]
    assert [line["score"] for line in lines] == [r.score for r in best]
    assert lines[0]["params"] == best[0].params
    # Run again: everything is in the store already.
    assert main(["search", str(folder / "search.toml"), "--no-progress"]) == 0
    assert "8 already in the store" in capsys.readouterr().out


def test_bad_configurations_are_reported(folder, capsys) -> None:
    bad = folder / "bad.toml"
    bad.write_text(CONFIG.replace('target = "y"', 'target = "y"\ncolour = "red"'))
    assert main(["search", str(bad)]) == 2
    assert "unknown key(s) ['colour']" in capsys.readouterr().err
    bad.write_text(CONFIG.replace('target = "y"', 'target = "nope"'))
    assert main(["search", str(bad)]) == 2
    assert "target column 'nope' is not in" in capsys.readouterr().err
    assert main(["best", str(folder / "missing.db")]) == 2
    assert "no results store" in capsys.readouterr().err


def test_weighted_search_from_the_config_equals_weighted_stream_fit(tmp_path, capsys) -> None:
    import numpy as np
    import pyarrow.parquet as pq

    from shardfit import HashingFeaturizer, stream_fit
    from shardfit.streaming.space import build_learner

    table = pq.read_table(simulate("logit", 3000, tmp_path / "logit.parquet", seed=4))
    weights = np.random.default_rng(0).uniform(0.0, 2.0, table.num_rows)
    pq.write_table(table.append_column("w", [weights]), tmp_path / "logit.parquet")
    config = CONFIG.replace('store = "models.db"', 'store = "models.db"\nweights = "w"')
    (tmp_path / "search.toml").write_text(config)
    assert main(["search", str(tmp_path / "search.toml"), "--no-progress"]) == 0
    with open_store(tmp_path / "models.db") as store:
        best = store.best(1)[0]
    alone = stream_fit(
        build_learner(best.params["learner"]),
        HashingFeaturizer(**best.params["featurizer"]),
        tmp_path / "logit.parquet",
        target="y",
        weights="w",
        batch_rows=250,
    )
    assert best.score == alone.score
    unweighted = stream_fit(
        build_learner(best.params["learner"]),
        HashingFeaturizer(**best.params["featurizer"]),
        tmp_path / "logit.parquet",
        target="y",
        batch_rows=250,
    )
    assert best.score != unweighted.score
