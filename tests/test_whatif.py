"""Replaying a run under any GIL (python/gilmodel/whatif.py): what a thread's log becomes, the
checks on what cannot be replayed, and the whole path on a real program (observed with uprobes,
where this machine can)."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

import gilmodel as gm
from gilmodel.observe import can_observe
from gilmodel.run import Run, _events_table
from gilmodel.eventlog import CODE, decode

WHY = can_observe()
TICK_NS = 50.0


def model_run():
    """A program of the kind a replay must capture: a CPU thread, a thread that sleeps and
    works, C work without the GIL, and a main thread that joins both (3.11's GIL, explicit
    ticks, on the first two allowed cores)."""
    cores = sorted(os.sched_getaffinity(0))[:2]
    sc = gm.Scenario(gm.cpython("3.11"), [
        gm.Thread("main", [gm.cpu(2000), gm.join("worker"), gm.join("sleeper"), gm.cpu(1000)]),
        gm.Thread("worker", [gm.cpu(1_000_000), gm.native(200_000), gm.cpu(1_000_000)]),
        gm.Thread("sleeper", [gm.loop(gm.sleep(4000), gm.cpu(400), times=8)]),
    ], cores=cores, pin_threads=False, tick_ns=TICK_NS)
    return gm.run(sc)


def stretches(r, thread):
    """Each blocking call's GIL-released stretch in thread ``thread``: its release before the
    call to its request after (ns), what a replay makes of a voluntary release."""
    lg = decode(r.events)
    mine = lg.thread == thread
    out = []
    for b, e in zip(lg.t[mine & (lg.ev == CODE["io_begin"])], lg.t[mine & (lg.ev == CODE["io_end"])]):
        released = lg.t[mine & (lg.ev == CODE["release"]) & (lg.t <= b)].max()
        out.append(int(lg.t[mine & (lg.ev == CODE["request"]) & (lg.t >= e)].min() - released))
    return np.array(out)


def ticks_of(program, kind):
    return sum(op.ticks for op in program if isinstance(op, kind))


def test_a_model_runs_threads_become_programs_of_what_they_did():
    r = model_run()
    rp = gm.scenario_from(r, gil=gm.cpython("3.11"), quiet=True)
    progs = {t.name: t.program for t in rp.scenario.threads}
    assert set(progs) == {"main", "worker", "sleeper"}
    tick = rp.profile.model_tick_ns
    holds = gm.analysis.holds(r.events).to_pandas().groupby("thread").dur_ns.sum()
    io = gm.analysis.io_response(r.events).to_pandas()
    # The worker's work under the GIL, in the profile's ticks, is its hold time (to a tick a
    # piece); its C work is one native op of its observed length with the release before it and
    # the request after (the GIL-released stretch: µs of the model's own). Held calls count as work
    # under the GIL: a hold that outlives a drop request by 500 µs becomes one, which the model
    # makes when the host deschedules the holder (a CI run with 0.6 cores stolen had two).
    w = progs["worker"]
    assert abs((ticks_of(w, gm.Cpu) + ticks_of(w, gm.Held)) * tick - holds[1]) <= tick * (len(w) + 1)
    nat = io[(io.thread == 1) & (io.op == "native")].call_ns.sum()
    assert len([o for o in w if isinstance(o, gm.Native)]) == 1
    released = stretches(r, 1)
    assert len(released) == 1 and released[0] >= nat
    assert abs(ticks_of(w, gm.Native) * tick - released[0]) <= tick
    # The sleeper's sleeps are sleeps of their logged length, release to request: 4 ms and the
    # timer's slack. A sleep released while a drop request was pending waited for the forced
    # switch before its io_begin (its deadline is set before, as 3.11's time.sleep sets it): its
    # length is the call's alone, down to a few µs, and those (under short_io_us) are
    # replayed as a native spin.
    sl = [o.us for o in progs["sleeper"] if isinstance(o, gm.Sleep)]
    calls = io[io.thread == 2].call_ns.to_numpy()
    spans = stretches(r, 2)
    assert calls.size == 8 and (spans >= calls).all()
    rest = list(zip(calls / 1e3, spans / 1e3))
    for us in sl:  # each sleep, in order, is one call's stretch or (a forced release) the call
        while rest and min(abs(us - rest[0][0]), abs(us - rest[0][1])) > 1:
            rest.pop(0)
        assert rest, (sl, calls, spans)
        rest.pop(0)
    assert len(sl) >= 6 and 4000 <= np.median(sl) < 5000, sl
    # The main thread's waits are joins of the threads it waited for, in order.
    joins = [o.thread for o in progs["main"] if isinstance(o, gm.Join)]
    assert joins == ["worker", "sleeper"] or joins == ["worker"], progs["main"]
    # Threads start when they first asked for the GIL (from the program's first request), and
    # the replay runs where the run ran. Exact, not a time bound: a CI run on a host stealing
    # half a core saw a thread's first request more than 5 ms after the first.
    req = gm.analysis.waits(r.events).to_pandas().groupby("thread").request_ns.min()
    first = {r.threads.column("name")[int(k)].as_py(): v for k, v in req.items()}
    assert min(first.values()) == rp.origin_ns
    assert {t.name: t.start_us for t in rp.scenario.threads} == {
        n: round((v - rp.origin_ns) / 1e3) for n, v in first.items()}
    assert not rp.scenario.pin_threads and set(rp.scenario.cores) <= set(os.sched_getaffinity(0))
    t = rp.threads.to_pandas().set_index("name")
    assert t.loc["sleeper", "sleep_ops"] == len(sl) and t.loc["main", "join_ops"] == len(joins)
    assert rp.notes == ()


@pytest.mark.timing  # the replay's elapsed time against the run's, measured in the same test
def test_a_model_run_replayed_under_its_own_gil_reproduces_it_and_a_join_follows_the_joined_thread():
    r = model_run()
    # A model run needs its GIL named (its log does not say which interpreter it stands for).
    with pytest.raises(gm.WhatIfError, match="gil="):
        gm.scenario_from(r)
    rp = gm.scenario_from(r, gil=gm.cpython("3.11"), quiet=True)
    mine = gm.run(rp.scenario)
    el = lambda run: run.summary()["elapsed_s"]  # noqa: E731
    assert 0.75 < el(mine) / el(r) < 1.33, (el(mine), el(r))
    # Under FIFO the worker hands the GIL over at every sleeper's wake-up and the main thread's
    # join ends when the worker does: the main thread's end follows the worker's.
    fifo = gm.run(rp.scenario.replace(gil=gm.FifoGIL(), tick_ns=rp.scenario.tick_ns, profile=rp.profile))
    th = fifo.threads.to_pandas().set_index("name")
    assert th.loc["main", "exit_ns"] >= th.loc["worker", "exit_ns"]


def synthetic(n_threads, dropped=0, truncated=False):
    """An observed-looking run: each thread requests, takes and releases the GIL once."""
    t, thread, ev = [], [], []
    for i in range(n_threads):
        for k, e in enumerate(("request", "acquire", "release")):
            t.append(1000 * (3 * i + k))
            thread.append(i)
            ev.append(CODE[e])
    n = len(t)
    events = _events_table({"t_ns": np.array(t, np.int64), "thread": np.array(thread, np.uint16),
                            "cpu": np.zeros(n, np.int16), "event": np.array(ev, np.int8), "arg": np.zeros(n, np.int64)})
    threads = pa.table({"thread": list(range(n_threads)), "name": ["t%d" % i for i in range(n_threads)]})
    meta = {"gil": {"policy": "real", "interpreter": "3.11.7", "flavour": "Interval"}, "events_dropped": dropped,
            "events_truncated": truncated, "stopped_by": "target_exited", "observed": {"target": {"exit_code": 0}},
            "scenario": "observed: synthetic", "elapsed_ns": t[-1]}
    return Run(events, threads, pa.table({}), meta)


def test_what_cannot_be_replayed_is_refused_with_the_reason():
    with pytest.raises(gm.WhatIfError, match="lost.*ring_pages"):
        gm.scenario_from(synthetic(2, dropped=7), quiet=True)
    with pytest.raises(gm.WhatIfError, match="event budget"):
        gm.scenario_from(synthetic(2, truncated=True), quiet=True)
    rp = gm.scenario_from(synthetic(2, dropped=7), partial=True, quiet=True)
    assert any("partial" in n and "7 records" in n for n in rp.notes)
    with pytest.raises(gm.WhatIfError, match="at most 1024"):
        gm.scenario_from(synthetic(1025), quiet=True)
    empty = synthetic(1)
    empty.events = empty.events.slice(0, 1)  # a request, never an acquisition
    with pytest.raises(gm.WhatIfError, match="never took the GIL"):
        gm.scenario_from(empty, quiet=True)
    one = gm.scenario_from(synthetic(1), quiet=True)
    assert any("one thread" in n for n in one.notes)
    with pytest.raises(gm.WhatIfError, match="one of them"):
        gm.whatif()
    with pytest.raises(gm.WhatIfError, match="repeats"):
        gm.whatif(run=synthetic(2), repeats=0)


def observed_like(waits_ms, holds_ms, version="3.11.7"):
    """An observed-looking run whose threads take turns: thread 0 asks for the GIL at 0 and gets
    it ``waits_ms[0]`` later; each next thread asks ``waits_ms[i]`` before the one ahead
    releases it and gets it then; each holds it ``holds_ms[i]``."""
    run = synthetic(len(waits_ms))
    t, free = [], 0.0
    for i, (w, h) in enumerate(zip(waits_ms, holds_ms)):
        asked = free - w if i else 0.0
        got = free if i else w
        t += [asked, got, got + h]
        free = got + h
    order = np.argsort(t, kind="stable")
    ev = run.events.take(pa.array(order))
    cols = {c: ev.column(c) for c in ev.column_names}
    cols["t_ns"] = pa.array((np.sort(t) * 1e6).astype(np.int64))
    run.events = pa.table(cols)
    run.meta = dict(run.meta, elapsed_ns=int(free * 1e6), gil=dict(run.meta["gil"], interpreter=version))
    return run


def test_more_observations_give_the_programs_own_spread_beside_the_check():
    # t0 takes the GIL at once (a wait too short to judge); t1 asks 4 ms before t0 is done.
    first = observed_like([0.1, 4], [10, 10])
    again = observed_like([0.1, 8], [10, 10])    # t1 asked twice as early
    short = observed_like([0.1, 2], [10, 11])    # half as long, and t1 held 10 % longer
    kw = dict(gils=[], repeats=1, progress=False, quiet=True)
    res = gm.whatif(run=[first, again, short], **kw)
    rp = res.reproduces
    assert rp["observations"] == 3 and len(res.also_observed) == 2
    # Each figure's spread is the other observation farthest from the first (0.5 as far as 2:
    # the first found is kept), exactly as the logs give it.
    assert rp["spread"] == pytest.approx({"elapsed": 21.1 / 20.1, "hold:t0": 1.0, "hold:t1": 1.1, "wait:t1": 2.0})
    assert set(rp["spread"]) == set(rp["ratios"])
    # A second observation the same as the first: no spread, so within it exactly when within
    # the tolerance.
    same = gm.whatif(run=[first, observed_like([0.1, 4], [10, 10])], **kw).reproduces
    assert same["spread"] == pytest.approx({k: 1.0 for k in same["ratios"]})
    assert same["within_spread"] == same["ok"]
    assert isinstance(rp["within_spread"], bool)
    text = res.format()
    assert "the program's own spread, the other 2 observations / the first" in text
    # Each thread's progress per GIL, the observation's figures first, the busiest thread first
    # (t1 finished at 20.1 ms and waited 4 ms, real).
    block = text.split("each thread's finish, s after the program's first request for the GIL:\n")[1].splitlines()
    assert block[0].split() == ["thread", "real", "own", "(5", "ms)"]
    assert block[1].split()[:2] == ["t1", "0.020"] and block[2].split()[:2] == ["t0", "0.010"], block
    assert text.split("each thread's wait for the GIL, s:\n")[1].splitlines()[1].split()[:2] == ["t1", "0.004"]
    # One observation: no spread, and the check says so.
    one = gm.whatif(run=first, **kw).reproduces
    assert one["observations"] == 1 and one["spread"] == {} and one["within_spread"] is None
    with pytest.raises(gm.WhatIfError, match="observation 2 ran CPython 3.12.1"):
        gm.whatif(run=[first, observed_like([0.1, 4], [10, 10], "3.12.1")], **kw)
    with pytest.raises(gm.WhatIfError, match="partial.*lost"):
        gm.whatif(run=[first, synthetic(2, dropped=3)], **kw)
    with pytest.raises(gm.WhatIfError, match="empty list"):
        gm.whatif(run=[], **kw)
    with pytest.raises(gm.WhatIfError, match="observations is for a launched command"):
        gm.whatif(run=first, observations=2, **kw)
    with pytest.raises(gm.WhatIfError, match="observations must be an integer"):
        gm.whatif(["python3", "-c", "pass"], observations=0, **kw)


def test_a_figure_the_replay_misses_is_within_the_spread_when_a_real_run_misses_it_as_far():
    from gilmodel.whatif import _reproduction

    def figs(elapsed, a_hold, a_wait):
        # Thread b has too little to be judged (under 2 % of the hold and wait).
        return {"elapsed_s": elapsed}, {"a": {"hold_s": a_hold, "wait_s": a_wait},
                                        "b": {"hold_s": 0.001, "wait_s": 0.001}}

    real, mine = figs(1.0, 1.0, 0.5), figs(1.05, 1.1, 0.25)  # the replay waits half as long
    twice = _reproduction(real, mine, [figs(1.0, 1.0, 1.0)])   # another real run twice as long
    assert twice["ratios"] == pytest.approx({"elapsed": 1.05, "hold:a": 1.1, "wait:a": 0.5})
    assert twice["ok"] is False and twice["within_spread"] is True
    assert twice["spread"] == pytest.approx({"elapsed": 1.0, "hold:a": 1.0, "wait:a": 2.0})
    # A real run 1.5x as long is nearer than the replay's 0.5: not within.
    near = _reproduction(real, mine, [figs(1.0, 1.0, 0.75), figs(1.0, 1.0, 0.6)])
    assert near["spread"]["wait:a"] == pytest.approx(1.5) and near["within_spread"] is False
    # Within the tolerance needs no spread; a hold off by more than both is not within.
    assert _reproduction(real, figs(1.0, 1.3, 0.5), [figs(1.0, 1.1, 0.5)])["within_spread"] is False
    assert _reproduction(real, figs(1.0, 1.1, 0.45), [figs(1.0, 1.0, 0.5)])["within_spread"] is True
    # Under 2.x only holds are judged, by the tolerance and by the spread.
    tick = _reproduction(real, mine, [figs(1.0, 1.0, 0.5)], holds_only=True)
    assert tick["ok"] is True and tick["within_spread"] is True and set(tick["spread"]) == {"hold:a"}


def test_the_cli_says_what_is_missing_without_a_traceback():
    p = subprocess.run([sys.executable, "-m", "gilmodel.cli", "whatif"], capture_output=True, text=True)
    assert p.returncode != 0 and "--from" in p.stderr and "Traceback" not in p.stderr


PROGRAM = textwrap.dedent("""
    import threading, time
    def cpu(n):
        while n:
            n -= 1
    def sleeper():
        for _ in range(10):
            time.sleep(0.005)
    ts = [threading.Thread(target=cpu, args=(%d,)), threading.Thread(target=sleeper)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
""")


def _py311():
    p = os.path.expanduser("~/.pyenv/versions/3.11.7/bin/python3.11")
    return p if os.path.exists(p) else None


@pytest.mark.skipif(WHY is not None, reason="observing needs uprobes and root: %s" % WHY)
@pytest.mark.skipif(_py311() is None, reason="CPython 3.11 with symbols is not installed under ~/.pyenv/versions")
def test_a_real_program_observed_and_replayed_under_other_gils(tmp_path):
    prog = tmp_path / "app.py"
    prog.write_text(PROGRAM % 2_000_000)
    res = gm.whatif([_py311(), str(prog)], repeats=1, observations=2, progress=False, quiet=True,
                    gils=[("priority", gm.PriorityGIL()), ("no GIL", gm.NoGIL())])
    tab = res.table.to_pandas()
    assert list(tab.gil) == ["real", "own (5 ms)", "priority", "no GIL"]
    assert list(tab.source) == ["real", "model", "model", "model"]
    assert (tab.elapsed_s > 0).all() and set(res.runs) == {"own (5 ms)", "priority", "no GIL"}
    # The sleeper's ten waits are in the table's I/O figures on both sides.
    assert (tab.io_calls >= 10).all(), tab
    # What the GIL cost those calls in all: the priority GIL hands it to the sleeper at once.
    assert (tab.io_delay_s >= 0).all() and tab.io_delay_s[2] < 0.5 * tab.io_delay_s[1], tab
    # The main thread's join of the CPU thread was seen as a lock wait, woken by that thread at
    # its end: replayed as a get of what the CPU thread puts there (or, unpaired, a join).
    main = next(t for t in res.replay.scenario.threads if t.name == "main")
    assert any(isinstance(o, gm.Join) and o.thread == "thread-1"
               or isinstance(o, gm.Get) and o.queue == "wake:thread-1->main" for o in main.program), main.program
    io = gm.analysis.io_response(res.observed.events).to_pandas()
    assert ((io.thread == 0) & (io.op == "lock")).any()
    # The check of the replay against the real run is there, as ratios.
    assert "elapsed" in res.reproduces["ratios"] and isinstance(res.reproduces["ok"], bool)
    # The second observation was taken, not replayed: the program's own spread, per judged figure.
    assert len(res.also_observed) == 1 and res.also_observed[0].meta["gil"]["policy"] == "real"
    assert set(res.reproduces["spread"]) <= set(res.reproduces["ratios"]) and "elapsed" in res.reproduces["spread"]
    assert isinstance(res.reproduces["within_spread"], bool)
    assert res.best() in ("priority", "no GIL")
    png = res.plot(tmp_path / "w.png")
    assert os.path.getsize(png) > 10_000
    # The CLI replays the saved observation.
    obs, obs2 = tmp_path / "obs.parquet", tmp_path / "obs2.parquet"
    res.observed.to_parquet(obs)
    res.also_observed[0].to_parquet(obs2)
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "gilmodel.cli", "whatif", "--from", str(obs), "--from", str(obs2),
                        "--repeats", "1", "--gil", "bfs", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True)
    assert p.returncode in (0, 1), p.stderr
    assert "bfs" in p.stdout and "replay under the own GIL / real" in p.stdout
    assert "the program's own spread, the other 1 observation / the first" in p.stdout
    # Launched with --observations, it keeps each observation, to replay again with --from.
    small = tmp_path / "small.py"
    small.write_text(PROGRAM % 200_000)
    out2 = tmp_path / "out2"
    p = subprocess.run([sys.executable, "-m", "gilmodel.cli", "whatif", "--observations", "2", "--repeats", "1",
                        "--gil", "bfs", "--out", str(out2), "--no-progress", "--", _py311(), str(small)],
                       capture_output=True, text=True)
    assert p.returncode in (0, 1), p.stderr
    assert "observed.parquet" in os.listdir(out2) and "observed_2.parquet" in os.listdir(out2)
    assert gm.load_run(out2 / "observed_2.parquet").meta["gil"]["policy"] == "real"
    assert sorted(os.listdir(out)) == ["whatif.parquet", "whatif.png", "whatif_threads.parquet"]


QUEUE_PROGRAM = textwrap.dedent("""
    import threading, queue
    q = queue.Queue()
    def work(n):
        while n:
            n -= 1
    def producer():
        for i in range(10):
            work(100000)
            q.put(i)
        q.put(None)
    def consumer():
        while q.get() is not None:
            work(20000)
    ts = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
""")


@pytest.mark.skipif(WHY is not None, reason="observing needs uprobes and root: %s" % WHY)
@pytest.mark.skipif(_py311() is None, reason="CPython 3.11 with symbols is not installed under ~/.pyenv/versions")
def test_who_woke_whom_a_consumers_waits_become_gets_of_its_producers_puts(tmp_path):
    prog = tmp_path / "pc.py"
    prog.write_text(QUEUE_PROGRAM)
    run = gm.observe([_py311(), str(prog)])
    N = CODE
    ev = np.asarray(run.events.column("event").combine_chunks().indices)
    # Every lock wait names its futex, and some thread woke one of them.
    assert (ev == N["lock_wait"]).sum() == ((ev == N["io_begin"]) & (np.asarray(run.events.column("arg")) == 5)).sum()
    assert (ev == N["lock_wake"]).any()
    rp = gm.scenario_from(run, quiet=True)
    progs = {t.name: t.program for t in rp.scenario.threads}
    # The consumer (thread-2) waits on queues the producer (thread-1) puts to, and the main
    # thread's joins and start() waits became gets of the threads that woke it.
    gets = {o.queue for o in progs["thread-2"] if isinstance(o, gm.Get)}
    assert gets and all(q.startswith("wake:thread-1->thread-2") for q in gets), progs["thread-2"]
    puts = [o.queue for p in progs.values() for o in p if isinstance(o, gm.Put)]
    for q in {o.queue for p in progs.values() for o in p if isinstance(o, gm.Get)}:
        assert puts.count(q) >= sum(isinstance(o, gm.Get) and o.queue == q for p in progs.values() for o in p)
    assert {q.name for q in rp.scenario.queues} == set(puts)
    # The replay runs to its end: every get is satisfied.
    r = gm.run(rp.scenario)
    assert r.meta["stopped_by"] == "all_done"
    assert r.meta["queues"] and all(v["puts"] >= v["gets"] for v in r.meta["queues"]), r.meta["queues"]


def log_of(rows, names):
    """An observed-looking run from (t_ns, thread, event, arg) rows."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    t, thread, ev, arg = (np.array(c) for c in zip(*rows))
    events = _events_table({"t_ns": t.astype(np.int64), "thread": thread.astype(np.uint16),
                            "cpu": np.zeros(len(rows), np.int16), "event": np.array([CODE[e] for e in ev], np.int8),
                            "arg": arg.astype(np.int64)})
    run = synthetic(len(names))
    return Run(events, pa.table({"thread": list(range(len(names))), "name": names}), pa.table({}), run.meta)


def test_a_wait_the_waiter_woke_its_target_after_is_not_a_join_of_it():
    # t0 waits (unpaired) until 100 us; t1 ends 1.5 ms later, but only after t0 woke it at
    # 100.5 us: that first wait cannot have been a join of t1 (the replay would hang). t0's
    # second wait ends as t1 ends, and t1 woke no one then: that one is a join.
    us = 1000
    rows = [(0, 0, "request", 0), (1 * us, 0, "acquire", 1), (2 * us, 0, "release", 0),
            (2 * us, 0, "io_begin", 5), (2 * us, 0, "lock_wait", 7), (100 * us, 0, "io_end", 0),
            (100 * us + 1, 0, "request", 0), (100 * us + 2, 0, "acquire", 3), (100 * us + 500, 0, "lock_wake", 9),
            (101 * us, 0, "release", 0), (101 * us, 0, "io_begin", 5), (101 * us, 0, "lock_wait", 8),
            (1700 * us, 0, "io_end", 0), (1700 * us + 1, 0, "request", 0), (1700 * us + 2, 0, "acquire", 5),
            (1701 * us, 0, "release", 0), (1701 * us, 0, "exit", 0),
            (2 * us + 1, 1, "request", 0), (2 * us + 2, 1, "acquire", 2), (50 * us, 1, "release", 0),
            (50 * us, 1, "io_begin", 5), (50 * us, 1, "lock_wait", 9), (100 * us + 600, 1, "io_end", 0),
            (100 * us + 601, 1, "request", 0), (101 * us + 1, 1, "acquire", 4), (1699 * us, 1, "release", 0),
            (1699 * us, 1, "exit", 0)]
    rp = gm.scenario_from(log_of(rows, ["t0", "t1"]), quiet=True)
    p0, p1 = ({t.name: t.program for t in rp.scenario.threads}[n] for n in ("t0", "t1"))
    waits0 = [o for o in p0 if isinstance(o, (gm.Sleep, gm.Join, gm.Get, gm.Native))]
    assert isinstance(waits0[0], gm.Sleep) and waits0[0].us == 98, p0
    assert isinstance(waits0[-1], gm.Join) and waits0[-1].thread == "t1", p0
    assert [o.queue for o in p0 if isinstance(o, gm.Put)] == ["wake:t0->t1"]
    assert [o.queue for o in p1 if isinstance(o, gm.Get)] == ["wake:t0->t1"]
    r = gm.run(rp.scenario.replace(watchdog_s=2.0, tick_ns=rp.scenario.tick_ns, profile=rp.profile))
    assert r.meta["stopped_by"] == "all_done"


def test_wakes_split_holds_where_they_happened_and_unmatched_pairs_are_undone():
    us, ms = 1000, 1_000_000
    rows = [
        # t0 holds from 1 us; t2's timeout asks it to drop at 3.9 ms; it wakes futex 9 (t1's
        # wait) at 4 ms inside that hold and drops at 4.01 ms; then a hold, a wake of futex 10
        # outside the GIL, two holds, and a wake of futex 12 whose waiter never asks for the
        # GIL again.
        (0, 0, "request", 0), (1 * us, 0, "acquire", 1), (4 * ms, 0, "lock_wake", 9), (4 * ms + 10 * us, 0, "release", 0),
        (4 * ms + 110 * us, 0, "request", 0), (5 * ms, 0, "acquire", 4), (6 * ms, 0, "release", 0),
        (6 * ms + 500 * us, 0, "lock_wake", 10), (7 * ms, 0, "request", 0), (7 * ms + 100 * us, 0, "acquire", 6),
        (8 * ms, 0, "release", 0), (8 * ms + 10 * us, 0, "request", 0), (8 * ms + 450 * us, 0, "acquire", 8),
        (8 * ms + 500 * us, 0, "lock_wake", 12), (8 * ms + 600 * us, 0, "release", 0), (8 * ms + 700 * us, 0, "exit", 0),
        (100, 1, "request", 0), (200, 1, "acquire", 0), (1 * us, 1, "release", 0),
        (1 * us, 1, "io_begin", 5), (1 * us, 1, "lock_wait", 9), (4 * ms + 100 * us, 1, "io_end", 0),
        (4 * ms + 100 * us + 1, 1, "request", 0), (4 * ms + 200 * us, 1, "acquire", 3), (4 * ms + 300 * us, 1, "release", 0),
        (4 * ms + 300 * us, 1, "io_begin", 5), (4 * ms + 300 * us, 1, "lock_wait", 10), (6 * ms + 600 * us, 1, "io_end", 0),
        (6 * ms + 600 * us + 1, 1, "request", 0), (8 * ms + 1, 1, "acquire", 7), (8 * ms + 100 * us, 1, "release", 0),
        (8 * ms + 100 * us, 1, "io_begin", 5), (8 * ms + 100 * us, 1, "lock_wait", 12), (9 * ms, 1, "io_end", 0),
        (9 * ms, 1, "exit", 0),
        (1 * ms, 2, "request", 0), (3 * ms + 900 * us, 2, "timeout", 0), (3 * ms + 900 * us, 2, "drop_request", 0),
        (4 * ms + 10 * us + 1, 2, "acquire", 2), (4 * ms + 50 * us, 2, "release", 0), (4 * ms + 60 * us, 2, "exit", 0),
    ]
    rp = gm.scenario_from(log_of(rows, ["t0", "t1", "t2"]), quiet=True)
    progs = {t.name: t.program for t in rp.scenario.threads}
    t0 = rp.threads.to_pandas().set_index("name")
    # The hold the wake split counts whole, and its drop request (before the wake) still makes
    # the next gap the GIL's own switch, not C work.
    assert t0.loc["t0", "hold_ns"] == (4 * ms + 10 * us - 1 * us) + 1 * ms + 900 * us + 150 * us
    assert not any(isinstance(o, gm.Native) for o in progs["t0"]), progs["t0"]
    kinds = [type(o).__name__ for o in progs["t0"]]
    assert kinds == ["Cpu", "Put", "Cpu", "Put", "Cpu"], progs["t0"]  # the put of futex 12 undone
    tick = rp.profile.model_tick_ns
    assert abs(progs["t0"][0].ticks * tick - (4 * ms - 1 * us)) <= tick
    assert [o.queue for o in progs["t1"] if isinstance(o, gm.Get)] == ["wake:t0->t1"] * 2
    assert t0.loc["t1", "paired_waits"] == 2 and t0.loc["t0", "put_ops"] == 2
    r = gm.run(rp.scenario.replace(watchdog_s=2.0, tick_ns=rp.scenario.tick_ns, profile=rp.profile))
    assert r.meta["stopped_by"] == "all_done"


def test_the_c_code_around_a_voluntary_releases_calls_is_replayed_with_them():
    # t0 releases at 10 us, enters a 10 us recv at 15 us and asks for the GIL back at 28 us:
    # the replay's GIL-released stretch is the 18 us from release to request, not the call's
    # 10 us alone. Its next call, a 100 us send, becomes a sleep of release to request. t1's
    # timeout asks t0 to drop at 60 us; the forced release at 61 us and t0's request at 90 us
    # (its FORCE_SWITCHING wait) stays the GIL's own: no native op for it.
    us = 1000
    rows = [(0, 0, "request", 0), (1 * us, 0, "acquire", 1), (10 * us, 0, "release", 0),
            (15 * us, 0, "io_begin", 1), (25 * us, 0, "io_end", 1), (28 * us, 0, "request", 0),
            (30 * us, 0, "acquire", 2), (40 * us, 0, "release", 0), (42 * us, 0, "io_begin", 0),
            (142 * us, 0, "io_end", 1), (150 * us, 0, "request", 0), (150 * us + 1, 0, "acquire", 3),
            (260 * us, 0, "release", 0), (290 * us, 0, "request", 0), (400 * us, 0, "acquire", 5),
            (410 * us, 0, "release", 0), (411 * us, 0, "exit", 0),
            (200 * us, 1, "request", 0), (260 * us - 1, 1, "timeout", 0), (260 * us - 1, 1, "drop_request", 0),
            (261 * us, 1, "acquire", 4), (399 * us, 1, "release", 0), (399 * us + 1, 1, "exit", 0)]
    rp = gm.scenario_from(log_of(rows, ["t0", "t1"]), quiet=True)
    p0 = {t.name: t.program for t in rp.scenario.threads}["t0"]
    tick = rp.profile.model_tick_ns
    natives = [o for o in p0 if isinstance(o, gm.Native)]
    assert len(natives) == 1 and abs(natives[0].ticks * tick - 18 * us) <= tick, p0
    # The short recv spins, logged as the recv it was: the I/O figures count it on both sides.
    assert natives[0].call == "recv"
    res = gm.whatif(run=log_of(rows, ["t0", "t1"]), gils=[], repeats=1, progress=False, quiet=True)
    assert list(res.table.column("io_calls").to_pylist()) == [2, 2]
    with pytest.raises(ValueError, match="native.call"):
        gm.native(5, "join")
    assert [o.us for o in p0 if isinstance(o, gm.Sleep)] == [110], p0
    assert [type(o).__name__ for o in p0] == ["Cpu", "Native", "Cpu", "Sleep", "Cpu"], p0
    row = rp.threads.to_pandas().set_index("name").loc["t0"]
    # The send counts as blocking, the C code around both calls as native work.
    assert row.blocking_ns == 100 * us and row.native_ns == 18 * us + 10 * us


def test_under_2x_a_hold_the_periodic_release_did_not_cut_is_replayed_held():
    # 2.x releases every check interval (100 bytecodes), so t0's 19 us hold between two calls,
    # never cut, ran fewer than 100 bytecodes and the rest C code: held (as cpu, the model's
    # 2.7 would cut it every 100 of its ticks). Its later holds, split by periodic releases
    # (release and re-request within switch_gap_us), and t1's are one cpu op each.
    us = 1000
    # The holds take turns: t1's pieces while t0 waits in its call, then t0's last two.
    rows = [(0, 0, "request", 0), (1 * us, 0, "acquire", 1), (20 * us, 0, "release", 0),
            (21 * us, 0, "io_begin", 1), (300 * us, 0, "io_end", 1), (301 * us, 0, "request", 0),
            (302 * us, 0, "acquire", 3), (305 * us, 0, "release", 0), (309 * us, 0, "request", 0),
            (310 * us, 0, "acquire", 5), (313 * us, 0, "release", 0), (314 * us, 0, "exit", 0)]
    t = 20 * us + 5
    rows += [(2 * us, 1, "request", 0)]
    for k in range(40):  # t1: 5 us pieces, each released and asked for again 1 us later
        rows += [(t, 1, "acquire", 100 + k), (t + 5 * us, 1, "release", 0), (t + 6 * us, 1, "request", 0)]
        t += 6 * us
    rows += [(t, 1, "acquire", 200), (t + 5 * us, 1, "release", 0), (t + 6 * us, 1, "exit", 0)]
    run = log_of(rows, ["t0", "t1"])
    run.meta["gil"] = {"policy": "real", "interpreter": "2.7.18", "flavour": "Tick"}
    rp = gm.scenario_from(run, quiet=True)
    progs = {t.name: t.program for t in rp.scenario.threads}
    assert [type(o).__name__ for o in progs["t0"]] == ["Held", "Sleep", "Cpu"], progs["t0"]
    assert [type(o).__name__ for o in progs["t1"]] == ["Cpu"], progs["t1"]
    tick = rp.profile.model_tick_ns
    assert abs(progs["t0"][0].ticks * tick - 19 * us) <= tick
    th = rp.threads.to_pandas().set_index("name")
    assert th.loc["t0", "piece_ns"] == 19 * us and th.loc["t1", "piece_ns"] == 0
    r = gm.run(rp.scenario.replace(watchdog_s=2.0, tick_ns=rp.scenario.tick_ns, profile=rp.profile))
    assert r.meta["stopped_by"] == "all_done"


@pytest.mark.skipif(WHY is not None, reason="observing needs uprobes and root: %s" % WHY)
@pytest.mark.skipif(_py311() is None, reason="CPython 3.11 with symbols is not installed under ~/.pyenv/versions")
def test_real_programs_that_cannot_be_replayed_as_they_ran_say_so(tmp_path):
    # The bad inputs, as real programs observed with uprobes: each gives a clear error,
    # or a replay whose notes say what it left out; never a silent replay of a partial trace.
    py = _py311()
    gils = [("bfs", gm.BfsGIL())]

    def whatif(code, **kw):
        return gm.whatif([py, "-c", code], gils=gils, repeats=1, progress=False, quiet=True, **kw)

    # One that exits at once, and one with a single thread: nothing contends for the GIL.
    for code in ("pass", "n = 300000\nwhile n: n -= 1"):
        res = whatif(code)
        assert any("one thread" in n for n in res.replay.notes), (code, res.replay.notes)
    # One that forks: the child's work is not followed, and the notes say how much was seen.
    fork = ("import os\npid = os.fork()\nn = 300000\nwhile n: n -= 1\n"
            "if pid == 0:\n    os._exit(0)\nos.waitpid(pid, 0)")
    res = whatif(fork)
    assert any("other processes" in n and "not followed" in n for n in res.replay.notes), res.replay.notes
    # One that exits with an error: replayed up to there, and said.
    res = whatif("import threading, sys\nt = threading.Thread(target=sum, args=(range(100000),))\nt.start()\nt.join()\n"
                 "sys.exit(3)")
    assert any("did not exit cleanly" in n and "3" in n for n in res.replay.notes), res.replay.notes
    # One that starts more threads than a scenario may have: refused, with the limit.
    many = "import threading\nts = [threading.Thread(target=sum, args=(range(100),)) for _ in range(1100)]\n" \
           "[t.start() for t in ts]\n[t.join() for t in ts]"
    with pytest.raises(gm.WhatIfError, match="at most 1024"):
        whatif(many)
    # An observation that lost records (one ring page per CPU, under a switching pair): refused
    # unless partial=True, which says so.
    pair = "import threading\nts = [threading.Thread(target=sum, args=(range(3000000),)) for _ in range(2)]\n" \
           "[t.start() for t in ts]\n[t.join() for t in ts]"
    obs = gm.observe([py, "-c", pair], ring_pages=1)
    assert obs.meta["events_dropped"] > 0, obs.meta
    with pytest.raises(gm.WhatIfError, match="partial.*lost"):
        gm.whatif(run=obs, gils=gils, repeats=1, progress=False, quiet=True)
    res = gm.whatif(run=obs, gils=gils, repeats=1, progress=False, quiet=True, partial=True)
    assert any("partial observation" in n for n in res.replay.notes), res.replay.notes
