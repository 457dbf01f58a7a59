"""Review of the regularized results (review 2): rows counted, summaries that stay in
their columns, and save/load round trips that keep both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import ElasticNet

import shardfit
from shardfit.results.summary import Summary


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(20261201)
    n = 600
    data = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    data["y"] = data["x1"] - 0.3 * data["x2"] + rng.normal(size=n)
    data.loc[[5, 17, 400], "x1"] = np.nan
    return data


def test_elastic_net_counts_the_rows_it_dropped(frame, tmp_path) -> None:
    fit = shardfit.elastic_net("y ~ x1 + x2", frame, l1_ratio=0.5, alpha=0.05, backend="serial")
    complete = frame.dropna()
    reference = ElasticNet(alpha=0.05, l1_ratio=0.5, tol=1e-12).fit(
        complete[["x1", "x2"]], complete["y"]
    )
    np.testing.assert_allclose(fit.coef_, reference.coef_, rtol=1e-8)
    assert (fit.nobs, fit.rows_read) == (597, 600)
    assert "3 of the 600 rows read were not used" in " ".join(str(fit.summary()).split())
    loaded = shardfit.load_results(fit.save(tmp_path / "enet.json"))
    assert (loaded.nobs, loaded.rows_read) == (597, 600)
    np.testing.assert_array_equal(loaded.coef_, fit.coef_)
    assert str(loaded.summary()) == str(fit.summary())


def test_header_values_never_run_into_the_right_column(frame) -> None:
    long_path = "/data/" + "very-long-directory-name/" * 4 + "part-*.parquet"
    summary = Summary(
        title="t",
        left=(("Data:", long_path), ("Method:", "x" * 60)),
        right=(("alpha:", "0.05"), ("L1_wt:", "1")),
        coefficients=pd.DataFrame({"coef": [1.0]}, index=["x"]),
        notes=(),
    )
    lines = str(summary).splitlines()[2:4]
    for line, label in zip(lines, ("alpha:", "L1_wt:"), strict=True):
        # The right-hand label starts at its column, after at least two spaces.
        assert line.index(label) == 39 and line[37:39] == "  ", line
    assert lines[0].startswith("Data:") and "part-*.parquet" in lines[0]  # the end is kept
    fit = shardfit.elastic_net("y ~ x1 + x2", frame, alpha=0.05, backend="serial")
    summary = fit.summary()
    rows = max(len(summary.left), len(summary.right))
    for line in str(summary).splitlines()[2 : 2 + rows]:
        assert len(line) <= 39 or line[37:39] == "  ", line


def test_elastic_net_counts_the_rows_the_reader_skipped(tmp_path) -> None:
    rng = np.random.default_rng(9)
    x = rng.normal(size=400)
    lines = ["x1,y", *(f"{a:.6f},{2 * a + b:.6f}" for a, b in zip(x, rng.normal(size=400)))]
    lines.insert(120, "1.0,2.0,an extra field")
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    fit = shardfit.elastic_net(
        "y ~ x1", shardfit.read_csv(path, on_bad_lines="skip"), alpha=0.01, backend="serial"
    )
    assert (fit.nobs, fit.rows_read, fit.rows_skipped) == (400, 400, 1)
    assert "skipped 1 malformed row" in " ".join(str(fit.summary()).split())
