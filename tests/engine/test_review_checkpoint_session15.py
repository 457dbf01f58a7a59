"""Review of checkpoints (session 15): fits killed with SIGKILL in each pass and resumed,
two fits sharing a folder at once, checkpoints of another shardfit version, and a
checkpoint directory that cannot be used."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import shardfit
from shardfit.engine.checkpoint import CheckpointWarning

# A driver that kills itself (SIGKILL: no cleanup, no flush) once ``kill_at`` partitions
# of pass ``kill_pass`` are computed, i.e. checkpointed: the progress event comes after
# the save. It prints every number a resumed fit must reproduce, bit for bit.
DRIVER = textwrap.dedent(
    """
    import json, os, signal, sys
    import shardfit

    path, checkpoint, kill_pass, kill_at, kind = sys.argv[1:6]
    loaded = []

    def progress(event):
        loaded.append(event.from_checkpoint)
        if event.pass_name == kill_pass and not event.from_checkpoint:
            if event.done >= int(kill_at):
                os.kill(os.getpid(), signal.SIGKILL)

    if __name__ == "__main__":
        source = shardfit.read_csv(path, partition_rows=40, on_bad_lines="skip")
        if kind == "ols":
            fit = shardfit.ols("y ~ x1 + x2 + C(g)", source, weights="w").fit(
                backend="serial", cov_type="HC3", checkpoint=checkpoint, progress=progress
            )
            arrays = {"params": fit.params.values, "bse": fit.bse.values}
            extra = {"method": fit.method_used, "ssr": fit.ssr.hex(), "names": list(fit.names)}
        else:
            fit = shardfit.svd(
                "0 + x1 + x2 + y", source, center=True, backend="serial",
                checkpoint=checkpoint, progress=progress,
            )
            arrays = {"s": fit.singular_values_array, "v": fit.components_array}
            extra = {"rank": int(fit.rank)}
        out = {name: value.tobytes().hex() for name, value in arrays.items()}
        out.update(extra, nobs=int(fit.nobs), read=int(fit.rows_read),
                   dropped=dict(fit.rows_dropped), skipped=int(fit.rows_skipped),
                   loaded=sum(loaded))
        print(json.dumps(out))
    """
)

NEVER = "no-such-pass"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, pd.DataFrame, Path]:
    """A CSV of 400 rows (one missing x1, one bad line), nearly collinear columns
    so that ``method="auto"`` takes the Gram pass and then the TSQR pass."""
    folder = tmp_path_factory.mktemp("checkpoint-review")
    rng = np.random.default_rng(15)
    n = 400
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "g": rng.choice(list("abc"), n),
            "w": rng.uniform(0.5, 2.0, n),
        }
    )
    frame["x2"] = frame.x1 * 1e4 + rng.normal(size=n) * 0.1
    frame["y"] = 1.0 + frame.x1 + 0.5 * frame.x2 + rng.normal(size=n)
    frame = frame[["x1", "g", "w", "x2", "y"]]
    frame.loc[5, "x1"] = np.nan
    lines = frame.to_csv(index=False).splitlines()
    lines.insert(100, "1,2,3")  # a bad line: skipped
    path = folder / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    script = folder / "driver.py"
    script.write_text(DRIVER)
    return path, frame.dropna(), script


def _drive(script: Path, path: Path, checkpoint: Path, kill_pass: str, kill_at: int, kind: str):
    return subprocess.run(
        [sys.executable, str(script), str(path), str(checkpoint), kill_pass, str(kill_at), kind],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory) -> dict[str, dict]:
    """What the driver prints for each kind of fit, never killed, without a checkpoint
    to resume from."""
    path, _, script = data
    answers = {}
    for kind in ("ols", "svd"):
        done = _drive(script, path, tmp_path_factory.mktemp(kind) / "c", NEVER, 0, kind)
        assert done.returncode == 0, done.stderr
        answers[kind] = json.loads(done.stdout)
    return answers


def _saved(checkpoint: Path) -> int:
    return sum(1 for _ in checkpoint.glob("*/part-*.json"))


@pytest.mark.parametrize(
    ("kind", "kill_pass"),
    [("ols", "ls-gram"), ("ols", "ls-qr"), ("ols", "robust-HC3"), ("svd", "svd-qr")],
)
def test_fit_killed_in_a_pass_resumes_to_the_uninterrupted_fit(
    data, uninterrupted, tmp_path, kind, kill_pass
):
    path, frame, script = data
    expected = dict(uninterrupted[kind])
    assert (expected["nobs"], sum(expected["dropped"].values()), expected["skipped"]) == (399, 1, 1)
    if kind == "ols":
        assert expected["method"] == "qr"  # the Gram pass, then the TSQR pass
        reference = sm.WLS(
            frame.y,
            sm.add_constant(pd.get_dummies(frame[["x1", "x2", "g"]], drop_first=True, dtype=float)),
            weights=frame.w,
        ).fit(cov_type="HC3")
        names = {"Intercept": "const", "C(g)[T.b]": "g_b", "C(g)[T.c]": "g_c"}
        order = [names.get(name, name) for name in expected["names"]]
        params = np.frombuffer(bytes.fromhex(expected["params"]))
        np.testing.assert_allclose(params, reference.params[order], rtol=1e-6)
        bse = np.frombuffer(bytes.fromhex(expected["bse"]))
        # A condition number near 1e9: statsmodels' pinv and the TSQR agree to 1e-4 on
        # the robust errors (the checkpointed numbers are compared bit for bit below).
        np.testing.assert_allclose(bse, reference.bse[order], rtol=1e-4)
    else:
        values = frame[["x1", "x2", "y"]].to_numpy()
        singular = np.linalg.svd(values - values.mean(axis=0), compute_uv=False)
        np.testing.assert_allclose(np.frombuffer(bytes.fromhex(expected["s"])), singular)

    checkpoint = tmp_path / "checkpoint"
    killed = _drive(script, path, checkpoint, kill_pass, 3, kind)
    assert killed.returncode == -9, killed.stderr  # really killed, mid-pass
    assert _saved(checkpoint) >= 3
    resumed = _drive(script, path, checkpoint, NEVER, 0, kind)
    assert resumed.returncode == 0, resumed.stderr
    answer = json.loads(resumed.stdout)
    assert answer.pop("loaded") >= 3  # it did resume
    expected.pop("loaded")
    assert answer == expected  # bit for bit, with the row counts


def test_two_fits_sharing_a_checkpoint_folder_at_once(data, uninterrupted, tmp_path):
    path, _, script = data
    expected = uninterrupted["ols"]
    checkpoint = tmp_path / "shared"
    command = [sys.executable, str(script), str(path), str(checkpoint), NEVER, "0", "ols"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    for output in outputs:
        answer = json.loads(output)
        answer.pop("loaded")
        assert answer == {key: value for key, value in expected.items() if key != "loaded"}
    assert not list(checkpoint.glob("*/.*.tmp"))
    # What they left is complete: a third run loads every partition, warning nothing.
    third = _drive(script, path, checkpoint, NEVER, 0, "ols")
    assert third.returncode == 0 and "Warning" not in third.stderr, third.stderr
    answer = json.loads(third.stdout)
    assert answer.pop("loaded") == _saved(checkpoint)  # every checkpointed partition
    assert answer == {key: value for key, value in expected.items() if key != "loaded"}


def _ols(source, checkpoint, events=None):
    return shardfit.ols("y ~ x", source).fit(
        backend="serial",
        checkpoint=str(checkpoint),
        progress=(lambda event: events.append(event)) if events is not None else False,
    )


@pytest.fixture()
def small() -> pd.DataFrame:
    x = np.linspace(0.0, 3.0, 60)
    return pd.DataFrame({"x": x, "y": 1.0 + 2.0 * x + np.sin(7.0 * x)})


def test_checkpoint_of_another_shardfit_version_is_not_reused(small, tmp_path, monkeypatch):
    # The key used to hold no version: statistics an older release saved (whose
    # meaning may have changed since) were merged into a newer release's fit.
    source = shardfit.from_pandas(small, 4)
    monkeypatch.setattr(shardfit, "__version__", "0.0.0-older")
    _ols(source, tmp_path)
    monkeypatch.undo()
    events: list = []
    fit = _ols(source, tmp_path, events)
    assert [event.from_checkpoint for event in events if event.pass_name == "ls-gram"] == [
        False
    ] * 4
    reference = sm.OLS(small.y, sm.add_constant(small.x)).fit()
    np.testing.assert_allclose(fit.params.values, reference.params.values, rtol=1e-12)
    # The same version finds its own checkpoint, and pass.json says what the key holds.
    events.clear()
    _ols(source, tmp_path, events)
    assert all(event.from_checkpoint for event in events if event.pass_name == "ls-gram")
    versions = {
        json.loads(about.read_text())["body"]["key_parts"]["version"]
        for about in tmp_path.glob("*/pass.json")
    }
    assert versions == {
        f"shardfit-checkpoint/2;shardfit {version}"
        for version in ("0.0.0-older", shardfit.__version__)
    }


def test_checkpoint_path_that_is_a_file_warns_and_the_fit_finishes(small, tmp_path):
    # mkdir failed with a bare NotADirectoryError, after the schema pass, where a
    # statistic that cannot be saved only warns.
    source = shardfit.from_pandas(small, 4)
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a folder")
    with pytest.warns(CheckpointWarning, match=r"cannot use checkpoint directory .*a-file"):
        fit = _ols(source, in_the_way)
    reference = sm.OLS(small.y, sm.add_constant(small.x)).fit()
    np.testing.assert_allclose(fit.params.values, reference.params.values, rtol=1e-12)
    assert (
        fit.params.values.tobytes()
        == shardfit.ols("y ~ x", source).fit(backend="serial").params.values.tobytes()
    )
    assert in_the_way.read_text() == "not a folder"


def test_checkpoint_folder_gone_between_passes_does_not_lose_the_fit(data, tmp_path):
    # The folder of each pass is made when the pass starts: a checkpoint folder that
    # became unusable after the Gram pass (replaced by a file here; a full disk or a
    # lost mount alike) stopped the fit in its TSQR pass, losing the passes made.
    path, frame, _ = data
    checkpoint = tmp_path / "checkpoint"

    def progress(event):
        if event.pass_name == "ls-gram" and event.done == event.total and checkpoint.is_dir():
            shutil.rmtree(checkpoint)
            checkpoint.write_text("replaced")

    source = shardfit.read_csv(path, partition_rows=40, on_bad_lines="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = shardfit.ols("y ~ x1 + x2", source).fit(
            backend="serial", checkpoint=str(checkpoint), progress=progress
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, CheckpointWarning)]
    assert any("cannot use checkpoint directory" in m and "'ls-qr'" in m for m in messages)
    assert fit.method_used == "qr"
    reference = sm.OLS(frame.y, sm.add_constant(frame[["x1", "x2"]])).fit()
    np.testing.assert_allclose(fit.params.values, reference.params.values, rtol=1e-7)
    fresh = shardfit.ols("y ~ x1 + x2", source).fit(backend="serial")
    assert fit.params.values.tobytes() == fresh.params.values.tobytes()
