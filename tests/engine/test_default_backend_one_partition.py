"""With no backend given, a source of one partition runs serially: starting a pool of
worker processes (1.5-2 s) for one task a pass cost more than the fit (a 20,000-row
``ols(...).fit()`` took 2.2 s, statsmodels 1.1 s); the numbers are the same bits."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import shardfit
from shardfit.engine import session


def test_the_default_backend_by_partition_count():
    assert session(None, partitions=1).backend.name == "serial"
    assert session(None, partitions=0).backend.name == "serial"
    assert session(None, partitions=2).backend.name == "processes"
    assert session(None).backend.name == "processes"
    # Asked for workers, a scheduler or a backend: as asked.
    assert session(None, workers=2, partitions=1).backend.name == "processes"
    assert session("processes", partitions=1).backend.name == "processes"


def test_a_one_partition_fit_starts_no_worker_process():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=500)})
    df["y"] = 1 + 2 * df.x + rng.normal(size=500)
    df["c"] = rng.poisson(np.exp(0.3 * df.x))
    before = set(multiprocessing.active_children())
    with shardfit.profile() as prof:
        ols = shardfit.ols("y ~ x", df).fit()
        glm = shardfit.poisson("c ~ x", df).fit()
    assert {p.backend.split()[0] for p in prof.passes} == {"serial"}
    assert set(multiprocessing.active_children()) == before
    np.testing.assert_allclose(ols.params, smf.ols("y ~ x", df).fit().params, rtol=1e-12)
    reference = smf.poisson("c ~ x", df).fit(disp=0)
    np.testing.assert_allclose(glm.params, reference.params, rtol=1e-7)
