"""max_events and on_overflow: truncate (the default) keeps each thread's first events and goes
on; "error" stops the run and raises EventBudgetError with the partial run."""

import time

import pytest

import gilmodel as gm
from conftest import CORES, fd_set, fds_left_behind, task_count_back_to, task_count_settled
from test_watchdog import assert_partial_log_ok


def spinners(**kw):
    return gm.Scenario(gm.cpython("2.7"), [gm.Thread("a", [gm.loop(gm.cpu(1000))]), gm.Thread("b", [gm.loop(gm.cpu(1000))])],
                       cores=CORES, **kw)


def test_default_budget_is_a_byte_budget():
    assert gm.scenario.EVENT_BYTES == 8 + 2 + 1 + 8
    assert gm.scenario.DEFAULT_LOG_BYTES == 256 << 20
    assert gm.scenario.DEFAULT_MAX_EVENTS == (256 << 20) // 19
    assert gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.cpu(1)])]).max_events == gm.scenario.DEFAULT_MAX_EVENTS


def test_truncate_goes_on_and_says_so():
    run = gm.run(spinners(duration_s=0.2, max_events=1000))
    m = run.meta
    assert m["on_overflow"] == "truncate" and m["events_truncated"] and m["events_dropped"] > 0
    assert m["stopped_by"] == "duration" and run.events.num_rows <= 1000


def test_error_stops_the_run_and_raises_with_the_partial_run():
    sc = spinners(duration_s=30, max_events=1000, on_overflow="error").resolved(quiet=True)
    tasks, fds = task_count_settled(), fd_set()
    t = time.monotonic()
    with pytest.raises(gm.EventBudgetError) as ei:
        gm.run(sc)
    assert time.monotonic() - t < 1.0
    assert task_count_back_to(tasks) == tasks and not fds_left_behind(fds)
    err = ei.value
    msg = str(err)
    assert isinstance(err, RuntimeError)
    assert "max_events=1000" in msg and "events were reached" in msg and "Raise max_events" in msg
    assert 'on_overflow="truncate"' in msg
    run = err.run
    assert run.meta["stopped_by"] == "event_budget" and run.meta["on_overflow"] == "error"
    assert run.meta["events_truncated"] and run.events.num_rows <= 1000
    dropped = sum(run.threads.column("events_dropped").to_pylist())
    assert dropped == run.meta["events_dropped"] > 0
    assert "%d counted but not stored" % dropped in msg


def test_error_mode_within_budget_is_a_normal_run():
    run = gm.run(spinners(duration_s=0.05, on_overflow="error"))
    assert run.meta["stopped_by"] == "duration" and not run.meta["events_truncated"]
    assert_partial_log_ok("within budget", run)
