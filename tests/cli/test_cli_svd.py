"""``shardfit svd DATA FORMULA [--center] ...`` as a program, checked against scikit-learn's
PCA and NumPy's SVD on the same design in memory."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from cli_cases import run_shardfit
from formulaic import model_matrix
from sklearn.decomposition import PCA

import shardfit

FORMULA = "0 + a + b + c + a:b + C(g)"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame]:
    rng = np.random.default_rng(12)
    n = 3_000
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(2.0, 3.0, size=n),
            "c": rng.uniform(size=n),
            "g": rng.choice(["u", "v", "w"], size=n),
        }
    )
    path = tmp_path_factory.mktemp("svd") / "data.csv"
    frame.to_csv(path, index=False)
    return str(path), frame


def test_pca_prints_sklearns_numbers_saves_and_writes_scores(data, tmp_path) -> None:
    path, frame = data
    design = np.asarray(model_matrix(FORMULA, frame), dtype=np.float64)
    reference = PCA(svd_solver="full").fit(design)
    out, scores = tmp_path / "pca.json", tmp_path / "scores"
    done = run_shardfit(
        "svd", path, FORMULA, "--center", "--backend", "serial", "--partition-rows", "700",
        "--components", "3", "--out", str(out), "--scores", str(scores),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    number = r"([-+0-9.eE]+)"
    printed = re.findall(rf"^PC\d+\s+{number}\s+{number}\s+{number}\s", done.stdout, re.MULTILINE)
    assert len(printed) == design.shape[1]
    singular = np.array([float(s) for s, _, _ in printed])
    ratio = np.array([float(r) for _, _, r in printed])
    # 6 digits shown; the centred dummies of C(g) sum to zero: PC7 is zero, and named.
    np.testing.assert_allclose(singular, reference.singular_values_, rtol=1e-5, atol=1e-9)
    assert "PC7 is numerically zero: a combination of C(g)[u], C(g)[v], C(g)[w]" in done.stdout
    np.testing.assert_allclose(ratio, reference.explained_variance_ratio_, atol=1e-4)
    assert "loadings (rows of Vt):" in done.stdout
    # The saved results carry every digit.
    loaded = shardfit.load_results(out)
    s_max = reference.singular_values_[0]  # backward stable: errors of eps * s_max
    np.testing.assert_allclose(
        loaded.singular_values, reference.singular_values_, atol=1e-12 * s_max
    )
    np.testing.assert_allclose(loaded.components_array, reference.components_, atol=1e-12)
    # The scores of every row on the 3 leading components, in row order.
    table = pq.read_table(scores).to_pandas().sort_values("row")
    assert table["row"].tolist() == list(range(len(frame)))
    expected = reference.transform(design)[:, :3]
    np.testing.assert_allclose(table[["PC1", "PC2", "PC3"]].to_numpy(), expected, atol=1e-10)


def test_user_errors_exit_2_with_one_line(data, tmp_path) -> None:
    path, _ = data
    with_response = run_shardfit("svd", path, "a ~ b + c", "--backend", "serial")
    assert with_response.returncode == 2
    assert "right-hand-side formula" in with_response.stderr
    assert "Traceback" not in with_response.stderr
    missing_column = run_shardfit("svd", path, "0 + a + nothere", "--backend", "serial")
    assert missing_column.returncode == 2 and "nothere" in missing_column.stderr
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    occupied = run_shardfit(
        "svd", path, "0 + a + b", "--backend", "serial", "--scores", str(tmp_path / "full")
    )
    assert occupied.returncode == 2 and "new or empty directory" in occupied.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
