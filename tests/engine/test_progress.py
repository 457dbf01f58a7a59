"""Progress events: one per partition, with rows, bytes and time; silent by default."""

from __future__ import annotations

from shardfit.engine import RichProgress, run_pass
from shardfit.engine._testing import GramTask


def test_callback_gets_one_event_per_partition(source, shared_pool):
    events = []
    run_pass(GramTask(), source, backend=shared_pool, progress=events.append)
    assert sorted(event.index for event in events) == list(range(source.npartitions))
    assert [event.done for event in events] == list(range(1, source.npartitions + 1))
    assert {event.total for event in events} == {source.npartitions}
    assert {event.key for event in events} == {p.key for p in source.partitions}
    assert all(event.nrows == 40 and event.nbytes == 40 * 3 * 8 for event in events)
    assert all(event.elapsed > 0 and not event.from_checkpoint for event in events)
    assert {event.pass_name for event in events} == {"pass"}


def test_checkpointed_partitions_are_reported_as_such(source, tmp_path):
    run_pass(GramTask(), source, backend="serial", checkpoint=tmp_path, pass_name="gram")
    events = []
    run_pass(
        GramTask(),
        source,
        backend="serial",
        checkpoint=tmp_path,
        pass_name="gram",
        progress=events.append,
    )
    assert len(events) == source.npartitions
    assert all(event.from_checkpoint and event.elapsed == 0.0 for event in events)


def test_silent_by_default_and_when_not_a_terminal(source, capsys):
    run_pass(GramTask(), source, backend="serial")
    run_pass(GramTask(), source, backend="serial", progress=True)  # stderr is captured
    assert capsys.readouterr() == ("", "")


def test_forced_bar_draws_on_stderr(source, capsys):
    run_pass(GramTask(), source, backend="serial", progress=RichProgress(force=True))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "pass" in captured.err and f"{source.npartitions}/{source.npartitions}" in captured.err
    assert "440 rows" in captured.err
