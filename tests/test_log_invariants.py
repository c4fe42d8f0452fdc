"""The event log's invariants, checked on real runs of every policy."""

import numpy as np
import pytest

import gilmodel as gm
from conftest import CORES, POLICIES
from log_checks import (check_counts, check_cpu_pinned, check_one_holder, check_per_thread_cycle, check_start_exit_io,
                        check_time_order, columns)


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


@pytest.fixture(scope="module", params=sorted(POLICIES))
def policy_run(request):
    return request.param, gm.run(mixed(POLICIES[request.param]))


def test_at_most_one_holder_and_alternation(policy_run):
    name, run = policy_run
    assert check_one_holder(run, name) > 100, name
    check_per_thread_cycle(run, name)


def test_timestamps_monotonic_per_thread_and_sorted(policy_run):
    name, run = policy_run
    check_time_order(run, name)


def test_counts_in_threads_agree_with_events(policy_run):
    name, run = policy_run
    assert not run.meta["events_truncated"]
    check_counts(run, name)


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
    check_start_exit_io(run, name)
    thr = run.threads.to_pydict()
    assert thr["bytes_sent"][2] == 300 * 512
    assert run.io.num_rows == 30
    assert run.meta["stopped_by"] == "thread"
    assert thr["stopped"][0] and not thr["stopped"][5]


def test_cpu_column_is_the_pinned_core(policy_run):
    name, run = policy_run
    check_cpu_pinned(run, name)
