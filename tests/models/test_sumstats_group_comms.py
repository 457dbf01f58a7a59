"""A summary-statistic group whose members run side by side on MPI sub-communicators
(``SumstatsGroup(comms=...)``, as multigrad's ``OnePointGroup`` with a main
communicator), under a real ``mpiexec``: the group's loss, gradient and aux equal
``jax.value_and_grad`` of the members' in-memory losses summed, on every rank; an
L-BFGS-B fit lands where ``scipy.optimize.minimize`` does on that sum; a bad partition
in one member is raised, by name, on every rank without a hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("mpi4py", reason="the mpi extra is not installed")

import scipy.optimize  # noqa: E402

import shardfit  # noqa: E402

jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = pytest.mark.skipif(not MPIEXEC.exists(), reason="mpiexec not installed")

START = [0.3, 0.2, -0.1]
BOUNDS = [(-1.0, 3.0), (-1.0, 1.0), (-0.5, 0.5)]
# Member data: (rows, partition rows, seed); different data and partitionings.
MEMBERS = [(60, 20, 1), (45, 23, 2), (30, 8, 3)]

# The member models, shared by the mpiexec script and the in-memory reference.
MODELS = '''
import jax.numpy as jnp
import shardfit


class Squares(shardfit.SumstatsModel):
    """Weighted least squares of x on (1, w), with a pull on the third parameter."""

    param_names = ("a", "b", "c")

    def partial_sumstats(self, p, d):
        r = d["x"] - p[0] - p[1] * d["w"]
        return jnp.stack([jnp.sum(d["w"] * r**2), jnp.sum(d["w"]), jnp.sum(d["w"]) * p[2] ** 2])

    def loss(self, s):
        return s[0] / s[1] + s[2] / s[1]


class Gaussian(shardfit.SumstatsModel):
    """Normal negative log-likelihood of x, mean a + b, log-sigma c; loss aux."""

    param_names = ("a", "b", "c")
    loss_has_aux = True

    def partial_sumstats(self, p, d):
        z2 = jnp.sum((d["x"] - p[0] - p[1]) ** 2) * jnp.exp(-2.0 * p[2])
        n = jnp.sum(jnp.ones_like(d["x"]))
        return jnp.stack([z2, n, n * p[2]])

    def loss(self, s):
        return (0.5 * s[0] + s[2]) / s[1], {"n": s[1], "z2": s[0]}


class Moments(shardfit.SumstatsModel):
    """A smooth non-quadratic term in (a, b) with per-partition statistics aux."""

    param_names = ("a", "b", "c")
    sumstats_has_aux = True

    def partial_sumstats(self, p, d):
        r = d["x"] - p[0] - 0.5 * p[1] * d["w"]
        stats = jnp.stack([jnp.sum(jnp.log(jnp.cosh(r))), jnp.sum(jnp.ones_like(r))])
        return stats, {"rows": jnp.sum(jnp.ones_like(r))}

    def loss(self, s, sumstats_aux):
        return s[0] / s[1] + 0.01 * (s[1] - sum(a["rows"] for a in sumstats_aux))
'''
_NAMESPACE: dict = {}
exec(MODELS, _NAMESPACE)  # the same classes the mpiexec script defines
CLASSES = [_NAMESPACE["Squares"], _NAMESPACE["Gaussian"], _NAMESPACE["Moments"]]

SCRIPT = (
    MODELS
    + """
import json, sys
import numpy as np
import pandas as pd
from mpi4py import MPI
from shardfit.errors import MissingDataError

folder, nmembers, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
comm = MPI.COMM_WORLD
specs = json.loads(open(f"{folder}/members.json").read())
classes = [Squares, Gaussian, Moments][:nmembers]
models = [
    cls(pd.read_parquet(f"{folder}/member{m}.parquet"), ["x", "w"], partition_rows=rows)
    for m, (cls, (_, rows, _)) in enumerate(zip(classes, specs))
]
x0 = [0.3, 0.2, -0.1]
report = {}
if mode == "error":
    group = shardfit.SumstatsGroup(models, comms="split")
    try:
        group.loss_and_grad(x0, backend=comm)
    except MissingDataError as error:
        report["error"] = [type(error).__name__, str(error), getattr(error, "__notes__", [])]
    open(f"{folder}/rank{comm.rank}.json", "w").write(json.dumps(report))
    sys.exit(0)

def point(out):
    (loss, aux), grad = out
    return {"loss": loss, "grad": grad.tolist(), "aux": [
        None if a is None else {k: float(v) for k, v in a.items()} for a in aux]}

group = shardfit.SumstatsGroup(models, comms="split")
report["split"] = point(group.loss_and_grad(x0, backend=comm))
serial = shardfit.SumstatsGroup(models).loss_and_grad(x0, backend="serial")
report["serial"] = point(serial)
# explicit communicators, multigrad style: member m on ranks r with r % 2 == m % 2,
# the last member (if 3) on every rank, so ranks share members
sub = comm.Split(comm.rank % 2, comm.rank)
explicit = [sub if comm.rank % 2 == m % 2 else None for m in range(nmembers)]
if nmembers == 3:
    explicit[2] = comm
report["explicit"] = point(
    shardfit.SumstatsGroup(models, comms=explicit).loss_and_grad(x0, backend=comm))
try:  # a communicator given on a rank outside it (or missing on one) is refused
    wrong = [sub] * nmembers
    shardfit.SumstatsGroup(models, comms=wrong).loss_at(x0, backend=comm)
except ValueError as error:
    report["wrong"] = str(error)
sub.Free()
with shardfit.session(comm) as sess, group._bound(sess) as split:
    made = list(split._owned)
    report["ranks"] = split.ranks
    report["mine"] = sorted(split.sessions)
report["freed"] = all(c == MPI.COMM_NULL for c in made) and not group._splits
fit = group.fit(x0, tol=1e-10, backend=comm)
report["fit"] = {"params": fit.params.tolist(), "loss": fit.loss, "converged": fit.converged,
                 "npasses": fit.npasses}
for method in ("adam", "gd"):
    got = group.fit(x0, method=method, maxiter=8, learning_rate=0.05, backend=comm)
    want = shardfit.SumstatsGroup(models).fit(
        x0, method=method, maxiter=8, learning_rate=0.05, backend="serial")
    report[method] = [got.params.tolist(), want.params.tolist(), got.loss_history.tolist(),
                      want.loss_history.tolist()]
bounds = [(-1.0, 3.0), (-1.0, 1.0), (-0.5, 0.5)]
scan = group.scan(bounds, 5, seed=4, backend=comm)
report["scan"] = [scan.points.tolist(), scan.losses.tolist()]
try:
    shardfit.SumstatsGroup(models, comms=[MPI.COMM_SELF] * nmembers).loss_at(
        x0, backend="serial")
except ValueError as error:
    report["refused"] = str(error)
report["noop"] = point(
    shardfit.SumstatsGroup(models, comms="split").loss_and_grad(x0, backend="serial"))
open(f"{folder}/rank{comm.rank}.json", "w").write(json.dumps(report))
"""
)


def _frames() -> list[pd.DataFrame]:
    frames = []
    for rows, _, seed in MEMBERS:
        rng = np.random.default_rng(seed)
        frames.append(
            pd.DataFrame({"x": rng.normal(1.0 + seed, 1.5, rows), "w": rng.uniform(0.5, 2, rows)})
        )
    return frames


def _launch(tmp_path: Path, ranks: int, nmembers: int, mode: str, frames) -> list[dict]:
    for m, frame in enumerate(frames):
        frame.to_parquet(tmp_path / f"member{m}.parquet", index=False)
    (tmp_path / "members.json").write_text(json.dumps(MEMBERS))
    script = tmp_path / "group.py"
    script.write_text(SCRIPT)
    command = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", str(script)]
    command += [str(tmp_path), str(nmembers), mode]
    # -m mpi4py aborts every rank on an uncaught exception: a failure cannot hang.
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, env=os.environ)
    assert done.returncode == 0, done.stderr[-4000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(ranks)]


def _reference(frames, nmembers: int):
    """The group's loss on each member's rows in memory, with JAX: the sum of the
    members' losses, its gradient, and each member's loss aux."""
    models = [
        cls(frame, ["x", "w"], partition_rows=rows)
        for cls, frame, (_, rows, _) in zip(CLASSES[:nmembers], frames, MEMBERS)
    ]
    pieces = []
    for model, frame in zip(models, frames):
        data = {c: jnp.asarray(frame[c].to_numpy()) for c in model.columns}
        rows = MEMBERS[len(pieces)][1]
        parts = [
            {c: v[lo : lo + rows] for c, v in data.items()} for lo in range(0, len(frame), rows)
        ]
        pieces.append((model, data, parts))

    def member_loss(model, data, parts, p):
        if model.sumstats_has_aux:
            stats = model.partial_sumstats(p, data)[0]
            aux = jax.lax.stop_gradient([model.partial_sumstats(p, d)[1] for d in parts])
            out = model.loss(stats, aux)
        else:
            out = model.loss(model.partial_sumstats(p, data))
        return out if model.loss_has_aux else (out, None)

    def total(p):
        outs = [member_loss(model, data, parts, p) for model, data, parts in pieces]
        return sum(value for value, _ in outs), tuple(aux for _, aux in outs)

    return jax.jit(jax.value_and_grad(total, has_aux=True))


def _aux(aux) -> list:
    return [None if a is None else {k: float(v) for k, v in a.items()} for a in aux]


@pytest.mark.parametrize(("ranks", "nmembers"), [(2, 3), (3, 2)])
def test_split_group_equals_in_memory_sum_on_every_rank(tmp_path, ranks, nmembers) -> None:
    frames = _frames()[:nmembers]
    reports = _launch(tmp_path, ranks, nmembers, "ok", frames)
    both = _reference(frames, nmembers)
    (want_loss, want_aux), want_grad = both(jnp.asarray(START))
    first = reports[0]
    np.testing.assert_allclose(first["split"]["loss"], float(want_loss), rtol=1e-12)
    np.testing.assert_allclose(first["split"]["grad"], np.asarray(want_grad), rtol=1e-12)
    for got, want in zip(first["split"]["aux"], _aux(want_aux)):
        assert (got is None) == (want is None)
        if want is not None:
            np.testing.assert_allclose(list(got.values()), list(want.values()), rtol=1e-12)
    # more members than ranks share them round-robin; else blocks as even as possible
    expected = [[0], [1], [0]] if nmembers > ranks else [[0, 1], [2]]
    assert first["ranks"] == expected
    for rank, report in enumerate(reports):
        # identical on every rank, bitwise equal to the serial (members in turn) group,
        # with explicit sub-communicators too, and with "split" off MPI (a no-op)
        for key in ("split", "explicit", "noop"):
            assert report[key] == first["serial"], (rank, key)
        assert report["mine"] == [m for m, block in enumerate(expected) if rank in block]
        assert report["freed"] is True
        assert "comms[0] must be one sub-communicator of the main communicator" in (report["wrong"])
        assert "needs an MPI backend" in report["refused"] and "'serial'" in report["refused"]
        for key in ("fit", "adam", "gd", "scan"):
            assert report[key] == first[key], (rank, key)
        for method in ("adam", "gd"):  # same steps as the serial group's
            got, want, got_history, want_history = report[method]
            assert got == want and got_history == want_history

    def reference(p):
        (value, _), grad = both(jnp.asarray(p))
        return float(value), np.asarray(grad)

    want = scipy.optimize.minimize(
        reference, START, jac=True, method="L-BFGS-B", options={"gtol": 1e-10, "ftol": 0.0}
    )
    assert want.success and first["fit"]["converged"]
    np.testing.assert_allclose(first["fit"]["params"], want.x, rtol=0, atol=1e-8)
    np.testing.assert_allclose(first["fit"]["loss"], want.fun, rtol=1e-12)
    points, losses = first["scan"]
    want_losses = [float(both(jnp.asarray(p))[0][0]) for p in points]
    np.testing.assert_allclose(losses, want_losses, rtol=1e-12)
    assert all(lo <= v <= hi for row in points for v, (lo, hi) in zip(row, BOUNDS))


def test_bad_partition_in_one_member_is_raised_on_every_rank(tmp_path) -> None:
    frames = _frames()
    frames[1].loc[30, "x"] = np.nan  # member 1's second partition (rows 23-45), row 7
    started = time.monotonic()
    reports = _launch(tmp_path, 3, 3, "error", frames)
    assert time.monotonic() - started < 60  # ended promptly, not by the timeout
    for report in reports:  # ranks 0, 1 (member 1) and 2 all raise it
        name, message, notes = report["error"]
        assert name == "MissingDataError"
        assert "partition DataFrame[23:45]" in message and "column 'x'" in message
        assert any("member 1 of the group, Gaussian, on ranks [1]" in n for n in notes)
    assert len({json.dumps(r) for r in reports}) == 1


def test_comms_are_checked_when_the_group_is_built() -> None:
    frames = _frames()
    models = [cls(frames[0], ["x", "w"]) for cls in CLASSES]
    with pytest.raises(ValueError, match=r"one entry per member \(3\); got 2"):
        shardfit.SumstatsGroup(models, comms=[None, None])
    with pytest.raises(ValueError, match=r"None, 'split' or a sequence; got 'spilt'"):
        shardfit.SumstatsGroup(models, comms="spilt")
    with pytest.raises(TypeError, match=r"comms\[1\] must be an mpi4py communicator"):
        shardfit.SumstatsGroup(models, comms=[None, 3, None])
