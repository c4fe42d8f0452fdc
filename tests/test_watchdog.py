"""The watchdog: a run that stops making progress is stopped, every thread joined, and reported
(who held the GIL, what each thread waited on, its last events), with the partial run."""

import time

import pytest

import gilmodel as gm
import test_log_invariants as inv
from log_checks import check_counts
from conftest import CORES, POLICIES, fd_set, fds_left_behind, task_count_back_to, task_count_settled
from gilmodel.scenario import _Hang  # test-only op: holds the GIL until the run is stopped

# Real threads: a busy machine changes what they do (tests/contention.py).
pytestmark = pytest.mark.timing

WATCHDOG_S = 0.3


def assert_partial_log_ok(name, run, exclusive=True):
    """The log invariants of tests/test_log_invariants.py that hold for any run, cut short or not."""
    inv.test_timestamps_monotonic_per_thread_and_sorted((name, run))
    # Under no GIL holds overlap and the switch count is not defined (its counter races).
    check_counts(run, name, exclusive)
    inv.test_cpu_column_is_the_pinned_core((name, run))
    t, th, ev, arg, names = inv.columns(run)
    acq, rel, req = names.index("acquire"), names.index("release"), names.index("request")
    gil = (ev == acq) | (ev == rel)
    if exclusive:  # never two holders at once
        seq = ev[gil]
        assert (seq[0::2] == acq).all() and (seq[1::2] == rel).all(), name
    for k in range(run.threads.num_rows):
        mine = ev[th == k]
        assert mine[0] == names.index("start") and mine[-1] == names.index("exit"), (name, k)
        assert (mine == names.index("io_begin")).sum() == (mine == names.index("io_end")).sum()
        seq = ev[(th == k) & (gil | (ev == req))]
        assert seq.size % 3 == 0, (name, k)
        assert (seq[0::3] == req).all() and (seq[1::3] == acq).all() and (seq[2::3] == rel).all(), (name, k)


def halted(sc, exc=gm.WatchdogError):
    sc = sc.resolved(quiet=True)  # a profile measured on first use is not the run's time
    tasks, fds = task_count_settled(), fd_set()
    t = time.monotonic()
    with pytest.raises(exc) as ei:
        gm.run(sc)
    wall = time.monotonic() - t
    assert task_count_back_to(tasks) == tasks, "threads left behind"
    assert not fds_left_behind(fds), "file descriptors left behind: %s" % fds_left_behind(fds, 0)
    return ei.value, wall


@pytest.mark.parametrize("name", sorted(POLICIES) + ["nogil"])
def test_a_holder_that_hangs_is_stopped_and_named(name):
    gil = POLICIES.get(name) or gm.NoGIL()
    sc = gm.Scenario(gil, [
        gm.Thread("holder", [gm.cpu(10), _Hang()]),
        # The waiters sleep 50 ms first so the holder surely takes the GIL first, even when
        # another process holds its core for a few ms (2 ms was not enough under load).
        gm.Thread("w1", [gm.sleep(50_000), gm.cpu(1000)]),
        gm.Thread("w2", [gm.sleep(50_000), gm.loop(gm.cpu(100), times=10)]),
    ], cores=CORES, watchdog_s=WATCHDOG_S)
    err, wall = halted(sc)
    msg = str(err)
    assert wall < WATCHDOG_S + 0.5, "stopped %.3f s after the start" % wall
    assert isinstance(err, RuntimeError)
    assert "watchdog_s=0.3" in msg
    assert '"holder" (thread 0): holds the GIL, in _hang' in msg
    if name == "nogil":
        assert 'no GIL (policy nogil); running: "holder" (thread 0)' in msg
    else:
        assert 'the GIL was held by "holder" (thread 0)' in msg
        assert '"w1" (thread 1): waiting for the GIL' in msg
        assert '"w2" (thread 2): waiting for the GIL' in msg
    assert " s acquire(" in msg and "last events:" in msg
    run = err.run
    assert isinstance(run, gm.Run)
    assert run.meta["stopped_by"] == "watchdog" and run.meta["watchdog_s"] == WATCHDOG_S
    assert WATCHDOG_S <= run.meta["elapsed_ns"] / 1e9 < WATCHDOG_S + 0.1
    # Under nogil the others just finish; under a GIL they wait until the stop.
    assert run.threads.column("stopped").to_pylist() == [True] + [name != "nogil"] * 2
    assert_partial_log_ok(name, run, exclusive=name != "nogil")


def test_a_real_deadlock_through_the_public_api():
    # The driver waits for a reply the thread never sends; the thread waits for the next ping;
    # a third thread joins it. Nothing holds the GIL: everyone is blocked in a system call.
    sc = gm.Scenario(gm.cpython("3.11"), [
        gm.Thread("io", [gm.loop(gm.recv(8), gm.cpu(10))], peer=gm.driver(pings=5, gap_us=1000, reply_bytes=8)),
        gm.Thread("joiner", [gm.cpu(10), gm.join("io")]),
        gm.Thread("sleeper", [gm.sleep(1000)]),
    ], cores=CORES, watchdog_s=WATCHDOG_S)
    err, wall = halted(sc)
    msg = str(err)
    assert wall < WATCHDOG_S + 0.5
    assert "no thread held the GIL" in msg
    assert '"io" (thread 0): blocked in recv(8 bytes) from its driver' in msg
    assert '"joiner" (thread 1): waiting in join("io")' in msg
    assert '"sleeper" (thread 2): finished' in msg
    assert "io_begin(1)" in msg, "the recv shows among the last events"
    assert err.run.meta["stopped_by"] == "watchdog"
    assert_partial_log_ok("deadlock", err.run)


def test_events_without_progress_do_not_feed_the_watchdog():
    # Waiters under the interval GIL keep logging timeouts and drop requests while the holder
    # hangs; that is not progress. "w" sleeps first so that the holder surely takes the GIL
    # first: after 1 ms, in one CI run, "w" had taken it, finished, and never waited.
    sc = gm.Scenario(gm.IntervalGIL(interval_us=200), [
        gm.Thread("holder", [_Hang()]),
        gm.Thread("w", [gm.sleep(50_000), gm.cpu(10)]),
    ], cores=CORES, watchdog_s=WATCHDOG_S)
    err, _ = halted(sc)
    assert err.run.threads.column("timeouts").to_pylist()[1] > 100
    assert "drop_request(" in str(err)


@pytest.mark.parametrize("gil", [gm.cpython("3.11"), gm.TickGIL(check_interval=10**9)], ids=["3.11", "tick-no-checks"])
def test_a_long_lone_cpu_op_is_progress(gil):
    # One thread, one cpu op far longer than the watchdog, nothing logged in between (and, with
    # check_interval=1e9, not even a check point): its ticks are the progress.
    run = gm.run(gm.Scenario(gil, [gm.Thread("a", [gm.cpu(5_000_000)])], cores=CORES[:1], watchdog_s=0.05, tick_ns=50))
    assert run.meta["stopped_by"] == "all_done"
    assert run.meta["elapsed_ns"] > 100_000_000 and run.events.num_rows == 5


def test_log_off_still_watched():
    sc = gm.Scenario(gm.cpython("2.7"), [gm.Thread("holder", [gm.cpu(10), _Hang()]), gm.Thread("w", [gm.cpu(10)])],
                     cores=CORES, watchdog_s=WATCHDOG_S, log=False)
    err, _ = halted(sc)
    assert "not logged (log=False)" in str(err) and err.run.events.num_rows == 0


def test_default_rule_and_meta():
    one = [gm.Thread("a", [gm.cpu(10)])]
    m = gm.run(gm.Scenario(gm.cpython("3.11"), one)).meta
    assert m["watchdog_s"] == gm.scenario.WATCHDOG_MIN_S == 5.0 and m["watchdog_default"]
    # A 2.5 s switch interval: 4 x 2.5 s.
    m = gm.run(gm.Scenario(gm.IntervalGIL(interval_us=2_500_000), one)).meta
    assert m["watchdog_s"] == pytest.approx(10.0)
    m = gm.run(gm.Scenario(gm.cpython("3.11"), one, watchdog_s=2.5)).meta
    assert m["watchdog_s"] == 2.5 and not m["watchdog_default"]


def test_cli_reports_a_halted_run(monkeypatch, capsys):
    import dataclasses

    from gilmodel import cli, experiments

    def hang(gil, cores=None):
        return gm.Scenario(gm.cpython("3.11"), [gm.Thread("h", [_Hang()])], watchdog_s=0.05)

    monkeypatch.setitem(experiments.EXPERIMENTS, "handoffs", dataclasses.replace(experiments.EXPERIMENTS["handoffs"], builder=hang))
    assert cli.main(["run", "handoffs"]) == 1
    assert "gilmodel: error: watchdog:" in capsys.readouterr().err
