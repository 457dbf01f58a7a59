"""Tests of the simulators: determinism, shapes, types, and that fits find the truth."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import statsmodels.api as sm
from formulaic import model_matrix

from shardfit.data.simulate import (
    KINDS,
    RNG_BLOCK_ROWS,
    default_formula,
    simulate,
    simulate_table,
    true_params,
)

SCHEMAS = {
    "linreg": [*(f"x{j}" for j in range(1, 21)), "g10", "g200", "w", "y"],
    "logit": ["x1", "x2", "x3", "x1_x2", "x1_x3", "x2_x3", "x1_sq", "x2_sq", "x3_sq", "y"],
    "poisson": ["x1", "x2", "x3", "x4", "region", "exposure", "y"],
}


def _fit_frame(kind: str, rows: int, seed: int) -> tuple[pd.Series, pd.DataFrame]:
    frame = simulate_table(kind, rows, seed=seed).to_pandas()
    y, x = model_matrix(default_formula(kind), frame)
    return y.iloc[:, 0], x


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_seed_gives_identical_files(tmp_path, kind, suffix):
    first = simulate(kind, 1_000, tmp_path / f"a{suffix}", seed=7)
    second = simulate(kind, 1_000, tmp_path / f"b{suffix}", seed=7)
    other = simulate(kind, 1_000, tmp_path / f"c{suffix}", seed=8)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


@pytest.mark.parametrize("kind", KINDS)
def test_chunk_rows_do_not_change_the_data(tmp_path, kind):
    rows = 2 * RNG_BLOCK_ROWS + 1_001  # three RNG blocks, the last one partial
    tables = []
    for chunk_rows in (997, RNG_BLOCK_ROWS, 250_000):
        path = simulate(kind, rows, tmp_path / f"{chunk_rows}.parquet", chunk_rows=chunk_rows)
        meta = pq.read_metadata(path)
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert sizes == [chunk_rows] * (rows // chunk_rows) + [rows % chunk_rows] * (
            rows % chunk_rows > 0
        )
        tables.append(pq.read_table(path))
    assert tables[0].num_rows == rows
    assert tables[0].equals(tables[1])
    assert tables[0].equals(tables[2])


@pytest.mark.parametrize("kind", KINDS)
def test_rows_depend_only_on_seed_and_index(kind):
    whole = simulate_table(kind, RNG_BLOCK_ROWS + 500, seed=3)
    head = simulate_table(kind, 100, seed=3)
    middle = simulate_table(kind, 1_000, seed=3, start=RNG_BLOCK_ROWS - 500)
    assert head.equals(whole.slice(0, 100))
    assert middle.equals(whole.slice(RNG_BLOCK_ROWS - 500, 1_000))


def test_kinds_draw_independent_streams():
    logit = simulate_table("logit", 1_000, seed=0).column("x1").to_numpy()
    poisson = simulate_table("poisson", 1_000, seed=0).column("x1").to_numpy()
    assert abs(np.corrcoef(logit, poisson)[0, 1]) < 0.1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rows", [0, 1, 12_345])
def test_row_counts_and_column_types(tmp_path, kind, rows):
    csv = simulate(kind, rows, tmp_path / "d.csv", chunk_rows=5_000)
    parquet = simulate(kind, rows, tmp_path / "d.parquet", chunk_rows=5_000)
    table = pq.read_table(parquet)
    assert table.num_rows == rows
    assert table.column_names == SCHEMAS[kind]
    for field in table.schema:
        if field.name in ("g10", "g200", "region"):
            assert field.type == pa.string()
        elif field.name == "y" and kind != "linreg":
            assert field.type == pa.int64()
        else:
            assert field.type == pa.float64()
    with csv.open() as lines:
        assert sum(1 for _ in lines) == rows + 1


@pytest.mark.parametrize("kind", KINDS)
def test_csv_holds_the_same_values_as_parquet(tmp_path, kind):
    csv = simulate(kind, 3_000, tmp_path / "d.csv", seed=11)
    gz = simulate(kind, 3_000, tmp_path / "d.csv.gz", seed=11)
    from_csv = pacsv.read_csv(csv)
    assert from_csv.equals(simulate_table(kind, 3_000, seed=11))
    with gzip.open(gz, "rb") as file:
        assert file.read() == csv.read_bytes()


def test_value_ranges_and_frequencies():
    table = simulate_table("linreg", 100_000, seed=1).to_pandas()
    assert table["w"].between(0.5, 2.0).all()
    assert table["g10"].nunique() == 10
    assert table["g200"].nunique() == 200
    counts = table["g200"].value_counts()
    assert counts["L000"] > 10 * counts["L199"]  # Zipf-like, not uniform
    assert np.corrcoef(table["x1"], table["x2"])[0, 1] == pytest.approx(0.6, abs=0.01)
    assert table["x5"].std() == pytest.approx(1.0, abs=0.01)
    logit = simulate_table("logit", 10_000, seed=1).to_pandas()
    assert set(logit["y"].unique()) == {0, 1}
    np.testing.assert_array_equal(logit["x1_x2"], logit["x1"] * logit["x2"])
    np.testing.assert_array_equal(logit["x3_sq"], logit["x3"] ** 2)
    poisson = simulate_table("poisson", 10_000, seed=1).to_pandas()
    assert (poisson["y"] >= 0).all()
    assert poisson["exposure"].between(0.5, 3.0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_true_params_name_the_design_columns(kind):
    _, x = _fit_frame(kind, 20_000, seed=0)
    assert set(x.columns) == set(true_params(kind))


def test_linreg_design_has_229_columns():
    _, x = _fit_frame("linreg", 20_000, seed=0)
    assert x.shape == (20_000, 229)


def test_logit_coefficients_follow_the_notebook():
    params = true_params("logit")
    assert list(params) == [
        "Intercept",
        "x1",
        "x2",
        "x3",
        "x1:x2",
        "x1:x3",
        "x2:x3",
        "I(x1 ** 2)",
        "I(x2 ** 2)",
        "I(x3 ** 2)",
    ]
    np.testing.assert_allclose(list(params.values()), 0.9 - np.arange(10) * 0.8 / 9, atol=1e-15)
    assert default_formula("logit") == (
        "y ~ x1 + x2 + x3 + x1:x2 + x1:x3 + x2:x3 + I(x1 ** 2) + I(x2 ** 2) + I(x3 ** 2)"
    )


def _assert_recovers(fit, truth: dict[str, float], *, z_max: float) -> np.ndarray:
    expected = pd.Series(truth)[fit.params.index]
    z = ((fit.params - expected) / fit.bse).to_numpy()
    assert np.abs(z).max() < z_max, fit.params[np.abs(z) >= z_max]
    return z


def test_linreg_wls_and_ols_recover_the_truth():
    y, x = _fit_frame("linreg", 20_000, seed=2)
    w = simulate_table("linreg", 20_000, seed=2).column("w").to_numpy()
    wls = sm.WLS(y, x, weights=w).fit(method="qr")
    z = _assert_recovers(wls, true_params("linreg"), z_max=4.5)
    # The z-scores of 229 unbiased estimates: their squares sum to about chi2(229).
    assert 160 < (z**2).sum() < 310
    assert wls.scale == pytest.approx(1.0, rel=0.03)  # noise sd is 1/sqrt(w)
    ols = sm.OLS(y, x).fit(method="qr")
    _assert_recovers(ols, true_params("linreg"), z_max=4.5)
    assert ols.bse["x1"] > wls.bse["x1"]  # the weights are the efficient choice


def test_logit_fit_recovers_the_ten_coefficients():
    y, x = _fit_frame("logit", 100_000, seed=4)
    fit = sm.Logit(y, x).fit(disp=False)
    _assert_recovers(fit, true_params("logit"), z_max=4.0)
    expected = pd.Series(true_params("logit"))[fit.params.index]
    np.testing.assert_allclose(fit.params, expected, atol=0.03)


def test_poisson_fit_with_offset_recovers_the_truth():
    frame = simulate_table("poisson", 100_000, seed=5).to_pandas()
    y, x = model_matrix(default_formula("poisson"), frame)
    fit = sm.GLM(
        y.iloc[:, 0], x, family=sm.families.Poisson(), offset=np.log(frame["exposure"])
    ).fit()
    _assert_recovers(fit, true_params("poisson"), z_max=4.0)


def test_bad_arguments_are_explained(tmp_path):
    with pytest.raises(ValueError, match="'kind' parameter of simulate must be one of linreg"):
        simulate("probit", 10, tmp_path / "d.csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'rows' parameter .* Got -1 instead"):
        simulate("logit", -1, tmp_path / "d.csv")
    with pytest.raises(ValueError, match=r"'chunk_rows' parameter .* Got 0 instead"):
        simulate("logit", 10, tmp_path / "d.csv", chunk_rows=0)
    with pytest.raises(ValueError, match=r"Cannot tell the format of 'd\.txt'"):
        simulate("logit", 10, "d.txt")
    with pytest.raises(ValueError, match=r"'start' parameter of simulate_table .* Got -3"):
        simulate_table("logit", 10, start=-3)
    with pytest.raises(ValueError, match=r"'seed' parameter of simulate .* Got 1.5 instead"):
        simulate("logit", 10, tmp_path / "d.csv", seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        true_params("logit")["nope"]
    path = simulate("logit", 10, tmp_path / "d.txt", format="csv")
    assert path.read_text().startswith('"x1","x2"')
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_failure_midway_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    import shardfit.data.simulate as module

    path = tmp_path / "d.parquet"
    path.write_bytes(b"old")
    real_block = module._block

    def failing_block(kind: str, seed: int, index: int) -> pa.Table:
        if index == 1:
            raise RuntimeError("disk on fire")
        return real_block(kind, seed, index)

    monkeypatch.setattr(module, "_block", failing_block)
    with pytest.raises(RuntimeError, match="disk on fire"):
        simulate("logit", 2 * RNG_BLOCK_ROWS, path, chunk_rows=1_000)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.parquet"]
