"""Perfetto / Chrome trace export: the file obeys the Trace Event Format's rules (checked here
field by field, not only "it is JSON"), its slices match the analysis tables exactly, and the
window and gzip options work."""

import gzip
import json
import math
import subprocess
import sys

import pyarrow as pa
import pytest

import gilmodel as gm
from gilmodel import analysis
from gilmodel.trace import INSTANT_EVENTS
from conftest import CORES
from test_analysis import log

PHASES = {"X", "i", "C", "M"}
META_NAMES = {"process_name", "thread_name", "thread_sort_index"}


def check_format(doc):
    """The rules of the Trace Event Format (JSON object form) that viewers rely on; returns the
    events. Raises AssertionError naming the first broken rule."""
    assert isinstance(doc, dict) and isinstance(doc.get("traceEvents"), list), "object form with traceEvents"
    assert doc.get("displayTimeUnit") in (None, "ms", "ns")
    evs = doc["traceEvents"]
    for e in evs:
        assert isinstance(e.get("name"), str), e
        assert e.get("ph") in PHASES, e
        assert isinstance(e.get("pid"), int) and isinstance(e.get("tid"), int), e
        if e["ph"] == "M":
            assert e["name"] in META_NAMES and isinstance(e.get("args"), dict), e
            continue
        assert isinstance(e.get("ts"), (int, float)) and math.isfinite(e["ts"]) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert isinstance(e.get("dur"), (int, float)) and e["dur"] >= 0, e
        elif e["ph"] == "i":
            assert e.get("s") in ("t", "p", "g"), e
        elif e["ph"] == "C":
            assert e.get("args") and all(isinstance(v, (int, float)) for v in e["args"].values()), e
    # Complete events on one track must nest; ours never even overlap, but for a held call
    # inside its hold: check in integer ns.
    by_tid = {}
    for e in evs:
        if e["ph"] == "X":
            by_tid.setdefault((e["pid"], e["tid"]), []).append((round(e["ts"] * 1000), -round(e["dur"] * 1000), e["name"]))
    for track, sl in by_tid.items():
        sl.sort()
        open_ = []  # (end, name) of the slices the next one may nest in
        for a, mdur, name in sl:
            while open_ and a >= open_[-1][0]:
                open_.pop()
            if open_:
                end, outer = open_[-1]
                assert name == "held call" and outer == "hold" and a - mdur <= end, \
                    "overlapping slices on track %r: %s ending %d and %s at [%d, +%d]" % (track, outer, end, name, a, -mdur)
            open_.append((a - mdur, name))
    # Every track with events is named.
    named = {(e["pid"], e["tid"]) for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {(e["pid"], e["tid"]) for e in evs if e["ph"] in ("X", "i")} <= named
    return evs


def load(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def slices(evs, name=None, tid=None):
    return [e for e in evs if e["ph"] == "X" and (name is None or e["name"] == name) and (tid is None or e["tid"] == tid)]


def hand_run():
    ev = log([
        (0, 0, "start", 0), (0, 1, "start", 1),
        (1000, 0, "request", 0), (2000, 0, "acquire", 1), (2500, 1, "request", 0),
        (3000, 1, "timeout", 1), (3000, 1, "drop_request", 1), (4000, 0, "forced_drop", 0), (4100, 0, "release", 5),
        (4200, 0, "switch_wait", 0), (4500, 1, "futile_wakeup", 1), (5000, 1, "acquire", 2), (5100, 0, "switch_done", 0),
        (5500, 0, "request", 0), (6000, 1, "release", 3), (6100, 1, "io_begin", 0), (7000, 0, "acquire", 3),
        (8000, 1, "io_end", 1024), (8100, 1, "request", 0), (9000, 0, "release", 7), (9100, 0, "exit", 0),
        (9500, 1, "acquire", 4), (10000, 1, "release", 1), (10100, 1, "exit", 0),
    ])
    threads = pa.table({"thread": pa.array([0, 1], pa.uint16()), "name": ["cpu", "io"], "core": [0, None]})
    meta = {"gil": {"policy": "interval"}, "end_ns": 10100, "scenario": "hand", "version": "test"}
    return gm.Run(ev, threads, pa.table({"thread": pa.array([], pa.uint16())}), meta)


def test_hand_built_run_exact(tmp_path):
    path = hand_run().to_trace(tmp_path / "t.json")
    evs = check_format(load(path))
    names = {e["tid"]: e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names == {0: "GIL", 1: "cpu (core 0)", 2: "io"}
    gil = [(e["name"], e["ts"], e["dur"]) for e in slices(evs, tid=0)]
    assert gil == [("cpu", 2.0, 2.1), ("io", 5.0, 1.0), ("cpu", 7.0, 2.0), ("io", 9.5, 0.5)]
    holds = [(e["tid"], e["ts"], e["args"]["ended_by"], e["args"]["ticks"]) for e in slices(evs, "hold")]
    assert sorted(holds) == [(1, 2.0, "forced_drop", 5), (1, 7.0, "exit", 7), (2, 5.0, "blocking", 3), (2, 9.5, "exit", 1)]
    waits = sorted((e["tid"], e["ts"], e["dur"], e["args"]["timeouts"]) for e in slices(evs, "wait"))
    assert waits == [(1, 1.0, 1.0, 0), (1, 5.5, 1.5, 0), (2, 2.5, 2.5, 1), (2, 8.1, 1.4, 0)]
    assert [(e["tid"], e["ts"], e["dur"], e["args"]["bytes"]) for e in slices(evs, "send")] == [(2, 6.1, 1.9, 1024)]
    assert [(e["tid"], e["ts"], e["dur"]) for e in slices(evs, "switch wait")] == [(1, 4.2, 0.9)]
    inst = sorted((e["name"], e["tid"], e["ts"]) for e in evs if e["ph"] == "i")
    assert inst == [("drop_request", 2, 3.0), ("forced_drop", 1, 4.0), ("futile_wakeup", 2, 4.5), ("timeout", 2, 3.0)]
    waiters = [(e["ts"], e["args"]["waiting"]) for e in evs if e["ph"] == "C" and e["name"] == "GIL waiters"]
    assert waiters == [(1.0, 1), (2.0, 0), (2.5, 1), (5.0, 0), (5.5, 1), (7.0, 0), (8.1, 1), (9.5, 0)]
    # The holder's CPU at each acquisition (the hand-built log puts thread k on CPU k % 2).
    cpu = [(e["ts"], e["args"]["cpu"]) for e in evs if e["ph"] == "C" and e["name"] == "holder's CPU"]
    assert cpu == [(2.0, 0), (5.0, 1), (7.0, 0), (9.5, 1)]


def test_window_cuts_slices_and_carries_the_waiter_level(tmp_path):
    evs = check_format(load(hand_run().to_trace(tmp_path / "w.json", start_ns=3000, end_ns=6000)))
    for e in evs:
        if e["ph"] in ("X", "i", "C"):
            assert 3.0 <= e["ts"] <= 6.0 and e["ts"] + e.get("dur", 0) <= 6.0 + 1e-9, e
    assert [(e["ts"], e["dur"]) for e in slices(evs, tid=0)] == [(3.0, 1.1), (5.0, 1.0)]
    # The thread waiting since 2.5 µs is still counted at the window's start.
    assert [(e["ts"], e["args"]["waiting"]) for e in evs if e["name"] == "GIL waiters"][:2] == [(3.0, 1), (5.0, 0)]
    with pytest.raises(ValueError, match="start_ns"):
        hand_run().to_trace(tmp_path / "bad.json", start_ns=5000, end_ns=4000)


@pytest.mark.parametrize("policy", ["3.11", "2.7"])
def test_real_run_matches_analysis(tmp_path, policy):
    run = gm.run(gm.scenarios.io_latency(gm.cpython(policy), cores=CORES, pings=30, gap_us=2000))
    evs = check_format(load(run.to_trace(tmp_path / "r.json.gz")))
    holds = analysis.holds(run.events)
    # Every acquisition of the GIL is one hold slice on its thread and one on the GIL track.
    assert len(slices(evs, "hold")) == holds.num_rows == sum(run.threads.column("acquisitions").to_pylist())
    assert len(slices(evs, tid=0)) == holds.num_rows
    assert len(slices(evs, "wait")) == analysis.waits(run.events).num_rows
    io = analysis.io_response(run.events)
    assert sum(len(slices(evs, op)) for op in analysis.IO_OPS) == io.num_rows > 0
    counts = run.events.column("event").to_pylist()
    for kind in INSTANT_EVENTS:
        assert sum(1 for e in evs if e["ph"] == "i" and e["name"] == kind) == counts.count(kind)
    # The waiter counter never goes negative nor above the number of threads.
    levels = [e["args"]["waiting"] for e in evs if e["ph"] == "C" and e["name"] == "GIL waiters"]
    assert levels and 0 <= min(levels) and max(levels) <= run.threads.num_rows


def test_cli_trace(tmp_path):
    run = gm.run(gm.scenarios.handoffs(gm.cpython("3.11"), cores=CORES, duration_s=0.05))
    run.to_parquet(tmp_path / "run.parquet")
    out = subprocess.run([sys.executable, "-m", "gilmodel.cli", "trace", "--format", "json", str(tmp_path / "run.parquet")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    evs = check_format(load(tmp_path / "run.trace.json"))
    assert len(slices(evs, "hold")) == analysis.holds(run.events).num_rows
    # The default is native; --beside adds a second run as its own process.
    out = subprocess.run([sys.executable, "-m", "gilmodel.cli", "trace", str(tmp_path / "run.parquet"), "--beside",
                          str(tmp_path / "run.parquet")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "perfetto" in out.stdout, out.stderr
    tracks, procs, sl, _, _ = read_native(tmp_path / "run.perfetto-trace")
    assert sum(1 for u, n, s, e in sl if n == "hold") == 2 * analysis.holds(run.events).num_rows


def read_native(path):
    """A native trace read back with the perfetto package's own protobuf definitions: track
    names by uuid, and (track, name, start, end) slices, (track, name, t) instants and
    (track, t, value) counter samples, replaying begins and ends as Perfetto does: per packet
    sequence, its incremental clock, interned names and defaults (the default track, and the
    counter tracks that ``extra_counter_values`` are samples of)."""
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        tr = pb.Trace.FromString(f.read())
    tracks, procs = {}, {}
    seqs = {}  # sequence id -> its state
    stacks, sl, inst, cnt = {}, [], [], []
    for p in tr.packet:
        q = p.trusted_packet_sequence_id
        assert q >= 1
        if p.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED:
            assert q not in seqs, "a sequence's state is cleared once, at its start"
            seqs[q] = {"names": {}, "t": 0, "clock": False, "defaults": None}
        s = seqs[q]
        if p.HasField("clock_snapshot"):
            s["clock"] = any(c.clock_id == 64 and c.is_incremental for c in p.clock_snapshot.clocks)
        if p.HasField("trace_packet_defaults"):
            assert p.trace_packet_defaults.timestamp_clock_id == 64
            s["defaults"] = p.trace_packet_defaults.track_event_defaults
        for n in p.interned_data.event_names:
            s["names"][n.iid] = n.name
        if p.HasField("track_descriptor"):
            d = p.track_descriptor
            label = d.thread.thread_name if d.HasField("thread") else d.process.process_name if d.HasField("process") else d.name
            tracks[d.uuid] = label
            procs[d.uuid] = d.parent_uuid or d.uuid
        if p.HasField("track_event"):
            assert s["clock"] and p.timestamp_clock_id == 0
            s["t"] += p.timestamp
            t, e, names, dflt = s["t"], p.track_event, s["names"], s["defaults"]
            track = e.track_uuid if e.HasField("track_uuid") else dflt.track_uuid
            assert track in tracks, "an event on a track described before it"
            if e.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
                stacks.setdefault(track, []).append((names[e.name_iid], t))
            elif e.type == pb.TrackEvent.TYPE_SLICE_END:
                name, start = stacks[track].pop()
                sl.append((track, name, start, t))
            elif e.type == pb.TrackEvent.TYPE_INSTANT:
                inst.append((track, names[e.name_iid], t))
            else:
                assert e.type == pb.TrackEvent.TYPE_COUNTER
                cnt.append((track, t, e.counter_value))
            extra = list(e.extra_counter_track_uuids) or list(dflt.extra_counter_track_uuids)
            assert len(e.extra_counter_values) <= len(extra)
            cnt.extend((u, t, v) for u, v in zip(extra, e.extra_counter_values))
    assert all(not s for s in stacks.values()), "every slice begun is ended"
    return tracks, procs, sl, inst, cnt


def json_slices(evs):
    track = {(e["pid"], e["tid"]): e["args"]["name"] for e in evs if e["ph"] == "M" and e["name"] == "thread_name"}
    return sorted((track[(e["pid"], e["tid"])], e["name"], round(e["ts"] * 1000), round((e["ts"] + e["dur"]) * 1000))
                  for e in evs if e["ph"] == "X")


@pytest.mark.parametrize("suffix", [".perfetto-trace", ".pftrace.gz"])
def test_native_trace_reads_back_and_matches_analysis_and_json(tmp_path, suffix):
    run = gm.run(gm.scenarios.io_latency(gm.cpython("3.11"), cores=CORES, pings=20, gap_us=6000))
    tracks, procs, sl, inst, cnt = read_native(run.to_trace(tmp_path / ("r" + suffix)))
    names = run.threads.column("name").to_pylist()
    # One hold slice per holding period of analysis.holds, exactly, on its thread's track.
    h = analysis.holds(run.events).to_pandas()
    got = sorted((tracks[u], s, e) for u, n, s, e in sl if n == "hold")
    want = sorted((run.threads.column("name")[int(k)].as_py() + ("" if c is None or c < 0 else " (core %d)" % c), s, e)
                  for k, s, e, c in zip(h.thread, h.start_ns, h.end_ns, [run.threads.column("core").to_pylist()[int(k)] for k in h.thread]))
    assert got == want and len(got) == len(h) > 0
    gil = sorted((n, s, e) for u, n, s, e in sl if tracks[u] == "GIL")
    assert gil == sorted((names[int(k)], s, e) for k, s, e in zip(h.thread, h.start_ns, h.end_ns))
    # The JSON trace of the same run holds the same slices (in ns), instants and counters.
    evs = check_format(load(run.to_trace(tmp_path / "r.json")))
    js = json_slices(evs)
    assert sorted((tracks[u], n, s, e) for u, n, s, e in sl) == js
    assert sorted((n, t) for _, n, t in inst) == sorted((e["name"], round(e["ts"] * 1000)) for e in evs if e["ph"] == "i")
    assert sorted((tracks[u], t, v) for u, t, v in cnt) == sorted(
        (e["name"], round(e["ts"] * 1000), list(e["args"].values())[0]) for e in evs if e["ph"] == "C")


def test_two_runs_side_by_side_are_two_processes(tmp_path):
    a = gm.run(gm.scenarios.handoffs(gm.cpython("3.11"), cores=CORES, duration_s=0.03))
    b = gm.run(gm.scenarios.handoffs(gm.cpython("2.7"), cores=CORES, duration_s=0.03))
    tracks, procs, sl, _, _ = read_native(gm.trace.to_trace([a, b], str(tmp_path / "ab.perfetto-trace")))
    roots = {u for u, parent in procs.items() if parent == u}
    assert sorted(tracks[u] for u in roots) == ["gilmodel: handoffs (interval)", "gilmodel: handoffs (tick)"]
    per = {}
    for u, n, s, e in sl:
        if n == "hold":
            per[procs[u]] = per.get(procs[u], 0) + 1
    assert sorted(per.values()) == sorted([analysis.holds(a.events).num_rows, analysis.holds(b.events).num_rows])
    evs = check_format(load(gm.trace.to_trace([a, b], str(tmp_path / "ab.json"))))
    assert {e["pid"] for e in evs} == {1, 2}
    with pytest.raises(ValueError, match="format"):
        gm.trace.to_trace(a, str(tmp_path / "x.json"), format="svg")


def test_native_and_json_agree_on_a_log_that_breaks_the_invariants_and_under_no_gil(tmp_path):
    # A hand-built log: an acquire not followed by a release (a lost drop, in an observed run),
    # a blocking call whose thread never takes the GIL again, a wait cut off by the end.
    bad = hand_run()
    ev = log([
        (0, 0, "start", 0), (0, 1, "start", 1), (10, 0, "request", 0), (20, 0, "acquire", 1), (30, 0, "acquire", 2),
        (40, 0, "release", 3), (50, 0, "io_begin", 0), (60, 0, "io_end", 8), (70, 1, "request", 0), (80, 1, "acquire", 3),
        (90, 1, "release", 1), (95, 0, "exit", 0), (96, 1, "request", 0),
    ])
    bad = gm.Run(ev, bad.threads, bad.io, dict(bad.meta, end_ns=100))
    nogil = gm.run(gm.Scenario(gm.NoGIL(), [gm.Thread("a", [gm.loop(gm.cpu(200), gm.sleep(20), times=20)]),
                                            gm.Thread("b", [gm.loop(gm.cpu(300), times=20)])], cores=CORES, tick_ns=50.0))
    for name, run in (("bad", bad), ("nogil", nogil)):
        tracks, _, sl, inst, cnt = read_native(run.to_trace(tmp_path / (name + ".perfetto-trace")))
        evs = check_format(load(run.to_trace(tmp_path / (name + ".json"))))
        assert sorted((tracks[u], n, s, e) for u, n, s, e in sl) == json_slices(evs), name
    assert not any(tracks[u] == "GIL" for u, *_ in sl), "no GIL-track slices under no GIL"
