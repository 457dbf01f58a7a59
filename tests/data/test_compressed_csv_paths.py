"""Compressed CSV/TSV named by path string: ``as_source``, the fits and the CLI.

The reference is statsmodels (and pandas) on the uncompressed rows in memory.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf

import shardfit
from shardfit.cli.main import main
from shardfit.data.csv import CsvPartition, read_csv
from shardfit.errors import ReadError
from shardfit.results.io import load_results

ROWS = 1_500
FORMULA = "y ~ x1 + x2 + C(g)"


def _compress(path, data: bytes) -> None:
    """Write ``data`` compressed as ``path``'s last extension says."""
    name = str(path)
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif name.endswith(".bz2"):
        path.write_bytes(bz2.compress(data))
    elif name.endswith(".xz"):
        path.write_bytes(lzma.compress(data))
    else:  # Python 3.11 has no zstd/lz4/brotli module: pyarrow's codecs write them.
        codec = {".zst": "zstd", ".lz4": "lz4", ".br": "brotli"}[path.suffix]
        with pa.output_stream(str(path), compression=codec) as sink:
            sink.write(data)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``(folder, frame, statsmodels fit)``: one data set as plain and compressed files."""
    rng = np.random.default_rng(20261202)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=ROWS),
            "x2": rng.uniform(-2, 2, size=ROWS),
            "g": rng.choice(["lo", "mid", "hi"], size=ROWS),
        }
    )
    shift = frame["g"].map({"lo": 0.0, "mid": 0.4, "hi": -0.9})
    frame["y"] = 1.5 + 0.7 * frame["x1"] - 1.2 * frame["x2"] + shift + rng.normal(size=ROWS)
    frame.loc[::97, "x2"] = np.nan  # missing values, dropped by both
    folder = tmp_path_factory.mktemp("compressed")
    text = frame.to_csv(index=False).encode()
    (folder / "data.csv").write_bytes(text)
    for suffix in (".csv.gz", ".csv.bz2", ".csv.zst", ".csv.lz4", ".csv.br", ".csv.xz"):
        _compress(folder / f"data{suffix}", text)
    tabbed = frame.to_csv(index=False, sep="\t").encode()
    for suffix in (".tsv.gz", ".tsv.bz2", ".tsv.zst"):
        _compress(folder / f"data{suffix}", tabbed)
    return folder, frame, smf.ols(FORMULA, frame, missing="drop").fit()


def _check(fitted, expected) -> None:
    assert fitted.nobs == expected.nobs == ROWS - len(range(0, ROWS, 97))
    index = expected.params.index
    np.testing.assert_allclose(fitted.params[index], expected.params, rtol=1e-10)
    np.testing.assert_allclose(fitted.bse[index], expected.bse, rtol=1e-10)


@pytest.mark.parametrize(
    "name",
    [
        "data.csv.gz",
        "data.csv.bz2",
        "data.csv.zst",
        "data.csv.lz4",
        "data.csv.br",
        "data.tsv.gz",
        "data.tsv.bz2",
        "data.tsv.zst",
    ],
)
def test_a_compressed_path_string_reads_as_csv(data, name):
    folder, frame, _ = data
    source = shardfit.as_source(str(folder / name))
    # Compressed files cannot be split by byte ranges: one streamed partition per file.
    assert source.npartitions == 1
    assert isinstance(source.partitions[0], CsvPartition) and source.partitions[0].whole_file
    assert source.columns == ["x1", "x2", "g", "y"]
    table = source.partitions[0].read().table
    assert table.num_rows == ROWS
    for column in ("x1", "x2", "y"):
        np.testing.assert_array_equal(
            table.column(column).to_numpy(zero_copy_only=False), frame[column].to_numpy()
        )
    assert table.column("g").to_pylist() == frame["g"].tolist()
    assert table.column("x2").null_count == frame["x2"].isna().sum() == 16


@pytest.mark.parametrize("name", ["data.csv.bz2", "data.csv.gz", "data.tsv.bz2"])
def test_ols_from_a_compressed_path_string_equals_statsmodels(data, name):
    folder, _, expected = data
    fitted = shardfit.ols(FORMULA, str(folder / name)).fit(backend="serial")
    _check(fitted, expected)


def test_a_glob_and_a_list_of_compressed_files_give_one_partition_each(data, tmp_path):
    _, frame, expected = data
    pieces = (frame.iloc[:700], frame.iloc[700:1100], frame.iloc[1100:])
    for i, piece in enumerate(pieces):
        _compress(tmp_path / f"part-{i}.csv.bz2", piece.to_csv(index=False).encode())
    source = shardfit.as_source(str(tmp_path / "*.csv.bz2"))
    assert source.npartitions == 3
    assert [p.read(["y"]).table.num_rows for p in source.partitions] == [700, 400, 400]
    _check(shardfit.ols(FORMULA, str(tmp_path / "*.csv.bz2")).fit(backend="serial"), expected)
    listed = [str(tmp_path / "part-0.csv.bz2"), str(tmp_path / "part-2.csv.bz2")]
    assert shardfit.as_source(listed).npartitions == 2


def test_xz_is_refused_by_name(data):
    folder, _, _ = data
    with pytest.raises(ReadError, match=r"data.csv.xz'?: pyarrow cannot decompress xz files"):
        shardfit.as_source(str(folder / "data.csv.xz"))
    with pytest.raises(ReadError, match=r"data.csv.xz: pyarrow cannot decompress xz files"):
        read_csv(folder / "data.csv.xz")


@pytest.mark.parametrize("name", ["data.csv.bz2", "data.csv.gz"])
def test_cli_fit_predict_and_schema_read_compressed_csv(data, tmp_path, capsys, name):
    folder, frame, expected = data
    path = str(folder / name)
    result = tmp_path / "r.json"
    assert main(["fit", path, FORMULA, "--backend", "serial", "--out", str(result)]) == 0
    assert re.search(rf"No. Observations:\s+{expected.nobs:,.0f}\b", capsys.readouterr().out)
    _check(load_results(result), expected)

    out = tmp_path / "preds"
    assert main(["predict", str(result), path, "--out", str(out), "--backend", "serial"]) == 0
    capsys.readouterr()
    predicted = pd.read_parquet(out).sort_values("row")
    complete = frame.dropna()
    np.testing.assert_array_equal(predicted["row"], complete.index)
    np.testing.assert_allclose(
        predicted["predicted"], expected.predict(complete), rtol=1e-10, atol=1e-12
    )

    assert main(["schema", path, "--backend", "serial"]) == 0
    printed = capsys.readouterr().out
    assert f"{ROWS:,} rows in 1 partition; {ROWS - 16:,} complete, 16 with a" in printed
    x2 = frame["x2"]
    row = re.search(
        r"│ x2\s+│ double\s+│\s+([\d,]+) │\s+(\d+) │\s+(\S+) │\s+(\S+) │\s+(\S+) │", printed
    )
    assert row is not None, printed
    assert (row.group(1), row.group(2)) == (f"{x2.count():,}", "16")
    shown = [float(row.group(i)) for i in (3, 4, 5)]
    np.testing.assert_allclose(shown, [x2.min(), x2.max(), x2.mean()], rtol=1e-5)


def test_cli_convert_reads_and_writes_compressed_csv(data, tmp_path, capsys):
    folder, frame, _ = data
    parquet = tmp_path / "d.parquet"
    assert main(["convert", str(folder / "data.csv.bz2"), str(parquet)]) == 0
    back = pq.read_table(parquet).to_pandas()
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    packed = tmp_path / "d.csv.zst"
    assert main(["convert", str(parquet), str(packed)]) == 0
    capsys.readouterr()
    with pa.input_stream(str(packed), compression="zstd") as stream:
        assert stream.read().startswith(b'"x1","x2","g","y"\n')
    fitted = shardfit.ols(FORMULA, str(packed)).fit(backend="serial")
    _check(fitted, smf.ols(FORMULA, frame, missing="drop").fit())
