"""Property-based tests (hypothesis) of the whole front: generated scenarios.

* Valid scenarios — any policy with knobs anywhere in their allowed ranges (extremes
  included), 1-4 threads running random programs (short CPU work, short sleeps, loops, joins
  that form no cycle, sends and receives where the thread has a suitable peer), cores from
  this process's allowed cores, signals — run to completion within a bound fixed by
  construction, keep every log invariant (``log_checks``), and leave no thread or fd behind.
* Invalid input — wrong types, out-of-range numbers, NaN/inf, huge ints, empty and non-text
  strings, unknown names, join cycles, bad cores, non-ops in programs, over-deep loops — raises
  ValueError or TypeError whose message names the field: never a PanicException, a hang or a
  crash, and nothing is left behind.

Repeatable: every test runs under ``derandomize=True`` with ``database=None``, so hypothesis
draws the same examples on every machine and every run (a seed derived from the test), and
keeps no example store between runs: CI sees exactly what a developer sees. A failure prints
the falsifying example. ``faulthandler`` turns a hang into a traceback and an exit.

Time: 10.8 s for the file on the 2-core VM (300 valid runs 6.6 s, 100 finite ones 1.1 s, 2000
invalid inputs 2.6 s); each valid run is bounded by its ``duration_s`` of at most 60 ms, or by
the finite work of its programs. ``GILMODEL_PROPERTY_SCALE=8`` (8x the examples) passed in
68 s.
"""

import faulthandler
import math
import os
import re
import time

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import gilmodel as gm
from gilmodel.policies import CPYTHON_VERSIONS
from gilmodel._check import show
from gilmodel.scenario import SIGNALS
from conftest import CORES, fd_set, fds_left_behind, task_count, task_count_back_to, task_count_settled
from log_checks import check_run

#: GILMODEL_PROPERTY_SCALE=10 runs ten times the examples (a soak; the default is CI's).
SCALE = float(os.environ.get("GILMODEL_PROPERTY_SCALE", "1"))
COMMON = dict(derandomize=True, database=None, deadline=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def hang_guard():
    # A hang (a run that never ends, a deadlock) dumps every thread's stack and exits instead of
    # blocking CI; far above what any test here needs.
    faulthandler.dump_traceback_later(240, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------- valid scenarios

def knob(lo, hi, typical_hi):
    """An int knob: mostly small values, sometimes the extremes of its allowed range."""
    return st.one_of(st.integers(lo, typical_hi), st.sampled_from([lo, hi]))


POLICY = st.sampled_from([
    st.builds(gm.TickGIL, check_interval=knob(1, 10**9, 1000), lock=st.sampled_from(["sem", "mutex_cond"])),
    st.builds(gm.IntervalGIL, interval_us=knob(1, 10**8, 5000), force_switching=st.booleans(),
              dedupe_drop_request=st.booleans(), check_every=knob(1, 10**9, 200)),
    st.builds(gm.PriorityGIL, interval_us=knob(1, 10**8, 5000), check_every=knob(1, 10**9, 200)),
    st.builds(gm.BfsGIL, slice_us=knob(1, 10**8, 10_000), deadline_factor=knob(1, 10**6, 16), check_every=knob(1, 10**9, 200)),
    st.builds(gm.FifoGIL, check_every=knob(1, 10**9, 1000), min_hold_us=knob(0, 10**8, 2000)),
    st.builds(gm.NoGIL, check_every=knob(1, 10**9, 1000)),
    st.sampled_from(CPYTHON_VERSIONS).map(gm.cpython),
]).flatmap(lambda s: s)  # each kind equally often (one_of leans to its first branches)

#: Thread names: short ASCII ones, and any text of 1-64 characters (no NUL, no surrogate).
NAME = st.one_of(
    st.sampled_from(["main", "w0", "w1", "io", "cpu", "a", "b"]),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=64),
)

#: CPU work stays short (at most 3000 ticks of at most 200 ns, 0.6 ms) whatever the policy, so
#: every op ends soon after the stop flag is raised, even with a check point every 1e9 ticks.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
CPU = st.integers(1, 3000).map(gm.cpu)
SLEEP = st.integers(1, 1500).map(gm.sleep)


def ops(names, i, peer, finite, depth=0):
    """An op of thread ``i``: joins only go to later threads (so they form no cycle), sends
    need a peer, receives a driver; loops nest at most twice. ``finite``: no endless loop and
    no receive, so the whole program ends by itself."""
    leaves = [CPU, SLEEP]
    if peer is not None:
        leaves.append(st.integers(1, 2048).map(gm.send))
    if isinstance(peer, gm.Driver) and not finite:
        leaves.append(st.integers(1, 256).map(gm.recv))
    if i + 1 < len(names):
        leaves.append(st.sampled_from(names[i + 1:]).map(gm.join))
    leaf = st.one_of(leaves)
    if depth >= 2:
        return leaf
    times = st.integers(1, 3) if finite else st.one_of(st.none(), st.integers(1, 3))
    body = st.lists(ops(names, i, peer, finite, depth + 1), min_size=1, max_size=2)
    return st.one_of(leaf, st.builds(lambda b, t: gm.loop(*b, times=t), body, times))


def peers(usable):
    core = st.one_of(st.none(), st.sampled_from(usable))
    return st.one_of(
        st.none(),
        st.builds(gm.drain, core),
        st.builds(gm.driver, pings=st.integers(1, 20), gap_us=st.integers(1, 3000), nbytes=st.integers(1, 64),
                  reply_bytes=st.integers(0, 64), core=core),
    )


SIGNAL = st.builds(gm.signal, st.integers(0, 30_000), st.sampled_from(sorted(SIGNALS) + sorted(SIGNALS.values())),
                   st.lists(st.integers(1, 2000).map(gm.cpu), max_size=2))


@st.composite
def scenarios(draw, finite=False):
    """A valid scenario and the wall-clock bound it must end within. Without ``finite`` every
    scenario has a ``duration_s`` of 5-60 ms (endless loops, receives and stop threads allowed);
    with it, no ``duration_s``, and programs of at most 4 ops whose loops run at most 3 x 3
    times: at most 144 short ops (CPU <= 0.6 ms, sleep <= 1.5 ms) per thread."""
    n = draw(st.integers(1, 4))
    names = draw(st.lists(NAME, min_size=n, max_size=n, unique=True))
    cores = draw(st.one_of(st.none(), st.lists(st.sampled_from(CORES), min_size=1, max_size=len(CORES), unique=True)))
    usable = list(cores or CORES)
    pin = draw(st.sampled_from([True, True, False]))  # unpinned threads name no core
    threads = []
    for i in range(n):
        peer = draw(peers(usable))
        prog = draw(st.lists(ops(names, i, peer, finite), min_size=1, max_size=4))
        core = draw(st.one_of(st.none(), st.sampled_from(usable))) if pin else None
        threads.append(gm.Thread(names[i], prog, core=core, peer=peer))
    kw = dict(
        cores=cores,
        stop_thread=draw(st.one_of(st.none(), st.sampled_from(names))),
        tick_ns=draw(st.one_of(st.none(), st.just(50.0), st.floats(1.0, 200.0))),
        log=draw(st.sampled_from([True, True, True, False])),
        signals=draw(st.lists(SIGNAL, max_size=2)),
        name=draw(TEXT),
        pin_threads=pin,
    )
    if draw(st.booleans()):  # a small event budget: the log is truncated, or the run halted, and says so
        kw["max_events"] = draw(st.integers(max(1000, 16 * n), 20_000))
        kw["on_overflow"] = draw(st.sampled_from(["truncate", "error"]))
    # An explicit watchdog well past any wait these scenarios make (a valid run never trips it).
    kw["watchdog_s"] = draw(st.one_of(st.none(), st.floats(30.0, 86400.0)))
    if finite:
        # 4 threads x 144 ops x (1.5 ms + a 5 ms wait for the GIL, at most) < 4 s.
        kw["gil"] = draw(POLICY.filter(lambda p: getattr(p, "interval_us", 0) <= 5000 and getattr(p, "slice_us", 0) <= 10_000
                                       and getattr(p, "min_hold_us", 0) <= 2000))
        bound = 10.0
    else:
        kw["gil"] = draw(POLICY)
        kw["duration_s"] = draw(st.floats(0.005, 0.06))
        # The duration, one op (< 2 ms), the 10 ms poll of sleeps and the controller, thread
        # start-up and the log's export, with a wide margin for a loaded 2-core machine.
        bound = kw["duration_s"] + 3.0
    return gm.Scenario(threads=threads, **kw), bound


def check_valid(sc, bound):
    note(repr(sc))
    sc.resolved(quiet=True)  # a profile measured on first use is not the run's time
    tasks, fds = task_count_settled(), fd_set()
    placed = sc.validate()
    t = time.monotonic()
    try:
        run = gm.run(sc)
    except gm.EventBudgetError as e:  # only with on_overflow="error"; the partial run comes with it
        assert sc.on_overflow == "error", e
        run = e.run
        # The controller stops the run within 10 ms of the first drop, unless it ended first.
        assert run.meta["events_truncated"] and run.meta["events_dropped"] > 0
        assert run.meta["stopped_by"] in ("event_budget", "all_done", "thread", "duration")
        event("halted by the event budget")
    wall = time.monotonic() - t
    assert wall < bound, "took %.2f s, bound %.2f s" % (wall, bound)
    assert task_count_back_to(tasks) == tasks, "threads left behind"
    assert not fds_left_behind(fds), "file descriptors left behind: %s" % fds_left_behind(fds, 0)
    assert run.meta["on_overflow"] == sc.on_overflow
    assert run.threads.num_rows == len(sc.threads)
    if sc.pin_threads:
        assert run.threads.column("core").to_pylist() == placed
    else:
        used = list(sc.cores or CORES)  # unpinned: the one core, or -1 for several
        assert run.threads.column("core").to_pylist() == [used[0] if len(used) == 1 else -1] * len(placed)
    assert set(placed) <= set(sc.cores or CORES)
    assert not any(run.threads.column("error").to_pylist()), run.threads.column("error").to_pylist()
    assert not run.meta["aborted"]
    check_run(run, repr(sc), exclusive=not isinstance(sc.gil, gm.NoGIL))
    event("policy %s" % type(sc.gil).__name__)
    event("stopped by %s" % run.meta["stopped_by"])
    event("%d threads" % len(sc.threads))
    if run.meta["events_truncated"]:
        event("log truncated")
    if sc.signals:
        event("signals sent: %d of %d" % (sum(s["sent_ns"] is not None for s in run.meta["signals"]), len(sc.signals)))
    if run.io.num_rows:
        event("driver round trips")
    if sum(run.threads.column("bytes_sent").to_pylist()):
        event("bytes sent")
    return run


@settings(max_examples=int(300 * SCALE), **COMMON)
@given(scenarios())
def test_valid_scenarios_run_and_keep_the_invariants(case):
    sc, bound = case
    run = check_valid(sc, bound)
    assert run.meta["stopped_by"] in ("all_done", "thread", "duration", "event_budget")


@settings(max_examples=int(100 * SCALE), **COMMON)
@given(scenarios(finite=True))
def test_finite_scenarios_end_by_themselves(case):
    sc, bound = case
    run = check_valid(sc, bound)
    assert run.meta["stopped_by"] in ("all_done", "thread", "event_budget")
    if sc.stop_thread is None:
        assert not any(run.threads.column("stopped").to_pylist())


# ---------------------------------------------------------------- invalid input

def base(**kw):
    """A valid scenario to spoil: if a check let a bad value through, the run still ends
    within 50 ms (and the test fails on 'did not raise')."""
    d = dict(gil=gm.cpython("3.11"), threads=[gm.Thread("a", [gm.cpu(10)]), gm.Thread("b", [gm.cpu(10)])], duration_s=0.05)
    d.update(kw)
    return gm.Scenario(**d)


def run_it(make):
    """Build, check without running, then run: the core's own validation must refuse it too."""
    def go():
        sc = make()
        try:
            sc.validate()
        except (ValueError, TypeError):
            pass
        else:
            raise AssertionError("validate() accepted %r" % (sc,))
        gm.run(sc)
    return go


class Case:
    """An invalid input: ``make()`` must raise ``exc`` with ``field`` in its message."""

    def __init__(self, exc, field, make, what="", value="-"):
        self.exc, self.field, self.make, self.what, self.value = exc, field, make, what, value

    def __repr__(self):
        return "Case(%s, %r, %s, value=%s)" % (self.exc, self.field, self.what, show(self.value))


#: Values of the wrong type for an int field (None is added for required fields).
NOT_INT = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4), st.booleans(), st.lists(st.integers(), max_size=2),
                    st.just(b"1"), st.just(1 + 2j), st.just({"v": 1}), st.just(gm.cpu(1)))
NOT_FLOAT = st.one_of(st.text(max_size=4), st.booleans(), st.lists(st.floats(), max_size=2), st.just(b"1.0"), st.just(1j), st.just(object()))
NOT_STR = st.one_of(st.integers(), st.floats(), st.booleans(), st.binary(max_size=4), st.lists(st.text(max_size=2), max_size=2), st.just(gm.cpu(1)))
NOT_BOOL = st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.none(), st.lists(st.booleans(), max_size=1))
HUGE = st.one_of(st.integers(min_value=1 << 64), st.sampled_from([1 << 64, 1 << 200, 10**400, 10**5000]))
LONE_SURROGATE = st.builds(lambda a, s, b: a + s + b, st.text(max_size=3), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
                           st.text(max_size=3))


def sc_with(**kw):
    return lambda: base(**kw)


#: Int fields: (name in the message, a constructor taking the value, lo, hi or None, optional).
INT_FIELDS = [
    ("TickGIL.check_interval", lambda v: gm.TickGIL(check_interval=v), 1, 10**9, False),
    ("IntervalGIL.interval_us", lambda v: gm.IntervalGIL(interval_us=v), 1, 10**8, False),
    ("IntervalGIL.check_every", lambda v: gm.IntervalGIL(check_every=v), 1, 10**9, False),
    ("PriorityGIL.interval_us", lambda v: gm.PriorityGIL(interval_us=v), 1, 10**8, False),
    ("PriorityGIL.check_every", lambda v: gm.PriorityGIL(check_every=v), 1, 10**9, False),
    ("BfsGIL.slice_us", lambda v: gm.BfsGIL(slice_us=v), 1, 10**8, False),
    ("BfsGIL.deadline_factor", lambda v: gm.BfsGIL(deadline_factor=v), 1, 10**6, False),
    ("BfsGIL.check_every", lambda v: gm.BfsGIL(check_every=v), 1, 10**9, False),
    ("FifoGIL.check_every", lambda v: gm.FifoGIL(check_every=v), 1, 10**9, False),
    ("FifoGIL.min_hold_us", lambda v: gm.FifoGIL(min_hold_us=v), 0, 10**8, False),
    ("NoGIL.check_every", lambda v: gm.NoGIL(check_every=v), 1, 10**9, False),
    ("cpu.ticks", gm.cpu, 1, 1 << 50, False),
    ("sleep.us", gm.sleep, 1, 3_600_000_000, False),
    ("send.bytes", gm.send, 1, 64 << 20, False),
    ("recv.bytes", gm.recv, 1, 64 << 20, False),
    ("loop.times", lambda v: gm.loop(gm.cpu(1), times=v), 1, None, True),
    ("drain.core", gm.drain, 0, 4095, True),
    ("driver.pings", lambda v: gm.driver(v, 100), 1, 10**8, False),
    ("driver.gap_us", lambda v: gm.driver(1, v), 1, 3_600_000_000, False),
    ("driver.nbytes", lambda v: gm.driver(1, 100, nbytes=v), 1, 64 << 20, False),
    ("driver.reply_bytes", lambda v: gm.driver(1, 100, reply_bytes=v), 0, 64 << 20, False),
    ("driver.core", lambda v: gm.driver(1, 100, core=v), 0, 4095, True),
    ("Thread('a').core", lambda v: gm.Thread("a", [gm.cpu(1)], core=v), 0, 4095, True),
    ("Scenario.cores", lambda v: base(cores=[v]), 0, 4095, False),
    ("max_events", lambda v: gm.run(base(max_events=v)), 1000, None, False),
    ("Signal.at_us", gm.signal, 0, 86_400_000_000, False),
]


@st.composite
def bad_int(draw):
    field, make, lo, hi, optional = draw(st.sampled_from(INT_FIELDS))
    if draw(st.booleans()):
        wrong = NOT_INT if optional else st.one_of(NOT_INT, st.none())
        v = draw(wrong)
        return Case(TypeError, field, lambda: make(v), "wrong type", v)
    low = st.integers(max_value=lo - 1)
    high = HUGE if hi is None else st.one_of(st.integers(min_value=hi + 1), HUGE)
    if field == "max_events":  # the core's bound: half this machine's memory, 19 bytes an event
        high = st.one_of(high, st.integers(10**12, (1 << 64) - 1))
    v = draw(st.one_of(low, high))
    return Case(ValueError, field, lambda: make(v), "out of range", v)


# (field, low, high, low bound excluded); both may be None (tick_ns None: the profile's).
FLOAT_FIELDS = [("duration_s", 0.0, 86400.0, True), ("tick_ns", 1.0, 1e6, False)]


@st.composite
def bad_float(draw):
    field, lo, hi, lo_open = draw(st.sampled_from(FLOAT_FIELDS))
    if draw(st.booleans()):
        v = draw(NOT_FLOAT)
        return Case(TypeError, field, sc_with(**{field: v}), "wrong type", v)
    bad = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, -(10**400), 10**400]),
                    st.floats(max_value=lo, exclude_max=not lo_open, allow_nan=False),
                    st.floats(min_value=hi, exclude_min=True), st.integers(max_value=int(lo) - (0 if lo_open else 1)),
                    st.integers(min_value=int(hi) + 1))
    v = draw(bad)
    return Case(ValueError, field, sc_with(**{field: v}), "out of range", v)


@st.composite
def bad_text(draw):
    kind = draw(st.sampled_from(["name", "join", "stop", "scenario_name", "version", "lock", "signum_name", "bool",
                                 "overflow", "watchdog"]))
    if kind == "overflow":
        v = draw(st.one_of(NOT_STR, st.none(), st.text(max_size=10).filter(lambda s: s not in ("truncate", "error"))))
        return Case(TypeError if not isinstance(v, str) else ValueError, "Scenario.on_overflow", sc_with(on_overflow=v), "", v)
    if kind == "watchdog":
        v = draw(st.one_of(NOT_FLOAT, st.sampled_from([math.nan, math.inf, -math.inf, 0, 10**400]),
                           st.floats(max_value=0.01, exclude_max=True), st.floats(min_value=86400.0, exclude_min=True)))
        return Case(TypeError if isinstance(v, bool) or not isinstance(v, (int, float)) else ValueError, "Scenario.watchdog_s",
                    sc_with(watchdog_s=v), "", v)
    if kind == "name":
        v = draw(st.one_of(NOT_STR, st.just(""), st.text(min_size=65, max_size=80), LONE_SURROGATE))
        exc = TypeError if not isinstance(v, str) else ValueError
        return Case(exc, "Thread.name", lambda: gm.Thread(v, [gm.cpu(1)]), "bad name", v)
    if kind == "join":
        v = draw(NOT_STR)
        return Case(TypeError, "join.thread", lambda: gm.join(v), "not a string", v)
    if kind == "stop":
        v = draw(st.one_of(NOT_STR, LONE_SURROGATE))
        return Case(TypeError if not isinstance(v, str) else ValueError, "Scenario.stop_thread", sc_with(stop_thread=v), "", v)
    if kind == "scenario_name":
        v = draw(st.one_of(NOT_STR.filter(lambda x: x is not None), LONE_SURROGATE))
        return Case(TypeError if not isinstance(v, str) else ValueError, "Scenario.name", sc_with(name=v), "", v)
    if kind == "version":
        v = draw(st.one_of(NOT_STR, st.none(), st.text(max_size=8)))
        if isinstance(v, str):
            s = v.strip()
            if s == "2.6-osx" or ".".join(s.split(".")[:2]) in CPYTHON_VERSIONS:
                v = "x" + s
        return Case(TypeError if not isinstance(v, str) else ValueError, "cpython(version)", lambda: gm.cpython(v), "", v)
    if kind == "lock":
        v = draw(st.one_of(NOT_STR, st.none(), st.text(max_size=12).filter(lambda s: s not in ("sem", "mutex_cond"))))
        return Case((ValueError, TypeError), "TickGIL.lock", lambda: gm.TickGIL(lock=v), "", v)
    if kind == "signum_name":
        v = draw(st.one_of(st.text(max_size=8).filter(lambda s: s not in SIGNALS),
                           st.integers().filter(lambda s: s not in SIGNALS.values())))
        return Case(ValueError, "Signal.signum", lambda: gm.signal(0, v), "unknown", v)
    field, make = draw(st.sampled_from([("IntervalGIL.force_switching", lambda v: gm.IntervalGIL(force_switching=v)),
                                        ("IntervalGIL.dedupe_drop_request", lambda v: gm.IntervalGIL(dedupe_drop_request=v)),
                                        ("Scenario.log", lambda v: base(log=v))]))
    v = draw(NOT_BOOL)
    return Case(TypeError, field, lambda: make(v), "not a bool", v)


NOT_OP_NOR_THREAD = st.one_of(st.integers(), st.text(max_size=3), st.none(), st.just(gm.drain()), st.just(gm.cpython("3.11")),
                              st.just({"op": "cpu", "ticks": 1}), st.just(gm.signal(1)))
NOT_OP = st.one_of(NOT_OP_NOR_THREAD, st.just(gm.Thread("x", [gm.cpu(1)])))
#: A core other than the one the scenario keeps (cores=[CORES[0]]).
OTHER_CORE = st.integers(0, 4095).map(lambda c: c if c != CORES[0] else c + 1)
NOT_ITERABLE = st.one_of(st.integers(), st.floats(), st.just(object()), st.just(gm.cpu))


@st.composite
def bad_structure(draw):
    kind = draw(st.sampled_from(["program_op", "program_empty", "program_type", "loop_op", "loop_empty", "loop_type", "loop_deep",
                                 "peer", "handler", "handler_type", "gil", "threads_empty", "threads_item", "threads_type",
                                 "cores_empty", "cores_type", "signals_item", "signals_type"]))
    k = draw(st.integers(0, 2))
    good = [gm.cpu(1)] * k
    if kind == "program_op":
        v = draw(NOT_OP)
        return Case(TypeError, "Thread('a').program[%d]" % k, lambda: gm.Thread("a", good + [v]), "", v)
    if kind == "program_empty":
        v = draw(st.sampled_from([[], (), ""]))
        return Case(ValueError, "Thread('a').program", lambda: gm.Thread("a", v), "empty", v)
    if kind == "program_type":
        v = draw(NOT_ITERABLE)
        return Case(TypeError, "Thread('a').program", lambda: gm.Thread("a", v), "not iterable", v)
    if kind == "loop_op":
        v = draw(NOT_OP)
        return Case(TypeError, "loop.body[%d]" % k, lambda: gm.loop(*good, v), "", v)
    if kind == "loop_empty":
        v = draw(st.one_of(st.none(), st.integers(1, 5)))
        return Case(ValueError, "loop.body", lambda: gm.loop(times=v), "empty", v)
    if kind == "loop_type":
        v = draw(NOT_ITERABLE)
        return Case(TypeError, "loop.body", lambda: gm.Loop(v), "", v)
    if kind == "loop_deep":
        depth = draw(st.one_of(st.integers(17, 80), st.just(3000)))

        def deep():
            op = gm.cpu(1)
            for _ in range(depth):
                op = gm.loop(op, times=1)
            return base(threads=[gm.Thread("a", [op])])
        return Case(ValueError, "loop.body", deep, "nested %d deep" % depth)
    if kind == "peer":
        v = draw(st.one_of(st.integers(), st.text(max_size=3), st.just(gm.cpu(1)), st.just("drain"), st.just(gm.drain)))
        return Case(TypeError, "Thread('a').peer", lambda: gm.Thread("a", [gm.cpu(1)], peer=v), "", v)
    if kind == "handler":
        v = draw(st.one_of(NOT_OP, st.just(gm.sleep(1)), st.just(gm.loop(gm.cpu(1)))))
        return Case(TypeError, "Signal.handler[%d]" % k, lambda: gm.signal(0, "SIGINT", handler=good + [v]), "", v)
    if kind == "handler_type":
        v = draw(NOT_ITERABLE)
        return Case(TypeError, "Signal.handler", lambda: gm.signal(0, "SIGINT", handler=v), "", v)
    if kind == "gil":
        v = draw(st.one_of(st.text(max_size=5), st.none(), st.integers(), st.just(gm.IntervalGIL), st.just({"policy": "tick"}),
                           st.just(gm.cpu(1))))
        return Case(TypeError, "Scenario.gil", sc_with(gil=v), "", v)
    if kind == "threads_empty":
        return Case(ValueError, "Scenario.threads", sc_with(threads=[]), "empty")
    if kind == "threads_item":
        v = draw(NOT_OP_NOR_THREAD)
        return Case(TypeError, "Scenario.threads[%d]" % k, sc_with(threads=[gm.Thread("t%d" % i, [gm.cpu(1)]) for i in range(k)] + [v]), "", v)
    if kind == "threads_type":
        v = draw(NOT_ITERABLE)
        return Case(TypeError, "Scenario.threads", sc_with(threads=v), "not iterable", v)
    if kind == "cores_empty":
        return Case(ValueError, "Scenario.cores", sc_with(cores=[]))
    if kind == "cores_type":
        v = draw(st.one_of(st.floats(), st.just(object())))
        return Case(TypeError, "Scenario.cores", sc_with(cores=v), "not iterable", v)
    if kind == "signals_item":
        v = draw(st.one_of(st.integers(), st.text(max_size=3), st.none(), st.just(gm.cpu(1)), st.just(gm.drain()), st.just(SIGNALS)))
        return Case(TypeError, "Scenario.signals[%d]" % k, sc_with(signals=[gm.signal(1)] * k + [v]), "", v)
    v = draw(NOT_ITERABLE)
    return Case(TypeError, "Scenario.signals", sc_with(signals=v), "not iterable", v)


@st.composite
def bad_in_the_core(draw):
    """Scenarios whose every part is well-formed but which cannot run: the core refuses them
    (through validate() and run()), naming the field."""
    kind = draw(st.sampled_from(["cycle", "self_join", "unknown_join", "dup_name", "nul_name", "core_outside", "dup_core",
                                 "thread_core", "peer_core", "send_no_peer", "recv_no_driver", "endless", "endless_stop",
                                 "unknown_stop", "too_many_threads"]))
    case = _core_case(draw, kind)
    case.what = case.what or kind
    return case


def _core_case(draw, kind):
    n = draw(st.integers(2, 4))
    names = ["t%d" % i for i in range(n)]
    progs = [[gm.cpu(draw(st.integers(1, 100)))] for _ in range(n)]
    in_loop = draw(st.booleans())

    def put(i, op):  # append an op, bare or inside a loop; returns the field of the op
        j = len(progs[i])
        progs[i].append(gm.loop(gm.cpu(1), op, times=2) if in_loop else op)
        return "threads[%d].program[%d]" % (i, j) + (".body[1]" if in_loop else "")

    gil = draw(POLICY)

    def build(**kw):
        d = dict(duration_s=0.05)
        d.update(kw)
        peers_ = d.pop("peers", [None] * n)
        cores_ = d.pop("thread_cores", [None] * n)
        return lambda: gm.Scenario(gil, [gm.Thread(names[i], progs[i], core=cores_[i], peer=peers_[i]) for i in range(n)], **d)

    if kind == "cycle":
        members = draw(st.permutations(range(n)).map(lambda p: p[: draw(st.integers(2, n))]))
        for a, b in zip(members, members[1:] + members[:1]):
            put(a, gm.join(names[b]))
        return Case(ValueError, "cycle", run_it(build()))
    if kind == "self_join":
        i = draw(st.integers(0, n - 1))
        return Case(ValueError, put(i, gm.join(names[i])) + ".thread", run_it(build()))
    if kind == "unknown_join":
        i = draw(st.integers(0, n - 1))
        who = draw(TEXT.filter(lambda s: s not in names))
        return Case(ValueError, put(i, gm.join(who)) + ".thread", run_it(build()))
    if kind == "dup_name":
        i = draw(st.integers(1, n - 1))
        names[i] = names[draw(st.integers(0, i - 1))]
        return Case(ValueError, "threads[%d].name" % i, run_it(build()))
    if kind == "nul_name":
        i = draw(st.integers(0, n - 1))
        names[i] = draw(TEXT) + "\x00" + draw(TEXT)
        return Case(ValueError, "threads[%d].name" % i, run_it(build()), "NUL in a name")
    if kind == "core_outside":
        c = draw(st.integers(max(CORES) + 1, 4095))
        return Case(ValueError, "cores", run_it(build(cores=[CORES[0], c] if draw(st.booleans()) else [c])))
    if kind == "dup_core":
        return Case(ValueError, "cores", run_it(build(cores=[CORES[0], CORES[0]])))
    if kind == "thread_core":
        i = draw(st.integers(0, n - 1))
        tc = [None] * n
        tc[i] = draw(OTHER_CORE)
        return Case(ValueError, "threads[%d].core" % i, run_it(build(cores=[CORES[0]], thread_cores=tc)))
    if kind == "peer_core":
        i = draw(st.integers(0, n - 1))
        ps = [None] * n
        c = draw(OTHER_CORE)
        ps[i] = draw(st.sampled_from([gm.drain(c), gm.driver(1, 100, core=c)]))
        return Case(ValueError, "threads[%d].peer.core" % i, run_it(build(cores=[CORES[0]], peers=ps)))
    if kind == "send_no_peer":
        i = draw(st.integers(0, n - 1))
        return Case(ValueError, put(i, gm.send(8)), run_it(build()))
    if kind == "recv_no_driver":
        i = draw(st.integers(0, n - 1))
        ps = [None] * n
        ps[i] = draw(st.sampled_from([None, gm.drain()]))
        return Case(ValueError, put(i, gm.recv(8)), run_it(build(peers=ps)))
    if kind == "endless":
        i = draw(st.integers(0, n - 1))
        progs[i].append(gm.loop(gm.cpu(1)))
        return Case(ValueError, "stop", run_it(build(duration_s=None)))
    if kind == "endless_stop":
        i = draw(st.integers(0, n - 1))
        progs[i].append(gm.loop(gm.cpu(1)))
        return Case(ValueError, "stop", run_it(build(duration_s=None, stop_thread=names[i])))
    if kind == "unknown_stop":
        who = draw(TEXT.filter(lambda s: s not in names))
        return Case(ValueError, "stop.thread", run_it(build(stop_thread=who)))
    many = [gm.Thread("t%d" % i, [gm.cpu(1)]) for i in range(1025)]
    return Case(ValueError, "threads", run_it(lambda: gm.Scenario(gm.cpython("3.11"), many, duration_s=0.05)))


INVALID = st.one_of(bad_int(), bad_float(), bad_text(), bad_structure(), bad_in_the_core())


@settings(max_examples=int(2000 * SCALE), **COMMON)
@given(INVALID)
def test_invalid_input_raises_naming_the_field(case):
    exc, field, make, what = case.exc, case.field, case.make, case.what
    event(re.sub(r"\[\d+\]", "[k]", field) + (" (%s)" % re.sub(r"\d+", "N", what) if what else ""))
    tasks, fds = task_count(), fd_set()
    t = time.monotonic()
    with pytest.raises(exc) as ei:  # a PanicException (a BaseException) fails the test
        make()
    msg = str(ei.value)
    assert field in msg, "%r does not name %r (%s)" % (msg, field, what)
    assert time.monotonic() - t < 2.0, "took %.2f s to refuse" % (time.monotonic() - t)
    assert task_count_back_to(tasks) == tasks, "threads left behind"
    assert not fds_left_behind(fds), "file descriptors left behind: %s" % fds_left_behind(fds, 0)

