"""Threads that wait on each other: ``threading.Lock`` (acquire, release) and ``queue.Queue``
(put, get) as CPython builds them (rust/threading.rs). Their checks before any thread starts,
their events under every policy, the 2.x and 3.2+ acquire, a signal during a lock wait, and a
deadlock named by the watchdog."""

import numpy as np
import pytest

import gilmodel as gm
from gilmodel import _core, analysis, plot
from conftest import CORES, POLICIES, needs_2_cores
from log_checks import check_run, columns


def one(threads, **kw):
    kw.setdefault("tick_ns", 50.0)
    kw.setdefault("cores", CORES)
    return gm.Scenario(gm.cpython("3.11"), threads, **kw)


def test_ops_are_exported_and_serialised():
    assert gm.acquire("l").to_spec() == {"op": "acquire", "lock": "l"}
    assert gm.release("l").to_spec() == {"op": "release", "lock": "l"}
    assert gm.put("q").to_spec() == {"op": "put", "queue": "q"}
    assert gm.get("q").to_spec() == {"op": "get", "queue": "q"}
    assert {"lock", "get", "put"} <= set(_core.OP_NAMES) and {"put", "got"} <= set(_core.EVENT_NAMES)
    assert {"io:lock", "io:get", "io:put"} <= set(plot.LABELS)
    sc = one([gm.Thread("a", [gm.loop(gm.put("q"), gm.get("q"), gm.acquire("l"), gm.release("l"), times=2)])],
             locks="l", queues=["q", gm.Queue("r", maxsize=3)])
    spec = sc.to_spec()
    assert spec["locks"] == ["l"] and spec["queues"] == [{"name": "q", "maxsize": 0}, {"name": "r", "maxsize": 3}]
    assert sc.replace(name="x").queues == sc.queues


@pytest.mark.parametrize("make, bad, exc, field", [
    (lambda: gm.acquire(3), None, TypeError, r"acquire\.lock"),
    (lambda: gm.get(None), None, TypeError, r"get\.queue"),
    (lambda: gm.Queue("q", -1), None, ValueError, r"Queue\.maxsize"),
    (lambda: gm.Queue("q", 1.5), None, TypeError, r"Queue\.maxsize"),
    (lambda: one([gm.Thread("a", [gm.cpu(1)])], queues=[3]), None, TypeError, r"Scenario\.queues\[0\]"),
    (lambda: one([gm.Thread("a", [gm.cpu(1)])], locks=[3]), None, TypeError, r"Scenario\.locks\[0\]"),
])
def test_constructors_refuse_bad_arguments_naming_the_field(make, bad, exc, field):
    with pytest.raises(exc, match=field):
        make()


@pytest.mark.parametrize("threads, kw, field, words", [
    ([[gm.acquire("x"), gm.release("x")]], dict(locks=["l"]), r"threads\[0\]\.program\[0\]\.lock", "is not a lock"),
    ([[gm.get("x")]], dict(), r"threads\[0\]\.program\[0\]\.queue", "is not a queue"),
    ([[gm.cpu(1)]], dict(locks=["a"], queues=["a"]), r"queues\[0\]\.name", "must be unique"),
    ([[gm.release("l")]], dict(locks=["l"]), r"threads\[0\]\.program\[0\]", "without acquiring it"),
    ([[gm.acquire("l"), gm.acquire("l")]], dict(locks=["l"]), r"threads\[0\]\.program\[1\]", "not reentrant"),
    ([[gm.acquire("l")]], dict(locks=["l"]), r"threads\[0\]\.program", "ends its program holding"),
    ([[gm.loop(gm.acquire("l"), times=2)]], dict(locks=["l"]), r"program\[0\]\.body", "does not release"),
    ([[gm.acquire("a"), gm.acquire("b"), gm.release("b"), gm.release("a")],
      [gm.acquire("b"), gm.acquire("a"), gm.release("a"), gm.release("b")]],
     dict(locks=["a", "b"]), "locks", "opposite orders"),
    ([[gm.get("q")]], dict(queues=["q"]), r"queues\[0\]", "no thread puts"),
    ([[gm.put("q")], [gm.get("q"), gm.get("q")]], dict(queues=["q"]), r"queues\[0\]", "got from 2 times but put to only 1"),
    ([[gm.loop(gm.put("q"), times=5)]], dict(queues=[gm.Queue("q", 2)]), r"queues\[0\]", "holds at most 2 items"),
])
def test_the_core_refuses_what_could_never_work(threads, kw, field, words):
    sc = one([gm.Thread("t%d" % i, p) for i, p in enumerate(threads)], **kw)
    with pytest.raises(ValueError, match=field) as e:
        sc.validate()
    assert words in str(e.value)


SETUPS = dict(POLICIES, **{"nogil": gm.NoGIL(), "2.7": gm.cpython("2.7"), "3.11": gm.cpython("3.11")})


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_a_bounded_pipeline_keeps_its_invariants_under_every_policy(name):
    gil = SETUPS[name]
    sc = gm.Scenario(gil, [
        gm.Thread("p1", [gm.loop(gm.cpu(50), gm.put("q"), times=300)]),
        gm.Thread("p2", [gm.loop(gm.cpu(50), gm.acquire("l"), gm.cpu(20), gm.release("l"), gm.put("q"), times=300)]),
        gm.Thread("c1", [gm.loop(gm.get("q"), gm.cpu(70), gm.acquire("l"), gm.release("l"), times=250)]),
        gm.Thread("c2", [gm.loop(gm.get("q"), gm.cpu(70), times=350)]),
    ], cores=CORES, tick_ns=50.0, locks=["l"], queues=[gm.Queue("q", 4)])
    run = gm.run(sc)
    check_run(run, name, exclusive=not isinstance(gil, gm.NoGIL))
    t, th, ev, arg, names = columns(run)
    # The depth after each put/got, from the log: never below 0, never above maxsize.
    step = np.where(ev == names.index("put"), 1, 0) - np.where(ev == names.index("got"), 1, 0)
    depth = np.cumsum(step[step != 0])
    assert depth.min() >= 0 and depth.max() <= 4 and depth[-1] == 0, name
    q, lk = run.meta["queues"][0], run.meta["locks"][0]
    assert (q["puts"], q["gets"], q["left"]) == (600, 600, 0) and q["most_items"] <= 4, name
    assert lk["acquired"] == 550 and lk["overlaps"] == 0 and q["mutex"]["overlaps"] == 0, name
    it = analysis.items(run.events).to_pandas()
    assert len(it) == 600 and (it.latency_ns >= 0).all() and set(it.consumer) == {2, 3}, name
    s = run.summary()
    assert s["items"] == 600 and s["item_latency_p50_ms"] > 0, name
    # Every condition wait is an I/O span of the waiting thread, outside any hold.
    io = analysis.io_response(run.events).to_pandas()
    assert (io.op == "get").sum() <= q["waits_for_item"] and (io.op == "put").sum() <= q["waits_for_room"], name


@pytest.mark.parametrize("version", ["2.7", "3.11"])
def test_a_free_lock_costs_2_7_a_gil_release_and_3_11_nothing(version):
    # One thread alone takes a free lock 100 times: 2.7 releases the GIL around every acquire
    # (Modules/threadmodule.c), 3.2+ takes it with a sem_trywait, the GIL held.
    run = gm.run(gm.Scenario(gm.cpython(version), [gm.Thread("a", [gm.loop(gm.acquire("l"), gm.cpu(5), gm.release("l"),
                                                                            times=100)])],
                             cores=CORES[:1], tick_ns=50.0, locks=["l"]))
    io = analysis.io_response(run.events).to_pandas()
    waits = int((io.op == "lock").sum())
    assert waits == (100 if version == "2.7" else 0), (version, waits)
    assert run.meta["locks"][0]["acquired"] == 100 and run.meta["locks"][0]["contended"] == 0


@pytest.mark.parametrize("version, interrupted", [("3.11", True), ("2.7", False)])
def test_a_signal_interrupts_a_lock_wait_in_3_11_not_in_2_7(version, interrupted):
    # The main thread waits for a lock that "h" holds for 300 ms; SIGINT comes at 50 ms. 3.2+
    # returns from sem_wait (PY_LOCK_INTR), runs the handler, waits again; 2.7 retries on EINTR
    # and runs it only once it has the lock.
    sc = gm.Scenario(gm.cpython(version), [
        gm.Thread("main", [gm.sleep(10_000), gm.acquire("l"), gm.release("l")]),
        gm.Thread("h", [gm.acquire("l"), gm.sleep(300_000), gm.release("l")]),
    ], cores=CORES, tick_ns=50.0, locks=["l"], signals=[gm.signal(50_000, "SIGINT", [gm.cpu(5)])])
    run = gm.run(sc)
    ev = run.events.to_pandas()
    handler_ms = ev[ev.event == "handler"].t_ns.iloc[0] / 1e6
    released_ms = ev[(ev.thread == 1) & (ev.event == "io_end")].t_ns.iloc[-1] / 1e6  # h's sleep ended
    assert 50 <= handler_ms and (handler_ms < released_ms) == interrupted, (version, handler_ms, released_ms)
    assert run.meta["locks"][0]["acquired"] == 2


def test_the_watchdog_names_the_queues_of_a_deadlock():
    # Each waits for the other's item first: the counts are fine, the order is not.
    sc = one([gm.Thread("a", [gm.get("q1"), gm.put("q2")]), gm.Thread("b", [gm.get("q2"), gm.put("q1")])],
             queues=["q1", "q2"], watchdog_s=0.2)
    with pytest.raises(gm.WatchdogError) as e:
        gm.run(sc)
    msg = str(e.value)
    assert 'waiting in get("q1")' in msg and 'waiting in get("q2")' in msg, msg
    assert e.value.run.meta["queues"][0]["waits_for_item"] == 1


@needs_2_cores
@pytest.mark.timing
@pytest.mark.parametrize("version", ["2.7", "3.11"])
def test_a_pool_of_python_tasks_does_not_scale_and_one_of_c_tasks_does(version):
    # The same pool, 1 then 2 workers on 2 cores: Python-only tasks take turns at the GIL, tasks
    # that are mostly C work with the GIL released run side by side. Measured on the 2-core VM,
    # 5 runs each: Python 0.71-0.85x (2.7), 0.86-1.13x (3.11); C 1.36-2.33x (2.7), 1.95-2.13x
    # (3.11); again after 2.7's Condition releases were modelled: Python 0.74-0.81x (2.7),
    # 0.93-1.15x (3.11); C 1.62-1.98x, 1.80-2.03x. Asked, of the median of 3: under 1.3x and
    # over 1.4x.
    import statistics

    def ratio(**kw):
        def rate(workers):
            r = gm.experiments.get("thread_pool").run(gm.cpython(version), CORES[:2], workers=workers, tasks=100, **kw)
            return r.metrics["tasks_per_s"]
        return statistics.median(rate(2) / rate(1) for _ in range(3))

    py, c = ratio(task_ticks=20_000), ratio(task_ticks=200, native_ticks=20_000)
    assert py < 1.3 and c > 1.4, (py, c)


@pytest.mark.parametrize("version, per_op", [("2.7", 2), ("3.11", 0)])
def test_2_7_queue_ops_release_the_gil_for_their_locks_and_3_11_does_not(version, per_op):
    # One thread, 10 puts then 10 gets, never waiting: under 2.7 each takes the mutex (a GIL
    # release, the lock free or not) and notifies, whose _is_owned test is an acquire(0) (one
    # more); under 3.11 both are tries with the GIL held.
    run = gm.run(gm.Scenario(gm.cpython(version), [gm.Thread("a", [gm.loop(gm.put("q"), times=10),
                                                                     gm.loop(gm.get("q"), times=10)])],
                             cores=CORES[:1], tick_ns=50.0, queues=["q"]))
    io = analysis.io_response(run.events).to_pandas()
    assert int((io.op == "lock").sum()) == per_op * 20
    assert run.meta["queues"][0]["gets"] == 10
