"""Parquet data sets whose files store a column with different types.

Checked against pandas (``pandas.concat`` of the files read one by one) and
statsmodels fitted on that frame: the unified types, the values every partition
reads, the column summaries (``shardfit schema``), OLS and logit fits.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.cli.main import main
from shardfit.data.parquet import read_parquet
from shardfit.data.partition import read_labels
from shardfit.design.schema import schema_pass
from shardfit.errors import ReadError, ShardfitError

ROWS = (240, 180, 150)
GROUP = 60  # rows per row group: 4 + 3 + 3 row groups
UNIFIED = {
    "y": pa.float64(),
    "x": pa.float64(),
    "n": pa.int64(),
    "k": pa.float64(),
    "b": pa.int64(),
    "g": pa.string(),
    "z": pa.float64(),
}


def _frame(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    x = rng.normal(size=rows)
    n = rng.integers(0, 20, size=rows)
    k = rng.integers(-5, 5, size=rows).astype(np.float64)
    g = rng.choice(np.array(["a", "b", "c", "d"]), size=rows)
    z = rng.normal(size=rows)
    shift = {"a": 0.0, "b": 0.5, "c": -0.7, "d": 1.1}
    eta = 0.3 + 0.8 * x - 0.05 * n + np.array([shift[v] for v in g])
    y = eta + 0.2 * k + 0.4 * z + rng.normal(size=rows)
    b = (rng.random(rows) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return {"y": y, "x": x, "n": n, "k": k, "b": b, "g": g, "z": z}


def _tables(rng: np.random.Generator) -> list[pa.Table]:
    """Three days of one data set, each file with its own types for most columns."""
    one, two, three = (_frame(rng, rows) for rows in ROWS)
    x_missing = np.zeros(ROWS[0], dtype=bool)
    x_missing[::11] = True
    n_missing = np.zeros(ROWS[0], dtype=bool)
    n_missing[5::13] = True
    day1 = pa.table(
        {
            "y": pa.array(one["y"]),
            "x": pa.array(one["x"].astype(np.float32), mask=x_missing),
            "n": pa.array(one["n"].astype(np.int32), mask=n_missing),
            "k": pa.array(one["k"].astype(np.int64)),
            "b": pa.array(one["b"].astype(np.int8)),
            "g": pa.array(one["g"], type=pa.string()),
            "z": pa.array(one["z"]),
            "bad": pa.array([f"id{i}" for i in range(ROWS[0])]),  # text here, numbers later
            "when": pa.array(np.arange(ROWS[0]).astype("datetime64[ms]")),
        }
    )
    day2 = pa.table(
        {
            "y": pa.array(two["y"]),
            "x": pa.array(two["x"]),
            "n": pa.array(two["n"]),
            "k": pa.array(two["k"]),
            "b": pa.array(two["b"]),
            "g": pa.array(two["g"]).dictionary_encode(),
            "z": pa.nulls(ROWS[1]),  # all missing that day: Arrow type null
            "bad": pa.array(np.arange(ROWS[1])),
            "when": pa.array(np.arange(ROWS[1])),
        }
    )
    day3 = pa.table(
        {
            "y": pa.array(three["y"].astype(np.float32)),
            "x": pa.array(three["x"]),
            "n": pa.array(three["n"]),
            "k": pa.array(three["k"].astype(np.int16)),
            "b": pa.array(three["b"].astype(np.int32)),
            "g": pa.array(three["g"], type=pa.large_string()),
            "z": pa.array(three["z"]),
            "bad": pa.array(np.arange(ROWS[2])),
            "when": pa.array(np.arange(ROWS[2])),
        }
    )
    return [day1, day2, day3]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """``(directory, files, pandas.concat of the files)``."""
    rng = np.random.default_rng(20261201)
    folder = tmp_path_factory.mktemp("lake")
    files = []
    for day, table in enumerate(_tables(rng), start=1):
        path = folder / f"day={day}" / "part-0.parquet"
        path.parent.mkdir()
        pq.write_table(table, path, row_group_size=GROUP)
        files.append(path)
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    # pandas keeps the all-missing day's None objects: the column is float64 in the
    # other files, and statsmodels needs it numeric.
    frame["z"] = frame["z"].astype(np.float64)
    return folder, files, frame


@pytest.fixture(scope="module")
def clean_lake(tmp_path_factory, lake):
    """The same files less the two columns whose types do not unify."""
    _, files, frame = lake
    out = tmp_path_factory.mktemp("clean")
    for f in files:
        table = pq.read_table(f).drop_columns(["bad", "when"])
        target = out / f.parent.name / f.name
        target.parent.mkdir()
        pq.write_table(table, target, row_group_size=GROUP)
    return out, frame.drop(columns=["bad", "when"])


def test_the_files_really_store_different_types(lake):
    _, files, _ = lake
    types = [pq.read_schema(f) for f in files]
    for name in ("y", "x", "n", "k", "b", "g", "z", "bad", "when"):
        assert len({str(s.field(name).type) for s in types}) > 1, name


@pytest.mark.parametrize(("partition_rows", "nparts"), [(None, 10), (GROUP * 2, 6), (10**6, 3)])
def test_every_partition_reads_the_unified_types_and_pandas_values(lake, partition_rows, nparts):
    folder, _, frame = lake
    source = read_parquet(folder, partition_rows=partition_rows)
    assert source.npartitions == nparts
    assert source.meta["nrows"] == sum(ROWS) == len(frame)
    for name, typ in UNIFIED.items():
        assert source.schema.field(name).type == typ, name
    # pandas' own promotion of the same columns (n has nulls: pandas makes it float).
    for name in ("y", "x", "k", "b"):
        assert source.schema.field(name).type == pa.from_numpy_dtype(frame[name].dtype)
    wanted = list(UNIFIED)
    tables = [part.read(wanted).table for part in source.partitions]
    for table in tables:
        assert table.schema.equals(pa.schema([source.schema.field(c) for c in wanted]))
    table = pa.concat_tables(tables)
    assert table.num_rows == len(frame)
    for name in ("y", "x", "n", "k", "b", "z"):
        got = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        np.testing.assert_array_equal(got, frame[name].to_numpy(np.float64), err_msg=name)
    assert table.column("g").to_pylist() == frame["g"].astype(object).tolist()
    # Per-column missing counts, as pandas counts them.
    for name in ("x", "n", "z"):
        assert table.column(name).null_count == int(frame[name].isna().sum()), name
    assert [table.column(c).null_count for c in ("x", "n", "z")] == [22, 19, 180]
    # Label columns asked for dictionary-encoded (as the schema pass does) keep their values.
    # Every file's g (string, dictionary, large_string) reads as the same dictionary type.
    labels = pa.concat_tables([read_labels(p, ["g"], ["g"]).table for p in source.partitions])
    assert labels.schema.field("g").type == pa.dictionary(pa.int32(), pa.string())
    assert labels.column("g").to_pylist() == frame["g"].astype(object).tolist()


def test_dictionary_widths_null_files_and_time_units_unify(tmp_path):
    int8 = pa.dictionary(pa.int8(), pa.string())
    days = [
        {"g": pa.array(["a", "b", "a"]).dictionary_encode().cast(int8), "t": [1, 2, 3], "u": "ms"},
        {"g": pa.nulls(2), "t": [4, 5], "u": "us"},
        {"g": pa.array(["c", "a"]).dictionary_encode(), "t": [6, 7], "u": "us"},
    ]
    for i, day in enumerate(days):
        times = pa.array(day["t"], pa.timestamp(day["u"]))
        pq.write_table(pa.table({"g": day["g"], "t": times}), tmp_path / f"{i}.parquet")
    source = read_parquet(tmp_path)
    assert source.schema.types == [pa.string(), pa.timestamp("us")]
    frame = pd.concat([pd.read_parquet(tmp_path / f"{i}.parquet") for i in range(3)])
    plain = pa.concat_tables([p.read().table for p in source.partitions])
    assert plain.column("g").to_pylist() == ["a", "b", "a", None, None, "c", "a"]
    assert plain.column("t").to_pylist() == frame["t"].dt.to_pydatetime().tolist()
    coded = [read_labels(p, ["g"], ["g"]).table for p in source.partitions]
    assert {t.schema.field("g").type for t in coded} == {pa.dictionary(pa.int32(), pa.string())}
    assert pa.concat_tables(coded).column("g").to_pylist() == plain.column("g").to_pylist()


def test_schema_pass_and_cli_summaries_equal_pandas(clean_lake, capsys):
    folder, frame = clean_lake
    summary = schema_pass(read_parquet(folder), backend="serial").summary
    assert summary.rows == len(frame)
    for name in ("y", "x", "n", "k", "b", "z"):
        column, values = summary.columns[name], frame[name].astype(np.float64)
        assert column.dtype == str(UNIFIED[name]), name
        assert (column.count, column.missing) == (values.count(), values.isna().sum()), name
        np.testing.assert_allclose(column.mean, values.mean(), rtol=1e-13, err_msg=name)
        np.testing.assert_allclose(column.std, values.std(), rtol=1e-12, err_msg=name)
        assert (column.min, column.max) == (values.min(), values.max()), name
    assert summary.columns["g"].levels == frame["g"].astype(object).value_counts().to_dict()

    assert main(["schema", str(folder), "--backend", "serial"]) == 0
    out = capsys.readouterr().out
    complete = len(frame.dropna())
    assert f"{len(frame)} rows in 10 partitions; {complete} complete, " in out
    assert complete == len(frame) - 180 - 22 - 19 + 2  # two rows miss both x and n
    for name in ("x", "n", "k", "z"):
        values = frame[name].astype(np.float64)
        row = re.search(
            rf"│ {name}\s+│ (\S+)\s+│\s+([\d,]+) │\s+([\d,]+) │\s+(\S+) │\s+(\S+) │", out
        )
        assert row is not None, out
        assert row.group(1) == str(UNIFIED[name])
        assert int(row.group(2).replace(",", "")) == values.count()
        assert int(row.group(3).replace(",", "")) == values.isna().sum()
        assert row.group(4) == f"{values.min():.6g}" and row.group(5) == f"{values.max():.6g}"
    assert re.search(r"│ g\s+│ string .* 4 levels: a, b, c, d", out)


@pytest.mark.parametrize(("backend", "partition_rows"), [("serial", 10**6), ("processes", None)])
def test_ols_equals_statsmodels_on_the_concatenated_files(lake, backend, partition_rows):
    folder, _, frame = lake
    formula = "y ~ x + n + k + C(g) + z"
    expected = smf.ols(formula, frame, missing="drop").fit()
    source = read_parquet(folder, partition_rows=partition_rows)
    fitted = shardfit.ols(formula, source).fit(
        backend=backend, workers=2 if backend == "processes" else None
    )
    assert fitted.nobs == expected.nobs == len(frame) - 180 - 22 - 19 + 2
    np.testing.assert_allclose(fitted.params[expected.params.index], expected.params, rtol=1e-10)
    np.testing.assert_allclose(fitted.bse[expected.bse.index], expected.bse, rtol=1e-10)
    assert fitted.rsquared == pytest.approx(expected.rsquared, rel=1e-11)


def test_logit_equals_statsmodels_on_the_concatenated_files(lake):
    folder, _, frame = lake
    formula = "b ~ x + n + C(g)"
    expected = smf.logit(formula, frame, missing="drop").fit(disp=0, tol=1e-12)
    fitted = shardfit.logit(formula, str(folder)).fit(backend="serial", tol=1e-12)
    assert fitted.nobs == expected.nobs == len(frame) - 22 - 19 + 2
    np.testing.assert_allclose(fitted.params[expected.params.index], expected.params, rtol=1e-8)
    np.testing.assert_allclose(fitted.bse[expected.bse.index], expected.bse, rtol=1e-8)
    assert fitted.llf == pytest.approx(expected.llf, rel=1e-11)


def test_a_column_whose_types_do_not_unify_is_refused_only_when_read(lake, capsys):
    folder, files, _ = lake
    source = read_parquet(folder)
    assert sorted(source.meta["type_conflicts"]) == ["bad", "when"]
    # Their type is unknown: no check on the schema misreports it as the first file's.
    assert source.schema.field("bad").type == source.schema.field("when").type == pa.null()
    with pytest.raises(ReadError) as caught:
        source.partitions[0].read(["y", "bad"])
    message = str(caught.value)
    assert f"string in {files[0]}" in message
    assert f"int64 in {files[1]} (and 1 more file)" in message
    assert "column 'bad'" in message
    with pytest.raises(
        ReadError, match=rf"column 'when' .*timestamp\[ms\] in {re.escape(str(files[0]))}"
    ):
        source.partitions[-1].read(["when"])
    with pytest.raises(ShardfitError, match=r"column 'bad' has types that do not unify"):
        shardfit.ols("y ~ x + bad", source).fit(backend="serial")
    status = main(["fit", str(folder), "y ~ x + when", "--backend", "serial"])
    assert status == 2
    err = capsys.readouterr().err
    assert "column 'when'" in err and "timestamp[ms]" in err and "int64" in err
    # Summarizing every column reads them too.
    assert main(["schema", str(folder), "--backend", "serial"]) == 2
    assert "column 'bad' has types that do not unify" in capsys.readouterr().err
    # A formula that leaves them out reads them never; the schema of its columns works.
    assert main(["schema", str(folder), "y ~ x + C(g)", "--backend", "serial"]) == 0
    assert "string" in capsys.readouterr().out


def test_integers_float64_cannot_hold_exactly_are_refused(tmp_path):
    big = 2**53 + 1
    pq.write_table(pa.table({"v": pa.array([1, big], pa.int64())}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"v": pa.array([0.5, 2.0])}), tmp_path / "b.parquet")
    source = read_parquet(tmp_path)
    assert source.schema.field("v").type == pa.float64()
    assert source.partitions[1].read().table.column("v").to_pylist() == [0.5, 2.0]
    with pytest.raises(ReadError, match=rf"column 'v' of file .*a.parquet is int64.*{big}"):
        source.partitions[0].read()
    # Up to 2**53 every integer is a double: those read exactly.
    pq.write_table(pa.table({"v": pa.array([1, 2**53], pa.int64())}), tmp_path / "a.parquet")
    values = read_parquet(tmp_path).partitions[0].read().table.column("v").to_pylist()
    assert values == [1.0, float(2**53)]


def test_uniform_files_keep_their_fingerprints(tmp_path):
    table = pa.table({"v": pa.array([1, 2], pa.int32())})
    pq.write_table(table, tmp_path / "a.parquet")
    pq.write_table(table, tmp_path / "b.parquet")
    part = read_parquet(tmp_path).partitions[0]
    assert part.casts == () and "casts" not in part.fingerprint()
    pq.write_table(table.cast(pa.schema([("v", pa.int64())])), tmp_path / "b.parquet")
    part = read_parquet(tmp_path).partitions[0]
    assert part.casts == (("v", pa.int64()),) and "casts" in part.fingerprint()
