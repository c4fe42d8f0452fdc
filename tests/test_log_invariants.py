"""The event log's invariants, checked on real runs of every policy."""

import numpy as np
import pytest

import gilmodel as gm
from conftest import CORES, POLICIES


def mixed(gil):
    """CPU threads, a streaming I/O thread, a sleeper and a joiner: every op, every event."""
    return gm.Scenario(gil, [
        gm.Thread("spin", [gm.loop(gm.cpu(10_000))]),
        gm.Thread("spin2", [gm.cpu(300_000)]),
        gm.Thread("io", [gm.loop(gm.send(512), gm.cpu(20), times=300)], peer=gm.drain()),
        gm.Thread("ping", [gm.loop(gm.recv(8), gm.cpu(10), gm.send(8))], peer=gm.driver(30, 500)),
        gm.Thread("sleeper", [gm.loop(gm.sleep(300), gm.cpu(200), times=20)]),
        gm.Thread("joiner", [gm.cpu(10), gm.join("io"), gm.join("ping"), gm.join("spin2")]),
    ], cores=CORES, stop_thread="joiner")


def columns(run):
    ev = run.events
    kinds = ev.column("event").combine_chunks()
    names = kinds.dictionary.to_pylist()
    return (ev.column("t_ns").to_numpy(), ev.column("thread").to_numpy(), kinds.indices.to_numpy(), ev.column("arg").to_numpy(), names)


@pytest.fixture(scope="module", params=sorted(POLICIES))
def policy_run(request):
    return request.param, gm.run(mixed(POLICIES[request.param]))


def test_at_most_one_holder_and_alternation(policy_run):
    name, run = policy_run
    t, th, ev, arg, names = columns(run)
    acq, rel, req = names.index("acquire"), names.index("release"), names.index("request")
    gil = (ev == acq) | (ev == rel)
    # Globally, acquire and release strictly alternate: never two holders at once.
    seq = ev[gil]
    assert seq.size > 100, name
    assert (seq[0::2] == acq).all() and (seq[1::2] == rel).all(), name
    # ...and each release is by the thread that acquired just before.
    assert (th[gil][0::2][: seq.size // 2] == th[gil][1::2]).all(), name
    # Per thread: request, acquire, release, request, ...
    for k in range(run.threads.num_rows):
        mine = ev[(th == k) & (gil | (ev == req))]
        n = mine.size // 3 * 3
        assert (mine[0:n:3] == req).all() and (mine[1:n:3] == acq).all() and (mine[2:n:3] == rel).all(), (name, k)


def test_timestamps_monotonic_per_thread_and_sorted(policy_run):
    _, run = policy_run
    t, th, *_ = columns(run)
    assert (np.diff(t) >= 0).all()
    for k in range(run.threads.num_rows):
        assert (np.diff(t[th == k]) >= 0).all()
    assert t.min() >= 0


def test_counts_in_threads_agree_with_events(policy_run):
    name, run = policy_run
    t, th, ev, arg, names = columns(run)
    thr = run.threads.to_pydict()
    assert not run.meta["events_truncated"]
    for k in range(run.threads.num_rows):
        mine = th == k
        for col, kinds in [("acquisitions", ["acquire"]), ("drop_requests", ["drop_request", "preempt"]),
                           ("forced_drops", ["forced_drop"]), ("timeouts", ["timeout"]), ("switch_waits", ["switch_wait"])]:
            # A preempt is a drop request made at once, without waiting an interval.
            assert thr[col][k] == int((mine & np.isin(ev, [names.index(x) for x in kinds])).sum()), (name, k, col)
        assert thr["futile_wakeups"][k] == int(arg[mine & (ev == names.index("futile_wakeup"))].sum()), (name, k)
        assert thr["events"][k] == int(mine.sum())
        # Ticks recorded at releases add up to the thread's ticks.
        assert thr["ticks"][k] == int(arg[mine & (ev == names.index("release"))].sum()), (name, k)
    # The switch count is the number of acquisitions that changed the holder.
    holders = th[ev == names.index("acquire")]
    assert run.meta["switches"] == 1 + int((holders[1:] != holders[:-1]).sum())


@pytest.mark.parametrize("name", [k for k, p in sorted(POLICIES.items()) if getattr(p, "dedupe_drop_request", False)])
def test_dedupe_means_no_drop_request_from_a_waiter_that_saw_a_switch(name):
    run = gm.run(mixed(POLICIES[name]))
    t, th, ev, arg, names = columns(run)
    acq, drq = names.index("acquire"), names.index("drop_request")
    # The switch count in force at each drop request is the arg of the latest acquire before it.
    idx = np.nonzero((ev == acq) | (ev == drq))[0]
    current = np.maximum.accumulate(np.where(ev[idx] == acq, arg[idx], 0))
    at_request = current[ev[idx] == drq]
    assert at_request.size > 0, name
    assert (arg[ev == drq] == at_request).all()


def test_every_thread_starts_exits_and_io_is_bracketed(policy_run):
    name, run = policy_run
    t, th, ev, arg, names = columns(run)
    for k in range(run.threads.num_rows):
        mine = ev[th == k]
        assert mine[0] == names.index("start") and mine[-1] == names.index("exit"), (name, k)
        b = (mine == names.index("io_begin")).sum()
        assert b == (mine == names.index("io_end")).sum()
    thr = run.threads.to_pydict()
    assert thr["bytes_sent"][2] == 300 * 512
    assert run.io.num_rows == 30
    assert run.meta["stopped_by"] == "thread"
    assert thr["stopped"][0] and not thr["stopped"][5]


def test_cpu_column_is_the_pinned_core(policy_run):
    _, run = policy_run
    _, th, ev, _, names = columns(run)
    cpu = run.events.column("cpu").to_numpy()
    cores = run.threads.column("core").to_numpy()
    assert (cpu == cores[th]).all()
