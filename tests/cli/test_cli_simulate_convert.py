"""Tests of ``shardfit simulate`` and ``shardfit convert``, in process and as a program."""

from __future__ import annotations

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_cases import run_shardfit

from shardfit.cli.main import main
from shardfit.data.simulate import simulate_table


def test_simulate_then_convert_as_a_program(tmp_path):
    parquet = tmp_path / "d.parquet"
    done = run_shardfit("simulate", "logit", "--rows", "5000", "--out", str(parquet), "--seed", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote 5,000 logit rows (seed 3) to {parquet} (")
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    assert pq.read_table(parquet).equals(simulate_table("logit", 5_000, seed=3))

    csv = tmp_path / "d.csv"
    done = run_shardfit("convert", str(parquet), str(csv), "--chunk-rows", "1000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("converted 5,000 rows x 10 columns")
    assert "5 chunks" in done.stdout
    assert pacsv.read_csv(csv).equals(simulate_table("logit", 5_000, seed=3))


def test_convert_error_exits_2_and_leaves_no_output(tmp_path):
    src = tmp_path / "d.csv"
    src.write_text("a,b\n1,2\n3\n")
    done = run_shardfit("convert", str(src), str(tmp_path / "d.parquet"))
    assert done.returncode == 2
    assert "shardfit convert: error: Malformed CSV" in done.stderr
    assert "line 3" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_simulate_in_process(tmp_path, capsys):
    out = tmp_path / "p.csv"
    args = ["simulate", "poisson", "--rows", "1e4", "--out", str(out), "--chunk-rows", "3000"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("wrote 10,000 poisson rows (seed 0)")
    assert pacsv.read_csv(out).equals(simulate_table("poisson", 10_000, seed=0))

    assert main(["simulate", "linreg", "--rows", "10", "--out", str(tmp_path / "x.bin")]) == 2
    assert "Cannot tell the format" in capsys.readouterr().err
    nowhere = str(tmp_path / "no" / "x.csv")
    assert main(["simulate", "linreg", "--rows", "10", "--out", nowhere]) == 2
    err = capsys.readouterr().err
    assert f"simulate: error: cannot save the simulated data to {nowhere}: no such folder" in err
    assert main(["convert", str(out), nowhere]) == 2
    assert f"convert: error: Cannot write {nowhere}: no such folder" in capsys.readouterr().err
    out = tmp_path / "x.bin"
    assert main(["simulate", "linreg", "--rows", "10", "--out", str(out), "--format", "csv"]) == 0
    assert pacsv.read_csv(out).num_rows == 10


def test_convert_in_process_with_column_types_and_progress(tmp_path, capsys):
    src = tmp_path / "d.csv"
    src.write_text("id,x\n001,1\n002,2.5\n")
    dst = tmp_path / "d.parquet"
    argv = ["convert", str(src), str(dst), "--column-type", "id=string", "--progress"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("converted 2 rows x 2 columns")
    assert "convert d.csv" in captured.err
    assert pq.read_table(dst).column("id").to_pylist() == ["001", "002"]

    argv = ["convert", str(src), str(dst), "--column-type", "x=int64", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "line 3), column 'x'" in err
    assert "--column-type x=float64" in err
    assert pq.read_table(dst).column("id").to_pylist() == ["001", "002"]  # untouched


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "probit", "--rows", "1", "--out", "x.csv"], "invalid choice: 'probit'"),
        (["simulate", "logit", "--rows", "-5", "--out", "x.csv"], "expected a whole number"),
        (["convert", "a.csv", "b.parquet", "--chunk-rows", "0"], "expected a whole number >= 1"),
        (["convert", "a.csv", "b.parquet", "--column-type", "x"], "expected NAME=TYPE"),
    ],
)
def test_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_convert_reads_a_tab_or_semicolon_file_with_its_missing_spellings(tmp_path, capsys):
    src = tmp_path / "export.txt.csv"
    src.write_text("x\ty\n1.5\t-999\n.\t2\n\t3\n")
    out = tmp_path / "d.parquet"
    argv = ["convert", str(src), str(out), "--delimiter", "\\t", "--null-values=-999,."]
    assert main(argv) == 0
    table = pq.read_table(out)
    assert table.column("x").to_pylist() == [1.5, None, None]
    assert table.column("y").to_pylist() == [None, 2, 3]
    assert main(["convert", str(out), str(tmp_path / "e.csv"), "--delimiter", ";"]) == 2
    assert "describes CSV input" in capsys.readouterr().err
