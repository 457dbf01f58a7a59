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
