"""Bad input raises ValueError/TypeError naming the field, before any thread starts, and
leaks nothing."""

import pytest

import gilmodel as gm
from conftest import CORES, fd_set, fds_left_behind, task_count


def ok_threads():
    return [gm.Thread("a", [gm.cpu(10)]), gm.Thread("b", [gm.cpu(10)])]


@pytest.mark.parametrize("make, exc, field", [
    (lambda: gm.Scenario(gm.cpython("3.11"), []), ValueError, "Scenario.threads"),
    (lambda: gm.Scenario(gm.cpython("3.11"), ok_threads(), cores=[-1]), ValueError, "Scenario.cores"),
    (lambda: gm.cpu(0), ValueError, "cpu.ticks"),
    (lambda: gm.cpu(-5), ValueError, "cpu.ticks"),
    (lambda: gm.cpu(1.5), TypeError, "cpu.ticks"),
    (lambda: gm.sleep(0), ValueError, "sleep.us"),
    (lambda: gm.send(0), ValueError, "send.bytes"),
    (lambda: gm.IntervalGIL(interval_us=0), ValueError, "IntervalGIL.interval_us"),
    (lambda: gm.IntervalGIL(interval_us=-1), ValueError, "IntervalGIL.interval_us"),
    (lambda: gm.IntervalGIL(check_every=0), ValueError, "IntervalGIL.check_every"),
    (lambda: gm.TickGIL(check_interval=0), ValueError, "TickGIL.check_interval"),
    (lambda: gm.TickGIL(lock="spin"), ValueError, "TickGIL.lock"),
    (lambda: gm.Scenario(gm.cpython("2.7"), ok_threads(), duration_s=0), ValueError, "duration_s"),
    (lambda: gm.Scenario(gm.cpython("2.7"), ok_threads(), duration_s=-1.0), ValueError, "duration_s"),
    (lambda: gm.Scenario(gm.cpython("2.7"), ok_threads(), tick_ns=0), ValueError, "tick_ns"),
    (lambda: gm.Scenario(gm.cpython("2.7"), ok_threads(), max_events=10), ValueError, "max_events"),
    (lambda: gm.Scenario("3.11", ok_threads()), TypeError, "Scenario.gil"),
    (lambda: gm.Thread("x", []), ValueError, "program"),
    (lambda: gm.Thread("", [gm.cpu(1)]), ValueError, "Thread.name"),
    (lambda: gm.loop(times=3), ValueError, "loop.body"),
    (lambda: gm.loop(gm.cpu(1), times=0), ValueError, "loop.times"),
    (lambda: gm.driver(pings=0, gap_us=10), ValueError, "driver.pings"),
])
def test_constructors_refuse(make, exc, field):
    with pytest.raises(exc, match=field.replace("[", r"\[").replace("(", r"\(")):
        make()


def runs_refuse(sc, field):
    tasks, fds = task_count(), fd_set()
    with pytest.raises(ValueError, match=field.replace("[", r"\[")):
        gm.run(sc)
    assert task_count() == tasks and not fds_left_behind(fds)


def test_join_unknown_thread():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.join("nobody")])]), r"threads[0].program[0].thread")


def test_join_own_thread():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.cpu(1), gm.join("a")])]), r"threads[0].program[1].thread")


def test_join_cycle():
    t = [gm.Thread("a", [gm.join("b")]), gm.Thread("b", [gm.join("a")])]
    runs_refuse(gm.Scenario(gm.cpython("3.11"), t), "cycle")


def test_stop_rule_naming_no_thread():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), ok_threads(), stop_thread="zz"), "stop.thread")


def test_core_outside_the_affinity_mask():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), ok_threads(), cores=[max(CORES) + 1]), "not in this process's affinity mask")


def test_thread_core_outside_the_scenario_cores():
    t = [gm.Thread("a", [gm.cpu(1)], core=max(CORES) + 1)]
    runs_refuse(gm.Scenario(gm.cpython("3.11"), t, cores=[CORES[0]]), r"threads[0].core")


def test_peer_core_outside_the_scenario_cores():
    t = [gm.Thread("a", [gm.send(8)], peer=gm.drain(core=max(CORES) + 1))]
    runs_refuse(gm.Scenario(gm.cpython("3.11"), t, cores=[CORES[0]]), r"threads[0].peer.core")


def test_event_budget_absurdly_large():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), ok_threads(), max_events=10**15), "max_events")


def test_duplicate_thread_names():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.cpu(1)]), gm.Thread("a", [gm.cpu(1)])]), r"threads[1].name")


def test_endless_run_without_stop_rule():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.loop(gm.cpu(1))])]), "duration_s")


def test_send_without_peer_and_recv_without_driver():
    runs_refuse(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.send(10)])]), "no peer")
    runs_refuse(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.recv(10)], peer=gm.drain())]), "driver")


def test_run_wants_a_scenario():
    with pytest.raises(TypeError, match="Scenario"):
        gm.run({"threads": []})


def test_validate_returns_the_placement():
    sc = gm.Scenario(gm.cpython("3.11"), ok_threads() + [gm.Thread("c", [gm.cpu(1)], core=CORES[0])], cores=CORES)
    cores = sc.validate()
    assert cores[0] == CORES[0] and cores[2] == CORES[0]
    assert cores[1] == CORES[1 % len(CORES)]


@pytest.mark.parametrize("kw, exc", [
    (dict(watchdog_s=0), ValueError),
    (dict(watchdog_s=-1.0), ValueError),
    (dict(watchdog_s=float("inf")), ValueError),
    (dict(watchdog_s=float("nan")), ValueError),
    (dict(watchdog_s=10**6), ValueError),
    (dict(watchdog_s="5"), TypeError),
    (dict(watchdog_s=True), TypeError),
    (dict(on_overflow="panic"), ValueError),
    (dict(on_overflow=None), TypeError),
])
def test_watchdog_and_overflow_refused(kw, exc):
    field = "Scenario." + next(iter(kw))
    with pytest.raises(exc, match=field) as ei:
        gm.Scenario(gm.cpython("3.11"), ok_threads(), **kw)
    if kw.get("watchdog_s") == float("inf"):
        assert "cannot be switched off" in str(ei.value)
    if "on_overflow" in kw:
        assert "'truncate', 'error'" in str(ei.value)


def test_core_refuses_watchdog_and_overflow():
    import json

    spec = gm.Scenario(gm.cpython("3.11"), ok_threads()).to_spec()
    with pytest.raises(ValueError, match="watchdog_s: 1000000000: must be between 0.01 and 86400"):
        gm._core.validate(json.dumps(dict(spec, watchdog_s=1e9)))
    with pytest.raises(ValueError, match="truncate"):
        gm._core.validate(json.dumps(dict(spec, on_overflow="panic")))


def test_new_fields_survive_replace():
    sc = gm.Scenario(gm.cpython("3.11"), ok_threads(), watchdog_s=3, on_overflow="error").replace(name="x")
    assert (sc.watchdog_s, sc.on_overflow) == (3.0, "error")
    assert sc.to_spec()["watchdog_s"] == 3.0 and sc.to_spec()["on_overflow"] == "error"


def test_unpinned_threads_may_not_name_a_core():
    t = [gm.Thread("a", [gm.cpu(1)], core=CORES[0])]
    with pytest.raises(ValueError, match=r"Thread\('a'\).core: .*pin_threads is False"):
        gm.Scenario(gm.cpython("3.11"), t, pin_threads=False)
    with pytest.raises(TypeError, match="Scenario.pin_threads"):
        gm.Scenario(gm.cpython("3.11"), ok_threads(), pin_threads="no")
