"""C work: ``native`` (the GIL released, the core busy: hashlib, zlib, numpy) and ``held`` (the
GIL kept, no check point: sorted(), a long regex, an extension that does not release it).

Their checks, their events, and what they do to other threads, as ratios of numbers measured
in the same test with margins."""

import json

import numpy as np
import pytest

import gilmodel as gm
from gilmodel import _core, analysis, experiments, plot, scenarios
from gilmodel.eventlog import STATES
from conftest import CORES, POLICIES, needs_2_cores
from log_checks import check_run, columns

HI = _core.LIMITS["cpu_ticks"][1]


@pytest.mark.parametrize("make, field", [(gm.native, "native.ticks"), (gm.held, "held.ticks")])
@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-3, ValueError), (HI + 1, ValueError), (1.5, TypeError)])
def test_constructors_refuse_bad_ticks_naming_the_field(make, field, bad, exc):
    with pytest.raises(exc, match=field.replace(".", r"\.")):
        make(bad)


@pytest.mark.parametrize("op", ["native", "held"])
def test_the_core_refuses_bad_ticks_naming_the_field(op):
    spec = json.loads(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.cpu(1)])], tick_ns=50.0).to_json())
    spec["threads"][0]["program"] = [{"op": "loop", "times": 2, "body": [{"op": op, "ticks": HI}]}]
    _core.validate(json.dumps(spec))
    for bad in (0, HI + 1):
        spec["threads"][0]["program"] = [{"op": "loop", "times": 2, "body": [{"op": op, "ticks": bad}]}]
        with pytest.raises(ValueError, match=r"threads\[0\]\.program\[0\]\.body\[0\]\.ticks"):
            _core.validate(json.dumps(spec))
    spec["threads"][0]["program"] = [{"op": op, "ticks": -1}]
    with pytest.raises(ValueError):
        _core.validate(json.dumps(spec))


def test_ops_are_exported_and_serialised():
    assert gm.native(7).to_spec() == {"op": "native", "ticks": 7}
    assert gm.held(7).to_spec() == {"op": "held", "ticks": 7}
    assert "native" in _core.OP_NAMES and analysis.IO_OPS == tuple(_core.OP_NAMES)
    assert {"call_begin", "call_end"} <= set(_core.EVENT_NAMES)
    assert "io:native" in plot.LABELS and "call" in plot.LABELS and "call" in STATES
    gm.loop(gm.native(1), gm.held(1), times=2)  # both allowed in loops


@pytest.mark.parametrize("version", ["3.11", "2.7"])
def test_events_of_both_ops(version):
    sc = gm.Scenario(gm.cpython(version), [gm.Thread("a", [gm.cpu(10), gm.native(1000), gm.held(2000), gm.cpu(10)]),
                                           gm.Thread("b", [gm.loop(gm.cpu(100), gm.held(300), times=5)])],
                     cores=CORES, tick_ns=50.0)
    run = gm.run(sc)
    check_run(run, version)  # the log's invariants, held calls and native work included
    t, th, ev, arg, names = columns(run)
    a = th == 0
    seq = [names[e] for e in ev[a]]
    # native: a blocking call of op native (the GIL released); held: a call inside a hold.
    i = seq.index("io_begin")
    assert _core.OP_NAMES[arg[a][i]] == "native" and seq[i - 1] == "release" and seq[i + 1] == "io_end"
    j = seq.index("call_begin")
    assert arg[a][j] == 2000 and seq[j + 1] == "call_end" and arg[a][j + 1] == 2000
    last_acq = max(k for k in range(j) if seq[k] == "acquire")
    assert "release" not in seq[last_acq:j]
    # The thread's ticks count the cpu and held work, not the native ticks.
    assert run.summary()["ticks"] == {"a": 2020, "b": 2000}
    calls = analysis.calls(run.events)
    assert calls.num_rows == 6 and sorted(calls.column("ticks").to_pylist()) == [300] * 5 + [2000]
    assert (calls.column("call_ns").to_numpy() > 0).all()
    io = analysis.io_response(run.events)
    assert io.column("op").to_pylist() == ["native"]
    # The timeline shows both: a call span (the GIL held) and an io span of op native.
    sp = plot.spans(run)
    states = sp.column("state").to_pylist()
    assert states.count("call") == 6
    assert [o for s, o in zip(states, sp.column("op").to_pylist()) if s == "io"] == ["native"]


@pytest.mark.parametrize("name", list(POLICIES) + ["nogil"])
def test_every_policy_keeps_the_log_invariants_with_c_work(name):
    gil = gm.NoGIL() if name == "nogil" else POLICIES[name]
    prog = [gm.loop(gm.cpu(200), gm.held(500), gm.native(300), times=20)]
    run = gm.run(gm.Scenario(gil, [gm.Thread("a", prog), gm.Thread("b", prog), gm.Thread("c", [gm.cpu(5000)])],
                             cores=CORES, tick_ns=50.0))
    check_run(run, name, exclusive=name != "nogil")
    assert analysis.calls(run.events).num_rows == 40
    assert run.summary()["ticks"] == {"a": 20 * 700, "b": 20 * 700, "c": 5000}


def test_trace_shows_held_calls_nested_in_holds(tmp_path):
    from gilmodel.trace import to_trace
    from test_trace import check_format, load

    sc = gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.cpu(10), gm.held(2000), gm.native(500), gm.cpu(10)])],
                     cores=CORES[:1], tick_ns=50.0)
    run = gm.run(sc)
    evs = check_format(load(to_trace(run, str(tmp_path / "t.json"))))  # nesting checked there
    names = [e["name"] for e in evs if e.get("ph") == "X" and e["tid"] == 1]
    assert names.count("held call") == 1 and names.count("native") == 1


def test_a_long_held_call_is_progress_for_the_watchdog():
    # One held call far longer than the watchdog: no event, no check point, only ticks.
    run = gm.run(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.held(3_000_000)])], cores=CORES[:1],
                             watchdog_s=0.05, tick_ns=50))
    assert run.meta["stopped_by"] == "all_done" and run.meta["elapsed_ns"] > 100_000_000
    run = gm.run(gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [gm.native(3_000_000)])], cores=CORES[:1],
                             watchdog_s=0.05, tick_ns=50))
    assert run.meta["stopped_by"] == "all_done" and run.meta["elapsed_ns"] > 100_000_000


def test_a_stop_during_either_op_ends_it():
    # (A held call that never ends starves every other thread of the GIL, as a real one does,
    # and keeps the watchdog quiet: it is making progress. Only the run's duration ends it.)
    for op in (gm.native, gm.held):
        sc = gm.Scenario(gm.cpython("3.11"), [gm.Thread("a", [op(HI)]), gm.Thread("b", [gm.loop(gm.cpu(1000))])],
                         cores=CORES, tick_ns=50.0, duration_s=0.2)
        run = gm.run(sc)
        assert 0.2e9 <= run.meta["elapsed_ns"] < 5e9
        check_run(run, op.__name__)


def test_registry_builds_both():
    h = experiments.get("hashing").scenarios(gm.cpython("3.11"), CORES[:1], chunks=3, tick_ns=50.0)
    assert list(h) == ["alone", "threaded"]
    assert len(h["alone"].threads) == 1 and len(h["threaded"].threads) == 2
    lc = experiments.get("long_call").scenarios(gm.cpython("3.11"), CORES[:1], tick_ns=50.0)
    assert [t.name for t in lc["run"].threads] == ["io", "caller"]


@needs_2_cores
@pytest.mark.timing
@pytest.mark.parametrize("version", ["3.11", "2.7"])
def test_native_work_scales_on_two_cores(version):
    # One hashing thread, then two on two cores: about the same time, not twice it.
    res = experiments.get("hashing").run(gm.cpython(version), CORES[:2], chunk_ticks=100_000, chunks=10,
                                         python_ticks=1_000, tick_ns=50.0)
    m = res.metrics
    assert m["threaded_s"] < 1.5 * m["alone_s"], m
    assert m["hashing_speedup"] == pytest.approx(2 * m["alone_s"] / m["threaded_s"])
    # The same work as pure-Python ticks does not scale (the GIL): the contrast in one test.
    seq, thr = scenarios.cpu_pair(gm.cpython(version), CORES[:2], ticks=1_000_000, tick_ns=50.0)
    t = scenarios.pair_times(gm.run(seq), gm.run(thr))
    assert t["ratio"] > 0.8, t


@needs_2_cores
@pytest.mark.timing
def test_a_held_call_sets_the_io_latency_not_the_interval():
    gil = gm.cpython("3.11")  # a 5 ms switch interval
    call_ticks = 400_000  # 20 ms at 50 ns
    held = gm.run(scenarios.long_call(gil, CORES[:2], call_ticks=call_ticks, pings=20, gap_us=50_000, tick_ns=50.0))
    plain = gm.run(scenarios.io_latency(gil, CORES[:2], pings=20, gap_us=50_000, tick_ns=50.0))
    call_ms = float(np.median(analysis.calls(held.events).column("call_ns").to_numpy())) / 1e6
    h, p = held.summary(), plain.summary()
    assert call_ms > 15, call_ms
    # Next to cpu work: about one interval. Next to held calls: set by the call's length.
    assert p["io_latency_p50_ms"] < 9, p
    assert h["io_latency_p50_ms"] > 0.5 * call_ms and h["io_latency_p50_ms"] > 10, (h, call_ms)
    assert h["io_latency_max_ms"] > 0.9 * call_ms, (h, call_ms)
    assert h["io_latency_p50_ms"] > 1.5 * p["io_latency_p50_ms"], (h, p)


def test_a_long_call_run_ends_by_its_time_cap_with_the_pings_answered_so_far():
    # The cap that keeps a starved I/O thread (2.x on two cores) from stretching a run.
    r = gm.run(scenarios.long_call(gm.cpython("3.11"), CORES, call_ticks=2_000, pings=1_000, gap_us=10_000, duration_s=0.2))
    assert r.meta["stopped_by"] == "duration"
    assert 0.2e9 <= r.meta["end_ns"] < 1e9
    assert 5 <= r.summary()["io_pings"] <= 20
    # The default cap: 4 x the pings' nominal time, at least 10 s.
    assert scenarios.long_call(gm.cpython("3.11"), CORES, pings=10, gap_us=1_000).duration_s == 10.0
    assert scenarios.long_call(gm.cpython("3.11"), CORES, pings=100, gap_us=50_000).duration_s == 20.0
