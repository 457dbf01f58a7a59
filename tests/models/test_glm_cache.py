"""IRLS iterations after the first read nothing: the partition cache serves them
(issue 6). Reads are counted by a partition that logs them to a file."""

from __future__ import annotations

from glm_cases import FORMULA, glm_frame
from glm_counting import logged_source, reads

import shardfit


def test_iterations_do_not_read_serial(tmp_path) -> None:
    log = tmp_path / "reads.log"
    source = logged_source(glm_frame("gamma", "log", seed=3), 3, log)
    result = shardfit.glm(FORMULA, source, family="gamma", link="log").fit(backend="serial")
    assert result.iterations >= 5
    passes = [name for name, _ in result.extra["passes"]]
    assert sum(name.startswith("glm-irls") for name in passes) == result.iterations + 1
    # The schema pass and the prepare pass read each partition; nothing else does.
    assert reads(log) == {p.key: 2 for p in source.partitions}


def test_iterations_do_not_read_processes(tmp_path) -> None:
    log = tmp_path / "reads.log"
    source = logged_source(glm_frame("poisson", seed=3), 4, log)
    result = shardfit.poisson(FORMULA, source).fit(backend="processes", workers=2)
    assert result.iterations >= 4
    # A worker that did not encode a partition in the prepare pass encodes it once on
    # its first miss: at most schema + one read per worker, never one per iteration.
    counts = reads(log)
    assert set(counts) == {p.key for p in source.partitions}
    assert all(2 <= n <= 3 for n in counts.values()), counts


def test_the_last_iteration_evaluates_the_fit_when_it_can() -> None:
    """A fixed-scale family with a nonrobust covariance needs no final pass: the IRLS
    pass expected to be the last evaluates the log-likelihood and null deviance on the
    block it holds. Its figures equal a fit that runs the final pass (HC0 needs it)."""
    import numpy as np

    frame = glm_frame("poisson", seed=5)
    folded = shardfit.poisson(FORMULA, frame).fit(backend="serial")
    robust = shardfit.poisson(FORMULA, frame).fit(backend="serial", cov_type="HC0")
    names = [name for name, _ in folded.extra["passes"]]
    assert "glm-final" not in names
    assert "glm-final" in [name for name, _ in robust.extra["passes"]]
    assert sum(name.startswith("glm-irls") for name in names) == folded.iterations + 1
    for attribute in ("llf", "deviance", "null_deviance", "aic", "pearson_chi2"):
        np.testing.assert_allclose(
            getattr(folded, attribute), getattr(robust, attribute), rtol=1e-13
        )
    np.testing.assert_array_equal(folded.params, robust.params)
    # A free-scale family keeps the final pass (its log-likelihood needs the scale).
    gamma = shardfit.glm(FORMULA, glm_frame("gamma", "log", seed=5), family="gamma", link="log")
    assert "glm-final" in [name for name, _ in gamma.fit(backend="serial").extra["passes"]]
