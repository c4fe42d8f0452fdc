"""The core's single pass (rust/analysis.rs) gives every analysis table exactly what the numpy
implementation it replaced gave (tests/analysis_reference.py), on any event log: real runs of
every policy, and generated logs that keep the invariants or break them (events of any kind
in any order, times with ties). Repeatable: ``derandomize=True``, no example database."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gilmodel as gm
from gilmodel import analysis
from gilmodel.eventlog import analysis_tables, decode
import analysis_reference as ref
from conftest import CORES, POLICIES
from test_analysis import log

TABLES = ("holds", "handoffs", "waits", "io_response", "calls")


def same(events):
    for name in TABLES:
        got, want = getattr(analysis, name)(events), getattr(ref, name)(events)
        assert got.equals(want), (name, got.to_pandas().head(), want.to_pandas().head())
    lg = decode(events)
    # With free gaps but no request at all, the numpy version raised IndexError; the pass
    # counts 0 (nobody waited).
    want = ref.idle_with_waiters_ns(lg) if (lg.ev == ref.CODE["request"]).any() else 0
    assert analysis._idle_with_waiters_ns(lg) == want
    # summary()'s lighter pass finds the same waits, hand-offs, blocking calls and idle time.
    light, full = analysis_tables(lg, full=False), lg.tables
    assert light["idle_with_waiters_ns"] == want and list(light["waits"]) == ["wait_ns"]
    assert "holds" not in light and "calls" not in light
    for name, cols in [("waits", ["wait_ns"]), ("handoffs", list(full["handoffs"])), ("io", list(full["io"]))]:
        for c in cols:
            np.testing.assert_array_equal(light[name][c], full[name][c], err_msg="%s.%s" % (name, c))


def mixed_run(policy):
    """A run under ``policy`` with every kind of span: holds, waits, sleeps, held calls and
    native work (tests/test_spans.py runs it too)."""
    return gm.run(gm.Scenario(policy, [
        gm.Thread("a", [gm.loop(gm.cpu(300), gm.sleep(50), times=40)]),
        gm.Thread("b", [gm.loop(gm.cpu(500), times=40)]),
        gm.Thread("c", [gm.loop(gm.cpu(100), gm.held(200), gm.native(100), times=30)]),
    ], cores=CORES, tick_ns=50.0))


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_real_runs_of_every_policy(name):
    run = mixed_run(POLICIES[name])
    assert analysis.holds(run.events).num_rows > 0
    same(run.events)


KINDS = [k for k in gm.EVENT_NAMES]
# The kinds the tables read, drawn more often than the rest.
COMMON = ["request", "acquire", "release", "io_begin", "io_end", "call_begin", "call_end", "timeout",
          "drop_request", "futile_wakeup", "forced_drop", "exit", "switch_wait", "switch_done"]


@st.composite
def logs(draw):
    n = draw(st.integers(0, 120))
    threads = draw(st.integers(1, 4))
    kinds = draw(st.lists(st.one_of(st.sampled_from(COMMON), st.sampled_from(KINDS)), min_size=n, max_size=n))
    steps = draw(st.lists(st.sampled_from([0, 0, 1, 2, 5]), min_size=n, max_size=n))  # many ties
    ths = draw(st.lists(st.integers(0, threads - 1), min_size=n, max_size=n))
    args = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    t = np.cumsum(steps).tolist()
    return log(list(zip(t, ths, kinds, args))) if n else log([(0, 0, "start", 0)])


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(logs())
def test_generated_logs(events):
    same(events)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(st.integers(2, 4), st.lists(st.integers(0, 3), min_size=1, max_size=60), st.data())
def test_generated_logs_that_keep_the_invariants(threads, picks, data):
    # Threads taking the GIL in turn, request → acquire → release, with blocking calls and
    # waiters' timeouts between, times that tie often; the last cycles cut off.
    rows, t, holder = [], 0, None
    state = ["idle"] * threads
    for k in picks:
        k %= threads
        t += data.draw(st.sampled_from([0, 0, 1, 3]))
        if state[k] == "idle":
            rows.append((t, k, "request", 0))
            state[k] = "wait"
        elif state[k] == "wait" and holder is None:
            rows.append((t, k, "acquire", 0))
            state[k], holder = "hold", k
        elif state[k] == "wait":
            rows.append((t, k, data.draw(st.sampled_from(["timeout", "drop_request", "futile_wakeup"])), 1))
        elif state[k] == "hold":
            if data.draw(st.booleans()):
                rows.append((t, k, "forced_drop", 0))
            rows.append((t, k, "release", 2))
            holder = None
            if data.draw(st.booleans()):
                rows += [(t, k, "io_begin", 1), (t + 1, k, "io_end", 8)]
            state[k] = "idle"
    rows.sort(key=lambda r: r[0])
    if rows:
        same(log(rows))


def test_an_empty_log():
    empty = pa.table({"t_ns": pa.array([], pa.int64()), "thread": pa.array([], pa.uint16()),
                      "cpu": pa.array([], pa.int16()), "event": pa.array([], pa.string()), "arg": pa.array([], pa.int64())})
    for name in TABLES:
        assert getattr(analysis, name)(empty).num_rows == 0
