"""Session 14 CSV review: files whose lines end in a bare carriage return.

pandas reads such files (classic Mac line endings) row by row; shardfit splits
files at ``\\n`` only, so the whole file was taken for its header line and every
data row was lost without a word. Each answer is compared with ``pd.read_csv``.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shardfit.data.csv import read_csv
from shardfit.errors import ReadError


def _read_all(source) -> pa.Table:
    return pa.concat_tables([p.read().table for p in source.partitions])


def _bare_cr_text(n: int = 10) -> str:
    return "y,x\r" + "".join(f"{i},{2 * i + 0.5}\r" for i in range(n))


@pytest.mark.parametrize("partition_bytes", [None, 7])
def test_bare_cr_lines_with_header_raise_instead_of_losing_every_row(tmp_path, partition_bytes):
    path = tmp_path / "mac.csv"
    path.write_bytes(_bare_cr_text().encode())
    # pandas sees 10 rows; shardfit used to give 0 rows (no error, no skip count).
    assert len(pd.read_csv(path)) == 10
    with pytest.raises(ReadError, match=r"mac\.csv.*\\r"):
        source = read_csv(path, partition_bytes=partition_bytes)
        _read_all(source)


def test_bare_cr_lines_with_header_and_column_names_raise(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(_bare_cr_text().encode())
    with pytest.raises(ReadError, match=r"mac\.csv.*\\r"):
        _read_all(read_csv(path, column_names=["a", "b"]))


def test_bare_cr_lines_gzip_raise(tmp_path):
    path = tmp_path / "mac.csv.gz"
    path.write_bytes(gzip.compress(_bare_cr_text().encode()))
    with pytest.raises(ReadError, match=r"mac\.csv\.gz.*\\r"):
        _read_all(read_csv(path))


def test_bare_cr_in_a_later_file_of_a_glob_raises(tmp_path):
    (tmp_path / "a.csv").write_text("y,x\n1,2\n3,4\n")
    (tmp_path / "b.csv").write_bytes(_bare_cr_text().encode())
    source = read_csv(str(tmp_path / "*.csv"))
    with pytest.raises(ReadError, match=r"b\.csv.*\\r"):
        _read_all(source)


def test_crlf_and_bare_cr_without_header_still_match_pandas(tmp_path):
    # Without a header pyarrow splits bare-\r rows itself: all rows, right numbers.
    path = tmp_path / "mac.csv"
    path.write_bytes(_bare_cr_text().split("\r", 1)[1].encode())
    table = _read_all(read_csv(path, header=False, partition_bytes=5)).to_pandas()
    expected = pd.read_csv(path, header=None)
    assert len(table) == len(expected) == 10
    np.testing.assert_array_equal(table.to_numpy(), expected.to_numpy())
    # CRLF with a header is read in full.
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(_bare_cr_text().replace("\r", "\r\n").encode())
    got = _read_all(read_csv(crlf, partition_bytes=7)).to_pandas()
    pd.testing.assert_frame_equal(got, pd.read_csv(crlf), check_dtype=False)


# Found in this review and fixed after it: pandas' default missing markers ("None",
# "<NA>"), and files read together under column_names with their columns reordered.


def test_default_missing_markers_match_pandas_none(tmp_path):
    import shardfit

    smf = pytest.importorskip("statsmodels.formula.api")
    rng = np.random.default_rng(3)
    n = 40
    x = rng.normal(size=n).round(3)
    y = (x + rng.normal(size=n)).round(3)
    g = rng.choice(["a", "b"], n).astype(object)
    g[5], g[9] = "None", "<NA>"
    path = tmp_path / "none.csv"
    pd.DataFrame({"y": y, "x": x, "g": g}).to_csv(path, index=False)
    expected = smf.ols("y ~ x + C(g)", pd.read_csv(path)).fit()
    assert expected.nobs == n - 2
    got = shardfit.ols("y ~ x + C(g)", read_csv(path)).fit(backend="serial")
    assert got.nobs == expected.nobs
    np.testing.assert_allclose(
        got.params.reindex(expected.params.index), expected.params, rtol=1e-10, atol=1e-12
    )


def test_column_names_refuse_a_file_with_the_columns_in_another_order(tmp_path):
    # column_names rename each file's columns by position: b.csv holds a.csv's columns
    # in another order, and was read with x and y swapped (params off by 0.44).
    (tmp_path / "a.csv").write_text("y,x\n1,10\n2,20\n")
    (tmp_path / "b.csv").write_text("x,y\n30,3\n40,4\n")
    source = read_csv(str(tmp_path / "*.csv"), column_names=["Y", "X"])
    with pytest.raises(ReadError, match=r"b\.csv.*\['x', 'y'\].*another order"):
        _read_all(source)


def test_column_names_still_unify_headers_spelled_differently(tmp_path):
    (tmp_path / "a.csv").write_text("y,x\n1,10\n2,20\n")
    (tmp_path / "b.csv").write_text("Y_value,X_value\n3,30\n4,40\n")
    table = _read_all(read_csv(str(tmp_path / "*.csv"), column_names=["Y", "X"])).to_pandas()
    assert table["Y"].tolist() == [1, 2, 3, 4] and table["X"].tolist() == [10, 20, 30, 40]


def test_none_in_a_numeric_column_is_missing_as_in_pandas(tmp_path):
    path = tmp_path / "numbers.csv"
    path.write_text("y,x\n1,0.5\n2,None\n3,<NA>\n4,2.5\n5,3.0\n")
    expected = pd.read_csv(path)
    table = _read_all(read_csv(path)).to_pandas()
    assert expected["x"].isna().tolist() == table["x"].isna().tolist() == [0, 1, 1, 0, 0]
    np.testing.assert_array_equal(table["x"].to_numpy(), expected["x"].to_numpy())
