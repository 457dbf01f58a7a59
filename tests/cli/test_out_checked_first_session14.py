"""``shardfit svd --out`` and ``shardfit schema --json`` check where they will save
before any pass over the data, as ``shardfit fit --out`` does.

Both ran the whole job, printed it, and then failed naming a temporary file
(``[Errno 21] Is a directory: '.adir.22811-0427cf0d.tmp' -> 'adir'``, or ``No such file
or directory: 'nodir/.x.json...tmp'``). They now exit 2 first, with one line naming the
user's path, and a valid path still saves what NumPy's SVD gives.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from cli_cases import run_shardfit

import shardfit


@pytest.fixture()
def data(tmp_path):
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    return frame, path


@pytest.mark.parametrize("where", ["folder", "missing parent"])
def test_svd_and_schema_refuse_an_unusable_output_before_the_work(data, tmp_path, where):
    _, path = data
    folder = tmp_path / "adir"
    folder.mkdir()
    out = folder if where == "folder" else tmp_path / "nodir" / "x.json"
    for command in (
        ["svd", str(path), "a + b + c", "--out", str(out), "--backend", "serial"],
        ["schema", str(path), "a ~ b + c", "--json", str(out), "--backend", "serial"],
    ):
        done = run_shardfit(*command)
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""  # nothing ran, nothing printed
        (line,) = done.stderr.strip().splitlines()
        assert str(out) in line and ".tmp" not in line
        assert ("it is a directory" if where == "folder" else "no such folder") in line


def test_svd_out_saves_numpys_singular_values(data, tmp_path):
    frame, path = data
    out = tmp_path / "svd.json"
    done = run_shardfit("svd", str(path), "a + b + c", "--out", str(out), "--backend", "serial")
    assert done.returncode == 0, done.stderr
    assert out.is_file() and json.loads(out.read_text())
    design = np.column_stack([np.ones(len(frame)), frame.to_numpy()])  # intercept, a, b, c
    expected = np.linalg.svd(design, compute_uv=False)
    saved = shardfit.load_results(out)
    np.testing.assert_allclose(saved.singular_values, expected, rtol=1e-12)
