"""Sessions: one backend kept open across passes; whoever opens it closes it."""

from __future__ import annotations

import os

from shardfit.engine import map_partitions, run_pass, session
from shardfit.engine._testing import GramTask


def test_session_keeps_one_pool_across_passes(source, reference, isolated_tmp):
    with session("processes", workers=2) as sess:
        first = map_partitions(_pid, source, backend=sess)
        for _ in range(3):
            assert run_pass(GramTask(), source, backend=sess).digest() == reference
        again = map_partitions(_pid, source, backend=sess)
        assert set(first) == set(again) and len(set(first)) <= 2
        assert os.getpid() not in first
    assert not sess.backend.is_open


def _pid(partition) -> int:
    return os.getpid()


def test_nested_session_does_not_close_the_outer_one(source, isolated_tmp):
    with session("threads", workers=2) as outer:
        with session(outer) as inner:
            run_pass(GramTask(), source, backend=inner)
        assert outer.backend.is_open
        run_pass(GramTask(), source, backend=outer)


def test_a_closed_session_is_reopened_and_closed_by_the_pass(source, reference, isolated_tmp):
    with session("threads", workers=1) as sess:
        pass
    assert run_pass(GramTask(), source, backend=sess).digest() == reference
    assert not sess.backend.is_open
