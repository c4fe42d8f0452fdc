"""Ctrl-C with threads (P3): real signals to the main thread, the tick GIL's uninterruptible
join and tick storm, the interval GIL's prompt handler; the host's own handling survives."""

import os
import signal
import threading
import time

import pytest

import gilmodel as gm
from gilmodel import scenarios
from conftest import CORES


# When the main thread reaches its join, and the signal arrives, is the machine's: a CI run
# under steal delivered the signal 7 ms late, before the main thread was in its join.
@pytest.mark.timing
def test_tick_gil_handler_waits_for_the_join_while_workers_storm():
    # The mechanism at a fixed 50 ns tick: with 2.7's measured ticks (7 ns, modelled in groups of
    # 3) a release and retake (~0.3 us) costs many ticks, so the storm's rate rises less (3.6x).
    r = scenarios.ctrl_c(gm.cpython("2.7"), cores=CORES, work_ticks=1_000_000, signal_at_us=20_000, tick_ns=50)
    assert r["signal_delivered_ms"] is not None and r["handler_ms"] is not None
    # The join is not interruptible: the handler runs only after the joined worker exits.
    assert r["handler_waited_for_join"], r
    # Meanwhile every tick is a check and a release (measured ≥ 15× more holds/s on 1 and 2
    # cores of the VM); asked: 5×.
    assert r["holds_per_s_after"] > 5 * r["holds_per_s_before"], r
    kinds = r["run"].events.column("event").to_pylist()
    assert kinds.count("signal") == kinds.count("handler") == 1


def test_tick_gil_latency_grows_with_the_work():
    # At a fixed 50 ns tick, so that even the short work outlasts the signal at 20 ms.
    short = scenarios.ctrl_c(gm.cpython("2.7"), cores=CORES, work_ticks=400_000, tick_ns=50)["handler_latency_ms"]
    long = scenarios.ctrl_c(gm.cpython("2.7"), cores=CORES, work_ticks=2_000_000, tick_ns=50)["handler_latency_ms"]
    assert long > 2 * short, (short, long)


# One worker: with two, the main thread competes with the other worker for each forced drop, so
# the handler's wait is a matter of luck (`benches/ctrl_c.py 30 2`: 0.1-47 ms in the model, 0.7-37
# ms for the real 3.11 pinned, docs/validation/many-threads.md), and once in CI, on a busy host,
# it outlasted the join.
@pytest.mark.timing
def test_interval_gil_runs_the_handler_within_a_few_intervals():
    r = scenarios.ctrl_c(gm.cpython("3.11"), cores=CORES, workers=1, work_ticks=3_000_000, signal_at_us=20_000)
    assert not r["handler_waited_for_join"], r
    # Measured 5.1-5.9 ms (one interval) on the quiet 2-core VM, 18 runs (the real 3.11: 5.2-5.4,
    # `benches/ctrl_c.py 8 1`); the worker takes 70-80 ms more. Asked: the handler runs within
    # the first half of the time the join would have taken.
    budget = r["first_worker_done_ms"] - r["signal_sent_ms"]
    assert r["handler_latency_ms"] < 0.5 * budget, r


def test_each_signal_runs_its_handler_once():
    sc = gm.Scenario(gm.cpython("3.11"), [
        gm.Thread("main", [gm.cpu(10), gm.join("w")]),
        gm.Thread("w", [gm.cpu(3_000_000)]),
    ], cores=CORES, signals=[gm.signal(10_000, "SIGUSR1", [gm.cpu(5)]), gm.signal(60_000, "SIGUSR2", [gm.cpu(7)])])
    r = gm.run(sc)
    ev = r.events.to_pandas()
    handlers = ev[ev.event == "handler"]
    assert handlers.arg.tolist() == [0, 1]
    assert set(handlers.thread) == {0}
    assert [s["sent_ns"] is not None for s in r.meta["signals"]] == [True, True]


def test_host_python_keeps_its_sigint_handling():
    # During a run a SIGINT that is not the run's own (here: os.kill, si_code SI_USER) goes to
    # Python's handler, so the run stops with KeyboardInterrupt; after it, Python's handler
    # is back in place.
    sc = gm.Scenario(gm.cpython("3.11"), [gm.Thread("main", [gm.join("w")]), gm.Thread("w", [gm.cpu(10**9)])],
                     cores=CORES, signals=[gm.signal(60_000_000, "SIGINT")])
    threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gm.run(sc)
    assert time.monotonic() - t < 5
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


@pytest.mark.parametrize("bad, match", [
    (lambda: gm.signal(-1), "Signal.at_us"),
    (lambda: gm.signal(10, "SIGKILL"), "Signal.signum"),
    (lambda: gm.signal(10, 9), "Signal.signum"),
    (lambda: gm.signal(10, "SIGINT", [gm.sleep(5)]), "Signal.handler"),
])
def test_bad_signals_are_refused(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bad()
