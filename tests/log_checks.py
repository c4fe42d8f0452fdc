"""The event log's invariants, as functions: used by test_log_invariants.py on a fixed mixed
scenario under every policy, and by test_properties.py on generated scenarios.

Every check takes a :class:`gilmodel.Run` and a label for the failure message.
"""

import numpy as np


def columns(run):
    """``(t_ns, thread, event code, arg, event names)`` as numpy arrays (names a list)."""
    ev = run.events
    kinds = ev.column("event").combine_chunks()
    names = kinds.dictionary.to_pylist()
    return (ev.column("t_ns").to_numpy(), ev.column("thread").to_numpy(), kinds.indices.to_numpy(), ev.column("arg").to_numpy(), names)


def truncated(run) -> bool:
    return bool(run.meta["events_truncated"]) or any(run.threads.column("events_dropped").to_pylist())


def check_one_holder(run, label=""):
    """Globally, acquire and release strictly alternate (never two holders at once), and each
    release is by the thread that acquired just before. Not for NoGIL; needs a complete log."""
    t, th, ev, arg, names = columns(run)
    acq, rel = names.index("acquire"), names.index("release")
    gil = (ev == acq) | (ev == rel)
    seq = ev[gil]
    assert (seq[0::2] == acq).all() and (seq[1::2] == rel).all(), label
    assert (th[gil][0::2][: seq.size // 2] == th[gil][1::2]).all(), label
    return seq.size


def check_per_thread_cycle(run, label=""):
    """Per thread: request, acquire, release, request, ... (holds for a truncated log too: each
    thread keeps the first events it made)."""
    t, th, ev, arg, names = columns(run)
    acq, rel, req = names.index("acquire"), names.index("release"), names.index("request")
    cyc = (ev == acq) | (ev == rel) | (ev == req)
    for k in range(run.threads.num_rows):
        mine = ev[(th == k) & cyc]
        n = mine.size // 3 * 3
        assert (mine[0:n:3] == req).all() and (mine[1:n:3] == acq).all() and (mine[2:n:3] == rel).all(), (label, k)
        # A partial cycle at the end is request or request, acquire.
        rest = mine[n:]
        assert rest.size == 0 or rest[0] == req, (label, k)
        assert rest.size < 2 or rest[1] == acq, (label, k)


def check_time_order(run, label=""):
    """Sorted by time overall and per thread, from 0 on."""
    t, th, *_ = columns(run)
    if t.size == 0:
        return
    assert (np.diff(t) >= 0).all(), label
    for k in range(run.threads.num_rows):
        assert (np.diff(t[th == k]) >= 0).all(), (label, k)
    assert t.min() >= 0, label


def check_counts(run, label="", exclusive=True):
    """The per-thread counters agree with the events (a complete log only)."""
    t, th, ev, arg, names = columns(run)
    thr = run.threads.to_pydict()
    for k in range(run.threads.num_rows):
        mine = th == k
        for col, kinds in [("acquisitions", ["acquire"]), ("drop_requests", ["drop_request", "preempt"]),
                           ("forced_drops", ["forced_drop"]), ("timeouts", ["timeout"]), ("switch_waits", ["switch_wait"])]:
            # A preempt is a drop request made at once, without waiting an interval.
            codes = [names.index(x) for x in kinds if x in names]
            assert thr[col][k] == int((mine & np.isin(ev, codes)).sum()), (label, k, col)
        assert thr["futile_wakeups"][k] == int(arg[mine & (ev == names.index("futile_wakeup"))].sum()), (label, k)
        assert thr["events"][k] == int(mine.sum()), (label, k)
        # Ticks recorded at releases add up to the thread's ticks.
        assert thr["ticks"][k] == int(arg[mine & (ev == names.index("release"))].sum()), (label, k)
    if exclusive:
        # The switch count is the number of acquisitions that changed the holder.
        holders = th[ev == names.index("acquire")]
        if holders.size:
            assert run.meta["switches"] == 1 + int((holders[1:] != holders[:-1]).sum()), label


def check_start_exit_io(run, label=""):
    """Every thread's log starts with ``start`` and ends with ``exit``; blocking calls are
    bracketed (io_begin, io_end) and never nest (a complete log only)."""
    t, th, ev, arg, names = columns(run)
    b, e = names.index("io_begin"), names.index("io_end")
    for k in range(run.threads.num_rows):
        mine = ev[th == k]
        assert mine.size >= 2 and mine[0] == names.index("start") and mine[-1] == names.index("exit"), (label, k)
        io = mine[(mine == b) | (mine == e)]
        assert (io[0::2] == b).all() and (io[1::2] == e).all() and io.size % 2 == 0, (label, k)


def check_cpu_pinned(run, label=""):
    """The ``cpu`` column is the core each thread was pinned to; an unpinned thread's (core
    -1) is one of the cores of its affinity mask."""
    _, th, *_ = columns(run)
    cpu = run.events.column("cpu").to_numpy()
    cores = run.threads.column("core").to_numpy()
    pinned = cores[th] >= 0
    assert (cpu[pinned] == cores[th][pinned]).all(), label
    for i, aff in enumerate(run.threads.column("affinity").to_pylist()):
        allowed = [int(c) for c in aff.split(",")]
        assert cores[i] == (allowed[0] if len(allowed) == 1 else -1), label
        assert np.isin(cpu[th == i], allowed).all(), label


def check_run(run, label="", exclusive=True):
    """Every invariant that applies: all of them on a complete log; on a truncated one, those
    that hold for each thread's prefix; only the counters' shape with ``log=False``."""
    assert run.threads.num_rows >= 1, label
    if not run.meta["log"]:
        assert run.events.num_rows == 0, label
        return
    check_time_order(run, label)
    check_per_thread_cycle(run, label)
    check_cpu_pinned(run, label)
    if truncated(run):
        return
    if exclusive:
        check_one_holder(run, label)
    check_counts(run, label, exclusive)
    check_start_exit_io(run, label)
