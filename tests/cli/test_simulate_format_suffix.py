"""``shardfit simulate --format``: a format the file's extension contradicts is refused."""

from __future__ import annotations

import bz2
import io

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from shardfit.cli.main import main
from shardfit.data.simulate import simulate, simulate_table

ROWS = 40


def _simulate(out, *extra: str) -> list[str]:
    return ["simulate", "logit", "--rows", str(ROWS), "--out", str(out), "--seed", "3", *extra]


@pytest.mark.parametrize(
    ("name", "given", "says"),
    [
        ("x.parquet", "csv", "parquet"),
        ("x.pq", "csv", "parquet"),
        ("x.csv", "parquet", "csv"),
        ("x.csv.gz", "parquet", "csv"),
        ("x.csv.bz2", "parquet", "csv"),
    ],
)
def test_a_format_the_extension_contradicts_is_an_error(tmp_path, capsys, name, given, says):
    out = tmp_path / name
    assert main(_simulate(out, "--format", given)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"shardfit simulate: error: {out}: the format '{given}' contradicts")
    assert f"which says '{says}'" in err
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left
    with pytest.raises(ValueError, match=f"the format '{given}' contradicts the extension"):
        simulate("logit", ROWS, out, format=given)  # type: ignore[arg-type]


def test_the_format_comes_from_the_extension_or_agrees_with_it(tmp_path, capsys):
    expected = simulate_table("logit", ROWS, seed=3)
    assert main(_simulate(tmp_path / "a.parquet")) == 0
    assert pq.read_table(tmp_path / "a.parquet").equals(expected)
    assert main(_simulate(tmp_path / "b.pq", "--format", "parquet")) == 0
    assert pq.read_table(tmp_path / "b.pq").equals(expected)
    assert main(_simulate(tmp_path / "c.csv.bz2")) == 0
    text = bz2.decompress((tmp_path / "c.csv.bz2").read_bytes())
    options = pacsv.ConvertOptions(column_types=expected.schema)
    assert pacsv.read_csv(io.BytesIO(text), convert_options=options).equals(expected)
    # An extension that names no format takes --format.
    assert main(_simulate(tmp_path / "d.txt", "--format", "csv")) == 0
    assert pacsv.read_csv(tmp_path / "d.txt", convert_options=options).equals(expected)
    assert main(_simulate(tmp_path / "e.bin", "--format", "parquet")) == 0
    assert pq.read_table(tmp_path / "e.bin").equals(expected)
    assert pq.read_metadata(tmp_path / "e.bin").num_rows == ROWS
    capsys.readouterr()
    # Parquet has no .gz form: refused by name whatever the format says.
    assert main(_simulate(tmp_path / "f.gz", "--format", "parquet")) == 2
    assert "gzip compression applies to CSV files only" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.parquet",
        "b.pq",
        "c.csv.bz2",
        "d.txt",
        "e.bin",
    ]


def test_an_existing_file_is_kept_unless_overwrite(tmp_path, capsys) -> None:
    """A mistyped --out naming a data file must not replace it (as fit, svd and
    schema refuse): the file is unchanged, and --overwrite replaces it."""
    out = tmp_path / "mine.parquet"
    out.write_bytes(b"not the simulated rows")
    assert main(_simulate(out)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"shardfit simulate: error: cannot save the simulated data to {out}")
    assert "--overwrite" in err and err.count("\n") == 1
    assert out.read_bytes() == b"not the simulated rows"
    assert main(_simulate(out, "--overwrite")) == 0
    assert pq.read_table(out).equals(simulate_table("logit", ROWS, seed=3))
