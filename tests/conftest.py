"""Shared fixtures: one seed controls all randomness; backends a test module shares."""

from __future__ import annotations

import numpy as np
import pytest

SEED = 20261123


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


@pytest.fixture(scope="module")
def processes():
    """A processes session with 2 workers, kept open for the test module."""
    import shardfit

    with shardfit.session("processes", workers=2) as sess:
        yield sess


@pytest.fixture(scope="module")
def dask_client():
    """A real Dask LocalCluster (2 worker processes, 1 thread each) and its client,
    for the test module."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
