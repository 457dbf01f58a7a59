"""Fixtures for the engine tests: isolated temporary directories, leftover checks,
and a Dask cluster started with the ``dask`` commands."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import pytest

from shardfit.engine._testing import GramTask, seeded_source

BIN = Path(sys.executable).parent
# Partitions of mixed-scale rows: floating-point sums depend on their order.
NPARTITIONS = 11


@pytest.fixture(scope="session", autouse=True)
def _resource_tracker() -> None:
    # multiprocessing's resource tracker lives as long as pytest; start it before
    # any test changes TMPDIR so the leftover checks do not mistake it for a leak.
    resource_tracker.ensure_running()


def processes_with_env(name: str, value: str) -> list[int]:
    """Live processes (other than this one) whose environment has ``name=value``."""
    needle = f"{name}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ and state != "Z":
            found.append(int(entry.name))
    return found


def wait_until(condition, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


@pytest.fixture
def isolated_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh TMPDIR for this test and its child processes, checked afterwards.

    After the test no file may remain in it and no process started with it may be
    alive (children inherit TMPDIR, so this finds orphans too).
    """
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert wait_until(lambda: not processes_with_env("TMPDIR", str(scratch))), (
        f"processes left behind: {processes_with_env('TMPDIR', str(scratch))}"
    )
    assert sorted(p.name for p in scratch.iterdir()) == [], "temporary files left behind"


@pytest.fixture(scope="session")
def source():
    """The shared test source."""
    return seeded_source(NPARTITIONS, nrows=40, ncols=3, seed=7)


@pytest.fixture(scope="session")
def reference(source) -> bytes:
    """Every bit of the serial answer."""
    from shardfit.engine import run_pass

    return run_pass(GramTask(), source, backend="serial").digest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def dask_commands_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two workers started as separate processes by the dask CLI."""
    scratch = tmp_path_factory.mktemp("dask-cli")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "TMPDIR": str(scratch)}
    started: list[subprocess.Popen[bytes]] = []

    def launch(*args: str) -> None:
        started.append(
            subprocess.Popen(
                [str(BIN / "dask"), *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # so teardown can stop nanny and worker together
            )
        )

    def reachable() -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    try:
        launch("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        assert wait_until(reachable, timeout=30), "the dask scheduler did not start"
        for _ in range(2):
            launch(
                "worker",
                address,
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(scratch),
            )
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(started):
            try:
                os.killpg(process.pid, 15)
            except ProcessLookupError:
                pass
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        assert wait_until(lambda: not processes_with_env("TMPDIR", str(scratch)))


@pytest.fixture(scope="session")
def shared_pool() -> Iterator[object]:
    """One 2-worker processes session for tests that do not check process lifetimes."""
    from shardfit.engine import session

    with session("processes", workers=2) as sess:
        yield sess


@pytest.fixture(params=["serial", "threads", "processes"])
def local_backend(request: pytest.FixtureRequest) -> object:
    """Each local backend with 2 workers (processes: the shared pool)."""
    if request.param == "serial":
        return "serial"
    if request.param == "threads":
        from shardfit.engine.backends import ThreadsBackend

        return ThreadsBackend(workers=2)
    return request.getfixturevalue("shared_pool")
